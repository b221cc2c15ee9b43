/**
 * The public API of the Paxos-plus-lease replica (impl/core): what a driver needs. See README.md
 * in this folder for the user manual of the step loop: which events to feed, in which order to
 * carry out effects. A driver builds a state (`initialState`, from a configuration it decoded
 * with `parseConfig`), hands `step` events and carries out the effects it returns, decodes
 * messages and durable records at its boundaries with their Schemas, and may compact its store
 * (`compactRecords`). Tests, proofs and the simulated world reach the internals through
 * testing/index.ts.
 *
 * Everything exported here is pure: no clock, no randomness outside the state, no I/O.
 */
export type {
  Consistency,
  ClientResult,
  Effect,
  Event,
  ReadEntries,
  ReplicaId,
  KeptTransfer,
  StepResult,
  TransferRefusal,
  VoteRef,
} from "./events.ts";
export { transferChecks } from "./events.ts";
export { ConfigChange, showChange, type Configuration, type MemberAddress } from "./configuration.ts";
export { Config, ConfigError, parseConfig, replicaIdMax } from "./config.ts";
export { showBallot, type Ballot } from "./ballot.ts";
export { messageSchema, type Message, type SnapshotChunkMsg } from "./messages.ts";
export { compactRecords, recordSchema, type DurableRecord, type RecordSummary } from "./records.ts";
export { initialState, ownBallot, type ReplicaState } from "./state.ts";
export {
  executionPending,
  membershipUnsettled,
  step,
  type ReplicaEffect,
  type ReplicaEvent,
  type Step,
} from "./replica.ts";
export { AssertionFailure } from "./assert.ts";
export {
  chunkOfRecord,
  isStored,
  readChunkFromRecords,
  readFromRecords,
  resolveStored,
  valueBytes,
  type StoredChunkMsg,
  type StoredMessage,
  type StoredValue,
} from "./at-rest.ts";
export {
  ContentDigest,
  serializationOf,
  snapshotSize,
  snapshotSlice,
  type SnapshotChunk,
  type SnapshotSerialization,
} from "./snapshot.ts";
export { pinnedSnapshots, resumingKept } from "./transfer.ts";
export {
  entryOfVote,
  escapedEntryOfVote,
  pinnedVotes,
  readEntryFromRecords,
  type StoredEntry,
} from "./store-at-rest.ts";

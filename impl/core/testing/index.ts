/**
 * The core's testing entry point: the public API of impl/core (index.ts, what a driver needs)
 * and the internals that tests, proofs and the simulated world read or replace: the state's
 * parts, the protocol's rules one by one, the slot maps, the message and record types.
 * Drivers (impl/runtime) import index.ts only; nothing in the core imports this file.
 */
export * from "../index.ts";
export {
  applyChange,
  configurationFor,
  initialConfiguration,
  replicasOf,
  showConfiguration,
  type Membership,
} from "../configuration.ts";
export {
  contentDigestOf,
  decodeReadSnapshot,
  decodeSnapshot,
  encodeSnapshot,
  fillSnapshotHoles,
  makeSnapshot,
  snapshotDigest,
  type SnapshotInfo,
} from "../snapshot.ts";
export { ballotToNat, compareBallots, isBallotZero } from "../ballot.ts";

export { noopValue, plainEqual, valuesEqual, type Command, type PromiseMsg, type Value } from "../messages.ts";

export { type AcceptorState, type GrantTimes, type Leader, type ReplicaContext, type Vote } from "../state.ts";
export { checkQuorumOrigin, stalledWithin } from "../check-quorum.ts";
export { keysReadBy } from "../learner.ts";
export { slotMapEntries, slotMapForEach, slotMapGet, slotMapOf, slotMapSet, type SlotMap } from "../slot-map.ts";
export { defaultRules, type ReplicaRules } from "../rules.ts";
export { becomeCandidate, makeStep } from "../replica.ts";
export { changeAllowed } from "../leader.ts";
export { truncateVotes } from "../acceptor.ts";
export { phase1CoversAbove } from "../quorums.ts";
export { mulberry32 } from "../election.ts";
export { isStored } from "../at-rest.ts";
export { sameEntry, type StoredEntry } from "../store-at-rest.ts";

/**
 * The public API of the Paxos-plus-lease replica (impl/core). See README.md in this folder for
 * the user manual of the step loop: which events to feed, in which order to carry out effects.
 *
 * Everything exported here is pure: no clock, no randomness outside the state, no I/O.
 */
export type {
  Consistency,
  ClientRequest,
  ClientResult,
  Effect,
  Event,
  ReconfigureRequest,
  ReplicaId,
  StepResult,
} from "./events.ts";
export {
  ConfigChange,
  applyChange,
  configurationFor,
  configurationReplicasMax,
  initialConfiguration,
  pruneConfigurations,
  replicasOf,
  showChange,
  showConfiguration,
  type Configuration,
} from "./configuration.ts";
export {
  contentDigestOf,
  decodeSnapshot,
  encodeSnapshot,
  makeSnapshot,
  snapshotDigest,
  verifySnapshot,
  type SnapshotClaim,
  type SnapshotContents,
  type SnapshotInfo,
} from "./snapshot.ts";
export {
  Ballot,
  ballotEquals,
  ballotToNat,
  ballotZero,
  compareBallots,
  isBallotZero,
  maxBallot,
  showBallot,
} from "./ballot.ts";
export {
  Config,
  ConfigError,
  decodeConfig,
  driftRho,
  leaderLeaseMs,
  leaseMsAfterDrift,
  parseConfig,
} from "./config.ts";
export {
  ballotOf,
  messageSchema,
  noopValue,
  plainEqual,
  valueSchema,
  valuesEqual,
  type AcceptMsg,
  type AcceptedMsg,
  type Checkpoint,
  type ChosenEntry,
  type CatchUpMsg,
  type CatchUpReplyMsg,
  type Command,
  type HeartbeatAckMsg,
  type HeartbeatMsg,
  type Message,
  type NackMsg,
  type PrepareMsg,
  type PromiseMsg,
  type SlotVote,
  type SnapshotChunkMsg,
  type SnapshotRequestMsg,
  type Value,
} from "./messages.ts";
export {
  compactRecords,
  recordSchema,
  type ChosenRecord,
  type DurableRecord,
  type PromiseRecord,
  type SnapshotRecord,
  type VoteRecord,
} from "./records.ts";
export {
  follower,
  initialState,
  ownBallot,
  type AcceptorState,
  type Candidate,
  type ElectionState,
  type Follower,
  type GrantTimes,
  type Halt,
  type Leader,
  type LearnerState,
  type MonitorState,
  type PeerCheckpoint,
  type PendingBatch,
  type PhaseOneOf,
  type Proposal,
  type ReplicaContext,
  type ReplicaState,
  type Role,
  type Transfer,
  type Vote,
} from "./state.ts";
export {
  emptySlotMap,
  slotMapDropThrough,
  slotMapEntries,
  slotMapForEach,
  slotMapGet,
  slotMapHas,
  slotMapOf,
  slotMapSet,
  type SlotMap,
} from "./slot-map.ts";
export { defaultRules, type ReplicaRules } from "./rules.ts";
export {
  becomeCandidate,
  becomeLeader,
  halt,
  makeStep,
  recover,
  step,
  stepDown,
  type ReplicaEffect,
  type ReplicaEvent,
  type ReplicaStepResult,
  type Step,
} from "./replica.ts";
export { canPromise, grantUntilFor, restartWaitUntil, truncateVotes } from "./acceptor.ts";
export {
  canServeLeaseRead,
  changeAllowed,
  grantCountedFrom,
  leaseExpiry,
  leaseFrom,
  mergeRevealed,
  phase2aValue,
  popcount,
  quorumSize,
  stalledBehind,
} from "./leader.ts";
export {
  executeCommand,
  governsFrom,
  learnableFromLeader,
  nextToExecute,
  snapshotDue,
  type ChangeOutcome,
} from "./learner.ts";
export {
  leaseConfigurations,
  leaseFromConfigurations,
  phase1Covers,
  phase1CoversAbove,
  promiseCoversFrom,
} from "./quorums.ts";
export { transferUseful } from "./transfer.ts";
export { mayCampaign, mulberry32, nextBallot } from "./election.ts";
export { checkpointDue } from "./monitor.ts";
export { AssertionFailure } from "./assert.ts";

/**
 * The protocol's rules as one object of small, named, pure functions: ballot order, quorum size,
 * when an acceptor may help a ballot, how long a grant and a lease last, which value a new leader
 * re-proposes, when a follower may learn a slot is chosen. `makeStep(rules)` assembles the
 * replica from them, and `step = makeStep(defaultRules)`.
 *
 * Why an object: the bug zoo (refinement-tests/) builds deliberately broken replicas by replacing
 * one rule, and the refinement checkers must catch each. Production code never carries a flag or
 * a mutant; it only ever uses `defaultRules`. Each rule is documented where it is defined.
 */
import type { TextHash } from "../../spec/hash.ts";
import type { Applied } from "../../spec/state-machine.ts";
import {
  commandDigestLike,
  openSession,
  sessionAnswer,
  type ServiceOutput,
  type ServiceState,
  type Session,
  type SessionBounds,
} from "../../spec/service.ts";
import { compareBallots, type Ballot } from "./ballot.ts";
import type { Config } from "./config.ts";
import { mayHelpLeader, type Configuration } from "./configuration.ts";
import { canPromise, promiseOmitsThrough } from "./acceptor.ts";
import { checkpointDue } from "./monitor.ts";
import {
  executeCommand,
  executeFeatures,
  governsFrom,
  learnableFromLeader,
  nextToExecute,
  readsAtRest,
  retirement,
  snapshotDue,
  type ReadBack,
} from "./learner.ts";
import { mergeRevealed, phase2aValue, quorumSize } from "./leader.ts";
import {
  canServeLeaseRead,
  grantCountedFrom,
  grantUntilFor,
  leaseExpiry,
  leaseFrom,
  restartWaitUntil,
  yieldsToHigherBallot,
} from "./lease.ts";
import { mayCampaign } from "./election.ts";
import type { ReplicaId } from "./events.ts";
import type { Command, Value } from "./messages.ts";
import { promiseCoversFrom } from "./quorums.ts";
import { verifySnapshot, type ReadSnapshot, type SnapshotClaim, type SnapshotContents } from "./snapshot.ts";
import type { SlotMap } from "./slot-map.ts";
import type { AcceptorState, GrantTimes, HeldVote, ReplicaContext, ReplicaState, Role, Vote } from "./state.ts";
import type { HeldValue } from "./at-rest.ts";
import type { StoreAtRest } from "./store-at-rest.ts";
import { transferUseful } from "./transfer.ts";

/** The rules `step` is assembled from. Every function is pure. */
export interface ReplicaRules {
  /** Ballot order: by round, then replica id. */
  readonly compareBallots: (a: Ballot, b: Ballot) => number;
  /** Members needed for a quorum: a majority. */
  readonly quorumSize: (members: number) => number;
  /** May the acceptor promise, vote or grant for `ballot` now? (maxBal, grant in force, restart wait) */
  readonly canPromise: <I>(rules: ReplicaRules, acceptor: AcceptorState<I>, ballot: Ballot, now: number) => boolean;
  /** Own clock reading until which a grant given now holds (rule L1). */
  readonly grantUntilFor: (now: number, config: Config) => number;
  /** Own clock reading until which a restarted replica helps no ballot but its durable maxBal (rule L4). */
  readonly restartWaitUntil: (now: number, config: Config) => number;
  /** The send time the lease is counted from: the quorum-th most recent grant's (rule L2). */
  readonly leaseFrom: (grantSentAt: GrantTimes, quorum: number) => number;
  /** Own clock reading at which the lease counted from `from` runs out (rule L2). */
  readonly leaseExpiry: (from: number, config: Config) => number;
  /**
   * May the leader answer a linearizable read from local state now? (rule L3: lease, phase 1 of every configuration
   * above the executed prefix, revealed slots executed)
   */
  readonly canServeLeaseRead: <S, I, O>(rules: ReplicaRules, state: ReplicaState<S, I, O>, now: number) => boolean;
  /**
   * Does a replica in `role` give up its campaign or leadership (and its self-grant) on meeting
   * `ballot` at own clock reading `now`? (rule L6: a candidate, or a leader whose lease lapsed)
   */
  readonly yieldsToHigherBallot: <I>(rules: ReplicaRules, role: Role<I>, ballot: Ballot, now: number) => boolean;
  /** May this replica start an election now? (rule L5) */
  readonly mayCampaign: <S, I, O>(rules: ReplicaRules, state: ReplicaState<S, I, O>, now: number) => boolean;
  /** Phase 1: combine the vote known so far at a slot with one more reported vote. */
  readonly mergeRevealed: <I>(rules: ReplicaRules, current: Vote<I> | undefined, reported: Vote<I>) => Vote<I>;
  /** Phase 2a: the value a new leader proposes at a slot phase 1 covered. */
  readonly phase2aValue: <I>(revealed: Vote<I> | undefined, knownChosen: Value<I> | undefined) => Value<I>;
  /** May a follower take its vote as the chosen value, given that a leader of `ballot` said the slot is committed? */
  readonly learnableFromLeader: <I>(rules: ReplicaRules, vote: HeldVote<I> | undefined, ballot: Ballot) => boolean;
  /** Is `slot` a divergence checkpoint? */
  readonly checkpointDue: (slot: number, config: Config) => boolean;
  /**
   * The clock reading a grant echoing `sentAt` and received at `receivedAt` is counted from (rule L2: the send time).
   */
  readonly grantCountedFrom: (sentAt: number, receivedAt: number) => number;
  /**
   * The next slot to execute after `executedUpTo`, or undefined when it is not in the log yet (strictly in slot order).
   */
  readonly nextToExecute: <I>(log: SlotMap<HeldValue<I>>, executedUpTo: number) => number | undefined;
  /**
   * What the session table alone answers for a request numbered `seq` with command `input`
   * (undefined: it is new and goes through the log): the service spec's `sessionAnswer`. The
   * leader's front door asks it; execution decides the same way inside the spec. `textHash`: the
   * application's (spec/hash.ts), which the command's digest is made with.
   */
  readonly sessionAnswer: <O>(
    session: Session<O> | undefined,
    seq: number,
    input: unknown,
    textHash: TextHash | null,
  ) => ServiceOutput<O> | undefined;
  /** Execute one command of a chosen slot: through the service spec, whose session table deduplicates retries. */
  readonly executeCommand: <S, I, O>(
    ctx: ReplicaContext<S, I, O>,
    service: ServiceState<S, O>,
    command: Command<I>,
  ) => Applied<ServiceState<S, O>, ServiceOutput<O>>;
  /**
   * Execute one open-session request of an `open` value chosen at a slot (spec/service.ts
   * `openSession`: the next id of the service's count, never one opened before).
   */
  readonly openSession: <S, O>(service: ServiceState<S, O>) => Applied<ServiceState<S, O>, ServiceOutput<O>>;
  /** Execute a raise of the feature level chosen at a slot (spec/service.ts `raiseFeatures`). */
  readonly executeFeatures: <S, O>(
    service: ServiceState<S, O>,
    level: number,
    bounds: SessionBounds,
  ) => ServiceState<S, O>;
  /** The first slot governed by a configuration chosen at `chosenAt` (rule R1: chosenAt + alpha). */
  readonly governsFrom: (chosenAt: number, alpha: number) => number;
  /** The first slot a Promise for `fromSlot` from an acceptor truncated through `truncatedUpTo` covers (rule T2). */
  readonly promiseCoversFrom: (fromSlot: number, truncatedUpTo: number) => number;
  /**
   * The slot through which a Promise omits votes and reports them chosen, from the acceptor's truncation point and
   * the executed prefix it may report (0 unless `promiseOmitsChosen`) (rule T3: at most what it knows chosen).
   */
  readonly promiseOmitsThrough: (truncatedUpTo: number, executedUpTo: number) => number;
  /**
   * May an acceptor help a ballot of `leader`, which executed up to `leaderExecutedUpTo`? (rule R4: not a replica it
   * knows removed)
   */
  readonly mayHelpLeader: (
    configs: readonly Configuration[],
    executedUpTo: number,
    leader: ReplicaId,
    leaderExecutedUpTo: number,
  ) => boolean;
  /** Is this replica, whose removal is chosen, retired now, and why? (rule R5; null: not yet) */
  readonly retirement: <S, I, O>(state: ReplicaState<S, I, O>, now: number) => string | null;
  /**
   * Is `slot` a snapshot slot, given the bytes of values executed since the last one (this slot's included), the
   * size of the latest snapshot and the commands executed since the last one (this slot's included)?
   */
  readonly snapshotDue: (
    slot: number,
    config: Config,
    bytesSinceSnapshot: number,
    snapshotBytes: number,
    commandsSinceSnapshot: number,
  ) => boolean;
  /**
   * Rule V4: the store values at rest a slot of `value` needs back in memory before it executes on
   * `app` (those its commands read; a snapshot slot needs none, rule V5), or null: execute it now.
   */
  readonly readsAtRest: <S, I>(atRest: StoreAtRest<S, I>, app: S, value: Value<I>) => ReadBack | null;
  /** Is a transfer of a snapshot of `slot` worth installing, given the executed prefix? (rule S1: only above it) */
  readonly transferUseful: (slot: number, executedUpTo: number) => boolean;
  /**
   * Check a snapshot (decoded as a transfer's chunks came, or read back from disk) against its claimed slot and
   * digests, and rebuild it (rule S2); a string is the reason to refuse it.
   */
  readonly verifySnapshot: <S, I, O>(
    ctx: ReplicaContext<S, I, O>,
    read: ReadSnapshot,
    claim: SnapshotClaim,
  ) => SnapshotContents<S, O> | string;
}

/** The rules of paxos-lease. */
export const defaultRules: ReplicaRules = {
  compareBallots,
  quorumSize,
  canPromise,
  grantUntilFor,
  restartWaitUntil,
  leaseFrom,
  leaseExpiry,
  canServeLeaseRead,
  yieldsToHigherBallot,
  mayCampaign,
  mergeRevealed,
  phase2aValue,
  learnableFromLeader,
  checkpointDue,
  grantCountedFrom,
  nextToExecute,
  // The command's digest matters only for a retry of the session's last number: not computed for
  // a new one (the common case at the leader's front door; execution computes it once).
  sessionAnswer: (session, seq, input, textHash) =>
    sessionAnswer(
      session,
      seq,
      session !== undefined && seq === session.seq ? commandDigestLike(session.command, input, textHash) : "",
    ),
  executeCommand,
  openSession,
  executeFeatures,
  governsFrom,
  promiseCoversFrom,
  promiseOmitsThrough,
  mayHelpLeader,
  retirement,
  snapshotDue,
  readsAtRest,
  transferUseful,
  verifySnapshot,
};

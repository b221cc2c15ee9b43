/**
 * The replica's whole state, one plain immutable value per replica: the acceptor's promises,
 * votes and lease grant (Voting.tla's maxBal and votes, per slot), the learner's chosen log and
 * executed service state, the role (follower, candidate or leader) with its phase 1 / phase 2
 * bookkeeping and lease belief, the election timer, and the divergence monitor.
 *
 * Field names follow the specs so that proofs/ can read them directly: `acceptor.maxBal`,
 * `acceptor.votes`, `learner.log` (chosen), `learner.executedUpTo`, `role.leaseUntil`. `step` never
 * mutates a state it is given; every update builds a new value, sharing what did not change.
 */
import type { Application } from "../../spec/state-machine.ts";
import { serviceOf, type Service, type ServiceState } from "../../spec/service.ts";
import { ballotZero, type Ballot } from "./ballot.ts";
import type { Config } from "./config.ts";
import type { ReplicaId } from "./events.ts";
import type { Checkpoint, Command, Value } from "./messages.ts";
import { emptySlotMap, type SlotMap } from "./slot-map.ts";

/** What never changes during a replica's life: configuration, application, membership. Shared by every state. */
export interface ReplicaContext<S, I, O> {
  readonly config: Config;
  readonly app: Application<S, I, O>;
  /** The service spec over `app` (spec/service.ts): execution goes through its `apply`. */
  readonly service: Service<S, I, O>;
  /** Members, sorted ascending. A member's index in this list is its bit in acknowledgement masks. */
  readonly members: readonly ReplicaId[];
  /** Index of `config.self` in `members`. */
  readonly selfIndex: number;
  /** Every member but self, ascending. */
  readonly others: readonly ReplicaId[];
}

/** An acceptor's vote in one slot: Lamport's (maxVBal, maxVal) for that slot's instance. */
export interface Vote<I> {
  readonly ballot: Ballot;
  readonly value: Value<I>;
}

/**
 * The acceptor (Phase1b, Phase2b and lease grants). `maxBal` and `votes` are durable;
 * the grant and the restart wait are not (they are clock-relative, and a restart waits instead).
 */
export interface AcceptorState<I> {
  /** maxBal (Voting.tla): the highest ballot promised; `ballotZero` before any. Durable. */
  readonly maxBal: Ballot;
  /** votes, per slot: this acceptor's latest vote (the highest ballot it voted in there). Durable. */
  readonly votes: SlotMap<Vote<I>>;
  /** The ballot the current lease grant is for (`ballotZero`: none). */
  readonly grantTo: Ballot;
  /** Own clock reading until which the grant holds: no other ballot is helped before it (rule L1). */
  readonly grantUntil: number;
  /** After a restart: own clock reading before which no ballot but `maxBal` is helped (rule L4). */
  readonly noPromiseUntil: number;
}

/** The learner: chosen log, commit index, in-order execution through the service spec. */
export interface LearnerState<S, I, O> {
  /** chosen values this replica knows, by slot (may have gaps above `executedUpTo`). Durable. */
  readonly log: SlotMap<Value<I>>;
  /** Every slot <= commitIndex is chosen (learned from a leader or from the log itself). */
  readonly commitIndex: number;
  /** Slots 1..executedUpTo are executed, in order; `service` is the state after them. */
  readonly executedUpTo: number;
  /** The service state (application, session table) after executing slots 1..executedUpTo. */
  readonly service: ServiceState<S, O>;
  /** Who this replica believes leads (for redirects and catch-up), or null. */
  readonly leaderHint: ReplicaId | null;
  /** Clock reading when the last CatchUp request left (rate limit). */
  readonly catchUpSentAt: number;
}

/** The election timer and the seeded pseudo-random generator that spreads timeouts. */
export interface ElectionState {
  /** mulberry32 state (unsigned 32-bit). */
  readonly prng: number;
  /** When the timer last started: the leader was last heard from, or the role last changed. */
  readonly heardAt: number;
  /** The current randomized timeout. Follower: campaign at heardAt + timeoutMs. Candidate: retry then. */
  readonly timeoutMs: number;
  /** Highest round seen in any ballot (promised, refused, or reported): the next campaign goes above it. */
  readonly roundSeen: number;
}

/** The divergence monitor (step 6 of the recipe): digests of state and outputs at checkpoint slots. */
export interface MonitorState {
  /** Running 2 x 32-bit digest of every output this replica produced by executing the log. */
  readonly outputDigestA: number;
  readonly outputDigestB: number;
  /** This replica's most recent checkpoints, ascending by slot (at most `checkpointsKept`). */
  readonly checkpoints: readonly Checkpoint[];
  /** Per member index: a peer's checkpoint above our executed prefix, to compare once we get there. */
  readonly peerCheckpoints: readonly (Checkpoint | null)[];
}

/** How many own checkpoints the monitor keeps for comparison with late peers. */
export const checkpointsKept = 8;

/** A follower: votes, learns and executes; answers writes with a redirect. */
export interface Follower {
  readonly _tag: "follower";
}

/** Per member index: echoed send time of the latest lease grant for the current ballot (-Infinity: none). */
export type GrantTimes = readonly number[];

/** A candidate in phase 1 of its `ballot`, collecting Promises. */
export interface Candidate<I> {
  readonly _tag: "candidate";
  readonly ballot: Ballot;
  /** Phase 1 covers every slot >= fromSlot (the candidate's first unexecuted slot). */
  readonly fromSlot: number;
  /** Bit per member index: who promised `ballot` (self included). */
  readonly promised: number;
  /** Per slot >= fromSlot: the highest-ballot vote the Promises reported (Paxos.tla's ShowsSafeAt witness). */
  readonly revealed: SlotMap<Vote<I>>;
  /** Clock reading of the last Prepare broadcast (retransmission). */
  readonly prepareSentAt: number;
  readonly grantSentAt: GrantTimes;
}

/** A proposal in the phase 2 pipeline. */
export interface Proposal<I> {
  readonly value: Value<I>;
  /** Bit per member index: who voted for it in the leader's ballot (self included). */
  readonly acks: number;
  /** Per command of a batch: the driver's request id to answer, or -1 (re-proposal, or another replica's request). */
  readonly requestIds: readonly number[];
  /** Clock reading of the last Accept sent for it (retransmission). */
  readonly sentAt: number;
  /** True once a quorum voted: the value is chosen and in the log. */
  readonly chosen: boolean;
}

/** Client commands waiting for a pipeline slot, grouped in batches of at most `batchCommandsMax`. */
export interface PendingBatch<I> {
  readonly commands: readonly Command<I>[];
  readonly requestIds: readonly number[];
}

/** A leader of `ballot`: phase 1 is done; it runs phase 2 per slot and holds (or renews) a lease. */
export interface Leader<I> {
  readonly _tag: "leader";
  readonly ballot: Ballot;
  readonly fromSlot: number;
  /** The highest slot phase 1 revealed a vote for (or fromSlot - 1): lease reads wait until it is executed (rule L3). */
  readonly phase1MaxSlot: number;
  /** Phase 1's highest-ballot votes, consulted when re-proposing slots <= phase1MaxSlot. */
  readonly revealed: SlotMap<Vote<I>>;
  /** The next slot to propose. */
  readonly nextSlot: number;
  /** Slot of inflight[0]. The pipeline holds slots inflightBase .. nextSlot - 1. */
  readonly inflightBase: number;
  readonly inflight: readonly Proposal<I>[];
  readonly pending: readonly PendingBatch<I>[];
  /** Commands in `pending`. */
  readonly pendingCount: number;
  readonly grantSentAt: GrantTimes;
  /** The quorum-th most recent grant's send time: the lease is counted from it (rule L2). */
  readonly leaseFrom: number;
  /** Own clock reading until which the lease holds (exclusive). Reads by lease need now < leaseUntil. */
  readonly leaseUntil: number;
  /** When the next heartbeat is due. */
  readonly heartbeatAt: number;
}

/** The role a replica plays beyond acceptor and learner. */
export type Role<I> = Follower | Candidate<I> | Leader<I>;

/** Why a replica stopped serving: its digest differed from a peer's at `slot`. */
export interface Halt {
  readonly slot: number;
  readonly message: string;
}

/** One replica's state. */
export interface ReplicaState<S, I, O> {
  readonly ctx: ReplicaContext<S, I, O>;
  /** False until the first `Recover` event; every boot starts with one. */
  readonly started: boolean;
  /** The clock reading of the last event handled; readings never decrease within one life. */
  readonly now: number;
  /** Non-null once the monitor found divergence: the replica answers every request `unavailable`. */
  readonly halted: Halt | null;
  readonly role: Role<I>;
  readonly acceptor: AcceptorState<I>;
  readonly learner: LearnerState<S, I, O>;
  readonly election: ElectionState;
  readonly monitor: MonitorState;
}

/** Shared follower role value. */
export const follower: Follower = { _tag: "follower" };

/** Murmur3's 32-bit finalizer: mixes seed and replica id into the PRNG state. */
export function mix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The context for `config` and `app`. */
export function makeContext<S, I, O>(config: Config, app: Application<S, I, O>): ReplicaContext<S, I, O> {
  const members = [...config.members].sort((a, b) => a - b);
  return {
    config,
    app,
    service: serviceOf(app),
    members,
    selfIndex: members.indexOf(config.self),
    others: members.filter((m) => m !== config.self),
  };
}

/**
 * The state of a replica that has not booted yet. The driver's first event must be `Recover`
 * (with no records on a fresh disk): every boot, the first one included, waits out one lease
 * before helping any ballot (rule L4).
 */
export function initialState<S, I, O>(config: Config, app: Application<S, I, O>): ReplicaState<S, I, O> {
  return freshState(makeContext(config, app));
}

/** A state with nothing learned, promised or voted: what `Recover` starts from before replaying records. */
export function freshState<S, I, O>(ctx: ReplicaContext<S, I, O>): ReplicaState<S, I, O> {
  return {
    ctx,
    started: false,
    now: Number.NEGATIVE_INFINITY,
    halted: null,
    role: follower,
    acceptor: {
      maxBal: ballotZero,
      votes: emptySlotMap(),
      grantTo: ballotZero,
      grantUntil: Number.NEGATIVE_INFINITY,
      noPromiseUntil: Number.NEGATIVE_INFINITY,
    },
    learner: {
      log: emptySlotMap(),
      commitIndex: 0,
      executedUpTo: 0,
      service: ctx.service.start,
      leaderHint: null,
      catchUpSentAt: Number.NEGATIVE_INFINITY,
    },
    election: {
      prng: mix32(ctx.config.seed ^ Math.imul(ctx.config.self, 0x9e3779b9)),
      heardAt: Number.POSITIVE_INFINITY,
      timeoutMs: ctx.config.electionTimeoutMsMax,
      roundSeen: 0,
    },
    monitor: {
      outputDigestA: 0,
      outputDigestB: 0,
      checkpoints: [],
      peerCheckpoints: ctx.members.map(() => null),
    },
  };
}

/** The ballot this replica leads or campaigns for, or null for a follower. */
export function ownBallot<I>(role: Role<I>): Ballot | null {
  return role._tag === "follower" ? null : role.ballot;
}

// ---------------------------------------------------------------------------------------------
// Copies for immutable updates
// ---------------------------------------------------------------------------------------------
//
// Every update builds a new object: copy, write the changed fields on the copy, return it. The
// copies list every field explicitly instead of using object spread, because V8 clones a spread
// of a spread result on a slow path (about 15 times slower here), and `step` copies a few objects
// per event. Only a copy made by these functions, within the same function, is ever written to.

/** A writable copy of T, made by one of the copy functions below and written before it is shared. */
export type Draft<T> = { -readonly [K in keyof T]: T[K] };

export function copyReplica<S, I, O>(s: ReplicaState<S, I, O>): Draft<ReplicaState<S, I, O>> {
  return {
    ctx: s.ctx,
    started: s.started,
    now: s.now,
    halted: s.halted,
    role: s.role,
    acceptor: s.acceptor,
    learner: s.learner,
    election: s.election,
    monitor: s.monitor,
  };
}

export function withRole<S, I, O>(s: ReplicaState<S, I, O>, role: Role<I>): ReplicaState<S, I, O> {
  const c = copyReplica(s);
  c.role = role;
  return c;
}

export function withAcceptor<S, I, O>(s: ReplicaState<S, I, O>, acceptor: AcceptorState<I>): ReplicaState<S, I, O> {
  const c = copyReplica(s);
  c.acceptor = acceptor;
  return c;
}

export function withLearner<S, I, O>(s: ReplicaState<S, I, O>, learner: LearnerState<S, I, O>): ReplicaState<S, I, O> {
  const c = copyReplica(s);
  c.learner = learner;
  return c;
}

export function withElection<S, I, O>(s: ReplicaState<S, I, O>, election: ElectionState): ReplicaState<S, I, O> {
  const c = copyReplica(s);
  c.election = election;
  return c;
}

export function withMonitor<S, I, O>(s: ReplicaState<S, I, O>, monitor: MonitorState): ReplicaState<S, I, O> {
  const c = copyReplica(s);
  c.monitor = monitor;
  return c;
}

export function copyAcceptor<I>(a: AcceptorState<I>): Draft<AcceptorState<I>> {
  return { maxBal: a.maxBal, votes: a.votes, grantTo: a.grantTo, grantUntil: a.grantUntil, noPromiseUntil: a.noPromiseUntil };
}

export function copyLearner<S, I, O>(l: LearnerState<S, I, O>): Draft<LearnerState<S, I, O>> {
  return {
    log: l.log,
    commitIndex: l.commitIndex,
    executedUpTo: l.executedUpTo,
    service: l.service,
    leaderHint: l.leaderHint,
    catchUpSentAt: l.catchUpSentAt,
  };
}

export function copyElection(e: ElectionState): Draft<ElectionState> {
  return { prng: e.prng, heardAt: e.heardAt, timeoutMs: e.timeoutMs, roundSeen: e.roundSeen };
}

export function copyMonitor(m: MonitorState): Draft<MonitorState> {
  return { outputDigestA: m.outputDigestA, outputDigestB: m.outputDigestB, checkpoints: m.checkpoints, peerCheckpoints: m.peerCheckpoints };
}

export function copyCandidate<I>(c: Candidate<I>): Draft<Candidate<I>> {
  return {
    _tag: "candidate",
    ballot: c.ballot,
    fromSlot: c.fromSlot,
    promised: c.promised,
    revealed: c.revealed,
    prepareSentAt: c.prepareSentAt,
    grantSentAt: c.grantSentAt,
  };
}

export function copyLeader<I>(l: Leader<I>): Draft<Leader<I>> {
  return {
    _tag: "leader",
    ballot: l.ballot,
    fromSlot: l.fromSlot,
    phase1MaxSlot: l.phase1MaxSlot,
    revealed: l.revealed,
    nextSlot: l.nextSlot,
    inflightBase: l.inflightBase,
    inflight: l.inflight,
    pending: l.pending,
    pendingCount: l.pendingCount,
    grantSentAt: l.grantSentAt,
    leaseFrom: l.leaseFrom,
    leaseUntil: l.leaseUntil,
    heartbeatAt: l.heartbeatAt,
  };
}

export function copyProposal<I>(p: Proposal<I>): Draft<Proposal<I>> {
  return { value: p.value, acks: p.acks, requestIds: p.requestIds, sentAt: p.sentAt, chosen: p.chosen };
}

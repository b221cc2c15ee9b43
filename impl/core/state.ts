/**
 * The replica's whole state, one plain immutable value per replica: the acceptor's promises,
 * votes and lease grant (Voting.tla's maxBal and votes, per slot), the learner's chosen log,
 * executed service state, configurations, snapshot and state transfer, the role (follower,
 * candidate or leader) with its phase 1 / phase 2 bookkeeping and lease belief, the election
 * timer, and the divergence monitor.
 *
 * Field names follow the specs so that proofs/ can read them directly: `acceptor.maxBal`,
 * `acceptor.votes`, `learner.log` (chosen), `learner.executedUpTo`, `role.leaseUntil`. `step` never
 * mutates a state it is given; every update builds a new value, sharing what did not change.
 */
import type { Application } from "../../spec/state-machine.ts";
import { fmix32 } from "../../spec/hash.ts";
import { featureLevelMax, serviceOf, type Service, type ServiceState } from "../../spec/service.ts";
import { ballotZero, type Ballot } from "./ballot.ts";
import type { Config } from "./config.ts";
import { initialConfiguration, type ConfigChange, type Configuration } from "./configuration.ts";
import type { ClientRequest, ReplicaId } from "./events.ts";
import type { HeldValue } from "./at-rest.ts";
import { emptyPersistentMap, type PersistentMap } from "../../spec/persistent-map.ts";
import { storeAtRestFor, type StoreAtRest, type StoredEntry } from "./store-at-rest.ts";
import type { Checkpoint, Command, Value } from "./messages.ts";
import type { ContentDigestLanes, SnapshotInfo } from "./snapshot.ts";
import type { SnapshotDecoding } from "./snapshot-decoder.ts";
import { emptySlotMap, type SlotMap } from "./slot-map.ts";

/**
 * What never changes during a replica's life: configuration, application, initial membership. Shared by every state.
 */
export interface ReplicaContext<S, I, O> {
  readonly config: Config;
  readonly app: Application<S, I, O>;
  /** The service spec over `app` (spec/service.ts): execution goes through its `apply`. */
  readonly service: Service<S, I, O>;
  /** The initial members (the voters of slot 1), sorted ascending. Later membership is in `learner.configs`. */
  readonly members: readonly ReplicaId[];
  /** The configuration in force from slot 1. */
  readonly initial: Configuration;
  /** The application's values named by the votes that wrote them (`storeAtRestCharsMin`), or null: off. */
  readonly storeAtRest: StoreAtRest<S, I> | null;
}

/** An acceptor's vote in one slot: Lamport's (maxVBal, maxVal) for that slot's instance. */
export interface Vote<I> {
  readonly ballot: Ballot;
  readonly value: Value<I>;
}

/** A vote as the acceptor holds it: its value may be at rest at an executed slot (impl/core/at-rest.ts). */
export interface HeldVote<I> {
  readonly ballot: Ballot;
  readonly value: HeldValue<I>;
}

/**
 * The acceptor (Phase1b, Phase2b and lease grants). `maxBal` and `votes` are durable;
 * the grant and the restart wait are not (they are clock-relative, and a restart waits instead).
 */
export interface AcceptorState<I> {
  /** maxBal (Voting.tla): the highest ballot promised; `ballotZero` before any. Durable. */
  readonly maxBal: Ballot;
  /**
   * votes, per slot: this acceptor's latest vote (the highest ballot it voted in there). Durable.
   * At an executed slot the value may be at rest (`valuesAtRest`, impl/core/at-rest.ts).
   */
  readonly votes: SlotMap<HeldVote<I>>;
  /** The ballot the current lease grant is for (`ballotZero`: none). */
  readonly grantTo: Ballot;
  /** Own clock reading until which the grant holds: no other ballot is helped before it (rule L1). */
  readonly grantUntil: number;
  /** After a restart: own clock reading before which no ballot but `maxBal` is helped (rule L4). */
  readonly noPromiseUntil: number;
  /**
   * Votes at slots <= truncatedUpTo are forgotten: those slots are chosen and executed into this
   * replica's durable snapshot (proofs/truncation.md). 0 before any snapshot. Durable: the
   * snapshot record's slot.
   */
  readonly truncatedUpTo: number;
  /**
   * The votes this replica cast as leader, whose Persist asked to be told when durable (`notify`):
   * in `ballot`, its votes at slots above `durableUpTo` may not be on disk yet, so they count in no
   * quorum and no value rests on them (impl/core/leader.ts, `ownVoteDurable`). Null when none may
   * be pending. Not durable itself: every vote `Recover` rebuilds is on disk.
   */
  readonly ownVotes: OwnVotes | null;
}

/** The leader's own votes in `ballot` whose durability it awaits: those at slots above `durableUpTo`. */
export interface OwnVotes {
  readonly ballot: Ballot;
  readonly durableUpTo: number;
}

/**
 * A state transfer in progress: the chunks of one peer snapshot received so far, each read into
 * the running content digest and the streaming decoding of the snapshot's JSON as it came, and
 * not kept (the replica never holds the serialized snapshot whole). Never installed before it is
 * complete and its digests match; replaced by a transfer of a newer snapshot; dropped once the
 * replica has executed past its slot. Not durable: a restart starts the transfer over.
 */
export interface Transfer {
  /** Whom the next chunk is asked from. */
  readonly from: ReplicaId;
  readonly slot: number;
  readonly digest: string;
  readonly contentDigest: string;
  readonly totalBytes: number;
  /** Bytes received, in order: [0, received) of the serialized snapshot. */
  readonly received: number;
  /** `ContentDigest`'s lanes over those bytes (impl/core/snapshot.ts). */
  readonly digestLanes: ContentDigestLanes;
  /** Those bytes' JSON, decoded so far (impl/core/snapshot-decoder.ts). */
  readonly decoding: SnapshotDecoding;
  /** Clock reading of the last SnapshotRequest (retransmission of the same offset). */
  readonly requestedAt: number;
  /** Clock reading of the last chunk that made progress (a silent source is abandoned). */
  readonly progressAt: number;
  /**
   * Taking back the chunks a driver kept across a restart (`Recover`'s `kept`, then `KeptChunks`):
   * nothing is asked of the source until that ends (impl/core/transfer.ts, `takeKept`).
   */
  readonly resuming?: true;
}

/** The learner: chosen log, commit index, in-order execution through the service spec. */
export interface LearnerState<S, I, O> {
  /**
   * chosen values this replica knows, by slot (may have gaps above `executedUpTo`). Durable. At an
   * executed slot the value may be at rest in this replica's vote record (`valuesAtRest`).
   */
  readonly log: SlotMap<HeldValue<I>>;
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
  /**
   * Bytes of values (`plainBytes`) executed since the last snapshot slot (`snapshotDue`). A function
   * of the chosen log: every replica counts the same at every slot.
   */
  readonly bytesSinceSnapshot: number;
  /**
   * Commands executed since the last snapshot slot (`snapshotDue`, `snapshotIntervalCommands`; `commandCount`).
   * A function of the chosen log, as `bytesSinceSnapshot` is; 0 throughout without the bound.
   */
  readonly commandsSinceSnapshot: number;
  /**
   * The configurations governing slots > executedUpTo, ascending by epoch: the first governs
   * executedUpTo + 1, later ones are pending (chosen, governing from their `governsFrom`). Part of
   * the replicated state: derived from the chosen log (and snapshots) alone.
   */
  readonly configs: readonly Configuration[];
  /** The latest snapshot this replica persisted (taken or installed), or null. Served to lagging peers. */
  readonly snapshot: SnapshotInfo | null;
  /**
   * The snapshot before it, still served, so that a transfer that started before the latest
   * snapshot was taken can finish. The log is kept above its slot.
   */
  readonly priorSnapshot: SnapshotInfo | null;
  /**
   * The snapshot a peer's transfer fetches (asked for past its first byte), still served while it
   * is asked for and `servedSnapshotKeepMs` after, even once newer snapshots replaced it: under
   * sustained writes snapshots follow one another faster than a large one is sent, and a transfer
   * that must start over with the latest might never finish (impl/core/transfer.ts). Not durable.
   */
  readonly servedSnapshot: SnapshotInfo | null;
  /** Clock reading of the last request for `servedSnapshot`'s chunks (within a heartbeat interval). */
  readonly servedAt: number;
  /** The log holds no slot <= logTruncatedUpTo (truncated; those slots are in the snapshot). */
  readonly logTruncatedUpTo: number;
  /** A state transfer in progress, or null. */
  readonly transfer: Transfer | null;
  /**
   * The store's large values named by the durable vote records that wrote them, by key (rule V1's
   * bookkeeping, `storeAtRestCharsMin`, proofs/store-at-rest.md): each names the value the store
   * holds under its key now. Empty when off. Not durable: `Recover` names them again from the votes.
   */
  readonly origins: PersistentMap<StoredEntry>;
  /**
   * The store values at rest asked of the driver (`ReadEntries`) and not yet answered (rule V4):
   * asked once each, whoever waits for them. Empty when off. Not durable: a restart asks again.
   */
  readonly reading: readonly StoredEntry[];
  /** True while execution waits for store values at rest (rule V4): a tick executes nothing until they come. */
  readonly executionWaits: boolean;
  /**
   * Reads to answer outside the log (by lease, or stale) that read a value at rest, in arrival order:
   * once it is back (`EntriesRead`) each is served again as if it arrived then (rule V4).
   */
  readonly waitingReads: readonly ClientRequest<I>[];
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
  /** Peers' checkpoints above our executed prefix, to compare once we get there (at most one per peer). */
  readonly peerCheckpoints: readonly PeerCheckpoint[];
  /**
   * Per peer, the latest of its checkpoints that this replica could not compare with its own of the
   * same slot because the two digests are of different formats (monitor.ts); a peer leaves the list
   * once one of its checkpoints is compared, or once the entry is older than every checkpoint kept.
   * What an operator sees during an upgrade window.
   */
  readonly uncompared: readonly UncomparedCheckpoint[];
  /** How many peers' checkpoints were not compared for that reason, in all (a running count). */
  readonly uncomparedCount: number;
}

/**
 * A peer's checkpoint this replica could not compare with its own at `slot`: the digests are of
 * different formats (spec/hash.ts `digestFormat`; "" is the unnamed format of earlier versions),
 * and digests of two formats differ whether or not the states do.
 */
export interface UncomparedCheckpoint {
  readonly replica: ReplicaId;
  readonly slot: number;
  /** The format of this replica's digest at `slot`. */
  readonly ownFormat: string;
  /** The format of the peer's digest. */
  readonly peerFormat: string;
}

/** A checkpoint a peer reported. */
export interface PeerCheckpoint {
  readonly replica: ReplicaId;
  readonly checkpoint: Checkpoint;
}

/** How many own checkpoints the monitor keeps for comparison with late peers. */
export const checkpointsKept = 8;

/** A follower: votes, learns and executes; answers writes with a redirect. */
export interface Follower {
  readonly _tag: "follower";
}

/** Per peer index: echoed send time of the latest lease grant for the current ballot (-Infinity: none). */
export type GrantTimes = readonly number[];

/**
 * What a candidate or leader knows of phase 1 of its ballot, per peer. Peers are every replica of
 * the configurations the replica holds (voters and learners, self included), sorted; a peer's
 * index in `peers` is its bit in `promised` and its position in the per-peer arrays. `peers`
 * changes only when the configurations do, and then every per-peer array is carried over by id.
 */
export interface PhaseOneOf<I> {
  readonly ballot: Ballot;
  /** Phase 1 was started for every slot >= fromSlot (the first unexecuted slot at the campaign). */
  readonly fromSlot: number;
  readonly peers: readonly ReplicaId[];
  /** Bit per peer index: who promised `ballot` (self included). */
  readonly promised: number;
  /**
   * Per peer index: the first slot its Promise reports every vote of (the Promise's fromSlot, or
   * above its truncation point); +Infinity without a Promise. A slot below it is not covered by
   * that Promise: its votes there may be forgotten (proofs/truncation.md).
   */
  readonly coversFrom: readonly number[];
  /** Per slot: the highest-ballot vote the Promises reported (Paxos.tla's ShowsSafeAt witness). */
  readonly revealed: SlotMap<Vote<I>>;
  /** Clock reading of the last Prepare sent (retransmission). */
  readonly prepareSentAt: number;
  readonly grantSentAt: GrantTimes;
}

/** A candidate in phase 1 of its `ballot`, collecting Promises. */
export interface Candidate<I> extends PhaseOneOf<I> {
  readonly _tag: "candidate";
  /**
   * How long after `prepareSentAt` the Prepare is sent again to the voters that have not promised,
   * in milliseconds of its clock: one heartbeat interval at first, then, with
   * `prepareResendBackoff`, doubled at each resend up to `electionTimeoutMsMax` (impl/core/replica.ts,
   * `resendPrepare`). Each resend is answered with the whole Promise again, megabytes when the
   * slots above the candidate's point hold large values.
   */
  readonly prepareResendAfterMs: number;
}

/** A proposal in the phase 2 pipeline. */
export interface Proposal<I> {
  readonly value: Value<I>;
  /** The voters of the configuration that governs its slot: only their votes count. */
  readonly voters: readonly ReplicaId[];
  /**
   * Bit per index in `voters`: whose durable vote for it in the leader's ballot the leader knows of
   * (a follower's Accepted, sent once its vote is durable; the leader's own once `VoteDurable` says so).
   */
  readonly acks: number;
  /** Per command of a batch: the driver's request id to answer, or -1 (re-proposal, or another replica's request). */
  readonly requestIds: readonly number[];
  /** Clock reading of the last Accept sent for it (retransmission). */
  readonly sentAt: number;
  /**
   * How long after `sentAt` the Accept is sent again to the voters that have not voted, in
   * milliseconds of the leader's clock: one heartbeat interval at first, doubled at each resend
   * up to `acceptResendIntervalsMax` intervals (impl/core/leader.ts, `resendAccepts`).
   */
  readonly resendAfterMs: number;
  /** True once a quorum voted: the value is chosen and in the log. */
  readonly chosen: boolean;
}

/**
 * Client commands waiting for a pipeline slot, grouped in batches of at most `batchCommandsMax`
 * commands and `batchBytesMax` bytes (a single larger command goes alone); or one membership change
 * (`change` set, no commands), which always fills a slot of its own; or up to `batchCommandsMax`
 * open-session requests (`opens`), one `open` value.
 */
export interface PendingBatch<I> {
  /**
   * Its requests, newest first, each sharing the ones before it: a submit adds one and copies
   * nothing (a batch of n commands no longer costs n copies of its lists). `commandsOf` and
   * `requestIdsOf` give them oldest first.
   */
  readonly newest: QueuedRequest<I> | null;
  /** Commands in the batch (0 for a membership change; the sessions to open for `opens`). */
  readonly count: number;
  /** The commands' estimated size (`plainBytes`), in bytes. */
  readonly bytes: number;
  readonly change?: ConfigChange | undefined;
  /** A batch of open-session requests (feature level 3): `count` of them, no commands, one `open` value. */
  readonly opens?: boolean | undefined;
}

/** One request of a pending batch: a command, or (`command` null) the batch's membership change. */
export interface QueuedRequest<I> {
  readonly requestId: number;
  readonly command: Command<I> | null;
  readonly earlier: QueuedRequest<I> | null;
}

/** The commands of `batch`, oldest first. */
export function commandsOf<I>(batch: PendingBatch<I>): Command<I>[] {
  const out = new Array<Command<I>>(batch.count);
  let i = batch.count;
  for (let q = batch.newest; q !== null; q = q.earlier) if (q.command !== null) out[--i] = q.command;
  return out;
}

/** The request ids of `batch`, oldest first. */
export function requestIdsOf<I>(batch: PendingBatch<I>): number[] {
  const out: number[] = [];
  for (let q = batch.newest; q !== null; q = q.earlier) out.push(q.requestId);
  return out.reverse();
}

/**
 * A leader of `ballot`: phase 1 is done for the slots it proposes in; it runs phase 2 per slot and
 * holds (or renews) a lease. Phase 1 goes on for configurations it learns of later (a new voter
 * must promise before a slot it governs is proposed), so the leader keeps the phase 1 fields.
 */
export interface Leader<I> extends PhaseOneOf<I> {
  readonly _tag: "leader";
  /**
   * The highest slot phase 1 revealed a vote for (or fromSlot - 1): lease reads wait until it is executed (rule L3).
   */
  readonly phase1MaxSlot: number;
  /** The next slot to propose. */
  readonly nextSlot: number;
  /** Slot of inflight[0]. The pipeline holds slots inflightBase .. nextSlot - 1. */
  readonly inflightBase: number;
  readonly inflight: readonly Proposal<I>[];
  readonly pending: readonly PendingBatch<I>[];
  /** Commands in `pending`. */
  readonly pendingCount: number;
  /** When idle, the leader proposes no-ops up to this slot, so that a chosen change governs promptly. */
  readonly fillUpTo: number;
  /** Per peer index: the executed prefix the peer last reported (-1: unknown); learners are promoted once caught up. */
  readonly progress: readonly number[];
  /**
   * The quorum-th most recent grant's send time, in every configuration the lease needs: the lease counts from it (rule
   * L2).
   */
  readonly leaseFrom: number;
  /** Own clock reading until which the lease holds (exclusive). Reads by lease need now < leaseUntil. */
  readonly leaseUntil: number;
  /** When the next heartbeat is due. */
  readonly heartbeatAt: number;
  /** Clock reading at election: CheckQuorum counts from here at the earliest (CheckQuorum grace). */
  readonly electedAt: number;
  /**
   * Spans of its own clock in which this leader was not stepped though its heartbeat was due
   * (check-quorum.ts): CheckQuorum does not count them; the lease does. Oldest first; only those
   * that end after CheckQuorum's origin, at most `stallsMax`.
   */
  readonly stalls: readonly Stall[];
}

/** A span [from, to] of a replica's own clock in which it was not stepped (check-quorum.ts). */
export interface Stall {
  readonly from: number;
  readonly to: number;
}

/** The role a replica plays beyond acceptor and learner. */
export type Role<I> = Follower | Candidate<I> | Leader<I>;

/** Why a replica stopped serving: its digest differed from a peer's at `slot`. */
export interface Halt {
  readonly slot: number;
  readonly message: string;
}

/**
 * A replica whose removal is chosen (its id is retired in the latest configuration it holds):
 * how far it had executed, when it last made progress, whether the configuration that goes on
 * without it took over, and, once it retired, why. A retired
 * replica does nothing more; its driver stops it and never starts it again.
 */
export interface Removal {
  readonly executedUpTo: number;
  /** Clock reading when it learned of its removal or last executed a slot since. */
  readonly progressAt: number;
  /**
   * A voter of the configuration that goes on without it said (a heartbeat) that every slot before
   * its removal governs is chosen: it knows them all, and the others can learn them from it.
   */
  readonly handedOver: boolean;
  /** Non-null once retired (rule `retirement`). */
  readonly retired: string | null;
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
  /** Non-null once this replica knows its removal is chosen; see `Removal`. */
  readonly removal: Removal | null;
  readonly role: Role<I>;
  readonly acceptor: AcceptorState<I>;
  readonly learner: LearnerState<S, I, O>;
  readonly election: ElectionState;
  readonly monitor: MonitorState;
  /**
   * The highest feature level every member is known to execute (the driver's `FeaturesKnown`);
   * `featureLevelMax` until a driver says otherwise. Not durable: a driver says it again after
   * every `Recover`.
   */
  readonly featuresKnown: number;
}

/** No value named by its vote (shared; maps are immutable). */
export const noOrigins: PersistentMap<StoredEntry> = emptyPersistentMap();

/** Shared follower role value. */
export const follower: Follower = { _tag: "follower" };

/** The context for `config` and `app`. */
export function makeContext<S, I, O>(config: Config, app: Application<S, I, O>): ReplicaContext<S, I, O> {
  const members = [...config.members].sort((a, b) => a - b);
  return {
    config,
    app,
    service: serviceOf(app),
    members,
    initial: initialConfiguration(members),
    storeAtRest: config.valuesAtRest && config.storeAtRestCharsMin > 0 ? storeAtRestFor(app) : null,
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

/** A divergence monitor that has output nothing, taken no checkpoint and heard none. */
export const emptyMonitor: MonitorState = {
  outputDigestA: 0,
  outputDigestB: 0,
  checkpoints: [],
  peerCheckpoints: [],
  uncompared: [],
  uncomparedCount: 0,
};

/** A state with nothing learned, promised or voted: what `Recover` starts from before replaying records. */
export function freshState<S, I, O>(ctx: ReplicaContext<S, I, O>): ReplicaState<S, I, O> {
  return {
    ctx,
    started: false,
    now: Number.NEGATIVE_INFINITY,
    halted: null,
    removal: null,
    role: follower,
    acceptor: {
      maxBal: ballotZero,
      votes: emptySlotMap(),
      grantTo: ballotZero,
      grantUntil: Number.NEGATIVE_INFINITY,
      noPromiseUntil: Number.NEGATIVE_INFINITY,
      truncatedUpTo: 0,
      ownVotes: null,
    },
    learner: {
      log: emptySlotMap(),
      commitIndex: 0,
      executedUpTo: 0,
      service: ctx.service.start,
      leaderHint: null,
      catchUpSentAt: Number.NEGATIVE_INFINITY,
      bytesSinceSnapshot: 0,
      commandsSinceSnapshot: 0,
      configs: [ctx.initial],
      snapshot: null,
      priorSnapshot: null,
      servedSnapshot: null,
      servedAt: Number.NEGATIVE_INFINITY,
      logTruncatedUpTo: 0,
      transfer: null,
      origins: noOrigins,
      reading: [],
      executionWaits: false,
      waitingReads: [],
    },
    election: {
      prng: fmix32(ctx.config.seed ^ Math.imul(ctx.config.self, 0x9e3779b9)),
      heardAt: Number.POSITIVE_INFINITY,
      timeoutMs: ctx.config.electionTimeoutMsMax,
      roundSeen: 0,
    },
    monitor: emptyMonitor,
    featuresKnown: featureLevelMax,
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
    removal: s.removal,
    role: s.role,
    acceptor: s.acceptor,
    learner: s.learner,
    election: s.election,
    monitor: s.monitor,
    featuresKnown: s.featuresKnown,
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
  return {
    maxBal: a.maxBal,
    votes: a.votes,
    grantTo: a.grantTo,
    grantUntil: a.grantUntil,
    noPromiseUntil: a.noPromiseUntil,
    truncatedUpTo: a.truncatedUpTo,
    ownVotes: a.ownVotes,
  };
}

export function copyLearner<S, I, O>(l: LearnerState<S, I, O>): Draft<LearnerState<S, I, O>> {
  return {
    log: l.log,
    commitIndex: l.commitIndex,
    executedUpTo: l.executedUpTo,
    service: l.service,
    leaderHint: l.leaderHint,
    catchUpSentAt: l.catchUpSentAt,
    bytesSinceSnapshot: l.bytesSinceSnapshot,
    commandsSinceSnapshot: l.commandsSinceSnapshot,
    configs: l.configs,
    snapshot: l.snapshot,
    priorSnapshot: l.priorSnapshot,
    servedSnapshot: l.servedSnapshot,
    servedAt: l.servedAt,
    logTruncatedUpTo: l.logTruncatedUpTo,
    transfer: l.transfer,
    origins: l.origins,
    reading: l.reading,
    executionWaits: l.executionWaits,
    waitingReads: l.waitingReads,
  };
}

export function copyElection(e: ElectionState): Draft<ElectionState> {
  return { prng: e.prng, heardAt: e.heardAt, timeoutMs: e.timeoutMs, roundSeen: e.roundSeen };
}

export function copyMonitor(m: MonitorState): Draft<MonitorState> {
  return {
    outputDigestA: m.outputDigestA,
    outputDigestB: m.outputDigestB,
    checkpoints: m.checkpoints,
    peerCheckpoints: m.peerCheckpoints,
    uncompared: m.uncompared,
    uncomparedCount: m.uncomparedCount,
  };
}

export function copyCandidate<I>(c: Candidate<I>): Draft<Candidate<I>> {
  return {
    _tag: "candidate",
    ballot: c.ballot,
    fromSlot: c.fromSlot,
    peers: c.peers,
    promised: c.promised,
    coversFrom: c.coversFrom,
    revealed: c.revealed,
    prepareSentAt: c.prepareSentAt,
    prepareResendAfterMs: c.prepareResendAfterMs,
    grantSentAt: c.grantSentAt,
  };
}

export function copyLeader<I>(l: Leader<I>): Draft<Leader<I>> {
  return {
    _tag: "leader",
    ballot: l.ballot,
    fromSlot: l.fromSlot,
    peers: l.peers,
    promised: l.promised,
    coversFrom: l.coversFrom,
    revealed: l.revealed,
    prepareSentAt: l.prepareSentAt,
    grantSentAt: l.grantSentAt,
    phase1MaxSlot: l.phase1MaxSlot,
    nextSlot: l.nextSlot,
    inflightBase: l.inflightBase,
    inflight: l.inflight,
    pending: l.pending,
    pendingCount: l.pendingCount,
    fillUpTo: l.fillUpTo,
    progress: l.progress,
    leaseFrom: l.leaseFrom,
    leaseUntil: l.leaseUntil,
    heartbeatAt: l.heartbeatAt,
    electedAt: l.electedAt,
    stalls: l.stalls,
  };
}

export function copyProposal<I>(p: Proposal<I>): Draft<Proposal<I>> {
  return {
    value: p.value,
    voters: p.voters,
    acks: p.acks,
    requestIds: p.requestIds,
    sentAt: p.sentAt,
    resendAfterMs: p.resendAfterMs,
    chosen: p.chosen,
  };
}

/**
 * What the runtime shows about the replica core: a small read-only view (role, leader, ballot,
 * lease, executed slot) computed from the core's state by an adapter, so that the status page,
 * metrics and logs never reach into the core's internals themselves. Pure data; no decisions
 * are made from it.
 */
import type { Ballot, ReplicaId } from "../core/index.ts";

/** The core, as the status page and metrics see it. */
export interface CoreView {
  readonly role: "starting" | "follower" | "candidate" | "leader" | "halted";
  /** Who this replica believes leads (itself when leader), or null. */
  readonly leader: ReplicaId | null;
  /** The ballot this replica leads or campaigns in, as text, or null. */
  readonly ballot: string | null;
  /** The highest ballot this replica promised (maxBal), as text, for display only. */
  readonly promised: string;
  /**
   * The same ballot, field by field: what decisions read (its round for a gauge, its owner for
   * the step-down cause), never the displayed text.
   */
  readonly promisedBallot: Ballot;
  /** Own clock reading until which a leader's lease holds, or null (not leader). */
  readonly leaseUntil: number | null;
  /** Slots 1..executedSlot are executed. */
  readonly executedSlot: number;
  /**
   * Fingerprint of the executed state after `executedSlot`: the application's digest, the number
   * of requests executed and the running digest of every output produced. Replicas that executed
   * the same slots show the same digest (the divergence monitor compares it at checkpoints).
   */
  readonly digest: string;
  /** Every slot up to it is known chosen. */
  readonly commitIndex: number;
  /** Client commands a leader holds before proposing them. */
  readonly pendingCommands: number;
  /** Slots a leader has proposed and not yet seen chosen. */
  readonly inflightSlots: number;
  /** Why the replica stopped serving (divergence), or null. */
  readonly halted: string | null;
  /**
   * Peers whose latest checkpoint this replica could not compare with its own, the two digests
   * being of different formats (an upgrade window: impl/core/monitor.ts); a peer leaves the list
   * once one of its checkpoints is compared.
   */
  readonly uncompared: readonly UncomparedView[];
  /** Peers' checkpoints not compared for that reason since the replica started. */
  readonly uncomparedCount: number;
  readonly membership: MembershipView;
  readonly sessions: SessionsView;
}

/** The feature level executed and the session table's size (spec/service.ts). */
export interface SessionsView {
  /** The feature level in force after `executedSlot` (1 until a raise is executed). */
  readonly featureLevel: number;
  /** The highest feature level this version executes. */
  readonly featureLevelMax: number;
  /** The level a leader raises the log to: the core configuration's `featureLevel`. */
  readonly featureLevelTarget: number;
  /**
   * The least feature level the members named in their handshakes, as this replica counts them
   * (impl/runtime/feature-gate.ts): a leader raises the log to `featureLevelTarget` only once this
   * reaches it.
   */
  readonly featureLevelKnown: number;
  /** Client sessions the replicated state keeps. */
  readonly count: number;
  /** Sessions evicted by the bound since the level was raised (the same count on every replica at a slot). */
  readonly evicted: number;
}

/** A peer's checkpoint not compared: its slot and the two digest formats ("" the unnamed one). */
export interface UncomparedView {
  readonly replica: ReplicaId;
  readonly slot: number;
  readonly ownFormat: string;
  readonly peerFormat: string;
}

/** A configuration: who votes, who only learns, and from which slot on. */
export interface ConfigurationView {
  /** The slot at which the change that made it was chosen; 0 for the initial configuration. */
  readonly epoch: number;
  /** The first slot it governs. */
  readonly governsFrom: number;
  readonly voters: readonly ReplicaId[];
  readonly learners: readonly ReplicaId[];
  /** Every replica removed so far (never added again). */
  readonly retired: readonly ReplicaId[];
}

/** The membership as this replica knows it from the chosen log it executed. */
export interface MembershipView {
  /** The cluster's initial voters (every replica is started with the same list). */
  readonly initialMembers: readonly ReplicaId[];
  /** A configuration chosen at slot i governs from slot i + alpha. */
  readonly alpha: number;
  /** The configuration governing the next slot to execute. */
  readonly inForce: ConfigurationView;
  /** Chosen configurations that govern later slots, ascending. */
  readonly pending: readonly ConfigurationView[];
  /** This replica's place in the latest configuration it knows. */
  readonly self: "voter" | "learner" | "none";
  /** Started to join a running cluster (not one of the initial members). */
  readonly joining: boolean;
  /** Why this replica retired (its removal is chosen and no slot it has yet to execute needs it), or null. */
  readonly retired: string | null;
  /** Where the members added through the log listen (peer and client addresses, as the change carried them). */
  readonly addresses: ReadonlyMap<ReplicaId, { readonly peer: string; readonly http: string | null }>;
  /** A state transfer in progress: a peer's snapshot at `slot`, `receivedBytes` of `totalBytes` so far. */
  readonly transfer: {
    readonly from: ReplicaId;
    readonly slot: number;
    readonly receivedBytes: number;
    readonly totalBytes: number;
  } | null;
  /** Slot of the latest snapshot this replica holds (taken or installed), or null. */
  readonly snapshotSlot: number | null;
  /** A leader's knowledge of each peer's executed prefix (from acknowledgements); empty elsewhere. */
  readonly progress: ReadonlyMap<ReplicaId, number>;
}

/** What the metrics compare a batch's state on with the previous one's. */
export type BatchMetricsView = Pick<
  CoreView,
  "role" | "leader" | "ballot" | "promisedBallot" | "leaseUntil" | "executedSlot" | "uncompared" | "uncomparedCount"
>;

/**
 * What every batch is compared on (metrics, the log of role changes): the few fields of a
 * {@link CoreView} that cost nothing to read, and the identity of what the membership is made of
 * (the core's state is persistent: a configuration or removal that changed is a new object).
 */
export interface BatchFacts extends BatchMetricsView {
  readonly membershipOf: readonly unknown[];
}

/** Computes a {@link CoreView} from a core state, and notes peer progress from messages. */
export interface CoreAdapter<S, M> {
  view(state: S): CoreView;
  /** The {@link BatchFacts} of `state`: what `view` would say of them, without building the view. */
  facts(state: S): BatchFacts;
  /** The executed slot a peer's `message` shows (at least), if it tells (for lag). */
  peerExecutedSlot(message: M): number | undefined;
  /** A short name of the message's type, for metrics labels. */
  messageType(message: M): string;
}

/**
 * The replica's whole interface with the world, as data: the events `step` consumes and the
 * effects it returns. The driver (the simulated world in refinement-tests/, or a real process
 * in impl/runtime/) feeds events and carries out effects in order.
 *
 * Contract (as in etcd-io/raft's doc.go: persist, then send, then apply):
 * - Every event carries `now`, the replica's own clock reading (milliseconds, monotonic) at
 *   the moment the event is handled. A lease is always judged against this fresh reading.
 * - Effects are ordered. A `Persist` must be durable before any later effect of the same
 *   step, or of any later step, is carried out: no promise or vote leaves before it is on
 *   disk. Drivers may group commit several Persist effects with one fsync as long as that
 *   order holds. The one exception is a `Persist` with `notify` (the leader's own vote): it
 *   holds back nothing, and the driver tells the core with `VoteDurable` once it is durable.
 * - There are no timers: the driver sends `Tick` events (every few milliseconds) and the
 *   replica decides from `now` what is due.
 *
 * Generic over the message type M, the durable record type R, and the application's input
 * and output types I and O.
 */
import type { Ballot } from "./ballot.ts";
import type { ConfigChange } from "./configuration.ts";
import type { StoredEntry } from "./store-at-rest.ts";

/** A replica's identity: a small positive integer, unique in the cluster. */
export type ReplicaId = number;

/** How fresh a read must be. */
export type Consistency =
  /** Reflects every write acknowledged before the read arrived (by lease, else through the log). */
  | "linearizable"
  /** The answering replica's local state; possibly old. Never waits for a leader. */
  | "stale";

/** A client request as the replica sees it. `requestId` is the driver's handle for the reply. */
export interface ClientRequest<I> {
  readonly _tag: "ClientRequest";
  readonly now: number;
  readonly requestId: number;
  /** Session for exactly-once; absent for one-shot requests (reads, or writes without retry). */
  readonly clientId?: string | undefined;
  readonly seq?: number | undefined;
  readonly input: I;
  readonly consistency: Consistency;
}

/**
 * An operator asks for a membership change (add a learner, promote it, remove or replace a
 * replica). Only the leader serves it: the change goes through the log, and the reply comes once
 * the slot holding it is executed (`reconfigured`, or `refused` when it did not fit).
 */
export interface ReconfigureRequest {
  readonly _tag: "Reconfigure";
  readonly now: number;
  readonly requestId: number;
  readonly change: ConfigChange;
}

/**
 * A client asks the service to open a session (feature level 3, spec/service.ts `openSession`;
 * Ongaro's thesis, section 6.3, RegisterClient). Only the leader serves it: an open-session value
 * goes through the log, and the reply (`session-opened`, with the id every replica derived alike)
 * comes once its slot is executed.
 */
export interface OpenSessionRequest {
  readonly _tag: "OpenSession";
  readonly now: number;
  readonly requestId: number;
}

/** Everything that can happen to a replica. */
export type Event<M, R, I> =
  | { readonly _tag: "Receive"; readonly now: number; readonly from: ReplicaId; readonly message: M }
  | { readonly _tag: "Tick"; readonly now: number }
  | ClientRequest<I>
  | ReconfigureRequest
  | OpenSessionRequest
  /**
   * The first event after a (re)start: the durable records, in the order they were persisted;
   * with `kept`, a state transfer the driver kept across the restart, which the core resumes from
   * its chunks, handed over after it by `KeptChunks` events (impl/core/transfer.ts, `resumeKept`).
   */
  | { readonly _tag: "Recover"; readonly now: number; readonly records: readonly R[]; readonly kept?: KeptTransfer }
  | KeptChunks
  | FeaturesKnown
  | EntriesRead
  /**
   * The notice a `Persist` with `notify` asks for: that record, and every record persisted before
   * it, is durable. Fed once per such Persist, in the order persisted; lost only with the process.
   */
  | VoteDurable;

/**
 * A vote of this replica, named by its slot and ballot: the one whose durability a `Persist` with
 * `notify` asks to be told of (the leader's own vote, impl/core/leader.ts).
 */
export interface VoteRef {
  readonly slot: number;
  readonly ballot: Ballot;
}

/**
 * The driver's count of the feature levels the members execute: every replica of the latest
 * configurations (in force and pending, voters and learners, this one included) said in its peer
 * handshake that it executes every level up to `level`, at least. A leader raises the log to its
 * configured `featureLevel` only once `level` reaches it (`featuresDue`): a member that does not
 * know a level would stop at its raise. Until a driver says, the core takes every member to know
 * every level it executes (`featureLevelMax`), as the world's replicas, all of one version, do.
 */
export interface FeaturesKnown {
  readonly _tag: "FeaturesKnown";
  readonly now: number;
  readonly level: number;
}

/** The leader's own vote at `slot` in `ballot` is durable (see `Persist.notify`). */
export interface VoteDurable extends VoteRef {
  readonly _tag: "VoteDurable";
  readonly now: number;
}

/**
 * Why the core asks for store values at rest (`ReadEntries`): a command of the next slot to execute
 * reads them (a get, compare-and-swap or append), or a read answered outside the log (by lease, or
 * stale) reads one. A snapshot never asks: it leaves holes, filled where it is written (rule V5).
 */
export type ReadEntriesPurpose = "command" | "read";

/**
 * The effect `ReadEntries` (rule V4, proofs/store-at-rest.md): read back from this replica's vote
 * records the values of the store `entries` name (each by rule V2, `entryOfVote`: only the value
 * that record's command wrote), and feed them back with the event {@link EntriesRead}. Only a
 * replica configured with `storeAtRestCharsMin` emits one. It holds nothing back: later effects of
 * the step are carried out at once; the core waits only where it needs the values.
 */
export interface ReadEntries {
  readonly _tag: "ReadEntries";
  readonly entries: readonly StoredEntry[];
  readonly purpose: ReadEntriesPurpose;
}

/**
 * The driver's answer to a `ReadEntries`: `values[i]` is the value `entries[i]` names, read back
 * from the vote record (the entries as the effect gave them, in its order). The core checks each
 * value against its entry again (length and entry hashes) before it puts it back in memory.
 */
export interface EntriesRead {
  readonly _tag: "EntriesRead";
  readonly now: number;
  readonly entries: readonly StoredEntry[];
  readonly values: readonly string[];
}

/** The answer to one client request. */
export type ClientResult<O> =
  /** Executed (or answered from the session table for a retry); `output` is the application's. */
  | { readonly _tag: "ok"; readonly output: O }
  /** This replica is not the leader; `leader` is its best guess, or null when it knows none. */
  | { readonly _tag: "redirect"; readonly leader: ReplicaId | null }
  /** An older request than the client's last executed one; its output is no longer kept. */
  | { readonly _tag: "stale-seq"; readonly lastSeq: number }
  /**
   * The client's last executed request had this sequence number but another command: this one
   * was not executed and never will be under this number. Retrying will not help; a new command
   * needs a new number.
   */
  | { readonly _tag: "seq-reused"; readonly seq: number }
  /**
   * Feature level 2 (spec/service.ts): the client has no session (evicted, or never opened) and
   * this request does not open one (its number is above 1). It was not executed and never will be;
   * the client opens a new session under a new client id.
   */
  | { readonly _tag: "session-expired" }
  /**
   * Feature level 3: the service opened the session `clientId` (an `OpenedSessionId`,
   * `session <n>`); the client numbers its requests under it 1, 2, 3, ...
   */
  | { readonly _tag: "session-opened"; readonly clientId: string }
  /**
   * Not answered. `outcomeUnknown` is true when the request may still be executed (it was
   * proposed, then leadership was lost): the client must retry with the same sequence number.
   */
  | { readonly _tag: "unavailable"; readonly reason: string; readonly outcomeUnknown: boolean }
  /**
   * A membership change was chosen at slot `epoch` and applied: the configuration below governs
   * every slot from `governsFrom` on.
   */
  | {
      readonly _tag: "reconfigured";
      readonly epoch: number;
      readonly governsFrom: number;
      readonly voters: readonly ReplicaId[];
      readonly learners: readonly ReplicaId[];
    }
  /**
   * A membership change that does not fit the configuration (now, or when its slot was executed). Retrying will not
   * help.
   */
  | { readonly _tag: "refused"; readonly reason: string };

/**
 * What `step` asks the driver to do, in order. `H` is the form of a message some of whose values
 * are at rest (impl/core/at-rest.ts): a `SendStored` is a `Send` of that message once the driver
 * has read those values back from the durable records. Only a replica configured with
 * `valuesAtRest` emits one.
 */
export type Effect<M, R, O, H = never> =
  /**
   * Write `record`. Without `notify` it is a barrier: durable before any later effect is carried
   * out. With `notify` it is not: later effects need not wait for it (later records are still
   * written after it, in order), and once it is durable the driver feeds the event `VoteDurable`
   * with `notify`'s slot and ballot. Only the leader's own vote asks for this: nothing else may
   * rest on that vote until the core is told it is durable.
   */
  | { readonly _tag: "Persist"; readonly record: R; readonly notify?: VoteRef }
  | { readonly _tag: "Send"; readonly to: ReplicaId; readonly message: M }
  | { readonly _tag: "SendStored"; readonly to: ReplicaId; readonly message: H }
  | ReadEntries
  | { readonly _tag: "Reply"; readonly requestId: number; readonly result: ClientResult<O> }
  /** Replica divergence (step 6 of the recipe): the replicas whose digests differ at `slot`. */
  | {
      readonly _tag: "Alarm";
      readonly slot: number;
      readonly replicas: readonly ReplicaId[];
      readonly digests: readonly string[];
      readonly message: string;
    }
  /**
   * A state transfer refused and dropped (a chunk that is not JSON, or rule S2 at its end): the
   * driver says why (a log line, a metric); catch-up starts over. Nothing was installed.
   */
  | TransferRefusal;

/**
 * Which check refused a transfer: `json` (a chunk's text is not JSON: no later chunk can mend it),
 * `contentDigest` (the bytes' digest is not the one claimed), `state` (the decoded state is no
 * snapshot of this application, of another slot, or of another divergence digest).
 */
export type TransferCheck = "json" | "contentDigest" | "state";

/** Every `TransferCheck`, in the order a transfer meets them. */
export const transferChecks: readonly TransferCheck[] = ["json", "contentDigest", "state"];

/**
 * A state transfer a driver kept across a restart, as `Recover` describes it: whom it came from
 * and the snapshot it is of (as its sender claimed it). Its chunks follow in `KeptChunks` events.
 */
export interface KeptTransfer {
  readonly from: ReplicaId;
  readonly slot: number;
  readonly digest: string;
  readonly contentDigest: string;
  readonly totalBytes: number;
}

/**
 * A piece of the kept transfer that `Recover` described: chunks the replica took of it before the
 * restart, in order from byte `offset`; `last` when the driver kept no more. A driver feeds them
 * after the Recover, in order, each once the one before is stepped and only while the core takes
 * them (`resumingKept`), a few MiB a piece, so that a restarted replica holds one piece of them
 * at a time and no step takes long. Not trusted for being kept: each chunk is taken again and
 * checked like any chunk (impl/core/transfer.ts, `takeKept`); a piece the core does not expect
 * (out of order, after the resumption ended) is ignored.
 */
export interface KeptChunks {
  readonly _tag: "KeptChunks";
  readonly now: number;
  readonly offset: number;
  readonly chunks: readonly string[];
  readonly last: boolean;
}

/** The `TransferRefused` effect: who sent which snapshot, which check failed, at which byte, and why. */
export interface TransferRefusal {
  readonly _tag: "TransferRefused";
  readonly from: ReplicaId;
  readonly slot: number;
  readonly digest: string;
  readonly contentDigest: string;
  readonly check: TransferCheck;
  /** The byte where the check failed: where the JSON went wrong, or the snapshot's size for S2. */
  readonly offset: number;
  readonly reason: string;
}

/** The result of one step. */
export interface StepResult<S, M, R, O, H = never> {
  readonly state: S;
  readonly effects: readonly Effect<M, R, O, H>[];
}

/**
 * What the proofs see of a running system: the observation interface between a world that runs
 * replicas (the simulated cluster in refinement-tests/world/, or later a real run's event trace)
 * and the abstraction functions and invariant checkers in proofs/. The world implements it; the
 * checkers only read it, so proofs/ never imports refinement-tests/ (imports point one way:
 * README.md, "Layout") and never changes what it observes.
 *
 * One `WorldStep` is one atomic step of the world: one event handled by one replica with the
 * effects it carried out in order (flushes, sends, replies, alarms, a crash landing in the
 * middle), or one fault, or true time passing. Checks run after every step.
 */
import type {
  ClientResult,
  ConfigChange,
  Consistency,
  DurableRecord,
  Message,
  ReplicaId,
  ReplicaRules,
  ReplicaState,
} from "../impl/core/testing/index.ts";

/** One replica as the checkers see it. */
export interface ReplicaView<S, I, O> {
  readonly id: ReplicaId;
  /** Position in the sorted member list (the acceptor index of Voting). */
  readonly index: number;
  /** The replica's state, or null while it is crashed. */
  readonly state: ReplicaState<S, I, O> | null;
  /**
   * The records on its disk, in order: every record flushed, except those a later durable snapshot
   * supersedes (the world compacts a disk with `compactRecords` after each durable snapshot, as a
   * driver may). Checkers that need every record ever flushed read the Flush effects instead.
   */
  readonly durable: readonly DurableRecord<I>[];
  readonly paused: boolean;
  /** The replica's own clock reading at true time `t` (its current clock: offset and rate). */
  localAt(t: number): number;
  /** The true time at which its current clock reads `reading`. */
  trueAt(reading: number): number;
}

/** A client request as the world issued it. */
export interface RequestInfo<I> {
  readonly requestId: number;
  readonly clientId: string;
  /** The session sequence number; absent for one-shot requests (linearizable reads). */
  readonly seq: number | undefined;
  readonly input: I;
  readonly consistency: Consistency;
  /** Index of the replica it was sent to. */
  readonly replica: number;
  /** True time the client first invoked the operation (retries keep it). */
  readonly invokedAt: number;
}

/** What one replica step carried out, in order. */
export type Carried<I, O> =
  /**
   * Records made durable; `compacted`: the flush also ended a compaction decided in pieces
   * (`ReplicaTuning.compactionPieceRecords`), deleting records (`records` may then be empty).
   */
  | { readonly _tag: "Flush"; readonly records: readonly DurableRecord<I>[]; readonly compacted?: true }
  | { readonly _tag: "Send"; readonly to: ReplicaId; readonly message: Message<I> }
  | {
      readonly _tag: "Reply";
      readonly request: RequestInfo<I>;
      readonly result: ClientResult<O>;
      /** True when the reply came in the very step that received the request (answered locally). */
      readonly sameStep: boolean;
      /**
       * True when a read waited for a store value at rest and is answered in the step that has it
       * back (`EntriesRead`, rule V4 of proofs/store-at-rest.md): answered locally too, judged
       * against the lease then.
       */
      readonly waited?: boolean;
    }
  /**
   * The answer to an operator's membership change (`sameStep`: in the very step that received it,
   * the leader's rule R3 judging it at once rather than execution).
   */
  | {
      readonly _tag: "ChangeAnswer";
      readonly change: ConfigChange;
      readonly result: ClientResult<O>;
      readonly sameStep: boolean;
    }
  /** The answer to a client's open-session request (feature level 3). */
  | { readonly _tag: "OpenAnswer"; readonly result: ClientResult<O>; readonly sameStep: boolean }
  | { readonly _tag: "Alarm"; readonly message: string }
  /** The replica crashed here: unflushed records were lost and the remaining effects dropped. */
  | { readonly _tag: "Crash"; readonly lost: number };

/** One step of the world. */
export type WorldStep<S, I, O> =
  | {
      readonly kind: "event";
      readonly replica: number;
      readonly event:
        | "Receive"
        | "Tick"
        | "ClientRequest"
        | "Recover"
        | "Reconfigure"
        | "OpenSession"
        | "VoteDurable"
        | "FeaturesKnown"
        | "KeptChunks"
        | "EntriesRead";
      readonly from?: ReplicaId | undefined;
      readonly message?: Message<I> | undefined;
      readonly request?: RequestInfo<I> | undefined;
      readonly before: ReplicaState<S, I, O> | null;
      readonly after: ReplicaState<S, I, O> | null;
      readonly carried: readonly Carried<I, O>[];
    }
  /** True time advanced from `from` to `to`; nothing else changed. */
  | { readonly kind: "time"; readonly from: number; readonly to: number }
  /** A replica's clock changed rate (re-based at the current instant). */
  | { readonly kind: "clock"; readonly replica: number }
  /** A replica crashed between steps (nothing unflushed: every step ends with a flush). */
  | { readonly kind: "crash"; readonly replica: number; readonly before: ReplicaState<S, I, O> | null }
  /** A change to the network or to pausing only: no replica or clock changed. */
  | { readonly kind: "fault" };

/** The system at one instant. */
export interface SystemView<S, I, O> {
  /** True time, milliseconds. */
  readonly trueTime: number;
  readonly replicas: readonly ReplicaView<S, I, O>[];
  /** Member ids, ascending (index = acceptor index). */
  readonly members: readonly ReplicaId[];
  /** Are the links from a to b (replica indices) currently cut? */
  linkBlocked(a: number, b: number): boolean;
  /**
   * The rules the replicas' step function was assembled from (`defaultRules` unless a broken
   * variant says otherwise): rule L3, `canServeLeaseRead`, says when a replica holds a lease.
   */
  readonly rules: ReplicaRules;
}

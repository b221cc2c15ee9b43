/**
 * Every message replicas exchange, as plain data with an effect Schema each. Phase 1 and phase 2
 * are the messages of Lamport's `Paxos.tla` (Phase1a/1b/2a/2b) extended with the slot number of
 * Multi-Paxos, the leader's send time (echoed back, so the leader can count its lease without
 * bookkeeping) and the commit index; heartbeats, refusals and catch-up are the engineering around
 * them. docs/impl.md maps each message to its spec action.
 *
 * The Schemas decode at the boundary only (the network); `step` receives decoded messages and
 * never decodes. Nothing here may hold state or read a clock.
 */
import { Schema } from "effect";
import { Seq, SessionName } from "../../spec/service.ts";
import { Ballot } from "./ballot.ts";
import { ConfigChange } from "./configuration.ts";

/** A log position. Slots are numbered 1, 2, 3, ...; 0 means "none" where a count is expected. */
export const Slot = Schema.Int.pipe(Schema.positive());
const SlotOrZero = Schema.Int.pipe(Schema.nonNegative());
/** A clock reading in milliseconds (the sender's own clock). */
const ClockMs = Schema.Number.pipe(Schema.finite());

/**
 * One client command inside a slot's value. `clientId` and `seq` are the exactly-once session
 * (spec/service.ts); both are absent for a command without a session, such as a linearizable read
 * that goes through the log.
 */
export interface Command<I> {
  readonly clientId?: string | undefined;
  readonly seq?: number | undefined;
  readonly input: I;
}

/**
 * The value of one slot: a batch of client commands, a no-op with which a new leader fills a gap
 * phase 1 revealed nothing for, or a membership change (impl/core/configuration.ts). Neither a
 * no-op nor a change carries a command, so they add nothing to the service's executed sequence.
 */
export type Value<I> =
  | { readonly _tag: "noop" }
  | { readonly _tag: "batch"; readonly commands: readonly Command<I>[] }
  | { readonly _tag: "reconfig"; readonly change: ConfigChange }
  | FeaturesValue
  | OpenValue;

/**
 * A raise of the feature level (spec/service.ts `raiseFeatures`): executed at slot s, it switches
 * the execution rules of every slot after s on every replica alike. A replica that does not know
 * `level` refuses to execute it (impl/core/learner.ts) instead of executing later slots by rules it
 * lacks. It carries no command.
 */
export interface FeaturesValue {
  readonly _tag: "features";
  readonly level: number;
  /** The session table's bounds from this slot on (spec/service.ts `SessionBounds`). */
  readonly sessionsMax: number;
  readonly outputBytesMax: number;
}

/**
 * Open `count` sessions (feature level 3, spec/service.ts `openSession`), one per client that asked,
 * in order: each gets the next id of the service's count. It carries no command. Below level 3 it
 * opens nothing (every replica alike); a leader proposes it only once level 3 is executed or its own
 * raise to 3 is ahead of it in the log.
 */
export interface OpenValue {
  readonly _tag: "open";
  readonly count: number;
}

/** The most sessions one open value opens (a peer's value above it is refused at decoding). */
export const openCountMax = 1 << 16;

/** The no-op value (shared; values are immutable). */
export const noopValue: Value<never> = { _tag: "noop" };

/**
 * A vote an acceptor reports in phase 1b: it voted for `value` in `ballot` at `slot`. `V` is the
 * value's form: whole on the wire, possibly at rest in a `SendStored` effect (impl/core/at-rest.ts).
 */
export interface SlotVote<I, V = Value<I>> {
  readonly slot: number;
  readonly ballot: Ballot;
  readonly value: V;
}

/** A chosen entry sent to a replica that lacks it (`V` as in {@link SlotVote}). */
export interface ChosenEntry<I, V = Value<I>> {
  readonly slot: number;
  readonly value: V;
}

/** A divergence checkpoint: the digest of a replica's state and outputs after executing `slot`. */
export interface Checkpoint {
  readonly slot: number;
  readonly digest: string;
}

/** Phase 1a (`Phase1a(b)` in Paxos.tla): "promise me ballot `ballot` for every slot from `fromSlot` on". */
export interface PrepareMsg {
  readonly _tag: "Prepare";
  readonly ballot: Ballot;
  readonly fromSlot: number;
  /** The candidate's clock when it sent this; echoed in the Promise (lease accounting). */
  readonly sentAt: number;
}

/**
 * Phase 1b (`Phase1b(a)`): the acceptor promised `ballot` and reports its latest vote in every
 * slot >= `fromSlot` (Lamport's maxVBal/maxVal per slot) above `truncatedUpTo`. Slots up to
 * `truncatedUpTo` are chosen, and their votes are omitted: forgotten (in the acceptor's durable
 * snapshot, rule T1) or, with `promiseOmitsChosen`, executed by the acceptor (rule T3). The Promise
 * says nothing about them, and a proposer must never read their absence as "no vote"
 * (proofs/truncation.md); a candidate behind them fetches their values by catch-up. Every Promise
 * is also a lease grant for `ballot`, counted from `sentAt`.
 */
export interface PromiseMsg<I, V = Value<I>> {
  readonly _tag: "Promise";
  readonly ballot: Ballot;
  readonly fromSlot: number;
  /** The acceptor omitted its votes at slots <= truncatedUpTo, all chosen (0: none). */
  readonly truncatedUpTo: number;
  readonly votes: readonly SlotVote<I, V>[];
  readonly sentAt: number;
}

/** Phase 2a (`Phase2a(b, v)`): "vote for `value` at `slot` in `ballot`", plus the leader's commit index. */
export interface AcceptMsg<I> {
  readonly _tag: "Accept";
  readonly ballot: Ballot;
  readonly slot: number;
  readonly value: Value<I>;
  /** Every slot <= commitIndex is chosen (the leader has executed them). */
  readonly commitIndex: number;
  readonly sentAt: number;
}

/** Phase 2b (`Phase2b(a)`): the acceptor voted at `slot` in `ballot`. Also a lease grant from the echoed `sentAt`. */
export interface AcceptedMsg {
  readonly _tag: "Accepted";
  readonly ballot: Ballot;
  readonly slot: number;
  readonly sentAt: number;
}

/** The leader's periodic renewal: lease, commit index and its latest divergence checkpoint. */
export interface HeartbeatMsg {
  readonly _tag: "Heartbeat";
  readonly ballot: Ballot;
  readonly commitIndex: number;
  readonly sentAt: number;
  readonly checkpoint: Checkpoint | null;
}

/** A follower's answer to a heartbeat: a lease grant from the echoed `sentAt`, its progress and checkpoint. */
export interface HeartbeatAckMsg {
  readonly _tag: "HeartbeatAck";
  readonly ballot: Ballot;
  readonly sentAt: number;
  readonly executedUpTo: number;
  readonly checkpoint: Checkpoint | null;
}

/**
 * A refusal of a Prepare, Accept or Heartbeat for `ballot`. Either the acceptor has promised a
 * higher ballot (`promised` > `ballot`: the proposer must back off), or it holds a lease grant to
 * another ballot for `grantRemainingMs` more milliseconds of its clock (the proposer may retry).
 */
export interface NackMsg {
  readonly _tag: "Nack";
  readonly ballot: Ballot;
  readonly promised: Ballot;
  readonly grantRemainingMs: number;
}

/**
 * "Send me the chosen values of slots fromSlot..toSlot": a replica that knows they are chosen but
 * lacks them. `fromSlot` is always the sender's first unexecuted slot, so it also says that every
 * slot below it is chosen and that the sender has them (`catchUpFromAsker`).
 */
export interface CatchUpMsg {
  readonly _tag: "CatchUp";
  readonly fromSlot: number;
  readonly toSlot: number;
}

/** Chosen entries, in slot order, contiguous from the requested `fromSlot`. */
export interface CatchUpReplyMsg<I, V = Value<I>> {
  readonly _tag: "CatchUpReply";
  readonly entries: readonly ChosenEntry<I, V>[];
}

/**
 * State transfer: "send me the chunk at byte `offset` of your snapshot of slot `slot`" (slot 0:
 * whichever snapshot you hold). A replica that lags behind a peer's log truncation asks for the
 * peer's snapshot chunk by chunk; after a loss it asks again for the same offset (resumable).
 */
export interface SnapshotRequestMsg {
  readonly _tag: "SnapshotRequest";
  readonly slot: number;
  readonly offset: number;
}

/**
 * One chunk of the sender's durable snapshot of `slot`: bytes [offset, offset + data.length) of
 * its serialized form, which is `totalBytes` long. `digest` is the divergence digest of the state
 * after slot `slot` and `contentDigest` the digest of the serialized bytes: the receiver installs
 * the snapshot only once it holds every byte and both digests match what it rebuilt.
 */
export interface SnapshotChunkMsg {
  readonly _tag: "SnapshotChunk";
  readonly slot: number;
  readonly digest: string;
  readonly contentDigest: string;
  readonly totalBytes: number;
  readonly offset: number;
  readonly data: string;
}

/** Every message between replicas. */
export type Message<I> =
  | PrepareMsg
  | PromiseMsg<I>
  | AcceptMsg<I>
  | AcceptedMsg
  | HeartbeatMsg
  | HeartbeatAckMsg
  | NackMsg
  | CatchUpMsg
  | CatchUpReplyMsg<I>
  | SnapshotRequestMsg
  | SnapshotChunkMsg;

/** The Schema of a slot's value, given the application's input Schema. */
export function valueSchema<I, IE>(input: Schema.Schema<I, IE>): Schema.Schema<Value<I>, Value<IE>> {
  // No field may be added to a command: the peer frames and the stored records carry it in a binary
  // layout (impl/runtime/binary-codec.ts) that earlier versions and stored logs must still read.
  // `SessionName` is a string as `ClientId` was: the layout is the same, and it also admits the ids
  // of sessions the service opened (level 3), which an earlier version refuses (it halts before
  // the raise to level 3 anyway).
  const command = Schema.Struct({ clientId: Schema.optional(SessionName), seq: Schema.optional(Seq), input }).pipe(
    Schema.filter((c) =>
      (c.clientId === undefined) === (c.seq === undefined) ? undefined : "clientId and seq come together or not at all",
    ),
  );
  return Schema.Union(
    Schema.TaggedStruct("noop", {}),
    Schema.TaggedStruct("batch", { commands: Schema.Array(command) }),
    Schema.TaggedStruct("reconfig", { change: ConfigChange }),
    Schema.TaggedStruct("features", {
      level: Schema.Int.pipe(Schema.positive()),
      sessionsMax: Schema.Int.pipe(Schema.positive(), Schema.lessThanOrEqualTo(Number.MAX_SAFE_INTEGER)),
      outputBytesMax: Schema.Int.pipe(Schema.positive(), Schema.lessThanOrEqualTo(Number.MAX_SAFE_INTEGER)),
    }),
    // Last, so that every earlier member keeps its index in the binary layout.
    Schema.TaggedStruct("open", { count: Schema.Int.pipe(Schema.positive(), Schema.lessThanOrEqualTo(openCountMax)) }),
  );
}

const CheckpointSchema: Schema.Schema<Checkpoint> = Schema.Struct({
  slot: Slot,
  digest: Schema.String.pipe(Schema.maxLength(256)),
});

/** The Schema of every message, given the application's input Schema. */
export function messageSchema<I, IE>(input: Schema.Schema<I, IE>): Schema.Schema<Message<I>, Message<IE>> {
  const value = valueSchema(input);
  return Schema.Union(
    Schema.TaggedStruct("Prepare", { ballot: Ballot, fromSlot: Slot, sentAt: ClockMs }),
    Schema.TaggedStruct("Promise", {
      ballot: Ballot,
      fromSlot: Slot,
      truncatedUpTo: SlotOrZero,
      votes: Schema.Array(Schema.Struct({ slot: Slot, ballot: Ballot, value })),
      sentAt: ClockMs,
    }),
    Schema.TaggedStruct("Accept", { ballot: Ballot, slot: Slot, value, commitIndex: SlotOrZero, sentAt: ClockMs }),
    Schema.TaggedStruct("Accepted", { ballot: Ballot, slot: Slot, sentAt: ClockMs }),
    Schema.TaggedStruct("Heartbeat", {
      ballot: Ballot,
      commitIndex: SlotOrZero,
      sentAt: ClockMs,
      checkpoint: Schema.NullOr(CheckpointSchema),
    }),
    Schema.TaggedStruct("HeartbeatAck", {
      ballot: Ballot,
      sentAt: ClockMs,
      executedUpTo: SlotOrZero,
      checkpoint: Schema.NullOr(CheckpointSchema),
    }),
    Schema.TaggedStruct("Nack", {
      ballot: Ballot,
      promised: Ballot,
      grantRemainingMs: Schema.Number.pipe(Schema.finite(), Schema.nonNegative()),
    }),
    Schema.TaggedStruct("CatchUp", { fromSlot: Slot, toSlot: Slot }),
    Schema.TaggedStruct("CatchUpReply", { entries: Schema.Array(Schema.Struct({ slot: Slot, value })) }),
    Schema.TaggedStruct("SnapshotRequest", { slot: SlotOrZero, offset: SlotOrZero }),
    Schema.TaggedStruct("SnapshotChunk", {
      slot: Slot,
      digest: Schema.String.pipe(Schema.maxLength(256)),
      contentDigest: Schema.String.pipe(Schema.maxLength(64)),
      totalBytes: Schema.Int.pipe(Schema.positive()),
      offset: SlotOrZero,
      data: Schema.String,
    }),
  );
}

/**
 * The estimated size of plain data (a command, an application input), in bytes: the UTF-16 length
 * of every string (keys of objects included) plus 8 for every other leaf. Linear in the number of
 * fields, not in the length of the strings. It bounds batches (`batchBytesMax`); the encoded size of
 * a string may be larger (UTF-8, escapes), which the frame limit allows for.
 */
export function plainBytes(value: unknown): number {
  if (typeof value === "string") return value.length;
  if (typeof value !== "object" || value === null) return 8;
  let bytes = 0;
  if (Array.isArray(value)) {
    for (const item of value) bytes += plainBytes(item);
    return bytes;
  }
  // Object.keys, not Object.entries: no [key, value] pair allocated per member (this runs for
  // every command proposed and every value executed); an indexed loop, not an iterator.
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record);
  for (let i = 0; i < keys.length; i++) {
    const item = record[keys[i]!];
    if (item !== undefined) bytes += keys[i]!.length + plainBytes(item);
  }
  return bytes;
}

/** Structural equality of plain data (values, commands, application inputs). */
export function plainEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!plainEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  const ka = Object.keys(ra).filter((k) => ra[k] !== undefined);
  const kb = Object.keys(rb).filter((k) => rb[k] !== undefined);
  if (ka.length !== kb.length) return false;
  for (const k of ka) if (!plainEqual(ra[k], rb[k])) return false;
  return true;
}

/** Equality of slot values. */
export function valuesEqual<I>(a: Value<I>, b: Value<I>): boolean {
  return plainEqual(a, b);
}

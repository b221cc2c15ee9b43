/**
 * Values at rest: with `valuesAtRest` on, a replica keeps no value of an executed slot in memory
 * when its own vote record holds it. The log and the votes then hold a {@link StoredValue} at that
 * slot (the vote's slot, ballot and size) and the driver reads the value back from the durable
 * records on the rare occasions it leaves the replica: a Promise reporting votes at slots this
 * replica already executed, and a CatchUpReply. The core emits such a message as a `SendStored`
 * effect; the driver replaces every StoredValue by the value of that vote record
 * ({@link resolveStored}) and sends it as it would a `Send`.
 *
 * Why this is sound: a vote record is persisted before any later effect is carried out (the
 * effect contract), so by the time a `SendStored` is carried out, every vote record it names is
 * durable; and `compactRecords` keeps every vote record above the latest snapshot's
 * `logTruncatedUpTo`, below which neither the log nor the votes hold anything. A value learned
 * without a vote of this replica in memory (by catch-up) stays in memory: its `chosen` record is
 * not a barrier (the runtime commits it after the effects of its step), so nothing may rest on it.
 *
 * What must never happen: a StoredValue executed, proposed, or sent in a `Send`; the core asserts
 * where it reads a value it needs whole (`inMemory`).
 *
 * Snapshots at rest: with `valuesAtRest` on, a state transfer's chunk of this replica's own
 * snapshot leaves as a `SendStored` of a {@link StoredChunkMsg} (the chunk without its bytes), and
 * the driver reads bytes [offset, offset + length) from the durable snapshot record of that slot
 * ({@link readChunkFromRecords}), so that a replica need not keep its snapshots' state in memory
 * to serve transfers (impl/runtime lets it go once the record is written). Sound for the same
 * reason: the snapshot record was persisted before the chunk's effect, and `compactRecords` keeps
 * the record of every snapshot the core still serves (the latest, the one before it, and the one
 * a transfer fetches, which the driver names to it). The record must be the snapshot the chunk
 * claims (its slot, content digest and size): anything else is a bug, and the read throws.
 */
import { showBallot, type Ballot } from "./ballot.ts";
import { fail } from "./assert.ts";
import {
  plainBytes,
  valuesEqual,
  type CatchUpReplyMsg,
  type ChosenEntry,
  type Message,
  type PromiseMsg,
  type SlotVote,
  type Value,
} from "./messages.ts";
import type { DurableRecord } from "./records.ts";

/** The value of this replica's vote record at `slot` in `ballot`, held on disk only; `bytes` is its `plainBytes`. */
export interface StoredValue {
  readonly _tag: "stored";
  readonly slot: number;
  readonly ballot: Ballot;
  readonly bytes: number;
}

/** A value as the log and the votes hold it: in memory, or at rest in a vote record. */
export type HeldValue<I> = Value<I> | StoredValue;

/**
 * A state transfer's chunk of this replica's durable snapshot of `slot`, its bytes at rest: the
 * `SnapshotChunk` of bytes [offset, offset + length) of that snapshot record's data.
 */
export interface StoredChunkMsg {
  readonly _tag: "StoredChunk";
  readonly slot: number;
  readonly digest: string;
  readonly contentDigest: string;
  readonly totalBytes: number;
  readonly offset: number;
  readonly length: number;
}

/** A Promise or CatchUpReply whose values may be at rest, or a chunk at rest: the message of a `SendStored` effect. */
export type StoredMessage<I> = PromiseMsg<I, HeldValue<I>> | CatchUpReplyMsg<I, HeldValue<I>> | StoredChunkMsg;

/** A snapshot record's chunk as a driver read it back: bytes [offset, offset + length) of its data. */
export type ChunkReader = (chunk: StoredChunkMsg) => string;

/** `plainBytes` of each value measured, by value (values are never changed once made). */
const measuredValues = new WeakMap<object, number>();

/** The size of a log value (`plainBytes`), measured once per value; a value at rest knows its own. */
export function valueBytes<I>(value: HeldValue<I>): number {
  if (value._tag === "stored") return value.bytes;
  let bytes = measuredValues.get(value);
  if (bytes === undefined) {
    bytes = plainBytes(value);
    measuredValues.set(value, bytes);
  }
  return bytes;
}

/** Is `value` at rest? */
export function isStored<I>(value: HeldValue<I>): value is StoredValue {
  return value._tag === "stored";
}

/** `value`, which the caller needs whole (to execute, propose or compare it); a value at rest there is a bug. */
export function inMemory<I>(value: HeldValue<I>, where: string): Value<I> {
  if (value._tag === "stored") fail(`${where}: the value at slot ${value.slot} is at rest, but needed in memory`);
  return value;
}

/**
 * Is the held value `held` the value `value`? Whole values are compared whole; a value at rest by
 * its size alone (reading it back would need I/O), so this check is weaker for executed slots.
 * The refinement checks compare the values themselves, from the durable records.
 */
export function sameValue<I>(held: HeldValue<I>, value: Value<I>): boolean {
  if (held._tag === "stored") return held.bytes === valueBytes(value);
  return held === value || valuesEqual(held, value);
}

/** Does `message` hold a value at rest (so that it must go as a `SendStored`)? */
export function holdsStored<I>(message: PromiseMsg<I, HeldValue<I>> | CatchUpReplyMsg<I, HeldValue<I>>): boolean {
  if (message._tag === "Promise") return message.votes.some((v) => v.value._tag === "stored");
  return message.entries.some((e) => e.value._tag === "stored");
}

/**
 * `message` with every value at rest replaced by `read(stored)`, or a chunk at rest with its bytes
 * read by `readChunk`: what a driver sends for a `SendStored`.
 */
export function resolveStored<I>(
  message: StoredMessage<I>,
  read: (stored: StoredValue) => Value<I>,
  readChunk?: ChunkReader,
): Message<I> {
  if (message._tag === "StoredChunk") {
    if (readChunk === undefined) throw new Error("a state transfer's chunk at rest, but no reader of snapshot records");
    const { slot, digest, contentDigest, totalBytes, offset } = message;
    return { _tag: "SnapshotChunk", slot, digest, contentDigest, totalBytes, offset, data: readChunk(message) };
  }
  const resolve = (value: HeldValue<I>): Value<I> => (value._tag === "stored" ? read(value) : value);
  if (message._tag === "Promise") {
    const votes: SlotVote<I>[] = message.votes.map((v) => ({
      slot: v.slot,
      ballot: v.ballot,
      value: resolve(v.value),
    }));
    return { ...message, votes };
  }
  const entries: ChosenEntry<I>[] = message.entries.map((e) => ({ slot: e.slot, value: resolve(e.value) }));
  return { _tag: "CatchUpReply", entries };
}

/**
 * A reader of values at rest from a replica's durable records (oldest first), for drivers that
 * hold them in memory (the simulated world, trace replays): the value of the vote record at the
 * stored slot in the stored ballot. Throws when there is none: the core named a vote that is not
 * on disk, which the effect contract rules out.
 */
export function readFromRecords<I>(records: readonly DurableRecord<I>[]): (stored: StoredValue) => Value<I> {
  return (stored) => {
    for (let i = records.length - 1; i >= 0; i--) {
      const r = records[i]!;
      // The same ballot, field by field (this is a driver's helper, not one of the core's rules).
      const same =
        r._tag === "vote" && r.ballot.round === stored.ballot.round && r.ballot.replica === stored.ballot.replica;
      if (same && r.slot === stored.slot) return r.value;
    }
    throw new Error(
      `no durable vote record at slot ${stored.slot} in ballot ${showBallot(stored.ballot)} for a value at rest`,
    );
  };
}

/**
 * A reader of chunks at rest from a replica's durable records (oldest first), for drivers that
 * hold them in memory (the simulated world, trace replays): bytes [offset, offset + length) of the
 * last snapshot record of the chunk's slot. Throws (rule ChunkFromDurableSnapshot) when there is
 * none, or when that record is not the snapshot the chunk claims (its divergence digest, content
 * digest or size differ): the core named a snapshot that is not on disk, or another one.
 */
export function readChunkFromRecords<I>(records: readonly DurableRecord<I>[]): ChunkReader {
  return (chunk) => {
    for (let i = records.length - 1; i >= 0; i--) {
      const r = records[i]!;
      if (r._tag !== "snapshot" || r.slot !== chunk.slot) continue;
      return chunkOfRecord(r, chunk);
    }
    throw new Error(
      `ChunkFromDurableSnapshot: no durable snapshot record of slot ${chunk.slot} for a state transfer's chunk at rest`,
    );
  };
}

/** Bytes [offset, offset + length) of snapshot record `r`, which must be the snapshot `chunk` claims. */
export function chunkOfRecord(
  r: {
    readonly slot: number;
    readonly digest: string;
    readonly contentDigest: string;
    readonly data: { readonly length: number };
  },
  chunk: StoredChunkMsg,
  slice: () => string = () => (r.data as string).slice(chunk.offset, chunk.offset + chunk.length),
): string {
  const size = r.data.length;
  if (
    r.slot !== chunk.slot ||
    r.digest !== chunk.digest ||
    r.contentDigest !== chunk.contentDigest ||
    size !== chunk.totalBytes
  )
    throw new Error(
      `ChunkFromDurableSnapshot: the durable snapshot of slot ${r.slot} (${r.contentDigest}, ${size} bytes) ` +
        `is not the one a chunk at rest claims (slot ${chunk.slot}, ${chunk.contentDigest}, ${chunk.totalBytes} bytes)`,
    );
  return slice();
}

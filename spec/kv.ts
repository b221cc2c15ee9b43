/**
 * The replicated application: a deterministic key-value store, in the state-machine shape of
 * `spec/state-machine.ts`. Inputs are get, put, delete, compare-and-swap, append and no-op;
 * every input and output has a Schema, so it is decoded only at a boundary and the same
 * Schema yields fast-check arbitraries.
 *
 * The state is persistent (spec/persistent-map.ts, with structural sharing): `transition` never
 * mutates its argument, and a put costs O(log n), not a copy of the store. The digest is an
 * additive multiset hash of the entries, kept up to date in O(1) per write, so that replicas
 * can compare their states cheaply (step 6 of the recipe). It detects accidental divergence;
 * it is not a cryptographic commitment.
 *
 * This module is pure: no clock, no randomness, no I/O.
 */
import { Either, ParseResult, Schema } from "effect";
import {
  fmix32,
  fnv1a,
  fnvLanesOver,
  fnvOffsetBasis,
  inFormat,
  longTextChars,
  murmurRound,
  utf8ExtraBytes,
  type TextHash,
} from "./hash.ts";
import {
  emptyPersistentMap,
  pmForEach,
  pmGet,
  pmHas,
  pmRemove,
  pmSet,
  pmSortedEntries,
  type PersistentMap,
} from "./persistent-map.ts";
import { featureLevelValueBytes } from "./service.ts";
import type { Application, Applied } from "./state-machine.ts";

/** Longest key, in UTF-16 code units. */
export const keyLengthMax = 1024;
/**
 * The value limit, in bytes of UTF-8 (1 MiB), counted by {@link utf8Length}: the longest value a
 * client may send in a put, compare-and-swap or append (admission: the HTTP layer refuses a longer
 * one before it is proposed), and from feature level 4 on ({@link featureLevelValueBytes}) the
 * longest value the store sets: a put, swap or append whose new value would be longer changes
 * nothing and answers `too-large` in bytes. Below level 4 execution does not count bytes (the bound
 * is {@link valueLengthMax}), so that a log chosen before the raise executes as every earlier
 * version executed it (docs/specs.md, proofs/feature-levels.md).
 */
export const valueBytesMax = 1024 * 1024;
/**
 * Longest value the store holds and a value field may carry to decode at all, in UTF-16 code units
 * (1 Mi). Below feature level 4 it is the only bound execution applies: an append whose whole would
 * be longer changes nothing and answers `too-large` (lengths in code units), as every version has
 * executed it, so appends of text outside ASCII can build values of up to 3 MiB of UTF-8. From
 * level 4 on the value limit in bytes ({@link valueBytesMax}) is the tighter one (a code unit takes
 * at least one byte) and execution applies it instead.
 */
export const valueLengthMax = 1024 * 1024;

/**
 * The length of `text` in bytes of UTF-8, a lone surrogate counted as 3 bytes ({@link utf8ExtraBytes}),
 * without encoding it.
 */
export function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x80) bytes += utf8ExtraBytes(text, i, c);
  }
  return bytes;
}

const Key = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(keyLengthMax));
const Value = Schema.String.pipe(Schema.maxLength(valueLengthMax));

/** Read the value under `key` (null when absent). Read-only. */
export const Get = Schema.TaggedStruct("get", { key: Key });
/** Set `key` to `value`. */
export const Put = Schema.TaggedStruct("put", { key: Key, value: Value });
/** Remove `key`; removing an absent key is not an error. */
export const Delete = Schema.TaggedStruct("delete", { key: Key });
/** Set `key` to `value` only if its current value is `expected` (null: absent). */
export const Cas = Schema.TaggedStruct("cas", { key: Key, expected: Schema.NullOr(Value), value: Value });
/**
 * Append `value` to the value under `key` (absent counts as ""). An append that would make the
 * value longer than {@link valueLengthMax} code units (below feature level 4) or than
 * {@link valueBytesMax} bytes of UTF-8 (from level 4 on) changes nothing and answers `too-large`:
 * the bound holds for every value the store ever holds, since longer ones would not decode.
 */
export const Append = Schema.TaggedStruct("append", { key: Key, value: Value });
/** Change nothing. A new leader fills gaps in the log with it. */
export const Noop = Schema.TaggedStruct("noop", {});

/** Every input of the store. */
export const KvInput = Schema.Union(Get, Put, Delete, Cas, Append, Noop);
export type KvInput = typeof KvInput.Type;

/**
 * Outputs. `value`: the value a get read, or the new value after an append. `ok`: a put,
 * delete or no-op happened. `cas`: whether the swap happened and the value found. `too-large`:
 * a put, swap or append refused by the value limit (nothing changed).
 */
export const ValueOutput = Schema.TaggedStruct("value", { value: Schema.NullOr(Schema.String) });
export const OkOutput = Schema.TaggedStruct("ok", {});
export const CasOutput = Schema.TaggedStruct("cas", { swapped: Schema.Boolean, current: Schema.NullOr(Schema.String) });
/**
 * A put, swap or append refused because the new value would be longer than `limit`: its length
 * would be `length`. Below feature level 4 both are in UTF-16 code units ({@link valueLengthMax})
 * and `unit` is absent (the output every earlier version gave, kept so in saved outputs and their
 * digests); from level 4 on both are in bytes of UTF-8 ({@link valueBytesMax}) and `unit` is
 * `"bytes"` (the two limits are the same number).
 */
export const TooLargeOutput = Schema.TaggedStruct("too-large", {
  length: Schema.Int.pipe(Schema.nonNegative()),
  limit: Schema.Int.pipe(Schema.nonNegative()),
  unit: Schema.optional(Schema.Literal("bytes")),
});
export const KvOutput = Schema.Union(ValueOutput, OkOutput, CasOutput, TooLargeOutput);
export type KvOutput = typeof KvOutput.Type;

/**
 * An entry whose value this state does not hold: a replica keeps a large value at rest, named by
 * the durable record that wrote it (impl/core/store-at-rest.ts's `StoredEntry`, which extends this;
 * proofs/store-at-rest.md). The spec never makes one; it carries the value's length and the entry's
 * hashes (`KvState.hashes`, unchanged: the digest counts the same entry), and every read of the
 * value refuses it (`lookup`): a replica puts the value back in memory before it executes a command
 * that reads it (rule V4), and the abstraction function reads it back from the record (rule V2).
 */
export interface EntryAtRest {
  readonly _tag: "stored-entry";
  readonly key: string;
  readonly length: number;
  readonly hashes: EntryHashes;
}

/** An entry of the store as a state holds it: its value, or the value's reference at rest. */
export type KvEntry = string | EntryAtRest;

/** The store: entries plus the running digest lanes and entry count. */
export interface KvState {
  /** Each key's value; a replica may hold a large one at rest ({@link EntryAtRest}), the spec never. */
  readonly entries: PersistentMap<KvEntry>;
  /**
   * Each entry's hash in both lanes (`entryHashes`), so that overwriting or removing a value does
   * not hash it again: for a 1 MiB value, hashing is most of the work of a write.
   */
  readonly hashes: PersistentMap<EntryHashes>;
  /** Two independent 32-bit additive lanes of the multiset hash, and the entry count. */
  readonly digestA: number;
  readonly digestB: number;
}

/** The snapshot format: plain data, entries sorted by key. */
export const KvSnapshot = Schema.Struct({
  format: Schema.Literal("paxos-lease/kv@1"),
  entries: Schema.Array(Schema.Tuple(Key, Value)),
});
export type KvSnapshot = typeof KvSnapshot.Type;

const emptyState: KvState = { entries: emptyPersistentMap(), hashes: emptyPersistentMap(), digestA: 0, digestB: 0 };

/**
 * An entry's hash in lane A and lane B, and the length of its value in bytes of UTF-8 (counted in
 * the same pass over the value: the value limit costs no pass of its own).
 */
type EntryHashes = readonly [number, number, number];

/**
 * The hash of one entry `key \u0000 value`, for a given FNV offset basis, finished with fmix32
 * so that sums of hashes of nearby entries do not cancel easily.
 */
function entryHash(basis: number, key: string, value: string): number {
  return fmix32(fnv1a(Math.imul(fnv1a(basis, key), 0x01000193), value));
}

const basisA = fnvOffsetBasis;
const basisB = 0x050c5d1f;

/**
 * `entryHash` in both lanes and `utf8Length` of the value at once: one pass over the value instead
 * of three (the same numbers as the three calls, which the tests check). With a `textHash` passed
 * in, a value of `longTextChars` or more is hashed by it instead, and its two words folded into
 * the key's lanes (`textEntryHashes`): the digest format named by the hash.
 */
function entryHashes(key: string, value: string, textHash: TextHash | null): EntryHashes {
  if (textHash !== null && value.length >= longTextChars) return textEntryHashes(key, textHash.hash(value));
  return fnvLanesOver(Math.imul(fnv1a(basisA, key), 0x01000193), Math.imul(fnv1a(basisB, key), 0x01000193), value);
}

/**
 * An entry's hashes from its key and its long value's hash words `[x, y, bytes]`: the key's FNV-1a
 * lanes as for a short value, then a marker no short value's fold can follow a key with (the
 * lanes of a short value continue with the NUL separator's multiply; here murmur3 rounds), then
 * both words, finished with fmix32.
 */
function textEntryHashes(key: string, [x, y, bytes]: readonly [number, number, number]): EntryHashes {
  const a = murmurRound(murmurRound(murmurRound(fnv1a(basisA, key), 0x6c6f6e67), x), y);
  const b = murmurRound(murmurRound(murmurRound(fnv1a(basisB, key), 0x6c6f6e67), y), x);
  return [fmix32(a), fmix32(b), bytes];
}

/** Both lanes of an entry's hash and its value's UTF-8 length, computed two ways: for the test that they agree. */
export function entryHashesForTest(
  key: string,
  value: string,
): { readonly once: EntryHashes; readonly apart: EntryHashes } {
  return {
    once: entryHashes(key, value, null),
    apart: [entryHash(basisA, key, value), entryHash(basisB, key, value), utf8Length(value)],
  };
}

function lookup(state: KvState, key: string): string | null {
  const entry = pmGet(state.entries, key);
  if (typeof entry === "string") return entry;
  if (entry === undefined) return null;
  throw atRest(entry);
}

/** The refusal to read a value at rest: a replica reads it back first (rule V4). */
function atRest(entry: EntryAtRest): Error {
  return new Error(
    `the value under ${JSON.stringify(entry.key)} is at rest (${entry.length} code units): it must be read back before it is read`,
  );
}

/** The value `entry` holds in memory; throws for one at rest. */
function inMemoryValue(entry: KvEntry): string {
  if (typeof entry === "string") return entry;
  throw atRest(entry);
}

/**
 * Replace (or with `next === null` remove) the entry under `key`, updating the digest. `hashes`:
 * the new entry's (null for a removal).
 */
function write(state: KvState, key: string, next: string | null, hashes: EntryHashes | null): KvState {
  const previous = pmGet(state.hashes, key);
  let digestA = state.digestA;
  let digestB = state.digestB;
  if (previous !== undefined) {
    digestA = (digestA - previous[0]) >>> 0;
    digestB = (digestB - previous[1]) >>> 0;
  }
  if (next === null || hashes === null)
    return { entries: pmRemove(state.entries, key), hashes: pmRemove(state.hashes, key), digestA, digestB };
  digestA = (digestA + hashes[0]) >>> 0;
  digestB = (digestB + hashes[1]) >>> 0;
  return {
    entries: pmSet(state.entries, key, next),
    hashes: pmSet(state.hashes, key, hashes),
    digestA,
    digestB,
  };
}

const ok: KvOutput = { _tag: "ok" };

/** The refusal of a value `length` bytes of UTF-8 long, over the value limit (feature level 4 on). */
function tooLargeBytes(state: KvState, length: number): Applied<KvState, KvOutput> {
  return { state, output: { _tag: "too-large", length, limit: valueBytesMax, unit: "bytes" } };
}

/**
 * Set `key` to `next` and answer `output`, unless `next` is over the bound of `level`: longer than
 * {@link valueLengthMax} code units, or from level 4 on longer than {@link valueBytesMax} bytes of
 * UTF-8; then change nothing and answer `too-large`. Every input that sets a value goes through
 * here. The bytes are counted in the pass that hashes the new value (`entryHashes`): the limit
 * costs no pass of its own. Below level 4 the byte count is never looked at, so a log chosen before
 * the raise executes as every earlier version executed it.
 */
function setWithin(
  textHash: TextHash | null,
  level: number,
  state: KvState,
  key: string,
  next: string,
  output: KvOutput,
): Applied<KvState, KvOutput> {
  const bytesCounted = level >= featureLevelValueBytes;
  if (next.length > valueLengthMax)
    return bytesCounted
      ? tooLargeBytes(state, utf8Length(next))
      : { state, output: { _tag: "too-large", length: next.length, limit: valueLengthMax } };
  const hashes = entryHashes(key, next, textHash);
  if (bytesCounted && hashes[2] > valueBytesMax) return tooLargeBytes(state, hashes[2]);
  return { state: write(state, key, next, hashes), output };
}

/**
 * The length in bytes of UTF-8 of `key`'s value with `tail` appended, from the length kept beside
 * the value (`KvState.hashes`) and `tail`'s own: the value is not measured again, nor built. A lone
 * high surrogate at the value's end and a lone low one at `tail`'s start, 3 bytes each, make one
 * pair of 4 bytes.
 */
function appendedBytes(state: KvState, key: string, current: string | null, tail: string): number {
  const bytes = (pmGet(state.hashes, key)?.[2] ?? 0) + utf8Length(tail);
  if (current === null || current.length === 0 || tail.length === 0) return bytes;
  const joins =
    (current.charCodeAt(current.length - 1) & 0xfc00) === 0xd800 && (tail.charCodeAt(0) & 0xfc00) === 0xdc00;
  return joins ? bytes - 2 : bytes;
}

function applyKv(textHash: TextHash | null, level: number, input: KvInput, state: KvState): Applied<KvState, KvOutput> {
  switch (input._tag) {
    case "get":
      return { state, output: { _tag: "value", value: lookup(state, input.key) } };
    case "put":
      return setWithin(textHash, level, state, input.key, input.value, ok);
    case "delete":
      return { state: write(state, input.key, null, null), output: ok };
    case "cas": {
      const current = lookup(state, input.key);
      if (current !== input.expected) return { state, output: { _tag: "cas", swapped: false, current } };
      return setWithin(textHash, level, state, input.key, input.value, { _tag: "cas", swapped: true, current });
    }
    case "append": {
      const current = lookup(state, input.key);
      // From level 4 on, an append over the limit is refused before its whole is built or hashed.
      if (level >= featureLevelValueBytes) {
        const bytes = appendedBytes(state, input.key, current, input.value);
        if (bytes > valueBytesMax) return tooLargeBytes(state, bytes);
      }
      const next = (current ?? "") + input.value;
      return setWithin(textHash, level, state, input.key, next, { _tag: "value", value: next });
    }
    case "noop":
      return { state, output: ok };
  }
}

/** The value under `key` in `state`, or null. */
export function kvGet(state: KvState, key: string): string | null {
  return lookup(state, key);
}

/** Number of entries. */
export function kvSize(state: KvState): number {
  return state.entries.size;
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, "0");
}

/** The snapshot of `state`: every value must be in memory (a value at rest is refused). */
function snapshotKv(state: KvState): KvSnapshot {
  const entries = pmSortedEntries(state.entries);
  for (const [, entry] of entries) inMemoryValue(entry);
  return { format: "paxos-lease/kv@1", entries: entries as (readonly [string, string])[] };
}

const decodeSnapshot = Schema.decodeUnknownEither(KvSnapshot);

function restoreKv(textHash: TextHash | null, data: unknown): KvState {
  const decoded = decodeSnapshot(data, { onExcessProperty: "error" });
  if (Either.isLeft(decoded)) {
    throw new Error(`kv snapshot rejected: ${ParseResult.TreeFormatter.formatErrorSync(decoded.left)}`);
  }
  let state = emptyState;
  for (const [key, value] of decoded.right.entries) {
    if (pmHas(state.entries, key)) throw new Error(`kv snapshot rejected: key ${JSON.stringify(key)} appears twice`);
    state = write(state, key, value, entryHashes(key, value, textHash));
  }
  return state;
}

/** The digest of `state` (`kv.digest`) in the format of `textHash`. */
function digestIn(textHash: TextHash | null, state: KvState): string {
  return inFormat(textHash, `${hex8(state.digestA)}${hex8(state.digestB)}:${kvSize(state)}`);
}

/**
 * The digest of `state` in the format named `format`, computed again from its entries (every value
 * hashed once more): for a digest written by another format (a snapshot taken before the upgrade
 * to a passed-in hash). Null when `format` is neither the unnamed one nor `textHash`'s.
 */
function digestAs(textHash: TextHash | null, state: KvState, format: string): string | null {
  const own = textHash?.name ?? "";
  if (format === own) return digestIn(textHash, state);
  if (format !== "") return null;
  let digestA = 0;
  let digestB = 0;
  pmForEach(state.entries, (key, entry) => {
    const [a, b] = entryHashes(key, inMemoryValue(entry), null);
    digestA = (digestA + a) >>> 0;
    digestB = (digestB + b) >>> 0;
  });
  return `${hex8(digestA)}${hex8(digestB)}:${kvSize(state)}`;
}

function outputsEqual(a: KvOutput, b: KvOutput): boolean {
  switch (a._tag) {
    case "value":
      return b._tag === "value" && a.value === b.value;
    case "ok":
      return b._tag === "ok";
    case "cas":
      return b._tag === "cas" && a.swapped === b.swapped && a.current === b.current;
    case "too-large":
      return b._tag === "too-large" && a.length === b.length && a.limit === b.limit && a.unit === b.unit;
  }
}

/**
 * The key-value store as an {@link Application} whose digests hash long values with `textHash`
 * (spec/hash.ts; null: the specs' own FNV-1a lanes for every value, the digests of `kv`). The
 * runtime passes node:crypto's SHA-256; every replica of a cluster must pass the same.
 */
export function kvWith(textHash: TextHash | null): Application<KvState, KvInput, KvOutput> {
  const apply = (input: KvInput, state: KvState, level = 1): Applied<KvState, KvOutput> =>
    applyKv(textHash, level, input, state);
  return {
    name: "kv",
    start: emptyState,
    transition: (input, state) => apply(input, state).state,
    output: (input, state) => apply(input, state).output,
    apply,
    readOnly: (input) => input._tag === "get",
    noop: { _tag: "noop" },
    digest: (state) => digestIn(textHash, state),
    digestAs: (state, format) => digestAs(textHash, state, format),
    textHash,
    snapshot: snapshotKv,
    restore: (data) => restoreKv(textHash, data),
    outputsEqual,
  };
}

/** The key-value store as an {@link Application}, every digest by the specs' own FNV-1a lanes. */
export const kv: Application<KvState, KvInput, KvOutput> = kvWith(null);

/**
 * The key-value store's values at rest (proofs/store-at-rest.md): a large value the store holds may
 * be named by a {@link StoredEntry}, a reference to the put or swapping compare-and-swap of this
 * replica's own vote record that wrote it, instead of being held in memory. This module holds the
 * reference and rule V2 (EntryFromDurableVote): a value at rest is read back only from the record it
 * names, and only if that record's command wrote exactly the value the reference describes (its
 * key, length and the store's own entry hashes); anything else throws, so that a replica never
 * serves bytes it cannot vouch for. Rule V3 (compaction keeps the records the store names) is
 * `compactRecords`' `pinnedVotes`.
 *
 * It must never do I/O: drivers read records, and hand them in.
 */
import type { Application } from "../../spec/state-machine.ts";
import type { EntryAtRest, KvInput, KvOutput, KvState } from "../../spec/kv.ts";
import { pmForEach, pmGet, pmSet, pmSortedEntries, type PersistentMap } from "../../spec/persistent-map.ts";
import { showBallot, type Ballot } from "./ballot.ts";
import type { Value } from "./messages.ts";
import type { DurableRecord } from "./records.ts";
import { escapedJsonLength, escapedJsonValue } from "./snapshot.ts";

/**
 * The value under `key`, held at rest: the `value` of the put or compare-and-swap at `index` of the
 * batch of this replica's vote record at `slot` in `ballot`, of `length` UTF-16 code units and with
 * the store's entry hashes `hashes` (those the state's digest counts), and `chars` characters long
 * as a snapshot writes it (`escapedJsonLength`, measured when the value was in memory): a snapshot
 * leaves that many characters for it (rule V5) without reading it back.
 */
export interface StoredEntry extends EntryAtRest {
  readonly slot: number;
  readonly ballot: Ballot;
  readonly index: number;
  readonly chars: number;
}

/** Do `a` and `b` name the same value: the same key, vote, command, lengths and entry hashes? */
export function sameEntry(a: StoredEntry, b: StoredEntry): boolean {
  return (
    a === b ||
    (a.key === b.key &&
      a.slot === b.slot &&
      a.ballot.round === b.ballot.round &&
      a.ballot.replica === b.ballot.replica &&
      a.index === b.index &&
      a.length === b.length &&
      a.chars === b.chars &&
      a.hashes.every((h, i) => h === b.hashes[i]))
  );
}

/** The key-value store as the core runs it: spec/kv.ts with the digest format the driver chose. */
type KvApplication = Application<KvState, KvInput, KvOutput>;

/** A vote as this module reads it: a vote record, or a vote the replica holds with its value in memory. */
interface VoteOf {
  readonly slot: number;
  readonly ballot: Ballot;
  readonly value: Value<KvInput>;
}

/** The value the command at `index` of `value` writes to `key` (a put, or a swap's new value), or null. */
function writtenBy(value: Value<KvInput>, index: number, key: string): string | null {
  if (value._tag !== "batch") return null;
  const input = value.commands[index]?.input;
  if (input === undefined || (input._tag !== "put" && input._tag !== "cas") || input.key !== key) return null;
  return input.value;
}

/**
 * The reference that names the value under `key` in `state` by the command at `index` of `vote`
 * (rule V1's reference), or null when that command did not write the value `state` holds there or
 * the value is shorter than `charsMin` code units.
 * The hashes are the state's own, so the digest counts the same entry whether in memory or at rest.
 */
export function storedEntryOf(
  state: KvState,
  key: string,
  vote: VoteOf,
  index: number,
  charsMin = 0,
): StoredEntry | null {
  const written = writtenBy(vote.value, index, key);
  // Shorter than `charsMin`: no reference, and no escaped length measured for one.
  if (written === null || written.length < charsMin) return null;
  const current = pmGet(state.entries, key);
  const hashes = pmGet(state.hashes, key);
  if (current === undefined || hashes === undefined || current !== written) return null;
  const { slot, ballot } = vote;
  const chars = escapedJsonLength(written);
  return { _tag: "stored-entry", key, slot, ballot, index, length: written.length, chars, hashes };
}

function showEntry(ref: StoredEntry): string {
  return `${JSON.stringify(ref.key)} at slot ${ref.slot} in ${showBallot(ref.ballot)}, command ${ref.index}`;
}

/**
 * Rule V2: the value `ref` names, from `vote` (this replica's vote record at the reference's slot
 * and ballot). Throws, naming what differs, unless the vote is the one named and its command at
 * `index` is a put or compare-and-swap on the key whose value has the reference's length and entry
 * hashes, recomputed from the value by `app` (its own digest format): never another value.
 */
export function entryOfVote(app: KvApplication, vote: VoteOf | undefined, ref: StoredEntry): string {
  const value = valueOfVote(vote, ref);
  checkEntryValue(app, ref, value, `${entryWhere(ref)}: the record's value`);
  return value;
}

/**
 * `entryOfVote`'s value as a snapshot writes it (`escapedJsonValue`), for a snapshot's hole (rule
 * V5): the same checks, the value escaped once for its length and its text.
 */
export function escapedEntryOfVote(app: KvApplication, vote: VoteOf | undefined, ref: StoredEntry): string {
  const value = valueOfVote(vote, ref);
  const text = escapedJsonValue(value);
  checkEntryValue(app, ref, value, `${entryWhere(ref)}: the record's value`, text.length);
  return text;
}

function entryWhere(ref: StoredEntry): string {
  return `EntryFromDurableVote: the value at rest of ${showEntry(ref)}`;
}

/** The value `ref` names in `vote`, unchecked but for the vote and command being the ones named. */
function valueOfVote(vote: VoteOf | undefined, ref: StoredEntry): string {
  const where = entryWhere(ref);
  if (vote === undefined) throw new Error(`${where} has no durable vote record`);
  const sameBallot = vote.ballot.round === ref.ballot.round && vote.ballot.replica === ref.ballot.replica;
  if (vote.slot !== ref.slot || !sameBallot)
    throw new Error(`${where} was given the vote at slot ${vote.slot} in ${showBallot(vote.ballot)}`);
  const value = writtenBy(vote.value, ref.index, ref.key);
  if (value === null) throw new Error(`${where}: that vote's command ${ref.index} writes no value to that key`);
  return value;
}

/**
 * V2's comparison, which the core makes again on every value a driver hands back (rule V4): `value`
 * has the length, the length as a snapshot writes it and the entry hashes `ref` names, recomputed by
 * `app` (its own digest format). Throws, naming `what` and what differs.
 */
export function checkEntryValue(
  app: KvApplication,
  ref: StoredEntry,
  value: string,
  what: string,
  escapedChars: number = escapedJsonLength(value),
): void {
  if (value.length !== ref.length) throw new Error(`${what} is ${value.length} code units long, not ${ref.length}`);
  const chars = escapedChars;
  if (chars !== ref.chars)
    throw new Error(`${what} is ${chars} characters long as a snapshot writes it, not ${ref.chars}`);
  const hashes = pmGet(app.transition({ _tag: "put", key: ref.key, value }, app.start).hashes, ref.key);
  if (hashes === undefined || hashes.some((h, i) => h !== ref.hashes[i]))
    throw new Error(`${what} has other entry hashes (${String(hashes)}, not ${String(ref.hashes)})`);
}

/**
 * A reader of values at rest from a replica's durable records (oldest first), for drivers that hold
 * them in memory (the simulated world, trace replays): rule V2 on the last vote record at the
 * reference's slot in its ballot.
 */
export function readEntryFromRecords(
  app: KvApplication,
  records: readonly DurableRecord<KvInput>[],
): (ref: StoredEntry) => string {
  return (ref) => {
    for (let i = records.length - 1; i >= 0; i--) {
      const r = records[i]!;
      if (r._tag !== "vote" || r.slot !== ref.slot) continue;
      if (r.ballot.round !== ref.ballot.round || r.ballot.replica !== ref.ballot.replica) continue;
      return entryOfVote(app, r, ref);
    }
    return entryOfVote(app, undefined, ref);
  };
}

/**
 * What the core needs of its application to hold values at rest: the key a command may change
 * (rule V1's bookkeeping) or reads (rule V4), the reference to the value a command wrote, and the
 * store's representation: an entry's value replaced by its reference (V1), the reference found,
 * and the value put back (V4).
 */
export interface StoreAtRest<S, I> {
  /** The key `input` may change (a put, swap, append or delete), or null. */
  readonly writes: (input: I) => string | null;
  /** The key whose value `input` reads (a get, swap or append), or null: a put or delete reads none. */
  readonly reads: (input: I) => string | null;
  /** The entry at rest under `key` in `state`, or null (absent, or its value in memory). */
  readonly resting: (state: S, key: string) => StoredEntry | null;
  /** `state` with the value under `ref.key`, which must be the one `ref` names, replaced by `ref` (rule V1). */
  readonly rest: (state: S, ref: StoredEntry) => S;
  /**
   * `state` with `value` back in memory in place of `ref` (rule V4), after V2's comparison
   * (`checkEntryValue`, which throws on a value that is not the one named); `state` unchanged when
   * its entry under `ref.key` is not `ref` at rest (rewritten, or replaced by a state transfer).
   */
  readonly restore: (state: S, ref: StoredEntry, value: string) => S;
  /**
   * The reference naming the value under `key` in `state` by command `index` of `vote`, or null when
   * that command did not write it or it is shorter than `charsMin` code units.
   */
  readonly originOf: (
    state: S,
    key: string,
    vote: { readonly slot: number; readonly ballot: Ballot; readonly value: Value<I> },
    index: number,
    charsMin: number,
  ) => StoredEntry | null;
  /**
   * The application's snapshot of `state` as its own `snapshot` gives it, but with each value at
   * rest as its reference: for a snapshot's serialization, which leaves a hole there (rule V5).
   */
  readonly snapshot: (state: S) => unknown;
}

/** The entry at rest under `key` in `state`, or null. */
function restingIn(state: KvState, key: string): StoredEntry | null {
  const entry = pmGet(state.entries, key);
  // Only a replica's core puts an entry at rest, and only a `StoredEntry`.
  return entry === undefined || typeof entry === "string" ? null : (entry as StoredEntry);
}

/** The key-value store's {@link StoreAtRest}, its values checked by `app`'s digest format. */
function kvStoreAtRest(app: KvApplication): StoreAtRest<KvState, KvInput> {
  return {
    writes: (input) => (input._tag === "get" || input._tag === "noop" ? null : input.key),
    reads: (input) => (input._tag === "get" || input._tag === "cas" || input._tag === "append" ? input.key : null),
    resting: restingIn,
    rest: (state, ref) => ({ ...state, entries: pmSet(state.entries, ref.key, ref) }),
    restore: (state, ref, value) => {
      const held = restingIn(state, ref.key);
      if (held === null || !sameEntry(held, ref)) return state;
      checkEntryValue(app, ref, value, `EntryFromDurableVote: the value read back for ${showEntry(ref)}`);
      return { ...state, entries: pmSet(state.entries, ref.key, value) };
    },
    originOf: (state, key, vote, index, charsMin) => storedEntryOf(state, key, vote, index, charsMin),
    // As spec/kv.ts's snapshot (its format, entries sorted by key), references kept.
    snapshot: (state) => ({ format: "paxos-lease/kv@1", entries: pmSortedEntries(state.entries) }),
  };
}

/**
 * The {@link StoreAtRest} of `app`, which must be the key-value store (spec/kv.ts, any digest
 * format): the store's values at rest are that store's representation. Throws for any other.
 */
export function storeAtRestFor<S, I, O>(app: Application<S, I, O>): StoreAtRest<S, I> {
  const start = app.start as Partial<KvState> | null;
  if (app.name !== "kv" || start === null || start.entries === undefined || start.hashes === undefined)
    throw new Error(`storeAtRestCharsMin names values of the key-value store, not of the application ${app.name}`);
  return kvStoreAtRest(app as unknown as KvApplication) as unknown as StoreAtRest<S, I>;
}

/**
 * Rule V3: the slots of the vote records that `origins` (a replica's `LearnerState.origins`) name,
 * which compaction must keep (`compactRecords`' `pinnedVotes`).
 */
export function pinnedVotes(origins: PersistentMap<StoredEntry>): ReadonlySet<number> {
  const slots = new Set<number>();
  pmForEach(origins, (_key, ref) => slots.add(ref.slot));
  return slots;
}

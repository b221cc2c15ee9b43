/**
 * The driver's answer to a `ReadEntries` (rule V4, proofs/store-at-rest.md): the store's values at
 * rest are read back from the vote records that wrote them, each record once, in reads of a bounded
 * size, each value checked by rule V2 (`kvEntryReader`), and fed to the core as one `EntriesRead`
 * in the effect's order; a record missing, or one of other bytes, stops the replica instead.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { Ballot, Event, StepResult } from "../core/index.ts";
import { storedEntryOf, type StoredEntry } from "../core/store-at-rest.ts";
import { monotonicClock } from "./clock.ts";
import { kvEntryReader, kvRecordKey, kvReplicated, type KvRecord } from "./core-adapter.ts";
import { Driver, entriesReadCharsMax, type DurableLog } from "./driver.ts";
import { waitFor } from "./testing.ts";

type Msg = never;
type Input = { readonly n: number };
interface State {
  readonly asked: readonly StoredEntry[];
  readonly read: { readonly entries: readonly StoredEntry[]; readonly values: readonly string[] } | null;
}

/** A core that asks for the values of `asked` once recovered, and keeps what it is given back. */
function step(state: State, event: Event<Msg, KvRecord, Input>): StepResult<State, Msg, KvRecord, number> {
  if (event._tag === "Recover")
    return { state, effects: [{ _tag: "ReadEntries", entries: state.asked, purpose: "command" }] };
  if (event._tag === "EntriesRead")
    return { state: { ...state, read: { entries: event.entries, values: event.values } }, effects: [] };
  return { state, effects: [] };
}

const ballot: Ballot = { round: 2, replica: 1 };

/** The vote at `slot` of a batch of puts of `puts` ([key, value]). */
function voteOf(slot: number, puts: readonly (readonly [string, string])[]): KvRecord & { _tag: "vote" } {
  return {
    _tag: "vote",
    slot,
    ballot,
    value: {
      _tag: "batch",
      commands: puts.map(([key, value], i) => ({ clientId: `c${i}`, seq: slot, input: { _tag: "put", key, value } })),
    },
  };
}

/** The store's reference to the value command `index` of `vote` wrote to `key`. */
function entryOf(vote: KvRecord & { _tag: "vote" }, key: string, index: number): StoredEntry {
  const input = vote.value._tag === "batch" ? vote.value.commands[index]!.input : null;
  if (input?._tag !== "put") throw new Error("not a put");
  const state = kvReplicated.transition(input, kvReplicated.start);
  return storedEntryOf(state, key, vote, index)!;
}

/** A log holding `records`, whose reads come back later, each noted by its keys. */
function logOf(records: readonly KvRecord[]) {
  const reads: string[][] = [];
  const byKey = new Map(records.map((r) => [kvRecordKey(r)!, r]));
  const log: DurableLog<KvRecord> = {
    recordCount: records.length,
    append: () => undefined,
    read: (keys, done) => {
      reads.push([...keys]);
      setImmediate(() => {
        const missing = keys.find((key) => !byKey.has(key));
        if (missing !== undefined) done(new Error(`no record ${missing} in the store`), []);
        else
          done(
            null,
            keys.map((key) => byKey.get(key)!),
          );
      });
    },
  };
  return { log, reads };
}

const drivers: Driver<State, Msg, KvRecord, Input, number>[] = [];
afterEach(() => {
  for (const d of drivers.splice(0)) d.stop();
});

function run(asked: readonly StoredEntry[], records: readonly KvRecord[]) {
  const { log, reads } = logOf(records);
  const fatal: unknown[] = [];
  const counted: number[] = [];
  const driver = new Driver<State, Msg, KvRecord, Input, number>({
    step,
    state: { asked, read: null },
    log,
    clock: monotonicClock(),
    send: () => true,
    entries: kvEntryReader,
    onEntriesRead: (values, chars) => counted.push(values, chars),
    onAlarm: () => undefined,
    onFatal: (error) => fatal.push(error),
  });
  drivers.push(driver);
  driver.start([]);
  return { driver, reads, fatal, counted };
}

describe("the driver reading the store's values at rest", () => {
  it("reads each record once, in bounded reads, and feeds the values back in the effect's order", async () => {
    // Values of 1 MiB, the longest the store takes: four fill a read.
    const mib = (c: string): string => c.repeat(entriesReadCharsMax / 4);
    const v5 = voteOf(5, [
      ["a", "x".repeat(100)],
      ["b", "y".repeat(200)],
    ]);
    const v6 = voteOf(6, [
      ["c", mib("c")],
      ["e", mib("e")],
    ]);
    const v7 = voteOf(7, [["d", "z".repeat(300)]]);
    const v8 = voteOf(8, [
      ["g", mib("g")],
      ["h", mib("h")],
    ]);
    const asked = [
      entryOf(v6, "c", 0),
      entryOf(v5, "b", 1),
      entryOf(v8, "g", 0),
      entryOf(v7, "d", 0),
      entryOf(v5, "a", 0),
      entryOf(v6, "e", 1),
      entryOf(v8, "h", 1),
    ];
    const { driver, reads, fatal, counted } = run(asked, [v5, v6, v7, v8]);
    const read = await waitFor("values read back", () => {
      if (fatal.length > 0) throw new Error(String(fatal[0]));
      return driver.state.read ?? undefined;
    });
    expect(read.entries).toEqual(asked);
    expect(read.values).toEqual([
      mib("c"),
      "y".repeat(200),
      mib("g"),
      "z".repeat(300),
      "x".repeat(100),
      mib("e"),
      mib("h"),
    ]);
    // Each record once, for all its values; vote 8 would take the first read past its bound.
    expect(reads).toEqual([
      ["vote 6 2.1", "vote 5 2.1"],
      ["vote 8 2.1", "vote 7 2.1"],
    ]);
    expect(counted).toEqual([7, entriesReadCharsMax + 600]);
  });

  it("stops the replica, feeding nothing, when a record is missing or holds other bytes (rule V2)", async () => {
    const v5 = voteOf(5, [["a", "x".repeat(100)]]);
    const missing = run([entryOf(v5, "a", 0)], []);
    await waitFor("a stop", () => missing.fatal[0]);
    expect(String(missing.fatal[0])).toMatch(/reading the store's values back: no record vote 5 2\.1/);
    expect(missing.driver.state.read).toBeNull();
    // The same slot and ballot, the same length, another value: the entry hashes differ.
    const other = run([entryOf(v5, "a", 0)], [voteOf(5, [["a", "w".repeat(100)]])]);
    await waitFor("a stop", () => other.fatal[0]);
    expect(String(other.fatal[0])).toMatch(/EntryFromDurableVote: .* other entry hashes/);
    expect(other.driver.state.read).toBeNull();
    // Another key at that command.
    const key = run([entryOf(v5, "a", 0)], [voteOf(5, [["b", "x".repeat(100)]])]);
    await waitFor("a stop", () => key.fatal[0]);
    expect(String(key.fatal[0])).toMatch(/writes no value to that key/);
  });
});

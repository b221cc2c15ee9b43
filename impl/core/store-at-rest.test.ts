/**
 * The store's values at rest (impl/core/store-at-rest.ts, proofs/store-at-rest.md): rule V2, a value
 * read back only from the vote record that wrote it and only if it is the value the reference
 * describes, and rule V3, compaction keeps the vote records the store names. Each broken case is
 * refused: a record compacted away, another ballot, another command or key, other bytes.
 */
import { describe, expect, it } from "vitest";
import { kv, type KvInput } from "../../spec/kv.ts";
import { compactRecords, type DurableRecord, type VoteRecord } from "./records.ts";
import { pmGet, pmSet } from "../../spec/persistent-map.ts";
import type { ReadEntries } from "./events.ts";
import { defaultRules } from "./rules.ts";
import {
  entryOfVote,
  readEntryFromRecords,
  sameEntry,
  storedEntryOf,
  storeAtRestFor,
  type StoredEntry,
} from "./store-at-rest.ts";
import { bigThenShortWrites, Cluster } from "./testing/cluster.ts";

const put = (key: string, value: string): KvInput => ({ _tag: "put", key, value });
const b = (round: number, replica: number) => ({ round, replica });
const big = "x".repeat(70 * 1024);

/** The writes of `bigThenShortWrites`, "big" first, then `more` short values. */
const written = (more: number): Cluster => bigThenShortWrites({}, big, more);

/** Replica 1's vote record that wrote "big", and the reference to it from replica 1's store. */
function bigVote(c: Cluster): { readonly vote: VoteRecord<KvInput>; readonly ref: StoredEntry } {
  const vote = c
    .node(1)
    .records.find(
      (r): r is VoteRecord<KvInput> =>
        r._tag === "vote" &&
        r.value._tag === "batch" &&
        r.value.commands.some((cmd) => cmd.input._tag === "put" && cmd.input.key === "big"),
    );
  expect(vote).toBeDefined();
  const ref = storedEntryOf(c.state(1).learner.service.app, "big", vote!, 0);
  expect(ref).not.toBeNull();
  return { vote: vote!, ref: ref! };
}

describe("the store's values at rest", () => {
  it("names a value by the vote that wrote it and reads it back from the records (V2)", () => {
    const c = written(0);
    const { vote, ref } = bigVote(c);
    expect(ref).toMatchObject({ key: "big", slot: vote.slot, ballot: vote.ballot, index: 0, length: big.length });
    expect(readEntryFromRecords(kv, c.node(1).records)(ref)).toBe(big);
    // A reference is made only for the command that wrote the value the store holds.
    expect(storedEntryOf(c.state(1).learner.service.app, "other", vote, 0)).toBeNull();
    expect(storedEntryOf(c.state(1).learner.service.app, "big", vote, 1)).toBeNull();
  });

  it("refuses a record compacted away, and keeps the records the store names (V3)", () => {
    const c = written(8);
    const { ref } = bigVote(c);
    const records = c.node(1).records;
    const compacted = compactRecords(records);
    const snapshot = compacted.findLast((r) => r._tag === "snapshot");
    expect(snapshot !== undefined && snapshot.logTruncatedUpTo >= ref.slot).toBe(true);
    expect(() => readEntryFromRecords(kv, compacted)(ref)).toThrow(/EntryFromDurableVote.*has no durable vote record/);
    const pinned = compactRecords(records, [], new Set([ref.slot]));
    expect(pinned.length).toBe(compacted.length + 1);
    expect(readEntryFromRecords(kv, pinned)(ref)).toBe(big);
    // Recover forgets the kept vote again: the same replica from either disk.
    c.node(1).records.splice(0, records.length, ...pinned);
    c.crash(1);
    c.restart(1);
    const fromPinned = c.state(1);
    c.node(1).records.splice(0, c.node(1).records.length, ...compacted);
    c.crash(1);
    c.restart(1);
    expect(c.state(1).learner.service).toEqual(fromPinned.learner.service);
    expect(c.state(1).acceptor.votes).toEqual(fromPinned.acceptor.votes);
    expect(c.state(1).learner.log).toEqual(fromPinned.learner.log);
  });

  it("refuses another ballot, another command or key, and other bytes (V2)", () => {
    const ref: StoredEntry = {
      _tag: "stored-entry",
      key: "big",
      slot: 4,
      ballot: b(2, 1),
      index: 1,
      length: big.length,
      chars: big.length + 2,
      hashes: storedEntryOf(kv.transition(put("big", big), kv.start), "big", vote([put("a", "1"), put("big", big)]), 1)!
        .hashes,
    };
    function vote(inputs: readonly KvInput[], slot = 4, ballot = b(2, 1)): VoteRecord<KvInput> {
      return { _tag: "vote", slot, ballot, value: { _tag: "batch", commands: inputs.map((input) => ({ input })) } };
    }
    const good = vote([put("a", "1"), put("big", big)]);
    expect(entryOfVote(kv, good, ref)).toBe(big);
    // A reference that claims another length as a snapshot writes the value (a hole of other size).
    expect(() => entryOfVote(kv, good, { ...ref, chars: ref.chars + 1 })).toThrow(/characters long as a snapshot/);
    const records: DurableRecord<KvInput>[] = [vote([put("a", "1"), put("big", big)], 4, b(1, 1))];
    expect(() => readEntryFromRecords(kv, records)(ref)).toThrow(/has no durable vote record/);
    expect(() => entryOfVote(kv, vote([put("a", "1"), put("big", big)], 5), ref)).toThrow(
      /was given the vote at slot 5/,
    );
    expect(() => entryOfVote(kv, vote([put("big", big)]), ref)).toThrow(/command 1 writes no value to that key/);
    expect(() => entryOfVote(kv, vote([put("a", "1"), put("other", big)]), ref)).toThrow(/writes no value/);
    expect(() => entryOfVote(kv, vote([put("a", "1"), { _tag: "delete", key: "big" }]), ref)).toThrow(
      /writes no value/,
    );
    expect(() => entryOfVote(kv, vote([put("a", "1"), put("big", `${big}y`)]), ref)).toThrow(/code units long/);
    const other = `${big.slice(0, -1)}y`;
    expect(() => entryOfVote(kv, vote([put("a", "1"), put("big", other)]), ref)).toThrow(/other entry hashes/);
    // A swap's new value names the entry as a put's does.
    const swap: KvInput = { _tag: "cas", key: "big", expected: null, value: big };
    expect(entryOfVote(kv, vote([put("a", "1"), swap]), ref)).toBe(big);
  });

  it("names values of the key-value store only", () => {
    expect(storeAtRestFor(kv).writes(put("k", "v"))).toBe("k");
    expect(storeAtRestFor(kv).writes({ _tag: "get", key: "k" })).toBeNull();
    expect(() => storeAtRestFor({ ...kv, name: "counter" })).toThrow(/not of the application counter/);
  });
});

describe("the store's values at rest, read back (V1, V4)", () => {
  const atRest = { storeAtRestCharsMin: 50 };
  const small = "b".repeat(100);
  const entryOf = (c: Cluster): unknown => pmGet(c.state(1).learner.service.app.entries, "big");
  const readsOf = (c: Cluster): ReadEntries[] =>
    c.effectLog.flatMap((e) => (e.replica === 1 && e.effect._tag === "ReadEntries" ? [e.effect] : []));

  it("holds a long value as its reference, and a read by lease or a swap waits for it to be read back", () => {
    const c = bigThenShortWrites(atRest, small, 1);
    const ref = entryOf(c) as StoredEntry;
    expect(ref).toMatchObject({ _tag: "stored-entry", key: "big", index: 0, length: small.length });
    expect(sameEntry(ref, pmGet(c.state(1).learner.origins, "big")!)).toBe(true);
    // The digest counts the same entry: the store with the value in memory has the same digest.
    const inMemory = {
      ...c.state(1).learner.service.app,
      entries: pmSet(c.state(1).learner.service.app.entries, "big", small),
    };
    expect(kv.digest(c.state(1).learner.service.app)).toBe(kv.digest(inMemory));
    // Snapshots (every 2 slots here) read nothing back: each leaves the value a hole, filled from
    // the vote record where the snapshot is written (rule V5), and its bytes hold the value.
    expect(readsOf(c)).toEqual([]);
    const taken = c.node(1).records.findLast((r) => r._tag === "snapshot")!;
    expect(taken.slot).toBeGreaterThan(ref.slot);
    expect(taken.data).toContain(`["big","${small}"]`);
    const earlier = readsOf(c).length;
    const read = c.request(1, { _tag: "get", key: "big" }, "linearizable");
    expect(c.replies.get(read)).toEqual({ _tag: "ok", output: { _tag: "value", value: small } });
    expect(
      readsOf(c)
        .slice(earlier)
        .map((r) => r.purpose),
    ).toEqual(["read"]);
    const swap = c.request(1, { _tag: "cas", key: "big", expected: small, value: "c" }, "linearizable", {
      clientId: "c",
      seq: 9,
    });
    c.stabilize();
    expect(c.replies.get(swap)).toEqual({ _tag: "ok", output: { _tag: "cas", swapped: true, current: small } });
    expect(
      readsOf(c)
        .slice(earlier, earlier + 2)
        .map((r) => r.purpose),
    ).toEqual(["read", "command"]);
    expect(entryOf(c)).toBe("c");
    expect(c.state(1).learner.reading).toEqual([]);
  });

  it("executes a slot whose commands read two values at rest, one of them read back for a read first", () => {
    // One slot in the pipeline, so that the two swaps wait and go out as one batch.
    const c = new Cluster(3, {
      config: { valuesAtRest: true, snapshotIntervalSlots: 64, pipelineSlotsMax: 1, ...atRest },
      compact: false,
    });
    c.quiet = true;
    c.elapse(300);
    c.campaign(1);
    c.stabilize();
    const session = (seq: number) => ({ clientId: "c", seq });
    for (const [i, key] of ["a", "b"].entries()) {
      c.request(1, put(key, small), "linearizable", session(i + 1));
      c.stabilize();
    }
    c.holdReads = true;
    // A read of "a" asks it back (held); a put fills the pipeline, the swaps of "a" and "b" wait behind it.
    c.request(1, { _tag: "get", key: "a" }, "linearizable");
    c.request(1, put("x", "y"), "linearizable", session(3));
    const swaps = ["a", "b"].map((key, i) =>
      c.request(1, { _tag: "cas", key, expected: small, value: key }, "linearizable", session(4 + i)),
    );
    c.stabilize();
    expect(c.heldReads.map((h) => h.read.entries.map((e) => e.key))).toEqual([["a"], ["b"]]);
    // "a" comes back while the batch waits for "b" too: it stays for the batch, which runs once "b" comes.
    for (let answered = 0; answered < 6 && c.answerHeld(); answered++) c.stabilize();
    expect(swaps.map((r) => c.replies.get(r))).toEqual([
      { _tag: "ok", output: { _tag: "cas", swapped: true, current: small } },
      { _tag: "ok", output: { _tag: "cas", swapped: true, current: small } },
    ]);
    expect(c.heldReads).toEqual([]);
  });

  it("puts a value read back at rest again once the read is answered", () => {
    const c = bigThenShortWrites(atRest, small, 1);
    const ref = entryOf(c) as StoredEntry;
    c.request(1, { _tag: "get", key: "big" }, "stale");
    expect(entryOf(c)).toEqual(ref);
  });

  it("refuses a value read back that is not the one its reference names (V2's comparison, in the core)", () => {
    const c = bigThenShortWrites(atRest, small, 1);
    const ref = entryOf(c) as StoredEntry;
    const answer = (value: string) => () =>
      c.apply(1, { _tag: "EntriesRead", now: c.clock(1), entries: [ref], values: [value] });
    expect(answer(`${small}!`)).toThrow(/is 101 code units long, not 100/);
    expect(answer(`c${small.slice(1)}`)).toThrow(/other entry hashes/);
  });

  it("a replica that executes a command on a reference (rule V4 broken) is refused by the store", () => {
    const c = bigThenShortWrites(atRest, small, 1);
    const broken = new Cluster(3, {
      config: { valuesAtRest: true, snapshotIntervalSlots: 2, ...atRest },
      compact: false,
      rules: { ...defaultRules, readsAtRest: () => null },
    });
    broken.quiet = true;
    broken.elapse(300);
    broken.campaign(1);
    broken.stabilize();
    broken.request(1, put("big", small), "linearizable", { clientId: "c", seq: 1 });
    broken.stabilize();
    expect(typeof pmGet(broken.state(1).learner.service.app.entries, "big")).toBe("object");
    const append = () => {
      broken.request(1, { _tag: "append", key: "big", value: "!" }, "linearizable", { clientId: "c", seq: 2 });
      broken.stabilize();
    };
    expect(append).toThrow(/the value under "big" is at rest .* must be read back before it is read/);
    // The same append on the replica as it is: read back first, then executed.
    c.request(1, { _tag: "append", key: "big", value: "!" }, "linearizable", { clientId: "c", seq: 9 });
    c.stabilize();
    expect(entryOf(c)).toBe(`${small}!`);
  });
});

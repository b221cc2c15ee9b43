/**
 * The store's values at rest (impl/core/store-at-rest.ts, proofs/store-at-rest.md): rule V2, a value
 * read back only from the vote record that wrote it and only if it is the value the reference
 * describes, and rule V3, compaction keeps the vote records the store names. Each broken case is
 * refused: a record compacted away, another ballot, another command or key, other bytes.
 */
import { describe, expect, it } from "vitest";
import { kv, type KvInput } from "../../spec/kv.ts";
import { compactRecords, type DurableRecord, type VoteRecord } from "./records.ts";
import { entryOfVote, readEntryFromRecords, storedEntryOf, storeAtRestFor, type StoredEntry } from "./store-at-rest.ts";
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
      hashes: storedEntryOf(kv.transition(put("big", big), kv.start), "big", vote([put("a", "1"), put("big", big)]), 1)!
        .hashes,
    };
    function vote(inputs: readonly KvInput[], slot = 4, ballot = b(2, 1)): VoteRecord<KvInput> {
      return { _tag: "vote", slot, ballot, value: { _tag: "batch", commands: inputs.map((input) => ({ input })) } };
    }
    const good = vote([put("a", "1"), put("big", big)]);
    expect(entryOfVote(kv, good, ref)).toBe(big);
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

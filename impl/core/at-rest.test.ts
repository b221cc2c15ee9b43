/**
 * Values at rest (impl/core/at-rest.ts): with `valuesAtRest`, an executed slot's value lives in the
 * replica's vote record only, and the messages that report it (a catch-up reply, a Promise) leave
 * as `SendStored` effects that the driver completes from its records. Without the rule, the log
 * holds every value since the latest snapshot in memory (up to 160 MiB of 1 MiB values).
 */
import { describe, expect, it } from "vitest";
import type { KvInput } from "../../spec/kv.ts";
import {
  inMemory,
  isStored,
  readChunkFromRecords,
  readFromRecords,
  resolveStored,
  type StoredChunkMsg,
  type StoredValue,
} from "./at-rest.ts";
import type { Value } from "./messages.ts";
import { compactRecords, type DurableRecord } from "./records.ts";
import { slotMapEntries } from "./slot-map.ts";
import { serializationOf, snapshotSize } from "./snapshot.ts";
import { Cluster } from "./testing/cluster.ts";

const put = (key: string, value: string): KvInput => ({ _tag: "put", key, value });
const b = (round: number, replica: number) => ({ round, replica });

/**
 * A snapshot every 2 slots, a log tail of one byte and chunks of 64 bytes: replica 3, down for six
 * writes, must take a state transfer.
 */
const transferAtRest = { valuesAtRest: true, snapshotIntervalSlots: 2, logTailBytes: 1, transferChunkBytesMax: 64 };

/** A 3-replica cluster of `config` led by replica 1, with replica 3 down and `writes` values written. */
function ledWithoutThree(config: Record<string, unknown>, writes: number): Cluster {
  const c = new Cluster(3, { config });
  c.quiet = true;
  c.crash(3);
  c.elapse(300);
  c.campaign(1);
  c.stabilize();
  for (let i = 1; i <= writes; i++) {
    c.request(1, put(`k${i}`, "v".repeat(100 + i)), "linearizable", { clientId: "c", seq: i });
    c.stabilize();
  }
  c.advance(100, 10); // heartbeats tell the follower the last commit index
  return c;
}

function storedSends(c: Cluster, tag: "CatchUpReply" | "Promise"): number {
  return c.effectLog.filter((e) => e.effect._tag === "SendStored" && e.effect.message._tag === tag).length;
}

describe("values at rest", () => {
  it("keeps no executed value in memory where the replica's vote record holds it", () => {
    const c = ledWithoutThree({ valuesAtRest: true }, 4);
    for (const id of [1, 2]) {
      const s = c.state(id);
      expect(s.learner.executedUpTo).toBeGreaterThanOrEqual(4);
      const log = slotMapEntries(s.learner.log);
      for (const [slot, value] of log) expect(isStored(value)).toBe(slot <= s.learner.executedUpTo);
      for (const [, vote] of slotMapEntries(s.acceptor.votes)) expect(isStored(vote.value)).toBe(true);
    }
    // Without the rule (the core's default) the log holds the values themselves.
    const kept = ledWithoutThree({ valuesAtRest: false }, 4);
    expect(slotMapEntries(kept.state(1).learner.log).some(([, value]) => isStored(value))).toBe(false);
  });

  it("serves a catch-up from the disk: the reply leaves as a SendStored, completed from the vote records", () => {
    const c = ledWithoutThree({ valuesAtRest: true }, 5);
    c.restart(3);
    c.advance(1500, 10);
    expect(storedSends(c, "CatchUpReply")).toBeGreaterThan(0);
    expect(c.state(3).learner.executedUpTo).toBe(c.state(1).learner.executedUpTo);
    expect(c.state(3).learner.service).toEqual(c.state(1).learner.service);
    // And after a restart, the values the log keeps are at rest again, read from the records.
    c.crash(1);
    c.restart(1);
    const restarted = c.state(1);
    for (const [slot, value] of slotMapEntries(restarted.learner.log))
      expect(isStored(value)).toBe(slot <= restarted.learner.executedUpTo);
  });

  it("reports votes at rest in a Promise: a candidate behind the acceptor re-proposes their values", () => {
    const c = ledWithoutThree({ valuesAtRest: true }, 3);
    c.crash(1);
    c.restart(3);
    c.elapse(1000);
    c.campaign(3);
    c.stabilize();
    expect(storedSends(c, "Promise")).toBeGreaterThan(0);
    expect(c.state(3).role._tag).toBe("leader");
    c.advance(500, 10);
    expect(c.state(3).learner.executedUpTo).toBeGreaterThanOrEqual(c.state(2).learner.executedUpTo);
    expect(c.state(3).learner.service.app).toEqual(c.state(2).learner.service.app);
    // Replica 2 voted again at slots it had executed: those votes rest at once.
    for (const [, vote] of slotMapEntries(c.state(2).acceptor.votes)) expect(isStored(vote.value)).toBe(true);
  });

  it("reads a value at rest from the vote record it names, and refuses to read one that is not on disk", () => {
    const v: Value<KvInput> = { _tag: "batch", commands: [{ input: put("x", "1") }] };
    const records: DurableRecord<KvInput>[] = [
      { _tag: "vote", slot: 1, ballot: b(1, 1), value: { _tag: "noop" } },
      { _tag: "vote", slot: 1, ballot: b(2, 1), value: v },
    ];
    const stored: StoredValue = { _tag: "stored", slot: 1, ballot: b(2, 1), bytes: 0 };
    const read = readFromRecords(records);
    expect(read(stored)).toBe(v);
    expect(read({ ...stored, ballot: b(1, 1) })).toEqual({ _tag: "noop" });
    expect(() => read({ ...stored, ballot: b(3, 1) })).toThrow(/no durable vote record at slot 1/);
    const message = resolveStored<KvInput>({ _tag: "CatchUpReply", entries: [{ slot: 1, value: stored }] }, read);
    expect(message).toEqual({ _tag: "CatchUpReply", entries: [{ slot: 1, value: v }] });
    expect(() => inMemory(stored, "execute")).toThrow(/at rest, but needed in memory/);
  });

  it("serves a state transfer from the snapshot's record: the state at its slot may go once it is written", () => {
    const c = ledWithoutThree(transferAtRest, 6);
    // What a runtime does once a snapshot's record is written: the state at its slot goes, and
    // reading its bytes from memory would throw. Every replica's latest and prior snapshots.
    for (const id of [1, 2]) {
      // The disk holds the bytes as written: plain strings, no longer the serialization in memory.
      const records = c.node(id).records;
      records.splice(0, records.length, ...records.map((r) => (r._tag === "snapshot" ? { ...r } : r)));
      for (const info of [c.state(id).learner.snapshot, c.state(id).learner.priorSnapshot]) {
        const serialization = serializationOf(info!)!;
        serialization.finish();
        serialization.takeChunks();
        serialization.knownDigest = info!.contentDigest;
        expect(serialization.release()).toBe(true);
        expect(() => info!.data).toThrow(/read from its durable record/);
        expect(snapshotSize(info)).toBeGreaterThan(transferAtRest.transferChunkBytesMax);
      }
    }
    c.restart(3);
    c.advance(3000, 10);
    const chunks = c.effectLog.filter((e) => e.effect._tag === "SendStored" && e.effect.message._tag === "StoredChunk");
    expect(chunks.length).toBeGreaterThan(1);
    expect(c.effectLog.some((e) => e.effect._tag === "Send" && e.effect.message._tag === "SnapshotChunk")).toBe(false);
    expect(c.state(3).learner.snapshot).not.toBeNull();
    expect(c.state(3).learner.executedUpTo).toBe(c.state(1).learner.executedUpTo);
    expect(c.state(3).learner.service).toEqual(c.state(1).learner.service);
  });

  it("recovers the snapshot before the latest at rest: its bytes stay on disk, and transfers are still served", () => {
    const c = ledWithoutThree(transferAtRest, 6);
    const before = c.state(2).learner.priorSnapshot!;
    const size = snapshotSize(before);
    c.crash(2);
    c.restart(2);
    const prior = c.state(2).learner.priorSnapshot!;
    expect([prior.slot, prior.digest, prior.contentDigest]).toEqual([before.slot, before.digest, before.contentDigest]);
    expect(snapshotSize(prior)).toBe(size);
    expect(() => prior.data).toThrow(/read from its durable record/);
    // Replica 3 takes a transfer from replica 2 (replica 1 down): served from 2's records.
    c.crash(1);
    c.restart(3);
    c.advance(3000, 10);
    expect(c.state(3).learner.executedUpTo).toBe(c.state(2).learner.executedUpTo);
    expect(c.state(3).learner.service).toEqual(c.state(2).learner.service);
  });

  it("reads a chunk at rest only from the durable record of the snapshot it claims (ChunkFromDurableSnapshot)", () => {
    const data = '{"a snapshot":"' + "x".repeat(40) + '"}';
    const snapshot = {
      _tag: "snapshot",
      slot: 4,
      digest: "d4",
      contentDigest: "c4",
      maxBal: b(1, 1),
      logTruncatedUpTo: 2,
      data,
    } as const satisfies DurableRecord<KvInput>;
    const chunk: StoredChunkMsg = {
      _tag: "StoredChunk",
      slot: 4,
      digest: "d4",
      contentDigest: "c4",
      totalBytes: data.length,
      offset: 10,
      length: 16,
    };
    const noValue = (): never => {
      throw new Error("no value at rest here");
    };
    const read = readChunkFromRecords<KvInput>([snapshot]);
    expect(read(chunk)).toBe(data.slice(10, 26));
    expect(resolveStored<KvInput>(chunk, noValue, read)).toEqual({
      _tag: "SnapshotChunk",
      slot: 4,
      digest: "d4",
      contentDigest: "c4",
      totalBytes: data.length,
      offset: 10,
      data: data.slice(10, 26),
    });
    // Broken states: no record of that slot (compacted away), or a record of other bytes or another state.
    expect(() => readChunkFromRecords<KvInput>([{ ...snapshot, slot: 8 }])(chunk)).toThrow(
      /ChunkFromDurableSnapshot: no durable/,
    );
    expect(() => readChunkFromRecords<KvInput>([{ ...snapshot, contentDigest: "c5" }])(chunk)).toThrow(
      /ChunkFromDurableSnapshot: .* is not the one a chunk at rest claims/,
    );
    expect(() => readChunkFromRecords<KvInput>([{ ...snapshot, data: data + " " }])(chunk)).toThrow(
      /ChunkFromDurableSnapshot/,
    );
    expect(() => readChunkFromRecords<KvInput>([{ ...snapshot, digest: "d5" }])(chunk)).toThrow(
      /ChunkFromDurableSnapshot/,
    );
    expect(() => resolveStored<KvInput>(chunk, noValue)).toThrow(/no reader of snapshot records/);
  });

  it("compaction keeps the record of a snapshot a transfer still fetches (pinned), besides the latest two", () => {
    const snap = (slot: number): DurableRecord<KvInput> => ({
      _tag: "snapshot",
      slot,
      digest: `d${slot}`,
      contentDigest: `c${slot}`,
      maxBal: b(1, 1),
      logTruncatedUpTo: slot,
      data: "{}",
    });
    const records = [snap(2), snap(4), snap(6), snap(8)];
    const slots = (kept: readonly DurableRecord<KvInput>[]): number[] =>
      kept.flatMap((r) => (r._tag === "snapshot" ? [r.slot] : []));
    expect(slots(compactRecords(records))).toEqual([6, 8]);
    expect(slots(compactRecords(records, [4]))).toEqual([4, 6, 8]);
    expect(slots(compactRecords(records, [8]))).toEqual([6, 8]);
  });
});

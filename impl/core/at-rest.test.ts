/**
 * Values at rest (impl/core/at-rest.ts): with `valuesAtRest`, an executed slot's value lives in the
 * replica's vote record only, and the messages that report it (a catch-up reply, a Promise) leave
 * as `SendStored` effects that the driver completes from its records. Without the rule, the log
 * holds every value since the latest snapshot in memory (up to 160 MiB of 1 MiB values).
 */
import { describe, expect, it } from "vitest";
import type { KvInput } from "../../spec/kv.ts";
import { inMemory, isStored, readFromRecords, resolveStored, type StoredValue } from "./at-rest.ts";
import type { Value } from "./messages.ts";
import type { DurableRecord } from "./records.ts";
import { slotMapEntries } from "./slot-map.ts";
import { Cluster } from "./testing/cluster.ts";

const put = (key: string, value: string): KvInput => ({ _tag: "put", key, value });
const b = (round: number, replica: number) => ({ round, replica });

/** A 3-replica cluster led by replica 1, with replica 3 down and `writes` values written. */
function ledWithoutThree(valuesAtRest: boolean, writes: number): Cluster {
  const c = new Cluster(3, { config: { valuesAtRest } });
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
    const c = ledWithoutThree(true, 4);
    for (const id of [1, 2]) {
      const s = c.state(id);
      expect(s.learner.executedUpTo).toBeGreaterThanOrEqual(4);
      const log = slotMapEntries(s.learner.log);
      for (const [slot, value] of log) expect(isStored(value)).toBe(slot <= s.learner.executedUpTo);
      for (const [, vote] of slotMapEntries(s.acceptor.votes)) expect(isStored(vote.value)).toBe(true);
    }
    // Without the rule (the core's default) the log holds the values themselves.
    const kept = ledWithoutThree(false, 4);
    expect(slotMapEntries(kept.state(1).learner.log).some(([, value]) => isStored(value))).toBe(false);
  });

  it("serves a catch-up from the disk: the reply leaves as a SendStored, completed from the vote records", () => {
    const c = ledWithoutThree(true, 5);
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
    const c = ledWithoutThree(true, 3);
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
});

/**
 * The feature level chosen in the log (spec/service.ts, impl/core/learner.ts): a leader configured
 * with `featureLevel` 2 proposes the raise in a slot of its own, and from the slot after it every
 * replica bounds its session table and evicts the same session at the same slot, a replica that
 * executes the log later (after a crash, from a snapshot) included. A request whose session was
 * evicted is refused `session-expired`. A replica that meets a raise above
 * what it executes stops there with a clear message instead of executing on by rules it lacks.
 * A leader holds its raise back while its driver says a member executes less (`FeaturesKnown`).
 */
import { describe, expect, it } from "vitest";
import { featureLevelMax, featureLevelOf, sessionsOf } from "../../spec/service.ts";
import type { KvInput } from "../../spec/kv.ts";
import { Cluster } from "./testing/cluster.ts";
import { decodeSnapshot } from "./snapshot.ts";
import { featuresDue } from "./leader.ts";

const append = (value: string): KvInput => ({ _tag: "append", key: "log", value });

describe("the feature level", () => {
  it("is raised by the leader, and every replica evicts alike, one replaying from a snapshot included", () => {
    const config = { featureLevel: 2, sessionsMax: 2, checkpointIntervalSlots: 2, snapshotIntervalSlots: 4 };
    const c = Cluster.elected(3, { config });
    c.crash(3);
    const first = c.request(1, append("a"), "linearizable", { clientId: "a", seq: 1 });
    c.stabilize();
    for (const client of ["b", "d", "e"]) c.request(1, append(client), "linearizable", { clientId: client, seq: 1 });
    c.stabilize();
    expect(c.replies.get(first)).toMatchObject({ _tag: "ok" });
    // a's next request comes after two newer sessions evicted it: refused, not executed
    const late = c.request(1, append("a2"), "linearizable", { clientId: "a", seq: 2 });
    c.stabilize();
    expect(c.replies.get(late)).toEqual({ _tag: "session-expired" });
    const leader = c.state(1).learner.service;
    expect(leader.features).toMatchObject({ level: 2, sessionsMax: 2, evicted: 2 });
    expect(sessionsOf(leader).map(([id]) => id)).toEqual(["d", "e"]);
    expect(leader.executed).toBe(4);
    c.restart(3);
    c.advance(600, 50);
    for (let i = 0; i < 4; i++) c.request(1, { _tag: "put", key: `k${i}`, value: "x" }, "linearizable");
    c.advance(600, 50);
    const end = c.state(1).learner.executedUpTo;
    for (const id of [1, 2, 3]) {
      const s = c.state(id);
      expect(s.halted, `replica ${id}`).toBeNull();
      expect(s.learner.executedUpTo, `replica ${id}`).toBe(end);
      expect(sessionsOf(s.learner.service)).toEqual(sessionsOf(c.state(1).learner.service));
      expect(s.learner.service.features?.evicted).toBe(2);
      expect(s.monitor.checkpoints.at(-1)).toEqual(c.state(1).monitor.checkpoints.at(-1));
    }
    // the snapshot keeps the level, the bounds and the order
    const snapshot = c.state(1).learner.snapshot!;
    const decoded = decodeSnapshot(c.state(1).ctx, snapshot.data);
    if (typeof decoded === "string") throw new Error(decoded);
    expect(decoded.service.features).toMatchObject({ level: 2, sessionsMax: 2, evicted: 2 });
  });

  it("level 4: an append whose whole is over 1 MiB of UTF-8 is refused where level 3 executes it, on every replica alike", () => {
    // 600,000 bytes of UTF-8 in 200,000 code units: two make a whole over the limit in bytes only.
    const half = (c: string): KvInput => ({ _tag: "append", key: "big", value: c.repeat(200_000) });
    const outcomes = (level: number) => {
      const config = { featureLevel: level, checkpointIntervalSlots: 2, snapshotIntervalSlots: 4 };
      const c = Cluster.elected(3, { config });
      c.crash(3);
      // Requests without a session (applied to the store alone) and one under a session.
      const first = c.request(1, half("\u20ac"), "linearizable");
      c.stabilize();
      const second = c.request(1, half("\u20ac"), "linearizable");
      c.stabilize();
      const open = c.openSession(1);
      c.stabilize();
      const opened = c.replies.get(open);
      const session = opened?._tag === "session-opened" ? opened.clientId : "none";
      const third = c.request(1, half("\u00e9"), "linearizable", { clientId: session, seq: 1 });
      c.stabilize();
      const fourth = c.request(1, half("\u20ac"), "linearizable", { clientId: session, seq: 2 });
      c.stabilize();
      // Replica 3 catches up (from the log or a snapshot, which carries the byte counts anew).
      c.restart(3);
      c.advance(600, 50);
      c.request(1, { _tag: "put", key: "k", value: "x" }, "linearizable");
      c.advance(600, 50);
      for (const id of [2, 3]) {
        const s = c.state(id);
        expect(s.halted, `replica ${id}`).toBeNull();
        expect(s.learner.executedUpTo, `replica ${id}`).toBe(c.state(1).learner.executedUpTo);
        expect(s.monitor.checkpoints.at(-1)).toEqual(c.state(1).monitor.checkpoints.at(-1));
      }
      const tags = [first, second, third, fourth].map((r) => {
        const reply = c.replies.get(r);
        if (reply?._tag !== "ok") return reply?._tag;
        const o = reply.output;
        return o._tag === "too-large" ? `too-large ${o.length} ${o.unit ?? "code-units"}` : o._tag;
      });
      return { tags, level: featureLevelOf(c.state(3).learner.service) };
    };
    expect(outcomes(4)).toEqual({
      // 600,000 bytes, then 1,200,000 refused; 1,000,000 (2 bytes a character), then 1,600,000 refused.
      tags: ["value", "too-large 1200000 bytes", "value", "too-large 1600000 bytes"],
      level: 4,
    });
    expect(outcomes(3)).toEqual({ tags: ["value", "value", "value", "value"], level: 3 });
  });

  it("level 3: the service opens sessions, a late copy of a first request after eviction never runs again", () => {
    const config = { featureLevel: 3, sessionsMax: 2, checkpointIntervalSlots: 2, snapshotIntervalSlots: 4 };
    const c = Cluster.elected(3, { config });
    c.crash(3);
    const opens = [c.openSession(1), c.openSession(1)];
    c.stabilize();
    const [a, b] = opens.map((r) => c.replies.get(r));
    expect([a, b]).toEqual([
      { _tag: "session-opened", clientId: "session 1" },
      { _tag: "session-opened", clientId: "session 2" },
    ]);
    const first = c.request(1, append("a1"), "linearizable", { clientId: "session 1", seq: 1 });
    c.stabilize();
    expect(c.replies.get(first)).toMatchObject({ _tag: "ok" });
    c.request(1, append("b1"), "linearizable", { clientId: "session 2", seq: 1 });
    // a client-chosen id opens no session at level 3, whatever its number
    const chosen = c.request(1, append("x"), "linearizable", { clientId: "c", seq: 1 });
    // a third session evicts session 1 (the least recently executed)
    const third = c.openSession(1);
    c.stabilize();
    expect(c.replies.get(chosen)).toEqual({ _tag: "session-expired" });
    expect(c.replies.get(third)).toEqual({ _tag: "session-opened", clientId: "session 3" });
    // a late copy of session 1's first request: level 2 would run it again and reopen the session
    const late = c.request(1, append("a1"), "linearizable", { clientId: "session 1", seq: 1 });
    c.stabilize();
    expect(c.replies.get(late)).toEqual({ _tag: "session-expired" });
    const leader = c.state(1).learner.service;
    expect(leader.features).toMatchObject({ level: 3, evicted: 1, opened: 3 });
    expect(sessionsOf(leader).map(([id]) => id)).toEqual(["session 2", "session 3"]);
    // replica 3 catches up (from the log or a snapshot) and holds the same table and digests
    c.restart(3);
    c.advance(600, 50);
    for (let i = 0; i < 4; i++) c.request(1, { _tag: "put", key: `k${i}`, value: "x" }, "linearizable");
    c.advance(600, 50);
    for (const id of [2, 3]) {
      const s = c.state(id);
      expect(s.learner.executedUpTo, `replica ${id}`).toBe(c.state(1).learner.executedUpTo);
      expect(s.learner.service.features).toEqual(c.state(1).learner.service.features);
      expect(s.monitor.checkpoints.at(-1)).toEqual(c.state(1).monitor.checkpoints.at(-1));
    }
    const decoded = decodeSnapshot(c.state(1).ctx, c.state(1).learner.snapshot!.data);
    if (typeof decoded === "string") throw new Error(decoded);
    expect(decoded.service.features).toMatchObject({ level: 3, opened: 3 });
  });

  it("below level 3 the leader refuses to open a session: the client names its own", () => {
    const c = Cluster.elected(3, { config: { featureLevel: 2 } });
    const open = c.openSession(1);
    c.stabilize();
    const reply = c.replies.get(open);
    expect(reply?._tag).toBe("refused");
    expect(reply?._tag === "refused" ? reply.reason : "").toMatch(/feature level 2, which opens no sessions/);
  });

  it("is not raised by default: the log and its snapshots stay those of level 1", () => {
    const c = Cluster.elected(3, { config: { snapshotIntervalSlots: 2 } });
    c.request(1, append("a"), "linearizable", { clientId: "a", seq: 1 });
    c.request(1, append("b"), "linearizable", { clientId: "b", seq: 1 });
    c.stabilize();
    expect(c.state(1).learner.service.features).toBeUndefined();
    expect(c.state(1).learner.snapshot?.data).not.toMatch(/features/);
  });

  it("waits for every member to know the level: no raise, no opened session, until the driver says so", () => {
    const c = new Cluster(3, { config: { featureLevel: 3 } });
    c.quiet = true;
    // Each driver counts a member that advertised level 2 at most (an older version).
    for (const id of [1, 2, 3]) c.apply(id, { _tag: "FeaturesKnown", now: c.clock(id), level: 2 });
    c.elapse(300);
    c.campaign(1);
    c.stabilize();
    expect(c.state(1).role._tag).toBe("leader");
    c.request(1, append("a"), "linearizable", { clientId: "a", seq: 1 });
    const open = c.openSession(1);
    c.stabilize();
    c.advance(300, 50);
    for (const id of [1, 2, 3]) expect(featureLevelOf(c.state(id).learner.service), `replica ${id}`).toBe(1);
    const refused = c.replies.get(open);
    expect(refused?._tag === "refused" ? refused.reason : refused).toMatch(
      /feature level 1, which opens no sessions \(level 3 does\) \(its raise to 3 waits until every member says it executes that level\)/,
    );
    const leader = c.state(1);
    if (leader.role._tag !== "leader") throw new Error("replica 1 does not lead");
    expect(featuresDue(leader, leader.role)).toBeNull();
    // A stand-in that ignores the count proposes the raise at once: this is what the wait withholds.
    expect(featuresDue({ ...leader, featuresKnown: featureLevelMax }, leader.role)).toMatchObject({ level: 3 });
    // The member is upgraded: its driver's count reaches 3 and the leader raises the log at once.
    c.apply(1, { _tag: "FeaturesKnown", now: c.clock(1), level: 3 });
    c.stabilize();
    c.advance(300, 50);
    for (const id of [1, 2, 3]) expect(featureLevelOf(c.state(id).learner.service), `replica ${id}`).toBe(3);
    const opened = c.openSession(1);
    c.stabilize();
    expect(c.replies.get(opened)).toEqual({ _tag: "session-opened", clientId: "session 1" });
  });

  it("above what this version executes, stops the replica before that slot with a clear message", () => {
    const c = Cluster.elected(3);
    c.stabilize();
    const next = c.state(2).learner.executedUpTo + 1;
    const level = featureLevelMax + 1;
    c.apply(2, {
      _tag: "Receive",
      now: c.clock(2),
      from: 1,
      message: {
        _tag: "CatchUpReply",
        entries: [{ slot: next, value: { _tag: "features", level, sessionsMax: 5, outputBytesMax: 5 } }],
      },
    });
    const s = c.state(2);
    expect(s.learner.executedUpTo).toBe(next - 1);
    expect(s.halted?.message).toMatch(
      new RegExp(`slot ${next}: it raises the feature level to ${level}, above ${featureLevelMax}`),
    );
    const alarm = c.effectLog.find((e) => e.replica === 2 && e.effect._tag === "Alarm");
    expect(alarm).toBeDefined();
  });
});

/**
 * Properties of `step` itself: Recover rebuilds exactly what the durable records say (and the
 * durable part of the state before a crash), `step` is deterministic and never changes the state
 * it is given, and the core's assertions stop it on impossible input instead of going on.
 */
import { fc, test } from "@fast-check/vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { kv, kvGet, type KvInput, type KvOutput, type KvState } from "../../spec/kv.ts";
import { AssertionFailure } from "./assert.ts";
import { compareBallots, showBallot } from "./ballot.ts";
import { parseConfig } from "./config.ts";
import { mulberry32 } from "./election.ts";
import { plainBytes, plainEqual } from "./messages.ts";
import { executionPending, step, type ReplicaEffect } from "./replica.ts";
import { contentDigestStart } from "./snapshot.ts";
import { decodingStart } from "./snapshot-decoder.ts";
import { slotMapEntries, slotMapSet } from "./slot-map.ts";
import { initialState, type ReplicaState } from "./state.ts";
import { Cluster, followerLearningAtOnce } from "./testing/cluster.ts";
import { parseScript, ScriptRunner } from "./testing/script.ts";

type Replica = ReplicaState<KvState, KvInput, KvOutput>;

/** The state a replica is in, as plain data (its service state by digest and sessions). */
function dump(s: Replica): unknown {
  const role = s.role;
  return {
    started: s.started,
    now: s.now,
    halted: s.halted,
    role: role._tag === "follower" ? role : { ...role, revealed: slotMapEntries(role.revealed) },
    acceptor: { ...s.acceptor, votes: slotMapEntries(s.acceptor.votes) },
    learner: {
      ...s.learner,
      log: slotMapEntries(s.learner.log),
      service: kv.digest(s.learner.service.app),
      executed: s.learner.service.executed,
    },
    election: s.election,
    monitor: s.monitor,
  };
}

/** Drive a cluster through a random healthy-then-faulty history, calling `visit` before each event. */
function randomRun(seed: number, steps: number, visit?: (c: Cluster, id: number) => void): Cluster {
  let prng = seed >>> 0;
  const rnd = (n: number) => {
    const r = mulberry32(prng);
    prng = r.prng;
    return r.value % n;
  };
  const c = new Cluster(3, {
    config: {
      checkpointIntervalSlots: 3,
      pipelineSlotsMax: 3,
      batchCommandsMax: 2,
      snapshotIntervalSlots: 5,
      transferChunkBytesMax: 64,
    },
  });
  c.quiet = true;
  let seq = 1;
  for (let i = 0; i < steps; i++) {
    const roll = rnd(100);
    const live = [...c.nodes.keys()].filter((id) => c.node(id).state !== null);
    if (roll < 50 && c.inFlight.length > 0) {
      const [m] = c.inFlight.splice(rnd(Math.min(4, c.inFlight.length)), 1);
      if (m !== undefined && c.node(m.to).state !== null) {
        visit?.(c, m.to);
        c.apply(m.to, { _tag: "Receive", now: c.clock(m.to), from: m.from, message: m.message });
      }
    } else if (roll < 75) {
      c.now += 1 + rnd(50);
      for (const id of live) {
        visit?.(c, id);
        c.apply(id, { _tag: "Tick", now: c.clock(id) });
      }
    } else if (roll < 93 && live.length > 0) {
      const id = live[rnd(live.length)]!;
      visit?.(c, id);
      c.request(id, { _tag: "append", key: "k", value: `${seq};` }, "linearizable", { clientId: "c", seq });
      seq++;
    } else if (roll < 96 && live.length > 1) {
      c.crash(live[rnd(live.length)]!);
    } else {
      const down = [...c.nodes.keys()].filter((id) => c.node(id).state === null);
      if (down.length > 0) c.restart(down[rnd(down.length)]!);
    }
    c.lines.length = 0;
  }
  return c;
}

describe("Recover", () => {
  test.prop([fc.integer({ min: 0, max: 2 ** 31 - 1 })], { numRuns: 12 })(
    "rebuilds exactly the durable part of the state from the records",
    (seed) => {
      let visits = 0;
      randomRun(seed, 300, (c, id) => {
        if (visits++ % 4 !== 0) return;
        const live = c.state(id);
        const node = c.node(id);
        const recovered = step(initialState(live.ctx.config, kv), {
          _tag: "Recover",
          now: 5000,
          records: node.records.slice(),
        }).state;
        // What the records say: maxBal, the latest vote per slot, the chosen log ...
        expect(recovered.acceptor.maxBal).toEqual(live.acceptor.maxBal);
        expect(slotMapEntries(recovered.acceptor.votes)).toEqual(slotMapEntries(live.acceptor.votes));
        expect(slotMapEntries(recovered.learner.log)).toEqual(slotMapEntries(live.learner.log));
        // ... the chosen prefix executed again, to the same state and output digests ...
        expect(recovered.learner.executedUpTo).toBe(live.learner.executedUpTo);
        expect(kv.digest(recovered.learner.service.app)).toBe(kv.digest(live.learner.service.app));
        expect(recovered.monitor.outputDigestA).toBe(live.monitor.outputDigestA);
        expect(recovered.monitor.checkpoints).toEqual(live.monitor.checkpoints);
        // ... the snapshots, the truncation points and the configurations ...
        expect(recovered.learner.snapshot).toEqual(live.learner.snapshot);
        expect(recovered.learner.priorSnapshot).toEqual(live.learner.priorSnapshot);
        expect(recovered.learner.logTruncatedUpTo).toBe(live.learner.logTruncatedUpTo);
        expect(recovered.acceptor.truncatedUpTo).toBe(live.acceptor.truncatedUpTo);
        expect(recovered.learner.configs).toEqual(live.learner.configs);
        // ... and nothing else: no role, no grant, no leader, a restart wait of one lease.
        expect(recovered.role._tag).toBe("follower");
        expect(recovered.acceptor.grantUntil).toBe(Number.NEGATIVE_INFINITY);
        expect(recovered.acceptor.noPromiseUntil).toBe(5000 + live.ctx.config.leaseMs);
        expect(recovered.learner.leaderHint).toBeNull();
        expect(recovered.learner.commitIndex).toBe(recovered.learner.executedUpTo);
      });
    },
  );

  it("refuses records that contradict each other (a corrupted disk)", () => {
    const config = parseConfig({ members: [1, 2, 3], self: 1 });
    const vote = (round: number) => ({
      _tag: "vote" as const,
      slot: 1,
      ballot: { round, replica: 2 },
      value: { _tag: "noop" as const },
    });
    expect(() => step(initialState(config, kv), { _tag: "Recover", now: 0, records: [vote(2), vote(1)] })).toThrow(
      AssertionFailure,
    );
    const chosen = { _tag: "chosen" as const, slot: 1, value: { _tag: "noop" as const } };
    expect(() => step(initialState(config, kv), { _tag: "Recover", now: 0, records: [chosen, chosen] })).toThrow(
      /two chosen records/,
    );
    // A chosen record that names a vote: resolved against the last vote record at its slot, and
    // refused when that vote is missing or in another ballot.
    const named = (round: number) => ({ _tag: "chosen" as const, slot: 1, ballot: { round, replica: 2 } });
    const put = {
      _tag: "batch" as const,
      commands: [{ clientId: "c", seq: 1, input: { _tag: "put" as const, key: "k", value: "v" } }],
    };
    const recovered = step(initialState(config, kv), {
      _tag: "Recover",
      now: 0,
      records: [{ ...vote(1), value: put }, named(1)],
    }).state;
    expect(recovered.learner.executedUpTo).toBe(1);
    expect(kvGet(recovered.learner.service.app, "k")).toBe("v");
    for (const records of [[named(1)], [vote(1), vote(2), named(1)]]) {
      expect(() => step(initialState(config, kv), { _tag: "Recover", now: 0, records })).toThrow(
        /names a vote in \(1,2\), but the last vote record there is/,
      );
    }
  });

  it("recovers a vote record repeated in its ballot, and refuses one of another value there", () => {
    // An Accept resent after a snapshot dropped the slot's vote is voted again; compaction keeps
    // both records of a slot whose vote wrote a value at rest (rule V3) and may delete the
    // snapshot between them.
    const config = parseConfig({ members: [1, 2, 3], self: 1 });
    const put = (value: string) => ({
      _tag: "batch" as const,
      commands: [{ clientId: "c", seq: 1, input: { _tag: "put" as const, key: "k", value } }],
    });
    const vote = (value: string) => ({
      _tag: "vote" as const,
      slot: 1,
      ballot: { round: 7, replica: 3 },
      value: put(value),
    });
    const recovered = step(initialState(config, kv), {
      _tag: "Recover",
      now: 0,
      records: [vote("v"), vote("v")],
    }).state;
    expect(slotMapEntries(recovered.acceptor.votes)).toEqual([
      [1, { ballot: { round: 7, replica: 3 }, value: put("v") }],
    ]);
    expect(() => step(initialState(config, kv), { _tag: "Recover", now: 0, records: [vote("v"), vote("w")] })).toThrow(
      /vote record at slot 1 in \(7,3\) follows one in \(7,3\)/,
    );
  });
});

describe("step", () => {
  test.prop([fc.integer({ min: 0, max: 2 ** 31 - 1 })], { numRuns: 10 })(
    "is deterministic: the same events give the same effects",
    (seed) => {
      const a = randomRun(seed, 300);
      const b = randomRun(seed, 300);
      expect(b.effectLog.length).toBe(a.effectLog.length);
      expect(plainEqual(a.effectLog, b.effectLog)).toBe(true);
    },
  );

  test.prop([fc.integer({ min: 0, max: 2 ** 31 - 1 })], { numRuns: 10 })(
    "never changes the state it is given",
    (seed) => {
      randomRun(seed, 300, (c, id) => {
        const before = c.state(id);
        const snapshot = dump(before);
        step(before, { _tag: "Tick", now: c.clock(id) + 1000 });
        step(before, {
          _tag: "ClientRequest",
          now: c.clock(id),
          requestId: 0,
          clientId: "x",
          seq: 1,
          input: { _tag: "put", key: "q", value: "v" },
          consistency: "linearizable",
        });
        expect(dump(before)).toEqual(snapshot);
        expect(kvGet(before.learner.service.app, "q")).toBeNull();
      });
    },
  );
});

describe("assertions", () => {
  const config = parseConfig({ members: [1, 2, 3], self: 1 });
  const booted = step(initialState(config, kv), { _tag: "Recover", now: 100, records: [] }).state;

  it("stop a replica fed an event before Recover", () => {
    expect(() => step(initialState(config, kv), { _tag: "Tick", now: 0 })).toThrow(
      /first event after a \(re\)start must be Recover/,
    );
  });

  it("stop a replica whose clock goes backwards", () => {
    expect(() => step(booted, { _tag: "Tick", now: 99 })).toThrow(/clock went backwards/);
  });

  it("take a snapshot when the bytes executed since the last one reach snapshotIntervalBytes or the last snapshot's size, at the same slots everywhere", () => {
    const c = Cluster.elected(3, { config: { snapshotIntervalBytes: 200 } });
    const snapshots = new Map<number, { slot: number; bytes: number }[]>([1, 2, 3].map((id) => [id, []]));
    const valueBytes = new Map<number, number>();
    for (let i = 0; i < 30; i++) {
      const key = String.fromCharCode(97 + (i % 26));
      c.request(1, { _tag: "put", key, value: key.repeat(60) }, "linearizable");
      c.stabilize();
      for (const [slot, value] of slotMapEntries(c.state(1).learner.log)) valueBytes.set(slot, plainBytes(value));
      for (const [id, taken] of snapshots) {
        const snapshot = c.state(id).learner.snapshot;
        if (snapshot !== null && snapshot.slot !== taken.at(-1)?.slot)
          taken.push({ slot: snapshot.slot, bytes: snapshot.data.length });
      }
    }
    const taken = snapshots.get(1)!;
    expect(taken.length).toBeGreaterThanOrEqual(2);
    expect(taken.every(({ slot }) => slot % 1024 !== 0)).toBe(true);
    expect(snapshots.get(2)).toEqual(taken);
    expect(snapshots.get(3)).toEqual(taken);
    // About 80 bytes a put: the first snapshot comes after 200 bytes; the state it serializes is
    // larger, and the next waits for as many bytes executed as that snapshot holds.
    expect(taken[0]!.slot).toBeLessThanOrEqual(4);
    for (let k = 1; k < taken.length; k++) {
      let executed = 0;
      for (let slot = taken[k - 1]!.slot + 1; slot <= taken[k]!.slot; slot++) executed += valueBytes.get(slot)!;
      expect(executed).toBeGreaterThanOrEqual(Math.max(200, taken[k - 1]!.bytes));
    }
  });

  it("take a snapshot when the commands executed since the last one reach snapshotIntervalCommands, a batch counting each of its commands, at the same slots everywhere", () => {
    const c = Cluster.elected(3, { config: { snapshotIntervalCommands: 5, adaptiveBatching: true } });
    const snapshots = new Map<number, number[]>([1, 2, 3].map((id) => [id, []]));
    const commands = new Map<number, number>();
    const note = (): void => {
      for (const [slot, value] of slotMapEntries(c.state(1).learner.log))
        commands.set(slot, value._tag === "batch" ? value.commands.length : 1);
      for (const [id, taken] of snapshots) {
        const snapshot = c.state(id).learner.snapshot;
        if (snapshot !== null && snapshot.slot !== taken.at(-1)) taken.push(snapshot.slot);
      }
    };
    // Lone writes, a slot each, then rounds of several at once, which the leader batches.
    for (let i = 0; i < 7; i++) {
      c.request(1, { _tag: "put", key: `a${i}`, value: "x" }, "linearizable");
      c.stabilize();
      note();
    }
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 4; i++) c.request(1, { _tag: "put", key: `b${round}.${i}`, value: "x" }, "linearizable");
      c.stabilize();
      note();
    }
    c.advance(200, 50); // the followers learn the last slots from a heartbeat
    note();
    const taken = snapshots.get(1)!;
    expect(taken[0]).toBe(5);
    expect(taken.length).toBeGreaterThanOrEqual(3);
    expect(snapshots.get(2)).toEqual(taken);
    expect(snapshots.get(3)).toEqual(taken);
    // Each snapshot comes at the first slot that brings the commands since the last one to 5.
    expect([...commands.values()].some((n) => n > 1)).toBe(true);
    for (let k = 1; k < taken.length; k++) {
      let executed = 0;
      for (let slot = taken[k - 1]! + 1; slot <= taken[k]!; slot++) executed += commands.get(slot)!;
      expect(executed).toBeGreaterThanOrEqual(5);
      expect(executed - commands.get(taken[k]!)!).toBeLessThan(5);
    }
  });

  it("keep at most logTailBytes of the log at and below the latest snapshot, and catch a peer up from it or by transfer", () => {
    const run = (logTailBytes?: number) => {
      const c = Cluster.elected(3, {
        config: { snapshotIntervalSlots: 8, ...(logTailBytes === undefined ? {} : { logTailBytes }) },
      });
      for (let i = 0; i < 20; i++) {
        const key = String.fromCharCode(97 + (i % 26));
        c.request(1, { _tag: "put", key, value: key.repeat(60) }, "linearizable");
        c.stabilize();
      }
      const { learner } = c.state(1);
      const snapshot = learner.snapshot!;
      const kept = slotMapEntries(learner.log).filter(([slot]) => slot <= snapshot.slot);
      const answer = (fromSlot: number) =>
        step(c.state(1), {
          _tag: "Receive",
          now: c.clock(1),
          from: 3,
          message: { _tag: "CatchUp", fromSlot, toSlot: learner.executedUpTo },
        }).effects.flatMap((e) => (e._tag === "Send" ? [e.message._tag] : []));
      return { snapshot, kept, logTruncatedUpTo: learner.logTruncatedUpTo, answer };
    };
    // Default (32 MiB): everything since the snapshot before last stays, as without the bound.
    const wide = run();
    expect(wide.snapshot.slot).toBe(16);
    expect(wide.logTruncatedUpTo).toBe(8);
    expect(wide.kept.map(([slot]) => slot)).toEqual([9, 10, 11, 12, 13, 14, 15, 16]);
    // About 80 bytes a put: a 200-byte tail keeps the newest two slots at and below the snapshot.
    const narrow = run(200);
    expect(narrow.snapshot.slot).toBe(16);
    expect(narrow.kept.map(([slot]) => slot)).toEqual([15, 16]);
    expect(narrow.kept.reduce((n, [, value]) => n + plainBytes(value), 0)).toBeLessThanOrEqual(200);
    expect(narrow.logTruncatedUpTo).toBe(14);
    // A peer behind the tail is sent the snapshot; one within it, log entries.
    expect(narrow.answer(10)).toEqual(["SnapshotChunk"]);
    expect(narrow.answer(15)).toEqual(["CatchUpReply"]);
    expect(wide.answer(10)).toEqual(["CatchUpReply"]);
    // A tail smaller than one slot still keeps the snapshot's own slot.
    expect(run(1).kept.map(([slot]) => slot)).toEqual([16]);
  });

  it("bound a catch-up reply by the bytes of its values as well as by its entries", () => {
    const replyTo = (batchBytesMax: number) => {
      const c = Cluster.elected(3, { config: { batchBytesMax } });
      for (const key of ["a", "b", "c", "d"]) {
        c.request(1, { _tag: "put", key, value: key.repeat(60) }, "linearizable");
        c.stabilize();
      }
      const executed = c.state(1).learner.executedUpTo;
      const { effects } = step(c.state(1), {
        _tag: "Receive",
        now: c.clock(1),
        from: 3,
        message: { _tag: "CatchUp", fromSlot: 1, toSlot: executed },
      });
      const reply = effects.find((e) => e._tag === "Send" && e.message._tag === "CatchUpReply");
      if (reply?._tag !== "Send" || reply.message._tag !== "CatchUpReply") throw new Error("no catch-up reply");
      return { executed, entries: reply.message.entries };
    };
    const all = replyTo(1_048_576);
    expect(all.entries.map((e) => e.slot)).toEqual(Array.from({ length: all.executed }, (_, i) => i + 1));
    // About 80 bytes per put: 200 bytes hold two of them, and one value larger than the bound still goes alone.
    const bounded = replyTo(200);
    expect(bounded.entries.length).toBeGreaterThanOrEqual(1);
    expect(bounded.entries.length).toBeLessThan(all.entries.length);
    expect(bounded.entries).toEqual(all.entries.slice(0, bounded.entries.length));
    expect(bounded.entries.map((e) => plainBytes(e.value)).reduce((a, b) => a + b)).toBeLessThanOrEqual(200);
    expect(replyTo(1).entries).toEqual(all.entries.slice(0, 1));
  });

  it("execute at most batchBytesMax of values per step, and the rest on the next ticks", () => {
    // A follower learns five chosen slots at once (a catch-up reply); without the bound it would
    // execute them all in one step (eight 1 MiB values: a step longer than a heartbeat interval).
    const learnAll = (batchBytesMax: number) => {
      const learnt = followerLearningAtOnce(batchBytesMax);
      const { leader, slots } = learnt;
      let { follower, now } = learnt;
      const executedPerStep = [follower.learner.executedUpTo];
      // What the driver reads to tick at once: true exactly while a step left slots to the next.
      const pendingPerStep = [executionPending(follower)];
      const halted = { ...follower, halted: { slot: 1, message: "diverged at slot 1" } };
      while (follower.learner.executedUpTo < leader.learner.executedUpTo && executedPerStep.length < 20) {
        now += 1;
        follower = step(follower, { _tag: "Tick", now }).state;
        executedPerStep.push(follower.learner.executedUpTo);
        pendingPerStep.push(executionPending(follower));
      }
      return { leader, follower, executedPerStep, pendingPerStep, halted, slots };
    };
    const unbounded = learnAll(1_048_576);
    expect(unbounded.slots).toBe(5);
    expect(unbounded.executedPerStep).toEqual([5]);
    // About 130 bytes per put: a 200-byte step executes two slots (the second passes the bound).
    const bounded = learnAll(200);
    expect(bounded.executedPerStep).toEqual([2, 4, 5]);
    expect(bounded.pendingPerStep).toEqual([true, true, false]);
    expect(unbounded.pendingPerStep).toEqual([false]);
    // A halted replica executes nothing more: no slot waits for its ticks (which would come at once, forever).
    expect(executionPending(bounded.halted)).toBe(false);
    expect(bounded.follower.learner.executedUpTo).toBe(bounded.leader.learner.executedUpTo);
    expect(kv.digest(bounded.follower.learner.service.app)).toBe(kv.digest(bounded.leader.learner.service.app));
    // A value larger than the whole bound still executes, one slot per step.
    expect(learnAll(1).executedPerStep).toEqual([1, 2, 3, 4, 5]);
  });

  it("stop a replica asked to learn a second value for a chosen slot", () => {
    const c = Cluster.elected(3);
    c.request(1, { _tag: "put", key: "k", value: "1" }, "linearizable");
    c.stabilize();
    const leader = c.state(1);
    expect(compareBallots(leader.acceptor.maxBal, { round: 1, replica: 1 })).toBe(0);
    const forged = { _tag: "CatchUpReply" as const, entries: [{ slot: 1, value: { _tag: "noop" as const } }] };
    const follower = c.state(2);
    const learned = step(follower, {
      _tag: "Receive",
      now: c.clock(2),
      from: 1,
      message: { _tag: "Heartbeat", ballot: { round: 1, replica: 1 }, commitIndex: 1, sentAt: 300, checkpoint: null },
    }).state;
    expect(() => step(learned, { _tag: "Receive", now: c.clock(2), from: 3, message: forged })).toThrow(/Consistency/);
    expect(showBallot(leader.acceptor.maxBal)).toBe("(1,1)");
  });

  it("stop a leader told of two values for one slot in its own ballot", () => {
    const c = Cluster.elected(3);
    c.request(1, { _tag: "put", key: "k", value: "1" }, "linearizable");
    const accept = c.inFlight.find((m) => m.to === 2 && m.message._tag === "Accept")!.message;
    c.stabilize();
    if (accept._tag !== "Accept") throw new Error("expected an Accept");
    const twin = { ...accept, value: { _tag: "noop" as const } };
    expect(() => step(c.state(2), { _tag: "Receive", now: c.clock(2), from: 1, message: twin })).toThrow(
      /OneValuePerBallot/,
    );
  });
});

describe("catch-up from a CatchUp's sender that is ahead", () => {
  /** Three replicas, 1 leading, four writes chosen and executed everywhere. */
  function cluster(): Cluster {
    const c = Cluster.elected(3);
    for (const key of ["a", "b", "c", "d"]) {
      c.request(1, { _tag: "put", key, value: key }, "linearizable");
      c.stabilize();
    }
    return c;
  }
  const catchUp = (fromSlot: number, toSlot: number) => ({ _tag: "CatchUp" as const, fromSlot, toSlot });
  const catchUpsSent = (effects: readonly ReplicaEffect<KvInput, KvOutput>[]) =>
    effects.filter((x) => x._tag === "Send" && x.message._tag === "CatchUp");

  it("a follower asked from above its executed prefix learns those slots are chosen and asks the sender for them", () => {
    const c = cluster();
    const follower = c.state(2);
    const e = follower.learner.executedUpTo;
    expect(e).toBeGreaterThan(0);
    const r = step(follower, { _tag: "Receive", now: c.clock(2), from: 3, message: catchUp(e + 4, e + 4) });
    expect(r.state.learner.commitIndex).toBe(e + 3);
    expect(catchUpsSent(r.effects)).toEqual([{ _tag: "Send", to: 3, message: catchUp(e + 1, e + 3) }]);
    // Outside requestCatchUp's rate limit, and leaving it alone (a request to the leader still goes).
    expect(r.state.learner.catchUpSentAt).toBe(follower.learner.catchUpSentAt);
  });

  it("nothing more when the sender is not ahead, from a leader, or while a transfer brings the slots", () => {
    const c = cluster();
    const follower = c.state(2);
    const e = follower.learner.executedUpTo;
    const behind = step(follower, { _tag: "Receive", now: c.clock(2), from: 3, message: catchUp(e + 1, e + 1) });
    expect(behind.state.learner.commitIndex).toBe(follower.learner.commitIndex);
    expect(catchUpsSent(behind.effects)).toEqual([]);
    const leader = c.state(1);
    const asked = step(leader, { _tag: "Receive", now: c.clock(1), from: 3, message: catchUp(e + 4, e + 4) });
    expect(asked.state.learner.commitIndex).toBe(leader.learner.commitIndex);
    expect(catchUpsSent(asked.effects)).toEqual([]);
    const transfer = {
      from: 1,
      slot: e + 8,
      digest: "",
      contentDigest: "",
      totalBytes: 10,
      received: 0,
      digestLanes: contentDigestStart,
      decoding: decodingStart,
      requestedAt: c.clock(2),
      progressAt: c.clock(2),
    };
    const fetching: Replica = { ...follower, learner: { ...follower.learner, transfer } };
    const r = step(fetching, { _tag: "Receive", now: c.clock(2), from: 3, message: catchUp(e + 4, e + 4) });
    expect(r.state.learner.commitIndex).toBe(e + 3);
    expect(catchUpsSent(r.effects)).toEqual([]);
  });

  it("an isolated sole voter that replaced itself hands its slots to the new voter, which leads, and retires", () => {
    const script = readFileSync(
      join(import.meta.dirname, "testdata/reconfig-sole-voter-replaced-isolated.txt"),
      "utf8",
    );
    const runner = new ScriptRunner();
    for (const b of parseScript(script).blocks) runner.run(b.command);
    const c = runner.cluster!;
    expect(c.state(2).role._tag).toBe("leader");
    expect(c.state(2).learner.executedUpTo).toBe(9);
    expect(c.state(1).removal?.retired).toMatch(/replica 1 was removed from the cluster/);
  });
});

describe("a removed replica's hand-over (rule R5)", () => {
  /**
   * Replica 3 of reconfig-removed-replica-restarts.txt, removed by the configuration {1,2} with
   * learner 4 (governing from slot 5) and waiting for its hand-over, before it crashes.
   */
  function awaiting(): { c: Cluster; removed: Replica } {
    const script = readFileSync(join(import.meta.dirname, "testdata/reconfig-removed-replica-restarts.txt"), "utf8");
    const runner = new ScriptRunner();
    for (const b of parseScript(script).blocks) {
      if (b.command.trim() === "crash 3") break;
      runner.run(b.command);
    }
    const c = runner.cluster!;
    return { c, removed: c.state(3) };
  }
  const heartbeat = (replica: number, commitIndex: number) => ({
    _tag: "Heartbeat" as const,
    ballot: { round: 1, replica },
    commitIndex,
    sentAt: 0,
    checkpoint: null,
  });

  it("counts a heartbeat saying every slot before its removal is chosen from a voter or a learner of its newest configuration, and from nobody else", () => {
    const { c, removed } = awaiting();
    const latest = removed.learner.configs[removed.learner.configs.length - 1]!;
    expect([latest.voters, latest.learners, latest.governsFrom]).toEqual([[1, 2], [4], 5]);
    expect(removed.removal).toMatchObject({ handedOver: false, retired: null });
    const handedOver = (from: number, commitIndex: number) =>
      step(removed, { _tag: "Receive", now: c.clock(3), from, message: heartbeat(from, commitIndex) }).state.removal
        ?.handedOver;
    expect(handedOver(1, 4)).toBe(true);
    expect(handedOver(4, 4)).toBe(true);
    // Below the slot before the removal governs: the sender may not know every slot the removal needs.
    expect(handedOver(1, 3)).toBe(false);
    expect(handedOver(4, 3)).toBe(false);
    // Not a member of that configuration: a retired replica (a removed leader's last heartbeat) or a stranger.
    expect(handedOver(3 + 4, 4)).toBe(false);
    const retired = { ...latest, retired: [...latest.retired, 3 + 4] };
    const knowing: Replica = {
      ...removed,
      learner: { ...removed.learner, configs: [...removed.learner.configs.slice(0, -1), retired] },
    };
    const heard = step(knowing, { _tag: "Receive", now: c.clock(3), from: 3 + 4, message: heartbeat(3 + 4, 4) });
    expect(heard.state.removal?.handedOver).toBe(false);
  });
});

describe("a membership change refused for good only against a configuration the leader can vouch for (rule R3)", () => {
  /** Three replicas, 1 leading with a lease, nothing pending. */
  function settled(): { c: Cluster; leader: Replica } {
    const c = Cluster.elected(3);
    c.request(1, { _tag: "put", key: "a", value: "a" }, "linearizable");
    c.stabilize();
    return { c, leader: c.state(1) };
  }
  const promote5 = { op: "promote", replica: 5 } as const;
  const answer = (state: Replica, now: number) => {
    const r = step(state, { _tag: "Reconfigure", now, requestId: 99, change: promote5 });
    const reply = r.effects.find((e) => e._tag === "Reply" && e.requestId === 99);
    return reply?._tag === "Reply" ? reply.result : undefined;
  };

  it("refuses for good with the lease held, phase 1 executed and no change of its own pending", () => {
    const { c, leader } = settled();
    expect(answer(leader, c.clock(1))).toEqual({ _tag: "refused", reason: "replica 5 is not a learner" });
  });

  it("answers unavailable (retry) while a change it holds is not executed: chosen, proposed or queued", () => {
    const { c, leader } = settled();
    const role = leader.role;
    if (role._tag !== "leader") throw new Error("1 should lead");
    const add5 = { _tag: "reconfig", change: { op: "add", replica: 5 } } as const;
    const next = leader.learner.executedUpTo + 1;
    const chosenAbove: Replica = {
      ...leader,
      learner: { ...leader.learner, log: slotMapSet(leader.learner.log, next + 1, add5), commitIndex: next + 1 },
    };
    const queued: Replica = {
      ...leader,
      role: { ...role, pending: [{ newest: null, count: 0, bytes: 0, change: add5.change }] },
    };
    for (const [state, why] of [
      [chosenAbove, `add 5 is chosen at slot ${next + 1}, not yet executed`],
      [queued, "add 5 is queued before it"],
    ] as const) {
      expect(answer(state, c.clock(1))).toEqual({
        _tag: "unavailable",
        reason: `replica 5 is not a learner in the configuration executed so far, but ${why}; retry`,
        outcomeUnknown: false,
      });
    }
    // Proposed: the addition is in the pipeline, its Accepts unanswered.
    const proposed = step(leader, {
      _tag: "Reconfigure",
      now: c.clock(1),
      requestId: 98,
      change: add5.change,
    }).state;
    expect(answer(proposed, c.clock(1))).toMatchObject({ _tag: "unavailable", outcomeUnknown: false });
  });

  it("answers unavailable (retry) once its lease has run out: another leader may have changed the configuration", () => {
    const { leader } = settled();
    const role = leader.role;
    if (role._tag !== "leader") throw new Error("1 should lead");
    const result = answer(leader, role.leaseUntil);
    expect(result).toMatchObject({ _tag: "unavailable", outcomeUnknown: false });
    expect(result?._tag === "unavailable" ? result.reason : "").toMatch(/cannot vouch for the configuration/);
  });
});

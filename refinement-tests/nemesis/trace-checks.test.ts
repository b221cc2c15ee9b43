/**
 * DurableRecordsSurvive against a store that compacts: the disk a restarted replica finds may
 * lack what a durable snapshot superseded (impl/runtime/storage.ts), and nothing else. And
 * TraceComplete: a life whose trace misses a line, or holds an event the core cannot be given,
 * is refused rather than replayed in part. TraceExplainedByCore: an event the core asserts on is
 * reported, not thrown. And the checker's memory: a trace read line by line, records and messages
 * held past their step as digests that tell apart what the values tell apart.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { compactRecords, fillSnapshotHoles, readEntryFromRecords } from "../../impl/core/testing/index.ts";
import { snapshottingCluster } from "../../impl/core/testing/cluster.ts";
import {
  kvCodecs,
  kvConfig,
  kvInitialState,
  kvReplicated,
  kvStep,
  type KvRecord,
} from "../../impl/runtime/core-adapter.ts";
import { TraceWriter } from "../../impl/runtime/trace.ts";
import { digestLarge, heldCharsMin } from "../../proofs/held.ts";
import { checkRecoveries, matchedPrefix } from "./trace-checks.ts";
import {
  heldRecord,
  readTraceLives,
  releasedAfter,
  streamTraceLives,
  replayLives,
  sameEffect,
  type KvEvent,
  type LifeSummary,
  type TraceLife,
  type TraceLine,
  type TraceViolation,
} from "./trace-replay.ts";

describe("DurableRecordsSurvive on a compacting store", () => {
  /** A replica's records from a scripted run that snapshots slots 4 and 8, its disk not compacted. */
  const written = (): readonly KvRecord[] => snapshottingCluster().node(2).records;
  const lives = (committed: readonly KvRecord[], recovered: readonly KvRecord[]): LifeSummary[] => [
    {
      replica: 2,
      life: 0,
      steps: 1,
      truncated: false,
      committedRecords: committed,
      uncertainRecords: [],
      recoveredRecords: [],
      recordsHeldMax: 0,
      recovered: true,
    },
    {
      replica: 2,
      life: 1,
      steps: 1,
      truncated: false,
      committedRecords: [],
      uncertainRecords: [],
      recoveredRecords: recovered,
      recordsHeldMax: 0,
      recovered: true,
    },
  ];

  it("accepts the disk compacted after the last snapshot, or not yet compacted", () => {
    const records = written();
    expect(compactRecords(records).length).toBeLessThan(records.length);
    expect(checkRecoveries(lives(records, compactRecords(records)))).toEqual([]);
    expect(checkRecoveries(lives(records, records))).toEqual([]);
  });

  it("passes over a life killed before it recovered: the next is held to what the one before left", () => {
    const records = written();
    const [first, second] = lives(records, records);
    const killedEarly: LifeSummary = { ...second!, committedRecords: [], recoveredRecords: [], recovered: false };
    const third = (recovered: readonly KvRecord[]): LifeSummary => ({
      ...second!,
      life: 2,
      recoveredRecords: recovered,
    });
    expect(checkRecoveries([first!, killedEarly, third(records)])).toEqual([]);
    const lost = records.slice(0, -1);
    expect(checkRecoveries([first!, killedEarly, third(lost)])).toMatchObject([
      { check: "DurableRecordsSurvive", message: expect.stringMatching(/^life 2 recovered .* life 0 left/) as unknown },
    ]);
  });

  it("refuses a compacted disk that lost a record the snapshot does not supersede, or reordered two", () => {
    const records = written();
    const kept = compactRecords(records);
    const lost = kept.filter((_, i) => i !== kept.length - 1);
    expect(checkRecoveries(lives(records, lost)).map((v) => v.check)).toEqual(["DurableRecordsSurvive"]);
    const swapped = [...kept];
    [swapped[0], swapped[1]] = [swapped[1]!, swapped[0]!];
    expect(checkRecoveries(lives(records, swapped)).map((v) => v.check)).toEqual(["DurableRecordsSurvive"]);
  });
});

describe("a restarted replica's disk matched to the records known durable", () => {
  it("finds the untraced tail after a compacted prefix, and nothing more", () => {
    // Known durable: a..f; compaction deleted b and d; then the untraced tail x, y.
    expect(matchedPrefix(["a", "c", "e", "f", "x", "y"], ["a", "b", "c", "d", "e", "f"])).toBe(4);
    expect(matchedPrefix(["a", "b"], ["a", "b"])).toBe(2);
    expect(matchedPrefix(["x"], [])).toBe(0);
    // A record out of order ends the match: what follows counts as new (and DurableRecordsSurvive judges the disk).
    expect(matchedPrefix(["c", "a"], ["a", "b", "c"])).toBe(1);
  });
});

/**
 * A life of replica 1: it boots (Recover at clock reading `bootAt`), then ticks at `tickAt`, in two
 * batches; `rewrite` alters the lines.
 */
function bootThenTick(bootAt: number, tickAt: number, rewrite = (lines: TraceLine[]) => lines): TraceLife {
  return {
    replica: 1,
    incarnation: "test",
    members: [1, 2, 3],
    clock: undefined,
    tornLine: false,
    syncs: false,
    lines: rewrite([
      { seq: 1, replica: 1, now: 0, type: "event", batch: 1, event: { _tag: "Recover", now: bootAt, records: [] } },
      { seq: 2, replica: 1, now: tickAt, type: "event", batch: 2, event: { _tag: "Tick", now: tickAt } },
    ]),
  };
}

describe("TraceComplete", () => {
  const life = (rewrite?: (lines: TraceLine[]) => TraceLine[]): TraceLife => bootThenTick(0, 10, rewrite);
  const replayed = (l: TraceLife): { steps: number; checks: string[] } => {
    const violations: TraceViolation[] = [];
    const steps = [...replayLives([l], {}, violations, [])].length;
    return { steps, checks: violations.map((v) => v.check) };
  };

  it("passes a complete life", () => {
    expect(replayed(life())).toEqual({ steps: 2, checks: [] });
  });

  it("fails a life with a line missing (a gap in the line numbers)", () => {
    const gap = life((lines) => [lines[0]!, { ...lines[1]!, seq: 3 }]);
    expect(replayed(gap).checks).toEqual(["TraceComplete"]);
  });

  it("fails a life with an event the core cannot be given (it does not decode)", () => {
    const garbled = life((lines) => [lines[0]!, { ...lines[1]!, event: { _tag: "Tock", now: 10 } }]);
    expect(replayed(garbled).checks).toEqual(["TraceComplete"]);
  });
});

describe("TraceExplainedByCore on an event the core asserts on", () => {
  /** Replica 1 boots at clock reading 100, then ticks at `tick`. */
  const life = (tick: number): TraceLife => bootThenTick(100, tick);

  it("reports the assertion as a violation naming it, and stops the replica's replay there", () => {
    const violations: TraceViolation[] = [];
    // A clock reading below the one before: impl/core's step asserts (clocks never go backwards).
    const steps = [...replayLives([life(50)], {}, violations, [])];
    expect(steps.map((s) => s.event._tag)).toEqual(["Recover"]);
    expect(violations).toMatchObject([
      {
        check: "TraceExplainedByCore",
        replica: 1,
        message: expect.stringMatching(
          /batch 2: step asserted on the traced Tick at clock 50: .*clock went backwards/,
        ) as unknown,
      },
    ]);
  });

  it("passes the same life with the clock going forwards", () => {
    const violations: TraceViolation[] = [];
    expect([...replayLives([life(150)], {}, violations, [])].length).toBe(2);
    expect(violations).toEqual([]);
  });
});

describe("a batch that waited for values read back from the store", () => {
  const send = (tag: string): TraceLine => ({
    seq: 0,
    replica: 1,
    now: 0,
    type: "effect",
    effect: { _tag: "Send", to: 2, message: { _tag: tag } },
  });
  const reply = { seq: 0, replica: 1, now: 0, type: "effect", effect: { _tag: "Reply", requestId: 1 } } as TraceLine;
  const commit = { seq: 0, replica: 1, now: 0, type: "commit" } as TraceLine;
  const batches = (...effects: TraceLine[][]) => effects.map((e) => ({ effects: e }));

  it("may end a life unfinished only while no later batch released anything but overtaking sends", () => {
    expect(releasedAfter(batches([], [send("Heartbeat"), send("Accept"), commit], [send("HeartbeatAck")]), 0)).toBe(
      false,
    );
    expect(releasedAfter(batches([], [send("Heartbeat")], [reply]), 0)).toBe(true);
    expect(releasedAfter(batches([], [send("CatchUpReply")]), 0)).toBe(true);
    // Only what comes after the batch counts.
    expect(releasedAfter(batches([reply], [send("Accept")]), 0)).toBe(false);
  });
});

describe("a trace line torn by a kill", () => {
  /** A trace file whose first life was killed in the middle of writing a line, then restarted. */
  function tornThenRestarted(): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "paxos-lease-torn-trace-"));
    const file = path.join(dir, "replica-1.trace.jsonl");
    new TraceWriter(file, 1, kvCodecs, "first", { members: [1, 2, 3] }).close();
    // The kill: half a line, no newline.
    fs.appendFileSync(file, '{"seq":1,"replica":1,"now":12,"type":"ev');
    const second = new TraceWriter(file, 1, kvCodecs, "second", { members: [1, 2, 3] });
    second.commit(20, 0, 0, 1);
    second.close();
    return file;
  }

  it("starts the next life on a line of its own, so the torn line is told apart", () => {
    const lives = readTraceLives(tornThenRestarted());
    expect(lives.map((l) => [l.incarnation, l.tornLine, l.lines.length])).toEqual([
      ["first", true, 0],
      ["second", false, 1],
    ]);
  });

  it("still refuses a line that is not JSON in the middle of a life", () => {
    const file = tornThenRestarted();
    fs.appendFileSync(file, 'not json\n{"seq":2,"replica":1,"now":30,"type":"synced","durableSeq":0}\n');
    expect(() => readTraceLives(file)).toThrow(/line 5 is not JSON/);
  });
});

describe("sameEffect: a replayed effect against its trace line", () => {
  const send = { _tag: "Send", to: 2, message: { _tag: "Accept", slot: 7, value: { data: "x".repeat(64) } } };
  it("holds for the same data, whatever the key order and the trace's own fields", () => {
    const traced = { message: { value: { data: "x".repeat(64) }, slot: 7, _tag: "Accept" }, to: 2, _tag: "Send" };
    expect(sameEffect(send as never, { ...traced, wireId: 12, durableSeq: 3 })).toBe(true);
  });
  it("fails on any difference, deep in a value too", () => {
    expect(sameEffect(send as never, { ...send, to: 3 })).toBe(false);
    expect(sameEffect(send as never, { ...send, message: { ...send.message, value: { data: "y" } } })).toBe(false);
    expect(sameEffect(send as never, { ...send, message: { ...send.message, extra: 1 } })).toBe(false);
  });
  it("holds where only JSON makes the two equal: bytes, and a value with toJSON", () => {
    const bytes = { _tag: "Send", to: 2, message: { chunk: Buffer.from([1, 2, 3]) } };
    expect(sameEffect(bytes as never, JSON.parse(JSON.stringify(bytes)) as Record<string, unknown>)).toBe(true);
    expect(sameEffect(bytes as never, { ...bytes, message: { chunk: { type: "Buffer", data: [1, 2, 4] } } })).toBe(
      false,
    );
  });
});

describe("the checker's memory: a trace read line by line", () => {
  /** A trace file of two lives whose lines cross the reader's 4 MiB chunks, with characters of 2 to 4 bytes. */
  function largeTrace(): { file: string; lines: string[] } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "paxos-lease-large-trace-"));
    const file = path.join(dir, "replica-1.trace.jsonl");
    const start = (incarnation: string) =>
      JSON.stringify({ seq: 0, replica: 1, now: null, type: "start", incarnation, members: [1, 2, 3] });
    const lines = [start("first")];
    for (let seq = 1; seq <= 40; seq++) {
      const value = `${seq}é€😀`.repeat(((seq * 7919) % 60_000) + 1);
      lines.push(
        JSON.stringify({ seq, replica: 1, now: seq, type: "event", batch: seq, event: { _tag: "Tick", value } }),
      );
      if (seq === 20) lines.push(start("second"));
    }
    fs.writeFileSync(file, `${lines.join("\n")}\n`);
    expect(fs.statSync(file).size).toBeGreaterThan(2 * 4 * 1024 * 1024);
    return { file, lines };
  }

  it("splits the lives as the whole file does, and reads a life's lines again from the file each time", () => {
    const { file, lines } = largeTrace();
    const lives = streamTraceLives(file);
    expect(lives.map((l) => l.incarnation)).toEqual(["first", "second"]);
    // Nothing of the lines is held: a life's lines are read from the file when iterated.
    expect(lives.every((l) => !Array.isArray(l.lines))).toBe(true);
    const parsed = lines.map((l) => JSON.parse(l) as TraceLine).filter((l) => l.type !== "start");
    const read = lives.flatMap((l) => [...l.lines]);
    expect(read).toEqual(parsed);
    expect([...lives[1]!.lines]).toEqual(parsed.slice(20));
  });
});

describe("the checker's memory: what it holds past a step", () => {
  const large = "v".repeat(1024 * 1024);
  const oneUnitOff = `${large.slice(0, 700_000)}w${large.slice(700_001)}`;

  it("holds a long string as a digest of bounded length, equal exactly where the strings are", () => {
    const message = { _tag: "Accept", slot: 7, value: { commands: [{ key: "k", value: large }] } };
    const held = digestLarge(message);
    expect(JSON.stringify(held).length).toBeLessThan(300);
    expect(held).toEqual(digestLarge(structuredClone(message)));
    const other = { ...message, value: { commands: [{ key: "k", value: oneUnitOff }] } };
    expect(digestLarge(other)).not.toEqual(held);
    // A lone surrogate is not its UTF-8 replacement character.
    const lone = "\ud800".padEnd(heldCharsMin, "x");
    expect(digestLarge(lone)).not.toEqual(digestLarge("\ufffd".padEnd(heldCharsMin, "x")));
    // Shorter strings are kept as they are.
    expect(digestLarge({ value: "short" })).toEqual({ value: "short" });
  });

  it("holds a record as what compaction reads of it and a digest that tells apart any difference", () => {
    const vote = {
      _tag: "vote",
      slot: 9,
      ballot: { round: 2, replica: 1 },
      value: { _tag: "batch", commands: [{ input: { _tag: "put", key: "k", value: large } }] },
    } as unknown as KvRecord;
    const held = heldRecord(vote);
    expect(held).toMatchObject({ _tag: "vote", slot: 9 });
    expect(JSON.stringify(held).length).toBeLessThan(200);
    const changed = structuredClone(vote) as unknown as { value: { commands: { input: { value: string } }[] } };
    changed.value.commands[0]!.input.value = oneUnitOff;
    expect(heldRecord(changed as unknown as KvRecord)).not.toEqual(held);
    expect(heldRecord(structuredClone(vote))).toEqual(held);
  });

  it("catches a restarted replica whose disk holds another value, deep in a large record", () => {
    const vote = {
      _tag: "vote",
      slot: 9,
      ballot: { round: 2, replica: 1 },
      value: { _tag: "batch", commands: [{ input: { _tag: "put", key: "k", value: large } }] },
    } as unknown as KvRecord;
    const changed = JSON.parse(JSON.stringify(vote).replace(large, oneUnitOff)) as KvRecord;
    const life = (n: number, committed: KvRecord[], recovered: KvRecord[]): LifeSummary => ({
      replica: 1,
      life: n,
      steps: 1,
      truncated: false,
      committedRecords: committed.map(heldRecord),
      uncertainRecords: [],
      recoveredRecords: recovered.map(heldRecord),
      recordsHeldMax: 0,
      recovered: true,
    });
    expect(checkRecoveries([life(0, [vote], []), life(1, [], [vote])])).toEqual([]);
    expect(checkRecoveries([life(0, [vote], []), life(1, [], [changed])]).map((v) => v.check)).toEqual([
      "DurableRecordsSurvive",
    ]);
  });
});

describe("the checker's memory: a long life's records", () => {
  /**
   * The trace of one replica that leads alone (a cluster of one) for `writes` puts of distinct
   * values held at rest, on 4 keys in turn, with a snapshot every 4 slots: written by stepping the
   * core as the driver does (a commit line before the first Persist that holds back, the leader's
   * own vote made durable by a VoteDurable of its own).
   */
  function soloTrace(writes: number, core: Record<string, unknown>): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "paxos-lease-solo-trace-"));
    const file = path.join(dir, "replica-1.trace.jsonl");
    const trace = new TraceWriter(file, 1, kvCodecs, "solo", { members: [1] });
    let state = kvInitialState(kvConfig(1, [1], core));
    let batch = 0;
    let durableSeq = 0;
    let now = 0;
    const records: KvRecord[] = [];
    const feed = (event: KvEvent): void => {
      const queue = [event];
      while (queue.length > 0) {
        const next = queue.shift()!;
        const b = batch++;
        trace.event(next.now, b, next);
        const result = kvStep(state, next);
        state = result.state;
        const holding = (e: (typeof result.effects)[number]): boolean =>
          e._tag === "Persist" && e.record._tag !== "chosen" && e.notify === undefined;
        const first = result.effects.findIndex(holding);
        result.effects.forEach((effect, i) => {
          if (i === first) trace.commit(next.now, b, 1, 0);
          if (effect._tag === "Persist") {
            // A snapshot's values at rest filled from the records before it, as the storage thread fills them.
            fillSnapshotHoles(effect.record, readEntryFromRecords(kvReplicated, records));
            records.push(effect.record);
          }
          trace.effect(next.now, b, effect, effect._tag === "Persist" ? { durableSeq: ++durableSeq } : {});
          if (effect._tag === "Persist" && effect.notify !== undefined)
            queue.push({ _tag: "VoteDurable", now: next.now, slot: effect.notify.slot, ballot: effect.notify.ballot });
        });
        if (first < 0 && result.effects.some((e) => e._tag === "Persist")) trace.commit(next.now, b, 1, 0);
      }
    };
    feed({ _tag: "Recover", now, records: [] });
    for (let i = 0; i < 2000 && state.role._tag !== "leader"; i++) feed({ _tag: "Tick", now: (now += 50) });
    expect(state.role._tag).toBe("leader");
    for (let w = 1; w <= writes; w++) {
      const value = `${w}:`.padEnd(2048, String.fromCharCode(97 + (w % 26)));
      feed({
        _tag: "ClientRequest",
        now: (now += 5),
        requestId: w,
        clientId: "c",
        seq: w,
        consistency: "linearizable",
        input: { _tag: "put", key: `k${w % 4}`, value },
      });
    }
    trace.close();
    return file;
  }

  it("holds the life's disk as it compacts, not every value the life voted for", () => {
    const core = { storeAtRestCharsMin: 1024, snapshotIntervalSlots: 4 };
    const writes = 80;
    const file = soloTrace(writes, core);
    const violations: TraceViolation[] = [];
    const summaries: LifeSummary[] = [];
    let steps = 0;
    for (const step of replayLives(streamTraceLives(file), { core }, violations, summaries)) {
      steps++;
      expect(step.after.halted).toBeNull();
    }
    expect(violations).toEqual([]);
    expect(steps).toBeGreaterThan(2 * writes);
    const [life] = summaries;
    // Every write's vote was persisted (and chosen records and snapshots beside them) ...
    expect(life!.committedRecords.filter((r) => r._tag === "vote").length).toBeGreaterThanOrEqual(writes);
    // ... but the replay held a few snapshot intervals' worth at once, and the 4 keys' votes.
    expect(life!.recordsHeldMax).toBeLessThan(40);
  });
});

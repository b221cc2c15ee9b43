import { describe, expect, it } from "vitest";
import type { TimelineMark } from "../../impl/runtime/timeline.ts";
import {
  counterCause,
  fsyncSpans,
  longSpans,
  namedThreads,
  overlapTable,
  spanCause,
  unionSpans,
  type Cause,
} from "./write-tail.ts";
import type { ClientWrite } from "./write-timeline.ts";

/** 100 writes of 1 ms each, back to back from t = 0, the writes at `slow` taking 10 ms instead. */
function writesWith(slow: readonly number[]): ClientWrite[] {
  const writes: ClientWrite[] = [];
  let t = 0;
  for (let i = 0; i < 100; i++) {
    const us = slow.includes(i) ? 10_000 : 1000;
    writes.push({ sentUs: t, doneUs: t + us });
    t += us;
  }
  return writes;
}

describe("overlapTable", () => {
  it("puts a slow write down to the span that overlapped it, beside how often it overlapped any", () => {
    const writes = writesWith([50]);
    const slow = writes[50]!;
    const gc = spanCause("gc", [{ fromUs: slow.sentUs + 2000, toUs: slow.sentUs + 7000 }]);
    // A span that overlaps one ordinary write in four, and the slow one for 200 us.
    const tick = spanCause(
      "tick",
      writes.filter((_, i) => i % 4 === 2).map((w) => ({ fromUs: w.doneUs - 200, toUs: w.doneUs })),
    );
    const table = overlapTable(writes, [gc, tick], 0.01);
    expect(table.slowWrites).toBe(1);
    expect(table.slowFromUs).toBe(10_000);
    expect(table.unexplained).toBe(0);
    expect(table.rows[0]).toMatchObject({ name: "gc", slow: 1, slowSumUs: 5000, largestIn: 1, allFraction: 0.01 });
    expect(table.rows[1]).toMatchObject({ name: "tick", slow: 1, slowSumUs: 200, largestIn: 0, allFraction: 0.25 });
  });

  it("counts a slow write that nothing overlapped as unexplained", () => {
    const writes = writesWith([10, 20]);
    const table = overlapTable(writes, [spanCause("gc", [{ fromUs: -5, toUs: -1 }])], 0.02);
    expect(table.slowWrites).toBe(2);
    expect(table.unexplained).toBe(2);
    expect(table.rows[0]!.slow).toBe(0);
  });

  it("takes a counter's growth within a write beyond its median, and only beyond its threshold", () => {
    const writes = writesWith([30]);
    // A thread waiting for a core 100 us per ms, and 8 ms during the slow write.
    const times: number[] = [];
    const values: number[] = [];
    let value = 0;
    for (let t = 0; t <= writes.at(-1)!.doneUs; t += 500) {
      times.push(t);
      values.push(value);
      const inSlow = t >= writes[30]!.sentUs && t < writes[30]!.doneUs;
      value += inSlow ? 400 : 50;
    }
    const wait: Cause = counterCause("wait", times, values, writes, 500);
    expect(wait.baselineUs).toBeCloseTo(100, 0);
    const table = overlapTable(writes, [wait], 0.01);
    expect(table.rows[0]!.slow).toBe(1);
    expect(table.rows[0]!.slowSumUs).toBeCloseTo(8000 - 100, -2);
    expect(table.rows[0]!.allFraction).toBe(0.01);
    // The same counter held to a threshold above its excess explains nothing.
    const strict = counterCause("wait", times, values, writes, 10_000);
    expect(overlapTable(writes, [strict], 0.01).unexplained).toBe(1);
  });
});

describe("the spans and threads of the marks", () => {
  const mark = (stage: TimelineMark["stage"], timeUs: number, key = -1): TimelineMark => ({ stage, timeUs, key });

  it("pairs each fsync's written mark with the synced after it, and keeps what exceeds a bound", () => {
    const marks = [
      mark("storage-written", 0),
      mark("storage-synced", 300),
      mark("storage-written", 1000),
      mark("storage-synced", 4000),
    ];
    expect(fsyncSpans(marks)).toEqual([
      { fromUs: 0, toUs: 300 },
      { fromUs: 1000, toUs: 4000 },
    ]);
    expect(longSpans(fsyncSpans(marks), 1000)).toEqual([{ fromUs: 2000, toUs: 4000 }]);
  });

  it("merges overlapping spans, so that their time is counted once", () => {
    const spans = [
      { fromUs: 50, toUs: 60 },
      { fromUs: 0, toUs: 10 },
      { fromUs: 5, toUs: 20 },
    ];
    expect(unionSpans(spans)).toEqual([
      { fromUs: 0, toUs: 20 },
      { fromUs: 50, toUs: 60 },
    ]);
  });

  it("names each replica's main, storage and relay threads, with their ids, and leaves the idle ones out", () => {
    const named = namedThreads(2, [
      { replica: 1, main: true, marks: [mark("thread", 0, 101)] },
      { replica: 1, main: false, marks: [mark("thread", 0, 102), mark("storage-take", 5)] },
      { replica: 1, main: false, marks: [mark("thread", 0, 103)] },
      { replica: 2, main: false, marks: [mark("thread", 0, 202), mark("relay", 5, 10)] },
      { replica: 2, main: true, marks: [] },
    ]);
    expect(named.map((t) => [t.name, t.tid])).toEqual([
      ["leader main", -1],
      ["leader relay", 202],
      ["follower 1 main", 101],
      ["follower 1 storage", 102],
    ]);
  });
});

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { readTimeline, Timeline, type TimelineMark, type TimelineStage } from "../../impl/runtime/timeline.ts";
import {
  housekeeping,
  gapCauses,
  leaderGaps,
  segmentNames,
  slotPaths,
  slotSegmentNames,
  withoutAnswerTurn,
  writePaths,
  writeTail,
  type ThreadMarks,
  type WritePath,
} from "./write-timeline.ts";

const at = (timeUs: number, stage: TimelineStage, key = -1): TimelineMark => ({ timeUs, stage, key });

/** A write at slot 7, sent at 1000 us, to leader 1: follower 2 answers first (Accepted at 1700), follower 3 later. */
function oneWrite(leaderDurableUs: number): ThreadMarks[] {
  const follower = (replica: number, offsetUs: number): ThreadMarks[] => [
    {
      replica,
      main: true,
      marks: [
        at(1200 + offsetUs, "recv-accept", 7),
        at(1210 + offsetUs, "step-accept", 7),
        at(1220 + offsetUs, "post", 7),
        at(1500 + offsetUs, "durable", 7),
        at(1510 + offsetUs, "send-accepted", 7),
        at(1520 + offsetUs, "flush"),
        at(1530 + offsetUs, "flushed"),
      ],
    },
    {
      replica,
      main: false,
      marks: [
        at(1250 + offsetUs, "storage-take", 7),
        at(1300 + offsetUs, "storage-written", 7),
        at(1480 + offsetUs, "storage-synced", 7),
      ],
    },
  ];
  return [
    {
      replica: 1,
      main: true,
      marks: [
        at(1050, "submit"),
        at(1060, "step-request"),
        at(1080, "send-accept", 7),
        at(1081, "send-accept", 7),
        at(1100, "flush"),
        at(1150, "flushed"),
        at(1160, "post", 7),
        at(leaderDurableUs, "durable", 7),
        at(1700, "recv-accepted", 7),
        at(1710, "step-accepted", 7),
        at(Math.max(1720, leaderDurableUs + 10), "reply"),
        at(1780, "recv-accepted", 7),
        at(1300, "gc", 100),
      ],
    },
    {
      replica: 1,
      main: false,
      marks: [at(1200, "storage-take", 7), at(1250, "storage-written", 7), at(1400, "storage-synced", 7)],
    },
    ...follower(2, 0),
    ...follower(3, 100),
  ];
}

describe("writePaths", () => {
  it("chains a write's stages through the follower that answered first", () => {
    const { paths, incomplete } = writePaths(1, oneWrite(1450), [{ sentUs: 1000, doneUs: 1800 }]);
    expect(incomplete).toBe(0);
    const [p] = paths;
    expect(p!.segmentsUs).toEqual([50, 10, 40, 100, 10, 10, 30, 50, 180, 20, 20, 180, 10, 10, 80]);
    expect(p!.segmentsUs).toHaveLength(segmentNames.length);
    expect(p!.segmentsUs.reduce((a, b) => a + b, 0)).toBe(p!.totalUs);
    expect(p!.leaderVoteUs).toBe(350);
    expect(p!.leaderVoteSegmentsUs).toEqual([40, 50, 150, 50]);
    expect(p!.voteBeforeAccepts).toBe(false);
    expect(p!.waitedForOwnVote).toBe(false);
    expect(p!.socketWritesUs).toEqual([50, 10]);
    expect(p!.gcUs).toBe(100);
  });

  it("tells when the reply waited for the leader's own vote", () => {
    const { paths } = writePaths(1, oneWrite(1750), [{ sentUs: 1000, doneUs: 1800 }]);
    expect(paths[0]!.waitedForOwnVote).toBe(true);
    expect(paths[0]!.segmentsUs[13]).toBe(50);
  });

  it("times the leader's own vote from its hand-over when that came before the Accepts left", () => {
    const threads = oneWrite(1450).map((t) =>
      t.replica === 1 && t.main
        ? { ...t, marks: t.marks.map((m) => (m.stage === "post" ? at(1070, "post", 7) : m)) }
        : t,
    );
    const [p] = writePaths(1, threads, [{ sentUs: 1000, doneUs: 1800 }]).paths;
    expect(p!.voteBeforeAccepts).toBe(true);
    expect(p!.leaderVoteUs).toBe(1450 - 1070);
    expect(p!.leaderVoteSegmentsUs).toEqual([130, 50, 150, 50]);
  });

  it("counts a write with a stage missing apart", () => {
    const threads = oneWrite(1450).map((t) =>
      t.replica === 1 && t.main ? { ...t, marks: t.marks.filter((m) => m.stage !== "recv-accepted") } : t,
    );
    expect(writePaths(1, threads, [{ sentUs: 1000, doneUs: 1800 }])).toEqual({ paths: [], incomplete: 1 });
  });
});

/** A write whose segments are all 100 us but for `slow` (segment index -> microseconds). */
function pathWith(slow: Readonly<Record<number, number>>, waitedForOwnVote = false, gcUs = 0): WritePath {
  const segmentsUs = segmentNames.map((_, i) => slow[i] ?? 100);
  return {
    sentUs: 0,
    totalUs: segmentsUs.reduce((a, b) => a + b, 0),
    segmentsUs,
    leaderVoteUs: 0,
    voteBeforeAccepts: false,
    leaderVoteSegmentsUs: [0, 0, 0, 0],
    waitedForOwnVote,
    socketWritesUs: [0, 0],
    gcUs,
  };
}

const fsyncSegment = segmentNames.indexOf("follower storage: fsync");
const learnSegment = segmentNames.indexOf("follower: fsync -> main thread learns it is durable");
const sendSegment = segmentNames.indexOf("follower: durable -> Accepted handed to the socket");

describe("writeTail", () => {
  it("puts the slowest writes down to the segments furthest beyond their medians", () => {
    const paths = [
      ...Array.from({ length: 97 }, () => pathWith({})),
      pathWith({ [fsyncSegment]: 5100 }, false, 800),
      pathWith({ [fsyncSegment]: 3100, [learnSegment]: 600 }),
      pathWith({ [learnSegment]: 2100 }, true),
    ];
    const tail = writeTail(paths, 0.02);
    expect(tail.writes).toBe(2);
    expect(tail.segments[fsyncSegment]).toEqual({ meanBeyondP50Us: 4000, largestIn: 2 });
    expect(tail.segments[learnSegment]).toEqual({ meanBeyondP50Us: 250, largestIn: 0 });
    expect(tail.segments.reduce((n, s) => n + s.largestIn, 0)).toBe(2);
    expect(tail.withGc).toBe(1);
    expect(tail.gcMeanUs).toBe(800);
    expect(tail.waitedForOwnVote).toBe(0);
    expect(writeTail(paths, 0.03).waitedForOwnVote).toBe(1);
    expect(writeTail([], 0.01).writes).toBe(0);
  });
});

describe("withoutAnswerTurn", () => {
  it("takes the follower's turn for its storage thread's answer out of each write, or out of those that did not wait for the own vote", () => {
    const paths = [pathWith({ [learnSegment]: 300, [sendSegment]: 50 }), pathWith({ [learnSegment]: 500 }, true)];
    // 300 + 50 replaced by 20; 500 + 100 replaced by 20.
    expect(withoutAnswerTurn(paths, 20, true)).toEqual([paths[0]!.totalUs - 330, paths[1]!.totalUs - 580]);
    expect(withoutAnswerTurn(paths, 20, false)).toEqual([paths[0]!.totalUs - 330, paths[1]!.totalUs]);
    // A send slower than the turn it replaces saves nothing.
    expect(withoutAnswerTurn(paths, 10_000, true)).toEqual(paths.map((p) => p.totalUs));
  });
});

describe("slotPaths", () => {
  it("chains a slot's stages from the leader's Accept to its first reply", () => {
    const { paths, incomplete } = slotPaths(1, oneWrite(1450));
    expect(incomplete).toBe(0);
    const [p] = paths;
    expect(p!.slot).toBe(7);
    expect(p!.segmentsUs).toEqual([20, 100, 10, 10, 30, 50, 180, 20, 20, 180, 10, 10]);
    expect(p!.segmentsUs).toHaveLength(slotSegmentNames.length);
    expect(p!.segmentsUs.reduce((a, b) => a + b, 0)).toBe(p!.totalUs);
    expect(p!.leaderVoteSegmentsUs).toEqual([40, 50, 150, 50]);
    expect(p!.waitedForOwnVote).toBe(false);
    expect(p!.voteBeforeAccepts).toBe(false);
    expect(p!.followerGroupAppends).toBe(1);
    expect(p!.gcUs).toEqual({ leader: 100, follower: 0 });
  });

  it("tells when the first reply waited for the leader's own vote", () => {
    const { paths } = slotPaths(1, oneWrite(1800));
    expect(paths[0]!.waitedForOwnVote).toBe(true);
    expect(paths[0]!.segmentsUs.at(-1)).toBe(100);
  });

  it("follows a slot whose vote a follower handed over in another slot's batch and group commit", () => {
    // Slots 7 and 8 go out in one flush; follower 2 steps both, then hands both votes over in one
    // append keyed by slot 7; a second append (slot 9's) joins the same group commit.
    const threads: ThreadMarks[] = [
      {
        replica: 1,
        main: true,
        marks: [
          at(1080, "send-accept", 7),
          at(1090, "send-accept", 8),
          at(1100, "flush"),
          at(1160, "post", 7),
          at(1450, "durable", 7),
          at(1700, "recv-accepted", 7),
          at(1701, "recv-accepted", 8),
          at(1710, "step-accepted", 7),
          at(1711, "step-accepted", 8),
          at(1720, "reply"),
          at(1721, "reply"),
        ],
      },
      {
        replica: 1,
        main: false,
        marks: [at(1200, "storage-take", 7), at(1250, "storage-written", 7), at(1400, "storage-synced", 7)],
      },
      {
        replica: 2,
        main: true,
        marks: [
          at(1200, "recv-accept", 7),
          at(1201, "recv-accept", 8),
          at(1210, "step-accept", 7),
          at(1211, "step-accept", 8),
          at(1220, "post", 7),
          at(1230, "post", 9),
          at(1500, "durable", 7),
          at(1505, "durable", 9),
          at(1510, "send-accepted", 7),
          at(1511, "send-accepted", 8),
          at(1520, "flush"),
        ],
      },
      {
        replica: 2,
        main: false,
        marks: [at(1250, "storage-take", 7), at(1300, "storage-written", 7), at(1480, "storage-synced", 7)],
      },
    ];
    const { paths, incomplete } = slotPaths(1, threads);
    expect(incomplete).toBe(0);
    expect(paths.map((p) => p.slot)).toEqual([7, 8]);
    expect(paths[1]!.segmentsUs).toEqual([10, 101, 10, 9, 30, 50, 180, 20, 20, 181, 10, 9]);
    expect(paths[1]!.followerGroupAppends).toBe(2);
  });

  it("finds the leader's own vote by its slot when it was handed over before the slot's Accepts left", () => {
    // Slot 8's Accepts wait for the commit of slot 7's batch, which holds slot 8's vote too (one
    // hand-over keyed by 7); slot 9's vote goes in a later hand-over, after slot 8's Accepts.
    const leaderMain = [
      at(1080, "send-accept", 7),
      at(1100, "flush"),
      at(1160, "post", 7),
      at(1450, "durable", 7),
      at(1460, "send-accept", 8),
      at(1470, "flush"),
      at(1480, "post", 9),
      at(1900, "durable", 9),
      at(2100, "recv-accepted", 8),
      at(2110, "step-accepted", 8),
      at(2120, "reply"),
    ];
    const follower: ThreadMarks[] = [
      {
        replica: 2,
        main: true,
        marks: [
          at(1600, "recv-accept", 8),
          at(1610, "step-accept", 8),
          at(1620, "post", 8),
          at(2000, "durable", 8),
          at(2010, "send-accepted", 8),
          at(2020, "flush"),
        ],
      },
      {
        replica: 2,
        main: false,
        marks: [at(1650, "storage-take", 8), at(1700, "storage-written", 8), at(1980, "storage-synced", 8)],
      },
    ];
    const leaderStorage = [
      at(1200, "storage-take", 7),
      at(1250, "storage-written", 7),
      at(1400, "storage-synced", 7),
      at(1500, "storage-take", 9),
      at(1550, "storage-written", 9),
      at(1850, "storage-synced", 9),
    ];
    const threads: ThreadMarks[] = [
      { replica: 1, main: true, marks: leaderMain },
      { replica: 1, main: false, marks: leaderStorage },
      ...follower,
    ];
    const eight = slotPaths(1, threads).paths.find((p) => p.slot === 8)!;
    // Slot 8's vote: handed over at 1160 with slot 7's, durable at 1450, before its Accepts left.
    expect(eight.voteBeforeAccepts).toBe(true);
    expect(eight.leaderVoteSegmentsUs).toEqual([40, 50, 150, 50]);
    expect(eight.waitedForOwnVote).toBe(false);
  });

  it("counts a slot with a stage missing apart", () => {
    const threads = oneWrite(1450).map((t) =>
      t.replica === 1 && t.main ? { ...t, marks: t.marks.filter((m) => m.stage !== "step-accepted") } : t,
    );
    expect(slotPaths(1, threads)).toEqual({ paths: [], incomplete: 1 });
  });
});

describe("leaderGaps", () => {
  /** Leader 1 marks at 0 and at `ends`; its storage syncs at 10,000 us, follower 2 fsyncs from 30,000 to 40,000. */
  const threads = (ends: readonly number[], durableUs: number): ThreadMarks[] => [
    {
      replica: 1,
      main: true,
      marks: [
        at(0, "post", 7),
        ...ends.map((t) => at(t, "flush")),
        at(durableUs, "durable", 7),
        at(51_000, "gc", 8000),
      ],
    },
    {
      replica: 1,
      main: false,
      marks: [at(1000, "storage-take", 7), at(2000, "storage-written", 7), at(10_000, "storage-synced", 7)],
    },
    { replica: 2, main: true, marks: [at(29_000, "post", 8), at(41_000, "durable", 8)] },
    {
      replica: 2,
      main: false,
      marks: [at(29_500, "storage-take", 8), at(30_000, "storage-written", 8), at(40_000, "storage-synced", 8)],
    },
  ];

  it("puts each idle stretch of the leader down to what it waited for", () => {
    // 0-10,000: the leader's own fsync (2,000 to 10,000); 10,000-20,000: its main thread not told
    // (durable at 20,000); 20,000-29,000: nothing; 29,000-50,000: follower 2's hand-over and fsync,
    // but one follower's fsync is not both, and the leader does not wait for it alone; 50,000-60,000:
    // a collection of 8 ms; 60,000-62,000: too short.
    const gaps = leaderGaps(1, threads([10_000, 29_000, 50_000, 60_000, 62_000], 20_000), 0, 62_000);
    const byCause = Object.fromEntries(gaps.map((g) => [g.cause, [g.gaps, g.us]]));
    expect(byCause[gapCauses[0]]).toEqual([1, 10_000]);
    expect(byCause[gapCauses[1]]).toEqual([1, 10_000]);
    expect(byCause[gapCauses[2]]).toEqual([1, 10_000]);
    expect(byCause[gapCauses[3]]).toEqual([0, 0]);
    expect(byCause[gapCauses[4]]).toEqual([0, 0]);
    expect(byCause[gapCauses[5]]).toEqual([2, 30_000]);
  });
});

describe("Timeline", () => {
  it("reads back what it wrote, in order, after the thread's id", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "timeline-test-"));
    try {
      const file = path.join(dir, "t.timeline");
      const timeline = new Timeline(file);
      timeline.mark("post", 12);
      timeline.mark("flush", -1);
      timeline.flushSync();
      timeline.mark("durable", 12);
      timeline.flushSync();
      const marks = readTimeline(fs.readFileSync(file));
      expect(marks.map((m) => [m.stage, m.key])).toEqual([
        ["thread", process.pid],
        ["post", 12],
        ["flush", -1],
        ["durable", 12],
      ]);
      expect(marks[1]!.timeUs).toBeLessThanOrEqual(marks[3]!.timeUs);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("housekeeping", () => {
  it("counts each storage thread's spans in the window and the writes, slow or not, that they overlapped", () => {
    const mark = (timeUs: number, stage: TimelineStage, key: number): TimelineMark => ({ timeUs, stage, key });
    const threads = [
      { replica: 1, main: true, marks: [mark(150, "gc", 500)] },
      {
        replica: 2,
        main: false,
        marks: [mark(150, "compact", 20), mark(1_000, "compact", 5_000), mark(50_000, "compact", 9)],
      },
      { replica: 3, main: false, marks: [mark(2_900, "checkpoint", 50)] },
    ];
    const writes = [
      { sentUs: 100, doneUs: 200 },
      { sentUs: 900, doneUs: 7_000 },
      { sentUs: 7_100, doneUs: 7_200 },
    ];
    const [compact, checkpoint, collect] = housekeeping(threads, writes, 1_000);
    expect(compact).toEqual({
      stage: "compact",
      spans: 2,
      p50Us: 5_000,
      maxUs: 5_000,
      sumUs: 5_020,
      writes: 2,
      slowWrites: 1,
    });
    expect(checkpoint).toMatchObject({ spans: 1, maxUs: 50, writes: 1, slowWrites: 1 });
    expect(collect).toMatchObject({ spans: 0, maxUs: 0, writes: 0 });
  });

  it("takes a snapshot's spans from the main threads only", () => {
    const mark = (timeUs: number, stage: TimelineStage, key: number): TimelineMark => ({ timeUs, stage, key });
    const threads = [
      { replica: 1, main: true, marks: [mark(150, "snapshot-slices", 30), mark(160, "snapshot-held", 900)] },
      { replica: 2, main: false, marks: [mark(150, "snapshot-slices", 7_000)] },
    ];
    const writes = [
      { sentUs: 100, doneUs: 200 },
      { sentUs: 900, doneUs: 7_000 },
    ];
    const spans = housekeeping(threads, writes, 1_000);
    expect(spans.find((h) => h.stage === "snapshot-slices")).toMatchObject({ spans: 1, maxUs: 30, writes: 1 });
    expect(spans.find((h) => h.stage === "snapshot-held")).toMatchObject({ spans: 1, maxUs: 900, slowWrites: 1 });
    expect(spans.find((h) => h.stage === "compact")).toMatchObject({ spans: 0 });
  });
});

import { describe, expect, it } from "vitest";
import type { TimelineMark, TimelineStage } from "../../impl/runtime/timeline.ts";
import { ownVoteCost } from "./own-vote.ts";
import type { ThreadMarks } from "./write-timeline.ts";

const at = (timeUs: number, stage: TimelineStage, key = -1): TimelineMark => ({ timeUs, stage, key });

/**
 * Leader 1's marks for one slot: its Accept at 1000 us and its own vote handed over at 1100 (taken
 * at 1200, written at 1300), the two followers' Accepteds stepped at
 * `firstUs` and `secondUs`, its own vote synced at `syncedUs` and known durable at `durableUs`;
 * `busyUs` adds a mark of other work in between.
 */
function slot(
  key: number,
  t: { firstUs: number; secondUs: number; syncedUs: number; durableUs: number; busyUs?: number },
): ThreadMarks[] {
  const base = key * 100_000;
  const main = [
    at(base + 1000, "send-accept", key),
    at(base + 1100, "post", key),
    at(base + t.firstUs, "step-accepted", key),
    at(base + t.secondUs, "step-accepted", key),
    at(base + t.durableUs, "durable", key),
    ...(t.busyUs === undefined ? [] : [at(base + t.busyUs, "step-request")]),
  ].sort((a, b) => a.timeUs - b.timeUs);
  return [
    { replica: 1, main: true, marks: main },
    {
      replica: 1,
      main: false,
      marks: [
        at(base + 1200, "storage-take", key),
        at(base + 1300, "storage-written", key),
        at(base + t.syncedUs, "storage-synced", key),
      ],
    },
  ];
}

/** The marks of several slots, merged per thread as a run writes them. */
function run(...slots: ThreadMarks[][]): ThreadMarks[] {
  const merged = (main: boolean): ThreadMarks => ({
    replica: 1,
    main,
    marks: slots.flatMap((s) => s.filter((t) => t.main === main).flatMap((t) => t.marks)),
  });
  return [merged(true), merged(false)];
}

describe("ownVoteCost", () => {
  it("counts nothing when the leader's own vote is durable before its quorum's Accepted", () => {
    const cost = ownVoteCost(1, run(slot(1, { firstUs: 3000, secondUs: 3500, syncedUs: 1800, durableUs: 2000 })));
    expect(cost).toMatchObject({ slots: 1, waited: 0, secondFollowerFirst: 0, idleNotice: { slots: 0 } });
    expect(cost.readyNow.p50).toBe(2000);
    expect(cost.readyWithFollowersQuorum.p50).toBe(2000);
  });

  it("finds a reply that a quorum of the two followers would have released sooner", () => {
    const cost = ownVoteCost(1, run(slot(1, { firstUs: 2000, secondUs: 2500, syncedUs: 3500, durableUs: 4000 })));
    expect(cost).toMatchObject({ slots: 1, waited: 1, secondFollowerFirst: 1 });
    expect(cost.readyNow.p50).toBe(3000);
    expect(cost.readyWithFollowersQuorum.p50).toBe(1500);
    // Synced at 3500 and known at 4000 with nothing marked between: 500 us on an idle main thread.
    expect(cost.idleNotice).toEqual({ slots: 1, totalUs: 500 });
  });

  it("counts no idle wait for the notice while the main thread was busy, nor a slot the second follower did not beat", () => {
    const cost = ownVoteCost(
      1,
      run(
        slot(1, { firstUs: 2000, secondUs: 5000, syncedUs: 3500, durableUs: 4000, busyUs: 3700 }),
        slot(2, { firstUs: 2000, secondUs: 2700, syncedUs: 1500, durableUs: 2600 }),
      ),
    );
    expect(cost).toMatchObject({ slots: 2, waited: 2, secondFollowerFirst: 0 });
    // Slot 2's vote was synced before its first Accepted, and the main thread, idle, learned it 600 us after.
    expect(cost.idleNotice).toEqual({ slots: 1, totalUs: 600 });
    expect(cost.readyWithFollowersQuorum).toEqual(cost.readyNow);
  });

  it("follows a vote handed over before its slot's Accept left, not the next hand-over", () => {
    // Slot 2's vote went in slot 1's hand-over (keyed 1) and was durable at 4000, before slot 2's
    // Accept left at 4500; slot 3's hand-over at 4600 is durable only at 9000.
    const main = [
      at(1000, "send-accept", 1),
      at(1100, "post", 1),
      at(4000, "durable", 1),
      at(4500, "send-accept", 2),
      at(4600, "post", 3),
      at(5000, "step-accepted", 2),
      at(5200, "step-accepted", 2),
      at(9000, "durable", 3),
    ];
    const storage = [
      at(1200, "storage-take", 1),
      at(1300, "storage-written", 1),
      at(3800, "storage-synced", 1),
      at(4700, "storage-take", 3),
      at(4800, "storage-written", 3),
      at(8800, "storage-synced", 3),
    ];
    const cost = ownVoteCost(1, [
      { replica: 1, main: true, marks: main },
      { replica: 1, main: false, marks: storage },
    ]);
    expect(cost).toMatchObject({ slots: 1, waited: 0 });
    expect(cost.readyNow.p50).toBe(5000 - 4500);
  });

  it("counts only the slots whose Accept left in the measured window", () => {
    const marks = run(
      slot(1, { firstUs: 2000, secondUs: 2500, syncedUs: 3500, durableUs: 4000 }),
      slot(2, { firstUs: 3000, secondUs: 3500, syncedUs: 1800, durableUs: 2000 }),
    );
    expect(ownVoteCost(1, marks, 200_000)).toMatchObject({ slots: 1, waited: 0, secondFollowerFirst: 0 });
  });
});

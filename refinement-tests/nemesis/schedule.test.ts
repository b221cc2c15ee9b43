/**
 * Fault schedules are a function of the seed: same seed, same faults at the same offsets with
 * the same parameters; faults never overlap (hostile clients overlap the next one on
 * purpose); pauses outlast a lease; kinds can be restricted
 * and cycled in order; a 3-replica cluster never gets a fault that needs 5.
 */
import { describe, expect, it } from "vitest";
import { kindsFor, planSchedule } from "./schedule.ts";

describe("fault schedules", () => {
  it("are reproducible from the seed and differ between seeds", () => {
    const a = planSchedule({ seed: 11, faultsMs: 120_000, replicas: 3 });
    expect(planSchedule({ seed: 11, faultsMs: 120_000, replicas: 3 })).toEqual(a);
    expect(planSchedule({ seed: 12, faultsMs: 120_000, replicas: 3 })).not.toEqual(a);
    expect(a.length).toBeGreaterThan(10);
  });

  it("never overlap, start after the warm-up and within the fault phase; hostile clients start with the next fault", () => {
    let overlapped = 0;
    for (const seed of [1, 2, 3, 4, 5]) {
      const faults = planSchedule({ seed, faultsMs: 90_000, replicas: 5, warmupMs: 2000 });
      expect(faults[0]!.at).toBe(2000);
      for (let i = 1; i < faults.length; i++) {
        const before = faults[i - 1]!;
        if (before.kind === "hostile-clients") {
          expect(faults[i]!.at).toBe(before.at);
          overlapped += 1;
        } else expect(faults[i]!.at).toBeGreaterThan(before.at + before.durationMs);
      }
      for (const f of faults) expect(f.at).toBeLessThan(90_000);
    }
    expect(overlapped).toBeGreaterThan(0);
    // Hostile clients alone: one after another.
    const alone = planSchedule({ seed: 1, faultsMs: 60_000, replicas: 3, kinds: ["hostile-clients"] });
    for (let i = 1; i < alone.length; i++)
      expect(alone[i]!.at).toBeGreaterThan(alone[i - 1]!.at + alone[i - 1]!.durationMs);
  });

  it("pause the leader for longer than a default lease (300 ms), even at a fast pace", () => {
    const faults = planSchedule({ seed: 3, faultsMs: 60_000, replicas: 3, kinds: ["pause-leader"], pace: 0.3 });
    for (const f of faults) expect(f.durationMs).toBeGreaterThanOrEqual(1200);
  });

  it("cycle through the given kinds in order, and refuse kinds the cluster is too small for", () => {
    const kinds = ["kill-leader", "pause-leader", "partition-leader", "restart-follower"] as const;
    const faults = planSchedule({ seed: 9, faultsMs: 60_000, replicas: 3, kinds, inOrder: true });
    const start = kinds.indexOf(faults[0]!.kind as (typeof kinds)[number]);
    faults.forEach((f, i) => expect(f.kind).toBe(kinds[(start + i) % kinds.length]));
    expect(kindsFor(3)).not.toContain("partition-bridge");
    expect(kindsFor(5)).toContain("partition-bridge");
    expect(() => planSchedule({ seed: 1, faultsMs: 10_000, replicas: 3, kinds: ["partition-bridge"] })).toThrow(
      /needs more than 3 replicas/,
    );
  });
});

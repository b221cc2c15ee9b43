/**
 * The test-only slow disk: refused unless allowed, off until toggled, and when on every commit
 * takes at least the delay (a lower bound only; load can only lengthen it).
 */
import { describe, expect, it } from "vitest";
import { SlowDisk, slowDiskFromEnv } from "./slow-disk.ts";

describe("slow disk (test-only fault)", () => {
  it("is refused unless explicitly allowed, and bounded", () => {
    expect(slowDiskFromEnv({})).toBeNull();
    expect(() => slowDiskFromEnv({ PAXOS_LEASE_TEST_FSYNC_DELAY_MS: "50" })).toThrow(/PAXOS_LEASE_ALLOW_TEST_FAULTS=1/);
    const allowed = { PAXOS_LEASE_ALLOW_TEST_FAULTS: "1" };
    expect(slowDiskFromEnv({ ...allowed, PAXOS_LEASE_TEST_FSYNC_DELAY_MS: "50" })?.delayMs).toBe(50);
    expect(() => slowDiskFromEnv({ ...allowed, PAXOS_LEASE_TEST_FSYNC_DELAY_MS: "slow" })).toThrow(/not a number/);
    expect(() => slowDiskFromEnv({ ...allowed, PAXOS_LEASE_TEST_FSYNC_DELAY_MS: "0" })).toThrow(
      /not an integer in \[1, 10000\]/,
    );
  });

  it("delays commits only while on; records and their count pass through unchanged", () => {
    const written: number[][] = [];
    const log = {
      append: (records: readonly number[]) => void written.push([...records]),
      get recordCount() {
        return written.flat().length;
      },
    };
    const disk = new SlowDisk(30);
    const slow = disk.wrap(log);
    const timed = (): number => {
      const started = performance.now();
      slow.append([1, 2]);
      return performance.now() - started;
    };
    timed();
    expect(disk.on).toBe(false);
    expect(disk.toggle()).toBe(true);
    expect(timed()).toBeGreaterThanOrEqual(29);
    expect(disk.toggle()).toBe(false);
    expect(written).toEqual([
      [1, 2],
      [1, 2],
    ]);
    expect(slow.recordCount).toBe(4);
  });
});

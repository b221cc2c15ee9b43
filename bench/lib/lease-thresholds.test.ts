/**
 * bench:burst's thresholds follow the lease it gives the replicas: the lag target is a quarter of
 * it, the heartbeat thresholds half and all of the lease and of the election timeout, and each is
 * a bucket bound of the replicas' histograms at that lease. A point misses its target on any
 * failure, unknown outcome or leadership change, or a lag at or past the target.
 */
import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { heartbeatBucketsMs } from "../../impl/runtime/metrics.ts";
import { leaseCore, leaseThresholds, leaseTiming, targetMisses } from "./lease-thresholds.ts";

describe("bench:burst thresholds", () => {
  it("are the 300 ms lease's at the defaults", () => {
    expect(leaseCore(undefined)).toEqual({});
    expect(leaseThresholds(undefined)).toEqual({
      leaseMs: 300,
      electionTimeoutMs: 400,
      lagTargetMs: 75,
      gapNearMs: 200,
      gapMissMs: 400,
      roundTripNearMs: 150,
      roundTripMissMs: 300,
    });
    expect(heartbeatBucketsMs(leaseTiming(undefined))).toEqual([
      5, 10, 25, 50, 75, 100, 150, 200, 300, 400, 600, 1000, 2000,
    ]);
  });

  it("scale with the lease given", () => {
    expect(leaseCore(1000)).toEqual({ leaseMs: 1000, electionTimeoutMsMin: 1334, electionTimeoutMsMax: 2000 });
    expect(leaseThresholds(1000)).toEqual({
      leaseMs: 1000,
      electionTimeoutMs: 1334,
      lagTargetMs: 250,
      gapNearMs: 667,
      gapMissMs: 1334,
      roundTripNearMs: 500,
      roundTripMissMs: 1000,
    });
  });

  test.prop([fc.integer({ min: 100, max: 60_000 })])("are bucket bounds of the replicas' histograms", (leaseMs) => {
    const t = leaseThresholds(leaseMs);
    const buckets = heartbeatBucketsMs(leaseTiming(leaseMs));
    for (const bound of [t.lagTargetMs, t.gapNearMs, t.gapMissMs, t.roundTripNearMs, t.roundTripMissMs])
      expect(buckets).toContain(bound);
    expect(t.lagTargetMs).toBe(leaseMs / 4);
  });

  it("miss a point on any failure, unknown outcome, leadership change or lag at the target", () => {
    const clean = { failed: 0, outcomeUnknown: 0, leadershipChanges: 0, lagP99Ms: 74 };
    const at300 = leaseThresholds(undefined);
    expect(targetMisses(clean, at300)).toEqual([]);
    expect(targetMisses({ ...clean, lagP99Ms: null }, at300)).toEqual([]);
    expect(targetMisses({ ...clean, lagP99Ms: 75 }, at300)).toEqual(["lag p99 75 ms >= 75 ms"]);
    expect(targetMisses({ ...clean, lagP99Ms: 200 }, leaseThresholds(1000))).toEqual([]);
    expect(targetMisses({ failed: 1, outcomeUnknown: 2, leadershipChanges: 1, lagP99Ms: 10 }, at300)).toEqual([
      "1 failed",
      "2 outcome unknown",
      "1 leadership changes",
    ]);
  });
});

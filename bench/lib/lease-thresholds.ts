/**
 * What `bench:burst` holds a point to, scaled to the lease the replicas run with (`--lease-ms`,
 * with election timeouts from 4/3 to 2 times it, as the defaults: 300 ms, 400 to 600 ms): the
 * event-loop lag p99 target is a quarter of the lease, and the heartbeats that came close to
 * costing it are followers' gaps past half and all of the shortest election timeout and leaders'
 * renewal round trips (and holds before leaving) past half and all of the lease. Every bound is
 * one of the replicas' heartbeat bucket bounds (impl/runtime/metrics.ts), so a histogram counts
 * the observations past it exactly.
 */
import { parseConfig } from "../../impl/core/index.ts";
import type { HeartbeatTiming } from "../../impl/runtime/metrics.ts";

/** The core configuration fields the replicas get for `leaseMs` (none: the core's defaults). */
export function leaseCore(
  leaseMs: number | undefined,
): { leaseMs: number; electionTimeoutMsMin: number; electionTimeoutMsMax: number } | Record<string, never> {
  if (leaseMs === undefined) return {};
  return { leaseMs, electionTimeoutMsMin: Math.ceil((leaseMs * 4) / 3), electionTimeoutMsMax: leaseMs * 2 };
}

/** Thresholds in milliseconds. */
export interface LeaseThresholds {
  readonly leaseMs: number;
  /** The shortest election timeout: a follower that stepped nothing for this long campaigns. */
  readonly electionTimeoutMs: number;
  /** Event-loop lag p99 of the busiest replica must stay under this: a quarter of the lease. */
  readonly lagTargetMs: number;
  /** Followers' heartbeat gaps counted past these: half the election timeout, and all of it. */
  readonly gapNearMs: number;
  readonly gapMissMs: number;
  /** Leaders' renewal round trips counted past these (holds past the first): half the lease, and all of it. */
  readonly roundTripNearMs: number;
  readonly roundTripMissMs: number;
}

/** The replicas' timing for `leaseMs`, as they decode it (so with the same defaults). */
export function leaseTiming(leaseMs: number | undefined): HeartbeatTiming {
  return parseConfig({ members: [1], self: 1, ...leaseCore(leaseMs) });
}

export function leaseThresholds(leaseMs: number | undefined): LeaseThresholds {
  const timing = leaseTiming(leaseMs);
  return {
    leaseMs: timing.leaseMs,
    electionTimeoutMs: timing.electionTimeoutMsMin,
    lagTargetMs: timing.leaseMs / 4,
    gapNearMs: timing.electionTimeoutMsMin / 2,
    gapMissMs: timing.electionTimeoutMsMin,
    roundTripNearMs: timing.leaseMs / 2,
    roundTripMissMs: timing.leaseMs,
  };
}

/** What a point's target looks at. */
export interface PointOutcome {
  readonly failed: number;
  readonly outcomeUnknown: number;
  readonly leadershipChanges: number;
  /** Null where the system does not report it (etcd). */
  readonly lagP99Ms: number | null;
}

/**
 * Why a point misses its target (none: met): any failed or outcome-unknown write or leadership
 * change misses it whatever the throughput, and so does an event-loop lag p99 at or past a
 * quarter of the lease.
 */
export function targetMisses(point: PointOutcome, thresholds: LeaseThresholds): string[] {
  const misses: string[] = [];
  if (point.failed > 0) misses.push(`${point.failed} failed`);
  if (point.outcomeUnknown > 0) misses.push(`${point.outcomeUnknown} outcome unknown`);
  if (point.leadershipChanges > 0) misses.push(`${point.leadershipChanges} leadership changes`);
  if (point.lagP99Ms !== null && point.lagP99Ms >= thresholds.lagTargetMs)
    misses.push(`lag p99 ${point.lagP99Ms.toFixed(0)} ms >= ${thresholds.lagTargetMs} ms`);
  return misses;
}

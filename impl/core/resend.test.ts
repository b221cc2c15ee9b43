/**
 * Resends of an unacknowledged Accept back off (impl/core/leader.ts, `resendAccepts`): one
 * heartbeat interval after the first send, then twice the wait before, at most
 * `acceptResendIntervalsMax` intervals; only to the voters that have not voted, and never once
 * the slot is chosen. Time enters as the events' clock readings, so the schedule is exact.
 */
import { describe, expect, it } from "vitest";
import { acceptResendIntervalsMax } from "./leader.ts";
import { Cluster } from "./testing/cluster.ts";

/** A leader (replica 1) of three, its clock at a multiple of 10 ms. */
function elected(): Cluster {
  const c = Cluster.elected(3);
  c.advance(100, 10);
  expect(c.state(1).role._tag).toBe("leader");
  return c;
}

/** Tick every 10 ms for `ms`, delivering everything but the Accepteds `held` decides to hold. */
function run(c: Cluster, ms: number, hold: (from: number) => boolean): void {
  const end = c.now + ms;
  while (c.now < end) {
    c.now += 10;
    c.tickAll();
    for (let round = 0; c.inFlight.length > 0 && round < 100; round++) {
      for (const from of [2, 3]) if (hold(from)) c.hold(`${from}->1`, "Accepted");
      c.deliverRound();
    }
  }
}

/** Clock readings at which replica 1 sent an Accept for `slot` to `to`. */
function acceptTimes(c: Cluster, slot: number, to: number): number[] {
  const times: number[] = [];
  for (const { replica, effect } of c.effectLog) {
    if (replica !== 1 || effect._tag !== "Send" || effect.to !== to) continue;
    const m = effect.message;
    if (m._tag === "Accept" && m.slot === slot) times.push(m.sentAt);
  }
  return times;
}

describe("Accept resends", () => {
  it("back off per slot while no quorum votes: 1, 2, 4, then at most 4 heartbeat intervals", () => {
    const c = elected();
    const beat = c.config(1).heartbeatIntervalMs;
    const slot = (c.state(1).role as { nextSlot: number }).nextSlot;
    c.effectLog.length = 0;
    c.request(1, { _tag: "put", key: "k", value: "v" }, "linearizable");
    const sentAt = c.clock(1);
    run(c, 1000, () => true);
    // Grants kept flowing (heartbeats are not held), so the leader kept leading all along.
    expect(c.state(1).role._tag).toBe("leader");
    const times = acceptTimes(c, slot, 2);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    expect(times[0]).toBe(sentAt);
    // Each resend goes at the first heartbeat at or after its due time.
    const max = beat * acceptResendIntervalsMax;
    let wait = beat;
    for (const gap of gaps) {
      expect(gap).toBeGreaterThanOrEqual(wait);
      expect(gap).toBeLessThan(wait + beat);
      wait = Math.min(2 * wait, max);
    }
    expect(gaps.length).toBeGreaterThanOrEqual(4);
    expect(Math.max(...gaps)).toBeLessThan(max + beat);
    // Without the backoff a resend would go every heartbeat: 20 copies in these 1000 ms.
    expect(times.length).toBeLessThanOrEqual(8);
  });

  it("resends only to the voter that has not voted, and stops once the slot is chosen", () => {
    const c = elected();
    const slot = (c.state(1).role as { nextSlot: number }).nextSlot;
    c.effectLog.length = 0;
    c.request(1, { _tag: "put", key: "k", value: "v" }, "linearizable");
    // Replica 2's vote reaches the leader: with its own, a quorum of three.
    run(c, 500, (from) => from === 3);
    expect(acceptTimes(c, slot, 2)).toHaveLength(1);
    expect(acceptTimes(c, slot, 3)).toHaveLength(1);
  });
});

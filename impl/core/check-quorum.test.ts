/**
 * CheckQuorum counts the time the leader ran (check-quorum.ts; proofs/leases.md, "CheckQuorum
 * counts the time the leader ran"). Each test is "without it, this hazard happens": a leader
 * whose own process stalled past an election timeout stepped down on its first tick, before the
 * answers waiting in its sockets were read (the flood of new connections in bench/flood.ts), while
 * a leader that runs and hears no quorum must still step down after an election timeout of its
 * own running, stalls or not, and a stall never lengthens its lease.
 */
import { describe, expect, it } from "vitest";
import { Cluster } from "./testing/cluster.ts";

/** Leader 1 of three, with heartbeats flowing; returns the cluster at a heartbeat just answered. */
function leading(): Cluster {
  const c = Cluster.elected(3, { config: { checkQuorumCountsRunTime: true } });
  c.advance(100, 10);
  expect(c.state(1).role._tag).toBe("leader");
  return c;
}

const tick = (c: Cluster, id: number): void => c.apply(id, { _tag: "Tick", now: c.clock(id) });
const maxBal = (c: Cluster, id: number): string => JSON.stringify(c.state(id).acceptor.maxBal);

describe("CheckQuorum counts the time the leader ran", () => {
  it("keeps a leader whose own stall outlasted an election timeout, its quorum's answers still unread", () => {
    const c = leading();
    // A heartbeat, answered by both followers; the answers wait in the leader's sockets.
    c.elapse(50);
    tick(c, 1);
    c.deliverRound();
    expect(c.inFlight.filter((m) => m.to === 1 && m.message._tag === "HeartbeatAck")).toHaveLength(2);
    // The leader's process stalls (a flood of client work, a loaded machine): nothing steps it.
    const { leaseUntil } = c.state(1).role as { leaseUntil: number };
    c.elapse(450);
    // Its timer runs before it reads its sockets: a tick at the end of the stall.
    tick(c, 1);
    expect(c.state(1).role._tag, "the stall is not counted: it keeps leading").toBe("leader");
    // The stall renewed nothing: the lease still ends where the last answered heartbeat put it.
    expect((c.state(1).role as { leaseUntil: number }).leaseUntil).toBe(leaseUntil);
    expect(c.leaseHolders()).toEqual([]);
    // The answers are read; the next heartbeat's answers renew the lease.
    c.stabilize();
    c.advance(50, 10);
    expect(c.state(1).role._tag).toBe("leader");
    expect(c.leaseHolders()).toEqual([1]);
  });

  it("steps down a leader that runs and hears no quorum, after an election timeout", () => {
    const c = leading();
    const promised = maxBal(c, 1);
    c.cut.add("2->1");
    c.cut.add("3->1");
    const timeout = c.config(1).electionTimeoutMsMin;
    for (let ms = 0; ms < timeout - 60; ms += 10) {
      c.elapse(10);
      tick(c, 1);
    }
    expect(c.state(1).role._tag).toBe("leader");
    for (let ms = 0; ms < 100 && c.state(1).role._tag === "leader"; ms += 10) {
      c.elapse(10);
      tick(c, 1);
    }
    expect(c.state(1).role._tag).toBe("follower");
    // By itself: it promised no higher ballot.
    expect(maxBal(c, 1)).toBe(promised);
  });

  it("steps down a leader that hears no quorum once it ran an election timeout, however often it stalls", () => {
    const c = leading();
    c.cut.add("2->1");
    c.cut.add("3->1");
    const { electionTimeoutMsMin: timeout, heartbeatIntervalMs: beat } = c.config(1);
    // Each round: a stall of 250 ms, of which one heartbeat interval counts as run, then a tick.
    let rounds = 0;
    while (c.state(1).role._tag === "leader" && rounds < 100) {
      c.elapse(beat + 250);
      tick(c, 1);
      rounds += 1;
    }
    expect(c.state(1).role._tag).toBe("follower");
    // Counting the clock it would have stepped down in the second round; counting only the time
    // it ran, after about an election timeout of heartbeat intervals.
    expect(rounds).toBeGreaterThanOrEqual(Math.floor(timeout / beat) - 2);
    expect(rounds).toBeLessThanOrEqual(Math.ceil(timeout / beat) + 1);
  });
});

/**
 * CheckQuorum counts the time the leader ran (check-quorum.ts; proofs/leases.md, "CheckQuorum
 * counts the time the leader ran"). Each test is "without it, this hazard happens": a leader
 * whose own process stalled past an election timeout stepped down on its first tick, before the
 * answers waiting in its sockets were read (the flood of new connections in bench/flood.ts), while
 * a leader that runs and hears no quorum must still step down after an election timeout of its
 * own running, stalls or not, and a stall never lengthens its lease.
 */
import { describe, expect, it } from "vitest";
import { mutantNamed } from "../../refinement-tests/mutants/index.ts";
import { rulesOf } from "../../refinement-tests/mutants/mutant.ts";
import { defaultRules, type ReplicaRules } from "./rules.ts";
import { Cluster } from "./testing/cluster.ts";

/** Leader 1 of three, with heartbeats flowing; returns the cluster at a heartbeat just answered. */
function leading(rules: ReplicaRules = defaultRules): Cluster {
  const c = Cluster.elected(3, { rules, config: { checkQuorumCountsRunTime: true } });
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

/**
 * Rule L6 for a leader (lease.ts, `yieldsToHigherBallot`; proofs/leases.md, "Rule L6"): a leader
 * resumed after its own stall, its lease lapsed, gives way to a higher ballot at once, as a
 * candidate does; a leader whose lease holds keeps refusing. Followers 2 and 3 cannot reach each
 * other, so replica 2's campaign needs the leader's promise.
 */
describe("a leader whose lease lapsed gives way at once", () => {
  /** The whole machine stalls past an election timeout; the leader ticks first, then 2 campaigns. */
  function race(rules: ReplicaRules): Cluster {
    const c = leading(rules);
    c.cut.add("2->3");
    c.cut.add("3->2");
    c.elapse(1000);
    // Its first heartbeat after the stall renews its self-grant; CheckQuorum skips the stall.
    tick(c, 1);
    expect(c.state(1).role._tag).toBe("leader");
    expect(c.state(1).acceptor.grantUntil).toBeGreaterThan(c.clock(1));
    expect(c.leaseHolders()).toEqual([]);
    tick(c, 2);
    expect(c.state(2).role._tag).toBe("candidate");
    // Every message, and every one they cause, with time standing still.
    c.stabilize();
    return c;
  }

  it("elects the candidate one round trip after its Prepare, with time standing still", () => {
    const c = race(defaultRules);
    expect(c.state(2).role._tag).toBe("leader");
    expect(c.state(1).role._tag).toBe("follower");
    expect(maxBal(c, 1)).toBe(maxBal(c, 2));
    expect(c.leaseHolders()).toEqual([2]);
  });

  it("without it (lapsed-leader-holds), the leader refuses the candidate with its renewed self-grant", () => {
    const c = race(rulesOf(mutantNamed("lapsed-leader-holds")));
    // The candidate's Nack deposes the leader, but the candidate is refused and needs a resend.
    expect(c.state(1).role._tag).toBe("follower");
    expect(c.state(2).role._tag).toBe("candidate");
    expect(c.leaseHolders()).toEqual([]);
  });

  it("a leader whose lease holds refuses a higher ballot and keeps leading", () => {
    // Replica 2 hears nothing from the leader (a one-way cut) and campaigns; 3 keeps answering.
    for (const rules of [defaultRules, { ...defaultRules, yieldsToHigherBallot: () => true }]) {
      const c = leading(rules);
      c.cut.add("1->2");
      c.cut.add("3->2");
      for (let ms = 0; ms < 700 && c.state(2).role._tag !== "candidate"; ms += 10) c.advance(10, 10);
      expect(c.state(2).role._tag).toBe("candidate");
      c.stabilize();
      // The rule as written keeps the leader; a leader that always yields is deposed by a campaign
      // its quorum's grants refuse anyway.
      const kept = rules === defaultRules;
      expect(c.state(1).role._tag).toBe(kept ? "leader" : "follower");
      expect(c.leaseHolders()).toEqual(kept ? [1] : []);
    }
  });
});

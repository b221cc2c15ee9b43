/** A restarted acceptor does not wait out a lease: it may promise a new ballot while a grant it forgot is in force. */
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

/**
 * With 5 or 7 replicas: the restartInLease prelude (world/preludes.ts), where the leader's lease
 * rests on a bare quorum of grants, A's among them, and the others' grants run out; with pick bit
 * 7 it stops at the instant A would be cut off from the leader, so the explorer takes the faults
 * (a partition, a crash and a restart) and lets time run: a follower the leader no longer reaches
 * campaigns, and rule L4 alone keeps A from helping its ballot while the leader's lease, counted
 * from A's last grant, holds. The pick (which follower is A, how late the prelude stops) is 10
 * with 5 replicas and 3 with 7, with bit 7 set.
 */
const restartInLease = (pick: number) => ({
  bounds: {
    writes: 0,
    reads: 0,
    crashes: 1,
    restarts: 1,
    partitions: 1,
    prelude: "restartInLease" as const,
    pick: 128 + pick,
    orders: "fifo" as const,
  },
  depth: 14,
});

export const restartForgetsGrant: Mutant = {
  name: "restart-forgets-grant",
  description: "a restarted acceptor helps any ballot at once (no restart wait, rule L4 broken)",
  expectedCatch: ["AtMostOneLeaseholder", "LeaseReadFresh", "Linearizability"],
  mode: "safety",
  step: withRules({ restartWaitUntil: (now) => now }),
  explore: {
    bounds: { writes: 0, reads: 0, crashes: 1, restarts: 1, partitions: 1, orders: "fifo", tuning: 5 },
    depth: 16,
  },
  exploreWith: { 5: restartInLease(10), 7: restartInLease(3) },
};

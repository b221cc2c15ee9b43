/** A restarted acceptor does not wait out a lease: it may promise a new ballot while a grant it forgot is in force. */
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

/**
 * With 5 or 7 replicas: the restartInLease prelude (world/preludes.ts), where the leader's lease
 * rests on a bare quorum of grants, A's among them; A is cut off from it, crashes and restarts just
 * before a follower the leader no longer reaches campaigns. Its schedule is the catching trace
 * (the explorer checks it at the root, 0 transitions): rule L4 alone keeps A from helping that
 * follower's ballot while the leader's lease, counted from A's last grant, holds. The pick (which
 * follower is A, how late it crashes) is the first that does it at each count.
 */
const restartInLease = (pick: number) => ({
  bounds: { writes: 0, reads: 0, prelude: "restartInLease" as const, pick, orders: "fifo" as const },
  depth: 1,
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

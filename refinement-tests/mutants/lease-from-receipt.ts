/** The leader counts its lease from when a grant ARRIVED instead of when its request was sent. */
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

/**
 * With 5 or 7 replicas the old leader's lease rests on a quorum of grants, so a grant it counts
 * late matters only once the followers whose grants it counts on time stop granting. Breadth
 * first with two partitions and a held grant does not reach that in seconds (62,795 states to
 * depth 16 with 7); seeded walks of 30 transitions did, until rule L6 (a candidate yields to a
 * higher ballot): since, they no longer catch it with 5 in 30 CPU s (nor seeds 2 to 6 in 10 to
 * 15, nor breadth first after the cluster is shrunk to 3 voters). The twoBallots prelude
 * (pick 2: the newer leader cut off, fault-free time until another leads) at tuning 4 leaves
 * the explorer a leader whose late-counted grant outlasts the grantor's; one partition then
 * catches it, as the random suite's shortest trace with 5 does.
 */
const twoBallots = {
  bounds: {
    writes: 0,
    reads: 0,
    partitions: 1,
    orders: "fifo" as const,
    tuning: 4,
    prelude: "twoBallots" as const,
    pick: 2,
  },
  depth: 10,
};

export const leaseFromReceipt: Mutant = {
  name: "lease-from-receipt",
  description: "a lease grant is counted from its receipt, not from the send time of the request it answers",
  expectedCatch: ["AtMostOneLeaseholder", "LeaseBounded", "LeaseReadFresh", "Linearizability"],
  mode: "safety",
  step: withRules({ grantCountedFrom: (_sentAt, receivedAt) => receivedAt }),
  explore: { bounds: { writes: 0, reads: 0, partitions: 2, delays: 1, orders: "fifo", tuning: 5 }, depth: 14 },
  exploreWith: { 5: twoBallots, 7: twoBallots },
};

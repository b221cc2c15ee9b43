/** The leader counts its lease from when a grant ARRIVED instead of when its request was sent. */
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

/**
 * With 5 or 7 replicas the old leader's lease rests on a quorum of grants, so a grant it counts
 * late matters only once the followers whose grants it counts on time stop granting: two
 * partitions (pairs of neighbours cut off) and a held grant. Breadth first does not reach that in
 * seconds (62,795 states to depth 16 with 7); seeded walks of 30 transitions do.
 */
const walks = {
  bounds: { writes: 0, reads: 0, partitions: 2, delays: 1, orders: "fifo" as const, tuning: 5 },
  depth: 30,
  mode: "random" as const,
};

export const leaseFromReceipt: Mutant = {
  name: "lease-from-receipt",
  description: "a lease grant is counted from its receipt, not from the send time of the request it answers",
  expectedCatch: ["AtMostOneLeaseholder", "LeaseBounded", "LeaseReadFresh", "Linearizability"],
  mode: "safety",
  step: withRules({ grantCountedFrom: (_sentAt, receivedAt) => receivedAt }),
  explore: { bounds: { writes: 0, reads: 0, partitions: 2, delays: 1, orders: "fifo", tuning: 5 }, depth: 14 },
  exploreWith: { 5: walks, 7: walks },
};

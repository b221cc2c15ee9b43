/**
 * A grant that runs out early: an acceptor helps other ballots after half the lease (rule L1's
 * duration broken), while the leader it granted still counts on the whole lease.
 */
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

const oneCut = {
  bounds: { writes: 0, reads: 0, partitions: 1, delays: 1, orders: "fifo" as const, tuning: 5 },
  depth: 20,
};

export const grantTooShort: Mutant = {
  name: "grant-too-short",
  description: "an acceptor's grant lasts half of leaseMs instead of leaseMs",
  expectedCatch: ["AtMostOneLeaseholder", "LeaseReadFresh", "Linearizability"],
  mode: "safety",
  step: withRules({ grantUntilFor: (now, config) => now + config.leaseMs / 2 }),
  explore: { bounds: { writes: 0, reads: 0, partitions: 2, delays: 1, orders: "fifo", tuning: 5 }, depth: 20 },
  // With 5 or 7 replicas one link cut one way is enough (a follower the leader no longer reaches
  // campaigns while the others' half-length grants have run out), and a second one multiplies
  // the links to choose from: 442,173 states with 7 did not finish depth 20.
  exploreWith: { 5: oneCut, 7: oneCut },
};

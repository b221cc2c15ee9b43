/**
 * A grant that runs out early: an acceptor helps other ballots after half the lease (rule L1's
 * duration broken), while the leader it granted still counts on the whole lease.
 */
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

export const grantTooShort: Mutant = {
  name: "grant-too-short",
  description: "an acceptor's grant lasts half of leaseMs instead of leaseMs",
  expectedCatch: ["AtMostOneLeaseholder", "LeaseReadFresh", "Linearizability"],
  mode: "safety",
  step: withRules({ grantUntilFor: (now, config) => now + config.leaseMs / 2 }),
  explore: { bounds: { writes: 0, reads: 0, partitions: 2, delays: 1, orders: "fifo", tuning: 5 }, depth: 20 },
};

/** The leader trusts its lease for the whole leaseMs of its own clock, without shortening it for clock drift. */
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

export const leaseWithoutDriftMargin: Mutant = {
  name: "lease-without-drift-margin",
  description:
    "the leader's lease runs leaseMs - leaseMarginMs of its own clock, not leaseMs (1 - rho) / (1 + rho) - leaseMarginMs",
  expectedCatch: ["LeaseBounded", "AtMostOneLeaseholder", "LeaseReadFresh", "Linearizability"],
  mode: "safety",
  step: withRules({ leaseExpiry: (from, config) => from + config.leaseMs - config.leaseMarginMs }),
  explore: { bounds: { writes: 0, reads: 0, orders: "fifo", overrides: { clockDriftPpmMax: 100_000 } }, depth: 4 },
};

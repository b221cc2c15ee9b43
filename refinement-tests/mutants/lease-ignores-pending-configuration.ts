/**
 * The lease counted in the configuration in force only (rule L7 broken): a leader whose log holds
 * a chosen change not yet governing trusts grants of the old voters alone, although the new
 * voters may elect someone else as soon as the change governs.
 */
import type { Configuration } from "../../impl/core/index.ts";
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

export const leaseIgnoresPendingConfiguration: Mutant = {
  name: "lease-ignores-pending-configuration",
  description: "the lease needs a quorum of grants in the configuration in force only, not in the pending ones",
  expectedCatch: ["AtMostOneLeaseholder", "LeaseReadFresh", "Linearizability"],
  mode: "safety",
  step: withRules({ leaseConfigurations: (configs: readonly Configuration[]) => configs.slice(0, 1) }),
  explore: {
    bounds: { writes: 0, reads: 0, reconfig: "replace", partitions: 1, orders: "fifo", tuning: 5 },
    depth: 24,
  },
};

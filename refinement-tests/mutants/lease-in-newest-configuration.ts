/**
 * The lease counted in the newest configuration only (rule L7 broken): while a chosen change is
 * pending, a leader trusts grants of the new voters alone, although the configuration in force
 * still decides the next slots and its voters may elect someone else.
 */
import type { Configuration } from "../../impl/core/index.ts";
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

export const leaseInNewestConfiguration: Mutant = {
  name: "lease-in-newest-configuration",
  description: "the lease needs a quorum of grants in the newest configuration only, not in every one that may govern",
  expectedCatch: ["AtMostOneLeaseholder", "LeaseReadFresh", "Linearizability"],
  mode: "safety",
  step: withRules({ leaseConfigurations: (configs: readonly Configuration[]) => configs.slice(-1) }),
  explore: {
    bounds: { writes: 0, reads: 0, reconfig: "replace", partitions: 2, orders: "fifo", tuning: 5 },
    depth: 24,
  },
};

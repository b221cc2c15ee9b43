/**
 * Rule R4 disabled: an acceptor helps (promises, votes for, grants a lease to) a ballot led by a
 * replica it knows was removed, even when that replica is not ahead of it. A voter removed while
 * it lagged, which knows only the configuration it was removed from, can then be elected in it,
 * learn its removal from its phase 1 and step down, leaving the voters in force bound to its
 * ballot for a lease before they elect a leader of their own (scenario
 * reconfig-removed-voter-campaigns.txt in impl/core, where rules.test shows the difference).
 *
 * No check catches it. Refusing is always safe, so R4 guards liveness only, and what it prevents
 * is one delay of about a lease and an election: within the liveness suite's bound on a
 * leaseholder (2 leases + 5 election timeouts after the faults stop). The random liveness suite
 * does not catch it in 18,472 runs (74 CPU s), and the explorer (safety only) finds no violation.
 * The check that would catch it is a bound on disruption rather than on recovery: once a quorum
 * of the configuration in force has executed a replica's removal, no voter of it promises that
 * replica's ballot (which is rule R4's own statement, so it would only restate the rule), or a
 * leaseholder bound of one election after a fault-free change (which the world's timing cannot
 * tell from an ordinary election that went badly).
 */
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

export const helpRemovedLeader: Mutant = {
  name: "help-removed-leader",
  description: "an acceptor helps a ballot of a leader it knows was removed",
  expectedCatch: ["Liveness"],
  mode: "liveness",
  step: withRules({ mayHelpLeader: () => true }),
  // A voter removed, a partition (it may be cut off meanwhile), a crash and a read: no safety
  // violation (mutants.test).
  explore: {
    bounds: { writes: 0, reads: 1, crashes: 1, restarts: 0, partitions: 1, reconfig: "remove", orders: "fifo" },
    depth: 8,
  },
};

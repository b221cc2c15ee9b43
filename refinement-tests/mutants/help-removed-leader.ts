/**
 * Rule R4 disabled: an acceptor helps (promises, votes for, grants a lease to) a ballot led by a
 * replica it knows was removed, even when that replica is not ahead of it. A voter removed while
 * it lagged, which knows only the configuration it was removed from, can then be elected in it,
 * learn its removal from its phase 1 and step down, leaving the voters in force bound to its
 * ballot for a lease before they elect a leader of their own (scenario
 * reconfig-removed-voter-campaigns.txt in impl/core, where rules.test shows the difference).
 *
 * Refusing is always safe, so R4 guards liveness only, and what it prevents is one delay of about
 * a lease and an election: within the liveness suite's bound on recovery (2 leases + 5 election
 * timeouts after the faults stop), which 18,472 random liveness runs did not exceed. What catches
 * it is a bound on disruption: NoDisruptionByRemoved (proofs/configurations.ts), read off the
 * chosen log, says that a replica which has executed every slot a removed replica could lead
 * never helps that replica's ballot. Both engines check it at every step.
 */
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

const shrunk = {
  bounds: {
    writes: 0,
    reads: 0,
    crashes: 1,
    restarts: 0,
    partitions: 1,
    reconfig: "remove" as const,
    prelude: "writes" as const,
    pick: 64,
    orders: "fifo" as const,
  },
  depth: 16,
};

export const helpRemovedLeader: Mutant = {
  name: "help-removed-leader",
  description: "an acceptor helps a ballot of a leader it knows was removed",
  expectedCatch: ["NoDisruptionByRemoved", "Liveness"],
  mode: "liveness",
  step: withRules({ mayHelpLeader: () => true }),
  explore: {
    bounds: { writes: 0, reads: 0, crashes: 1, restarts: 0, partitions: 1, reconfig: "remove", orders: "fifo" },
    depth: 16,
  },
  // With 5 or 7 replicas: from the writes prelude after the cluster is shrunk to 3 voters (pick
  // bit 6: the leader removes the others one by one, and they retire), the same faults.
  exploreWith: { 5: shrunk, 7: shrunk },
  // At zero delay with 5 and 7 replicas, the same bounds with cuts that drop (the shortest trace
  // holds no message): the environment acting only between waves keeps the search within the
  // budget (20,650 states, against 46,073 when it may act between any two deliveries).
  exploreZeroDelay: { 5: shrunk, 7: shrunk },
};

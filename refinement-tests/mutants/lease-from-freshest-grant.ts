/**
 * The lease counted from the freshest grant instead of the quorum-th freshest (rule L2 broken):
 * the leader's own grant, renewed at every heartbeat, keeps its lease alive when no other
 * acceptor answers any more.
 */
import type { GrantTimes } from "../../impl/core/testing/index.ts";
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

function freshest(grantSentAt: GrantTimes): number {
  return Math.max(...grantSentAt);
}

const shrunk = {
  bounds: {
    writes: 0,
    reads: 0,
    partitions: 1,
    orders: "fifo" as const,
    tuning: 5,
    prelude: "writes" as const,
    pick: 64,
    settle: true,
  },
  depth: 14,
};

export const leaseFromFreshestGrant: Mutant = {
  name: "lease-from-freshest-grant",
  description: "the lease counts from the most recent grant, not from the quorum-th most recent",
  expectedCatch: ["AtMostOneLeaseholder", "LeaseReadFresh", "Linearizability"],
  mode: "safety",
  step: withRules({ leaseFrom: (grantSentAt) => freshest(grantSentAt) }),
  explore: { bounds: { writes: 0, reads: 0, partitions: 1, orders: "fifo", tuning: 5 }, depth: 14 },
  // With 5 or 7 replicas, since rule L6 (a candidate yields to a higher ballot) these bounds are
  // exhausted without a catch (631 and 1,074 states); after the cluster is shrunk to 3 voters
  // (the writes prelude with pick bit 6) the one partition catches it in 168 states.
  exploreWith: { 5: shrunk, 7: shrunk },
};

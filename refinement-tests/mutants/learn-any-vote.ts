/**
 * A follower takes its own vote as chosen whenever a leader's commit index covers the slot, whatever the vote's ballot.
 */
import type { Ballot, ReplicaRules } from "../../impl/core/testing/index.ts";
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

const zeroDelay = {
  bounds: {
    reads: 0,
    crashes: 1,
    restarts: 1,
    restartClocks: "continue" as const,
    orders: "fifo" as const,
    prelude: "twoBallots" as const,
    pick: 0,
    settle: true,
  },
  depth: 20,
};

export const learnAnyVote: Mutant = {
  name: "learn-any-vote",
  description: "a follower learns its vote as chosen from any leader's commit index, even a vote from an older ballot",
  expectedCatch: ["LearnedIsChosen", "ExecutedPrefixAgreement", "DigestAgreement"],
  mode: "safety",
  step: withRules({
    learnableFromLeader: (_rules: ReplicaRules, vote: unknown, _ballot: Ballot) => vote !== undefined,
  }),
  // Breadth first needs 45,000 states (to depth 23) for the shortest trace; walks are quicker.
  explore: { bounds: { writes: 2, reads: 0, partitions: 1, orders: "fifo", tuning: 5 }, depth: 30, mode: "random" },
  // With 5 and 7 replicas the route of the zero-delay hunt (below), at every tuning: since rule
  // L6 (a candidate yields to a higher ballot) the walks from seed 2, the quickest of seeds 1 to 4
  // before (walk 958 with either count), no longer catch it with 5 in 30 CPU s, nor seeds 1 and 3
  // in 10; the twoBallots prelude does in 100 and 134 states.
  exploreWith: { 5: zeroDelay, 7: zeroDelay },
  // At zero delay the walks above, whose catches went through a partition that held an Accept,
  // do not reach it. The twoBallots prelude builds the history without a late message: the
  // follower A holds the older ballot's vote at the slot where the newer leader chose another
  // write, cut off from that leader (pick 0). Healing the cut, the leader's next message tells A
  // its commit index. With 5 and 7 replicas A campaigns first (a candidate learns nothing from
  // it), so the explorer crashes and restarts A: after its restart wait, a follower again.
  exploreZeroDelay: { 3: zeroDelay, 5: zeroDelay, 7: zeroDelay },
};

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
  // The route of the zero-delay hunt (below), at every replica count and tuning (77 states with
  // 3). From scratch (a warm start, two writes, one partition, fifo, sparse timers), breadth first
  // now needs 58,342 states (the shortest trace 27 transitions; it was 45,000 states to depth 23
  // before rule L6 and the leader's own vote counted once durable lengthened the elections and
  // writes on its path), about 86 s at load 17, and random walks of 30 transitions, which caught it
  // in 3 to 10 s before, revisit the same 13,400 states in 90 s (7,940 walks) without a catch. With
  // 5 and 7 replicas the walks from seed 2, the quickest of seeds 1 to 4 before (walk 958 with
  // either count), no longer catch it with 5 in 30 CPU s, nor seeds 1 and 3 in 10; the twoBallots
  // prelude does in 100 and 134 states.
  explore: zeroDelay,
  // At zero delay the walks above, whose catches went through a partition that held an Accept,
  // do not reach it. The twoBallots prelude builds the history without a late message: the
  // follower A holds the older ballot's vote at the slot where the newer leader chose another
  // write, cut off from that leader (pick 0). Healing the cut, the leader's next message tells A
  // its commit index. With 5 and 7 replicas A campaigns first (a candidate learns nothing from
  // it), so the explorer crashes and restarts A: after its restart wait, a follower again.
  exploreZeroDelay: { 3: zeroDelay, 5: zeroDelay, 7: zeroDelay },
};

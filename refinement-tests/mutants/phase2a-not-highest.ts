/** Phase 2a ignores ballot order: a new leader re-proposes the LOWEST-ballot vote phase 1 reported at a slot. */
import type { ReplicaRules, Vote } from "../../impl/core/testing/index.ts";
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

function mergeLowest<I>(rules: ReplicaRules, current: Vote<I> | undefined, reported: Vote<I>): Vote<I> {
  if (current === undefined || rules.compareBallots(reported.ballot, current.ballot) < 0) return reported;
  return current;
}

export const phase2aNotHighest: Mutant = {
  name: "phase2a-not-highest",
  description: "phase 2a proposes the lowest-ballot vote phase 1 reported instead of the highest",
  expectedCatch: ["refines Voting", "VotesSafe", "refines Consensus", "LearnedIsChosen"],
  mode: "safety",
  step: withRules({ mergeRevealed: mergeLowest }),
  // Two votes at one slot from different ballots need a leader's Accepts lost, the leader crashed
  // and back, and a second leader choosing the other write: breadth first does not reach that
  // depth in seconds (389,000 states to depth 16); seeded random walks of 30 transitions do.
  explore: {
    bounds: { writes: 2, reads: 0, losses: 2, crashes: 1, restarts: 1, orders: "fifo", tuning: 5 },
    depth: 30,
    mode: "random",
  },
};

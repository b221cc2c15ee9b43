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
  // Two votes at one slot from different ballots need a leader's Accept to reach one follower
  // only, that follower cut off while the others choose another write there, and then a Promise
  // quorum that hears from both: the twoBallots prelude builds the first two (with any replica
  // count), and breadth first finds the leader's crash and the election that follows. Without
  // the prelude, seeded random walks of 30 transitions (writes 2, losses 2, a crash and a
  // restart, orders fifo, tuning 5) reach it with 3 replicas, in 15,000 states; with 5 and 7
  // they did not within 10 CPU s.
  explore: {
    bounds: { writes: 0, reads: 0, crashes: 1, restarts: 0, prelude: "twoBallots", settle: true, orders: "fifo" },
    depth: 24,
  },
};

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
};

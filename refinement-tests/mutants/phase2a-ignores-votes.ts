/**
 * Phase 2a ignores what phase 1 revealed: a new leader proposes a no-op at every slot it does not
 * know chosen, even where an acceptor reported a vote (Paxos's P2c broken), over a value that may
 * already be chosen.
 */
import { noopValue, type Value, type Vote } from "../../impl/core/testing/index.ts";
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

function knownOrNoop<I>(_revealed: Vote<I> | undefined, knownChosen: Value<I> | undefined): Value<I> {
  return knownChosen ?? noopValue;
}

const shrunk = {
  bounds: {
    reads: 0,
    crashes: 1,
    restarts: 0,
    delays: 1,
    orders: "fifo" as const,
    tuning: 5,
    prelude: "writes" as const,
    pick: 64,
    settle: true,
  },
  depth: 18,
};

export const phase2aIgnoresVotes: Mutant = {
  name: "phase2a-ignores-votes",
  description: "phase 2a proposes a no-op where phase 1 revealed a vote, unless the slot is known chosen",
  expectedCatch: ["refines Voting", "VotesSafe", "refines Consensus", "LearnedIsChosen", "ExecutedPrefixAgreement"],
  mode: "safety",
  step: withRules({ phase2aValue: knownOrNoop }),
  explore: { bounds: { reads: 0, crashes: 1, restarts: 0, delays: 1, orders: "fifo", tuning: 5 }, depth: 18 },
  // With 5 or 7 replicas, since rule L6 (a candidate yields to a higher ballot) these bounds are
  // exhausted without a catch (15,617 and 32,526 states); shrinking the cluster to 3 voters (the
  // writes prelude with pick bit 6) catches it already: a leader elected on the way proposes a
  // no-op over a slot a promise reported a vote for.
  exploreWith: { 5: shrunk, 7: shrunk },
};

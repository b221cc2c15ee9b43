/** Accepting below the promised ballot: an acceptor helps a ballot lower than its maxBal (P1a broken). */
import type { AcceptorState, Ballot, ReplicaRules } from "../../impl/core/testing/index.ts";
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

function canPromiseIgnoringMaxBal<I>(
  rules: ReplicaRules,
  acceptor: AcceptorState<I>,
  ballot: Ballot,
  now: number,
): boolean {
  // The real rule starts with: if (ballot < maxBal) refuse. Gone.
  if (now < acceptor.noPromiseUntil && rules.compareBallots(ballot, acceptor.maxBal) !== 0) return false;
  if (now < acceptor.grantUntil && rules.compareBallots(ballot, acceptor.grantTo) !== 0) return false;
  return true;
}

const shrunk = {
  bounds: {
    reads: 0,
    crashes: 2,
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

export const acceptBelowPromise: Mutant = {
  name: "accept-below-promise",
  description: "an acceptor votes in (and promises) ballots below its maxBal",
  expectedCatch: ["refines Voting", "VotesSafe", "PromiseReportsVotes", "core assertion"],
  mode: "safety",
  step: withRules({ canPromise: canPromiseIgnoringMaxBal }),
  explore: { bounds: { reads: 0, crashes: 2, restarts: 0, delays: 1, orders: "fifo", tuning: 5 }, depth: 18 },
  // With 5 or 7 replicas, the same faults after the cluster is shrunk to 3 voters (the writes
  // prelude with pick bit 6: the leader removes the others one by one, and they retire); with all
  // 5 or 7 voting, two crashes leave a quorum that keeps every vote, and 127,456 states (5) do not
  // reach two votes at one slot.
  exploreWith: { 5: shrunk, 7: shrunk },
};

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

export const acceptBelowPromise: Mutant = {
  name: "accept-below-promise",
  description: "an acceptor votes in (and promises) ballots below its maxBal",
  expectedCatch: ["refines Voting", "VotesSafe", "PromiseReportsVotes", "core assertion"],
  mode: "safety",
  step: withRules({ canPromise: canPromiseIgnoringMaxBal }),
  explore: { bounds: { reads: 0, crashes: 2, restarts: 0, delays: 1, orders: "fifo", tuning: 5 }, depth: 18 },
};

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

const zeroDelay = {
  bounds: {
    reads: 0,
    crashes: 1,
    restarts: 1,
    restartClocks: "continue" as const,
    orders: "fifo" as const,
    tuning: 5,
    prelude: "restartInLease" as const,
    pick: 131,
    settle: true,
  },
  depth: 16,
};

export const acceptBelowPromise: Mutant = {
  name: "accept-below-promise",
  description: "an acceptor votes in (and promises) ballots below its maxBal",
  expectedCatch: ["refines Voting", "VotesSafe", "PromiseReportsVotes", "core assertion"],
  mode: "safety",
  step: withRules({ canPromise: canPromiseIgnoringMaxBal }),
  // With 3 replicas at the other tunings, the zero-delay route (below) with cuts that drop: since
  // rule L6 the earlier bounds (two crashes and a held Accept, depth 18) are exhausted without a
  // catch (25,019 states). With cuts that hold, the route's bounds were exhausted too (6,146
  // states): the leader's Heartbeat held on its cut link to A arrives at the heal, before the
  // client's write; A refuses it (its maxBal is higher), and the Nack tells the leader of the
  // higher ballot, so it sends no Accept in its own ballot. With one loss to spend the explorer
  // catches it (29,664 states, over the 10 s budget); with cuts that drop, the Heartbeat sent over
  // the cut is lost, as a partition loses it, and the leader's Accept for the write reaches A first
  // (3,404 states). The explorer's older trace, which holds an Accept back, is still committed and
  // still fails.
  explore: { ...zeroDelay, bounds: { ...zeroDelay.bounds, pick: 138, cuts: "drop" as const } },
  // With 5 or 7 replicas, the route the zero-delay hunt takes (below) at every tuning: with all 5
  // or 7 voting, two crashes leave a quorum that keeps every vote, and 127,456 states (5) do not
  // reach two votes at one slot; the same faults after the cluster is shrunk to 3 voters (the
  // writes prelude with pick 64) took 20,237 and 59,385 states (3.1 and 9.0 CPU s with 7 at load
  // 15 to 20, close to the 10 s budget), this route 399 and 1,892 (0.2 and 0.7 to 0.9 CPU s).
  exploreWith: {
    5: { ...zeroDelay, bounds: { ...zeroDelay.bounds, pick: 256 } },
    7: { ...zeroDelay, bounds: { ...zeroDelay.bounds, pick: 257 } },
  },
  // At zero delay the Accept cannot arrive late, and an acceptor that promised a higher ballot
  // refuses it while the grant of that promise lasts (rule L1, which the mutant keeps), so the
  // vote below maxBal needs an acceptor with a higher maxBal and no grant: one that campaigned,
  // crashed and restarted (its grant is not durable) and whose restart wait is over, while the
  // old leader still leads on another follower's grants. The restartInLease prelude cuts that
  // acceptor off from the leader until its election timer fires (pick 131: as late as the prelude
  // goes, and stopping there); the explorer crashes and restarts it, heals the cut and sends the
  // leader a write. With 5 and 7 replicas two followers are cut off, and their duelling
  // campaigns leave one that backed off with a higher maxBal and no grant: no crash is needed.
  // Since rule L6 (a candidate yields to a higher ballot and drops its self-grant) a duel leaves
  // the candidate that backed off bound to the winner's ballot, not free: with 3 replicas pick 138
  // (A cut off later) leads there instead, and with 5 and 7 this route (picks 128 to 143, depth
  // 16: 966 and 1,317 states) no longer reaches the vote below maxBal. With 5 and 7, `exploreWith`
  // (own and drift tunings) first shrinks the cluster to 3 voters (pick bit 8) and then runs the
  // prelude uncut, A crashing and restarting (pick 256, and 257 with 7: A cut off a little later):
  // 3,590 and 3,689 states (own, drift), 1.2 to 1.8 CPU s at load 5.5 to 7.3.
  exploreZeroDelay: { 3: { ...zeroDelay, bounds: { ...zeroDelay.bounds, pick: 138 } } },
};

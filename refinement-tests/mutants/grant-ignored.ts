/** An acceptor ignores its own lease grant: it helps another ballot while a grant to the leader is in force (rule L1 broken). */
import { ballotEquals, compareBallots, type AcceptorState, type Ballot } from "../../impl/core/testing/index.ts";
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

function canPromiseIgnoringGrant<I>(acceptor: AcceptorState<I>, ballot: Ballot, now: number): boolean {
  if (compareBallots(ballot, acceptor.maxBal) < 0) return false;
  if (now < acceptor.noPromiseUntil && !ballotEquals(ballot, acceptor.maxBal)) return false;
  return true;
}

export const grantIgnored: Mutant = {
  name: "grant-ignored",
  description: "an acceptor promises a new ballot while its lease grant to another is in force",
  expectedCatch: ["AtMostOneLeaseholder", "LeaseReadFresh", "Linearizability"],
  mode: "safety",
  step: withRules({ canPromise: canPromiseIgnoringGrant }),
  explore: { bounds: { writes: 0, reads: 0, partitions: 2, orders: "fifo", tuning: 5 }, depth: 14 },
};

/**
 * An acceptor ignores its own lease grant: it helps another ballot while a grant to the leader is in force (rule L1
 * broken).
 */
import type { AcceptorState, Ballot, ReplicaRules } from "../../impl/core/testing/index.ts";
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

function canPromiseIgnoringGrant<I>(
  rules: ReplicaRules,
  acceptor: AcceptorState<I>,
  ballot: Ballot,
  now: number,
): boolean {
  const order = rules.compareBallots(ballot, acceptor.maxBal);
  if (order < 0) return false;
  if (now < acceptor.noPromiseUntil && order !== 0) return false;
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

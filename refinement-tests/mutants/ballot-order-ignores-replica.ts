/** Ballot order ignoring the replica id: (2,1) and (2,3) compare equal, so two leaders share a ballot. */
import type { Ballot } from "../../impl/core/testing/index.ts";
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

export const ballotOrderIgnoresReplica: Mutant = {
  name: "ballot-order-ignores-replica",
  description: "ballots are compared by round only, ignoring the replica id",
  expectedCatch: ["DurableBeforeSend", "DurableMaxBal", "OneValuePerBallot", "refines Voting"],
  mode: "safety",
  step: withRules({ compareBallots: (a: Ballot, b: Ballot) => a.round - b.round }),
  explore: { bounds: { reads: 0, crashes: 1, restarts: 0, delays: 1, orders: "fifo", tuning: 5 }, depth: 18 },
};

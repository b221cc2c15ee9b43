/** Quorum off by one: floor(n/2) instead of floor(n/2) + 1, so two "quorums" need not intersect. */
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

const lostAccepts = { bounds: { reads: 0, losses: 4, orders: "fifo" as const }, depth: 10 };

export const quorumOffByOne: Mutant = {
  name: "quorum-off-by-one",
  description: "a quorum is floor(n/2) members, one short of a majority",
  expectedCatch: [
    "AtMostOneLeaseholder",
    "LearnedIsChosen",
    "ExecutedPrefixAgreement",
    "refines Consensus",
    "RepliesMatchSpec",
  ],
  mode: "safety",
  step: withRules({ quorumSize: (members) => Math.floor(members / 2) }),
  explore: { bounds: { reads: 0 }, depth: 6 },
  // With 7 replicas the mutant's "quorum" is 3 of 7, and a write is truly chosen once 4 voted: the
  // leader's Accepts to four of its six followers must be lost before it counts two votes besides
  // its own and answers. Every delivery order to depth 6 (6,946 states) does not get there.
  exploreWith: { 7: lostAccepts },
  // At zero delay the same: nothing is held or cut, so those bounds are zero delay as they stand,
  // and the environment acting between any two deliveries (the zero-delay hunt's stand-in for
  // holds) only widens the search (9.8 CPU s at load 17, against 4.1 here).
  exploreZeroDelay: { 7: lostAccepts },
};

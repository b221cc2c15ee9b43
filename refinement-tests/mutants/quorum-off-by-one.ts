/** Quorum off by one: floor(n/2) instead of floor(n/2) + 1, so two "quorums" need not intersect. */
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

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
};

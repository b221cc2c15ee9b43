/**
 * The alpha window ignored: a configuration governs from the slot after the one that chose it
 * (rule R1 broken). Slots a leader proposed under the old configuration are then counted in the
 * new one, and replicas that executed different prefixes disagree on who decides a slot.
 */
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

export const alphaIgnored: Mutant = {
  name: "alpha-ignored",
  description: "a membership change governs from the next slot instead of alpha slots later",
  expectedCatch: [
    "OneConfigurationPerSlot",
    "VoterOfTheSlot",
    "ProposalInKnownConfiguration",
    "LearnedIsChosen",
    "refines Voting",
    "core assertion",
  ],
  mode: "safety",
  step: withRules({ governsFrom: (chosenAt) => chosenAt + 1 }),
  explore: { bounds: { writes: 0, reads: 0, reconfig: "add", orders: "fifo" }, depth: 8 },
};

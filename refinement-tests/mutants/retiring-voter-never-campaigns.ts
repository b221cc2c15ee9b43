/**
 * Rule L5 without its exception: a voter whose removal is chosen never campaigns, even when no
 * voter of the latest configuration is a voter of the configuration that governs its first
 * unexecuted slot. That happens when a removal and a promotion are chosen in one alpha window
 * (voters {2,3} become {2}, then {2,4}, then {4}): the slots before the promotion takes effect
 * are governed by configurations whose only voters are retiring, and the voters that stay may
 * not campaign for them. Once the leader of those slots is gone nobody may, no slot is chosen
 * again, and no replica holds a lease however long the network stays healed.
 */
import { defaultRules, type ReplicaRules, type ReplicaState } from "../../impl/core/testing/index.ts";
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

function neverWhenRetiring<S, I, O>(rules: ReplicaRules, state: ReplicaState<S, I, O>, now: number): boolean {
  const configs = state.learner.configs;
  if (configs[configs.length - 1]!.retired.includes(state.ctx.config.self)) return false;
  return defaultRules.mayCampaign(rules, state, now);
}

const shrunk = {
  bounds: {
    writes: 0,
    reads: 0,
    prelude: "reelected" as const,
    pick: 64 + 37,
    tuning: 4,
    settle: true,
    orders: "fifo" as const,
    liveness: true,
  },
  depth: 1,
};

export const retiringVoterNeverCampaigns: Mutant = {
  name: "retiring-voter-never-campaigns",
  description:
    "a voter whose removal is chosen never campaigns, even when no voter that stays may campaign for the slots before its removal",
  expectedCatch: ["Liveness"],
  mode: "liveness",
  step: withRules({ mayCampaign: neverWhenRetiring }),
  // The explorer's bounded liveness, from the reelected prelude's pick 37 (the two changes asked
  // in one window): the fault-free continuation reaches no leaseholder.
  explore: {
    bounds: {
      writes: 0,
      reads: 0,
      prelude: "reelected",
      pick: 37,
      tuning: 4,
      settle: true,
      orders: "fifo",
      liveness: true,
    },
    depth: 1,
  },
  // With 5 or 7 replicas, the same history after the cluster is shrunk to 3 voters (pick bit 6:
  // the leader removes the others one by one, and they retire).
  exploreWith: { 5: shrunk, 7: shrunk },
};

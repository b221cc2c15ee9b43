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

/**
 * The explorer's bounded liveness, from the reelected prelude with pick 133: the history of pick
 * 37 (a voter removed, a learner joined, another leader elected: two voters and a learner) without
 * bit 5, so the prelude stops before the operator's two changes and the explorer asks them itself
 * (`remove-replace`: remove a voter, then replace one by the learner; in the middle of a wave, so
 * that both fall in one window). Bit 7 keeps what the phases read of the higher bits as in 37:
 * pick >> 2 at 0 mod 3 (the voter the history's change removes), pick >> 4 at 0 mod 2 (the
 * follower that misses the writes). From the state after the two requests the fault-free
 * continuation reaches no leaseholder.
 */
const asked = (pick: number) => ({
  bounds: {
    writes: 0,
    reads: 0,
    prelude: "reelected" as const,
    pick,
    tuning: 4,
    reconfig: "remove-replace" as const,
    environment: "anytime" as const,
    orders: "fifo" as const,
    liveness: true,
  },
  depth: 2,
});

export const retiringVoterNeverCampaigns: Mutant = {
  name: "retiring-voter-never-campaigns",
  description:
    "a voter whose removal is chosen never campaigns, even when no voter that stays may campaign for the slots before its removal",
  expectedCatch: ["Liveness"],
  mode: "liveness",
  step: withRules({ mayCampaign: neverWhenRetiring }),
  explore: asked(133),
  // With 5 or 7 replicas, the same history after the cluster is shrunk to 3 voters (pick bit 6:
  // the leader removes the others one by one, and they retire).
  exploreWith: { 5: asked(64 + 133), 7: asked(64 + 133) },
};

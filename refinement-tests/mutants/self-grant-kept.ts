/**
 * Rule L6 without its candidate half: a candidate keeps its self-grant when it meets a higher
 * ballot, so it refuses every other ballot for as long as it campaigns (it renews the grant at
 * every resend) and steps down only on a Nack naming a higher promise. Safe, but candidates whose
 * timers fire together refuse one another: the highest needs the others' Nacks, a resend after a
 * heartbeat interval and their Promises, where the real replica is elected one round trip after
 * the Prepares cross. Caught by the liveness phase's election race (every election timer fires in
 * one tick, and no leaseholder follows before time moves: LivenessElectionRace), in the random
 * suite and in the explorer's bounded liveness; and, under load, where timers fire late and
 * together round after round, by the liveness phase's stalls (`livenessStallMsMax`, regression
 * world-candidates-refuse-one-another-under-load).
 */
import { defaultRules } from "../../impl/core/testing/index.ts";
import type { ExplorerBounds, Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

/**
 * The explorer's bounded liveness (`--liveness`): the fault-free continuation from every state,
 * the election race at its end included. With 3 replicas the warm-started cluster already loses
 * the race; with 5 or 7, the writes prelude with pick bit 6 first removes voters until 3 are left,
 * since the race runs with at most 3 voters.
 */
const race = (pick: number): ExplorerBounds => ({
  bounds: { writes: 0, reads: 0, prelude: "writes", pick, orders: "fifo", liveness: true },
  depth: 4,
});

export const selfGrantKept: Mutant = {
  name: "self-grant-kept",
  description: "a candidate keeps its self-grant on meeting a higher ballot, so candidates refuse one another",
  expectedCatch: ["LivenessElectionRace", "LivenessLeaseholder", "Liveness"],
  mode: "liveness",
  // The leader half of the rule (a leader whose lease lapsed yields) is kept: lapsed-leader-holds breaks that one.
  step: withRules({
    yieldsToHigherBallot: (rules, role, ballot, now) =>
      role._tag === "leader" && defaultRules.yieldsToHigherBallot(rules, role, ballot, now),
  }),
  explore: race(0),
  exploreWith: { 5: race(64), 7: race(64) },
};

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
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

export const selfGrantKept: Mutant = {
  name: "self-grant-kept",
  description: "a candidate keeps its self-grant on meeting a higher ballot, so candidates refuse one another",
  expectedCatch: ["LivenessElectionRace", "LivenessLeaseholder", "Liveness"],
  mode: "liveness",
  step: withRules({ candidateYields: () => false }),
};

/**
 * Rule L6 without its candidate half: a candidate keeps its self-grant when it meets a higher
 * ballot, so it refuses every other ballot for as long as it campaigns (it renews the grant at
 * every resend) and steps down only on a Nack naming a higher promise. Safe, but when timers fire
 * late and together (a loaded machine), candidates refuse one another round after round: each
 * Nack and resend takes a round trip the next timer does not wait for, and no replica holds a
 * lease while ballots climb. Caught by the liveness phase under load (`livenessStallMsMax`).
 */
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

export const selfGrantKept: Mutant = {
  name: "self-grant-kept",
  description: "a candidate keeps its self-grant on meeting a higher ballot, so candidates refuse one another",
  expectedCatch: ["LivenessLeaseholder", "Liveness"],
  mode: "liveness",
  step: withRules({ candidateYields: () => false }),
};

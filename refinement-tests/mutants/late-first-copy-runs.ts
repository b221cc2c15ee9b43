/**
 * Feature level 3 without its guard on late copies: a replica that meets a request numbered 1 of a
 * session it no longer holds (evicted) runs it as level 2 would, under a session of its own,
 * instead of refusing it as session-expired. A late copy of a client's first write, chosen after
 * its session was evicted, then runs a second time (ExactlyOnce), or is answered as run where the
 * spec refused it (RepliesMatchSpec). The regression `explore-late-first-copy-refused` is the
 * state the guard exists for; delivered on, it catches this mutant by ExactlyOnce
 * (refinement-tests/explorer/sessions.test.ts).
 */
import { defaultRules } from "../../impl/core/testing/index.ts";
import { suiteProfile } from "../suite.ts";
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

export const lateFirstCopyRuns: Mutant = {
  name: "late-first-copy-runs",
  description:
    "at feature level 3 a replica runs a request numbered 1 whose session was evicted, as level 2 would, instead of refusing it",
  expectedCatch: ["ExactlyOnce", "RepliesMatchSpec", "Linearizability", "DigestAgreement"],
  mode: "safety",
  // The random suite at the `opened-sessions` tuning's level 3 and table of three sessions.
  randomTuning: suiteProfile("opened-sessions")!.tuningOverrides!,
  step: withRules({
    executeCommand: (ctx, service, command) => {
      const real = defaultRules.executeCommand(ctx, service, command);
      const features = service.features;
      if (real.output._tag !== "expired" || command.seq !== 1 || features === undefined) return real;
      const again = defaultRules.executeCommand(
        ctx,
        { ...service, features: { ...features, level: 2 } },
        { ...command, clientId: `${command.clientId ?? ""} again` },
      );
      return { ...again, state: { ...again.state, features: { ...again.state.features!, level: features.level } } };
    },
  }),
  // The bounds of the regression `explore-late-first-copy-refused`: two writers at level 3 with a
  // table of one session, one duplicate and one held message, deliveries in the order sent.
  explore: {
    bounds: {
      writes: 2,
      reads: 0,
      orders: "fifo",
      duplicates: 1,
      delays: 1,
      overrides: { featureLevel: 3, sessionsMax: 1 },
    },
    depth: 14,
  },
};

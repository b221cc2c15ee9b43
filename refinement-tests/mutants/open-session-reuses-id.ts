/**
 * Feature level 3: a replica that opens a session with an id it handed out before. It forgets its
 * count of opened sessions (as one restored from a snapshot without it would), so the second
 * client the service opens a session for is handed `session 1`, which the first still holds; the
 * spec opened `session 2`. RepliesMatchSpec catches the answer; were it not, the two clients'
 * numbers would collide in one session (ExactlyOnce).
 */
import { openSession } from "../../spec/service.ts";
import { suiteProfile } from "../suite.ts";
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

export const openSessionReusesId: Mutant = {
  name: "open-session-reuses-id",
  description:
    "at feature level 3 a replica opens sessions counting from zero again, handing out an id it opened before",
  expectedCatch: ["RepliesMatchSpec", "ExactlyOnce", "Linearizability", "DigestAgreement"],
  mode: "safety",
  // The random suite at the `opened-sessions` tuning's level 3 and table of three sessions.
  randomTuning: suiteProfile("opened-sessions")!.tuningOverrides!,
  step: withRules({
    openSession: (service) => {
      const again = openSession({ ...service, features: { ...service.features!, opened: 0 } });
      const opened = (service.features?.opened ?? 0) + 1;
      return { ...again, state: { ...again.state, features: { ...again.state.features!, opened } } };
    },
  }),
  // Two writing clients at level 3 with a table of one session, deliveries in the order sent: the
  // second session opened is `session 1` again (refinement-tests/explorer/sessions.test.ts).
  explore: {
    bounds: {
      writes: 2,
      reads: 0,
      writesPerClient: 2,
      orders: "fifo",
      overrides: { featureLevel: 3, sessionsMax: 1 },
    },
    depth: 14,
  },
};

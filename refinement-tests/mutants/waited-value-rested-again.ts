/**
 * Rule V4's read-back, before values the waiting slot reads were kept in memory: every value an
 * `EntriesRead` brought back goes back to rest once the step is done where still named, even a value
 * the slot that execution still waits at reads. A slot whose batch reads two keys at rest, one of
 * them asked for already (read back for a read by lease), asks only for the other; the first comes
 * back for the read and goes back to rest, so once the other comes the slot asks for the first
 * again, and each answer puts the one before back at rest: the replica asks forever and never
 * executes the slot (ReadBackProgress, the world's bound on asks per slot; the `twoAtRest` prelude
 * builds the history).
 */
import { sameEntry, step as realStep, type Step } from "../../impl/core/testing/index.ts";
import { pmGet } from "../../spec/persistent-map.ts";
import type { Mutant } from "./mutant.ts";
import { valuesAtRestTuning } from "./values-at-rest.ts";

const step: Step = (state, event) => {
  const r = realStep(state, event);
  const atRest = r.state.ctx.storeAtRest;
  if (event._tag !== "EntriesRead" || atRest === null) return r;
  const learner = r.state.learner;
  let app = learner.service.app;
  for (const ref of event.entries) {
    const named = pmGet(learner.origins, ref.key);
    if (named === undefined || !sameEntry(named, ref) || atRest.resting(app, ref.key) !== null) continue;
    app = atRest.rest(app, named);
  }
  if (app === learner.service.app) return r;
  const service = { ...learner.service, app };
  return { ...r, state: { ...r.state, learner: { ...learner, service } } };
};

export const waitedValueRestedAgain: Mutant = {
  name: "waited-value-rested-again",
  description:
    "a store value read back goes back to rest once the step is done, even one the slot that execution waits at reads",
  expectedCatch: ["ReadBackProgress"],
  mode: "safety",
  randomTuning: valuesAtRestTuning,
  step,
};

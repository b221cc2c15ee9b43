/**
 * Rule V1's bookkeeping broken where V4 meets it: once a value read back has served what needed it,
 * it goes back to rest under the name it was asked by, whether or not that name still holds (the
 * key rewritten meanwhile, or its name forgotten by a state transfer), instead of only where
 * `origins` still names it (`restAgain`). A read by lease that waits while the key is rewritten then
 * puts the old name back over the new value: the store's entry is no longer what the vote the
 * replica names would give (EntriesVouched: an entry at rest that no vote names), and a later read
 * answers the old value (RepliesMatchSpec, DigestAgreement).
 */
import { step as realStep, type Step } from "../../impl/core/testing/index.ts";
import type { KvState } from "../../spec/kv.ts";
import { pmGet, pmSet } from "../../spec/persistent-map.ts";
import type { Mutant } from "./mutant.ts";
import { valuesAtRestTuning } from "./values-at-rest.ts";

const step: Step = (state, event) => {
  const r = realStep(state, event);
  if (event._tag !== "EntriesRead" || r.state.ctx.storeAtRest === null) return r;
  const app = r.state.learner.service.app as unknown as KvState;
  let entries = app.entries;
  for (const ref of event.entries)
    if (typeof pmGet(entries, ref.key) === "string") entries = pmSet(entries, ref.key, ref);
  if (entries === app.entries) return r;
  const service = { ...r.state.learner.service, app: { ...app, entries } };
  return { ...r, state: { ...r.state, learner: { ...r.state.learner, service } } } as unknown as typeof r;
};

export const restedUnderAskedName: Mutant = {
  name: "rested-under-asked-name",
  description:
    "a store value read back goes back to rest under the name it was asked by, even where the key was written since",
  expectedCatch: ["EntriesVouched", "RepliesMatchSpec", "DigestAgreement", "Linearizability"],
  mode: "safety",
  randomTuning: valuesAtRestTuning,
  step,
};

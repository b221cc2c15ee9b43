/**
 * Rule V4 without V2's comparison in the core: a value the driver reads back is put in the store
 * without `checkEntryValue`, so a storage thread that read the wrong record (the world's
 * `readsWrong`: one answer in eight carries a changed code unit) has the replica execute on bytes
 * it cannot vouch for: a get answers them (RepliesMatchSpec), an append or swap builds on them
 * (DigestAgreement), a snapshot serializes them (SnapshotMatchesSpec).
 */
import { sameEntry, step as realStep, type StoredEntry, type Step } from "../../impl/core/testing/index.ts";
import type { KvState } from "../../spec/kv.ts";
import { pmGet, pmSet } from "../../spec/persistent-map.ts";
import type { Mutant } from "./mutant.ts";
import { valuesAtRestTuning } from "./values-at-rest.ts";

const step: Step = (state, event) => {
  const atRest = state.ctx.storeAtRest;
  if (event._tag !== "EntriesRead" || atRest === null) return realStep(state, event);
  // The store's restore, its comparison left out: the value goes in wherever the entry rests as named.
  const unchecked = {
    ...atRest,
    restore: ((app: KvState, ref: StoredEntry, value: string): KvState => {
      const held = pmGet(app.entries, ref.key);
      if (held === undefined || typeof held === "string" || !sameEntry(held as StoredEntry, ref)) return app;
      return { ...app, entries: pmSet(app.entries, ref.key, value) };
    }) as unknown as typeof atRest.restore,
  };
  const r = realStep({ ...state, ctx: { ...state.ctx, storeAtRest: unchecked } }, event);
  return { ...r, state: { ...r.state, ctx: state.ctx } };
};

export const entryValueUnchecked: Mutant = {
  name: "entry-value-unchecked",
  description: "a store value read back is put in memory without the core's check that it is the value named",
  expectedCatch: ["RepliesMatchSpec", "DigestAgreement", "SnapshotMatchesSpec", "EntriesVouched", "Linearizability"],
  mode: "safety",
  randomTuning: { ...valuesAtRestTuning, readsWrong: true },
  step,
};

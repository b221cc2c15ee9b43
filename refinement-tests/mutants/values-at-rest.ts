/**
 * Where the mutants of rule V4 (proofs/store-at-rest.md) are hunted by the random suite: every
 * draw holds the store's long values at rest, as tuning 10 does, and its storage thread answers
 * their reads late (`ReplicaTuning.readsLateMsMax`), so that a lease lapse, a leader change or a
 * rewrite lands between a read and its answer.
 */
import { longTextChars } from "../../spec/hash.ts";
import type { ReplicaTuning } from "../world/tuning.ts";

export const valuesAtRestTuning: Partial<ReplicaTuning> = {
  longValues: true,
  storeAtRestCharsMin: longTextChars,
  readsLateMsMax: 1500,
};

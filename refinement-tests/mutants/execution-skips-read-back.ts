/**
 * Rule V4 skipped: execution never stops before a slot whose commands read a value at rest
 * (`readsAtRest` names nothing, not even for a snapshot), so a get, swap or append executes on the
 * entry's reference. The store refuses to read one (spec/kv.ts) and the replica's step throws
 * (ReplicaThrew): a replica that read it as a value would answer or append a reference.
 */
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";
import { valuesAtRestTuning } from "./values-at-rest.ts";

export const executionSkipsReadBack: Mutant = {
  name: "execution-skips-read-back",
  description: "execution does not stop for a value at rest: a get, swap or append executes on its reference",
  expectedCatch: ["ReplicaThrew"],
  mode: "safety",
  randomTuning: valuesAtRestTuning,
  step: withRules({ readsAtRest: () => null }),
  // A put then an append of the same key with every value at rest (threshold 1): the append reads
  // the entry's reference.
  explore: {
    bounds: { writes: 2, reads: 0, orders: "fifo", writeKinds: "puts-appends", overrides: { storeAtRestCharsMin: 1 } },
    depth: 14,
  },
};

/**
 * Rule V3 where compaction runs in pieces (the runtime's `compactSome`): every piece must be decided
 * with the pins of the step that made the compaction due or a later one. This storage thread
 * decides a compaction with the store's pins (`pinnedVotes`) of when the compaction before it
 * became due (kept from run to run), so a vote written since, the store's name for a value at rest, below the new
 * snapshot's truncation point, is deleted once the last piece is decided: the store names a
 * record the disk no longer holds (EntriesVouched), and reading it back would find nothing. The
 * core is the real one: the bug is in the world's disk, which compacts so where this step runs
 * (`compactionFaults`).
 */
import { step as realStep, type Step } from "../../impl/core/testing/index.ts";
import { compactionFaults } from "../world/replica-slot.ts";
import type { Mutant } from "./mutant.ts";
import { valuesAtRestTuning } from "./values-at-rest.ts";

const step: Step = (state, event) => realStep(state, event);
compactionFaults.set(step, { pinsOfRunBefore: true });

export const compactionPinsOfRunBefore: Mutant = {
  name: "compaction-pins-of-run-before",
  description: "a compaction decided in pieces with the store's pins of when the compaction before it became due",
  expectedCatch: ["EntriesVouched"],
  mode: "safety",
  randomTuning: { ...valuesAtRestTuning, compactionPieceRecords: 4 },
  step,
  // Every value at rest (threshold 1), a snapshot every second slot, the shortest log tail and
  // compaction in pieces of 4 records: one client writes k0, k1, k0, k1; the snapshot after the
  // second write starts a run with the pins of then, the third moves k0's name to its own vote,
  // and the snapshot after the fourth decides its run with the first run's pins, which miss it.
  explore: {
    bounds: {
      writes: 1,
      writesPerClient: 4,
      writeKeys: "alternate",
      reads: 0,
      orders: "fifo",
      overrides: { storeAtRestCharsMin: 1, snapshotIntervalSlots: 2, logTailBytes: 1, compactionPieceRecords: 4 },
    },
    depth: 26,
    keepTrace: true,
  },
};

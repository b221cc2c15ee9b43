/**
 * `Recover` before it took a vote repeated in its ballot: a vote record at a slot whose previous
 * record there (no snapshot between them covering it) has the same or a higher ballot is refused,
 * even the same vote again. A copy of an Accept that arrives after the follower's own snapshot of
 * its slot forgot the slot's vote is voted again, and where that vote wrote a value at rest the
 * store names the slot, so compaction keeps both records (rule V3) while a later snapshot's
 * compaction deletes the snapshot between them: the replica throws on every restart and never
 * comes back (a core assertion; the `revote` prelude builds the history).
 */
import {
  AssertionFailure,
  compareBallots,
  step as realStep,
  type ReplicaEvent,
  type Step,
} from "../../impl/core/testing/index.ts";
import type { Mutant } from "./mutant.ts";
import { valuesAtRestTuning } from "./values-at-rest.ts";

/** The old check: the ballot of the last vote record at each slot, forgotten through a snapshot's slot. */
function refuseRepeated<I>(event: ReplicaEvent<I>): void {
  if (event._tag !== "Recover") return;
  const votes = new Map<number, { round: number; replica: number }>();
  for (const record of event.records) {
    if (record._tag === "snapshot") for (const slot of [...votes.keys()]) if (slot <= record.slot) votes.delete(slot);
    if (record._tag !== "vote") continue;
    const previous = votes.get(record.slot);
    if (previous !== undefined && compareBallots(previous, record.ballot) >= 0)
      throw new AssertionFailure(
        `recover: vote record at slot ${record.slot} in (${record.ballot.round},${record.ballot.replica}) follows one in (${previous.round},${previous.replica})`,
      );
    votes.set(record.slot, record.ballot);
  }
}

const step: Step = (state, event) => {
  refuseRepeated(event);
  return realStep(state, event);
};

export const recoverRefusesRevote: Mutant = {
  name: "recover-refuses-revote",
  description: "Recover refuses a vote record repeated in its ballot, the same vote again included",
  expectedCatch: ["core assertion"],
  mode: "safety",
  randomTuning: { ...valuesAtRestTuning, compactionPieceRecords: 4 },
  step,
  // Every value at rest (threshold 1), a snapshot every slot and the shortest log tail: one client
  // writes k0, then k1 twice; the explorer copies the Accept of k0's slot to a follower and holds
  // the copy back until that follower's snapshot of the slot, then two more snapshots' compactions
  // keep both vote records (rule V3) and delete the snapshot between them; a crash and restart.
  explore: {
    bounds: {
      writes: 1,
      writesPerClient: 3,
      writeKeys: "first-apart",
      reads: 0,
      duplicates: 1,
      delays: 1,
      faultMessages: "accepts",
      crashes: 1,
      restartClocks: "continue",
      orders: "fifo",
      overrides: { storeAtRestCharsMin: 1, snapshotIntervalSlots: 1, logTailBytes: 1 },
    },
    depth: 22,
    keepTrace: true,
  },
};

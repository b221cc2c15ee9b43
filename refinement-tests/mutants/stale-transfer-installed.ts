/**
 * A stale state transfer is installed: a snapshot at or below the replica's executed prefix (a
 * late chunk, or a peer that lags) replaces its state (rule S1 broken), taking it back in time.
 */
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

export const staleTransferInstalled: Mutant = {
  name: "stale-transfer-installed",
  description: "a state transfer of a snapshot older than the executed prefix is installed",
  expectedCatch: [
    "SnapshotsAdvance",
    "ExecutedPrefixAgreement",
    "core assertion",
    "SnapshotMatchesSpec",
    "DigestAgreement",
  ],
  mode: "safety",
  step: withRules({ transferUseful: () => true }),
  explore: {
    bounds: { writes: 2, reads: 0, chunkFaults: 1, orders: "fifo", overrides: { snapshotIntervalSlots: 1 } },
    depth: 16,
  },
};

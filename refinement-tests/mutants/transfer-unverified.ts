/**
 * A state transfer is installed without checking its digests (rule S2 broken): a chunk corrupted
 * on the way becomes the replica's state.
 */
import { decodeReadSnapshot } from "../../impl/core/testing/index.ts";
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

export const transferUnverified: Mutant = {
  name: "transfer-unverified",
  description: "a reassembled snapshot is installed without checking its digests",
  // What the corrupted state shows depends on the byte corrupted: the service state (digests,
  // replies) or the configurations the snapshot carries (OneConfigurationPerSlot).
  expectedCatch: [
    "SnapshotMatchesSpec",
    "DigestAgreement",
    "ExactlyOnce",
    "RepliesMatchSpec",
    "OneConfigurationPerSlot",
    "Linearizability",
  ],
  mode: "safety",
  step: withRules({ verifySnapshot: (ctx, read) => decodeReadSnapshot(ctx, read) }),
  // From the writes prelude with a follower that missed them (pick bit 2): it lags behind the
  // others' snapshots, so the leader sends it one, chunk by chunk, and the explorer may corrupt a
  // chunk in flight. The same at any replica count.
  explore: {
    bounds: {
      writes: 0,
      reads: 0,
      chunkFaults: 1,
      orders: "fifo",
      prelude: "writes",
      pick: 4,
      overrides: { snapshotIntervalSlots: 1 },
    },
    depth: 24,
  },
};

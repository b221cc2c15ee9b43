/**
 * A state transfer is installed without checking its digests (rule S2 broken): a chunk corrupted
 * on the way becomes the replica's state.
 */
import { decodeSnapshot } from "../../impl/core/testing/index.ts";
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

export const transferUnverified: Mutant = {
  name: "transfer-unverified",
  description: "a reassembled snapshot is installed without checking its digests",
  expectedCatch: ["SnapshotMatchesSpec", "DigestAgreement", "ExactlyOnce", "RepliesMatchSpec", "Linearizability"],
  mode: "safety",
  step: withRules({ verifySnapshot: (ctx, data) => decodeSnapshot(ctx, data) }),
  explore: {
    bounds: {
      writes: 2,
      reads: 0,
      partitions: 1,
      chunkFaults: 1,
      orders: "fifo",
      overrides: { snapshotIntervalSlots: 1 },
    },
    // Breadth first needs 96,000 states (to depth 19) for the shortest trace; walks are quicker.
    depth: 30,
    mode: "random",
  },
};

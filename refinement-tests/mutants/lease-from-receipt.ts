/** The leader counts its lease from when a grant ARRIVED instead of when its request was sent. */
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

export const leaseFromReceipt: Mutant = {
  name: "lease-from-receipt",
  description: "a lease grant is counted from its receipt, not from the send time of the request it answers",
  expectedCatch: ["AtMostOneLeaseholder", "LeaseBounded", "LeaseReadFresh", "Linearizability"],
  mode: "safety",
  step: withRules({ grantCountedFrom: (_sentAt, receivedAt) => receivedAt }),
  explore: { bounds: { writes: 0, reads: 0, partitions: 2, delays: 1, orders: "fifo", tuning: 5 }, depth: 14 },
};

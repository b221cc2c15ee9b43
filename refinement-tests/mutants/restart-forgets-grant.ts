/** A restarted acceptor does not wait out a lease: it may promise a new ballot while a grant it forgot is in force. */
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

export const restartForgetsGrant: Mutant = {
  name: "restart-forgets-grant",
  description: "a restarted acceptor helps any ballot at once (no restart wait, rule L4 broken)",
  expectedCatch: ["AtMostOneLeaseholder", "LeaseReadFresh", "Linearizability"],
  mode: "safety",
  step: withRules({ restartWaitUntil: (now) => now }),
  explore: {
    bounds: { writes: 0, reads: 0, crashes: 1, restarts: 1, partitions: 1, orders: "fifo", tuning: 5 },
    depth: 16,
  },
};

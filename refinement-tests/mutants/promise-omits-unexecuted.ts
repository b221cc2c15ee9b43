/**
 * A Promise reports one slot more than its acceptor executed as chosen, and omits its vote there
 * (rule T3 broken): that slot may not be chosen, the vote it hides may be the one a new leader
 * must re-propose, and a candidate told it is chosen waits for a value no one may have.
 */
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

export const promiseOmitsUnexecuted: Mutant = {
  name: "promise-omits-unexecuted",
  description: "a Promise omits the vote at the slot after its acceptor's executed prefix and reports it chosen",
  expectedCatch: ["PromiseReportsVotes"],
  mode: "safety",
  step: withRules({
    // Only once it has executed something to report (0: the option off, or nothing executed yet).
    promiseOmitsThrough: (truncatedUpTo, executedUpTo) =>
      Math.max(truncatedUpTo, executedUpTo === 0 ? 0 : executedUpTo + 1),
  }),
  explore: {
    bounds: { writes: 2, reads: 0, crashes: 1, orders: "fifo", overrides: { promiseOmitsChosen: true } },
    // Random walks (breadth first needs 1,469 states, and its reduction check in CI 5 s).
    depth: 16,
    mode: "random",
  },
};

/**
 * Votes forgotten without a durable snapshot behind them (rule T1 broken): an acceptor forgets its
 * votes up to its executed prefix, not up to its latest snapshot, so a crash loses votes no
 * snapshot stands for, and its Promises omit votes of slots it may not even know are chosen.
 */
import { step as realStep, truncateVotes, type Step } from "../../impl/core/testing/index.ts";
import type { Mutant } from "./mutant.ts";

const forgetEarly: Step = (state, event) => {
  const r = realStep(state, event);
  const s = r.state;
  if (!s.started || s.learner.snapshot === null || s.acceptor.truncatedUpTo >= s.learner.executedUpTo) return r;
  return { state: { ...s, acceptor: truncateVotes(s.acceptor, s.learner.executedUpTo) }, effects: r.effects };
};

export const truncateWithoutSnapshot: Mutant = {
  name: "truncate-without-snapshot",
  description: "an acceptor forgets its votes up to its executed prefix instead of up to its durable snapshot",
  expectedCatch: ["TruncationSafe", "PromiseReportsVotes", "refines Voting", "VotesSafe"],
  mode: "safety",
  step: forgetEarly,
  explore: { bounds: { writes: 3, reads: 0, orders: "fifo", overrides: { snapshotIntervalSlots: 2 } }, depth: 16 },
};

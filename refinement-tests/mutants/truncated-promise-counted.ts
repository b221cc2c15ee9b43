/**
 * Phase 1 treats a truncated slot as empty: a Promise counts for every slot from its fromSlot on,
 * also the slots at or below the acceptor's truncation point, whose votes it no longer reports
 * (rule T2 broken). A new leader behind a snapshot then proposes a no-op over a chosen value.
 */
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

const lagging = {
  bounds: {
    reads: 0,
    crashes: 1,
    restarts: 0,
    losses: 1,
    orders: "fifo" as const,
    prelude: "writes" as const,
    pick: 4,
    settle: true,
    environment: "anytime" as const,
    overrides: { snapshotIntervalSlots: 1 },
  },
  depth: 20,
};

export const truncatedPromiseCounted: Mutant = {
  name: "truncated-promise-counted",
  description: "a Promise counts for the slots its acceptor truncated, as if no vote had been cast there",
  expectedCatch: [
    "refines Voting",
    "VotesSafe",
    "refines Consensus",
    "LearnedIsChosen",
    "core assertion",
    "ExecutedPrefixAgreement",
    "DigestAgreement",
  ],
  mode: "safety",
  step: withRules({ promiseCoversFrom: (fromSlot) => fromSlot }),
  explore: {
    bounds: {
      writes: 2,
      reads: 0,
      partitions: 1,
      crashes: 1,
      restarts: 0,
      orders: "fifo",
      tuning: 5,
      overrides: { snapshotIntervalSlots: 1 },
    },
    // Breadth first needs 44,000 states (to depth 15) for the shortest trace; walks are quicker.
    depth: 30,
    mode: "random",
  },
  // With 5 and 7 replicas at zero delay the walks above, whose catches there went through a
  // partition that held a message, do not reach it. The writes prelude with pick 4 leaves a
  // follower behind the others' snapshots (cut off during the writes, then healed; at zero delay
  // what its partition held is lost, not delivered after the heal); breadth first finds the crash
  // of the leader in the middle of a wave and the lost message that let the lagging follower lead.
  exploreZeroDelay: { 5: lagging, 7: lagging },
  // With 7 at the other tunings the walks above no longer catch it within 10 CPU s since rule L6
  // (15,235 states); the same route with the environment acting between waves does, in 4,002.
  exploreWith: { 7: { ...lagging, bounds: { ...lagging.bounds, environment: "between-waves" as const } } },
};

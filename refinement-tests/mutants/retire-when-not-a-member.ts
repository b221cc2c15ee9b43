/**
 * Retiring by absence: a replica retires as soon as the configuration in force does not list it
 * and nothing is pending, unless it joined and has executed nothing yet. That was how a runtime
 * once guessed it had been removed; but a replica that joined and caught up on slots before its
 * own addition (a catch-up reply or a snapshot older than the addition) is absent too, and
 * retires although the cluster just added it.
 */
import type { ReplicaState } from "../../impl/core/index.ts";
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

function retireByAbsence<S, I, O>(state: ReplicaState<S, I, O>): string | null {
  const self = state.ctx.config.self;
  const configs = state.learner.configs;
  if (configs.length > 1) return null;
  const c = configs[0]!;
  if (c.voters.includes(self) || c.learners.includes(self)) return null;
  if (state.ctx.config.joining && state.learner.executedUpTo === 0) return null;
  return `replica ${self} is not in the configuration in force (voters ${c.voters.join(",")})`;
}

export const retireWhenNotAMember: Mutant = {
  name: "retire-when-not-a-member",
  description:
    "a replica retires once the configuration in force does not list it, even one that joined and has not yet executed its own addition",
  expectedCatch: ["RetiresOnlyWhenRemoved"],
  mode: "liveness",
  step: withRules({ retirement: retireByAbsence }),
  // After two rounds of writes (snapshots taken, logs truncated), a spare is added and catches up
  // in short batches (tuning 7: catch-up batches far shorter than the log between snapshots), so
  // it executes slots before its own addition.
  explore: {
    bounds: { writes: 1, reads: 0, reconfig: "add", tuning: 7, prelude: "writes", settle: true, orders: "fifo" },
    depth: 26,
  },
};

/** A new leader serves lease reads before executing what its phase 1 revealed (rule L3 broken). */
import type { ReplicaRules, ReplicaState } from "../../impl/core/testing/index.ts";
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

function leaseOnly<S, I, O>(_rules: ReplicaRules, state: ReplicaState<S, I, O>, now: number): boolean {
  const role = state.role;
  return role._tag === "leader" && state.halted === null && now < role.leaseUntil;
}

export const leaseReadBeforeReproposals: Mutant = {
  name: "lease-read-before-reproposals",
  description: "a leader answers reads by lease before it has executed the slots its phase 1 revealed",
  expectedCatch: ["LeaseReadFresh", "Linearizability"],
  mode: "safety",
  step: withRules({ canServeLeaseRead: leaseOnly }),
  explore: { bounds: { reads: 1, crashes: 1, restarts: 0, delays: 1, orders: "fifo", tuning: 5 }, depth: 18 },
};

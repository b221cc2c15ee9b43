/** A new leader serves lease reads before executing what its phase 1 revealed (rule L3 broken). */
import type { ReplicaRules, ReplicaState } from "../../impl/core/testing/index.ts";
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

function leaseOnly<S, I, O>(_rules: ReplicaRules, state: ReplicaState<S, I, O>, now: number): boolean {
  const role = state.role;
  return role._tag === "leader" && state.halted === null && now < role.leaseUntil;
}

const midWave = {
  bounds: {
    reads: 1,
    crashes: 1,
    restarts: 0,
    orders: "fifo" as const,
    tuning: 5,
    environment: "anytime" as const,
  },
  depth: 22,
};

export const leaseReadBeforeReproposals: Mutant = {
  name: "lease-read-before-reproposals",
  description: "a leader answers reads by lease before it has executed the slots its phase 1 revealed",
  expectedCatch: ["LeaseReadFresh", "Linearizability"],
  mode: "safety",
  step: withRules({ canServeLeaseRead: leaseOnly }),
  // Since rule L6 (a candidate yields to a higher ballot) with 3 replicas too: the held Accept
  // with clients acting between waves (depth 18) no longer reaches the stale read (59,071 states,
  // its depth exhausted), nor does acting mid-wave to depth 12 with 5 and 7 (634 and 855 states,
  // exhausted). Mid-wave to depth 22 catches it with 3, 5 and 7 (3,998, 5,520 and 7,443 states).
  explore: midWave,
  // With 5 or 7 replicas the new leader's reproposal goes to 3 or 5 followers, and while clients
  // act only between waves a read reaches it after their answers unless each of those Accepts is
  // held (one hold with 3 replicas; 220,597 states with 5 and one hold found nothing). Acting in
  // the middle of a wave needs no hold: the leader crashes once its write is acknowledged, before
  // its followers learn it is chosen, and the read arrives while the new leader's Accepts are out.
};

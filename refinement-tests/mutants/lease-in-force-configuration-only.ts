/**
 * Rule L7 weakened: a leader counts its lease's grants in the configuration that governs its next
 * slot only, not in every pending one (scenario lease-reconfiguration.txt in impl/core: the leader
 * then reads by lease without a grant of the pending configuration).
 *
 * An equivalent mutant: no check catches it, and none should, because no execution of it differs
 * in what a client can observe. Rule L7 promises that no other ballot decides a slot of a pending
 * configuration while the lease holds. Take leader L of ballot B with executed prefix e, holding a
 * lease from grants of the configuration C1 governing e + 1 only. Another replica M can decide a
 * slot only as a leader, and it is elected only once phase 1 covers its first slot e_M + 1 in the
 * configuration governing it (replica.ts, `phase1Covers(..., role.fromSlot)`). If e_M < g - 1 (g:
 * the first slot the pending configuration governs), that configuration is C1, whose quorum of
 * grants to B refuses M (rule L1). e_M >= g - 1 > e would need e + 1 executed by someone, which
 * only B can decide (the same argument, and rule L3 for lower ballots). So while L's lease holds,
 * nobody but B decides anything above e, with or without L7; once L executes g - 1, the pending
 * configuration is the one in force and the lease is recounted in it. The proof of
 * AtMostOneLeaseholder (proofs/leases.md) uses only the grants of the configuration governing
 * e + 1; LeaseReadFresh's "not in a ballot b > B" bullet, which cites L7, holds by the election
 * rule. L7 is defence in depth: it becomes necessary if a leader may be elected, or propose,
 * before phase 1 covers its first slot.
 */
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

export const leaseInForceConfigurationOnly: Mutant = {
  name: "lease-in-force-configuration-only",
  description: "a lease needs a quorum of grants in the configuration in force only, not in every pending one",
  expectedCatch: ["AtMostOneLeaseholder", "LeaseReadFresh", "Linearizability"],
  mode: "safety",
  step: withRules({ leaseConfigurations: (configs) => configs.slice(0, 1) }),
  // Where the rule matters: a removal pending (the alpha prelude), a partition, a crash, a read
  // (mutants.test explores these bounds; deeper runs are in docs/refinement.md).
  explore: {
    bounds: {
      writes: 0,
      reads: 1,
      crashes: 1,
      restarts: 0,
      partitions: 1,
      delays: 1,
      orders: "fifo",
      prelude: "alpha",
      pick: 1,
    },
    depth: 8,
  },
};

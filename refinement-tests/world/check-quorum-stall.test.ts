/**
 * The world's checks on CheckQuorum counting the time the leader ran (impl/core/check-quorum.ts,
 * every tuning of the world but 9): the stalls it skips must never reach the lease. A broken
 * version that lets them (its leader trusts its lease for as long past `leaseUntil` as it stalled
 * since the lease's start, as if the lease too counted only the time it ran) must be caught by the
 * lease checks. The run below is from seed 5 on tuning 9 with the option turned back on (the
 * tuning's campaign before the option became the default), which passes every check.
 */
import { describe, expect, it } from "vitest";
import { defaultRules, stalledWithin, type ReplicaRules } from "../../impl/core/testing/index.ts";
import { runIndices } from "../campaign.ts";
import { withRules } from "../mutants/mutant.ts";

/** Rule L3 with the lease's end pushed back by the leader's stalls since the lease's start. */
const leaseCountsRunTime: Partial<ReplicaRules> = {
  canServeLeaseRead: (rules, state, now) => {
    const role = state.role;
    if (role._tag !== "leader") return defaultRules.canServeLeaseRead(rules, state, now);
    const stalled = stalledWithin(role.stalls, role.leaseFrom, now);
    return defaultRules.canServeLeaseRead(rules, state, now - stalled);
  },
};

/** Run 1329 of seed 5 on tuning 9 with the option on: the first of those to catch the broken version (of 2,000). */
const catching = {
  seed: 5,
  runs: 1,
  replicas: 3,
  profile: { tuning: 9, tuningOverrides: { checkQuorumCountsRunTime: true } },
  shrink: false,
} as const;

describe("CheckQuorum counting the time the leader ran, in the world", () => {
  it("catches a leader whose lease, too, skips its stalls (a lease read after the lease ran out)", () => {
    const broken = runIndices([1329], { ...catching, step: withRules(leaseCountsRunTime) });
    expect(broken.failure, "the broken lease must be caught").not.toBeNull();
    expect(broken.failure!.failure.check).toBe("LeaseReadFresh");
    // The same run, with the lease counting the clock as it does, passes every check.
    const correct = runIndices([1329], catching);
    expect(correct.failure).toBeNull();
  });
});

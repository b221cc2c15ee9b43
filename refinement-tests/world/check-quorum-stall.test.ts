/**
 * The world's checks on CheckQuorum counting the time the leader ran (impl/core/check-quorum.ts,
 * on in every tuning of the world but 9): the stalls it skips must never reach the lease. A
 * broken version that lets them (its leader trusts its lease for as long past `leaseUntil` as it
 * stalled since the lease's start, as if the lease too counted only the time it ran) must be
 * caught by the lease checks in a run of the campaign that suites.test.ts ran correct (seed 5 of
 * tuning 9, when that tuning was the one with the option on), kept as the scenario it was
 * (./check-quorum-stall.json) with the option turned on over tuning 9: a generator that draws
 * otherwise would move the run index.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { defaultRules, stalledWithin, type ReplicaRules } from "../../impl/core/testing/index.ts";
import { withRules } from "../mutants/mutant.ts";
import type { Scenario } from "./actions.ts";
import { runScenario } from "./run.ts";

/** Rule L3 with the lease's end pushed back by the leader's stalls since the lease's start. */
const leaseCountsRunTime: Partial<ReplicaRules> = {
  canServeLeaseRead: (rules, state, now) => {
    const role = state.role;
    if (role._tag !== "leader") return defaultRules.canServeLeaseRead(rules, state, now);
    const stalled = stalledWithin(role.stalls, role.leaseFrom, now);
    return defaultRules.canServeLeaseRead(rules, state, now - stalled);
  },
};

/**
 * Run 1329 of seed 5 on tuning 9, as drawn then: the first of that campaign's runs to catch the
 * broken version (of 2,000).
 */
const drawn = (
  JSON.parse(readFileSync(new URL("./check-quorum-stall.json", import.meta.url), "utf8")) as { scenario: Scenario }
).scenario;
const catching: Scenario = {
  ...drawn,
  profile: { ...drawn.profile, tuningOverrides: { checkQuorumCountsRunTime: true } },
};

describe("CheckQuorum counting the time the leader ran, in the world", () => {
  it("catches a leader whose lease, too, skips its stalls (a lease read after the lease ran out)", () => {
    expect(catching.profile.tuning).toBe(9);
    const broken = runScenario(catching, { replicas: 3, step: withRules(leaseCountsRunTime) });
    expect(broken.failure?.check, "the broken lease must be caught").toBe("LeaseReadFresh");
    // The same run, with the lease counting the clock as it does, passes every check.
    expect(runScenario(catching, { replicas: 3 }).failure).toBeNull();
  });
});

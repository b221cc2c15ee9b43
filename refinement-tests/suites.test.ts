/**
 * The CI-sized share of the refinement campaign (`npm run check` runs the long one): generated
 * runs of the safety suite on 3 and 5 replicas and of the liveness suite, every check after every
 * world step. Every run is seeded, so these tests are deterministic: they pass or fail the same
 * way on every machine. The required rare states ("sometimes" counters) must all be reached, or
 * the suite is not exploring what it claims to.
 */
import { describe, expect, it } from "vitest";
import { addTotals, emptyTotals, missingSometimes, runIndices, type CampaignOptions } from "./campaign.ts";
import { describeFailure } from "./world/report.ts";
import { keptAcrossOwnStall, lapsedLeaderGaveWay } from "../proofs/world-checker.ts";

function campaign(options: CampaignOptions, first: number): ReturnType<typeof runIndices> {
  const indices = Array.from({ length: options.runs }, (_, k) => first + k);
  const totals = runIndices(indices, options);
  if (totals.failure !== null) {
    const f = totals.failure;
    throw new Error(
      `${describeFailure(f.failure)}\n\nreplay: npm run check -- --replay ${f.seed}:${f.path} --replicas ${options.replicas ?? 3}${options.liveness === true ? " --liveness" : ""}\nscenario:\n${f.scenario}`,
    );
  }
  return totals;
}

describe("the refinement campaign, CI-sized", () => {
  const all = emptyTotals();

  // A run's verdict depends only on (seed, run index, options), so a campaign split into tests of
  // at most 1,000 runs checks the same runs; each part stays far within the test timeout on a
  // loaded machine. The campaigns are sized by what they must reach, ten times over: every
  // required rare state is first reached by run 140 of the 3-replica campaign, 103 of the
  // 5-replica one and 74 of the liveness ones (docs/performance.md, "The test suite's time"; the
  // crash while installing a transferred snapshot by runs 1, 21, 138 and 5 of the four). Searching
  // further for bugs is `npm run check`'s business. The safety campaigns were 1,500 and 1,200 runs
  // until the swarm drew long values and the install crash was built: their runs take about 6% more
  // CPU, which the 100 runs each gave up pay for.
  const safety3 = emptyTotals();
  for (const [first, runs] of [
    [0, 1000],
    [1000, 400],
  ] as const)
    it(`safety, 3 replicas: generated runs ${first}..${first + runs - 1} of 1,400 pass every check after every step`, () => {
      const t = campaign({ seed: 1, runs, replicas: 3 }, first);
      addTotals(safety3, t);
      addTotals(all, t);
      expect(t.runs).toBe(runs);
    });

  it("safety, 3 replicas: the 1,400 runs all ran", () => {
    expect(safety3.runs).toBe(1400);
  });

  for (const [first, runs] of [
    [0, 600],
    [600, 500],
  ] as const)
    it(`safety, 5 replicas: generated runs ${first}..${first + runs - 1} of 1,100 pass every check`, () => {
      addTotals(all, campaign({ seed: 2, runs, replicas: 5 }, first));
    });

  // CheckQuorum counts the time the leader ran (impl/core/check-quorum.ts) in every tuning the
  // campaigns above draw: their leaders stall (paused, then resumed past an election timeout) and
  // keep leading, and the lease checks must hold across those stalls.
  it("safety: leaders stalled past an election timeout kept leading (CheckQuorum counts the time run)", () => {
    expect(safety3.counters.get(keptAcrossOwnStall) ?? 0).toBeGreaterThan(0);
  });

  // Tuning 9: CheckQuorum counting the clock, as a replica configured with the option off runs.
  it("safety, 3 replicas, CheckQuorum counting the clock: 300 generated runs pass every check", () => {
    const t = campaign({ seed: 5, runs: 300, replicas: 3, profile: { tuning: 9 } }, 0);
    addTotals(all, t);
    // Counting the clock, no leader outlives a stall of its own past an election timeout.
    expect(t.counters.get(keptAcrossOwnStall) ?? 0).toBe(0);
  });

  // The liveness campaign likewise, in parts of at most 500 runs (61 s in one test at load 14).
  const live = emptyTotals();
  const liveness = [
    { seed: 3, replicas: 3, first: 0, runs: 500, of: 500 },
    { seed: 4, replicas: 5, first: 0, runs: 300, of: 300 },
  ] as const;
  for (const { seed, replicas, first, runs, of } of liveness)
    it(`liveness, ${replicas} replicas: generated runs ${first}..${first + runs - 1} of ${of}: after the faults, a leader with a lease answers every request`, () => {
      const t = campaign({ seed, runs, replicas, liveness: true }, first);
      expect(t.counters.get("liveness: converged")).toBe(runs);
      addTotals(live, t);
      addTotals(all, t);
    });

  it("liveness: the 800 runs all ran and reached every liveness-only rare state", () => {
    expect(live.runs).toBe(800);
    // The liveness-only rare states (the election race among them) are reached here or nowhere in CI.
    expect(missingSometimes(live.counters, true)).toEqual([]);
    // Rule L6's leader half: a leader resumed with its lease lapsed gave way to a candidate at once.
    expect(live.counters.get(lapsedLeaderGaveWay) ?? 0).toBeGreaterThan(0);
  });

  it("reaches every required rare state (a suite that never reaches one fails)", () => {
    expect(all.runs).toBeGreaterThan(0);
    expect(missingSometimes(all.counters)).toEqual([]);
    // Values at rest leave the replica only in these two messages: both must be read back from the disk.
    for (const name of ["Promise", "CatchUpReply"])
      expect(all.counters.get(`world: ${name} with values read back from the disk`) ?? 0).toBeGreaterThan(0);
    // A state transfer's chunks are read from the snapshot's record (impl/core/at-rest.ts, ChunkFromDurableSnapshot).
    expect(all.counters.get("world: SnapshotChunk read back from the snapshot's durable record") ?? 0).toBeGreaterThan(
      0,
    );
  });
});

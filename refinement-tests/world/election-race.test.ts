/**
 * The election race at the end of the liveness phase (world/run.ts, `electionRace`): once the
 * cluster has converged, every voter's election timer fires in one tick, and before true time
 * moves again some replica must hold a lease (LivenessElectionRace). The real replica wins it in
 * one round trip (rule L6: a candidate meeting a higher ballot yields to it); a candidate that
 * keeps its self-grant (mutant self-grant-kept) refuses the others and the race ends with no
 * leader. It runs only where one round trip is the real replica's bound: at most 3 voters, no
 * change pending, no vote above the executed prefix.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Scenario } from "./actions.ts";
import { scenarioArbitrary } from "./actions.ts";
import { boundsOf } from "../suite.ts";
import { runScenario } from "./run.ts";
import { mutantNamed } from "../mutants/index.ts";
import type { Prelude } from "./preludes.ts";
import { lapsedLeaderGaveWay } from "../../proofs/world-checker.ts";

const won = "liveness: election race won within one round trip";

/** A warm-started scenario with no actions (tuning 0), after `prelude` with `pick`. */
function quiet(replicas: number, prelude: Prelude = "none", pick = 0): Scenario {
  const [drawn] = fc.sample(scenarioArbitrary(boundsOf({ replicas })), { seed: 1, numRuns: 1 }) as [Scenario];
  return { ...drawn, profile: { ...drawn.profile, warmStart: true, tuning: 0, prelude, pick }, actions: [] };
}

describe("the election race of the liveness phase", () => {
  it("every voter campaigns in one tick, and the real replica holds a lease before time moves again", () => {
    const r = runScenario(quiet(3), { liveness: true, record: true });
    expect(r.failure).toBeNull();
    expect(r.counters.get(won)).toBe(1);
    const trace = r.trace!;
    const race = trace.findIndex((e) => e.text.includes("election race"));
    expect(race).toBeGreaterThan(0);
    // The second jump of time: every follower's tick persists a promise of its own new ballot; the
    // leader, its stall not counted by CheckQuorum, keeps leading and sends its heartbeat.
    const advances = trace.map((e, i) => [e, i] as const).filter(([e, i]) => i > race && e.text.startsWith("advance"));
    expect(advances).toHaveLength(2);
    const second = advances[1]![1];
    const ticks = trace.slice(second + 1, second + 4);
    const campaigns = ticks.filter(
      (e) => e.text.startsWith("tick R") && e.details.some((d) => d.startsWith("persist promise")),
    );
    expect(campaigns).toHaveLength(2);
    expect(ticks.filter((e) => e.text.startsWith("tick R"))).toHaveLength(3);
    // It gives way at once to the first higher ballot it meets (rule L6).
    expect(r.counters.get(lapsedLeaderGaveWay)).toBe(1);
    // Nothing after them moves time.
    expect(trace.slice(second + 1).every((e) => !e.text.startsWith("advance"))).toBe(true);
  });

  it("catches a candidate that keeps its self-grant (self-grant-kept), which passes the rest of the phase", () => {
    const m = mutantNamed("self-grant-kept");
    const r = runScenario(quiet(3), { liveness: true, step: m.step });
    expect(r.failure?.check).toBe("LivenessElectionRace");
    expect(r.counters.get("liveness: converged")).toBe(1);
  });

  it("runs with 5 replicas only once the cluster is down to 3 voters", () => {
    const m = mutantNamed("self-grant-kept");
    // Five voters: a candidate that promised the first higher ballot it met grants it, so the
    // highest may gather too few promises in one round trip; the race is not run.
    const five = runScenario(quiet(5), { replicas: 5, liveness: true, step: m.step });
    expect(five.failure).toBeNull();
    expect(five.counters.get(won)).toBeUndefined();
    // The writes prelude with pick bit 6 first removes voters until 3 are left.
    const shrunk = quiet(5, "writes", 64);
    expect(runScenario(shrunk, { replicas: 5, liveness: true }).counters.get(won)).toBe(1);
    expect(runScenario(shrunk, { replicas: 5, liveness: true, step: m.step }).failure?.check).toBe(
      "LivenessElectionRace",
    );
  });
});

/**
 * The bug zoo has teeth, in CI, without searching: every mutant's committed shortest catching
 * trace (refinement-tests/mutants/traces/, from the explorer or the random suites, whichever
 * found the shorter; `npm run mutants -- --engine both --write-traces` refreshes them) still makes
 * one of the mutant's expected checks fail, and the very same scenario passes with the real
 * replica, so each trace shows that mutant's bug and nothing else. The searches themselves, and
 * how long they take, are `npm run mutants`'s business (and docs/refinement.md's numbers).
 */
import { readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { replay } from "../explorer/explorer.ts";
import type { Regression } from "../regressions/regressions.ts";
import { runScenario } from "../world/run.ts";
import { mutantNamed, mutants } from "./index.ts";
import { zeroDelayBounds } from "./mutant.ts";
import { traceOf, tracesFolder, tracesOf } from "./traces.ts";

describe("every mutant's committed catching trace catches it, and only it", () => {
  for (const m of mutants) {
    it(`${m.name}: ${m.description}`, () => {
      const trace = traceOf(m.name);
      expect(trace, `no trace for ${m.name}: npm run mutants -- --only ${m.name} --write-traces`).not.toBeNull();
      const failure = replay(trace!, m.step);
      expect(failure?.check ?? "passes", failure?.message).toBe(trace!.expect);
      expect(
        m.expectedCatch.some((e) => trace!.expect.startsWith(e)),
        `${m.name} caught by ${trace!.expect}, expected one of ${m.expectedCatch.join(", ")}`,
      ).toBe(true);
      const real = replay(trace!);
      expect(real?.check ?? "passes", `the real replica fails the same scenario: ${real?.message}`).toBe("passes");
    });
  }
});

describe("the traces of the other hunts (5 and 7 replicas, other tunings) catch their mutant, and only it", () => {
  for (const m of mutants) {
    for (const trace of tracesOf(m.name).slice(1)) {
      it(`${m.name}, ${trace.replicas} replicas: ${trace.description}`, () => {
        const failure = replay(trace, m.step);
        expect(failure?.check ?? "passes", failure?.message).toBe(trace.expect);
        expect(m.expectedCatch.some((e) => trace.expect.startsWith(e))).toBe(true);
        const real = replay(trace);
        expect(real?.check ?? "passes", `the real replica fails the same scenario: ${real?.message}`).toBe("passes");
      });
    }
  }
});

/** Messages the scenario's own actions delivered after true time moved (the warm-up's and prelude's left out). */
function delayedInActions(trace: Regression): number {
  const key = "world: message delivered after true time moved";
  const options = { replicas: trace.replicas, liveness: false, step: mutantNamed(trace.name).step };
  const all = runScenario(trace.scenario, options).counters.get(key) ?? 0;
  const before = runScenario({ ...trace.scenario, actions: [] }, options).counters.get(key) ?? 0;
  return all - before;
}

describe("the explorer's zero-delay traces delay no message", () => {
  const files = readdirSync(tracesFolder).filter((f) => /-zero-delay(-explorer)?\.json$/.test(f));
  const byExplorer = files
    .map((f) => traceOf(f.slice(0, f.indexOf("@")), f)!)
    .filter((t) => t.description.includes("caught by the explorer"));

  it("every one delivers each message at the instant it was sent, or loses it", () => {
    expect(byExplorer.length).toBeGreaterThan(0);
    for (const t of byExplorer) expect(delayedInActions(t), `${t.name}, ${t.replicas} replicas`).toBe(0);
  });

  it("every zero-delay route of a mutant (exploreZeroDelay) has an explorer trace along it", () => {
    for (const m of mutants)
      for (const replicas of [3, 5, 7]) {
        const route = zeroDelayBounds(m, replicas);
        if (route === undefined) continue;
        const along = byExplorer.filter(
          (t) => t.name === m.name && t.replicas === replicas && t.description.includes("--cuts drop"),
        );
        expect(
          along.length,
          `${m.name} with ${replicas} replicas: npm run mutants -- --engine both --only ${m.name} --replicas ${replicas} --tuning zero-delay --write-traces`,
        ).toBe(1);
      }
  });

  it("the count sees a delay: the explorer's own trace of accept-below-promise holds an Accept back", () => {
    const own = traceOf("accept-below-promise")!;
    expect(own.description).toContain("--delays 1");
    expect(delayedInActions(own)).toBeGreaterThan(0);
  });
});

/**
 * The bug zoo has teeth, in CI: every mutant is caught by the ordinary suite within a bounded
 * number of runs. Runs are seeded, so the count is exact and machine-independent (seconds are
 * measured by `npm run mutants`, never asserted here). The bound is well above today's counts
 * (`npm run mutants` prints them) so that unrelated changes to the core do not make it flaky,
 * and far below "never". The rarest catch is learn-any-vote's (a deposed leader's own vote at a
 * slot the next leader filled while it was cut off): about 1 run in 30,000, the first from seed 1
 * at run 67,210 since the world gained the faults of snapshots and reconfiguration, hence 100,000.
 * Seconds are not the bound: a mutant may take tens of thousands of runs, so each test may take
 * minutes on a loaded machine.
 */
import { describe, expect, it } from "vitest";
import { runOne, runSeed } from "../suite.ts";
import { mutants } from "./index.ts";

const runsMax = 100_000;

describe("every mutant is caught by the ordinary suites", () => {
  for (const m of mutants) {
    it(`${m.name}: ${m.description}`, () => {
      let caught: string | null = null;
      let runs = 0;
      while (caught === null && runs < runsMax) {
        const one = runOne(runSeed(1, runs), { liveness: m.mode === "liveness", step: m.step, shrink: false });
        runs++;
        if (one.failed !== null) caught = one.failed.failure.check;
      }
      expect(caught, `${m.name} not caught in ${runsMax} runs`).not.toBeNull();
      expect(
        m.expectedCatch.some((e) => caught!.startsWith(e)),
        `${m.name} caught by ${caught}, expected one of ${m.expectedCatch.join(", ")}`,
      ).toBe(true);
    }, 600_000);
  }
});

/**
 * The bug zoo has teeth, in CI, without searching: every mutant's committed shortest catching
 * trace (refinement-tests/mutants/traces/, from the explorer or the random suites, whichever
 * found the shorter; `npm run mutants -- --engine both --write-traces` refreshes them) still makes
 * one of the mutant's expected checks fail, and the very same scenario passes with the real
 * replica, so each trace shows that mutant's bug and nothing else. The searches themselves, and
 * how long they take, are `npm run mutants`'s business (and docs/refinement.md's numbers).
 */
import { describe, expect, it } from "vitest";
import { replay } from "../explorer/explorer.ts";
import { mutants } from "./index.ts";
import { traceOf, tracesOf } from "./traces.ts";

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

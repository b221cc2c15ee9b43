/**
 * The explorer reaches the store's values at rest where the disk's rules meet (rules V1 to V3,
 * proofs/store-at-rest.md): a vote written again in its ballot after a snapshot forgot its slot,
 * both records kept by compaction and recovered together, and a compaction decided in pieces with
 * the store's pins changed between them. Without searching: the explorer's committed shortest
 * catches of recover-refuses-revote and compaction-pins-of-run-before (their bounds: the mutants'
 * `explore`) are run again with the real replica, which passes them and counts the interactions
 * they were found through. `npm run mutants -- --engine explore --only NAME --write-traces`
 * refreshes them; `npm run explore -- --impl ... --goal COUNTER` searches for each counter.
 */
import { describe, expect, it } from "vitest";
import { mutantNamed } from "../mutants/index.ts";
import { traceFile, traceOf } from "../mutants/traces.ts";
import { runScenario } from "../world/run.ts";
import { describeBounds } from "./explorer.ts";
import { defaultBounds } from "./model.ts";

/** The explorer's committed catch of mutant `name`, with the bounds it was found within. */
function explorerTrace(name: string) {
  const trace = traceOf(name, traceFile(name, 3, "own", "explorer"));
  if (trace === null)
    throw new Error(`no explorer trace of ${name}: npm run mutants -- --engine explore --only ${name} --write-traces`);
  const hunt = mutantNamed(name).explore!;
  return { trace, flags: describeBounds({ ...defaultBounds, ...hunt.bounds }) };
}

/** The world's counters over a committed trace run with the real replica (which must pass it). */
function countersOf(name: string): ReadonlyMap<string, number> {
  const { trace, flags } = explorerTrace(name);
  // Found by the explorer within the mutant's own bounds, not by the random suite from a prelude.
  expect(trace.description).toContain(`caught by the explorer (${flags}`);
  expect(trace.scenario.profile.prelude ?? "none").toBe("none");
  const run = runScenario(trace.scenario, { replicas: trace.replicas, clients: trace.clients ?? 3, liveness: false });
  expect(run.failure?.check ?? "passes", run.failure?.message).toBe("passes");
  return run.counters;
}

describe("the explorer reaches values at rest where the disk's rules meet", () => {
  it("a vote repeated in its ballot across a snapshot: written, both records kept, recovered", () => {
    const counters = countersOf("recover-refuses-revote");
    for (const key of [
      "world: a vote written again in its ballot after a snapshot forgot its slot",
      "world: compaction kept a vote record the store names",
      "world: a replica recovered a vote repeated in its ballot",
    ])
      expect(counters.get(key) ?? 0, key).toBeGreaterThan(0);
  });

  it("compactions decided in pieces with records appended between them, and snapshots filled from values at rest", () => {
    // (A compaction whose pins change between its pieces: the regression
    // explore-compaction-pins-changed-between-pieces, refinement-tests/regressions/.)
    const counters = countersOf("compaction-pins-of-run-before");
    for (const key of [
      "world: a snapshot's holes filled from the vote records of its store values at rest",
      "world: compaction decided in pieces, records appended between them",
    ])
      expect(counters.get(key) ?? 0, key).toBeGreaterThan(0);
  });

  it("the counters count only what happened: a fault-free run of the same bounds writes no vote twice", () => {
    const { trace } = explorerTrace("recover-refuses-revote");
    // The same scenario without its one duplicate: no copy of an Accept, no vote written again.
    const actions = trace.scenario.actions.filter((a) => a.t !== "duplicate");
    const run = runScenario(
      { ...trace.scenario, actions },
      { replicas: trace.replicas, clients: trace.clients ?? 3, liveness: false },
    );
    expect(run.counters.get("world: a vote written again in its ballot after a snapshot forgot its slot") ?? 0).toBe(0);
    expect(run.counters.get("world: a replica recovered a vote repeated in its ballot") ?? 0).toBe(0);
  });
});

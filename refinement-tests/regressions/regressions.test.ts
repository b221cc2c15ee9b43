/** Every named regression scenario runs in CI and ends as it must (see regressions.ts). */
import { describe, expect, it } from "vitest";
import { appendBytesRan, appendBytesRefused, lateFirstRefused, openedEvicted } from "../../proofs/service-level.ts";
import { mutantNamed } from "../mutants/index.ts";
import { runScenario } from "../world/run.ts";
import { regressions } from "./regressions.ts";

/**
 * Rare states a regression exists to reach: the trace must still get there (a trace that drifts
 * past the path it was kept for passes without showing anything).
 */
const reaches: Readonly<Record<string, readonly string[]>> = {
  "explore-late-first-copy-refused": [lateFirstRefused, openedEvicted],
  "explore-append-over-limit-refused": [appendBytesRefused],
  "explore-append-over-limit-ran-at-level-3": [appendBytesRan],
  "explore-compaction-pins-changed-between-pieces": [
    "world: compaction decided in pieces, the store's pins changed between them",
  ],
  "world-deposed-leader-retries-a-change-its-successor-allows": [
    "sometimes: membership change to retry: its leader could not vouch for the configuration",
  ],
  "world-isolated-sole-voter-replaced-hands-on-its-slots": [
    "sometimes: replica caught up from a CatchUp's sender that is ahead",
  ],
};

describe("regression scenarios", () => {
  it("every regression named to reach a rare state exists", () => {
    const names = new Set(regressions().map((r) => r.name));
    for (const name of Object.keys(reaches)) expect(names, name).toContain(name);
  });

  for (const r of regressions()) {
    it(`${r.name}: ${r.description}`, () => {
      const run = runScenario(r.scenario, {
        replicas: r.replicas,
        ...(r.clients === undefined ? {} : { clients: r.clients }),
        liveness: r.liveness,
        ...(r.mutant === null ? {} : { step: mutantNamed(r.mutant).step }),
      });
      expect(run.failure === null ? "pass" : run.failure.check, run.failure?.message).toBe(r.expect);
      for (const state of reaches[r.name] ?? []) expect(run.counters.get(state) ?? 0, state).toBeGreaterThan(0);
    });
  }
});

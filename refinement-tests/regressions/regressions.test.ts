/** Every named regression scenario runs in CI and ends as it must (see regressions.ts). */
import { describe, expect, it } from "vitest";
import { mutantNamed } from "../mutants/index.ts";
import { runScenario } from "../world/run.ts";
import { regressions } from "./regressions.ts";

describe("regression scenarios", () => {
  for (const r of regressions()) {
    it(`${r.name}: ${r.description}`, () => {
      const run = runScenario(r.scenario, {
        replicas: r.replicas,
        ...(r.clients === undefined ? {} : { clients: r.clients }),
        liveness: r.liveness,
        ...(r.mutant === null ? {} : { step: mutantNamed(r.mutant).step }),
      });
      expect(run.failure === null ? "pass" : run.failure.check, run.failure?.message).toBe(r.expect);
    });
  }
});

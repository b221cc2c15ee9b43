/**
 * A printed replay reproduces its failure: `replayScenario(seed, path)` rebuilds exactly the
 * shrunk counterexample that `runOne` reported, so `npm run check -- --replay SEED:PATH` runs the
 * scenario that failed and not a neighbour of it in the shrink tree.
 */
import { describe, expect, it } from "vitest";
import { mutantNamed } from "./mutants/index.ts";
import { replayScenario, runOne, runSeed } from "./suite.ts";
import { runScenario } from "./world/run.ts";

describe("replay", () => {
  it("rebuilds the shrunk counterexample of a failed run, which fails the same check again", () => {
    const { step } = mutantNamed("reply-before-durable");
    let found = 0;
    for (let k = 0; k < 200 && found < 2; k++) {
      const seed = runSeed(7, k);
      const one = runOne(seed, { step });
      if (one.failed === null) continue;
      found++;
      // A path of one number is the unshrunk run; the shrunk ones go deeper.
      expect(one.failed.path).toContain(":");
      const scenario = replayScenario(seed, one.failed.path);
      expect(scenario).toEqual(one.failed.scenario);
      expect(runScenario(scenario, { step }).failure?.check).toBe(one.failed.failure.check);
    }
    expect(found).toBe(2);
  });
});

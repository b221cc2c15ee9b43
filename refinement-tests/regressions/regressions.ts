/**
 * Named regression scenarios: fixed action lists, each a bug one of the suites found (in
 * impl/core, in the world, or a mutant's shrunk counterexample kept to show the check that
 * caught it still does). One JSON file per scenario in this folder:
 *   { name, description, replicas, clients (optional, default 3), liveness, mutant (null: impl/core), expect ("pass" or
 * the
 *     name of the check that must fail), scenario: { seed, profile, actions } }
 * A failure report (`npm run check`) writes a `regression.json` in this format, ready to copy here.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Scenario } from "../world/actions.ts";

/** One regression scenario. */
export interface Regression {
  readonly name: string;
  readonly description: string;
  readonly replicas: number;
  /** Clients of the world (default 3). */
  readonly clients?: number;
  readonly liveness: boolean;
  readonly mutant: string | null;
  readonly expect: string;
  readonly scenario: Scenario;
}

const folder = new URL(".", import.meta.url).pathname;

/** Every regression scenario in this folder, by name. */
export function regressions(): Regression[] {
  return readdirSync(folder)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((f) => {
      const r = JSON.parse(readFileSync(join(folder, f), "utf8")) as Regression;
      if (`${r.name}.json` !== f) throw new Error(`${f}: its name is ${r.name}`);
      if (!Array.isArray(r.scenario.actions) || typeof r.scenario.seed !== "number")
        throw new Error(`${f}: not a scenario`);
      return r;
    });
}

/**
 * Each mutant's shortest known catching trace, one regression file per mutant in ./traces/ (the
 * format of refinement-tests/regressions/), written by `npm run mutants -- --write-traces` from
 * whichever engine found the shorter one. `npm test` re-runs them instead of searching.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Regression } from "../regressions/regressions.ts";

/** The folder of the traces. */
export const tracesFolder = new URL("./traces/", import.meta.url).pathname;

/** The committed trace of mutant `name`, or null when there is none. */
export function traceOf(name: string): Regression | null {
  const file = join(tracesFolder, `${name}.json`);
  if (!existsSync(file)) return null;
  const r = JSON.parse(readFileSync(file, "utf8")) as Regression;
  if (r.mutant !== name) throw new Error(`${file}: the trace of ${String(r.mutant)}, not of ${name}`);
  if (!Array.isArray(r.scenario.actions) || typeof r.scenario.seed !== "number")
    throw new Error(`${file}: not a scenario`);
  return r;
}

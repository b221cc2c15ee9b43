/**
 * Each mutant's shortest known catching trace, one regression file per mutant in ./traces/ (the
 * format of refinement-tests/regressions/), written by `npm run mutants -- --write-traces` from
 * whichever engine found the shorter one. `npm test` re-runs them instead of searching.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Regression } from "../regressions/regressions.ts";

/** The folder of the traces. */
export const tracesFolder = new URL("./traces/", import.meta.url).pathname;

/**
 * The file name of mutant `name`'s trace for a variant of the hunt: `NAME.json` for 3 replicas
 * and the mutant's own tuning, `NAME@r7.json`, `NAME@r3-drift.json` and so on otherwise. With
 * `engine`, the trace that engine found, kept beside the shortest (`NAME@r5-zero-delay-explorer.json`:
 * the explorer's catch along a mutant's zero-delay route, where the random suite's was shorter).
 */
export function traceFile(name: string, replicas = 3, tuning = "own", engine?: "explorer"): string {
  const own = replicas === 3 && tuning === "own" && engine === undefined;
  const variant = own
    ? ""
    : `@r${replicas}${tuning === "own" ? "" : `-${tuning}`}${engine === undefined ? "" : `-${engine}`}`;
  return `${name}${variant}.json`;
}

/** Every committed trace of mutant `name`: its own first, then its variants (other replicas and tunings). */
export function tracesOf(name: string): Regression[] {
  const files = readdirSync(tracesFolder).filter((f) => f.startsWith(`${name}@`) && f.endsWith(".json"));
  const own = traceOf(name);
  return [...(own === null ? [] : [own]), ...files.sort().map((f) => traceOf(name, f)!)];
}

/** The committed trace of mutant `name` (or its variant in `fileName`), or null when there is none. */
export function traceOf(name: string, fileName = `${name}.json`): Regression | null {
  const file = join(tracesFolder, fileName);
  if (!existsSync(file)) return null;
  const r = JSON.parse(readFileSync(file, "utf8")) as Regression;
  if (r.mutant !== name) throw new Error(`${file}: the trace of ${String(r.mutant)}, not of ${name}`);
  if (!Array.isArray(r.scenario.actions) || typeof r.scenario.seed !== "number")
    throw new Error(`${file}: not a scenario`);
  return r;
}

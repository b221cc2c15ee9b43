/**
 * Where `npm run explore`'s bundle lives and whether it is current (refinement-tests/cli/build.ts
 * makes it). The bundle runs {@link rerunIfStale} first: a fresh process hashes the sources (a few
 * hundredths of a CPU second) instead of starting tsx to check them (about 0.35 CPU s more).
 * Kept apart from build.ts, whose esbuild plugin rewrites the text it looks for in every source.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { sourcesHash } from "../../impl/runtime/build.ts";
import { projectRoot } from "../../impl/runtime/program.ts";

export const bundlePath = path.join(projectRoot, "dist", "explorer.mjs");
/** The hash of the sources the bundle was built from. */
export const hashFile = path.join(projectRoot, "dist", "explorer.sha256");
/** Folders the explorer is compiled from. */
export const sourceFolders = ["impl", "spec", "proofs", "refinement-tests"];
/** The build script (run with tsx). */
export const buildScript = path.join(projectRoot, "refinement-tests", "cli", "build.ts");

/** True when the bundle is missing or was built from other sources than `hash`, those on disk now. */
export function bundleIsStale(hash: string): boolean {
  return !fs.existsSync(bundlePath) || !fs.existsSync(hashFile) || fs.readFileSync(hashFile, "utf8").trim() !== hash;
}

/**
 * Run first thing by the bundle: if the sources changed since it was built, rebuild it (with tsx,
 * in a child process) and run the new bundle with this process's arguments, then exit with its
 * status. Returns only when the running bundle is current.
 */
export function rerunIfStale(): void {
  if (!bundleIsStale(sourcesHash(sourceFolders))) return;
  const built = spawnSync(process.execPath, ["--import", "tsx", buildScript], { cwd: projectRoot, stdio: "inherit" });
  if (built.status !== 0) process.exit(built.status ?? 1);
  const run = spawnSync(process.execPath, [...process.execArgv, bundlePath, ...process.argv.slice(2)], {
    stdio: "inherit",
  });
  process.exit(run.status ?? 1);
}

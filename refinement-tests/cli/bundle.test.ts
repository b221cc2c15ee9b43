/**
 * `npm run explore`'s bundle checks, when it starts, that it was built from the sources on disk:
 * run with a hash of other sources it rebuilds itself and runs the new bundle with the same
 * arguments (their output and exit status); run current, it builds nothing.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { sourcesHash } from "../../impl/runtime/build.ts";
import { buildScript, bundleIsStale, bundlePath, hashFile, sourceFolders } from "./bundle.ts";

function explore(): { status: number | null; stdout: string; stderr: string } {
  const args = ["--impl", "--requests", "0", "--reads", "1", "--depth", "1", "--json"];
  const r = spawnSync(process.execPath, [bundlePath, ...args], { encoding: "utf8", timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("the explorer's bundle", () => {
  it("rebuilds itself when built from other sources, and runs with the same arguments", () => {
    const built = spawnSync(process.execPath, ["--import", "tsx", buildScript, "--if-stale"], { encoding: "utf8" });
    expect(built.status, built.stderr).toBe(0);
    const hash = sourcesHash(sourceFolders);
    expect(bundleIsStale(hash)).toBe(false);

    writeFileSync(hashFile, "the hash of other sources\n");
    expect(bundleIsStale(hash)).toBe(true);
    const stale = explore();
    expect(stale.status, stale.stderr).toBe(0);
    expect(stale.stderr).toContain("built dist/explorer.mjs");
    expect(JSON.parse(stale.stdout)).toMatchObject({ mode: "bfs", violation: null });
    expect(readFileSync(hashFile, "utf8").trim()).toBe(hash);

    const current = explore();
    expect(current.status, current.stderr).toBe(0);
    expect(current.stderr).not.toContain("built");
    const states = (out: string) => (JSON.parse(out) as { distinctStates: number }).distinctStates;
    expect(states(current.stdout)).toBe(states(stale.stdout));
  });
});

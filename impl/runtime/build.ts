/**
 * The build step: esbuild compiles impl/runtime/cli.ts and everything it imports into
 * dist/paxos-lease.mjs (ES modules for Node.js 20), so that the CLI answers at once and replicas
 * start in a fraction of a second. npm packages stay external and load from node_modules, except
 * `effect`, which is bundled so that only the parts in use are loaded. The commands only some
 * invocations need (a replica, a local cluster, tokens) are split into chunks under
 * dist/chunks/, loaded when used: a client command loads neither SQLite nor the protocol core.
 *
 * `npm run build` always builds; `npm run build -- --if-stale` and {@link ensureCliBuilt} build only
 * when the sources changed since the last build (their hash is kept in dist/sources.sha256). A
 * build writes new chunks beside the old ones and replaces the entry file last, by rename, so a
 * process running an older build keeps working. Development tool: the program never imports it.
 */
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { cliBundlePath, projectRoot } from "./program.ts";

const distDir = path.dirname(cliBundlePath);
const hashFile = path.join(distDir, "sources.sha256");
/** Folders the CLI is compiled from (impl/ imports spec/, nothing else of the project). */
const sourceFolders = ["impl", "spec"];

/**
 * A hash of everything a build from `folders` depends on: their sources (tests aside), package.json
 * and this file. The CLI's build hashes impl/ and spec/; the explorer's bundle more.
 */
export function sourcesHash(folders: readonly string[] = sourceFolders): string {
  const hash = createHash("sha256");
  const add = (file: string): void => {
    hash.update(path.relative(projectRoot, file)).update("\0").update(fs.readFileSync(file)).update("\0");
  };
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts")) add(file);
    }
  };
  for (const folder of folders) walk(path.join(projectRoot, folder));
  add(path.join(projectRoot, "package.json"));
  return hash.digest("hex");
}

/** npm packages a bundle leaves to node_modules: all but `effect`, which is bundled. */
export function externalPackages(): string[] {
  const manifest = JSON.parse(fs.readFileSync(path.join(projectRoot, "package.json"), "utf8")) as {
    dependencies?: Record<string, string>;
    devDependencies?: Record<string, string>;
  };
  return [...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.devDependencies ?? {})].filter(
    (name) => name !== "effect",
  );
}

/**
 * An empty module in place of `fast-check` in the CLI's bundle. effect's Schema imports its
 * Arbitrary module, which re-exports fast-check whole, so every thread that loaded the Schema (a
 * replica's main and storage threads) loaded all of fast-check, for arbitraries the program never
 * makes: 4.3 MB of RSS per thread (1.8 MB of heap in use, its source and compiled code). The tests
 * and the explorer, which use it, import it from node_modules.
 */
const fastCheckLeftOut: import("esbuild").Plugin = {
  name: "fast-check-left-out",
  setup(build) {
    build.onResolve({ filter: /^fast-check$/ }, () => ({ path: "fast-check", namespace: "left-out" }));
    build.onLoad({ filter: /.*/, namespace: "left-out" }, () => ({ contents: "export {};", loader: "js" }));
  },
};

/** Build dist/paxos-lease.mjs from the sources now. */
export async function buildCli(): Promise<void> {
  const hash = sourcesHash();
  const esbuild = await import("esbuild");
  const external = externalPackages().filter((name) => name !== "fast-check");
  const result = await esbuild.build({
    entryPoints: {
      "paxos-lease": path.join(projectRoot, "impl", "runtime", "cli.ts"),
      // A replica's storage thread (impl/runtime/storage-thread.ts starts it from dist/).
      "storage-worker": path.join(projectRoot, "impl", "runtime", "storage-worker.ts"),
      // The leader's heartbeat relay (impl/runtime/heartbeat-relay.ts starts it from dist/).
      "heartbeat-relay-worker": path.join(projectRoot, "impl", "runtime", "heartbeat-relay-worker.ts"),
    },
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    external,
    outdir: distDir,
    chunkNames: "chunks/[name]-[hash]",
    outExtension: { ".js": ".mjs" },
    banner: { js: "#!/usr/bin/env node" },
    write: false,
    logLevel: "warning",
    plugins: [fastCheckLeftOut],
  });
  fs.mkdirSync(path.join(distDir, "chunks"), { recursive: true });
  const entry = result.outputFiles.find((file) => file.path === cliBundlePath);
  if (entry === undefined) throw new Error(`esbuild did not produce ${cliBundlePath}`);
  // Chunks are named by their content: one that exists already is the same file. The storage
  // thread's entry is not, and is replaced before the CLI's entry that starts it.
  const chunksDir = path.join(distDir, "chunks");
  for (const file of result.outputFiles) {
    if (file === entry) continue;
    if (path.dirname(file.path) !== chunksDir || !fs.existsSync(file.path)) replace(file.path, file.contents);
  }
  replace(cliBundlePath, entry.contents, 0o755);
  replace(hashFile, `${hash}\n`);
}

/** Write `file` whole: a temporary file, then a rename over it. */
export function replace(file: string, contents: Uint8Array | string, mode = 0o644): void {
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  fs.writeFileSync(temporary, contents, { mode });
  fs.renameSync(temporary, file);
}

/** True when dist/paxos-lease.mjs is missing or was built from other sources. */
export function cliBuildIsStale(): boolean {
  if (!fs.existsSync(cliBundlePath) || !fs.existsSync(hashFile)) return true;
  return fs.readFileSync(hashFile, "utf8").trim() !== sourcesHash();
}

/** Build unless the build is up to date; returns the compiled CLI's path. */
export async function ensureCliBuilt(): Promise<string> {
  if (cliBuildIsStale()) await buildCli();
  return cliBundlePath;
}

/** Vitest's global setup: every test that starts processes runs the current sources. */
export async function setup(): Promise<void> {
  await ensureCliBuilt();
}

if (
  process.argv[1] !== undefined &&
  path.resolve(process.argv[1]) === path.join(projectRoot, "impl", "runtime", "build.ts")
) {
  const ifStale = process.argv.includes("--if-stale");
  const started = performance.now();
  if (ifStale && !cliBuildIsStale()) process.exit(0);
  await buildCli();
  process.stderr.write(
    `built ${path.relative(process.cwd(), cliBundlePath)} in ${(performance.now() - started).toFixed(0)} ms\n`,
  );
}

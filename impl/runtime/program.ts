/**
 * Where the compiled program is and how to start its processes. `npm run build` (run by
 * `npm ci`, `npm test` and `npm start`) compiles impl/runtime/cli.ts into dist/paxos-lease.mjs;
 * every replica process, local cluster and test cluster runs that JavaScript, never the
 * TypeScript sources through a transpiler (impl/runtime/build.ts builds it). This module is
 * light on purpose: the CLI loads it for every command.
 */
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** The nearest folder holding package.json, from `dir` upwards (this module may run from dist/chunks/). */
function rootFrom(dir: string): string {
  for (let at = dir; ; at = path.dirname(at)) {
    if (fs.existsSync(path.join(at, "package.json"))) return at;
    if (path.dirname(at) === at) throw new Error(`no package.json above ${dir}`);
  }
}

/** The project's root folder. */
export const projectRoot = rootFrom(path.dirname(fileURLToPath(import.meta.url)));

/** The compiled CLI: `node dist/paxos-lease.mjs replica ...` runs a replica. */
export const cliBundlePath = path.join(projectRoot, "dist", "paxos-lease.mjs");

/** Largest local cluster (`cluster start`). */
export const localReplicasMax = 7;

/** The argv (after the node binary) that runs the compiled CLI; throws when it was never built. */
export function cliArgv(): string[] {
  if (!fs.existsSync(cliBundlePath))
    throw new Error(`${cliBundlePath} is missing: run 'npm run build' (npm ci and npm test run it)`);
  return [cliBundlePath];
}

/**
 * V8 options of every replica process:
 * - a young generation of at most 4 MiB per semi-space (V8's default lets it grow to 16 MiB). A
 *   replica's objects are short-lived messages and requests, so scavenges stay cheap, and a
 *   leader under 64 writers holds about 30 MB less.
 * - an old generation collected once it has grown by a fifth since the last full collection
 *   (`--heap-growing-percent=20`). V8 otherwise lets it grow up to fourfold when allocation is
 *   fast, and under 64 lease readers a leader whose live heap was 20 to 25 MB reached 75 to 80 MB
 *   of it, garbage promoted with the requests in flight at each scavenge (bench/memory.ts). In
 *   bursts of 1 MiB PUTs the values a put replaces are such garbage, 1 MiB each: at a half
 *   (the setting before) the leader's main heap held 40 to 90 MB of them at its peak, and at a
 *   fifth its peak RSS is 10 to 25 MB lower; a small heap grows by V8's minimum step (8 MB)
 *   either way, so small writes cost no more CPU (docs/performance.md, "The leader's peak in a
 *   burst, measured again").
 * - one V8 helper thread (`--v8-pool-size=1`; Node's default is four) for the collector's parallel
 *   and concurrent work and the optimizing compiler. Three replicas on two cores brought twelve
 *   such threads, and helpers that wait for a core are CPU spent to no end: with one, CPU per write
 *   was lower in 9 of 11 interleaved runs, bursts of 1 MiB values no worse (docs/performance.md,
 *   "The V8 helper threads").
 * - a collector that works on the main thread alone (`--single-threaded-gc`): no scavenge waits for
 *   a helper that waits for a core. Interleaved with the helper, CPU per write was lower in 7 of 9
 *   runs at 1, 16 and 64 clients and bursts of 1 MiB values kept their leader no less often
 *   (docs/performance.md, "One collector thread, and what the leader's own vote costs").
 * - no pretenuring by allocation site (`--no-allocation-site-pretenuring`). V8 allocates the
 *   objects of a site straight into the old generation once most of them survived a scavenge, and
 *   judges it over a few scavenges: the warm-up's 16 writers, whose requests live longer, had
 *   tenured some of a follower's sites, whose objects then lived a write or two in the old
 *   generation, held the young ones they pointed to through every scavenge, and went only at a full
 *   collection. Without it a follower kept half as much through each scavenge at one client, with
 *   no full collection in the measured window where there had been two, and no member's memory
 *   under 64 writers grew (docs/performance.md, "What a follower kept through its scavenges").
 * The first two trade a little CPU for memory (docs/performance.md, "Memory under one point").
 * Replicas started by hand take the same options on node's command line (NODE_OPTIONS refuses the
 * second and the last two): `node --max-semi-space-size=4 --heap-growing-percent=20 --v8-pool-size=1
 * --single-threaded-gc --no-allocation-site-pretenuring dist/paxos-lease.mjs replica ...`.
 */
export const replicaV8Flags: readonly string[] = [
  "--max-semi-space-size=4",
  "--heap-growing-percent=20",
  "--v8-pool-size=1",
  "--single-threaded-gc",
  "--no-allocation-site-pretenuring",
];

/**
 * glibc's malloc settings of every replica process, given as environment variables (glibc reads
 * them once, at start): allocations of 128 KiB or more (glibc's default threshold) always in
 * mappings of their own, which go back to the kernel when freed. glibc otherwise raises the
 * threshold each time it frees such a mapping, up to 32 MiB, so after the first 1 MiB request body
 * or Accept frame is freed every later one comes from its arenas (one per thread), whose freed
 * pages it keeps: in bursts of 16 concurrent 1 MiB PUTs a leader peaked 14 to 36 MB higher, the
 * followers 4 to 27. The price is a page fault per page of each fresh mapping, about 0.5 ms of CPU
 * per 1 MiB buffer, 0 to 13 ms per MiB written over a cluster in six measured pairs (docs/performance.md, "Large
 * buffers in mappings of their own"). A value the environment already sets wins. Other C
 * libraries (musl) ignore it.
 */
export const replicaMallocEnv: Readonly<Record<string, string>> = { MALLOC_MMAP_THRESHOLD_: "131072" };

/** The environment of a replica process: `base` with {@link replicaMallocEnv} where `base` sets none. */
export function replicaEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...replicaMallocEnv, ...base };
}

/** The argv (after the node binary) that runs a replica process: {@link replicaV8Flags}, then {@link cliArgv}. */
export function replicaArgv(): string[] {
  return [...replicaV8Flags, ...cliArgv()];
}

/** The argv (after the node binary) that runs a TypeScript `script` through tsx (development tools only). */
export function tsxArgv(script: string): string[] {
  const loader = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
  return ["--import", loader, script];
}

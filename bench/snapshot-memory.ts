/**
 * What a snapshot interval costs a replica's memory over many slots: a 3-replica cluster on
 * loopback, 10 s of 16 writers, then phases of closed-loop writers of 100-byte values (so many
 * writers for so many seconds each), and after each phase every member's executed slot, its RSS
 * (with its anonymous and file-backed parts and its peak so far) and its main thread's V8 heap
 * (from its metrics). A run of `npm run bench` executes too few slots on a loaded machine to pass
 * two snapshots of a long interval; these phases do (docs/performance.md, "A snapshot every 8,192
 * slots or commands"). Nothing here asserts a number.
 *
 *   npx tsx bench/snapshot-memory.ts -- [--core JSON] [--phases 4x30,64x10,4x30,64x10,16x10]
 */
import fs from "node:fs";
import { benchFlags } from "./lib/flags.ts";
import { runLoad } from "./lib/load.ts";
import { loadAverage, progressOf } from "./lib/report.ts";
import { closeOnInterrupt, metricSum, OursCluster } from "./lib/systems.ts";

const usage = `usage: npx tsx bench/snapshot-memory.ts [options]

Phases of writers against a 3-replica paxos-lease cluster on loopback, with every member's
executed slot, RSS and main-thread heap after each.

options:
  --core JSON    core settings beside the runtime's (impl/core/config.ts), as a JSON object, e.g.
                 '{"snapshotIntervalSlots":1024,"snapshotIntervalCommands":9007199254740991}'
                 for the core's interval by slots alone (default: the runtime's own)
  --phases P     comma-separated WRITERSxSECONDS (default 4x30,64x10,4x30,64x10,16x10)
  --warmup S     seconds of 16 writers first (default 10)
  --help         print this help
`;
const flags = benchFlags(
  {
    core: { type: "string", default: "" },
    phases: { type: "string", default: "4x30,64x10,4x30,64x10,16x10" },
    warmup: { type: "string", default: "10" },
  },
  usage,
);
const core = flags.core === "" ? undefined : (JSON.parse(flags.core) as unknown);
const phases = flags.phases.split(",").map((p) => p.split("x").map(Number) as [number, number]);
const warmupMs = Number(flags.warmup) * 1000;
if (
  (core !== undefined && (typeof core !== "object" || core === null || Array.isArray(core))) ||
  phases.some(
    ([clients, seconds]) =>
      !(Number.isInteger(clients) && clients >= 1 && clients <= 256 && seconds !== undefined && seconds > 0),
  ) ||
  !(warmupMs >= 0)
) {
  process.stderr.write(usage);
  process.exit(2);
}

const progress = progressOf("snapshot-memory");

/** VmRSS, RssAnon, RssFile and VmHWM of a process, in MB, or null. */
function memory(pid: number | null): { rss: number; anon: number; file: number; peak: number } | null {
  if (pid === null) return null;
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    const mb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+)\\s+kB`).exec(status)?.[1] ?? 0) / 1024;
    return { rss: mb("VmRSS"), anon: mb("RssAnon"), file: mb("RssFile"), peak: mb("VmHWM") };
  } catch {
    return null;
  }
}

const cluster = new OursCluster(core as Record<string, unknown> | undefined);
closeOnInterrupt(() => [cluster]);
try {
  await cluster.start();
  const leader = await cluster.healthy(90_000);
  if (leader === null) throw new Error("no leader within 90 s");
  progress(`core ${flags.core === "" ? "(the runtime's)" : flags.core}; leader ${leader}; load ${loadAverage()}`);
  if (warmupMs > 0)
    await runLoad(cluster.driver(leader), { clients: 16, warmupMs: 0, durationMs: warmupMs, kind: "write" });
  for (const [clients, seconds] of phases) {
    const result = await runLoad(cluster.driver(leader), {
      clients,
      warmupMs: 0,
      durationMs: seconds * 1000,
      kind: "write",
    });
    const texts = await cluster.metrics();
    progress(
      `${clients} writers for ${seconds} s: ${result.throughput.toFixed(0)} writes/s, ${result.failed} failed (load ${loadAverage()})`,
    );
    cluster.members.forEach((m, i) => {
      const text = texts[i] ?? "";
      const mem = memory(cluster.pid(m));
      const heap = (name: string): string => (metricSum(text, name) / 2 ** 20).toFixed(1);
      progress(
        `  member ${m}${m === leader ? " (leader)" : ""}: slot ${metricSum(text, "paxos_lease_executed_slot")}, ` +
          (mem === null
            ? "not running"
            : `RSS ${mem.rss.toFixed(0)} MB (anonymous ${mem.anon.toFixed(0)}, file ${mem.file.toFixed(0)}, peak ${mem.peak.toFixed(0)})`) +
          `, main heap used ${heap("paxos_lease_process_nodejs_heap_size_used_bytes")} of ${heap("paxos_lease_process_nodejs_heap_size_total_bytes")} MB`,
      );
    });
  }
} finally {
  await cluster.close();
}

/**
 * The stale lease read after a replace, found from scratch in a fresh process: the CPU time of
 * the whole `npm run explore` command that docs/refinement.md gives (npm, the bundle's check that
 * it was built from the sources on disk, loading, booting, the prelude, the search, the replay and
 * the report), user and system time of every process it starts, read from this process's
 * children's times in /proc/self/stat. The bundle is built first (once) so that every timed run
 * finds it current, as a user's second run does. Each run must find the violation (exit 1, the
 * same number of states) or the bench exits 1. The machine is shared: the load average is printed
 * beside every figure.
 *
 * Run: `npm run bench:explore-fresh [-- --runs 5] [-- --json]`.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { benchFlags, refuseFlags } from "./lib/flags.ts";
import { median } from "./lib/load.ts";

const usage = `usage: npm run bench:explore-fresh -- [options]

options:
  --runs N   fresh processes (default 5)
  --json     print the report as JSON`;
const flags = benchFlags({ runs: { type: "string", default: "5" }, json: { type: "boolean", default: false } }, usage);
const runs = Number(flags.runs);
if (!Number.isSafeInteger(runs) || runs < 1)
  refuseFlags(`--runs must be a positive integer, got '${flags.runs}'`, usage);

const root = join(import.meta.dirname, "..");
/** The command of docs/refinement.md ("The stale lease read after a replace"). */
const command = [
  "run",
  "-s",
  "explore",
  "--",
  ...["--impl", "--mutant", "lease-read-before-pending-phase1", "--requests", "0", "--reads", "1"],
  ...["--crashes", "1", "--restarts", "0", "--prelude", "alpha", "--pick", "16", "--settle"],
  ...["--rates", "extremes", "--orders", "fifo", "--depth", "26", "--json"],
];

/** CPU seconds (user + system) of this process's waited-for children so far. */
function childrenCpuSeconds(): number {
  // Fields after the command name (which is in parentheses and may hold spaces): cutime and
  // cstime are the 14th and 15th of them, in clock ticks (100 per second on Linux).
  const stat = readFileSync("/proc/self/stat", "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

function explore(): { cpuSeconds: number; wallSeconds: number; states: number; check: string | null } {
  const cpu = childrenCpuSeconds();
  const started = performance.now();
  const r = spawnSync("npm", command, { cwd: root, encoding: "utf8" });
  const wallSeconds = (performance.now() - started) / 1000;
  const cpuSeconds = childrenCpuSeconds() - cpu;
  if (r.status !== 1) {
    process.stderr.write(`bench:explore-fresh: expected a violation (exit 1), got exit ${r.status}\n${r.stderr}`);
    process.exit(1);
  }
  const out = JSON.parse(r.stdout) as { distinctStates: number; violation: { check: string } | null };
  return { cpuSeconds, wallSeconds, states: out.distinctStates, check: out.violation?.check ?? null };
}

explore(); // builds the bundle if the sources changed
const results = [];
for (let i = 0; i < runs; i++) {
  const load = loadavg()[0]!;
  const r = explore();
  results.push({ ...r, load });
  if (!flags.json)
    process.stdout.write(
      `run ${i + 1}: ${r.cpuSeconds.toFixed(2)} CPU s, ${r.wallSeconds.toFixed(2)} s wall, ${r.states.toLocaleString("en-US")} states, ${r.check} (load ${load.toFixed(1)})\n`,
    );
}
if (new Set(results.map((r) => `${r.states} ${r.check}`)).size !== 1) {
  process.stderr.write("bench:explore-fresh: the runs found different results\n");
  process.exit(1);
}
const cpus = results.map((r) => r.cpuSeconds);
const summary = {
  runs,
  states: results[0]!.states,
  check: results[0]!.check,
  cpuSecondsMin: Math.min(...cpus),
  cpuSecondsMedian: median(cpus),
  cpuSecondsMax: Math.max(...cpus),
  wallSecondsMedian: median(results.map((r) => r.wallSeconds)),
  load: results.map((r) => r.load),
};
if (flags.json) process.stdout.write(`${JSON.stringify({ ...summary, results }, null, 2)}\n`);
else
  process.stdout.write(
    `stale read after a replace, fresh process: ${summary.cpuSecondsMin.toFixed(2)} to ${summary.cpuSecondsMax.toFixed(2)} CPU s (median ${summary.cpuSecondsMedian.toFixed(2)}), ${summary.states.toLocaleString("en-US")} states (load ${Math.min(...summary.load).toFixed(1)} to ${Math.max(...summary.load).toFixed(1)})\n`,
  );

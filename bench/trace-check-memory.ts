/**
 * The nemesis' trace checker's memory on a real run's traces: the traces of a nemesis run folder
 * (`--out` of `npm run nemesis`) checked as the run checks them (trace-checks.ts, `checkTraces`),
 * with the V8 heap sampled every `--every` steps (after a full garbage collection, with
 * `--expose-gc`: what the checker holds then, not what the collector has yet to reclaim) and the
 * process's peak RSS at the end. A burst
 * run (`--kinds burst,...`) writes the largest traces: 0.1 to 1 GB per replica. Prints the checks'
 * verdict beside the numbers; nothing here asserts a number (docs/performance.md, "The trace
 * checker's memory").
 *
 *   node --expose-gc --max-old-space-size=4096 --import tsx bench/trace-check-memory.ts --run out/nemesis/seed-S
 */
import fs from "node:fs";
import path from "node:path";
import v8 from "node:v8";
import { checkTraces } from "../refinement-tests/nemesis/trace-checks.ts";
import { NemesisViewRecorder } from "../refinement-tests/view/nemesis.ts";
import { benchFlags } from "./lib/flags.ts";
import { loadAverage } from "./lib/report.ts";

const usage = `usage: node --expose-gc --max-old-space-size=4096 --import tsx bench/trace-check-memory.ts --run DIR [options]

Check a nemesis run's traces (DIR/cluster/replica-*.trace.jsonl, with the core settings of
DIR/cluster/core.json) and report the checker's peak V8 heap (after a full collection, with
--expose-gc) and peak RSS.

options:
  --run DIR      a nemesis run folder (required)
  --every N      steps between heap samples (default 2000)
  --view         also record the run's trace view, as a nemesis run does (its page)
  --help         print this help
`;
const flags = benchFlags(
  {
    run: { type: "string", default: "" },
    every: { type: "string", default: "2000" },
    view: { type: "boolean", default: false },
  },
  usage,
);
if (flags.run === "") {
  process.stderr.write(`--run is required\n\n${usage}`);
  process.exit(2);
}
const cluster = path.join(flags.run, "cluster");
const files = new Map<number, string>();
let bytes = 0;
for (const name of fs.readdirSync(cluster)) {
  const m = /^replica-(\d+)\.trace\.jsonl$/.exec(name);
  if (m === null) continue;
  files.set(Number(m[1]), path.join(cluster, name));
  bytes += fs.statSync(path.join(cluster, name)).size;
}
const coreFile = path.join(cluster, "core.json");
const core = fs.existsSync(coreFile) ? (JSON.parse(fs.readFileSync(coreFile, "utf8")) as Record<string, unknown>) : {};
const every = Number(flags.every);
let peakHeap = 0;
let steps = 0;
const gc = (globalThis as { gc?: () => void }).gc;
const sample = (): void => {
  gc?.();
  const used = v8.getHeapStatistics().used_heap_size;
  if (used > peakHeap) peakHeap = used;
};
const started = performance.now();
const recorder = flags.view ? new NemesisViewRecorder({ originMs: 0 }) : null;
const report = checkTraces({
  files,
  core,
  onStep: (step, seen) => {
    recorder?.onStep(step, seen);
    if (++steps % every === 0) sample();
  },
});
sample();
const mb = (n: number): string => (n / 1e6).toFixed(0);
const counts = Object.entries(report.violationCounts).map(([check, n]) => `${check} ${n}`);
process.stdout.write(
  `${[
    `run ${flags.run}: ${files.size} traces${recorder === null ? "" : " (and the trace view recorded)"}, ${mb(bytes)} MB, ${report.steps} steps, ${report.lives} lives`,
    `verdict: ${report.ok ? "ok" : `violations: ${counts.join(", ")}`}`,
    `peak V8 heap (sampled every ${every} steps${gc === undefined ? "" : ", after a full collection"}) ${mb(peakHeap)} MB, peak RSS ${mb(process.resourceUsage().maxRSS * 1024)} MB`,
    `time ${((performance.now() - started) / 1000).toFixed(1)} s (load ${loadAverage()})`,
  ].join("\n")}\n`,
);

/**
 * `npm run bench:mutants [-- --engine explore|random|both] [--budget-seconds T] [--only NAME]`:
 * how fast each engine catches each mutant of the bug zoo, as a Markdown table for
 * docs/performance.md. It runs `npm run mutants -- --json` in a child process (one core) and
 * reports, per mutant and engine, the effort (explorer: distinct states and its bounds; random:
 * runs), wall and CPU seconds, and the best engine's. The targets: every mutant caught within
 * 10 s by at least one engine, median at most 1 s.
 *
 * CPU seconds are the figure to compare on a shared machine: other work inflates wall time, not
 * this process's CPU time. The load average before and after goes beside the numbers. Nothing is
 * asserted here; the exit status is the child's (1 when some mutant escaped every engine).
 */
import { spawnSync } from "node:child_process";
import { loadavg } from "node:os";
import { huntEffort } from "../refinement-tests/mutants/effort.ts";
import { benchFlags } from "./lib/flags.ts";

const values = benchFlags(
  {
    engine: { type: "string", default: "both" },
    "budget-seconds": { type: "string", default: "60" },
    only: { type: "string" },
  },
  `usage: npm run bench:mutants -- [--engine explore|random|both] [--budget-seconds T] [--only NAME] [--help]

How fast each engine catches each mutant of the bug zoo (npm run mutants -- --json), as a
Markdown table for docs/performance.md.
`,
);

interface Hunt {
  readonly engine: "explore" | "random";
  readonly caught: boolean;
  readonly seconds: number;
  readonly cpuSeconds: number;
  readonly effort: number;
  readonly check: string | null;
  readonly bounds: string;
  readonly traceActions: number | null;
}
interface Report {
  readonly allCaught: boolean;
  readonly medianSecondsBestEngine: number | null;
  readonly slowestSecondsBestEngine: number | null;
  readonly medianCpuSecondsBestEngine: number | null;
  readonly slowestCpuSecondsBestEngine: number | null;
  readonly mutants: readonly { readonly mutant: string; readonly mode: string; readonly hunts: readonly Hunt[] }[];
}

const loadBefore = loadavg()[0]!;
const args = [
  "--import",
  "tsx",
  new URL("../refinement-tests/cli/mutants.ts", import.meta.url).pathname,
  "--json",
  "--engine",
  values.engine,
  "--budget-seconds",
  values["budget-seconds"],
  ...(values.only === undefined ? [] : ["--only", values.only]),
];
const child = spawnSync(process.execPath, args, { encoding: "utf8", maxBuffer: 64 * 2 ** 20 });
if (child.stdout.trim() === "") {
  process.stderr.write(`bench:mutants: npm run mutants printed nothing\n${child.stderr}`);
  process.exit(2);
}
const report = JSON.parse(child.stdout) as Report;
const loadAfter = loadavg()[0]!;

const cell = (h: Hunt | undefined): string => {
  if (h === undefined) return "-";
  if (!h.caught) return `not caught (${h.seconds.toFixed(0)} s)`;
  return `${h.cpuSeconds.toFixed(2)} (${h.seconds.toFixed(2)} wall), ${huntEffort(h.engine, h.effort)}`;
};
const lines = [
  "| mutant | explorer: CPU s (wall), states | explorer bounds | random suite: CPU s (wall), runs | best CPU s |",
  "| --- | --- | --- | --- | --- |",
];
for (const m of report.mutants) {
  const explore = m.hunts.find((h) => h.engine === "explore");
  const random = m.hunts.find((h) => h.engine === "random");
  const caught = m.hunts.filter((h) => h.caught);
  const best = caught.length === 0 ? "NOT CAUGHT" : Math.min(...caught.map((h) => h.cpuSeconds)).toFixed(2);
  const bounds =
    explore === undefined ? (m.mode === "liveness" ? "(liveness: random only)" : "-") : `\`${explore.bounds}\``;
  lines.push(`| ${m.mutant} | ${cell(explore)} | ${bounds} | ${cell(random)} | ${best} |`);
}
const f = (x: number | null): string => (x === null ? "-" : x.toFixed(2));
lines.push(
  "",
  `Best engine per mutant: CPU median ${f(report.medianCpuSecondsBestEngine)} s, slowest ${f(report.slowestCpuSecondsBestEngine)} s; wall median ${f(report.medianSecondsBestEngine)} s, slowest ${f(report.slowestSecondsBestEngine)} s; ${report.allCaught ? "every mutant caught" : "SOME MUTANT ESCAPED"}. Node ${process.version}, load average ${loadBefore.toFixed(1)} before, ${loadAfter.toFixed(1)} after.`,
);
process.stdout.write(`${lines.join("\n")}\n`);
process.exit(child.status ?? 2);

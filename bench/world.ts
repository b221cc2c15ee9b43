/**
 * Checked world events per second on one core, and what the checking costs. The same generated
 * scenarios (safety suite, 3 replicas) run three ways:
 *   all     every check of proofs/ after every world step, linearizability of each run's history
 *   steps   every per-step check, no linearizability
 *   none    the world alone (replicas, network, clocks, clients), no checks
 * One event is one world step. Throughput is per CPU second of this process (robust to a busy
 * machine); scenario generation is excluded. Target: >= 50,000 checked events/s.
 *
 * Usage: npm run bench:world -- [--seconds 5] [--replicas 3|5] [--json]   (CPU seconds per mode)
 */
import fc from "fast-check";
import { boundsOf } from "../refinement-tests/suite.ts";
import { scenarioArbitrary, type Scenario } from "../refinement-tests/world/actions.ts";
import { runScenario } from "../refinement-tests/world/run.ts";
import { benchFlags, refuseFlags } from "./lib/flags.ts";

interface Options {
  readonly seconds: number;
  readonly replicas: number;
  readonly json: boolean;
}

const usage = `usage: npm run bench:world -- [--seconds 5] [--replicas 3|5] [--json] [--help]

Checked world events per CPU second on one core, with every check, per-step checks only, and none.

options:
  --seconds S     CPU seconds per mode (default 5)
  --replicas N    3 or 5 (default 3)
  --json          print the summary as JSON
  --help          print this help
`;

function parseOptions(): Options {
  const flags = benchFlags(
    {
      seconds: { type: "string", default: "5" },
      replicas: { type: "string", default: "3" },
      json: { type: "boolean", default: false },
    },
    usage,
  );
  const seconds = Number(flags.seconds);
  const replicas = Number(flags.replicas);
  if (!(seconds > 0)) refuseFlags(`--seconds must be a positive number, got '${flags.seconds}'`, usage);
  if (replicas !== 3 && replicas !== 5) refuseFlags(`--replicas must be 3 or 5, got '${flags.replicas}'`, usage);
  return { seconds, replicas, json: flags.json };
}

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

type Mode = "all" | "steps" | "none";

function measure(
  mode: Mode,
  scenarios: readonly Scenario[],
  replicas: number,
  seconds: number,
): { events: number; runs: number; cpu: number } {
  // Warm the JIT on a few runs first.
  for (const s of scenarios.slice(0, 20)) runScenario(s, { replicas, checks: mode });
  const start = cpuSeconds();
  let events = 0;
  let runs = 0;
  while (cpuSeconds() - start < seconds) {
    const r = runScenario(scenarios[runs % scenarios.length]!, { replicas, checks: mode });
    if (r.failure !== null) throw new Error(`bench scenario ${runs} failed: ${r.failure.check}`);
    events += r.events;
    runs++;
  }
  return { events, runs, cpu: cpuSeconds() - start };
}

const options = parseOptions();
const scenarios = fc.sample(scenarioArbitrary(boundsOf({ replicas: options.replicas })), { seed: 42, numRuns: 500 });
const results = (["all", "steps", "none"] as const).map((mode) => {
  const m = measure(mode, scenarios, options.replicas, options.seconds);
  return { mode, ...m, eventsPerSecond: Math.round(m.events / m.cpu) };
});
const byMode = Object.fromEntries(results.map((r) => [r.mode, r.eventsPerSecond])) as Record<Mode, number>;
const summary = {
  replicas: options.replicas,
  cpuSecondsPerMode: options.seconds,
  results,
  checkedEventsPerSecond: byMode.all,
  overheadOfAllChecks: Math.round((byMode.none / byMode.all - 1) * 100) / 100,
  overheadOfStepChecks: Math.round((byMode.none / byMode.steps - 1) * 100) / 100,
  target: 50_000,
};
if (options.json) {
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
} else {
  const lines = [
    `world benchmark, ${options.replicas} replicas, safety suite scenarios, ${options.seconds} CPU s per mode (one core)`,
    ...results.map(
      (r) =>
        `  ${r.mode.padEnd(5)}  ${r.eventsPerSecond.toLocaleString("en-US").padStart(9)} events/s  (${r.runs} runs, ${r.events.toLocaleString("en-US")} events)`,
    ),
    `  checking costs ${Math.round(summary.overheadOfAllChecks * 100)}% (per-step checks alone ${Math.round(summary.overheadOfStepChecks * 100)}%) on top of the world`,
    `  target >= 50,000 checked events/s: ${byMode.all >= 50_000 ? "met" : "NOT met"}`,
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}

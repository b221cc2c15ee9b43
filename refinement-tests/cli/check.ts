/**
 * `npm run check -- --runs N --seed S --replicas 3|5|7 [--liveness] [--json] [--shard i/n]
 *  [--workers K] [--mutant NAME]
 *  [--tuning own|drift|zero-delay|restart-lower|small-steps|long-values|bounded-sessions|opened-sessions
 *            |resume-transfers]
 *  [--replay SEED:PATH]`
 *
 * A long refinement campaign: N generated runs of the safety (or liveness) suite, every check of
 * proofs/ after every world step, linearizability at the end of each run. Runs are spread over
 * worker threads (default: every local core) and, with --shard i/n, deterministically over
 * machines: run k belongs to shard k mod n, and its verdict depends only on (seed, k).
 *
 * `--tuning` lays the same profile over every generated scenario as `npm run mutants -- --tuning`
 * does (suite.ts, `suiteTunings`), so that a run the mutant hunt reports replays here.
 *
 * Prints a progress bar on stderr and a summary (runs, events, events per second, coverage
 * counters, violations). On a violation: the shrunk trace as text and as a Mermaid diagram
 * under out/check/, the command that opens it in the trace explorer, and the replay command. Exit status: 0 clean, 1
 * violation (or a required
 * rare state never reached in a campaign of at least 100 runs), 2 bad arguments.
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { Command, InvalidArgumentError } from "commander";
import cliProgress from "cli-progress";
import {
  addTotals,
  emptyTotals,
  missingSometimes,
  shardRuns,
  type CampaignOptions,
  type CampaignTotals,
} from "../campaign.ts";
import type { Step } from "../../impl/core/testing/index.ts";
import { mutantNamed, mutants, type Mutant } from "../mutants/index.ts";
import { parseSuiteTuning, replayScenario, suiteProfile, suiteTunings, type SuiteTuning } from "../suite.ts";
import { runScenario, showScenario } from "../world/run.ts";
import { describeFailure, writeReport } from "../world/report.ts";

function int(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`expected an integer, got ${JSON.stringify(value)}`);
  return n;
}

const program = new Command()
  .name("check")
  .description("Run a refinement campaign over the simulated world: every check after every step.")
  .option("--runs <n>", "number of generated runs", int, 200)
  .option("--seed <s>", "campaign seed", int, 1)
  .option("--replicas <n>", "cluster size: 3, 5 or 7", int, 3)
  .option("--liveness", "liveness mode: after the faults, heal and require progress", false)
  .option("--json", "print the summary as JSON", false)
  .option("--shard <i/n>", "run only shard i of n (runs k with k mod n = i)", "0/1")
  .option("--workers <k>", "worker threads (default: every local core)", int)
  .option("--mutant <name>", `check a broken variant instead of impl/core (${mutants.map((m) => m.name).join(", ")})`)
  .option("--tuning <name>", `lay a tuning over every scenario (${suiteTunings.join(", ")})`, "own")
  .option("--replay <seed:path>", "replay one failing run as printed in a report")
  .option("--out <dir>", "where failure reports go", "out/check")
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
  .configureOutput({ writeErr: (s) => process.stderr.write(s) });

program.parse();
const opts = program.opts<{
  runs: number;
  seed: number;
  replicas: number;
  liveness: boolean;
  json: boolean;
  shard: string;
  workers?: number;
  mutant?: string;
  tuning: string;
  replay?: string;
  out: string;
}>();

function usage(message: string): never {
  process.stderr.write(`check: ${message}\n`);
  process.exit(2);
}

if (![3, 5, 7].includes(opts.replicas)) usage("--replicas must be 3, 5 or 7");
if (opts.runs < 1) usage("--runs must be at least 1");
const shardMatch = /^(\d+)\/(\d+)$/.exec(opts.shard);
if (shardMatch === null) usage(`--shard must look like i/n, not ${opts.shard}`);
const shard = { index: Number(shardMatch[1]), count: Number(shardMatch[2]) };
if (shard.count < 1 || shard.index >= shard.count) usage(`--shard ${opts.shard}: need 0 <= i < n`);
let tuning: SuiteTuning = "own";
try {
  tuning = parseSuiteTuning(opts.tuning);
} catch (error) {
  usage(`--tuning: ${(error as Error).message}`);
}
const tuned = suiteProfile(tuning);
let step: Step | undefined;
let laid: Mutant["randomTuning"];
try {
  const mutant = opts.mutant === undefined ? undefined : mutantNamed(opts.mutant);
  step = mutant?.step;
  laid = mutant?.randomTuning;
} catch (error) {
  usage((error as Error).message);
}
// A mutant's `randomTuning` (its feature level) is laid over every draw, as its random hunt lays it.
const profile = laid === undefined ? tuned : { ...tuned, tuningOverrides: { ...tuned?.tuningOverrides, ...laid } };
/** The suite options every run, report and replay of this campaign shares. */
const suite = { replicas: opts.replicas, ...(profile === undefined ? {} : { profile }) };

const flags = `--replicas ${opts.replicas}${opts.liveness ? " --liveness" : ""}${opts.mutant === undefined ? "" : ` --mutant ${opts.mutant}`}${tuned === undefined ? "" : ` --tuning ${tuning}`}`;

/**
 * Run the scenario at seed:path again with a trace, write the report, print where. With
 * `expected` (the shrunk scenario of the run that failed, as `showScenario` prints it), refuse to
 * report a replay that rebuilds any other scenario: the replay command would not reproduce it.
 */
function report(seed: number, path: string, name: string, expected?: string): boolean {
  const scenario = replayScenario(seed, path, suite);
  if (expected !== undefined && showScenario(scenario) !== expected) {
    process.stderr.write(
      `\nreplay ${seed}:${path} rebuilds another scenario than the run that failed; the failing one:\n${expected}\n`,
    );
    return false;
  }
  const run = runScenario(scenario, {
    replicas: opts.replicas,
    liveness: opts.liveness,
    record: true,
    ...(step === undefined ? {} : { step }),
  });
  if (run.failure === null) return false;
  const replay = `npm run check -- --replay ${seed}:${path} ${flags}`;
  const folder = writeReport(opts.out, {
    name,
    failure: run.failure,
    replay,
    scenario: showScenario(scenario),
    trace: run.trace ?? [],
    replicas: opts.replicas,
    clients: run.world.clients.map((c) => c.id),
    regression: {
      name,
      description: `(describe the bug) ${run.failure.check}: ${run.failure.message}`,
      replicas: opts.replicas,
      liveness: opts.liveness,
      mutant: opts.mutant ?? null,
      expect: opts.mutant === undefined ? "pass" : run.failure.check,
      scenario,
    },
  });
  process.stderr.write(
    `\n${describeFailure(run.failure)}\n\n  step through it: npm run view -- ${folder}\n  trace (text):    ${folder}/failure.txt\n  trace (Mermaid): ${folder}/trace.md\n  regression:      ${folder}/regression.json (fix the bug, then copy it to refinement-tests/regressions/)\n  replay:          ${replay}\n`,
  );
  return true;
}

if (opts.replay !== undefined) {
  const m = /^(-?\d+):([\d:]+)$/.exec(opts.replay);
  if (m === null) usage(`--replay must look like SEED:PATH, not ${opts.replay}`);
  const failed = report(Number(m[1]), m[2]!, `replay-${m[1]}`);
  if (!failed) process.stderr.write(`replay ${opts.replay}: the run passes every check\n`);
  process.exit(failed ? 1 : 0);
}

const campaign: Omit<CampaignOptions, "step"> = {
  ...suite,
  seed: opts.seed,
  runs: opts.runs,
  liveness: opts.liveness,
  shard,
};
const indices = shardRuns(campaign);
const workers = Math.max(1, Math.min(opts.workers ?? availableParallelism(), indices.length));
const bar = new cliProgress.SingleBar(
  {
    stream: process.stderr,
    format: "check [{bar}] {value}/{total} runs | {events} events | {eps} events/s | {duration_formatted}",
    hideCursor: true,
  },
  cliProgress.Presets.shades_classic,
);
bar.start(indices.length, 0, { events: 0, eps: 0 });
const started = performance.now();
const totals = emptyTotals();
let runsDone = 0;
let eventsDone = 0;

/** Worker threads do not inherit tsx's loader on Node 20: each registers it, then loads the worker module. */
const workerBoot = `import("tsx/esm/api").then(({ register }) => { register(); return import(${JSON.stringify(new URL("./check-worker.ts", import.meta.url).href)}); })`;

function share(w: number): number[] {
  return indices.filter((_, j) => j % workers === w);
}

let busyMs = 0;
const parts = await Promise.all(
  Array.from(
    { length: workers },
    (_, w) =>
      new Promise<CampaignTotals>((resolve, reject) => {
        const worker = new Worker(workerBoot, {
          eval: true,
          workerData: { indices: share(w), options: campaign, mutant: opts.mutant ?? null },
        });
        worker.on(
          "message",
          (
            m:
              | { type: "progress"; runs: number; events: number }
              | { type: "done"; totals: CampaignTotals; busyMs: number },
          ) => {
            if (m.type === "progress") {
              runsDone += m.runs;
              eventsDone += m.events;
              const secs = (performance.now() - started) / 1000;
              bar.update(runsDone, { events: eventsDone, eps: Math.round(eventsDone / Math.max(secs, 1e-3)) });
            } else {
              busyMs = Math.max(busyMs, m.busyMs);
              resolve(m.totals);
              void worker.terminate();
            }
          },
        );
        worker.on("error", reject);
      }),
  ),
);
bar.stop();
for (const p of parts) addTotals(totals, p);
const seconds = (performance.now() - started) / 1000;
const missing = missingSometimes(totals.counters, opts.liveness, tuning);
const failure = totals.failure;

const summary = {
  runs: totals.runs,
  shard: opts.shard,
  seed: opts.seed,
  replicas: opts.replicas,
  mode: opts.liveness ? "liveness" : "safety",
  mutant: opts.mutant ?? null,
  tuning,
  workers,
  seconds: Math.round(seconds * 100) / 100,
  events: totals.events,
  eventsPerSecond: Math.round(totals.events / Math.max(seconds, 1e-3)),
  /** Throughput while the workers ran (their start-up, which compiles the TypeScript, excluded). */
  eventsPerSecondRunning: Math.round(totals.events / Math.max(busyMs / 1000, 1e-3)),
  operations: totals.operations,
  counters: Object.fromEntries([...totals.counters].sort(([a], [b]) => (a < b ? -1 : 1))),
  missingSometimes: missing,
  violations: failure === null ? 0 : 1,
  failure:
    failure === null
      ? null
      : {
          check: failure.failure.check,
          level: failure.failure.level,
          message: failure.failure.message,
          run: failure.runIndex,
          replay: `npm run check -- --replay ${failure.seed}:${failure.path} ${flags}`,
        },
};

if (opts.json) {
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
} else {
  const lines = [
    `check: ${summary.runs} runs (shard ${opts.shard}, seed ${opts.seed}), ${opts.replicas} replicas, ${summary.mode}${opts.mutant === undefined ? "" : `, mutant ${opts.mutant}`}${tuning === "own" ? "" : `, tuning ${tuning}`}`,
    `  ${summary.events.toLocaleString("en-US")} world steps checked in ${summary.seconds} s on ${workers} workers: ${summary.eventsPerSecond.toLocaleString("en-US")} events/s (${summary.eventsPerSecondRunning.toLocaleString("en-US")} events/s once the workers had started)`,
    `  ${summary.operations.toLocaleString("en-US")} client operations, each run's history checked for linearizability`,
    "  coverage (rare states reached):",
    ...[...totals.counters]
      .filter(([k]) => k.startsWith("sometimes") || k.startsWith("liveness"))
      .sort()
      .map(([k, v]) => `    ${k.replace(/^sometimes: /, "")}: ${v}`),
    "  spec actions matched:",
    ...[...totals.counters]
      .filter(([k]) => /^(Voting|Consensus|Service|Lease):/.test(k))
      .sort()
      .map(([k, v]) => `    ${k}: ${v}`),
    `  violations: ${summary.violations}`,
  ];
  if (missing.length > 0) lines.push(`  never reached: ${missing.join(", ")}`);
  process.stdout.write(`${lines.join("\n")}\n`);
}

let exit = 0;
if (failure !== null) {
  const written = report(failure.seed, failure.path, `run-${failure.runIndex}-seed-${failure.seed}`, failure.scenario);
  if (!written)
    process.stderr.write(
      `run ${failure.runIndex} failed (${failure.failure.check}) but its replay does not reproduce it (the world is not deterministic): please report this\n`,
    );
  exit = 1;
}
if (missing.length > 0 && totals.runs >= 100) exit = 1;
process.exit(exit);

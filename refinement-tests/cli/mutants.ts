/**
 * `npm run mutants [-- --engine explore|random|both] [--json] [--only NAME] [--seed S]
 * [--budget-seconds T] [--replicas 3|5|7] [--tuning own|drift|zero-delay|restart-lower]
 * [--write-traces]`: the bug zoo's report card, per engine, replica count and tuning.
 *
 * Tunings (where each rule matters): `own`, the mutant's bounds for the explorer and the swarm's
 * draws for the random suite; `drift`, the largest drift bound the configuration accepts (10%:
 * the random suite runs every scenario with that tuning, the explorer's clocks run at its
 * extremes); `zero-delay`, one-way delays of zero in the random suite (every message deliverable
 * arrives before true time moves, which still moves in the drawn steps; a cut link or a paused
 * replica holds what is on the wire), and in the explorer without exception (`zeroDelay`: holds
 * become losses, partitions lose what is sent over a cut link and delay nothing, and clients,
 * crashes and partitions may act between any two deliveries); `restart-lower`, a restarted
 * replica's clock reads lower than any reading of its previous life, while messages of that life
 * may still be in flight (the explorer's; the random suite draws such restarts among others).
 *
 * - random: the ORDINARY suite (safety, or liveness for liveness bugs; the same generator as
 *   `npm run check`, nothing tuned per mutant), one generated run after another on this one thread
 *   until a check fails.
 * - explore: the exhaustive explorer of impl/core (`npm run explore -- --impl`) breadth first
 *   within the mutant's bounds (its `explore` field: the budgets the bug needs; `exploreWith` for
 *   5 and 7 replicas where those differ; `exploreZeroDelay` where zero delay needs another route),
 *   which gives the shortest trace.
 *
 * For each mutant and engine it prints: caught or not, seconds (and CPU seconds) to catch, runs or
 * states, the check that caught it, the bounds. `--write-traces` keeps each mutant's shortest
 * catching trace (from either engine) in refinement-tests/mutants/traces/, and at zero delay the
 * explorer's along a route of the mutant's own too (see `writeTrace`), which `npm test` re-runs
 * instead of searching. Exit status: 0 when every mutant is caught by some engine run,
 * 1 otherwise. Runs to catch are deterministic; seconds depend on the machine and its load.
 */
import { unlinkSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import { mutants, type Mutant } from "../mutants/index.ts";
import { huntBounds, zeroDelayBounds } from "../mutants/mutant.ts";
import type { Regression } from "../regressions/regressions.ts";
import { driftPpmMax, runOne, runSeed, suiteProfile, suiteTunings, type SuiteTuning } from "../suite.ts";
import { describeBounds, explore, replay } from "../explorer/explorer.ts";
import { defaultBounds, type ImplBounds } from "../explorer/model.ts";
import { traceFile, traceOf, tracesFolder } from "../mutants/traces.ts";
import { huntEffort } from "../mutants/effort.ts";

function int(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`expected an integer, got ${JSON.stringify(value)}`);
  return n;
}

const program = new Command()
  .name("mutants")
  .description(
    "Run the engines (random suites, exhaustive explorer) against every broken variant until each is caught.",
  )
  .addOption(
    new Option("--engine <engine>", "which engine hunts the mutants")
      .choices(["random", "explore", "both"])
      .default("both"),
  )
  .option("--json", "print the table as JSON", false)
  .option("--only <name>", "only this mutant")
  .option("--seed <s>", "random engine: campaign seed (run k uses the same seed as `npm run check` run k)", int, 1)
  .option("--budget-seconds <t>", "give up on a mutant (per engine) after this many CPU seconds", int, 60)
  .option("--write-traces", "keep each mutant's shortest catching trace in refinement-tests/mutants/traces/", false)
  .addOption(new Option("--replicas <n>", "initial members").choices(["3", "5", "7"]).default("3"))
  .addOption(
    new Option("--tuning <name>", "where the rules matter (see the module comment)")
      // small-steps, long-values, bounded-sessions, opened-sessions and resume-transfers are the random suite's alone
      // (`npm run check -- --tuning small-steps`): the explorer's bounds have no counterpart.
      .choices(
        suiteTunings.filter(
          (t) =>
            t !== "small-steps" &&
            t !== "long-values" &&
            t !== "bounded-sessions" &&
            t !== "opened-sessions" &&
            t !== "resume-transfers",
        ),
      )
      .default("own"),
  )
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
  .configureOutput({ writeErr: (s) => process.stderr.write(s) });
program.parse();
const opts = program.opts<{
  engine: "random" | "explore" | "both";
  json: boolean;
  only?: string;
  seed: number;
  budgetSeconds: number;
  writeTraces: boolean;
  replicas: string;
  tuning: SuiteTuning;
}>();
const replicas = Number(opts.replicas);
/** The random suite's profile for the tuning asked. */
const profile = suiteProfile(opts.tuning);
/** `npm run check`'s flag for it. */
const checkTuning = profile === undefined ? "" : ` --tuning ${opts.tuning}`;
const suiteFlags = replicas === 3 ? "" : ` --replicas ${replicas}`;

/** One engine's hunt for one mutant. */
interface Hunt {
  readonly engine: "random" | "explore";
  readonly caught: boolean;
  readonly seconds: number;
  readonly cpuSeconds: number;
  /** random: runs; explore: distinct states. */
  readonly effort: number;
  /** random: world events; explore: transitions. */
  readonly steps: number;
  /**
   * explore: every state within the bounds (its depth bound included) was expanded before the
   * budget ran out, without a catch (random: never).
   */
  readonly exhausted: boolean;
  readonly check: string | null;
  readonly expected: boolean;
  readonly message: string | null;
  /** explore: the bounds searched; random: the suite. */
  readonly bounds: string;
  /** Actions in the catching trace (random: shrunk). */
  readonly traceActions: number | null;
  readonly replay: string | null;
  readonly trace: Regression | null;
}

interface Row {
  readonly mutant: string;
  readonly mode: string;
  readonly replicas: number;
  readonly tuning: string;
  readonly hunts: readonly Hunt[];
}

const selected = opts.only === undefined ? mutants : mutants.filter((m) => m.name === opts.only);
if (selected.length === 0) {
  process.stderr.write(`mutants: no mutant named ${opts.only}\n`);
  process.exit(2);
}

function cpuNow(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function huntRandom(m: Mutant): Hunt {
  const liveness = m.mode === "liveness";
  const started = performance.now();
  const cpu = cpuNow();
  let runs = 0;
  let events = 0;
  while (cpuNow() - cpu < opts.budgetSeconds) {
    const seed = runSeed(opts.seed, runs);
    const own =
      m.randomTuning === undefined
        ? profile
        : { ...profile, tuningOverrides: { ...profile?.tuningOverrides, ...m.randomTuning } };
    const suite = { liveness, replicas, ...(own === undefined ? {} : { profile: own }) };
    const one = runOne(seed, { ...suite, step: m.step, shrink: false });
    runs++;
    events += one.first.events;
    if (one.failed === null) continue;
    // A run the real replica fails too shows a bug of the real replica, not the mutant's: it is
    // reported and skipped.
    const real = runOne(seed, { ...suite, shrink: false }).failed;
    if (real !== null) {
      process.stderr.write(
        `${m.name} [random]: run ${runs} (seed ${opts.seed}) fails ${real.failure.check} with the real replica too: skipped (replay: npm run check -- --replay ${seed}:${real.path}${suiteFlags}${liveness ? " --liveness" : ""}${checkTuning}; campaign: npm run check -- --runs ${runs} --seed ${opts.seed}${suiteFlags}${liveness ? " --liveness" : ""}${checkTuning} --workers 1)\n`,
      );
      continue;
    }
    const seconds = (performance.now() - started) / 1000;
    const cpuSeconds = cpuNow() - cpu;
    const check = one.failed.failure.check;
    let trace: Regression | null = null;
    if (opts.writeTraces) {
      const shrunk = runOne(seed, { ...suite, step: m.step, shrink: true }).failed!;
      // Shrinking keeps the mutant's failure; it must not land on a scenario the real replica fails.
      const realShrunk = replay({
        name: m.name,
        description: "",
        replicas,
        liveness,
        mutant: null,
        expect: "",
        scenario: shrunk.scenario,
      });
      const kept = realShrunk === null ? shrunk : one.failed;
      trace = {
        name: m.name,
        description: `${m.description}: caught by the random suite (seed ${opts.seed}, run ${runs}${kept === shrunk ? ", shrunk" : ""}${suiteFlags}${opts.tuning === "own" ? "" : `, tuning ${opts.tuning}`})`,
        replicas,
        liveness,
        mutant: m.name,
        expect: kept.failure.check,
        scenario: kept.scenario,
      };
    }
    return {
      engine: "random",
      caught: true,
      seconds,
      cpuSeconds,
      effort: runs,
      steps: events,
      exhausted: false,
      check,
      expected: m.expectedCatch.some((e) => check.startsWith(e)),
      message: one.failed.failure.message,
      bounds: liveness ? "liveness suite" : "safety suite",
      traceActions: trace?.scenario.actions.length ?? one.failed.scenario.actions.length,
      replay: `npm run mutants -- --engine random --only ${m.name} --seed ${opts.seed}${suiteFlags}${opts.tuning === "own" ? "" : ` --tuning ${opts.tuning}`}`,
      trace,
    };
  }
  return {
    engine: "random",
    caught: false,
    seconds: (performance.now() - started) / 1000,
    cpuSeconds: cpuNow() - cpu,
    effort: runs,
    steps: events,
    exhausted: false,
    check: null,
    expected: false,
    message: null,
    bounds: liveness ? "liveness suite" : "safety suite",
    traceActions: null,
    replay: null,
    trace: null,
  };
}

/**
 * A mutant's bounds at zero one-way delay: no message is held back (a held one may arrive at any
 * later instant, or never: what is left of it is a loss, so each hold becomes a loss), partitions
 * lose what is sent over a cut link and delay nothing (`cuts: "drop"`: a link is cut only while
 * nothing is in flight on it), and the environment (clients, crashes, partitions) may act between
 * any two deliveries. Every message is either lost or delivered before true time moves.
 */
function zeroDelay(own: ImplBounds): ImplBounds {
  return { ...own, delays: 0, losses: own.losses + own.delays, cuts: "drop", environment: "anytime" };
}

function huntExplore(m: Mutant): Hunt {
  // At zero delay, a route of the mutant's own for it, held to zero delay; else its bounds, every hold made a loss.
  const zeroDelayRoute = opts.tuning === "zero-delay" ? zeroDelayBounds(m, replicas) : undefined;
  const where = zeroDelayRoute ?? huntBounds(m, replicas) ?? { bounds: {}, depth: 12 };
  const own = { ...defaultBounds, ...where.bounds, replicas };
  const bounds =
    zeroDelayRoute !== undefined
      ? { ...own, delays: 0, cuts: "drop" as const }
      : opts.tuning === "drift"
        ? { ...own, overrides: { ...own.overrides, clockDriftPpmMax: driftPpmMax } }
        : opts.tuning === "restart-lower"
          ? { ...own, restartClocks: "lower" as const }
          : opts.tuning === "zero-delay"
            ? zeroDelay(own)
            : own;
  const walkSeed = where.walkSeed ?? 1;
  const flags = `${describeBounds(bounds)} --depth ${where.depth}${where.mode === "random" ? ` --mode random${walkSeed === 1 ? "" : ` --walk-seed ${walkSeed}`}` : ""}`;
  const cpu = cpuNow();
  const outcome = explore({
    bounds,
    mode: where.mode ?? "bfs",
    depth: where.depth,
    maxStates: 50_000_000,
    maxSeconds: opts.budgetSeconds,
    now: () => cpuNow() * 1000,
    walkSeed,
    mutant: { name: m.name, step: m.step },
  });
  const r = outcome.result;
  const check = outcome.regression?.expect ?? null;
  return {
    engine: "explore",
    caught: check !== null,
    seconds: outcome.seconds,
    cpuSeconds: cpuNow() - cpu,
    effort: r.distinct,
    steps: r.transitions,
    // Breadth first to its depth bound (or to the end of the space) before the budget ran out.
    exhausted:
      check === null &&
      (where.mode ?? "bfs") === "bfs" &&
      (r.complete || r.depth >= where.depth) &&
      cpuNow() - cpu < opts.budgetSeconds,
    check,
    expected: check !== null && m.expectedCatch.some((e) => check.startsWith(e)),
    message: outcome.replayed?.message ?? null,
    bounds: flags,
    traceActions: outcome.regression?.scenario.actions.length ?? null,
    replay: check === null ? null : `npm run explore -- --impl ${flags} --mutant ${m.name}`,
    trace:
      outcome.regression === null
        ? null
        : {
            ...outcome.regression,
            name: m.name,
            description: `${m.description}: caught by the explorer (${flags}), shortest trace`,
          },
  };
}

const engines: ("random" | "explore")[] = opts.engine === "both" ? ["explore", "random"] : [opts.engine];
const rows: Row[] = [];
for (const m of selected) {
  const hunts: Hunt[] = [];
  for (const engine of engines) {
    // A liveness bug is hunted by the explorer where its mutant says: with bounded liveness
    // (`liveness` in its bounds), or where a safety check catches it too (a removed replica's
    // disruption).
    if (engine === "explore" && m.mode === "liveness" && huntBounds(m, replicas) === undefined) continue;
    const h = engine === "random" ? huntRandom(m) : huntExplore(m);
    hunts.push(h);
    if (!opts.json)
      process.stderr.write(
        `${m.name} [${engine}]: ${h.caught ? `caught by ${h.check} in ${h.seconds.toFixed(2)} s (${huntEffort(engine, h.effort)})` : "NOT CAUGHT"}\n`,
      );
  }
  rows.push({ mutant: m.name, mode: m.mode, replicas, tuning: opts.tuning, hunts });
  if (opts.writeTraces) writeTrace(m, hunts);
}

/**
 * Keep the shortest catching trace (fewest actions) that replays with an expected check: this
 * run's, or the one already committed if it is shorter, still catches the mutant and still passes
 * with the real replica. At zero delay, along a route of the mutant's own (`exploreZeroDelay`),
 * the explorer's catch is kept too where the shortest is another engine's
 * (`NAME@rN-zero-delay-explorer.json`): `npm test` requires the explorer's zero-delay traces to
 * deliver every message at the instant it was sent, and a route no committed trace of the
 * explorer follows would go unchecked.
 */
function writeTrace(m: Mutant, hunts: readonly Hunt[]): void {
  const traces = hunts.filter((h) => h.trace !== null && h.expected).map((h) => h.trace!);
  const shortest = keepShortest(m, traces, traceFile(m.name, replicas, opts.tuning));
  const ownRoute =
    opts.tuning === "zero-delay"
      ? zeroDelayBounds(m, replicas) !== undefined
      : opts.tuning === "own" && huntBounds(m, replicas)?.keepTrace === true;
  if (!ownRoute) return;
  const explorers = hunts.filter((h) => h.engine === "explore" && h.trace !== null && h.expected).map((h) => h.trace!);
  const file = traceFile(m.name, replicas, opts.tuning, "explorer");
  if (shortest !== null && shortest.description.includes("caught by the explorer")) {
    // The shortest is the explorer's own: no second copy.
    if (traceOf(m.name, file) !== null) unlinkSync(join(tracesFolder, file));
    return;
  }
  keepShortest(m, explorers, file);
}

/** Keep the shortest of `traces` and the committed trace in `file` (if it still holds); returns the kept one. */
function keepShortest(m: Mutant, traces: Regression[], file: string): Regression | null {
  const committed = traceOf(m.name, file);
  const holds =
    committed !== null && replay(committed, m.step)?.check === committed.expect && replay(committed) === null;
  const all = holds ? [...traces, committed] : [...traces];
  if (all.length === 0) return committed;
  all.sort((a, b) => a.scenario.actions.length - b.scenario.actions.length);
  if (all[0] !== committed) writeFileSync(join(tracesFolder, file), `${JSON.stringify(all[0], null, 1)}\n`);
  return all[0]!;
}

function median(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

const best = rows.map((r) => {
  const caught = r.hunts.filter((h) => h.caught);
  return caught.length === 0 ? null : Math.min(...caught.map((h) => h.seconds));
});
// CPU seconds too: on a shared machine other work inflates wall time, not this process's CPU time.
const bestCpu = rows.map((r) => {
  const caught = r.hunts.filter((h) => h.caught);
  return caught.length === 0 ? null : Math.min(...caught.map((h) => h.cpuSeconds));
});
const summary = {
  engines,
  replicas,
  tuning: opts.tuning,
  seed: opts.seed,
  budgetSeconds: opts.budgetSeconds,
  budgetClock: "cpu",
  load: loadavg()[0]!,
  allCaught: best.every((b) => b !== null),
  medianSecondsBestEngine: median(best.filter((b): b is number => b !== null)),
  slowestSecondsBestEngine: best.some((b) => b === null) ? null : Math.max(...(best as number[])),
  medianCpuSecondsBestEngine: median(bestCpu.filter((b): b is number => b !== null)),
  slowestCpuSecondsBestEngine: bestCpu.some((b) => b === null) ? null : Math.max(...(bestCpu as number[])),
  perEngine: Object.fromEntries(
    engines.map((e) => {
      const hs = rows.flatMap((r) => r.hunts.filter((h) => h.engine === e));
      const caught = hs.filter((h) => h.caught);
      return [
        e,
        {
          hunted: hs.length,
          caught: caught.length,
          medianSeconds: median(caught.map((h) => h.seconds)),
          medianCpuSeconds: median(caught.map((h) => h.cpuSeconds)),
        },
      ];
    }),
  ),
};

if (opts.json) {
  const strip = (h: Hunt) => ({ ...h, trace: undefined });
  process.stdout.write(
    `${JSON.stringify({ ...summary, mutants: rows.map((r) => ({ ...r, hunts: r.hunts.map(strip) })) }, null, 2)}\n`,
  );
} else {
  const header = ["mutant", "engine", "caught", "seconds", "cpu s", "runs/states", "caught by", "bounds"];
  const table = rows.flatMap((r) =>
    r.hunts.map((h) => [
      r.mutant,
      h.engine,
      h.caught ? "yes" : "NO",
      h.seconds.toFixed(2),
      h.cpuSeconds.toFixed(2),
      String(h.effort),
      h.check === null ? "-" : `${h.check}${h.expected ? "" : " (unexpected)"}`,
      h.engine === "explore" ? h.bounds : "",
    ]),
  );
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (i >= 3 && i <= 5 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ");
  process.stdout.write(`${[line(header), line(widths.map((w) => "-".repeat(w))), ...table.map(line)].join("\n")}\n`);
  for (const [e, s] of Object.entries(summary.perEngine))
    process.stdout.write(
      `\n${e}: ${s.caught}/${s.hunted} caught; median ${s.medianSeconds === null ? "-" : s.medianSeconds.toFixed(2)} s`,
    );
  process.stdout.write(
    `\nbest engine per mutant: ${best.filter((b) => b !== null).length}/${rows.length} caught; median ${summary.medianSecondsBestEngine?.toFixed(2) ?? "-"} s, slowest ${summary.slowestSecondsBestEngine?.toFixed(2) ?? "-"} s; CPU median ${summary.medianCpuSecondsBestEngine?.toFixed(2) ?? "-"} s, slowest ${summary.slowestCpuSecondsBestEngine?.toFixed(2) ?? "-"} s (seed ${opts.seed}, ${replicas} replicas, tuning ${opts.tuning}, one core, load ${summary.load.toFixed(1)})\n`,
  );
}
process.exit(summary.allCaught ? 0 : 1);

/**
 * `npm run bench:explore -- --impl`: the exhaustive explorer of impl/core on one core. First the
 * baseline, 3 replicas with 1 write, 1 read, 1 crash (and its restart) and no reconfiguration,
 * explored breadth first to each depth bound: distinct states, transitions, whether the search
 * was complete within the bound, wall and CPU seconds, distinct states per CPU second. Then how the
 * count grows with each budget: the baseline at one depth with one more of each budget in turn.
 *
 * The growth rows include the baseline with no restart (the crashed replica is then down for
 * good), reduced and unreduced (`reduce: false`): what the state reduction merges.
 *
 * With `--profile-checks`, the baseline at the growth depth and the stale lease read's search,
 * with every check of proofs/ and every part of the explorer's own work timed (a table per run).
 * With `--reduction`, every mutant the explorer hunts breadth first, at its bounds, with and
 * without the reduction: states, CPU seconds, the check that caught it and the trace's length.
 *
 * Then, with `--large N`, one long run of the baseline (deep enough that only the state limit stops
 * it) to N distinct states: states per CPU second over millions of states, and memory: the
 * visited set with its parent links (bytes per state), the process's peak resident set, and the
 * resident set and heap at the end.
 *
 * The explorer is single-threaded; CPU seconds (user + system of this process) are the figure to
 * compare, since other work on a shared machine inflates wall time (V8's helper threads count
 * towards CPU, so it is an upper bound of one core's time). Nothing here is asserted: the numbers
 * go to docs/refinement.md with the machine's load at the time.
 */
import { loadavg } from "node:os";
import { defaultBounds, ImplModel, type ImplBounds } from "../refinement-tests/explorer/model.ts";
import { breadthFirst } from "../refinement-tests/explorer/search.ts";
import { explore, profileTable, type ProfileRow } from "../refinement-tests/explorer/explorer.ts";
import { mutants, mutantNamed } from "../refinement-tests/mutants/index.ts";

/** What to measure. */
export interface ImplBenchOptions {
  readonly depths: readonly number[];
  readonly growthDepth: number;
  readonly orders: "all" | "fifo";
  /** Distinct states for the long run (0: none). */
  readonly large: number;
  /** Time every check and the explorer's parts on the baseline and on the stale lease read's search. */
  readonly profileChecks: boolean;
  /** Every mutant the explorer hunts breadth first, searched with and without the state reduction. */
  readonly reduction: boolean;
  readonly json: boolean;
}

interface Row {
  readonly label: string;
  readonly depth: number;
  /** The deepest level reached (below the bound when the state limit cut the search). */
  readonly reachedDepth: number;
  readonly distinctStates: number;
  readonly transitions: number;
  readonly complete: boolean;
  readonly seconds: number;
  readonly cpuSeconds: number;
  readonly statesPerCpuSecond: number;
  /** The visited set's fingerprints and each state's parent link and transition number. */
  readonly visitedBytes: number;
  /** The process's peak resident set so far (MB; the process also holds tsx and the code). */
  readonly peakRssMb: number;
  readonly rssMb: number;
  readonly heapUsedMb: number;
}

const mb = (bytes: number): number => Math.round((bytes / 2 ** 20) * 10) / 10;

function measure(label: string, bounds: ImplBounds, depth: number, maxStates = 20_000_000, progress = false): Row {
  const model = new ImplModel(bounds);
  const cpu = process.cpuUsage();
  const started = performance.now();
  const r = breadthFirst(model, {
    depth,
    maxStates,
    ...(progress
      ? {
          onProgress: (p) =>
            process.stderr.write(
              `\r${label}: ${p.distinct} states, depth ${p.depth}, ${Math.round(p.distinct / (p.ms / 1000))} states/s   `,
            ),
        }
      : {}),
  });
  if (progress) process.stderr.write("\n");
  const used = process.cpuUsage(cpu);
  const cpuSeconds = (used.user + used.system) / 1e6;
  if (r.counterexample !== null)
    throw new Error(`${label}: ${r.counterexample.violation.check}: ${r.counterexample.violation.message}`);
  return {
    label,
    depth,
    reachedDepth: r.depth,
    distinctStates: r.distinct,
    transitions: r.transitions,
    // Complete within the bound: every state at depth < bound was expanded.
    complete: r.depth >= depth || r.complete,
    seconds: (performance.now() - started) / 1000,
    cpuSeconds,
    statesPerCpuSecond: Math.round(r.distinct / Math.max(cpuSeconds, 1e-9)),
    visitedBytes: r.visitedBytes,
    peakRssMb: mb(process.resourceUsage().maxRSS * 1024),
    rssMb: mb(process.memoryUsage().rss),
    heapUsedMb: mb(process.memoryUsage().heapUsed),
  };
}

/** Run the benchmark and print it. */
export async function benchImpl(o: ImplBenchOptions): Promise<void> {
  const baseline: ImplBounds = { ...defaultBounds, writes: 1, reads: 1, crashes: 1, orders: o.orders };
  const say = (r: Row): void => {
    if (!o.json)
      process.stdout.write(
        `${r.label.padEnd(28)} depth ${String(r.reachedDepth === r.depth ? r.depth : `${r.reachedDepth}/${r.depth}`).padStart(2)}  ${String(r.distinctStates).padStart(9)} states  ${String(r.transitions).padStart(10)} transitions  ${r.complete ? "complete" : "cut     "}  ${r.seconds.toFixed(1).padStart(7)} s  cpu ${r.cpuSeconds.toFixed(1).padStart(7)} s  ${String(r.statesPerCpuSecond).padStart(7)} states/cpu-s  visited ${mb(r.visitedBytes).toFixed(1).padStart(6)} MB  peak rss ${r.peakRssMb.toFixed(0).padStart(5)} MB\n`,
      );
  };
  const load = loadavg()[0]!;
  if (!o.json)
    process.stdout.write(
      `impl/core explorer, 3 replicas, 1 write, 1 read, 1 crash, orders ${o.orders} (node ${process.version}, load ${load.toFixed(1)})\n`,
    );
  const byDepth: Row[] = [];
  for (const d of o.depths) {
    const r = measure("baseline", baseline, d);
    byDepth.push(r);
    say(r);
  }
  const extras: [string, Partial<ImplBounds>][] = [
    ["+1 write", { writes: 2 }],
    ["+1 read", { reads: 2 }],
    ["+1 crash", { crashes: 2 }],
    ["+1 loss", { losses: 1 }],
    ["+1 duplicate", { duplicates: 1 }],
    ["+1 held message", { delays: 1 }],
    ["+1 partition", { partitions: 1 }],
    ["5 replicas", { replicas: 5 }],
    ["every clock-rate assignment", { rates: "extremes" }],
    // The crashed replica is down for good: the reduction merges what only its restart would read.
    ["no restart", { restarts: 0 }],
    ["no restart, unreduced", { restarts: 0, reduce: false }],
    ["no restart, every rate", { restarts: 0, rates: "extremes" }],
    ["no restart, every rate, unreduced", { restarts: 0, rates: "extremes", reduce: false }],
  ];
  const growth: Row[] = [measure("baseline", baseline, o.growthDepth)];
  say(growth[0]!);
  for (const [label, extra] of extras) {
    const r = measure(label, { ...baseline, ...extra }, o.growthDepth);
    growth.push(r);
    say(r);
  }
  let large: Row | null = null;
  if (o.large > 0) {
    large = measure(`baseline to ${o.large} states`, baseline, 1000, o.large, !o.json);
    say(large);
    if (!o.json)
      process.stdout.write(
        `  ${(large.visitedBytes / large.distinctStates).toFixed(1)} bytes per state in the visited set and parent links; rss at the end ${large.rssMb} MB, heap ${large.heapUsedMb} MB (load ${loadavg()[0]!.toFixed(1)})\n`,
      );
  }
  const profiles = o.profileChecks ? profileRuns(baseline, o) : null;
  const reduction = o.reduction ? reductionRuns(o) : null;
  await Promise.resolve();
  if (o.json)
    process.stdout.write(
      `${JSON.stringify({ bench: "explore-impl", node: process.version, load, orders: o.orders, byDepth, growthDepth: o.growthDepth, growth, large, profiles, reduction })}\n`,
    );
}

/** The baseline at the growth depth and the stale lease read's search, with every check timed. */
function profileRuns(baseline: ImplBounds, o: ImplBenchOptions): { label: string; rows: readonly ProfileRow[] }[] {
  const stale = mutantNamed("lease-read-before-pending-phase1");
  const runs: [string, Parameters<typeof explore>[0]][] = [
    [
      `baseline, depth ${o.growthDepth}`,
      { bounds: baseline, mode: "bfs", depth: o.growthDepth, maxStates: 20_000_000, profileChecks: true },
    ],
    [
      `${stale.name} (its explorer bounds)`,
      {
        bounds: { ...defaultBounds, ...stale.explore!.bounds },
        mode: "bfs",
        depth: stale.explore!.depth,
        maxStates: 20_000_000,
        mutant: { name: stale.name, step: stale.step },
        profileChecks: true,
      },
    ],
  ];
  const out: { label: string; rows: readonly ProfileRow[] }[] = [];
  for (const [label, options] of runs) {
    const x = explore(options);
    const rows = x.profile ?? [];
    out.push({ label, rows });
    if (!o.json)
      process.stdout.write(
        `\n${label}: ${x.result.distinct} states, ${x.result.transitions} transitions, ${x.seconds.toFixed(1)} s with the clocks read (load ${loadavg()[0]!.toFixed(1)})\n${profileTable(rows)}\n`,
      );
  }
  return out;
}

interface ReductionRow {
  readonly mutant: string;
  readonly reduced: { states: number; cpuSeconds: number; check: string | null; length: number | null };
  readonly unreduced: { states: number; cpuSeconds: number; check: string | null; length: number | null };
}

/** Each mutant the explorer hunts breadth first, at its bounds, with and without the reduction. */
function reductionRuns(o: ImplBenchOptions): ReductionRow[] {
  const rows: ReductionRow[] = [];
  if (!o.json)
    process.stdout.write(
      "\n| mutant | reduced: states, CPU s | unreduced: states, CPU s | check (trace length) |\n| --- | --- | --- | --- |\n",
    );
  for (const m of mutants) {
    const e = m.explore;
    if (e === undefined || (e.mode ?? "bfs") !== "bfs") continue;
    const run = (reduce: boolean) => {
      const cpu = process.cpuUsage();
      const x = explore({
        bounds: { ...defaultBounds, ...e.bounds, reduce },
        mode: "bfs",
        depth: e.depth,
        maxStates: 20_000_000,
        mutant: { name: m.name, step: m.step },
      });
      const used = process.cpuUsage(cpu);
      return {
        states: x.result.distinct,
        cpuSeconds: (used.user + used.system) / 1e6,
        check: x.regression?.expect ?? null,
        length: x.result.counterexample?.length ?? null,
      };
    };
    const row = { mutant: m.name, reduced: run(true), unreduced: run(false) };
    rows.push(row);
    if (!o.json) {
      const same = row.reduced.check === row.unreduced.check && row.reduced.length === row.unreduced.length;
      process.stdout.write(
        `| ${m.name} | ${row.reduced.states}, ${row.reduced.cpuSeconds.toFixed(2)} | ${row.unreduced.states}, ${row.unreduced.cpuSeconds.toFixed(2)} | ${row.reduced.check ?? "not caught"} (${row.reduced.length ?? "-"})${same ? "" : ` UNREDUCED: ${row.unreduced.check ?? "not caught"} (${row.unreduced.length ?? "-"})`} |\n`,
      );
    }
  }
  if (!o.json) process.stdout.write(`(load ${loadavg()[0]!.toFixed(1)})\n`);
  return rows;
}

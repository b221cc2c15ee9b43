/**
 * `npm run bench:explore -- --impl`: the exhaustive explorer of impl/core on one core. First the
 * baseline, 3 replicas with 1 write, 1 read, 1 crash (and its restart) and no reconfiguration,
 * explored breadth first to each depth bound: distinct states, transitions, whether the search
 * was complete within the bound, wall and CPU seconds, distinct states per CPU second. Then how the
 * count grows with each budget: the baseline at one depth with one more of each budget in turn.
 *
 * The explorer is single-threaded; CPU seconds (user + system of this process) are the figure to
 * compare, since other work on a shared machine inflates wall time (V8's helper threads count
 * towards CPU, so it is an upper bound of one core's time). Nothing here is asserted: the numbers
 * go to docs/refinement.md with the machine's load at the time.
 */
import { loadavg } from "node:os";
import { defaultBounds, ImplModel, type ImplBounds } from "../refinement-tests/explorer/model.ts";
import { breadthFirst } from "../refinement-tests/explorer/search.ts";

/** What to measure. */
export interface ImplBenchOptions {
  readonly depths: readonly number[];
  readonly growthDepth: number;
  readonly orders: "all" | "fifo";
  readonly json: boolean;
}

interface Row {
  readonly label: string;
  readonly depth: number;
  readonly distinctStates: number;
  readonly transitions: number;
  readonly complete: boolean;
  readonly seconds: number;
  readonly cpuSeconds: number;
  readonly statesPerCpuSecond: number;
}

function measure(label: string, bounds: ImplBounds, depth: number): Row {
  const model = new ImplModel(bounds);
  const cpu = process.cpuUsage();
  const started = performance.now();
  const r = breadthFirst(model, { depth, maxStates: 20_000_000 });
  const used = process.cpuUsage(cpu);
  const cpuSeconds = (used.user + used.system) / 1e6;
  if (r.counterexample !== null)
    throw new Error(`${label}: ${r.counterexample.violation.check}: ${r.counterexample.violation.message}`);
  return {
    label,
    depth,
    distinctStates: r.distinct,
    transitions: r.transitions,
    // Complete within the bound: every state at depth < bound was expanded.
    complete: r.depth >= depth || r.complete,
    seconds: (performance.now() - started) / 1000,
    cpuSeconds,
    statesPerCpuSecond: Math.round(r.distinct / Math.max(cpuSeconds, 1e-9)),
  };
}

/** Run the benchmark and print it. */
export async function benchImpl(o: ImplBenchOptions): Promise<void> {
  const baseline: ImplBounds = { ...defaultBounds, writes: 1, reads: 1, crashes: 1, orders: o.orders };
  const say = (r: Row): void => {
    if (!o.json)
      process.stdout.write(
        `${r.label.padEnd(28)} depth ${String(r.depth).padStart(2)}  ${String(r.distinctStates).padStart(9)} states  ${String(r.transitions).padStart(10)} transitions  ${r.seconds.toFixed(1).padStart(7)} s  cpu ${r.cpuSeconds.toFixed(1).padStart(7)} s  ${String(r.statesPerCpuSecond).padStart(7)} states/cpu-s\n`,
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
  ];
  const growth: Row[] = [measure("baseline", baseline, o.growthDepth)];
  say(growth[0]!);
  for (const [label, extra] of extras) {
    const r = measure(label, { ...baseline, ...extra }, o.growthDepth);
    growth.push(r);
    say(r);
  }
  await Promise.resolve();
  if (o.json)
    process.stdout.write(
      `${JSON.stringify({ bench: "explore-impl", node: process.version, load, orders: o.orders, byDepth, growthDepth: o.growthDepth, growth })}\n`,
    );
}

/**
 * `npm run bench:explore [-- --runs N] [--json]`: how long exhaustive exploration of Paxos
 * with 3 acceptors, 2 values and ballots 0..2 takes with Inv checked on every distinct state
 * and the refinement to Voting checked on every transition (the configuration reviewers
 * rerun after every protocol change; target: under 10 s on one core), then the same with the
 * refinement to Consensus added. Each configuration runs N times (default 3); the fastest
 * run is the one reported, because other processes on a shared machine only ever slow a run
 * down. Besides wall-clock seconds it reports the process's CPU seconds (user + system) for
 * that run, which other processes do not inflate (V8's helper threads, such as concurrent
 * garbage collection, do count, so CPU time is an upper bound of single-core time).
 *
 * `npm run bench:explore -- --impl [--depths 4,8,12,16] [--growth-depth 10] [--orders all|fifo]
 * [--large N] [--profile-checks] [--reduction] [--json]`: the explorer of impl/core instead
 * (bench/explore-impl.ts).
 */
import { paxosChecks } from "../proofs/mappings.ts";
import { explore, type ExploreResult } from "../spec/explore.ts";
import { CompactPaxos, type CompactPaxosState } from "../spec/compact/paxos.ts";
import { benchImpl } from "./explore-impl.ts";
import { benchFlags, refuseFlags } from "./lib/flags.ts";

const usage = `usage: npm run bench:explore -- [options]

Exhaustive exploration of Paxos (3 acceptors, 2 values, ballots 0..2) with Inv and the refinement
to Voting checked, then with the refinement to Consensus added: the fastest of N runs, wall and
CPU seconds. With --impl, the explorer of impl/core instead (bench/explore-impl.ts).

options:
  --runs N            runs per configuration (default 3)
  --json              print the results as JSON
  --impl              explore impl/core's replicas in the simulated world
  --depths 4,8,12,16  with --impl: the depths measured
  --growth-depth D    with --impl: the depth of the growth per budget (default 10)
  --orders all|fifo   with --impl: message orders explored (default all)
  --large N           with --impl: also N larger budgets (default 0)
  --help              print this help
`;
const values = benchFlags(
  {
    runs: { type: "string" },
    json: { type: "boolean" },
    impl: { type: "boolean" },
    depths: { type: "string" },
    "growth-depth": { type: "string" },
    orders: { type: "string" },
    large: { type: "string" },
    "profile-checks": { type: "boolean" },
    reduction: { type: "boolean" },
  },
  usage,
);
if (values.impl === true) {
  await benchImpl({
    depths: (values.depths ?? "4,8,12,16").split(",").map(Number),
    growthDepth: Number(values["growth-depth"] ?? "10"),
    orders: values.orders === "fifo" ? "fifo" : "all",
    large: Number(values.large ?? "0"),
    profileChecks: values["profile-checks"] === true,
    reduction: values.reduction === true,
    json: values.json === true,
  });
  process.exit(0);
}
const runs = Number(values.runs ?? "3");
if (!Number.isInteger(runs) || runs < 1) {
  refuseFlags(`bench:explore: --runs must be a positive integer, got '${values.runs ?? ""}'`, usage);
}

const constants = { acceptors: 3, values: 2, maxBallot: 2 };
const configurations = [
  { name: "Inv + Paxos => Voting", checks: (p: CompactPaxos) => paxosChecks(p).slice(0, 1) },
  { name: "Inv + Paxos => Voting + Paxos => Consensus", checks: (p: CompactPaxos) => paxosChecks(p) },
];

/** One timed exploration; throws unless it is complete and finds nothing. */
function timed(checks: (p: CompactPaxos) => ReturnType<typeof paxosChecks>): {
  readonly seconds: number;
  readonly cpuSeconds: number;
  readonly result: ExploreResult<CompactPaxosState>;
} {
  const paxos = new CompactPaxos(constants);
  const started = performance.now();
  const cpu = process.cpuUsage();
  const result = explore(paxos, { checks: checks(paxos) });
  const used = process.cpuUsage(cpu);
  const seconds = (performance.now() - started) / 1000;
  if (result.violation !== undefined || !result.complete)
    throw new Error(`unexpected result: ${result.violation?.message ?? "incomplete"}`);
  return { seconds, cpuSeconds: (used.user + used.system) / 1e6, result };
}

const results = configurations.map((config) => {
  const all = [timed(config.checks)];
  for (let i = 1; i < runs; i++) all.push(timed(config.checks));
  const seconds = all.map((x) => x.seconds);
  if (!values.json)
    process.stderr.write(
      `${config.name}: ${all.map((x) => `${x.seconds.toFixed(2)} s (cpu ${x.cpuSeconds.toFixed(2)} s)`).join(", ")}\n`,
    );
  const fastest = all.reduce((x, y) => (y.seconds < x.seconds ? y : x));
  const best = fastest.seconds;
  const r = fastest.result;
  return {
    configuration: config.name,
    distinctStates: r.distinct,
    statesGenerated: r.generated,
    transitions: r.transitions,
    depth: r.depth,
    seconds: best,
    cpuSeconds: fastest.cpuSeconds,
    cpuSecondsMin: Math.min(...all.map((x) => x.cpuSeconds)),
    secondsAll: seconds,
    distinctStatesPerSecond: Math.round(r.distinct / best),
    generatedPerSecond: Math.round(r.generated / best),
  };
});

if (values.json) {
  process.stdout.write(`${JSON.stringify({ spec: "Paxos", constants, node: process.version, results })}\n`);
} else {
  process.stdout.write(`Paxos, 3 acceptors, 2 values, ballots 0..2 (node ${process.version}, best of ${runs})\n`);
  for (const r of results) {
    process.stdout.write(`${r.configuration}\n`);
    process.stdout.write(`  distinct states ${r.distinctStates}, generated ${r.statesGenerated}, depth ${r.depth}\n`);
    process.stdout.write(
      `  ${r.seconds.toFixed(2)} s wall (${r.cpuSeconds.toFixed(2)} s cpu; least cpu of all runs ${r.cpuSecondsMin.toFixed(2)} s), ${r.distinctStatesPerSecond} distinct states/s, ${r.generatedPerSecond} generated/s\n`,
    );
  }
}

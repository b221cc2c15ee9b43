/**
 * `npm run explore -- --impl [options]`: the bounded model checker of impl/core (refinement-
 * tests/explorer/). Every interleaving of the real `step` within the budgets, with every check of
 * proofs/ after every world step; the shortest trace to the first violation, written as a world
 * scenario that replays (`npm run explore -- --replay FILE`) with a readable trace beside it.
 *
 * Exit codes: 0 no violation, 1 a violation, 2 usage error. Progress goes to stderr about once a
 * second; `--json` prints one JSON object on stdout.
 */
import { readFileSync } from "node:fs";
import { mutantNamed } from "../mutants/index.ts";
import type { Regression } from "../regressions/regressions.ts";
import { describeFailure, writeReport } from "../world/report.ts";
import { runScenario, showScenario } from "../world/run.ts";
import { tunings, type ReplicaTuning } from "../world/tuning.ts";
import { preludes, type Prelude } from "../world/preludes.ts";
import {
  describeBounds,
  explore,
  profileTable,
  type ExploreOptions,
  type ExploreOutcome,
} from "../explorer/explorer.ts";
import { defaultBounds, type ImplBounds } from "../explorer/model.ts";
import type { SearchProgress } from "../explorer/search.ts";
import {
  catchUsage,
  integerFlag,
  parseFlags,
  perSecond,
  printRows,
  progressPrinter,
  UsageError,
  type Io,
} from "./explore-io.ts";

/** Integer flags: [field, min, max, default, help]. */
const counts = {
  replicas: [3, 7, 3, "initial members: 3, 5 or 7"],
  requests: [0, 3, 1, "client writes (a put each, one client each)"],
  "writes-per-client": [1, 4, 1, "puts each writing client sends, one after another"],
  reads: [0, 3, 1, "client linearizable reads (one client each)"],
  crashes: [0, 4, 0, "crashes (unflushed records lost)"],
  restarts: [0, 4, -1, "restarts of crashed replicas, at any time"],
  losses: [0, 4, 0, "messages lost"],
  duplicates: [0, 4, 0, "messages duplicated"],
  delays: [0, 8, 0, "advances of time while messages are deliverable (else one-way delays are zero)"],
  partitions: [0, 4, 0, "links cut one way, or replicas cut off (healing is free)"],
  retries: [0, 4, 0, "client retries"],
  reuses: [0, 2, 0, "writes sent under the number of the client's latest one (a faulty client)"],
  "chunk-faults": [0, 2, 0, "state-transfer chunks corrupted, or snapshots offered unasked"],
  "snapshot-every": [0, 64, 0, "snapshot interval in slots (0: the tuning's)"],
  "drift-ppm": [0, 100_000, -1, "clock drift bound in ppm (default: the tuning's)"],
  "store-at-rest": [
    0,
    1 << 30,
    0,
    "the store's values of at least this many code units held at rest and read back for the commands, reads and snapshots that need them (rules V1 to V4; 0: the tuning's)",
  ],
  "log-tail-bytes": [0, 1 << 30, 0, "bytes of log kept at and below the latest snapshot (0: the tuning's)"],
  "compaction-piece-records": [
    0,
    64,
    0,
    "the disk compacts in pieces of this many records, appends, reads and pins between them, as the runtime's storage thread does (0: the tuning's)",
  ],
  "sessions-max": [0, 64, 0, "feature level 2 with a table of this many sessions (0: level 1, the core's default)"],
  "feature-level": [
    0,
    4,
    0,
    "the level the leader raises the log to: 2 bounds the session table, 3 has clients open their sessions through the log, 4 also holds every value to 1 MiB of UTF-8 at execution (0: 2 with --sessions-max, else 1)",
  ],
  tuning: [
    0,
    tunings.length - 1,
    0,
    "the world's tuning: 0 default, 1 tightest, 2 perfect clocks, 3 long lease, 4 largest drift, 5 sparse timers, 6 adaptive batching, 7 long catch-up, 8 shortest log tail, 9 CheckQuorum counting the clock, 10 the runtime's settings (long values hashed)",
  ],
  seed: [0, 0xffff, 1, "the replicas' generator seed (election timeouts)"],
  pick: [
    0,
    511,
    0,
    "chooses within the prelude (which change, how the leader is lost; 256: shrink 5 or 7 to 3 voters first)",
  ],
  depth: [1, 10_000, 12, "transitions from an initial state (random: the length of a walk)"],
  "max-states": [1, 100_000_000, 5_000_000, "stop after this many distinct states"],
  seconds: [0, 86_400, 0, "stop after this many seconds (0: no limit)"],
  "walk-seed": [0, 0xffff_ffff, 1, "random walks: their seed"],
} as const;
type CountFlag = keyof typeof counts;

const choices = {
  reconfig: ["none", "add", "remove", "replace", "remove-replace"],
  start: ["warm", "cold"],
  prelude: preludes,
  rates: ["worst", "extremes", "slow", "fast"],
  "restart-clocks": ["both", "continue", "lower"],
  mode: ["bfs", "random"],
  orders: ["all", "fifo"],
  environment: ["between-waves", "anytime"],
  cuts: ["hold", "drop"],
  "write-kinds": ["puts", "puts-appends"],
  "write-keys": ["one", "first-apart", "alternate"],
  "fault-messages": ["any", "accepts"],
} as const;
type ChoiceFlag = keyof typeof choices;

export const implUsage = `Usage: npm run explore -- --impl [options]
       npm run explore -- --replay FILE

Explores every interleaving of impl/core's step within the budgets below (breadth first, so the
first violation comes with the shortest trace), checking every proofs/ invariant after every world
step and every transition's refinement. Time advances only to instants where some replica's
decision can change; clocks run at the extremes of the drift bound.

Options:
${Object.entries(counts)
  .map(
    ([flag, [min, max, def, help]]) =>
      `  --${flag.padEnd(16)} ${help} (${min}..${max}, default ${def === -1 ? "the tuning's" : def})`,
  )
  .join("\n")}
  --reconfig KIND     none | add | remove | replace (add a spare, then replace a voter by it) |
                      remove-replace (remove a voter, then replace one by a prelude's learner) (default none)
  --start KIND        warm (from the first leader with a lease) | cold (from boot) (default warm)
  --prelude NAME      ${preludes.join(" | ")}: a fault-free schedule to where features
                      meet, run before exploring (refinement-tests/world/preludes.ts) (default none)
  --rates KIND        clock rates: worst (the first leader slow, the others fast) | extremes (every
                      slow/fast combination: 2^n initial states) | slow | fast (default worst)
  --restart-clocks K  both | continue | lower (a restarted replica's clock) (default both)
  --orders KIND       all (every delivery its own transition) | fifo (a round of deliveries at
                      once, in the order sent; any other order costs a hold) (default all)
  --environment KIND  between-waves (clients, crashes, partitions act when nothing but held
                      messages is deliverable) | anytime (default between-waves)
  --cuts KIND         hold (a message in flight on a link when it is cut waits for the heal) | drop
                      (a link is cut only while nothing is in flight on it: a partition loses what
                      is sent over it afterwards and delays nothing) (default hold)
  --write-kinds KIND  puts | puts-appends (writing client c's k-th write is an append when c + k is
                      odd: it reads what a put wrote; with --store-at-rest, a value read back for a
                      command) (default puts)
  --write-keys KIND   one (every write names key 0) | first-apart (client 0's first write names
                      key 0, every other write key 1: with --store-at-rest, the first write's vote
                      stays the store's name for its value while later writes take snapshots past
                      it) | alternate (writing client c's k-th write names key (c + k) mod 2)
                      (default one)
  --fault-messages K  any | accepts (losses, duplicates and delays take Accept messages only)
                      (default any)
  --settle            after the prelude, deliver everything in flight until the network is quiet
                      (its last state transfer done), so the depth is spent after it
  --value-limit       writes are appends of 600,000 bytes of UTF-8 each (200,000 euro signs), so
                      that two build a value over 1 MiB of UTF-8: refused from --feature-level 4 on,
                      executed below it
  --liveness          bounded liveness: from every state found, the fault-free continuation (heal,
                      restart, no more faults) must reach a leaseholder within 2 D + 5 election
                      timeouts and answer every request within 20 s of simulated time
  --no-deliver-all    with --orders all, do not offer "deliver everything in flight" as one transition
  --profile-checks    time every check of proofs/ and the explorer's own work (copies, world steps,
                      keys, enabled transitions), and print where the time went
  --no-reduce         keep apart states that differ only in what nothing reads (the disk and clock
                      of a replica down for good): the unreduced space, for comparison
  --mode KIND         bfs | random (random walks of --depth transitions) (default bfs)
  --mutant NAME       explore a broken variant (npm run mutants lists them)
  --goal COUNTER      search for a state, not a bug: stop at the first transition that counts
                      COUNTER (a check's, "sometimes: ...", or the world's, "world: ..."); breadth
                      first gives the shortest path there (exit 0 reached, 1 not within the bounds)
  --out DIR           where a counterexample's report goes (default out/explore)
  --replay FILE       run a regression file (a counterexample) through the world, with its trace
  --json              print the result as one JSON object on stdout
  -h, --help          this text

Exit codes: 0 no violation, 1 violation found, 2 usage error.`;

interface ImplOptions {
  readonly explore: ExploreOptions;
  readonly json: boolean;
  readonly out: string;
}

function parse(argv: readonly string[]): ImplOptions | { replay: string; json: boolean } | "help" {
  const v = parseFlags(argv, {
    impl: { type: "boolean" },
    ...Object.fromEntries(Object.keys(counts).map((f) => [f, { type: "string" as const }])),
    ...Object.fromEntries(Object.keys(choices).map((f) => [f, { type: "string" as const }])),
    "no-deliver-all": { type: "boolean" },
    "no-reduce": { type: "boolean" },
    "profile-checks": { type: "boolean" },
    settle: { type: "boolean" },
    "value-limit": { type: "boolean" },
    liveness: { type: "boolean" },
    mutant: { type: "string" },
    goal: { type: "string" },
    out: { type: "string" },
    replay: { type: "string" },
    json: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (v.help === true) return "help";
  if (typeof v.replay === "string") return { replay: v.replay, json: v.json === true };
  const n = {} as Record<CountFlag, number>;
  for (const flag of Object.keys(counts) as CountFlag[]) {
    const [min, max, def] = counts[flag];
    const text = v[flag] as string | undefined;
    if (text === undefined) {
      n[flag] = def;
      continue;
    }
    n[flag] = integerFlag(flag, text, min, max);
  }
  if (![3, 5, 7].includes(n.replicas)) throw new UsageError(`--replicas must be 3, 5 or 7, got ${n.replicas}`);
  const c = {} as Record<ChoiceFlag, string>;
  for (const flag of Object.keys(choices) as ChoiceFlag[]) {
    const text = (v[flag] as string | undefined) ?? choices[flag][0];
    if (!(choices[flag] as readonly string[]).includes(text))
      throw new UsageError(`--${flag} must be one of ${choices[flag].join(", ")}, got '${text}'`);
    c[flag] = text;
  }
  if (n.requests + n.reads === 0 && v.liveness !== true && c.prelude === "none")
    throw new UsageError("--requests and --reads are both 0: nothing would happen");
  const overrides: Partial<ReplicaTuning> = {};
  if (n["snapshot-every"] > 0)
    (overrides as { snapshotIntervalSlots: number }).snapshotIntervalSlots = n["snapshot-every"];
  if (n["drift-ppm"] >= 0) (overrides as { clockDriftPpmMax: number }).clockDriftPpmMax = n["drift-ppm"];
  if (n["store-at-rest"] > 0) (overrides as { storeAtRestCharsMin: number }).storeAtRestCharsMin = n["store-at-rest"];
  if (n["log-tail-bytes"] > 0) (overrides as { logTailBytes: number }).logTailBytes = n["log-tail-bytes"];
  if (n["compaction-piece-records"] > 0)
    (overrides as { compactionPieceRecords: number }).compactionPieceRecords = n["compaction-piece-records"];
  const level = n["feature-level"] > 0 ? n["feature-level"] : n["sessions-max"] > 0 ? 2 : 1;
  if (level === 1 && n["sessions-max"] > 0)
    throw new UsageError("--sessions-max bounds the session table of feature level 2 and above, not --feature-level 1");
  if (level >= 2)
    Object.assign(overrides, {
      featureLevel: level,
      ...(n["sessions-max"] > 0 ? { sessionsMax: n["sessions-max"] } : {}),
    });
  if (v["value-limit"] === true) (overrides as { valueLimit: boolean }).valueLimit = true;
  const bounds: ImplBounds = {
    ...defaultBounds,
    replicas: n.replicas,
    writes: n.requests,
    writesPerClient: n["writes-per-client"],
    writeKinds: c["write-kinds"] as ImplBounds["writeKinds"],
    writeKeys: c["write-keys"] as ImplBounds["writeKeys"],
    faultMessages: c["fault-messages"] as ImplBounds["faultMessages"],
    reads: n.reads,
    crashes: n.crashes,
    restarts: n.restarts,
    losses: n.losses,
    duplicates: n.duplicates,
    delays: n.delays,
    partitions: n.partitions,
    retries: n.retries,
    reuses: n.reuses,
    chunkFaults: n["chunk-faults"],
    reconfig: c.reconfig as ImplBounds["reconfig"],
    tuning: n.tuning,
    overrides,
    start: c.start as ImplBounds["start"],
    prelude: c.prelude as Prelude,
    pick: n.pick,
    settle: v.settle === true,
    liveness: v.liveness === true,
    rates: c.rates as ImplBounds["rates"],
    restartClocks: c["restart-clocks"] as ImplBounds["restartClocks"],
    deliverAll: v["no-deliver-all"] !== true,
    orders: c.orders as ImplBounds["orders"],
    environment: c.environment as ImplBounds["environment"],
    cuts: c.cuts as ImplBounds["cuts"],
    seed: n.seed,
    reduce: v["no-reduce"] !== true,
  };
  let mutant: ExploreOptions["mutant"];
  if (typeof v.mutant === "string") {
    try {
      mutant = { name: v.mutant, step: mutantNamed(v.mutant).step };
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  return {
    explore: {
      bounds,
      mode: c.mode as ExploreOptions["mode"],
      depth: n.depth,
      maxStates: n["max-states"],
      ...(n.seconds > 0 ? { maxSeconds: n.seconds } : {}),
      walkSeed: n["walk-seed"],
      profileChecks: v["profile-checks"] === true,
      ...(mutant === undefined ? {} : { mutant }),
      ...(typeof v.goal === "string" ? { goal: v.goal } : {}),
    },
    json: v.json === true,
    out: (v.out as string | undefined) ?? "out/explore",
  };
}

/** Run `npm run explore -- --impl ...`; returns the exit code. */
export function implMain(argv: readonly string[], io: Io): number {
  const o = catchUsage(io, "npm run explore -- --impl --help", () => parse(argv));
  if (o === undefined) return 2;
  if (o === "help") {
    io.out(implUsage);
    return 0;
  }
  if ("replay" in o) return replayFile(o.replay, o.json, io);
  return run(o, io);
}

function run(o: ImplOptions, io: Io): number {
  const onProgress = progressPrinter<SearchProgress>(
    io,
    (p) =>
      `${p.distinct} distinct states, ${p.transitions} transitions, depth ${p.depth}/${o.explore.depth}, ${perSecond(p.distinct, p.ms / 1000)} states/s, ${(p.ms / 1000).toFixed(1)} s`,
  );
  const outcome = explore({ ...o.explore, onProgress, recordReplay: true });
  const bounds = `${describeBounds(o.explore.bounds)} --depth ${o.explore.depth}${o.explore.mode === "random" ? " --mode random" : ""}`;
  if (outcome.reached !== undefined) return reportGoal(o, outcome, bounds, io);
  const folder = outcome.regression === null ? null : writeCounterexample(o, outcome, bounds);
  if (o.json) io.out(JSON.stringify(toJson(o, outcome, bounds, folder)));
  else report(o, outcome, bounds, folder, io);
  return outcome.regression === null ? 0 : 1;
}

/** A search for `--goal`: the states it took and the shortest path there (exit 0), or not reached (exit 1). */
function reportGoal(o: ImplOptions, x: ExploreOutcome, bounds: string, io: Io): number {
  const r = x.result;
  const reached = x.reached ?? null;
  if (o.json)
    io.out(
      JSON.stringify({
        mode: o.explore.mode,
        bounds,
        goal: o.explore.goal,
        reached: reached !== null,
        distinctStates: r.distinct,
        transitions: r.transitions,
        depth: r.depth,
        length: reached?.length ?? null,
        complete: r.complete,
        seconds: x.seconds,
      }),
    );
  else {
    io.out(`Searched impl/core for "${o.explore.goal ?? ""}": ${bounds}`);
    printRows(io, [
      ["distinct states", String(r.distinct)],
      ["transitions", String(r.transitions)],
      [o.explore.mode === "bfs" ? "depth reached" : "deepest walk", String(r.depth)],
      ["elapsed", `${x.seconds.toFixed(2)} s`],
    ]);
    if (reached === null)
      io.out(
        r.complete ? "\nNot reached: every state within the bounds was explored." : "\nNot reached within the limits.",
      );
    else {
      io.out(`\nReached in ${reached.length} transitions${o.explore.mode === "bfs" ? " (the shortest path)" : ""}:`);
      io.out(showScenario(reached.scenario));
    }
  }
  return reached === null ? 1 : 0;
}

function toJson(o: ImplOptions, x: ExploreOutcome, bounds: string, folder: string | null): unknown {
  const r = x.result;
  return {
    mode: o.explore.mode,
    bounds,
    mutant: o.explore.mutant?.name ?? null,
    distinctStates: r.distinct,
    transitions: r.transitions,
    depth: r.depth,
    walks: r.walks ?? null,
    complete: r.complete,
    seconds: x.seconds,
    distinctStatesPerSecond: perSecond(r.distinct, x.seconds),
    collisionBound: r.collisionBound,
    visitedBytes: r.visitedBytes,
    ...(x.profile === undefined ? {} : { profile: x.profile }),
    violation:
      x.regression === null
        ? null
        : {
            check: x.regression.expect,
            message: x.replayed?.message ?? "",
            length: r.counterexample?.length ?? null,
            actions: x.regression.scenario.actions.length,
            report: folder,
            replay: folder === null ? null : `npm run explore -- --replay ${folder}/regression.json`,
          },
  };
}

function report(o: ImplOptions, x: ExploreOutcome, bounds: string, folder: string | null, io: Io): void {
  const r = x.result;
  io.out(`Explored impl/core${o.explore.mutant === undefined ? "" : ` (mutant ${o.explore.mutant.name})`}: ${bounds}`);
  const rows: [string, string][] = [
    ["distinct states", String(r.distinct)],
    ["transitions", String(r.transitions)],
    [o.explore.mode === "bfs" ? "depth reached" : "deepest walk", String(r.depth)],
    ...(r.walks === undefined ? [] : ([["walks", String(r.walks)]] as [string, string][])),
    ["elapsed", `${x.seconds.toFixed(2)} s`],
    ["distinct states/s", String(perSecond(r.distinct, x.seconds))],
    [
      "visited set",
      `${(r.visitedBytes / 2 ** 20).toFixed(1)} MiB; collision probability < ${r.collisionBound.toExponential(1)}`,
    ],
  ];
  printRows(io, rows);
  if (x.profile !== undefined) io.out(`\nWhere the time went (--profile-checks):\n${profileTable(x.profile)}`);
  if (x.regression !== null && x.replayed !== null && folder !== null) {
    io.out(`\n${describeFailure(x.replayed)}`);
    io.out(`\nShortest trace (${r.counterexample?.length ?? "?"} transitions):`);
    io.out(showScenario(x.regression.scenario));
    io.out(`\n  step through it: npm run view -- ${folder}`);
    io.out(`  trace (text):    ${folder}/failure.txt`);
    io.out(`  trace (Mermaid): ${folder}/trace.md`);
    io.out(`  regression:      ${folder}/regression.json`);
    io.out(`  replay:          npm run explore -- --replay ${folder}/regression.json`);
  } else if (!r.complete)
    io.out(
      o.explore.mode === "bfs"
        ? "No violation in the states explored, but a limit (depth, states or seconds) stopped the search: it is exhaustive only within them."
        : "No violation on the walks taken (random walks are never exhaustive).",
    );
  else io.out("No violation: every state within the bounds was explored.");
}

/** Write the counterexample's report (readable trace, Mermaid diagram, regression file); returns the folder. */
function writeCounterexample(o: ImplOptions, x: ExploreOutcome, bounds: string): string {
  const r = x.regression!;
  // The explorer replayed the counterexample with its trace kept: that replay is the report's.
  const run = x.run!;
  return writeReport(o.out, {
    name: r.name,
    failure: run.failure!,
    replay: `npm run explore -- --replay ${o.out}/${r.name}/regression.json`,
    scenario: `${bounds}\n${showScenario(r.scenario)}`,
    trace: run.trace ?? [],
    replicas: r.replicas,
    clients: run.world.clients.map((c) => c.id),
    regression: r,
  });
}

/** `--replay FILE`: run a regression file through the world and print what happens. */
function replayFile(file: string, json: boolean, io: Io): number {
  let r: Regression;
  try {
    r = JSON.parse(readFileSync(file, "utf8")) as Regression;
  } catch (e) {
    io.err(`explore: cannot read ${file}: ${(e as Error).message}`);
    return 2;
  }
  let step;
  try {
    step = r.mutant === null ? undefined : mutantNamed(r.mutant).step;
  } catch (e) {
    io.err(`explore: ${file}: ${(e as Error).message}`);
    return 2;
  }
  const run = runScenario(r.scenario, {
    replicas: r.replicas,
    clients: r.clients ?? 3,
    liveness: r.liveness,
    record: true,
    ...(step === undefined ? {} : { step }),
  });
  const outcome = run.failure === null ? "pass" : run.failure.check;
  if (json) {
    io.out(JSON.stringify({ file, expect: r.expect, outcome, failure: run.failure, events: run.events }));
  } else {
    io.out(`${file}: ${r.description}`);
    io.out(showScenario(r.scenario));
    io.out(`\n${run.failure === null ? "every check passes" : describeFailure(run.failure)}`);
    io.out(`expected: ${r.expect}; outcome: ${outcome}`);
  }
  return run.failure === null ? 0 : 1;
}

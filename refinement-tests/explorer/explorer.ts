/**
 * The exhaustive explorer of impl/core, as a library: build the model for some bounds, search it
 * breadth first or by random walks, and turn a counterexample into a world scenario that replays
 * (a regression file, refinement-tests/regressions/). `npm run explore -- --impl`, `npm run
 * mutants -- --engine explore`, the benchmark and the tests all call `explore`.
 */
import type { Step } from "../../impl/core/testing/index.ts";
import type { Regression } from "../regressions/regressions.ts";
import { runScenario, type Failure, type RunResult } from "../world/run.ts";
import type { Action, Scenario } from "../world/actions.ts";
import { CheckProfile } from "../../proofs/check-profile.ts";
import { goalReached, ImplModel, type ImplBounds } from "./model.ts";
import { breadthFirst, randomWalks, type SearchProgress, type SearchResult } from "./search.ts";

/** How to search. */
export interface ExploreOptions {
  readonly bounds: ImplBounds;
  /** Breadth first (every state within the depth, shortest traces) or random walks. */
  readonly mode: "bfs" | "random";
  /** Transitions from an initial state (breadth first: the depth bound; random: the length of a walk). */
  readonly depth: number;
  readonly maxStates: number;
  /** Stop after this many seconds. Default: no limit. */
  readonly maxSeconds?: number;
  /** The clock of `maxSeconds`, milliseconds (default: wall time; `npm run mutants` budgets CPU time). */
  readonly now?: () => number;
  /** Random walks: their seed. Default 1. */
  readonly walkSeed?: number;
  /** A broken step function (the bug zoo), and its name for reports. */
  readonly mutant?: { readonly name: string; readonly step: Step };
  readonly onProgress?: (p: SearchProgress) => void;
  /** Time each check of proofs/ and each part of the explorer's own work (`ExploreOutcome.profile`). */
  readonly profileChecks?: boolean;
  /** Keep the readable trace of the counterexample's replay (`ExploreOutcome.run`), for reports. */
  readonly recordReplay?: boolean;
  /**
   * Search for a state instead of a violation: the first transition that counts this counter
   * (`ImplModel.goal`) ends the search, and its path is `ExploreOutcome.reached`. Default none.
   */
  readonly goal?: string;
}

/** One row of a profile: where `ms` of the search went, over `calls` calls. */
export interface ProfileRow {
  readonly part: "explorer" | "check";
  readonly name: string;
  readonly ms: number;
  readonly calls: number;
}

/** What a search found, with the counterexample as a world scenario that replays it. */
export interface ExploreOutcome {
  readonly result: SearchResult & { readonly walks?: number };
  readonly seconds: number;
  /** The counterexample as a regression scenario (null: none found). */
  readonly regression: Regression | null;
  /** The counterexample's replay through `runScenario`: the same check fails there. */
  readonly replayed: Failure | null;
  /** That replay, with its trace when `recordReplay` asked for it (null: no counterexample). */
  readonly run: RunResult | null;
  /** With `profileChecks`: the explorer's parts (world steps without their checks) and every check, costliest first. */
  readonly profile?: readonly ProfileRow[];
  /** With `goal`: the shortest path to a state that counted it (null: not within the bounds). */
  readonly reached?: { readonly length: number; readonly scenario: Scenario } | null;
}

/** Search the model of `options.bounds`; on a violation, replay its scenario and return it. */
export function explore(options: ExploreOptions): ExploreOutcome {
  const model = new ImplModel(options.bounds, options.mutant?.step);
  model.goal = options.goal ?? null;
  if (options.profileChecks === true) model.profile = { explorer: new CheckProfile(), checks: new CheckProfile() };
  const started = performance.now();
  const limits = {
    depth: options.depth,
    maxStates: options.maxStates,
    ...(options.maxSeconds === undefined ? {} : { maxMs: options.maxSeconds * 1000 }),
    ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
    ...(options.now === undefined ? {} : { now: options.now }),
  };
  const result =
    options.mode === "bfs"
      ? breadthFirst(model, limits)
      : randomWalks(model, { ...limits, seed: options.walkSeed ?? 1 });
  const seconds = (performance.now() - started) / 1000;
  const profile = model.profile === null ? {} : { profile: profileRows(model.profile) };
  const found = result.counterexample;
  const goal = options.goal === undefined ? {} : { reached: null };
  if (found === null) return { result, seconds, regression: null, replayed: null, run: null, ...profile, ...goal };
  if (found.violation.check === goalReached) {
    const reached = { length: found.length, scenario: model.scenario(found.actions) };
    return { result, seconds, regression: null, replayed: null, run: null, ...profile, reached };
  }
  const regression = toRegression(model, options, found.actions, found.violation.check, found.violation.message);
  const run = replayRun(regression, options.mutant?.step, options.recordReplay ?? false);
  const replayed = run.failure;
  if (replayed === null || replayed.check !== found.violation.check)
    throw new Error(
      `the explorer found ${found.violation.check}, but its trace replayed in the world ${replayed === null ? "passes" : `fails ${replayed.check}`}: the explorer and the world disagree`,
    );
  return { result, seconds, regression, replayed, run, ...profile };
}

/**
 * A model's profile as rows: the explorer's parts (world steps without the checks they ran), then
 * every check (those run while the cluster booted, warmed up and ran its prelude included).
 */
export function profileRows(p: NonNullable<ImplModel["profile"]>): ProfileRow[] {
  const rows: ProfileRow[] = p.explorer.rows().map((r) => ({ part: "explorer", ...r }));
  for (const r of p.checks.rows()) rows.push({ part: "check", ...r });
  return rows.sort((x, y) => y.ms - x.ms);
}

/** A profile as a Markdown table: each row's share of the time measured, and its cost per call. */
export function profileTable(rows: readonly ProfileRow[]): string {
  const total = rows.reduce((sum, r) => sum + r.ms, 0);
  const lines = ["| part | what | ms | share | calls | us per call |", "| --- | --- | ---: | ---: | ---: | ---: |"];
  for (const r of rows)
    lines.push(
      `| ${r.part} | ${r.name} | ${r.ms.toFixed(0)} | ${((100 * r.ms) / Math.max(total, 1e-9)).toFixed(1)}% | ${r.calls} | ${((1000 * r.ms) / Math.max(r.calls, 1)).toFixed(2)} |`,
    );
  return lines.join("\n");
}

/** A path of the model as a regression scenario. */
export function toRegression(
  model: ImplModel,
  options: ExploreOptions,
  actions: readonly Action[],
  check: string,
  message: string,
): Regression {
  const name = `explore-${options.mutant?.name ?? "impl"}`;
  return {
    name,
    description: `${check}: ${message} (found by npm run explore -- --impl ${describeBounds(options.bounds)}${options.mutant === undefined ? "" : ` --mutant ${options.mutant.name}`})`,
    replicas: options.bounds.replicas,
    clients: model.clients,
    liveness: options.bounds.liveness,
    mutant: options.mutant?.name ?? null,
    expect: check,
    scenario: model.scenario(actions),
  };
}

/** Run a regression scenario through the world; its failure, or null when every check passes. */
export function replay(r: Regression, step?: Step, record = false): Failure | null {
  return replayRun(r, step, record).failure;
}

/** Run a regression scenario through the world: the whole run (its trace too, with `record`). */
function replayRun(r: Regression, step: Step | undefined, record: boolean): RunResult {
  return runScenario(r.scenario, {
    replicas: r.replicas,
    clients: r.clients ?? 3,
    liveness: r.liveness,
    record,
    ...(step === undefined ? {} : { step }),
  });
}

/** The bounds as command-line flags (only those that differ from the defaults). */
export function describeBounds(b: ImplBounds): string {
  const flags: string[] = [`--replicas ${b.replicas}`, `--requests ${b.writes}`, `--reads ${b.reads}`];
  if (b.writesPerClient !== 1) flags.push(`--writes-per-client ${b.writesPerClient}`);
  if (b.writeKinds !== "puts") flags.push(`--write-kinds ${b.writeKinds}`);
  if (b.writeKeys !== "one") flags.push(`--write-keys ${b.writeKeys}`);
  const counts: [string, number][] = [
    ["crashes", b.crashes],
    ["losses", b.losses],
    ["duplicates", b.duplicates],
    ["delays", b.delays],
    ["partitions", b.partitions],
    ["retries", b.retries],
    ["reuses", b.reuses],
    ["chunk-faults", b.chunkFaults],
  ];
  for (const [flag, n] of counts) if (n > 0) flags.push(`--${flag} ${n}`);
  if (b.faultMessages !== "any") flags.push(`--fault-messages ${b.faultMessages}`);
  if (b.restarts >= 0 && b.restarts !== b.crashes) flags.push(`--restarts ${b.restarts}`);
  if (b.reconfig !== "none") flags.push(`--reconfig ${b.reconfig}`);
  if (b.overrides.snapshotIntervalSlots !== undefined)
    flags.push(`--snapshot-every ${b.overrides.snapshotIntervalSlots}`);
  if (b.overrides.clockDriftPpmMax !== undefined) flags.push(`--drift-ppm ${b.overrides.clockDriftPpmMax}`);
  const level = b.overrides.featureLevel ?? 1;
  if (level >= 3) flags.push(`--feature-level ${level}`);
  if (level >= 2) flags.push(`--sessions-max ${b.overrides.sessionsMax ?? 100_000}`);
  if (b.overrides.valueLimit === true) flags.push("--value-limit");
  if ((b.overrides.storeAtRestCharsMin ?? 0) > 0) flags.push(`--store-at-rest ${b.overrides.storeAtRestCharsMin}`);
  if (b.overrides.logTailBytes !== undefined) flags.push(`--log-tail-bytes ${b.overrides.logTailBytes}`);
  if (b.overrides.compactionPieceRecords !== undefined)
    flags.push(`--compaction-piece-records ${b.overrides.compactionPieceRecords}`);
  if (b.tuning !== 0) flags.push(`--tuning ${b.tuning}`);
  if (b.start !== "warm") flags.push(`--start ${b.start}`);
  if (b.prelude !== "none") flags.push(`--prelude ${b.prelude} --pick ${b.pick}`);
  if (b.liveness) flags.push("--liveness");
  if (b.settle) flags.push("--settle");
  if (b.rates !== "worst") flags.push(`--rates ${b.rates}`);
  if (b.restartClocks !== "both") flags.push(`--restart-clocks ${b.restartClocks}`);
  if (!b.deliverAll) flags.push("--no-deliver-all");
  if (b.orders !== "all") flags.push(`--orders ${b.orders}`);
  if (b.environment !== "between-waves") flags.push(`--environment ${b.environment}`);
  if (b.cuts !== "hold") flags.push(`--cuts ${b.cuts}`);
  if (b.seed !== 1) flags.push(`--seed ${b.seed}`);
  if (!b.reduce) flags.push("--no-reduce");
  return flags.join(" ");
}

/**
 * The model-based suites over the world, as fast-check properties: the safety mode (faults
 * freely, every check after every step, linearizability at the end) and the liveness mode
 * (then heal, stop faults, require a leader with a lease and every request answered). One run
 * is `fc.check` of the property with one seed and one generated scenario, so a failure comes back
 * shrunk with fast-check's (seed, path), which replays it exactly: `--replay seed:path`.
 *
 * The campaign CLI, the mutant runner, the CI-sized tests and the benchmark all call `runOne`;
 * nothing here is tuned per bug.
 */
import fc from "fast-check";
import type { Step } from "../impl/core/testing/index.ts";
import { scenarioArbitrary, type GeneratorBounds, type Profile, type Scenario } from "./world/actions.ts";
import { runScenario, type Failure, type RunResult } from "./world/run.ts";
import { defaultTuning } from "./world/tuning.ts";

/** What to run. */
export interface SuiteOptions {
  /** 3 or 5. Default 3. */
  readonly replicas?: number;
  /** Liveness mode. Default false (safety). */
  readonly liveness?: boolean;
  /** A replica step (bug zoo). Default impl/core's. */
  readonly step?: Step;
  /** Shrink a failure (default true; the mutant runner only needs to know it failed). */
  readonly shrink?: boolean;
  /** Longest scenario, in actions. Default 300. */
  readonly actionsMax?: number;
  /**
   * Profile fields every generated scenario takes instead of the drawn ones (`npm run mutants --
   * --tuning`: one tuning, or one-way delays of zero). Default: none.
   */
  readonly profile?: Partial<Pick<Profile, "tuning" | "tuningOverrides" | "advanceMsMax" | "zeroDelay" | "longValues">>;
}

/**
 * The suite's scenarios: generated within `boundsOf(options)`, with `options.profile` laid over
 * each profile before its actions are drawn (so that `advanceMsMax` bounds every time step).
 */
function scenarios(options: SuiteOptions): fc.Arbitrary<Scenario> {
  return scenarioArbitrary(boundsOf(options), options.profile);
}

/**
 * The suite tunings `npm run check -- --tuning` and `npm run mutants -- --tuning` accept: `own`,
 * the swarm's draws; `drift`, every scenario at the largest drift bound the configuration accepts,
 * laid over the swarm's drawn tuning (so that the states other tunings reach, a joiner catching up
 * on a long log or a log cut to its shortest tail, are reached at that bound too), with clocks
 * drawn to drift up to it; `zero-delay`, one-way delays of zero (every message in flight arrives
 * before true time moves); `restart-lower`, for the random suite the swarm's draws (which include
 * restarts whose clock reads lower), for the explorer its own bounds (cli/mutants.ts);
 * `small-steps`, a `batchBytesMax` below two of the world's values laid over the drawn tuning, so
 * that a learner told of several chosen slots at once executes them over several steps, the rest
 * left for later ticks while messages, reads, crashes and changes interleave (the world's counter
 * "execution left for a tick"; every value the world makes is far below the core's default);
 * `long-values`, the tuning's `longValues` laid over the drawn tuning: the store built with a
 * passed-in hash of long texts, as the runtime builds it, and a few client values long enough to
 * go through it (the campaign requires "sometimes: long value folded by the passed-in hash");
 * `bounded-sessions`, feature level 2 laid over the drawn tuning with a session table of
 * `boundedSessionsMax` sessions, fewer than the world's clients, and `boundedSessionBytesMax` bytes
 * of saved outputs, so that sessions are evicted all the time and clients meet `session-expired`
 * (the campaign then requires `boundedSessionsRequired`). The swarm's own draws never raise the
 * level: a suite tuning lays it over them, so every committed seed runs as it did.
 * `opened-sessions`, the same table at feature level 3: clients ask the service for their sessions
 * (`POST /v1/sessions` in the runtime) and open a new one after `session-expired`, and a request
 * whose session is not open never runs (the campaign then requires `openedSessionsRequired`).
 * `resume-transfers`, the world's disk keeping the chunks of a state transfer across a crash, as
 * the runtime's store does, and a restart resuming it (`ReplicaTuning.resumeTransfers`; the
 * campaign then requires `resumeTransfersRequired`); laid over the draws for the same reason.
 */
export const suiteTunings = [
  "own",
  "drift",
  "zero-delay",
  "restart-lower",
  "small-steps",
  "long-values",
  "bounded-sessions",
  "opened-sessions",
  "resume-transfers",
] as const;
export type SuiteTuning = (typeof suiteTunings)[number];

/** The largest drift bound the configuration accepts (10%): the `drift` tuning's. */
export const driftPpmMax = 100_000;

/** The `small-steps` tuning's batchBytesMax: about one of the world's median values (64 bytes). */
export const smallStepBytes = 64;

/** The `bounded-sessions` tuning's sessionsMax: fewer than the world's three clients. */
export const boundedSessionsMax = 2;

/**
 * The `opened-sessions` tuning's sessionsMax: as many as the world's three clients, so that a
 * session is evicted by the sessions opened for retries, duplicates and lost answers of
 * open-session requests and by outputs over the byte bound, while clients still run operations.
 */
export const openedSessionsMax = 3;

/**
 * The `bounded-sessions` tuning's sessionOutputBytesMax: a few saved outputs (a put's is 7 bytes,
 * a read's about 20, an append's its whole value), so that appends evict by bytes too.
 */
export const boundedSessionBytesMax = 48;

/** The suite profile of a tuning: what every generated scenario takes instead of its draws. */
export function suiteProfile(tuning: SuiteTuning): SuiteOptions["profile"] {
  switch (tuning) {
    case "drift":
      return { tuningOverrides: { clockDriftPpmMax: driftPpmMax } };
    case "zero-delay":
      return { zeroDelay: true };
    case "small-steps":
      return { tuningOverrides: { batchBytesMax: smallStepBytes } };
    case "long-values":
      return { tuningOverrides: { longValues: true } };
    case "bounded-sessions":
      return {
        tuningOverrides: {
          featureLevel: 2,
          sessionsMax: boundedSessionsMax,
          sessionOutputBytesMax: boundedSessionBytesMax,
        },
      };
    case "opened-sessions":
      return {
        tuningOverrides: {
          featureLevel: 3,
          sessionsMax: openedSessionsMax,
          sessionOutputBytesMax: boundedSessionBytesMax,
        },
      };
    case "resume-transfers":
      return { tuningOverrides: { resumeTransfers: true } };
    case "own":
    case "restart-lower":
      return undefined;
  }
}

/** `name` as a suite tuning, or an error naming the ones there are. */
export function parseSuiteTuning(name: string): SuiteTuning {
  const found = suiteTunings.find((t) => t === name);
  if (found === undefined)
    throw new Error(`unknown tuning ${JSON.stringify(name)}: expected one of ${suiteTunings.join(", ")}`);
  return found;
}

/** The generator bounds for a suite. */
export function boundsOf(options: SuiteOptions): GeneratorBounds {
  return {
    replicas: options.replicas ?? 3,
    clients: 3,
    keys: 2,
    // Clocks drift as far as the suite's bound allows: the drift tuning's, else the default's.
    driftPpmMax: options.profile?.tuningOverrides?.clockDriftPpmMax ?? defaultTuning.clockDriftPpmMax,
    actionsMin: 1,
    actionsMax: options.actionsMax ?? 300,
  };
}

/** Thrown by the property on a failed run. */
class RunFailed extends Error {
  constructor(readonly failure: Failure) {
    super(`${failure.check}: ${failure.message}`);
  }
}

/** The outcome of one run of a suite. */
export interface OneRun {
  /** The seed that generated the scenario (fast-check's). */
  readonly seed: number;
  /** The first (unshrunk) run: its events and counters count toward the campaign. */
  readonly first: RunResult;
  /** On failure: the shrunk scenario, its failure, and fast-check's path to it. */
  readonly failed: {
    readonly scenario: Scenario;
    readonly failure: Failure;
    readonly path: string;
    readonly shrinks: number;
  } | null;
}

function property(options: SuiteOptions, onRun: (r: RunResult) => void): fc.IPropertyWithHooks<[Scenario]> {
  const runOptions = {
    replicas: options.replicas ?? 3,
    clients: boundsOf(options).clients,
    liveness: options.liveness ?? false,
    ...(options.step === undefined ? {} : { step: options.step }),
  };
  return fc.property(scenarios(options), (scenario) => {
    const r = runScenario(scenario, runOptions);
    onRun(r);
    if (r.failure !== null) throw new RunFailed(r.failure);
  });
}

/** Run one generated scenario of the suite from `seed`; shrink it on failure. */
export function runOne(seed: number, options: SuiteOptions = {}): OneRun {
  let first: RunResult | null = null;
  const details = fc.check(
    property(options, (r) => {
      first ??= r;
    }),
    { seed, numRuns: 1, endOnFailure: options.shrink === false },
  );
  if (first === null) {
    // The run itself threw something other than a check's failure: a defect of the world or a checker.
    const cause = details.errorInstance;
    throw cause instanceof Error ? cause : new Error(`seed ${seed}: the run failed without a result: ${String(cause)}`);
  }
  if (!details.failed) return { seed, first, failed: null };
  const scenario = details.counterexample![0];
  // The last run the property saw may be a shrink candidate that passed; run the counterexample again.
  const again = runScenario(scenario, {
    replicas: options.replicas ?? 3,
    clients: boundsOf(options).clients,
    liveness: options.liveness ?? false,
    ...(options.step === undefined ? {} : { step: options.step }),
  });
  if (again.failure === null)
    throw new Error(`seed ${seed}: the shrunk counterexample passes when run again: the run is not deterministic`);
  return {
    seed,
    first,
    failed: { scenario, failure: again.failure, path: details.counterexamplePath ?? "0", shrinks: details.numShrinks },
  };
}

/**
 * Replay `seed:path` (as printed in reports) and return the counterexample's scenario: the first
 * value fast-check produces at that path. The property fails on it at once, and `endOnFailure`
 * stops fast-check there: a property that passed would make fast-check go on through the rest of
 * the shrink stream at that level (a replay path has no run limit), and the last value it saw
 * would be some later shrink candidate, a different scenario.
 */
export function replayScenario(seed: number, path: string, options: SuiteOptions = {}): Scenario {
  let found: Scenario | null = null;
  fc.check(
    fc.property(scenarios(options), (scenario) => {
      found ??= scenario;
      return false;
    }),
    { seed, path, numRuns: 1, endOnFailure: true },
  );
  if (found === null) throw new Error(`no scenario at ${seed}:${path}`);
  return found;
}

/** The seed of run `index` of a campaign seeded `seed`: a fixed mix, so shards agree. */
export function runSeed(seed: number, index: number): number {
  let h = (seed ^ Math.imul(index + 1, 0x9e3779b9)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}

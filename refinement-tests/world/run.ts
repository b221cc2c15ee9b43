/**
 * One run of the world: boot the cluster, carry out a scenario's actions with every check of
 * proofs/ after every step, then (liveness mode) heal and require progress, and finally judge
 * the whole client history with the linearizability checker. A run is a pure function of its
 * options and scenario; the same inputs give the same verdict, trace and counters.
 *
 * Liveness mode (Chubby and FoundationDB's "safety then liveness"): after the faults, heal every
 * link, resume and restart every replica, stop injecting faults, and let the system run fairly
 * (every message delivered, time advancing in small ticks, clients retrying patiently). Within
 * `leaseholderBoundMs` (2 D + 5 election timeouts) some replica must hold a lease (LivenessLeaseholder:
 * also, and above all, after membership changes, when a removed replica that lagged campaigns in
 * the configuration it knows); within `livenessBoundMs` of simulated time there must be a leader
 * holding a lease, every pending request must be answered, and every member of the leader's
 * configurations (voters and learners, a replica added during the run included) must have
 * executed what the leader executed, to the same state. Then, with at most 3 voters and nothing
 * pending, the election race (`electionRace`): every election timer fires in one tick, and a
 * leaseholder must follow within the round trip, before true time moves again.
 */
import { type KvInput, type KvOutput, type KvState } from "../../spec/kv.ts";
import { AssertionFailure, mulberry32, slotMapEntries, type Step } from "../../impl/core/testing/index.ts";
import { checkLinearizable, type Operation } from "../../impl/history/linearizability.ts";
import { kvModel } from "../../impl/history/history.ts";
import { ViolationFound, type Violation } from "../../proofs/violation.ts";
import { WorldChecker } from "../../proofs/world-checker.ts";
import { showAction, type Scenario } from "./actions.ts";
import { machineStopped, runPrelude } from "./preludes.ts";
import { tunings, type ReplicaTuning } from "./tuning.ts";
import { World, type KvApp, type TraceEntry } from "./world.ts";

/** How to run. */
export interface RunOptions {
  /** 3 or 5. Default 3. */
  readonly replicas?: number;
  /** Clients. Default 3. */
  readonly clients?: number;
  /** Safety only (default) or safety then liveness. */
  readonly liveness?: boolean;
  /** The replica's step function (the bug zoo passes broken ones). Default impl/core's. */
  readonly step?: Step;
  /** Keep a readable trace. Default false. */
  readonly record?: boolean;
  /** Simulated time the liveness phase may take, ms. Default 20,000. */
  readonly livenessBoundMs?: number;
  readonly tuning?: ReplicaTuning;
  /** The store replica index i runs (`WorldOptions.appOf`; a test breaks one). Default: the tuning's. */
  readonly appOf?: (index: number) => KvApp;
  /**
   * Which checks run: "all" (default: every check after every step, linearizability at the end),
   * "steps" (no linearizability), "none" (the world alone: for measuring the checks' overhead).
   */
  readonly checks?: "all" | "steps" | "none";
  /**
   * Called once the world and its checker exist, before the boot: a caller that records the run
   * (the trace explorer) wraps `world.observer` here. Default: none.
   */
  readonly tap?: (world: World, checker: WorldChecker<KvState, KvInput, KvOutput>) => void;
}

/** A violation with where it happened. */
export interface Failure extends Violation {
  /** The world step at which it was found (1-based), or the last step for end-of-run checks. */
  readonly step: number;
  /** Index of the scenario action being carried out (-1: boot; actions.length: liveness phase or end of run). */
  readonly actionIndex: number;
  /** True time of the step. */
  readonly trueTime: number;
}

/** What a run found and counted. */
export interface RunResult {
  readonly failure: Failure | null;
  /** World steps carried out and checked. */
  readonly events: number;
  /** Spec actions matched, rare states reached, world faults: name -> count. */
  readonly counters: ReadonlyMap<string, number>;
  readonly operations: number;
  readonly trace: readonly TraceEntry[] | null;
  readonly world: World;
}

/** Run one scenario. Never throws for a protocol failure: it is returned as `failure`. */
export function runScenario(scenario: Scenario, options: RunOptions = {}): RunResult {
  const world = new World({
    replicas: options.replicas ?? 3,
    clients: options.clients ?? 3,
    seed: scenario.seed,
    tuning: options.tuning ?? tuningOf(scenario),
    ...(options.step === undefined ? {} : { step: options.step }),
    record: options.record ?? false,
    noticesDelayed: (scenario.profile.weights.durable ?? 0) > 0,
    ...(options.appOf === undefined ? {} : { appOf: options.appOf }),
  });
  const checker = new WorldChecker<KvState, KvInput, KvOutput>(world, world.app, {
    leaseMs: world.tuning.leaseMs,
    alpha: world.tuning.reconfigAlphaSlots,
    initialMembers: world.initialMembers,
  });
  const checks = options.checks ?? "all";
  if (checks !== "none") world.observer = (step) => checker.observe(step);
  options.tap?.(world, checker);
  let actionIndex = -1;
  let failure: Failure | null = null;
  const fail = (v: Violation): void => {
    failure = { ...v, step: world.events, actionIndex, trueTime: world.trueTime };
  };
  try {
    world.boot();
    if (scenario.profile.warmStart) {
      world.note("warm-up: fault-free until the first leader holds a lease");
      warmUp(world);
    }
    runPrelude(world, scenario.profile.prelude ?? "none", scenario.profile.pick ?? 0, {
      driftApart: scenario.profile.driftApart === true,
    });
    if (scenario.profile.machineStopMs !== undefined) machineStopped(world, scenario.profile.machineStopMs);
    world.note("the scenario's actions");
    const zeroDelay = scenario.profile.zeroDelay === true;
    for (actionIndex = 0; actionIndex < scenario.actions.length; actionIndex++) {
      const action = scenario.actions[actionIndex]!;
      if (zeroDelay && action.t === "advance") deliverUntilQuiet(world);
      world.apply(action);
    }
    actionIndex = scenario.actions.length;
    if (options.liveness === true) world.note("liveness phase: heal, resume, restart, no more faults");
    if (options.liveness === true) {
      const stallMsMax = scenario.profile.livenessStallMsMax ?? 0;
      const load = stallMsMax > 0 ? { stallMsMax, seed: scenario.seed } : undefined;
      livenessPhase(world, checker, options.livenessBoundMs ?? 20_000, fail, load);
    }
  } catch (error) {
    if (error instanceof ViolationFound) fail(error.violation);
    else if (error instanceof AssertionFailure)
      fail({ check: "core assertion", level: "Core", message: error.message });
    else throw error;
  }
  if (failure === null && checks === "all") {
    const lin = linearizability(world);
    if (lin !== null) fail(lin);
  }
  const counters = new Map<string, number>(checker.tally.counts);
  for (const [k, v] of world.counters) counters.set(`world: ${k}`, v);
  return { failure, events: world.events, counters, operations: world.ops.length, trace: world.trace, world };
}

/**
 * The replica tuning a scenario runs with: its profile's, with the profile's overrides, and long
 * values and reads answered late where the profile drew them.
 */
export function tuningOf(scenario: Scenario): ReplicaTuning {
  const base = tunings[scenario.profile.tuning ?? 0] ?? tunings[0]!;
  const overrides = scenario.profile.tuningOverrides;
  const tuning = overrides === undefined ? base : { ...base, ...overrides };
  const { longValues, readsLateMsMax, readsWrong } = scenario.profile;
  if (longValues !== true && readsLateMsMax === undefined) return tuning;
  return {
    ...tuning,
    ...(longValues === true ? { longValues } : {}),
    ...(readsLateMsMax === undefined ? {} : { readsLateMsMax }),
    ...(readsWrong === true ? { readsWrong } : {}),
  };
}

/**
 * Deliver every deliverable message, and every one those deliveries send, until none is left
 * deliverable (messages on cut links wait): a profile with zero one-way delays does this before
 * true time moves. Bounded, in case replicas answer one another forever.
 */
function deliverUntilQuiet(world: World): void {
  for (let n = 0; n < 10_000 && world.deliverOne(); n++);
}

/** Fault-free warm-up: let the cluster elect its first leader (at most 5 s of simulated time). */
export function warmUp(world: World): void {
  const start = world.trueTime;
  while (world.trueTime - start < 5_000 && world.leaseHolders().length === 0) {
    world.advance(50);
    world.deliverAll();
  }
}

/**
 * How soon after the faults stop a replica must hold a lease (and so answer reads alone): 2 D + 5
 * electionTimeoutMsMax, each timeout stretched by three stalls under load (the timer fires late,
 * the Prepare and the Promise wait for their receivers). Every grant given before the heal runs
 * out within D, a restarted replica waits D (rule L4), and then an election takes one timeout, a
 * few when candidates duel or a candidate first has to step down behind a snapshot (rule T2) or
 * catch up to the configuration in force (a lagging removed voter is refused, rule R4). With the
 * default tuning, 3.6 s (12.6 s with stalls up to 600 ms).
 */
export function leaseholderBoundMs(tuning: ReplicaTuning, stallMsMax = 0): number {
  return 2 * tuning.leaseMs + 5 * (tuning.electionTimeoutMsMax + 3 * stallMsMax);
}

/**
 * The liveness phase under load (`Profile.livenessStallMsMax`): the longest stall, and the seed of
 * the generator the stalls are drawn from.
 */
export interface LivenessLoad {
  readonly stallMsMax: number;
  readonly seed: number;
}

/**
 * Replicas scheduled as a loaded machine schedules processes: each runs for one tick, then stalls
 * for a time drawn uniformly from [0, stallMsMax] (mulberry32 from the seed), paused meanwhile: its
 * timers fire late, and the messages sent to it wait and are delivered after its tick, all at once.
 */
class Stalls {
  private prng: number;
  private readonly resumeAt: number[];

  constructor(
    private readonly world: World,
    private readonly load: LivenessLoad,
  ) {
    this.prng = load.seed >>> 0;
    this.resumeAt = world.replicas.map(() => world.trueTime + this.draw());
  }

  private draw(): number {
    const next = mulberry32(this.prng);
    this.prng = next.prng;
    return Math.floor((next.value / 2 ** 32) * (this.load.stallMsMax + 1));
  }

  /** Before a tick of `tickMs`: run the replicas whose stall is over for that tick, pause the others. */
  schedule(tickMs: number): void {
    const now = this.world.trueTime;
    for (const r of this.world.replicas) {
      if (r.state === null) continue;
      const runs = now >= this.resumeAt[r.index]!;
      this.world.stall(r.index, !runs);
      if (runs) this.resumeAt[r.index] = now + tickMs + this.draw();
    }
  }
}

/**
 * The liveness phase: heal every link, resume and restart every replica, stop faults, then run
 * fault-free (deliveries, time in 10 ms steps, client retries) until the cluster converges (a
 * leaseholder, every request answered, every member caught up, every removed replica retired),
 * failing LivenessLeaseholder or Liveness past their bounds. The random suites run it after a
 * run's faults; the explorer's bounded-liveness mode runs it from every state it finds. With
 * `load`, the replicas run one tick at a time between stalls (`Stalls`).
 */
export function livenessPhase(
  world: World,
  checker: WorldChecker<KvState, KvInput, KvOutput>,
  boundMs: number,
  fail: (v: Violation) => void,
  load?: LivenessLoad,
): void {
  world.disarmCrashes();
  world.healAll();
  world.resumeAll();
  world.restartAll();
  const start = world.trueTime;
  const tickMs = 10;
  let sinceRetry = 0;
  let leaseholderAt: number | null = null;
  const leaseholderBound = leaseholderBoundMs(world.tuning, load?.stallMsMax ?? 0);
  const changed = checker.configurations.configs.length > 1;
  const stalls = load === undefined ? null : new Stalls(world, load);
  while (world.trueTime - start <= boundMs) {
    world.deliverAll();
    if (leaseholderAt === null && world.leaseHolders().length === 1) {
      leaseholderAt = world.trueTime - start;
      checker.tally.add("liveness: ms to a leaseholder", Math.round(leaseholderAt));
      if (changed) checker.tally.add("liveness: leaseholder after a membership change");
    }
    if (leaseholderAt === null && world.trueTime - start > leaseholderBound) {
      fail({
        check: "LivenessLeaseholder",
        level: "Liveness",
        message: `${leaseholderBound} ms after the faults stopped (every link healed, every replica up), no replica holds a lease (${world.leaseHolders().length} holders)${changed ? `, after ${checker.configurations.configs.length - 1} membership changes` : ""}`,
      });
      return;
    }
    if (
      world.pendingOps() === 0 &&
      world.leaseHolders().length === 1 &&
      world.membersConverged() &&
      world.removedNotRetired().length === 0
    ) {
      checker.tally.add("liveness: converged");
      checker.tally.add("liveness: ms to converge", Math.round(world.trueTime - start));
      electionRace(world, checker, fail);
      return;
    }
    stalls?.schedule(tickMs);
    world.advance(tickMs);
    sinceRetry += tickMs;
    if (sinceRetry >= 100) {
      sinceRetry = 0;
      world.retryAll();
    }
  }
  const leaders = world.leaseHolders();
  const removed = world.removedNotRetired();
  fail({
    check: "Liveness",
    level: "Liveness",
    message: `${boundMs} ms after the faults stopped (every link healed, every replica up): ${leaders.length === 1 ? "a leader holds a lease" : `${leaders.length} replicas hold a lease`}, ${world.pendingOps()} client requests unanswered${leaders.length === 1 && !world.membersConverged() ? ", some member has not caught up with the leader" : ""}${removed.length === 0 ? "" : `, removed replicas ${removed.join(",")} have not retired`}`,
  });
}

/**
 * The election race, after the liveness phase converged (LivenessElectionRace): every voter's
 * election timer fires in one tick, and before true time moves again some replica must hold a
 * lease. True time jumps by more than a lease and an election timeout: every follower campaigns,
 * and the leader, its lease lapsed, keeps leading if CheckQuorum counts the time it ran (the
 * jump is a stall of its own) or steps down if it counts the clock. What they sent is lost (a
 * follower that promised such a ballot b would refuse the same replica's next ballot while its
 * grant to b lasts, proofs/leases.md, "What the rule leaves"), and time jumps again: every
 * follower's and candidate's timer fires in that one tick and all campaign together, each with
 * its own ballot, while a leader that kept leading sends its heartbeat, renewing its self-grant.
 * Then every message is delivered, and every one those deliveries send, with true time still.
 * With rule L6 a candidate, or a leader whose lease lapsed, meeting a higher ballot yields and
 * promises it at once, so with 3 voters the highest ballot has two promises one round trip after
 * the Prepares cross, in any order of delivery, and no timer is needed; a candidate that keeps its
 * self-grant refuses the others, and so does a lapsed leader whose promise a candidate needs (two
 * voters), and only a resend after a timer elects anyone. The race runs only where one round
 * trip is what the real replica guarantees: at most 3 voters (with 5, a candidate promises the
 * first higher ballot it meets and grants it, so the highest may gather too few promises, and
 * the election takes timers), no configuration change pending, no vote above the leader's
 * executed prefix (a change in the log would be executed in the race and change the quorum), and
 * nothing left for the operator's tool to ask (a leader that outlives the jump would be asked for
 * that change and propose it in the race).
 */
function electionRace(
  world: World,
  checker: WorldChecker<KvState, KvInput, KvOutput>,
  fail: (v: Violation) => void,
): void {
  const leader = world.replicas[world.leaseHolders()[0]!]!.state!;
  const configs = leader.learner.configs;
  if (configs.length !== 1 || configs[0]!.voters.length > 3) return;
  const executed = leader.learner.executedUpTo;
  for (const r of world.replicas)
    if (r.state !== null && slotMapEntries(r.state.acceptor.votes, executed + 1).length > 0) return;
  if (world.operatorFollowingUp()) return;
  world.resumeAll();
  const jump = 2 * (world.tuning.leaseMs + world.tuning.electionTimeoutMsMax);
  world.note("election race: every election timer fires in one tick");
  world.advance(jump);
  while (world.inFlight.length > 0) world.apply({ t: "drop", i: 0 });
  world.advance(jump);
  deliverUntilQuiet(world);
  const holders = world.leaseHolders().length;
  if (holders === 1) {
    checker.tally.add("liveness: election race won within one round trip");
    return;
  }
  fail({
    check: "LivenessElectionRace",
    level: "Liveness",
    message: `every replica's election timer fired in one tick; once every message was delivered, with true time still, ${holders} replicas hold a lease`,
  });
}

/** Linearizability of the world's whole client history so far (pending operations: unknown outcomes). */
export function linearizability(world: World): Violation | null {
  // An operation refused as reusing its sequence number never ran: it is no part of the history.
  const ops: Operation<KvInput, KvOutput>[] = world.ops
    .filter((op) => !op.refused)
    .map((op) => ({
      id: op.opId,
      client: op.client,
      input: op.input,
      invoke: op.invokedAt,
      complete: op.completedAt ?? Number.POSITIVE_INFINITY,
      output: op.output,
    }));
  const result = checkLinearizable(kvModel, ops, { stepsMaxPerPartition: 2_000_000 });
  if (result.verdict === "linearizable") return null;
  const bad = result.partitions.find((p) => p.verdict !== "linearizable")!;
  const show = (o: Operation<KvInput, KvOutput>): string =>
    `${o.client} ${JSON.stringify(o.input)} [${o.invoke}, ${o.complete}] -> ${JSON.stringify(o.output)}`;
  return {
    check: "Linearizability",
    level: "Linearizability",
    message:
      bad.verdict === "unknown"
        ? `key ${bad.partition}: undecided within the search budget (${bad.steps} steps)`
        : bad.refutation !== undefined
          ? `key ${bad.partition}: no linearization: ${bad.refutation.reason}: ${bad.refutation.operations.map(show).join("; ")}`
          : `key ${bad.partition}: no linearization. Longest linearizable prefix: ${(bad.longestPrefix ?? []).map(show).join("; ") || "(empty)"}. Cannot follow it: ${(bad.stuck ?? []).map(show).join("; ")}`,
  };
}

/** The scenario's actions as numbered lines (for regression files and reports). */
export function showScenario(s: Scenario): string {
  return [
    `seed ${s.seed}${s.profile.warmStart ? ", warm start" : ", cold start"}, tuning ${s.profile.tuning ?? 0}${s.profile.prelude === undefined || s.profile.prelude === "none" ? "" : `, prelude ${s.profile.prelude} (pick ${s.profile.pick ?? 0})`}`,
    ...s.actions.map((a, i) => `${i} ${showAction(a)}`),
  ].join("\n");
}

/**
 * One nemesis run, end to end: start a cluster of real replica processes on a network layer
 * (the fault relays on loopback, or one network namespace per replica), run concurrent clients that record a history,
 * carry out a seeded fault schedule,
 * heal everything, read every key through the leader, wait until every replica shows the same
 * executed slot and state digest, stop the replicas cleanly, then check: the history
 * (linearizable, no acknowledged write lost, exactly-once), the replicas' digests, and the
 * merged traces (replayed through `step`, checked by proofs/world-checker.ts and trace-checks.ts). Writes the
 * history (re-checkable with `npm run check-history`), a JSON report and the run as a trace explorer page (view.html).
 *
 * The schedule is a function of the seed; the processes' timing is not, so two runs with one
 * seed inject the same faults at the same offsets but may see different interleavings.
 */
import fs from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { sleep } from "../../impl/runtime/testing.ts";
import { appendBytesRan, appendBytesRefused, openedEvicted } from "../../proofs/service-level.ts";
import { featureLevelValueBytes } from "../../spec/service.ts";
import {
  monotonicMs,
  NemesisCluster,
  sumBurstCounters,
  type BurstCounters,
  type ClockSkew,
  type Life,
} from "./cluster.ts";
import { checkHistoryWithPage, type HistoryReport } from "./history-checks.ts";
import { livenessBoundMs, MembershipChanges, type MembershipChange } from "./membership.ts";
import { Nemesis, type FaultCounts, type InjectedFault } from "./nemesis.ts";
import type { NetworkKind } from "./network.ts";
import {
  isBehindKind,
  isMembershipKind,
  planSchedule,
  seededRandom,
  type FaultKind,
  type PlannedFault,
} from "./schedule.ts";
import {
  checkSteps,
  checkTraces,
  replayMerged,
  type LeaseInterval,
  type MergedReplay,
  type TraceReport,
} from "./trace-checks.ts";
import type { ReplayStep } from "./trace-replay.ts";
import { raiseFeatureLevel, type Upgrade } from "./upgrade.ts";
import { isSessionKey, releaseValues, Workload, writeHistoryFile, type RecordedOp } from "./workload.ts";
import { NemesisViewRecorder, nemesisViewFile } from "../view/nemesis.ts";
import { pageHtml } from "../view/page.ts";

/** Options of {@link runNemesis}. Limits state their defaults. */
export interface NemesisOptions {
  readonly seed: number;
  /** 3 or 5. Default 3. */
  readonly replicas?: number;
  /** Spare replicas for the membership changes (the `member-*` kinds). Default 0. */
  readonly spares?: number;
  /** Test-only disk modes of every replica (cluster.ts). Default: power loss on, the broken store off. */
  readonly diskFaults?: { readonly powerLoss: boolean; readonly ackBeforeSync: boolean };
  /** Faults start within this many milliseconds of the origin. */
  readonly faultsMs: number;
  /** Folder for everything the run writes (created). */
  readonly out: string;
  /** Concurrent clients. Default 16. */
  readonly clients?: number;
  /** Fault kinds to use (default: all valid ones) and whether to cycle through them in order. */
  readonly kinds?: readonly FaultKind[];
  readonly inOrder?: boolean;
  /** Scales fault durations and gaps. Default 1. */
  readonly pace?: number;
  /** Load without faults before the first one, in milliseconds. Default 3000. */
  readonly warmupMs?: number;
  /** Core configuration overrides. Default: the core's defaults. */
  readonly core?: Record<string, unknown>;
  /**
   * Halfway through the faults (before the first one planned at `faultsMs / 2` or later), between
   * two faults: a rolling upgrade to this `featureLevel` (upgrade.ts), every member restarted in
   * turn with it in its core configuration. Default: none, every replica keeps `core`'s level.
   */
  readonly raiseFeatureLevel?: number;
  /** Skew every replica's clock (offset, and a rate within the drift bound). Default true. */
  readonly skewClocks?: boolean;
  /** Explicit clocks per replica (overrides skewClocks); used by the beyond-the-bound experiment. */
  readonly clocks?: ReadonlyMap<number, ClockSkew>;
  /** Delay of a commit on a slowed disk, in milliseconds. Default 60. */
  readonly slowFsyncDelayMs?: number;
  /** Load after healing, before the final reads, in milliseconds. Default 3000. */
  readonly quietMs?: number;
  /**
   * The network layer: `relay` (loopback and frame relays) or `hosts` (a network namespace per replica). Default relay.
   */
  readonly net?: NetworkKind;
  /** Progress lines (about one per second). */
  readonly onProgress?: (line: string) => void;
  /**
   * Told the run's replayed steps, merged in true time, once the run's checks went over them (a
   * test alters them and checks again, without replaying the traces a second time). Default none:
   * the steps are checked as they are replayed, never all held in memory.
   */
  readonly onReplay?: (replay: MergedReplay & { readonly steps: readonly ReplayStep[] }) => void;
  /**
   * Aborted (the command's SIGHUP, SIGINT or SIGTERM; the reason names the signal): the run stops
   * injecting, heals what it broke (every stopped replica continued), stops its clients, stops every
   * replica with SIGTERM, checks the history it has and writes it with the report, which says
   * `interrupted`; the traces are not checked (that can take minutes). Default: never aborted.
   */
  readonly signal?: AbortSignal;
}

/** Everything a run found; also written as report.json. */
export interface NemesisReport {
  readonly format: "paxos-lease/nemesis-report@1";
  readonly ok: boolean;
  /**
   * Why the run stopped early (the signal, and when), or absent: an interrupted run is never `ok`,
   * its history is checked as far as it got and its traces are not.
   */
  readonly interrupted?: string;
  readonly seed: number;
  readonly replicas: number;
  readonly clients: number;
  /** The network layer, how each kind of link fault was made on it, and the namespaces it made (hosts). */
  readonly network: {
    readonly kind: NetworkKind;
    readonly mechanisms: Readonly<Record<string, string>>;
    readonly namespaces: readonly string[];
  };
  readonly core: Record<string, unknown>;
  readonly clocks: Readonly<Record<string, ClockSkew>>;
  /** Monotonic ms of the run's origin: history and fault times are relative to it. */
  readonly originMonotonicMs: number;
  readonly schedule: readonly PlannedFault[];
  readonly faults: readonly InjectedFault[];
  /** The membership changes made during the faults, and the liveness bound they were held to. */
  readonly membership: { readonly changes: readonly MembershipChange[]; readonly livenessBoundMs: number };
  /**
   * For each fault that ended (membership changes excepted): how long after its end some replica
   * held a lease, by the replicas' traces (0 when one held it throughout), or null if none did.
   */
  readonly recovery: readonly {
    readonly kind: FaultKind;
    readonly endedAt: number;
    readonly leaseholderAfterMs: number | null;
    /** The longest time no replica held a lease, from the fault's start until a leaseholder after its end. */
    readonly leaselessMs: number | null;
  }[];
  readonly lives: readonly Life[];
  readonly history: HistoryReport;
  readonly convergence: {
    readonly ok: boolean;
    readonly executedSlot: number | null;
    readonly digests: Readonly<Record<string, string>>;
    readonly message: string;
  };
  readonly traces: Omit<TraceReport, "leaseIntervals"> | { readonly error: string };
  /**
   * Runtime states the run reached that no trace shows, summed over the members running at its
   * end (each counts since its last start, so this is a lower bound); null when not read.
   */
  readonly reached: ReachedCounters | null;
  /**
   * The required interaction counters ({@link reachedRequired}) that stayed at zero although the
   * run injected a fault that drives to them: the run did not test what it was meant to.
   */
  readonly neverReached: readonly string[];
  readonly anomalies: readonly string[];
  readonly violations: readonly string[];
  readonly durationsMs: Readonly<Record<string, number>>;
  readonly files: {
    readonly history: string;
    readonly report: string;
    readonly cluster: string;
    /** The trace view of the replayed traces and the operations (`npm run view -- FOLDER` reads it). */
    readonly view: string;
    /** The same view as a trace explorer page: operations, faults, lives, leases and every step. */
    readonly page: string;
    /** The HTML report of a history that is not linearizable (check-history's). */
    readonly linearizability?: string;
  };
  /** The command that runs the same schedule again (process timing is not deterministic, the schedule is). */
  readonly replay: string;
  /** The rolling upgrade of the feature level the run made halfway (`raiseFeatureLevel`), if any. */
  readonly upgrade?: Upgrade;
}

/** Default drift bound of the core (ppm); skewed rates stay within 80% of it. */
const defaultDriftPpm = 1000;

/** Per replica: an offset of up to an hour ahead and a rate within the drift bound. */
export function skewedClocks(seed: number, replicas: number, driftPpm: number): Map<number, ClockSkew> {
  const random = seededRandom(seed ^ 0x2545f491);
  const clocks = new Map<number, ClockSkew>();
  for (let id = 1; id <= replicas; id++) {
    const rate = 1 + ((2 * random() - 1) * 0.8 * driftPpm) / 1e6;
    clocks.set(id, { rate: Number(rate.toFixed(7)), offsetMs: Math.round(random() * 3_600_000) });
  }
  return clocks;
}

/**
 * The spare replicas of `npm run nemesis` without `--spares` (`runNemesis` has none without
 * `spares`): the command's runs draw membership changes unless told otherwise.
 */
export const commandSparesDefault = 4;

/**
 * `npm run nemesis` with the flags that give `options`' schedule, workload and core settings (the
 * overrides but the level and the table's bound as `--core JSON`, which command.ts parses back to
 * the same object, so that a failure's replay runs with them). `--spares` is named
 * where the run's spares are not the command's default: a run of `runNemesis` without spares (a
 * test's) says `--spares 0`, without which the command would start 4 and draw other faults, and a
 * command run without the flag says nothing of them.
 */
export function replayCommand(options: NemesisOptions): string {
  const flags = [
    `--seed ${options.seed}`,
    `--minutes ${options.faultsMs / 60_000}`,
    `--replicas ${options.replicas ?? 3}`,
    `--clients ${options.clients ?? 16}`,
  ];
  const spares = options.spares ?? 0;
  if (spares !== commandSparesDefault) flags.push(`--spares ${spares}`);
  if (options.kinds !== undefined) flags.push(`--kinds ${options.kinds.join(",")}`);
  if (options.inOrder === true) flags.push("--in-order");
  if (options.pace !== undefined && options.pace !== 1) flags.push(`--pace ${options.pace}`);
  if (options.quietMs !== undefined && options.quietMs !== 3000) flags.push(`--quiet-ms ${options.quietMs}`);
  if (options.warmupMs !== undefined && options.warmupMs !== 3000) flags.push(`--warmup-ms ${options.warmupMs}`);
  if (options.skewClocks === false) flags.push("--no-skew");
  if (options.net !== undefined && options.net !== "relay") flags.push(`--net ${options.net}`);
  const { featureLevel, sessionsMax, ...core } = options.core ?? {};
  if (featureLevel !== undefined) flags.push(`--feature-level ${JSON.stringify(featureLevel)}`);
  if (options.raiseFeatureLevel !== undefined) flags.push(`--raise-feature-level ${options.raiseFeatureLevel}`);
  if (sessionsMax !== undefined) flags.push(`--sessions-max ${JSON.stringify(sessionsMax)}`);
  if (Object.keys(core).length > 0) flags.push(`--core ${shellQuoted(JSON.stringify(core))}`);
  return `npm run nemesis -- ${flags.join(" ")}`;
}

/** `text` as one word of a POSIX shell: in single quotes, each quote within closed, escaped and reopened. */
function shellQuoted(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/**
 * The snapshot interval by bytes of a run whose schedule holds follower-behind-snapshot or a
 * transfer-kill fault (unless the core overrides name one): sixteen of its 64 KiB writes make a
 * snapshot slot, where the core's default (128 MiB) would take longer than the fault lasts.
 */
export const behindSnapshotIntervalBytes = 1024 * 1024;

/** The core overrides of a run: `options.core`, and the snapshot interval its schedule needs. */
export function coreOf(
  options: Pick<NemesisOptions, "core">,
  schedule: readonly PlannedFault[],
): Record<string, unknown> {
  const core = { ...(options.core ?? {}) };
  if (schedule.some((f) => isBehindKind(f.kind)) && core.snapshotIntervalBytes === undefined)
    core.snapshotIntervalBytes = behindSnapshotIntervalBytes;
  return core;
}

/** What the run's clients counted (workload.ts). */
export interface ClientCounts {
  /** Writes answered `session-expired`, each followed by a new session (`sessionsBounded`). */
  readonly sessionsExpired: number;
  /** Sessions the service opened for the clients, `POST /v1/sessions` answered (`sessionsOpenedOf`). */
  readonly sessionsOpened: number;
  /** Of `sessionsExpired`: those met under a session the service opened (it was evicted). */
  readonly openedSessionsExpired: number;
  /** Appends refused in bytes, over 1 MiB of UTF-8 (`413`, `"unit": "bytes"`: feature level 4; `valueBytesOf`). */
  readonly appendsRefusedInBytes: number;
  /** Appends answered with a value over 1 MiB of UTF-8 (executed below level 4). */
  readonly appendsOverBytesRan: number;
  /** 1 once a rolling upgrade (`raiseFeatureLevel`) saw the leader's log at its level, else 0. */
  readonly featureLevelRaised: number;
}

/** What a run's `reached` line counts: the members' counters, summed, and the harness's and the clients' own. */
export type ReachedCounters = BurstCounters & FaultCounts & ClientCounts;

/**
 * Whether a run's session table is smaller than its clients, at feature level 2 or above (the core
 * overrides `featureLevel` and `sessionsMax`, `npm run nemesis -- --feature-level 2 --sessions-max N`):
 * its clients then go on under a new session after `session-expired` (workload.ts; at level 2 each
 * session opens with a put of its own, at level 3 the service opens it, `sessionsOpenedOf`), and
 * the run must reach `sessionsRequired`.
 */
export function sessionsBoundedOf(core: Record<string, unknown>, clients: number): boolean {
  const level = typeof core.featureLevel === "number" ? core.featureLevel : 1;
  return level >= 2 && typeof core.sessionsMax === "number" && core.sessionsMax < clients;
}

/**
 * Whether the service opens a run's sessions: feature level 3 (`npm run nemesis -- --feature-level 3`).
 * Its clients then open each session with `POST /v1/sessions` and a new one after
 * `session-expired` (workload.ts), and the run must reach `openedSessionsRequired` (the evictions
 * among them only when its table is smaller than its clients, `sessionsBoundedOf`).
 */
export function sessionsOpenedOf(core: Record<string, unknown>): boolean {
  return typeof core.featureLevel === "number" && core.featureLevel >= 3;
}

/**
 * Whether a run's clients write non-ASCII text over 1 MiB of UTF-8 (workload.ts, the `bytes`
 * client): a run at feature level 4 (`npm run nemesis -- --feature-level 4`), or one raised to it
 * (`--raise-feature-level 4`). It must then reach `valueBytesRequired`.
 */
export function valueBytesOf(core: Record<string, unknown>, raiseFeatureLevel?: number): boolean {
  const level = typeof core.featureLevel === "number" ? core.featureLevel : 1;
  return Math.max(level, raiseFeatureLevel ?? 1) >= featureLevelValueBytes;
}

/**
 * The `bytes` client's pause between its writes, in milliseconds: below level 4 each append it
 * makes is answered (and traced) with the whole value of over 1 MiB.
 */
const valueBytesEveryMs = 500;

/** Run the nemesis once. Never throws for a violation: the report says `ok: false`. */
/**
 * Make `out` for a new run, refusing a folder that already holds files: a run's checks read every
 * trace, history and log in it, so an earlier run's files would be checked as this run's (a
 * replica's data from the earlier run, for one, would be its state at start).
 */
export function freshRunFolder(out: string): void {
  if (fs.existsSync(out) && fs.readdirSync(out).length > 0)
    throw new Error(
      `${out} holds an earlier run's files; remove it or choose another folder (its checks would read them as this run's)`,
    );
  fs.mkdirSync(out, { recursive: true });
}

export async function runNemesis(options: NemesisOptions): Promise<NemesisReport> {
  const replicas = options.replicas ?? 3;
  const progress = options.onProgress ?? (() => undefined);
  const given = options.core ?? {};
  const driftPpm = typeof given.clockDriftPpmMax === "number" ? given.clockDriftPpmMax : defaultDriftPpm;
  const clocks =
    options.clocks ??
    (options.skewClocks === false ? new Map<number, ClockSkew>() : skewedClocks(options.seed, replicas, driftPpm));
  const spares = options.spares ?? 0;
  const schedule = planSchedule({
    seed: options.seed,
    faultsMs: options.faultsMs,
    replicas,
    spares,
    pace: options.pace ?? 1,
    ...(options.warmupMs === undefined ? {} : { warmupMs: options.warmupMs }),
    ...(options.kinds === undefined ? {} : { kinds: options.kinds }),
    inOrder: options.inOrder ?? false,
  });
  const core = coreOf(options, schedule);
  freshRunFolder(options.out);
  const cluster = await NemesisCluster.create({
    replicas,
    spares,
    ...(options.diskFaults === undefined ? {} : { diskFaults: options.diskFaults }),
    dir: path.join(options.out, "cluster"),
    core,
    clocks,
    slowFsyncDelayMs: options.slowFsyncDelayMs ?? 60,
    seed: options.seed,
    net: options.net ?? "relay",
    // Only a run that may slow its links needs a delay in the path (on hosts without netem: a relay).
    delays: schedule.some((f) => f.kind === "slow-links"),
  });
  for (const line of cluster.network.notes()) progress(line);
  const durations: Record<string, number> = {};
  const anomalies: string[] = [];
  const violations: string[] = [];
  const started = monotonicMs();
  let origin = started;
  let workload: Workload | undefined;
  let nemesis: Nemesis | undefined;
  let membership: MembershipChanges | undefined;
  const finalReads = new Map<string, number>();
  let reached: ReachedCounters | null = null;
  let upgrade: Upgrade | undefined;
  let convergence: NemesisReport["convergence"] = {
    ok: false,
    executedSlot: null,
    digests: {},
    message: "not reached",
  };
  // Interrupted: stop injecting at once; what follows heals, stops and writes what the run has.
  let interrupted: string | undefined;
  let onInterrupted = (): void => undefined;
  const interruption = new Promise<void>((resolve) => (onInterrupted = resolve));
  const interrupt = (): void => {
    interrupted = `${String(options.signal?.reason ?? "aborted")} at ${((monotonicMs() - origin) / 1000).toFixed(1)} s of the run`;
    progress(`interrupted (${interrupted}): healing, stopping the clients and every replica, writing what the run has`);
    nemesis?.stop();
    onInterrupted();
  };
  if (options.signal?.aborted === true) interrupt();
  else options.signal?.addEventListener("abort", interrupt, { once: true });
  try {
    for (const id of cluster.memberIds) cluster.start(id);
    const leader = await Promise.race([cluster.waitForLeader(90_000), interruption.then(() => 0)]);
    if (interrupted !== undefined) throw new Interrupted();
    if (leader === null)
      throw new Error(
        `no leader within 90 s of starting; replica logs:\n${cluster.ids.map((id) => cluster.tail(id, 15)).join("\n")}`,
      );
    durations.startup = monotonicMs() - started;
    origin = monotonicMs();
    workload = new Workload({
      endpoints: cluster.endpoints(),
      token: cluster.token,
      clients: options.clients ?? 16,
      seed: options.seed,
      origin,
      agent: () => cluster.network.agent(),
      sessionsBounded: sessionsBoundedOf(core, options.clients ?? 16),
      sessionsOpened: sessionsOpenedOf(core),
      ...(valueBytesOf(core, options.raiseFeatureLevel) ? { valueBytesEveryMs } : {}),
    });
    const current = workload;
    const activeFaults: InjectedFault[] = [];
    const runTime = (): number => monotonicMs() - origin;
    membership = new MembershipChanges(cluster, runTime, () => nemesis?.faultActive() ?? false, progress);
    nemesis = new Nemesis(
      cluster,
      origin,
      (fault, phase) => {
        if (phase === "start") activeFaults.push(fault);
        else activeFaults.splice(activeFaults.indexOf(fault), 1);
        progress(
          `${(current.now() / 1000).toFixed(1)}s ${phase === "start" ? "fault" : "healed"}: ${fault.label}${phase === "end" && fault.effect !== undefined ? ` (${fault.effect})` : ""}`,
        );
      },
      spares > 0 ? membership : null,
    );
    nemesis.honestOps = () => current.ops;
    workload.start();
    const ticker = setInterval(() => progress(progressLine(current, activeFaults)), 1000);
    try {
      // A rolling upgrade halfway, between two faults, once the changes being made are done.
      const half = schedule.findIndex((f) => f.at >= options.faultsMs / 2);
      const split = options.raiseFeatureLevel === undefined ? schedule.length : half < 0 ? schedule.length : half;
      if (interrupted === undefined) await nemesis.run(schedule.slice(0, split));
      if (interrupted === undefined && options.raiseFeatureLevel !== undefined) {
        await Promise.race([membership.settled(), interruption]);
        if (interrupted === undefined)
          upgrade = await raiseFeatureLevel(
            cluster,
            core,
            options.raiseFeatureLevel,
            (line) => progress(`${(current.now() / 1000).toFixed(1)}s ${line}`),
            () => current.now(),
          );
      }
      if (interrupted === undefined) await nemesis.run(schedule.slice(split));
      // Hostile clients still at work finish their round (its 408s come within 15 s).
      if (interrupted === undefined) await Promise.race([nemesis.backgroundSettled(), interruption]);
      // The changes still being made finish under no fault (each has a deadline).
      if (interrupted === undefined) await Promise.race([membership.settled(), interruption]);
      await nemesis.healAll();
      if (interrupted === undefined) {
        progress(
          `${(workload.now() / 1000).toFixed(1)}s all healed; ${options.quietMs ?? 3000} ms of load without faults`,
        );
        await Promise.race([sleep(options.quietMs ?? 3000), interruption]);
      }
    } finally {
      clearInterval(ticker);
      await workload.stop();
    }
    durations.load = workload.now();
    violations.push(...membership.violations, ...nemesis.violations);
    // Interrupted: every replica continued (healAll) and stopped cleanly, no final reads or convergence.
    if (interrupted !== undefined) throw new Interrupted();
    await finalReadsOf(workload, cluster, finalReads, violations, progress);
    convergence = await converge(cluster);
    if (!convergence.ok) violations.push(`Convergence: ${convergence.message}`);
    reached = {
      ...sumBurstCounters((await cluster.burstCounters()).values()),
      ...nemesis.counts,
      sessionsExpired: workload.sessionsExpired,
      sessionsOpened: workload.sessionsOpened,
      openedSessionsExpired: workload.openedSessionsExpired,
      appendsRefusedInBytes: workload.appendsRefusedInBytes,
      appendsOverBytesRan: workload.appendsOverBytesRan,
      featureLevelRaised: upgrade?.raisedAfterMs === null || upgrade === undefined ? 0 : 1,
    };
    await stopEvery(cluster);
    anomalies.push(...workload.anomalies);
  } catch (error) {
    if (!(error instanceof Interrupted))
      violations.push(`Harness: ${error instanceof Error ? error.message : String(error)}`);
    if (workload !== undefined && !workload.stopping) await workload.stop();
    if (interrupted !== undefined) await stopEvery(cluster);
  } finally {
    options.signal?.removeEventListener("abort", interrupt);
    nemesis?.stop();
    await cluster.close();
  }
  const ops = workload?.ops ?? [];
  const report = analyzeRun({
    options,
    replicas,
    core,
    clocks,
    schedule,
    cluster,
    ops,
    finalReads,
    origin,
    convergence,
    reached,
    anomalies,
    violations,
    durations,
    nemesis,
    membership: membership?.changes ?? [],
    progress,
    replay: replayCommand(options),
    ...(interrupted === undefined ? {} : { interrupted }),
    ...(upgrade === undefined ? {} : { upgrade }),
  });
  return report;
}

/** Thrown inside {@link runNemesis} to skip what an interrupted run does not do. */
class Interrupted extends Error {}

/** SIGTERM to every replica process (a stopped one is continued first, `NemesisCluster.kill`), at once. */
async function stopEvery(cluster: NemesisCluster): Promise<void> {
  await Promise.all(cluster.ids.map((id) => cluster.kill(id, "SIGTERM")));
}

/**
 * The interaction counters a run must reach once it injects a fault kind meant to drive there (as
 * the world's campaigns must reach `sometimesRequired`): a run that never reaches one says so.
 */
export const reachedRequired: readonly {
  readonly name: string;
  readonly count: (reached: ReachedCounters) => number;
  readonly drivenBy: readonly FaultKind[];
}[] = [
  {
    name: "appends behind a snapshot (paxos_lease_appends_behind_snapshot_total)",
    count: (reached) => reached.appendsBehindSnapshot,
    drivenBy: ["follower-behind-snapshot"],
  },
  {
    // A follower back from a crash or a restart asks for what it missed, which the others keep
    // only at rest in their stores (impl/core/at-rest.ts): the catch-up reads it back there.
    name: "values read back from disk (paxos_lease_values_read_from_disk_total)",
    count: (reached) => reached.valuesReadFromDisk,
    drivenBy: ["kill-follower", "restart-follower"],
  },
  {
    // The leader's main thread, busy with a flood's connections or waiting for a core, sent no
    // heartbeat for two intervals, and its relay thread sent copies (impl/runtime/heartbeat-relay.ts).
    // Counted by the members running at the end, or by each flood at its end (a flooded leader
    // restarted later counts its copies no more).
    name: "heartbeat copies relayed (paxos_lease_heartbeats_relayed_total)",
    count: (reached) => Math.max(reached.heartbeatsRelayed, reached.relayedDuringFloods),
    drivenBy: ["flood"],
  },
  {
    // The receiver or the sender of a state transfer SIGKILLed while the receiver's /status showed
    // the transfer in progress (Nemesis.killDuringTransfer): a fault that saw none killed nobody.
    name: "killed during a transfer",
    count: (reached) => reached.killedDuringTransfer,
    drivenBy: ["transfer-kill-receiver", "transfer-kill-sender"],
  },
  {
    // The receiver killed mid-transfer comes back with the chunks it staged and asks for the rest
    // (impl/core/transfer.ts, `takeKept`), instead of starting over from byte 0.
    name: "a transfer resumed after a restart (paxos_lease_transfers_resumed_total)",
    count: (reached) => reached.transfersResumed,
    drivenBy: ["transfer-kill-receiver"],
  },
  {
    // Every replica stopped past an election timeout and thawed, and a leader after it.
    name: "a leader after a thaw of every replica",
    count: (reached) => reached.thawsWithLeader,
    drivenBy: ["freeze-all"],
  },
  {
    // Bad requests, slow headers and silence refused or closed as docs/http-api.md says (hostile.ts).
    name: "hostile connections answered as documented",
    count: (reached) => reached.hostileDocumented,
    drivenBy: ["hostile-clients"],
  },
];

/**
 * The interaction counters a run whose session table is smaller than its clients must reach
 * (`sessionsBoundedOf`), whatever faults it injects: sessions evicted, and clients answered
 * `session-expired` that went on under a new session.
 */
export const sessionsRequired: readonly {
  readonly name: string;
  readonly count: (reached: ReachedCounters) => number;
}[] = [
  { name: "sessions evicted (paxos_lease_sessions_evicted)", count: (reached) => reached.sessionsEvicted },
  { name: "session-expired met by a client, a new session opened", count: (reached) => reached.sessionsExpired },
];

/**
 * The interaction counters a run at feature level 3 must reach (`sessionsOpenedOf`): sessions the
 * service opened for the clients, and (its table smaller than its clients) a session the service
 * opened that was evicted, met by its client as `session-expired`.
 */
export const openedSessionsRequired: readonly {
  readonly name: string;
  readonly count: (reached: ReachedCounters) => number;
  /** Required only of a run whose table is smaller than its clients (`sessionsBoundedOf`). */
  readonly bounded: boolean;
}[] = [
  {
    name: "sessions the service opened (POST /v1/sessions answered)",
    count: (reached) => reached.sessionsOpened,
    bounded: false,
  },
  {
    name: "a session the service opened was evicted (session-expired met under it)",
    count: (reached) => reached.openedSessionsExpired,
    bounded: true,
  },
];

/**
 * The interaction counters a run whose clients write over 1 MiB of UTF-8 must reach
 * (`valueBytesOf`): at feature level 4 the store's refusal in bytes, answered to a client (so in
 * the history the checker found linearizable) and counted by the Service ghost over the chosen log
 * the traces replay (proofs/service-level.ts); and of a run raised from a lower level
 * (`raiseFeatureLevel`, `raise`), the raise itself and the same append executed before it.
 */
export const valueBytesRequired: readonly {
  readonly name: string;
  readonly count: (reached: ReachedCounters, tally: Readonly<Record<string, number>>) => number;
  /** Required only of a run raised to level 4 during the run. */
  readonly raise: boolean;
}[] = [
  {
    name: "an append over 1 MiB of UTF-8 refused in bytes, answered to its client (413, unit bytes)",
    count: (reached) => reached.appendsRefusedInBytes,
    raise: false,
  },
  { name: `in the traces, ${appendBytesRefused}`, count: (_, tally) => tally[appendBytesRefused] ?? 0, raise: false },
  {
    name: "the log raised to feature level 4 by a rolling upgrade during the run",
    count: (reached) => reached.featureLevelRaised,
    raise: true,
  },
  {
    name: "an append over 1 MiB of UTF-8 executed before the raise, answered to its client",
    count: (reached) => reached.appendsOverBytesRan,
    raise: true,
  },
  { name: `in the traces, ${appendBytesRan}`, count: (_, tally) => tally[appendBytesRan] ?? 0, raise: true },
];

/**
 * The required counters that `reached` leaves at zero although `injected` holds a fault kind that
 * drives to them, or (`sessionsBounded`) the run's session table is smaller than its clients.
 */
export function neverReachedOf(
  reached: ReachedCounters | null,
  injected: readonly FaultKind[],
  sessionsBounded = false,
  sessionsOpened = false,
  /**
   * A run whose clients write over 1 MiB of UTF-8 (`valueBytesOf`): whether it was raised, and
   * the traces' tally (null: not checked).
   */
  valueBytes: { readonly raised: boolean; readonly tally: Readonly<Record<string, number>> | null } | null = null,
): string[] {
  const tally = valueBytes?.tally ?? {};
  return [
    ...reachedRequired.filter((r) => r.drivenBy.some((kind) => injected.includes(kind))),
    ...(sessionsBounded ? sessionsRequired : []),
    ...(sessionsOpened ? openedSessionsRequired.filter((r) => sessionsBounded || !r.bounded) : []),
    ...(valueBytes === null
      ? []
      : valueBytesRequired
          .filter((r) => valueBytes.raised || !r.raise)
          .map((r) => ({ name: r.name, count: (reached: ReachedCounters) => r.count(reached, tally) }))),
  ]
    .filter((r) => reached === null || r.count(reached) === 0)
    .map((r) => r.name);
}

function progressLine(workload: Workload, faults: readonly InjectedFault[]): string {
  let ok = 0;
  let unknown = 0;
  for (const op of workload.ops) {
    if (op.outcome === "ok") ok += 1;
    else if (op.outcome === "unknown") unknown += 1;
  }
  const fault = faults.length === 0 ? "no fault" : faults.map((f) => f.label).join(", ");
  return `${(workload.now() / 1000).toFixed(1)}s ops ${workload.ops.length} (ok ${ok}, unknown ${unknown}) | ${fault}`;
}

/**
 * Read every key once through the leader (recorded in the history); bounded by 60 s. Not the keys
 * that sessions open with (`s.<session>`, `sessionsBounded`): one put each, read by nobody, one
 * per session, which a run at feature level 2 opens by the thousand.
 */
export async function finalReadsOf(
  workload: Workload,
  cluster: NemesisCluster,
  finalReads: Map<string, number>,
  violations: string[],
  progress: (line: string) => void,
): Promise<void> {
  const keys = new Set<string>();
  for (const op of workload.ops) if ("key" in op.input && !isSessionKey(op.input.key)) keys.add(op.input.key);
  const reader = workload.extraClient("final");
  const deadline = monotonicMs() + 60_000;
  for (const key of [...keys].sort()) {
    for (;;) {
      const op = await reader.one({ _tag: "get", key });
      if (op.outcome === "ok") {
        finalReads.set(key, workload.ops.indexOf(op));
        break;
      }
      if (monotonicMs() > deadline) {
        violations.push(
          `NoRecovery: the final read of ${key} did not succeed within 60 s of healing (leader: ${String(await cluster.leader())})`,
        );
        return;
      }
    }
  }
  progress(`final reads of ${keys.size} keys done`);
}

/** Wait (at most 30 s) until every member of the configuration reports the same executed slot and digest. */
export async function converge(cluster: NemesisCluster): Promise<NemesisReport["convergence"]> {
  const deadline = monotonicMs() + 30_000;
  let last = new Map<number, { executedSlot: number; digest: string }>();
  while (monotonicMs() < deadline) {
    const members = new Set(cluster.memberIds);
    const statuses = [...(await cluster.statuses())].filter(([id]) => members.has(id));
    last = new Map(statuses.map(([id, s]) => [id, { executedSlot: s.executedSlot, digest: s.digest }]));
    const slots = new Set([...last.values()].map((s) => s.executedSlot));
    const digests = new Set([...last.values()].map((s) => s.digest));
    if (last.size === members.size && slots.size === 1 && digests.size === 1) {
      return {
        ok: true,
        executedSlot: [...slots][0]!,
        digests: Object.fromEntries([...last].map(([id, s]) => [`r${id}`, s.digest])),
        message: "every replica executed the same slots with the same digest",
      };
    }
    // Same slot, different digest: divergence, not lag.
    const bySlot = new Map<number, Set<string>>();
    for (const s of last.values()) bySlot.set(s.executedSlot, (bySlot.get(s.executedSlot) ?? new Set()).add(s.digest));
    for (const [slot, set] of bySlot) {
      if (set.size > 1)
        return {
          ok: false,
          executedSlot: slot,
          digests: Object.fromEntries([...last].map(([id, s]) => [`r${id}`, `${s.executedSlot}:${s.digest}`])),
          message: `replicas at slot ${slot} show different digests`,
        };
    }
    await sleep(200);
  }
  return {
    ok: false,
    executedSlot: null,
    digests: Object.fromEntries([...last].map(([id, s]) => [`r${id}`, `${s.executedSlot}:${s.digest}`])),
    message: "replicas did not reach the same executed slot within 30 s",
  };
}

/** What {@link analyzeRun} needs: the run's facts, collected by the harness. */
export interface AnalyzeInput {
  readonly options: Pick<NemesisOptions, "seed" | "out" | "clients" | "onReplay" | "raiseFeatureLevel">;
  readonly replicas: number;
  readonly core: Record<string, unknown>;
  readonly clocks: ReadonlyMap<number, ClockSkew>;
  readonly schedule: readonly PlannedFault[];
  readonly cluster: NemesisCluster;
  readonly ops: readonly RecordedOp[];
  readonly finalReads: ReadonlyMap<string, number>;
  readonly origin: number;
  readonly convergence: NemesisReport["convergence"];
  /** See NemesisReport.reached. Default null. */
  readonly reached?: ReachedCounters | null;
  readonly anomalies: readonly string[];
  readonly violations: string[];
  readonly durations: Record<string, number>;
  readonly nemesis: { readonly injected: readonly InjectedFault[] } | undefined;
  readonly membership?: readonly MembershipChange[];
  readonly progress: (line: string) => void;
  /** The command that runs the same schedule again. */
  readonly replay: string;
  /** Why the run stopped early (NemesisReport.interrupted): its traces are not checked. Default: it did not. */
  readonly interrupted?: string;
  /** The rolling upgrade the run made (`raiseFeatureLevel`), if any. */
  readonly upgrade?: Upgrade;
}

/** Check history and traces, write the files (history, report, trace view and its page), assemble the report. */
export function analyzeRun(input: AnalyzeInput): NemesisReport {
  const { options, cluster, ops, violations, durations, progress } = input;
  const historyFile = path.join(options.out, "history.json");
  // First, so that a run stopped during its checks keeps its history.
  writeHistoryFile(historyFile, ops);
  let t = monotonicMs();
  progress(`checking ${ops.length} operations for linearizability`);
  const checked = checkHistoryWithPage(ops, input.finalReads, `nemesis seed ${options.seed}`);
  const history = checked.report;
  durations.historyCheck = monotonicMs() - t;
  for (const v of history.violations) violations.push(`${v.check}: ${v.message}`);
  if (history.linearizability.verdict === "unknown")
    violations.push(
      `Linearizable: undecided within the step budget for keys ${history.linearizability.undecidedKeys.join(", ")}`,
    );
  // Written and checked: the trace replay below must not hold the operations' values beside its own.
  releaseValues(ops);
  t = monotonicMs();
  if (input.interrupted === undefined) progress("replaying the traces through step and checking the invariants");
  let traces: NemesisReport["traces"];
  let leaseIntervals: TraceReport["leaseIntervals"] = [];
  const recorder = new NemesisViewRecorder({ originMs: input.origin, replay: input.replay, file: options.out });
  if (input.interrupted !== undefined) traces = { error: `the run was interrupted (${input.interrupted})` };
  else
    try {
      // Each trace's start lines name that life's clock skew; the checker maps readings to true time with it.
      const traced = {
        // Every replica that ever ran (spares never started have no trace).
        files: new Map(
          cluster.ids.filter((id) => fs.existsSync(cluster.traceFile(id))).map((id) => [id, cluster.traceFile(id)]),
        ),
        core: input.core,
      };
      const onReplay = input.options.onReplay;
      let report: TraceReport;
      if (onReplay === undefined) report = checkTraces({ ...traced, onStep: recorder.onStep });
      else {
        // Replayed once and held, so that the caller can alter the very steps checked here.
        const merged = replayMerged(traced);
        const steps = [...merged.steps];
        report = checkSteps({ ...merged, steps }, { onStep: recorder.onStep });
        onReplay({ ...merged, steps });
      }
      for (const v of report.violations) violations.push(`${v.check} (replica ${v.replica}): ${v.message}`);
      const { leaseIntervals: intervals, ...rest } = report;
      leaseIntervals = intervals;
      traces = rest;
    } catch (error) {
      traces = { error: error instanceof Error ? error.message : String(error) };
      violations.push(`TraceCheck: ${traces.error}`);
    }
  durations.traceCheck = monotonicMs() - t;
  for (const a of input.anomalies) violations.push(`ClientAnomaly: ${a}`);
  const files = {
    history: historyFile,
    report: path.join(options.out, "report.json"),
    cluster: path.join(options.out, "cluster"),
    view: path.join(options.out, nemesisViewFile),
    page: path.join(options.out, "view.html"),
    ...(checked.page === undefined ? {} : { linearizability: path.join(options.out, "linearizability.html") }),
  };
  // The same HTML report as check-history's, when the history is not linearizable.
  if (checked.page !== undefined && files.linearizability !== undefined)
    fs.writeFileSync(files.linearizability, checked.page);
  const report: NemesisReport = {
    format: "paxos-lease/nemesis-report@1",
    ok: violations.length === 0 && input.interrupted === undefined,
    ...(input.interrupted === undefined ? {} : { interrupted: input.interrupted }),
    seed: options.seed,
    replicas: input.replicas,
    clients: options.clients ?? 16,
    network: {
      kind: cluster.network.kind,
      mechanisms: cluster.network.mechanisms(),
      namespaces: cluster.network.made(),
    },
    core: input.core,
    clocks: Object.fromEntries([...input.clocks].map(([id, c]) => [`r${id}`, c])),
    originMonotonicMs: input.origin,
    schedule: input.schedule,
    faults: input.nemesis?.injected ?? [],
    membership: { changes: input.membership ?? [], livenessBoundMs },
    // An interrupted run's traces were not read: no lease intervals to measure recovery by.
    recovery: (input.interrupted === undefined ? (input.nemesis?.injected ?? []) : [])
      .filter((f) => !isMembershipKind(f.kind) && Number.isFinite(f.endedAt))
      .map((f) => ({
        kind: f.kind,
        endedAt: Math.round(f.endedAt),
        leaseholderAfterMs: leaseholderAfter(f.endedAt + input.origin, leaseIntervals),
        leaselessMs: longestLeaseless(f.startedAt + input.origin, f.endedAt + input.origin, leaseIntervals),
      })),
    lives: cluster.lives.map((l) => ({
      ...l,
      startedAt: l.startedAt - input.origin,
      ...(l.endedAt === undefined ? {} : { endedAt: l.endedAt - input.origin }),
    })),
    history,
    convergence: input.convergence,
    traces,
    reached: input.reached ?? null,
    // An interrupted run read no counters: what it would have reached is unknown, not missed.
    neverReached:
      input.interrupted === undefined
        ? neverReachedOf(
            input.reached ?? null,
            (input.nemesis?.injected ?? []).map((f) => f.kind),
            sessionsBoundedOf(input.core, options.clients ?? 16),
            sessionsOpenedOf(input.core),
            valueBytesOf(input.core, options.raiseFeatureLevel)
              ? {
                  raised: options.raiseFeatureLevel !== undefined,
                  tally: "error" in traces ? null : traces.tally,
                }
              : null,
          )
        : [],
    ...(input.upgrade === undefined ? {} : { upgrade: input.upgrade }),
    anomalies: input.anomalies,
    violations,
    durationsMs: Object.fromEntries(Object.entries(durations).map(([k, v]) => [k, Math.round(v)])),
    files,
    replay: input.replay,
  };
  fs.writeFileSync(files.report, `${JSON.stringify(report, null, 2)}\n`);
  const view = recorder.finish(report, ops);
  fs.writeFileSync(files.view, gzipSync(JSON.stringify(view)));
  fs.writeFileSync(files.page, pageHtml(view));
  return report;
}

/** The summary a person reads: what was injected, what was checked, what failed. */
export function summaryText(report: NemesisReport): string {
  const h = report.history;
  const lines = [
    `nemesis seed ${report.seed}: ${report.replicas} replicas, ${report.clients} clients, ${report.faults.length} faults injected`,
    `  network: ${report.network.kind === "hosts" ? "hosts (a network namespace per replica, clients in another; kernel faults)" : "relay (loopback, a frame relay per peer link)"}`,
    `  faults: ${summarizeFaults(report.faults)}`,
    ...usedMechanisms(report).map((line) => `    ${line}`),
    `  recovery: ${summarizeRecovery(report.recovery)}`,
    ...(report.recovery.some((r) => r.kind === "flood") ? [`  floods: ${summarizeFloods(report.recovery)}`] : []),
    ...(report.membership.changes.length === 0 ? [] : [`  membership: ${summarizeMembership(report.membership)}`]),
    `  history: ${h.operations} operations (ok ${h.outcomes.ok}, fail ${h.outcomes.fail}, unknown ${h.outcomes.unknown}); linearizability ${h.linearizability.verdict} over ${h.linearizability.keys} keys (${h.linearizability.steps} search steps)`,
    `  lists: ${h.lists.appendsAcknowledged} acknowledged appends, ${h.lists.tokensInFinalValues} tokens in the final values, none lost or doubled: ${h.violations.every((v) => v.check === "Linearizable") ? "yes" : "NO"}`,
    `  replicas: ${report.convergence.message}${report.convergence.executedSlot === null ? "" : ` (slot ${report.convergence.executedSlot})`}`,
    "error" in report.traces
      ? `  traces: could not be checked: ${report.traces.error}`
      : `  traces: ${report.traces.lives} process lives, ${report.traces.steps} steps replayed through step; ${
          report.traces.ok
            ? "every invariant holds"
            : `violations: ${Object.entries(report.traces.violationCounts)
                .map(([k, n]) => `${k} x${n}`)
                .join(", ")}`
        }`,
    ...(report.reached === null
      ? []
      : [
          ...(sessionsBoundedOf(report.core, report.clients)
            ? [
                `  sessions: feature level ${String(report.core.featureLevel)}, a table of ${String(report.core.sessionsMax)} for ${report.clients} clients: ${report.reached.sessionsEvicted} evicted, ${report.reached.sessionsExpired} session-expired answers met by clients, each followed by a new session`,
              ]
            : []),
          ...(sessionsOpenedOf(report.core)
            ? [
                `  opened sessions: ${report.reached.sessionsOpened} opened by the service (POST /v1/sessions), ${report.reached.openedSessionsExpired} of them evicted and met as session-expired by their clients${"error" in report.traces ? "" : `; in the traces, ${report.traces.tally[openedEvicted] ?? 0} evictions of a session the service opened`}`,
              ]
            : []),
          ...(valueBytesOf(report.core, report.upgrade?.level)
            ? [
                `  values over 1 MiB of UTF-8: ${report.reached.appendsRefusedInBytes} appends refused in bytes, ${report.reached.appendsOverBytesRan} executed (below level 4)${"error" in report.traces ? "" : `; in the traces, ${report.traces.tally[appendBytesRefused] ?? 0} refused at level 4, ${report.traces.tally[appendBytesRan] ?? 0} executed below it`}${report.upgrade === undefined ? "" : `; upgrade to level ${report.upgrade.level}: replicas ${report.upgrade.restarted.join(", ")} restarted in turn, ${report.upgrade.raisedAfterMs === null ? "the log NOT raised" : `the log raised ${report.upgrade.raisedAfterMs} ms after the first restart`}`}`,
              ]
            : []),
          `  reached: ${report.reached.appendsBehindSnapshot} appends behind a snapshot, ${report.reached.catchUpsHeld} catch-up requests held while streaming, ${report.reached.valuesReadFromDisk} values read back from disk, ${report.reached.heartbeatsRelayed} heartbeat copies relayed (${report.reached.relayedDuringFloods} during floods, by each flood's count), ${report.reached.largePromises} Promises of 1 MiB or more of values (members running at the end); ${report.reached.killedDuringTransfer} killed during a transfer (${report.reached.transfersNotSeen} transfer-kill faults saw no transfer in progress), ${report.reached.transfersResumed} transfers resumed after a restart; ${report.reached.thawsWithLeader} leaders after a thaw of every replica (${report.reached.thawCampaigns} after a campaign, ${report.reached.thawLeaderKept} the leader from before the stop, no campaign); ${report.reached.hostileDocumented} hostile connections answered as documented (${report.reached.hostileCutShort} cut short by other faults), ${report.reached.hostileRefusedPastBound} closed past the per-address bound`,
        ]),
    ...(report.neverReached.length === 0 ? [] : [`  never reached: ${report.neverReached.join(", ")}`]),
    report.interrupted === undefined
      ? `  verdict: ${report.ok ? "PASS" : `FAIL (${report.violations.length} violations)`}`
      : `  verdict: INTERRUPTED (${report.interrupted}): the history was checked as far as the run got, the traces were not${report.violations.length === 0 ? "" : `; ${report.violations.length} violations`}`,
  ];
  if (!report.ok)
    lines.push(...report.violations.slice(0, 20).map((v) => `    - ${v.length > 400 ? `${v.slice(0, 400)}...` : v}`));
  lines.push(
    `  files: ${report.files.report}, ${report.files.history}, ${report.files.page}${report.files.linearizability === undefined ? "" : `, ${report.files.linearizability}`}`,
  );
  lines.push(`  step through the traces: npm run view -- ${path.dirname(report.files.report)}`);
  lines.push(`  replay: ${report.replay}`);
  return lines.join("\n");
}

/**
 * How long after `at` (monotonic ms) some replica held a lease, by `intervals` (monotonic ms): 0
 * if one held it at `at`, null if none did after it.
 */
export function leaseholderAfter(at: number, intervals: readonly LeaseInterval[]): number | null {
  let best: number | null = null;
  for (const i of intervals) {
    if (i.to <= at) continue;
    const wait = Math.max(0, i.from - at);
    if (best === null || wait < best) best = Math.round(wait);
  }
  return best;
}

/**
 * The longest stretch with no replica holding a lease (by `intervals`, monotonic ms) from `from`
 * until the first lease held at or after `to`; null if none was held after `to`.
 */
export function longestLeaseless(from: number, to: number, intervals: readonly LeaseInterval[]): number | null {
  const after = leaseholderAfter(to, intervals);
  if (after === null) return null;
  const until = to + after;
  const covering = intervals
    .filter((i) => i.to > from && i.from < until)
    .map((i) => [Math.max(i.from, from), Math.min(i.to, until)] as const)
    .sort((a, b) => a[0] - b[0]);
  let longest = 0;
  let reached = from;
  for (const [start, end] of covering) {
    if (start > reached) longest = Math.max(longest, start - reached);
    reached = Math.max(reached, end);
  }
  if (until > reached) longest = Math.max(longest, until - reached);
  return Math.round(longest);
}

/**
 * Whether the lease held through the flood faults: a legal flood of clients must not leave the
 * cluster without a leaseholder. Reported, not failed: on a machine with more runnable threads
 * than cores, the leader can still lose a core for longer than the relay's window
 * (docs/performance.md, "The heartbeat relay").
 */
export function summarizeFloods(recovery: NemesisReport["recovery"]): string {
  const floods = recovery.filter((r) => r.kind === "flood");
  const held = floods.filter((r) => r.leaselessMs === 0).length;
  const gaps = floods.map((r) => r.leaselessMs).filter((ms): ms is number => ms !== null);
  return `${floods.length}; a leaseholder throughout ${held} of them; longest time without one during a flood: ${gaps.length === 0 ? "-" : Math.max(...gaps)} ms`;
}

function summarizeRecovery(recovery: NemesisReport["recovery"]): string {
  const waits = recovery.map((r) => r.leaseholderAfterMs).filter((ms): ms is number => ms !== null);
  const none = recovery.length - waits.length;
  if (recovery.length === 0) return "no fault ended";
  const sorted = [...waits].sort((a, b) => a - b);
  const median = sorted.length === 0 ? null : sorted[Math.floor(sorted.length / 2)]!;
  const gaps = recovery.map((r) => r.leaselessMs).filter((ms): ms is number => ms !== null);
  return `a leaseholder after each of ${recovery.length} healed faults: ${sorted.length === 0 ? "none" : `median ${median} ms, max ${sorted.at(-1)!} ms`}${none === 0 ? "" : `; ${none} with no leaseholder after`}; longest time without one per fault: max ${gaps.length === 0 ? "-" : Math.max(...gaps)} ms`;
}

function summarizeMembership(m: NemesisReport["membership"]): string {
  const done = m.changes.filter((c) => c.outcome === "done");
  const lease = done.map((c) => c.leaderWithLeaseMs).filter((ms): ms is number => ms !== null);
  const retired = done.map((c) => c.retiredAfterMs).filter((ms): ms is number => ms !== null);
  return [
    `${done.length} of ${m.changes.length} changes made (${m.changes.map((c) => `${c.description}${c.outcome === "done" ? "" : ` [${c.outcome}]`}`).join("; ")})`,
    `leader with a lease after each, once a quorum was up: ${lease.length === 0 ? "not measured" : `max ${Math.max(...lease)} ms`} (bound ${m.livenessBoundMs} ms)`,
    `removed replicas retired ${retired.length === 0 ? "(none removed)" : `within ${Math.max(...retired)} ms of their removal`}`,
  ].join("; ");
}

/** How each kind of link fault the run injected was made, one line per kind. */
function usedMechanisms(report: NemesisReport): string[] {
  const kinds = [...new Set(report.faults.map((f) => f.kind))];
  return kinds.flatMap((kind) => {
    const how = report.network.mechanisms[kind];
    return how === undefined ? [] : [`${kind}: ${how}`];
  });
}

function summarizeFaults(faults: readonly InjectedFault[]): string {
  const counts = new Map<string, number>();
  for (const f of faults) counts.set(f.kind, (counts.get(f.kind) ?? 0) + 1);
  return counts.size === 0 ? "none" : [...counts].map(([k, n]) => `${k} x${n}`).join(", ");
}

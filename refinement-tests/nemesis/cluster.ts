/**
 * The nemesis's cluster: real `paxos-lease replica` processes, each with its own data directory
 * and event trace, on a network layer (network.ts): on loopback with every peer link through
 * the fault-injecting relays of proxy.ts, or each in its own network namespace. It offers the
 * primitive faults (signals, link states, a slow disk) and observation (each replica's
 * /status). Every clock reading it takes is the machine's monotonic clock, the one the replicas
 * read, so harness times and trace times share one origin.
 *
 * Test-only. Every wait is bounded; `close` kills every child, paused ones included.
 */
import type { ChildProcess } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { httpJson } from "../../impl/runtime/client.ts";
import { createToken } from "../../impl/runtime/tokens.ts";
import { cutPower } from "../../impl/runtime/disk-faults.ts";
import { ensureCliBuilt } from "../../impl/runtime/build.ts";
import { replicaArgv, replicaEnv } from "../../impl/runtime/program.ts";
import type { ReplicaStatus } from "../../impl/runtime/status.ts";
import { sleep } from "../../impl/runtime/testing.ts";
import { MemberLookups } from "../../impl/runtime/testing-cluster.ts";
import { createNetwork, writeSecretFile, type NemesisNetwork, type NetworkKind } from "./network.ts";

/** Milliseconds on the machine's monotonic clock (CLOCK_MONOTONIC, as the replicas read it). */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1000n) / 1000;
}

/** A replica's injected clock: reading = true monotonic ms * rate + offsetMs (impl/runtime/clock.ts). */
export interface ClockSkew {
  readonly rate: number;
  readonly offsetMs: number;
}

/** Options of {@link NemesisCluster.create}. */
export interface NemesisClusterOptions {
  /** The initial members: ids 1..replicas. */
  readonly replicas: number;
  /**
   * Spare replicas, ids replicas+1..replicas+spares: not started at first; the membership faults
   * start one (with --join, on an empty data directory) and add it. Default 0.
   */
  readonly spares?: number;
  /** Folder for data, traces and logs (created; kept after the run). */
  readonly dir: string;
  /** Core configuration overrides (impl/core/config.ts). Default: the core's defaults. */
  readonly core?: Record<string, unknown>;
  /** Per replica id: its clock skew. Default: none. */
  readonly clocks?: ReadonlyMap<number, ClockSkew>;
  /** Delay of a slow commit when a replica's slow disk is on, in milliseconds. Default 0: no slow disk. */
  readonly slowFsyncDelayMs?: number;
  /** Seed of the relays' loss generators. */
  readonly seed: number;
  /**
   * Test-only disk modes (impl/runtime/disk-faults.ts): `powerLoss` lets `cutPower` lose what a
   * replica had not fsynced; `ackBeforeSync` is the broken store that answers before its fsync.
   * Default: power loss on, the broken store off.
   */
  readonly diskFaults?: { readonly powerLoss: boolean; readonly ackBeforeSync: boolean };
  /** The network layer. Default `relay`. */
  readonly net?: NetworkKind;
  /** Whether links may be delayed during the run (slow-links). Default true. */
  readonly delays?: boolean;
}

/** One replica process life, for the report. */
export interface Life {
  readonly replica: number;
  readonly pid: number;
  /** Monotonic ms when it was spawned. */
  readonly startedAt: number;
  /** Its clock skew, if any. */
  readonly clock?: ClockSkew;
  /** Monotonic ms when it exited, and how. */
  endedAt?: number;
  exit?: string;
}

interface Member {
  readonly id: number;
  child: ChildProcess | null;
  exit: Promise<void> | null;
  paused: boolean;
  slowDisk: boolean;
  log: fs.WriteStream | null;
}

const statusTimeoutMs = 1000;

export class NemesisCluster extends MemberLookups<Member> {
  readonly lives: Life[] = [];
  /** The clock each replica gets at its next start. */
  private readonly clocks: Map<number, ClockSkew>;
  /**
   * The members of the latest configuration as far as the nemesis knows (it makes every change):
   * the replicas the ordinary faults pick from, that healing restarts and that must converge.
   */
  readonly configured = new Set<number>();
  /** Replicas removed from the cluster: stopped for good, never started again. */
  readonly retired = new Set<number>();
  /** Per replica: a data directory other than its own (a removed replica's host reused by a new id). */
  private readonly dataDirs = new Map<number, string>();

  private constructor(
    readonly options: NemesisClusterOptions,
    members: readonly Member[],
    readonly network: NemesisNetwork,
    private readonly secretFile: string,
    private readonly tokensFile: string,
    /** An admin token of the cluster. */
    readonly token: string,
    private coreConfigFile: string | undefined,
  ) {
    super(options.dir, members, (m) => network.endpoint(m.id));
    this.clocks = new Map(options.clocks ?? []);
    for (let id = 1; id <= options.replicas; id++) this.configured.add(id);
    this.statusAgent = network.agent();
    process.on("exit", this.onExit);
  }

  private readonly statusAgent: http.Agent;
  /** Whatever happens to the harness, no replica outlives it. */
  private readonly onExit = (): void => {
    for (const m of this.members) m.child?.kill("SIGKILL");
  };

  /**
   * Give every replica this core configuration from its next start on (a rolling upgrade restarts
   * them in turn with it): the run's `core.json` is written anew.
   */
  setCore(core: Record<string, unknown>): void {
    const file = path.join(this.options.dir, "core.json");
    fs.writeFileSync(file, JSON.stringify(core));
    this.coreConfigFile = file;
  }

  /** Give replica `id` this clock from its next start on (undefined: the unskewed clock). */
  setClock(id: number, clock: ClockSkew | undefined): void {
    if (clock === undefined) this.clocks.delete(id);
    else this.clocks.set(id, clock);
  }

  static async create(options: NemesisClusterOptions): Promise<NemesisCluster> {
    // `npm run nemesis` runs outside vitest (whose global setup builds): the replicas run the current sources.
    await ensureCliBuilt();
    fs.mkdirSync(options.dir, { recursive: true });
    const total = options.replicas + (options.spares ?? 0);
    const members: Member[] = Array.from({ length: total }, (_, i) => ({
      id: i + 1,
      child: null,
      exit: null,
      paused: false,
      slowDisk: false,
      log: null,
    }));
    const network = await createNetwork({
      kind: options.net ?? "relay",
      replicas: total,
      seed: options.seed,
      delays: options.delays ?? true,
      dir: options.dir,
    });
    const secretFile = writeSecretFile(options.dir);
    const tokensFile = path.join(options.dir, "tokens.json");
    const { token } = createToken(tokensFile, "admin", "nemesis");
    let coreConfigFile: string | undefined;
    if (options.core !== undefined) {
      coreConfigFile = path.join(options.dir, "core.json");
      fs.writeFileSync(coreConfigFile, JSON.stringify(options.core));
    }
    return new NemesisCluster(options, members, network, secretFile, tokensFile, token, coreConfigFile);
  }

  /** Every replica id, spares included. */
  get ids(): number[] {
    return this.memberList().map((m) => m.id);
  }

  /** Every replica slot, spares included. */
  private memberList(): readonly Member[] {
    return this.members;
  }

  /** The members of the latest configuration, ascending (see `configured`). */
  get memberIds(): number[] {
    return [...this.configured].sort((a, b) => a - b);
  }

  /** The spares never started yet, ascending. */
  unusedSpares(): number[] {
    return this.ids.filter((id) => id > this.options.replicas && !this.lives.some((l) => l.replica === id));
  }

  /** Should replica `id` be running (a member, or a started spare not yet added), as healing sees it? */
  wanted(id: number): boolean {
    return !this.retired.has(id) && (this.configured.has(id) || this.lives.some((l) => l.replica === id));
  }

  logFile(id: number): string {
    return path.join(this.options.dir, `replica-${id}.log`);
  }

  dataDir(id: number): string {
    return this.dataDirs.get(id) ?? path.join(this.options.dir, `replica-${id}`);
  }

  /**
   * Replica `id` will run on `dir` (a removed replica's directory, emptied): a new id on the host
   * of a removed replica, with fresh data. Only before its first start.
   */
  reuseDataDir(id: number, dir: string): void {
    if (this.lives.some((l) => l.replica === id)) throw new Error(`replica ${id} has run already`);
    fs.rmSync(dir, { recursive: true, force: true });
    this.dataDirs.set(id, dir);
  }

  running(id: number): boolean {
    return this.member(id).child !== null;
  }

  paused(id: number): boolean {
    return this.member(id).paused;
  }

  slowDisk(id: number): boolean {
    return this.member(id).slowDisk;
  }

  /**
   * The argv of member `id`; the network layer gives its addresses, to every replica (spares
   * included, so that the network carries every link). With spares, the initial members are
   * named apart, and a spare joins.
   */
  private replicaArgs(id: number): string[] {
    const initial = Array.from({ length: this.options.replicas }, (_, i) => i + 1).join(",");
    const membership =
      (this.options.spares ?? 0) === 0
        ? []
        : ["--initial-members", initial, ...(id > this.options.replicas ? ["--join"] : [])];
    const args = [
      "replica",
      "--id",
      String(id),
      "--cluster-id",
      "nemesis",
      "--secret-file",
      this.secretFile,
      "--tokens-file",
      this.tokensFile,
      ...this.network.addressArgs(id),
      "--data",
      this.dataDir(id),
      "--trace",
      this.traceFile(id),
      "--log-level",
      "info",
    ];
    if (this.coreConfigFile !== undefined) args.push("--core-config", this.coreConfigFile);
    if (!fs.existsSync(this.dataDir(id))) args.push("--init");
    return [...args, ...membership];
  }

  private replicaEnv(id: number): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = replicaEnv();
    const clock = this.clocks.get(id);
    if (clock !== undefined) {
      env.PAXOS_LEASE_ALLOW_TEST_CLOCK = "1";
      env.PAXOS_LEASE_CLOCK_RATE = String(clock.rate);
      env.PAXOS_LEASE_CLOCK_OFFSET_MS = String(clock.offsetMs);
    }
    if ((this.options.slowFsyncDelayMs ?? 0) > 0) {
      env.PAXOS_LEASE_ALLOW_TEST_FAULTS = "1";
      env.PAXOS_LEASE_TEST_FSYNC_DELAY_MS = String(this.options.slowFsyncDelayMs);
    }
    const faults = this.options.diskFaults ?? { powerLoss: true, ackBeforeSync: false };
    if (faults.powerLoss) {
      env.PAXOS_LEASE_ALLOW_TEST_FAULTS = "1";
      env.PAXOS_LEASE_TEST_POWER_LOSS = "1";
    }
    if (faults.ackBeforeSync) {
      env.PAXOS_LEASE_ALLOW_TEST_FAULTS = "1";
      env.PAXOS_LEASE_TEST_ACK_BEFORE_FSYNC = "1";
    }
    return env;
  }

  /** Spawn replica `id` on its data (fresh data on its first start). */
  start(id: number): void {
    const member = this.member(id);
    if (member.child !== null) throw new Error(`replica ${id} is running`);
    member.log ??= fs.createWriteStream(this.logFile(id), { flags: "a" });
    const child = this.network.spawn(id, [...replicaArgv(), ...this.replicaArgs(id)], this.replicaEnv(id));
    const clock = this.clocks.get(id);
    const life: Life = {
      replica: id,
      pid: child.pid ?? -1,
      startedAt: monotonicMs(),
      ...(clock === undefined ? {} : { clock }),
    };
    this.lives.push(life);
    member.child = child;
    member.paused = false;
    member.slowDisk = false;
    const log = member.log;
    log.write(`--- started pid ${child.pid ?? "?"} at ${life.startedAt.toFixed(1)}\n`);
    child.stdout!.on("data", (chunk: Buffer) => log.write(chunk));
    child.stderr!.on("data", (chunk: Buffer) => log.write(chunk));
    member.exit = new Promise((resolve) =>
      child.once("exit", (code, signal) => {
        life.endedAt = monotonicMs();
        life.exit = signal ?? `code ${code}`;
        log.write(`--- exited (${life.exit}) at ${life.endedAt.toFixed(1)}\n`);
        if (member.child === child) {
          member.child = null;
          member.paused = false;
        }
        resolve();
      }),
    );
  }

  /** Send `signal` and wait (at most 10 s, then SIGKILL) until the process has exited. */
  async kill(id: number, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const member = this.member(id);
    const child = member.child;
    if (child === null || member.exit === null) return;
    if (member.paused && signal !== "SIGKILL") this.signal(id, "SIGCONT");
    child.kill(signal);
    const exited = await Promise.race([member.exit.then(() => true), sleep(10_000).then(() => false)]);
    if (!exited) {
      child.kill("SIGKILL");
      await member.exit;
    }
  }

  /**
   * Replica `id`'s machine loses power: SIGKILL, then its store forgets, at the next start,
   * every record no completed fsync covered (it must run in power-loss mode).
   */
  async cutPower(id: number): Promise<void> {
    if (!(this.options.diskFaults ?? { powerLoss: true }).powerLoss)
      throw new Error("this cluster's replicas do not run in power-loss mode");
    if (this.member(id).child === null) return;
    await this.kill(id, "SIGKILL");
    cutPower(this.dataDir(id));
  }

  /** SIGSTOP (pause) or SIGCONT (resume) replica `id`. */
  signal(id: number, signal: "SIGSTOP" | "SIGCONT"): void {
    const member = this.member(id);
    if (member.child === null) return;
    member.child.kill(signal);
    member.paused = signal === "SIGSTOP";
  }

  /** Turn the replica's slow disk on or off (SIGUSR2 toggles it in the process). */
  setSlowDisk(id: number, on: boolean): void {
    const member = this.member(id);
    if ((this.options.slowFsyncDelayMs ?? 0) <= 0)
      throw new Error("this cluster was created without a slow disk delay");
    if (member.child === null || member.slowDisk === on) return;
    member.child.kill("SIGUSR2");
    member.slowDisk = on;
  }

  async status(id: number): Promise<ReplicaStatus | undefined> {
    if (this.member(id).child === null || this.member(id).paused) return undefined;
    try {
      const reply = await httpJson(
        "GET",
        `${this.endpoint(id)}/status`,
        undefined,
        { Authorization: `Bearer ${this.token}` },
        statusTimeoutMs,
        { agent: this.statusAgent },
      );
      return reply.status === 200 ? (reply.body as unknown as ReplicaStatus) : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Per member, from their /metrics (since each one's start; a member that does not answer counts
   * 0): the catch-up requests held back while a peer's bulk stream was arriving
   * (impl/runtime/catch-up-hold.ts), the appends that waited behind a snapshot being
   * serialized (impl/runtime/storage-thread.ts), and the values at rest read back from the store
   * for a peer (impl/core/at-rest.ts).
   */
  async burstCounters(): Promise<Map<number, BurstCounters>> {
    const counts = await Promise.all(
      this.ids.map(
        (id) =>
          new Promise<readonly [number, BurstCounters]>((resolve) => {
            const done = (counters: BurstCounters): void => resolve([id, counters]);
            if (this.member(id).child === null || this.member(id).paused) return done(noBurstCounters);
            const request = http.get(
              `${this.endpoint(id)}/metrics`,
              { headers: { Authorization: `Bearer ${this.token}` }, agent: this.statusAgent, timeout: statusTimeoutMs },
              (response) => {
                let text = "";
                response.setEncoding("utf8");
                response.on("data", (chunk: string) => (text += chunk));
                response.on("end", () => done(response.statusCode === 200 ? burstCountersIn(text) : noBurstCounters));
                response.on("error", () => done(noBurstCounters));
              },
            );
            request.on("timeout", () => request.destroy());
            request.on("error", () => done(noBurstCounters));
          }),
      ),
    );
    return new Map(counts);
  }

  async statuses(): Promise<Map<number, ReplicaStatus>> {
    const all = await Promise.all(this.ids.map(async (id) => [id, await this.status(id)] as const));
    return new Map(all.filter((e): e is readonly [number, ReplicaStatus] => e[1] !== undefined));
  }

  /** The replica that says it leads (the one in the highest ballot if several do), or null. */
  async leader(): Promise<number | null> {
    return (await this.leaderStatus())?.replica ?? null;
  }

  /** The /status of the replica that says it leads (the one in the highest ballot if several do), or null. */
  async leaderStatus(): Promise<ReplicaStatus | null> {
    const leaders = [...(await this.statuses()).values()].filter((s) => s.role === "leader");
    if (leaders.length === 0) return null;
    leaders.sort((a, b) => compareBallotText(b.ballot, a.ballot));
    return leaders[0]!;
  }

  /** Wait up to `timeoutMs` for a leader; null if none showed up. */
  async waitForLeader(timeoutMs: number): Promise<number | null> {
    const deadline = monotonicMs() + timeoutMs;
    while (monotonicMs() < deadline) {
      const leader = await this.leader();
      if (leader !== null) return leader;
      await sleep(100);
    }
    return null;
  }

  /** Last lines of a replica's log, for failure reports. */
  tail(id: number, lines = 40): string {
    try {
      return fs.readFileSync(this.logFile(id), "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "(no log)";
    }
  }

  /** Kill every child (resuming paused ones first), close the network and the logs. */
  async close(): Promise<void> {
    await Promise.all(this.memberList().map((m) => this.kill(m.id, "SIGKILL")));
    process.off("exit", this.onExit);
    this.statusAgent.destroy();
    await this.network.close();
    await Promise.all(
      this.memberList().map(
        (m) => new Promise<void>((resolve) => (m.log === null ? resolve() : m.log.end(() => resolve()))),
      ),
    );
  }
}

/** Order ballots shown as "(round,replica)"; null first. */
function compareBallotText(a: string | null, b: string | null): number {
  const parse = (text: string | null): [number, number] => {
    const match = text === null ? null : /(\d+)\D+(\d+)/.exec(text);
    return match === null ? [-1, -1] : [Number(match[1]), Number(match[2])];
  };
  const [ra, ia] = parse(a);
  const [rb, ib] = parse(b);
  return ra !== rb ? ra - rb : ia - ib;
}

/** What a burst may reach, as one member counts it (see `burstCounters`). */
export interface BurstCounters {
  readonly catchUpsHeld: number;
  readonly appendsBehindSnapshot: number;
  readonly valuesReadFromDisk: number;
  /** Heartbeat copies a leader's relay thread sent while its main thread sent none (heartbeat-relay.ts). */
  readonly heartbeatsRelayed: number;
  /** Promises of at least 1 MiB of values sent: a lagging candidate facing large accepted values. */
  readonly largePromises: number;
  /** Campaigns started (`paxos_lease_elections_total`). */
  readonly elections: number;
  /** State transfers resumed after a restart from the chunks kept (`paxos_lease_transfers_resumed_total`). */
  readonly transfersResumed: number;
  /**
   * Sessions evicted by the session bound since feature level 2 was raised (`paxos_lease_sessions_evicted`):
   * a count of the replicated state, the same on every replica at a slot, so the members' highest, not their sum.
   */
  readonly sessionsEvicted: number;
}

/** Every count at zero: a replica that answered nothing, or a run that reached nothing yet. */
export const noBurstCounters: BurstCounters = {
  catchUpsHeld: 0,
  appendsBehindSnapshot: 0,
  valuesReadFromDisk: 0,
  heartbeatsRelayed: 0,
  largePromises: 0,
  elections: 0,
  transfersResumed: 0,
  sessionsEvicted: 0,
};

/** The metrics summed into a count of {@link BurstCounters}, by name (with labels or without). */
const burstMetrics: readonly (readonly [string, keyof BurstCounters])[] = [
  ["paxos_lease_appends_behind_snapshot_total", "appendsBehindSnapshot"],
  ["paxos_lease_values_read_from_disk_total", "valuesReadFromDisk"],
  ["paxos_lease_heartbeats_relayed_total", "heartbeatsRelayed"],
  ["paxos_lease_large_promises_sent_total", "largePromises"],
  ["paxos_lease_elections_total", "elections"],
  ["paxos_lease_transfers_resumed_total", "transfersResumed"],
  ["paxos_lease_sessions_evicted", "sessionsEvicted"],
];

/** The counts of the replicated state (equal on every replica at a slot): the members' highest, not their sum. */
const stateCounts: ReadonlySet<keyof BurstCounters> = new Set(["sessionsEvicted"]);

/**
 * From a /metrics text: the catch-up requests held while a peer streamed (reason
 * catch-up-while-streaming), the appends that waited behind a snapshot, and the values read back
 * from the store for a Promise or catch-up.
 */
export function burstCountersIn(metrics: string): BurstCounters {
  const counts: Record<keyof BurstCounters, number> = { ...noBurstCounters };
  const valueOf = (line: string): number => Number(line.slice(line.lastIndexOf(" ") + 1)) || 0;
  for (const line of metrics.split("\n")) {
    if (line.startsWith("paxos_lease_messages_dropped_total{") && line.includes('reason="catch-up-while-streaming"'))
      counts.catchUpsHeld += valueOf(line);
    for (const [name, key] of burstMetrics)
      if (line.startsWith(name) && (line[name.length] === " " || line[name.length] === "{")) {
        counts[key] = stateCounts.has(key) ? Math.max(counts[key], valueOf(line)) : counts[key] + valueOf(line);
      }
  }
  return counts;
}

/** The members' counters, summed (the counts of the replicated state: their highest). */
export function sumBurstCounters(counters: Iterable<BurstCounters>): BurstCounters {
  const sum: Record<keyof BurstCounters, number> = { ...noBurstCounters };
  const keys = Object.keys(sum) as (keyof BurstCounters)[];
  for (const c of counters)
    for (const key of keys) sum[key] = stateCounts.has(key) ? Math.max(sum[key], c[key]) : sum[key] + c[key];
  return sum;
}

/**
 * The two systems the comparison runs, each as a three-member cluster of real processes on
 * loopback (or, given a HostNetwork, each member on its own host: impl/runtime/testing-hosts.ts) with durable writes:
 * paxos-lease (impl/runtime, default settings, no event traces)
 * and etcd 3.4 from Debian's etcd-server package (default settings: every write fsynced to its
 * WAL, elections after 1 s, heartbeats every 100 ms), reached through its JSON gateway. Both
 * offer the same handful of operations to the benchmark: find the leader, write and read
 * through it, kill a member with SIGKILL, start it again on its data, read its RSS.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { TestCluster } from "../../impl/runtime/testing-cluster.ts";
import type { HostNetwork } from "../../impl/runtime/testing-hosts.ts";
import { freePorts, sleep, tempDir } from "../../impl/runtime/testing.ts";
import { Etcd3 } from "etcd3";
import { send, type HttpRequest, type Outcome, type SystemDriver } from "./load.ts";

/** A cluster under benchmark. */
export interface BenchCluster {
  readonly name: string;
  readonly members: readonly number[];
  start(): Promise<void>;
  /** The member that leads, waiting up to `timeoutMs`; null if none. */
  leader(timeoutMs: number): Promise<number | null>;
  /** Wait up to `timeoutMs` until every member answers and all agree on one leader; that leader, or null. */
  healthy(timeoutMs: number): Promise<number | null>;
  /** The driver that talks to member `id` (the leader, for the measurements). */
  driver(id: number): SystemDriver;
  /**
   * Counters that grow with every change of leader and every campaign, over the running members:
   * their growth during a point is the leadership changes it caused.
   */
  leadership(): Promise<{ readonly leaderships: number; readonly campaigns: number }>;
  pid(id: number): number | null;
  kill(id: number): Promise<void>;
  restart(id: number): Promise<void>;
  close(): Promise<void>;
  /**
   * Write every member's log into `dir` (kept after close), and the bench's freezes and thaws of
   * the cluster beside them (`<name>-bench.log`); call before start. Default: the cluster's own
   * folder, removed on close.
   */
  keepLogsIn(dir: string): this;
  /**
   * Start every member in a session of its own (setsid), so that no hangup the bench's terminal or
   * job sends reaches it: when the job that started a bench ends (a shell or terminal closed, a
   * background job's parent gone) while a member is frozen, that member is sent SIGHUP and exits,
   * and the cluster is found with no leader at its next thaw. A detached member is not stopped
   * by Ctrl-C either: the caller closes the cluster on SIGINT and SIGTERM. Call before start.
   */
  detach(): this;
  /** The path of each member's log, in member order. */
  logFiles(): readonly string[];
  /** Append a line to the cluster's bench log (`keepLogsIn`), with the wall and monotonic time. */
  note(text: string): void;
  /**
   * Each member as the bench sees it now: its process (running, stopped by a signal, gone) and
   * what it answers about itself (role, leader, term or ballot, peers). `summary`: a few lines
   * per member; `detail`: every answer in full, for a file.
   */
  describe(): Promise<{ readonly summary: string; readonly detail: unknown }>;
}

/**
 * Freeze (SIGSTOP) or thaw (SIGCONT) every member of `cluster`: the comparison freezes the
 * system it is not measuring, so an idle cluster never takes CPU from the measured one.
 */
export function freeze(cluster: BenchCluster, frozen: boolean): void {
  cluster.note(frozen ? "freeze (SIGSTOP to every member)" : "thaw (SIGCONT to every member)");
  for (const id of cluster.members) {
    const pid = cluster.pid(id);
    if (pid === null) continue;
    try {
      process.kill(pid, frozen ? "SIGSTOP" : "SIGCONT");
    } catch {
      // Exited meanwhile.
    }
  }
}

/**
 * On SIGINT or SIGTERM, thaw and close every cluster `clusters()` gives, then exit 130. A bench
 * whose members run detached (`detach`) must: Ctrl-C no longer reaches them, and they would stay
 * behind, holding memory and ports, one system frozen. `runDir`, if given, is named on the way out.
 */
export function closeOnInterrupt(clusters: () => Iterable<BenchCluster>, runDir?: string): void {
  for (const signal of ["SIGINT", "SIGTERM"] as const)
    process.once(signal, () => {
      process.stderr.write(
        `${signal}: closing the clusters${runDir === undefined ? "" : `; logs of this run in ${runDir}`}\n`,
      );
      void Promise.all([...clusters()].map((c) => (freeze(c, false), c.close()))).finally(() => process.exit(130));
    });
}

/** A size field of a process's /proc status (`VmRSS`, `VmHWM`), in bytes, or null. */
function statusBytes(pid: number | null, field: "VmRSS" | "VmHWM"): number | null {
  if (pid === null) return null;
  try {
    const match = new RegExp(`${field}:\\s+(\\d+)\\s+kB`).exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return match === null ? null : Number(match[1]) * 1024;
  } catch {
    return null;
  }
}

/**
 * The scheduler state of a process as /proc shows it (`R` running, `S` sleeping, `T` stopped by a
 * signal, `Z` exited but not reaped, ...), or "gone".
 */
export function processState(pid: number | null): string {
  if (pid === null) return "not running";
  try {
    const state = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")[0]!;
    return state === "T" ? "T (stopped)" : state;
  } catch {
    return "gone";
  }
}

/** Where a cluster keeps its logs: its own folder, or the folder `keepLogsIn` named. */
class BenchLogs {
  dir: string | undefined;
  /** How each member's last process ended, as its log says it. */
  readonly exits = new Map<number, string>();
  constructor(private readonly name: string) {}

  /**
   * Note in `file` (a member's log) and in the bench log when member `id`'s process `child` exits,
   * with its exit code or the signal that ended it: a member killed from outside leaves no line of
   * its own.
   */
  watchExit(id: number, child: ChildProcess, file: string, fallback: string): void {
    this.exits.delete(id);
    const pid = child.pid ?? "?";
    child.once("exit", (code, signal) => {
      const how = `pid ${pid} exited at ${new Date().toISOString()} with ${signal === null ? `code ${code}` : `signal ${signal}`}`;
      this.exits.set(id, how);
      try {
        fs.appendFileSync(file, `--- bench: ${how}\n`);
      } catch {
        // The folder is gone (closed).
      }
      this.note(`member ${id}: ${how}`, fallback);
    });
  }

  file(base: string, fallback: string): string {
    return path.join(this.dir ?? fallback, base);
  }

  note(text: string, fallback: string): void {
    const line = `${new Date().toISOString()} +${performance.now().toFixed(0)} ms ${text}\n`;
    try {
      fs.appendFileSync(this.file(`${this.name}-bench.log`, fallback), line);
    } catch {
      // The folder is gone (closed): nothing to note.
    }
  }
}

/**
 * Wait up to `timeoutMs` until `cluster` is healthy (`BenchCluster.healthy`) and return its leader.
 * If it is not, or if a member is not running (it exited: nothing will make the cluster healthy,
 * and a check over the members left would wait in vain), write what each member said
 * (`describe`) into `runDir` and throw an error that names `when`, each member's status and exit,
 * and the files that explain it: the statuses and the logs.
 */
export async function healthyOrExplain(
  cluster: BenchCluster,
  timeoutMs: number,
  when: string,
  runDir: string,
): Promise<number> {
  const started = performance.now();
  const deadline = started + timeoutMs;
  let gone: number[] = [];
  for (;;) {
    gone = cluster.members.filter((m) => cluster.pid(m) === null);
    if (gone.length > 0) break;
    const leader = await cluster.healthy(Math.min(1000, Math.max(0, deadline - performance.now())));
    if (leader !== null) {
      cluster.note(`healthy ${when}: leader ${leader} after ${(performance.now() - started).toFixed(0)} ms`);
      return leader;
    }
    if (performance.now() >= deadline) break;
  }
  const { summary, detail } = await cluster.describe();
  fs.mkdirSync(runDir, { recursive: true });
  const file = path.join(runDir, `${cluster.name}-unhealthy-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  const load = os.loadavg().map((l) => l.toFixed(2));
  fs.writeFileSync(
    file,
    `${JSON.stringify({ cluster: cluster.name, when, timeoutMs, at: new Date().toISOString(), load, members: detail }, null, 2)}\n`,
  );
  const why =
    gone.length > 0
      ? `member${gone.length === 1 ? "" : "s"} ${gone.join(", ")} not running ${when}`
      : `no leader within ${timeoutMs / 1000} s ${when}`;
  cluster.note(`not healthy: ${why}; statuses in ${file}`);
  throw new Error(
    [
      `${cluster.name}: ${why} (load ${load.join(" ")}); each member as the bench sees it:`,
      summary,
      `statuses in full: ${file}`,
      `logs: ${cluster.logFiles().join(" ")}`,
    ].join("\n"),
  );
}

/** Resident set size of a process, in bytes (VmRSS from /proc), or null. */
export function rssBytes(pid: number | null): number | null {
  return statusBytes(pid, "VmRSS");
}

/**
 * A process's resident set in its two parts, in bytes (from /proc), or null: `anon` its anonymous
 * pages (RssAnon: heaps, buffers, stacks), `file` its file-backed and shared ones (RssFile and
 * RssShmem: the node binary's pages and the libraries'). They add up to VmRSS.
 */
export function rssParts(pid: number | null): { anon: number; file: number } | null {
  if (pid === null) return null;
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+)\\s+kB`).exec(status)?.[1] ?? 0) * 1024;
    return { anon: kb("RssAnon"), file: kb("RssFile") + kb("RssShmem") };
  } catch {
    return null;
  }
}

/** Peak resident set size since the process started, in bytes (VmHWM from /proc), or null. */
export function peakRssBytes(pid: number | null): number | null {
  return statusBytes(pid, "VmHWM");
}

/** CPU time (user + system) a process has used, in milliseconds (from /proc), or null. */
export function cpuMs(pid: number | null): number | null {
  return pid === null ? null : statCpuMs(`/proc/${pid}/stat`);
}

/**
 * CPU time (user + system) the main thread of a process has used, in milliseconds, or null: for
 * Node.js, the thread that runs JavaScript and answers peers (not V8's helpers, not worker
 * threads). Other processes' load does not inflate it, unlike wall-clock lag.
 */
export function mainThreadCpuMs(pid: number | null): number | null {
  return pid === null ? null : statCpuMs(`/proc/${pid}/task/${pid}/stat`);
}

/**
 * CPU time (user + system) of each thread of a process by its kind, in milliseconds, or null: the
 * main thread ("main"), the storage thread and other worker threads (Node names them
 * "WorkerThread"), V8's helpers (garbage collection, compilation: "V8 DefaultWorke") and libuv's
 * pool ("libuv-worker"), named as the kernel shows them (`/proc/PID/task/TID/comm`).
 */
export function threadCpuMs(pid: number | null): Map<string, number> | null {
  if (pid === null) return null;
  try {
    const byKind = new Map<string, number>();
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      const ms = statCpuMs(`/proc/${pid}/task/${tid}/stat`);
      if (ms === null) continue;
      const kind = tid === String(pid) ? "main" : fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim();
      byKind.set(kind, (byKind.get(kind) ?? 0) + ms);
    }
    return byKind;
  } catch {
    return null;
  }
}

/**
 * Scheduler figures of one thread (`/proc/PID/task/TID/schedstat`), in milliseconds, or null: the
 * CPU time it ran and the time it spent runnable but waiting for a core (the run queue). A thread
 * that waits for a core answers nothing, however little work it has; this tells a machine whose
 * cores other processes hold apart from a thread that is busy with its own work.
 */
export function schedMs(pid: number | null, tid: number | null = pid): { runMs: number; waitMs: number } | null {
  if (pid === null || tid === null) return null;
  try {
    const [run, wait] = fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").trim().split(" ");
    return { runMs: Number(run) / 1e6, waitMs: Number(wait) / 1e6 };
  } catch {
    return null;
  }
}

function statCpuMs(file: string): number | null {
  try {
    const fields = fs.readFileSync(file, "utf8").split(") ")[1]!.split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return null;
  }
}

/**
 * CPU milliseconds all running members of `cluster` use over a load's measured window: pass
 * `onWindow` to runLoad (LoadOptions.onWindow), read `cpuMs` after it returned.
 */
export function cpuWindow(cluster: BenchCluster): { onWindow: (edge: "start" | "end") => void; cpuMs: () => number } {
  const pids = cluster.members.map((m) => cluster.pid(m));
  let before: (number | null)[] = [];
  let total = Number.NaN;
  return {
    onWindow: (edge) => {
      if (edge === "start") {
        before = pids.map(cpuMs);
        return;
      }
      total = 0;
      pids.map(cpuMs).forEach((a, i) => {
        const b = before[i];
        if (a !== null && b !== null && b !== undefined) total += a - b;
      });
    },
    cpuMs: () => total,
  };
}

/** A counter's value summed over its series in a Prometheus text exposition. */
export function metricSum(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== " " && rest[0] !== "{") continue;
    sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

/** CPU milliseconds all running members of `cluster` used while `run` ran. */
export async function measureCpu<T>(
  cluster: BenchCluster,
  run: () => Promise<T>,
): Promise<{ result: T; cpuMs: number }> {
  const pids = cluster.members.map((m) => cluster.pid(m));
  const before = pids.map(cpuMs);
  const result = await run();
  const after = pids.map(cpuMs);
  let total = 0;
  after.forEach((a, i) => {
    const b = before[i];
    if (a !== null && b !== null && b !== undefined) total += a - b;
  });
  return { result, cpuMs: total };
}

const probeAgent = new http.Agent({ keepAlive: false });

/** The key-value API of member `id` of a paxos-lease test cluster, as the load generator drives it. */
export function kvDriver(cluster: TestCluster, id: number): SystemDriver {
  const base = cluster.endpoint(id);
  return {
    name: "paxos-lease",
    write: (key, value): HttpRequest => ({
      method: "PUT",
      url: `${base}/v1/kv/${key}`,
      body: JSON.stringify({ value }),
      headers: cluster.authHeaders(),
    }),
    read: (key): HttpRequest => ({ method: "GET", url: `${base}/v1/kv/${key}`, headers: cluster.authHeaders() }),
    ok: (status) => status === 200,
    outcomeUnknown: (status, body) => status === 503 && body.includes('"outcomeUnknown":true'),
  };
}

/** paxos-lease: three replica processes, default core settings. */
export class OursCluster implements BenchCluster {
  readonly name = "paxos-lease";
  readonly members = [1, 2, 3];
  private cluster: TestCluster | undefined;
  private readonly logs = new BenchLogs("paxos-lease");
  private detached = false;

  /**
   * `core`: protocol settings (impl/core/config.ts); default: the core's defaults. `hosts`: run
   * member N on host N, configured as docs/operations.md configures a machine; default loopback.
   * `replicaArgs`: more flags for every replica (`--request-bytes-in-flight-max 4194304`, say).
   */
  constructor(
    private readonly core?: Record<string, unknown>,
    private readonly hosts?: HostNetwork,
    private readonly replicaArgs: readonly string[] = [],
  ) {}

  async start(): Promise<void> {
    this.cluster = await TestCluster.create(3, this.core, {
      traces: false,
      ...(this.hosts === undefined ? {} : { hosts: this.hosts }),
    });
    for (const id of this.members) this.startMember(id);
  }

  /** Start member `id`, its output appended to its log file. */
  private startMember(id: number): void {
    this.c.start(id, { extra: this.replicaArgs, detached: this.detached });
    const child = this.c.member(id).child;
    const file = this.logFiles()[id - 1]!;
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.appendFileSync(file, `--- bench: started pid ${child?.pid ?? "?"} at ${new Date().toISOString()}\n`);
    if (child !== null) this.logs.watchExit(id, child, file, this.c.dir);
    const out = fs.createWriteStream(file, { flags: "a" });
    let open = 2;
    const ended = (): void => {
      open -= 1;
      if (open === 0) out.end();
    };
    for (const stream of [child?.stdout, child?.stderr]) {
      if (stream === null || stream === undefined) {
        ended();
        continue;
      }
      stream.on("data", (chunk: Buffer) => out.write(chunk));
      stream.once("end", ended);
    }
    out.on("error", () => {
      // The folder went away (closed): the log ends here.
    });
  }

  keepLogsIn(dir: string): this {
    this.logs.dir = dir;
    return this;
  }

  detach(): this {
    this.detached = true;
    return this;
  }

  logFiles(): readonly string[] {
    return this.members.map((id) => this.logs.file(`paxos-lease-replica-${id}.log`, this.c.dir));
  }

  note(text: string): void {
    if (this.cluster !== undefined) this.logs.note(text, this.cluster.dir);
  }

  async describe(): Promise<{ summary: string; detail: unknown }> {
    const detail = await Promise.all(
      this.members.map(async (id) => {
        const pid = this.pid(id);
        const state = processState(pid);
        const status =
          pid === null ? `not running (${this.logs.exits.get(id) ?? "never started"})` : await this.c.status(id);
        return { member: id, pid, process: state, status: status ?? "no answer to GET /status within 2 s" };
      }),
    );
    const summary = detail.map(({ member, pid, process, status }) => {
      const head = `  member ${member}: pid ${pid ?? "-"} (${process})`;
      if (typeof status === "string") return `${head}: ${status}`;
      const peers = status.peers
        .map(
          (p) =>
            `${p.id} ${p.outbound ? "out" : "-"}/${p.inbound ? "in" : "-"} heard ${p.lastHeardMsAgo === null ? "never" : `${p.lastHeardMsAgo.toFixed(0)} ms ago`}, ${p.reconnects} reconnects`,
        )
        .join("; ");
      const events = status.events
        .slice(0, 6)
        .map((e) => `${e.time} ${e.text}`)
        .join(" | ");
      return [
        `${head}: role ${status.role}, leader ${status.leader ?? "none"}, ballot ${status.ballot ?? "none"}, promised ${status.promised}, lease remaining ${status.leaseRemainingMs ?? "none"} ms, executed ${status.executedSlot}, commit ${status.commitIndex}, pending ${status.pendingCommands}, halted ${status.halted ?? "no"}, uptime ${status.uptimeMs} ms`,
        `    peers: ${peers}`,
        `    recent events, newest first: ${events}`,
      ].join("\n");
    });
    return { summary: summary.join("\n"), detail };
  }

  private get c(): TestCluster {
    if (this.cluster === undefined) throw new Error("not started");
    return this.cluster;
  }

  async leader(timeoutMs: number): Promise<number | null> {
    try {
      return await this.c.waitForLeader(timeoutMs);
    } catch {
      return null;
    }
  }

  /** Every running replica answers and agrees on the leader (TestCluster.waitForLeader). */
  healthy(timeoutMs: number): Promise<number | null> {
    return this.leader(timeoutMs);
  }

  /** The client address (http://host:port) of member `id`. */
  endpoint(id: number): string {
    return this.c.endpoint(id);
  }

  driver(id: number): SystemDriver {
    return kvDriver(this.c, id);
  }

  /** Prometheus text of every running replica. */
  async metrics(): Promise<string[]> {
    const texts = await Promise.all(
      this.members.map(async (id) => {
        if (this.pid(id) === null) return null;
        try {
          const answer = await send(
            probeAgent,
            { method: "GET", url: `${this.endpoint(id)}/metrics`, headers: this.c.authHeaders("read") },
            2000,
          );
          return answer.status === 200 ? answer.body : null;
        } catch {
          return null;
        }
      }),
    );
    return texts.filter((t): t is string => t !== null);
  }

  async leadership(): Promise<{ leaderships: number; campaigns: number }> {
    const texts = await this.metrics();
    return {
      leaderships: texts.reduce((n, t) => n + metricSum(t, "paxos_lease_leaderships_total"), 0),
      campaigns: texts.reduce((n, t) => n + metricSum(t, "paxos_lease_elections_total"), 0),
    };
  }

  pid(id: number): number | null {
    return this.c.member(id).child?.pid ?? null;
  }

  async kill(id: number): Promise<void> {
    await this.c.kill(id, "SIGKILL");
  }

  restart(id: number): Promise<void> {
    this.startMember(id);
    return Promise.resolve();
  }

  async close(): Promise<void> {
    this.note("close: every member killed");
    await this.cluster?.close();
  }
}

const base64 = (text: string): string => Buffer.from(text, "utf8").toString("base64");

interface EtcdMember {
  readonly id: number;
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  child: ChildProcess | null;
  exit: Promise<void> | null;
}

/**
 * etcd 3.4: three members, default settings, reached through the v3 JSON gateway. With `hosts`,
 * member N runs on host N with its own address and etcd's usual ports (2379 clients, 2380 peers).
 */
export class EtcdCluster implements BenchCluster {
  readonly name = "etcd";
  readonly members = [1, 2, 3];
  private readonly dir = tempDir("etcd");
  private nodes: EtcdMember[] = [];
  private fresh = true;
  private readonly grpcClients = new Map<number, Etcd3>();
  private readonly probeAgent: http.Agent;
  private readonly logs = new BenchLogs("etcd");
  private detached = false;

  /** `extraArgs`: more etcd flags (`--election-timeout 400`, say). `hosts`: member N on host N. */
  constructor(
    private readonly binary = "etcd",
    private readonly extraArgs: readonly string[] = [],
    private readonly hosts?: HostNetwork,
  ) {
    this.probeAgent = hosts === undefined ? probeAgent : hosts.agent({ keepAlive: false });
  }

  /** The address member `id` listens on. */
  private host(id: number): string {
    return this.hosts === undefined ? "127.0.0.1" : this.hosts.address(id);
  }

  async start(): Promise<void> {
    const ports = this.hosts === undefined ? await freePorts(6) : [2379, 2380, 2379, 2380, 2379, 2380];
    this.nodes = this.members.map((id, i) => ({
      id,
      name: `m${id}`,
      clientPort: ports[2 * i]!,
      peerPort: ports[2 * i + 1]!,
      dataDir: path.join(this.dir, `m${id}`),
      child: null,
      exit: null,
    }));
    for (const node of this.nodes) this.spawn(node);
    this.fresh = false;
    return Promise.resolve();
  }

  private spawn(node: EtcdMember): void {
    const cluster = this.nodes.map((n) => `${n.name}=http://${this.host(n.id)}:${n.peerPort}`).join(",");
    const host = this.host(node.id);
    const args = [
      "--name",
      node.name,
      "--data-dir",
      node.dataDir,
      "--listen-client-urls",
      `http://${host}:${node.clientPort}`,
      "--advertise-client-urls",
      `http://${host}:${node.clientPort}`,
      "--listen-peer-urls",
      `http://${host}:${node.peerPort}`,
      "--initial-advertise-peer-urls",
      `http://${host}:${node.peerPort}`,
      "--initial-cluster",
      cluster,
      "--initial-cluster-state",
      this.fresh ? "new" : "existing",
      "--initial-cluster-token",
      "paxos-lease-bench",
      "--logger",
      "zap",
      "--log-outputs",
      this.logFiles()[node.id - 1]!,
      ...this.extraArgs,
    ];
    const child =
      this.hosts === undefined
        ? spawn(this.binary, args, { stdio: "ignore", detached: this.detached })
        : this.hosts.spawn(node.id, this.binary, args, { stdio: "ignore", detached: this.detached });
    node.child = child;
    this.logs.watchExit(node.id, child, this.logFiles()[node.id - 1]!, this.dir);
    node.exit = new Promise((resolve) =>
      child.once("exit", () => {
        if (node.child === child) node.child = null;
        resolve();
      }),
    );
  }

  keepLogsIn(dir: string): this {
    this.logs.dir = dir;
    fs.mkdirSync(dir, { recursive: true });
    return this;
  }

  detach(): this {
    this.detached = true;
    return this;
  }

  logFiles(): readonly string[] {
    return this.members.map((id) => this.logs.file(`etcd-m${id}.log`, this.dir));
  }

  note(text: string): void {
    this.logs.note(text, this.dir);
  }

  async describe(): Promise<{ summary: string; detail: unknown }> {
    const detail = await Promise.all(
      this.nodes.map(async (node) => {
        const pid = this.pid(node.id);
        let status: unknown = `not running (${this.logs.exits.get(node.id) ?? "never started"})`;
        if (pid !== null) {
          try {
            const answer = await send(
              this.probeAgent,
              { method: "POST", url: `${this.endpoint(node.id)}/v3/maintenance/status`, body: "{}" },
              2000,
            );
            status = JSON.parse(answer.body) as unknown;
          } catch (error) {
            status = `no answer to /v3/maintenance/status within 2 s (${error instanceof Error ? error.message : String(error)})`;
          }
        }
        return { member: node.id, name: node.name, pid, process: processState(pid), status };
      }),
    );
    const names = new Map<string, string>();
    for (const d of detail) {
      const id = (d.status as { header?: { member_id?: string } }).header?.member_id;
      if (id !== undefined) names.set(id, d.name);
    }
    const summary = detail.map(({ member, name, pid, process, status }) => {
      const head = `  member ${member} (${name}): pid ${pid ?? "-"} (${process})`;
      if (typeof status === "string") return `${head}: ${status}`;
      const s = status as {
        leader?: string;
        raftTerm?: string;
        raftIndex?: string;
        raftAppliedIndex?: string;
        errors?: string[];
      };
      const leader = s.leader === undefined || s.leader === "0" ? "none" : (names.get(s.leader) ?? s.leader);
      return `${head}: leader ${leader}, raft term ${s.raftTerm ?? "?"}, index ${s.raftIndex ?? "?"}, applied ${s.raftAppliedIndex ?? "?"}, errors ${(s.errors ?? []).join("; ") || "none"}`;
    });
    return { summary: summary.join("\n"), detail };
  }

  private node(id: number): EtcdMember {
    const node = this.nodes[id - 1];
    if (node === undefined) throw new Error(`no etcd member ${id}`);
    return node;
  }

  endpoint(id: number): string {
    return `http://${this.host(id)}:${this.node(id).clientPort}`;
  }

  /** The member whose status says it is the leader (member ids map to our 1..3 by name). */
  leader(timeoutMs: number): Promise<number | null> {
    return this.agreedLeader(timeoutMs, false);
  }

  healthy(timeoutMs: number): Promise<number | null> {
    return this.agreedLeader(timeoutMs, true);
  }

  private async agreedLeader(timeoutMs: number, everyMember: boolean): Promise<number | null> {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      let answered = 0;
      const leaders = new Set<string>();
      const ids = new Map<string, number>();
      let leaderId: string | null = null;
      for (const node of this.nodes) {
        if (node.child === null) continue;
        try {
          const answer = await send(
            this.probeAgent,
            { method: "POST", url: `${this.endpoint(node.id)}/v3/maintenance/status`, body: "{}" },
            1000,
          );
          const status = JSON.parse(answer.body) as { header?: { member_id?: string }; leader?: string };
          if (status.header?.member_id !== undefined) ids.set(status.header.member_id, node.id);
          if (status.leader !== undefined && status.leader !== "0") {
            leaderId = status.leader;
            leaders.add(status.leader);
            answered += 1;
          }
        } catch {
          // Not up yet.
        }
      }
      const leader = leaderId === null ? undefined : ids.get(leaderId);
      const agreed = !everyMember || (answered === this.nodes.length && leaders.size === 1);
      if (leader !== undefined && this.node(leader).child !== null && agreed) return leader;
      await sleep(50);
    }
    return null;
  }

  /** The highest raft term any member reports: it grows with every election, campaigns included. */
  async leadership(): Promise<{ leaderships: number; campaigns: number }> {
    let term = 0;
    for (const node of this.nodes) {
      if (node.child === null) continue;
      try {
        const answer = await send(
          this.probeAgent,
          { method: "POST", url: `${this.endpoint(node.id)}/v3/maintenance/status`, body: "{}" },
          2000,
        );
        term = Math.max(term, Number((JSON.parse(answer.body) as { raftTerm?: string }).raftTerm ?? 0));
      } catch {
        // Down.
      }
    }
    return { leaderships: term, campaigns: term };
  }

  /**
   * A driver that talks etcd's native gRPC API through the etcd3 client (one client, so one HTTP/2
   * connection, multiplexing every request of the point, as gRPC clients are used), pinned to
   * member `id`, with the client's default fault handling. The HTTP request builders are unused.
   */
  grpcDriver(id: number): SystemDriver {
    let client = this.grpcClients.get(id);
    if (client === undefined) {
      client = new Etcd3({ hosts: this.endpoint(id) });
      this.grpcClients.set(id, client);
    }
    const etcd = client;
    const http = this.driver(id);
    return {
      ...http,
      name: `${this.name} (gRPC)`,
      call: async (kind, key, value, timeoutMs): Promise<Outcome> => {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<Outcome>((resolve) => {
          timer = setTimeout(() => resolve("unknown"), timeoutMs);
        });
        // Default range requests are linearizable (serializable: false), as through the gateway.
        const request = (kind === "write" ? etcd.put(key).value(value).exec() : etcd.get(key).string()).then(
          (): Outcome => "ok",
          (): Outcome => "failed",
        );
        try {
          return await Promise.race([request, timeout]);
        } finally {
          clearTimeout(timer);
        }
      },
    };
  }

  driver(id: number): SystemDriver {
    const url = this.endpoint(id);
    return {
      name: this.name,
      write: (key, value): HttpRequest => ({
        method: "POST",
        url: `${url}/v3/kv/put`,
        body: JSON.stringify({ key: base64(key), value: base64(value) }),
      }),
      // Default range requests are linearizable (serializable: false): a ReadIndex round.
      read: (key): HttpRequest => ({
        method: "POST",
        url: `${url}/v3/kv/range`,
        body: JSON.stringify({ key: base64(key) }),
      }),
      // The gateway answers 200 with a header on success, and an error object otherwise.
      ok: (status, body) => status === 200 && body.includes('"header"') && !body.includes('"error"'),
    };
  }

  pid(id: number): number | null {
    return this.node(id).child?.pid ?? null;
  }

  async kill(id: number): Promise<void> {
    const node = this.node(id);
    if (node.child === null) return;
    node.child.kill("SIGKILL");
    await node.exit;
  }

  restart(id: number): Promise<void> {
    this.spawn(this.node(id));
    return Promise.resolve();
  }

  async close(): Promise<void> {
    this.note("close: every member killed");
    for (const client of this.grpcClients.values()) client.close();
    this.grpcClients.clear();
    await Promise.all(this.nodes.map((n) => this.kill(n.id)));
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Stop `cluster`, copy its replicas' trace files into `dir` (made if need be) and remove the
 * cluster's folder: the traces of one repeat of a bench, kept for the trace
 * explorer.
 */
export async function keepTraces(cluster: TestCluster, dir: string): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  await cluster.close(true);
  for (const m of cluster.members) {
    const file = cluster.traceFile(m.id);
    if (fs.existsSync(file)) fs.copyFileSync(file, path.join(dir, path.basename(file)));
  }
  fs.rmSync(cluster.dir, { recursive: true, force: true });
}

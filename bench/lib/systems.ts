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
}

/**
 * Freeze (SIGSTOP) or thaw (SIGCONT) every member of `cluster`: the comparison freezes the
 * system it is not measuring, so an idle cluster never takes CPU from the measured one.
 */
export function freeze(cluster: BenchCluster, frozen: boolean): void {
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

/** Resident set size of a process, in bytes (VmRSS from /proc), or null. */
export function rssBytes(pid: number | null): number | null {
  return statusBytes(pid, "VmRSS");
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
    for (const id of this.members) this.cluster.start(id, { extra: this.replicaArgs });
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
    this.c.start(id, { extra: this.replicaArgs });
    return Promise.resolve();
  }

  async close(): Promise<void> {
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
      path.join(this.dir, `${node.name}.log`),
      ...this.extraArgs,
    ];
    const child =
      this.hosts === undefined
        ? spawn(this.binary, args, { stdio: "ignore" })
        : this.hosts.spawn(node.id, this.binary, args, { stdio: "ignore" });
    node.child = child;
    node.exit = new Promise((resolve) =>
      child.once("exit", () => {
        if (node.child === child) node.child = null;
        resolve();
      }),
    );
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

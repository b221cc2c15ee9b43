/**
 * The two systems the comparison runs, each as a three-member cluster of real processes on
 * loopback with durable writes: paxos-lease (impl/runtime, default settings, no event traces)
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
import { freePorts, sleep, tempDir } from "../../impl/runtime/testing.ts";
import { send, type HttpRequest, type SystemDriver } from "./load.ts";

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

/** Resident set size of a process, in bytes (VmRSS from /proc), or null. */
export function rssBytes(pid: number | null): number | null {
  if (pid === null) return null;
  try {
    const match = /VmRSS:\s+(\d+)\s+kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return match === null ? null : Number(match[1]) * 1024;
  } catch {
    return null;
  }
}

/** CPU time (user + system) a process has used, in milliseconds (from /proc), or null. */
export function cpuMs(pid: number | null): number | null {
  if (pid === null) return null;
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return null;
  }
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

/** paxos-lease: three replica processes, default core settings. */
export class OursCluster implements BenchCluster {
  readonly name = "paxos-lease";
  readonly members = [1, 2, 3];
  private cluster: TestCluster | undefined;

  /** `core`: protocol settings (impl/core/config.ts); default: the core's defaults. */
  constructor(private readonly core?: Record<string, unknown>) {}

  async start(): Promise<void> {
    this.cluster = await TestCluster.create(3, this.core, { traces: false });
    this.cluster.startAll();
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

  driver(id: number): SystemDriver {
    const base = this.c.endpoint(id);
    return {
      name: this.name,
      write: (key, value): HttpRequest => ({
        method: "PUT",
        url: `${base}/v1/kv/${key}`,
        body: JSON.stringify({ value }),
        headers: this.c.authHeaders(),
      }),
      read: (key): HttpRequest => ({ method: "GET", url: `${base}/v1/kv/${key}`, headers: this.c.authHeaders() }),
      ok: (status) => status === 200,
    };
  }

  pid(id: number): number | null {
    return this.c.member(id).child?.pid ?? null;
  }

  async kill(id: number): Promise<void> {
    await this.c.kill(id, "SIGKILL");
  }

  restart(id: number): Promise<void> {
    this.c.start(id);
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

/** etcd 3.4: three members, default settings, reached through the v3 JSON gateway. */
export class EtcdCluster implements BenchCluster {
  readonly name = "etcd";
  readonly members = [1, 2, 3];
  private readonly dir = tempDir("etcd");
  private nodes: EtcdMember[] = [];
  private fresh = true;

  constructor(private readonly binary = "etcd") {}

  async start(): Promise<void> {
    const ports = await freePorts(6);
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
    const cluster = this.nodes.map((n) => `${n.name}=http://127.0.0.1:${n.peerPort}`).join(",");
    const args = [
      "--name",
      node.name,
      "--data-dir",
      node.dataDir,
      "--listen-client-urls",
      `http://127.0.0.1:${node.clientPort}`,
      "--advertise-client-urls",
      `http://127.0.0.1:${node.clientPort}`,
      "--listen-peer-urls",
      `http://127.0.0.1:${node.peerPort}`,
      "--initial-advertise-peer-urls",
      `http://127.0.0.1:${node.peerPort}`,
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
    ];
    const child = spawn(this.binary, args, { stdio: ["ignore", "ignore", "ignore"] });
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
    return `http://127.0.0.1:${this.node(id).clientPort}`;
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
            probeAgent,
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
    await Promise.all(this.nodes.map((n) => this.kill(n.id)));
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

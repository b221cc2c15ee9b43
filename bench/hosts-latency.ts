/**
 * The latency study on hosts: paxos-lease and etcd 3.4 (Debian's etcd-server), each as three
 * members on three hosts (a network namespace each, impl/runtime/testing-hosts.ts) with one
 * client on a fourth, every packet between two hosts delayed by 0, 1, 5 and 20 ms one way (netem
 * where the kernel has it, else the hosts' relays; the report says which). Both systems run on
 * the same hosts with the same delays and default settings: paxos-lease configured as
 * docs/operations.md configures machines, etcd with its usual ports.
 *
 * For each delay and system: the latency of one client's writes and linearizable reads, one at a
 * time, at the leader (paxos-lease reads by lease; etcd reads by ReadIndex, and its serializable
 * read, which may be stale, for reference), and failover: SIGKILL of the leader to the first
 * successful write (bench/lib/failover.ts). What to expect, with d the one-way delay: a lease
 * read costs the client's round trip only (2d), a write one more round trip from the leader to a
 * quorum (4d plus an fsync), etcd's linearizable read also one more round (4d).
 *
 * Needs root, iproute2, nftables and etcd. Nothing here asserts a number.
 *
 *   npm run bench:hosts -- [--json] [--delays 0,1,5,20] [--ops 100] [--kills 3] [--systems paxos-lease,etcd]
 */
import { execFileSync } from "node:child_process";
import type http from "node:http";
import os from "node:os";
import { HostNetwork, HostsUnavailable, hostsUnavailableReason } from "../impl/runtime/testing-hosts.ts";
import { measureFailover } from "./lib/failover.ts";
import { quantile, send, type HttpRequest, type SystemDriver } from "./lib/load.ts";
import { benchFlags, refuseFlags } from "./lib/flags.ts";
import { loadAverage, progressOf } from "./lib/report.ts";
import { EtcdCluster, OursCluster, type BenchCluster } from "./lib/systems.ts";

const usage =
  "usage: npm run bench:hosts -- [--json] [--delays 0,1,5,20] [--ops 10..100000] [--kills 0..50] [--systems paxos-lease,etcd] [--help]\n";
const flags = benchFlags(
  {
    delays: { type: "string", default: "0,1,5,20" },
    ops: { type: "string", default: "100" },
    kills: { type: "string", default: "3" },
    systems: { type: "string", default: "paxos-lease,etcd" },
    json: { type: "boolean", default: false },
  },
  usage,
);
const json = flags.json;
const delays = flags.delays.split(",").map(Number);
const ops = Number(flags.ops);
const kills = Number(flags.kills);
const systems = flags.systems.split(",");
if (
  !delays.every((d) => Number.isFinite(d) && d >= 0 && d <= 500) ||
  !(Number.isInteger(ops) && ops >= 10 && ops <= 100_000) ||
  !(Number.isInteger(kills) && kills >= 0 && kills <= 50) ||
  !systems.every((s) => s === "paxos-lease" || s === "etcd")
) {
  refuseFlags("a flag's value is out of range", usage);
}
const unavailable = hostsUnavailableReason();
if (unavailable !== null) {
  process.stderr.write(`bench:hosts: hosts are not available here: ${unavailable}\n`);
  process.exit(2);
}
if (systems.includes("etcd")) {
  try {
    execFileSync("etcd", ["--version"], { stdio: "ignore" });
  } catch {
    process.stderr.write("bench:hosts: etcd is not installed; on Debian: apt-get install -y etcd-server\n");
    process.exit(2);
  }
}

/** The ports whose connections are delayed: paxos-lease's peer and client ports, etcd's. */
const delayedPorts = [7001, 8001, 2379, 2380];
/** Operations before the measured ones, per kind. */
const warmupOps = 20;

const progress = progressOf("bench:hosts");

/** Latencies of one kind at one point, in milliseconds. */
interface Latency {
  readonly n: number;
  readonly errors: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly mean: number;
}

interface Point {
  readonly delayMs: number;
  readonly system: string;
  readonly write: Latency;
  readonly read: Latency;
  /** etcd's serializable read (may be stale), for reference; null for paxos-lease. */
  readonly serializableRead: Latency | null;
  /**
   * Campaigns (paxos-lease) or raft term changes (etcd) during the latency measurements: any means the point missed.
   */
  readonly leadershipChanges: number;
  /** Milliseconds from SIGKILL of the leader to the first successful write, per kill (null: none within 30 s). */
  readonly failoverMs: readonly (number | null)[];
}

/** `count` requests one after another through `agent`, after a warm-up. */
async function sequential(
  agent: http.Agent,
  request: (i: number) => HttpRequest,
  ok: (status: number, body: string) => boolean,
): Promise<Latency> {
  const samples: number[] = [];
  let errors = 0;
  for (let i = 0; i < warmupOps + ops; i++) {
    const started = performance.now();
    let good = false;
    try {
      const answer = await send(agent, request(i), 5000);
      good = ok(answer.status, answer.body);
    } catch {
      good = false;
    }
    if (i < warmupOps) continue;
    if (good) samples.push(performance.now() - started);
    else errors += 1;
  }
  samples.sort((a, b) => a - b);
  const mean = samples.reduce((a, b) => a + b, 0) / Math.max(1, samples.length);
  return {
    n: samples.length,
    errors,
    p50: quantile(samples, 0.5),
    p90: quantile(samples, 0.9),
    p99: quantile(samples, 0.99),
    mean,
  };
}

/** etcd's serializable range request: answered by the member from its own state. */
function serializable(driver: SystemDriver, key: string): HttpRequest {
  const read = driver.read(key);
  const body = JSON.parse(read.body ?? "{}") as Record<string, unknown>;
  return { ...read, body: JSON.stringify({ ...body, serializable: true }) };
}

async function measure(hosts: HostNetwork, delayMs: number, name: string): Promise<Point> {
  const cluster: BenchCluster =
    name === "paxos-lease" ? new OursCluster(undefined, hosts) : new EtcdCluster("etcd", [], hosts);
  await cluster.start();
  try {
    const leader = await cluster.healthy(60_000);
    if (leader === null) throw new Error(`${name}: no leader within 60 s at ${delayMs} ms`);
    const driver = cluster.driver(leader);
    const agent = hosts.agent({ keepAlive: true, maxSockets: 1 });
    const value = "v".repeat(100);
    const ok = (status: number, body: string): boolean => driver.ok(status, body);
    const before = await cluster.leadership();
    const write = await sequential(agent, (i) => driver.write(`k${i % 100}`, value), ok);
    const read = await sequential(agent, (i) => driver.read(`k${i % 100}`), ok);
    const serializableRead =
      name === "etcd" ? await sequential(agent, (i) => serializable(driver, `k${i % 100}`), ok) : null;
    agent.destroy();
    const leadershipChanges = (await cluster.leadership()).campaigns - before.campaigns;
    progress(
      `${delayMs} ms ${name}: write p50 ${write.p50.toFixed(1)} ms, read p50 ${read.p50.toFixed(1)} ms${serializableRead === null ? "" : `, serializable read p50 ${serializableRead.p50.toFixed(1)} ms`}`,
    );
    const failoverMs: (number | null)[] = [];
    for (let k = 0; k < kills; k++) {
      if ((await cluster.healthy(60_000)) === null) throw new Error(`${name}: not healthy before kill ${k + 1}`);
      const writers = hosts.agent({ keepAlive: true });
      const sample = await measureFailover(cluster, { agent: writers, attemptTimeoutMs: 300 + 4 * delayMs });
      writers.destroy();
      failoverMs.push(sample.ms);
      progress(
        `${delayMs} ms ${name}: failover ${k + 1}/${kills}: ${sample.ms === null ? "none" : `${sample.ms.toFixed(0)} ms`}`,
      );
    }
    return { delayMs, system: name, write, read, serializableRead, leadershipChanges, failoverMs };
  } finally {
    await cluster.close();
  }
}

const format = (n: number): string => (Number.isNaN(n) ? "-" : n < 10 ? n.toFixed(2) : n.toFixed(1));

/** Failed or unknown requests and leadership changes of a point's latency measurements; any of them misses. */
function misses(p: Point): string {
  const errors = p.write.errors + p.read.errors + (p.serializableRead?.errors ?? 0);
  const text = `${errors} / ${p.leadershipChanges}`;
  return errors + p.leadershipChanges > 0 ? `**${text} missed**` : text;
}

function table(points: readonly Point[]): string {
  const lines = [
    "| one-way delay | system | write p50 / p99 (ms) | linearizable read p50 / p99 (ms) | serializable read p50 (ms) | failed or unknown / leadership changes | failover median (min-max) (ms) |",
    "| --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const p of points) {
    const done = p.failoverMs.filter((m): m is number => m !== null).sort((a, b) => a - b);
    const failover =
      done.length === 0
        ? "-"
        : `${quantile(done, 0.5).toFixed(0)} (${done[0]!.toFixed(0)}-${done[done.length - 1]!.toFixed(0)})${done.length < p.failoverMs.length ? `, ${p.failoverMs.length - done.length} none` : ""}`;
    lines.push(
      `| ${p.delayMs} ms | ${p.system} | ${format(p.write.p50)} / ${format(p.write.p99)} | ${format(p.read.p50)} / ${format(p.read.p99)}${p.system === "paxos-lease" ? " (lease)" : " (ReadIndex)"} | ${p.serializableRead === null ? "-" : format(p.serializableRead.p50)} | ${misses(p)} | ${failover} |`,
    );
  }
  return lines.join("\n");
}

const points: Point[] = [];
let mechanism = "";
const loadBefore = os.loadavg();
for (const [i, delayMs] of delays.entries()) {
  let hosts: HostNetwork;
  try {
    hosts = await HostNetwork.create({ hosts: 3, delayPorts: delayedPorts });
  } catch (error) {
    if (!(error instanceof HostsUnavailable)) throw error;
    process.stderr.write(`bench:hosts: hosts are not available here: ${error.message}\n`);
    process.exit(2);
  }
  mechanism = hosts.delayMechanism;
  try {
    await hosts.setDelayEverywhere(delayMs);
    // The systems take turns; their order alternates from one delay to the next.
    const order = i % 2 === 0 ? systems : [...systems].reverse();
    for (const name of order) {
      progress(`${delayMs} ms one way (${hosts.delayMechanism}): ${name}`);
      points.push(await measure(hosts, delayMs, name));
    }
  } finally {
    await hosts.close();
  }
}
points.sort((a, b) => a.delayMs - b.delayMs || (a.system === "paxos-lease" ? -1 : 1));
const report = {
  format: "paxos-lease/bench-hosts-latency@1",
  delayMechanism: mechanism,
  opsPerKind: ops,
  kills,
  cpus: os.cpus().length,
  loadAverage: { before: loadBefore, after: os.loadavg() },
  points,
};
if (json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
else
  process.stdout.write(
    `${table(points)}\n\ndelay made by: ${mechanism}; ${ops} operations per kind, one at a time, after ${warmupOps} unmeasured; ${kills} kills per point; load average before ${loadBefore.map((l) => l.toFixed(1)).join(" ")}, after ${loadAverage(1)} on ${os.cpus().length} cpus\n`,
  );

/**
 * Does the leader keep its lease under many small closed-loop writers on a loaded machine?
 * Starts a fresh 3-replica paxos-lease cluster per repeat, optionally `--hogs N` busy-loop
 * processes that stand in for other work on the machine (each bounded by the run's length),
 * and drives the leader with `--clients` closed-loop writers of `--value-bytes` values for
 * `--seconds`. Reports per repeat: writes ok, failed and of unknown outcome, campaigns and
 * leaderships started (summed over the replicas' counters), event-loop lag p99 of the busiest
 * replica, CPU of the cluster and the machine's load average; with `--traces DIR` the replicas'
 * event traces are kept there for analysis (docs/trace-format.md).
 */
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { TestCluster } from "../impl/runtime/testing-cluster.ts";
import { sleep } from "../impl/runtime/testing.ts";
import { benchFlags } from "./lib/flags.ts";
import { runLoad } from "./lib/load.ts";
import { loadAverage } from "./lib/report.ts";
import { cpuMs, keepTraces, kvDriver, metricSum } from "./lib/systems.ts";

const usage = `usage: npx tsx bench/lease-load.ts [options]

A fresh 3-replica cluster per repeat, driven by closed-loop writers at its leader, with busy-loop
processes beside it to stand in for a loaded machine. Reports failed and outcome-unknown writes,
campaigns and leaderships started, event-loop lag p99, cluster CPU and the load average.

options:
  --clients N       closed-loop writers (default 64)
  --seconds S       measured seconds per repeat, after 2 s of warm-up (default 20)
  --repeats N       fresh clusters, one after the other (default 3)
  --hogs N          busy-loop processes running during the load (default 0)
  --value-bytes N   value size (default 100)
  --snapshot-every N  the replicas' snapshotIntervalSlots (default: the core's, 1024)
  --traces DIR      keep every replica's event trace under DIR/repeat-N
  --json            print the results as JSON
  --help            print this help
`;

const flags = benchFlags(
  {
    clients: { type: "string", default: "64" },
    seconds: { type: "string", default: "20" },
    repeats: { type: "string", default: "3" },
    hogs: { type: "string", default: "0" },
    "value-bytes": { type: "string", default: "100" },
    "snapshot-every": { type: "string" },
    traces: { type: "string" },
    json: { type: "boolean", default: false },
  },
  usage,
);

const clients = Number(flags.clients);
const seconds = Number(flags.seconds);
const repeats = Number(flags.repeats);
const hogs = Number(flags.hogs);
const valueBytes = Number(flags["value-bytes"]);
const warmupMs = 2000;
const core =
  flags["snapshot-every"] === undefined ? undefined : { snapshotIntervalSlots: Number(flags["snapshot-every"]) };

/** `n` busy loops, each ending by itself after `ms`. */
function startHogs(n: number, ms: number): ChildProcess[] {
  const code = `const end = Date.now() + ${ms}; let x = 0; while (Date.now() < end) x++;`;
  return Array.from({ length: n }, () => spawn(process.execPath, ["-e", code], { stdio: "ignore" }));
}

async function counters(
  cluster: TestCluster,
): Promise<{ campaigns: number; leaderships: number; lagMs: number; slot: number }> {
  let campaigns = 0;
  let slot = 0;
  let leaderships = 0;
  let lagMs = 0;
  for (const m of cluster.members) {
    try {
      const text = await fetch(`${cluster.endpoint(m.id)}/metrics`, {
        headers: cluster.authHeaders("read"),
        signal: AbortSignal.timeout(3000),
      }).then((r) => r.text());
      campaigns += metricSum(text, "paxos_lease_elections_total");
      leaderships += metricSum(text, "paxos_lease_leaderships_total");
      lagMs = Math.max(lagMs, metricSum(text, "paxos_lease_process_nodejs_eventloop_lag_p99_seconds") * 1000);
      slot = Math.max(slot, metricSum(text, "paxos_lease_executed_slot"));
    } catch {
      // Not answering: counted as nothing.
    }
  }
  return { campaigns, leaderships, lagMs, slot };
}

interface Result {
  readonly repeat: number;
  readonly ok: number;
  readonly failed: number;
  readonly unknown: number;
  readonly campaigns: number;
  readonly leaderships: number;
  readonly lagP99Ms: number;
  /** Slots executed during the load (the highest replica's): snapshots come every snapshotIntervalSlots. */
  readonly slots: number;
  readonly clusterCpuMs: number;
  readonly throughput: number;
  readonly p99Ms: number;
  readonly roleChanges: string[];
  readonly load: string;
}

const results: Result[] = [];
for (let repeat = 1; repeat <= repeats; repeat++) {
  const cluster = await TestCluster.create(3, core, { traces: flags.traces !== undefined });
  let hogProcesses: ChildProcess[] = [];
  try {
    cluster.startAll();
    const leader = await cluster.waitForLeader(60_000);
    const driver = kvDriver(cluster, leader);
    for (const m of cluster.members) m.output.length = 0;
    const before = await counters(cluster);
    hogProcesses = startHogs(hogs, warmupMs + seconds * 1000 + 5000);
    const pids = cluster.members.map((m) => m.child?.pid ?? null);
    let cpuBefore = 0;
    let cpuTotal = 0;
    const load = await runLoad(driver, {
      clients,
      warmupMs,
      durationMs: seconds * 1000,
      kind: "write",
      valueBytes,
      onWindow: (edge) => {
        const sum = pids.reduce((n: number, pid) => n + (cpuMs(pid) ?? 0), 0);
        if (edge === "start") cpuBefore = sum;
        else cpuTotal = sum - cpuBefore;
      },
    });
    for (const hog of hogProcesses) hog.kill("SIGKILL");
    const after = await counters(cluster);
    const roleChanges = cluster.members.flatMap((m) =>
      m.output.filter((l) => l.includes('"role') && l.includes("role ")).map((l) => `${m.id}: ${l.slice(0, 300)}`),
    );
    const result: Result = {
      repeat,
      ok: load.completed,
      failed: load.failed,
      unknown: load.outcomeUnknown,
      campaigns: after.campaigns - before.campaigns,
      leaderships: after.leaderships - before.leaderships,
      lagP99Ms: after.lagMs,
      slots: after.slot - before.slot,
      clusterCpuMs: cpuTotal,
      throughput: load.throughput,
      p99Ms: load.p99,
      roleChanges,
      load: loadAverage(),
    };
    results.push(result);
    process.stderr.write(
      `repeat ${repeat}: ${result.ok} ok, ${result.failed} failed, ${result.unknown} unknown, ${result.slots} slots, campaigns ${result.campaigns}, leaderships ${result.leaderships}, lag p99 ${result.lagP99Ms.toFixed(0)} ms, cluster CPU ${(result.clusterCpuMs / result.ok).toFixed(3)} ms/write, ${result.throughput.toFixed(0)} writes/s, p99 ${result.p99Ms.toFixed(0)} ms, load ${result.load}\n`,
    );
    for (const line of roleChanges) process.stderr.write(`  ${line}\n`);
    if (flags.traces !== undefined) {
      await keepTraces(cluster, path.join(flags.traces, `repeat-${repeat}`));
    }
  } finally {
    for (const hog of hogProcesses) hog.kill("SIGKILL");
    await cluster.close();
  }
  await sleep(500);
}

if (flags.json)
  process.stdout.write(`${JSON.stringify({ clients, seconds, hogs, valueBytes, core, results }, null, 2)}\n`);

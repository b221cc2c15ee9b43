/**
 * paxos-lease next to etcd 3.4 (Debian's etcd-server), both as three members on loopback with
 * durable writes and default settings, driven by one load generator in one run:
 *
 * - writes at 1, 16 and 64 closed-loop clients: throughput, p50, p99, CPU per write;
 * - linearizable reads (ours by lease, etcd's default ReadIndex) at 16 and 64 clients;
 * - replica memory (VmRSS) under the 64-client write load;
 * - failover: SIGKILL of the leader to the first successful write, over several kills each.
 *
 * The machine is shared and noisy: the two systems take turns point by point (the one not
 * measured is frozen with SIGSTOP, so it takes no CPU), their order alternates, and the report
 * gives medians over repeats and ratios (paxos-lease / etcd). `--write-docs` regenerates the table in
 * docs/performance.md, and the SVG charts and the JSON report in docs/perf/. Nothing here asserts a number.
 *
 * Honest by construction: every point reports its failed and outcome-unknown requests and the
 * leadership changes during it, and a point with any of them misses its target whatever its
 * throughput; percentiles count a failed request as the timeout; CPU per operation counts only the
 * measured window. Failover is measured at both systems' defaults and again with etcd's election
 * timeout set to paxos-lease's (400 ms, heartbeats every 50 ms).
 *
 *   npm run bench -- --help
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { measureFailover, type FailoverSample } from "./lib/failover.ts";
import { benchFlags } from "./lib/flags.ts";
import { median, quantile, runLoad, type LoadResult, type SystemDriver } from "./lib/load.ts";
import { loadAverage, progressOf } from "./lib/report.ts";
import { cdfChart, dotPlot, lineChart } from "./lib/svg.ts";
import {
  cpuWindow,
  EtcdCluster,
  freeze,
  healthyOrExplain,
  OursCluster,
  rssBytes,
  type BenchCluster,
} from "./lib/systems.ts";

const usage = `usage: npm run bench -- [options]

paxos-lease next to etcd 3.4 (Debian's etcd-server), 3 members each on loopback: writes at 1, 16
and 64 clients, linearizable reads at 16 and 64, RSS under 64 writers, and failover after SIGKILL
of the leader (at defaults, and with etcd's election timeout equal to paxos-lease's).

options:
  --repeats N     repeats of every point (default 3)
  --seconds S     measured seconds per point, after 3 s of 16 clients and 2 s of the point's own (default 5)
  --warmup S      seconds of 16 writers, then as many of 16 readers, before the first point
                  (default 15: Node's compiler is still optimizing functions after 5)
  --kills N       leader kills per system and setting (default 10)
  --no-failover   skip the failover measurements
  --no-reads      skip the read points (writes and RSS only)
  --core JSON     core settings for paxos-lease beside the runtime's (impl/core/config.ts), as a
                  JSON object, to measure a setting against its default (not with --write-docs)
  --logs DIR      keep every member's log, the bench's freezes and thaws, and the members'
                  statuses when a cluster is not healthy in time, in DIR (default: a new
                  folder paxos-lease-bench-* in the temporary directory; kept, its path printed)
  --json          print the full report as JSON
  --write-docs    rewrite the table in docs/performance.md and docs/perf/
  --help          print this help
`;
const parsed = benchFlags(
  {
    repeats: { type: "string", default: "3" },
    seconds: { type: "string", default: "5" },
    warmup: { type: "string", default: "15" },
    kills: { type: "string", default: "10" },
    "no-failover": { type: "boolean", default: false },
    "no-reads": { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    "write-docs": { type: "boolean", default: false },
    core: { type: "string" },
    logs: { type: "string" },
  },
  usage,
);
const core = ((): Record<string, unknown> | undefined => {
  if (parsed.core === undefined) return undefined;
  const value: unknown = JSON.parse(parsed.core);
  if (typeof value !== "object" || value === null || Array.isArray(value) || parsed["write-docs"]) {
    process.stderr.write(`bench: --core takes a JSON object, and not with --write-docs: ${parsed.core}\n`);
    process.exit(2);
  }
  return value as Record<string, unknown>;
})();
const json = parsed.json;
const writeDocs = parsed["write-docs"];
const failover = !parsed["no-failover"];
const repeats = Number(parsed.repeats);
const seconds = Number(parsed.seconds);
const kills = Number(parsed.kills);
/**
 * Load before measuring, per system at the start (each of writes and reads) and per point. With
 * 5 s, a replica's compiler still optimized over 100 functions in the next 10 s at one client
 * (V8's --trace-opt; helper-thread CPU in every write's share); after 40 s, about 30.
 */
const warmupMs = Number(parsed.warmup) * 1000;
const pointWarmupMs = 2000;
/**
 * Load after each thaw, before a point's own warm-up. A paxos-lease cluster thawed after its
 * freeze once elected a new leader (its leader's CheckQuorum and the followers' election timers
 * counted the freeze as silence), on a process whose leader path V8 had not compiled yet; now its
 * CheckQuorum counts the leader's run time and a follower stalled past its deadline waits for the
 * leader (`electionWaitsAfterStall`), and it keeps its leader, as etcd, which counts those
 * timeouts in ticks, does. Both systems still get this so that a point measures the steady state
 * (docs/performance.md, "Wake-ups and system calls per write, next to etcd's").
 */
const thawWarmupMs = 3000;
if (
  !(Number.isInteger(repeats) && repeats >= 1 && repeats <= 20) ||
  !(seconds >= 1 && seconds <= 120) ||
  !(warmupMs >= 0 && warmupMs <= 600_000) ||
  !(Number.isInteger(kills) && kills >= 1 && kills <= 100)
) {
  process.stderr.write(usage);
  process.exit(2);
}
try {
  execFileSync("etcd", ["--version"], { stdio: "ignore" });
} catch {
  process.stderr.write(
    "bench: etcd is not installed; on Debian: apt-get install -y etcd-server (the comparison needs it; npm test does not)\n",
  );
  process.exit(2);
}

const writeClients = [1, 16, 64];
const readClients = parsed["no-reads"] ? [] : [16, 64];
const systems = ["paxos-lease", "etcd"] as const;
type SystemName = (typeof systems)[number];
/** The run's folder: every member's log, the bench's notes of freezes and thaws, statuses of an unhealthy cluster. */
const runDir = parsed.logs ?? fs.mkdtempSync(path.join(os.tmpdir(), "paxos-lease-bench-"));
fs.mkdirSync(runDir, { recursive: true });
const make = (name: SystemName): BenchCluster =>
  (name === "paxos-lease" ? new OursCluster(core) : new EtcdCluster()).keepLogsIn(path.join(runDir, "load")).detach();
/** Clusters started and not closed yet: on Ctrl-C or SIGTERM they are thawed and closed, never left behind frozen. */
const running = new Set<BenchCluster>();
for (const signal of ["SIGINT", "SIGTERM"] as const)
  process.once(signal, () => {
    process.stderr.write(`bench: ${signal}: closing the clusters; logs of this run in ${runDir}\n`);
    void Promise.all([...running].map((c) => (freeze(c, false), c.close()))).finally(() => process.exit(130));
  });
/** Start every cluster of `clusters`, tracked in `running` until `closeAll`. */
async function startAll(clusters: Iterable<BenchCluster>): Promise<void> {
  for (const cluster of clusters) {
    running.add(cluster);
    await cluster.start();
  }
}
async function closeAll(clusters: Iterable<BenchCluster>): Promise<void> {
  for (const cluster of clusters) {
    freeze(cluster, false);
    await cluster.close();
    running.delete(cluster);
  }
}
/** `cluster`'s leader once it is healthy; if it is not within 90 s, an error that says why and where the logs are. */
const healthy = (cluster: BenchCluster, when: string): Promise<number> =>
  healthyOrExplain(cluster, 90_000, when, runDir);

const progress = progressOf("bench");

/** What a point measured: a system, or etcd through its native gRPC API (`etcd-grpc`, on the etcd cluster's turn). */
type Measured = SystemName | "etcd-grpc";

interface Point {
  readonly system: Measured;
  readonly kind: "write" | "read";
  readonly clients: number;
  readonly repeat: number;
  readonly result: LoadResult;
  readonly cpuMsPerOp: number;
  /** Leaderships taken and campaigns started during the point (etcd: raft terms). */
  readonly leadershipChanges: number;
  /** The largest member's RSS sampled during the point, in MiB. */
  readonly rssMaxMb: number;
  readonly load: string;
}

const points: Point[] = [];
const rss = new Map<SystemName, number[]>();

/** Sample every member's RSS every 500 ms while `run` runs; the largest seen, in bytes. */
async function sampleRss<T>(cluster: BenchCluster, run: () => Promise<T>): Promise<{ result: T; rssMax: number }> {
  let max = 0;
  const timer = setInterval(() => {
    for (const m of cluster.members) max = Math.max(max, rssBytes(cluster.pid(m)) ?? 0);
  }, 500);
  try {
    return { result: await run(), rssMax: max };
  } finally {
    clearInterval(timer);
  }
}

/** One point: thaw `name`, freeze the other, wait until healthy, measure. */
async function measurePoint(
  clusters: ReadonlyMap<SystemName, BenchCluster>,
  name: SystemName,
  kind: "write" | "read",
  clients: number,
  repeat: number,
): Promise<void> {
  const cluster = clusters.get(name)!;
  for (const [other, c] of clusters) freeze(c, other !== name);
  const what = `${kind}s, ${clients} clients, repeat ${repeat + 1}`;
  let leader = await healthy(cluster, `after the thaw before ${what}`);
  await runLoad(cluster.driver(leader), { clients: 16, warmupMs: 0, durationMs: thawWarmupMs, kind });
  leader = await healthy(cluster, `after the post-thaw load before ${what}`);
  await measureOnce(cluster, name, cluster.driver(leader), kind, clients, repeat);
  // etcd's turn also measures its native gRPC API, on the same thawed cluster.
  if (cluster instanceof EtcdCluster)
    await measureOnce(cluster, "etcd-grpc", cluster.grpcDriver(leader), kind, clients, repeat);
}

async function measureOnce(
  cluster: BenchCluster,
  name: Measured,
  driver: SystemDriver,
  kind: "write" | "read",
  clients: number,
  repeat: number,
): Promise<void> {
  const load = loadAverage();
  const cpu = cpuWindow(cluster);
  const before = await cluster.leadership();
  const measured = await sampleRss(cluster, () =>
    runLoad(driver, {
      clients,
      warmupMs: pointWarmupMs,
      durationMs: seconds * 1000,
      kind,
      onWindow: cpu.onWindow,
    }),
  );
  const after = await cluster.leadership();
  const result = measured.result;
  if (kind === "write" && clients === 64 && name !== "etcd-grpc")
    rss.set(name, [...(rss.get(name) ?? []), measured.rssMax]);
  const leadershipChanges = after.campaigns - before.campaigns;
  points.push({
    system: name,
    kind,
    clients,
    repeat,
    result,
    cpuMsPerOp: cpu.cpuMs() / Math.max(1, result.completed),
    leadershipChanges,
    rssMaxMb: measured.rssMax / 2 ** 20,
    load,
  });
  progress(
    `repeat ${repeat + 1}/${repeats} ${name} ${kind}s, ${clients} clients: ${result.throughput.toFixed(0)}/s p50 ${result.p50.toFixed(2)} ms p99 ${result.p99.toFixed(2)} ms CPU per op ${points.at(-1)!.cpuMsPerOp.toFixed(3)} ms failed ${result.failed} unknown ${result.outcomeUnknown} leadership changes ${leadershipChanges} RSS ${points.at(-1)!.rssMaxMb.toFixed(0)} MB (load ${load})`,
  );
}

/** Every point of every repeat, the two systems alternating point by point (the other frozen). */
async function measureLoad(): Promise<void> {
  const clusters = new Map(systems.map((s) => [s, make(s)] as const));
  try {
    await startAll(clusters.values());
    // Warm both up first (JIT compilation, caches, page cache): the first seconds of load are
    // slower, most of all for Node, and would otherwise land in the first repeat.
    for (const [name, cluster] of clusters) {
      for (const [other, c] of clusters) freeze(c, other !== name);
      const leader = await healthy(cluster, "before the warm-up");
      for (const kind of ["write", "read"] as const)
        await runLoad(cluster.driver(leader), { clients: 16, warmupMs: 0, durationMs: warmupMs, kind });
      progress(`${name} warmed up (${(2 * warmupMs) / 1000} s of load)`);
    }
    const plan = [...writeClients.map((c) => ["write", c] as const), ...readClients.map((c) => ["read", c] as const)];
    for (let r = 0; r < repeats; r++) {
      for (const [i, [kind, clients]] of plan.entries()) {
        for (const name of (r + i) % 2 === 0 ? systems : [...systems].reverse())
          await measurePoint(clusters, name, kind, clients, r);
      }
    }
  } finally {
    await closeAll(clusters.values());
  }
}

/**
 * Failover runs at both systems' defaults, and with etcd's election timeout equal to paxos-lease's
 * (400 ms; etcd draws from [400, 800) ms, paxos-lease from [400, 600) ms, both with heartbeats every
 * 50 ms).
 */
const failoverSystems = [...systems, "etcd-400"] as const;
type FailoverName = (typeof failoverSystems)[number];
const etcdEqualTimeouts = ["--heartbeat-interval", "50", "--election-timeout", "400"];
const failovers = new Map<FailoverName, FailoverSample[]>(failoverSystems.map((s) => [s, []]));

async function measureFailovers(): Promise<void> {
  const clusters = new Map<FailoverName, BenchCluster>(
    failoverSystems.map((s) => [
      s,
      (s === "etcd-400"
        ? new EtcdCluster("etcd", etcdEqualTimeouts)
        : s === "etcd"
          ? new EtcdCluster()
          : new OursCluster(core)
      )
        .keepLogsIn(path.join(runDir, `failover-${s}`))
        .detach(),
    ]),
  );
  try {
    await startAll(clusters.values());
    for (let k = 0; k < kills; k++) {
      const order = k % 2 === 0 ? failoverSystems : [...failoverSystems].reverse();
      for (const name of order) {
        const cluster = clusters.get(name)!;
        await healthy(cluster, `before kill ${k + 1}`);
        const sample = await measureFailover(cluster);
        failovers.get(name)!.push(sample);
        progress(
          `kill ${k + 1}/${kills} ${name}: leader ${sample.killed} killed, first write after ${sample.ms === null ? "none" : `${sample.ms.toFixed(0)} ms`}, new leader ${sample.newLeader ?? "?"} (load ${loadAverage()})`,
        );
        await healthy(cluster, `after restarting the member killed in kill ${k + 1}`);
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  } finally {
    await closeAll(clusters.values());
  }
}

progress(`logs of this run in ${runDir}`);
progress(
  `start: ${repeats} repeats of ${seconds} s per point, ${failover ? `${kills} kills per system` : "no failover"}; load ${loadAverage()}`,
);
await measureLoad();
if (failover) await measureFailovers();

// ---- Summaries: medians over repeats, ratios ours / etcd. ----

function med(system: Measured, kind: "write" | "read", clients: number, pick: (p: Point) => number): number {
  return median(points.filter((p) => p.system === system && p.kind === kind && p.clients === clients).map(pick));
}

const rows = [...writeClients.map((c) => ["write", c] as const), ...readClients.map((c) => ["read", c] as const)].map(
  ([kind, clients]) => {
    const sum = (s: Measured, pick: (p: Point) => number): number =>
      points.filter((p) => p.system === s && p.kind === kind && p.clients === clients).reduce((n, p) => n + pick(p), 0);
    const of = (s: Measured) => ({
      throughput: med(s, kind, clients, (p) => p.result.throughput),
      p50: med(s, kind, clients, (p) => p.result.p50),
      p99: med(s, kind, clients, (p) => p.result.p99),
      cpuMsPerOp: med(s, kind, clients, (p) => p.cpuMsPerOp),
      /** Over all repeats: a point with any of these misses its target. */
      failed: sum(s, (p) => p.result.failed),
      outcomeUnknown: sum(s, (p) => p.result.outcomeUnknown),
      leadershipChanges: sum(s, (p) => p.leadershipChanges),
    });
    const ours = of("paxos-lease");
    const etcd = of("etcd");
    const grpc = of("etcd-grpc");
    return {
      kind,
      clients,
      ours,
      etcd,
      grpc,
      throughputRatio: ours.throughput / etcd.throughput,
      p99Ratio: ours.p99 / etcd.p99,
      grpcThroughputRatio: ours.throughput / grpc.throughput,
      grpcP99Ratio: ours.p99 / grpc.p99,
    };
  },
);
const failoverSummary = Object.fromEntries(
  failoverSystems.map((s) => {
    const ms = failovers
      .get(s)!
      .map((f) => f.ms)
      .filter((v): v is number => v !== null)
      .sort((a, b) => a - b);
    return [
      s,
      {
        kills: failovers.get(s)!.length,
        measured: ms.length,
        medianMs: quantile(ms, 0.5),
        p99Ms: quantile(ms, 0.99),
        maxMs: quantile(ms, 1),
        samplesMs: ms,
      },
    ];
  }),
);
const rssSummary = Object.fromEntries(systems.map((s) => [s, { medianOfMaxMb: median(rss.get(s) ?? []) / 2 ** 20 }]));
const summary = {
  machine: { cpus: os.cpus().length, node: process.version, loadAtEnd: loadAverage() },
  repeats,
  seconds,
  rows,
  failover: failover ? failoverSummary : null,
  rssMb: rssSummary,
};

function table(): string {
  const lines = [
    "| measure | paxos-lease | etcd 3.4 (JSON gateway unless said) | ours / etcd |",
    "| --- | --- | --- | --- |",
  ];
  for (const r of rows) {
    const what =
      r.kind === "write"
        ? `writes, ${r.clients} client${r.clients === 1 ? "" : "s"}`
        : `linearizable reads, ${r.clients} clients`;
    lines.push(
      `| ${what}: throughput (ops/s) | ${r.ours.throughput.toFixed(0)} | ${r.etcd.throughput.toFixed(0)} | **${r.throughputRatio.toFixed(2)}x** |`,
    );
    lines.push(
      `| ${what}: p50 / p99 latency (ms) | ${r.ours.p50.toFixed(1)} / ${r.ours.p99.toFixed(1)} | ${r.etcd.p50.toFixed(1)} / ${r.etcd.p99.toFixed(1)} | p99 ${r.p99Ratio.toFixed(2)}x |`,
    );
    lines.push(
      `| ${what}: CPU per op, all 3 members (ms) | ${r.ours.cpuMsPerOp.toFixed(2)} | ${r.etcd.cpuMsPerOp.toFixed(2)} | ${(r.ours.cpuMsPerOp / r.etcd.cpuMsPerOp).toFixed(2)}x |`,
    );
    lines.push(
      `| ${what}, next to etcd's native gRPC API: throughput (ops/s), p99 (ms), CPU per op (ms) | ${r.ours.throughput.toFixed(0)}, ${r.ours.p99.toFixed(1)}, ${r.ours.cpuMsPerOp.toFixed(2)} | ${r.grpc.throughput.toFixed(0)}, ${r.grpc.p99.toFixed(1)}, ${r.grpc.cpuMsPerOp.toFixed(2)} | **${r.grpcThroughputRatio.toFixed(2)}x**, p99 ${r.grpcP99Ratio.toFixed(2)}x, CPU ${(r.ours.cpuMsPerOp / r.grpc.cpuMsPerOp).toFixed(2)}x |`,
    );
    const misses = (o: typeof r.ours): string => `${o.failed} / ${o.outcomeUnknown} / ${o.leadershipChanges}`;
    const clean = (o: typeof r.ours): boolean => o.failed + o.outcomeUnknown + o.leadershipChanges === 0;
    lines.push(
      `| ${what}: failed / outcome unknown / leadership changes, all repeats | ${misses(r.ours)} | ${misses(r.etcd)} | ${clean(r.ours) ? "none" : "**missed**"} |`,
    );
  }
  if (failover) {
    const o = failoverSummary["paxos-lease"]!;
    const e = failoverSummary.etcd!;
    const e4 = failoverSummary["etcd-400"]!;
    lines.push(
      `| failover, SIGKILL of the leader to the first write: median / p99 (ms), ${o.measured} and ${e.measured} kills, defaults | ${o.medianMs.toFixed(0)} / ${o.p99Ms.toFixed(0)} | ${e.medianMs.toFixed(0)} / ${e.p99Ms.toFixed(0)} | ${(o.medianMs / e.medianMs).toFixed(2)}x |`,
    );
    lines.push(
      `| failover, the same with etcd's election timeout at 400 ms and heartbeats at 50 ms (${e4.measured} kills) | ${o.medianMs.toFixed(0)} / ${o.p99Ms.toFixed(0)} | ${e4.medianMs.toFixed(0)} / ${e4.p99Ms.toFixed(0)} | ${(o.medianMs / e4.medianMs).toFixed(2)}x |`,
    );
  }
  lines.push(
    `| replica RSS under 64 writers, largest member (MB) | ${rssSummary["paxos-lease"]!.medianOfMaxMb.toFixed(0)} | ${rssSummary.etcd!.medianOfMaxMb.toFixed(0)} | ${(rssSummary["paxos-lease"]!.medianOfMaxMb / rssSummary.etcd!.medianOfMaxMb).toFixed(2)}x |`,
  );
  return lines.join("\n");
}

const colors: Record<SystemName, string> = { "paxos-lease": "#5e35b1", etcd: "#00897b" };

function charts(): Record<string, string> {
  const sub = `medians of ${repeats} alternated runs of ${seconds} s, 3 members on loopback, ${os.cpus().length} shared cores`;
  const throughput = lineChart({
    title: "Throughput versus concurrent clients",
    subtitle: sub,
    xLabel: "concurrent closed-loop clients",
    yLabel: "operations per second",
    xCategories: writeClients,
    series: [
      ...systems.map((s) => ({
        name: `${s} writes`,
        color: colors[s],
        points: writeClients.map((c) => [c, med(s, "write", c, (p) => p.result.throughput)] as const),
      })),
      ...systems.map((s) => ({
        name: `${s} reads`,
        color: s === "etcd" ? "#80cbc4" : "#b39ddb",
        points: readClients.map((c) => [c, med(s, "read", c, (p) => p.result.throughput)] as const),
      })),
    ],
  });
  // The latency distribution of the median run (by throughput) of 16-client writes.
  const medianRun = (s: SystemName): readonly number[] => {
    const runs = points
      .filter((p) => p.system === s && p.kind === "write" && p.clients === 16)
      .sort((a, b) => a.result.throughput - b.result.throughput);
    return runs[Math.floor((runs.length - 1) / 2)]?.result.samples ?? [];
  };
  const latency = cdfChart({
    title: "Write latency distribution, 16 clients",
    subtitle: "the median run of each system",
    series: systems.map((s) => ({ name: s, color: colors[s], sorted: medianRun(s) })),
  });
  const out: Record<string, string> = { "throughput.svg": throughput, "write-latency.svg": latency };
  if (failover) {
    out["failover.svg"] = dotPlot({
      title: "Failover: SIGKILL of the leader to the first successful write",
      subtitle: `${kills} kills per system, alternated; default settings, and etcd with a 400 ms election timeout`,
      xLabel: "milliseconds",
      series: failoverSystems.map((s) => ({
        name: s === "etcd-400" ? "etcd, election timeout 400 ms" : s,
        color: s === "etcd-400" ? "#80cbc4" : colors[s],
        values: failoverSummary[s]!.samplesMs,
      })),
    });
  }
  return out;
}

const docsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "docs");
const report = {
  ...summary,
  points: points.map((p) => ({ ...p, result: { ...p.result, samples: undefined } })),
  failoverSamples: Object.fromEntries(failovers),
};
if (writeDocs) {
  const perfDir = path.join(docsDir, "perf");
  fs.mkdirSync(perfDir, { recursive: true });
  for (const [file, svg] of Object.entries(charts())) fs.writeFileSync(path.join(perfDir, file), svg);
  fs.writeFileSync(path.join(perfDir, "compare.json"), `${JSON.stringify(report, null, 2)}\n`);
  const doc = path.join(docsDir, "performance.md");
  const text = fs.readFileSync(doc, "utf8");
  const begin = "<!-- bench:compare:begin -->";
  const end = "<!-- bench:compare:end -->";
  const block = `${begin}\n${table()}\n\nMeasured ${new Date().toISOString().slice(0, 10)}: ${repeats} repeats of ${seconds} s per point after ${thawWarmupMs / 1000} s of 16 clients and ${pointWarmupMs / 1000} s of the point's own (and ${warmupMs / 1000} s of writes and of reads first), ${os.cpus().length} cores, Node ${process.version}; load average at the end ${loadAverage()}.\n${end}`;
  const next = text.includes(begin)
    ? text.replace(new RegExp(`${begin}[\\s\\S]*?${end}`), block)
    : `${text.trimEnd()}\n\n${block}\n`;
  fs.writeFileSync(doc, next);
  progress(`wrote ${doc}, and the charts and the JSON report in ${perfDir}`);
}

if (json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
else process.stdout.write(`${table()}\n`);

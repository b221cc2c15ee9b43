/**
 * What overlapped the slowest 1% of a lone client's writes: starts a 3-replica cluster of compiled
 * replicas with the timeline on (impl/runtime/timeline.ts), warms it up with 16 writers, drives it
 * with one closed-loop writer of 100-byte values, and for the slowest 1% of the writes says what
 * overlapped each: the collector's pauses on every replica's main, storage and heartbeat relay
 * threads (a PerformanceObserver on 'gc' in each), a snapshot's making and slices and the appends
 * held behind them, a compaction's pieces, WAL checkpoints and full collections on the storage
 * threads, fsyncs longer than 1 ms, the ticks (the driver's timer) and the heartbeat relay's
 * hand-overs, each thread's wait for a core (its run-queue delay, /proc/PID/task/TID/schedstat,
 * sampled from a thread of this process), the client's own, and the part of the write on the
 * follower that made the quorum beyond its median. Each cause is set beside how often it
 * overlapped any write (bench/lib/write-tail.ts): what overlaps the slow writes far more often
 * than the others makes the tail. Overlap survives a loaded machine; the latencies do not.
 *
 *   npx tsx bench/write-tail.ts [--seconds 20] [--warmup 10] [--sample-ms 2] [--json]
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Worker } from "node:worker_threads";
import { readTimeline } from "../impl/runtime/timeline.ts";
import { TestCluster } from "../impl/runtime/testing-cluster.ts";
import { benchFlags, refuseFlags } from "./lib/flags.ts";
import { Http1Connection } from "./lib/http1.ts";
import { quantile, runLoad } from "./lib/load.ts";
import { loadAverage, progressOf } from "./lib/report.ts";
import { kvDriver } from "./lib/systems.ts";
import {
  counterCause,
  fsyncSpans,
  longSpans,
  markedSpans,
  namedThreads,
  overlapTable,
  spanCause,
  unionSpans,
  type Cause,
} from "./lib/write-tail.ts";
import { segmentNames, writePaths, type ClientWrite, type ThreadMarks } from "./lib/write-timeline.ts";

const usage = `usage: npx tsx bench/write-tail.ts [options]

One client's writes to a 3-replica cluster; for the slowest 1% of them, what overlapped each
(collections, snapshots, compaction, long fsyncs, ticks, the heartbeat relay, each thread's wait
for a core, the follower that made the quorum), beside how often it overlapped any write.

options:
  --seconds S     measured seconds (default 20)
  --warmup S      seconds of 16 writers first, so that the code is compiled (default 10)
  --sample-ms MS  how often the threads' run-queue delays are read (default 2)
  --fraction F    the slow writes: the slowest F of them (default 0.01)
  --window-ms MS  how long after a snapshot's making its writes count as after a snapshot (default 100)
  --json          print the report as JSON
  --marks FILE    also write every mark, the samples and the client's writes to FILE (JSON)
  --help          print this help
`;

const flags = benchFlags(
  {
    seconds: { type: "string", default: "20" },
    warmup: { type: "string", default: "10" },
    "sample-ms": { type: "string", default: "2" },
    fraction: { type: "string", default: "0.01" },
    json: { type: "boolean", default: false },
    marks: { type: "string" },
    "window-ms": { type: "string", default: "100" },
  },
  usage,
);
const seconds = Number(flags.seconds);
const warmup = Number(flags.warmup);
const sampleMs = Number(flags["sample-ms"]);
const fraction = Number(flags.fraction);
if (
  !(seconds > 0) ||
  !(warmup >= 0) ||
  !(sampleMs > 0) ||
  !(fraction > 0 && fraction < 1) ||
  !(Number(flags["window-ms"]) > 0)
)
  refuseFlags(
    "--seconds, --sample-ms, --window-ms must be positive, --warmup not negative, --fraction in (0, 1)",
    usage,
  );
const progress = progressOf("bench:write-tail");
const nowUs = (): number => {
  const [s, ns] = process.hrtime();
  return s * 1e6 + ns / 1e3;
};

/**
 * A thread of this process that reads each thread's schedstat (run time and run-queue delay, ns)
 * every `sampleMs`, on the same monotonic clock as the marks, until told to stop.
 */
const samplerSource = `
const { parentPort, workerData } = require("node:worker_threads");
const fs = require("node:fs");
const { paths, sampleMs, stop } = workerData;
const flag = new Int32Array(stop);
const fds = paths.map((p) => { try { return fs.openSync(p, "r"); } catch { return -1; } });
const buf = Buffer.alloc(256);
const times = [];
const waits = paths.map(() => []);
const runs = paths.map(() => []);
while (Atomics.load(flag, 0) === 0) {
  const [s, ns] = process.hrtime();
  times.push(s * 1e6 + ns / 1e3);
  fds.forEach((fd, i) => {
    let run = 0, wait = 0;
    if (fd >= 0) {
      try {
        const n = fs.readSync(fd, buf, 0, 256, 0);
        const f = buf.toString("latin1", 0, n).split(" ");
        run = Number(f[0]) / 1e3; wait = Number(f[1]) / 1e3;
      } catch {}
    }
    runs[i].push(run); waits[i].push(wait);
  });
  Atomics.wait(flag, 0, 0, sampleMs);
}
parentPort.postMessage({ times, waits, runs });
`;

interface Samples {
  readonly times: number[];
  readonly waits: number[][];
  readonly runs: number[][];
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "paxos-lease-tail-"));
process.env.PAXOS_LEASE_TIMELINE_DIR = dir;
const cluster = await TestCluster.create(3, undefined, { traces: false });
const writes: ClientWrite[] = [];
let leader = 0;
const loadBefore = loadAverage();
let loadAfter = "";
const pids = new Map<number, number>();
const readThreads = (): ThreadMarks[] => {
  const threads: ThreadMarks[] = [];
  for (const file of fs.readdirSync(dir)) {
    const match = /^(\d+)-(\d+)\.timeline$/.exec(file);
    const replica = match === null ? undefined : pids.get(Number(match[1]));
    if (match === null || replica === undefined) continue;
    threads.push({ replica, main: match[2] === "0", marks: readTimeline(fs.readFileSync(path.join(dir, file))) });
  }
  return threads;
};
let sampled: { name: string; pid: number; tid: number }[] = [];
let samples: Samples = { times: [], waits: [], runs: [] };
try {
  cluster.startAll();
  if (warmup > 0)
    await runLoad(kvDriver(cluster, await cluster.waitForLeader(90_000)), {
      clients: 16,
      warmupMs: 0,
      durationMs: warmup * 1000,
      kind: "write",
    });
  leader = await cluster.waitForLeader(90_000);
  for (const id of [1, 2, 3]) pids.set(cluster.member(id).child!.pid!, id);
  // Every thread has written its `thread` mark by now (a quarter of a second at a time).
  await new Promise((resolve) => setTimeout(resolve, 600));
  const pidOf = new Map([...pids].map(([pid, id]) => [id, pid]));
  sampled = [
    ...namedThreads(leader, readThreads())
      .filter((t) => t.tid >= 0)
      .map((t) => ({ name: t.name, pid: pidOf.get(t.replica)!, tid: t.tid })),
    { name: "the client (this process's main thread)", pid: process.pid, tid: process.pid },
  ];
  progress(
    `leader ${leader}; threads sampled: ${sampled.map((t) => `${t.name} ${t.tid}`).join(", ")}; one client for ${seconds} s; load ${loadAverage()}`,
  );
  const stop = new SharedArrayBuffer(4);
  const sampler = new Worker(samplerSource, {
    eval: true,
    workerData: { paths: sampled.map((t) => `/proc/${t.pid}/task/${t.tid}/schedstat`), sampleMs, stop },
  });
  const sampledOut = new Promise<Samples>((resolve) => sampler.once("message", resolve));
  const url = new URL(cluster.endpoint(leader));
  const headers = cluster.authHeaders();
  const body = JSON.stringify({ value: "v".repeat(100) });
  const connection = new Http1Connection(url.origin);
  const until = performance.now() + seconds * 1000;
  for (let i = 0; performance.now() < until; i++) {
    const sentUs = nowUs();
    const answer = await connection.request("PUT", `/v1/kv/k${(i * 104729) % 1000}`, body, 5000, headers);
    const doneUs = nowUs();
    if (answer.status !== 200) throw new Error(`write answered ${answer.status}: ${answer.body}`);
    writes.push({ sentUs, doneUs });
  }
  connection.close();
  Atomics.store(new Int32Array(stop), 0, 1);
  Atomics.notify(new Int32Array(stop), 0);
  samples = await sampledOut;
  await sampler.terminate();
  loadAfter = loadAverage();
  await new Promise((resolve) => setTimeout(resolve, 600));
} finally {
  await cluster.close();
}

const threads = readThreads();
fs.rmSync(dir, { recursive: true, force: true });
const named = namedThreads(leader, threads);
if (flags.marks !== undefined)
  fs.writeFileSync(flags.marks, JSON.stringify({ leader, threads, writes, sampled, samples }));
const from = writes[0]?.sentUs ?? 0;
const to = writes.at(-1)?.doneUs ?? 0;
const within = <T extends { fromUs: number }>(spans: readonly T[]): T[] =>
  spans.filter((s) => s.fromUs >= from - 1e6 && s.fromUs <= to);
const replicas = [...new Set(named.map((t) => t.replica))];
const spansOf = (kind: "main" | "storage" | "relay", stages: readonly string[], replicasOf: readonly number[]) =>
  within(
    named
      .filter((t) => t.kind === kind && replicasOf.includes(t.replica))
      .flatMap((t) => stages.flatMap((stage) => markedSpans(t.marks, stage as "gc"))),
  );
const snapshotWindowMs = Number(flags["window-ms"]);
const snapshotWindows = unionSpans(
  spansOf("main", ["snapshot-step"], replicas).map((s) => ({
    fromUs: s.fromUs,
    toUs: s.fromUs + snapshotWindowMs * 1000,
  })),
);
const followers = replicas.filter((r) => r !== leader);
const groups: [string, number[]][] = [
  ["leader", [leader]],
  ["followers", followers],
];
// The fsync's usual length: a span longer than 1 ms beyond it counts as a slow fsync.
const fsyncs = named.filter((t) => t.kind === "storage").map((t) => within(fsyncSpans(t.marks)));
const fsyncMedianUs = quantile(
  fsyncs
    .flat()
    .map((s) => s.toUs - s.fromUs)
    .sort((a, b) => a - b),
  0.5,
);
const causes: Cause[] = [
  ...named.map((t) => spanCause(`gc: ${t.name}`, within(markedSpans(t.marks, "gc")))),
  ...groups.flatMap(([role, of]) => [
    spanCause(`snapshot making and slices: ${role}`, spansOf("main", ["snapshot-step", "snapshot-slices"], of)),
    spanCause(`appends held behind a snapshot: ${role}`, spansOf("main", ["snapshot-held"], of)),
    spanCause(`compaction's pieces: ${role}`, spansOf("storage", ["compact"], of)),
    spanCause(`WAL checkpoint: ${role}`, spansOf("storage", ["checkpoint"], of)),
    spanCause(`storage thread's full collection: ${role}`, spansOf("storage", ["collect"], of)),
    spanCause(
      `fsync beyond median + 1 ms: ${role}`,
      longSpans(
        named.filter((t) => t.kind === "storage" && of.includes(t.replica)).flatMap((t) => within(fsyncSpans(t.marks))),
        fsyncMedianUs + 1000,
      ),
    ),
    spanCause(`tick steps: ${role}`, spansOf("main", ["tick"], of)),
  ]),
  spanCause("heartbeat relay's hand-overs: leader", spansOf("relay", ["relay"], [leader])),
  // What a snapshot brings with it (its making, slices, record, compaction, the collections of
  // what it made) on any replica, whatever is marked: the window after its making began.
  spanCause(`within ${snapshotWindowMs} ms after a snapshot's making began, any replica`, snapshotWindows),
  ...sampled.map((t, i) =>
    counterCause(
      `waiting for a core beyond median + 0.5 ms: ${t.name}`,
      samples.times,
      samples.waits[i] ?? [],
      writes,
      500,
    ),
  ),
];
// The part of each write on the follower that made the quorum (its Accept on the wire to its
// Accepted on the socket), beyond its median.
const { paths } = writePaths(leader, threads, writes);
const first = segmentNames.indexOf("sockets, network -> follower: Accept decoded");
const last = segmentNames.indexOf("follower: durable -> Accepted handed to the socket");
const followerPart = new Map(
  paths.map((p) => [p.sentUs, p.segmentsUs.slice(first, last + 1).reduce((a, b) => a + b, 0)]),
);
const followerParts = [...followerPart.values()].sort((a, b) => a - b);
causes.push({
  name: "the quorum's follower: its part beyond median + 1 ms",
  amountUs: (w) => followerPart.get(w.sentUs) ?? 0,
  baselineUs: quantile(followerParts, 0.5),
  thresholdUs: 1000,
});
const waitedOwn = new Set(paths.filter((p) => p.waitedForOwnVote).map((p) => p.sentUs));
const table = overlapTable(writes, causes, fraction);
const latencies = writes.map((w) => w.doneUs - w.sentUs).sort((a, b) => a - b);
const slowSet = [...writes]
  .sort((a, b) => b.doneUs - b.sentUs - (a.doneUs - a.sentUs))
  .slice(0, table.slowWrites)
  .map((w) => w.sentUs);
// Each sampled thread's CPU per write (schedstat's run time over the run).
const cpuPerWrite = sampled.map((t, i) => {
  const runs = samples.runs[i] ?? [];
  return { thread: t.name, us: ((runs.at(-1) ?? 0) - (runs[0] ?? 0)) / Math.max(1, writes.length) };
});
// The writes in the windows after a snapshot against the others: what a snapshot adds to them,
// and how long the replicas' threads waited for a core in them (the client's left out).
const windowCause = spanCause("window", snapshotWindows);
const waits = sampled.flatMap((t, i) =>
  t.tid === process.pid ? [] : [counterCause(t.name, samples.times, samples.waits[i] ?? [], writes, 0)],
);
const latencyOf = (ws: readonly ClientWrite[]) => {
  const sorted = ws.map((w) => w.doneUs - w.sentUs).sort((a, b) => a - b);
  return {
    writes: sorted.length,
    p50: quantile(sorted, 0.5),
    p90: quantile(sorted, 0.9),
    max: sorted.at(-1) ?? 0,
    mean: sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length),
    waitForCoreMeanUs:
      ws.reduce((n, w) => n + waits.reduce((m, c) => m + c.amountUs(w), 0), 0) / Math.max(1, ws.length),
  };
};
const afterSnapshot = {
  windows: snapshotWindows.length,
  inside: latencyOf(writes.filter((w) => windowCause.amountUs(w) > 0)),
  outside: latencyOf(writes.filter((w) => windowCause.amountUs(w) === 0)),
};
const report = {
  seconds,
  load: { before: loadBefore, after: loadAfter },
  writes: writes.length,
  writesPerSecond: writes.length / seconds,
  latencyUs: {
    p50: quantile(latencies, 0.5),
    p90: quantile(latencies, 0.9),
    p99: quantile(latencies, 0.99),
    max: latencies.at(-1) ?? 0,
  },
  samples: samples.times.length,
  fsyncMedianUs,
  slowFromUs: table.slowFromUs,
  slowWrites: table.slowWrites,
  unexplained: table.unexplained,
  slowWaitedForLeaderVote: slowSet.filter((s) => waitedOwn.has(s)).length,
  allWaitedForLeaderVote: waitedOwn.size / Math.max(1, paths.length),
  causes: table.rows,
  afterSnapshot,
  cpuPerWrite,
};
if (flags.json) {
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
} else {
  const ms = (us: number): string => (us / 1000).toFixed(2).padStart(7);
  const pct = (f: number): string => `${(100 * f).toFixed(1)}%`.padStart(7);
  const l = report.latencyUs;
  const lines = [
    `${report.writes} writes in ${seconds} s (${report.writesPerSecond.toFixed(0)}/s); load ${loadBefore} before, ${loadAfter} after; ${report.samples} schedstat samples`,
    `latency ms: p50 ${ms(l.p50)}, p90 ${ms(l.p90)}, p99 ${ms(l.p99)}, max ${ms(l.max)}; fsync median ${ms(fsyncMedianUs)}`,
    `the slowest ${table.slowWrites} writes (from ${ms(table.slowFromUs)} ms): the reply waited for the leader's own vote in ${report.slowWaitedForLeaderVote} (${pct(report.allWaitedForLeaderVote)} of all writes); no cause overlapped ${table.unexplained}`,
    "",
    `${"cause".padEnd(68)} slow writes   ms each   ms in all   all writes   largest in`,
    ...table.rows
      .filter((r) => r.slow > 0 || r.allFraction > 0)
      .sort((a, b) => b.slowSumUs - a.slowSumUs)
      .map(
        (r) =>
          `${r.name.padEnd(68)} ${r.slow.toString().padStart(11)}  ${ms(r.slowMeanUs)}  ${ms(r.slowSumUs).padStart(10)}  ${pct(r.allFraction).padStart(11)}  ${r.largestIn.toString().padStart(11)}`,
      ),
    "",
    ...(
      [
        [
          `writes within ${snapshotWindowMs} ms after a snapshot (${afterSnapshot.windows} windows)`,
          afterSnapshot.inside,
        ],
        ["the other writes", afterSnapshot.outside],
      ] as const
    ).map(
      ([name, s]) =>
        `${name.padEnd(50)} ${s.writes.toString().padStart(6)} writes, p50 ${ms(s.p50)} ms, p90 ${ms(s.p90)}, mean ${ms(s.mean)}, max ${ms(s.max)}; the replicas' threads waited for a core ${ms(s.waitForCoreMeanUs)} ms per write`,
    ),
    "",
    "CPU per write by thread (schedstat's run time over the run, us):",
    ...cpuPerWrite.map((c) => `  ${c.thread.padEnd(50)}${c.us.toFixed(0).padStart(7)}`),
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}

/**
 * Large writes under legal load, paxos-lease next to etcd 3.4: bursts of 8, 16 and 40 concurrent
 * 1 MiB PUTs, and 64 closed-loop clients writing 64 KiB values, each against a 3-member cluster on
 * loopback with default settings. A highly available store must keep its leader through all of
 * them: every point reports the leadership changes (and campaigns) it caused, the writes that
 * failed or whose outcome is unknown, the requests refused with 429 (retried after the hint, as
 * docs/operations.md tells clients to), the event-loop lag p99 of the busiest replica (a quarter
 * of the lease is the target), the largest member's RSS and the leader's (at its peak split into
 * anonymous and file-backed pages), and the throughput in MB/s. To tell
 * a loaded machine apart from a replica busy with its own work, it also reports how long the
 * members' main threads were runnable but waited for a core (the kernel's schedstat), in all and
 * at most within one election timeout, the CPU of its own clients, and the heartbeats that came
 * close to costing the lease (followers' gaps between heartbeats past half and all of the election
 * timeout, 200 and 400 ms at the defaults; leaders' renewal round trips past half and all of the
 * lease, 150 and 300 ms; from the replicas' histograms). Every threshold follows `--lease-ms`
 * (bench/lib/lease-thresholds.ts). A point with a failed or outcome-unknown write, a leadership
 * change or the lag past its target misses its target.
 *
 * The systems take turns point by point, the one not measured frozen with SIGSTOP. Nothing here
 * asserts a number; `--json` prints every point.
 *
 *   npm run bench:burst -- [--json] [--rounds 3] [--seconds 5] [--no-etcd] [--points 8,16,40,64] [--help]
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { benchFlags } from "./lib/flags.ts";
import { Http1Connection } from "./lib/http1.ts";
import { quantile } from "./lib/load.ts";
import { leaseCore, leaseThresholds, targetMisses, type LeaseThresholds } from "./lib/lease-thresholds.ts";
import { loadAverage, progressOf } from "./lib/report.ts";
import {
  closeOnInterrupt,
  cpuMs,
  EtcdCluster,
  freeze,
  healthyOrExplain,
  mainThreadCpuMs,
  metricSum,
  OursCluster,
  rssBytes,
  rssParts,
  schedMs,
  type BenchCluster,
} from "./lib/systems.ts";

const usage = `usage: npm run bench:burst -- [options]

Bursts of concurrent 1 MiB PUTs (8, 16, 40) and 64 closed-loop clients of 64 KiB values against
paxos-lease and etcd 3.4, each 3 members on loopback. Reports per point: leadership changes,
failed and outcome-unknown writes, 429s, event-loop lag p99, RSS and MB/s.

options:
  --rounds N     bursts per burst point (default 3)
  --seconds S    length of the 64-client point, in seconds (default 5)
  --no-etcd      measure paxos-lease only
  --points LIST  the points to run, of 8, 16, 40 (bursts of that many 1 MiB PUTs) and 64 (the 64
                 clients of 64 KiB values), comma-separated (default 8,16,40,64)
  --snapshot-bytes N  the replicas' snapshotIntervalBytes (default: the core's, 128 MiB)
  --snapshot-slots N  the replicas' snapshotIntervalSlots (default: the replicas' own)
  --log-tail-bytes N  the replicas' logTailBytes (default: the core's, 32 MiB)
  --store-at-rest-chars N  the replicas' storeAtRestCharsMin: the key-value store's values of at
                 least N code units named by their vote records, and snapshots filling them from
                 those records in the storage thread (default: the replicas' own, 0: off)
  --no-values-at-rest  keep executed values in the replicas' memory (valuesAtRest false), as
                 before they rested in the store (default: at rest, as replicas run)
  --lease-ms N   the replicas' leaseMs, with election timeouts from 4/3 to 2 times it, as the
                 defaults (default: the core's, 300 ms, elections after 400 to 600 ms); the
                 lag target (a quarter of the lease) and the heartbeat thresholds (half and
                 all of the lease and of the election timeout) follow it
  --request-bytes-in-flight-max B  the replicas' admission limit on request bodies held at once
                 (default: the replicas' own, 4 MiB)
  --logs DIR     keep every member's log, the bench's freezes and thaws, and the members'
                 statuses when a cluster is not healthy in time, in DIR (default: a new folder
                 paxos-lease-burst-* in the temporary directory; kept, its path printed)
  --json         print the full report as JSON
  --help         print this help
`;

const flags = benchFlags(
  {
    rounds: { type: "string", default: "3" },
    seconds: { type: "string", default: "5" },
    "no-etcd": { type: "boolean", default: false },
    points: { type: "string", default: "8,16,40,64" },
    "snapshot-bytes": { type: "string" },
    "snapshot-slots": { type: "string" },
    "log-tail-bytes": { type: "string" },
    "no-values-at-rest": { type: "boolean", default: false },
    "store-at-rest-chars": { type: "string" },
    "lease-ms": { type: "string" },
    "request-bytes-in-flight-max": { type: "string" },
    json: { type: "boolean", default: false },
    logs: { type: "string" },
  },
  usage,
);
const rounds = Number(flags.rounds);
const seconds = Number(flags.seconds);
if (!(Number.isInteger(rounds) && rounds >= 1 && rounds <= 20) || !(seconds >= 1 && seconds <= 120)) {
  process.stderr.write(usage);
  process.exit(2);
}
const withEtcd = !flags["no-etcd"];
const points = flags.points.split(",");
if (points.some((p) => !["8", "16", "40", "64"].includes(p)) || new Set(points).size !== points.length) {
  process.stderr.write(usage);
  process.exit(2);
}
/** The run's folder: every member's log, the bench's freezes and thaws, statuses of an unhealthy cluster. */
const runDir = flags.logs ?? fs.mkdtempSync(path.join(os.tmpdir(), "paxos-lease-burst-"));
fs.mkdirSync(runDir, { recursive: true });
const snapshotBytes = flags["snapshot-bytes"] === undefined ? undefined : Number(flags["snapshot-bytes"]);
const snapshotSlots = flags["snapshot-slots"] === undefined ? undefined : Number(flags["snapshot-slots"]);
const logTailBytes = flags["log-tail-bytes"] === undefined ? undefined : Number(flags["log-tail-bytes"]);
const storeAtRestChars = flags["store-at-rest-chars"] === undefined ? undefined : Number(flags["store-at-rest-chars"]);
const leaseMs = flags["lease-ms"] === undefined ? undefined : Number(flags["lease-ms"]);
const bytesInFlightMax = flags["request-bytes-in-flight-max"];
if (
  (bytesInFlightMax !== undefined &&
    !(Number.isSafeInteger(Number(bytesInFlightMax)) && Number(bytesInFlightMax) >= 1)) ||
  (snapshotBytes !== undefined && !(Number.isInteger(snapshotBytes) && snapshotBytes >= 1)) ||
  (snapshotSlots !== undefined && !(Number.isInteger(snapshotSlots) && snapshotSlots >= 1)) ||
  (logTailBytes !== undefined && !(Number.isInteger(logTailBytes) && logTailBytes >= 1)) ||
  (leaseMs !== undefined && !(Number.isInteger(leaseMs) && leaseMs >= 100 && leaseMs <= 60_000))
) {
  process.stderr.write(usage);
  process.exit(2);
}
if (withEtcd) {
  try {
    execFileSync("etcd", ["--version"], { stdio: "ignore" });
  } catch {
    process.stderr.write("bench:burst: etcd is not installed (apt-get install -y etcd-server), or pass --no-etcd\n");
    process.exit(2);
  }
}

const MiB = 1024 * 1024;
/** The lag target and heartbeat thresholds for the replicas' lease. */
const thresholds: LeaseThresholds = leaseThresholds(leaseMs);
const { electionTimeoutMs } = thresholds;
/** How often the scheduler figures are sampled, in ms (a sample taken late is placed at its own time). */
const schedSampleMs = 100;
const burstSizes = [8, 16, 40].filter((n) => points.includes(String(n)));
const streamClients = 64;
const streamValueBytes = 64 * 1024;
/** A request is abandoned (outcome unknown) after this long. */
const requestTimeoutMs = 15_000;
/** A refused (429) request is retried until this long after its first attempt. */
const retryForMs = 30_000;

const progress = progressOf("bench:burst");
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

type Outcome = "ok" | "retry" | "failed" | "unknown";

/** Per point: requests refused with 429, and how many failed or unknown answers said what. */
interface Counts {
  refused: number;
  readonly reasons: Map<string, number>;
}

/** What one system offers this benchmark beyond BenchCluster. */
interface Subject {
  readonly cluster: BenchCluster;
  /** The write request for `value` under `key` at member `id`. */
  request(
    id: number,
    key: string,
    value: string,
  ): { method: string; path: string; body: string; origin: string; headers?: Record<string, string> };
  classify(status: number, body: string): { outcome: Outcome; retryAfterMs: number };
  /** Counters that grow with every leadership change (and campaign), summed over the running members. */
  leadership(): Promise<{ leaderships: number; campaigns: number }>;
  /** Event-loop lag p99 of each member since the last call, in milliseconds (null: not measurable). */
  lagP99Ms(): Promise<number | null>;
  /**
   * V8 heap in use and memory outside it (Buffers, strings kept off-heap), largest member, in MiB (null: not
   * measurable).
   */
  memoryMb(): Promise<{ heapUsed: number; external: number } | null>;
  /**
   * Counters of peer traffic summed over the running members (null: not measurable): catch-up
   * replies received (a follower asking for values it lacks) and messages dropped by the sender.
   */
  peerTraffic(): Promise<{ catchUpReplies: number; dropped: number } | null>;
  /**
   * Heartbeats so far, summed over the running members (null: not measurable): followers' gaps
   * between two arrivals past half and all of the election timeout, and leaders' renewal round
   * trips (and holds before leaving) past half and all of the lease (`thresholds`).
   */
  heartbeats(): Promise<Heartbeats | null>;
}

/** Counts past the thresholds of `thresholds` (200, 400, 150, 300 and 150 ms at the defaults). */
interface Heartbeats {
  readonly gapsNear: number;
  readonly gapsMissed: number;
  readonly roundTripsNear: number;
  readonly roundTripsMissed: number;
  readonly holdsNear: number;
}

/**
 * Observations of histogram `name` above `ms` milliseconds, summed over `texts`. `ms` must be one
 * of the histogram's bucket bounds (the replicas' follow their lease, as the thresholds do).
 */
function histogramAbove(texts: readonly string[], name: string, ms: number): number {
  const bucket = (bound: number): number =>
    texts.reduce((n, t) => {
      const lines = t.split("\n").filter((line) => line.startsWith(`${name}_bucket{`));
      const at = lines.filter((line) => {
        const text = /le="([^"]+)"/.exec(line)?.[1];
        const le = text === "+Inf" ? Number.POSITIVE_INFINITY : Number(text);
        return le === bound || Math.abs(le - bound) < 1e-9;
      });
      if (lines.length > 0 && at.length === 0)
        throw new Error(
          `bench:burst: ${name} has no bucket at ${bound} s (dist/ built from older sources? npm run build)`,
        );
      return n + at.reduce((m, line) => m + Number(line.slice(line.lastIndexOf(" ") + 1)), 0);
    }, 0);
  return bucket(Number.POSITIVE_INFINITY) - bucket(ms / 1000);
}

function ours(): Subject {
  const core = {
    ...(snapshotBytes === undefined ? {} : { snapshotIntervalBytes: snapshotBytes }),
    ...(snapshotSlots === undefined ? {} : { snapshotIntervalSlots: snapshotSlots }),
    ...(logTailBytes === undefined ? {} : { logTailBytes }),
    ...(flags["no-values-at-rest"] ? { valuesAtRest: false } : {}),
    ...(storeAtRestChars === undefined ? {} : { storeAtRestCharsMin: storeAtRestChars }),
    ...leaseCore(leaseMs),
  };
  const cluster = new OursCluster(
    Object.keys(core).length === 0 ? undefined : core,
    undefined,
    bytesInFlightMax === undefined ? [] : ["--request-bytes-in-flight-max", bytesInFlightMax],
  )
    .keepLogsIn(runDir)
    .detach();
  return {
    cluster,
    request: (id, key, value) => ({
      method: "PUT",
      origin: cluster.endpoint(id),
      path: `/v1/kv/${key}`,
      body: JSON.stringify({ value }),
      headers: cluster.driver(id).write(key, "").headers ?? {},
    }),
    classify(status, body) {
      if (status === 200) return { outcome: "ok", retryAfterMs: 0 };
      let json: { retryAfterMs?: unknown; outcomeUnknown?: unknown } = {};
      try {
        json = JSON.parse(body) as typeof json;
      } catch {
        // Not JSON: a failure.
      }
      if (status === 429) return { outcome: "retry", retryAfterMs: Number(json.retryAfterMs ?? 1000) };
      if (status === 503 && json.outcomeUnknown === true) return { outcome: "unknown", retryAfterMs: 0 };
      return { outcome: "failed", retryAfterMs: 0 };
    },
    leadership: () => cluster.leadership(),
    async lagP99Ms() {
      // prom-client resets its event-loop delay histogram at every scrape: this is the window's p99.
      const texts = await cluster.metrics();
      return Math.max(...texts.map((t) => metricSum(t, "paxos_lease_process_nodejs_eventloop_lag_p99_seconds") * 1000));
    },
    async memoryMb() {
      const texts = await cluster.metrics();
      const largest = (name: string): number => Math.max(...texts.map((t) => metricSum(t, name) / MiB));
      return {
        heapUsed: largest("paxos_lease_process_nodejs_heap_size_used_bytes"),
        external: largest("paxos_lease_process_nodejs_external_memory_bytes"),
      };
    },
    async peerTraffic() {
      const texts = await cluster.metrics();
      const sum = (name: string, label = ""): number =>
        texts.reduce(
          (n, t) =>
            n +
            t
              .split("\n")
              .filter((line) => line.startsWith(`${name}{`) && line.includes(label))
              .reduce((m, line) => m + Number(line.slice(line.lastIndexOf(" ") + 1)), 0),
          0,
        );
      return {
        catchUpReplies: sum("paxos_lease_messages_received_total", 'type="CatchUpReply"'),
        dropped: sum("paxos_lease_messages_dropped_total"),
      };
    },
    async heartbeats() {
      const texts = await cluster.metrics();
      const gap = "paxos_lease_heartbeat_gap_seconds";
      const roundTrip = "paxos_lease_heartbeat_round_trip_seconds";
      return {
        gapsNear: histogramAbove(texts, gap, thresholds.gapNearMs),
        gapsMissed: histogramAbove(texts, gap, thresholds.gapMissMs),
        roundTripsNear: histogramAbove(texts, roundTrip, thresholds.roundTripNearMs),
        roundTripsMissed: histogramAbove(texts, roundTrip, thresholds.roundTripMissMs),
        holdsNear: histogramAbove(texts, "paxos_lease_heartbeat_hold_seconds", thresholds.roundTripNearMs),
      };
    },
  };
}

const base64 = (text: string): string => Buffer.from(text, "utf8").toString("base64");

function etcd(): Subject {
  const cluster = new EtcdCluster().keepLogsIn(runDir).detach();
  return {
    cluster,
    request: (id, key, value) => ({
      method: "POST",
      origin: cluster.endpoint(id),
      path: "/v3/kv/put",
      body: JSON.stringify({ key: base64(key), value: base64(value) }),
    }),
    classify(status, body) {
      if (status === 200 && body.includes('"header"') && !body.includes('"error"'))
        return { outcome: "ok", retryAfterMs: 0 };
      // etcd's "too many requests" (gRPC ResourceExhausted) asks the client to back off.
      if (body.includes("too many requests")) return { outcome: "retry", retryAfterMs: 100 };
      return { outcome: "failed", retryAfterMs: 0 };
    },
    leadership: () => cluster.leadership(),
    lagP99Ms: () => Promise.resolve(null),
    memoryMb: () => Promise.resolve(null),
    peerTraffic: () => Promise.resolve(null),
    heartbeats: () => Promise.resolve(null),
  };
}

interface PointResult {
  readonly system: string;
  readonly point: string;
  readonly writes: number;
  readonly ok: number;
  readonly failed: number;
  readonly outcomeUnknown: number;
  readonly refused429: number;
  /**
   * Each distinct answer (status and the start of its body, or the client's error) of failed or unknown writes, with
   * its count.
   */
  readonly failureReasons: Record<string, number>;
  readonly leadershipChanges: number;
  readonly campaigns: number;
  readonly lagP99Ms: number | null;
  /** Why the point misses its target (empty: met; see `targetMisses`). */
  readonly targetMisses: readonly string[];
  /** CPU of the leader's main thread (paxos-lease: the thread that answers peers; etcd: its whole process), in ms. */
  readonly leaderMainCpuMs: number;
  /** CPU of every member, all threads, in ms. */
  readonly clusterCpuMs: number;
  readonly rssMaxMb: number;
  /** The leader's own peak RSS over the point (MiB). */
  readonly leaderRssMaxMb: number;
  /**
   * The leader's RSS at that peak in its parts (MiB): anonymous (heaps, buffers, stacks) and
   * file-backed (the node binary's and the libraries' pages, about 48 MB of any replica); null
   * when not read.
   */
  readonly leaderPeakAnonMb: number | null;
  readonly leaderPeakFileMb: number | null;
  /** At the point's end: V8 heap in use and external memory of the largest member (MiB). */
  readonly heapUsedMb: number | null;
  readonly externalMb: number | null;
  /** During the point: catch-up replies received and peer messages dropped, all members (null: not measurable). */
  readonly catchUpReplies: number | null;
  readonly peerDropped: number | null;
  /**
   * Main threads of the members (paxos-lease: the ones that answer peers; etcd: its first thread,
   * which Go's scheduler may leave idle): the most
   * time one of them spent runnable but waiting for a core during the point, and the most it spent
   * so in any window of one election timeout (400 ms by default, sampled every 100 ms), in ms. Waiting is
   * the machine's doing (other runnable threads held the cores), not the thread's own work.
   */
  readonly mainWaitMs: number;
  readonly mainWaitWindowMs: number;
  /** CPU of this benchmark's own process (the clients) during the point, in ms. */
  readonly clientCpuMs: number;
  /** During the point (see Subject.heartbeats; null: not measurable). */
  readonly heartbeats: Heartbeats | null;
  readonly seconds: number;
  readonly mbPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly load: string;
}

/** One write, retried after 429 as a client should; its outcome and latency (first attempt to answer). */
async function write(
  subject: Subject,
  connection: Http1Connection,
  leader: number,
  key: string,
  value: string,
  counts: Counts,
): Promise<{ outcome: Exclude<Outcome, "retry">; ms: number }> {
  const started = performance.now();
  const req = subject.request(leader, key, value);
  for (let refusals = 0; ; refusals++) {
    let outcome: Outcome;
    let retryAfterMs = 0;
    let reason = "";
    try {
      const answer = await connection.request(req.method, req.path, req.body, requestTimeoutMs, req.headers);
      ({ outcome, retryAfterMs } = subject.classify(answer.status, answer.body));
      // Numbers (keys, ports, ids) vary per request: the reason keeps only what they say.
      reason = `${answer.status} ${answer.body.slice(0, 160).replace(/\d+/g, "N")}`;
    } catch (error) {
      outcome = "unknown";
      reason = error instanceof Error ? error.message : String(error);
    }
    const ms = performance.now() - started;
    if (outcome === "failed" || outcome === "unknown")
      counts.reasons.set(reason, (counts.reasons.get(reason) ?? 0) + 1);
    if (outcome !== "retry") return { outcome, ms };
    counts.refused += 1;
    if (ms > retryForMs) return { outcome: "failed", ms };
    // As docs/operations.md tells clients: the hint, with jitter, doubled on each further 429.
    await sleep(Math.min(2000, retryAfterMs * 2 ** Math.min(refusals, 4)) * (0.5 + Math.random()));
  }
}

async function measure(
  subject: Subject,
  point: string,
  run: (leader: number, counts: Counts) => Promise<{ outcome: string; ms: number; bytes: number }[]>,
): Promise<PointResult> {
  const { cluster } = subject;
  const leader = await healthyOrExplain(cluster, 90_000, `before ${point}`, runDir);
  const before = await subject.leadership();
  const trafficBefore = await subject.peerTraffic();
  const heartbeatsBefore = await subject.heartbeats();
  await subject.lagP99Ms();
  let rssMax = 0;
  let leaderRssMax = 0;
  // Set by the sampler's timer: a cast, so that the compiler does not narrow it to null here.
  let leaderPeakParts = null as { anon: number; file: number } | null;
  let samples = 0;
  const waits = cluster.members.map((m): [number, number][] => [
    [performance.now(), schedMs(cluster.pid(m))?.waitMs ?? Number.NaN],
  ]);
  const sampler = setInterval(() => {
    if (samples++ % 2 === 0)
      for (const m of cluster.members) {
        const rss = rssBytes(cluster.pid(m)) ?? 0;
        rssMax = Math.max(rssMax, rss);
        if (m === leader && rss > leaderRssMax) {
          leaderRssMax = rss;
          leaderPeakParts = rssParts(cluster.pid(m));
        }
      }
    const now = performance.now();
    for (const [i, m] of cluster.members.entries())
      waits[i]!.push([now, schedMs(cluster.pid(m))?.waitMs ?? Number.NaN]);
  }, schedSampleMs);
  const clientCpuBefore = process.cpuUsage();
  const counts: Counts = { refused: 0, reasons: new Map() };
  const leaderPid = cluster.pid(leader);
  // etcd is one Go process whose goroutines move between threads: its whole process stands in.
  const leaderCpu = (): number =>
    (cluster.name === "etcd" ? cpuMs(leaderPid) : mainThreadCpuMs(leaderPid)) ?? Number.NaN;
  const clusterCpu = (): number => cluster.members.reduce((n, m) => n + (cpuMs(cluster.pid(m)) ?? 0), 0);
  const cpuBefore = { leader: leaderCpu(), cluster: clusterCpu() };
  const started = performance.now();
  let results: { outcome: string; ms: number; bytes: number }[];
  try {
    results = await run(leader, counts);
  } finally {
    clearInterval(sampler);
  }
  const elapsed = (performance.now() - started) / 1000;
  const end = performance.now();
  for (const [i, m] of cluster.members.entries()) waits[i]!.push([end, schedMs(cluster.pid(m))?.waitMs ?? Number.NaN]);
  const clientCpu = process.cpuUsage(clientCpuBefore);
  const mainWaitMs = Math.max(...waits.map((w) => w[w.length - 1]![1] - w[0]![1]));
  // The most wait between two samples at most one election timeout apart.
  const mainWaitWindowMs = Math.max(
    ...waits.map((w) =>
      Math.max(
        0,
        ...w.map(([t, x], j) => (w.findLast(([u], k) => k >= j && u - t <= electionTimeoutMs) ?? [t, x])[1] - x),
      ),
    ),
  );
  const cpuAfter = { leader: leaderCpu(), cluster: clusterCpu() };
  const lag = await subject.lagP99Ms();
  const memory = await subject.memoryMb();
  const after = await subject.leadership();
  const trafficAfter = await subject.peerTraffic();
  const heartbeatsAfter = await subject.heartbeats();
  const ok = results.filter((r) => r.outcome === "ok");
  const latencies = results.map((r) => r.ms).sort((a, b) => a - b);
  const outcome = {
    failed: results.filter((r) => r.outcome === "failed").length,
    outcomeUnknown: results.filter((r) => r.outcome === "unknown").length,
    leadershipChanges: after.leaderships - before.leaderships,
    lagP99Ms: lag,
  };
  return {
    system: cluster.name,
    point,
    writes: results.length,
    ok: ok.length,
    ...outcome,
    refused429: counts.refused,
    failureReasons: Object.fromEntries(counts.reasons),
    campaigns: after.campaigns - before.campaigns,
    targetMisses: targetMisses(outcome, thresholds),
    leaderMainCpuMs: cpuAfter.leader - cpuBefore.leader,
    clusterCpuMs: cpuAfter.cluster - cpuBefore.cluster,
    rssMaxMb: rssMax / MiB,
    leaderRssMaxMb: leaderRssMax / MiB,
    leaderPeakAnonMb: leaderPeakParts === null ? null : leaderPeakParts.anon / MiB,
    leaderPeakFileMb: leaderPeakParts === null ? null : leaderPeakParts.file / MiB,
    heapUsedMb: memory?.heapUsed ?? null,
    externalMb: memory?.external ?? null,
    catchUpReplies:
      trafficBefore === null || trafficAfter === null
        ? null
        : trafficAfter.catchUpReplies - trafficBefore.catchUpReplies,
    peerDropped: trafficBefore === null || trafficAfter === null ? null : trafficAfter.dropped - trafficBefore.dropped,
    heartbeats:
      heartbeatsBefore === null || heartbeatsAfter === null
        ? null
        : {
            gapsNear: heartbeatsAfter.gapsNear - heartbeatsBefore.gapsNear,
            gapsMissed: heartbeatsAfter.gapsMissed - heartbeatsBefore.gapsMissed,
            roundTripsNear: heartbeatsAfter.roundTripsNear - heartbeatsBefore.roundTripsNear,
            roundTripsMissed: heartbeatsAfter.roundTripsMissed - heartbeatsBefore.roundTripsMissed,
            holdsNear: heartbeatsAfter.holdsNear - heartbeatsBefore.holdsNear,
          },
    mainWaitMs,
    mainWaitWindowMs,
    clientCpuMs: (clientCpu.user + clientCpu.system) / 1000,
    seconds: elapsed,
    mbPerSecond: ok.reduce((n, r) => n + r.bytes, 0) / MiB / elapsed,
    p50Ms: quantile(latencies, 0.5),
    p99Ms: quantile(latencies, 0.99),
    load: loadAverage(),
  };
}

function valueOf(bytes: number, tag: string): string {
  return `${tag}:`.padEnd(bytes, "abcdefghijklmnopqrstuvwxyz0123456789");
}

/** `rounds` bursts of `n` concurrent 1 MiB PUTs, each client on its own connection, one key each. */
function burst(subject: Subject, n: number): Promise<PointResult> {
  return measure(subject, `${n} x 1 MiB`, async (leader, counts) => {
    const all: { outcome: string; ms: number; bytes: number }[] = [];
    const connections = Array.from({ length: n }, () => new Http1Connection(subject.request(leader, "k", "").origin));
    try {
      for (let r = 0; r < rounds; r++) {
        const results = await Promise.all(
          connections.map((connection, c) =>
            write(subject, connection, leader, `burst-${c}`, valueOf(MiB, `${r}-${c}`), counts),
          ),
        );
        for (const result of results) all.push({ ...result, bytes: MiB });
        await sleep(500);
      }
    } finally {
      for (const connection of connections) connection.close();
    }
    return all;
  });
}

/** 64 closed-loop clients writing 64 KiB values for `seconds`, one key each. */
function stream(subject: Subject): Promise<PointResult> {
  return measure(subject, `${streamClients} clients x 64 KiB`, async (leader, counts) => {
    const all: { outcome: string; ms: number; bytes: number }[] = [];
    const stopAt = performance.now() + seconds * 1000;
    await Promise.all(
      Array.from({ length: streamClients }, async (_, c) => {
        const connection = new Http1Connection(subject.request(leader, "k", "").origin);
        try {
          for (let i = 0; performance.now() < stopAt && i < 1_000_000; i++) {
            const result = await write(
              subject,
              connection,
              leader,
              `stream-${c}`,
              valueOf(streamValueBytes, `${c}-${i}`),
              counts,
            );
            all.push({ ...result, bytes: streamValueBytes });
          }
        } finally {
          connection.close();
        }
      }),
    );
    return all;
  });
}

/**
 * How this machine shares its cores, as far as Linux says: whether CPU time is split between
 * sessions first (autogroup: this bench, its replicas and its clients are one session, which gets
 * one session's share however many threads it runs), and the CPU pressure (the share of time some
 * runnable thread waited for a core, over the last 10 s).
 */
function cpuSharing(): string {
  const read = (file: string): string | null => {
    try {
      return fs.readFileSync(file, "utf8").trim();
    } catch {
      return null;
    }
  };
  const autogroup = read("/proc/sys/kernel/sched_autogroup_enabled");
  const pressure = /some avg10=([\d.]+)/.exec(read("/proc/pressure/cpu") ?? "")?.[1];
  return `cores ${os.availableParallelism()}, autogroup ${autogroup === null ? "unknown" : autogroup === "1" ? "on" : "off"}, CPU pressure ${pressure === undefined ? "unknown" : `${pressure}%`}`;
}

const subjects = withEtcd ? [ours(), etcd()] : [ours()];
// Members run detached, out of reach of a hangup of this job while their cluster is frozen
// (docs/performance.md, "No leader within 90 s after a thaw"); an interrupt closes them.
closeOnInterrupt(() => subjects.map((s) => s.cluster), runDir);
const results: PointResult[] = [];
progress(`logs of this run in ${runDir}`);
progress(`start: ${rounds} rounds per burst, ${seconds} s of 64 writers; load ${loadAverage()}; ${cpuSharing()}`);
try {
  for (const s of subjects) await s.cluster.start();
  const plan: { name: string; run: (s: Subject) => Promise<PointResult> }[] = [
    ...burstSizes.map((n) => ({ name: `${n} x 1 MiB`, run: (s: Subject) => burst(s, n) })),
    ...(points.includes("64") ? [{ name: "64 x 64 KiB", run: stream }] : []),
  ];
  for (const [i, step] of plan.entries()) {
    for (const s of i % 2 === 0 ? subjects : [...subjects].reverse()) {
      for (const other of subjects) freeze(other.cluster, other !== s);
      const result = await step.run(s);
      results.push(result);
      for (const [reason, n] of Object.entries(result.failureReasons)) progress(`  ${n} x ${reason}`);
      progress(
        `${result.system} ${result.point}: ${result.ok}/${result.writes} ok, ${result.failed} failed, ${result.outcomeUnknown} unknown, ${result.refused429} x 429, leadership changes ${result.leadershipChanges} (campaigns ${result.campaigns}), lag p99 ${result.lagP99Ms?.toFixed(0) ?? "-"} ms, leader main thread ${result.leaderMainCpuMs.toFixed(0)} ms CPU (cluster ${result.clusterCpuMs.toFixed(0)}), RSS ${result.rssMaxMb.toFixed(0)} MB (leader ${result.leaderRssMaxMb.toFixed(0)}${result.leaderPeakAnonMb === null ? "" : `: anonymous ${result.leaderPeakAnonMb.toFixed(0)}, file-backed ${result.leaderPeakFileMb?.toFixed(0)}`})${result.heapUsedMb === null ? "" : ` (at the end: heap ${result.heapUsedMb.toFixed(0)} MB, external ${result.externalMb?.toFixed(0)} MB)`}${result.catchUpReplies === null ? "" : `, ${result.catchUpReplies} catch-up replies, ${result.peerDropped} peer messages dropped`}${result.heartbeats === null ? "" : `, heartbeat gaps > ${thresholds.gapNearMs} ms ${result.heartbeats.gapsNear} (> ${thresholds.gapMissMs} ms ${result.heartbeats.gapsMissed}), renewal round trips > ${thresholds.roundTripNearMs} ms ${result.heartbeats.roundTripsNear} (> ${thresholds.roundTripMissMs} ms ${result.heartbeats.roundTripsMissed}), heartbeats held > ${thresholds.roundTripNearMs} ms before leaving ${result.heartbeats.holdsNear}`}, main threads waited for a core up to ${result.mainWaitMs.toFixed(0)} ms of ${(result.seconds * 1000).toFixed(0)} (${result.mainWaitWindowMs.toFixed(0)} ms in one ${electionTimeoutMs} ms window), clients ${result.clientCpuMs.toFixed(0)} ms CPU, ${result.mbPerSecond.toFixed(1)} MB/s, target ${result.targetMisses.length === 0 ? "met" : `missed (${result.targetMisses.join(", ")})`} (load ${result.load})`,
      );
    }
  }
} finally {
  for (const s of subjects) {
    freeze(s.cluster, false);
    await s.cluster.close();
  }
}

function table(): string {
  const lines = [
    `| load | system | ok / writes | failed | outcome unknown | 429 (retried) | leadership changes (campaigns) | event-loop lag p99 (ms; target < ${thresholds.lagTargetMs}) | target | leader main-thread CPU (ms) | cluster CPU (ms) | largest RSS, leader's (MB) | MB/s | p50 / p99 (ms) | main-thread wait for a core, most in ${electionTimeoutMs} ms (ms) | load average |`,
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const r of results)
    lines.push(
      `| ${r.point} | ${r.system} | ${r.ok} / ${r.writes} | ${r.failed} | ${r.outcomeUnknown} | ${r.refused429} | ${r.leadershipChanges} (${r.campaigns}) | ${r.lagP99Ms === null ? "-" : r.lagP99Ms.toFixed(0)} | ${r.targetMisses.length === 0 ? "met" : "missed"} | ${r.leaderMainCpuMs.toFixed(0)} | ${r.clusterCpuMs.toFixed(0)} | ${r.rssMaxMb.toFixed(0)}, ${r.leaderRssMaxMb.toFixed(0)} | ${r.mbPerSecond.toFixed(1)} | ${r.p50Ms.toFixed(0)} / ${r.p99Ms.toFixed(0)} | ${r.mainWaitWindowMs.toFixed(0)} | ${r.load.split(" ")[0]} |`,
    );
  return lines.join("\n");
}

if (flags.json)
  process.stdout.write(
    `${JSON.stringify({ rounds, seconds, thresholds, load: loadAverage(), cpuSharing: cpuSharing(), results }, null, 2)}\n`,
  );
else process.stdout.write(`${table()}\n\nload average at the end: ${loadAverage()}; ${cpuSharing()}\n`);

/**
 * Where a replica's memory goes under one load point, without the rest of `npm run bench`: a
 * 3-replica cluster on loopback, a warm-up, then one point (writers or lease readers of 100-byte
 * values, or a burst of concurrent 1 MiB PUTs), sampling every member's RSS (and its anonymous
 * and file-backed parts) every 250 ms and, at the end, the main thread's V8 heap from each
 * member's metrics, and the leadership changes and campaigns during the point (a point with a
 * leadership change is no result: its peak mixes a burst with an election and a catch-up), and the
 * messages the members dropped over the point, by reason (a resend held back, backpressure).
 * Nothing here asserts a number; `--json` prints every sample.
 *
 *   npx tsx bench/memory.ts -- [--point write|read|burst] [--clients N] [--seconds S] [--no-values-at-rest]
 *     [--lease-ms N] [--json]
 */
import { benchFlags } from "./lib/flags.ts";
import { Http1Connection } from "./lib/http1.ts";
import { leaseCore } from "./lib/lease-thresholds.ts";
import { runLoad } from "./lib/load.ts";
import { loadAverage, progressOf } from "./lib/report.ts";
import { cpuMs, metricSum, OursCluster, rssBytes, rssParts, threadCpuMs } from "./lib/systems.ts";

const usage = `usage: npx tsx bench/memory.ts [options]

One load point against a 3-replica paxos-lease cluster on loopback, with every member's RSS
sampled every 250 ms: its peak, its anonymous and file-backed parts at the peak, and the main
thread's V8 heap at the end.

options:
  --point P      write (closed-loop writers of 100-byte values), read (lease readers), or burst
                 (rounds of concurrent 1 MiB PUTs) (default write)
  --clients N    writers, readers, or PUTs per burst (default 64)
  --seconds S    length of a write or read point (default 10)
  --rounds N     bursts of a burst point (default 3)
  --warmup S     seconds of 16 writers, then 16 readers, first (default 10)
  --request-bytes-in-flight-max B  the replicas' admission limit on request bodies held at once
                 (default: the replicas' own, 16 MiB)
  --lease-ms N   the replicas' leaseMs, with election timeouts from 4/3 to 2 times it, as
                 bench/burst.ts sets them: a longer lease keeps the leader through a point on a
                 busy machine (default: the core's, 300 ms)
  --no-values-at-rest  keep executed values in the replicas' memory (valuesAtRest false), as
                 before they rested in the store (default: at rest, as replicas run)
  --json         print every sample as JSON
  --help         print this help
`;
const flags = benchFlags(
  {
    point: { type: "string", default: "write" },
    clients: { type: "string", default: "64" },
    seconds: { type: "string", default: "10" },
    rounds: { type: "string", default: "3" },
    warmup: { type: "string", default: "10" },
    "no-values-at-rest": { type: "boolean", default: false },
    "lease-ms": { type: "string", default: "" },
    "request-bytes-in-flight-max": { type: "string", default: "" },
    json: { type: "boolean", default: false },
  },
  usage,
);
const point = flags.point;
const clients = Number(flags.clients);
const seconds = Number(flags.seconds);
const rounds = Number(flags.rounds);
const warmupMs = Number(flags.warmup) * 1000;
const leaseMs = flags["lease-ms"] === "" ? undefined : Number(flags["lease-ms"]);
if (
  (leaseMs !== undefined && !(Number.isInteger(leaseMs) && leaseMs >= 100 && leaseMs <= 60_000)) ||
  !["write", "read", "burst"].includes(point) ||
  !(Number.isInteger(clients) && clients >= 1 && clients <= 256) ||
  !(seconds >= 1 && seconds <= 300) ||
  !(Number.isInteger(rounds) && rounds >= 1 && rounds <= 20) ||
  !(warmupMs >= 0 && warmupMs <= 600_000)
) {
  process.stderr.write(usage);
  process.exit(2);
}

const progress = progressOf("memory");

/** Messages the members dropped, by reason (`paxos_lease_messages_dropped_total`), summed over `texts`. */
function droppedByReason(texts: readonly string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const text of texts)
    for (const line of text.split("\n")) {
      const match = /^paxos_lease_messages_dropped_total\{reason="([^"]+)"[^}]*\} (\S+)$/.exec(line);
      if (match !== null) out.set(match[1]!, (out.get(match[1]!) ?? 0) + Number(match[2]));
    }
  return out;
}

interface Peak {
  rss: number;
  anon: number;
  file: number;
}

const bytesInFlightMax = flags["request-bytes-in-flight-max"];
const core = { ...(flags["no-values-at-rest"] ? { valuesAtRest: false } : {}), ...leaseCore(leaseMs) };
const cluster = new OursCluster(
  Object.keys(core).length === 0 ? undefined : core,
  undefined,
  bytesInFlightMax === "" ? [] : ["--request-bytes-in-flight-max", bytesInFlightMax],
);
const peaks = new Map<number, Peak>(cluster.members.map((m) => [m, { rss: 0, anon: 0, file: 0 }]));
const samples: { t: number; member: number; rss: number }[] = [];
let sampling = false;
const started = performance.now();
const sampler = setInterval(() => {
  if (!sampling) return;
  for (const m of cluster.members) {
    const pid = cluster.pid(m);
    const rss = rssBytes(pid) ?? 0;
    samples.push({ t: Math.round(performance.now() - started), member: m, rss });
    const peak = peaks.get(m)!;
    if (rss <= peak.rss) continue;
    const parts = rssParts(pid);
    peaks.set(m, { rss, anon: parts?.anon ?? 0, file: parts?.file ?? 0 });
  }
}, 250);

/** V8 figures of each member's main thread (from its metrics), the largest seen while sampling, in bytes. */
const v8Names = {
  heapTotal: "paxos_lease_process_nodejs_heap_size_total_bytes",
  heapUsed: "paxos_lease_process_nodejs_heap_size_used_bytes",
  external: "paxos_lease_process_nodejs_external_memory_bytes",
} as const;
type V8Figures = Record<keyof typeof v8Names, number>;
const v8Peaks = new Map<number, V8Figures>(cluster.members.map((m) => [m, { heapTotal: 0, heapUsed: 0, external: 0 }]));
async function sampleV8(): Promise<void> {
  const texts = await cluster.metrics();
  cluster.members.forEach((m, i) => {
    const text = texts[i];
    if (text === null || text === undefined) return;
    const peak = v8Peaks.get(m)!;
    for (const [key, name] of Object.entries(v8Names) as [keyof V8Figures, string][])
      peak[key] = Math.max(peak[key], metricSum(text, name));
  });
}
let v8Sampling: Promise<void> | null = null;
const v8Sampler = setInterval(() => {
  if (sampling && v8Sampling === null) v8Sampling = sampleV8().finally(() => (v8Sampling = null));
}, 1000);

/**
 * Rounds of `clients` concurrent 1 MiB PUTs to the leader (as bench/burst.ts sends them; a 429 is
 * retried after its hint), each round after the last finished.
 */
async function bursts(leader: number): Promise<{ ok: number; failed: number }> {
  const value = "x".repeat(1024 * 1024);
  const body = JSON.stringify({ value });
  const headers = cluster.driver(leader).write("k", "").headers ?? {};
  let ok = 0;
  let failed = 0;
  for (let r = 0; r < rounds; r++) {
    const answers = await Promise.all(
      Array.from({ length: clients }, async (_, i) => {
        const connection = new Http1Connection(cluster.endpoint(leader));
        try {
          for (let attempt = 0; attempt < 20; attempt++) {
            const answer = await connection.request("PUT", `/v1/kv/big${i}`, body, 30_000, headers);
            if (answer.status !== 429) return answer.status === 200;
            const hint = Number((JSON.parse(answer.body) as { retryAfterMs?: unknown }).retryAfterMs ?? 1000);
            await new Promise((resolve) => setTimeout(resolve, hint));
          }
          return false;
        } catch {
          return false;
        } finally {
          connection.close();
        }
      }),
    );
    for (const a of answers)
      if (a) ok += 1;
      else failed += 1;
    progress(
      `burst ${r + 1}/${rounds}: ${answers.filter((a) => a).length}/${clients} PUTs answered 200 (load ${loadAverage()})`,
    );
  }
  return { ok, failed };
}

try {
  await cluster.start();
  const leader = await cluster.healthy(90_000);
  if (leader === null) throw new Error("no leader within 90 s");
  progress(`cluster up, leader ${leader}; warming up ${(2 * warmupMs) / 1000} s (load ${loadAverage()})`);
  for (const kind of ["write", "read"] as const)
    if (warmupMs > 0) await runLoad(cluster.driver(leader), { clients: 16, warmupMs: 0, durationMs: warmupMs, kind });
  const before = new Map(cluster.members.map((m) => [m, rssBytes(cluster.pid(m)) ?? 0]));
  progress(`before the point: RSS ${[...before.values()].map((b) => (b / 2 ** 20).toFixed(0)).join(", ")} MB`);
  const cpuOf = (): number => cluster.members.reduce((sum, m) => sum + (cpuMs(cluster.pid(m)) ?? 0), 0);
  const leadershipBefore = await cluster.leadership();
  const droppedBefore = droppedByReason(await cluster.metrics());
  const cpuBefore = cpuOf();
  const threadsBefore = cluster.members.map((m) => threadCpuMs(cluster.pid(m)) ?? new Map<string, number>());
  sampling = true;
  let outcome: string;
  let ops: number;
  if (point === "burst") {
    const { ok, failed } = await bursts(leader);
    outcome = `${ok} PUTs answered, ${failed} failed`;
    ops = ok;
  } else {
    const result = await runLoad(cluster.driver(leader), {
      clients,
      warmupMs: 2000,
      durationMs: seconds * 1000,
      kind: point as "write" | "read",
    });
    outcome = `${result.throughput.toFixed(0)}/s, ${result.failed} failed, ${result.outcomeUnknown} unknown`;
    // The warm-up of the point is in the CPU measured too: counted as ops at the measured rate.
    ops = result.completed + (result.throughput * 2000) / 1000;
  }
  sampling = false;
  const cpuMsPerOp = (cpuOf() - cpuBefore) / Math.max(1, ops);
  // CPU per operation of each member's threads, by kind, over the point.
  const threadsPerOp = cluster.members.map((m, i) => {
    const after = threadCpuMs(cluster.pid(m)) ?? new Map<string, number>();
    return Object.fromEntries(
      [...after].map(([kind, ms]) => [kind, (ms - (threadsBefore[i]!.get(kind) ?? 0)) / Math.max(1, ops)]),
    );
  });
  const leadershipAfter = await cluster.leadership();
  const leadershipChanges = leadershipAfter.leaderships - leadershipBefore.leaderships;
  const campaigns = leadershipAfter.campaigns - leadershipBefore.campaigns;
  const leaderAfter = await cluster.leader(10_000);
  const metrics = await cluster.metrics();
  const dropped = Object.fromEntries(
    [...droppedByReason(metrics)]
      .map(([reason, n]) => [reason, n - (droppedBefore.get(reason) ?? 0)] as const)
      .filter(([, n]) => n > 0),
  );
  const heapMb = metrics.map((text) =>
    text === null ? null : metricSum(text, "paxos_lease_process_nodejs_heap_size_used_bytes") / 2 ** 20,
  );
  const mb = (n: number): string => (n / 2 ** 20).toFixed(0);
  const report = {
    point,
    clients,
    outcome,
    cpuMsPerOp,
    leaderBefore: leader,
    leaderAfter,
    leadershipChanges,
    campaigns,
    /** False when leadership moved during the point: its figures mix the load with an election. */
    result: leadershipChanges === 0 && campaigns === 0,
    /** Messages the members dropped over the point, by reason (a resend held back, backpressure, ...). */
    dropped,
    load: loadAverage(),
    members: cluster.members.map((m, i) => ({
      member: m,
      peakRssMb: peaks.get(m)!.rss / 2 ** 20,
      peakAnonMb: peaks.get(m)!.anon / 2 ** 20,
      peakFileMb: peaks.get(m)!.file / 2 ** 20,
      heapUsedAtEndMb: heapMb[i] ?? null,
      mainThreadPeakMb: Object.fromEntries(Object.entries(v8Peaks.get(m)!).map(([k, v]) => [k, v / 2 ** 20])),
      cpuMsPerOpByThread: threadsPerOp[i] ?? {},
    })),
  };
  if (flags.json) process.stdout.write(`${JSON.stringify({ ...report, samples }, null, 2)}\n`);
  else {
    process.stdout.write(
      `${point}, ${clients} ${point === "burst" ? "PUTs per burst" : "clients"}: ${outcome}; CPU (all members) ${cpuMsPerOp.toFixed(3)} ms per op; leader ${leader} -> ${leaderAfter ?? "none"}, ${leadershipChanges} leadership changes (${campaigns} campaigns) (load ${report.load})\n`,
    );
    const drops = Object.entries(dropped);
    if (drops.length > 0)
      process.stdout.write(`  messages dropped: ${drops.map(([reason, n]) => `${n} ${reason}`).join(", ")}\n`);
    if (!report.result)
      process.stdout.write("  NOT A RESULT: leadership moved during the point; run it again on a quieter machine\n");
    for (const m of cluster.members) {
      const p = peaks.get(m)!;
      const i = cluster.members.indexOf(m);
      process.stdout.write(
        `  member ${m}${m === leader ? " (leader)" : ""}: peak RSS ${mb(p.rss)} MB (anon ${mb(p.anon)}, file ${mb(p.file)}); main heap used at the end ${heapMb[i]?.toFixed(0) ?? "?"} MB; main thread's peaks: heap ${mb(v8Peaks.get(m)!.heapTotal)} MB (used ${mb(v8Peaks.get(m)!.heapUsed)}), external ${mb(v8Peaks.get(m)!.external)} MB\n`,
      );
      const byThread = Object.entries(report.members[i]!.cpuMsPerOpByThread)
        .filter(([, ms]) => ms >= 0.005)
        .sort((a, b) => b[1] - a[1]);
      process.stdout.write(
        `    CPU per op by thread: ${byThread.map(([kind, ms]) => `${kind} ${ms.toFixed(point === "burst" ? 1 : 3)} ms`).join(", ")}\n`,
      );
    }
  }
} finally {
  clearInterval(sampler);
  clearInterval(v8Sampler);
  await cluster.close();
}

/**
 * Where a lone write's time goes, stage by stage, on the leader and on the follower that made the
 * quorum: starts a 3-replica cluster of compiled replicas with the timeline on
 * (impl/runtime/timeline.ts: every process and thread marks its stages on the machine's monotonic
 * clock), warms it up, drives it with one closed-loop writer of 100-byte values, and prints each
 * segment of a write's path: its median, p90, p99 and mean, and its share of the slowest tenth of
 * the writes beyond their median (what makes the tail). Also whether the leader's own vote was
 * durable before its quorum's Accepted arrived (it is made durable in parallel with the round
 * trip; found by its slot, and counted apart when it was handed over before the Accepts left:
 * bench/lib/write-timeline.ts), the collector's pauses that overlapped writes, and the storage
 * threads' housekeeping (a compaction's pieces, WAL checkpoints, full collections) with the writes
 * it overlapped.
 *
 * With `--clients N` (N > 1) the writes share slots and a client's write cannot be told apart in
 * the marks, so it prints each slot's path instead, from the leader's Accept to its first reply,
 * beside the clients' latencies, the collector's pauses and the follower's group commits: what
 * makes the tail under many clients.
 *
 *   npx tsx bench/write-timeline.ts [--clients 1] [--seconds 8] [--warmup 10] [--json] [--marks FILE]
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { readTimeline } from "../impl/runtime/timeline.ts";
import { TestCluster } from "../impl/runtime/testing-cluster.ts";
import { benchFlags } from "./lib/flags.ts";
import { Http1Connection } from "./lib/http1.ts";
import { runLoad, quantile } from "./lib/load.ts";
import { loadAverage, progressOf } from "./lib/report.ts";
import { kvDriver } from "./lib/systems.ts";
import {
  housekeeping,
  leaderGaps,
  segmentNames,
  slotPaths,
  slotSegmentNames,
  writePaths,
  withoutAnswerTurn,
  writeTail,
  type ClientWrite,
  type ThreadMarks,
} from "./lib/write-timeline.ts";

const usage = `usage: npx tsx bench/write-timeline.ts [options]

One client's writes to a 3-replica cluster, each timed stage by stage on every replica (the
replicas' timeline, PAXOS_LEASE_TIMELINE_DIR): where a lone write's time goes.

options:
  --clients N     closed-loop writers (default 1); above 1, each slot's path is printed instead
  --seconds S     measured seconds (default 8)
  --warmup S      seconds of 16 writers first, so that the code is compiled (default 10)
  --json          print the report as JSON
  --marks FILE    also write every mark and the client's writes to FILE (JSON), to study them further
  --help          print this help
`;

const flags = benchFlags(
  {
    clients: { type: "string", default: "1" },
    seconds: { type: "string", default: "8" },
    warmup: { type: "string", default: "10" },
    json: { type: "boolean", default: false },
    marks: { type: "string" },
  },
  usage,
);
const seconds = Number(flags.seconds);
const warmup = Number(flags.warmup);
const clients = Number(flags.clients);
if (!(seconds > 0) || !(warmup >= 0) || !Number.isInteger(clients) || clients < 1) {
  process.stderr.write(usage);
  process.exit(2);
}
const progress = progressOf("bench:write-timeline");
const nowUs = (): number => {
  const [s, ns] = process.hrtime();
  return s * 1e6 + ns / 1e3;
};

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "paxos-lease-timeline-"));
process.env.PAXOS_LEASE_TIMELINE_DIR = dir;
const cluster = await TestCluster.create(3, undefined, { traces: false });
const writes: ClientWrite[] = [];
let leader = 0;
const loadBefore = loadAverage();
let loadAfter = "";
const pids = new Map<number, number>();
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
  progress(
    `leader ${leader}; replica pids ${[...pids].map(([pid, id]) => `${id}:${pid}`).join(" ")}; ${clients} client(s) for ${seconds} s; load ${loadAverage()}`,
  );
  const url = new URL(cluster.endpoint(leader));
  const headers = cluster.authHeaders();
  const body = JSON.stringify({ value: "v".repeat(100) });
  const until = performance.now() + seconds * 1000;
  const writer = async (client: number): Promise<void> => {
    const connection = new Http1Connection(url.origin);
    for (let i = 0; performance.now() < until; i++) {
      const sentUs = nowUs();
      const key = `/v1/kv/k${(i * 104729 + client * 7919) % 1000}`;
      const answer = await connection.request("PUT", key, body, 5000, headers);
      const doneUs = nowUs();
      if (answer.status !== 200) throw new Error(`write answered ${answer.status}: ${answer.body}`);
      writes.push({ sentUs, doneUs });
    }
    connection.close();
  };
  await Promise.all(Array.from({ length: clients }, (_, client) => writer(client)));
  loadAfter = loadAverage();
  // Every thread writes its marks a quarter of a second at a time.
  await new Promise((resolve) => setTimeout(resolve, 600));
} finally {
  await cluster.close();
}

const threads: ThreadMarks[] = [];
for (const file of fs.readdirSync(dir)) {
  const match = /^(\d+)-(\d+)\.timeline$/.exec(file);
  const replica = match === null ? undefined : pids.get(Number(match[1]));
  if (match === null || replica === undefined) continue;
  threads.push({ replica, main: match[2] === "0", marks: readTimeline(fs.readFileSync(path.join(dir, file))) });
}
fs.rmSync(dir, { recursive: true, force: true });

if (flags.marks !== undefined) fs.writeFileSync(flags.marks, JSON.stringify({ leader, threads, writes }));
const stats = (values: readonly number[]): { p50: number; p90: number; p99: number; mean: number } => {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    p50: quantile(sorted, 0.5),
    p90: quantile(sorted, 0.9),
    p99: quantile(sorted, 0.99),
    mean: sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length),
  };
};
if (clients > 1) {
  manyClients();
  process.exit(0);
}
const { paths, incomplete } = writePaths(leader, threads, writes);
const totals = paths.map((p) => p.totalUs).sort((a, b) => a - b);
const slowFrom = quantile(totals, 0.9);
const slow = paths.filter((p) => p.totalUs >= slowFrom);
const segments = segmentNames.map((name, i) => {
  const all = stats(paths.map((p) => p.segmentsUs[i]!));
  const slowMean = slow.reduce((n, p) => n + p.segmentsUs[i]!, 0) / Math.max(1, slow.length);
  return { name, ...all, slowExcessUs: slowMean - all.p50 };
});
const voteNames = ["hand-over", "SQLite write", "fsync", "back to the main thread"];
const tail = writeTail(paths, 0.01);
// Collections on each replica's main thread while the client wrote (the timeline's marks: key = duration in us).
const windowFrom = writes[0]?.sentUs ?? 0;
const windowTo = writes.at(-1)?.doneUs ?? 0;
const collections = [...new Set(threads.map((t) => t.replica))].sort().map((replica) => {
  const pauses = threads
    .filter((t) => t.replica === replica && t.main)
    .flatMap((t) => t.marks.filter((m) => m.stage === "gc" && m.timeUs >= windowFrom && m.timeUs <= windowTo))
    .map((m) => m.key)
    .sort((a, b) => a - b);
  return {
    replica,
    role: replica === leader ? "leader" : "follower",
    count: pauses.length,
    p50Us: quantile(pauses, 0.5),
    maxUs: pauses.at(-1) ?? 0,
    sumUs: pauses.reduce((a, b) => a + b, 0),
  };
});
// The follower's Accepted sent by its storage thread after the fsync, 15 us after it (a socket write).
const storageSendUs = 15;
const report = {
  seconds,
  load: { before: loadBefore, after: loadAfter },
  writes: writes.length,
  writesPerSecond: writes.length / seconds,
  complete: paths.length,
  incomplete,
  total: stats(paths.map((p) => p.totalUs)),
  segments,
  leaderVote: {
    fromAcceptsUs: stats(paths.map((p) => p.leaderVoteUs)),
    segments: voteNames.map((name, i) => ({ name, ...stats(paths.map((p) => p.leaderVoteSegmentsUs[i]!)) })),
    replyWaitedForIt: paths.filter((p) => p.waitedForOwnVote).length,
    handedOverBeforeAccepts: paths.filter((p) => p.voteBeforeAccepts).length,
  },
  socketWrites: {
    leaderAccepts: stats(paths.map((p) => p.socketWritesUs[0])),
    followerAccepted: stats(paths.map((p) => p.socketWritesUs[1])),
  },
  // The storage threads' compactions, checkpoints and full collections, and the writes they overlapped.
  housekeeping: housekeeping(threads, writes, quantile(totals, 0.99)),
  gc: {
    writesWithGc: paths.filter((p) => p.gcUs > 0).length,
    slowWritesWithGc: slow.filter((p) => p.gcUs > 0).length,
    meanUs: paths.reduce((n, p) => n + p.gcUs, 0) / Math.max(1, paths.length),
    collections,
  },
  slowestHundredth: {
    ...tail,
    segments: tail.segments.map((s, i) => ({ name: segmentNames[i]!, ...s })),
  },
  acceptedFromStorageThread: {
    sendUs: storageSendUs,
    everyWrite: stats(withoutAnswerTurn(paths, storageSendUs, true)),
    notWaitingForOwnVote: stats(withoutAnswerTurn(paths, storageSendUs, false)),
  },
};
if (flags.json) {
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
} else {
  const us = (n: number): string => Math.round(n).toString().padStart(6);
  const lines = [
    `${report.writes} writes in ${seconds} s (${report.writesPerSecond.toFixed(0)}/s), ${paths.length} traced whole (${incomplete} not); load ${loadBefore} before, ${loadAfter} after`,
    `whole write: p50 ${us(report.total.p50)} us, p90 ${us(report.total.p90)}, p99 ${us(report.total.p99)}, mean ${us(report.total.mean)}`,
    "",
    "segment (microseconds)                                      p50     p90     p99    mean   slowest tenth: mean beyond p50",
    ...segments.map(
      (s) => `${s.name.padEnd(56)}${us(s.p50)}  ${us(s.p90)}  ${us(s.p99)}  ${us(s.mean)}  ${us(s.slowExcessUs)}`,
    ),
    "",
    `leader's own vote, from its Accepts on the wire to durable: p50 ${us(report.leaderVote.fromAcceptsUs.p50)} us, p90 ${us(report.leaderVote.fromAcceptsUs.p90)}, p99 ${us(report.leaderVote.fromAcceptsUs.p99)}; the reply waited for it in ${report.leaderVote.replyWaitedForIt} of ${paths.length} writes; handed over before the Accepts left in ${report.leaderVote.handedOverBeforeAccepts}`,
    ...report.leaderVote.segments.map(
      (s) => `  ${s.name.padEnd(54)}${us(s.p50)}  ${us(s.p90)}  ${us(s.p99)}  ${us(s.mean)}`,
    ),
    `socket writes (within the segments above): the leader's two Accepts p50 ${us(report.socketWrites.leaderAccepts.p50)} us, p90 ${us(report.socketWrites.leaderAccepts.p90)}; the follower's Accepted p50 ${us(report.socketWrites.followerAccepted.p50)}, p90 ${us(report.socketWrites.followerAccepted.p90)}`,
    `garbage collection on a replica's main thread overlapped ${report.gc.writesWithGc} writes (${report.gc.slowWritesWithGc} of the slowest tenth), ${report.gc.meanUs.toFixed(0)} us per write on average`,
    ...collections.map(
      (c) =>
        `  replica ${c.replica} (${c.role}): ${c.count} collections while the client wrote, pause p50 ${us(c.p50Us)} us, longest ${us(c.maxUs)}, ${us(c.sumUs)} in all`,
    ),
    "housekeeping while the client wrote (storage threads: compact, checkpoint, collect; main threads: a snapshot's step, its slices, the appends held behind them):",
    ...report.housekeeping.map(
      (h) =>
        `  ${h.stage.padEnd(16)}${h.spans.toString().padStart(6)} spans, p50 ${us(h.p50Us)} us, longest ${us(h.maxUs)}, ${us(h.sumUs)} in all; overlapped ${h.writes} writes, ${h.slowWrites} of the slowest 1%`,
    ),
    "",
    `the slowest 1% (${tail.writes} writes, from ${us(report.total.p99)} us): a collection overlapped ${tail.withGc} (${us(tail.gcMeanUs)} us each on average), the reply waited for the leader's own vote in ${tail.waitedForOwnVote}`,
    "segment                                                  mean beyond p50   furthest beyond p50 in",
    ...report.slowestHundredth.segments
      .map((s) => s)
      .sort((a, b) => b.meanBeyondP50Us - a.meanBeyondP50Us)
      .map((s) => `${s.name.padEnd(56)}${us(s.meanBeyondP50Us)}  ${s.largestIn.toString().padStart(14)}`),
    "",
    `bound, the follower's Accepted sent by its storage thread ${storageSendUs} us after its fsync (the main thread's turn for it gone), on these marks:`,
    ...(
      [
        ["every write", report.acceptedFromStorageThread.everyWrite],
        [
          "only writes that did not wait for the leader's own vote",
          report.acceptedFromStorageThread.notWaitingForOwnVote,
        ],
      ] as const
    ).map(
      ([name, t]) => `  ${name.padEnd(56)}p50 ${us(t.p50)} us, p90 ${us(t.p90)}, p99 ${us(t.p99)}, mean ${us(t.mean)}`,
    ),
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}

/** The report under many clients: each slot's path, the clients' latencies, collections and group commits. */
function manyClients(): void {
  const { paths, incomplete } = slotPaths(leader, threads);
  const latencies = writes.map((w) => w.doneUs - w.sentUs).sort((a, b) => a - b);
  const totals = paths.map((p) => p.totalUs).sort((a, b) => a - b);
  const slowTenth = paths.filter((p) => p.totalUs >= quantile(totals, 0.9));
  const slowHundredth = paths.filter((p) => p.totalUs >= quantile(totals, 0.99));
  const beyond = (slow: readonly { segmentsUs: readonly number[] }[], i: number, p50: number): number =>
    slow.reduce((n, p) => n + p.segmentsUs[i]!, 0) / Math.max(1, slow.length) - p50;
  const segments = slotSegmentNames.map((name, i) => {
    const all = stats(paths.map((p) => p.segmentsUs[i]!));
    return {
      name,
      ...all,
      slowTenthUs: beyond(slowTenth, i, all.p50),
      slowHundredthUs: beyond(slowHundredth, i, all.p50),
    };
  });
  // The wait of a request stepped on the leader for the first Accept after it (a free pipeline slot).
  const leaderMarks = threads.filter((t) => t.replica === leader && t.main).flatMap((t) => t.marks);
  const sendTimes = leaderMarks
    .filter((m) => m.stage === "send-accept")
    .map((m) => m.timeUs)
    .sort((a, b) => a - b);
  const waits: number[] = [];
  for (const m of leaderMarks) {
    if (m.stage !== "step-request") continue;
    const next = sendTimes.find((t) => t >= m.timeUs);
    if (next !== undefined) waits.push(next - m.timeUs);
  }
  const gc = [...new Set(threads.map((t) => t.replica))].sort().map((replica) => {
    const pauses = threads
      .filter((t) => t.replica === replica && t.main)
      .flatMap((t) => t.marks.filter((m) => m.stage === "gc").map((m) => m.key / 1000));
    return {
      replica,
      role: replica === leader ? "leader" : "follower",
      collections: pauses.length,
      pausedMs: pauses.reduce((a, b) => a + b, 0),
      over5Ms: pauses.filter((p) => p > 5).length,
      longestMs: Math.max(0, ...pauses),
    };
  });
  const fsyncs = [...new Set(threads.map((t) => t.replica))].sort().map((replica) => {
    const marks = threads.filter((t) => t.replica === replica && !t.main).flatMap((t) => t.marks);
    const written = marks.filter((m) => m.stage === "storage-written").sort((a, b) => a.timeUs - b.timeUs);
    const synced = marks.filter((m) => m.stage === "storage-synced").sort((a, b) => a.timeUs - b.timeUs);
    const durations = written.map((w, i) => (synced[i]?.timeUs ?? w.timeUs) - w.timeUs);
    return { replica, groups: written.length, ...stats(durations) };
  });
  const measuredFrom = Math.min(...writes.map((w) => w.sentUs));
  const measuredTo = Math.max(...writes.map((w) => w.doneUs));
  const gaps = leaderGaps(leader, threads, measuredFrom, measuredTo);
  const report = {
    clients,
    seconds,
    load: { before: loadBefore, after: loadAfter },
    writes: writes.length,
    writesPerSecond: writes.length / seconds,
    clientLatencyUs: { ...stats(latencies), p999: quantile(latencies, 0.999) },
    slots: paths.length + incomplete,
    commandsPerSlot: writes.length / Math.max(1, paths.length + incomplete),
    complete: paths.length,
    incomplete,
    slotUs: stats(totals),
    segments,
    leaderVote: ["hand-over", "SQLite write", "fsync", "back to the main thread"].map((name, i) => ({
      name,
      ...stats(paths.map((p) => p.leaderVoteSegmentsUs[i]!)),
    })),
    replyWaitedForOwnVote: paths.filter((p) => p.waitedForOwnVote).length,
    ownVoteBeforeAccepts: paths.filter((p) => p.voteBeforeAccepts).length,
    requestWaitForAcceptUs: stats(waits),
    followerGroupAppends: {
      all: stats(paths.map((p) => p.followerGroupAppends)),
      slowHundredthMean: stats(slowHundredth.map((p) => p.followerGroupAppends)).mean,
    },
    gcInSlowHundredth: {
      slots: slowHundredth.length,
      withLeaderGc: slowHundredth.filter((p) => p.gcUs.leader > 0).length,
      withFollowerGc: slowHundredth.filter((p) => p.gcUs.follower > 0).length,
      meanGcUs: stats(slowHundredth.map((p) => p.gcUs.leader + p.gcUs.follower)).mean,
    },
    gc,
    fsyncs,
    leaderGaps: gaps,
  };
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  const us = (n: number): string => Math.round(n).toString().padStart(6);
  const row = (name: string, s: { p50: number; p90: number; p99: number; mean: number }): string =>
    `${name.padEnd(58)}${us(s.p50)}  ${us(s.p90)}  ${us(s.p99)}  ${us(s.mean)}`;
  const l = report.clientLatencyUs;
  const lines = [
    `${report.writes} writes by ${clients} clients in ${seconds} s (${report.writesPerSecond.toFixed(0)}/s), ${report.slots} slots (${report.commandsPerSlot.toFixed(1)} writes per slot), ${paths.length} traced whole; load ${loadBefore} before, ${loadAfter} after`,
    `client latency: p50 ${us(l.p50)} us, p90 ${us(l.p90)}, p99 ${us(l.p99)}, p99.9 ${us(l.p999)}, mean ${us(l.mean)}`,
    "",
    "slot segment (microseconds)                                   p50     p90     p99    mean   slowest 10% / 1%: mean beyond p50",
    ...segments.map((s) => `${row(s.name, s)}  ${us(s.slowTenthUs)} / ${us(s.slowHundredthUs)}`),
    row("the slot, Accept to first reply", report.slotUs),
    row("leader: a request stepped -> the next Accept sent", report.requestWaitForAcceptUs),
    "",
    `leader's own vote (the reply waited for it in ${report.replyWaitedForOwnVote} of ${paths.length} slots; handed over before the slot's Accepts left in ${report.ownVoteBeforeAccepts}):`,
    ...report.leaderVote.map((s) => row(`  ${s.name}`, s)),
    row("follower: appends in its vote's group commit", report.followerGroupAppends.all),
    `  in the slowest 1% of slots: ${report.followerGroupAppends.slowHundredthMean.toFixed(1)} appends on average`,
    "",
    `the slowest 1% of slots (${report.gcInSlowHundredth.slots}): a collection on the leader in ${report.gcInSlowHundredth.withLeaderGc}, on the follower in ${report.gcInSlowHundredth.withFollowerGc}, ${report.gcInSlowHundredth.meanGcUs.toFixed(0)} us of pause each on average`,
    ...gc.map(
      (g) =>
        `replica ${g.replica} (${g.role}): ${g.collections} collections, ${g.pausedMs.toFixed(0)} ms paused, ${g.over5Ms} over 5 ms, longest ${g.longestMs.toFixed(1)} ms`,
    ),
    ...fsyncs.map((f) => row(`replica ${f.replica}: fsync of ${f.groups} group commits`, f)),
    "",
    `the leader's main thread idle (no mark) for 5 ms or more: ${gaps.reduce((n, g) => n + g.gaps, 0)} times, ${(gaps.reduce((n, g) => n + g.us, 0) / 1000).toFixed(0)} ms of the ${seconds} s, waiting for:`,
    ...gaps.map(
      (g) => `  ${g.cause.padEnd(70)}${g.gaps.toString().padStart(5)}  ${(g.us / 1000).toFixed(0).padStart(6)} ms`,
    ),
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}

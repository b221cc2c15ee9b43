/**
 * Does the leader keep its lease while clients flood it with new connections? A fresh 3-replica
 * cluster; a few closed-loop writers on keep-alive connections to the leader stand for its
 * ordinary clients; then, in waves, a separate process opens `--flood` new TCP connections to the
 * leader's client port at once, each sending one request (`Connection: close`) and waiting for its
 * answer. Every one of them is a legal client. Reports per run: leadership changes and campaigns
 * (the replicas' counters), step-downs by cause (a leader that stepped down by its own CheckQuorum
 * against one deposed by a higher ballot), the busiest replica's event-loop lag p99 and largest
 * stall, followers' heartbeat gaps past half and all of the election timeout, the writers' failed
 * and outcome-unknown writes, the flood's answers (ok, 429/503, connections refused, reset or
 * timed out), the leader main thread's CPU, and the load average beside them. Nothing here
 * asserts a number.
 *
 *   npm run bench:flood -- [--flood 1000] [--waves 5] [--request read] [--json] [--help]
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import os from "node:os";
import { TestCluster } from "../impl/runtime/testing-cluster.ts";
import { sleep } from "../impl/runtime/testing.ts";
import { summarizeProfile, type CpuProfile } from "./lib/cpuprofile.ts";
import { benchFlags } from "./lib/flags.ts";
import { Http1Connection } from "./lib/http1.ts";
import { quantile } from "./lib/load.ts";
import { leaseCore, leaseThresholds } from "./lib/lease-thresholds.ts";
import { loadAverage, progressOf } from "./lib/report.ts";
import { keepTraces, mainThreadCpuMs, metricSum, schedMs } from "./lib/systems.ts";

const usage = `usage: npm run bench:flood -- [options]

A fresh 3-replica cluster per repeat; closed-loop writers at the leader; then waves of new
connections to the leader's client port, each sending one request and waiting for its answer.
Reports leadership changes, step-downs by cause, event-loop lag, heartbeat gaps, failed writes
and the flood's answers, with the load average.

options:
  --flood N       new connections per wave, opened at once (default 1000)
  --waves N       waves per repeat (default 5)
  --pause-ms MS   time between the end of a wave and the next (default 2000)
  --request KIND  what each flooding connection asks: read (a linearizable GET with a read
                  token), healthz (GET /healthz, no token), write (a small PUT), or idle
                  (nothing: it connects, waits --idle-ms, closes) (default read)
  --idle-ms MS    how long an idle connection stays open (default 2000)
  --writers N     closed-loop writers of small values on keep-alive connections (default 4)
  --repeats N     fresh clusters, one after the other (default 1)
  --lease-ms N    the replicas' leaseMs (default: the core's, 300), election timeouts 4/3 to 2x
  --no-relay      run the replicas without the leader's heartbeat relay (--heartbeat-relay-ms 0;
                  default: with it, as replicas run by default)
  --check-quorum-clock  run the replicas with the core's checkQuorumCountsRunTime off (CheckQuorum
                  counts the clock, as replicas ran before it became the default; default: on)
  --traces DIR    keep every replica's event trace under DIR/repeat-N
  --profile N     run the replicas under V8's CPU profiler and print the N functions of the
                  leader's main thread with the most self time (default 0: no profile)
  --json          print the results as JSON
  --help          print this help
`;

const flags = benchFlags(
  {
    flood: { type: "string", default: "1000" },
    waves: { type: "string", default: "5" },
    "pause-ms": { type: "string", default: "2000" },
    request: { type: "string", default: "read" },
    "idle-ms": { type: "string", default: "2000" },
    writers: { type: "string", default: "4" },
    repeats: { type: "string", default: "1" },
    "lease-ms": { type: "string" },
    traces: { type: "string" },
    "check-quorum-clock": { type: "boolean", default: false },
    "no-relay": { type: "boolean", default: false },
    profile: { type: "string", default: "0" },
    json: { type: "boolean", default: false },
  },
  usage,
);

const flood = Number(flags.flood);
const waves = Number(flags.waves);
const pauseMs = Number(flags["pause-ms"]);
const idleMs = Number(flags["idle-ms"]);
const writers = Number(flags.writers);
const repeats = Number(flags.repeats);
const profileTop = Number(flags.profile);
const leaseMs = flags["lease-ms"] === undefined ? undefined : Number(flags["lease-ms"]);
const kinds = ["read", "healthz", "write", "idle"] as const;
type Kind = (typeof kinds)[number];
const kind = flags.request as Kind;
const integer = (n: number, min: number, max: number): boolean => Number.isInteger(n) && n >= min && n <= max;
if (
  !integer(flood, 1, 20_000) ||
  !integer(waves, 1, 100) ||
  !integer(pauseMs, 0, 60_000) ||
  !integer(idleMs, 0, 60_000) ||
  !integer(writers, 0, 256) ||
  !integer(repeats, 1, 20) ||
  !integer(profileTop, 0, 1000) ||
  !kinds.includes(kind) ||
  (leaseMs !== undefined && !integer(leaseMs, 100, 60_000))
) {
  process.stderr.write(usage);
  process.exit(2);
}

const thresholds = leaseThresholds(leaseMs);
const progress = progressOf("bench:flood");
/** A flooding connection's request is abandoned after this long. */
const floodTimeoutMs = 15_000;
/** A writer's request is abandoned (outcome unknown) after this long. */
const writeTimeoutMs = 10_000;

/**
 * The flooding process: plain JavaScript run by `node -e`, so that the flood neither shares the
 * bench's event loop (the writers' latencies) nor waits for a TypeScript loader. It opens every
 * connection at once, sends the request on connect, waits for the status line (or, idle, for
 * `idleMs`), closes, and prints one JSON line of counts.
 */
const floodProgram = `
const net = require("node:net");
const [host, port, count, request, idleMs, timeoutMs] = JSON.parse(process.env.PAXOS_LEASE_FLOOD);
const counts = {};
const latencies = [];
let left = count;
const started = performance.now();
const done = (outcome, at) => {
  counts[outcome] = (counts[outcome] ?? 0) + 1;
  latencies.push(performance.now() - at);
  if (--left === 0) {
    latencies.sort((a, b) => a - b);
    const q = (p) => latencies[Math.min(latencies.length - 1, Math.ceil(p * latencies.length) - 1)];
    process.stdout.write(JSON.stringify({ counts, p50Ms: q(0.5), p99Ms: q(0.99), ms: performance.now() - started }) + "\\n");
  }
};
for (let i = 0; i < count; i++) {
  const at = performance.now();
  let finished = false;
  let head = "";
  const socket = net.connect({ host, port });
  const finish = (outcome) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    socket.destroy();
    done(outcome, at);
  };
  const timer = setTimeout(() => finish("timeout"), request === null ? idleMs + timeoutMs : timeoutMs);
  socket.on("connect", () => {
    if (request === null) setTimeout(() => finish(socket.destroyed ? "closed by the server" : "ok"), idleMs);
    else socket.write(request);
  });
  socket.on("data", (chunk) => {
    if (request === null) return;
    head += chunk.toString("latin1");
    if (head.length >= 12) finish(head.startsWith("HTTP/1.1 2") ? "ok" : "status " + head.slice(9, 12));
  });
  socket.on("error", (error) => finish(error.code ?? error.message));
  socket.on("close", () => finish(request === null ? "closed by the server" : "closed without an answer"));
}
`;

interface FloodAnswer {
  readonly counts: Record<string, number>;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly ms: number;
}

/** One wave: `flood` new connections to `origin`, from a process of their own. */
function floodWave(origin: string, request: string | null): Promise<FloodAnswer> {
  const url = new URL(origin);
  const args = JSON.stringify([url.hostname, Number(url.port), flood, request, idleMs, floodTimeoutMs]);
  return new Promise((resolve, reject) => {
    // Its parameters in the environment: the bench's own flags are the only command line read (benchFlags).
    const child = spawn(process.execPath, ["-e", floodProgram], {
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, PAXOS_LEASE_FLOOD: args },
    });
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString("utf8")));
    child.on("error", reject);
    child.on("exit", (code) => {
      try {
        resolve(JSON.parse(out) as FloodAnswer);
      } catch {
        reject(new Error(`the flooding process exited ${code} without counts: ${out.slice(0, 200)}`));
      }
    });
  });
}

/** The request each flooding connection sends (null: none, an idle connection). */
function floodRequest(cluster: TestCluster, leader: number): string | null {
  const host = new URL(cluster.endpoint(leader)).host;
  const headers = (role: "read" | "write"): string =>
    Object.entries(cluster.authHeaders(role))
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join("");
  switch (kind) {
    case "idle":
      return null;
    case "healthz":
      return `GET /healthz HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;
    case "read":
      return `GET /v1/kv/flood HTTP/1.1\r\nHost: ${host}\r\n${headers("read")}Connection: close\r\n\r\n`;
    case "write": {
      const body = JSON.stringify({ value: "flood" });
      return `PUT /v1/kv/flood HTTP/1.1\r\nHost: ${host}\r\n${headers("write")}Content-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`;
    }
  }
}

/** Counters of every replica, summed (lag: the largest), from their /metrics. */
interface Counters {
  campaigns: number;
  leaderships: number;
  /** Step-downs by cause (`paxos_lease_step_downs_total`; zero where a replica does not count them). */
  ownStepDowns: number;
  deposed: number;
  lagP99Ms: number;
  lagMaxMs: number;
  gapsNear: number;
  gapsMissed: number;
  /** Copies of heartbeats the leaders' relay threads sent (impl/runtime/heartbeat-relay.ts). */
  relayed: number;
}

/** Observations of histogram `name` above `ms` (a bucket bound), in `text`. */
function above(text: string, name: string, ms: number): number {
  let all = 0;
  let within = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}_bucket{`)) continue;
    const le = /le="([^"]+)"/.exec(line)?.[1];
    const n = Number(line.slice(line.lastIndexOf(" ") + 1));
    if (le === "+Inf") all += n;
    else if (Math.abs(Number(le) - ms / 1000) < 1e-9) within += n;
  }
  return all - within;
}

async function counters(cluster: TestCluster): Promise<Counters> {
  const c: Counters = {
    campaigns: 0,
    leaderships: 0,
    ownStepDowns: 0,
    deposed: 0,
    lagP99Ms: 0,
    lagMaxMs: 0,
    gapsNear: 0,
    gapsMissed: 0,
    relayed: 0,
  };
  for (const m of cluster.members) {
    let text: string;
    try {
      text = await fetch(`${cluster.endpoint(m.id)}/metrics`, {
        headers: cluster.authHeaders("read"),
        signal: AbortSignal.timeout(5000),
      }).then((r) => r.text());
    } catch {
      continue;
    }
    c.campaigns += metricSum(text, "paxos_lease_elections_total");
    c.leaderships += metricSum(text, "paxos_lease_leaderships_total");
    for (const line of text.split("\n")) {
      if (!line.startsWith("paxos_lease_step_downs_total{")) continue;
      const n = Number(line.slice(line.lastIndexOf(" ") + 1));
      if (line.includes('cause="deposed"')) c.deposed += n;
      else c.ownStepDowns += n;
    }
    // prom-client resets its event-loop delay histogram at every scrape: these are the window's.
    c.lagP99Ms = Math.max(c.lagP99Ms, metricSum(text, "paxos_lease_process_nodejs_eventloop_lag_p99_seconds") * 1000);
    c.lagMaxMs = Math.max(c.lagMaxMs, metricSum(text, "paxos_lease_process_nodejs_eventloop_lag_max_seconds") * 1000);
    c.gapsNear += above(text, "paxos_lease_heartbeat_gap_seconds", thresholds.gapNearMs);
    c.gapsMissed += above(text, "paxos_lease_heartbeat_gap_seconds", thresholds.gapMissMs);
    c.relayed += metricSum(text, "paxos_lease_heartbeats_relayed_total");
  }
  return c;
}

/** Closed-loop writers of small values to `origin` until `stop()`; counts their outcomes. */
function startWriters(cluster: TestCluster, leader: number): { stop: () => Promise<WriterCounts> } {
  const counts: WriterCounts = { ok: 0, failed: 0, unknown: 0, reasons: {}, p99Ms: 0 };
  const latencies: number[] = [];
  let running = true;
  const headers = cluster.authHeaders("write");
  const loops = Array.from({ length: writers }, async (_, w) => {
    const connection = new Http1Connection(cluster.endpoint(leader));
    try {
      for (let i = 0; running; i++) {
        const at = performance.now();
        let outcome: "ok" | "failed" | "unknown";
        let reason = "";
        try {
          const answer = await connection.request(
            "PUT",
            `/v1/kv/writer-${w}`,
            JSON.stringify({ value: `v${i}` }),
            writeTimeoutMs,
            headers,
          );
          outcome =
            answer.status === 200
              ? "ok"
              : answer.status === 503 && answer.body.includes('"outcomeUnknown":true')
                ? "unknown"
                : "failed";
          reason = `${answer.status} ${answer.body.slice(0, 120).replace(/\d+/g, "N")}`;
        } catch (error) {
          outcome = "unknown";
          reason = error instanceof Error ? error.message : String(error);
        }
        latencies.push(performance.now() - at);
        counts[outcome] += 1;
        if (outcome !== "ok") {
          counts.reasons[reason] = (counts.reasons[reason] ?? 0) + 1;
          await sleep(50);
        }
      }
    } finally {
      connection.close();
    }
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      latencies.sort((a, b) => a - b);
      counts.p99Ms = latencies.length === 0 ? 0 : quantile(latencies, 0.99);
      return counts;
    },
  };
}

interface WriterCounts {
  ok: number;
  failed: number;
  unknown: number;
  reasons: Record<string, number>;
  p99Ms: number;
}

interface Result {
  readonly repeat: number;
  readonly leadershipChanges: number;
  readonly campaigns: number;
  readonly ownStepDowns: number;
  readonly deposed: number;
  /** The largest, over the waves, of the busiest replica's lag p99 and largest stall in that wave. */
  readonly lagP99Ms: number;
  readonly lagMaxMs: number;
  readonly gapsNear: number;
  readonly gapsMissed: number;
  readonly relayed: number;
  readonly writes: WriterCounts;
  /** The flood's outcomes, summed over the waves, and the slowest wave's p99. */
  readonly flood: Record<string, number>;
  readonly floodP99Ms: number;
  /**
   * The leader's main thread, in the window of one election timeout where it did most of each:
   * its CPU (ran) and its time runnable but waiting for a core (waited), in ms. Waiting is the
   * machine's doing; a thread that waited an election timeout's worth ran nothing meanwhile.
   */
  readonly leaderRanMaxMs: number;
  readonly leaderWaitedMaxMs: number;
  /** CPU of the leader's main thread during the waves (from the first wave's start to the last's end), ms. */
  readonly leaderMainCpuMs: number;
  readonly roleChanges: string[];
  readonly loadBefore: string;
  readonly loadAfter: string;
}

/** Where the replicas write their CPU profiles (`--profile`), or null. */
const profileDir = profileTop === 0 ? null : fs.mkdtempSync(path.join(os.tmpdir(), "paxos-lease-flood-profile-"));
if (profileDir !== null) process.env.PAXOS_LEASE_REPLICA_CPU_PROF_DIR = profileDir;

/** The leader main thread's functions with the most self time, from its profile (written as it exited). */
function leaderProfile(pid: number | null): string[] {
  if (profileDir === null || pid === null) return [];
  // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile; thread 0 is the main thread.
  const file = fs.readdirSync(profileDir).find((f) => f.split(".")[3] === String(pid) && f.split(".")[4] === "0");
  if (file === undefined) return [`no profile of pid ${pid}`];
  const summary = summarizeProfile(JSON.parse(fs.readFileSync(path.join(profileDir, file), "utf8")) as CpuProfile);
  return [
    `leader main thread: busy ${summary.busyMs.toFixed(0)} ms of ${summary.totalMs.toFixed(0)} ms`,
    ...summary.functions
      .slice(0, profileTop)
      .map(
        (f) =>
          `${f.ms.toFixed(1).padStart(9)} ms  ${((f.ms / summary.busyMs) * 100).toFixed(1).padStart(5)}%  ${f.name}`,
      ),
  ];
}

const results: Result[] = [];
progress(`start: ${waves} waves of ${flood} ${kind} connections, ${writers} writers; load ${loadAverage()}`);
for (let repeat = 1; repeat <= repeats; repeat++) {
  const core = {
    ...leaseCore(leaseMs),
    ...(flags["check-quorum-clock"] ? { checkQuorumCountsRunTime: false } : {}),
  };
  const cluster = await TestCluster.create(3, Object.keys(core).length === 0 ? undefined : core, {
    traces: flags.traces !== undefined,
  });
  let leaderPid: number | null = null;
  try {
    // The flood comes from one address (loopback), as a crowd behind a proxy would: every connection counts
    // against the total bound only, not the per-address one (a quarter of it by default).
    const oneAddress = ["--http-connections-max", "4096", "--http-connections-per-address-max", "4096"];
    for (const m of cluster.members)
      cluster.start(m.id, { extra: [...oneAddress, ...(flags["no-relay"] ? ["--heartbeat-relay-ms", "0"] : [])] });
    const leader = await cluster.waitForLeader(60_000);
    for (const m of cluster.members) m.output.length = 0;
    const request = floodRequest(cluster, leader);
    const writing = startWriters(cluster, leader);
    await sleep(1000);
    const loadBefore = loadAverage();
    const before = await counters(cluster);
    const pid = cluster.member(leader).child?.pid ?? null;
    leaderPid = pid;
    const cpuBefore = mainThreadCpuMs(pid) ?? Number.NaN;
    const sched: [number, number, number][] = [];
    const sampler = setInterval(() => {
      const now = schedMs(pid);
      if (now !== null) sched.push([performance.now(), now.runMs, now.waitMs]);
    }, 20);
    const floodCounts: Record<string, number> = {};
    let floodP99Ms = 0;
    let lagP99Ms = 0;
    let lagMaxMs = 0;
    for (let wave = 1; wave <= waves; wave++) {
      const answer = await floodWave(cluster.endpoint(leader), request);
      for (const [outcome, n] of Object.entries(answer.counts)) floodCounts[outcome] = (floodCounts[outcome] ?? 0) + n;
      floodP99Ms = Math.max(floodP99Ms, answer.p99Ms);
      const now = await counters(cluster);
      lagP99Ms = Math.max(lagP99Ms, now.lagP99Ms);
      lagMaxMs = Math.max(lagMaxMs, now.lagMaxMs);
      progress(
        `repeat ${repeat} wave ${wave}: ${JSON.stringify(answer.counts)} in ${answer.ms.toFixed(0)} ms (p99 ${answer.p99Ms.toFixed(0)} ms); leaderships so far ${now.leaderships - before.leaderships}, lag p99 ${now.lagP99Ms.toFixed(0)} ms, max ${now.lagMaxMs.toFixed(0)} ms (load ${loadAverage()})`,
      );
      await sleep(pauseMs);
    }
    const cpuAfter = mainThreadCpuMs(pid) ?? Number.NaN;
    clearInterval(sampler);
    const windowMax = (field: 1 | 2): number =>
      Math.max(
        0,
        ...sched.map((from, i) => {
          const to = sched.findLast(([t], j) => j >= i && t - from[0] <= thresholds.electionTimeoutMs) ?? from;
          return to[field] - from[field];
        }),
      );
    const writes = await writing.stop();
    const after = await counters(cluster);
    const roleChanges = cluster.members.flatMap((m) =>
      m.output.filter((l) => l.includes("role ")).map((l) => `${m.id}: ${l.slice(0, 300)}`),
    );
    const result: Result = {
      repeat,
      leadershipChanges: after.leaderships - before.leaderships,
      campaigns: after.campaigns - before.campaigns,
      ownStepDowns: after.ownStepDowns - before.ownStepDowns,
      deposed: after.deposed - before.deposed,
      lagP99Ms,
      lagMaxMs,
      gapsNear: after.gapsNear - before.gapsNear,
      gapsMissed: after.gapsMissed - before.gapsMissed,
      relayed: after.relayed - before.relayed,
      writes,
      flood: floodCounts,
      floodP99Ms,
      leaderMainCpuMs: cpuAfter - cpuBefore,
      leaderRanMaxMs: windowMax(1),
      leaderWaitedMaxMs: windowMax(2),
      roleChanges,
      loadBefore,
      loadAfter: loadAverage(),
    };
    results.push(result);
    progress(
      `repeat ${repeat}: leadership changes ${result.leadershipChanges} (campaigns ${result.campaigns}; step-downs: own ${result.ownStepDowns}, deposed ${result.deposed}), lag p99 ${lagP99Ms.toFixed(0)} ms (largest stall ${lagMaxMs.toFixed(0)} ms), heartbeat gaps > ${thresholds.gapNearMs} ms ${result.gapsNear} (> ${thresholds.gapMissMs} ms ${result.gapsMissed}), heartbeat copies relayed ${result.relayed}, writes ${writes.ok} ok, ${writes.failed} failed, ${writes.unknown} unknown (p99 ${writes.p99Ms.toFixed(0)} ms), flood ${JSON.stringify(floodCounts)} (slowest wave's p99 ${floodP99Ms.toFixed(0)} ms), leader main thread ${result.leaderMainCpuMs.toFixed(0)} ms CPU (in one ${thresholds.electionTimeoutMs} ms window at most: ran ${result.leaderRanMaxMs.toFixed(0)} ms, waited for a core ${result.leaderWaitedMaxMs.toFixed(0)} ms); load ${loadBefore} -> ${result.loadAfter}`,
    );
    for (const [reason, n] of Object.entries(writes.reasons)) progress(`  ${n} x ${reason}`);
    for (const line of roleChanges) progress(`  ${line}`);
    if (flags.traces !== undefined) {
      await keepTraces(cluster, path.join(flags.traces, `repeat-${repeat}`));
    }
  } finally {
    await cluster.close();
  }
  for (const line of leaderProfile(leaderPid)) progress(line);
}
if (profileDir !== null) fs.rmSync(profileDir, { recursive: true, force: true });

if (flags.json)
  process.stdout.write(
    `${JSON.stringify({ flood, waves, kind, writers, pauseMs, leaseMs: thresholds.leaseMs, results }, null, 2)}\n`,
  );
else {
  const lines = [
    `| repeat | leadership changes (campaigns) | own step-downs / deposed | lag p99 / largest stall (ms) | heartbeat gaps > ${thresholds.gapNearMs} / > ${thresholds.gapMissMs} ms | copies relayed | writes ok / failed / unknown | flood answers | leader main-thread CPU (ms) | leader main thread in one ${thresholds.electionTimeoutMs} ms window at most: ran / waited for a core (ms) | load before -> after |`,
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...results.map(
      (r) =>
        `| ${r.repeat} | ${r.leadershipChanges} (${r.campaigns}) | ${r.ownStepDowns} / ${r.deposed} | ${r.lagP99Ms.toFixed(0)} / ${r.lagMaxMs.toFixed(0)} | ${r.gapsNear} / ${r.gapsMissed} | ${r.relayed} | ${r.writes.ok} / ${r.writes.failed} / ${r.writes.unknown} | ${Object.entries(
          r.flood,
        )
          .map(([o, n]) => `${o} ${n}`)
          .join(
            ", ",
          )} | ${r.leaderMainCpuMs.toFixed(0)} | ${r.leaderRanMaxMs.toFixed(0)} / ${r.leaderWaitedMaxMs.toFixed(0)} | ${r.loadBefore.split(" ")[0]} -> ${r.loadAfter.split(" ")[0]} |`,
    ),
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}

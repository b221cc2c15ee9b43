/**
 * Where a replica's CPU goes under a given load: starts a 3-replica cluster whose replicas run with
 * V8's CPU profiler (every thread of every replica writes a profile as it exits), drives it with
 * closed-loop writers or with bursts of large writes, stops it, and prints per replica and thread
 * the busy time (sampled, not idle) per write and the functions that took most of it (self time).
 * Busy time is CPU time of that thread only; other processes' load does not inflate it (though on a
 * loaded machine a system call that waits for the CPU counts as the call's time).
 *
 *   npx tsx bench/profile.ts [--workload writes|burst] [--clients 16] [--seconds 10]
 *                            [--value-bytes 100] [--rounds 5] [--top 25] [--json]
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { TestCluster } from "../impl/runtime/testing-cluster.ts";
import {
  bundleSources,
  summarizeProfile,
  summarizeStages,
  type CpuProfile,
  type ProfileSummary,
  type Stage,
} from "./lib/cpuprofile.ts";
import { benchFlags } from "./lib/flags.ts";
import { Http1Connection } from "./lib/http1.ts";
import { runLoad } from "./lib/load.ts";
import { loadAverage, progressOf } from "./lib/report.ts";
import { kvDriver } from "./lib/systems.ts";

const usage = `usage: npx tsx bench/profile.ts [options]

Profiles every thread of a 3-replica cluster under load and prints where the CPU went.

options:
  --workload W      writes (closed-loop writers, default) or burst (rounds of concurrent 1 MiB PUTs)
  --clients N       writers (default 16), or PUTs per burst (default 8)
  --seconds S       measured seconds of writes (default 10)
  --value-bytes B   value size of the writers (default 100)
  --rounds R        bursts (default 5)
  --top N           functions listed per thread (default 25)
  --json            print the summaries as JSON
  --keep            keep the .cpuprofile files (for Chrome DevTools) and print their folder
  --help            print this help
`;

const flags = benchFlags(
  {
    workload: { type: "string", default: "writes" },
    clients: { type: "string" },
    seconds: { type: "string", default: "10" },
    "value-bytes": { type: "string", default: "100" },
    rounds: { type: "string", default: "5" },
    top: { type: "string", default: "25" },
    json: { type: "boolean", default: false },
    keep: { type: "boolean", default: false },
  },
  usage,
);
const workload = flags.workload;
const clients = Number(flags.clients ?? (flags.workload === "burst" ? 8 : 16));
const seconds = Number(flags.seconds);
const valueBytes = Number(flags["value-bytes"]);
const rounds = Number(flags.rounds);
const top = Number(flags.top);
if (
  (workload !== "writes" && workload !== "burst") ||
  ![clients, seconds, valueBytes, rounds, top].every((n) => Number.isInteger(n) && n >= 1)
) {
  process.stderr.write(usage);
  process.exit(2);
}

const progress = progressOf("bench:profile");

const profileDir = fs.mkdtempSync(path.join(os.tmpdir(), "paxos-lease-profile-"));
process.env.PAXOS_LEASE_REPLICA_CPU_PROF_DIR = profileDir;
const cluster = await TestCluster.create(3, undefined, { traces: false });
cluster.startAll();
const leader = await cluster.waitForLeader(90_000);
const pids = new Map<number, number>();
for (const id of [1, 2, 3]) pids.set(cluster.member(id).child!.pid!, id);
progress(`leader ${leader}; workload ${workload}; load ${loadAverage()}`);

let writes = 0;
let failures = 0;
/** The measured window of the writers, on the profiles' clock (CLOCK_MONOTONIC, microseconds). */
const window = { fromUs: 0, toUs: Number.POSITIVE_INFINITY };
let windowWrites = 0;
const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);
if (workload === "writes") {
  const result = await runLoad(kvDriver(cluster, leader), {
    clients,
    warmupMs: 1000,
    durationMs: seconds * 1000,
    kind: "write",
    valueBytes,
    onWindow: (edge) => {
      if (edge === "start") window.fromUs = monotonicUs();
      else window.toUs = monotonicUs();
    },
  });
  windowWrites = result.completed;
  // The warm-up's writes are in the profile too: count them by the same rate.
  writes = Math.round(result.throughput * (seconds + 1));
  failures = result.errors;
} else {
  const MiB = 1024 * 1024;
  const connections = Array.from({ length: clients }, () => new Http1Connection(cluster.endpoint(leader)));
  for (let r = 0; r < rounds; r++) {
    // A 429 is retried after its hint, as docs/operations.md tells clients to.
    const put = async (c: Http1Connection, i: number): Promise<number> => {
      const body = JSON.stringify({ value: `${r}-${i}:`.padEnd(MiB, "x") });
      for (let attempt = 0; attempt < 20; attempt++) {
        const answer = await c.request("PUT", `/v1/kv/burst-${i}`, body, 30_000, cluster.authHeaders());
        if (answer.status !== 429) return answer.status;
        const hint = Number((JSON.parse(answer.body) as { retryAfterMs?: unknown }).retryAfterMs ?? 100);
        await new Promise((resolve) => setTimeout(resolve, hint));
      }
      return 429;
    };
    const answers = await Promise.all(connections.map((c, i) => put(c, i).catch(() => 0)));
    writes += answers.filter((s) => s === 200).length;
    failures += answers.filter((s) => s !== 200).length;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  for (const c of connections) c.close();
}
progress(`${writes} writes, ${failures} failed or unknown; stopping the cluster; load ${loadAverage()}`);
await cluster.close();

interface ThreadSummary extends ProfileSummary {
  readonly replica: number;
  readonly role: string;
  readonly thread: string;
  /** Over the measured window only (writes workload): busy time by stage. */
  readonly window: {
    readonly busyMs: number;
    readonly stages: readonly { readonly stage: Stage; readonly ms: number }[];
  };
}
const sourceOf = bundleSources((file) => {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
});
const summaries: ThreadSummary[] = [];
for (const file of fs.readdirSync(profileDir).sort()) {
  // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile; thread 0 is the main thread.
  const parts = file.split(".");
  const pid = Number(parts[3]);
  const replica = pids.get(pid);
  if (replica === undefined) continue;
  const profile = JSON.parse(fs.readFileSync(path.join(profileDir, file), "utf8")) as CpuProfile;
  summaries.push({
    replica,
    role: replica === leader ? "leader" : "follower",
    thread: parts[4] === "0" ? "main" : `worker ${parts[4]}`,
    ...summarizeProfile(profile),
    window: summarizeStages(profile, sourceOf, workload === "writes" ? window : undefined),
  });
}
if (flags.keep) progress(`profiles kept in ${profileDir}`);
else fs.rmSync(profileDir, { recursive: true, force: true });
summaries.sort((a, b) => a.replica - b.replica || a.thread.localeCompare(b.thread));

if (flags.json) {
  process.stdout.write(
    `${JSON.stringify({ workload, clients, seconds, valueBytes, writes, load: loadAverage(), summaries }, null, 2)}\n`,
  );
} else {
  for (const s of summaries) {
    process.stdout.write(
      `\nreplica ${s.replica} (${s.role}), ${s.thread} thread: busy ${s.busyMs.toFixed(0)} ms of ${s.totalMs.toFixed(0)} ms, ${((s.busyMs / Math.max(1, writes)) * 1000).toFixed(0)} us per write\n`,
    );
    for (const f of s.functions.slice(0, top))
      process.stdout.write(
        `  ${f.ms.toFixed(1).padStart(9)} ms  ${((f.ms / s.busyMs) * 100).toFixed(1).padStart(5)}%  ${f.name}\n`,
      );
  }
  process.stdout.write(`\n${writes} writes (${failures} failed or unknown); load average ${loadAverage()}\n`);
}
process.stdout.write(stageTable());

/**
 * Busy time per write by stage (microseconds), over the measured window (writes workload; the whole
 * run otherwise): the leader's threads, a follower's (the mean of the followers), and all members.
 */
function stageTable(): string {
  const perWrite = Math.max(1, workload === "writes" ? windowWrites : writes);
  const columns: { title: string; pick: (s: ThreadSummary) => number }[] = [
    { title: "leader main", pick: (s) => (s.role === "leader" && s.thread === "main" ? 1 : 0) },
    { title: "leader storage", pick: (s) => (s.role === "leader" && s.thread !== "main" ? 1 : 0) },
    { title: "follower main", pick: (s) => (s.role === "follower" && s.thread === "main" ? 0.5 : 0) },
    { title: "follower storage", pick: (s) => (s.role === "follower" && s.thread !== "main" ? 0.5 : 0) },
    { title: "all members", pick: () => 1 },
  ];
  const stages = new Map<Stage, number>();
  for (const s of summaries)
    for (const st of s.window.stages) stages.set(st.stage, (stages.get(st.stage) ?? 0) + st.ms);
  const order = [...stages].sort((a, b) => b[1] - a[1]).map(([stage]) => stage);
  const cell = (ms: number): string => ((ms / perWrite) * 1000).toFixed(0);
  const rows = order.map((stage) =>
    columns.map((c) =>
      cell(summaries.reduce((n, s) => n + c.pick(s) * (s.window.stages.find((st) => st.stage === stage)?.ms ?? 0), 0)),
    ),
  );
  const busy = columns.map((c) => cell(summaries.reduce((n, s) => n + c.pick(s) * s.window.busyMs, 0)));
  const lines = [
    "",
    `busy time per write by stage, us (${perWrite} writes in the measured window, ${clients} clients; load ${loadAverage()})`,
    `| stage | ${columns.map((c) => c.title).join(" | ")} |`,
    `| --- | ${columns.map(() => "---:").join(" | ")} |`,
    ...order.map((stage, i) => `| ${stage} | ${rows[i]!.join(" | ")} |`),
    `| busy, all stages | ${busy.join(" | ")} |`,
    "",
  ];
  return lines.join("\n");
}

/**
 * The CPU of one write, measured as the kernel counts it: starts a 3-replica cluster (the compiled
 * replicas), warms it up, drives it with closed-loop writers, and reads every thread's user +
 * system CPU of every replica from /proc at the edges of the measured window. With `--perf`
 * (Linux `perf`, run as root) it also records an on-CPU profile of each replica during the window
 * and prints where a write's CPU went by stage (HTTP, peer codec, step, storage hand-over, SQLite,
 * fsync, sockets, the compiler, the garbage collector...) for the leader and a follower.
 *
 * Unlike bench/profile.ts (V8's profiler: wall-clock samples of each thread), nothing here counts
 * waiting for a CPU, so the figures hold on a loaded machine. CPU per write includes what an idle
 * cluster spends meanwhile (ticks, heartbeats, metrics), spread over the writes of the window, so it
 * is lower when writes are faster; the idle cluster's CPU is measured first, and the CPU per write
 * beyond it is reported too. Each thread's wake-ups (voluntary context switches) are counted
 * too, and with `--syscalls` every system call (perf's raw_syscalls tracepoint); `--etcd` measures
 * etcd the same way, for the comparison. Leadership changes from the idle measurement to the end of
 * the window (campaigns started; etcd: raft terms) and failed writes are counted: a run with any is
 * reported as no result, and the script then exits with status 1.
 *
 *   npx tsx bench/write-cpu.ts [--clients 1] [--value-bytes 100] [--seconds 8] [--warmup 10] [--idle 3]
 *                              [--perf] [--syscalls] [--alloc] [--survivors] [--core JSON] [--etcd] [--json]
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { bundleSources, type Stage } from "./lib/cpuprofile.ts";
import { benchFlags } from "./lib/flags.ts";
import { runLoad, type SystemDriver } from "./lib/load.ts";
import { EtcdCluster, OursCluster } from "./lib/systems.ts";
import { perfStages, type ThreadKind } from "./lib/perf-stages.ts";
import { contextSwitches, syscallsByThread } from "./lib/syscall-counts.ts";
import { loadAverage, notAResult, progressOf } from "./lib/report.ts";

const usage = `usage: npx tsx bench/write-cpu.ts [options]

CPU per write of a 3-replica cluster, per replica and thread, from /proc; with --perf, by stage.

options:
  --clients N     closed-loop writers (default 1)
  --value-bytes B the writers' value size (default 100; 1048576 for the CPU of a 1 MiB write)
  --seconds S     measured seconds (default 8)
  --warmup S      seconds of 16 writers first, so that the code is compiled (default 10)
  --idle S        seconds of no load measured after the warm-up: the cluster's idle CPU (default 3)
  --perf          also record on-CPU profiles with Linux perf (root) and print the stages
  --syscalls      also count every system call of each replica (perf's raw_syscalls tracepoint,
                  root) and each thread's wake-ups (/proc), and print them per write by thread
  --alloc         also sample every allocation of each replica's main thread during the window
                  (V8's sampling heap profiler, collected objects included) and print bytes per
                  write by allocating function
  --survivors     with --alloc, count only what survived a scavenge (objects freed by a scavenge
                  dropped, those freed later kept): what makes the young generation's collections
                  slow, by allocating function
  --core JSON     core settings for the replicas beside the runtime's (impl/core/config.ts), as a
                  JSON object: '{"batchLateMs":0}' measures a setting against its default
  --etcd          measure Debian's etcd instead (three members at its defaults, the JSON gateway,
                  as npm run bench runs it), to compare its CPU, wake-ups and system calls
  --json          print the report as JSON
  --help          print this help
`;

const flags = benchFlags(
  {
    clients: { type: "string", default: "1" },
    "value-bytes": { type: "string", default: "100" },
    seconds: { type: "string", default: "8" },
    warmup: { type: "string", default: "10" },
    idle: { type: "string", default: "3" },
    perf: { type: "boolean", default: false },
    alloc: { type: "boolean", default: false },
    survivors: { type: "boolean", default: false },
    syscalls: { type: "boolean", default: false },
    etcd: { type: "boolean", default: false },
    core: { type: "string" },
    json: { type: "boolean", default: false },
  },
  usage,
);
/** The mean of latency samples (a lone client's throughput is its inverse). */
const mean = (samples: readonly number[]): number => samples.reduce((a, b) => a + b, 0) / Math.max(1, samples.length);
const clients = Number(flags.clients);
const valueBytes = Number(flags["value-bytes"]);
const seconds = Number(flags.seconds);
const warmup = Number(flags.warmup);
const idle = Number(flags.idle);
if (
  !(Number.isInteger(clients) && clients >= 1) ||
  !(Number.isInteger(valueBytes) && valueBytes >= 1) ||
  !(seconds > 0) ||
  !(warmup >= 0) ||
  !(idle >= 0) ||
  (flags.etcd && (flags.perf || flags.alloc)) ||
  (flags.survivors && !flags.alloc)
) {
  process.stderr.write(usage);
  process.exit(2);
}
const core = ((): Record<string, unknown> | undefined => {
  if (flags.core === undefined) return undefined;
  const parsed: unknown = JSON.parse(flags.core);
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    process.stderr.write(`bench: --core must be a JSON object, not ${flags.core}\n`);
    process.exit(2);
  }
  return parsed as Record<string, unknown>;
})();
if (flags.perf || flags.syscalls) {
  try {
    execFileSync("perf", ["--version"], { stdio: "ignore" });
  } catch {
    process.stderr.write("bench: --perf needs Linux perf (Debian: apt-get install -y linux-perf) and root\n");
    process.exit(2);
  }
}
if (flags.perf) {
  // JavaScript frames get names in perf's samples (maps in /tmp/perf-PID.map, removed below).
  process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ""} --perf-basic-prof`.trim();
}

const progress = progressOf("bench:write-cpu");
const ticksPerSecond = 100;

/** User + system CPU of the whole process `pid`, in milliseconds. */
function totalCpu(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond;
}

/** User + system CPU of every thread of `pid`, in milliseconds, by thread id. */
function threadCpu(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(tid, ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond);
    } catch {
      // The thread ended.
    }
  }
  return out;
}

/**
 * Loaded into each replica with --import when --alloc is given: the first SIGUSR2 starts V8's
 * sampling heap profiler on the main thread, keeping samples of objects the collector has freed
 * (so the profile counts every allocation, not what is alive), and the second writes the profile.
 * With PAXOS_LEASE_ALLOC_SURVIVORS=1 (--survivors) it drops the samples that a scavenge freed.
 */
const allocPreload = `
import { isMainThread } from "node:worker_threads";
import inspector from "node:inspector";
import fs from "node:fs";
import { PerformanceObserver, constants } from "node:perf_hooks";
if (isMainThread) {
  const session = new inspector.Session();
  session.connect();
  let running = false;
  const pauses = [];
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries())
      pauses.push({ minor: entry.detail.kind === constants.NODE_PERFORMANCE_GC_MINOR, ms: entry.duration });
  });
  process.on("SIGUSR2", () => {
    if (!running) {
      running = true;
      observer.observe({ entryTypes: ["gc"] });
      session.post("HeapProfiler.startSampling", {
        samplingInterval: 1024,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: process.env.PAXOS_LEASE_ALLOC_SURVIVORS !== "1",
      });
      return;
    }
    observer.disconnect();
    session.post("HeapProfiler.stopSampling", (error, result) => {
      const file = process.env.PAXOS_LEASE_ALLOC_PROF_DIR + "/" + process.pid + ".heapprofile";
      fs.writeFileSync(file, JSON.stringify(error ? { error: String(error) } : { ...result.profile, pauses }));
    });
  });
}
`;

interface GcPause {
  readonly minor: boolean;
  readonly ms: number;
}

/** The collector's pauses on a main thread over the window: young-generation ones and the rest. */
function pausesOf(pauses: readonly GcPause[], writes: number) {
  const sum = (list: readonly GcPause[]): number => list.reduce((n, p) => n + p.ms, 0);
  const minor = pauses.filter((p) => p.minor);
  const major = pauses.filter((p) => !p.minor);
  return {
    scavenges: minor.length,
    writesPerScavenge: Math.round(writes / Math.max(1, minor.length)),
    scavengeMs: Math.round(sum(minor)),
    otherCollections: major.length,
    otherMs: Math.round(sum(major)),
    longestMs: Math.round(Math.max(0, ...pauses.map((p) => p.ms)) * 10) / 10,
    over10Ms: pauses.filter((p) => p.ms > 10).length,
  };
}
const allocDir = flags.alloc ? fs.mkdtempSync(path.join(os.tmpdir(), "paxos-lease-alloc-")) : "";
if (flags.alloc) {
  fs.writeFileSync(path.join(allocDir, "preload.mjs"), allocPreload);
  process.env.PAXOS_LEASE_ALLOC_PROF_DIR = allocDir;
  if (flags.survivors) process.env.PAXOS_LEASE_ALLOC_SURVIVORS = "1";
  process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ""} --import=${path.join(allocDir, "preload.mjs")}`.trim();
}

interface HeapNode {
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly selfSize: number;
  readonly children: readonly HeapNode[];
}

/** Bytes allocated per write by function (with its source file in the bundle), largest first. */
function allocations(
  profile: { readonly head: HeapNode },
  writes: number,
  sourceOf: (url: string, line: number) => string | undefined,
): { total: number; top: [string, number][] } {
  const byFunction = new Map<string, number>();
  let total = 0;
  // A frame outside the project's code (Node's, a library's, native) is named with the nearest
  // caller of the project's own, which is what a change would touch.
  const walk = (node: HeapNode, caller: string | undefined): void => {
    const { functionName, url, lineNumber } = node.callFrame;
    const where = sourceOf(url, lineNumber + 1) ?? (url === "" ? "(native)" : url.replace(/^.*\//, ""));
    const name = `${functionName === "" ? "(anonymous)" : functionName} ${where}`;
    const own = /^(impl|spec)\//.test(where);
    if (node.selfSize > 0) {
      const key = own || caller === undefined ? name : `${name} <- ${caller}`;
      byFunction.set(key, (byFunction.get(key) ?? 0) + node.selfSize);
      total += node.selfSize;
    }
    for (const child of node.children) walk(child, own ? name : caller);
  };
  walk(profile.head, undefined);
  return {
    total: total / writes,
    top: [...byFunction].map(([f, b]): [string, number] => [f, b / writes]).sort((a, b) => b[1] - a[1]),
  };
}

/** The cluster measured: paxos-lease's compiled replicas, or with --etcd Debian's etcd at its defaults. */
interface Measured {
  start(): Promise<void>;
  leader(): Promise<number>;
  driver(leader: number): SystemDriver;
  pid(id: number): number;
  /** Campaigns started so far, summed over the members (etcd: its raft term). */
  leadership(): Promise<{ readonly campaigns: number }>;
  close(): Promise<void>;
}
const cluster: Measured = flags.etcd
  ? ((): Measured => {
      const etcd = new EtcdCluster();
      return {
        start: () => etcd.start(),
        leader: async () => {
          const leader = await etcd.healthy(90_000);
          if (leader === null) throw new Error("etcd: no leader within 90 s");
          return leader;
        },
        driver: (leader) => etcd.driver(leader),
        pid: (id) => etcd.pid(id)!,
        leadership: () => etcd.leadership(),
        close: () => etcd.close(),
      };
    })()
  : ((): Measured => {
      const ours = new OursCluster(core);
      return {
        start: () => ours.start(),
        leader: async () => {
          const leader = await ours.leader(90_000);
          if (leader === null) throw new Error("paxos-lease: no leader within 90 s");
          return leader;
        },
        driver: (leader) => ours.driver(leader),
        pid: (id) => ours.pid(id)!,
        leadership: () => ours.leadership(),
        close: () => ours.close(),
      };
    })();
const perfDir = fs.mkdtempSync(path.join(os.tmpdir(), "paxos-lease-write-cpu-"));
const replicaPids: number[] = [];
try {
  await cluster.start();
  const driver = (leader: number): SystemDriver => cluster.driver(leader);
  if (warmup > 0)
    await runLoad(driver(await cluster.leader()), {
      clients: 16,
      warmupMs: 0,
      durationMs: warmup * 1000,
      kind: "write",
    });
  const leader = await cluster.leader();
  const members = [1, 2, 3].map((id) => ({
    id,
    pid: cluster.pid(id),
    role: id === leader ? "leader" : "follower",
  }));
  // Read before the idle measurement and after the window, outside both.
  const campaignsBefore = (await cluster.leadership()).campaigns;
  // The idle cluster's CPU (ticks, heartbeats, metrics), to tell what the writes themselves cost.
  const idleFrom = members.map((m) => totalCpu(m.pid));
  const idleSwitches = members.map((m) => contextSwitches(m.pid));
  const idleStarted = performance.now();
  await new Promise((resolve) => setTimeout(resolve, idle * 1000));
  const idleSeconds = (performance.now() - idleStarted) / 1000;
  const idleMsPerSecond =
    idle === 0 ? 0 : members.reduce((n, m, i) => n + totalCpu(m.pid) - idleFrom[i]!, 0) / idleSeconds;
  /** Wake-ups per second of the idle cluster's threads, all members. */
  const idleWakeupsPerSecond =
    idle === 0
      ? 0
      : members.reduce((n, m, i) => {
          for (const [tid, s] of contextSwitches(m.pid)) n += s.voluntary - (idleSwitches[i]!.get(tid)?.voluntary ?? 0);
          return n;
        }, 0) / idleSeconds;
  progress(
    `leader ${leader}; idle ${idleMsPerSecond.toFixed(1)} ms of CPU and ${idleWakeupsPerSecond.toFixed(0)} wake-ups per second; ${clients} clients for ${seconds} s; load ${loadAverage()}`,
  );
  let before: Map<string, number>[] = [];
  let after: Map<string, number>[] = [];
  let recorders: ChildProcess[] = [];
  let switchesBefore: ReturnType<typeof contextSwitches>[] = [];
  let switchesAfter: ReturnType<typeof contextSwitches>[] = [];
  const result = await runLoad(driver(leader), {
    clients,
    warmupMs: 2000,
    durationMs: seconds * 1000,
    kind: "write",
    valueBytes,
    onWindow: (edge) => {
      if (edge === "start") {
        before = members.map((m) => threadCpu(m.pid));
        switchesBefore = members.map((m) => contextSwitches(m.pid));
        if (flags.syscalls)
          recorders = members.map((m) =>
            spawn(
              "perf",
              ["record", "-e", "raw_syscalls:sys_enter", "-p", String(m.pid), "-o", path.join(perfDir, `${m.id}.sys`)],
              { stdio: "ignore" },
            ),
          );
        if (flags.alloc) for (const m of members) process.kill(m.pid, "SIGUSR2");
        if (flags.perf)
          recorders.push(
            ...members.map((m) =>
              spawn(
                "perf",
                ["record", "-F", "1999", "-g", "-p", String(m.pid), "-o", path.join(perfDir, `${m.id}.data`)],
                { stdio: "ignore" },
              ),
            ),
          );
      } else {
        after = members.map((m) => threadCpu(m.pid));
        switchesAfter = members.map((m) => contextSwitches(m.pid));
        if (flags.alloc) for (const m of members) process.kill(m.pid, "SIGUSR2");
        for (const r of recorders) r.kill("SIGINT");
      }
    },
  });
  await Promise.all(
    recorders.map((r) => new Promise((resolve) => (r.exitCode !== null ? resolve(null) : r.on("exit", resolve)))),
  );
  const leadershipChanges = (await cluster.leadership()).campaigns - campaignsBefore;
  const noResult = notAResult({ leadershipChanges, failed: result.failed, outcomeUnknown: result.outcomeUnknown });
  const writes = Math.max(1, result.completed);
  const perWriteUs = (ms: number): number => Math.round((ms / writes) * 1000);
  const replicas = members.map((m, i) => {
    const threads = [...after[i]!].map(([tid, ms]) => ({ tid, ms: ms - (before[i]!.get(tid) ?? 0) }));
    const main = threads.find((t) => t.tid === String(m.pid))?.ms ?? 0;
    const total = threads.reduce((n, t) => n + t.ms, 0);
    return {
      id: m.id,
      role: m.role,
      mainUs: perWriteUs(main),
      otherThreadsUs: perWriteUs(total - main),
      totalUs: perWriteUs(total),
    };
  });
  const sourceOf = bundleSources((file) => {
    try {
      return fs.readFileSync(file, "utf8");
    } catch {
      return undefined;
    }
  });
  /** Per replica: microseconds per write by thread kind and stage. */
  const stages = flags.perf
    ? members.map((m) => {
        const script = spawnSync(
          "perf",
          ["script", "-i", path.join(perfDir, `${m.id}.data`), "-F", "tid,pid,period,ip,sym,dso"],
          {
            encoding: "utf8",
            maxBuffer: 1 << 30,
          },
        ).stdout;
        const parsed = perfStages(script, sourceOf);
        const table = new Map<ThreadKind, Map<Stage, number>>();
        for (const [kind, totals] of parsed.byThread)
          table.set(kind, new Map([...totals].map(([s, ns]) => [s, ns / 1000 / writes])));
        return { id: m.id, role: m.role, table };
      })
    : [];
  /** Per replica and thread kind: wake-ups (voluntary context switches) and system calls per write. */
  const calls = members.map((m, i) => {
    const byThread = flags.syscalls
      ? syscallsByThread(
          spawnSync("perf", ["script", "-i", path.join(perfDir, `${m.id}.sys`), "-F", "tid,trace"], {
            encoding: "utf8",
            maxBuffer: 1 << 30,
          }).stdout,
        )
      : new Map<string, Map<string, number>>();
    // Without the system calls the storage thread (the one that calls fdatasync) is not told apart.
    const kindOf = (tid: string): string =>
      flags.etcd
        ? "all threads"
        : tid === String(m.pid)
          ? "main"
          : !flags.syscalls
            ? "other threads"
            : (byThread.get(tid)?.has("fdatasync") ?? false)
              ? "storage"
              : "V8 and libuv helpers";
    const kinds = new Map<string, { wakeups: number; preempted: number; calls: Map<string, number> }>();
    const entry = (kind: string) => {
      let e = kinds.get(kind);
      if (e === undefined) kinds.set(kind, (e = { wakeups: 0, preempted: 0, calls: new Map() }));
      return e;
    };
    for (const [tid, s] of switchesAfter[i]!) {
      const was = switchesBefore[i]!.get(tid) ?? { voluntary: 0, involuntary: 0 };
      const e = entry(kindOf(tid));
      e.wakeups += (s.voluntary - was.voluntary) / writes;
      e.preempted += (s.involuntary - was.involuntary) / writes;
    }
    for (const [tid, byName] of byThread) {
      const e = entry(kindOf(tid));
      for (const [name, n] of byName) e.calls.set(name, (e.calls.get(name) ?? 0) + n / writes);
    }
    return { id: m.id, role: m.role, kinds };
  });
  const allocs = flags.alloc
    ? await Promise.all(
        members.map(async (m) => {
          const file = path.join(allocDir, `${m.pid}.heapprofile`);
          for (let i = 0; i < 100 && !fs.existsSync(file); i++) await new Promise((r) => setTimeout(r, 100));
          const profile = JSON.parse(fs.readFileSync(file, "utf8")) as {
            readonly head: HeapNode;
            readonly pauses: readonly GcPause[];
          };
          return {
            id: m.id,
            role: m.role,
            ...allocations(profile, writes, sourceOf),
            gc: pausesOf(profile.pauses, writes),
          };
        }),
      )
    : [];
  const report = {
    clients,
    seconds,
    writes: result.completed,
    failed: result.failed,
    outcomeUnknown: result.outcomeUnknown,
    /** Campaigns started from the idle measurement to the end of the window (etcd: raft terms). */
    leadershipChanges,
    /** Why the run is no result (a leadership change, a failed write...), or null when it is one. */
    noResult,
    throughput: result.throughput,
    p50: result.p50,
    p90: result.p90,
    p99: result.p99,
    mean: mean(result.samples),
    load: loadAverage(),
    cpuPerWriteUs: replicas.reduce((n, r) => n + r.totalUs, 0),
    idleCpuMsPerSecond: Math.round(idleMsPerSecond * 10) / 10,
    idleWakeupsPerSecond: Math.round(idleWakeupsPerSecond),
    /** CPU per write beyond what the idle cluster spends in the same time. */
    cpuPerWriteBeyondIdleUs: Math.round(
      replicas.reduce((n, r) => n + r.totalUs, 0) - ((idleMsPerSecond * seconds) / writes) * 1000,
    ),
    replicas,
    threads: calls.map((c) => ({
      id: c.id,
      role: c.role,
      threads: Object.fromEntries(
        [...c.kinds].map(([k, e]) => [
          k,
          { wakeups: e.wakeups, preempted: e.preempted, syscalls: Object.fromEntries(e.calls) },
        ]),
      ),
    })),
    allocations: allocs.map((a) => ({
      id: a.id,
      role: a.role,
      bytesPerWrite: Math.round(a.total),
      gc: a.gc,
      top: a.top.slice(0, 40),
    })),
    stages: stages.map((s) => ({
      id: s.id,
      role: s.role,
      threads: Object.fromEntries([...s.table].map(([k, m]) => [k, Object.fromEntries(m)])),
    })),
  };
  if (flags.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else {
    const lines = [
      `${clients} clients: ${result.throughput.toFixed(0)} writes/s, p50 ${result.p50.toFixed(2)} ms, p90 ${result.p90.toFixed(2)} ms, p99 ${result.p99.toFixed(2)} ms, mean ${mean(result.samples).toFixed(2)} ms, ${result.failed} failed, ${result.outcomeUnknown} unknown, ${leadershipChanges} leadership changes; load ${report.load}`,
      ...(noResult === null ? [] : [`NOT A RESULT: ${noResult}`]),
      `CPU per write, all members: ${report.cpuPerWriteUs} us; beyond the idle cluster's ${report.idleCpuMsPerSecond} ms per second: ${report.cpuPerWriteBeyondIdleUs} us`,
      ...replicas.map((r) =>
        flags.etcd
          ? `  member ${r.id} (${r.role}): ${r.totalUs} us`
          : `  replica ${r.id} (${r.role}): ${r.totalUs} us (main thread ${r.mainUs}, other threads ${r.otherThreadsUs})`,
      ),
    ];
    const round = (n: number): string => (n >= 10 ? n.toFixed(0) : n.toFixed(2));
    for (const c of calls)
      for (const [kind, e] of c.kinds) {
        const total = [...e.calls.values()].reduce((a, b) => a + b, 0);
        if (e.wakeups < 0.05 && total < 0.05) continue;
        lines.push(
          `  ${flags.etcd ? "member" : "replica"} ${c.id} (${c.role}) ${kind}: ${round(e.wakeups)} wake-ups, ${round(e.preempted)} preemptions${
            flags.syscalls
              ? `, ${round(total)} system calls: ${[...e.calls]
                  .sort((a, b) => b[1] - a[1])
                  .filter(([, n]) => n >= 0.05)
                  .map(([name, n]) => `${name} ${round(n)}`)
                  .join(", ")}`
              : ""
          } per write`,
        );
      }
    for (const a of allocs) {
      lines.push(
        "",
        `replica ${a.id} (${a.role}), main thread: ${Math.round(a.total)} bytes ${flags.survivors ? "that survived a scavenge" : "allocated"} per write (sampled); collector: ${a.gc.scavenges} scavenges (one per ${a.gc.writesPerScavenge} writes, ${a.gc.scavengeMs} ms), ${a.gc.otherCollections} other pauses (${a.gc.otherMs} ms), longest ${a.gc.longestMs} ms, ${a.gc.over10Ms} over 10 ms; by function:`,
        ...a.top.slice(0, 25).map(([f, b]) => `  ${Math.round(b).toString().padStart(7)}  ${f}`),
      );
    }
    if (stages.length > 0) {
      const leaderStages = stages.find((s) => s.role === "leader")!;
      const followers = stages.filter((s) => s.role === "follower");
      const cell = (
        table: Map<ThreadKind, Map<Stage, number>>,
        kind: ThreadKind | "all",
        stage: Stage | "all",
      ): number => {
        let sum = 0;
        for (const [k, m] of table)
          if (kind === "all" || k === kind) for (const [s, us] of m) if (stage === "all" || s === stage) sum += us;
        return sum;
      };
      const followerCell = (kind: ThreadKind | "all", stage: Stage | "all"): number =>
        followers.reduce((n, f) => n + cell(f.table, kind, stage), 0) / Math.max(1, followers.length);
      const all = new Map<Stage, number>();
      for (const s of stages)
        for (const m of s.table.values()) for (const [st, us] of m) all.set(st, (all.get(st) ?? 0) + us);
      const order = [...all].sort((a, b) => b[1] - a[1]).map(([s]) => s);
      const kinds: ThreadKind[] = ["main", "storage", "V8 and libuv helpers"];
      const row = (stage: Stage | "all", label: string): string =>
        `| ${label} | ${kinds.map((k) => cell(leaderStages.table, k, stage).toFixed(0)).join(" | ")} | ${kinds.map((k) => followerCell(k, stage).toFixed(0)).join(" | ")} | ${stages.reduce((n, s) => n + cell(s.table, "all", stage), 0).toFixed(0)} |`;
      lines.push(
        "",
        `on-CPU time per write by stage, us (perf; ${result.completed} writes, ${clients} clients; load ${report.load})`,
        "| stage | leader main | leader storage | leader helpers | follower main | follower storage | follower helpers | all members |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ...order.map((stage) => row(stage, stage)),
        row("all", "all stages"),
      );
    }
    process.stdout.write(`${lines.join("\n")}\n`);
  }
  replicaPids.push(...members.map((m) => m.pid));
  if (noResult !== null) process.exitCode = 1;
} finally {
  await cluster.close();
  fs.rmSync(perfDir, { recursive: true, force: true });
  if (flags.alloc) fs.rmSync(allocDir, { recursive: true, force: true });
  // What --perf-basic-prof leaves behind: the symbol maps, and V8's log of each isolate here.
  for (const pid of replicaPids) {
    fs.rmSync(`/tmp/perf-${pid}.map`, { force: true });
    for (const file of fs.readdirSync(".")) if (file.endsWith(`-${pid}-v8.log`)) fs.rmSync(file, { force: true });
  }
}

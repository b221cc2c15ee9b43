/**
 * On-CPU profiles of replica processes from Linux `perf` (`perf record -g -p PID`, replicas run with
 * `--perf-basic-prof` so that JavaScript frames have names): where a write's CPU goes by stage, per
 * thread kind. Unlike V8's sampling profiler, whose samples are wall-clock ticks of a thread (on a
 * loaded machine a system call that waits for the CPU counts as the call's time), perf samples
 * only the time a thread really ran, kernel included, and sees every thread: the storage thread,
 * V8's compiler and garbage-collector helpers. Stages are those of ./cpuprofile.ts, plus the kernel's.
 */
import { stageOfNode, stageOfSource, type SourceOf, type Stage } from "./cpuprofile.ts";

/** The threads of one replica process, by kind. */
export type ThreadKind = "main" | "storage" | "V8 and libuv helpers";

/** CPU by stage and thread kind, in nanoseconds. */
export interface PerfStages {
  readonly byThread: ReadonlyMap<ThreadKind, ReadonlyMap<Stage, number>>;
}

const syscallStages: ReadonlyMap<string, Stage> = new Map<string, Stage>([
  ["fdatasync", "kernel: fsync"],
  ["fsync", "kernel: fsync"],
  ["pwrite64", "SQLite"],
  ["pread64", "SQLite"],
  ["write", "kernel: socket and pipe writes"],
  ["writev", "kernel: socket and pipe writes"],
  ["sendto", "kernel: socket and pipe writes"],
  ["sendmsg", "kernel: socket and pipe writes"],
  ["read", "kernel: reads"],
  ["readv", "kernel: reads"],
  ["recvfrom", "kernel: reads"],
  ["recvmsg", "kernel: reads"],
  ["epoll_wait", "kernel: epoll"],
  ["epoll_pwait", "kernel: epoll"],
  ["epoll_ctl", "kernel: epoll"],
  ["futex", "kernel: futex (thread wake-ups)"],
]);

/** The stage one frame names, if any (`sym` is perf's symbol, `dso` the object it is in). */
function stageOfFrame(sym: string, dso: string, sourceOf: SourceOf): Stage | undefined {
  if (dso.includes("[kernel")) {
    const call = /__(?:x64|ia32)_sys_(\w+)/.exec(sym)?.[1];
    return call === undefined ? undefined : (syscallStages.get(call) ?? "kernel: other system calls");
  }
  if (sym.startsWith("JS:")) {
    const file = /(file:\/\/\S+):(\d+):\d+/.exec(sym);
    if (file !== null) {
      const source = sourceOf(file[1]!, Number(file[2]));
      return source === undefined ? undefined : stageOfSource(source);
    }
    const node = /(node:\S+):\d+:\d+/.exec(sym);
    return node === null ? undefined : stageOfNode(node[1]!);
  }
  if (dso.includes("better_sqlite3") || sym.startsWith("sqlite3")) return "SQLite";
  if (dso.includes("libcrypto") || /sha256/i.test(sym)) return "record encode and checksum";
  if (/Scavenge|MarkCompact|Heap::|Sweeper|ConcurrentMarking|GCTracer|MinorMC|Evacuat|MemoryAllocator/.test(sym))
    return "garbage collector";
  if (/compiler::|Maglev|BaselineCompiler|BaselineBatch|Compiler::|Parser|Scanner|BytecodeGenerator/.test(sym))
    return "V8 compiler (JIT)";
  if (/llhttp|http_parser/.test(sym)) return "HTTP (Node)";
  if (/ValueSerializer|ValueDeserializer|node::worker::|MessagePort|uv_async_send|uv__async/.test(sym))
    return "storage thread hand-over";
  if (/^(fdatasync|fsync)$/.test(sym)) return "kernel: fsync";
  return undefined;
}

/**
 * Parse `perf script -F tid,pid,period,ip,sym,dso` output of one process: each sample goes to the
 * stage of the first frame, from the leaf up, that names one. The storage thread is the thread
 * that ran SQLite; the main thread's id is the process id.
 */
export function perfStages(script: string, sourceOf: SourceOf): PerfStages {
  const perThread = new Map<string, Map<Stage, number>>();
  let pid = "";
  let sampleThread = "";
  let period = 0;
  let stage: Stage | undefined;
  let first = true;
  let kernelLeaf = false;
  const finish = (): void => {
    if (sampleThread === "") return;
    const resolved: Stage =
      stage ?? (kernelLeaf ? "kernel: interrupts and scheduler" : "(program): native, unattributed");
    let totals = perThread.get(sampleThread);
    if (totals === undefined) perThread.set(sampleThread, (totals = new Map<Stage, number>()));
    totals.set(resolved, (totals.get(resolved) ?? 0) + period);
    sampleThread = "";
  };
  for (const line of script.split("\n")) {
    if (line.trim() === "") {
      finish();
      continue;
    }
    if (!line.startsWith("\t")) {
      finish();
      // "PID/TID PERIOD"
      const head = /^\s*(\d+)\/(\d+)\s+(\d+)/.exec(line);
      if (head === null) continue;
      pid = head[1]!;
      sampleThread = head[2]!;
      period = Number(head[3]);
      stage = undefined;
      first = true;
      kernelLeaf = false;
      continue;
    }
    if (sampleThread === "" || stage !== undefined) continue;
    const frame = /^\s+[0-9a-f]+\s+(.*?)\s+\((.*)\)$/.exec(line);
    if (frame === null) continue;
    if (first) kernelLeaf = frame[2]!.includes("[kernel");
    first = false;
    stage = stageOfFrame(frame[1]!, frame[2]!, sourceOf);
  }
  finish();
  const byThread = new Map<ThreadKind, Map<Stage, number>>();
  for (const [tid, totals] of perThread) {
    const kind: ThreadKind =
      tid === pid ? "main" : (totals.get("SQLite") ?? 0) > 0 ? "storage" : "V8 and libuv helpers";
    let into = byThread.get(kind);
    if (into === undefined) byThread.set(kind, (into = new Map<Stage, number>()));
    for (const [s, ns] of totals) into.set(s, (into.get(s) ?? 0) + ns);
  }
  return { byThread };
}

/**
 * Reading V8 CPU profiles (`node --cpu-prof`): the time each function spent on the CPU itself
 * (self time), summed over every call site, so that a profile of a replica under load reads as a
 * short table of where its thread went. Pure: parses a profile's JSON, reads no clock.
 */

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}

/** The parts of a `.cpuprofile` file this reads. */
export interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
  readonly startTime: number;
  readonly endTime: number;
}

/** Self time of one function (all its call sites), in milliseconds. */
export interface FunctionTime {
  readonly name: string;
  readonly ms: number;
}

/** A profile's totals and its functions by self time, largest first. */
export interface ProfileSummary {
  /** Wall-clock length of the profile, in milliseconds. */
  readonly totalMs: number;
  /** Sampled time not idle (JavaScript, native code, the garbage collector), in milliseconds. */
  readonly busyMs: number;
  readonly functions: readonly FunctionTime[];
}

/** `name (file:line)` for a call frame, with the file's directories dropped. */
function frameName(frame: ProfileNode["callFrame"]): string {
  const name = frame.functionName === "" ? "(anonymous)" : frame.functionName;
  if (frame.url === "") return name;
  const file = frame.url.slice(frame.url.lastIndexOf("/") + 1);
  return `${name} (${file}:${frame.lineNumber + 1})`;
}

/** Summarize a profile: self time per function over the whole profile. */
export function summarizeProfile(profile: CpuProfile): ProfileSummary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map<string, number>();
  let idleUs = 0;
  let sampledUs = 0;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    const node = byId.get(id);
    if (node === undefined) return;
    sampledUs += delta;
    const name = frameName(node.callFrame);
    if (node.callFrame.functionName === "(idle)") idleUs += delta;
    self.set(name, (self.get(name) ?? 0) + delta);
  });
  const functions = [...self]
    .filter(([name]) => name !== "(idle)")
    .map(([name, us]) => ({ name, ms: us / 1000 }))
    .sort((a, b) => b.ms - a.ms);
  return { totalMs: (profile.endTime - profile.startTime) / 1000, busyMs: (sampledUs - idleUs) / 1000, functions };
}

/**
 * Where a write's time goes, by stage: each sample goes to the stage of the first frame, from the
 * leaf up, that names one (a native call such as `fdatasync` or `writev`, a Node internal module,
 * or a source file of the bundle). `sourceOf` maps a frame of the bundle to its source file
 * (esbuild's `// path` markers), or undefined.
 */
export type Stage =
  | "fsync"
  | "SQLite"
  | "record encode and checksum"
  | "storage thread hand-over"
  | "sockets (Node)"
  | "HTTP (Node)"
  | "HTTP API"
  | "peer frames and codec"
  | "peer transport"
  | "Schema (effect)"
  | "step (impl/core)"
  | "driver"
  | "metrics"
  | "trace and logs"
  | "timers and ticks"
  | "garbage collector"
  | "V8 compiler (JIT)"
  | "kernel: fsync"
  | "kernel: socket and pipe writes"
  | "kernel: reads"
  | "kernel: epoll"
  | "kernel: futex (thread wake-ups)"
  | "kernel: other system calls"
  | "kernel: interrupts and scheduler"
  | "(program): native, unattributed"
  | "start-up"
  | "other";

export type SourceOf = (url: string, line: number) => string | undefined;

const nativeStages: ReadonlyMap<string, Stage> = new Map<string, Stage>([
  ["fdatasync", "fsync"],
  ["fsync", "fsync"],
  ["writev", "sockets (Node)"],
  ["writeBuffer", "sockets (Node)"],
  ["writeUtf8String", "sockets (Node)"],
  ["writeLatin1String", "sockets (Node)"],
  ["postMessage", "storage thread hand-over"],
  ["receiveMessageOnPort", "storage thread hand-over"],
  ["(garbage collector)", "garbage collector"],
  ["compileFunction", "start-up"],
  ["compileSourceTextModule", "start-up"],
  ["compileForInternalLoader", "start-up"],
  ["readFileUtf8", "start-up"],
]);

/** The stage of code from `source` (a path of the bundle's `// path` markers); undefined when none. */
export function stageOfSource(source: string): Stage | undefined {
  if (source.includes("node_modules/effect/")) return "Schema (effect)";
  if (source.includes("better-sqlite3")) return "SQLite";
  if (source.includes("prom-client")) return "metrics";
  if (source.includes("node_modules/pino")) return "trace and logs";
  if (/impl\/runtime\/(framing|binary-codec)\.ts$/.test(source)) return "peer frames and codec";
  if (/impl\/runtime\/(transport|peer-tls|peer-admission)\.ts$/.test(source)) return "peer transport";
  if (/impl\/runtime\/(http-api|admission|access|tokens)\.ts$/.test(source)) return "HTTP API";
  if (/impl\/runtime\/(storage|storage-worker)\.ts$/.test(source)) return "record encode and checksum";
  if (/impl\/runtime\/storage-thread\.ts$/.test(source)) return "storage thread hand-over";
  if (/impl\/runtime\/driver\.ts$/.test(source)) return "driver";
  if (/impl\/runtime\/metrics\.ts$/.test(source)) return "metrics";
  if (/impl\/runtime\/(trace|log|log-limiter)\.ts$/.test(source)) return "trace and logs";
  if (/impl\/runtime\/clock\.ts$/.test(source)) return "timers and ticks";
  if (/impl\/runtime\/replica-main\.ts$/.test(source)) return "driver";
  if (/(impl\/core|spec)\//.test(source) || /impl\/runtime\/core-adapter\.ts$/.test(source)) return "step (impl/core)";
  return undefined;
}

/** The stage of a Node internal module (`node:...`); undefined when none. */
export function stageOfNode(url: string): Stage | undefined {
  if (url.startsWith("node:internal/crypto")) return "record encode and checksum";
  if (/^node:(internal\/)?_?http/.test(url) || url.startsWith("node:_http")) return "HTTP (Node)";
  if (/^node:(internal\/)?(net|stream_base_commons|streams\/|stream)/.test(url)) return "sockets (Node)";
  if (/^node:(internal\/)?(worker|event_target|per_context\/messageport)/.test(url)) return "storage thread hand-over";
  if (/^node:(internal\/)?timers/.test(url)) return "timers and ticks";
  if (/^node:internal\/(modules|bootstrap|main|vm)/.test(url)) return "start-up";
  return undefined;
}

/**
 * Busy time per stage (milliseconds), largest first, over the samples within [fromUs, toUs] of the profile's clock (all
 * when absent).
 */
export function summarizeStages(
  profile: CpuProfile,
  sourceOf: SourceOf,
  window?: { readonly fromUs: number; readonly toUs: number },
): { readonly busyMs: number; readonly stages: readonly { readonly stage: Stage; readonly ms: number }[] } {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const memo = new Map<number, Stage>();
  const stageOf = (id: number): Stage => {
    const known = memo.get(id);
    if (known !== undefined) return known;
    let stage: Stage = "other";
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at)!.callFrame;
      const found =
        nativeStages.get(frame.functionName) ??
        (frame.url.startsWith("node:") ? stageOfNode(frame.url) : undefined) ??
        (frame.url === "" ? undefined : stageOfSource(sourceOf(frame.url, frame.lineNumber + 1) ?? frame.url));
      if (found !== undefined) {
        stage = found;
        break;
      }
    }
    memo.set(id, stage);
    return stage;
  };
  const totals = new Map<Stage, number>();
  let busyUs = 0;
  let t = profile.startTime;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    t += delta;
    if (window !== undefined && (t < window.fromUs || t > window.toUs)) return;
    const node = byId.get(id);
    if (node === undefined) return;
    const name = node.callFrame.functionName;
    if (name === "(idle)" || name === "(root)") return;
    busyUs += delta;
    const stage = name === "(program)" ? "(program): native, unattributed" : stageOf(id);
    totals.set(stage, (totals.get(stage) ?? 0) + delta);
  });
  const stages = [...totals].map(([stage, us]) => ({ stage, ms: us / 1000 })).sort((a, b) => b.ms - a.ms);
  return { busyMs: busyUs / 1000, stages };
}

/**
 * A {@link SourceOf} for esbuild bundles (not minified): the last `// path` marker line at or above the frame's line.
 */
export function bundleSources(read: (file: string) => string | undefined): SourceOf {
  const markers = new Map<string, { line: number; source: string }[]>();
  return (url, line) => {
    if (!url.startsWith("file://")) return undefined;
    let list = markers.get(url);
    if (list === undefined) {
      list = [];
      const text = read(new URL(url).pathname);
      (text ?? "").split("\n").forEach((l, i) => {
        const m = /^\/\/ ((?:impl|spec|node_modules)\/\S+)$/.exec(l);
        if (m !== null) list!.push({ line: i + 1, source: m[1]! });
      });
      markers.set(url, list);
    }
    let found: string | undefined;
    for (const marker of list) {
      if (marker.line > line) break;
      found = marker.source;
    }
    return found;
  };
}

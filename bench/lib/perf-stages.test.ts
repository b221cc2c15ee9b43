import { describe, expect, it } from "vitest";
import { bundleSources, summarizeStages, type CpuProfile } from "./cpuprofile.ts";
import { perfStages } from "./perf-stages.ts";

const bundle = [
  "// impl/runtime/driver.ts",
  "function handleBatch() {}",
  "// impl/core/replica.ts",
  "function step() {}",
  "// impl/runtime/storage.ts",
  "function write() {}",
].join("\n");
const sourceOf = bundleSources((file) => (file === "/dist/chunk.mjs" ? bundle : undefined));

describe("bundleSources", () => {
  it("maps a line of the bundle to the source file whose marker is above it", () => {
    expect(sourceOf("file:///dist/chunk.mjs", 2)).toBe("impl/runtime/driver.ts");
    expect(sourceOf("file:///dist/chunk.mjs", 4)).toBe("impl/core/replica.ts");
    expect(sourceOf("file:///dist/other.mjs", 4)).toBeUndefined();
    expect(sourceOf("node:internal/timers", 4)).toBeUndefined();
  });
});

describe("perfStages", () => {
  // Two samples on the main thread (pid 10), two on the storage thread (tid 11).
  const script = [
    "    10/10      1000 ",
    "\t          1 Builtins_LoadIC (/usr/bin/node)",
    "\t          2 JS:*step file:///dist/chunk.mjs:4:10 (/tmp/perf-10.map)",
    "\t          3 JS:*handleBatch file:///dist/chunk.mjs:2:1 (/tmp/perf-10.map)",
    "",
    "    10/10      3000 ",
    "\t          4 tcp_sendmsg ([kernel.kallsyms])",
    "\t          5 __x64_sys_writev ([kernel.kallsyms])",
    "\t          6 JS:*handleBatch file:///dist/chunk.mjs:2:1 (/tmp/perf-10.map)",
    "",
    "    10/11      5000 ",
    "\t          7 ext4_sync_file ([kernel.kallsyms])",
    "\t          8 __x64_sys_fdatasync ([kernel.kallsyms])",
    "\t          9 fdatasync (/usr/lib/x86_64-linux-gnu/libc.so.6)",
    "",
    "    10/11      7000 ",
    "\t          a sqlite3VdbeExec (/work/node_modules/better-sqlite3/build/Release/better_sqlite3.node)",
    "\t          b JS:*write file:///dist/chunk.mjs:6:1 (/tmp/perf-10.map)",
    "",
    "    10/12      2000 ",
    "\t          c v8::internal::compiler::GraphReducer::ReduceTop (/usr/bin/node)",
    "",
  ].join("\n");

  it("attributes each sample to the first frame that names a stage, by thread kind", () => {
    const { byThread } = perfStages(script, sourceOf);
    expect(Object.fromEntries(byThread.get("main")!)).toEqual({
      "step (impl/core)": 1000,
      "kernel: socket and pipe writes": 3000,
    });
    expect(Object.fromEntries(byThread.get("storage")!)).toEqual({ "kernel: fsync": 5000, SQLite: 7000 });
    expect(Object.fromEntries(byThread.get("V8 and libuv helpers")!)).toEqual({ "V8 compiler (JIT)": 2000 });
  });
});

describe("summarizeStages", () => {
  it("sums busy time by stage within the window, idle excluded", () => {
    const frame = (functionName: string, url = "", lineNumber = 0) => ({ functionName, url, lineNumber });
    const profile: CpuProfile = {
      nodes: [
        { id: 1, callFrame: frame("(root)"), children: [2, 3, 5] },
        { id: 2, callFrame: frame("handleBatch", "file:///dist/chunk.mjs", 1), children: [4] },
        { id: 3, callFrame: frame("(idle)") },
        { id: 4, callFrame: frame("writev") },
        { id: 5, callFrame: frame("step", "file:///dist/chunk.mjs", 3) },
      ],
      samples: [2, 4, 3, 5, 5],
      timeDeltas: [100, 100, 100, 100, 100],
      startTime: 0,
      endTime: 500,
    };
    const all = summarizeStages(profile, sourceOf);
    expect(all.busyMs).toBeCloseTo(0.4);
    expect(Object.fromEntries(all.stages.map((s) => [s.stage, s.ms]))).toEqual({
      "step (impl/core)": 0.2,
      driver: 0.1,
      "sockets (Node)": 0.1,
    });
    const window = summarizeStages(profile, sourceOf, { fromUs: 150, toUs: 450 });
    expect(window.busyMs).toBeCloseTo(0.2);
  });
});

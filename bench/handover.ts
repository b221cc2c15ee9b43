/**
 * What one small append's hand-over to the storage thread costs in CPU, alone: the records a lone
 * write appends on each replica (its vote of a 100-byte put and the `chosen` record of the slot
 * before) appended through the storage thread (the compiled one, as replicas run it) one at a
 * time, each after the last was acknowledged and a pause, so that both threads are asleep when
 * the next comes, as at one client. It reports the process's CPU (every thread, from getrusage)
 * per append beyond what the same loop of pauses costs without appends, and the split between
 * the main thread and the others (from /proc, in clock ticks). The store is on /dev/shm when there
 * is one, so the fsync costs little and the hand-over is most of what is measured. Nothing here
 * asserts a number; `--json` prints every round.
 *
 * With `--bare`, the same loop without a store: a request of a vote's size posted to a thread that
 * does nothing but answer, the answer given one of three ways (`port`: a message, as the storage
 * thread answers now; `cell`: a counter in shared memory, Atomics.notify, and Atomics.waitAsync on
 * this side; `wait`: the same counter waited for in Atomics.wait, blocking this thread): what the
 * mechanism of a hand-over costs apart from the store's work.
 *
 *   npx tsx bench/handover.ts [--appends 3000] [--gap-ms 1] [--rounds 3] [--bare port|cell|wait] [--json]
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { cliBundlePath } from "../impl/runtime/program.ts";
import type { KvRecord } from "../impl/runtime/core-adapter.ts";
import { StorageThread } from "../impl/runtime/storage-thread.ts";
import { benchFlags } from "./lib/flags.ts";
import { loadAverage } from "./lib/report.ts";

const usage = `usage: npx tsx bench/handover.ts [options]

The CPU of one small append through the storage thread (the compiled one, dist/storage-worker.mjs:
run 'npm run build' first): a lone write's vote and chosen record, appended one at a time with a
pause between, beyond the CPU of the pauses alone.

options:
  --appends N   appends measured per round (default 3000)
  --gap-ms MS   pause after each acknowledgement (default 1; 0: none, the next append at once)
  --rounds N    rounds, each on a fresh store (default 3)
  --bare HOW    no store: a thread that only answers, by HOW: port (a message), cell (a shared
                counter and Atomics.waitAsync here) or wait (the counter, Atomics.wait here)
  --json        print every round as JSON
  --help        print this help
`;
const flags = benchFlags(
  {
    appends: { type: "string", default: "3000" },
    "gap-ms": { type: "string", default: "1" },
    rounds: { type: "string", default: "3" },
    bare: { type: "string" },
    json: { type: "boolean", default: false },
  },
  usage,
);
const appends = Number(flags.appends);
const gapMs = Number(flags["gap-ms"]);
const rounds = Number(flags.rounds);
const workerModule = pathToFileURL(path.join(path.dirname(cliBundlePath), "storage-worker.mjs"));
const ticksPerSecond = 100;
const bare = flags.bare;
if (bare !== undefined && !["port", "cell", "wait"].includes(bare)) {
  console.error(`--bare must be port, cell or wait, not ${bare}\n\n${usage}`);
  process.exit(2);
}

/**
 * The answering thread of `--bare`: it sleeps in Atomics.wait on counter 1 (as the storage thread
 * does), takes each request off its port and answers by message, or by counters 4 and 3 and one
 * notify (as an append answered through the shared cell would be).
 */
const answerer = `
const { parentPort, workerData, receiveMessageOnPort } = require("node:worker_threads");
const { cell, how } = workerData;
for (;;) {
  const seen = Atomics.load(cell, 1);
  const next = receiveMessageOnPort(parentPort);
  if (next === undefined) { Atomics.wait(cell, 1, seen, 1000); continue; }
  const id = next.message.id;
  if (how === "port") parentPort.postMessage({ id, error: null, synced: id * 2 });
  else { Atomics.store(cell, 4, id * 2); Atomics.store(cell, 3, id); Atomics.notify(cell, 3); }
}`;

/** One append's round trip of `--bare`: post, wake the thread, and take its answer `how` it comes. */
function bareTrip(worker: Worker, cell: Int32Array, how: string, id: number): Promise<void> | undefined {
  const answered = Atomics.load(cell, 3);
  let settled: Promise<void> | undefined;
  if (how === "port") settled = new Promise((resolve) => worker.once("message", () => resolve()));
  worker.postMessage({ kind: "append", id, records: [vote(id), chosen(id - 1)], sync: false, staged: [] });
  Atomics.add(cell, 1, 1);
  Atomics.notify(cell, 1);
  if (how === "wait") {
    while (Atomics.load(cell, 3) === answered) Atomics.wait(cell, 3, answered, 100);
    return undefined;
  }
  if (how === "cell") {
    const result = Atomics.waitAsync(cell, 3, answered);
    settled = result.async ? result.value.then(() => undefined) : Promise.resolve();
  }
  return settled;
}

const vote = (slot: number): KvRecord => ({
  _tag: "vote",
  slot,
  ballot: { round: 3, replica: 1 },
  value: {
    _tag: "batch",
    commands: [
      { clientId: "bench-client-1", seq: slot, input: { _tag: "put", key: `k${slot % 64}`, value: "v".repeat(100) } },
    ],
  },
});
const chosen = (slot: number): KvRecord => ({ _tag: "chosen", slot, ballot: { round: 3, replica: 1 } });

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** User + system CPU of this process's main thread and of all its other threads, in microseconds (clock ticks). */
function threadCpu(): { main: number; others: number } {
  let main = 0;
  let others = 0;
  for (const tid of fs.readdirSync("/proc/self/task")) {
    const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const us = ((Number(fields[11]) + Number(fields[12])) * 1e6) / ticksPerSecond;
    if (Number(tid) === process.pid) main += us;
    else others += us;
  }
  return { main, others };
}

const cpuNow = (): number => {
  const { user, system } = process.cpuUsage();
  return user + system;
};

async function pausesOnly(): Promise<number> {
  const start = cpuNow();
  if (gapMs === 0) return 0;
  for (let i = 0; i < appends; i++) await sleep(gapMs);
  return (cpuNow() - start) / appends;
}

interface Round {
  readonly total: number;
  readonly main: number;
  readonly others: number;
  readonly pauses: number;
  readonly wallMs: number;
}

/** Time `count` appends made by `append` from `first` on, with the pauses, less the pauses' own CPU (`pauses`). */
async function timed(append: (slot: number) => Promise<void>, first: number, pauses: number): Promise<Round> {
  const wall = performance.now();
  const start = cpuNow();
  const threads = threadCpu();
  for (let slot = first; slot < first + appends; slot++) {
    await append(slot);
    if (gapMs > 0) await sleep(gapMs);
  }
  const total = (cpuNow() - start) / appends - pauses;
  const after = threadCpu();
  return {
    total,
    main: (after.main - threads.main) / appends - pauses,
    others: (after.others - threads.others) / appends,
    pauses,
    wallMs: performance.now() - wall,
  };
}

async function bareRound(how: string): Promise<Round> {
  // Shared counters as the storage thread's cell: [1] requests posted, [3] answered, [4] synced.
  const cell = new Int32Array(new SharedArrayBuffer(4 * 5));
  const worker = new Worker(answerer, { eval: true, workerData: { cell, how } });
  try {
    const append = async (slot: number): Promise<void> => {
      await bareTrip(worker, cell, how, slot);
    };
    for (let slot = 1; slot <= 1000; slot++) await append(slot);
    return await timed(append, 1001, await pausesOnly());
  } finally {
    await worker.terminate();
  }
}

async function round(): Promise<Round> {
  if (bare !== undefined) return bareRound(bare);
  const base = fs.existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir();
  const dir = fs.mkdtempSync(path.join(base, "paxos-lease-handover-"));
  try {
    const { storage } = StorageThread.open({
      dir: path.join(dir, "r1"),
      clusterId: "c1",
      replicaId: 1,
      create: true,
      workerModule,
    });
    const append = (slot: number): Promise<Error | null> =>
      new Promise((resolve) => storage.appendAsync([vote(slot), chosen(slot - 1)], resolve));
    // Warm: the code on both threads compiled.
    for (let slot = 1; slot <= 1000; slot++) await append(slot);
    const checked = async (slot: number): Promise<void> => {
      const error = await append(slot);
      if (error !== null) throw error;
    };
    const result = await timed(checked, 1001, await pausesOnly());
    storage.close();
    return result;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// The storage thread keeps no process alive (replicas have their servers): this timer does, meanwhile.
const keepAlive = setInterval(() => undefined, 1000);
const results = [];
for (let r = 0; r < rounds; r++) {
  const load = loadAverage();
  const result = await round();
  results.push({ ...result, load });
  if (!flags.json)
    console.log(
      `round ${r + 1}: ${result.total.toFixed(1)} us of CPU per append beyond the pauses (${result.pauses.toFixed(1)} us each): ` +
        `main thread ${result.main.toFixed(0)}, other threads ${result.others.toFixed(0)} (clock ticks); ` +
        `${((result.wallMs / appends) * 1000).toFixed(0)} us per append and pause; load ${load}`,
    );
}
clearInterval(keepAlive);
if (flags.json) console.log(JSON.stringify(results, null, 2));

/**
 * What writing one snapshot costs a replica process in memory: a key-value state like the one
 * `npm run bench:burst` leaves (40 keys of 1 MiB and 64 of 64 KiB, 44 MiB), snapshotted by the
 * core and appended through the storage thread as a replica does (serialized in slices on the main
 * thread, digested, encoded and written to SQLite on the storage thread). It samples the process's
 * RSS every 5 ms and reports the peak above the RSS before the append, the time to durable, and the
 * process's CPU (every thread). Nothing here asserts a number; `--json` prints every repeat.
 *
 *   npx tsx bench/snapshot-write.ts -- [--repeats 3] [--mib 40] [--json]
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { kv } from "../spec/kv.ts";
import { parseConfig } from "../impl/core/config.ts";
import { makeSnapshot, serializationOf, snapshotRecord } from "../impl/core/snapshot.ts";
import { makeContext } from "../impl/core/state.ts";
import { cliBundlePath } from "../impl/runtime/program.ts";
import { StorageThread } from "../impl/runtime/storage-thread.ts";
import { benchFlags } from "./lib/flags.ts";
import { loadAverage, progressOf } from "./lib/report.ts";

const usage = `usage: npx tsx bench/snapshot-write.ts [options]

One snapshot of a key-value state (N keys of 1 MiB and 64 of 64 KiB) appended through the storage
thread (the compiled one, dist/storage-worker.mjs: run 'npm run build' first), with the process's
RSS sampled every 5 ms: the peak above the RSS before the append, and the time until durable.

options:
  --repeats N    snapshots written, each into a fresh store (default 3)
  --mib N        keys of 1 MiB in the state (default 40)
  --dist DIR     take the storage thread from DIR/storage-worker.mjs (a copy of another build's
                 dist/, to compare builds turn by turn; default: this checkout's dist/)
  --json         print every repeat as JSON
  --help         print this help
`;
const flags = benchFlags(
  {
    repeats: { type: "string", default: "3" },
    mib: { type: "string", default: "40" },
    dist: { type: "string" },
    json: { type: "boolean", default: false },
  },
  usage,
);
const repeats = Number(flags.repeats);
const mib = Number(flags.mib);
if (
  !(Number.isInteger(repeats) && repeats >= 1 && repeats <= 50) ||
  !(Number.isInteger(mib) && mib >= 0 && mib <= 512)
) {
  process.stderr.write(usage);
  process.exit(2);
}
const progress = progressOf("snapshot-write");
const MiB = 1024 * 1024;
const workerModule = pathToFileURL(path.resolve(flags.dist ?? path.dirname(cliBundlePath), "storage-worker.mjs"));
if (!fs.existsSync(workerModule)) {
  process.stderr.write(`bench/snapshot-write: ${workerModule.pathname} is missing: run 'npm run build'\n`);
  process.exit(2);
}

const ctx = makeContext(parseConfig({ members: [1, 2, 3], self: 1 }), kv);
let service = ctx.service.start;
let seq = 0;
const put = (key: string, bytes: number): void => {
  seq += 1;
  const value = `${key}:`.padEnd(bytes, "abcdefghijklmnopqrstuvwxyz0123456789");
  service = ctx.service.apply({ clientId: "c", seq, input: { _tag: "put", key, value } }, service).state;
};
for (let i = 0; i < mib; i++) put(`burst-${i}`, MiB);
for (let i = 0; i < 64; i++) put(`stream-${i}`, 64 * 1024);

interface Repeat {
  readonly rssBeforeMb: number;
  readonly peakAboveMb: number;
  readonly durableMs: number;
  /** CPU of the whole process (both threads) from the append to durable. */
  readonly cpuMs: number;
  readonly stateMb: number;
}

async function once(n: number): Promise<Repeat> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "paxos-lease-snapshot-write-"));
  try {
    const opened = StorageThread.open({
      dir: path.join(root, "r1"),
      clusterId: "c1",
      replicaId: 1,
      create: true,
      workerModule,
    });
    globalThis.gc?.();
    await new Promise((resolve) => setTimeout(resolve, 200));
    const before = process.memoryUsage.rss();
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 5);
    const contents = {
      slot: 1000 + n,
      service,
      outputDigestA: 1,
      outputDigestB: 2,
      configs: [ctx.initial],
      checkpoints: [],
    };
    const info = makeSnapshot(ctx, contents);
    const record = snapshotRecord(info, { round: 1, replica: 1 }, info.slot);
    const started = performance.now();
    const cpu = process.cpuUsage();
    const error = await new Promise<Error | null>((resolve) => opened.storage.appendAsync([record], resolve));
    const durableMs = performance.now() - started;
    const used = process.cpuUsage(cpu);
    // A last look after the acknowledgement: the storage thread's memory may still be held.
    await new Promise((resolve) => setTimeout(resolve, 50));
    clearInterval(sampler);
    if (error !== null) throw error;
    opened.storage.close();
    return {
      rssBeforeMb: before / MiB,
      peakAboveMb: (peak - before) / MiB,
      durableMs,
      cpuMs: (used.user + used.system) / 1000,
      // Its size from the serialization, not by reading `data`, which would join and keep the whole.
      stateMb: (serializationOf(record)?.bytes ?? 0) / MiB,
    };
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

const results: Repeat[] = [];
progress(`state of ${mib} x 1 MiB and 64 x 64 KiB; load ${loadAverage()}`);
for (let n = 0; n < repeats; n++) {
  const r = await once(n);
  results.push(r);
  progress(
    `repeat ${n + 1}: snapshot ${r.stateMb.toFixed(1)} MiB, RSS before ${r.rssBeforeMb.toFixed(0)} MB, peak +${r.peakAboveMb.toFixed(0)} MB, durable after ${r.durableMs.toFixed(0)} ms, process CPU ${r.cpuMs.toFixed(0)} ms (load ${loadAverage()})`,
  );
}
if (flags.json) process.stdout.write(`${JSON.stringify({ mib, load: loadAverage(), results }, null, 2)}\n`);

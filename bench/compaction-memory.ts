/**
 * What compacting a snapshot interval's records costs a store's memory, without a cluster: one
 * store (impl/runtime/storage.ts, the record codec's bytes, as a replica's storage thread opens
 * it) in this thread, a vote of a batch of 100-byte puts and a `chosen` record naming it per slot,
 * written in groups and synced as the storage thread does, and a snapshot record every `--interval`
 * slots, after whose fsync the store compacts. After each compaction: a garbage collection, then
 * the process's RSS and peak, the V8 heap, and the compaction's time and rows deleted
 * (docs/performance.md, "Compaction in pieces"). Nothing here asserts a number.
 *
 *   node --expose-gc --import tsx bench/compaction-memory.ts [--interval 8192] [--snapshots 8]
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { compactRecords } from "../impl/core/index.ts";
import { kvCodecs, kvRecordBinary, kvRecordKey, type KvRecord } from "../impl/runtime/core-adapter.ts";
import { Storage } from "../impl/runtime/storage.ts";
import { benchFlags } from "./lib/flags.ts";
import { loadAverage } from "./lib/report.ts";

const usage = `usage: node --expose-gc --import tsx bench/compaction-memory.ts [options]

One store in this thread: a vote and a chosen record per slot, a snapshot record every interval,
and after each compaction the process's RSS, its V8 heap, and the compaction's time.

options:
  --interval N   slots between snapshot records (default 8192)
  --snapshots N  snapshot records to write (default 8)
  --commands N   puts of 100 bytes in each slot's batch (default 1)
  --group N      slots written per fsync, as a storage thread's group (default 64)
  --held         collect garbage each time compaction decides a piece, and report the most it
                 held then (its time then counts the collections)
  --pieces N     compact as the storage thread does, between groups (storage.ts, compactSome):
                 pieces of N rows decided one call at a time, then the deletion in one call; report
                 the CPU of the longest call of a piece and of the deletion
  --help         print this help
`;
const flags = benchFlags(
  {
    interval: { type: "string", default: "8192" },
    snapshots: { type: "string", default: "8" },
    commands: { type: "string", default: "1" },
    group: { type: "string", default: "64" },
    held: { type: "boolean", default: false },
    pieces: { type: "string" },
  },
  usage,
);
const interval = Number(flags.interval);
const snapshots = Number(flags.snapshots);
const commands = Number(flags.commands);
const group = Number(flags.group);
const pieces = flags.pieces === undefined ? undefined : Number(flags.pieces);
const gc = (globalThis as { gc?: () => void }).gc;
if (
  ![interval, snapshots, commands, group, pieces ?? 1].every((n) => Number.isInteger(n) && n >= 1) ||
  gc === undefined
) {
  process.stderr.write(gc === undefined ? `run with node --expose-gc\n${usage}` : usage);
  process.exit(2);
}

const mb = (bytes: number): string => (bytes / 1e6).toFixed(1);
function peakRss(): string {
  const status = fs.readFileSync("/proc/self/status", "utf8");
  const kb = /VmHWM:\s+(\d+) kB/.exec(status);
  return kb === null ? "?" : (Number(kb[1]) / 1000).toFixed(1);
}

/** The heap and external memory before the compaction, and the most above it while `keep` ran. */
let held = 0;
let live = 0;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "compaction-memory-"));
const { storage } = Storage.open<KvRecord>({
  dir,
  clusterId: "bench",
  replicaId: 1,
  codec: kvCodecs.record,
  binary: kvRecordBinary,
  create: true,
  keyOf: kvRecordKey,
  compaction: {
    after: (r) => r._tag === "snapshot",
    keep: (summaries) => {
      // What the compaction holds while it decides (a piece's rows, or all of them): after a collection.
      if (flags.held) {
        gc();
        const m = process.memoryUsage();
        live = Math.max(live, m.heapUsed + m.external - held);
      }
      return compactRecords(summaries);
    },
    ...(pieces === undefined ? {} : { pieceRows: pieces }),
  },
});
/** CPU milliseconds (user + system) of `run`, this process's: the bench is one thread. */
function cpuMs<T>(run: () => T): [T, number] {
  const start = process.cpuUsage();
  const result = run();
  const used = process.cpuUsage(start);
  return [result, (used.user + used.system) / 1000];
}
const ballot = { round: 1, replica: 1 };
const value = (slot: number): KvRecord & { _tag: "vote" } => ({
  _tag: "vote",
  slot,
  ballot,
  value: {
    _tag: "batch",
    commands: Array.from({ length: commands }, (_, i) => ({
      input: { _tag: "put" as const, key: `k${(slot * commands + i) % 10_000}`, value: "v".repeat(100) },
    })),
  },
});
const state = "s".repeat(64 * 1024);

console.log(
  `interval ${interval} slots, ${commands} command(s) a slot, groups of ${group}; load ${loadAverage()}; node ${process.version}`,
);
console.log(`start: RSS ${mb(process.memoryUsage.rss())} MB`);
console.log(
  "snapshot slot | deleted | compaction ms | compaction CPU ms | longest piece CPU ms | deletion CPU ms | RSS before it MB | held while deciding MB | heap and external grown by it MB | RSS right after MB | RSS after a GC MB | peak MB | heap used MB | external MB",
);
let slot = 0;
for (let s = 1; s <= snapshots; s++) {
  let deleted = 0;
  let ms = 0;
  let cpu = 0;
  let longestPiece = 0;
  let deletion = 0;
  let before = 0;
  let grown = 0;
  let rssRightAfter = 0;
  live = 0;
  while (slot < s * interval) {
    const records: KvRecord[] = [];
    for (let i = 0; i < group && slot < s * interval; i++) {
      slot += 1;
      records.push(value(slot), { _tag: "chosen", slot, ballot });
    }
    if (slot === s * interval)
      records.push({
        _tag: "snapshot",
        slot,
        digest: `d${slot}`,
        contentDigest: `c${slot}`,
        maxBal: ballot,
        // The core keeps the log since the snapshot before last (impl/core/learner.ts).
        logTruncatedUpTo: Math.max(0, slot - interval),
        data: state,
      });
    storage.write(records);
    storage.sync();
    if (slot === s * interval) {
      gc();
      const m = process.memoryUsage();
      before = m.rss;
      held = m.heapUsed + m.external;
    }
    const started = performance.now();
    let n = 0;
    if (pieces === undefined) {
      const [whole, used] = cpuMs(() => storage.compactDue());
      n = whole;
      if (n > 0) cpu += used;
    } else if (storage.compacting) {
      // Every call decides a piece but the last, which deletes (its count is not returned).
      for (let more = true; more;) {
        const [left, used] = cpuMs(() => storage.compactSome());
        more = left;
        cpu += used;
        if (more) longestPiece = Math.max(longestPiece, used);
        else deletion = used;
      }
      n = Number.NaN;
    }
    if (n > 0 || Number.isNaN(n)) {
      deleted += n;
      ms += performance.now() - started;
      // Before any collection: what the compaction allocated and still held at its end.
      const m = process.memoryUsage();
      grown = Math.max(grown, m.heapUsed + m.external - held);
      rssRightAfter = Math.max(rssRightAfter, m.rss);
    }
    storage.checkpointDue();
  }
  gc();
  const m = process.memoryUsage();
  console.log(
    `${slot} | ${Number.isNaN(deleted) ? "-" : deleted} | ${ms.toFixed(1)} | ${cpu.toFixed(1)} | ${pieces === undefined ? "-" : longestPiece.toFixed(2)} | ${pieces === undefined ? "-" : deletion.toFixed(2)} | ${mb(before)} | ${mb(live)} | ${mb(grown)} | ${mb(rssRightAfter)} | ${mb(m.rss)} | ${peakRss()} | ${mb(m.heapUsed)} | ${mb(m.external)}`,
  );
}
storage.close();
fs.rmSync(dir, { recursive: true, force: true });
console.log(`load ${loadAverage()}`);

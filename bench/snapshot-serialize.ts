/**
 * The main thread's CPU for one snapshot of a small key-value state, as a replica spends it in
 * front of the next write: the core's `makeSnapshot` (the envelope, the store's entries sorted,
 * the state's digest) and the serialization of every slice (`SnapshotSerialization.advance` and
 * `takeChunks`, as impl/runtime/storage-thread.ts does it, 256 KiB a slice), in this process
 * alone (no storage thread: the CPU read is this thread's, give or take the collector's helpers).
 * The state is what `npm run bench` leaves: `--keys` keys of `--bytes`-byte values and the
 * sessions of `--clients` clients. A replica takes a snapshot every 1,024 slots, a second or two
 * apart, with other work between, so each snapshot here follows `--gap` ms of other work
 * (writes applied to the state, garbage made): the code runs as warm as it does in a replica.
 * Nothing here asserts a number.
 *
 *   npx tsx bench/snapshot-serialize.ts [--keys 1000] [--bytes 100] [--clients 64] [--snapshots 20] [--gap 300]
 */
import { kv } from "../spec/kv.ts";
import { parseConfig } from "../impl/core/config.ts";
import { makeSnapshot, serializationOf } from "../impl/core/snapshot.ts";
import { makeContext } from "../impl/core/state.ts";
import { benchFlags } from "./lib/flags.ts";
import { loadAverage, progressOf } from "./lib/report.ts";

const usage = `usage: npx tsx bench/snapshot-serialize.ts [options]

The main thread's CPU for one snapshot of a small key-value state (the core's making of it and the
serialization of its slices), each after some other work, as in a replica.

options:
  --keys N        distinct keys in the state (default 1000, as npm run bench)
  --bytes N       bytes of each value (default 100)
  --clients N     clients whose sessions the state holds (default 64)
  --snapshots N   snapshots measured (default 20)
  --gap MS        milliseconds of other work before each snapshot (default 300)
  --json          print every snapshot's figures as JSON
  --help          print this help
`;
const flags = benchFlags(
  {
    keys: { type: "string", default: "1000" },
    bytes: { type: "string", default: "100" },
    clients: { type: "string", default: "64" },
    snapshots: { type: "string", default: "20" },
    gap: { type: "string", default: "300" },
    json: { type: "boolean", default: false },
  },
  usage,
);
const keys = Number(flags.keys);
const bytes = Number(flags.bytes);
const clients = Number(flags.clients);
const snapshots = Number(flags.snapshots);
const gapMs = Number(flags.gap);
if (
  ![keys, bytes, clients, snapshots].every((n) => Number.isInteger(n) && n >= 1) ||
  !(Number.isFinite(gapMs) && gapMs >= 0)
) {
  process.stderr.write(usage);
  process.exit(2);
}
const progress = progressOf("snapshot-serialize");
const sliceChars = 256 * 1024;

const ctx = makeContext(parseConfig({ members: [1, 2, 3], self: 1 }), kv);
let service = ctx.service.start;
let written = 0;
const write = (): void => {
  written += 1;
  const key = `k${(written * 104729) % keys}`;
  const value = `v${written}`.padEnd(bytes, "abcdefghijklmnopqrstuvwxyz0123456789");
  const clientId = `client-${written % clients}`;
  service = ctx.service.apply({ clientId, seq: written, input: { _tag: "put", key, value } }, service).state;
};
for (let i = 0; i < Math.max(keys, clients) * 2; i++) write();

const cpuUs = (): number => {
  const used = process.cpuUsage();
  return used.user + used.system;
};

/** `gapMs` of other work: writes applied to the state, and their garbage. */
function otherWork(): void {
  const until = performance.now() + gapMs;
  let garbage: unknown[] = [];
  while (performance.now() < until) {
    for (let i = 0; i < 64; i++) write();
    garbage.push(new Array(256).fill(written));
    if (garbage.length > 512) garbage = [];
  }
}

interface One {
  readonly makeUs: number;
  readonly slicesUs: number;
  readonly bytes: number;
}
const results: One[] = [];
progress(`${keys} keys of ${bytes} bytes, ${clients} clients; load ${loadAverage()}`);
for (let n = 0; n < snapshots; n++) {
  otherWork();
  const contents = {
    slot: 1024 * (n + 1),
    service,
    outputDigestA: 1,
    outputDigestB: 2,
    configs: [ctx.initial],
    checkpoints: [],
  };
  const start = cpuUs();
  const info = makeSnapshot(ctx, contents);
  const made = cpuUs();
  const serialization = serializationOf(info)!;
  while (!serialization.complete) {
    serialization.advance(sliceChars);
    serialization.takeChunks();
  }
  const done = cpuUs();
  results.push({ makeUs: made - start, slicesUs: done - made, bytes: serialization.bytes });
}
const median = (values: readonly number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const summary = {
  keys,
  bytes,
  clients,
  gapMs,
  load: loadAverage(),
  snapshotBytes: results.at(-1)!.bytes,
  makeUsMedian: median(results.map((r) => r.makeUs)),
  slicesUsMedian: median(results.map((r) => r.slicesUs)),
  totalUsMedian: median(results.map((r) => r.makeUs + r.slicesUs)),
  totalUsMax: Math.max(...results.map((r) => r.makeUs + r.slicesUs)),
};
if (flags.json) process.stdout.write(`${JSON.stringify({ ...summary, results }, null, 2)}\n`);
else
  process.stdout.write(
    `${snapshots} snapshots of ${summary.snapshotBytes} bytes: the main thread's CPU per snapshot, median ${summary.totalUsMedian} us (making ${summary.makeUsMedian}, slices ${summary.slicesUsMedian}), most ${summary.totalUsMax}; load ${summary.load}\n`,
  );

/**
 * Where the CPU of one 1 MiB write goes, stage by stage, in one process: the leader parses the
 * HTTP body, executes the put (the store's digest hashes the value), encodes its vote record (JSON
 * and the SHA-256 checksum storage keeps per record) and the Accept for its two peers; each
 * follower decodes the Accept. Each stage is timed in CPU time (process.cpuUsage), which other
 * processes on a loaded machine do not inflate the way they inflate wall-clock time, and the
 * stages that changed are also run as they were before (the digests' FNV-1a lanes over the whole
 * value, against SHA-256 of long values; one JSON
 * encoding per peer; JSON parsed and then decoded by the Schema instead of the binary peer codec),
 * side by side in the same run. A vote record is also stored as a replica's storage thread stores
 * it (the real store in a temporary directory, one transaction, no fsync), as JSON text and as the
 * record codec's bytes, the two taking turns round by round. The last lines are the same codecs on
 * small messages (an Accept of a 100-byte put and its Accepted), per thousand messages: the cost
 * that counts with many writers.
 *
 *   npx tsx bench/large-write.ts [--mib 1] [--rounds 20] [--json]
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { kv } from "../spec/kv.ts";
import { serviceOf } from "../spec/service.ts";
import { binaryCodec } from "../impl/runtime/binary-codec.ts";
import {
  kvCodecs,
  kvMessageSchema,
  kvRecordBinary,
  kvReplicated,
  type KvMessage,
  type KvRecord,
} from "../impl/runtime/core-adapter.ts";
import { encodeFrame, parseJson } from "../impl/runtime/framing.ts";
import { recordChecksum, Storage } from "../impl/runtime/storage.ts";
import { benchFlags, refuseFlags } from "./lib/flags.ts";
import { loadAverage } from "./lib/report.ts";

const usage = "usage: npx tsx bench/large-write.ts [--mib 1] [--rounds 20] [--json] [--help]\n";
const flags = benchFlags(
  {
    mib: { type: "string", default: "1" },
    rounds: { type: "string", default: "20" },
    json: { type: "boolean", default: false },
  },
  usage,
);
const mib = Number(flags.mib);
const rounds = Number(flags.rounds);
if (!(mib > 0) || !(Number.isInteger(rounds) && rounds >= 1))
  refuseFlags("--mib must be above 0, --rounds at least 1", usage);
const length = Math.round(mib * 1024 * 1024);

/** CPU milliseconds per call of `run`, the median of `rounds` calls after one warm-up call. */
function cpuMs(run: (i: number) => unknown): number {
  run(-1);
  const samples: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const before = process.cpuUsage();
    run(i);
    const used = process.cpuUsage(before);
    samples.push((used.user + used.system) / 1000);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)]!;
}

/** {@link cpuMs} of two ways of doing one thing, taking turns round by round (so both see the same load). */
function cpuMsPair(a: (i: number) => unknown, b: (i: number) => unknown): [number, number] {
  a(-1);
  b(-1);
  const samples: [number[], number[]] = [[], []];
  for (let i = 0; i < rounds; i++)
    [a, b].forEach((run, k) => {
      const before = process.cpuUsage();
      run(i);
      const used = process.cpuUsage(before);
      samples[k]!.push((used.user + used.system) / 1000);
    });
  const median = (xs: number[]): number => xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  return [median(samples[0]), median(samples[1])];
}

// Values as the HTTP layer produces them: flat strings out of JSON.parse, a different one per round.
const bodies = Array.from({ length: rounds + 2 }, (_, i) => JSON.stringify({ value: `${i}:`.padEnd(length, "abc") }));
const values = bodies.map((b) => (JSON.parse(b) as { value: string }).value);
const valueOf = (i: number): string => values[(i + 2) % values.length]!;
const ballot = { round: 3, replica: 1 };
const batchOf = (i: number) => ({
  _tag: "batch" as const,
  commands: [{ input: { _tag: "put" as const, key: "k", value: valueOf(i) } }],
});
const accept = (i: number): KvMessage => ({
  _tag: "Accept",
  ballot,
  slot: 7,
  value: batchOf(i),
  commitIndex: 6,
  sentAt: 1,
});
const vote = (i: number): KvRecord => ({ _tag: "vote", slot: 7, ballot, value: batchOf(i) });

/**
 * The put as every replica executes it, through the service (the command's digest and the store's
 * entry hash): in the digest format before (the FNV-1a lanes over every character, `kv`) and in
 * the replicas' (`sha256`, long values hashed by node:crypto), taking turns.
 */
const services = [serviceOf(kv), serviceOf(kvReplicated)];
const serviceStates = services.map((s) => s.start);
const putThrough = (k: number, i: number): void => {
  const input = { _tag: "put" as const, key: "k", value: valueOf(i) };
  serviceStates[k] = services[k]!.apply({ clientId: "c", seq: i + 2, input }, serviceStates[k]!).state;
};
const [putFnv, putSha256] = cpuMsPair(
  (i) => putThrough(0, i),
  (i) => putThrough(1, i),
);
const frames = Array.from({ length: rounds + 1 }, (_, i) =>
  encodeFrame(Buffer.from(JSON.stringify({ _tag: "msg", id: i, m: accept(i - 1) }), "utf8"), 1 << 26),
);

const binary = binaryCodec(kvMessageSchema);
const binaryFrames = Array.from({ length: rounds + 1 }, (_, i) => binary.encode(accept(i - 1)));
const smallAccepts: KvMessage[] = Array.from({ length: 1000 }, (_, i) => ({
  _tag: "Accept",
  ballot,
  slot: 100 + i,
  value: {
    _tag: "batch",
    commands: [
      { clientId: `client-${i % 16}`, seq: i, input: { _tag: "put", key: `key-${i}`, value: "v".repeat(100) } },
    ],
  },
  commitIndex: 99 + i,
  sentAt: 1234.5 + i,
}));
const smallAccepted: KvMessage[] = smallAccepts.map((_, i) => ({
  _tag: "Accepted",
  ballot,
  slot: 100 + i,
  sentAt: 1234.5 + i,
}));
const small = [...smallAccepts, ...smallAccepted];
const smallJson = small.map((m) => Buffer.from(JSON.stringify(kvCodecs.message.encodeValue(m)), "utf8"));
const smallBinary = small.map((m) => binary.encode(m));
const decodeJson = (bytes: Buffer): unknown => {
  const parsed = parseJson(bytes);
  if (parsed._tag === "Left") throw new Error(parsed.left);
  return kvCodecs.message.decodeValue(parsed.right);
};

/** A store as a replica opens it, with its records as JSON text or as the record codec's bytes. */
const storeDir = fs.mkdtempSync(path.join(os.tmpdir(), "paxos-lease-large-write-"));
const stores = [false, true].map(
  (binary, i) =>
    Storage.open<KvRecord>({
      dir: path.join(storeDir, String(i)),
      clusterId: "bench",
      replicaId: 1,
      codec: kvCodecs.record,
      create: true,
      ...(binary ? { binary: kvRecordBinary } : {}),
    }).storage,
);
const [storedJson, storedBytes] = cpuMsPair(
  (i) => stores[0]!.write([vote(i)]),
  (i) => stores[1]!.write([vote(i)]),
);
for (const store of stores) store.close();
fs.rmSync(storeDir, { recursive: true, force: true });

const stages: { stage: string; cpuMs: number; note?: string }[] = [
  {
    stage: "leader: HTTP body to value (UTF-8, JSON.parse)",
    cpuMs: cpuMs((i) => JSON.parse(Buffer.from(bodies[(i + 2) % bodies.length]!).toString("utf8"))),
  },
  {
    stage: "leader and followers: execute the put, digests by FNV-1a lanes (format before)",
    cpuMs: putFnv,
    note: "before",
  },
  {
    stage: "leader and followers: execute the put, long values by SHA-256 (format sha256), now",
    cpuMs: putSha256,
    note: "now",
  },
  {
    stage: "every replica: vote record to JSON and its SHA-256 checksum",
    cpuMs: cpuMs((i) => {
      const body = JSON.stringify(kvCodecs.record.encodeValue(vote(i)));
      return recordChecksum(7, "vote", body);
    }),
  },
  {
    stage: "every replica: the vote record stored as JSON text (storage thread, SQLite, no fsync)",
    cpuMs: storedJson,
    note: "before",
  },
  {
    stage: "every replica: the vote record stored as the record codec's bytes, now",
    cpuMs: storedBytes,
    note: "now",
  },
  {
    stage: "leader: the Accept for two peers, as before (encoded per peer)",
    cpuMs: cpuMs((i) => {
      for (const id of [1, 2])
        encodeFrame(
          Buffer.from(JSON.stringify({ _tag: "msg", id, m: kvCodecs.message.encodeValue(accept(i)) }), "utf8"),
          1 << 26,
        );
    }),
    note: "before",
  },
  {
    stage: "leader: the Accept for two peers, encoded once as JSON",
    cpuMs: cpuMs((i) => {
      const encoded = Buffer.from(JSON.stringify(kvCodecs.message.encodeValue(accept(i))), "utf8");
      let bytes = 0;
      for (const id of [1, 2]) bytes += Buffer.from(`{"_tag":"msg","id":${id},"m":`).length + encoded.length + 1;
      return bytes;
    }),
    note: "before",
  },
  {
    stage: "leader: the Accept for two peers, now (encoded once, binary codec)",
    cpuMs: cpuMs((i) => binary.encode(accept(i)).length),
    note: "now",
  },
  {
    stage: "follower: the Accept frame to a message, as before (UTF-8, JSON, Schema)",
    cpuMs: cpuMs((i) => {
      const parsed = parseJson(frames[i + 1]!.subarray(4));
      if (parsed._tag === "Left") throw new Error(parsed.left);
      return kvCodecs.message.decodeValue((parsed.right as { m: unknown }).m);
    }),
    note: "before",
  },
  {
    stage: "follower: the Accept frame to a message, now (binary codec, checked)",
    cpuMs: cpuMs((i) => binary.decode(binaryFrames[i + 1]!)),
    note: "now",
  },
  {
    stage: "1000 small Accepts and 1000 Accepteds: JSON encode (before)",
    cpuMs: cpuMs(() => small.map((m) => Buffer.from(JSON.stringify(kvCodecs.message.encodeValue(m)), "utf8"))),
    note: "before",
  },
  {
    stage: "1000 small Accepts and 1000 Accepteds: binary encode (now)",
    cpuMs: cpuMs(() => small.map((m) => binary.encode(m))),
    note: "now",
  },
  {
    stage: "1000 small Accepts and 1000 Accepteds: JSON parse + Schema decode (before)",
    cpuMs: cpuMs(() => smallJson.map(decodeJson)),
    note: "before",
  },
  {
    stage: "1000 small Accepts and 1000 Accepteds: binary decode, checked (now)",
    cpuMs: cpuMs(() => smallBinary.map((b) => binary.decode(b))),
    note: "now",
  },
];

if (flags.json) process.stdout.write(`${JSON.stringify({ mib, rounds, load: os.loadavg(), stages }, null, 2)}\n`);
else {
  process.stdout.write(`CPU ms per ${mib} MiB write, median of ${rounds}; load average ${loadAverage()}\n`);
  for (const s of stages) process.stdout.write(`${s.cpuMs.toFixed(2).padStart(8)}  ${s.stage}\n`);
}

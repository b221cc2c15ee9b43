/**
 * Storage: records survive reopening in order; a damaged or foreign data directory is refused
 * at open with an error naming the file (and the record) and what was wrong.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { Schema } from "effect";
import { afterEach, describe, expect, it } from "vitest";
import fc from "fast-check";
import { compactRecords, type RecordSummary } from "../core/index.ts";
import { snapshottingCluster } from "../core/testing/cluster.ts";
import { kvCodecs, kvRecordBinary, type KvRecord } from "./core-adapter.ts";
import { jsonCodec } from "./framing.ts";
import { cutPower, diskFaultsFromEnv } from "./disk-faults.ts";
import { cliArgv, projectRoot } from "./program.ts";
import {
  databaseFileName,
  EncodedRecord,
  recordChecksum,
  SplitRecord,
  StagedRecord,
  Storage,
  StorageError,
  summaryOfBinaryHead,
  summaryOfHead,
  walCheckpointBytes,
} from "./storage.ts";
import { createToken } from "./tokens.ts";

/** Running a replica as an unprivileged user (uid 65534) needs root, setpriv, and a checkout it can read. */
const nobody = ["--reuid=65534", "--regid=65534", "--clear-groups"];
const canRunAsNobody =
  process.getuid?.() === 0 &&
  spawnSync("setpriv", [...nobody, "test", "-r", path.join(projectRoot, "package.json")], { stdio: "ignore" })
    .status === 0;

const TestRecord = Schema.TaggedStruct("promise", { ballot: Schema.Int });
type TestRecord = typeof TestRecord.Type;
const codec = jsonCodec(TestRecord);
const dirs: string[] = [];

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "paxos-lease-storage-"));
  dirs.push(dir);
  return path.join(dir, "r1");
}

function open(dir: string, overrides: Partial<{ clusterId: string; replicaId: number; create: boolean }> = {}) {
  return Storage.open<TestRecord>({ dir, clusterId: "c1", replicaId: 1, codec, create: false, ...overrides });
}

function records(n: number): TestRecord[] {
  return Array.from({ length: n }, (_, i) => ({ _tag: "promise", ballot: i + 1 }));
}

/** Expect `open` to throw a "damaged" StorageError naming the file, whose message matches `pattern`. */
function expectRefusedBy(open: () => { storage: { close(): void } }, pattern: RegExp): void {
  let caught: unknown;
  try {
    open().storage.close();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(StorageError);
  expect((caught as StorageError).kind).toBe("damaged");
  expect((caught as StorageError).message).toContain(databaseFileName);
  expect((caught as StorageError).message).toMatch(pattern);
}

/** Open, then expect a StorageError of `kind` whose message matches `pattern`. */
function expectRefused(dir: string, kind: StorageError["kind"], pattern: RegExp, overrides = {}) {
  let caught: unknown;
  try {
    open(dir, overrides).storage.close();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(StorageError);
  const error = caught as StorageError;
  expect(error.kind).toBe(kind);
  expect(error.message).toContain(databaseFileName);
  expect(error.message).toMatch(pattern);
}

afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

describe("storage", () => {
  it("creates a fresh store only when asked, and keeps records in order across reopen", () => {
    const dir = tempDir();
    expectRefused(dir, "missing", /--init/);
    const first = open(dir, { create: true });
    expect(first.created).toBe(true);
    expect(first.records).toEqual([]);
    first.storage.append(records(3));
    first.storage.append([]);
    first.storage.append([{ _tag: "promise", ballot: 9 }]);
    first.storage.close();
    const second = open(dir);
    expect(second.created).toBe(false);
    expect(second.records.map((r) => r.ballot)).toEqual([1, 2, 3, 9]);
    expect(second.storage.recordCount).toBe(4);
    second.storage.close();
  });

  it("checksums a large body as it checksums a small one: SHA-256 of seq, kind and body", () => {
    for (const body of ["{}", `{"data":"${'é"x'.repeat(2 * 1024 * 1024)}"}`]) {
      const whole = createHash("sha256").update(`7\u0000snapshot\u0000${body}`).digest("hex").slice(0, 32);
      expect(recordChecksum(7, "snapshot", body)).toBe(whole);
    }
  });

  it("refuses a second process (or handle) on the same directory", () => {
    const dir = tempDir();
    const first = open(dir, { create: true });
    expectRefused(dir, "in-use", /another process/);
    first.storage.close();
  });

  it("refuses a directory of another cluster or another replica as foreign", () => {
    const dir = tempDir();
    open(dir, { create: true }).storage.close();
    expectRefused(dir, "foreign", /cluster "c1", not "c2"/, { clusterId: "c2" });
    expectRefused(dir, "foreign", /replica 1, not replica 2/, { replicaId: 2 });
  });

  it("refuses a file that is not a database, or another SQLite database", () => {
    const dir = tempDir();
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, databaseFileName), "this is not SQLite at all, just some text ".repeat(200));
    expectRefused(dir, "damaged", /not a usable SQLite database|cannot open/);
    const other = tempDir();
    fs.mkdirSync(other, { recursive: true });
    const db = new Database(path.join(other, databaseFileName));
    db.exec("CREATE TABLE t (x)");
    db.close();
    expectRefused(other, "foreign", /not a paxos-lease replica store/);
  });

  it("refuses a record whose body, checksum or Schema is wrong, naming the record", () => {
    const tamper = (sql: string): string => {
      const dir = tempDir();
      const opened = open(dir, { create: true });
      opened.storage.append(records(5));
      opened.storage.close();
      const db = new Database(path.join(dir, databaseFileName));
      db.exec(sql);
      db.close();
      return dir;
    };
    expectRefused(
      tamper(`UPDATE records SET body = '{"_tag":"promise","ballot":7}' WHERE seq = 3`),
      "damaged",
      /record 3 \(promise\) fails its checksum/,
    );
    expectRefused(tamper("DELETE FROM records WHERE seq = 2"), "damaged", /record 2 is missing/);
    expectRefused(
      tamper("UPDATE meta SET value = 'paxos-lease/storage@0' WHERE key = 'format'"),
      "damaged",
      /format version/,
    );
  });

  it("opens a store of the previous format and marks it as of this one, unless it fails to load", () => {
    const formatOf = (dir: string): unknown => {
      const db = new Database(path.join(dir, databaseFileName), { readonly: true });
      const format = db.prepare("SELECT value FROM meta WHERE key = 'format'").pluck().get();
      db.close();
      return format;
    };
    // A store of an older format (before @3, without the table of snapshot parts).
    const previous = (format: string, sql = ""): string => {
      const dir = tempDir();
      const opened = open(dir, { create: true });
      opened.storage.append(records(3));
      opened.storage.close();
      const db = new Database(path.join(dir, databaseFileName));
      const drop = format === "paxos-lease/storage@3" ? "" : "DROP TABLE snapshot_data;";
      db.exec(`UPDATE meta SET value = '${format}' WHERE key = 'format'; ${drop} ${sql}`);
      db.close();
      return dir;
    };
    for (const format of ["paxos-lease/storage@1", "paxos-lease/storage@2", "paxos-lease/storage@3"]) {
      const dir = previous(format);
      const opened = open(dir);
      expect(opened.records).toEqual(records(3));
      opened.storage.close();
      expect(formatOf(dir)).toBe("paxos-lease/storage@4");
      const damaged = previous(format, "DELETE FROM records WHERE seq = 2");
      expectRefused(damaged, "damaged", /record 2 is missing/);
      expect(formatOf(damaged)).toBe(format);
    }
  });

  it("refuses a record that has a valid checksum but does not match the record Schema", () => {
    const dir = tempDir();
    const Loose = Schema.TaggedStruct("promise", { ballot: Schema.Number });
    const opened = Storage.open({ dir, clusterId: "c1", replicaId: 1, codec: jsonCodec(Loose), create: true });
    opened.storage.append([{ _tag: "promise", ballot: 1.5 }]);
    opened.storage.close();
    expectRefused(dir, "damaged", /record 1 \(promise\) does not match the schema/);
  });

  it("stores records as the codec's bytes, and reads a store that mixes them with JSON rows written before", () => {
    const dir = tempDir();
    const value = "v".repeat(100_000);
    const vote: KvRecord = {
      _tag: "vote",
      slot: 2,
      ballot: { round: 1, replica: 1 },
      value: { _tag: "batch", commands: [{ input: { _tag: "put", key: "k", value } }] },
    };
    const promise: KvRecord = { _tag: "promise", ballot: { round: 1, replica: 1 } };
    const openAs = (binary: boolean, create = false) =>
      Storage.open<KvRecord>({
        dir,
        clusterId: "c1",
        replicaId: 1,
        codec: kvCodecs.record,
        create,
        ...(binary ? { binary: kvRecordBinary } : {}),
      });
    // A row of JSON text (as a store of @3 holds them), then a row of bytes.
    const first = openAs(false, true);
    first.storage.append([promise]);
    first.storage.close();
    const second = openAs(true);
    expect(second.records).toEqual([promise]);
    second.storage.append([vote]);
    second.storage.close();
    const db = new Database(path.join(dir, databaseFileName), { readonly: true });
    const rows = db.prepare("SELECT seq, typeof(body) AS type, length(body) AS bytes FROM records ORDER BY seq").all();
    db.close();
    expect(rows).toEqual([
      { seq: 1, type: "text", bytes: JSON.stringify(promise).length },
      { seq: 2, type: "blob", bytes: kvRecordBinary.encode(vote).length },
    ]);
    // The value's bytes as they are: no escaping, no JSON around them.
    expect(kvRecordBinary.encode(vote).length).toBeLessThan(value.length + 32);
    const reopened = openAs(true);
    expect(reopened.records).toEqual([promise, vote]);
    reopened.storage.close();
    // Each record's bytes are written into the buffer the one before used (SQLite copies what it
    // binds): records larger and smaller than the one before, in one transaction and in several.
    const sized = (slot: number, n: number): KvRecord => ({
      _tag: "vote",
      slot,
      ballot: { round: 1, replica: 1 },
      value: { _tag: "batch", commands: [{ input: { _tag: "put", key: "k", value: String(slot).repeat(n) } }] },
    });
    const more = [sized(3, 50_000), sized(4, 10), sized(5, 300_000), sized(6, 7)];
    const third = openAs(true);
    third.storage.append(more.slice(0, 3));
    third.storage.append(more.slice(3));
    third.storage.close();
    const all = openAs(true);
    expect(all.records).toEqual([promise, vote, ...more]);
    all.storage.close();
    // Bytes need their codec: a store opened without it refuses the row, naming it.
    expectRefusedBy(() => openAs(false), /record 2 \(vote\) is stored as bytes, and this store was opened without/);
  });

  it("stores a record that comes encoded as the row it would have written itself, found by its key", () => {
    const vote = (slot: number): KvRecord => ({
      _tag: "vote",
      slot,
      ballot: { round: 2, replica: 1 },
      value: { _tag: "batch", commands: [{ input: { _tag: "put", key: "k", value: "v".repeat(70_000 + slot) } }] },
    });
    const keyOf = (r: KvRecord): string | null => (r._tag === "vote" ? `vote ${r.slot}` : null);
    const rowsOf = (dir: string) => {
      const db = new Database(path.join(dir, databaseFileName), { readonly: true });
      const rows = db.prepare("SELECT seq, kind, body, checksum FROM records ORDER BY seq").all();
      db.close();
      return rows;
    };
    const [plainDir, encodedDir] = [tempDir(), tempDir()];
    const openAt = (dir: string, create = false, binary = true) =>
      Storage.open<KvRecord>({
        dir,
        clusterId: "c1",
        replicaId: 1,
        codec: kvCodecs.record,
        create,
        keyOf,
        ...(binary ? { binary: kvRecordBinary } : {}),
      });
    const votes = [vote(1), vote(2), vote(3)];
    const plain = openAt(plainDir, true);
    plain.storage.append(votes);
    plain.storage.close();
    const encoded = openAt(encodedDir, true);
    encoded.storage.append([
      new EncodedRecord(kvRecordBinary.encode(votes[0]!), "vote", "vote 1"),
      votes[1]!,
      new EncodedRecord(kvRecordBinary.encode(votes[2]!), "vote", "vote 3"),
    ]);
    expect(encoded.storage.readKeyed(["vote 3", "vote 1"])).toEqual([votes[2], votes[0]]);
    encoded.storage.close();
    // Byte for byte the rows (and checksums) the store writes when it encodes the records itself.
    expect(rowsOf(encodedDir)).toEqual(rowsOf(plainDir));
    const reopened = openAt(encodedDir);
    expect(reopened.records).toEqual(votes);
    reopened.storage.close();
    // Bytes need the store to know their codec, or they could never be read back.
    const jsonStore = openAt(tempDir(), true, false);
    expect(() => jsonStore.storage.append([new EncodedRecord(kvRecordBinary.encode(votes[0]!), "vote", null)])).toThrow(
      /an encoded record \(vote\) needs a store opened with the record codec/,
    );
    jsonStore.storage.close();
  });

  it("refuses a row of bytes that fails its checksum or does not decode, naming the record", () => {
    const vote: KvRecord = {
      _tag: "vote",
      slot: 5,
      ballot: { round: 2, replica: 3 },
      value: { _tag: "batch", commands: [{ input: { _tag: "put", key: "k", value: "x".repeat(1000) } }] },
    };
    const bytes = kvRecordBinary.encode(vote);
    const stored = (body: Buffer, checksum = recordChecksum(1, "vote", body)): string => {
      const dir = tempDir();
      const opened = Storage.open<KvRecord>({
        dir,
        clusterId: "c1",
        replicaId: 1,
        codec: kvCodecs.record,
        binary: kvRecordBinary,
        create: true,
      });
      opened.storage.append([vote]);
      opened.storage.close();
      const db = new Database(path.join(dir, databaseFileName));
      db.prepare("UPDATE records SET body = ?, checksum = ? WHERE seq = 1").run(body, checksum);
      db.close();
      return dir;
    };
    const openBinary = (dir: string) => () =>
      Storage.open<KvRecord>({ dir, clusterId: "c1", replicaId: 1, codec: kvCodecs.record, binary: kvRecordBinary });
    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 10] = flipped[flipped.length - 10]! ^ 0x01;
    expectRefusedBy(
      openBinary(stored(flipped, recordChecksum(1, "vote", bytes))),
      /record 1 \(vote\) fails its checksum/,
    );
    // A valid checksum over bytes the codec refuses: cut short, a union member that is none, bytes behind.
    for (const [body, reason] of [
      [bytes.subarray(0, bytes.length - 100), /ends inside a string/],
      [Buffer.concat([Buffer.from([200]), bytes.subarray(1)]), /member 200 of a union of 6/],
      [Buffer.concat([bytes, Buffer.from([0])]), /1 bytes follow the message/],
    ] as const) {
      const refused = new RegExp(`record 1 \\(vote\\) does not decode: .*${reason.source}`);
      expectRefusedBy(openBinary(stored(Buffer.from(body))), refused);
    }
  });

  it("refuses a byte-level damaged file", () => {
    const dir = tempDir();
    const opened = open(dir, { create: true });
    opened.storage.append(records(200));
    opened.storage.close();
    const file = path.join(dir, databaseFileName);
    const bytes = fs.readFileSync(file);
    // Overwrite the middle of the file with garbage, from the start of a page (garbage in the
    // unused end of a page, where the middle fell once a table was added, is no damage).
    const at = Math.floor(bytes.length / 2 / 4096) * 4096;
    bytes.fill(0x5a, at, at + 2048);
    fs.writeFileSync(file, bytes);
    expectRefused(dir, "damaged", /./);
  });

  it("summarizes a long integrity report in one line", () => {
    const dir = tempDir();
    const opened = open(dir, { create: true });
    opened.storage.append(records(3000));
    opened.storage.close();
    const file = path.join(dir, databaseFileName);
    const bytes = fs.readFileSync(file);
    // Many pages of garbage: SQLite's quick_check reports a problem per page.
    bytes.fill(0x5a, Math.floor(bytes.length / 3), Math.floor(bytes.length / 3) + 40_000);
    fs.writeFileSync(file, bytes);
    expectRefused(dir, "damaged", /^damaged data: .*: SQLite quick_check found \d+ problems, the first: [^\n]+$/);
  });

  it("appends asynchronously: records are committed at once, durable when done is called, and survive reopening", async () => {
    const dir = tempDir();
    const first = open(dir, { create: true });
    const done = await new Promise<Error | null>((resolve) => first.storage.appendAsync(records(2), resolve));
    expect(done).toBeNull();
    expect(first.storage.recordCount).toBe(2);
    // Close while a sync is still on the thread pool: it completes, nothing throws.
    const late = new Promise<Error | null>((resolve) => first.storage.appendAsync(records(3).slice(2), resolve));
    first.storage.close();
    expect(await late).toBeNull();
    const again = open(dir);
    expect(again.records).toEqual(records(3));
    again.storage.close();
  });

  it("checkpoints in checkpointDue once the commits wrote walCheckpointBytes, never inside a commit", () => {
    const dir = tempDir();
    const { storage } = open(dir, { create: true });
    const file = path.join(dir, databaseFileName);
    const size = fs.statSync(file).size;
    // A small record's commit counts a page: past the bound, and past SQLite's default 1,000 pages.
    const commits = walCheckpointBytes / 4096 + 200;
    for (const record of records(commits)) storage.write([record]);
    // Nothing copied into the database yet: no commit checkpointed.
    expect(fs.statSync(file).size).toBe(size);
    expect(storage.checkpointDue()).toBe(true);
    expect(fs.statSync(file).size).toBeGreaterThan(size);
    expect(storage.checkpointDue()).toBe(false);
    // A snapshot's staged slices count too.
    const slice = "s".repeat(64 * 1024);
    for (let i = 0; i * slice.length < walCheckpointBytes; i++) storage.stage(1, slice);
    expect(storage.checkpointDue()).toBe(true);
    storage.close();
    const again = open(dir);
    expect(again.records).toEqual(records(commits));
    again.storage.close();
  });
});

describe.each([
  { encoding: "JSON text", binary: {} },
  { encoding: "the record codec's bytes", binary: { binary: kvRecordBinary } },
])("storage compaction, records as $encoding", ({ binary }) => {
  /** A replica's records from a run that took snapshots of slots 4 and 8 (not compacted). */
  const replicaRecords = (): readonly KvRecord[] => snapshottingCluster().node(2).records;
  const compaction = { after: (r: KvRecord) => r._tag === "snapshot", keep: compactRecords };
  const openKv = (dir: string, create = false, faults?: { powerLoss: boolean; ackBeforeSync: boolean }) =>
    Storage.open<KvRecord>({
      dir,
      clusterId: "c1",
      replicaId: 2,
      codec: kvCodecs.record,
      create,
      compaction,
      ...(faults === undefined ? {} : { faults }),
      ...binary,
    });
  /** Append `records` in batches that end at each snapshot record, as a replica would commit them. */
  function appendInBatches(storage: Storage<KvRecord>, records: readonly KvRecord[]): void {
    let batch: KvRecord[] = [];
    for (const r of records) {
      batch.push(r);
      if (r._tag === "snapshot") {
        storage.append(batch);
        batch = [];
      }
    }
    storage.append(batch);
  }

  it("deletes what a durable snapshot supersedes; reopening gives compactRecords of everything written", () => {
    const records = replicaRecords();
    expect(records.filter((r) => r._tag === "snapshot").length).toBe(2);
    const dir = tempDir();
    const { storage } = openKv(dir, true);
    appendInBatches(storage, records);
    expect(storage.recordCount).toBe(records.length);
    storage.close();
    const reopened = openKv(dir);
    const expected = compactRecords(records);
    expect(expected.length).toBeLessThan(records.length);
    expect(reopened.records).toEqual(expected);
    // Appending continues the sequence after the compacted part.
    reopened.storage.append([{ _tag: "promise", ballot: { round: 9, replica: 1 } }]);
    expect(reopened.storage.recordCount).toBe(records.length + 1);
    reopened.storage.close();
    expect(openKv(dir).records).toEqual([...expected, { _tag: "promise", ballot: { round: 9, replica: 1 } }]);
  });

  /** Each snapshot of `records` split into `n` parts, as the storage thread writes it. */
  const split = (records: readonly KvRecord[], n = 3): (KvRecord | SplitRecord<KvRecord>)[] =>
    records.map((r) => {
      if (r._tag !== "snapshot") return r;
      const size = Math.ceil(r.data.length / n);
      const parts = Array.from({ length: n }, (_, i) => r.data.slice(i * size, (i + 1) * size));
      return new SplitRecord<KvRecord>({ ...r, data: "" }, parts);
    });
  const partRows = (dir: string): { seq: number; part: number }[] => {
    const db = new Database(path.join(dir, databaseFileName), { readonly: true });
    const rows = db.prepare("SELECT seq, part FROM snapshot_data ORDER BY seq, part").all() as {
      seq: number;
      part: number;
    }[];
    db.close();
    return rows;
  };

  it("stores a split snapshot's data in parts, reads it back whole, and compacts the parts with their row", () => {
    const records = replicaRecords();
    const dir = tempDir();
    const first = records.findIndex((r) => r._tag === "snapshot");
    const opened = openKv(dir, true);
    opened.storage.append(split(records.slice(0, first + 1)));
    opened.storage.close();
    expect(partRows(dir)).toEqual([0, 1, 2].map((part) => ({ seq: first + 1, part })));
    // A third snapshot, so that compaction deletes the first (it keeps the latest two).
    const last = records.findLast((r) => r._tag === "snapshot")!;
    const all = [...records, { ...last, slot: last.slot + 4 }];
    const { storage } = openKv(dir);
    storage.append(split(all.slice(first + 1, -1)));
    storage.append(split(all.slice(-1)));
    storage.close();
    // The first snapshot's parts went with its row; the kept ones' stayed.
    expect(new Set(partRows(dir).map((r) => r.seq))).toEqual(new Set([all.indexOf(last) + 1, all.length]));
    const reopened = openKv(dir);
    expect(reopened.records).toEqual(compactRecords(all));
    expect(reopened.records.filter((r) => r._tag === "snapshot").length).toBe(2);
    reopened.storage.close();
  });

  it("refuses a split snapshot whose parts were damaged, lost or left without it", () => {
    const records = replicaRecords();
    const snapshotAt = records.findIndex((r) => r._tag === "snapshot");
    const tamper = (sql: string): string => {
      const dir = tempDir();
      const { storage } = openKv(dir, true);
      storage.append(split(records.slice(0, snapshotAt + 1)));
      storage.close();
      const db = new Database(path.join(dir, databaseFileName));
      db.exec(sql);
      db.close();
      return dir;
    };
    const seq = snapshotAt + 1;
    const refused = (dir: string, text: string): void => {
      let caught: unknown;
      try {
        openKv(dir).storage.close();
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(StorageError);
      expect((caught as StorageError).kind).toBe("damaged");
      expect((caught as StorageError).message).toContain(text);
    };
    refused(
      tamper(`UPDATE snapshot_data SET text = text || ' ' WHERE part = 1`),
      `record ${seq} (snapshot) has part 1 of its data failing its checksum`,
    );
    refused(tamper("DELETE FROM snapshot_data WHERE part = 2"), "has 2 parts of data where part 0 says 0 of 3");
    refused(tamper("DELETE FROM snapshot_data"), `record ${seq} (snapshot) has its data stored in parts, and none`);
    refused(
      tamper(`INSERT INTO snapshot_data SELECT seq + 100, part, parts, text, checksum FROM snapshot_data`),
      `the data of record ${seq + 100} is stored without it`,
    );
    refused(tamper("DROP TABLE snapshot_data"), "the table snapshot_data is missing");
  });

  it("reads back a snapshot whose data is empty as empty, and one whose single empty part was lost as damaged", () => {
    // The codec does not judge a snapshot's bytes (impl/core does, on recovery): storage must keep
    // what it was given, even empty data, which its row alone cannot tell from data stored in parts.
    const snapshot = replicaRecords().find((r) => r._tag === "snapshot")!;
    const empty: KvRecord = { ...snapshot, data: "" };
    const dir = tempDir();
    const { storage } = openKv(dir, true);
    storage.append([empty]);
    storage.close();
    const reopened = openKv(dir);
    expect(reopened.records).toEqual([empty]);
    reopened.storage.close();
    const db = new Database(path.join(dir, databaseFileName));
    expect(db.prepare("DELETE FROM snapshot_data WHERE seq = 1").run().changes).toBe(1);
    db.close();
    expect(() => openKv(dir).storage.close()).toThrow(/record 1 \(snapshot\) has its data stored in parts, and none/);
  });

  it("summarizes every stored record from the start of its body, as decoding it would", () => {
    const records: KvRecord[] = [...replicaRecords(), { _tag: "handOver", epoch: 7 }];
    for (const record of records) {
      const body = JSON.stringify(kvCodecs.record.encodeValue(record));
      const summary = summaryOfHead(record._tag, body.slice(0, 400));
      expect(summary).toEqual(
        record._tag === "promise" || record._tag === "handOver"
          ? { _tag: record._tag }
          : record._tag === "snapshot"
            ? { _tag: "snapshot", slot: record.slot, logTruncatedUpTo: record.logTruncatedUpTo }
            : { _tag: record._tag, slot: record.slot },
      );
    }
    expect(records.some((r) => r._tag === "snapshot")).toBe(true);
    // A start that does not read as the codec writes it is no summary: that row is decoded whole.
    expect(summaryOfHead("vote", '{"slot":3,"_tag":"vote"}')).toBeNull();
    expect(summaryOfHead("chosen", '{"_tag":"vote","slot":3,')).toBeNull();
  });

  it("summarizes every record stored as bytes from its first bytes, as decoding it would", () => {
    const records: KvRecord[] = [...replicaRecords(), { _tag: "handOver", epoch: 7 }];
    for (const record of records) {
      const head = kvRecordBinary.encode(record).subarray(0, 400);
      expect(summaryOfBinaryHead(record._tag, head, kvRecordBinary)).toEqual(
        record._tag === "promise" || record._tag === "handOver"
          ? { _tag: record._tag }
          : record._tag === "snapshot"
            ? { _tag: "snapshot", slot: record.slot, logTruncatedUpTo: record.logTruncatedUpTo }
            : { _tag: record._tag, slot: record.slot },
      );
    }
    // Bytes that do not read so are no summary (the row is decoded whole): another kind, cut short, no codec.
    const vote = kvRecordBinary.encode(records.find((r) => r._tag === "vote")!);
    expect(summaryOfBinaryHead("chosen", vote, kvRecordBinary)).toBeNull();
    expect(summaryOfBinaryHead("vote", vote.subarray(0, 2), kvRecordBinary)).toBeNull();
    expect(summaryOfBinaryHead("vote", vote, undefined)).toBeNull();
    expect(summaryOfBinaryHead("unknown", vote, kvRecordBinary)).toBeNull();
  });

  it("leaves compaction to compactDue after a group's write and sync, and compacts as append would", () => {
    const records = replicaRecords();
    const dir = tempDir();
    const { storage } = openKv(dir, true);
    const last = records.findLastIndex((r) => r._tag === "snapshot");
    storage.write(records.slice(0, last + 1));
    storage.sync();
    // The sync compacted nothing: compactDue deletes what the snapshot supersedes, once.
    expect(storage.compactDue()).toBeGreaterThan(0);
    expect(storage.compactDue()).toBe(0);
    storage.write(records.slice(last + 1));
    storage.sync();
    storage.close();
    expect(openKv(dir).records).toEqual(compactRecords(records));
  });

  it("compactSome decides a piece at a time, deletes only once all are decided, and keeps appends made between", () => {
    const records = replicaRecords();
    const last = records.findLastIndex((r) => r._tag === "snapshot");
    // One piece of two rows per call, then the deletion.
    const calls = Math.ceil((last + 1) / 2) + 1;
    let started = 0;
    const open = (dir: string) =>
      Storage.open<KvRecord>({
        dir,
        clusterId: "c1",
        replicaId: 2,
        codec: kvCodecs.record,
        create: true,
        compaction: {
          ...compaction,
          pieceRows: 2,
          decider: () => {
            started += 1;
            return compactRecords;
          },
        },
        ...binary,
      }).storage;
    /** Write through the last snapshot, then `pieces` calls of compactSome, each followed by an append. */
    const compactBetweenAppends = (dir: string, pieces: number): Storage<KvRecord> => {
      const storage = open(dir);
      storage.write(records.slice(0, last + 1));
      storage.sync();
      expect(storage.compacting).toBe(true);
      for (let call = 1; call <= pieces; call++) {
        expect(storage.compactSome()).toBe(call < calls);
        storage.write(records.slice(last + call, last + call + 1));
        storage.sync();
      }
      return storage;
    };
    // Closed before its deletion: every record is still there, the appends between pieces too.
    const cut = tempDir();
    const before = compactBetweenAppends(cut, calls - 1);
    expect(before.compacting).toBe(true);
    before.close();
    expect(openKv(cut).records).toEqual(records.slice(0, last + calls));
    // Through its deletion: what one compaction of every row keeps, and the appends after it.
    const dir = tempDir();
    const storage = compactBetweenAppends(dir, calls);
    expect(storage.compacting).toBe(false);
    expect(started).toBe(2);
    storage.write(records.slice(last + calls + 1));
    storage.sync();
    storage.close();
    expect(openKv(dir).records).toEqual(compactRecords(records));
  });

  it("in power-loss mode, compacts only once an fsync covers the snapshot, so a power cut leaves a readable log", async () => {
    const records = replicaRecords();
    const dir = tempDir();
    const faults = { powerLoss: true, ackBeforeSync: false };
    const open = (create = false) => openKv(dir, create, faults);
    const last = records.findLastIndex((r) => r._tag === "snapshot");
    const { storage } = open(true);
    // Everything up to before the last snapshot is synced; the batch that ends with it is not.
    appendInBatches(storage, records.slice(0, last));
    storage.appendAsync(records.slice(last, last + 1), () => undefined);
    storage.close();
    cutPower(dir);
    const reopened = open();
    expect(reopened.lostToPowerCut).toBe(1);
    expect(reopened.records).toEqual(compactRecords(records.slice(0, last)));
    reopened.storage.close();
    await new Promise((resolve) => setTimeout(resolve, 50));
  });

  /**
   * Records of every kind in an order no replica need write: snapshots of several slots (one
   * split in parts) with a log kept above various slots, votes and chosen records about them, a
   * hand-over; each summary's fields read off the record, so that compaction decides every rule.
   */
  const arbitraryRecords = fc.array(
    fc.oneof(
      fc.constant<KvRecord>({ _tag: "promise", ballot: { round: 3, replica: 1 } }),
      fc.constant<KvRecord>({ _tag: "handOver", epoch: 4 }),
      fc.integer({ min: 1, max: 12 }).map<KvRecord>((slot) => ({
        _tag: "vote",
        slot,
        ballot: { round: 1, replica: 2 },
        value: { _tag: "batch", commands: [{ input: { _tag: "put", key: `k${slot}`, value: "v" } }] },
      })),
      fc
        .integer({ min: 1, max: 12 })
        .map<KvRecord>((slot) => ({ _tag: "chosen", slot, ballot: { round: 1, replica: 2 } })),
      fc.tuple(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 0, max: 12 })).map<KvRecord>(([slot, below]) => ({
        _tag: "snapshot",
        slot,
        digest: `d${slot}`,
        contentDigest: `c${slot}`,
        maxBal: { round: 1, replica: 2 },
        logTruncatedUpTo: Math.min(slot, below),
        data: `state of ${slot}`,
      })),
    ),
    { maxLength: 24 },
  );
  /** Write `records` (every snapshot split in two parts), compact in pieces of `pieceRows`, and reopen. */
  function compactedInPieces(
    records: readonly KvRecord[],
    pieceRows: number,
    pinned: readonly number[],
    pinnedVotes: ReadonlySet<number>,
  ) {
    const dir = tempDir();
    const keep = (summaries: readonly RecordSummary[]) => compactRecords(summaries, pinned, pinnedVotes);
    const options = {
      dir,
      clusterId: "c1",
      replicaId: 2,
      codec: kvCodecs.record,
      compaction: { after: () => false, keep, pieceRows },
      ...binary,
    };
    const { storage } = Storage.open<KvRecord>({ ...options, create: true });
    storage.write(split(records, 2));
    const deleted = storage.compact();
    storage.close();
    const reopened = Storage.open<KvRecord>(options);
    reopened.storage.close();
    return { deleted, records: reopened.records, parts: new Set(partRows(dir).map((row) => row.seq)).size };
  }

  it("compacts in pieces exactly what one piece of every row compacts, parts and pinned records alike", () => {
    fc.assert(
      fc.property(arbitraryRecords, fc.subarray([2, 5, 9]), fc.subarray([1, 4, 6]), (records, pinned, slots) => {
        const pinnedVotes = new Set(slots);
        const expected = compactRecords(records, pinned, pinnedVotes);
        const whole = compactedInPieces(records, Number.MAX_SAFE_INTEGER, pinned, pinnedVotes);
        expect(whole.records).toEqual(expected);
        expect(whole.deleted).toBe(records.length - expected.length);
        expect(whole.parts).toBe(expected.filter((r) => r._tag === "snapshot").length);
        for (const pieceRows of [1, 3])
          expect(compactedInPieces(records, pieceRows, pinned, pinnedVotes)).toEqual(whole);
      }),
      { numRuns: 10, seed: 20261207 },
    );
  });

  it("reads no more rows at once than compaction.pieceRows, and an error in a piece leaves every record", () => {
    const records = replicaRecords();
    const dir = tempDir();
    /** The most summaries `keep` was given at once, and how many times it was called. */
    let most = 0;
    let calls = 0;
    let failAt = 3;
    const keep = (summaries: readonly RecordSummary[]) => {
      most = Math.max(most, summaries.length);
      calls += 1;
      if (calls === failAt) throw new Error("a fault in the third piece");
      return compactRecords(summaries);
    };
    const options = {
      dir,
      clusterId: "c1",
      replicaId: 2,
      codec: kvCodecs.record,
      compaction: { after: () => false, keep, pieceRows: 4 },
      ...binary,
    };
    const { storage } = Storage.open<KvRecord>({ ...options, create: true });
    storage.append(records);
    // Interrupted after two pieces' deletions: the transaction leaves the store as it was.
    expect(() => storage.compact()).toThrow(/a fault in the third piece/);
    storage.close();
    const reopened = Storage.open<KvRecord>(options);
    expect(reopened.records).toEqual(records);
    failAt = 0;
    calls = 0;
    most = 0;
    expect(reopened.storage.compact()).toBe(records.length - compactRecords(records).length);
    reopened.storage.close();
    // A piece of 4 rows and the two snapshots above it, in as many calls as pieces.
    expect(most).toBe(6);
    expect(calls).toBe(Math.ceil(records.length / 4) + (records.length % 4 === 0 ? 1 : 0));
    expect(Storage.open<KvRecord>(options).records).toEqual(compactRecords(records));
  });

  it("still refuses a row missing below or above the compaction point", () => {
    const records = replicaRecords();
    for (const where of ["below", "above"] as const) {
      const dir = tempDir();
      const { storage } = openKv(dir, true);
      appendInBatches(storage, records);
      storage.append([{ _tag: "promise", ballot: { round: 9, replica: 1 } }]);
      storage.close();
      const db = new Database(path.join(dir, databaseFileName));
      const through = Number(
        (db.prepare("SELECT value FROM meta WHERE key = 'compacted_through'").get() as { value: string }).value,
      );
      const seq =
        where === "below" ? (db.prepare("SELECT min(seq) AS s FROM records").get() as { s: number }).s : through + 1;
      db.prepare("DELETE FROM records WHERE seq = ?").run(seq);
      db.close();
      expect(() => openKv(dir), where).toThrow(
        where === "below"
          ? /damaged data: .*replica\.sqlite: \d+ records up to \d+, where the last compaction kept \d+/
          : new RegExp(`damaged data: .*record ${through + 1} is missing`),
      );
    }
  });

  it.skipIf(!canRunAsNobody)(
    "says permission denied, not damaged data, for a data directory the replica's user may not use",
    () => {
      const data = tempDir();
      open(data, { create: true }).storage.close();
      const dir = path.dirname(data);
      fs.chmodSync(dir, 0o755);
      fs.chmodSync(data, 0o700);
      const secret = path.join(dir, "secret");
      fs.writeFileSync(secret, "a-secret-of-enough-length\n", { mode: 0o644 });
      const tokens = path.join(dir, "tokens.json");
      createToken(tokens, "admin", "test");
      fs.chmodSync(tokens, 0o644);
      // The replica's user (nobody) is not the directory's owner (root).
      const run = spawnSync(
        "setpriv",
        [
          ...nobody,
          process.execPath,
          ...cliArgv(),
          "replica",
          ...["--id", "1", "--cluster-id", "c1", "--secret-file", secret, "--tokens-file", tokens],
          ...["--peers", "1=127.0.0.1:1", "--http", "127.0.0.1:1", "--data", data],
        ],
        { encoding: "utf8", env: { ...process.env, HOME: "/tmp" } },
      );
      expect(run.status, run.stderr).toBe(3);
      const lines = run.stderr.trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(
        new RegExp(
          `inaccessible data: ${data}: permission denied: this process \\(uid 65534\\) cannot read and write it \\(owner uid 0, mode 0700\\); run the replica as its owner or fix the permissions`,
        ),
      );
      expect(run.stderr).not.toMatch(/damaged/);
    },
  );
});

describe("storage disk faults (test-only)", () => {
  const powerLoss = { powerLoss: true, ackBeforeSync: false };

  it("a power cut loses every record written after the last fsync that returned, and only those", async () => {
    const dir = tempDir();
    const synced: number[] = [];
    const opts = {
      dir,
      clusterId: "c1",
      replicaId: 1,
      codec,
      faults: powerLoss,
      onSynced: (s: number) => synced.push(s),
    };
    const first = Storage.open<TestRecord>({ ...opts, create: true });
    expect(await new Promise((resolve) => first.storage.appendAsync(records(2), resolve))).toBeNull();
    expect(synced).toEqual([2]);
    // Written, but the machine loses power before the fsync returns.
    first.storage.appendAsync(records(5).slice(2), () => undefined);
    first.storage.close();
    cutPower(dir);
    const cut = Storage.open<TestRecord>(opts);
    expect(cut.records).toEqual(records(2));
    expect(cut.lostToPowerCut).toBe(3);
    // The sequence goes on after what survived; once the process dies without a power cut
    // (a SIGKILL keeps the page cache), what it wrote survives, fsynced or not.
    cut.storage.appendAsync(records(4).slice(2), () => undefined);
    cut.storage.close();
    const killed = Storage.open<TestRecord>(opts);
    expect(killed.records).toEqual(records(4));
    expect(killed.lostToPowerCut).toBeNull();
    killed.storage.close();
    // Opening syncs the log: what a reopened store holds survives a later power cut.
    cutPower(dir);
    const again = Storage.open<TestRecord>(opts);
    expect(again.records).toEqual(records(4));
    again.storage.close();
  });

  it("a power cut loses a split snapshot written after the last fsync with all of its parts", async () => {
    const dir = tempDir();
    const opts = { dir, clusterId: "c1", replicaId: 2, codec: kvCodecs.record, faults: powerLoss };
    const records = snapshottingCluster().node(2).records;
    const at = records.findIndex((r) => r._tag === "snapshot");
    const snapshot = records[at] as Extract<KvRecord, { _tag: "snapshot" }>;
    const first = Storage.open<KvRecord>({ ...opts, create: true });
    expect(await new Promise((resolve) => first.storage.appendAsync(records.slice(0, at), resolve))).toBeNull();
    const parts = [snapshot.data.slice(0, 10), snapshot.data.slice(10)];
    first.storage.appendAsync([new SplitRecord<KvRecord>({ ...snapshot, data: "" }, parts)], () => undefined);
    first.storage.close();
    cutPower(dir);
    const cut = Storage.open<KvRecord>(opts);
    expect(cut.records).toEqual(records.slice(0, at));
    expect(cut.lostToPowerCut).toBe(1);
    // Written again and synced, it reads back whole; no part of the lost one is left over.
    expect(
      await new Promise((resolve) =>
        cut.storage.appendAsync([new SplitRecord<KvRecord>({ ...snapshot, data: "" }, parts)], resolve),
      ),
    ).toBeNull();
    cut.storage.close();
    const again = Storage.open<KvRecord>(opts);
    expect(again.records).toEqual(records.slice(0, at + 1));
    again.storage.close();
  });

  /** Rows of `table` in the store of `dir` (read with a second connection, the store closed). */
  const rowCount = (dir: string, table: string): number => {
    const db = new Database(path.join(dir, databaseFileName), { readonly: true });
    const n = db.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number;
    db.close();
    return n;
  };

  it("writes a staged snapshot's slices as they come and moves them into its parts with its record", () => {
    const dir = tempDir();
    const opts = { dir, clusterId: "c1", replicaId: 2, codec: kvCodecs.record };
    const records = snapshottingCluster().node(2).records;
    const at = records.findIndex((r) => r._tag === "snapshot");
    const snapshot = records[at] as Extract<KvRecord, { _tag: "snapshot" }>;
    const { storage } = Storage.open<KvRecord>({ ...opts, create: true });
    storage.append(records.slice(0, at));
    const slices = [snapshot.data.slice(0, 7), snapshot.data.slice(7, 20), snapshot.data.slice(20)];
    for (const slice of slices) storage.stage(4, slice);
    storage.append([new StagedRecord<KvRecord>({ ...snapshot, data: "" }, 4)]);
    storage.close();
    expect(rowCount(dir, "snapshot_staging")).toBe(0);
    expect(rowCount(dir, `snapshot_data WHERE seq = ${at + 1}`)).toBe(3);
    const again = Storage.open<KvRecord>(opts);
    expect(again.records).toEqual(records.slice(0, at + 1));
    // A record whose data never went to the stage named is refused, naming it.
    expect(() => again.storage.append([new StagedRecord<KvRecord>({ ...snapshot, data: "" }, 5)])).toThrow(
      /never staged \(stage 5\)/,
    );
    again.storage.close();
  });

  it("reads a range of a stored snapshot's data from the parts it touches, as a transfer's chunk at rest", () => {
    const dir = tempDir();
    const opts = { dir, clusterId: "c1", replicaId: 2, codec: kvCodecs.record };
    const records = snapshottingCluster().node(2).records;
    const at = records.findIndex((r) => r._tag === "snapshot");
    const snapshot = records[at] as Extract<KvRecord, { _tag: "snapshot" }>;
    const data = snapshot.data;
    const { storage } = Storage.open<KvRecord>({ ...opts, create: true });
    storage.append(records.slice(0, at));
    const slices = [data.slice(0, 7), data.slice(7, 20), data.slice(20)];
    for (const slice of slices) storage.stage(4, slice);
    storage.append([new StagedRecord<KvRecord>({ ...snapshot, data: "" }, 4)]);
    const { slot, digest, contentDigest } = snapshot;
    for (const [offset, length] of [
      [0, 5],
      [5, 10],
      [18, 40],
      [0, data.length],
      [data.length - 3, 64],
    ] as const)
      expect(storage.readSnapshotSlice(slot, offset, length)).toEqual({
        slot,
        digest,
        contentDigest,
        totalBytes: data.length,
        offset,
        data: data.slice(offset, offset + length),
      });
    // A snapshot whose data is in its row reads the same.
    const whole = records.filter((r) => r._tag === "snapshot").at(-1) as Extract<KvRecord, { _tag: "snapshot" }>;
    storage.append([whole]);
    expect(storage.readSnapshotSlice(whole.slot, 3, 9).data).toBe(whole.data.slice(3, 12));
    expect(() => storage.readSnapshotSlice(slot + 1, 0, 10)).toThrow(/no snapshot of slot/);
    // A part damaged on disk (written through the store's own connection) is refused, naming the record.
    const db = (storage as unknown as { readonly db: Database.Database }).db;
    db.prepare("UPDATE snapshot_data SET text = 'XXXXXXXXXXXXX' WHERE seq = ? AND part = 1").run(at + 1);
    expect(() => storage.readSnapshotSlice(slot, 10, 5)).toThrow(/part 1 of its data failing its checksum/);
    expect(storage.readSnapshotSlice(slot, 0, 5).data).toBe(data.slice(0, 5));
    storage.close();
  });

  it("a crash in the middle of installing a staged snapshot leaves the state before it, and the retry installs it", () => {
    const dir = tempDir();
    const opts = { dir, clusterId: "c1", replicaId: 2, codec: kvCodecs.record };
    const records = snapshottingCluster().node(2).records;
    const at = records.findIndex((r) => r._tag === "snapshot");
    const snapshot = records[at] as Extract<KvRecord, { _tag: "snapshot" }>;
    const first = Storage.open<KvRecord>({ ...opts, create: true });
    first.storage.append(records.slice(0, at));
    const slices = Array.from({ length: 4 }, (_, i) => snapshot.data.slice(i * 9, i === 3 ? undefined : (i + 1) * 9));
    for (const slice of slices) first.storage.stage(1, slice);
    // The install's transaction moves the parts, then fails before its commit (a record that
    // cannot be written comes after it in the same append): nothing of it may be left.
    const broken = new SplitRecord<KvRecord>({ ...snapshot, data: "not empty" }, ["x"]);
    expect(() => first.storage.append([new StagedRecord<KvRecord>({ ...snapshot, data: "" }, 1), broken])).toThrow(
      /must have an empty data field/,
    );
    expect(first.storage.recordCount).toBe(at);
    // The stage is as it was: the install goes through on a second try, with every part.
    first.storage.append([new StagedRecord<KvRecord>({ ...snapshot, data: "" }, 1)]);
    expect(first.storage.recordCount).toBe(at + 1);
    // And a crash part way through staging the next snapshot: the process dies (the store is
    // never closed), its slices are left in staging, and the next open deletes them.
    for (const slice of slices.slice(0, 2)) first.storage.stage(2, slice);
    expect(() => first.storage.append([new StagedRecord<KvRecord>({ ...snapshot, data: "" }, 2), broken])).toThrow();
    first.storage.close();
    expect(rowCount(dir, "snapshot_staging")).toBe(2);
    const reopened = Storage.open<KvRecord>(opts);
    expect(reopened.records).toEqual(records.slice(0, at + 1));
    reopened.storage.close();
    expect(rowCount(dir, "snapshot_staging")).toBe(0);
  });

  /**
   * The order of the acknowledgement and the fsync's return of one append, waited for until both
   * came (however long the fsync takes: a fixed wait failed when a loaded disk's fsync outlasted it).
   */
  const ackAndSync = async (ackBeforeSync: boolean): Promise<string[]> => {
    const order: string[] = [];
    let both: () => void = () => {};
    const came = new Promise<void>((resolve) => (both = resolve));
    const note = (what: string): void => {
      order.push(what);
      if (order.length === 2) both();
    };
    const { storage } = Storage.open<TestRecord>({
      dir: tempDir(),
      clusterId: "c1",
      replicaId: 1,
      codec,
      create: true,
      faults: { powerLoss: false, ackBeforeSync },
      onSynced: (s) => note(`synced ${s}`),
    });
    storage.appendAsync(records(2), () => note("done"));
    await came;
    storage.close();
    return order;
  };

  it("acknowledging before the fsync (broken on purpose) reports a batch durable before its fsync returns", async () => {
    expect(await ackAndSync(true)).toEqual(["done", "synced 2"]);
    // The same check passes the store as it is: acknowledged once the fsync returned.
    expect(await ackAndSync(false)).toEqual(["synced 2", "done"]);
  });

  it("refuses the test-only modes without PAXOS_LEASE_ALLOW_TEST_FAULTS", () => {
    expect(() => diskFaultsFromEnv({ PAXOS_LEASE_TEST_POWER_LOSS: "1" })).toThrow(/fault-injection tests only/);
    expect(() => diskFaultsFromEnv({ PAXOS_LEASE_TEST_ACK_BEFORE_FSYNC: "1" })).toThrow(/never in production/);
    expect(diskFaultsFromEnv({})).toEqual({ powerLoss: false, ackBeforeSync: false });
    expect(diskFaultsFromEnv({ PAXOS_LEASE_TEST_POWER_LOSS: "1", PAXOS_LEASE_ALLOW_TEST_FAULTS: "1" }).powerLoss).toBe(
      true,
    );
  });
});

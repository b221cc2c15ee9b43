/**
 * The storage thread: appends are acknowledged in order and only once durable, a reopened store
 * holds them, opening refuses what Storage.open refuses (with the same StorageError), and after a
 * failed append every later one fails too (the replica must stop), as after an answer out of order.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { Either } from "effect";
import { afterEach, describe, expect, it } from "vitest";
import { kv } from "../../spec/kv.ts";
import { parseConfig } from "../core/config.ts";
import { contentDigestOf, encodeSnapshot, makeSnapshot, serializationOf, snapshotRecord } from "../core/snapshot.ts";
import { makeContext } from "../core/state.ts";
import type { SnapshotChunkMsg } from "../core/messages.ts";
import { kvRecordBinary, kvRecordKey, kvReplicated, snapshotSliceKey, type KvRecord } from "./core-adapter.ts";
import { storedEntryOf, type StoredEntry } from "../core/store-at-rest.ts";
import { pmGet, pmSet, type PersistentMap } from "../../spec/persistent-map.ts";
import { cliBundlePath } from "./program.ts";
import Database from "better-sqlite3";
import { databaseFileName, StorageError } from "./storage.ts";
import { StorageThread, type UnvouchedStage } from "./storage-thread.ts";

const dirs: string[] = [];
/** The compiled storage thread replicas run (vitest's global setup builds it from the current sources). */
const workerModule = pathToFileURL(path.join(path.dirname(cliBundlePath), "storage-worker.mjs"));

/**
 * The compiled storage thread with its first two answers on the event port (the appends' answers)
 * swapped: a module of its own (a data: URL, given as `workerModule`) that wraps the thread's
 * `parentPort.postMessage` before it loads the real one. The order the main thread relies on is
 * the storage thread's to keep, so only a storage thread altered so breaks it.
 */
const answersSwapped = new URL(
  `data:text/javascript,${encodeURIComponent(`
import { parentPort } from "node:worker_threads";
const post = parentPort.postMessage.bind(parentPort);
let held = null;
let answers = 0;
parentPort.postMessage = (message, transfer) => {
  answers += 1;
  if (answers === 1) return void (held = [message, transfer]);
  post(message, transfer);
  if (answers === 2) post(...held);
};
await import(${JSON.stringify(workerModule.href)});
`)}`,
);

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "paxos-lease-storage-thread-"));
  dirs.push(dir);
  return path.join(dir, "r1");
}

/** The storage thread of replica 1 of cluster c1 in `dir`, with `options` beside those. */
function openThread(dir: string, options: Partial<Parameters<typeof StorageThread.open>[0]> = {}) {
  return StorageThread.open({ dir, clusterId: "c1", replicaId: 1, workerModule, ...options });
}

afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

const promise = (round: number): KvRecord => ({ _tag: "promise", ballot: { round, replica: 1 } });
const vote = (slot: number, value: string): KvRecord => ({
  _tag: "vote",
  slot,
  ballot: { round: 1, replica: 1 },
  value: { _tag: "batch", commands: [{ clientId: "c", seq: slot, input: { _tag: "put", key: "k", value } }] },
});

function appendAsync(storage: StorageThread, records: readonly KvRecord[]): Promise<Error | null> {
  return new Promise((resolve) => storage.appendAsync(records, resolve));
}

/** The records of `of`'s keys read back, or the error's message. */
function read(storage: StorageThread, ...of: KvRecord[]): Promise<readonly KvRecord[] | string> {
  const keys = of.map((record) => kvRecordKey(record)!);
  return new Promise((resolve) => storage.read(keys, (error, records) => resolve(error?.message ?? records)));
}

/**
 * A snapshot's contents at slot 12 of a KV store after `writes` puts, the value of put i `${i} é`
 * repeated `repeat` times, each from a client of its own (or all from client "c" in order, with
 * `oneClient`).
 */
function kvSnapshotContents(writes: number, repeat: number, oneClient = false) {
  const ctx = makeContext(parseConfig({ members: [1, 2, 3], self: 1 }), kv);
  let service = ctx.service.start;
  for (let i = 0; i < writes; i++)
    service = ctx.service.apply(
      {
        clientId: oneClient ? "c" : `c${i}`,
        seq: oneClient ? i + 1 : 1,
        input: { _tag: "put", key: `k${i}`, value: `${i} é`.repeat(repeat) },
      },
      service,
    ).state;
  const contents = { slot: 12, service, outputDigestA: 1, outputDigestB: 2, configs: [ctx.initial], checkpoints: [] };
  return { ctx, contents };
}

/** A chunk of the snapshot of `slot` as its sender puts it on the wire (the digest: the content digest, here). */
function chunkOf(
  slot: number,
  contentDigest: string,
  totalBytes: number,
  offset: number,
  data: string,
): SnapshotChunkMsg {
  return { _tag: "SnapshotChunk", slot, digest: contentDigest, contentDigest, totalBytes, offset, data };
}

describe("storage thread", () => {
  it("acknowledges appends in order, and a reopened store holds every record", async () => {
    const dir = tempDir();
    expect(() => openThread(dir)).toThrow(StorageError);
    const first = openThread(dir, { create: true });
    expect(first.created).toBe(true);
    expect(first.records).toEqual([]);
    const order: number[] = [];
    const big = "v".repeat(1024 * 1024);
    const acks = [1, 2, 3].map((n) =>
      appendAsync(first.storage, [vote(n, n === 2 ? big : `v${n}`)]).then((error) => {
        expect(error).toBeNull();
        order.push(n);
      }),
    );
    expect(first.storage.recordCount).toBe(3);
    await Promise.all(acks);
    expect(order).toEqual([1, 2, 3]);
    first.storage.append([promise(7)]);
    expect(first.storage.recordCount).toBe(4);
    first.storage.close();
    const second = openThread(dir);
    expect(second.created).toBe(false);
    expect(second.records.map((r) => r._tag)).toEqual(["vote", "vote", "vote", "promise"]);
    expect(second.records[1]).toEqual(vote(2, big));
    expect(second.storage.recordCount).toBe(4);
    second.storage.close();
  });

  it("serializes a snapshot record in slices, streams them, and keeps later appends behind it in order", async () => {
    const { ctx, contents } = kvSnapshotContents(12, 20_000, true);
    const whole = encodeSnapshot(ctx, contents);
    const snapshot = (info: ReturnType<typeof makeSnapshot>): KvRecord =>
      snapshotRecord(info, { round: 1, replica: 1 }, info.slot);
    const dir = tempDir();
    const opened = openThread(dir, {
      create: true,
      snapshotSliceChars: 50_000,
    });
    const record = snapshot(makeSnapshot(ctx, contents));
    const order: number[] = [];
    const acks = [[vote(1, "a")], [record], [vote(13, "b")], [promise(2)]].map((records, n) =>
      appendAsync(opened.storage, records).then((error) => {
        expect(error).toBeNull();
        order.push(n);
      }),
    );
    // Nothing was serialized in the turn that made the appends; the two after the snapshot wait behind it.
    expect(serializationOf(record)!.bytes).toBe(0);
    expect(opened.storage.appendsBehindSnapshot).toBe(2);
    expect(opened.storage.recordCount).toBe(4);
    await Promise.all(acks);
    expect(order).toEqual([0, 1, 2, 3]);
    opened.storage.close();
    // Its data is stored as the slices came, one part each, never as one value.
    const db = new Database(path.join(dir, databaseFileName), { readonly: true });
    const parts = db.prepare("SELECT part, length(text) AS chars FROM snapshot_data ORDER BY part").all() as {
      part: number;
      chars: number;
    }[];
    const row = db.prepare("SELECT body FROM records WHERE kind = 'snapshot'").pluck().get() as Buffer;
    db.close();
    expect(parts.length).toBeGreaterThan(5);
    expect(parts.reduce((n, p) => n + p.chars, 0)).toBe(whole.length);
    expect(Math.max(...parts.map((p) => p.chars))).toBeLessThan(whole.length / 4);
    // The row holds the record without its data (the record codec's bytes, `storage@4`).
    expect(
      Either.map(kvRecordBinary.decode(row), (r) => ({ _tag: r._tag, data: "data" in r ? r.data : null })),
    ).toEqual(Either.right({ _tag: "snapshot", data: "" }));
    // The snapshot's compaction removed the vote before it; the records after it are in order.
    const reopened = openThread(dir);
    expect(reopened.records.map((r) => r._tag)).toEqual(["snapshot", "vote", "promise"]);
    expect((reopened.records[0] as Extract<KvRecord, { _tag: "snapshot" }>).data).toBe(whole);
    expect(reopened.records[0]).toEqual({ ...record });
    // A snapshot still in slices when the store closes is finished and written first.
    const last = snapshot(makeSnapshot(ctx, { ...contents, slot: 14 }));
    void appendAsync(reopened.storage, [last]);
    reopened.storage.close();
    const again = openThread(dir);
    expect(again.records.map((r) => r._tag)).toEqual(["snapshot", "vote", "promise", "snapshot"]);
    expect(again.records[3]).toEqual({ ...last });
    again.storage.close();
  });

  it("serializes a snapshot no further ahead of the storage thread than its bound", async () => {
    const { ctx, contents } = kvSnapshotContents(12, 2_000);
    const whole = encodeSnapshot(ctx, contents);
    const record = snapshotRecord(makeSnapshot(ctx, contents), { round: 1, replica: 1 }, 12);
    const dir = tempDir();
    // Slices of about 5,000 characters (each value, 18,000 escaped, is one of its own), at most
    // 10,000 waiting before the next is made.
    const { storage } = openThread(dir, { create: true, snapshotSliceChars: 5_000, snapshotAheadChars: 10_000 });
    expect(await appendAsync(storage, [record, vote(13, "b")])).toBeNull();
    // Without the bound the main thread ran ahead by most of the snapshot's 197,000 characters.
    expect(whole.length).toBeGreaterThan(190_000);
    expect(storage.snapshotAheadMax).toBeGreaterThan(0);
    expect(storage.snapshotAheadMax).toBeLessThan(10_000 + 20_000);
    expect(storage.snapshotWaits).toBeGreaterThan(0);
    storage.close();
    const reopened = openThread(dir);
    expect((reopened.records[0] as Extract<KvRecord, { _tag: "snapshot" }>).data).toBe(whole);
    expect(reopened.records.map((r) => r._tag)).toEqual(["snapshot", "vote"]);
    reopened.storage.close();
  });

  it("stores a snapshot received by state transfer as the chunks staged, unless its own serialization differs", async () => {
    const { ctx, contents } = kvSnapshotContents(12, 20_000);
    const whole = encodeSnapshot(ctx, contents);
    // The same state as serialized by a version whose sessions held no command digest.
    const envelope = JSON.parse(whole) as { sessions: unknown[][] };
    envelope.sessions = envelope.sessions.map((session) => session.slice(0, 3));
    const older = JSON.stringify(envelope);
    expect(older).not.toBe(whole);
    const dir = tempDir();
    const opened = openThread(dir, { create: true });
    const storage = opened.storage;
    storage.releaseSnapshots = true;
    /** Stage `bytes` in chunks as a transfer would, then install a record of `contents`, slot `slot`. */
    const receive = (bytes: string, slot: number): KvRecord => {
      const contentDigest = contentDigestOf(bytes);
      for (let offset = 0; offset < bytes.length; offset += 65_536)
        storage.receivedChunk(
          1,
          chunkOf(slot, contentDigest, bytes.length, offset, bytes.slice(offset, offset + 65_536)),
        );
      const record = snapshotRecord(makeSnapshot(ctx, { ...contents, slot }), { round: 1, replica: 1 }, slot);
      storage.receivedInstalled(record, slot, contentDigest, bytes.length);
      return record;
    };
    const same = receive(whole, 12);
    expect(await appendAsync(storage, [same])).toBeNull();
    // Never serialized again to be written: the staged chunks are its stored form.
    expect(serializationOf(same)!.serializedChars).toBe(0);
    expect((same as Extract<KvRecord, { _tag: "snapshot" }>).contentDigest).toBe(contentDigestOf(whole));
    // Written, its state went (a transfer reads its chunks from the record); its size stays.
    expect(serializationOf(same)!.bytes).toBe(whole.length);
    expect(() => (same as Extract<KvRecord, { _tag: "snapshot" }>).data).toThrow(/read from its durable record/);
    // Bytes that another version serialized: the check finds its own serialization differs, so
    // the stage goes and the record is serialized and stored as this replica would serve it.
    const other = receive(older, 14);
    const own = encodeSnapshot(ctx, { ...contents, slot: 14 });
    expect(await appendAsync(storage, [other])).toBeNull();
    expect(serializationOf(other)!.serializedChars).toBe(own.length);
    // A transfer staged, then given up (or a crash before its install): nothing of it is a record.
    storage.receivedChunk(1, chunkOf(16, contentDigestOf(whole), whole.length, 0, whole.slice(0, 65_536)));
    storage.receivedChunk(1, chunkOf(16, contentDigestOf(whole), whole.length, 65_536, whole.slice(65_536, 131_072)));
    storage.close();
    const db = new Database(path.join(dir, databaseFileName), { readonly: true });
    const parts = db.prepare("SELECT seq, count(*) AS n FROM snapshot_data GROUP BY seq ORDER BY seq").all();
    const staging = db.prepare("SELECT count(*) FROM snapshot_staging").pluck().get();
    db.close();
    expect(parts).toEqual([
      { seq: 1, n: Math.ceil(whole.length / 65_536) },
      { seq: 2, n: expect.any(Number) as number },
    ]);
    expect(staging).toBe(2);
    const reopened = openThread(dir);
    // The transfer given up by the crash is kept, to resume: its identity and its two chunks.
    expect(reopened.received).toMatchObject({ from: 1, slot: 16, contentDigest: contentDigestOf(whole), parts: 2 });
    const kept = reopened.storage.keptTransfer()!;
    expect(kept).toEqual({
      from: 1,
      slot: 16,
      digest: expect.any(String) as string,
      contentDigest: contentDigestOf(whole),
      totalBytes: whole.length,
    });
    // Its chunks come back a piece at a time, from where the core stands; none left: an empty last one.
    const piece = reopened.storage.keptPiece(0)!;
    expect(piece).toMatchObject({ offset: 0, last: false });
    expect(piece.chunks.join("")).toBe(whole.slice(0, 131_072));
    expect(reopened.storage.keptPiece(131_072)).toEqual({ offset: 131_072, chunks: [], last: true });
    // The core took the first chunk again: the stage keeps it alone, and goes on from there.
    reopened.storage.resumed(65_536);
    expect(reopened.storage.transfersResumed).toBe(1);
    const snapshots = reopened.records as Extract<KvRecord, { _tag: "snapshot" }>[];
    expect(snapshots.map((r) => [r.slot, r.data.length, r.contentDigest])).toEqual([
      [12, whole.length, contentDigestOf(whole)],
      [14, own.length, contentDigestOf(own)],
    ]);
    expect(snapshots[0]!.data === whole && snapshots[1]!.data === own).toBe(true);
    reopened.storage.close();
    const after = new Database(path.join(dir, databaseFileName), { readonly: true });
    expect(after.prepare("SELECT count(*) FROM snapshot_staging").pluck().get()).toBe(1);
    after.close();
    // Taken again not at all (a snapshot the replica no longer wants): the stage goes.
    const third = openThread(dir);
    expect(third.received).toMatchObject({ slot: 16, parts: 1 });
    // Asked anywhere but where the rows read end (nothing read yet: byte 0): an empty last piece.
    expect(third.storage.keptPiece(65_536)).toEqual({ offset: 65_536, chunks: [], last: true });
    third.storage.resumed(0);
    expect(third.storage.keptPiece(0)).toBeNull();
    third.storage.close();
    const last = openThread(dir);
    expect(last.received).toBeNull();
    last.storage.close();
  });

  it("hands a kept transfer's chunks back a piece of about 4 MiB at a time, in order, never all at once", () => {
    const dir = tempDir();
    const opened = openThread(dir, { create: true });
    // 6 MiB of a 10 MiB snapshot taken in 64 KiB chunks, then a crash (a close, here).
    const chunk = (i: number) => String(i % 10).repeat(65_536);
    for (let i = 0; i < 96; i++)
      opened.storage.receivedChunk(1, chunkOf(20, "d".repeat(64), 10 * 1024 * 1024, i * 65_536, chunk(i)));
    opened.storage.close();
    const reopened = openThread(dir);
    expect(reopened.storage.keptTransfer()).toMatchObject({ slot: 20, totalBytes: 10 * 1024 * 1024 });
    const sizes: number[] = [];
    let offset = 0;
    let taken = "";
    for (;;) {
      const piece = reopened.storage.keptPiece(offset)!;
      expect(piece.offset).toBe(offset);
      if (piece.last) break;
      const text = piece.chunks.join("");
      sizes.push(text.length);
      taken += text;
      offset += text.length;
    }
    // Two pieces (4 MiB, then the 2 MiB left), the chunks as staged, in order.
    expect(sizes).toEqual([4 * 1024 * 1024, 2 * 1024 * 1024]);
    expect(taken).toBe(Array.from({ length: 96 }, (_, i) => chunk(i)).join(""));
    reopened.storage.resumed(offset);
    expect(reopened.storage.transfersResumed).toBe(1);
    reopened.storage.close();
  });

  it("stores a received snapshot's staged bytes only if they, read back, give the digest verified", async () => {
    const { ctx, contents } = kvSnapshotContents(4, 5_000);
    const dir = tempDir();
    const refused: UnvouchedStage[] = [];
    const opened = openThread(dir, {
      create: true,
      onUnvouched: (r) => refused.push(r),
    });
    const storage = opened.storage;
    const chunk = 16_384;
    /**
     * Receive the snapshot of slot `slot` in chunks, staged as `spoil` makes them (a staging bug:
     * at the offsets the core took, other bytes than it verified), install it and append its record.
     */
    const receive = async (slot: number, spoil: (chunks: string[]) => string[]): Promise<KvRecord> => {
      const bytes = encodeSnapshot(ctx, { ...contents, slot });
      const contentDigest = contentDigestOf(bytes);
      const chunks: string[] = [];
      for (let offset = 0; offset < bytes.length; offset += chunk) chunks.push(bytes.slice(offset, offset + chunk));
      let offset = 0;
      for (const data of spoil(chunks)) {
        storage.receivedChunk(1, chunkOf(slot, contentDigest, bytes.length, offset, data));
        offset += data.length;
      }
      const record = snapshotRecord(makeSnapshot(ctx, { ...contents, slot }), { round: 1, replica: 1 }, slot);
      storage.receivedInstalled(record, slot, contentDigest, bytes.length);
      expect(await appendAsync(storage, [record])).toBeNull();
      return record;
    };
    // A good transfer: stored as the chunks staged, never serialized here.
    const good = await receive(12, (chunks) => chunks);
    expect(serializationOf(good)!.serializedChars).toBe(0);
    expect(refused).toEqual([]);
    // A row changed, the first chunk staged twice and the second not at all, a chunk's first half
    // twice and its second not: refused, and serialized instead.
    const spoilers: ((chunks: string[]) => string[])[] = [
      (chunks) => chunks.map((c, i) => (i === 1 ? `x${c.slice(1)}` : c)),
      (chunks) => chunks.map((c, i) => (i === 1 ? chunks[0]! : c)),
      (chunks) => chunks.map((c, i) => (i === 2 ? c.slice(0, chunk / 2).repeat(2) : c)),
    ];
    for (const [i, spoil] of spoilers.entries()) {
      const slot = 14 + i;
      const record = await receive(slot, spoil);
      const own = encodeSnapshot(ctx, { ...contents, slot });
      expect(serializationOf(record)!.serializedChars).toBe(own.length);
      expect(refused[i]).toMatchObject({ slot, contentDigest: contentDigestOf(own) });
      expect(refused[i]!.stagedDigest).not.toBe(contentDigestOf(own));
    }
    expect(storage.receivedUnvouched).toBe(3);
    storage.close();
    // What is stored is what the core verified (the snapshots compaction kept: the last two).
    const reopened = openThread(dir);
    const snapshots = reopened.records.filter((r) => r._tag === "snapshot");
    expect(snapshots.map((r) => [r.slot, r.data === encodeSnapshot(ctx, { ...contents, slot: r.slot })])).toEqual([
      [15, true],
      [16, true],
    ]);
    reopened.storage.close();
    const after = new Database(path.join(dir, databaseFileName), { readonly: true });
    expect(after.prepare("SELECT count(*) FROM snapshot_staging").pluck().get()).toBe(0);
    after.close();
  });

  it("serves reads in order with the appends, ahead of a later snapshot's compaction, and never a record not there", async () => {
    const ctx = makeContext(parseConfig({ self: 1, members: [1, 2, 3] }), kv);
    const service = ctx.service.start;
    const contents = { slot: 12, service, outputDigestA: 1, outputDigestB: 2, configs: [ctx.initial], checkpoints: [] };
    const info = makeSnapshot(ctx, contents);
    // One serialized at once (it crosses whole), and one serialized in slices (appends and reads wait behind it).
    const whole = snapshotRecord(info, { round: 1, replica: 1 }, 12);
    const plain: KvRecord = { ...whole, data: encodeSnapshot(ctx, contents) };
    const sliced = snapshotRecord(makeSnapshot(ctx, { ...contents, slot: 14 }), { round: 1, replica: 1 }, 14);
    const dir = tempDir();
    const opened = openThread(dir, { create: true });
    const storage = opened.storage;
    const [v1, v2, v13, v15] = [vote(1, "a"), vote(2, "b".repeat(300_000)), vote(13, "c"), vote(15, "d")];
    // Written, not yet acknowledged: a read behind it finds it.
    const written = appendAsync(storage, [v1, v2]);
    expect(await read(storage, v2, v1)).toEqual([v2, v1]);
    expect(await written).toBeNull();
    // A read made before the snapshot's append is served before the compaction it causes, in the
    // same group commit or not; one made after the snapshot is durable finds its votes, or finds
    // them compacted away once the compaction's pieces, decided between groups, are done.
    // (The storage thread is kept busy writing a large vote meanwhile, so that the read and the
    // snapshot's append most likely meet in one group commit, the case that matters.)
    const busy = appendAsync(
      storage,
      [3, 4, 5, 6, 7, 8].map((slot) => vote(slot, "x".repeat(1_000_000))),
    );
    const before = read(storage, v1);
    const snapshotDurable = appendAsync(storage, [plain]);
    expect(await busy).toBeNull();
    expect(await before).toEqual([v1]);
    expect(await snapshotDurable).toBeNull();
    let after = await read(storage, v1);
    for (let turns = 0; typeof after !== "string" && turns < 400; turns++) {
      expect(after).toEqual([v1]);
      await new Promise((resolve) => setTimeout(resolve, 5));
      after = await read(storage, v1);
    }
    expect(after).toMatch(/no record vote 1 1\.1 in the store \(never written, or compacted away\)/);
    // A missing record is the read's error only: the store goes on.
    expect(await appendAsync(storage, [v13])).toBeNull();
    // Behind a snapshot still being serialized: a read waits its turn, and sees the append before it.
    // (v13 is read before the snapshot's append is posted: the snapshot compacts it away, and a read
    // posted after the append may be served after that compaction, as the driver never asks.)
    const early = read(storage, v13);
    const ack = appendAsync(storage, [sliced]);
    const afterSliced = appendAsync(storage, [v15]);
    const behind = read(storage, v15);
    expect(opened.storage.appendsBehindSnapshot).toBe(1);
    expect(await early).toEqual([v13]);
    expect(await behind).toEqual([v15]);
    expect([await ack, await afterSliced]).toEqual([null, null]);
    storage.close();
    // A reopened store finds its records by key again (and v13 was compacted by the second snapshot).
    const reopened = openThread(dir);
    expect(await read(reopened.storage, v15)).toEqual([v15]);
    expect(await read(reopened.storage, v13)).toMatch(/no record vote 13 1\.1/);
    reopened.storage.close();
  });

  it("lets a written snapshot's state go, serves a transfer's chunks from its record, and keeps a pinned one", async () => {
    const { ctx, contents } = kvSnapshotContents(12, 2_000);
    const whole = encodeSnapshot(ctx, contents);
    const snapshotAt = (slot: number): KvRecord =>
      snapshotRecord(makeSnapshot(ctx, { ...contents, slot }), { round: 1, replica: 1 }, slot);
    const dir = tempDir();
    const { storage } = openThread(dir, { create: true, snapshotSliceChars: 10_000 });
    storage.releaseSnapshots = true;
    let pinned: readonly number[] = [];
    storage.pinnedSnapshots = () => pinned;
    const first = snapshotAt(12);
    expect(await appendAsync(storage, [first])).toBeNull();
    // Written: the state at its slot went; its size and content digest stay.
    expect(() => (first as Extract<KvRecord, { _tag: "snapshot" }>).data).toThrow(/read from its durable record/);
    expect(serializationOf(first)!.bytes).toBe(whole.length);
    const slice = (slot: number, offset: number, length: number): Promise<unknown> =>
      new Promise((resolve) =>
        storage.read([snapshotSliceKey(slot, offset, length)], (error, records) => resolve(error?.message ?? records)),
      );
    expect(await slice(12, 15_000, 12_000)).toEqual([
      {
        slot: 12,
        digest: (first as Extract<KvRecord, { _tag: "snapshot" }>).digest,
        contentDigest: contentDigestOf(whole),
        totalBytes: whole.length,
        offset: 15_000,
        data: whole.slice(15_000, 27_000),
      },
    ]);
    // Pinned (a transfer fetches it), it outlives two newer snapshots' compactions; unpinned, it goes with the next.
    pinned = [12];
    for (const slot of [14, 16]) expect(await appendAsync(storage, [snapshotAt(slot)])).toBeNull();
    expect(await appendAsync(storage, [vote(17, "a")])).toBeNull();
    expect(((await slice(12, 0, 10)) as { data: string }[])[0]!.data).toBe(whole.slice(0, 10));
    pinned = [];
    expect(await appendAsync(storage, [snapshotAt(18)])).toBeNull();
    expect(await appendAsync(storage, [vote(19, "b")])).toBeNull();
    expect(await slice(12, 0, 10)).toMatch(/no snapshot of slot 12 in the store/);
    expect(((await slice(16, 0, 10)) as { data: string }[])[0]!.data).toBe(whole.slice(0, 10).replace("12", "16"));
    storage.close();
  });

  it("keeps the vote records the store names below the log's truncation point, and lets them go once unnamed", async () => {
    const { ctx, contents } = kvSnapshotContents(2, 10);
    const snapshotAt = (slot: number): KvRecord =>
      snapshotRecord(makeSnapshot(ctx, { ...contents, slot }), { round: 1, replica: 1 }, slot);
    const { storage } = openThread(tempDir(), { create: true });
    let named: ReadonlySet<number> = new Set([5]);
    storage.pinnedVotes = () => named;
    const [v5, v6] = [vote(5, "at rest ".repeat(100)), vote(6, "in memory")];
    expect(await appendAsync(storage, [v5, v6])).toBeNull();
    // The snapshot truncates the log through slot 12: vote 6 goes, vote 5 (named) stays, through a
    // second snapshot's compaction too.
    for (const slot of [12, 14]) expect(await appendAsync(storage, [snapshotAt(slot)])).toBeNull();
    expect(await appendAsync(storage, [vote(15, "a")])).toBeNull();
    expect(await read(storage, v5)).toEqual([v5]);
    expect(await read(storage, v6)).toMatch(/no record vote 6 1\.1/);
    // No longer named (its key rewritten): the next snapshot's compaction lets it go.
    named = new Set();
    expect(await appendAsync(storage, [snapshotAt(16)])).toBeNull();
    expect(await appendAsync(storage, [vote(17, "b")])).toBeNull();
    expect(await read(storage, v5)).toMatch(/no record vote 5 1\.1/);
    storage.close();
  });

  it("fills a snapshot's holes from the vote records that wrote the values, by rule V2 (rule V5)", async () => {
    const { ctx, contents } = kvSnapshotContents(2, 2_000);
    const ballot = { round: 1, replica: 1 };
    const putVote = (slot: number, key: string, value: string): KvRecord & { _tag: "vote" } => ({
      _tag: "vote",
      slot,
      ballot,
      value: { _tag: "batch", commands: [{ clientId: "w", seq: slot, input: { _tag: "put", key, value } }] },
    });
    const values = ["0 é".repeat(2_000), "1 é".repeat(2_000)];
    const votes = values.map((value, i) => putVote(5 + i, `k${i}`, value));
    let atRest: PersistentMap<StoredEntry> = { root: undefined, size: 0 };
    for (const [i, vote] of votes.entries()) {
      const state = kvReplicated.transition({ _tag: "put", key: `k${i}`, value: values[i]! }, kvReplicated.start);
      atRest = pmSet(atRest, `k${i}`, storedEntryOf(state, `k${i}`, vote, 0)!);
    }
    const whole = encodeSnapshot(ctx, contents);
    const snapshot = (): KvRecord => snapshotRecord(makeSnapshot(ctx, { ...contents, atRest }), ballot, 12);
    const { storage } = openThread(tempDir(), { create: true, snapshotSliceChars: 1_000 });
    expect(await appendAsync(storage, votes)).toBeNull();
    // Read back on this thread (a snapshot read whole here), by rule V2 as well.
    expect(storage.readEntry(pmGet(atRest, "k1")!)).toBe(values[1]);
    expect(() => storage.readEntry({ ...pmGet(atRest, "k1")!, index: 1 })).toThrow(/writes no value/);
    expect(await appendAsync(storage, [snapshot()])).toBeNull();
    expect(storage.snapshotValuesAtRest).toBe(2);
    const stored = await new Promise<unknown>((resolve) =>
      storage.read([snapshotSliceKey(12, 0, whole.length + 10)], (error, records) =>
        resolve(error?.message ?? records),
      ),
    );
    expect(stored).toMatchObject([{ contentDigest: contentDigestOf(whole), totalBytes: whole.length, data: whole }]);
    storage.close();
    // A vote record of other bytes where a hole's value should be (its length the same): refused.
    const other = openThread(tempDir(), { create: true, snapshotSliceChars: 1_000 }).storage;
    expect(await appendAsync(other, [votes[0]!, putVote(6, "k1", values[1]!.replace("1", "2"))])).toBeNull();
    expect(String(await appendAsync(other, [snapshot()]))).toMatch(/EntryFromDurableVote: .*"k1".* other entry hashes/);
    other.close();
    // A hole of another size than the value it names, escaped: refused, never written short or long.
    const short = openThread(tempDir(), { create: true, snapshotSliceChars: 1_000 }).storage;
    expect(await appendAsync(short, votes)).toBeNull();
    const record = snapshot();
    const serialization = serializationOf(record)!;
    const take = serialization.takeChunks.bind(serialization);
    serialization.takeChunks = () =>
      take().map((chunk) => (typeof chunk === "string" ? chunk : { ...chunk, chars: chunk.chars - 1 }));
    expect(String(await appendAsync(short, [record]))).toMatch(/hole of \d+ characters was given a value of \d+/);
    short.close();
  });

  it("fills the holes of one batch's values from one read of its vote record, each checked by rule V2", async () => {
    const { ctx, contents } = kvSnapshotContents(3, 2_000);
    const ballot = { round: 1, replica: 1 };
    const values = [0, 1, 2].map((i) => `${i} é`.repeat(2_000));
    const batch = (vs: readonly string[]): KvRecord & { _tag: "vote" } => ({
      _tag: "vote",
      slot: 5,
      ballot,
      value: {
        _tag: "batch",
        commands: vs.map((value, i) => ({ clientId: `w${i}`, seq: 1, input: { _tag: "put", key: `k${i}`, value } })),
      },
    });
    const vote = batch(values);
    let atRest: PersistentMap<StoredEntry> = { root: undefined, size: 0 };
    for (const [i, value] of values.entries()) {
      const state = kvReplicated.transition({ _tag: "put", key: `k${i}`, value }, kvReplicated.start);
      atRest = pmSet(atRest, `k${i}`, storedEntryOf(state, `k${i}`, vote, i)!);
    }
    const whole = encodeSnapshot(ctx, contents);
    const snapshot = (): KvRecord => snapshotRecord(makeSnapshot(ctx, { ...contents, atRest }), ballot, 12);
    const { storage } = openThread(tempDir(), { create: true, snapshotSliceChars: 1_000 });
    expect(await appendAsync(storage, [vote])).toBeNull();
    expect(await appendAsync(storage, [snapshot()])).toBeNull();
    expect(storage.snapshotValuesAtRest).toBe(3);
    const stored = await new Promise<unknown>((resolve) =>
      storage.read([snapshotSliceKey(12, 0, whole.length + 10)], (error, records) =>
        resolve(error?.message ?? records),
      ),
    );
    expect(stored).toMatchObject([{ contentDigest: contentDigestOf(whole), totalBytes: whole.length, data: whole }]);
    storage.close();
    // A value read ahead for a later hole is checked as one read for its own: other bytes refused.
    const other = openThread(tempDir(), { create: true, snapshotSliceChars: 1_000 }).storage;
    expect(await appendAsync(other, [batch([values[0]!, values[1]!, values[2]!.replace("2", "3")])])).toBeNull();
    expect(String(await appendAsync(other, [snapshot()]))).toMatch(/EntryFromDurableVote: .*"k2".* other entry hashes/);
    other.close();
  });

  it("with a trace, lets a written snapshot's state go once its Persist line is written too, and reports its chunks at rest", async () => {
    const { ctx, contents } = kvSnapshotContents(12, 200);
    const whole = encodeSnapshot(ctx, contents);
    const record = snapshotRecord(makeSnapshot(ctx, contents), { round: 1, replica: 1 }, 12);
    const atRest: number[] = [];
    const { storage } = openThread(tempDir(), {
      create: true,
      snapshotSliceChars: 1_000,
      onChunkAtRest: (slot) => atRest.push(slot),
    });
    storage.releaseSnapshots = true;
    storage.awaitTrace = true;
    const slice = (): Promise<unknown> =>
      new Promise((resolve) =>
        storage.read([snapshotSliceKey(12, 100, 50)], (error, records) => resolve(error?.message ?? records)),
      );
    expect(await appendAsync(storage, [record])).toBeNull();
    // Written, but the trace has yet to write its line (after the commit): its bytes are still there.
    expect(record.data).toBe(whole);
    expect(((await slice()) as { data: string }[])[0]!.data).toBe(whole.slice(100, 150));
    expect(atRest).toEqual([]);
    expect(storage.chunksAtRest).toBe(0);
    storage.traced(record);
    expect(() => record.data).toThrow(/read from its durable record/);
    expect(((await slice()) as { data: string }[])[0]!.data).toBe(whole.slice(100, 150));
    expect(atRest).toEqual([12]);
    // Each chunk read back is counted (paxos_lease_transfer_chunks_at_rest_total), a failed read not.
    expect(((await slice()) as { data: string }[])[0]!.data).toBe(whole.slice(100, 150));
    expect(storage.chunksAtRest).toBe(2);
    const missing = await new Promise<unknown>((resolve) =>
      storage.read([snapshotSliceKey(12, 100, 50), "no such key"], (error) => resolve(error?.message)),
    );
    expect(missing).toMatch(/no such key|not in the store|unknown/i);
    expect(storage.chunksAtRest).toBe(2);
    storage.close();
  });

  it("refuses a foreign store with the StorageError Storage.open gives", () => {
    const dir = tempDir();
    openThread(dir, { create: true }).storage.close();
    let caught: unknown;
    try {
      StorageThread.open({ dir, clusterId: "c2", replicaId: 1, workerModule }).storage.close();
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(StorageError);
    expect((caught as StorageError).kind).toBe("foreign");
    expect((caught as StorageError).message).toMatch(/belongs to cluster "c1", not "c2"/);
  });

  it("fails every append after one that failed", async () => {
    const dir = tempDir();
    const { storage } = openThread(dir, { create: true });
    // A record that cannot be encoded as JSON (a BigInt) fails its transaction on the storage thread.
    const bad = { _tag: "promise", ballot: { round: 10n, replica: 1 } } as unknown as KvRecord;
    const [failed, after] = await Promise.all([appendAsync(storage, [bad]), appendAsync(storage, [promise(2)])]);
    expect(failed?.message).toMatch(/BigInt/);
    expect(after).not.toBeNull();
    expect(await appendAsync(storage, [promise(3)])).not.toBeNull();
    storage.close();
  });

  it("fails the store, naming both appends, when the storage thread answers one out of order", async () => {
    const dir = tempDir();
    const { storage } = openThread(dir, { create: true, workerModule: answersSwapped });
    const [first, second] = await Promise.all([appendAsync(storage, [promise(1)]), appendAsync(storage, [promise(2)])]);
    expect(second?.message).toBe("storage thread answered append 2 before append 1");
    expect(first).toBe(second);
    // The store is failed for good: a later append fails at once, with the same error.
    expect(await appendAsync(storage, [promise(3)])).toBe(first);
    storage.close();
  });
});

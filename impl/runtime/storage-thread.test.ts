/**
 * The storage thread: appends are acknowledged in order and only once durable, a reopened store
 * holds them, opening refuses what Storage.open refuses (with the same StorageError), and after a
 * failed append every later one fails too (the replica must stop).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import type { KvRecord } from "./core-adapter.ts";
import { cliBundlePath } from "./program.ts";
import { StorageError } from "./storage.ts";
import { StorageThread } from "./storage-thread.ts";

const dirs: string[] = [];
/** The compiled storage thread replicas run (vitest's global setup builds it from the current sources). */
const workerModule = pathToFileURL(path.join(path.dirname(cliBundlePath), "storage-worker.mjs"));

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "paxos-lease-storage-thread-"));
  dirs.push(dir);
  return path.join(dir, "r1");
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

describe("storage thread", () => {
  it("acknowledges appends in order, and a reopened store holds every record", async () => {
    const dir = tempDir();
    expect(() => StorageThread.open({ dir, clusterId: "c1", replicaId: 1, workerModule })).toThrow(StorageError);
    const first = StorageThread.open({ dir, clusterId: "c1", replicaId: 1, create: true, workerModule });
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
    const second = StorageThread.open({ dir, clusterId: "c1", replicaId: 1, workerModule });
    expect(second.created).toBe(false);
    expect(second.records.map((r) => r._tag)).toEqual(["vote", "vote", "vote", "promise"]);
    expect(second.records[1]).toEqual(vote(2, big));
    expect(second.storage.recordCount).toBe(4);
    second.storage.close();
  });

  it("refuses a foreign store with the StorageError Storage.open gives", () => {
    const dir = tempDir();
    StorageThread.open({ dir, clusterId: "c1", replicaId: 1, create: true, workerModule }).storage.close();
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
    const { storage } = StorageThread.open({ dir, clusterId: "c1", replicaId: 1, create: true, workerModule });
    // A record that cannot be encoded as JSON (a BigInt) fails its transaction on the storage thread.
    const bad = { _tag: "promise", ballot: { round: 10n, replica: 1 } } as unknown as KvRecord;
    const [failed, after] = await Promise.all([appendAsync(storage, [bad]), appendAsync(storage, [promise(2)])]);
    expect(failed?.message).toMatch(/BigInt/);
    expect(after).not.toBeNull();
    expect(await appendAsync(storage, [promise(3)])).not.toBeNull();
    storage.close();
  });
});

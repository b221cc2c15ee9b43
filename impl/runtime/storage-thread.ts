/**
 * The replica's durable log on a thread of its own (impl/runtime/storage-worker.ts): the main
 * thread, which runs `step` and answers peers, hands each batch's records over and goes on; the
 * storage thread encodes, checksums, writes and fsyncs them and says when they are durable. Before,
 * a 1 MiB value cost the main thread two JSON encodings, two SHA-256 checksums and SQLite's copies
 * (its vote and its chosen record), milliseconds during which no heartbeat was answered.
 *
 * The contract is {@link DurableLog}'s: `appendAsync` calls `done` only once the records are
 * durable (or with the error that kept them from it), appends become durable in the order made,
 * and `append`, `close` and the open block until the storage thread has answered (Atomics.wait on
 * a shared counter). The storage thread likewise sleeps on a counter this side bumps after each
 * request, not in its event loop: a hand-over is one futex wake-up. Opening is as strict as
 * {@link Storage.open}, whose StorageError it rethrows.
 */
import { existsSync } from "node:fs";
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from "node:worker_threads";
import {
  ContentDigest,
  serializationOf,
  valueBytes,
  type KeptTransfer,
  type SnapshotChunkMsg,
  type SnapshotSerialization,
  type StoredEntry,
} from "../core/index.ts";
import { kvEntryReader, kvRecordBinary, parseSnapshotSliceKey, type KvRecord } from "./core-adapter.ts";
import { noDiskFaults, type DiskFaults } from "./disk-faults.ts";
import type { DurableLog } from "./driver.ts";
import { StorageError, type ReceivedStage } from "./storage.ts";
import {
  requestsPosted,
  stagedCharsTaken,
  type OpenReply,
  type StorageFault,
  type StorageReply,
  type StorageRequest,
  type StorageWorkerData,
} from "./storage-worker.ts";
import { helperThreadLimits } from "./thread-limits.ts";
import { pmForEach } from "../../spec/persistent-map.ts";
import { nowUs, timeline } from "./timeline.ts";

/** Options of {@link StorageThread.open}. */
export interface StorageThreadOptions {
  readonly dir: string;
  readonly clusterId: string;
  readonly replicaId: number;
  /** Create a fresh store when the directory holds none. Default false (see StorageOptions.create). */
  readonly create?: boolean;
  /** Test-only disk faults (disk-faults.ts). Default: none. */
  readonly faults?: DiskFaults;
  /** Called with the last record each returned fsync made durable, before the appends it covers are acknowledged. */
  readonly onSynced?: (seq: number) => void;
  /** Longest wait for the storage thread to open the store (it reads every record), in milliseconds. Default 300000. */
  readonly openTimeoutMs?: number;
  /**
   * The storage thread's module. Default: the compiled one beside the running bundle, else the
   * TypeScript source. storage-thread.test.ts gives one that wraps the compiled module's
   * `parentPort.postMessage` to answer two appends out of order (the failure that must follow).
   */
  readonly workerModule?: URL;
  /**
   * Characters of a snapshot serialized at a time (see `appendAsync`). Default 256 KiB (a value
   * larger than that is one slice of its own).
   */
  readonly snapshotSliceChars?: number;
  /** Longest a turn goes on serializing a snapshot's slices, in milliseconds (at least one slice a turn). Default 4. */
  readonly snapshotTurnMs?: number;
  /**
   * Characters of a snapshot's slices posted to the storage thread and not yet taken by it beyond
   * which no more are serialized until it has (see `appendAsync`). Default 4 Mi.
   */
  readonly snapshotAheadChars?: number;
  /**
   * Called when a state transfer's staged bytes, read back, did not give the digest the core
   * verified the snapshot against: they are not stored (see `receivedInstalled`).
   */
  readonly onUnvouched?: (refused: UnvouchedStage) => void;
  /**
   * Called for each chunk of a state transfer read back from the stored record of the snapshot
   * of `slot` once this replica let that snapshot's state go (`letGo`): the chunk could come from
   * nowhere but the store.
   */
  readonly onChunkAtRest?: (slot: number) => void;
}

/** A received snapshot's stage whose rows did not give the digest claimed for it. */
export interface UnvouchedStage {
  readonly slot: number;
  /** The digest the core verified the chunks against as they came. */
  readonly contentDigest: string;
  /** The digest of the staged rows as read back. */
  readonly stagedDigest: string;
}

/**
 * The most bytes of buffers kept for votes' encodings between appends (see `returned`): a burst's
 * 1 MiB votes reuse a few, and a replica at rest holds no more than this.
 */
const spareBytesMax = 4 * 1024 * 1024;

/**
 * The smallest value (impl/core's `valueBytes`) whose vote crosses to the storage thread as bytes
 * by transfer. Below it a clone is cheaper for this thread: a vote of a 100-byte put cost 8.4 us
 * to encode and transfer against 4.5 to clone (its receipt 3.8 against 7.4 us), while a 1 MiB
 * vote cost the cluster 15 ms less CPU per write so (docs/performance.md, "Votes handed over as
 * bytes").
 */
const transferBytesMin = 64 * 1024;

/** An append (or a read: `keys`) waiting behind a snapshot that is still being serialized, in the order made. */
interface Queued {
  readonly records: readonly KvRecord[];
  readonly done: (error: Error | null) => void;
  /** A read's keys and what gets its answer (`done` then gets only a failure). */
  readonly read?: { readonly keys: readonly string[]; readonly answer: ReadDone };
  /** When it was made, on the timeline's clock (only with a timeline: bench/write-timeline.ts). */
  readonly madeUs?: number;
}

/** What gets the answer to a read: the records of its keys, in order, or the error that kept it from them. */
type ReadDone = (error: Error | null, records: readonly KvRecord[]) => void;

/** An open store on its thread, with the records it held when opened. */
export interface OpenedThread {
  readonly storage: StorageThread;
  readonly records: readonly KvRecord[];
  readonly created: boolean;
  /** Power-loss mode: how many records a power cut lost at this open (null: no cut). */
  readonly lostToPowerCut: number | null;
  /** A state transfer whose chunks the store kept across the restart (see `keptTransfer`), if any. */
  readonly received: ReceivedStage | null;
}

/**
 * The storage thread's module: compiled beside the CLI bundle (dist/storage-worker.mjs, reached
 * from dist/ or dist/chunks/), or the TypeScript source beside this module. Null when none exists.
 */
function workerModule(): URL | null {
  for (const candidate of ["./storage-worker.mjs", "../storage-worker.mjs", "./storage-worker.ts"]) {
    const url = new URL(candidate, import.meta.url);
    if (existsSync(url)) return url;
  }
  return null;
}

function startWorker(url: URL, data: StorageWorkerData): Worker {
  const transferList = [data.syncPort];
  const resourceLimits = helperThreadLimits();
  if (!url.pathname.endsWith(".ts")) return new Worker(url, { workerData: data, transferList, resourceLimits });
  // From the sources (tsx): worker threads do not inherit tsx's loader on Node 20.
  const boot = `import("tsx/esm/api").then(({ register }) => { register(); return import(${JSON.stringify(url.href)}); })`;
  return new Worker(boot, { eval: true, workerData: data, transferList, resourceLimits });
}

function errorOf(fault: StorageFault): Error {
  if (fault.storage !== undefined)
    return new StorageError(fault.storage.kind, fault.storage.file, fault.storage.detail);
  return new Error(`storage thread: ${fault.message}`);
}

/** The durable log of one replica, kept by a storage thread. */
export class StorageThread implements DurableLog<KvRecord> {
  private lastSeq: number;
  private nextId = 1;
  /**
   * Appends posted and not yet answered, oldest first: the storage thread answers them in the
   * order they were posted. A list, not a Map by request id: two appends are often in flight (a
   * follower's next vote before the last is durable), and a Map that holds an entry while it
   * rehashes keeps its old table, with that entry, pointing to the new one; once a table was in
   * the old generation, every later one, with the batch each `done` closes over (records,
   * effects, the core's state), was kept through every scavenge until the next full collection
   * (docs/performance.md, "What a follower kept through its scavenges").
   */
  private pending: { readonly id: number; readonly done: (error: Error | null) => void }[] = [];
  /** Reads posted and not yet answered, by request id. */
  private readonly reading = new Map<number, ReadDone>();
  /** Set once the thread failed or exited: every later append fails at once. */
  private failure: Error | null = null;
  private closed = false;
  /** Appends held behind a snapshot being serialized in slices (the first holds it), oldest first. */
  private readonly queued: Queued[] = [];
  private nextStage = 1;
  private behindSnapshot = 0;
  /** The transfer whose stage the open kept, until the core takes it again or not (`keptTransfer`, `resumed`). */
  private kept: ReceivedStage | null = null;
  /** The rows of the kept stage read back so far, with the bytes up to the end of each. */
  private readonly keptEnds: number[] = [];
  private resumedCount = 0;
  /** The state transfer whose chunks go to a stage as the core takes them (see `receivedChunk`). */
  private receiving: Receiving | null = null;
  /** Each installed snapshot record whose stored form is the bytes received (see `receivedInstalled`). */
  private readonly received = new WeakMap<object, ReceivedCheck>();
  /** Received snapshots' stages asked to be vouched for, by request id (see `receivedInstalled`). */
  private readonly vouching = new Map<number, ReceivedCheck>();
  private unvouched = 0;
  /** Characters of staged chunks posted to the storage thread, modulo 2^32 (see `stagedAhead`). */
  private stagedPosted = 0;
  /** The most characters of staged chunks ever posted and not yet taken by the storage thread (tests). */
  snapshotAheadMax = 0;
  /** How often a snapshot's serialization waited for the storage thread to take what it was sent. */
  snapshotWaits = 0;

  /** Characters of staged chunks posted to the storage thread that it has not taken yet. */
  private stagedAhead(): number {
    return (this.stagedPosted - Atomics.load(this.syncCell, stagedCharsTaken)) | 0;
  }

  /** Buffers the storage thread gave back, for the next votes' bytes (see `returned`). */
  private readonly spare: ArrayBuffer[] = [];
  private spareBytes = 0;

  private constructor(
    private readonly worker: Worker,
    private readonly syncPort: MessagePort,
    private readonly syncCell: Int32Array,
    readonly file: string,
    lastSeq: number,
    private readonly onSynced: ((seq: number) => void) | undefined,
    private readonly sliceChars: number,
    private readonly turnMs: number,
    private readonly aheadChars: number,
    private readonly onUnvouched: ((refused: UnvouchedStage) => void) | undefined,
    private readonly onChunkAtRest: ((slot: number) => void) | undefined,
  ) {
    this.lastSeq = lastSeq;
    worker.on("message", (reply: StorageReply) => {
      const check = this.vouching.get(reply.id);
      if (check !== undefined) {
        this.vouching.delete(reply.id);
        if (reply.error !== null) return this.fail(errorOf(reply.error));
        return this.vouched(check, reply.vouched!);
      }
      const read = this.reading.get(reply.id);
      if (read !== undefined) {
        // A record a read did not find is that read's error, not the store's: appends go on.
        this.reading.delete(reply.id);
        return read(reply.error === null ? null : errorOf(reply.error), reply.records ?? []);
      }
      if (reply.synced !== undefined) this.onSynced?.(reply.synced);
      this.digested(reply);
      this.returned(reply.buffers);
      // None is pending after a failure (each was told of it then).
      const first = this.pending[0];
      if (first === undefined) return;
      if (first.id !== reply.id)
        return this.fail(new Error(`storage thread answered append ${reply.id} before append ${first.id}`));
      this.pending.shift();
      if (reply.error !== null) this.fail(errorOf(reply.error));
      first.done(reply.error === null ? null : errorOf(reply.error));
    });
    worker.on("error", (error) => this.fail(error));
    worker.on("exit", (code) => {
      if (!this.closed) this.fail(new Error(`storage thread exited (code ${code})`));
    });
    // The process lives as long as its servers do; the storage thread never keeps it alive.
    worker.unref();
  }

  /** Start the storage thread and open the store there (blocking). Throws StorageError like Storage.open. */
  static open(options: StorageThreadOptions): OpenedThread {
    const url = options.workerModule ?? workerModule();
    if (url === null) throw new Error("the storage thread's module (storage-worker) is missing: run 'npm run build'");
    const channel = new MessageChannel();
    const syncCell = new Int32Array(new SharedArrayBuffer(12));
    const worker = startWorker(url, {
      dir: options.dir,
      clusterId: options.clusterId,
      replicaId: options.replicaId,
      create: options.create === true,
      faults: options.faults ?? noDiskFaults,
      reportSynced: options.onSynced !== undefined,
      syncPort: channel.port2,
      syncCell,
    });
    let reply: OpenReply;
    try {
      reply = waitFor<OpenReply>(channel.port1, syncCell, options.openTimeoutMs ?? 300_000, "open the store");
    } catch (error) {
      void worker.terminate();
      throw error;
    }
    if (!reply.ok) {
      void worker.terminate();
      throw errorOf(reply.error);
    }
    const storage = new StorageThread(
      worker,
      channel.port1,
      syncCell,
      reply.file,
      reply.lastSeq,
      options.onSynced,
      options.snapshotSliceChars ?? 256 * 1024,
      options.snapshotTurnMs ?? 4,
      options.snapshotAheadChars ?? 4 * 1024 * 1024,
      options.onUnvouched,
      options.onChunkAtRest,
    );
    storage.kept = reply.received;
    if (reply.received !== null) storage.nextStage = reply.received.stage + 1;
    return {
      storage,
      records: reply.records,
      created: reply.created,
      lostToPowerCut: reply.lostToPowerCut,
      received: reply.received,
    };
  }

  /**
   * Appends so far that waited behind a snapshot still being serialized (see `appendAsync`): how
   * often the order of records on disk held a write back.
   */
  get appendsBehindSnapshot(): number {
    return this.behindSnapshot;
  }

  /**
   * State transfers whose staged bytes, read back on the storage thread, did not give the digest
   * the core verified: each stored as this replica's own serialization instead.
   */
  get receivedUnvouched(): number {
    return this.unvouched;
  }

  /** Sequence number of the last record handed over (durable once its append is acknowledged). */
  get recordCount(): number {
    return this.lastSeq;
  }

  /** Append `records`; returns once they are durable (blocking the calling thread meanwhile). */
  append(records: readonly KvRecord[]): void {
    this.readHolesHere(records);
    if (records.length === 0) return;
    this.flushQueued();
    const id = this.post(records, true);
    this.lastSeq += records.length;
    const reply = waitFor<StorageReply>(this.syncPort, this.syncCell, 60_000, "append");
    if (reply.id !== id) throw new Error(`storage thread answered append ${reply.id}, not ${id}`);
    if (reply.synced !== undefined) this.onSynced?.(reply.synced);
    this.digested(reply);
    this.returned(reply.buffers);
    if (reply.error !== null) throw errorOf(reply.error);
  }

  /**
   * A Buffer of `bytes` at the start of an ArrayBuffer of its own, to be transferred: a spare one
   * the storage thread gave back if one is large enough, else a fresh one.
   */
  private bufferFor(bytes: number): Buffer {
    const i = this.spare.findIndex((b) => b.byteLength >= bytes);
    if (i < 0) return Buffer.allocUnsafeSlow(bytes);
    const buffer = this.spare[i]!;
    this.spare.splice(i, 1);
    this.spareBytes -= buffer.byteLength;
    return Buffer.from(buffer, 0, bytes);
  }

  /**
   * Keep the buffers the storage thread gave back (it has written their records) for the next
   * votes, up to `spareBytesMax`: an encoding into pages already there costs no page faults. The
   * rest are left to this thread's collector (on the storage thread, which allocates little, they
   * waited for a collection that seldom came).
   */
  private returned(buffers: readonly ArrayBuffer[] | undefined): void {
    for (const buffer of buffers ?? []) {
      if (this.spareBytes + buffer.byteLength > spareBytesMax) continue;
      this.spare.push(buffer);
      this.spareBytes += buffer.byteLength;
    }
  }

  /**
   * Hand each snapshot the content digest the storage thread computed over its slices; with
   * `releaseSnapshots`, the snapshot's state then goes (impl/core/snapshot.ts, `release`): its
   * record is written, and a transfer's chunks are read from it (`readSnapshotSlice`). With
   * `awaitTrace` it goes once the trace wrote its record too (`traced`).
   */
  private digested(reply: StorageReply): void {
    for (const { stage, contentDigest } of reply.digests ?? []) {
      const staged = this.staging.get(stage);
      this.staging.delete(stage);
      if (staged === undefined) continue;
      const { serialization, slot } = staged;
      serialization.knownDigest = contentDigest;
      if (!this.releaseSnapshots) continue;
      if (this.awaitTrace && !this.tracedFirst.delete(serialization)) this.untraced.set(serialization, slot);
      else this.letGo(serialization, slot);
    }
  }

  /**
   * Whether a snapshot's state goes once its record is written (see `digested`): only for a core
   * whose transfers read their chunks from the records (`valuesAtRest`). Default false.
   */
  releaseSnapshots = false;

  /**
   * Whether a trace writes each Persist's record whole once its commit is durable (impl/runtime/
   * trace.ts): it reads a snapshot record's bytes from the snapshot's state, serialized again, so
   * with `releaseSnapshots` that state goes once the record is written and its line too (`traced`),
   * whichever comes last. Default false.
   */
  awaitTrace = false;
  /** Snapshots written whose Persist line is still to come (see `awaitTrace`), with their slots. */
  private readonly untraced = new WeakMap<SnapshotSerialization, number>();
  /** Snapshots whose Persist line came before their digest (see `awaitTrace`). */
  private readonly tracedFirst = new WeakSet<SnapshotSerialization>();

  /** The trace wrote the Persist line of `record`: a snapshot's state written already goes now (see `awaitTrace`). */
  traced(record: KvRecord): void {
    if (!this.releaseSnapshots || record._tag !== "snapshot") return;
    const serialization = serializationOf(record);
    if (serialization === undefined) return;
    const slot = this.untraced.get(serialization);
    if (slot === undefined) {
      this.tracedFirst.add(serialization);
      return;
    }
    this.untraced.delete(serialization);
    this.letGo(serialization, slot);
  }

  /**
   * Let the state of the snapshot of `slot` go (its record is on disk): a transfer's chunks of it
   * are read from its record from now on, and each read is reported (`onChunkAtRest`).
   */
  letGo(serialization: SnapshotSerialization, slot: number): void {
    if (!serialization.release()) return;
    this.releasedSlots.add(slot);
    // A transfer serves the latest snapshots or one it pinned: the last few released are enough.
    if (this.releasedSlots.size > releasedSlotsKept)
      this.releasedSlots.delete(this.releasedSlots.values().next().value!);
  }

  /** The slots of the snapshots whose state went last (see `letGo`), oldest first. */
  private readonly releasedSlots = new Set<number>();

  /**
   * The slots of the older snapshots that compaction must keep besides the latest two (impl/core's
   * `pinnedSnapshots` of the driver's latest state), read before each append and sent ahead of it
   * when they changed. Default: none.
   */
  pinnedSnapshots: () => readonly number[] = () => [];
  /**
   * The slots of the vote records that compaction must keep below the log's truncation point
   * (impl/core's `pinnedVotes` of the driver's latest state: the votes that wrote the key-value
   * store's values at rest, rule V3, proofs/store-at-rest.md), read and sent as `pinnedSnapshots`.
   * The pins sent before an append are those of a state at least as recent as the step that made
   * the append's records, so a compaction that append causes keeps every vote a reference then
   * named. Default: none.
   */
  pinnedVotes: () => ReadonlySet<number> = () => new Set();
  private pinnedSent: readonly number[] = [];
  private pinnedVotesSent: ReadonlySet<number> = new Set();

  /** Send the pinned snapshots and votes ahead of an append, if they changed since last sent. */
  private sendPins(): void {
    const slots = this.pinnedSnapshots();
    const votes = this.pinnedVotes();
    const sameSlots = slots.length === this.pinnedSent.length && slots.every((slot, i) => slot === this.pinnedSent[i]);
    const sameVotes =
      votes === this.pinnedVotesSent ||
      (votes.size === this.pinnedVotesSent.size && [...votes].every((slot) => this.pinnedVotesSent.has(slot)));
    if (sameSlots && sameVotes) return;
    this.pinnedSent = slots;
    this.pinnedVotesSent = votes;
    this.request({ kind: "pin", slots, votes: [...votes] });
  }

  /**
   * Append `records`; `done` once they are durable, or with the error that kept them from it.
   *
   * A snapshot record the core made with its bytes still unserialized (impl/core/snapshot.ts,
   * `serializationOf`) is serialized here in slices of about `snapshotSliceChars`, for at most
   * `snapshotTurnMs` of each event-loop turn, each streamed to the storage thread as it is made;
   * the record follows, and the storage thread digests the slices as they come and writes each to
   * the store's staging table at once (storage.ts, `stage`), whence the record's append moves them
   * into the parts of its data (`StagedRecord`): never joined, nor held until the record comes. No
   * more is serialized while `snapshotAheadChars` of slices wait for the storage thread to take
   * them: under load this thread made them faster than that one wrote them, and a 40 MiB state's
   * slices sat in the storage thread's heap (37 to 40 MB at a leader's peak in bursts of 1 MiB
   * PUTs) or, taken more slowly, serialized in its port (docs/performance.md). Appends made
   * meanwhile wait behind it, so that records still reach the disk in the order made (their
   * effects wait as they would behind a slow fsync), and the event loop answers peers between
   * slices: serializing a 44 MiB state in
   * one turn held every replica's loop for 200 to 600 ms at the same slot.
   */
  appendAsync(records: readonly KvRecord[], done: (error: Error | null) => void): void {
    if (records.length === 0) return done(null);
    if (this.failure !== null) return done(this.failure);
    if (this.closed) return done(new Error("storage is closed"));
    this.readHolesHere(records);
    this.sendPins();
    this.lastSeq += records.length;
    const pending = this.queued.length > 0 || records.some((r) => unserialized(r) !== undefined);
    if (!pending) {
      this.pending.push({ id: this.post(records, false), done });
      return;
    }
    if (this.queued.length > 0) this.behindSnapshot += 1;
    this.queued.push(timeline === null ? { records, done } : { records, done, madeUs: nowUs() });
    if (this.queued.length === 1) this.pump();
  }

  /**
   * A snapshot among `records` whose slices leave holes for the store's values at rest (rule V5)
   * has them filled on the storage thread; read whole on this thread instead (a trace's line of its
   * record, a transfer's digest asked for before the storage thread gave it back), it reads each
   * value back from its vote record (`readEntry`).
   */
  private readHolesHere(records: readonly KvRecord[]): void {
    for (const record of records) {
      const serialization = unserialized(record);
      if (serialization?.named != null) serialization.fillFrom((entry) => this.readEntry(entry));
    }
  }

  /**
   * The store's value at rest `entry` names, read back now from its vote record by rule V2 (with the
   * store as the replicas run it: `kvEntryReader`), blocking this thread for the read. For what
   * this thread reads whole and rarely (`readHolesHere`): a value a command or a read needs comes
   * back without blocking (`read`, the driver's `ReadEntries`).
   */
  readEntry(entry: StoredEntry): string {
    if (this.failure !== null) throw this.failure;
    if (this.closed) throw new Error("storage is closed");
    const id = this.nextId++;
    this.request({ kind: "read", id, keys: [kvEntryReader.key(entry)], sync: true });
    const reply = waitFor<StorageReply>(this.syncPort, this.syncCell, 60_000, "read a value at rest back");
    if (reply.id !== id) throw new Error(`storage thread answered request ${reply.id}, not ${id}`);
    if (reply.error !== null) throw errorOf(reply.error);
    const record = reply.records?.[0];
    if (record === undefined) throw new Error(`the storage thread read no record for ${kvEntryReader.key(entry)}`);
    return kvEntryReader.value(entry, record);
  }

  /** Serialize the first queued append's snapshot one slice per turn; post the appends it held once done. */
  private pump(): void {
    const step = (): void => {
      if (this.failure !== null || this.closed) return;
      const first = this.queued[0];
      if (first === undefined) return;
      const check = this.uncheckedIn(first.records);
      if (check !== undefined) {
        const until = performance.now() + this.turnMs;
        while (check.verdict === null) {
          this.checkSome(check, this.sliceChars);
          if (performance.now() >= until) break;
        }
        if (check.verdict === true && check.vouch === "unasked") this.askVouch(check);
        // The storage thread's answer (`vouched`) takes it on.
        if (check.vouch === "asked") return;
        setImmediate(step);
        return;
      }
      const serialization = first.records.map((r) => this.unstaged(r)).find((s) => s !== undefined && !s.complete);
      if (serialization !== undefined) {
        const startUs = timeline === null ? 0 : nowUs();
        const until = performance.now() + this.turnMs;
        while (!serialization.complete && performance.now() < until && this.stagedAhead() < this.aheadChars)
          this.stage(serialization, this.sliceChars);
        timeline?.span("snapshot-slices", startUs);
        if (serialization.complete || this.stagedAhead() < this.aheadChars) setImmediate(step);
        else {
          // The storage thread is behind: what is posted waits in its port, serialized, and
          // whatever it has taken is its garbage until its next full collection. Look again soon.
          this.snapshotWaits += 1;
          setTimeout(step, 1);
        }
        return;
      }
      this.queued.shift();
      this.postQueued(first);
      if (first.madeUs !== undefined) timeline?.span("snapshot-held", first.madeUs);
      // The appends behind it go at once, up to the next one that holds a snapshot.
      while (this.queued.length > 0 && !this.queued[0]!.records.some((r) => unserialized(r) !== undefined))
        this.postQueued(this.queued.shift()!);
      if (this.queued.length > 0) setImmediate(step);
    };
    setImmediate(step);
  }

  /** The stage (on the storage thread) of each serialization whose slices went there. */
  private readonly stages = new WeakMap<SnapshotSerialization, number>();
  /** The serialization of each stage whose record was posted, until its digest comes back. */
  private readonly staging = new Map<
    number,
    { readonly serialization: SnapshotSerialization; readonly slot: number }
  >();

  /** Serialize about `chars` more characters of `serialization` and send them to the storage thread. */
  private stage(serialization: SnapshotSerialization, chars: number): void {
    let stage = this.stages.get(serialization);
    let holes: StoredEntry[] | undefined;
    if (stage === undefined) {
      stage = this.nextStage++;
      this.stages.set(serialization, stage);
      // The values it may leave holes for, so that the storage thread reads each record once.
      const named = serialization.named;
      if (named != null) {
        holes = [];
        pmForEach(named, (_key, entry) => holes!.push(entry));
      }
    }
    serialization.advance(chars);
    this.request({
      kind: "stage",
      stage,
      chunks: serialization.takeChunks(),
      ...(holes === undefined ? {} : { holes }),
    });
  }

  /**
   * A chunk of a state transfer that the core took from `from` (impl/runtime/transfer-staging.ts):
   * written to a stage of its own at once, as the slices of a snapshot are, so that the snapshot it
   * installs can be stored as the bytes received instead of being serialized again, and so that a
   * restart keeps them (the first chunk notes the stage as this transfer's: `keptTransfer`). A
   * first chunk starts a new stage (dropping the one before); a chunk that does not follow the
   * stage's last is not staged, and the stage is dropped (the snapshot is then serialized as any
   * other).
   */
  receivedChunk(from: number, m: SnapshotChunkMsg): void {
    if (this.failure !== null || this.closed) return;
    const { slot, digest, contentDigest, totalBytes, offset, data } = m;
    let received: Omit<ReceivedStage, "parts"> | undefined;
    if (offset === 0) {
      this.receivedDropped();
      this.receiving = { slot, contentDigest, stage: this.nextStage++, bytes: 0 };
      received = { stage: this.receiving.stage, from, slot, digest, contentDigest, totalBytes };
    }
    const r = this.receiving;
    if (r === null || r.slot !== slot || r.contentDigest !== contentDigest || r.bytes !== offset)
      return this.receivedDropped();
    r.bytes += data.length;
    this.request({ kind: "stage", stage: r.stage, chunks: [data], ...(received === undefined ? {} : { received }) });
  }

  /**
   * The transfer whose chunks the store kept across the restart, as `Recover` describes it (its
   * chunks are read back a piece at a time: `keptPiece`); null when there is none. `resumed` then
   * says how much the core took again.
   */
  keptTransfer(): KeptTransfer | null {
    const kept = this.kept;
    if (kept === null) return null;
    const { from, slot, digest, contentDigest, totalBytes } = kept;
    return { from, slot, digest, contentDigest, totalBytes };
  }

  /**
   * The piece of the kept transfer's chunks that starts at byte `offset` (where the core's resumed
   * transfer stands): the next rows of its stage, about `keptReadChars` characters of them, read
   * back from the storage thread (blocking, for the milliseconds of one read); `last` once none are
   * left. A restarted replica so holds one piece of the kept chunks at a time, never all of them.
   * Null when no transfer is kept (or `resumed` said how it ended). A piece asked for anywhere but
   * where the rows read so far end is empty and last: the resumption ends there.
   */
  keptPiece(
    offset: number,
  ): { readonly offset: number; readonly chunks: readonly string[]; readonly last: boolean } | null {
    const kept = this.kept;
    if (kept === null) return null;
    const ends = this.keptEnds;
    if (offset !== (ends.at(-1) ?? 0)) return { offset, chunks: [], last: true };
    const id = this.nextId++;
    this.request({ kind: "readStaged", id, stage: kept.stage, from: ends.length, charsMax: keptReadChars });
    const reply = waitFor<StorageReply>(this.syncPort, this.syncCell, 60_000, "read a kept transfer's chunks");
    if (reply.id !== id) throw new Error(`storage thread answered request ${reply.id}, not ${id}`);
    if (reply.error !== null) throw errorOf(reply.error);
    const rows = reply.rows ?? [];
    for (const row of rows) ends.push((ends.at(-1) ?? 0) + row.length);
    return { offset, chunks: rows, last: rows.length === 0 };
  }

  /**
   * The core took `taken` bytes of the kept transfer again (0: none, it starts over): the stage
   * keeps the rows that hold them and goes on from there as the transfer's; the rest go.
   */
  resumed(taken: number): void {
    const kept = this.kept;
    this.kept = null;
    if (kept === null || this.failure !== null || this.closed) return;
    const parts = taken === 0 ? 0 : this.keptEnds.indexOf(taken) + 1;
    this.keptEnds.length = 0;
    this.request({ kind: "resumeStage", stage: kept.stage, parts });
    if (parts === 0) return;
    this.resumedCount += 1;
    this.receiving = { slot: kept.slot, contentDigest: kept.contentDigest, stage: kept.stage, bytes: taken };
  }

  /** State transfers that went on after a restart from the chunks kept (see `resumed`: told more than 0 bytes). */
  get transfersResumed(): number {
    return this.resumedCount;
  }

  /** The transfer being staged was given up or refused: its stage goes. */
  receivedDropped(): void {
    const r = this.receiving;
    this.receiving = null;
    if (r === null || this.failure !== null || this.closed) return;
    this.request({ kind: "dropStage", stage: r.stage });
  }

  /**
   * The core installed the snapshot whose chunks were staged, as `record` (its own serialization
   * of the decoded state, impl/core/transfer.ts): stored as the staged bytes if that serialization
   * gives exactly them. The check digests the serialization piece by piece before the record's
   * append (`checkSome`, a turn at a time, nothing kept); should it differ (bytes of a version
   * that serialized otherwise), the stage is dropped and the record serialized as any other. Should
   * it match, the storage thread reads the staged rows back and digests them before the append
   * goes (`askVouch`): bytes it cannot vouch for (a staging bug) are never stored; the stage
   * goes, `onUnvouched` is told, and the record is serialized as any other.
   */
  receivedInstalled(record: KvRecord, slot: number, contentDigest: string, totalBytes: number): void {
    const r = this.receiving;
    const serialization = unserialized(record);
    if (r === null || serialization === undefined || record._tag !== "snapshot") return;
    this.receiving = null;
    if (r.slot !== slot || r.contentDigest !== contentDigest || r.bytes !== totalBytes || record.slot !== slot) {
      if (this.failure === null && !this.closed) this.request({ kind: "dropStage", stage: r.stage });
      return;
    }
    const pieces = serialization.escapedPieces();
    this.received.set(record, {
      slot,
      vouch: "unasked",
      stage: r.stage,
      contentDigest,
      totalBytes,
      serialization,
      pieces,
      digest: new ContentDigest(),
      verdict: null,
    });
  }

  /** The first received snapshot record of `records` whose check is not done (its own digest, then the stage's). */
  private uncheckedIn(records: readonly KvRecord[]): ReceivedCheck | undefined {
    for (const record of records) {
      const check = this.received.get(record);
      if (check === undefined) continue;
      if (check.verdict === null || (check.verdict && (check.vouch === "unasked" || check.vouch === "asked")))
        return check;
    }
    return undefined;
  }

  /**
   * Its own serialization gives the digest the core verified: ask the storage thread whether the
   * staged rows, read back, give it too (storage-worker.ts, `vouch`). A row written wrong, or a
   * chunk staged twice or not at all, would otherwise be stored, and found only by the next
   * open's check of the snapshot.
   */
  private askVouch(check: ReceivedCheck): void {
    const id = this.nextId++;
    check.vouch = "asked";
    this.vouching.set(id, check);
    this.request({ kind: "vouch", id, stage: check.stage, contentDigest: check.contentDigest });
  }

  /** The answer to `askVouch`: the staged bytes are stored, or (refused, the stage gone) the serialization. */
  private vouched(check: ReceivedCheck, answer: NonNullable<StorageReply["vouched"]>): void {
    if (check.vouch !== "asked") {
      // Given up meanwhile (a blocking append or the close serialized the record): the stage goes.
      if (answer.ok && this.failure === null && !this.closed) this.request({ kind: "dropStage", stage: check.stage });
      return;
    }
    check.vouch = answer.ok ? "yes" : "no";
    if (!answer.ok) {
      this.unvouched += 1;
      this.onUnvouched?.({ slot: check.slot, contentDigest: check.contentDigest, stagedDigest: answer.contentDigest });
    }
    // The append that holds it waited at the head of the queue, with no turn scheduled.
    if (this.queued.length > 0) this.pump();
  }

  /** Store a received snapshot as its serialization after all, not waiting for the storage thread's answer. */
  private giveUp(check: ReceivedCheck): void {
    if (check.verdict !== true || check.vouch === "yes" || check.vouch === "no" || check.vouch === "abandoned") return;
    if (check.vouch === "unasked" && this.failure === null && !this.closed)
      this.request({ kind: "dropStage", stage: check.stage });
    check.vouch = "abandoned";
  }

  /** Digest about `chars` more characters of a received snapshot's own serialization; judge it at the end. */
  private checkSome(check: ReceivedCheck, chars: number): void {
    let taken = 0;
    while (taken < chars) {
      const piece = check.pieces.next();
      if (piece.done === true) {
        check.verdict = check.digest.hex === check.contentDigest;
        if (check.verdict) check.serialization.knownDigest = check.contentDigest;
        else if (this.failure === null && !this.closed) this.request({ kind: "dropStage", stage: check.stage });
        return;
      }
      check.digest.update(piece.value);
      taken += piece.value.length;
    }
  }

  /** A snapshot record's serialization, unless it is stored as the bytes received (then undefined). */
  private unstaged(record: KvRecord): SnapshotSerialization | undefined {
    const check = this.received.get(record);
    if (check?.verdict === true && check.vouch === "yes") return undefined;
    return unserialized(record);
  }

  /** Post every queued append now, finishing their snapshots' serialization at once (a blocking append, the close). */
  private flushQueued(): void {
    while (this.queued.length > 0 && this.failure === null) {
      const next = this.queued.shift()!;
      for (let check = this.uncheckedIn(next.records); check !== undefined; check = this.uncheckedIn(next.records)) {
        this.checkSome(check, Number.POSITIVE_INFINITY);
        // No waiting here for the storage thread to vouch for the stage: serialized instead.
        this.giveUp(check);
      }
      for (const record of next.records) {
        const serialization = this.unstaged(record);
        while (serialization !== undefined && !serialization.complete)
          this.stage(serialization, Number.POSITIVE_INFINITY);
      }
      this.postQueued(next);
    }
  }

  /** Post an append or read that waited in `queued`. */
  private postQueued(queued: Queued): void {
    if (queued.read !== undefined) this.postRead(queued.read.keys, queued.read.answer);
    else this.pending.push({ id: this.post(queued.records, false), done: queued.done });
  }

  /**
   * Read the records of `keys` (storage.ts, `readKeyed`: the votes a value at rest names) as they
   * stand after every append made so far, before any made later: the storage thread serves it in
   * its place among the appends, where no compaction caused by a later append has run (it runs
   * at the end of a group commit, after the reads in it). `answer` gets the records in order, or
   * the error, which names a key not in the store; the store itself goes on either way.
   */
  read(keys: readonly string[], answer: ReadDone): void {
    if (this.failure !== null) return answer(this.failure, []);
    if (this.closed) return answer(new Error("storage is closed"), []);
    const counted = this.countedAtRest(keys, answer);
    if (this.queued.length === 0) return this.postRead(keys, counted);
    this.queued.push({ records: [], done: (error) => counted(error, []), read: { keys, answer: counted } });
  }

  /**
   * `answer`, counting first each chunk read of a snapshot whose state went (`chunksAtRest`) and
   * reporting it (`onChunkAtRest`).
   */
  private countedAtRest(keys: readonly string[], answer: ReadDone): ReadDone {
    if (this.releasedSlots.size === 0) return answer;
    const slots: number[] = [];
    for (const key of keys) {
      const slice = parseSnapshotSliceKey(key);
      if (slice !== null && this.releasedSlots.has(slice.slot)) slots.push(slice.slot);
    }
    if (slots.length === 0) return answer;
    return (error, records) => {
      if (error === null) {
        this.chunksAtRestCount += slots.length;
        for (const slot of slots) this.onChunkAtRest?.(slot);
      }
      answer(error, records);
    };
  }

  private chunksAtRestCount = 0;
  private snapshotValuesAtRestCount = 0;

  /**
   * The store's values at rest a snapshot serialized by leaving a hole that the storage thread
   * filled from the vote record (rule V5, impl/core/snapshot.ts `SnapshotHole`), so far.
   */
  get snapshotValuesAtRest(): number {
    return this.snapshotValuesAtRestCount;
  }

  /**
   * State-transfer chunks read back from the stored record of a snapshot whose state this replica
   * let go (`letGo`), each counted once it was read.
   */
  get chunksAtRest(): number {
    return this.chunksAtRestCount;
  }

  private postRead(keys: readonly string[], answer: ReadDone): void {
    const id = this.nextId++;
    this.reading.set(id, answer);
    this.request({ kind: "read", id, keys });
  }

  /**
   * Post an append (`lastSeq` counts it already). A vote of a large value crosses as the record
   * codec's bytes, encoded here once and transferred (postMessage's transfer list): a structured
   * clone copied a 1 MiB value into the message and out of it again into a string on the storage
   * thread, which then encoded it a third time. A small vote is cloned as before: for it the
   * encoding and the transfer cost this thread more than the clone (see `transferBytesMin`). A
   * snapshot record whose slices went to the storage thread crosses without its bytes, naming its
   * stage instead.
   */
  private post(records: readonly KvRecord[], sync: boolean): number {
    if (this.closed) throw new Error("storage is closed");
    if (this.failure !== null) throw this.failure;
    const id = this.nextId++;
    const staged: { index: number; stage: number }[] = [];
    const transfer: ArrayBuffer[] = [];
    const plain = records.map((record, index): KvRecord | Uint8Array => {
      if (record._tag === "vote" && valueBytes(record.value) >= transferBytesMin) {
        const bytes = kvRecordBinary.encodeWith(record, (size) => this.bufferFor(size));
        transfer.push(bytes.buffer as ArrayBuffer);
        return bytes;
      }
      const serialization = unserialized(record);
      if (record._tag !== "snapshot" || serialization === undefined) return record;
      const { slot, digest, maxBal, logTruncatedUpTo } = record;
      const check = this.received.get(record);
      // Appended without waiting its turn (a blocking append): checked at once.
      if (check !== undefined && check.verdict === null) this.checkSome(check, Number.POSITIVE_INFINITY);
      if (check !== undefined) this.giveUp(check);
      if (check?.verdict === true && check.vouch === "yes") {
        // Stored as the bytes received: the stage the transfer's chunks went to, never serialized here.
        this.received.delete(record);
        staged.push({ index, stage: check.stage });
        // Its bytes are the stage's: nothing is left to serialize, and its state may go once written.
        serialization.storedAs(check.totalBytes);
        this.staging.set(check.stage, { serialization, slot });
        return { _tag: "snapshot", slot, digest, contentDigest: "", maxBal, logTruncatedUpTo, data: "" } as const;
      }
      const stage = this.stages.get(serialization);
      // Serialized at once by a reader before any slice went (a trace, say): it crosses whole.
      if (stage === undefined)
        return {
          _tag: "snapshot",
          slot,
          digest,
          contentDigest: record.contentDigest,
          maxBal,
          logTruncatedUpTo,
          data: record.data,
        } as const;
      // Whatever a reader finished meanwhile (without handing it over) goes to the stage first.
      const rest = serialization.takeChunks();
      if (rest.length > 0) this.request({ kind: "stage", stage, chunks: rest });
      staged.push({ index, stage });
      this.stages.delete(serialization);
      this.staging.set(stage, { serialization, slot });
      // The storage thread digests the slices and fills in the content digest and the bytes.
      return { _tag: "snapshot", slot, digest, contentDigest: "", maxBal, logTruncatedUpTo, data: "" } as const;
    });
    this.request({ kind: "append", id, records: plain, sync, staged }, transfer);
    return id;
  }

  /**
   * Hand `request` to the storage thread, moving the ArrayBuffers of `transfer` there (they are
   * detached here), and wake it (it sleeps on the counter, not in its event loop).
   */
  private request(request: StorageRequest, transfer: readonly ArrayBuffer[] = []): void {
    if (request.kind === "stage") {
      for (const chunk of request.chunks) {
        if (typeof chunk !== "string") this.snapshotValuesAtRestCount += 1;
        this.stagedPosted = (this.stagedPosted + (typeof chunk === "string" ? chunk.length : chunk.chars)) | 0;
      }
      this.snapshotAheadMax = Math.max(this.snapshotAheadMax, this.stagedAhead());
    }
    this.worker.postMessage(request, transfer);
    Atomics.add(this.syncCell, requestsPosted, 1);
    Atomics.notify(this.syncCell, requestsPosted);
  }

  private fail(error: Error): void {
    if (this.failure !== null) return;
    this.failure = error;
    const waiting = [...this.pending.map((p) => p.done), ...this.queued.map((q) => q.done)];
    const reads = [...this.reading.values()];
    this.pending = [];
    this.reading.clear();
    this.queued.length = 0;
    for (const done of waiting) done(error);
    for (const answer of reads) answer(error, []);
  }

  /** Close the store (waiting for the appends before it) and end the thread. */
  close(): void {
    if (this.closed) return;
    this.flushQueued();
    if (this.failure === null) {
      this.request({ kind: "close", id: this.nextId++ });
      try {
        waitFor<StorageReply>(this.syncPort, this.syncCell, 60_000, "close the store");
      } catch {
        // A thread that does not answer is ended below; its last appends were never acknowledged.
      }
    }
    this.closed = true;
    this.syncPort.close();
    void this.worker.terminate();
  }
}

/** Released snapshots' slots `letGo` remembers, for `onChunkAtRest`. */
const releasedSlotsKept = 16;

/** Characters of a kept transfer's chunks read back at a time, a piece handed to the core (`keptPiece`). */
const keptReadChars = 4 * 1024 * 1024;

/** A state transfer being staged chunk by chunk. */
interface Receiving {
  readonly slot: number;
  readonly contentDigest: string;
  readonly stage: number;
  /** Bytes staged so far. */
  bytes: number;
}

/** An installed snapshot's own serialization being digested, to store it as the bytes received if they are the same. */
interface ReceivedCheck {
  readonly slot: number;
  readonly stage: number;
  /** The received bytes' digest (verified by the core as they came). */
  readonly contentDigest: string;
  /** Their size. */
  readonly totalBytes: number;
  readonly serialization: SnapshotSerialization;
  readonly pieces: Generator<string, void, undefined>;
  readonly digest: ContentDigest;
  /** null while digesting; true: the same bytes, stored from the stage if vouched for; false: serialized. */
  verdict: boolean | null;
  /**
   * The storage thread's check of the stage's rows as read back (`askVouch`): "yes", stored from
   * the stage; "no" (the stage gone) or "abandoned" (not waited for), serialized as any other.
   */
  vouch: "unasked" | "asked" | "yes" | "no" | "abandoned";
}

/** The serialization in slices a snapshot record still waits for, if it is one (undefined: its bytes are at hand). */
function unserialized(record: KvRecord): SnapshotSerialization | undefined {
  return record._tag === "snapshot" ? serializationOf(record) : undefined;
}

/** Block until the storage thread posts the next synchronous reply on `port`, at most `timeoutMs`. */
function waitFor<T>(port: MessagePort, cell: Int32Array, timeoutMs: number, what: string): T {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    // Read the counter before looking for the reply: a reply posted after the look changes it,
    // so the wait below returns at once instead of sleeping through its timeout.
    const seen = Atomics.load(cell, 0);
    const received = receiveMessageOnPort(port);
    if (received !== undefined) return received.message as T;
    const left = deadline - performance.now();
    if (left <= 0) throw new Error(`the storage thread did not ${what} within ${timeoutMs} ms`);
    Atomics.wait(cell, 0, seen, Math.min(left, 1000));
  }
}

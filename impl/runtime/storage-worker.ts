/**
 * The storage thread of a replica process: it owns the replica's SQLite store (impl/runtime/storage.ts)
 * and does all of its work (each record's encoding and checksum, SQLite's copy of it into
 * the WAL, the fsync) away from the thread that runs `step` and answers peers, so that a write of
 * a large value never holds up a heartbeat. impl/runtime/storage-thread.ts is the other side.
 *
 * Group commit: every append waiting when the thread gets to work is written, each in its own
 * transaction and in the order sent, and then made durable by one fsync; only then is each
 * acknowledged. After a failure every later append is refused too (the replica stops). It never
 * acknowledges a record before the fsync that covers it has returned.
 */
import { isMainThread, parentPort, receiveMessageOnPort, workerData, type MessagePort } from "node:worker_threads";
import {
  compactRecords,
  ContentDigest,
  escapedEntryOfVote,
  valueBytes,
  type SnapshotChunk,
  type StoredEntry,
} from "../core/index.ts";
import {
  kvCodecs,
  kvEntryReader,
  kvRecordBinary,
  kvRecordKey,
  kvReplicated,
  parseSnapshotSliceKey,
  type KvRecord,
} from "./core-adapter.ts";
import type { DiskFaults } from "./disk-faults.ts";
import { Either } from "effect";
import {
  EncodedRecord,
  SplitRecord,
  StagedRecord,
  Storage,
  StorageError,
  type Appended,
  type ReceivedStage,
} from "./storage.ts";
import { nowUs, timeline } from "./timeline.ts";
import v8 from "node:v8";
import { runInNewContext } from "node:vm";

/**
 * Characters of snapshot slices written since this thread's last full collection (and bytes of the
 * values in the vote records read back for their holes: `HoleReader`) that make the
 * next one due (see {@link fullCollection}); a group of requests takes no more once it is due, so
 * that this thread holds at most about this many characters of written slices (a whole state's,
 * 37 to 40 MB at a leader's peak in bursts of 1 MiB PUTs, when it drained a queue of them in one
 * group; docs/performance.md).
 */
const stagedCharsCollect = 8 * 1024 * 1024;

/**
 * A full collection of this thread's heap, on demand. A snapshot's slices reach this thread as
 * strings (the state's values serialized), garbage in its large-object space once written; the
 * thread allocates too little for V8 to start a full collection soon, and it sleeps in
 * Atomics.wait, where no idle-time collection runs: after a snapshot of sixteen 1 MiB values,
 * storage threads held 30 to 32 MB of them through 40 s of idle (docs/performance.md). V8 gives a
 * `gc` function only to contexts made under `--expose-gc`: the flag is set for one new context and
 * unset again.
 */
function fullCollection(): () => void {
  v8.setFlagsFromString("--expose-gc");
  try {
    return runInNewContext("gc") as () => void;
  } finally {
    v8.setFlagsFromString("--no-expose-gc");
  }
}

/**
 * Rows of a compaction decided at a time between groups of appends (storage.ts, `compactSome`):
 * small enough that an append arriving meanwhile waits a fraction of a millisecond, where a whole
 * compaction of two intervals' rows held the next append for 10 to 60 ms on every replica at once
 * (docs/performance.md, "Compaction between appends").
 */
const compactionIdlePieceRows = 64;

/** What the main thread gives the storage thread when it starts it. */
export interface StorageWorkerData {
  readonly dir: string;
  readonly clusterId: string;
  readonly replicaId: number;
  readonly create: boolean;
  /** Test-only disk faults (disk-faults.ts). */
  readonly faults: DiskFaults;
  /** Report every returned fsync (the `synced` field of replies). */
  readonly reportSynced: boolean;
  /** Replies the main thread waits for synchronously (the open, a blocking append, the close). */
  readonly syncPort: MessagePort;
  /**
   * Two counters: [0] the replies posted on `syncPort` (the main thread waits on it with
   * Atomics.wait), [1] the requests posted to this thread (it waits on that one; see `serve`).
   */
  readonly syncCell: Int32Array;
}

/** The index in `syncCell` of the counter of requests posted to the storage thread. */
export const requestsPosted = 1;
/**
 * The index in `syncCell` of the characters of staged chunks this thread has taken off its port
 * (modulo 2^32): the main thread serializes a snapshot no further ahead of it than a bound
 * (storage-thread.ts, `snapshotAheadChars`).
 */
export const stagedCharsTaken = 2;

/** A request from the main thread, in the order the records must be written. */
export type StorageRequest =
  | {
      readonly kind: "append";
      readonly id: number;
      /**
       * The records in order; a vote comes as the record codec's bytes, encoded once on the main
       * thread and transferred, not copied (storage-thread.ts, `post`).
       */
      readonly records: readonly (KvRecord | Uint8Array)[];
      readonly sync: boolean;
      /** Snapshot records that crossed without their bytes: `records[index]`'s are the slices of `stage`. */
      readonly staged?: readonly { readonly index: number; readonly stage: number }[];
    }
  /**
   * The next slice of a snapshot's bytes, serialized on the main thread (storage-thread.ts); its
   * record follows. A hole among the chunks (rule V5, impl/core/snapshot.ts `SnapshotHole`) is a
   * value of the store at rest, filled here from the vote record it names (rule V2), so the value
   * never passes through the main thread. With `received`, the first chunk of a state transfer: the stage is noted as
   * that transfer's, kept across a restart (storage.ts, `noteReceived`).
   */
  | {
      readonly kind: "stage";
      readonly stage: number;
      readonly chunks: readonly SnapshotChunk[];
      readonly received?: Omit<ReceivedStage, "parts">;
      /**
       * With a stage's first slice: every value at rest the snapshot may leave a hole for (its
       * state's named values), so that each vote record is read once for all its holes (`HoleReader`).
       */
      readonly holes?: readonly StoredEntry[];
    }
  /**
   * A kept transfer's stage, resumed: its first `parts` rows stay (the chunks the core took again),
   * digested here as if they had just come; the rest go. Zero parts: the stage goes.
   */
  | { readonly kind: "resumeStage"; readonly stage: number; readonly parts: number }
  /** Rows of a kept stage from part `from`, about `charsMax` characters, answered on the synchronous port. */
  | {
      readonly kind: "readStaged";
      readonly id: number;
      readonly stage: number;
      readonly from: number;
      readonly charsMax: number;
    }
  /** A stage whose record will never come (a state transfer given up): its rows go. */
  | { readonly kind: "dropStage"; readonly stage: number }
  /**
   * A state transfer's stage about to be stored as an installed snapshot's bytes: its rows as
   * stored are read back and digested, and only if they give `contentDigest` (the digest the core
   * verified the chunks against) may its record's append move them into place; else the stage
   * goes. Answered with `vouched` (see `handle`).
   */
  | { readonly kind: "vouch"; readonly id: number; readonly stage: number; readonly contentDigest: string }
  /**
   * The records of `keys` (storage.ts, `readKeyed`), read once every append sent before this
   * request is written, and before any sent after it is (see `handle`); with `sync`, answered on
   * the synchronous port (the main thread waits for it: `StorageThread.readEntry`).
   */
  | { readonly kind: "read"; readonly id: number; readonly keys: readonly string[]; readonly sync?: boolean }
  /**
   * The slots of older snapshots that compaction keeps besides the latest two (impl/core's
   * `pinnedSnapshots`: the one a transfer fetches), and of the vote records it keeps below the
   * log's truncation point (impl/core's `pinnedVotes`: the votes that wrote the key-value store's
   * values at rest, rule V3), from now on; sent before the appends whose compactions must keep them.
   */
  | { readonly kind: "pin"; readonly slots: readonly number[]; readonly votes: readonly number[] }
  | { readonly kind: "close"; readonly id: number };

/** An error that crossed from the storage thread, to be rebuilt on the main thread. */
export interface StorageFault {
  readonly message: string;
  /** Set for a StorageError (the kind of data problem, its file and the detail). */
  readonly storage?: { readonly kind: StorageError["kind"]; readonly file: string; readonly detail: string };
}

/** The answer to a request (`error` null: done, and for an append, durable). */
export interface StorageReply {
  readonly id: number;
  readonly error: StorageFault | null;
  /** The answer to a `vouch`: the digest of the stage's rows as stored, and whether it is the one claimed. */
  readonly vouched?: { readonly stage: number; readonly contentDigest: string; readonly ok: boolean };
  /** The content digest of each staged snapshot of the append, computed here over its slices. */
  readonly digests?: readonly { readonly stage: number; readonly contentDigest: string }[];
  /** With `reportSynced`: the last record the fsync that returned before this reply made durable, if any. */
  readonly synced?: number;
  /** The answer to a read: the records of its keys, in order (absent when `error` is set). */
  readonly records?: readonly KvRecord[];
  /** The answer to a `readStaged`: the rows read, in order (none: the stage has no more). */
  readonly rows?: readonly string[];
  /** The memory of the append's encoded votes, written and given back (transferred) for reuse. */
  readonly buffers?: readonly ArrayBuffer[];
}

/** The answer to the open, the first reply on the synchronous port. */
export type OpenReply =
  | {
      readonly ok: true;
      readonly file: string;
      readonly records: readonly KvRecord[];
      readonly created: boolean;
      readonly lastSeq: number;
      /** Power-loss mode: how many records a power cut lost at this open (null: no cut). */
      readonly lostToPowerCut: number | null;
      /** A state transfer whose chunks the store kept across the restart, if any. */
      readonly received: ReceivedStage | null;
    }
  | { readonly ok: false; readonly error: StorageFault };

/** The fields of a vote's bytes that say which vote it is: its tag, slot and ballot. */
const voteHeadFields = 3;

/**
 * A vote's bytes as the main thread sent them, as the store writes them: its kind and key read
 * off its first bytes (never its value). Anything else is refused: the main thread sends only
 * votes so, and a record that makes compaction due must never come as bytes (storage.ts).
 */
function encodedVote(bytes: Uint8Array): EncodedRecord {
  const head = kvRecordBinary.decodeHead(bytes, voteHeadFields);
  if (Either.isLeft(head)) throw new Error(`an encoded record does not read: ${head.left}`);
  const vote = head.right as unknown as KvRecord;
  if (vote._tag !== "vote") throw new Error(`an encoded record is a ${vote._tag}, not a vote`);
  return new EncodedRecord(bytes, "vote", kvRecordKey(vote));
}

/** The slot of the first vote among `records` (-1: none), the key of a group's timeline marks. */
function firstVoteSlotOf(records: readonly (KvRecord | Uint8Array)[]): number {
  for (const record of records) {
    if (record instanceof Uint8Array) {
      const head = kvRecordBinary.decodeHead(record, 2);
      if (Either.isRight(head) && typeof head.right.slot === "number") return head.right.slot;
    } else if (record._tag === "vote") return record.slot;
  }
  return -1;
}

/**
 * Characters of a snapshot's values at rest read ahead of their holes that a {@link HoleReader}
 * holds at most: the vote record of a batch holds the values of many keys, which a snapshot (its
 * entries sorted by key) reaches far apart.
 */
const holesAheadChars = 2 * 1024 * 1024;

/**
 * A snapshot's holes filled (rule V5, proofs/store-at-rest.md): each the value its entry names, read
 * from the vote record it names and vouched for by rule V2 (`escapedEntryOfVote`, with the store as
 * the replicas run it), as the snapshot's serialization writes it. Throws, and the snapshot's
 * append fails (the replica stops), if the record is gone, holds other bytes, or the value is not as
 * long as the hole. Given the snapshot's named values (`holes`), a record read for one hole gives
 * the others it holds too, checked alike and kept (escaped) until their holes come, up to
 * {@link holesAheadChars}: a batch of 64 KiB values was read, checksummed and decoded whole once
 * per value in it, a few times the state's bytes (docs/performance.md).
 */
class HoleReader {
  /** The holes not yet filled, by the key of their vote record. */
  private readonly pending = new Map<string, StoredEntry[]>();
  /** Values read ahead, by `entryId`. */
  private readonly ahead = new Map<string, string>();
  private aheadChars = 0;
  /**
   * Bytes of the values in the vote records read so far and not yet taken (`takeRead`): garbage
   * once their holes are filled, counted toward this thread's next full collection as the slices
   * written are (`stagedCharsCollect`).
   */
  private readBytes = 0;

  constructor(
    private readonly storage: Storage<KvRecord>,
    holes: readonly StoredEntry[],
  ) {
    for (const entry of holes) {
      const key = kvEntryReader.key(entry);
      const list = this.pending.get(key);
      if (list === undefined) this.pending.set(key, [entry]);
      else list.push(entry);
    }
  }

  fill(hole: Exclude<SnapshotChunk, string>): string {
    const key = kvEntryReader.key(hole.entry);
    const id = entryId(hole.entry);
    const others = (this.pending.get(key) ?? []).filter((e) => entryId(e) !== id);
    if (others.length === 0) this.pending.delete(key);
    else this.pending.set(key, others);
    let text = this.ahead.get(id);
    if (text !== undefined) {
      this.ahead.delete(id);
      this.aheadChars -= text.length;
    } else {
      const vote = this.read(key);
      text = escapedEntryOfVote(kvReplicated, vote, hole.entry);
      for (const entry of others) {
        if (this.ahead.has(entryId(entry)) || this.aheadChars + entry.chars > holesAheadChars) continue;
        const value = escapedEntryOfVote(kvReplicated, vote, entry);
        this.ahead.set(entryId(entry), value);
        this.aheadChars += value.length;
      }
    }
    if (text.length !== hole.chars)
      throw new Error(`a snapshot's hole of ${hole.chars} characters was given a value of ${text.length}`);
    return text;
  }

  /** Bytes of values read since the last call (see `readBytes`). */
  takeRead(): number {
    const bytes = this.readBytes;
    this.readBytes = 0;
    return bytes;
  }

  private read(key: string): (KvRecord & { _tag: "vote" }) | undefined {
    const record = this.storage.readKeyed([key])[0];
    if (record?._tag !== "vote") return undefined;
    this.readBytes += valueBytes(record.value);
    return record;
  }
}

/** An entry's identity among a snapshot's holes: its vote record, command and key. */
function entryId(entry: StoredEntry): string {
  return `${kvEntryReader.key(entry)}\u0000${entry.index}\u0000${entry.key}`;
}

/** An error as it crosses threads. */
export function faultOf(error: unknown): StorageFault {
  if (error instanceof StorageError)
    return { message: error.message, storage: { kind: error.kind, file: error.file, detail: error.detail } };
  return { message: error instanceof Error ? error.message : String(error) };
}

function run(port: MessagePort, data: StorageWorkerData): void {
  const replySync = (reply: OpenReply | StorageReply, transfer: readonly ArrayBuffer[] = []): void => {
    data.syncPort.postMessage(reply, transfer);
    Atomics.add(data.syncCell, 0, 1);
    Atomics.notify(data.syncCell, 0);
  };
  let storage: Storage<KvRecord>;
  /** Older snapshots compaction keeps besides the latest two (the `pin` request). */
  let pinned: readonly number[] = [];
  /** The slots of the votes compaction keeps below the log's truncation point (the `pin` request). */
  let pinnedVoteSlots: ReadonlySet<number> = new Set();
  /** The last record a returned fsync made durable, not yet reported (0: none). */
  let syncedUpTo = 0;
  try {
    const opened = Storage.open<KvRecord>({
      dir: data.dir,
      clusterId: data.clusterId,
      replicaId: data.replicaId,
      codec: kvCodecs.record,
      binary: kvRecordBinary,
      create: data.create,
      // Once a snapshot is durable, delete what it supersedes (impl/core/records.ts).
      // The snapshots a transfer fetches besides the latest two stay too, and the votes that wrote
      // the store's values at rest (`pin`).
      compaction: {
        after: (record) => record._tag === "snapshot",
        keep: (records) => compactRecords(records, pinned, pinnedVoteSlots),
        // A compaction's pieces are decided between groups (`compactSome` below), all with the
        // pins of when it became due, as if it had run whole at its group's end.
        decider: () => {
          const [slots, votes] = [pinned, pinnedVoteSlots];
          return (records) => compactRecords(records, slots, votes);
        },
        pieceRows: compactionIdlePieceRows,
      },
      // Votes are read back by slot and ballot (values at rest, impl/core/at-rest.ts).
      keyOf: kvRecordKey,
      faults: data.faults,
      onSynced: (seq) => {
        if (data.reportSynced) syncedUpTo = seq;
      },
    });
    storage = opened.storage;
    replySync({
      ok: true,
      file: opened.storage.file,
      records: opened.records,
      created: opened.created,
      lastSeq: opened.storage.recordCount,
      lostToPowerCut: opened.lostToPowerCut,
      received: opened.received,
    });
  } catch (error) {
    replySync({ ok: false, error: faultOf(error) });
    port.close();
    return;
  }
  let failure: StorageFault | null = null;
  /**
   * The digest of each snapshot whose record has not come yet, over its slices as they came (off
   * the main thread); the slices themselves went to the store's staging table (storage.ts, `stage`).
   */
  const stages = new Map<number, ContentDigest>();
  /** Characters of snapshot slices written since the last full collection (see `stagedCharsCollect`). */
  let stagedChars = 0;
  /**
   * A snapshot's record was appended since the last full collection: what is left of its slices
   * and of the values read back for its holes is garbage, and no more of it comes to make the next
   * collection due. Collected once this thread has nothing to do (`idle`), where at a leader's peak
   * in bursts of 1 MiB PUTs with the store's values at rest the thread's heap held 8 to 11 MB of
   * it until the next snapshot's slices (docs/performance.md, "What the leader holds in a burst,
   * thread by thread").
   */
  let snapshotWritten = false;
  const collect = fullCollection();
  const collectNow = (): void => {
    stagedChars = 0;
    snapshotWritten = false;
    const start = timeline === null ? 0 : nowUs();
    collect();
    timeline?.span("collect", start);
  };
  const collectDue = (): void => {
    if (stagedChars >= stagedCharsCollect) collectNow();
  };
  /** Housekeeping when no request waits: the written snapshot's garbage first, then the store's. */
  const idle = (): boolean => {
    if (snapshotWritten) {
      if (stagedChars > 0) collectNow();
      snapshotWritten = false;
      return true;
    }
    return housekeep(false);
  };
  /** The reader of each stage's holes (with its values read ahead), until its record's append comes. */
  const holeReaders = new Map<number, HoleReader>();
  const holeReader = (stage: number): HoleReader => {
    let reader = holeReaders.get(stage);
    if (reader === undefined) holeReaders.set(stage, (reader = new HoleReader(storage, [])));
    return reader;
  };
  /** The digest of each stage vouched for (its rows read back), until its record's append moves it. */
  const vouched = new Map<number, string>();
  /** The content digests of the staged snapshots written, by append, for its reply. */
  const digests = new Map<number, { stage: number; contentDigest: string }[]>();
  /**
   * The records of `request`, each staged snapshot with its digest and its slices, written to the
   * staging table as they came, moved into the parts of its data by its append (storage.ts,
   * `StagedRecord`): never joined into one string, nor held here until the record came (each a
   * copy of the whole state).
   */
  const recordsOf = (request: StorageRequest & { kind: "append" }): readonly Appended<KvRecord>[] => {
    const records: Appended<KvRecord>[] = request.records.map((r) => (r instanceof Uint8Array ? encodedVote(r) : r));
    if (request.staged === undefined || request.staged.length === 0) return records;
    const digested: { stage: number; contentDigest: string }[] = [];
    for (const { index, stage } of request.staged) {
      const record = records[index]!;
      const digest = stages.get(stage);
      stages.delete(stage);
      holeReaders.delete(stage);
      snapshotWritten = true;
      if (
        record instanceof EncodedRecord ||
        record instanceof SplitRecord ||
        record instanceof StagedRecord ||
        record._tag !== "snapshot" ||
        digest === undefined
      )
        throw new Error(`the bytes of record ${index} (stage ${stage}) never came`);
      // A vouched stage: the digest of its rows as read back (the slices as they came gave the same).
      const contentDigest = vouched.get(stage) ?? digest.hex;
      vouched.delete(stage);
      records[index] = new StagedRecord<KvRecord>({ ...record, contentDigest, data: "" }, stage);
      digested.push({ stage, contentDigest });
    }
    digests.set(request.id, digested);
    return records;
  };
  /** Answer a read (after a failure, with that failure: the store may not hold what was sent). */
  const serveRead = (request: StorageRequest & { kind: "read" }): void => {
    const reply = (answer: StorageReply): void =>
      request.sync === true ? replySync(answer) : port.postMessage(answer satisfies StorageReply);
    if (failure !== null) return reply({ id: request.id, error: failure });
    try {
      reply({
        id: request.id,
        error: null,
        // A state transfer's chunk at rest reads a slice of a snapshot record (core-adapter.ts).
        records: request.keys.map((key) => {
          const slice = parseSnapshotSliceKey(key);
          if (slice === null) return storage.readKeyed([key])[0]!;
          return storage.readSnapshotSlice(slice.slot, slice.offset, slice.length) as unknown as KvRecord;
        }),
      });
    } catch (error) {
      reply({ id: request.id, error: faultOf(error) });
    }
  };
  /**
   * Read a received snapshot's stage back and digest its rows as stored: a row written wrong, a
   * chunk staged twice or one missing gives another digest, and then the stage goes (the main
   * thread stores its own serialization instead). Answered at once, ahead of the group's appends
   * (the record that would move the stage waits for this answer on the main thread).
   */
  const vouch = (request: StorageRequest & { kind: "vouch" }): void => {
    if (failure !== null) return port.postMessage({ id: request.id, error: failure } satisfies StorageReply);
    try {
      const digest = new ContentDigest();
      for (const part of storage.stagedParts(request.stage)) digest.update(part);
      const ok = digest.hex === request.contentDigest;
      if (ok) vouched.set(request.stage, digest.hex);
      else {
        stages.delete(request.stage);
        storage.dropStage(request.stage);
      }
      port.postMessage({
        id: request.id,
        error: null,
        vouched: { stage: request.stage, contentDigest: digest.hex, ok },
      } satisfies StorageReply);
    } catch (error) {
      failure = faultOf(error);
      port.postMessage({ id: request.id, error: failure } satisfies StorageReply);
    }
  };
  /** Answer a `readStaged` on the synchronous port (the main thread waits for it while it recovers). */
  const readStaged = (request: StorageRequest & { kind: "readStaged" }): void => {
    if (failure !== null) return replySync({ id: request.id, error: failure });
    try {
      replySync({
        id: request.id,
        error: null,
        rows: storage.stagedRows(request.stage, request.from, request.charsMax),
      });
    } catch (error) {
      replySync({ id: request.id, error: faultOf(error) });
    }
  };
  /** A kept stage resumed: its first rows stay and are digested as if they had just come (see `stages`). */
  const resumeStage = (request: StorageRequest & { kind: "resumeStage" }): void => {
    if (failure !== null) return;
    try {
      if (request.parts === 0) return storage.dropStage(request.stage);
      storage.truncateStage(request.stage, request.parts);
      const digest = new ContentDigest();
      for (const part of storage.stagedParts(request.stage)) digest.update(part);
      stages.set(request.stage, digest);
    } catch (error) {
      failure = faultOf(error);
    }
  };
  /** Handle a group of requests; false once the store is closed (the thread then ends). */
  const handle = (first: StorageRequest): boolean => {
    // Everything sent so far joins this group commit: one fsync for all of it.
    const group: Exclude<
      StorageRequest,
      { kind: "stage" | "dropStage" | "vouch" | "readStaged" | "resumeStage" | "pin" }
    >[] = [];
    const take = (request: StorageRequest): void => {
      if (request.kind === "pin") {
        pinned = request.slots;
        pinnedVoteSlots = new Set(request.votes);
        return;
      }
      if (request.kind === "vouch") return vouch(request);
      if (request.kind === "readStaged") return readStaged(request);
      if (request.kind === "resumeStage") return resumeStage(request);
      if (request.kind === "dropStage") {
        stages.delete(request.stage);
        holeReaders.delete(request.stage);
        vouched.delete(request.stage);
        if (failure !== null) return;
        try {
          storage.dropStage(request.stage);
        } catch (error) {
          failure = faultOf(error);
        }
        return;
      }
      if (request.kind !== "stage") return void group.push(request);
      let chars = 0;
      for (const chunk of request.chunks) chars += typeof chunk === "string" ? chunk.length : chunk.chars;
      Atomics.add(data.syncCell, stagedCharsTaken, chars);
      if (vouched.has(request.stage) && failure === null)
        failure = { message: `stage ${request.stage} was written to after it was vouched for` };
      let digest = stages.get(request.stage);
      if (digest === undefined) stages.set(request.stage, (digest = new ContentDigest()));
      if (request.holes !== undefined) holeReaders.set(request.stage, new HoleReader(storage, request.holes));
      // Written now, ahead of the group's appends (its record comes after its last slice).
      if (failure !== null) return;
      try {
        if (request.received !== undefined) storage.noteReceived(request.received);
        for (const chunk of request.chunks) {
          const text = typeof chunk === "string" ? chunk : holeReader(request.stage).fill(chunk);
          digest.update(text);
          storage.stage(request.stage, text);
          stagedChars += text.length + (typeof chunk === "string" ? 0 : holeReader(request.stage).takeRead());
        }
      } catch (error) {
        failure = faultOf(error);
      }
    };
    take(first);
    // A group stops taking requests once a full collection is due: the slices taken are garbage
    // once written, and draining a queue of them (the main thread serializes a snapshot faster than
    // this thread writes it under load) held a whole state of them until the group's end. What
    // is left waits in the port, in order, for the next group.
    while (stagedChars < stagedCharsCollect) {
      const next = receiveMessageOnPort(port);
      if (next === undefined) break;
      take(next.message as StorageRequest);
    }
    if (group.length === 0) {
      collectDue();
      return true;
    }
    const key = timeline === null ? -1 : firstVoteSlotOf(group.flatMap((r) => (r.kind === "append" ? r.records : [])));
    timeline?.mark("storage-take", key);
    const compactingBefore = storage.compacting;
    let written = 0;
    for (const request of group) {
      // A read is served here, in its place among the appends: it sees every record sent before
      // it and none sent after, and no compaction runs before the group's end (see `compactDue`
      // below), so none that a snapshot sent after it causes. What it reads need not be synced: a
      // value read back is sent only once the records before it are durable (driver.ts).
      if (request.kind === "read") {
        serveRead(request);
        continue;
      }
      if (failure !== null || request.kind !== "append") break;
      try {
        storage.write(recordsOf(request));
        written += 1;
      } catch (error) {
        failure = faultOf(error);
      }
    }
    const appends = group.filter(
      (
        r,
      ): r is Exclude<
        StorageRequest,
        { kind: "stage" | "dropStage" | "vouch" | "read" | "readStaged" | "resumeStage" | "pin" }
      > => r.kind !== "read",
    );
    const reply = (request: StorageRequest & { kind: "append" }, i: number): void => {
      const digested = digests.get(request.id);
      digests.delete(request.id);
      // SQLite copied the votes' bytes: their memory goes back to the main thread, which reuses it
      // or frees it (this thread allocates too little for its collector to free it soon).
      const buffers = request.records.flatMap((r) => (r instanceof Uint8Array ? [r.buffer as ArrayBuffer] : []));
      const answer: StorageReply = {
        id: request.id,
        error: i < written && failure === null ? null : failure,
        ...(syncedUpTo > 0 ? { synced: syncedUpTo } : {}),
        ...(digested === undefined ? {} : { digests: digested }),
        ...(buffers.length > 0 ? { buffers } : {}),
      };
      syncedUpTo = 0;
      if (request.sync) replySync(answer, buffers);
      else port.postMessage(answer, buffers);
    };
    // Test-only, broken on purpose: the group is reported durable before its fsync returns.
    const early = data.faults.ackBeforeSync;
    if (early) for (const [i, request] of appends.entries()) if (request.kind === "append") reply(request, i);
    timeline?.mark("storage-written", key);
    if (written > 0 && failure === null) {
      try {
        storage.sync();
      } catch (error) {
        failure = faultOf(error);
      }
    }
    timeline?.mark("storage-synced", key);
    for (const [i, request] of appends.entries()) {
      if (request.kind === "close") {
        // A compaction due before this group ends first, as it would have at that group's end.
        if (failure === null && compactingBefore)
          try {
            while (storage.compactSome());
          } catch (error) {
            failure = faultOf(error);
          }
        storage.close();
        replySync({ id: request.id, error: null });
        port.close();
        return false;
      }
      if (!early) reply(request, i);
    }
    // After the acknowledgements, never in front of them: a snapshot's commit waits for no
    // compaction, and no append for a checkpoint (storage.ts, `checkpointDue`). A piece of a
    // compaction per group, so that it ends however busy the thread is, and the rest of it and
    // the checkpoint when no request waits (`idle`, below); a checkpoint here only once overdue.
    housekeep(true);
    // Last, once every append of the group is acknowledged: a full collection costs this thread
    // tens of milliseconds.
    collectDue();
    return true;
  };
  /**
   * A piece of the compaction under way, else the checkpoint if due (with `afterGroup`: only if
   * overdue); returns whether any of it is left. Each marked on the timeline.
   */
  const housekeep = (afterGroup: boolean): boolean => {
    if (failure !== null) return false;
    const start = timeline === null ? 0 : nowUs();
    try {
      if (storage.compacting) {
        const more = storage.compactSome();
        timeline?.span("compact", start);
        return more;
      }
      if (!storage.checkpointDue(afterGroup)) return false;
      timeline?.span("checkpoint", start);
    } catch (error) {
      failure = faultOf(error);
    }
    return false;
  };
  serve(port, data.syncCell, handle, idle);
}

/**
 * Take the requests as they come, asleep in Atomics.wait on the counter the main thread bumps
 * after each post (storage-thread.ts), not in the event loop: a futex wake-up instead of libuv's
 * (an eventfd, epoll, then the MessagePort's dispatch into JavaScript). On a loaded machine a lone
 * write crossed this hand-over faster so (docs/performance.md, "The storage thread's wake-up").
 * The event loop still gets a turn every `turnMs`, for this thread's timers and callbacks (the
 * timeline's writes).
 */
function serve(
  port: MessagePort,
  cell: Int32Array,
  handle: (request: StorageRequest) => boolean,
  idle: () => boolean,
): void {
  // With a timeline its marks are written every 250 ms from the event loop; without one nothing
  // waits for it, and an idle thread wakes once a second.
  const turnMs = timeline === null ? 1000 : 100;
  const loop = (): void => {
    const until = performance.now() + turnMs;
    for (;;) {
      // Read the counter before looking for a request: a post after the look changes it, so the
      // wait returns at once instead of sleeping past it.
      const seen = Atomics.load(cell, requestsPosted);
      const next = receiveMessageOnPort(port);
      if (next !== undefined) {
        if (!handle(next.message as StorageRequest)) return;
        continue;
      }
      // Nothing waits: a piece of housekeeping, then look again.
      if (idle()) continue;
      const left = until - performance.now();
      if (left <= 0) break;
      Atomics.wait(cell, requestsPosted, seen, left);
    }
    setImmediate(loop);
  };
  loop();
}

if (!isMainThread && parentPort !== null) run(parentPort, workerData as StorageWorkerData);

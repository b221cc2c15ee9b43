/**
 * Durable storage of one replica: an append-only log of the core's Persist records in SQLite
 * (better-sqlite3, WAL), each record checksummed. An append writes a whole batch in one
 * transaction, so group commit costs one fsync however many records it holds.
 *
 * The fsync is the runtime's own, not SQLite's: the database runs with `synchronous = NORMAL`
 * (a commit writes its WAL frames without syncing them) and the runtime then syncs the WAL file
 * itself, before any effect that depends on the records. `appendAsync` does that sync on libuv's
 * thread pool, so the event loop keeps receiving messages and requests while the disk works
 * (with `synchronous = FULL` every commit blocked the process for the whole fsync: under load a
 * third of a replica's time). Durability is the same: a commit's frames, commit marker included,
 * are on disk before it is acknowledged; SQLite syncs the WAL before each checkpoint and the
 * database after it, and the directory is synced once the WAL file exists.
 *
 * Checkpoints: SQLite's own (`wal_autocheckpoint`) runs inside the commit that fills the WAL to
 * its bound, so one append in some nine hundred waited for two fsyncs more before its own, and
 * with it every append of its group. The store checkpoints itself instead, once the WAL holds
 * about as much (`walCheckpointBytes`, counted from what each commit and staged slice writes)
 * and only after the appends that filled it were acknowledged (`checkpointDue`, as compaction);
 * SQLite's stays as a backstop at four times the bound, for what the count does not see (a
 * staged snapshot's move into place, a compaction's deletions). Same checkpoint, same fsyncs,
 * same durability; only when it runs differs.
 *
 * A replica process keeps its store on a thread of its own (impl/runtime/storage-thread.ts), which
 * uses `write` and `sync` to let every append that waits for it share one fsync.
 *
 * Opening is strict: a data directory of another cluster or replica is "foreign", and a file
 * that is not a database, has the wrong format version, a record whose checksum or Schema does
 * not match, or a gap in the record sequence is "damaged". Both name the file (and record) and
 * the replica must not serve from it. Storage never repairs or drops records on its own.
 *
 * Compaction: once a batch holding a snapshot record is durable, the records that snapshot
 * supersedes are deleted (the `compaction` option: impl/core's `compactRecords` decides which),
 * in one transaction that also notes in `meta` how far the log was compacted and how many rows
 * it kept there. Below that point the sequence may have gaps, and opening checks the row count
 * instead; above it the sequence must still be gapless. So the disk holds about one snapshot
 * interval of records, and a restart replays no more than that.
 *
 * Compaction runs after the fsync that covers its snapshot, once that batch was acknowledged
 * (`compactDue`), never in front of it: a snapshot's commit costs what any commit of its size
 * costs, and the grants and Accepteds behind it do not wait for a log interval to be read back.
 * The storage thread runs it a piece at a time between groups of appends (`compactSome`: one piece
 * after each group, the rest while no request waits), so that no append waits behind a whole
 * compaction (some 25 to 45 ms of CPU at 1,024 slots, every replica at the same slot): only the
 * decisions are made in pieces, with nothing deleted until every row is decided; the deletions,
 * runs of neighbouring rows each one statement, are still one transaction.
 * It decides from each row's kind and the start of its body (`_tag`, slot, a snapshot's
 * `logTruncatedUpTo`, as the record codec writes them first), not by decoding the values the
 * row holds; a row whose start does not read that way is decoded whole. It reads the rows in
 * pieces of a few hundred, from the last down, so that what it holds at once does not grow with
 * the snapshot interval: each piece is decided with the latest two snapshots above it, which is
 * all impl/core's `compactRecords` reads of what follows a record. Between pieces nothing at or
 * below the compaction's last record changes (appends add rows above it; only compaction deletes).
 *
 * A snapshot's bytes may be stored in parts (`SplitRecord`): its row holds the record with
 * `data` empty, and the table `snapshot_data` holds the data in order, each part a row with its
 * own checksum, written in the same transaction and deleted with it. The storage thread writes a
 * snapshot so, from the slices it was sent, so that neither it nor SQLite ever holds the state's
 * bytes as one value (a 44 MiB state cost the process 220 to 260 MB of RSS while it was written).
 * A row whose `data` is empty therefore always has parts: a record whose data really is empty is
 * written as one empty part, so a reader that finds no parts knows they were lost.
 *
 * Staged snapshots (`stage`, `StagedRecord`): the storage thread writes a snapshot's slices as they
 * come into the table `snapshot_staging`, each an INSERT of its own (nothing synced, nothing the
 * reader of records sees), so that neither it nor SQLite holds the state whole while the
 * replica's main thread is still serializing it; the record's append then moves the stage's rows
 * into `snapshot_data` under the record's seq, checksums made there and then, and deletes them, in
 * the record's own transaction. So installing a snapshot (a state transfer's included) is one
 * transaction: a crash before its commit leaves the store as it was, with rows in staging that
 * the next open deletes; after it, the snapshot with every part. One stage outlives a restart:
 * that of the state transfer noted in `transfer_received` (`noteReceived`, the snapshot it is of
 * and its sender), whose rows the core takes again at the start, checking every byte as if it had
 * just come, so that the transfer resumes where it stopped (`Opened.received`, impl/core's
 * `takeKept`). Staging is never read back as state any other way.
 */
import { createHash, hash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { Either } from "effect";
import type { RecordSummary, ReplicaId, SnapshotChunkMsg } from "../core/index.ts";
import {
  noDiskFaults,
  noteSynced,
  openSyncedSeq,
  powerCutFileName,
  syncedSeqOf,
  type DiskFaults,
} from "./disk-faults.ts";
import type { BinaryCodec } from "./binary-codec.ts";
import type { JsonCodec } from "./framing.ts";

/** The on-disk format this code writes (and reads). */
export const storageFormat = "paxos-lease/storage@4";
/**
 * The formats before it, which this code still reads, newest first. @3 holds every record's body
 * as JSON text (@4 rows may hold the record codec's bytes instead, `binary`); @2 besides stores
 * every snapshot's bytes in its record's row (no `snapshot_data`); @1 besides has every `chosen`
 * record hold its value (none names a vote). Opening such a store marks it @4, since the records
 * this code appends may be bytes, split or name votes, which older code would misread or refuse
 * record by record instead of by the format version.
 */
const storageFormatsPrevious = ["paxos-lease/storage@3", "paxos-lease/storage@2", "paxos-lease/storage@1"];
/** The database file inside a data directory. */
export const databaseFileName = "replica.sqlite";
/** Most records written in one transaction. */
export const appendBatchRecordsMax = 100_000;

/** Why a data directory cannot be used. `file` names the offending file. */
export class StorageError extends Error {
  constructor(
    readonly kind: "foreign" | "damaged" | "missing" | "in-use" | "removed" | "inaccessible",
    readonly file: string,
    readonly detail: string,
  ) {
    super(`${kind} data: ${file}: ${detail}`);
    this.name = "StorageError";
  }
}

/** Options of {@link Storage.open}. */
export interface StorageOptions<R> {
  readonly dir: string;
  readonly clusterId: string;
  readonly replicaId: ReplicaId;
  readonly codec: JsonCodec<R>;
  /**
   * Write each record's body as these bytes (a BLOB) instead of as `codec`'s JSON text: a 1 MiB
   * value is then copied once, where its JSON cost an escaping pass and two UTF-8 copies (the
   * checksum's and SQLite's). Rows written as JSON before are still read. The codec must hold the
   * same values as `codec`, with the struct's leading fields those `summaryOfHead` reads (the
   * record codec of impl/core does). Default: JSON text.
   */
  readonly binary?: BinaryCodec<R>;
  /** A short label stored beside each record (for humans inspecting the file). Default: its `_tag`. */
  readonly kindOf?: (record: R) => string;
  /**
   * Create a fresh store when the directory holds none. Default false: a missing store is an
   * error, so that a replica whose data was lost is never silently restarted as a new one.
   */
  readonly create?: boolean;
  /**
   * Called each time an fsync returns, with the last record it made durable: every record up to
   * it is on disk. Traces record it (docs/trace-format.md, `synced`). Default: nothing.
   */
  readonly onSynced?: (seq: number) => void;
  /** Test-only disk faults (disk-faults.ts). Default: none. */
  readonly faults?: DiskFaults;
  /** Delete superseded records after a durable batch that `after` matches (see the header). */
  readonly compaction?: {
    readonly after: (record: R) => boolean;
    /**
     * The rows to keep, given their summaries in order: a subsequence of the very objects (impl/core's
     * `compactRecords`).
     */
    readonly keep: (summaries: readonly RecordSummary[]) => readonly RecordSummary[];
    /**
     * Most rows compaction reads at once (default `compactionPieceRows`). `keep` is then given
     * each piece of consecutive rows followed by the latest two snapshots above it (fewer when there
     * are fewer), and must decide a row from the row and the snapshots after it as `compactRecords`
     * does: then the pieces keep exactly what one call on every row would.
     */
    readonly pieceRows?: number;
    /**
     * Called as each compaction starts, for what decides its rows instead of `keep` until it ends
     * (its pieces may be decided between later appends: the storage thread decides them all with
     * the pins it had when the compaction became due, as if it had run whole then).
     */
    readonly decider?: () => (summaries: readonly RecordSummary[]) => readonly RecordSummary[];
  };
  /**
   * The key under which {@link Storage.readKeyed} finds a record (null: none), such as a vote's
   * slot and ballot. The store keeps, in memory, the sequence number of the last record of each
   * key (a few numbers per record, never the records), and forgets it when compaction deletes that
   * record. Default: no record is found by key.
   */
  readonly keyOf?: (record: R) => string | null;
}

/**
 * The checksum of one record: SHA-256 of its seq, kind and body (JSON text as UTF-8, or the
 * codec's bytes), first 32 hex digits.
 */
export function recordChecksum(seq: number, kind: string, body: string | Uint8Array): string {
  // One-shot: a fifth of createHash's CPU for a small record (no Hash object per record). A large
  // body is hashed after its prefix instead of copied into one string or buffer with it.
  if (body.length >= largeBodyChars)
    return createHash("sha256").update(`${seq}\u0000${kind}\u0000`).update(body).digest("hex").slice(0, 32);
  if (typeof body === "string") return hash("sha256", `${seq}\u0000${kind}\u0000${body}`, "hex").slice(0, 32);
  return hash("sha256", Buffer.concat([Buffer.from(`${seq}\u0000${kind}\u0000`), body]), "hex").slice(0, 32);
}

/** The checksum of part `part` of a split record's data: SHA-256 of the record's seq, the part's index and its text. */
export function partChecksum(seq: number, part: number, text: string): string {
  return hash("sha256", `${seq}\u0000${part}\u0000${text}`, "hex").slice(0, 32);
}

/**
 * A record whose field `data` (a string: a snapshot's bytes) is stored in parts: `record` with
 * `data` empty goes in its row, and `parts`, joined in order, are that field (see the header). A
 * reader gets the record whole, as if it had been appended so.
 */
export class SplitRecord<R> {
  constructor(
    readonly record: R,
    readonly parts: readonly string[],
  ) {
    if (parts.length === 0) throw new Error("a split record needs at least one part");
  }
}

/**
 * A record already in its stored form, the record codec's bytes (the `binary` option's): the
 * storage thread's main thread encodes a vote once and hands the bytes over by transfer
 * (impl/runtime/storage-thread.ts), so that neither thread copies the value again. `kind` and
 * `key` are what the store would have read off the record (`kindOf`, `keyOf`); whoever builds one
 * reads them off the bytes. A record whose durability makes compaction due (`compaction.after`)
 * never comes so: the store does not look inside these bytes.
 */
export class EncodedRecord {
  constructor(
    readonly bytes: Uint8Array,
    readonly kind: string,
    readonly key: string | null,
  ) {}
}

/**
 * A record whose field `data` (a snapshot's bytes) was written beforehand, slice by slice, to stage
 * `stage` ({@link Storage.stage}): `record` with `data` empty goes in its row, and the append moves
 * the stage's rows into the record's parts in the same transaction (see the header). A reader gets
 * it whole, as a {@link SplitRecord} of the same parts.
 */
export class StagedRecord<R> {
  constructor(
    readonly record: R,
    readonly stage: number,
  ) {}
}

/** What an append takes: records, snapshots with their data in parts or staged, and records already encoded. */
export type Appended<R> = R | SplitRecord<R> | StagedRecord<R> | EncodedRecord;

/**
 * The WAL's bytes, as counted by `Storage` (each commit's record bodies and a page for its
 * b-tree), after which it is checkpointed once the appends are acknowledged: SQLite's default
 * bound (1,000 pages of 4 KiB), which a lone small write's commit (one page) fills in about 1,000
 * commits. SQLite's own checkpoint inside a commit (`walAutocheckpointPages`) stays as a backstop.
 */
export const walCheckpointBytes = 1000 * 4096;

/** The page size the count assumes (SQLite's default). */
const walPageBytes = 4096;

/** SQLite's `wal_autocheckpoint`, in pages: four times `walCheckpointBytes`, reached only by what the count misses. */
const walAutocheckpointPages = 4000;

/**
 * SQLite's page cache, per store, in KiB (`cache_size`): SQLite's own default. better-sqlite3
 * builds SQLite with 16,000 KiB instead, and a replica's store filled all of it (each 1 MiB value
 * written is 256 fresh pages, and opening reads every page for its quick check): 15 MB of every
 * replica's memory after 16 MiB of values, for pages only a restart or a lagging peer's catch-up
 * reads again. Records are appended and read back in order, so a small cache costs no more: a
 * store writing small records and 1 MiB votes spent the same CPU with either (docs/performance.md,
 * "The replica before the burst").
 */
const pageCacheKib = 2048;

/** The largest record body whose buffer is kept for the next (a 1 MiB value's vote and then some), in bytes. */
const scratchBytesMax = 2 * 1024 * 1024;

/** A record body at least this long (characters or bytes) is checksummed without a copy joined to its prefix. */
const largeBodyChars = 64 * 1024;

function defaultKind(record: unknown): string {
  if (typeof record === "object" && record !== null && "_tag" in record && typeof record._tag === "string")
    return record._tag;
  return "record";
}

interface Row {
  readonly seq: number;
  readonly kind: string;
  /** JSON text, or (written with `binary`) the record codec's bytes. */
  readonly body: string | Buffer;
  readonly checksum: string;
}

/** A range of a stored snapshot's data (`readSnapshotSlice`), with what identifies the snapshot. */
export type SnapshotSlice = Omit<SnapshotChunkMsg, "_tag">;

/** An open store, with the records it held when opened. */
export interface Opened<R> {
  readonly storage: Storage<R>;
  readonly records: readonly R[];
  /** True when this open created the store. */
  readonly created: boolean;
  /** Test-only (power-loss mode): records forgotten because the power was cut; null when it was not. */
  readonly lostToPowerCut: number | null;
  /** The state transfer whose chunks a stage kept across the restart (see {@link Storage.noteReceived}), if any. */
  readonly received: ReceivedStage | null;
}

/**
 * A state transfer's chunks kept in a stage across a restart: the snapshot they are of (as its
 * sender claimed it) and how much of it the stage holds. Nothing here is trusted: the core takes
 * the chunks again and checks every byte before it installs anything (impl/core/transfer.ts,
 * `takeKept`).
 */
export interface ReceivedStage {
  readonly stage: number;
  readonly from: number;
  readonly slot: number;
  readonly digest: string;
  readonly contentDigest: string;
  readonly totalBytes: number;
  /** Rows the stage holds (parts 0 to parts - 1). */
  readonly parts: number;
}

/**
 * A compaction under way: its rows decided from the top down a piece at a time (`compactSome`),
 * then deleted in one transaction.
 */
interface CompactionRun {
  /** The last record it compacts through (its snapshot's batch). */
  readonly through: number;
  /** What decides the rows (`compaction.keep`, or what `compaction.decider` gave when it started). */
  readonly keep: (summaries: readonly RecordSummary[]) => readonly RecordSummary[];
  /** The highest seq of the next piece to decide (below 1: every row is decided). */
  top: number;
  /** The latest snapshot at or below `through`, then the one before it, as far as found. */
  readonly found: RecordSummary[];
  /**
   * The rows decided away, as runs of rows next to each other (no row between them): the first
   * and last seq of each, deleted by one statement.
   */
  readonly doomed: [number, number][];
  /** Rows decided away. */
  deleted: number;
  /** Rows decided so far. */
  read: number;
}

/** The durable log of one replica. */
export class Storage<R> {
  private readonly insert: Database.Statement<[number, string, string | Buffer, string]>;
  private readonly insertPart: Database.Statement<[number, number, number, string, string]>;
  private readonly appendAll: (records: readonly Appended<R>[]) => number;
  private lastSeq: number;
  /** The WAL file, opened for syncing it (any descriptor of a file syncs all its data). */
  private readonly walFd: number;
  private syncsInFlight = 0;
  private closed = false;
  private readonly faults: DiskFaults;
  /** The last record of a batch holding a snapshot, to compact through once an fsync covers it (0: none). */
  private compactAt = 0;
  /** Compaction due through this record: an fsync covered its snapshot (0: none; see `compactDue`). */
  private compactReady = 0;
  /** The compaction under way, its rows decided so far (see `compactSome`). */
  private run: CompactionRun | null = null;
  private pieceQuery: Database.Statement<[number, number]> | undefined;
  private wholeQuery: Database.Statement<[number]> | undefined;
  /** Power-loss mode: the file that notes what each returned fsync made durable (-1: none). */
  private readonly syncedSeqFd: number;
  /** The buffer the next record's bytes are written into (see `encodeBody`). */
  private scratch: Buffer = Buffer.alloc(0);
  /** The last record of each key (`keyOf`), by sequence number, and the key of each such record. */
  private readonly keyed = new Map<string, number>();
  private readonly keyOfSeq = new Map<number, string>();
  private readonly selectPart: Database.Statement;
  private readonly selectRow: Database.Statement<[number]>;
  private readonly insertStaged: Database.Statement<[number, number, string]>;
  /** Moves a stage's rows into a record's parts: (seq, parts, seq, stage). */
  private readonly moveStaged: Database.Statement<[number, number, number, number]>;
  private readonly dropStaged: Database.Statement<[number]>;
  private readonly dropReceived: Database.Statement<[number]>;
  private readonly readStaged: Database.Statement<[number]>;
  private readonly readStagedFrom: Database.Statement<[number, number]>;
  /** The parts written so far of each stage not yet moved or dropped. */
  private readonly staged = new Map<number, number>();
  /** The WAL's bytes written since the last checkpoint, as counted (see `walCheckpointBytes`). */
  private walBytes = 0;

  private constructor(
    private readonly db: Database.Database,
    readonly file: string,
    private readonly options: StorageOptions<R>,
    lastSeq: number,
    records: readonly R[],
    seqs: readonly number[],
    received: ReceivedStage | null,
  ) {
    this.lastSeq = lastSeq;
    records.forEach((record, i) => this.index(options.keyOf?.(record) ?? null, seqs[i]!));
    this.selectRow = db.prepare("SELECT seq, kind, body, checksum FROM records WHERE seq = ?");
    this.selectPart = db.prepare("SELECT text, checksum FROM snapshot_data WHERE seq = ? AND part = ?");
    this.faults = options.faults ?? noDiskFaults;
    this.walFd = openWal(file);
    this.syncedSeqFd = this.faults.powerLoss ? openSyncedSeq(options.dir) : -1;
    if (this.faults.powerLoss) noteSynced(this.syncedSeqFd, lastSeq);
    this.insert = db.prepare("INSERT INTO records (seq, kind, body, checksum) VALUES (?, ?, ?, ?)");
    this.insertPart = db.prepare("INSERT INTO snapshot_data (seq, part, parts, text, checksum) VALUES (?, ?, ?, ?, ?)");
    this.insertStaged = db.prepare("INSERT INTO snapshot_staging (stage, part, text) VALUES (?, ?, ?)");
    // Each part's text crosses into JavaScript once, for its checksum: never the whole at once.
    db.function("paxos_lease_part_checksum", { deterministic: true }, (seq, part, text) =>
      partChecksum(Number(seq), Number(part), String(text)),
    );
    this.moveStaged = db.prepare(
      "INSERT INTO snapshot_data (seq, part, parts, text, checksum) SELECT ?, part, ?, text, paxos_lease_part_checksum(?, part, text) FROM snapshot_staging WHERE stage = ? ORDER BY part",
    );
    this.dropStaged = db.prepare("DELETE FROM snapshot_staging WHERE stage = ?");
    this.dropReceived = db.prepare("DELETE FROM transfer_received WHERE stage = ?");
    this.readStaged = db.prepare("SELECT text FROM snapshot_staging WHERE stage = ? ORDER BY part").pluck();
    this.readStagedFrom = db
      .prepare("SELECT text FROM snapshot_staging WHERE stage = ? AND part >= ? ORDER BY part")
      .pluck();
    if (received !== null) this.staged.set(received.stage, received.parts);
    this.appendAll = db.transaction((records: readonly Appended<R>[]): number => {
      const kindOf = this.options.kindOf ?? defaultKind;
      let seq = this.lastSeq;
      for (const record of records) {
        seq += 1;
        if (record instanceof EncodedRecord) {
          this.insertEncoded(seq, record);
          continue;
        }
        if (record instanceof StagedRecord) {
          this.insertStagedRecord(seq, record);
          continue;
        }
        const split = record instanceof SplitRecord;
        const kind = kindOf(split ? record.record : record);
        const encoded = this.options.codec.encodeValue(split ? record.record : record);
        if (split && !hasEmptyData(encoded))
          throw new Error(`a split record (${kind}) must have an empty data field to stand for its parts`);
        const body = this.encodeBody(split ? record.record : record, encoded);
        this.insert.run(seq, kind, body, recordChecksum(seq, kind, body));
        this.transactionBytes += body.length;
        if (!split) this.index(this.options.keyOf?.(record) ?? null, seq);
        // An empty data field stands for parts, so a record whose data is empty gets one empty part:
        // a row without parts would read back as one whose parts were lost.
        const parts = split ? record.parts : hasEmptyData(encoded) ? [""] : [];
        parts.forEach((text, part) => {
          this.insertPart.run(seq, part, parts.length, text, partChecksum(seq, part, text));
          this.transactionBytes += text.length;
        });
      }
      return seq;
    });
  }

  /**
   * A record's body: JSON text, or with `binary` the codec's bytes, written into a buffer kept for
   * the next record (SQLite copies what it binds) rather than a fresh one per record, whose pages
   * the kernel may have to supply. A body above `scratchBytesMax` gets its own.
   */
  private encodeBody(record: R, encoded: unknown): string | Buffer {
    const binary = this.options.binary;
    if (binary === undefined) return JSON.stringify(encoded);
    const body = binary.encode(record, this.scratch);
    if (body.buffer !== this.scratch.buffer && body.length <= scratchBytesMax) this.scratch = body;
    return body;
  }

  /**
   * Write the next slice of stage `stage`'s data (see the header): a row of `snapshot_staging`,
   * committed on its own, not synced, read by nothing but the append of its {@link StagedRecord}
   * (and `stagedParts`).
   */
  stage(stage: number, text: string): void {
    if (this.closed) throw new Error("storage is closed");
    const part = this.staged.get(stage) ?? 0;
    this.insertStaged.run(stage, part, text);
    this.staged.set(stage, part + 1);
    this.walBytes += walPageBytes + text.length;
  }

  /**
   * The rows stage `stage` holds, in order, read back one at a time: what its record's append
   * would move into place (the storage thread digests them before it lets a state transfer's
   * bytes be stored, storage-worker.ts, `vouch`).
   */
  stagedParts(stage: number): IterableIterator<string> {
    if (this.closed) throw new Error("storage is closed");
    return this.readStaged.iterate(stage) as IterableIterator<string>;
  }

  /**
   * The rows of stage `stage` from part `from` on, in order, until about `charsMax` characters
   * (at least one row): a kept state transfer's chunks read back for the core after a restart.
   */
  stagedRows(stage: number, from: number, charsMax: number): string[] {
    if (this.closed) throw new Error("storage is closed");
    const rows: string[] = [];
    let chars = 0;
    for (const text of this.readStagedFrom.iterate(stage, from) as IterableIterator<string>) {
      rows.push(text);
      chars += text.length;
      if (chars >= charsMax) break;
    }
    return rows;
  }

  /**
   * Stage `stage` holds the chunks of a state transfer of the snapshot `identity` names: noted
   * (not synced) so that a restart keeps the stage and the transfer resumes (`Opened.received`).
   * At most one is noted; noting another forgets the one before (its stage is dropped by its owner).
   */
  noteReceived(identity: Omit<ReceivedStage, "parts">): void {
    if (this.closed) throw new Error("storage is closed");
    const { stage, from, slot, digest, contentDigest, totalBytes } = identity;
    this.db.transaction(() => {
      this.db.prepare("DELETE FROM transfer_received").run();
      this.db
        .prepare(
          "INSERT INTO transfer_received (stage, peer, slot, digest, content_digest, total_bytes) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .run(stage, from, slot, digest, contentDigest, totalBytes);
    })();
  }

  /** Keep only the first `parts` rows of stage `stage` (a kept transfer's chunks the core did not take again). */
  truncateStage(stage: number, parts: number): void {
    if (this.closed) throw new Error("storage is closed");
    this.db.prepare("DELETE FROM snapshot_staging WHERE stage = ? AND part >= ?").run(stage, parts);
    this.staged.set(stage, parts);
  }

  /** Delete what stage `stage` holds (a snapshot given up before its record was appended). */
  dropStage(stage: number): void {
    if (this.closed) throw new Error("storage is closed");
    this.dropStaged.run(stage);
    this.dropReceived.run(stage);
    this.staged.delete(stage);
  }

  /**
   * Insert a staged record as record `seq` and move its stage's rows into its parts (in
   * `appendAll`'s transaction: a failure anywhere in it leaves the stage as it was).
   */
  private insertStagedRecord(seq: number, staged: StagedRecord<R>): void {
    const kind = (this.options.kindOf ?? defaultKind)(staged.record);
    const encoded = this.options.codec.encodeValue(staged.record);
    if (!hasEmptyData(encoded))
      throw new Error(`a staged record (${kind}) must have an empty data field to stand for its parts`);
    const parts = this.staged.get(staged.stage);
    if (parts === undefined)
      throw new Error(`the data of a staged record (${kind}) was never staged (stage ${staged.stage})`);
    const body = this.encodeBody(staged.record, encoded);
    this.insert.run(seq, kind, body, recordChecksum(seq, kind, body));
    this.transactionBytes += body.length;
    // An empty data field stands for parts: empty data gets one empty part (see appendAll).
    if (parts === 0) this.insertPart.run(seq, 0, 1, "", partChecksum(seq, 0, ""));
    const moved = parts === 0 ? 0 : this.moveStaged.run(seq, parts, seq, staged.stage).changes;
    if (moved !== parts)
      throw new Error(`stage ${staged.stage} holds ${moved} parts of the data of record ${seq}, not ${parts}`);
    this.dropStaged.run(staged.stage);
    this.dropReceived.run(staged.stage);
    this.stagesMoved.push(staged.stage);
  }

  /** Stages moved into records by the transaction under way: forgotten once it commits. */
  private stagesMoved: number[] = [];
  /** The bytes of the rows written by the transaction under way (a staged snapshot's moved parts not counted). */
  private transactionBytes = 0;

  /** Insert `record`'s bytes as they are, as record `seq` (in `appendAll`'s transaction). */
  private insertEncoded(seq: number, record: EncodedRecord): void {
    if (this.options.binary === undefined)
      throw new Error(`an encoded record (${record.kind}) needs a store opened with the record codec (binary)`);
    const bytes = record.bytes;
    // better-sqlite3 binds a Buffer: a view of the same memory, not a copy.
    const body = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.insert.run(seq, record.kind, body, recordChecksum(seq, record.kind, body));
    this.transactionBytes += body.length;
    this.index(record.key, seq);
  }

  /** Open (or with `create`, create) the store in `options.dir`. Throws {@link StorageError}. */
  static open<R>(options: StorageOptions<R>): Opened<R> {
    const file = path.resolve(options.dir, databaseFileName);
    checkAccess(path.resolve(options.dir), file);
    const exists = fs.existsSync(file);
    if (!exists) {
      for (const suffix of ["-wal", "-journal"]) {
        if (fs.existsSync(file + suffix))
          throw new StorageError("damaged", file, `${databaseFileName}${suffix} exists without the database file`);
      }
      if (options.create !== true) {
        throw new StorageError(
          "missing",
          file,
          "no replica store here; pass --init to create a fresh one (read docs/operations.md first if this replica held data before)",
        );
      }
      fs.mkdirSync(options.dir, { recursive: true, mode: 0o700 });
    }
    const db = openDatabase(file, exists);
    try {
      if (!exists) initialize(db, options);
      checkMeta(db, file, options);
      prepareFormat(db);
      const lostToPowerCut = options.faults?.powerLoss === true ? losePowerCut(db, options.dir) : null;
      const { records, seqs, lastSeq } = readRecords(
        db,
        file,
        options.codec,
        options.binary,
        compactedThrough(db, file),
      );
      upgradeFormat(db);
      const received = keptReceived(db);
      const storage = new Storage(db, file, options, lastSeq, records, seqs, received);
      return { storage, records, created: !exists, lostToPowerCut, received };
    } catch (error) {
      db.close();
      throw error;
    }
  }

  /** Append `records` in one transaction; returns when they are durable (the WAL synced, blocking). */
  append(records: readonly Appended<R>[]): void {
    if (records.length === 0) return;
    this.commit(records);
    fs.fdatasyncSync(this.walFd);
    this.synced(this.lastSeq);
    this.compactDue();
    this.checkpointDue();
  }

  /**
   * Append `records` in one transaction without making them durable: they are durable once a later
   * {@link sync} returns. Group commit on the storage thread (impl/runtime/storage-worker.ts) writes
   * every append waiting for it this way and then syncs once.
   */
  write(records: readonly Appended<R>[]): void {
    if (records.length === 0) return;
    this.commit(records);
  }

  /**
   * Make every record written so far durable (the WAL synced, blocking). Compaction then waits for {@link compactDue}.
   */
  sync(): void {
    fs.fdatasyncSync(this.walFd);
    this.synced(this.lastSeq);
  }

  /**
   * Append `records` in one transaction now; `done` is called once they are durable (the WAL
   * synced on libuv's thread pool, the event loop free meanwhile), or with the error that kept
   * them from it (the caller must stop). Calls `done` synchronously only for an empty batch or a
   * failed transaction.
   */
  appendAsync(records: readonly Appended<R>[], done: (error: Error | null) => void): void {
    if (records.length === 0) return done(null);
    try {
      this.commit(records);
    } catch (error) {
      return done(error instanceof Error ? error : new Error(String(error)));
    }
    // What this fsync covers: everything written before it starts.
    const upTo = this.lastSeq;
    this.syncsInFlight += 1;
    // Test-only, broken on purpose: the batch is reported durable before its fsync returns.
    if (this.faults.ackBeforeSync) done(null);
    fs.fdatasync(this.walFd, (error) => {
      this.syncsInFlight -= 1;
      if (this.closed && this.syncsInFlight === 0) fs.closeSync(this.walFd);
      if (error === null && !this.closed) this.synced(upTo);
      if (!this.faults.ackBeforeSync) done(error);
      if (error === null) {
        this.compactDue();
        this.checkpointDue();
      }
    });
  }

  /** An fsync returned: every record up to `seq` is on disk. */
  private synced(seq: number): void {
    if (this.faults.powerLoss) noteSynced(this.syncedSeqFd, seq);
    // Compaction waits for the fsync that covers its snapshot, so a power cut never leaves
    // the disk without both the superseded records and the snapshot that replaced them.
    if (this.compactAt > 0 && this.compactAt <= seq) {
      this.compactReady = this.compactAt;
      this.compactAt = 0;
    }
    this.options.onSynced?.(seq);
  }

  /**
   * Checkpoint the WAL (SQLite's PASSIVE checkpoint: it syncs the WAL, copies its pages into the
   * database, syncs that) if the commits since the last one wrote `walCheckpointBytes` or more, or
   * with `overdueOnly` only once they wrote twice that; returns whether it ran. The storage thread
   * calls it when it has nothing else to do, and after a group's acknowledgements once it is
   * overdue (see the header): never in front of an acknowledgement.
   */
  checkpointDue(overdueOnly = false): boolean {
    if (this.walBytes < (overdueOnly ? 2 : 1) * walCheckpointBytes || this.closed) return false;
    this.walBytes = 0;
    this.db.pragma("wal_checkpoint(PASSIVE)");
    return true;
  }

  /**
   * Run the compaction an fsync made due, if any (see the header), whole and now; returns how many
   * records it deleted.
   */
  compactDue(): number {
    this.startDue();
    return this.run === null ? 0 : this.finishRun();
  }

  /**
   * Take the compaction an fsync made due one piece of rows further (see {@link compact}), its
   * deletions made in one transaction once every row is decided; returns whether some of it is
   * left. The storage thread calls it between groups of appends, so that no append waits behind a
   * whole compaction (docs/performance.md, "Compaction between appends").
   */
  compactSome(): boolean {
    this.startDue();
    if (this.run === null) return false;
    if (this.run.top >= 1) this.decidePiece(this.run);
    else this.deleteDecided(this.run);
    return this.run !== null;
  }

  /** Whether a compaction is due or under way (see {@link compactSome}). */
  get compacting(): boolean {
    return this.run !== null || (this.compactReady > 0 && !this.closed);
  }

  private commit(records: readonly Appended<R>[]): void {
    if (records.length > appendBatchRecordsMax)
      throw new Error(`append of ${records.length} records exceeds ${appendBatchRecordsMax}`);
    if (this.closed) throw new Error("storage is closed");
    // Only a committed transaction moves lastSeq: a failed one (the caller stops) changes nothing.
    // Rolled back, a stage keeps its rows and its count; committed, they are gone.
    this.stagesMoved = [];
    this.transactionBytes = 0;
    this.lastSeq = this.appendAll(records);
    for (const stage of this.stagesMoved) this.staged.delete(stage);
    this.stagesMoved = [];
    // A commit writes at least a page of the records' b-tree to the WAL, beside its rows' bytes.
    this.walBytes += walPageBytes + this.transactionBytes;
    const after = this.options.compaction?.after;
    const due = (r: Appended<R>): boolean =>
      !(r instanceof EncodedRecord) && after!(r instanceof SplitRecord || r instanceof StagedRecord ? r.record : r);
    if (after === undefined || !records.some(due)) return;
    this.compactAt = this.lastSeq;
  }

  /** Start the compaction that an fsync made due, if any: a later snapshot's replaces one under way. */
  private startDue(): void {
    if (this.closed) {
      this.run = null;
      return;
    }
    const through = this.compactReady;
    if (through === 0) return;
    this.compactReady = 0;
    this.run = this.newRun(through);
  }

  private newRun(through: number): CompactionRun | null {
    const compaction = this.options.compaction;
    if (compaction === undefined) return null;
    const pieceRows = compaction.pieceRows ?? compactionPieceRows;
    if (!(Number.isSafeInteger(pieceRows) && pieceRows >= 1))
      throw new Error(`compaction.pieceRows is ${pieceRows}, not a positive count of rows`);
    return {
      through,
      keep: compaction.decider?.() ?? compaction.keep,
      top: through,
      found: [],
      doomed: [],
      deleted: 0,
      read: 0,
    };
  }

  private finishRun(): number {
    for (;;) {
      const run = this.run;
      if (run === null) return 0;
      if (run.top >= 1) this.decidePiece(run);
      else return this.deleteDecided(run);
    }
  }

  /**
   * Delete the records that `compaction.keep` does not keep, whole and now. Returns how many were
   * deleted. The rows are decided a piece at a time, then deleted in one transaction that also
   * notes the compaction in `meta`: a crash before its commit changes nothing; the deletion need
   * not be synced, since the records it removes are superseded.
   *
   * The rows are read in pieces of at most `compaction.pieceRows`, from the last down (each
   * piece one query of the rows' kinds and heads, nothing of it held once decided but the
   * sequence numbers to delete), so that what compaction holds at once does not grow with the
   * snapshot interval. `keep` sees each piece followed by the latest two snapshots found above it,
   * which is all `compactRecords` reads of the records after a record to decide it (see the
   * option). Between pieces nothing below `through` changes: appends add rows above it, and only
   * compaction deletes.
   */
  compact(through: number = this.lastSeq): number {
    this.run = this.newRun(through);
    return this.finishRun();
  }

  /** Decide the next piece of `run`'s rows, from the top down; note the sequence numbers to delete. */
  private decidePiece(run: CompactionRun): void {
    const pieceRows = this.options.compaction?.pieceRows ?? compactionPieceRows;
    this.pieceQuery ??= this.db.prepare<[number, number]>(
      `SELECT seq, kind, substr(body, 1, ${summaryHeadChars}) AS head FROM records WHERE seq <= ? ORDER BY seq DESC LIMIT ?`,
    );
    this.wholeQuery ??= this.db.prepare<[number]>("SELECT body FROM records WHERE seq = ?").pluck();
    const whole = this.wholeQuery;
    try {
      const rows = (
        this.pieceQuery.all(run.top, pieceRows) as { seq: number; kind: string; head: string | Buffer }[]
      ).reverse();
      const summaries = rows.map((row) => this.summaryOfRow(row, whole));
      const kept = new Set(run.keep([...summaries, ...run.found.toReversed()]));
      let open: [number, number] | null = null;
      summaries.forEach((summary, i) => {
        if (kept.has(summary)) {
          open = null;
          return;
        }
        run.deleted += 1;
        if (open !== null) open[1] = rows[i]!.seq;
        else run.doomed.push((open = [rows[i]!.seq, rows[i]!.seq]));
      });
      for (let i = summaries.length - 1; i >= 0 && run.found.length < 2; i--)
        if (summaries[i]!._tag === "snapshot") run.found.push(summaries[i]!);
      run.read += rows.length;
      // The last piece (fewer rows than asked) reaches down to the first seq.
      run.top = rows.length < pieceRows ? 0 : rows[0]!.seq - 1;
    } catch (error) {
      // Nothing was deleted: a fault in a piece leaves every record, and the run goes.
      this.run = null;
      throw error;
    }
  }

  /** Delete what `run` decided, with a split snapshot's parts, in one transaction that notes it in `meta`. */
  private deleteDecided(run: CompactionRun): number {
    this.run = null;
    const remove = this.db.prepare<[number, number]>("DELETE FROM records WHERE seq >= ? AND seq <= ?");
    // A split snapshot's parts go with its row.
    const removeParts = this.db.prepare<[number, number]>(
      "DELETE FROM snapshot_data WHERE seq <= ? AND seq NOT IN (SELECT seq FROM records WHERE seq <= ?)",
    );
    const setMeta = this.db.prepare(
      "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    );
    this.db.transaction((): void => {
      for (const [first, last] of run.doomed) remove.run(first, last);
      removeParts.run(run.through, run.through);
      setMeta.run(metaCompactedThrough, String(run.through));
      setMeta.run(metaCompactedKept, String(run.read - run.deleted));
    })();
    // A run's seqs without a row (deleted before) have no key either.
    for (const [first, last] of run.doomed) for (let seq = first; seq <= last; seq++) this.unindex(seq);
    return run.deleted;
  }

  /** The summary of a row compaction reads: from its kind and head, else from its body decoded whole. */
  private summaryOfRow(
    row: { readonly seq: number; readonly kind: string; readonly head: string | Buffer },
    whole: Database.Statement<[number]>,
  ): RecordSummary {
    const summary =
      typeof row.head === "string"
        ? summaryOfHead(row.kind, row.head)
        : summaryOfBinaryHead(row.kind, row.head, this.options.binary);
    if (summary !== null) return summary;
    const body = whole.get(row.seq) as string | Buffer;
    const decoded =
      typeof body === "string"
        ? Either.flatMap(parseJsonText(body), (json) => this.options.codec.decodeValue(json))
        : decodeBinary(body, this.options.binary);
    if (Either.isLeft(decoded)) throw new StorageError("damaged", this.file, `record ${row.seq} ${decoded.left}`);
    const read = summaryOf(decoded.right);
    if (read === null) throw new StorageError("damaged", this.file, `record ${row.seq} is no durable record`);
    return read;
  }

  /** Note the record stored as `seq` under its `key` (if it has one): the last record of a key wins. */
  private index(key: string | null, seq: number): void {
    if (key === null) return;
    const before = this.keyed.get(key);
    if (before !== undefined) this.keyOfSeq.delete(before);
    this.keyed.set(key, seq);
    this.keyOfSeq.set(seq, key);
  }

  /** Forget the key of record `seq`, which compaction deleted. */
  private unindex(seq: number): void {
    const key = this.keyOfSeq.get(seq);
    if (key === undefined) return;
    this.keyOfSeq.delete(seq);
    if (this.keyed.get(key) === seq) this.keyed.delete(key);
  }

  /**
   * The last record written under each of `keys` (`keyOf`), read back from the database as it
   * stands: every record written so far is there, synced or not, and none that compaction
   * deleted. Each is checked as opening checks it (checksum, Schema) and must have its key. Throws,
   * naming the key, when one is not there (never written, or compacted away): the caller asked for
   * a record the store does not hold, and must not go on as if it did.
   */
  readKeyed(keys: readonly string[]): R[] {
    return keys.map((key) => {
      const seq = this.keyed.get(key);
      const row = seq === undefined ? undefined : (this.selectRow.get(seq) as Row | undefined);
      if (row === undefined)
        throw new Error(`${this.file}: no record ${key} in the store (never written, or compacted away)`);
      if (recordChecksum(row.seq, row.kind, row.body) !== row.checksum)
        throw new StorageError("damaged", this.file, `record ${row.seq} (${row.kind}) fails its checksum`);
      const decoded = decodeRow(this.db, row, this.options.codec, this.options.binary);
      if (Either.isLeft(decoded))
        throw new StorageError("damaged", this.file, `record ${row.seq} (${row.kind}) ${decoded.left}`);
      if (this.options.keyOf?.(decoded.right) !== key)
        throw new StorageError("damaged", this.file, `record ${row.seq} (${row.kind}) is not record ${key}`);
      return decoded.right;
    });
  }

  /**
   * Bytes [offset, offset + length) of the data of the last snapshot record of `slot` (fewer at its
   * end), with the record's slot, digests, size and `maxBal`, read without joining its data: only
   * the parts the range touches are read, each checked against its checksum, as the row is. What a
   * state transfer's chunk at rest is made of (impl/core/at-rest.ts). Throws, naming the slot, when
   * the store holds no snapshot of that slot (never written, or compacted away).
   */
  readSnapshotSlice(slot: number, offset: number, length: number): SnapshotSlice {
    const rows = this.db
      .prepare("SELECT seq, kind, body, checksum FROM records WHERE kind = 'snapshot' ORDER BY seq DESC")
      .iterate() as IterableIterator<Row>;
    for (const row of rows) {
      // A row of JSON text that starts with another slot is passed over undecoded.
      if (typeof row.body === "string" && !row.body.startsWith(`{"_tag":"snapshot","slot":${slot},`)) continue;
      if (recordChecksum(row.seq, row.kind, row.body) !== row.checksum)
        throw new StorageError("damaged", this.file, `record ${row.seq} (${row.kind}) fails its checksum`);
      // Its data stored in parts, the row holds the record without it: small either way.
      const decoded =
        typeof row.body === "string" ? parseJsonText(row.body) : decodeBinary(row.body, this.options.binary);
      if (Either.isLeft(decoded)) throw new StorageError("damaged", this.file, `record ${row.seq} ${decoded.left}`);
      const head = decoded.right as { slot: number; digest: string; contentDigest: string; data: string };
      if (head.slot !== slot) continue;
      const { digest, contentDigest } = head;
      if (!hasEmptyData(head)) {
        const data = head.data;
        const sliced = data.slice(offset, offset + length);
        return { slot, digest, contentDigest, totalBytes: data.length, offset, data: sliced };
      }
      const ends = this.partEnds(row.seq);
      const totalBytes = ends.at(-1) ?? 0;
      const end = Math.min(offset + length, totalBytes);
      const texts: string[] = [];
      let start = 0;
      for (let i = 0; i < ends.length && start < end; i++) {
        const partEnd = ends[i]!;
        if (partEnd > offset) {
          const part = this.selectPart.get(row.seq, i) as { text: unknown; checksum: string } | undefined;
          if (
            part === undefined ||
            typeof part.text !== "string" ||
            partChecksum(row.seq, i, part.text) !== part.checksum
          )
            throw new StorageError(
              "damaged",
              this.file,
              `record ${row.seq} has part ${i} of its data failing its checksum`,
            );
          texts.push(part.text.slice(Math.max(offset - start, 0), end - start));
        }
        start = partEnd;
      }
      return { slot, digest, contentDigest, totalBytes, offset, data: texts.join("") };
    }
    throw new Error(`${this.file}: no snapshot of slot ${slot} in the store (never written, or compacted away)`);
  }

  /** The end of each part of split record `seq`'s data, in characters (bytes: a snapshot is ASCII), kept per record. */
  private partEnds(seq: number): readonly number[] {
    const known = this.partEndsOf.get(seq);
    if (known !== undefined) return known;
    const rows = this.db
      .prepare("SELECT part, parts, length(text) AS n FROM snapshot_data WHERE seq = ? ORDER BY part")
      .all(seq) as { part: number; parts: number; n: number }[];
    if (rows.length === 0)
      throw new StorageError(
        "damaged",
        this.file,
        `record ${seq} has its data stored in parts, and none of them is there`,
      );
    const ends: number[] = [];
    for (const [i, row] of rows.entries()) {
      if (row.part !== i || row.parts !== rows.length)
        throw new StorageError(
          "damaged",
          this.file,
          `record ${seq} has ${rows.length} parts of data where part ${i} says ${row.part} of ${row.parts}`,
        );
      ends.push((ends.at(-1) ?? 0) + row.n);
    }
    // Few snapshots are served at once: the latest two and one a transfer fetches.
    if (this.partEndsOf.size >= 8) this.partEndsOf.clear();
    this.partEndsOf.set(seq, ends);
    return ends;
  }

  private readonly partEndsOf = new Map<number, readonly number[]>();

  /** Sequence number of the last durable record (0: none). */
  get recordCount(): number {
    return this.lastSeq;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.run = null;
    if (this.syncedSeqFd >= 0) fs.closeSync(this.syncedSeqFd);
    this.db.close();
    if (this.syncsInFlight === 0) fs.closeSync(this.walFd);
  }
}

/** Characters of a row's body that compaction reads to summarize it (see `summaryOfHead`). */
const summaryHeadChars = 400;

/**
 * Rows compaction reads at once by default (`compaction.pieceRows`): a piece holds at most this
 * many heads of `summaryHeadChars` (some 100 KB of JavaScript objects and bytes). One query of two
 * intervals' heads held 17.6 MB at 8,192 slots, and the storage thread's heap kept the room
 * (docs/performance.md, "Compaction in pieces").
 */
export const compactionPieceRows = 256;

/**
 * The summary compaction needs (impl/core's RecordSummary), read from the start of a row's body
 * as the record codec writes it (`{"_tag":"vote","slot":7,...`, a snapshot's `logTruncatedUpTo`
 * before its data), without decoding the values; null when the start does not read that way
 * (the row is then decoded whole).
 */
export function summaryOfHead(kind: string, head: string): RecordSummary | null {
  if (kind === "promise" && head.startsWith('{"_tag":"promise",')) return { _tag: "promise" };
  if (kind === "handOver" && head.startsWith('{"_tag":"handOver",')) return { _tag: "handOver" };
  if (kind === "vote" || kind === "chosen") {
    const match = /^\{"_tag":"(vote|chosen)","slot":(\d{1,15}),/.exec(head);
    if (match === null || match[1] !== kind) return null;
    return { _tag: kind, slot: Number(match[2]) };
  }
  if (kind === "snapshot") {
    const match =
      /^\{"_tag":"snapshot","slot":(\d{1,15}),"digest":"[^"\\]*","contentDigest":"[^"\\]*","maxBal":\{"round":\d{1,15},"replica":\d{1,15}\},"logTruncatedUpTo":(\d{1,15}),"data":"/.exec(
        head,
      );
    if (match === null) return null;
    return { _tag: "snapshot", slot: Number(match[1]), logTruncatedUpTo: Number(match[2]) };
  }
  return null;
}

/** The leading fields `summaryOfHead` reads of each kind of record: tag, slot, a snapshot's `logTruncatedUpTo`. */
const headFields: Readonly<Record<string, number>> = { promise: 1, handOver: 1, vote: 2, chosen: 2, snapshot: 6 };

/**
 * {@link summaryOfHead} for a row of the record codec's bytes (`binary`): its leading fields read
 * from its first bytes; null when they do not read so (the row is then decoded whole).
 */
export function summaryOfBinaryHead<R>(
  kind: string,
  head: Buffer,
  binary: BinaryCodec<R> | undefined,
): RecordSummary | null {
  const fields = headFields[kind];
  if (binary === undefined || fields === undefined) return null;
  const decoded = binary.decodeHead(head, fields);
  if (Either.isLeft(decoded) || decoded.right._tag !== kind) return null;
  const summary = summaryOf(decoded.right);
  return summary?._tag === kind ? summary : null;
}

/** A row's bytes decoded by the record codec, or why not (opened without the codec, a store of bytes says so). */
function decodeBinary<R>(body: Buffer, binary: BinaryCodec<R> | undefined): Either.Either<R, string> {
  if (binary === undefined) return Either.left("is stored as bytes, and this store was opened without their codec");
  return Either.mapLeft(binary.decode(body), (reason) => `does not decode: ${reason}`);
}

/** The summary of a decoded record, or null when it is none of the durable records. */
function summaryOf(record: unknown): RecordSummary | null {
  if (typeof record !== "object" || record === null || !("_tag" in record)) return null;
  const r = record as { _tag: unknown; slot?: unknown; logTruncatedUpTo?: unknown };
  if (r._tag === "promise" || r._tag === "handOver") return { _tag: r._tag };
  if ((r._tag === "vote" || r._tag === "chosen") && typeof r.slot === "number") return { _tag: r._tag, slot: r.slot };
  if (r._tag === "snapshot" && typeof r.slot === "number" && typeof r.logTruncatedUpTo === "number")
    return { _tag: "snapshot", slot: r.slot, logTruncatedUpTo: r.logTruncatedUpTo };
  return null;
}

/**
 * Refuse, saying so, a data directory (or store) this process may not read and write: a
 * permission problem is not damage, and its fix is different (run the replica as the owner).
 */
function checkAccess(dir: string, file: string): void {
  const denied = (target: string, mode: number): boolean => {
    try {
      fs.accessSync(target, mode);
      return false;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      return code === "EACCES" || code === "EPERM" || code === "EROFS";
    }
  };
  for (const [target, mode] of [
    [dir, fs.constants.R_OK | fs.constants.W_OK | fs.constants.X_OK],
    [file, fs.constants.R_OK | fs.constants.W_OK],
  ] as const) {
    if (!fs.existsSync(target) || !denied(target, mode)) continue;
    const stat = fs.statSync(target);
    const user = typeof process.getuid === "function" ? `uid ${process.getuid()}` : "this user";
    throw new StorageError(
      "inaccessible",
      target,
      `permission denied: this process (${user}) cannot read and write it (owner uid ${stat.uid}, mode ${(stat.mode & 0o777).toString(8).padStart(4, "0")}); run the replica as its owner or fix the permissions`,
    );
  }
}

/** SQLite's quick_check report (one line per problem, often hundreds) as one line. */
function quickCheckSummary(report: string): string {
  const problems = report
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("***"));
  const first = (problems[0] ?? report).slice(0, 200);
  return `SQLite quick_check found ${problems.length === 1 ? "a problem" : `${problems.length} problems`}, the first: ${first}`;
}

function openDatabase(file: string, exists: boolean): Database.Database {
  let db: Database.Database;
  try {
    db = new Database(file, { fileMustExist: exists, timeout: 0 });
  } catch (error) {
    throw new StorageError("damaged", file, `cannot open: ${error instanceof Error ? error.message : String(error)}`);
  }
  try {
    // One process per data directory: hold SQLite's lock for the life of the process.
    db.pragma("locking_mode = EXCLUSIVE");
    db.pragma("journal_mode = WAL");
    // Commits write the WAL without syncing it; the runtime syncs it (see the header).
    db.pragma("synchronous = NORMAL");
    db.pragma(`cache_size = -${pageCacheKib}`);
    // The store checkpoints after its acknowledgements; SQLite's own is the backstop (see the header).
    db.pragma(`wal_autocheckpoint = ${walAutocheckpointPages}`);
    db.exec("BEGIN IMMEDIATE; COMMIT;");
    const check = db.pragma("quick_check", { simple: true });
    if (check !== "ok") throw new StorageError("damaged", file, quickCheckSummary(String(check)));
  } catch (error) {
    db.close();
    if (error instanceof StorageError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    if (/locked|busy/i.test(message))
      throw new StorageError("in-use", file, "another process holds this data directory");
    throw new StorageError("damaged", file, `not a usable SQLite database: ${message}`);
  }
  return db;
}

/**
 * Test-only (power-loss mode): the machine lost power since the store was last open, so every
 * record written after the last completed fsync is gone, as the crash would have lost it.
 */
function losePowerCut(db: Database.Database, dir: string): number | null {
  const marker = path.join(dir, powerCutFileName);
  if (!fs.existsSync(marker)) return null;
  const synced = syncedSeqOf(dir);
  const lost = db.prepare("DELETE FROM records WHERE seq > ?").run(synced).changes;
  db.prepare("DELETE FROM snapshot_data WHERE seq > ?").run(synced);
  fs.rmSync(marker);
  return lost;
}

/**
 * Open the WAL file of the open database `file` for syncing, and make it and everything in it
 * durable now: its data, and its directory entry (the file is created when the database opens).
 */
function openWal(file: string): number {
  const fd = fs.openSync(`${file}-wal`, "r");
  fs.fdatasyncSync(fd);
  const dir = fs.openSync(path.dirname(file), "r");
  try {
    fs.fsyncSync(dir);
  } finally {
    fs.closeSync(dir);
  }
  return fd;
}

function initialize<R>(db: Database.Database, options: StorageOptions<R>): void {
  db.exec(`
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE records (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, body TEXT NOT NULL, checksum TEXT NOT NULL);
    ${snapshotDataTable}
  `);
  const put = db.prepare("INSERT INTO meta (key, value) VALUES (?, ?)");
  db.transaction(() => {
    put.run("format", storageFormat);
    put.run("cluster_id", options.clusterId);
    put.run("replica_id", String(options.replicaId));
    // Informational only; nothing reads it back for a decision.
    put.run("created", new Date().toISOString());
  })();
}

function checkMeta<R>(db: Database.Database, file: string, options: StorageOptions<R>): void {
  const tables = new Set(
    (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map(
      (row) => row.name,
    ),
  );
  if (!tables.has("meta") || !tables.has("records")) {
    throw new StorageError(
      "foreign",
      file,
      "an SQLite database, but not a paxos-lease replica store (no meta/records tables)",
    );
  }
  const meta = new Map(
    (db.prepare("SELECT key, value FROM meta").all() as { key: string; value: string }[]).map((row) => [
      row.key,
      row.value,
    ]),
  );
  const format = meta.get("format");
  if (format !== storageFormat && !storageFormatsPrevious.includes(format ?? ""))
    throw new StorageError(
      "damaged",
      file,
      `format version ${JSON.stringify(format)}, expected ${JSON.stringify(storageFormat)} (or ${storageFormatsPrevious.map((f) => JSON.stringify(f)).join(" or ")}, which this version upgrades)`,
    );
  // @3 had the table too (prepareFormat gives one to the stores before it).
  if ((format === storageFormat || format === storageFormatsPrevious[0]) && !tables.has("snapshot_data"))
    throw new StorageError("damaged", file, "the table snapshot_data is missing");
  const clusterId = meta.get("cluster_id");
  if (clusterId !== options.clusterId) {
    throw new StorageError(
      "foreign",
      file,
      `belongs to cluster ${JSON.stringify(clusterId)}, not ${JSON.stringify(options.clusterId)}`,
    );
  }
  const replicaId = meta.get("replica_id");
  if (replicaId !== String(options.replicaId)) {
    throw new StorageError(
      "foreign",
      file,
      `belongs to replica ${replicaId ?? "(none)"}, not replica ${options.replicaId}`,
    );
  }
}

/**
 * Give a store of a previous format the table this one adds (empty: its snapshots are whole), before its records are
 * read.
 */
function prepareFormat(db: Database.Database): void {
  db.exec(snapshotDataTable.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS"));
  // Staging is no format change: older code never looks at it. What a crash left there is garbage
  // (a snapshot whose record never committed): it goes at every open.
  db.exec(snapshotStagingTable);
  db.exec(transferReceivedTable);
  // Except the stage of a state transfer that resumes (`keptReceived`).
  db.exec("DELETE FROM snapshot_staging WHERE stage NOT IN (SELECT stage FROM transfer_received)");
}

/**
 * The state transfer whose stage this open keeps (see `noteReceived`), once its rows are checked
 * to be parts 0 to n - 1 (what a crash can leave of rows each committed on its own, in order);
 * otherwise, or with no row, nothing is kept.
 */
function keptReceived(db: Database.Database): ReceivedStage | null {
  const row = db
    .prepare("SELECT stage, peer, slot, digest, content_digest, total_bytes FROM transfer_received LIMIT 1")
    .get() as
    | { stage: number; peer: number; slot: number; digest: string; content_digest: string; total_bytes: number }
    | undefined;
  const drop = (): null => {
    db.exec("DELETE FROM snapshot_staging");
    db.exec("DELETE FROM transfer_received");
    return null;
  };
  if (row === undefined) return drop();
  const rows = db
    .prepare("SELECT count(*) AS n, coalesce(max(part), -1) AS last FROM snapshot_staging WHERE stage = ?")
    .get(row.stage) as { n: number; last: number };
  if (rows.n === 0 || rows.last !== rows.n - 1) return drop();
  return {
    stage: row.stage,
    from: row.peer,
    slot: row.slot,
    digest: row.digest,
    contentDigest: row.content_digest,
    totalBytes: row.total_bytes,
    parts: rows.n,
  };
}

/** Mark a store of a previous format as of this one once its records loaded (one that fails to is left as it was). */
function upgradeFormat(db: Database.Database): void {
  const mark = db.prepare("UPDATE meta SET value = ? WHERE key = 'format' AND value = ?");
  for (const previous of storageFormatsPrevious) mark.run(storageFormat, previous);
}

/** Slices of snapshots whose records are not appended yet (see the header): part `part` of stage `stage`. */
const snapshotStagingTable =
  "CREATE TABLE IF NOT EXISTS snapshot_staging (stage INTEGER NOT NULL, part INTEGER NOT NULL, text TEXT NOT NULL, PRIMARY KEY (stage, part));";

/**
 * The state transfer whose chunks a stage holds (at most one row; see `noteReceived`): an earlier
 * version never reads it, and deletes the stage at its open as any other.
 */
const transferReceivedTable =
  "CREATE TABLE IF NOT EXISTS transfer_received (stage INTEGER NOT NULL PRIMARY KEY, peer INTEGER NOT NULL, slot INTEGER NOT NULL, digest TEXT NOT NULL, content_digest TEXT NOT NULL, total_bytes INTEGER NOT NULL);";

/** The parts of split snapshots (see the header): part `part` of `parts` of the data of record `seq`. */
const snapshotDataTable =
  "CREATE TABLE snapshot_data (seq INTEGER NOT NULL, part INTEGER NOT NULL, parts INTEGER NOT NULL, text TEXT NOT NULL, checksum TEXT NOT NULL, PRIMARY KEY (seq, part));";

/** How a split record's row spells its empty `data`, which its parts stand for. */
const metaCompactedThrough = "compacted_through";
const metaCompactedKept = "compacted_kept";

/** How far the log was compacted, and how many rows it kept up to there (0 and 0: never). */
function compactedThrough(db: Database.Database, file: string): { readonly through: number; readonly kept: number } {
  const get = db.prepare("SELECT value FROM meta WHERE key = ?");
  const read = (key: string): number => {
    const row = get.get(key) as { value: string } | undefined;
    if (row === undefined) return 0;
    const n = Number(row.value);
    if (!Number.isSafeInteger(n) || n < 0)
      throw new StorageError("damaged", file, `meta ${key} is ${JSON.stringify(row.value)}, not a count`);
    return n;
  };
  return { through: read(metaCompactedThrough), kept: read(metaCompactedKept) };
}

function readRecords<R>(
  db: Database.Database,
  file: string,
  codec: JsonCodec<R>,
  binary: BinaryCodec<R> | undefined,
  compacted: { readonly through: number; readonly kept: number },
): { records: R[]; seqs: number[]; lastSeq: number } {
  const records: R[] = [];
  const seqs: number[] = [];
  let expected = compacted.through + 1;
  let keptBelow = 0;
  for (const row of db
    .prepare("SELECT seq, kind, body, checksum FROM records ORDER BY seq")
    .iterate() as IterableIterator<Row>) {
    if (row.seq <= compacted.through) keptBelow += 1;
    else if (row.seq !== expected)
      throw new StorageError("damaged", file, `record ${expected} is missing (next is ${row.seq})`);
    else if (keptBelow !== compacted.kept)
      throw new StorageError(
        "damaged",
        file,
        `${keptBelow} records up to ${compacted.through}, where the last compaction kept ${compacted.kept}`,
      );
    if ((typeof row.body !== "string" && !Buffer.isBuffer(row.body)) || typeof row.kind !== "string")
      throw new StorageError("damaged", file, `record ${row.seq} has a wrong column type`);
    if (recordChecksum(row.seq, row.kind, row.body) !== row.checksum) {
      throw new StorageError("damaged", file, `record ${row.seq} (${row.kind}) fails its checksum`);
    }
    const decoded = decodeRow(db, row, codec, binary);
    if (Either.isLeft(decoded))
      throw new StorageError("damaged", file, `record ${row.seq} (${row.kind}) ${decoded.left}`);
    records.push(decoded.right);
    seqs.push(row.seq);
    if (row.seq > compacted.through) expected += 1;
  }
  if (expected === compacted.through + 1 && keptBelow !== compacted.kept) {
    throw new StorageError(
      "damaged",
      file,
      `${keptBelow} records up to ${compacted.through}, where the last compaction kept ${compacted.kept}`,
    );
  }
  const orphan = db
    .prepare("SELECT seq FROM snapshot_data WHERE seq NOT IN (SELECT seq FROM records) LIMIT 1")
    .pluck()
    .get() as number | undefined;
  if (orphan !== undefined)
    throw new StorageError("damaged", file, `the data of record ${orphan} is stored without it`);
  return { records, seqs, lastSeq: expected - 1 };
}

/**
 * The record a row holds, its data joined from its parts when it is stored in parts: JSON text
 * decoded by the Schema, or the record codec's bytes (which it checks as the Schema would).
 */
function decodeRow<R>(
  db: Database.Database,
  row: Row,
  codec: JsonCodec<R>,
  binary: BinaryCodec<R> | undefined,
): Either.Either<R, string> {
  if (typeof row.body === "string")
    return Either.flatMap(
      Either.flatMap(parseJsonText(row.body), (json) => joinParts(db, row, json)),
      (json) => codec.decodeValue(json),
    );
  // The parts are strings, and `data` one too: the record with its parts joined in is still one.
  return Either.flatMap(
    decodeBinary(row.body, binary),
    (record) => joinParts(db, row, record) as Either.Either<R, string>,
  );
}

/**
 * Whether an encoded record has a field `data` that is empty: in a stored row, that stands for the
 * data's parts in `snapshot_data` (a record whose data is empty is stored as one empty part).
 */
function hasEmptyData(json: unknown): json is { readonly data: "" } {
  return typeof json === "object" && json !== null && "data" in json && json.data === "";
}

/**
 * The decoded JSON of `row` with its data put back in when its `data` is empty (its parts are in
 * `snapshot_data`), each part's checksum and the count checked; a row with empty data and no parts
 * has lost them, since the writer gives even empty data one part.
 */
function joinParts(db: Database.Database, row: Row, json: unknown): Either.Either<unknown, string> {
  if (!hasEmptyData(json)) return Either.right(json);
  const parts = db
    .prepare("SELECT part, parts, text, checksum FROM snapshot_data WHERE seq = ? ORDER BY part")
    .all(row.seq) as { part: number; parts: number; text: unknown; checksum: string }[];
  if (parts.length === 0) return Either.left("has its data stored in parts, and none of them is there");
  const texts: string[] = [];
  for (const [i, part] of parts.entries()) {
    if (part.part !== i || part.parts !== parts.length)
      return Either.left(`has ${parts.length} parts of data where part ${i} says ${part.part} of ${part.parts}`);
    if (typeof part.text !== "string" || partChecksum(row.seq, i, part.text) !== part.checksum)
      return Either.left(`has part ${i} of its data failing its checksum`);
    texts.push(part.text);
  }
  return Either.right({ ...json, data: texts.join("") });
}

function parseJsonText(text: string): Either.Either<unknown, string> {
  try {
    return Either.right(JSON.parse(text) as unknown);
  } catch (error) {
    return Either.left(`is not JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
}

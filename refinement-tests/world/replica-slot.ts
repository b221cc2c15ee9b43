/**
 * One replica of the simulated world as the world keeps it: its state (null while down), its
 * disk (durable records and the unflushed buffer), the durability notices its storage owes it (the
 * leader's own votes, `Persist.notify`), its own clock (a reading and a rate, changed by
 * drift), whether it is paused, armed to crash or retired, the addresses it knows, and (where the
 * tuning resumes transfers) the state transfer its disk kept across a crash.
 */
import type { KvInput, KvOutput, KvState } from "../../spec/kv.ts";
import {
  compactRecords,
  type Config,
  type DurableRecord,
  type KeptTransfer,
  type ReadEntries,
  type SnapshotChunkMsg,
  type VoteRef,
} from "../../impl/core/testing/index.ts";
import type { ReplicaView } from "../../proofs/world-view.ts";
import { Hasher, valueHash, type Hash64 } from "../explorer/hash.ts";
import type { KvReplicaState } from "./world.ts";

/**
 * A `ReadEntries` its storage thread read and has yet to answer (`ReplicaTuning.readsLateMsMax`):
 * the values read from the disk when the step that asked was carried out, the true time at which
 * the `EntriesRead` is due, and what the replica was then, for the counters of what happened in
 * between (`World.answerRead`).
 */
export interface OwedRead {
  readonly read: ReadEntries;
  /** The values as read (a wrong answer changes one as it is stepped). */
  readonly values: readonly string[];
  /** True time from which the answer is stepped (at the next advance of time). */
  readonly dueAt: number;
  /** True time at which it was asked. */
  readonly askedAt: number;
  /** The answer carries a value with one code unit changed (`ReplicaTuning.readsWrong`). */
  readonly wrong: boolean;
  /** What the replica was when it asked (counters only). */
  readonly asked: {
    readonly leaseHeld: boolean;
    readonly leading: string | null;
    readonly epoch: number;
    readonly compactions: number;
    readonly installs: number;
  };
}

/**
 * A compaction under way (`ReplicaTuning.compactionPieceRecords`; the runtime's `compactSome`): the
 * durable records below `through` (those up to the flush that made it due) decided a piece at a
 * time from the top down, with the pins of when it became due (proofs/store-at-rest.md, rule V3),
 * and deleted together once every one is decided. Records are only appended meanwhile (a later
 * snapshot's compaction replaces it), so the indices below `through` stay put.
 */
export interface CompactionRun {
  readonly through: number;
  readonly pinned: readonly number[];
  readonly pinnedVotes: readonly number[];
  /** The records from `top` up to `through` are decided. */
  readonly top: number;
  /** The indices of the records decided away. */
  readonly doomed: readonly number[];
  readonly pieces: number;
  /** Records were appended, or the store's pins changed, between its pieces (counters'). */
  readonly appendsBetween: boolean;
  readonly pinsChangedBetween: boolean;
}

/**
 * A broken compaction, for a mutant (refinement-tests/mutants/): keyed by the mutant's step, the
 * world's disk compacts so where that step runs. `pinsOfRunBefore`: a run decides with the store's
 * pins (`pinnedVotes`) of when the compaction before it became due (kept from run to run), not
 * with its own.
 */
export interface CompactionFault {
  readonly pinsOfRunBefore: boolean;
}
export const compactionFaults = new WeakMap<object, CompactionFault>();

interface Clock {
  base: number;
  rate: number;
  since: number;
}

export class ReplicaSlot implements ReplicaView<KvState, KvInput, KvOutput> {
  state: KvReplicaState | null = null;
  durable: DurableRecord<KvInput>[] = [];
  unflushed: DurableRecord<KvInput>[] = [];
  /**
   * Whether `unflushed` holds a record that holds back later effects (a Persist without `notify`
   * that is not `deferrable`): then the next Send, Reply or Alarm, or the end of the step, flushes
   * the buffer. The others (the leader's own votes, `chosen` records) wait for a notice, a later
   * barrier, an advance of time, or a crash, which loses them.
   */
  barrierUnflushed = false;
  /**
   * The snapshots the core serves beyond its latest two (impl/core's `pinnedSnapshots`), as of its
   * last step: compaction keeps their records, whence a transfer's chunks are read.
   */
  pinned: readonly number[] = [];
  /**
   * The slots of the vote records its store names (impl/core's `pinnedVotes`, rule V3), as of its
   * last step: compaction keeps them below the log's truncation point.
   */
  pinnedVotes: ReadonlySet<number> = new Set();
  /** Vote records the last compaction kept only because the store names them (a counter's). */
  keptForStore = 0;
  /** Records per piece of a compaction (`ReplicaTuning.compactionPieceRecords`); 0: whole. */
  compactionPieceRecords = 0;
  /** The compaction under way, in pieces (null: none). Lost with the process. */
  compacting: CompactionRun | null = null;
  /** A mutant's broken compaction (`compactionFaults`), and the store's pins its last run started with. */
  compactionFault: CompactionFault | null = null;
  lastRunPins: readonly number[] | null = null;
  /** The notices owed for Persists with `notify`, oldest first: each flushes the buffer when delivered. */
  notices: VoteRef[] = [];
  /** The `ReadEntries` its storage thread owes it, oldest first: lost with the process. */
  readsOwed: readonly OwedRead[] = [];
  /**
   * True time until which its storage thread is busy (`World.slowReads`): no read is answered
   * before it. 0: not busy. A new process has a new storage thread.
   */
  readsBusyUntil = 0;
  /**
   * Compactions of its disk and snapshots a state transfer installed, in every life: they only
   * feed counters (what happened while a read was owed), so they are left out of the hash.
   */
  compactions = 0;
  installs = 0;
  /**
   * The slot its execution waited at when it last asked for store values at rest for a command,
   * and how many times it asked there in this life (the world's ReadBackProgress check). Not
   * hashed: with the state it follows from, it only bounds what the check allows.
   */
  readBacksAt: { readonly slot: number; readonly asks: number } | null = null;
  /** A read owed was lost with the process, and no read was asked since (a counter's; not hashed). */
  lostRead = false;
  /**
   * The highest slot executed when a client reply left while an owed notice's slot was at or below
   * it (0: none in this life): a reply resting on followers' votes alone. It only feeds a counter
   * ("reply sent, then crash before the leader's own vote was durable"), so it is left out of the
   * hash: it decides nothing that follows.
   */
  repliedAheadOf = 0;
  /**
   * The state transfer its disk kept (the runtime's `transfer_received` and its stage): the
   * snapshot its sender claimed and the chunks the core took of it, in order from byte 0. Kept
   * only where the tuning's `resumeTransfers` asks (`World.stage`); it survives a crash, and the
   * restart describes it to `Recover`, which resumes it, and hands its chunks back a piece at a
   * time (`KeptChunks`, `World.feedKept`; impl/core/transfer.ts, `takeKept`). Never written in
   * place: each chunk makes a new value. Null: none.
   */
  kept: KeptOnDisk | null = null;
  /**
   * The transfer under way is one a `Recover` resumed from `kept` in this life. It only feeds
   * counters (a resumed transfer installed or refused), so it is left out of the hash.
   */
  resumed = false;
  paused = false;
  crashAt: number | null = null;
  /** Crash right after the next snapshot Persist, before it is flushed (a crash during a snapshot). */
  crashAtSnapshot = false;
  /** False for a spare that was never started. */
  born = false;
  /** True once it retired (rule R5): stopped for good, never started again (the runtime's REMOVED marker). */
  retired = false;
  /** The replicas whose addresses it was started with (its --peers), itself included; the same at every restart. */
  startList: ReadonlySet<number> = new Set();
  /** The replicas it learned the address of because they dialled it, in this life (a restart forgets them). */
  readonly learned = new Set<number>();
  readonly clock: Clock;
  /** The hash of everything but the clock (`hashInto`), kept until the slot changes (`changed`). */
  private hashed: Hash64 | null = null;
  /** The explorer's step to this replica's next deadline from one true time (explorer/time.ts), kept likewise. */
  nextDeadline: { readonly trueTime: number; readonly ms: number } | null = null;
  constructor(
    readonly id: number,
    readonly index: number,
    readonly config: Config,
    base: number,
  ) {
    this.clock = { base, rate: 1, since: 0 };
  }
  localAt(t: number): number {
    return this.clock.base + this.clock.rate * (t - this.clock.since);
  }
  /**
   * The slot is about to change (the world calls this before changing it, or any part of it): its
   * hash is computed again when next asked for.
   */
  changed(): void {
    this.hashed = null;
    this.nextDeadline = null;
  }

  /** An independent copy (states and records are immutable values, shared). */
  copy(): ReplicaSlot {
    const r = new ReplicaSlot(this.id, this.index, this.config, this.clock.base);
    r.state = this.state;
    r.durable = this.durable; // never written in place: a flush makes a new array
    r.unflushed = this.unflushed.length === 0 ? [] : this.unflushed.slice();
    r.barrierUnflushed = this.barrierUnflushed;
    r.notices = this.notices.length === 0 ? [] : this.notices.slice();
    r.readsOwed = this.readsOwed; // never written in place
    r.readsBusyUntil = this.readsBusyUntil;
    r.pinned = this.pinned; // never written in place: a step makes new ones
    r.pinnedVotes = this.pinnedVotes;
    r.keptForStore = this.keptForStore;
    r.compactions = this.compactions;
    r.installs = this.installs;
    r.lostRead = this.lostRead;
    r.compactionPieceRecords = this.compactionPieceRecords;
    r.compacting = this.compacting;
    r.compactionFault = this.compactionFault;
    r.lastRunPins = this.lastRunPins;
    r.readBacksAt = this.readBacksAt;
    r.repliedAheadOf = this.repliedAheadOf;
    r.kept = this.kept;
    r.resumed = this.resumed;
    r.paused = this.paused;
    r.crashAt = this.crashAt;
    r.crashAtSnapshot = this.crashAtSnapshot;
    r.born = this.born;
    r.retired = this.retired;
    r.startList = this.startList; // never written in place: a start makes a new set
    for (const id of this.learned) r.learned.add(id);
    r.clock.rate = this.clock.rate;
    r.clock.since = this.clock.since;
    return r;
  }
  /** Set the clock to read `reading` at true time `now`, at its current rate (a restart's fresh reading). */
  setClock(reading: number, now: number): void {
    this.clock.base = reading;
    this.clock.since = now;
  }

  /** From true time `now` on, the clock runs at `rate`, continuing from its reading now (drift). */
  setRate(rate: number, now: number): void {
    this.clock.base = this.localAt(now);
    this.clock.since = now;
    this.clock.rate = rate;
  }

  /**
   * The process stops: its state, anything unflushed, the notices and the reads owed are lost, an
   * armed crash with them. What the disk kept of a transfer stays.
   */
  stop(): void {
    this.state = null;
    if (this.readsOwed.length > 0) this.lostRead = true;
    this.readsOwed = [];
    this.readsBusyUntil = 0;
    this.readBacksAt = null;
    this.compacting = null;
    this.resumed = false;
    this.crashAt = null;
    this.unflushed = [];
    this.barrierUnflushed = false;
    this.notices = [];
    this.repliedAheadOf = 0;
  }

  /**
   * A new process from the same disk: a fresh state (which `Recover` then rebuilds from the
   * durable records), knowing no address but its start list's, with nothing unflushed.
   */
  boot(fresh: KvReplicaState): void {
    this.learned.clear();
    this.state = fresh;
    this.crashAt = null;
    this.unflushed = [];
    this.barrierUnflushed = false;
    this.notices = [];
    this.readsOwed = [];
    this.readBacksAt = null;
    this.repliedAheadOf = 0;
  }

  /**
   * The slot of the oldest of the leader's own votes at or below `upTo` whose record still waits in
   * the buffer (its notice owed, the record not yet flushed by a later barrier); null when none.
   */
  ownVoteUnflushedUpTo(upTo: number): number | null {
    for (const notice of this.notices) {
      if (notice.slot > upTo) continue;
      const waiting = this.unflushed.some(
        (rec) =>
          rec._tag === "vote" &&
          rec.slot === notice.slot &&
          rec.ballot.round === notice.ballot.round &&
          rec.ballot.replica === notice.ballot.replica,
      );
      if (waiting) return notice.slot;
    }
    return null;
  }

  /**
   * Make the unflushed records durable; returns them (null if there were none). A durable snapshot
   * supersedes older records: the disk keeps only what `Recover` needs, as a real driver may
   * (`compactRecords`), so every restart after a snapshot recovers from it.
   */
  flush(): DurableRecord<KvInput>[] | null {
    if (this.unflushed.length === 0) return null;
    const records = this.unflushed;
    this.durable = this.durable.concat(records);
    this.unflushed = [];
    this.barrierUnflushed = false;
    if (records.some((rec) => rec._tag === "snapshot")) {
      if (this.compactionPieceRecords > 0) {
        // Due now: started with the pins of now (a later snapshot's replaces one under way).
        const own = [...this.pinnedVotes].sort((a, b) => a - b);
        const pinnedVotes = this.compactionFault?.pinsOfRunBefore === true ? (this.lastRunPins ?? own) : own;
        if (this.compactionFault !== null) this.lastRunPins = own;
        this.compacting = {
          through: this.durable.length,
          pinned: this.pinned,
          pinnedVotes,
          top: this.durable.length,
          doomed: [],
          pieces: 0,
          appendsBetween: false,
          pinsChangedBetween: false,
        };
        return records;
      }
      this.durable = compactRecords(this.durable, this.pinned, this.pinnedVotes);
      this.compacted();
    }
    return records;
  }

  /**
   * Take the compaction under way one piece further: decide the next records from the top down,
   * or, every one decided, delete those decided away, together. Returns the run it finished (null:
   * none finished).
   */
  compactSome(): CompactionRun | null {
    const run = this.compacting;
    if (run === null) return null;
    const pinsChanged =
      run.pinnedVotes.length !== this.pinnedVotes.size || run.pinnedVotes.some((slot) => !this.pinnedVotes.has(slot));
    const between = {
      appendsBetween: run.appendsBetween || this.durable.length > run.through,
      pinsChangedBetween: run.pinsChangedBetween || pinsChanged,
    };
    if (run.top > 0) {
      const bottom = Math.max(0, run.top - this.compactionPieceRecords);
      // Decided as `compactRecords` decides them over the records it covers, with the run's pins.
      const below = this.durable.slice(0, run.through);
      const kept = new Set(compactRecords(below, run.pinned, new Set(run.pinnedVotes)));
      const doomed = run.doomed.slice();
      for (let i = bottom; i < run.top; i++) if (!kept.has(below[i]!)) doomed.push(i);
      this.compacting = { ...run, ...between, top: bottom, doomed, pieces: run.pieces + 1 };
      return null;
    }
    const gone = new Set(run.doomed);
    this.durable = this.durable.filter((_, i) => !gone.has(i));
    this.compacting = null;
    this.compacted();
    return { ...run, ...between };
  }

  /** A compaction deleted records: count it, and the votes it kept only because the store names them. */
  private compacted(): void {
    this.compactions++;
    const at = this.durable.findLastIndex((rec) => rec._tag === "snapshot");
    const latest = this.durable[at];
    const below = latest?._tag === "snapshot" ? latest.logTruncatedUpTo : 0;
    // Before the latest snapshot, only a pinned vote is kept at or below the truncation point.
    this.keptForStore = this.durable.slice(0, at).filter((rec) => rec._tag === "vote" && rec.slot <= below).length;
  }

  /**
   * Feed what decides this replica's future into `h`, at true time `now`: whether it was started,
   * paused, retired or armed to crash, the addresses it knows, its state, its disk (durable and
   * unflushed records), and its clock (its reading now and its rate).
   */
  hashInto(h: Hasher, now: number, downForGood = false): void {
    if (downForGood) {
      // Its disk, clock, addresses and armed crashes decide nothing any more (World.hashInto).
      h.word(16 | (this.born ? 1 : 0) | (this.paused ? 2 : 0) | (this.retired ? 8 : 0));
      return;
    }
    h.hash((this.hashed ??= this.partHash()));
    h.num(this.localAt(now));
    h.num(this.clock.rate);
  }

  /** The hash of what `hashInto` feeds but the clock, which true time changes without a step. */
  private partHash(): Hash64 {
    const h = new Hasher();
    h.word((this.born ? 1 : 0) | (this.paused ? 2 : 0) | (this.crashAtSnapshot ? 4 : 0) | (this.retired ? 8 : 0));
    h.num(this.crashAt ?? -1);
    hashIdSet(h, this.startList);
    hashIdSet(h, this.learned);
    if (this.state === null) h.word(0);
    else h.hash(valueHash(this.state));
    // The durable array is never written in place (a flush makes a new one): its hash is memoized.
    h.hash(valueHash(this.durable));
    h.num(this.unflushed.length);
    for (const rec of this.unflushed) h.hash(valueHash(rec));
    h.word(this.barrierUnflushed ? 1 : 0);
    h.num(this.notices.length);
    for (const notice of this.notices) h.hash(valueHash(notice));
    // Only where the tuning keeps transfers: every other run hashes as before.
    if (this.kept !== null) h.hash(valueHash(this.kept));
    // Only where the tuning answers reads late: every other run hashes as before.
    if (this.readsOwed.length > 0) h.hash(valueHash(this.readsOwed));
    if (this.readsBusyUntil > 0) h.num(this.readsBusyUntil);
    // Only where the tuning compacts in pieces.
    if (this.compacting !== null) h.hash(valueHash(this.compacting));
    if (this.lastRunPins !== null) h.hash(valueHash(this.lastRunPins));
    return h.done();
  }
  trueAt(reading: number): number {
    return this.clock.since + (reading - this.clock.base) / this.clock.rate;
  }
}

/** A state transfer as the world's disk keeps it: the snapshot its sender claimed, the chunks taken from byte 0. */
export interface KeptOnDisk extends KeptTransfer {
  readonly chunks: readonly string[];
}

/**
 * The transfer `kept` after the core took chunk `m` from `from` (the runtime's staging,
 * impl/runtime/storage-thread.ts `receivedChunk`): a chunk at byte 0 starts a new one, a chunk that
 * continues `kept` where it stops is added, and any other leaves nothing kept.
 */
export function keptWith(kept: KeptOnDisk | null, from: number, m: SnapshotChunkMsg): KeptOnDisk | null {
  const { slot, digest, contentDigest, totalBytes } = m;
  if (m.offset === 0) return { from, slot, digest, contentDigest, totalBytes, chunks: [m.data] };
  if (kept === null || kept.slot !== slot || kept.contentDigest !== contentDigest) return null;
  const bytes = kept.chunks.reduce((n, c) => n + c.length, 0);
  return bytes === m.offset ? { ...kept, chunks: [...kept.chunks, m.data] } : null;
}

/**
 * `kept` cut to the chunks that make its first `taken` bytes (what the core took again; the rest,
 * the runtime's `resumed`, goes), or null when they make no whole number of chunks or `taken` is 0.
 */
export function keptThrough(kept: KeptOnDisk, taken: number): KeptOnDisk | null {
  let bytes = 0;
  for (let i = 0; i < kept.chunks.length && bytes < taken; i++) {
    bytes += kept.chunks[i]!.length;
    if (bytes === taken) return { ...kept, chunks: kept.chunks.slice(0, i + 1) };
  }
  return null;
}

/**
 * Whether `record` holds back no later effect, as the runtime's driver takes it (its `deferrable`,
 * impl/runtime/replica-main.ts): a `chosen` record only spares a restarted replica from asking its
 * peers for values (docs/impl.md, section 11), so replies and messages leave before it is durable.
 */
export function deferrable(record: DurableRecord<KvInput>): boolean {
  return record._tag === "chosen";
}

/** A set of replica ids, in no particular order: as a bit mask when every id is below 31, else sorted. */
function hashIdSet(h: Hasher, set: ReadonlySet<number>): void {
  let mask = 0;
  for (const id of set) {
    if (id < 0 || id > 30) {
      const ids = [...set].sort((x, y) => x - y);
      h.num(-ids.length);
      for (const x of ids) h.num(x);
      return;
    }
    mask |= 1 << id;
  }
  h.num(mask);
}

/** Chunks of a kept transfer handed back to the core in one `KeptChunks` (the world's chunks are small). */
export const keptChunksPerPiece = 2;

/**
 * The piece of `kept` that starts at byte `offset` (where the resumed transfer stands), as a
 * driver reads it back from its store: up to `keptChunksPerPiece` chunks, `last` when no more
 * follow. Not at a chunk's start: an empty last piece (the resumption ends there).
 */
export function keptPiece(
  kept: KeptOnDisk,
  offset: number,
): { readonly offset: number; readonly chunks: readonly string[]; readonly last: boolean } {
  let bytes = 0;
  let i = 0;
  while (i < kept.chunks.length && bytes < offset) bytes += kept.chunks[i++]!.length;
  if (bytes !== offset) return { offset, chunks: [], last: true };
  const chunks = kept.chunks.slice(i, i + keptChunksPerPiece);
  return { offset, chunks, last: i + chunks.length >= kept.chunks.length };
}

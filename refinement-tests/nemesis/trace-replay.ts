/**
 * Trace validation, part one: a real replica's event trace (docs/trace-format.md) replayed
 * through impl/core's `step`. The core is deterministic, so feeding it the traced events, in
 * order, with their traced clock readings, must give back exactly the traced effects; any
 * difference means the runtime carried out something the core never asked for (or skipped
 * something it did) and is reported as `TraceExplainedByCore`, as is an event on which the core
 * asserts (no replica could have been given it there: the replay of that replica stops, as it does
 * at a line that does not decode). The replay also yields, for every
 * event, the replica's state before and after, which is what the invariant checks (and the
 * world checkers of proofs/) read.
 *
 * A process killed with SIGKILL may lose the trace lines of the batches it was handling. The driver
 * steps later batches while a commit is outstanding and releases effects in order, so a life may
 * end with a batch whose commit never came (its effects a prefix up to its first Persist) followed
 * by batches that released nothing but heartbeats and grants; only the last batch, or those, may
 * show a prefix of their effects.
 *
 * Heartbeats, grants and Accepts before their batch's first Persist leave first among the
 * batch's effects and may overtake earlier batches' commits (impl/runtime/driver.ts,
 * "Overtaking"); the replay puts the step's effects in that release order before comparing, and
 * checks every effect line against the records not yet durable at its place in the file: each of
 * them for ballot b needs the durable maxBal >= b, a heartbeat or Accept also every vote at or
 * below its commit index durable, and any other effect every earlier record durable
 * (DurableBeforeSend). The replay never changes a
 * trace file.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import { Either, ParseResult, Schema } from "effect";
import { ConfigChange } from "../../impl/core/configuration.ts";
import type { Effect, Event, KeptTransfer } from "../../impl/core/events.ts";
import {
  AssertionFailure,
  compactRecords,
  compareBallots,
  fillSnapshotHoles,
  pinnedSnapshots,
  pinnedVotes,
  plainEqual,
  readChunkFromRecords,
  readEntryFromRecords,
  readFromRecords,
  resolveStored,
  type Ballot,
  type RecordSummary,
  type StoredEntry,
} from "../../impl/core/testing/index.ts";
import {
  kvCodecs,
  kvConfig,
  kvInitialState,
  kvReplicated,
  kvStep,
  KvOvertaking,
  type KvMessage,
  type KvRecord,
  type KvReplicaState,
} from "../../impl/runtime/core-adapter.ts";
import type { KvInput, KvOutput } from "../../spec/kv.ts";

export type KvEvent = Event<KvMessage, KvRecord, KvInput>;
export type KvEffect = Effect<KvMessage, KvRecord, KvOutput>;

/**
 * A step's result as the driver carried it out: each SendStored the Send of its message with the
 * values at rest read back from the records persisted before it (impl/core/at-rest.ts), each
 * snapshot's holes filled from them (rule V5). `records` gains the step's persisted records.
 */
function asSent(
  result: ReturnType<typeof kvStep>,
  records: KvRecord[],
): { state: KvReplicaState; effects: KvEffect[] } {
  const effects = result.effects.map((e): KvEffect => {
    if (e._tag === "Persist") {
      // A snapshot's values at rest (rule V5's holes), read back from the records before it, as
      // the replica's storage thread filled them where the snapshot was written.
      fillSnapshotHoles(e.record, readEntryFromRecords(kvReplicated, records));
      records.push(e.record);
    }
    if (e._tag !== "SendStored") return e;
    const message = resolveStored(e.message, readFromRecords(records), readChunkFromRecords(records));
    return { _tag: "Send", to: e.to, message };
  });
  return { state: result.state, effects };
}

/** One line of a trace file, as written by impl/runtime/trace.ts. */
export interface TraceLine {
  readonly seq: number;
  readonly replica: number;
  readonly now: number | null;
  readonly type: "start" | "event" | "commit" | "effect" | "synced";
  readonly batch?: number;
  readonly incarnation?: string;
  readonly members?: readonly number[];
  readonly event?: Record<string, unknown>;
  readonly effect?: Record<string, unknown>;
  readonly records?: number;
  readonly clockRate?: number;
  readonly clockOffsetMs?: number;
  /** On a start line: the feature level the life's configuration names (`featureLevel`). */
  readonly featureLevel?: number;
  /** On a start line: the life traces the return of every fsync. On a synced line: what it made durable. */
  readonly syncs?: boolean;
  readonly durableSeq?: number;
}

/**
 * One process life in a trace file: its start line and the lines after it (held in an array, or
 * read from the file each time they are iterated: `streamTraceLives`).
 */
export interface TraceLife<Lines extends Iterable<TraceLine> = readonly TraceLine[]> {
  readonly replica: number;
  readonly incarnation: string;
  readonly members: readonly number[];
  /** The life's clock skew from its start line (absent in traces of older versions). */
  readonly clock: { readonly rate: number; readonly offsetMs: number } | undefined;
  /**
   * The `featureLevel` of the life's core configuration, from its start line (absent in traces of
   * older versions): a rolling upgrade restarts replicas with a higher one.
   */
  readonly featureLevel?: number | undefined;
  /** The life traces the return of every fsync (`synced` lines; absent in traces of older versions). */
  readonly syncs: boolean;
  readonly lines: Lines;
  /** A last line that was cut off mid-write (a SIGKILL), if any. */
  readonly tornLine: boolean;
}

/** A failed trace check. */
export interface TraceViolation {
  readonly check: string;
  readonly replica: number;
  readonly message: string;
}

/** The lines of a byte range of a file, with their byte ranges. */
interface FileLine {
  readonly text: string;
  /** The line's index in the file (0 for the first line). */
  readonly index: number;
  /** The byte offsets of the line's first byte and of the byte after its newline. */
  readonly start: number;
  readonly end: number;
}

/** Bytes read from a trace file at once. */
const chunkBytes = 4 * 1024 * 1024;

/**
 * The lines of bytes [`from`, `to`) of `file`, read a chunk at a time, each decoded on its own: a
 * trace of a run with bursts of 1 MiB values is a gigabyte, and can pass V8's longest string
 * (512 MiB) as a whole, while every line stays far below it. Only the line at hand is held.
 */
function* fileLines(file: string, from = 0, to = Number.POSITIVE_INFINITY, firstIndex = 0): Generator<FileLine> {
  const fd = fs.openSync(file, "r");
  try {
    const size = Math.min(fs.fstatSync(fd).size, to);
    const chunk = Buffer.allocUnsafe(chunkBytes);
    let pieces: Buffer[] = [];
    let index = firstIndex;
    let lineStart = from;
    for (let pos = from; pos < size;) {
      const n = fs.readSync(fd, chunk, 0, Math.min(chunk.length, size - pos), pos);
      if (n === 0) break;
      for (let at = 0; ;) {
        const nl = chunk.indexOf(10, at);
        if (nl < 0 || nl >= n) {
          if (at < n) pieces.push(Buffer.from(chunk.subarray(at, n)));
          break;
        }
        const text =
          pieces.length === 0
            ? chunk.toString("utf8", at, nl)
            : Buffer.concat([...pieces, chunk.subarray(at, nl)]).toString("utf8");
        pieces = [];
        const end = pos + nl + 1;
        yield { text, index: index++, start: lineStart, end };
        lineStart = end;
        at = nl + 1;
      }
      pos += n;
    }
    // The last line, without a newline (a torn line, or an empty one after the last newline).
    yield { text: Buffer.concat(pieces).toString("utf8"), index, start: lineStart, end: size };
  } finally {
    fs.closeSync(fd);
  }
}

/** A trace line's type, read off its first bytes as impl/runtime/trace.ts writes them (null: another layout). */
const linePrefix = /^\{"seq":-?\d+,"replica":-?\d+,"now":[^,]*,"type":"([a-z]+)"/;

/** A trace line, parsed, or null when it is not JSON. */
function parseLine(text: string): TraceLine | null {
  try {
    return JSON.parse(text) as TraceLine;
  } catch {
    return null;
  }
}

/**
 * Split a trace file into process lives, reading it once, line by line, and holding none of its
 * lines: each life's `lines` reads its byte range of the file again, line by line, each time it is
 * iterated (twice per replay: `replayLives`). A line that is not JSON may only be the last line of a
 * life (a SIGKILL tore it): anywhere else it throws, here or when the life's lines are read.
 */
export function streamTraceLives(file: string, strings: Interner = new Interner()): TraceLife<Iterable<TraceLine>>[] {
  interface Open {
    start: TraceLine;
    from: number;
    firstIndex: number;
    /** The life's last non-empty line so far: whether it is torn is known at the life's end. */
    last: FileLine | null;
  }
  const lives: TraceLife<Iterable<TraceLine>>[] = [];
  let open: Open | null = null;
  /** A line that is not JSON, waiting to be known torn (a start line or the end follows) or not. */
  let broken: FileLine | null = null;
  const close = (to: number): void => {
    if (open === null) return;
    const { start, from, firstIndex, last } = open;
    const tornIndex = last !== null && parseLine(last.text) === null ? last.index : -1;
    const clock =
      start.clockRate === undefined ? undefined : { rate: start.clockRate, offsetMs: start.clockOffsetMs ?? 0 };
    lives.push({
      replica: start.replica,
      incarnation: start.incarnation ?? "",
      members: [...(start.members ?? [])],
      clock,
      featureLevel: start.featureLevel,
      syncs: start.syncs === true,
      lines: { [Symbol.iterator]: () => lifeLines(file, from, to, firstIndex, tornIndex, strings) },
      tornLine: tornIndex >= 0,
    });
  };
  for (const line of fileLines(file)) {
    if (line.text === "") continue;
    const type = linePrefix.exec(line.text)?.[1];
    const parsed = type === undefined || type === "start" ? parseLine(line.text) : undefined;
    if (broken !== null) {
      // Only the last line before another life's start (or the end) may be torn by a SIGKILL.
      if (parsed?.type !== "start" || open === null) throw new Error(`${file}: line ${broken.index + 1} is not JSON`);
      broken = null;
    }
    if (parsed === null) {
      broken = line;
      if (open !== null) open.last = line;
      continue;
    }
    if (parsed?.type === "start") {
      close(line.start);
      open = { start: parsed, from: line.end, firstIndex: line.index + 1, last: null };
      continue;
    }
    if (open === null) throw new Error(`${file}: line ${line.index + 1} comes before any start line`);
    open.last = line;
  }
  if (broken !== null && open === null) throw new Error(`${file}: line ${broken.index + 1} is not JSON`);
  close(Number.POSITIVE_INFINITY);
  return lives;
}

/**
 * The parsed lines of one life's byte range, but its torn last line (`tornIndex`, -1: none), their
 * long strings `strings.intern`ed.
 */
function* lifeLines(
  file: string,
  from: number,
  to: number,
  firstIndex: number,
  tornIndex: number,
  strings: Interner,
): Generator<TraceLine> {
  for (const line of fileLines(file, from, to, firstIndex)) {
    if (line.text === "" || line.index === tornIndex) continue;
    const parsed = parseLine(line.text);
    if (parsed === null) throw new Error(`${file}: line ${line.index + 1} is not JSON`);
    yield line.text.length < internCharsMin ? parsed : strings.internIn(parsed);
  }
}

/** Strings at least this long are interned (`Interner`). */
const internCharsMin = 4096;

/**
 * One string for equal long strings met close together: a value written by a client is in the
 * trace lines of every replica, several times (the request, the Accept sent and received, the vote
 * persisted), and each line parses to a copy of its own, which the replayed states, records and
 * the checks of proofs/ would otherwise each hold. The most recently met strings are remembered,
 * up to `charsMax` code units in all; strings are immutable, so sharing one changes nothing else.
 */
export class Interner {
  private readonly recent = new Map<string, string>();
  private chars = 0;
  constructor(private readonly charsMax = 64 * 1024 * 1024) {}

  /** The string equal to `s` met recently, or `s`. */
  intern(s: string): string {
    const had = this.recent.get(s);
    if (had !== undefined) {
      this.recent.delete(had);
      this.recent.set(had, had);
      return had;
    }
    this.recent.set(s, s);
    this.chars += s.length;
    for (const oldest of this.recent.keys()) {
      if (this.chars <= this.charsMax) break;
      this.recent.delete(oldest);
      this.chars -= oldest.length;
    }
    return s;
  }

  /** `value` (freshly parsed JSON) with its long strings interned in place. */
  internIn<T>(value: T): T {
    if (typeof value === "string") return (value.length < internCharsMin ? value : this.intern(value)) as T;
    if (value === null || typeof value !== "object") return value;
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      const v = record[key];
      if (typeof v === "object" || (typeof v === "string" && v.length >= internCharsMin))
        record[key] = this.internIn(v);
    }
    return value;
  }
}

/** Split a trace file into process lives, every line read and held (for tests that alter lines). */
export function readTraceLives(file: string): TraceLife[] {
  return streamTraceLives(file).map((life) => ({ ...life, lines: [...life.lines] }));
}

const decodeChangeEither = Schema.decodeUnknownEither(ConfigChange);

/** A traced membership change, decoded with the core's Schema. */
function decodeChange(raw: unknown): Either.Either<ConfigChange, string> {
  return Either.mapLeft(decodeChangeEither(raw), (e) => ParseResult.TreeFormatter.formatErrorSync(e));
}

/** Decode a traced event into the event `step` received. Throws with the reason if it does not decode. */
export function decodeEvent(raw: Record<string, unknown>): KvEvent {
  const now = raw.now as number;
  const must = <A>(either: Either.Either<A, string>, what: string): A => {
    if (Either.isLeft(either)) throw new Error(`${what} ${either.left}`);
    return either.right;
  };
  switch (raw._tag) {
    case "Tick":
      return { _tag: "Tick", now };
    case "Receive":
      return {
        _tag: "Receive",
        now,
        from: raw.from as number,
        message: must(kvCodecs.message.decodeValue(raw.message), "traced message"),
      };
    case "ClientRequest":
      return {
        _tag: "ClientRequest",
        now,
        requestId: raw.requestId as number,
        clientId: (raw.clientId as string | null) ?? undefined,
        seq: (raw.seq as number | null) ?? undefined,
        consistency: raw.consistency as "linearizable" | "stale",
        input: must(kvCodecs.input.decodeValue(raw.input), "traced input"),
      };
    case "Reconfigure":
      return {
        _tag: "Reconfigure",
        now,
        requestId: raw.requestId as number,
        change: must(decodeChange(raw.change), "traced membership change"),
      };
    case "OpenSession":
      return { _tag: "OpenSession", now, requestId: raw.requestId as number };
    case "Recover":
      return {
        _tag: "Recover",
        now,
        records: (raw.records as unknown[]).map((r) => must(kvCodecs.record.decodeValue(r), "traced record")),
        // A state transfer kept across the restart (plain JSON: the snapshot it is of).
        ...(raw.kept == null ? {} : { kept: raw.kept as KeptTransfer }),
      };
    case "KeptChunks":
      return {
        _tag: "KeptChunks",
        now,
        offset: raw.offset as number,
        chunks: raw.chunks as string[],
        last: raw.last as boolean,
      };
    case "VoteDurable": {
      const ballot = raw.ballot as { round: number; replica: number };
      return {
        _tag: "VoteDurable",
        now,
        slot: raw.slot as number,
        ballot: { round: ballot.round, replica: ballot.replica },
      };
    }
    case "FeaturesKnown":
      return { _tag: "FeaturesKnown", now, level: raw.level as number };
    case "EntriesRead":
      // The trace names the entries only: their values are read back from the life's records at
      // replay (`withValuesRead`), as the driver read them from its vote records.
      return { _tag: "EntriesRead", now, entries: raw.entries as StoredEntry[], values: [] };
    default:
      throw new Error(`unknown traced event ${String(raw._tag)}`);
  }
}

/**
 * A traced `EntriesRead` with its values read back from the life's records so far (recovered, then
 * persisted), each by rule V2 with the store as the replicas run it (`kvReplicated`): the trace
 * leaves the values out, since the vote records its Persists and Recover carried hold them. A
 * record missing or of other bytes throws: the replay reports it (TraceComplete) and stops there.
 */
function withValuesRead(event: KvEvent, records: readonly KvRecord[]): KvEvent {
  if (event._tag !== "EntriesRead" || event.values.length === event.entries.length) return event;
  const read = readEntryFromRecords(kvReplicated, records);
  return { ...event, values: event.entries.map(read) };
}

/**
 * Plain data as canonical JSON: keys sorted, undefined fields left out. Messages, records,
 * inputs and outputs have Schemas without transformations, so a value and its encoded form
 * have the same canonical text; comparing canonical texts is comparing values.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? "null" : canonicalJson(v))).join(",")}]`;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record)
    .filter((k) => record[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(record[k])}`).join(",")}}`;
}

/** An effect without the fields the trace adds (wire id, durable seq). */
function withoutTraceFields(effect: KvEffect | Record<string, unknown>): Record<string, unknown> {
  const { durableSeq: _durableSeq, wireId: _wireId, ...rest } = effect as Record<string, unknown>;
  return rest;
}

/**
 * Do a replayed effect and a traced one say the same? Compared as data first (what the JSON of
 * equal data says too, without writing out the megabytes of a large value twice per effect); where
 * that finds a difference, as JSON (same key order), then canonical JSON, which also see what only
 * JSON makes equal (a value's `toJSON`, an undefined array element written as null).
 */
export function sameEffect(replayed: KvEffect, traced: Record<string, unknown>): boolean {
  const a = withoutTraceFields(replayed);
  const b = withoutTraceFields(traced);
  return plainEqual(a, b) || JSON.stringify(a) === JSON.stringify(b) || canonicalJson(a) === canonicalJson(b);
}

/**
 * A record as the checks hold it past its step: what compaction reads of it (`compactRecords`)
 * and the SHA-256 of its JSON, so that two held records are equal (as JSON) iff the records are
 * (but for a SHA-256 collision). A run's every record, megabyte values and all, is not held.
 */
export type HeldRecord = RecordSummary & { readonly digest?: string };

/** The SHA-256 of a record's JSON (JSON.stringify escapes lone surrogates: one to one). */
export function recordDigest(record: KvRecord): string {
  return createHash("sha256").update(JSON.stringify(record)).digest("base64");
}

export function heldRecord(record: KvRecord): HeldRecord {
  const digest = recordDigest(record);
  switch (record._tag) {
    case "vote":
    case "chosen":
      return { _tag: record._tag, slot: record.slot, digest };
    case "snapshot":
      return { _tag: "snapshot", slot: record.slot, logTruncatedUpTo: record.logTruncatedUpTo, digest };
    default:
      return { _tag: record._tag, digest };
  }
}

/** One event of one replica, replayed. */
export interface ReplayStep {
  readonly replica: number;
  /** Index of the life among the replica's lives. */
  readonly life: number;
  readonly incarnation: string;
  /** The replica's own clock reading when it handled the event. */
  readonly now: number;
  /** The life's clock skew: machine monotonic time of a reading r is (r - offsetMs) / rate. */
  readonly clock: { readonly rate: number; readonly offsetMs: number };
  readonly batch: number;
  readonly event: KvEvent;
  /** For a Receive: the sender's incarnation and wire id (pairs with its Send). */
  readonly receivedAs?: { readonly incarnation: string; readonly wireId: number };
  readonly before: KvReplicaState;
  readonly after: KvReplicaState;
  readonly effects: readonly KvEffect[];
  /** The Persist records of this step that reached the disk (false only in a lost last batch). */
  readonly committed: boolean;
  /** For each Send effect, in order, its wire id (undefined where the trace lost it). */
  readonly wireIds: readonly (number | undefined)[];
  /** For each Send effect, in order, the message as traced (its encoded form), if traced. */
  readonly sentAs: readonly unknown[];
  /** For a Receive: the message as traced. */
  readonly receivedMessage?: unknown;
}

/** What a life's replay found, beyond the steps themselves. */
export interface LifeSummary {
  readonly replica: number;
  readonly life: number;
  readonly steps: number;
  /** The last batch's effects were cut short (a SIGKILL). */
  readonly truncated: boolean;
  /** Persist records committed in this life, in order (traced commits only), as `heldRecord`s (these three). */
  readonly committedRecords: readonly HeldRecord[];
  /** Persist records of a last batch whose commit is not traced: they may or may not be on disk. */
  readonly uncertainRecords: readonly HeldRecord[];
  readonly recoveredRecords: readonly HeldRecord[];
  /**
   * The most records the replay held at once to read values at rest back (the life's disk as it
   * compacts it: `lifeRecords`), for the tests of what the checker holds.
   */
  readonly recordsHeldMax: number;
  /**
   * False when the life traced no Recover: the process died while it was still opening its store
   * (a restart killed within seconds under load), so it says nothing about what the disk held.
   */
  readonly recovered: boolean;
}

/** Options of {@link replayLives}. */
export interface ReplayOptions {
  /**
   * Core configuration overrides the run used (the same for every replica), but for `featureLevel`
   * where a life's start line names its own.
   */
  readonly core?: Record<string, unknown>;
  /** Per replica: its clock skew, for traces whose start lines do not name it. Default: none. */
  readonly clocks?: ReadonlyMap<number, { readonly rate: number; readonly offsetMs: number }>;
}

/**
 * Replay every life of one replica, yielding each step. Violations of the replay itself
 * (TraceExplainedByCore, TraceComplete) go to `violations`; a summary per life to `summaries`.
 */
export function* replayLives(
  lives: readonly TraceLife<Iterable<TraceLine>>[],
  options: ReplayOptions,
  violations: TraceViolation[],
  summaries: LifeSummary[],
): Generator<ReplayStep> {
  for (let index = 0; index < lives.length; index++) {
    const life = lives[index]!;
    // A replica outside the initial members joined the cluster later.
    // Each life with the feature level it started with (a rolling upgrade raises it between lives).
    const core =
      life.featureLevel === undefined ? (options.core ?? {}) : { ...options.core, featureLevel: life.featureLevel };
    const config = kvConfig(life.replica, life.members, core, !life.members.includes(life.replica));
    const clock = life.clock ?? options.clocks?.get(life.replica) ?? { rate: 1, offsetMs: 0 };
    let state = kvInitialState(config);
    // The life's lines are read twice: once for what a batch's replay needs of the batches after
    // it, then batch by batch (only a batch's own lines are held).
    const plan = planBatches(life, violations);
    // A commit's sync makes every earlier transaction durable too: the records of every batch up
    // to the last one with a commit line are committed, those after it uncertain (a SIGKILL).
    const lastCommit = plan.lastCommit;
    const committedRecords: HeldRecord[] = [];
    const uncertainRecords: HeldRecord[] = [];
    let recoveredRecords: HeldRecord[] = [];
    /**
     * The life's disk (recovered, then persisted records), for the values at rest a SendStored or
     * an EntriesRead names; compacted as the disk is once a snapshot is persisted, so a long life
     * does not hold every value it ever voted for.
     */
    let lifeRecords: KvRecord[] = [];
    let recordsHeldMax = 0;
    let recovered = false;
    let truncated = false;
    let steps = 0;
    /** The first batch with records to persist and no commit line, once met: nothing after it committed. */
    let open: number | null = null;
    const durability = new Durability();
    for (const [b, batch] of batchesInOrder(life.lines, plan)) {
      const last = b === plan.lines.length - 1;
      if (open !== null && batch.committed) {
        violations.push({
          check: "TraceComplete",
          replica: life.replica,
          message: `life ${life.incarnation} batch ${batch.number}: committed after batch ${open}, whose records to persist never committed`,
        });
      }
      const replayed: ReplayStep[] = [];
      let events: KvEvent[];
      try {
        events = batch.events.map((line) => decodeEvent(line.event!));
      } catch (error) {
        violations.push({
          check: "TraceComplete",
          replica: life.replica,
          message: `life ${index} batch ${batch.number}: ${(error as Error).message}`,
        });
        return;
      }
      const allEffects: KvEffect[] = [];
      /** Whether the batch sent a message with values read back from the store (a SendStored). */
      let readBack = false;
      for (let i = 0; i < events.length; i++) {
        const event = events[i]!;
        const line = batch.events[i]!;
        if (event._tag === "Recover") {
          recoveredRecords = event.records.map(heldRecord);
          lifeRecords = [...event.records];
          durability.recovered(event.records);
          recovered = true;
        }
        let given: KvEvent;
        try {
          given = withValuesRead(event, lifeRecords);
        } catch (error) {
          // Rule V2 refused: no driver could have read those values back from this life's disk.
          violations.push({
            check: "TraceComplete",
            replica: life.replica,
            message: `life ${life.incarnation} batch ${batch.number}: the traced EntriesRead at clock ${event.now} names values its life's records do not give: ${(error as Error).message}`,
          });
          return;
        }
        let result: { readonly state: KvReplicaState; readonly effects: readonly KvEffect[] };
        try {
          const stepped = kvStep(state, given);
          if (stepped.effects.some((e) => e._tag === "SendStored")) readBack = true;
          result = asSent(stepped, lifeRecords);
          if (lifeRecords.length > recordsHeldMax) recordsHeldMax = lifeRecords.length;
          // The disk compacted once a snapshot is persisted, keeping what the new state still names
          // (as trace-checks.ts compacts the disk proofs/ reads, and the simulated world its disks).
          if (stepped.effects.some((e) => e._tag === "Persist" && e.record._tag === "snapshot"))
            lifeRecords = compactRecords(
              lifeRecords,
              pinnedSnapshots(result.state),
              pinnedVotes(result.state.learner.origins),
            );
        } catch (error) {
          // The core asserts only on what no replica could have been given (a trace altered, or a
          // runtime that fed it something else): the life cannot be explained from here on.
          if (!(error instanceof AssertionFailure)) throw error;
          violations.push({
            check: "TraceExplainedByCore",
            replica: life.replica,
            message: `life ${life.incarnation} batch ${batch.number}: step asserted on the traced ${event._tag} at clock ${event.now}: ${error.message}`,
          });
          return;
        }
        const receivedAs =
          event._tag === "Receive"
            ? { incarnation: String(line.event!.senderIncarnation), wireId: line.event!.wireId as number }
            : undefined;
        replayed.push({
          replica: life.replica,
          life: index,
          incarnation: life.incarnation,
          now: event.now,
          clock,
          batch: batch.number,
          event,
          ...(receivedAs === undefined ? {} : { receivedAs, receivedMessage: line.event!.message }),
          before: state,
          after: result.state,
          effects: result.effects,
          committed: true,
          wireIds: [],
          sentAs: [],
        });
        for (const effect of result.effects) allEffects.push(effect);
        state = result.state;
      }
      const records = allEffects
        .filter((e): e is Extract<KvEffect, { _tag: "Persist" }> => e._tag === "Persist")
        .map((e) => e.record);
      // Its commit never came (this batch may end what the life released), or an earlier one's did
      // not, or its values read back from the store had not come when the life ended: effects
      // leave in order (but for overtaking sends), so no later batch released anything else.
      const unfinished =
        open !== null ||
        (!batch.committed && records.some((r) => r._tag !== "chosen")) ||
        (readBack && plan.releasedAfter[b] !== true);
      const explained = compareEffects(
        releaseOrder(allEffects, (e) => e),
        batch.effects,
        last || unfinished,
        life,
        batch.number,
        violations,
      );
      if (explained === "prefix") truncated = true;
      const committed = records.length === 0 || b <= lastCommit;
      if (committed) for (const r of records) committedRecords.push(heldRecord(r));
      else for (const r of records) uncertainRecords.push(heldRecord(r));
      // Commits complete in order: a batch with a non-deferrable record and no commit line ends
      // what the life committed (checked above for the batches after it).
      if (open === null && !batch.committed && records.some((r) => r._tag !== "chosen")) open = batch.number;
      const holding = allEffects.filter(holdsBack).map((e) => e.record);
      for (const v of durability.check(b, batch, holding)) {
        violations.push({
          check: "DurableBeforeSend",
          replica: life.replica,
          message: `life ${life.incarnation} batch ${batch.number}: ${v}`,
        });
      }
      assignWireIds(replayed, batch.effects);
      for (const step of replayed) {
        steps += 1;
        yield committed ? step : { ...step, committed: false };
      }
    }
    summaries.push({
      replica: life.replica,
      life: index,
      steps,
      truncated,
      committedRecords,
      uncertainRecords,
      recoveredRecords,
      recordsHeldMax,
      recovered,
    });
  }
}

interface Batch {
  readonly number: number;
  readonly events: TraceLine[];
  readonly effects: TraceLine[];
  committed: boolean;
}

/**
 * What the replay of a life's batches needs to know of the batches after each (read first, in one
 * pass over its lines), with the checks of that pass: line numbers, the order event < effect/commit
 * (TraceComplete) and, where traced, the fsyncs (`SyncedBeforeEffects`). Batches are numbered in
 * the order of their first lines; a deferrable-only batch's commit line may come after later
 * batches' lines.
 */
interface BatchPlan {
  /** Per batch: its number and how many lines it has. */
  readonly lines: readonly { readonly number: number; readonly count: number }[];
  /** The last batch with a commit line (-1: none). */
  readonly lastCommit: number;
  /** Per batch: whether a batch after it traced an effect that leaves only in order (`releasedAfter`). */
  readonly releasedAfter: readonly boolean[];
}

function planBatches(life: TraceLife<Iterable<TraceLine>>, violations: TraceViolation[]): BatchPlan {
  const found: TraceViolation[] = [];
  const synced = life.syncs ? new SyncedBeforeEffects(life) : null;
  const batches: { number: number; count: number; effects: number; committed: boolean; inOrder: boolean }[] = [];
  const byNumber = new Map<number, (typeof batches)[number]>();
  let expectedSeq = 1;
  for (const line of life.lines) {
    if (line.seq !== expectedSeq) {
      found.push({
        check: "TraceComplete",
        replica: life.replica,
        message: `life ${life.incarnation}: line seq ${line.seq} where ${expectedSeq} was expected`,
      });
    }
    expectedSeq = line.seq + 1;
    synced?.line(line);
    // An fsync's return belongs to no batch (SyncedBeforeEffects reads it).
    if (line.type === "synced") continue;
    let batch = byNumber.get(line.batch ?? -1);
    if (batch === undefined) {
      batch = { number: line.batch ?? -1, count: 0, effects: 0, committed: false, inOrder: false };
      batches.push(batch);
      byNumber.set(batch.number, batch);
    }
    batch.count += 1;
    if (line.type === "event") {
      if (batch.effects > 0 || batch.committed) {
        found.push({
          check: "TraceComplete",
          replica: life.replica,
          message: `batch ${batch.number}: an event line after its effects`,
        });
      }
    } else {
      batch.effects += 1;
      if (line.type === "commit") batch.committed = true;
      else if (!batch.inOrder && releasedInOrder(line)) batch.inOrder = true;
    }
  }
  violations.push(...found, ...(synced?.violations ?? []));
  const releasedAfter = batches.map(() => false);
  for (let b = batches.length - 2; b >= 0; b--) releasedAfter[b] = releasedAfter[b + 1]! || batches[b + 1]!.inOrder;
  return {
    lines: batches.map(({ number, count }) => ({ number, count })),
    lastCommit: batches.reduce((last, batch, i) => (batch.committed ? i : last), -1),
    releasedAfter,
  };
}

/**
 * A life's batches, in the order of their first lines, each once all its lines are read (`plan`
 * counted them): the lines of a batch not yet whole are all that is held.
 */
function* batchesInOrder(lines: Iterable<TraceLine>, plan: BatchPlan): Generator<[number, Batch]> {
  const open = new Map<number, Batch & { read: number }>();
  let next = 0;
  for (const line of lines) {
    if (line.type === "synced") continue;
    const number = line.batch ?? -1;
    let batch = open.get(number);
    if (batch === undefined) {
      batch = { number, events: [], effects: [], committed: false, read: 0 };
      open.set(number, batch);
    }
    if (line.type === "event") batch.events.push(line);
    else {
      if (line.type === "commit") batch.committed = true;
      batch.effects.push(line);
    }
    batch.read += 1;
    for (;;) {
      const wanted = plan.lines[next];
      const whole = wanted === undefined ? undefined : open.get(wanted.number);
      if (whole === undefined || whole.read < wanted!.count) break;
      open.delete(whole.number);
      yield [next++, whole];
    }
  }
}

/**
 * A batch's effects (or things that carry them) in the order the driver releases them: the head's heartbeats and grants
 * first.
 */
function releaseOrder<T>(items: readonly T[], effectOf: (item: T) => KvEffect): T[] {
  const overtaking = new KvOvertaking();
  const overtakes = (item: T): boolean => {
    const e = effectOf(item);
    return e._tag === "Send" && overtaking.overtakes(e.message);
  };
  const barrier = items.findIndex((item) => holdsBack(effectOf(item)));
  const head = barrier < 0 ? items : items.slice(0, barrier);
  if (!head.some(overtakes)) return [...items];
  return [
    ...head.filter(overtakes),
    ...head.filter((e) => !overtakes(e)),
    ...(barrier < 0 ? [] : items.slice(barrier)),
  ];
}

/**
 * Does `effect` hold back what follows it until durable? A Persist does, unless its record is a
 * deferrable `chosen` one (a recovery aid) or it asks for a notice instead (`notify`: the leader's
 * own vote, which nothing rests on until the core is told it is durable).
 */
function holdsBack(effect: KvEffect): effect is Extract<KvEffect, { _tag: "Persist" }> {
  return effect._tag === "Persist" && effect.record._tag !== "chosen" && effect.notify === undefined;
}

/**
 * What was durable where in one life's trace file: the recovered records, and each batch's records
 * once a commit line (of it or of a later batch: commits complete in order) precedes the place.
 * `check` reports the effect lines of a batch that left before a record they needed was durable.
 */
class Durability {
  /** Highest ballot among the durable promise and vote records so far (pruned into it). */
  private maxBal: Ballot | null = null;
  /** Batches (by index in the life) with records to persist that were not yet known durable. */
  private pending: { index: number; records: KvRecord[] }[] = [];
  /** Commit lines so far: batch index and line sequence number, both increasing. */
  private readonly commits: { index: number; seq: number }[] = [];

  recovered(records: readonly KvRecord[]): void {
    for (const record of records) this.raise(record);
  }

  private raise(record: KvRecord): void {
    if (record._tag !== "promise" && record._tag !== "vote") return;
    if (this.maxBal === null || compareBallots(record.ballot, this.maxBal) > 0) this.maxBal = record.ballot;
  }

  /** The index of the last batch whose records are durable at line `seq`. */
  private coveredAt(seq: number): number {
    let covered = -1;
    for (let i = this.commits.length - 1; i >= 0; i--) {
      if (this.commits[i]!.seq < seq) {
        covered = this.commits[i]!.index;
        break;
      }
    }
    return covered;
  }

  /** `records`: the batch's records that hold back what follows them (`holdsBack`). */
  check(index: number, batch: Batch, records: readonly KvRecord[]): string[] {
    const found: string[] = [];
    const firstSeq = batch.events[0]?.seq ?? Number.POSITIVE_INFINITY;
    // What is durable before this batch's first line is durable for every later line.
    const coveredFirst = this.coveredAt(firstSeq);
    while (this.pending.length > 0 && this.pending[0]!.index <= coveredFirst) {
      for (const record of this.pending.shift()!.records) this.raise(record);
    }
    for (const line of batch.effects) {
      if (line.type !== "effect" || this.pending.length === 0) continue;
      const covered = this.coveredAt(line.seq);
      const notDurable = this.pending.filter((p) => p.index > covered).flatMap((p) => p.records);
      if (notDurable.length === 0) continue;
      let maxBal = this.maxBal;
      for (const p of this.pending) {
        if (p.index > covered) continue;
        for (const r of p.records)
          if ((r._tag === "promise" || r._tag === "vote") && (maxBal === null || compareBallots(r.ballot, maxBal) > 0))
            maxBal = r.ballot;
      }
      const effect = line.effect!;
      const message = effect.message as KvMessage | undefined;
      const what = effect._tag === "Send" ? `Send ${message?._tag}` : String(effect._tag);
      if (
        effect._tag !== "Send" ||
        (message?._tag !== "Heartbeat" && message?._tag !== "HeartbeatAck" && message?._tag !== "Accept")
      ) {
        found.push(`${what} left before an earlier batch's ${notDurable.length} records were durable`);
        continue;
      }
      if (maxBal === null || compareBallots(maxBal, message.ballot) < 0)
        found.push(
          `${what} for ballot ${message.ballot.round}.${message.ballot.replica} left while the durable maxBal was below it`,
        );
      // No snapshot record is waited for: it stands for slots already chosen (their votes and
      // promises are checked here on their own), and the maxBal it carries is one those raised.
      if (message._tag !== "HeartbeatAck" && notDurable.some((r) => r._tag === "vote" && r.slot <= message.commitIndex))
        found.push(`${what} with commit index ${message.commitIndex} left before a vote at or below it was durable`);
    }
    const lasting = records.filter((r) => r._tag !== "chosen");
    if (lasting.length > 0) this.pending.push({ index, records: lasting });
    const commit = batch.effects.find((l) => l.type === "commit");
    if (commit !== undefined) this.commits.push({ index, seq: commit.seq });
    return found;
  }
}

/**
 * DurableBeforeSend, against the fsyncs themselves: in a life that traces the return of every
 * fsync, no Send and no Reply is traced (and so none left the process) while a record Persisted
 * before it, other than a deferrable `chosen` one, is not yet covered by a returned fsync. The
 * commit lines say when the driver believed a batch durable; the synced lines say when the disk
 * did, so a driver or store that acknowledges before the fsync returns is caught even though a
 * SIGKILL, which keeps the page cache, would never lose what it wrote. Told the life's lines in
 * order; reports the first such line.
 */
class SyncedBeforeEffects {
  readonly violations: TraceViolation[] = [];
  private persisted = 0;
  private synced = 0;
  constructor(private readonly life: TraceLife<Iterable<TraceLine>>) {}

  line(line: TraceLine): void {
    if (this.violations.length > 0) return;
    if (line.type === "synced") this.synced = Math.max(this.synced, line.durableSeq ?? 0);
    if (line.type !== "effect") return;
    const effect = line.effect!;
    const tag = effect._tag;
    if (tag === "Persist") {
      const record = effect.record as { _tag?: unknown } | undefined;
      if (record?._tag !== "chosen" && effect.notify === undefined && typeof effect.durableSeq === "number")
        this.persisted = Math.max(this.persisted, effect.durableSeq);
    } else if ((tag === "Send" || tag === "Reply") && this.persisted > this.synced) {
      this.violations.push({
        check: "DurableBeforeSend",
        replica: this.life.replica,
        message: `life ${this.life.incarnation} line ${line.seq}: a ${tag} left while record ${this.persisted} was persisted but no fsync had returned beyond record ${this.synced}`,
      });
    }
  }
}

/**
 * Whether a batch after `b` traced an effect that leaves only in order, after every earlier
 * batch's (anything but the sends that overtake: heartbeats, their answers and Accepts,
 * impl/runtime/core-adapter.ts `KvOvertaking`).
 */
export function releasedAfter(batches: readonly { readonly effects: readonly TraceLine[] }[], b: number): boolean {
  return batches.slice(b + 1).some((batch) => batch.effects.some(releasedInOrder));
}

const overtakingTags = new Set(["Heartbeat", "HeartbeatAck", "Accept"]);

/** Is `line` an effect that leaves only in order (not a commit, not an overtaking send)? */
function releasedInOrder(line: TraceLine): boolean {
  if (line.type !== "effect") return false;
  const effect = line.effect as { _tag: string; message?: { _tag?: string } };
  return effect._tag !== "Send" || !overtakingTags.has(effect.message?._tag ?? "");
}

/**
 * TraceExplainedByCore: the traced effect lines of a batch are exactly the effects `step`
 * returns for its traced events (a prefix for the last batch of a killed life); and the commit
 * line sits right before the first Persist (DurableBeforeSend as the driver must order it).
 */
function compareEffects(
  replayed: readonly KvEffect[],
  lines: readonly TraceLine[],
  last: boolean,
  life: Pick<TraceLife, "replica" | "incarnation">,
  batch: number,
  violations: TraceViolation[],
): "all" | "prefix" | "mismatch" {
  const traced = lines.filter((l) => l.type === "effect");
  // The driver holds what follows the first Persist that holds back (not a `chosen` record, no `notify`).
  const firstPersist = replayed.findIndex(holdsBack);
  const commitAt = lines.findIndex((l) => l.type === "commit");
  if (commitAt >= 0 && firstPersist >= 0) {
    const before = lines.slice(0, commitAt).filter((l) => l.type === "effect").length;
    if (before !== firstPersist) {
      violations.push({
        check: "DurableBeforeSend",
        replica: life.replica,
        message: `life ${life.incarnation} batch ${batch}: commit line after ${before} effects, but the first Persist is effect ${firstPersist}`,
      });
    }
  } else if (traced.length > firstPersist && firstPersist >= 0) {
    violations.push({
      check: "DurableBeforeSend",
      replica: life.replica,
      message: `life ${life.incarnation} batch ${batch}: effects after a Persist were carried out with no commit`,
    });
  }
  for (let i = 0; i < traced.length; i++) {
    const expected = replayed[i];
    const actual = traced[i]!.effect!;
    if (expected === undefined || !sameEffect(expected, actual)) {
      const text = expected === undefined ? "(nothing)" : canonicalJson(withoutTraceFields(expected));
      violations.push({
        check: "TraceExplainedByCore",
        replica: life.replica,
        message: `life ${life.incarnation} batch ${batch} effect ${i}: traced ${canonicalJson(withoutTraceFields(actual)).slice(0, 300)} but step returned ${text.slice(0, 300)}`,
      });
      return "mismatch";
    }
  }
  if (traced.length === replayed.length) return "all";
  if (last) return "prefix";
  violations.push({
    check: "TraceExplainedByCore",
    replica: life.replica,
    message: `life ${life.incarnation} batch ${batch}: ${traced.length} effects traced, step returned ${replayed.length}`,
  });
  return "mismatch";
}

/** Copy the traced wire ids and messages of Send effects onto the replayed steps, in release order. */
function assignWireIds(steps: ReplayStep[], lines: readonly TraceLine[]): void {
  const sends = lines.filter((l) => l.type === "effect" && l.effect!._tag === "Send").map((l) => l.effect!);
  const wireIds = steps.map((step) =>
    step.effects.filter((e) => e._tag === "Send").map((): number | undefined => undefined),
  );
  const sentAs = steps.map((step) => step.effects.filter((e) => e._tag === "Send").map((): unknown => undefined));
  // Every effect of the batch with its step and its place among that step's sends, then in release order.
  const flat = steps.flatMap((step, s) => {
    let k = 0;
    return step.effects.map((effect) => ({ effect, s, k: effect._tag === "Send" ? k++ : -1 }));
  });
  let next = 0;
  for (const at of releaseOrder(flat, (x) => x.effect)) {
    if (at.k < 0) continue;
    const traced = sends[next++];
    wireIds[at.s]![at.k] = traced?.wireId as number | undefined;
    sentAs[at.s]![at.k] = traced?.message;
  }
  steps.forEach((step, s) => {
    (step as { wireIds: readonly (number | undefined)[] }).wireIds = wireIds[s]!;
    (step as { sentAs: readonly unknown[] }).sentAs = sentAs[s]!;
  });
}

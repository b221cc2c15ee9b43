/**
 * Snapshots: the executed prefix of the log as one value (the service state with its session
 * table, the running output digest, the configurations and the recent divergence checkpoints
 * after slot `slot`), serialized to an ASCII string so that state transfer can cut it into chunks
 * of bounded size and a receiver can check what it reassembled. A snapshot stands for exactly the
 * spec state of the chosen prefix 1..slot (proofs/truncation.md and proofs/snapshots.ts: SnapshotMatchesSpec).
 *
 * Pure: serialization is deterministic (entries in sorted order), decoding never throws (network
 * and disk input is refused with a reason, not asserted on), nothing reads a clock.
 */
import { Either, Schema } from "effect";
import { digestFormat } from "../../spec/hash.ts";
import {
  featureLevelMax,
  restoredFeatures,
  sessionsOf,
  withSession,
  type Features,
  type ServiceState,
  type Session,
} from "../../spec/service.ts";
import { ConfigurationSchema, type Configuration } from "./configuration.ts";
import type { Ballot } from "./ballot.ts";
import type { Checkpoint } from "./messages.ts";
import type { SnapshotRecord } from "./records.ts";
import { checkpointDigest, countsOf } from "./monitor.ts";
import type { ReplicaContext } from "./state.ts";
import { sameEntry, type StoredEntry } from "./store-at-rest.ts";
import { pmGet, type PersistentMap } from "../../spec/persistent-map.ts";

/** The format tag written into every snapshot. */
export const snapshotFormat = "paxos-lease/snapshot@1";

/** What a snapshot holds: the state after executing slots 1..slot. */
export interface SnapshotContents<S, O> {
  readonly slot: number;
  readonly service: ServiceState<S, O>;
  readonly outputDigestA: number;
  readonly outputDigestB: number;
  /** The configurations governing slots > slot (the first governs slot + 1). */
  readonly configs: readonly Configuration[];
  /** The replica's own most recent checkpoints (the last one is at `slot` when a snapshot is taken). */
  readonly checkpoints: readonly Checkpoint[];
  /**
   * The key-value store's values named by the vote records that wrote them, as of `slot`
   * (`LearnerState.origins`, proofs/store-at-rest.md): a serialization in slices leaves each such
   * value's place to whoever writes it, who fills it from that record (rule V5, `SnapshotHole`).
   * Absent or empty: every value is serialized here.
   */
  readonly atRest?: PersistentMap<StoredEntry>;
}

/**
 * A value of the key-value store left out of a snapshot's slices (rule V5, proofs/store-at-rest.md):
 * its place in the serialization is `escapedJsonValue` of the value `entry` names, `chars`
 * characters long. Whoever takes the slices (the runtime's storage thread) reads the value from the
 * vote record `entry` names, by rule V2, and writes those characters there: the bytes are those
 * `encodeSnapshot` gives, and the value never passes through the replica's own heap again.
 */
export interface SnapshotHole {
  readonly _tag: "hole";
  readonly entry: StoredEntry;
  readonly chars: number;
}

/** A slice of a snapshot's serialization (`SnapshotSerialization.takeChunks`): its characters, or a hole. */
export type SnapshotChunk = string | SnapshotHole;

/**
 * True when `escapedJsonValue` writes every character of `text` as itself: printable ASCII but `"`
 * and `\`. Anchored, so the engine runs one greedy loop over the string instead of trying a match
 * at every position, as the unanchored search for an escaped character did: 70 to 80 us for a
 * 64 KiB value against 120 to 315, which a replica with the store's values at rest spent on every
 * long put it executed (docs/performance.md, "What the leader holds in a burst, thread by thread").
 */
const unescapedText = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/**
 * A store value as a snapshot's serialization writes it: its JSON, escaped to ASCII. A value of
 * characters written as themselves is its own JSON between quotes, without JSON.stringify's copy
 * and the search of that copy for characters to escape: 1.2 to 3 ms for a 1 MiB value against 13
 * (docs/performance.md, "What the leader holds in a burst, thread by thread").
 */
export function escapedJsonValue(value: string): string {
  if (unescapedText.test(value)) return `"${value}"`;
  return escapeNonAscii(JSON.stringify(value));
}

/** `escapedJsonValue(value).length`, without making the string. */
export function escapedJsonLength(value: string): number {
  // The common case, in one pass of the regular expression engine: about a third of the loop's time.
  if (unescapedText.test(value)) return value.length + 2;
  let chars = 2;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c >= 0x20 && c < 0x7f) chars += c === 0x22 || c === 0x5c ? 2 : 1;
    // \b \t \n \f \r
    else if (c === 8 || c === 9 || c === 10 || c === 12 || c === 13) chars += 2;
    // Every other control character, and from U+007F up (a lone surrogate included): \uXXXX.
    else chars += 6;
  }
  return chars;
}

/** A serialized snapshot as a replica holds it, to persist and to serve to lagging peers. */
export interface SnapshotInfo {
  readonly slot: number;
  /** The divergence digest of the state after `slot` (monitor.ts `checkpointDigest`). */
  readonly digest: string;
  /** The digest of `data`, to check a reassembled transfer. */
  readonly contentDigest: string;
  /** The serialized contents: ASCII, so its length is its size in bytes. */
  readonly data: string;
}

const Envelope = Schema.Struct({
  format: Schema.Literal(snapshotFormat),
  slot: Schema.Int.pipe(Schema.positive()),
  app: Schema.Unknown,
  // [clientId, seq, output, command digest]. A snapshot written before sessions kept the digest
  // of their command has no fourth element: such a session answers no retry of its number
  // (sessionAnswer refuses it as reused), because nothing can vouch that the retry is the same command.
  sessions: Schema.Array(
    Schema.Tuple(
      Schema.String,
      // 0 only for a session the service opened that has run nothing yet (level 3).
      Schema.Int.pipe(Schema.nonNegative()),
      Schema.Unknown,
      Schema.optionalElement(Schema.String),
      // Above feature level 1, the session's place in the eviction order (spec/service.ts `Session.at`).
      Schema.optionalElement(Schema.Int),
    ),
  ),
  executed: Schema.Int.pipe(Schema.nonNegative()),
  // Above feature level 1 only (absent: level 1, as every snapshot of earlier versions).
  features: Schema.optional(
    Schema.Struct({
      level: Schema.Int,
      sessionsMax: Schema.Int,
      outputBytesMax: Schema.Int,
      evicted: Schema.Int,
      // From level 3 on only: the sessions the service opened (spec/service.ts `Features.opened`).
      opened: Schema.optional(Schema.Int),
    }),
  ),
  outputDigest: Schema.Tuple(Schema.Int, Schema.Int),
  configs: Schema.Array(ConfigurationSchema).pipe(Schema.minItems(1)),
  checkpoints: Schema.Array(Schema.Struct({ slot: Schema.Int.pipe(Schema.positive()), digest: Schema.String })),
});

const decodeEnvelope = Schema.decodeUnknownEither(Envelope, { onExcessProperty: "error" });

/** `json` with every character from U+007F up escaped: the string's length is its UTF-8 size. */
function escapeNonAscii(json: string): string {
  return json.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** Serialize `contents` (deterministic: the same state always gives the same string). */
export function encodeSnapshot<S, I, O>(ctx: ReplicaContext<S, I, O>, contents: SnapshotContents<S, O>): string {
  return escapeNonAscii(JSON.stringify(envelopeOf(ctx, contents)));
}

/**
 * The snapshot's envelope: what its JSON is the serialization of. With `atRest`, the application's
 * part as the store's values at rest give it (`StoreAtRest.snapshot`: each such value as its
 * reference, for a serialization that leaves a hole there); else the application's own snapshot,
 * which refuses a value at rest.
 */
function envelopeOf<S, I, O>(
  ctx: ReplicaContext<S, I, O>,
  contents: SnapshotContents<S, O>,
  atRest: boolean = false,
): unknown {
  const sessions = sessionsOf(contents.service).map(([clientId, session]) =>
    session.at === undefined
      ? [clientId, session.seq, session.output, session.command]
      : [clientId, session.seq, session.output, session.command, session.at],
  );
  const f = contents.service.features;
  return {
    format: snapshotFormat,
    slot: contents.slot,
    app:
      atRest && ctx.storeAtRest !== null
        ? ctx.storeAtRest.snapshot(contents.service.app)
        : ctx.app.snapshot(contents.service.app),
    sessions,
    executed: contents.service.executed,
    ...(f === undefined
      ? {}
      : {
          features: {
            level: f.level,
            sessionsMax: f.sessionsMax,
            outputBytesMax: f.outputBytesMax,
            evicted: f.evicted,
            ...(f.opened === undefined ? {} : { opened: f.opened }),
          },
        }),
    outputDigest: [contents.outputDigestA, contents.outputDigestB],
    configs: contents.configs,
    checkpoints: contents.checkpoints,
  };
}

/** A 64-bit digest (two 32-bit lanes, hex) of a serialized snapshot. Detects corruption; not cryptographic. */
export function contentDigestOf(data: string): string {
  const digest = new ContentDigest();
  digest.update(data);
  return digest.hex;
}

/**
 * `contentDigestOf` of a string given in pieces, in order: the digest of their concatenation.
 * What the storage thread computes over a snapshot's slices as they arrive, off the main thread.
 */
export class ContentDigest {
  private a = 0x811c9dc5;
  private b = 0x050c5d1f;

  /** A digest that goes on from `lanes` (what `lanes` read of one that digested a prefix). */
  static resume(lanes: ContentDigestLanes): ContentDigest {
    const digest = new ContentDigest();
    digest.a = lanes.a;
    digest.b = lanes.b;
    return digest;
  }

  /** The digest's state as plain numbers, for a replica state to hold between chunks. */
  get lanes(): ContentDigestLanes {
    return { a: this.a, b: this.b };
  }

  update(piece: string): void {
    let a = this.a;
    let b = this.b;
    for (let i = 0; i < piece.length; i++) {
      const c = piece.charCodeAt(i);
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995) ^ (b >>> 15);
    }
    this.a = a;
    this.b = b;
  }

  get hex(): string {
    return `${(this.a >>> 0).toString(16).padStart(8, "0")}${(this.b >>> 0).toString(16).padStart(8, "0")}`;
  }
}

/** The two lanes of a `ContentDigest` part way through its text. */
export interface ContentDigestLanes {
  readonly a: number;
  readonly b: number;
}

/** `ContentDigest`'s lanes before any text. */
export const contentDigestStart: ContentDigestLanes = new ContentDigest().lanes;

/** Characters a snapshot's JSON must escape to be ASCII. */
const nonAscii = /[\u007f-\uffff]/;

/** The divergence digest of a snapshot's state (the checkpoint digest at its slot). */
export function snapshotDigest<S, I, O>(ctx: ReplicaContext<S, I, O>, contents: SnapshotContents<S, O>): string {
  return checkpointDigest(ctx, contents.service, contents.outputDigestA, contents.outputDigestB);
}

/**
 * The divergence digest of a snapshot's state in the digest format `format` (spec/hash.ts): its
 * own (`snapshotDigest`), or one the application can still make (`Application.digestAs`: the
 * unnamed format of a snapshot taken before a hash was passed in). Null for any other.
 */
function snapshotDigestAs<S, I, O>(
  ctx: ReplicaContext<S, I, O>,
  contents: SnapshotContents<S, O>,
  format: string,
): string | null {
  const own = snapshotDigest(ctx, contents);
  if (digestFormat(own) === format) return own;
  const app = ctx.app.digestAs?.(contents.service.app, format) ?? null;
  if (app === null) return null;
  return `${app}|${countsOf(contents.service)}|${own.slice(own.lastIndexOf("|") + 1)}`;
}

/**
 * JSON.stringify(value), piece by piece: arrays and plain objects down to `depth` levels are
 * walked (their brackets, commas and keys are pieces of their own), anything deeper is one piece.
 * The pieces joined are exactly JSON.stringify's string (the same keys, in the same order, the
 * same `null` for what an array cannot hold), so a snapshot of a large state can be serialized
 * across many event-loop turns, one value at a time, into the same bytes.
 */
function* jsonPieces(value: unknown, depth: number): Generator<string, void, undefined> {
  if (depth <= 0 || typeof value !== "object" || value === null) {
    yield JSON.stringify(value);
    return;
  }
  if (Array.isArray(value)) {
    if (depth === 1) {
      yield* leafItemPieces(value);
      return;
    }
    yield "[";
    for (let i = 0; i < value.length; i++) {
      if (i > 0) yield ",";
      const item: unknown = value[i];
      if (item === undefined || typeof item === "function" || typeof item === "symbol") yield "null";
      else yield* jsonPieces(item, depth - 1);
    }
    yield "]";
    return;
  }
  const plain = Object.getPrototypeOf(value) === Object.prototype && !("toJSON" in value);
  if (!plain) {
    yield JSON.stringify(value);
    return;
  }
  yield* objectPieces(value as Record<string, unknown>, (_key, item) => jsonPieces(item, depth - 1));
}

/**
 * Characters of an array's items that {@link leafItemPieces} gathers into one piece, by their
 * estimate (`itemCharsEstimate`): enough that a store's small entries cost one call of
 * JSON.stringify per few hundred of them, few enough that a piece stays below a slice
 * (`snapshotSliceChars`, 256 KiB) even if every character of its short strings is escaped (six
 * times as long).
 */
const leafPieceChars = 16 * 1024;

/** A string at least this long is looked at for characters its escaping lengthens (`itemCharsEstimate`). */
const longStringChars = 1024;

/** A string's characters as a snapshot writes them, at most: its length, or six times it if any is escaped. */
function stringCharsEstimate(text: string): number {
  if (text.length < longStringChars) return text.length + 2;
  return unescapedText.test(text) ? text.length + 2 : 6 * text.length + 2;
}

/**
 * About how many characters a snapshot writes for `item`, or infinity when it cannot tell at a
 * glance (an object, a nested array): a string its length (a long one as escaped, at most), a
 * flat array of strings and numbers the sum (the store's `[key, value]` entries, a session's
 * tuple). Short strings are counted unescaped: a run of them is at most six times its estimate.
 */
function itemCharsEstimate(item: unknown): number {
  if (typeof item === "string") return stringCharsEstimate(item);
  if (typeof item !== "object" || item === null) return 24;
  if (!Array.isArray(item)) return Number.POSITIVE_INFINITY;
  let chars = 2;
  for (const part of item as readonly unknown[]) {
    if (typeof part === "string") chars += stringCharsEstimate(part) + 1;
    else if (typeof part === "number" || typeof part === "boolean" || part === null) chars += 24;
    else return Number.POSITIVE_INFINITY;
  }
  return chars;
}

/**
 * `jsonPieces(items, 1)`: the array's JSON, each item as JSON.stringify writes it (`null` for what
 * an array cannot hold), its items gathered into runs estimated at up to `leafPieceChars` and each
 * run written by one call of JSON.stringify (a run's JSON without its brackets is exactly its
 * items' JSON joined by commas); an item estimated larger, or not estimated, is a run of its own.
 * A snapshot's store is such an array: a step of the nested generators and a call of
 * JSON.stringify for each of its entries were most of the main thread's time for a snapshot of
 * many small values (docs/performance.md, "A snapshot's serialization, measured on the main
 * threads").
 */
function* leafItemPieces(items: readonly unknown[]): Generator<string, void, undefined> {
  yield "[";
  let from = 0;
  while (from < items.length) {
    let to = from + 1;
    let chars = itemCharsEstimate(items[from]);
    while (to < items.length && chars < leafPieceChars) {
      const next = itemCharsEstimate(items[to]);
      if (chars + next > leafPieceChars) break;
      chars += next;
      to += 1;
    }
    const run = JSON.stringify(items.slice(from, to));
    yield `${from > 0 ? "," : ""}${run.slice(1, -1)}`;
    from = to;
  }
  yield "]";
}

/**
 * A plain object's pieces as JSON.stringify writes it: `{`, each key it keeps (not one whose item
 * is undefined, a function or a symbol) followed by `itemPieces` of its item, then `}`.
 */
function* objectPieces<P>(
  o: Record<string, unknown>,
  itemPieces: (key: string, item: unknown) => Generator<P, void, undefined>,
): Generator<string | P, void, undefined> {
  let first = true;
  yield "{";
  for (const key of Object.keys(o)) {
    const item = o[key];
    if (item === undefined || typeof item === "function" || typeof item === "symbol") continue;
    yield `${first ? "" : ","}${JSON.stringify(key)}:`;
    first = false;
    yield* itemPieces(key, item);
  }
  yield "}";
}

/** How deep `jsonPieces` walks a snapshot's envelope: to each entry of the application's and sessions' arrays. */
const envelopeDepth = 3;

/**
 * What a whole reading of a serialization with values at rest writes in a hole: the escaped value
 * (`escapedJsonValue`), read back from the vote record the hole names.
 */
type HoleFill = (hole: SnapshotHole) => string;

/**
 * `jsonPieces(envelope, envelopeDepth)` of the envelope with every value in memory, with a hole where
 * an entry `[key, value]` of the application's `entries` holds a value `atRest` names: its
 * reference (the value at rest), or the value itself in memory, of the named length. The pieces
 * joined, each hole filled with `escapedJsonValue` of its value, are the same string. With `fill`,
 * no hole is left: a value at rest is written as `fill` gives it, one in memory as itself.
 */
function* piecesWithHoles(
  envelope: unknown,
  atRest: PersistentMap<StoredEntry>,
  fill: HoleFill | null,
): Generator<string | SnapshotHole, void, undefined> {
  yield* objectPieces(envelope as Record<string, unknown>, (key, item) =>
    key === "app" ? appPieces(item, atRest, fill) : jsonPieces(item, envelopeDepth - 1),
  );
}

/** The application's pieces in {@link piecesWithHoles}: `jsonPieces(app, envelopeDepth - 1)` with the holes. */
function* appPieces(
  app: unknown,
  atRest: PersistentMap<StoredEntry>,
  fill: HoleFill | null,
): Generator<string | SnapshotHole, void, undefined> {
  const plain =
    typeof app === "object" && app !== null && Object.getPrototypeOf(app) === Object.prototype && !("toJSON" in app);
  const entries = plain ? (app as Record<string, unknown>).entries : undefined;
  if (!plain || !Array.isArray(entries)) {
    yield* jsonPieces(app, envelopeDepth - 1);
    return;
  }
  yield* objectPieces(app as Record<string, unknown>, (key, item) =>
    key === "entries" ? entryPieces(entries, atRest, fill) : jsonPieces(item, envelopeDepth - 2),
  );
}

/**
 * The application's `entries` in {@link appPieces}: each `[key, value]` whose value `atRest` names
 * (at rest, or in memory of the named length) with a hole where the value goes (with `fill`, the
 * value at rest filled, the value in memory as itself). Throws on an entry at rest that `atRest`
 * does not name (its hole could not be filled from a record the snapshot's slot vouches for).
 */
function* entryPieces(
  entries: readonly unknown[],
  atRest: PersistentMap<StoredEntry>,
  fill: HoleFill | null,
): Generator<string | SnapshotHole, void, undefined> {
  yield "[";
  for (let i = 0; i < entries.length; i++) {
    if (i > 0) yield ",";
    const entry: unknown = entries[i];
    const pair = Array.isArray(entry) && entry.length === 2 && typeof entry[0] === "string";
    const value: unknown = pair ? (entry as unknown[])[1] : undefined;
    const named = pair ? pmGet(atRest, (entry as [string, unknown])[0]) : undefined;
    if (pair && typeof value === "object" && value !== null) {
      // A value at rest (the store's `StoredEntry`): only the very reference named goes in a hole.
      if (named === undefined || !sameEntry(named, value as StoredEntry))
        throw new Error(
          `a snapshot's value at rest under ${JSON.stringify((entry as [string, unknown])[0])} is not one its names give (rule V5)`,
        );
      const hole: SnapshotHole = { _tag: "hole", entry: named, chars: named.chars };
      yield `[${JSON.stringify(named.key)},`;
      yield fill === null ? hole : fill(hole);
      yield "]";
      continue;
    }
    if (fill !== null || named === undefined || typeof value !== "string" || named.length !== value.length) {
      yield* jsonPieces(entry, envelopeDepth - 3);
      continue;
    }
    yield `[${JSON.stringify(named.key)},`;
    yield { _tag: "hole", entry: named, chars: named.chars };
    yield "]";
  }
  yield "]";
}

/**
 * A snapshot's serialization made in slices: `advance` serializes and escapes about `chars` more
 * characters of it, and `takeChunks` hands over what was made since it was last called, so that a
 * replica can take a snapshot of a large state across event-loop turns and stream it to disk as it
 * goes, while its state goes on changing (this serializes the persistent state of the snapshot's
 * slot, which nothing changes). The chunks joined are exactly `encodeSnapshot`'s string.
 * Deterministic and pure: how it is sliced changes nothing but when the work is done.
 *
 * The content digest is not computed here: whoever takes the chunks digests them
 * (`ContentDigest`: the storage thread, off the replica's main thread) and may hand the digest
 * back through `knownDigest`; read without it, it is computed from the whole string. Chunks
 * handed over are not kept: should the whole string be asked for afterwards (a peer's state
 * transfer), it is serialized again from the state, so that a replica does not keep a serialized
 * copy of every value it holds (two, with the snapshot before).
 */
export class SnapshotSerialization {
  private pieces: Generator<string | SnapshotHole, void, undefined> | null;
  private unsent: SnapshotChunk[] = [];
  /** Holes made (rule V5: `SnapshotHole`). */
  private holeCount = 0;
  private taken = false;
  private joined: string | null = null;
  private digest: string | null = null;
  private size = 0;

  private envelope: unknown;
  private encode: (() => string) | null;
  private released = false;
  /** The store's values named by their vote records, left as holes (none: every value serialized here). */
  private atRest: PersistentMap<StoredEntry> | null;
  /** Reads a value at rest back for a whole reading (`fillFrom`), or null: none may be read whole. */
  private reader: ((entry: StoredEntry) => string) | null = null;

  /**
   * `atRest`: the store's values named by their vote records, whose places `advance` leaves as
   * holes (see `SnapshotContents.atRest`); the envelope then holds each value at rest as its
   * reference. Every other reading of the bytes writes the values: those in memory as they are,
   * those at rest as `fillFrom`'s reader reads them back.
   */
  constructor(envelope: unknown, encode: () => string, atRest?: PersistentMap<StoredEntry>) {
    this.envelope = envelope;
    this.atRest =
      atRest === undefined || atRest.size === 0 || typeof envelope !== "object" || envelope === null ? null : atRest;
    this.encode = this.atRest === null ? encode : () => [...this.escapedPieces()].join("");
    this.pieces =
      this.atRest === null ? jsonPieces(envelope, envelopeDepth) : piecesWithHoles(envelope, this.atRest, null);
  }

  /**
   * Read the values at rest back with `read` (rule V2: the value a reference names, from the vote
   * record it names) wherever the bytes are read whole here (`data`, `slice`, `escapedPieces`,
   * `contentDigest` before it is known): the driver's reader of its own records. Without one,
   * such a reading throws: a driver whose slices' holes are filled elsewhere (the runtime's storage
   * thread) never reads them so, or gives one that reads there.
   */
  fillFrom(read: (entry: StoredEntry) => string): void {
    this.reader = read;
  }

  /**
   * The store's values this serialization names by their vote records (its holes), while its state
   * is held: compaction must keep those records until then. Null once released, or none.
   */
  get named(): PersistentMap<StoredEntry> | null {
    return this.released ? null : this.atRest;
  }

  /** The characters of `hole` for a whole reading: its value read back (`fillFrom`), escaped, of its length. */
  private fill(hole: SnapshotHole): string {
    const where = `the snapshot's value at rest under ${JSON.stringify(hole.entry.key)}`;
    if (this.reader === null)
      throw new Error(`${where} is written where its slices are (rule V5): nothing here reads it back`);
    const text = escapedJsonValue(this.reader(hole.entry));
    if (text.length !== hole.chars)
      throw new Error(`${where} leaves a hole of ${hole.chars} characters, and its value has ${text.length}`);
    return text;
  }

  /** How many values `advance` left as holes for whoever takes the chunks to fill (rule V5). */
  get holes(): number {
    return this.holeCount;
  }

  /**
   * Let the state go: once every character was serialized and handed over (its size known), and
   * its content digest is known, a driver whose snapshots' bytes are read back from their durable
   * records (`valuesAtRest`: a transfer's chunks at rest, impl/core/at-rest.ts) keeps only the
   * size and the digest. The snapshot's state (every value a write replaced since its slot) is then
   * freed. Reading its bytes afterwards (`data`, `slice`, `escapedPieces`) throws. Returns whether
   * it let go (false: not complete, or the digest not known yet).
   */
  release(): boolean {
    if (this.released) return true;
    if (this.pieces !== null || this.unsent.length > 0 || this.digest === null) return false;
    this.released = true;
    this.envelope = null;
    this.encode = null;
    this.atRest = null;
    this.reader = null;
    this.joined = null;
    this.cursors.length = 0;
    return true;
  }

  /**
   * Its bytes were written by other means, found to be these (a state transfer's chunks, whose
   * digest this serialization gave): nothing is left to serialize, and `bytes` is its size. Only
   * before any slice was made.
   */
  storedAs(bytes: number): void {
    if (this.size > 0 || this.unsent.length > 0 || this.taken) return;
    this.pieces = null;
    this.stored = bytes;
    // Read whole afterwards (a trace), it is serialized again from the state.
    this.taken = true;
  }

  private readable(): void {
    if (this.released) throw new Error("a released snapshot's bytes are read from its durable record, not from memory");
  }

  /** The serialization's characters, escaped, in pieces from the start: as many passes as asked for, none kept. */
  *escapedPieces(): Generator<string, void, undefined> {
    this.readable();
    const pieces =
      this.atRest === null
        ? jsonPieces(this.envelope, envelopeDepth)
        : piecesWithHoles(this.envelope, this.atRest, (hole) => this.fill(hole));
    for (const piece of pieces) {
      // With a fill, no hole is left.
      const text = piece as string;
      yield nonAscii.test(text) ? escapeNonAscii(text) : text;
    }
  }

  /** Cursors over the serialization that serve a state transfer's chunks (see `slice`). */
  private readonly cursors: SliceCursor[] = [];

  /**
   * Characters [offset, offset + length) of the serialization (fewer at its end), without its
   * whole string: from the joined string if one was made anyway, else from a cursor that walks
   * the state's pieces and holds only the piece it is in. A state transfer asks for its chunks in
   * order, so each chunk continues where its cursor stopped; the chunk served last is kept, for
   * a requester that asks for it again after a loss. A few transfers of the same snapshot each
   * get a cursor of their own; a request behind every cursor starts one from the beginning.
   */
  slice(offset: number, length: number): string {
    this.readable();
    if (this.joined !== null) return this.joined.slice(offset, offset + length);
    const again = this.cursors.find((c) => c.servedAt === offset && c.served !== null);
    if (again !== undefined) return again.served!;
    let cursor: SliceCursor | undefined;
    for (const c of this.cursors) if (c.at <= offset && (cursor === undefined || c.at > cursor.at)) cursor = c;
    if (cursor === undefined) {
      if (this.cursors.length >= sliceCursorsMax) this.cursors.shift();
      cursor = new SliceCursor(this.escapedPieces());
      this.cursors.push(cursor);
    } else {
      // The most recently used last: the oldest goes first when a new one is needed.
      this.cursors.splice(this.cursors.indexOf(cursor), 1);
      this.cursors.push(cursor);
    }
    return cursor.read(offset, length);
  }

  /** True once every character is serialized. */
  get complete(): boolean {
    return this.pieces === null;
  }

  /** Characters (bytes: it is ASCII) serialized so far; the snapshot's size once complete. */
  get bytes(): number {
    return this.stored ?? this.size;
  }

  /** Characters serialized here (none for one stored as other bytes, `storedAs`). */
  get serializedChars(): number {
    return this.size;
  }

  /** The size of the bytes it was stored as instead of being serialized (`storedAs`), or null. */
  private stored: number | null = null;

  /**
   * Serialize the next pieces, at least one and about `chars` characters (nothing once complete);
   * a hole counts its characters and stands as a chunk of its own.
   */
  advance(chars: number): void {
    if (this.pieces === null) return;
    let parts: string[] = [];
    let taken = 0;
    let pieces = 0;
    let pushed = 0;
    const flush = (): void => {
      const json = parts.join("");
      const chunk = nonAscii.test(json) ? escapeNonAscii(json) : json;
      this.size += chunk.length;
      this.unsent.push(chunk);
      pushed += 1;
      parts = [];
    };
    while (taken < chars || pieces === 0) {
      const piece = this.pieces.next();
      if (piece.done === true) {
        this.pieces = null;
        break;
      }
      pieces += 1;
      if (typeof piece.value === "string") {
        parts.push(piece.value);
        taken += piece.value.length;
        continue;
      }
      if (parts.length > 0) flush();
      this.size += piece.value.chars;
      this.unsent.push(piece.value);
      this.holeCount += 1;
      pushed += 1;
      taken += piece.value.chars;
    }
    if (parts.length > 0 || pushed === 0) flush();
  }

  /** The chunks serialized since the last call, in order (with the holes left, if any); they are not kept. */
  takeChunks(): SnapshotChunk[] {
    const chunks = this.unsent;
    this.unsent = [];
    this.taken = true;
    return chunks;
  }

  /** Finish whatever is left at once. */
  finish(): void {
    while (this.pieces !== null) this.advance(Number.POSITIVE_INFINITY);
  }

  /** The whole serialized snapshot: the chunks joined, or serialized again once some were handed over. */
  get data(): string {
    if (this.joined === null) {
      this.readable();
      if (this.taken) this.joined = this.encode!();
      else if (this.holeCount > 0 || this.pieces !== null) {
        // Nothing handed over yet: serialized whole (holes filled), and handed over so if asked.
        this.joined = this.encode!();
        this.pieces = null;
        this.unsent = [this.joined];
        this.size = this.joined.length;
      } else {
        this.joined = (this.unsent as string[]).join("");
        this.unsent = [this.joined];
      }
    }
    return this.joined;
  }

  /**
   * `contentDigestOf(data)`: the digest handed back by whoever digested the chunks, or computed
   * now, piece by piece, without joining the string.
   */
  get contentDigest(): string {
    if (this.digest === null) {
      if (this.joined !== null) this.digest = contentDigestOf(this.joined);
      else {
        const digest = new ContentDigest();
        for (const piece of this.escapedPieces()) digest.update(piece);
        this.digest = digest.hex;
      }
    }
    return this.digest;
  }

  /**
   * The content digest, once a reader of every chunk computed it with `ContentDigest` (the same
   * function, elsewhere): kept, so that a later state transfer does not serialize the state again
   * only to digest it.
   */
  set knownDigest(digest: string) {
    this.digest ??= digest;
  }
}

/** Cursors one serialization keeps for state transfers to several peers at once. */
const sliceCursorsMax = 4;

/**
 * A position in a serialization's pieces (`SnapshotSerialization.slice`): the characters before
 * `at` are behind it, `piece` holds those from `at` on that it has read, and the last chunk it
 * served is kept. Holds one piece and one chunk, never more.
 */
class SliceCursor {
  /** Characters before `piece`. */
  private start = 0;
  private piece = "";
  private done = false;
  served: string | null = null;
  servedAt = -1;

  constructor(private readonly pieces: Generator<string, void, undefined>) {}

  /** The offset of the first character not yet passed: a read from here on needs no restart. */
  get at(): number {
    return this.start;
  }

  /** Characters [offset, offset + length) of the pieces; `offset` must not be behind `at`. */
  read(offset: number, length: number): string {
    const parts: string[] = [];
    let from = offset;
    const end = offset + length;
    while (from < end) {
      if (from >= this.start + this.piece.length) {
        if (this.done) break;
        this.start += this.piece.length;
        const next = this.pieces.next();
        if (next.done === true) {
          this.done = true;
          this.piece = "";
          break;
        }
        this.piece = next.value;
        continue;
      }
      const taken = this.piece.slice(from - this.start, end - this.start);
      parts.push(taken);
      from += taken.length;
    }
    this.served = parts.join("");
    this.servedAt = offset;
    return this.served;
  }
}

/** The serialization behind each snapshot (and snapshot record) that `makeSnapshot` made. */
const serializations = new WeakMap<object, SnapshotSerialization>();

/**
 * The serialization in slices behind a snapshot or snapshot record that `makeSnapshot` made, for
 * a driver to advance across event-loop turns before it needs the bytes; undefined for any other
 * (a snapshot read from disk or received whole holds its bytes already).
 */
export function serializationOf(snapshot: object): SnapshotSerialization | undefined {
  return serializations.get(snapshot);
}

/**
 * For a driver that holds its records in memory (the simulated world, the test cluster): the
 * snapshot record `record`'s values at rest (rule V5's holes) read back now by `read` from those
 * records (rule V2), its bytes made whole at once, before a compaction may let the vote records
 * its holes name go (a key written again after the snapshot's slot is no longer pinned). Nothing
 * for a record without values at rest (false).
 */
export function fillSnapshotHoles(record: object, read: (entry: StoredEntry) => string): boolean {
  const serialization = serializations.get(record);
  if (serialization?.named == null) return false;
  serialization.fillFrom(read);
  // Made whole now (and kept so), while every vote record its holes name is there.
  return serialization.data.length > 0;
}

/**
 * Give `target` the fields `contentDigest` and `data` of `serialization`, read when first asked
 * for. They are enumerable, in the place of the plain fields they stand for, so that the object
 * reads, compares, hashes and serializes exactly as one holding the strings.
 */
function defineLazy(target: object, field: "contentDigest" | "data", serialization: SnapshotSerialization): void {
  Object.defineProperty(target, field, {
    enumerable: true,
    configurable: false,
    get: () => serialization[field],
  });
}

/**
 * Take a snapshot: its slot and divergence digest at once, and its bytes and content digest (the
 * fields `data` and `contentDigest`) serialized when first read, or beforehand in slices through
 * `serializationOf`: serializing a large state in one step held a replica's event loop for
 * hundreds of milliseconds, on every replica at the same slot.
 */
export function makeSnapshot<S, I, O>(ctx: ReplicaContext<S, I, O>, contents: SnapshotContents<S, O>): SnapshotInfo {
  const atRest = contents.atRest !== undefined && contents.atRest.size > 0;
  const serialization = new SnapshotSerialization(
    envelopeOf(ctx, contents, atRest),
    () => encodeSnapshot(ctx, contents),
    contents.atRest,
  );
  const info = { slot: contents.slot, digest: snapshotDigest(ctx, contents) } as {
    slot: number;
    digest: string;
    contentDigest: string;
    data: string;
  };
  defineLazy(info, "contentDigest", serialization);
  defineLazy(info, "data", serialization);
  serializations.set(info, serialization);
  return info;
}

/**
 * A snapshot received whole (a state transfer) or read from disk, `data` verified as `claim` and
 * decoded to `contents`, as a replica keeps it: backed by a serialization of `contents` when that
 * serializes to exactly `data` (as every snapshot this version writes does), so that the replica
 * lets `data` go and its snapshot record reaches the disk in slices, never as one string handed
 * across threads; else holding `data` (a snapshot written by a version that serialized otherwise).
 * The check walks the state piece by piece and compares each with `data` in place.
 */
export function keptSnapshot<S, I, O>(
  ctx: ReplicaContext<S, I, O>,
  contents: SnapshotContents<S, O>,
  data: string,
  claim: SnapshotClaim,
): SnapshotInfo {
  const info = makeSnapshot(ctx, contents);
  const serialization = serializations.get(info)!;
  let at = 0;
  for (const piece of serialization.escapedPieces()) {
    if (!data.startsWith(piece, at))
      return { slot: claim.slot, digest: claim.digest, contentDigest: claim.contentDigest, data };
    at += piece.length;
  }
  if (at !== data.length || info.slot !== claim.slot || info.digest !== claim.digest)
    return { slot: claim.slot, digest: claim.digest, contentDigest: claim.contentDigest, data };
  serialization.knownDigest = claim.contentDigest;
  // Its bytes are on disk: never serialized again to be written, and its size known without it.
  serialization.storedAs(data.length);
  return info;
}

/**
 * A snapshot this replica holds only on disk (its record, `bytes` long), as its serving needs it
 * with `valuesAtRest`: its slot, digests and size, a transfer's chunks read from the record by
 * the driver (impl/core/at-rest.ts). Its bytes are not in memory: reading `data` throws.
 */
export function restingSnapshot(claim: SnapshotClaim, bytes: number): SnapshotInfo {
  const serialization = new SnapshotSerialization(null, () => {
    throw new Error(`the snapshot of slot ${claim.slot} is held on disk only`);
  });
  serialization.storedAs(bytes);
  serialization.knownDigest = claim.contentDigest;
  serialization.release();
  const info = { slot: claim.slot, digest: claim.digest, contentDigest: claim.contentDigest } as {
    slot: number;
    digest: string;
    contentDigest: string;
    data: string;
  };
  // Not enumerable: what reads, compares or hashes the state sees the snapshot by its digests.
  Object.defineProperty(info, "data", { enumerable: false, configurable: false, get: () => serialization.data });
  serializations.set(info, serialization);
  return info;
}

/**
 * The snapshot record of `info`, with the acceptor's `maxBal` and the log's truncation point:
 * its bytes stay unserialized until read when `info`'s are (it shares `info`'s serialization).
 */
export function snapshotRecord(info: SnapshotInfo, maxBal: Ballot, logTruncatedUpTo: number): SnapshotRecord {
  const serialization = serializations.get(info);
  if (serialization === undefined) {
    const { slot, digest, contentDigest, data } = info;
    return { _tag: "snapshot", slot, digest, contentDigest, maxBal, logTruncatedUpTo, data };
  }
  const record = { _tag: "snapshot", slot: info.slot, digest: info.digest } as Record<string, unknown>;
  defineLazy(record, "contentDigest", serialization);
  record.maxBal = maxBal;
  record.logTruncatedUpTo = logTruncatedUpTo;
  defineLazy(record, "data", serialization);
  serializations.set(record, serialization);
  return record as unknown as SnapshotRecord;
}

/**
 * Bytes [offset, offset + length) of a snapshot (fewer at its end): what a state transfer's chunk
 * carries. A snapshot this replica took is read from its state piece by piece, never joined into
 * one string (`SnapshotSerialization.slice`); one read from disk or received holds its bytes.
 */
export function snapshotSlice(info: SnapshotInfo, offset: number, length: number): string {
  const serialization = serializations.get(info);
  if (serialization === undefined) return info.data.slice(offset, offset + length);
  return serialization.slice(offset, length);
}

/** A snapshot's size in bytes, without joining its bytes when they are still in slices. */
export function snapshotSize(info: SnapshotInfo | null): number {
  if (info === null) return 0;
  const serialization = serializations.get(info);
  if (serialization === undefined) return info.data.length;
  serialization.finish();
  return serialization.bytes;
}

/**
 * A snapshot's bytes as a replica read them, whole from disk or chunk by chunk in a state
 * transfer (snapshot-decoder.ts): the digest of every byte, and their JSON parsed (or why it
 * does not parse). What rule S2 judges; nothing here is checked yet.
 */
export interface ReadSnapshot {
  readonly contentDigest: string;
  readonly json: { readonly json: unknown } | { readonly error: string };
}

/** `data`, read whole. */
export function readSnapshot(data: string): ReadSnapshot {
  try {
    return { contentDigest: contentDigestOf(data), json: { json: JSON.parse(data) as unknown } };
  } catch (e) {
    return {
      contentDigest: contentDigestOf(data),
      json: { error: `not JSON: ${e instanceof Error ? e.message : String(e)}` },
    };
  }
}

/** Rebuild the contents from `data`, or say why `data` is not a snapshot of this application. Never throws. */
export function decodeSnapshot<S, I, O>(ctx: ReplicaContext<S, I, O>, data: string): SnapshotContents<S, O> | string {
  return decodeReadSnapshot(ctx, readSnapshot(data));
}

/**
 * Rebuild the contents from a snapshot as read (its digest unchecked), or say why it is not one of
 * this application. Never throws.
 */
export function decodeReadSnapshot<S, I, O>(
  ctx: ReplicaContext<S, I, O>,
  read: ReadSnapshot,
): SnapshotContents<S, O> | string {
  if ("error" in read.json) return read.json.error;
  const envelope = decodeEnvelope(read.json.json);
  if (Either.isLeft(envelope)) return "not a paxos-lease snapshot";
  const e = envelope.right;
  let app: S;
  try {
    app = ctx.app.restore(e.app);
  } catch (error) {
    return `application state refused: ${error instanceof Error ? error.message : String(error)}`;
  }
  let sessions = ctx.service.start.sessions;
  const seen = new Set<string>();
  for (const [clientId, seq, output, command, at] of e.sessions) {
    if (seen.has(clientId)) return `client ${clientId} has two sessions`;
    seen.add(clientId);
    if (at !== undefined && e.features === undefined) return `client ${clientId}'s session has a place at level 1`;
    if (seq === 0 && e.features === undefined) return `client ${clientId}'s session has number 0 at level 1`;
    const session: Session<O> =
      at === undefined
        ? { seq, command: command ?? "", output: output as O }
        : { seq, command: command ?? "", output: output as O, at };
    sessions = withSession(sessions, clientId, session);
  }
  let features: Features | undefined;
  if (e.features !== undefined) {
    const { level, sessionsMax, outputBytesMax, evicted, opened } = e.features;
    if (level > featureLevelMax)
      return `feature level ${level} is above ${featureLevelMax}, the highest this version executes`;
    const bounds = { sessionsMax, outputBytesMax };
    const restored = restoredFeatures(sessions, level, bounds, evicted, e.executed, opened);
    if (typeof restored === "string") return `session table refused: ${restored}`;
    features = restored;
  }
  return {
    slot: e.slot,
    service:
      features === undefined
        ? { app, sessions, executed: e.executed }
        : { app, sessions, executed: e.executed, features },
    outputDigestA: e.outputDigest[0] >>> 0,
    outputDigestB: e.outputDigest[1] >>> 0,
    configs: e.configs,
    checkpoints: e.checkpoints,
  };
}

/** What a snapshot claims to be: its slot and both digests (from a record or a transfer). */
export interface SnapshotClaim {
  readonly slot: number;
  readonly digest: string;
  readonly contentDigest: string;
}

/**
 * Check a complete snapshot, as read, against what it claims and rebuild its contents: the bytes'
 * digest, the slot inside, and the divergence digest of the rebuilt state must all match. Returns
 * the contents, or the reason to refuse it.
 */
export function verifySnapshot<S, I, O>(
  ctx: ReplicaContext<S, I, O>,
  read: ReadSnapshot,
  claim: SnapshotClaim,
): SnapshotContents<S, O> | string {
  if (read.contentDigest !== claim.contentDigest)
    return `content digest ${read.contentDigest} is not the claimed ${claim.contentDigest}`;
  const contents = decodeReadSnapshot(ctx, read);
  if (typeof contents === "string") return contents;
  if (contents.slot !== claim.slot) return `snapshot of slot ${contents.slot}, claimed ${claim.slot}`;
  const digest = snapshotDigestAs(ctx, contents, digestFormat(claim.digest));
  if (digest === null) return `state digest ${claim.digest} is of a format this version does not make`;
  if (digest !== claim.digest) return `state digest ${digest} is not the claimed ${claim.digest}`;
  return contents;
}

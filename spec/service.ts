/**
 * What clients may observe of the whole highly available service: one state machine that
 * executes each client request exactly once, in one total order. This is the top of the
 * refinement chain (docs/refinement.md): the replicated log, executed in slot order, must look to
 * every client like this machine.
 *
 * Exactly-once rests on the session table: clientId -> (last sequence number executed, a digest
 * of the command executed under it, its output). A client numbers its requests 1, 2, 3, ... and
 * has at most one outstanding. A request with a new (higher) number is executed; a retry of the
 * last one, carrying the same command, gets the cached output without executing again; the same
 * number with a different command is refused as reused (answering it with the cached output
 * would acknowledge a command that never ran); an older one is refused as stale, because its
 * output is no longer kept. The same machine, with the application's read-only inputs, is the
 * sequential model the linearizability checker replays histories against.
 *
 * Pure: no clock, no randomness, no I/O.
 */
import { Schema } from "effect";
import { digestFormat, fmix32, fnv1a, fnvOffsetBasis, inFormat, longTextChars, type TextHash } from "./hash.ts";
import { emptyPersistentMap, pmForEach, pmGet, pmRemove, pmSet, type PersistentMap } from "./persistent-map.ts";
import type { Application, Applied, StateMachine } from "./state-machine.ts";

/** A client's identity: a non-empty printable string of at most 128 characters. */
export const ClientId = Schema.String.pipe(
  Schema.minLength(1),
  Schema.maxLength(128),
  Schema.pattern(/^[\x21-\x7e]+$/),
);
/**
 * The id of a session the service opened (feature level 3, {@link openSession}) as a request names
 * it in `clientId`: `session <n>`, n the service's count of sessions opened. It holds a space, which
 * {@link ClientId} excludes, so no id a client chose at levels 1 and 2 (and no late copy of a
 * request of theirs) ever names a session the service opened.
 */
export const OpenedSessionId = Schema.String.pipe(Schema.pattern(/^session [1-9][0-9]{0,15}$/));
/** The session id of the `n`th session the service opened (`OpenedSessionId`). */
export function openedSessionId(n: number): string {
  return `session ${n}`;
}
/**
 * The session a command names, as replicas carry it: a client-chosen {@link ClientId} or an
 * {@link OpenedSessionId}. One string either way, so that a command's binary layout is unchanged.
 */
export const SessionName = Schema.String.pipe(
  Schema.minLength(1),
  Schema.maxLength(128),
  Schema.pattern(/^(?:[\x21-\x7e]+|session [1-9][0-9]{0,15})$/),
);
/** A client's request number: a positive safe integer. */
export const Seq = Schema.Int.pipe(Schema.positive(), Schema.lessThanOrEqualTo(Number.MAX_SAFE_INTEGER));

/** A request as the service sees it. */
export interface Request<I> {
  readonly clientId: string;
  readonly seq: number;
  readonly input: I;
  /**
   * The client sent this request before (its answer was lost): at level 2, a retry whose session is
   * gone is refused as `expired` even at number 1. Default: false (a first attempt). The replicas'
   * commands do not carry it (impl/core/messages.ts: their binary layout is fixed), so a retry
   * of number 1 whose session was evicted runs again there at level 2 (docs/http-api.md, sessions).
   * Level 3 needs no mark: a request whose session is not open never runs.
   */
  readonly retry?: boolean | undefined;
}

/**
 * What one client's session remembers: its last executed request's number, the digest of that
 * request's command (`commandDigest`), and its output. A session the service opened (level 3) that
 * has run nothing yet has number 0, digest "" and output null.
 */
export interface Session<O> {
  readonly seq: number;
  readonly command: string;
  readonly output: O;
  /**
   * At level 2, the session's place in the eviction order: the count of executed requests
   * (`ServiceState.executed`) when its last request ran; unique per session, the lowest evicted
   * first. Absent at level 1.
   */
  readonly at?: number | undefined;
}

/**
 * The service's answer. `executed`: the request ran now. `duplicate`: it had run before and
 * this is its cached output (a retry). `reused`: the client's last executed request had this
 * number but another command; this one never runs and gets a clear refusal. `stale`: an older
 * request than the last one executed for this client; its output is gone, so it gets a clear
 * refusal instead.
 */
export type ServiceOutput<O> =
  | { readonly _tag: "executed"; readonly output: O }
  | { readonly _tag: "duplicate"; readonly output: O }
  | { readonly _tag: "reused"; readonly seq: number }
  | { readonly _tag: "stale"; readonly lastSeq: number }
  /**
   * Level 2: the client has no session and this request does not open one (a number above 1, or a
   * retry): it may have run under a session since evicted, so it never runs. The client starts a
   * new session under a new client id.
   */
  | { readonly _tag: "expired" }
  /** Level 3: an open-session command ({@link openSession}) opened the session `clientId`. */
  | { readonly _tag: "opened"; readonly clientId: string };

/**
 * A digest of a command (an application input, plain data): 64 bits in two FNV-1a lanes, each
 * finished with fmix32, over a canonical rendering with object keys sorted, so that equal inputs
 * have equal digests however their fields were ordered. It tells a client's retry from another
 * command reusing its number; it is not cryptographic (a client that forges a collision only
 * fools its own session).
 *
 * With a `textHash` passed in (spec/hash.ts), a string of `longTextChars` or more is folded as
 * a marker and its two hash words instead of character by character, and the digest names the
 * hash's format in front (`sha256/0123456789abcdef`): a session keeps the digest of its last
 * command, and a retry is compared with it in the format it was made in
 * (`commandDigestLike`).
 */
export function commandDigest(input: unknown, textHash: TextHash | null = null): string {
  // As int32 from the start (the offset basis is above 2^31), so that V8 keeps both fields small integers.
  const lanes: Lanes = { a: fnvOffsetBasis | 0, b: 0x050c5d1f, textHash };
  foldCanonical(lanes, input);
  return inFormat(textHash, hex16(fmix32(lanes.a), fmix32(lanes.b)));
}

/**
 * The digest of `input` in the format of `stored` (a session's command digest), to compare a retry
 * with it: in `textHash`'s format, or in the unnamed one for a digest made before `textHash` was
 * passed in (a session restored from an older snapshot). A digest of any other format gets
 * `textHash`'s, which differs from it: the retry is refused as reused, since nothing can
 * vouch that it is the same command.
 */
export function commandDigestLike(stored: string, input: unknown, textHash: TextHash | null): string {
  return textHash !== null && digestFormat(stored) === "" ? commandDigest(input, null) : commandDigest(input, textHash);
}

/** 16 lowercase hex digits of the lanes `a` and `b`. */
function hex16(a: number, b: number): string {
  // As toString(16).padStart(8, "0") of each lane gives them (V8's toString with a radix costs
  // ten times this).
  return String.fromCharCode(
    hexDigit(a, 28),
    hexDigit(a, 24),
    hexDigit(a, 20),
    hexDigit(a, 16),
    hexDigit(a, 12),
    hexDigit(a, 8),
    hexDigit(a, 4),
    hexDigit(a, 0),
    hexDigit(b, 28),
    hexDigit(b, 24),
    hexDigit(b, 20),
    hexDigit(b, 16),
    hexDigit(b, 12),
    hexDigit(b, 8),
    hexDigit(b, 4),
    hexDigit(b, 0),
  );
}

/** The character code of the hex digit of `word` at bit `shift`. */
function hexDigit(word: number, shift: number): number {
  const d = (word >>> shift) & 15;
  return d < 10 ? 0x30 + d : 0x57 + d;
}

/** The two FNV-1a lanes of a digest, folded as the rendering goes (never built as one string). */
interface Lanes {
  a: number;
  b: number;
  /** The hash of long strings, or null: every string folded character by character. */
  readonly textHash: TextHash | null;
}

/** Fold `text` into both lanes: fnv1a over each lane. */
function fold(lanes: Lanes, text: string): void {
  lanes.a = fnv1a(lanes.a, text);
  lanes.b = fnv1a(lanes.b, text);
}

/** FNV-1a's 32-bit prime. */
const fnvPrime = 0x01000193;

/** Fold one UTF-16 code unit into both lanes (as `fold` of a one-character text). */
function foldCode(lanes: Lanes, c: number): void {
  lanes.a = Math.imul(lanes.a ^ c, fnvPrime);
  lanes.b = Math.imul(lanes.b ^ c, fnvPrime);
}

/**
 * Fold the canonical rendering of `value`: JSON with object keys sorted, and object members
 * whose value is undefined left out (inputs are plain data: strings, numbers, booleans, null,
 * arrays, objects). Piece by piece, which FNV-1a's fold makes equal to folding the whole text.
 */
function foldCanonical(lanes: Lanes, value: unknown): void {
  if (Array.isArray(value)) {
    foldCode(lanes, 0x5b);
    for (let i = 0; i < value.length; i++) {
      if (i > 0) foldCode(lanes, 0x2c);
      foldCanonical(lanes, value[i]);
    }
    foldCode(lanes, 0x5d);
  } else if (value !== null && typeof value === "object") {
    const record = value as Record<string, unknown>;
    let keys = Object.keys(record);
    // The usual command (`{_tag, key, value}`) has its keys in order already: no sorted copy.
    if (!inCanonicalOrder(record, keys))
      keys = keys.filter((k) => record[k] !== undefined).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    foldCode(lanes, 0x7b);
    for (let i = 0; i < keys.length; i++) {
      if (i > 0) foldCode(lanes, 0x2c);
      foldString(lanes, keys[i]!);
      foldCode(lanes, 0x3a);
      foldCanonical(lanes, record[keys[i]!]);
    }
    foldCode(lanes, 0x7d);
  } else if (typeof value === "string") foldString(lanes, value);
  else fold(lanes, JSON.stringify(value) ?? "null");
}

/** Whether `keys` (Object.keys of `record`) are in ascending order, none with an undefined value. */
function inCanonicalOrder(record: Record<string, unknown>, keys: readonly string[]): boolean {
  for (let i = 0; i < keys.length; i++) {
    if (record[keys[i]!] === undefined || (i > 0 && !(keys[i - 1]! < keys[i]!))) return false;
  }
  return true;
}

/**
 * Fold JSON.stringify(text): the text between quotes when JSON escapes none of its characters,
 * both lanes in one pass that also looks for such a character.
 */
function foldString(lanes: Lanes, text: string): void {
  if (lanes.textHash !== null && text.length >= longTextChars) return foldLongString(lanes, lanes.textHash, text);
  let a = Math.imul(lanes.a ^ 0x22, fnvPrime);
  let b = Math.imul(lanes.b ^ 0x22, fnvPrime);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    // Escaped by JSON: control characters, the quote, the backslash, and lone surrogates (any
    // surrogate takes the slow path here).
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) {
      fold(lanes, JSON.stringify(text));
      return;
    }
    a = Math.imul(a ^ c, fnvPrime);
    b = Math.imul(b ^ c, fnvPrime);
  }
  lanes.a = Math.imul(a ^ 0x22, fnvPrime);
  lanes.b = Math.imul(b ^ 0x22, fnvPrime);
}

/**
 * Fold a long string as its hash: U+0001, which the canonical rendering never holds unescaped,
 * then the two hash words in 16-bit halves (the UTF-8 length is not folded: the text's hash
 * covers it).
 */
function foldLongString(lanes: Lanes, textHash: TextHash, text: string): void {
  const [x, y] = textHash.hash(text);
  foldCode(lanes, 0x01);
  foldCode(lanes, x >>> 16);
  foldCode(lanes, x & 0xffff);
  foldCode(lanes, y >>> 16);
  foldCode(lanes, y & 0xffff);
}

/**
 * What the session table alone answers for `request`, or undefined when the request is new and
 * must be executed: a retry of the last request (same number, same command) gets its cached
 * output, the same number with another command is refused as reused, an older number as stale.
 * The leader's front door and execution both decide by it, so they never disagree.
 */
export function sessionAnswer<O>(
  session: Session<O> | undefined,
  seq: number,
  command: string,
): ServiceOutput<O> | undefined {
  if (session === undefined || seq > session.seq) return undefined;
  if (seq < session.seq) return { _tag: "stale", lastSeq: session.seq };
  if (command !== session.command) return { _tag: "reused", seq };
  return { _tag: "duplicate", output: session.output };
}

/** The service's state: the application's state, the session table and how many requests ran. */
export interface ServiceState<S, O> {
  readonly app: S;
  readonly sessions: PersistentMap<Session<O>>;
  /** Number of requests executed (duplicates and stale ones excluded). */
  readonly executed: number;
  /** The feature level's state once a level above 1 was chosen (`raiseFeatures`); absent: level 1. */
  readonly features?: Features | undefined;
}

/** The level every log starts at: sessions unbounded. */
export const featureLevelBase = 1;
/** The level that bounds the session table (`SessionBounds`) and refuses `expired`. */
export const featureLevelSessionsBounded = 2;
/**
 * The level at which the service opens sessions and names them ({@link openSession}): a request
 * whose session is not in the table is refused `expired` whatever its number, so that no session
 * is ever opened by a request (Ongaro's thesis, section 6.3: RegisterClient).
 */
export const featureLevelSessionsOpened = 3;
/**
 * The level from which execution holds every value the store would set to the value limit in bytes
 * of UTF-8 (spec/kv.ts `valueBytesMax`): a put, swap or append whose new value would be longer
 * changes nothing and answers `too-large` in bytes. Below it, execution bounds only the length in
 * code units (`valueLengthMax`), as every earlier version executed, and appends can build values of
 * up to 3 MiB of UTF-8. It includes the rules of level 3 (levels are cumulative).
 */
export const featureLevelValueBytes = 4;
/**
 * The highest feature level this version executes. A replica refuses to execute a log that raises
 * the level above it (impl/core/learner.ts): it would execute the slots after it by rules it does
 * not know.
 */
export const featureLevelMax = 4;

/** The bounds of the session table at level 2, chosen in the log with the level. */
export interface SessionBounds {
  /** At most this many sessions (a positive integer). */
  readonly sessionsMax: number;
  /**
   * At most this many bytes of saved outputs in all, as {@link outputBytes} counts them (a positive
   * integer). The newest session is kept even when its output alone is over.
   */
  readonly outputBytesMax: number;
}

/** The state of the rules above level 1: part of the replicated state, a function of the chosen log. */
export interface Features extends SessionBounds {
  /** The feature level in force, above 1. */
  readonly level: number;
  /**
   * The eviction order as a doubly linked list over client ids, one link per session, in ascending
   * `session.at`: moving a session to the end and evicting the first are each a few map updates,
   * whatever the gaps between places (a place a session left is never searched over).
   */
  readonly links: PersistentMap<OrderLink>;
  /** The least recent session (the lowest `at`), evicted first; absent when there is none. */
  readonly oldest?: string | undefined;
  /** The most recent session (the highest `at`); absent when there is none. */
  readonly newest?: string | undefined;
  /** Bytes of the saved outputs of every session ({@link outputBytes}). */
  readonly outputBytes: number;
  /** Sessions evicted so far (a running count since the level was raised). */
  readonly evicted: number;
  /**
   * At level 3, the sessions the service opened so far ({@link openSession}): the next one is
   * `openedSessionId(opened + 1)`, so no id is ever opened twice. Absent below level 3.
   */
  readonly opened?: number | undefined;
}

/** A session's neighbours in the eviction order: the next less recent and the next more recent. */
export interface OrderLink {
  readonly older?: string | undefined;
  readonly newer?: string | undefined;
}

/**
 * The size of a saved output, in bytes as the replicated state counts them: a string's UTF-16 code
 * units, 8 per other scalar, an object's keys and members, an array's items. A function of the
 * output alone, so that every replica counts alike.
 */
export function outputBytes(output: unknown): number {
  if (typeof output === "string") return output.length;
  if (typeof output !== "object" || output === null) return 8;
  let bytes = 0;
  if (Array.isArray(output)) {
    for (const item of output) bytes += outputBytes(item);
    return bytes;
  }
  const record = output as Record<string, unknown>;
  for (const key of Object.keys(record)) if (record[key] !== undefined) bytes += key.length + outputBytes(record[key]);
  return bytes;
}

/** The feature level `state` executes by. */
export function featureLevelOf<S, O>(state: ServiceState<S, O>): number {
  return state.features?.level ?? featureLevelBase;
}

/**
 * Why a raise to `level` with `bounds` is malformed, or null: the level must be an integer from 2 to
 * {@link featureLevelMax}, each bound a positive safe integer.
 */
export function featuresMisfit(level: number, bounds: SessionBounds): string | null {
  if (!Number.isSafeInteger(level) || level < featureLevelSessionsBounded || level > featureLevelMax)
    return `feature level ${level} is not one of ${featureLevelSessionsBounded}..${featureLevelMax}`;
  if (!Number.isSafeInteger(bounds.sessionsMax) || bounds.sessionsMax < 1)
    return `sessionsMax ${bounds.sessionsMax} is not a positive integer`;
  if (!Number.isSafeInteger(bounds.outputBytesMax) || bounds.outputBytesMax < 1)
    return `outputBytesMax ${bounds.outputBytesMax} is not a positive integer`;
  return null;
}

/**
 * Execute a raise of the feature level to `level` with `bounds` (a value chosen in the log). A level
 * below the one in force changes nothing (levels never go down); the same level sets the bounds
 * anew. At the first raise above 1 every session gets its place in the eviction order by client id
 * (level 1 kept no order), and the table is cut to the bounds at once, least recent first. The
 * caller checks `featuresMisfit` first: this throws on a malformed raise.
 */
export function raiseFeatures<S, O>(
  state: ServiceState<S, O>,
  level: number,
  bounds: SessionBounds,
): ServiceState<S, O> {
  const misfit = featuresMisfit(level, bounds);
  if (misfit !== null) throw new Error(`raiseFeatures: ${misfit}`);
  if (level < featureLevelOf(state)) return state;
  const { sessionsMax, outputBytesMax } = bounds;
  let table: Table<O>;
  if (state.features === undefined) {
    let sessions = state.sessions;
    const ids = sessionsOf(state).map(([clientId]) => clientId);
    const first = state.executed - ids.length + 1;
    let bytes = 0;
    ids.forEach((clientId, i) => {
      const session = pmGet(sessions, clientId)!;
      sessions = pmSet(sessions, clientId, { ...session, at: first + i });
      bytes += outputBytes(session.output);
    });
    const features: Features = { level, sessionsMax, outputBytesMax, ...orderOf(ids), outputBytes: bytes, evicted: 0 };
    table = { sessions, features: withOpened(features) };
  } else
    table = {
      sessions: state.sessions,
      features: withOpened({ ...state.features, level, sessionsMax, outputBytesMax }),
    };
  while (overBounds(table, 0)) table = evictOldest(table);
  return { ...state, sessions: table.sessions, features: table.features };
}

/** `features` with its count of opened sessions from level 3 on (0 at the raise to 3). */
function withOpened(features: Features): Features {
  if (features.level < featureLevelSessionsOpened || features.opened !== undefined) return features;
  return { ...features, opened: 0 };
}

/**
 * Execute an open-session command (feature level 3; Ongaro's thesis, section 6.3, RegisterClient):
 * open the session `openedSessionId(opened + 1)`, number 0, placed last in the eviction order as a
 * request executed now (it counts in `executed`, so its place is unique), evicting the least recent
 * sessions over the bounds as a request does. Its id is a function of the executed sequence, so
 * every replica opens the same id at the same slot, and no id is opened twice: a delayed or
 * duplicated copy of the command opens another session, never an old one. Below level 3 it opens
 * nothing and answers `expired` (a leader proposes it only once level 3 is executed, so a log
 * never holds one there; the rule only keeps execution total).
 */
export function openSession<S, O>(state: ServiceState<S, O>): Applied<ServiceState<S, O>, ServiceOutput<O>> {
  const features = state.features;
  if (features === undefined || features.level < featureLevelSessionsOpened || features.opened === undefined)
    return { state, output: { _tag: "expired" } };
  const opened = features.opened + 1;
  const clientId = openedSessionId(opened);
  const executed = state.executed + 1;
  // Number 0 and no output: every request of the session is above it, and nothing is answered from it.
  const fresh: Session<O> = { seq: 0, command: "", output: null as O, at: executed };
  const table = { sessions: state.sessions, features: { ...features, opened } };
  const placed = placeSession(table, clientId, undefined, fresh);
  return {
    state: { ...state, sessions: placed.sessions, executed, features: placed.features },
    output: { _tag: "opened", clientId },
  };
}

/** The session table with its feature state. */
interface Table<O> {
  readonly sessions: PersistentMap<Session<O>>;
  readonly features: Features;
}

/** Is `table` over its bounds, with more sessions than `kept`, the newest ones it must keep? */
function overBounds<O>(table: Table<O>, kept: number): boolean {
  const { sessions, features } = table;
  if (sessions.size <= kept) return false;
  return sessions.size > features.sessionsMax || features.outputBytes > features.outputBytesMax;
}

/** The eviction order of `ids`, least recent first. */
function orderOf(ids: readonly string[]): Pick<Features, "links" | "oldest" | "newest"> {
  let links = emptyPersistentMap<OrderLink>();
  ids.forEach((clientId, i) => {
    links = pmSet(links, clientId, { older: ids[i - 1], newer: ids[i + 1] });
  });
  return { links, oldest: ids[0], newest: ids[ids.length - 1] };
}

/** `features`' order without `clientId`, its neighbours linked to each other. */
function unlinked(features: Features, clientId: string): Features {
  const link = pmGet(features.links, clientId);
  if (link === undefined) return features;
  let links = pmRemove(features.links, clientId);
  const { older, newer } = link;
  if (older !== undefined) links = pmSet(links, older, { ...pmGet(links, older)!, newer });
  if (newer !== undefined) links = pmSet(links, newer, { ...pmGet(links, newer)!, older });
  return {
    ...features,
    links,
    oldest: features.oldest === clientId ? newer : features.oldest,
    newest: features.newest === clientId ? older : features.newest,
  };
}

/** `features`' order with `clientId` (not in it) appended as the most recent. */
function appended(features: Features, clientId: string): Features {
  const { newest } = features;
  let links = pmSet(features.links, clientId, { older: newest, newer: undefined });
  if (newest !== undefined) links = pmSet(links, newest, { ...pmGet(links, newest)!, newer: clientId });
  return { ...features, links, oldest: features.oldest ?? clientId, newest: clientId };
}

/** Evict the least recently executed session: the first of `features`' order, the lowest `at`. */
function evictOldest<O>(table: Table<O>): Table<O> {
  const { sessions, features } = table;
  const clientId = features.oldest!;
  const session = pmGet(sessions, clientId)!;
  const rest = unlinked(features, clientId);
  return {
    sessions: pmRemove(sessions, clientId),
    features: {
      ...rest,
      outputBytes: features.outputBytes - outputBytes(session.output),
      evicted: features.evicted + 1,
    },
  };
}

/**
 * The session table after `clientId` executed a request, at level 2: its session moves to the end
 * of the order (`session.at`, the count of executed requests), and while the table is over its
 * bounds the least recent session other than this one is evicted.
 */
function placeSession<O>(
  table: Table<O>,
  clientId: string,
  previous: Session<O> | undefined,
  session: Session<O>,
): Table<O> {
  let bytes = table.features.outputBytes + outputBytes(session.output);
  if (previous !== undefined) bytes -= outputBytes(previous.output);
  const features = appended(unlinked(table.features, clientId), clientId);
  let next: Table<O> = {
    sessions: pmSet(table.sessions, clientId, session),
    features: { ...features, outputBytes: bytes },
  };
  while (overBounds(next, 1)) next = evictOldest(next);
  return next;
}

/** The service over an application, as a state machine whose inputs are client requests. */
export interface Service<S, I, O> extends StateMachine<ServiceState<S, O>, Request<I>, ServiceOutput<O>> {
  apply(request: Request<I>, state: ServiceState<S, O>): Applied<ServiceState<S, O>, ServiceOutput<O>>;
  readonly app: Application<S, I, O>;
}

/** Build the service spec for `app`. */
export function serviceOf<S, I, O>(app: Application<S, I, O>): Service<S, I, O> {
  const start: ServiceState<S, O> = { app: app.start, sessions: emptyPersistentMap(), executed: 0 };
  const textHash = app.textHash ?? null;
  const apply = (request: Request<I>, state: ServiceState<S, O>): Applied<ServiceState<S, O>, ServiceOutput<O>> => {
    const command = commandDigest(request.input, textHash);
    const session = pmGet(state.sessions, request.clientId);
    const features = state.features;
    // Level 2: a request without a session opens one only as a first attempt numbered 1. Level 3:
    // never; only the service opens sessions (`openSession`), and one not in the table is gone. At
    // any level, an id of the service's form opens nothing: it is the service's to open.
    if (
      session === undefined &&
      ((features !== undefined &&
        (features.level >= featureLevelSessionsOpened || request.seq > 1 || request.retry === true)) ||
        openedNumber(request.clientId) !== null)
    )
      return { state, output: { _tag: "expired" } };
    // A retry is compared with its session's digest in that digest's format.
    const like =
      session !== undefined && request.seq === session.seq && digestFormat(session.command) !== digestFormat(command)
        ? commandDigestLike(session.command, request.input, textHash)
        : command;
    const answer = sessionAnswer(session, request.seq, like);
    if (answer !== undefined) return { state, output: answer };
    const applied = app.apply(request.input, state.app, featureLevelOf(state));
    const executed = state.executed + 1;
    const output: ServiceOutput<O> = { _tag: "executed", output: applied.output };
    if (features === undefined) {
      const sessions = pmSet(state.sessions, request.clientId, { seq: request.seq, command, output: applied.output });
      return { state: { app: applied.state, sessions, executed }, output };
    }
    const placed = placeSession({ sessions: state.sessions, features }, request.clientId, session, {
      seq: request.seq,
      command,
      output: applied.output,
      at: executed,
    });
    return { state: { app: applied.state, sessions: placed.sessions, executed, features: placed.features }, output };
  };
  return {
    name: `service(${app.name})`,
    start,
    app,
    apply,
    transition: (request, state) => apply(request, state).state,
    output: (request, state) => apply(request, state).output,
  };
}

/** The session of `clientId`, if any. */
export function sessionOf<S, O>(state: ServiceState<S, O>, clientId: string): Session<O> | undefined {
  return pmGet(state.sessions, clientId);
}

/** Every session, sorted by client id. */
export function sessionsOf<S, O>(state: ServiceState<S, O>): [string, Session<O>][] {
  const out: [string, Session<O>][] = [];
  pmForEach(state.sessions, (clientId, session) => out.push([clientId, session]));
  return out.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The state with `clientId`'s session set to `session` (for executions outside `apply`). */
export function withSession<S, O>(
  sessions: ServiceState<S, O>["sessions"],
  clientId: string,
  session: Session<O>,
): ServiceState<S, O>["sessions"] {
  return pmSet(sessions, clientId, session);
}

/**
 * The feature state of a table restored from a snapshot taken at `level` (above 1) with `bounds`:
 * the order and the output bytes rebuilt from the sessions. A message naming what is wrong when a
 * session has no place, shares one or has one above `executed`, or the table exceeds its bounds.
 */
export function restoredFeatures<O>(
  sessions: PersistentMap<Session<O>>,
  level: number,
  bounds: SessionBounds,
  evicted: number,
  executed: number,
  opened?: number,
): Features | string {
  const misfit = featuresMisfit(level, bounds);
  if (misfit !== null) return misfit;
  if (!Number.isSafeInteger(evicted) || evicted < 0) return `evicted ${evicted} is not a count`;
  if (level >= featureLevelSessionsOpened && (opened === undefined || !Number.isSafeInteger(opened) || opened < 0))
    return `feature level ${level} needs a count of opened sessions, not ${opened}`;
  if (level < featureLevelSessionsOpened && opened !== undefined)
    return `feature level ${level} opens no sessions, yet ${opened} are counted`;
  if (sessions.size > bounds.sessionsMax) return `${sessions.size} sessions exceed the bound of ${bounds.sessionsMax}`;
  const places = new Map<number, string>();
  let bytes = 0;
  let wrong: string | null = null;
  pmForEach(sessions, (clientId, session) => {
    const at = session.at;
    bytes += outputBytes(session.output);
    if (at === undefined || !Number.isSafeInteger(at))
      wrong ??= `client ${clientId}'s session has no place in the order`;
    else if (at > executed) wrong ??= `client ${clientId}'s place ${at} is above the ${executed} requests executed`;
    else if (places.has(at)) wrong ??= `two sessions share place ${at} in the order`;
    else places.set(at, clientId);
    const n = openedNumber(clientId);
    if (n !== null && (opened === undefined || n > opened))
      wrong ??= `session ${clientId} was never opened (${opened ?? 0} opened)`;
    if (session.seq === 0 && n === null)
      wrong ??= `client ${clientId}'s session has number 0 but was not opened by the service`;
  });
  if (wrong !== null) return wrong;
  const ids = [...places.entries()].sort(([a], [b]) => a - b).map(([, clientId]) => clientId);
  if (bytes > bounds.outputBytesMax && sessions.size > 1)
    return `${bytes} bytes of saved outputs exceed the bound of ${bounds.outputBytesMax}`;
  const features: Features = { level, ...bounds, ...orderOf(ids), outputBytes: bytes, evicted };
  return opened === undefined ? features : { ...features, opened };
}

/** The number n of an {@link OpenedSessionId} `session <n>`, or null for any other id. */
export function openedNumber(clientId: string): number | null {
  const match = /^session ([1-9][0-9]{0,15})$/.exec(clientId);
  return match === null ? null : Number(match[1]);
}

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
import { emptyPersistentMap, pmForEach, pmGet, pmSet, type PersistentMap } from "./persistent-map.ts";
import type { Application, Applied, StateMachine } from "./state-machine.ts";

/** A client's identity: a non-empty printable string of at most 128 characters. */
export const ClientId = Schema.String.pipe(
  Schema.minLength(1),
  Schema.maxLength(128),
  Schema.pattern(/^[\x21-\x7e]+$/),
);
/** A client's request number: a positive safe integer. */
export const Seq = Schema.Int.pipe(Schema.positive(), Schema.lessThanOrEqualTo(Number.MAX_SAFE_INTEGER));

/** A request as the service sees it. */
export interface Request<I> {
  readonly clientId: string;
  readonly seq: number;
  readonly input: I;
}

/**
 * What one client's session remembers: its last executed request's number, the digest of that
 * request's command (`commandDigest`), and its output.
 */
export interface Session<O> {
  readonly seq: number;
  readonly command: string;
  readonly output: O;
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
  | { readonly _tag: "stale"; readonly lastSeq: number };

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
    // A retry is compared with its session's digest in that digest's format.
    const like =
      session !== undefined && request.seq === session.seq && digestFormat(session.command) !== digestFormat(command)
        ? commandDigestLike(session.command, request.input, textHash)
        : command;
    const answer = sessionAnswer(session, request.seq, like);
    if (answer !== undefined) return { state, output: answer };
    const applied = app.apply(request.input, state.app);
    const sessions = pmSet(state.sessions, request.clientId, { seq: request.seq, command, output: applied.output });
    return {
      state: { app: applied.state, sessions, executed: state.executed + 1 },
      output: { _tag: "executed", output: applied.output },
    };
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

/**
 * The hash of long texts the replicas pass to the key-value store and the service (spec/hash.ts
 * `TextHash`): SHA-256 from node:crypto, its first 64 bits, over the text's UTF-8. A 1 MiB value
 * costs about 0.8 ms of CPU this way against 4 to 6 ms for the specs' own FNV-1a lanes in
 * JavaScript, and a put hashes its value twice (the command's digest and the store's entry), so
 * the last text hashed is remembered and the second costs nothing.
 *
 * Its name, `sha256`, is the digest format of every digest made with it (docs/operations.md,
 * "Upgrading"). Every replica of a cluster must pass the same hash: their digests are compared.
 */
import { hash } from "node:crypto";
import { longTextChars, type TextHash, type TextHashed } from "../../spec/hash.ts";

/** ES2024's `String.prototype.isWellFormed` (Node 20 has it; the project's lib is ES2023). */
interface WellFormed {
  isWellFormed(): boolean;
}

let lastText: string | null = null;
let lastHashed: TextHashed = [0, 0, 0];

/**
 * Texts hashed from the UTF-8 bytes they were made from, oldest first (see {@link hashFromUtf8}).
 * Each holds its text until a text equal to it is hashed (the one hashed last included), it is
 * pushed out (at most {@link fromUtf8Max} of them, the values of a burst on their way from a request
 * body or an Accept to being executed), or it is older than {@link fromUtf8AgeMsMax}.
 */
const fromUtf8: { readonly text: string; readonly hashed: TextHashed; readonly at: number }[] = [];
const fromUtf8Max = 16;

/**
 * How long an entry of the list may wait for its value's execution, in milliseconds. A follower
 * decodes every copy of an Accept it receives (a resend, after a timeout, of one whose first copy
 * was merely slow) and executes the value once: the other copies' entries were never taken, and
 * after bursts of 16 distinct 1 MiB values each follower held 12 to 13 of them, 12 to 13 MB of
 * values it no longer had (docs/performance.md, "The replica before the burst"). A value executed
 * later than this is hashed from its text, at the cost of a UTF-8 copy; the hash is the same.
 */
export const fromUtf8AgeMsMax = 2000;

/** The timer that drops entries past {@link fromUtf8AgeMsMax}, while the list holds any. */
let sweep: ReturnType<typeof setTimeout> | null = null;

function dropStale(now: number): void {
  while (fromUtf8.length > 0 && now - fromUtf8[0]!.at > fromUtf8AgeMsMax) fromUtf8.shift();
}

function sweepLater(): void {
  if (sweep !== null) return;
  sweep = setTimeout(() => {
    sweep = null;
    dropStale(performance.now());
    if (fromUtf8.length > 0) sweepLater();
  }, fromUtf8AgeMsMax + 1);
  sweep.unref();
}

/** The shortest UTF-8 worth hashing ahead: below it the copy saved is cheap and the list holds more. */
export const fromUtf8BytesMin = 64 * 1024;

/**
 * SHA-256 of `text`'s UTF-8. A text with a lone surrogate (not well formed) is hashed as its
 * UTF-16 code units after a marker byte, since UTF-8 would write every lone surrogate as the same
 * U+FFFD; its UTF-8 length counts each lone surrogate as 3 bytes, as `Buffer.byteLength` does.
 */
function sha256Hashed(text: string): TextHashed {
  const bytes = Buffer.byteLength(text, "utf8");
  const digest = (text as unknown as WellFormed).isWellFormed()
    ? hash("sha256", text, "buffer")
    : hash("sha256", Buffer.concat([Buffer.of(0xff), Buffer.from(text, "utf16le")]), "buffer");
  return [digest.readUInt32BE(0), digest.readUInt32BE(4), bytes];
}

/**
 * Hash `text` now from `utf8`, the bytes it was decoded from, for the next `sha256TextHash.hash` of
 * it. Hashing the text later costs a UTF-8 copy of it into fresh pages (0.6 ms of the 1.6 per MiB
 * in a replica's environment); the bytes are at hand only now, before their buffer is given back.
 * `utf8` must be well-formed UTF-8 and `text` exactly its decoding: then the text is well formed
 * and its UTF-8 is `utf8` itself, so the hash is what {@link sha256Hashed} gives.
 */
export function hashFromUtf8(text: string, utf8: Uint8Array): void {
  if (utf8.length < fromUtf8BytesMin || text.length < longTextChars) return;
  const now = performance.now();
  dropStale(now);
  // Another copy of a value on the list (a resent Accept) adds nothing: its execution takes one.
  if (indexFromUtf8(text) >= 0) return;
  const digest = hash("sha256", utf8, "buffer");
  fromUtf8.push({ text, hashed: [digest.readUInt32BE(0), digest.readUInt32BE(4), utf8.length], at: now });
  if (fromUtf8.length > fromUtf8Max) fromUtf8.shift();
  sweepLater();
}

/** The index on the list of a text equal to `text`, or -1. */
function indexFromUtf8(text: string): number {
  const last = text.length - 1;
  for (let i = 0; i < fromUtf8.length; i++) {
    const known = fromUtf8[i]!.text;
    // Lengths, then two characters, before comparing whole texts (each compare may read them all).
    if (known.length !== text.length || known.charCodeAt(last) !== text.charCodeAt(last)) continue;
    if (known.charCodeAt(last >>> 1) !== text.charCodeAt(last >>> 1) || known !== text) continue;
    return i;
  }
  return -1;
}

/** The hash {@link hashFromUtf8} took of a text equal to `text`, taken off the list; undefined if none. */
function takeFromUtf8(text: string): TextHashed | undefined {
  const i = indexFromUtf8(text);
  return i < 0 ? undefined : fromUtf8.splice(i, 1)[0]!.hashed;
}

/** The `TextHash` of the replicas: SHA-256, format `sha256`. */
export const sha256TextHash: TextHash = {
  name: "sha256",
  hash: (text) => {
    // An entry of the list first, even for the text hashed last: a text whose hash came from
    // `lastText` left its entry on the list, and a workload that writes one value over and over
    // kept 16 of them (16 MiB of 1 MiB values) there for good. Then the same string object (or an
    // equal one: compared by content only when the lengths match).
    const taken = text.length >= longTextChars && fromUtf8.length > 0 ? takeFromUtf8(text) : undefined;
    if (taken === undefined && text === lastText) return lastHashed;
    const hashed = taken ?? sha256Hashed(text);
    lastText = text;
    lastHashed = hashed;
    return hashed;
  },
};

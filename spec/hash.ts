/**
 * Small non-cryptographic hashes shared by the specs: FNV-1a over UTF-16 code units and
 * murmur3's 32-bit finalizer (fmix32), which spreads nearby inputs apart. They key the
 * persistent map and make the store's digest; they detect accidents, not adversaries.
 */

/** FNV-1a's 32-bit offset basis. */
export const fnvOffsetBasis = 0x811c9dc5;

/** Fold `text` into the FNV-1a state `h` (start from `fnvOffsetBasis` or another basis). */
export function fnv1a(h: number, text: string): number {
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h;
}

/** One murmur3 round: fold the 32-bit word `k` into the state `h`. */
export function murmurRound(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** murmur3's 32-bit finalizer: an avalanche, so that every input bit moves every output bit. */
export function fmix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * A hash of long texts passed in by whoever runs the specs: the runtime passes node:crypto's
 * SHA-256 (about a sixth of the CPU of the FNV-1a lanes over a 1 MiB value), the simulation the
 * pure {@link fnvTextHash} or none at all. Digests made with one name a *digest format* by it
 * (`name/` in front of the digest, {@link digestFormat}); a digest made with none has no name
 * (the format every version before this one wrote). Replicas compare digests only within one
 * format, and a digest of a format no longer in use is checked by computing it again in that
 * format.
 */
export interface TextHash {
  /** The digest format's name: lowercase letters and digits, never empty. */
  readonly name: string;
  /**
   * Two 32-bit words of `text`'s hash and its length in bytes of UTF-8, a lone surrogate counted
   * as 3 (what `utf8Length` in spec/kv.ts counts). Equal texts must give equal words; distinct
   * texts should give distinct ones (lone surrogates included).
   */
  readonly hash: (text: string) => TextHashed;
}

/** What {@link TextHash} gives for a text: two 32-bit words of its hash, and its UTF-8 length. */
export type TextHashed = readonly [number, number, number];

/**
 * Texts at least this long (UTF-16 code units) are hashed by the {@link TextHash} passed in,
 * shorter ones by the specs' own FNV-1a lanes: a call into node:crypto costs more than the lanes
 * over a short text.
 */
export const longTextChars = 1024;

/**
 * The format named at the front of `digest` (`name/...`), or "" for a digest that names none
 * (the digests made without a {@link TextHash}).
 */
export function digestFormat(digest: string): string {
  const slash = digest.indexOf("/");
  return slash > 0 && /^[a-z0-9]+$/.test(digest.slice(0, slash)) ? digest.slice(0, slash) : "";
}

/** `text` with the format of `hash` named in front of it (as is without one). */
export function inFormat(hash: TextHash | null, text: string): string {
  return hash === null ? text : `${hash.name}/${text}`;
}

/**
 * A pure {@link TextHash}: two FNV-1a lanes over the UTF-16 code units, finished with fmix32
 * (the specs' own hash, as a digest format of its own). For simulations that run the code paths
 * of a passed-in hash without node:crypto.
 */
export const fnvTextHash: TextHash = {
  name: "fnv",
  hash: (text) => fnvLanesOver(fnvOffsetBasis, 0x050c5d1f, text),
};

/**
 * Two FNV-1a lanes, started at `a` and `b`, run over `text`'s UTF-16 code units, then mixed, with
 * the text's length in bytes of UTF-8: the pure hash of long texts above, and the store's entry
 * hash of a short value (spec/kv.ts, its lanes started from the key's).
 */
export function fnvLanesOver(a: number, b: number, text: string): TextHashed {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193);
    if (c >= 0x80) bytes += utf8ExtraBytes(text, i, c);
  }
  return [fmix32(a), fmix32(b), bytes];
}

/**
 * The bytes of UTF-8 that the code unit `c` (at least U+0080) at index `i` of `text` takes beyond
 * one: 1 below U+0800; 2 for the high half of a surrogate pair and 0 for its low half (4 bytes for
 * the pair); and 2 for anything else, a lone surrogate included, since a UTF-8 encoder writes a lone
 * surrogate as U+FFFD (3 bytes) and WTF-8 stores it in 3 bytes (`Buffer.byteLength` counts it so
 * too). ASCII, one byte, never gets here: a loop over a value pays one comparison per character.
 */
export function utf8ExtraBytes(text: string, i: number, c: number): number {
  if (c < 0x800) return 1;
  if ((c & 0xfc00) === 0xdc00 && i > 0 && (text.charCodeAt(i - 1) & 0xfc00) === 0xd800) return 0;
  return 2;
}

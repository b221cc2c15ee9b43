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

/**
 * Compact state encodings, shared by the specs whose state spaces are explored exhaustively:
 * a state is one Uint16Array (small fields plus bitsets over finite universes such as the set
 * of all Paxos messages), its canonical key is the same 16-bit words read as a string, and
 * sets are bits. Internal to spec/: the specs wrap these in named TLA+ operators.
 *
 * The helpers are methods of a base class rather than exported functions because they sit
 * on the explorer's hot path, and a method call stays cheap where a call through a
 * transpiled module binding (a getter, under tsx) costs several times more.
 *
 * States are immutable once built: every action copies before it writes.
 */

/** A compact state: 16-bit words. Never mutated after construction. */
export type Words = Uint16Array;

/** Number of 16-bit words needed for `bits` bits. */
export function wordsFor(bits: number): number {
  return (bits + 15) >>> 4;
}

/** Number of set bits of a 32-bit number. */
export function popcount(x: number): number {
  let n = 0;
  for (let y = x; y !== 0; y &= y - 1) n++;
  return n;
}

/** Bit operations on compact states, inherited by the specs that use them. */
export abstract class CompactStates {
  /** Is bit `i` of the bitset starting at word `offset` set? */
  protected hasBit(words: Words, offset: number, i: number): boolean {
    return ((words[offset + (i >>> 4)]! >>> (i & 15)) & 1) === 1;
  }

  /** Set bit `i` of the bitset starting at word `offset` (only on a fresh copy). */
  protected setBit(words: Words, offset: number, i: number): void {
    words[offset + (i >>> 4)] = words[offset + (i >>> 4)]! | (1 << (i & 15));
  }

  /**
   * Bits start..start+len-1 of the bitset starting at word `offset`, as a number whose bit j
   * is bit start+j (len <= 31). Reads past the end count as zero.
   */
  protected bitField(words: Words, offset: number, start: number, len: number): number {
    const w = offset + (start >>> 4);
    const shift = start & 15;
    const lo = (words[w] ?? 0) | ((words[w + 1] ?? 0) << 16);
    const hi = words[w + 2] ?? 0;
    const x = shift === 0 ? lo : (lo >>> shift) | (hi << (32 - shift));
    return x & ((1 << len) - 1);
  }

  /** The canonical key of a compact state: its words as UTF-16 code units. */
  key(words: Words): string {
    return String.fromCharCode.apply(null, words as unknown as number[]);
  }
}

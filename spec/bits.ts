/**
 * Compact state encodings, shared by the specs whose state spaces are explored exhaustively:
 * a state is one Uint16Array (small fields plus bitsets over finite universes such as the set
 * of all Paxos messages), its canonical key is the same 16-bit words read as a string, and
 * sets are bits. Internal to spec/: the specs wrap these in named operators.
 *
 * States are immutable once built: every action copies before it writes.
 */

/** A compact state: 16-bit words. Never mutated after construction. */
export type Words = Uint16Array;

/** Is bit `i` of the bitset starting at word `offset` set? */
export function hasBit(words: Words, offset: number, i: number): boolean {
  return ((words[offset + (i >>> 4)]! >>> (i & 15)) & 1) === 1;
}

/** Set bit `i` of the bitset starting at word `offset` (only on a fresh copy). */
export function setBit(words: Words, offset: number, i: number): void {
  words[offset + (i >>> 4)] = words[offset + (i >>> 4)]! | (1 << (i & 15));
}

/** Number of 16-bit words needed for `bits` bits. */
export function wordsFor(bits: number): number {
  return (bits + 15) >>> 4;
}

/** The canonical key of a compact state: its words as UTF-16 code units. */
export function wordsKey(words: Words): string {
  return String.fromCharCode.apply(null, words as unknown as number[]);
}

/**
 * Large buffers whose memory is given back as soon as they are used up, not at V8's next full
 * collection.
 *
 * A Buffer's bytes live outside V8's heap and are freed when its ArrayBuffer object is collected.
 * A buffer that lives through two scavenges (a 1 MiB request body arriving over many loop turns,
 * an Accept frame waiting in a socket's queue) is promoted, and then only a full collection frees
 * it: V8 starts one when external memory has grown by 64 MB since the last, so in a burst of
 * 1 MiB writes the leader held tens of megabytes of used-up bodies and frames, and glibc kept the
 * pages. Moving the bytes into a fresh ArrayBuffer (`structuredClone` with a transfer list: no
 * copy) that nothing references lets the next scavenge free them; the buffer given is detached
 * (length 0) from then on.
 *
 * Only a buffer made by {@link releasableBuffer} is released: one that owns its ArrayBuffer whole,
 * which no other view (Node's 8 KiB pool, a socket's read buffer) shares.
 */

/** Buffers made to be released, by their ArrayBuffer. */
const releasable = new WeakSet<ArrayBuffer>();

/** The smallest buffer worth releasing early, in bytes: a smaller one is cheap garbage. */
export const releaseBytesMin = 64 * 1024;

/**
 * A Buffer of `bytes` that {@link release} may free early: one with an ArrayBuffer of its own when
 * it is at least {@link releaseBytesMin}, else an ordinary `Buffer.allocUnsafe` (pooled when small).
 */
export function releasableBuffer(bytes: number): Buffer {
  if (bytes < releaseBytesMin) return Buffer.allocUnsafe(bytes);
  const buffer = Buffer.allocUnsafeSlow(bytes);
  releasable.add(buffer.buffer);
  return buffer;
}

/**
 * Mark `buffer` (which must own its ArrayBuffer whole, as `Buffer.allocUnsafe` of 4 KiB or more
 * gives) as one {@link release} may free; a buffer that shares its memory is left alone.
 */
export function markReleasable(buffer: Buffer): void {
  const memory = buffer.buffer as ArrayBuffer;
  if (buffer.length < releaseBytesMin || buffer.byteOffset !== 0 || memory.byteLength !== buffer.length) return;
  releasable.add(memory);
}

/**
 * Free the memory of `buffer` at the next scavenge, if {@link releasableBuffer} or
 * {@link markReleasable} made it so; `buffer` (and every view of its memory) is empty from now on.
 * The caller must hold no other use of it: a socket write still pending, a string not yet copied out.
 */
export function release(buffer: Uint8Array): void {
  const memory = buffer.buffer as ArrayBuffer;
  if (!releasable.has(memory) || memory.byteLength === 0) return;
  releasable.delete(memory);
  structuredClone(memory, { transfer: [memory] });
}

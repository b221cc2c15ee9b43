import { MessageChannel, type MessagePort } from "node:worker_threads";

/**
 * Large buffers whose memory is given back as soon as they are used up, not at V8's next full
 * collection.
 *
 * A Buffer's bytes live outside V8's heap and are freed when its ArrayBuffer object is collected.
 * A buffer that lives through two scavenges (a 1 MiB request body arriving over many loop turns,
 * an Accept frame waiting in a socket's queue) is promoted, and then only a full collection frees
 * it: V8 starts one when external memory has grown by 64 MB since the last, so in a burst of
 * 1 MiB writes the leader held tens of megabytes of used-up bodies and frames, and glibc kept the
 * pages. A used-up buffer is posted, transferred, to a closed MessagePort: Node.js serializes the
 * message (the ArrayBuffer is detached, its memory moved into the message) and, the port being
 * closed, drops it there and then, which frees the memory at once. (Moved into a fresh
 * ArrayBuffer by a structured clone instead, it waited for the next scavenge, which a burst of
 * 1 MiB values, allocated outside the young generation, makes seldom: a leader held 20 to 35 MB of
 * such released bodies and Accept frames at its peak; docs/performance.md.) The buffer given is
 * detached (length 0) from then on.
 *
 * Only a buffer made by {@link releasableBuffer} is released: one that owns its ArrayBuffer whole,
 * which no other view (Node's 8 KiB pool, a socket's read buffer) shares.
 */

/** Buffers made to be released, by their ArrayBuffer. */
const releasable = new WeakSet<ArrayBuffer>();

/** A closed port: what is posted to it is dropped as soon as it is serialized (see the file's comment). */
const sink = ((): MessagePort => {
  const { port1, port2 } = new MessageChannel();
  port1.close();
  port2.close();
  return port1;
})();

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
 * Free the memory of `buffer` now, if {@link releasableBuffer} or
 * {@link markReleasable} made it so; `buffer` (and every view of its memory) is empty from now on.
 * The caller must hold no other use of it: a socket write still pending, a string not yet copied out.
 */
export function release(buffer: Uint8Array): void {
  const memory = buffer.buffer as ArrayBuffer;
  if (!releasable.has(memory) || memory.byteLength === 0) return;
  releasable.delete(memory);
  sink.postMessage(memory, [memory]);
}

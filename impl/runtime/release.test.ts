import { describe, expect, it } from "vitest";
import { markReleasable, release, releasableBuffer, releaseBytesMin } from "./release.ts";

describe("release", () => {
  it("empties a releasable buffer at once, and every view of its memory", () => {
    const buffer = releasableBuffer(releaseBytesMin).fill(7);
    const view = buffer.subarray(10, 20);
    expect(buffer.length).toBe(releaseBytesMin);
    release(buffer);
    expect(buffer.length).toBe(0);
    expect(view.length).toBe(0);
    // Released once: a second call is harmless.
    release(buffer);
  });

  it("gives the memory back at once, with no collection in between", () => {
    const buffers = Array.from({ length: 8 }, () => releasableBuffer(1024 * 1024).fill(1));
    const before = process.memoryUsage().arrayBuffers;
    for (const buffer of buffers) release(buffer);
    // Moved into fresh ArrayBuffers instead, the 8 MiB stayed until the next scavenge.
    expect(before - process.memoryUsage().arrayBuffers).toBeGreaterThanOrEqual(8 * 1024 * 1024);
    expect(buffers.every((b) => b.length === 0)).toBe(true);
  });

  it("leaves alone a buffer it was not told it may free: a small one, a shared one, an unmarked one", () => {
    const small = releasableBuffer(100).fill(1);
    release(small);
    expect(small.length).toBe(100);
    const unmarked = Buffer.allocUnsafeSlow(releaseBytesMin);
    release(unmarked);
    expect(unmarked.length).toBe(releaseBytesMin);
    // A view of part of a larger buffer shares its memory with the rest: never marked.
    const whole = Buffer.allocUnsafeSlow(2 * releaseBytesMin);
    const part = whole.subarray(0, releaseBytesMin);
    markReleasable(part);
    release(part);
    expect(part.length).toBe(releaseBytesMin);
    expect(whole.length).toBe(2 * releaseBytesMin);
  });

  it("frees a buffer marked after the fact when it owns its memory", () => {
    const joined = Buffer.concat([Buffer.alloc(releaseBytesMin, 1), Buffer.alloc(10, 2)]);
    markReleasable(joined);
    release(joined);
    expect(joined.length).toBe(0);
  });
});

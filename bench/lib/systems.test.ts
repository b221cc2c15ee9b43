/** The /proc readings the benches report memory from: a process's resident set and its parts. */
import { describe, expect, it } from "vitest";
import { rssBytes, rssParts } from "./systems.ts";

describe("rssParts", () => {
  it("splits this process's resident set into anonymous and file-backed pages that add up to it", () => {
    const parts = rssParts(process.pid);
    const rss = rssBytes(process.pid);
    expect(parts).not.toBeNull();
    expect(rss).not.toBeNull();
    // Node's heap is anonymous, its binary's pages file-backed: neither part is empty.
    expect(parts!.anon).toBeGreaterThan(8 * 2 ** 20);
    expect(parts!.file).toBeGreaterThan(8 * 2 ** 20);
    // Read a moment apart: within a few MiB of each other.
    expect(Math.abs(parts!.anon + parts!.file - rss!)).toBeLessThan(4 * 2 ** 20);
  });

  it("is null for no process, or one that is gone", () => {
    expect(rssParts(null)).toBeNull();
    expect(rssParts(2 ** 22 + 12345)).toBeNull();
  });
});

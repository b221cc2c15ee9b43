/**
 * The replicas' hash of long values (text-hash.ts): SHA-256 of the UTF-8, lone surrogates kept
 * apart, the UTF-8 length as the value limit counts it; and a store of the digest format before
 * it (a snapshot whose digest names no format) still verifies under it, a corrupted value caught.
 */
import { describe, expect, it, vi } from "vitest";
import { hash } from "node:crypto";
import { kv, utf8Length } from "../../spec/kv.ts";
import { parseConfig } from "../core/config.ts";
import { contentDigestOf, makeSnapshot, readSnapshot, verifySnapshot } from "../core/snapshot.ts";
import { makeContext } from "../core/state.ts";
import { kvMessageBinary, kvMessageReceived, kvReplicated } from "./core-adapter.ts";
import { fromUtf8AgeMsMax, hashFromUtf8, sha256TextHash } from "./text-hash.ts";

describe("sha256TextHash", () => {
  it("gives SHA-256's first 64 bits and the UTF-8 length", () => {
    const text = `${"a".repeat(2000)}é✓😀`;
    const digest = hash("sha256", text, "buffer");
    expect(sha256TextHash.hash(text)).toEqual([digest.readUInt32BE(0), digest.readUInt32BE(4), utf8Length(text)]);
  });

  it("tells lone surrogates apart, and counts each as 3 bytes", () => {
    const a = `${"a".repeat(2000)}\ud800`;
    const b = `${"a".repeat(2000)}\ud801`;
    expect(sha256TextHash.hash(a).slice(0, 2)).not.toEqual(sha256TextHash.hash(b).slice(0, 2));
    expect(sha256TextHash.hash(a)[2]).toBe(utf8Length(a));
  });

  it("remembers only the very text it was given last", () => {
    const a = "x".repeat(4096);
    const b = `${"x".repeat(4095)}y`;
    const first = sha256TextHash.hash(a);
    expect(sha256TextHash.hash(b)).not.toEqual(first);
    expect(sha256TextHash.hash(a)).toEqual(first);
  });
});

describe("hashFromUtf8", () => {
  /** A text of `bytes` bytes of UTF-8, starting with `tag`, made afresh (no string shared with another call). */
  const textOf = (tag: string, bytes: number): string => Buffer.from(`${tag}:`.padEnd(bytes, "abc€")).toString("utf8");
  const sha = (bytes: Uint8Array) => {
    const digest = hash("sha256", bytes, "buffer");
    return [digest.readUInt32BE(0), digest.readUInt32BE(4), bytes.length];
  };

  it("gives the hash of the text for an equal text made later, from the bytes it came from", () => {
    for (const tag of ["ascii", "é✓😀"]) {
      const utf8 = Buffer.from(textOf(tag, 100_000));
      hashFromUtf8(utf8.toString("utf8"), utf8);
      const later = textOf(tag, 100_000);
      expect(sha256TextHash.hash(later)).toEqual(sha(Buffer.from(later)));
    }
  });

  it("is what a later hash of that text takes, and only of that text; it keeps 16 at most", () => {
    // Bytes that are not the text's break the contract on purpose: the hash shows which way it went.
    const stand = (i: number) => Buffer.alloc(70_000, i);
    const texts = Array.from({ length: 18 }, (_, i) => textOf(`t${String(i).padStart(2, "0")}`, 70_000));
    texts.forEach((text, i) => hashFromUtf8(text, stand(i)));
    // The first two were pushed out; the others are taken from the list, equal texts by content.
    expect(sha256TextHash.hash(textOf("t00", 70_000))).toEqual(sha(Buffer.from(texts[0]!)));
    expect(sha256TextHash.hash(textOf("t01", 70_000))).toEqual(sha(Buffer.from(texts[1]!)));
    for (let i = 2; i < 18; i++)
      expect(sha256TextHash.hash(textOf(`t${String(i).padStart(2, "0")}`, 70_000))).toEqual(sha(stand(i)));
    // Taken once: the next equal text (once another was hashed last) is hashed from its UTF-8.
    sha256TextHash.hash(texts[0]!);
    expect(sha256TextHash.hash(textOf("t05", 70_000))).toEqual(sha(Buffer.from(texts[5]!)));
    // A text of the same length, ends and middle, differing elsewhere, is not taken for another.
    const a = "m".repeat(70_000);
    const b = `${"m".repeat(20_000)}n${"m".repeat(49_999)}`;
    hashFromUtf8(a, stand(1));
    expect(sha256TextHash.hash(b)).toEqual(sha(Buffer.from(b)));
    sha256TextHash.hash(a);
  });

  it("is taken for the text hashed last too, so that a value written over and over leaves no entry", () => {
    const stand = Buffer.alloc(70_000, 7);
    const text = textOf("again", 70_000);
    const hashed = sha256TextHash.hash(text);
    expect(hashed).toEqual(sha(Buffer.from(text)));
    // An equal value arrives again (a second put of it): its entry goes at the next hash of the value.
    hashFromUtf8(textOf("again", 70_000), stand);
    expect(sha256TextHash.hash(text)).toEqual(sha(stand));
    expect(sha256TextHash.hash(textOf("again", 70_000))).toEqual(sha(stand));
    sha256TextHash.hash(textOf("other", 70_000));
    expect(sha256TextHash.hash(text)).toEqual(hashed);
  });

  it("keeps one entry for the copies of a value (a resent Accept decoded again)", () => {
    const text = textOf("copy", 70_000);
    hashFromUtf8(text, Buffer.alloc(70_000, 1));
    hashFromUtf8(textOf("copy", 70_000), Buffer.alloc(70_000, 2));
    expect(sha256TextHash.hash(textOf("copy", 70_000))).toEqual(sha(Buffer.alloc(70_000, 1)));
    // The value's execution took the one entry: none is left for a later hash of an equal text.
    sha256TextHash.hash(textOf("other", 70_000));
    expect(sha256TextHash.hash(textOf("copy", 70_000))).toEqual(sha(Buffer.from(text)));
  });

  it("drops an entry not taken within fromUtf8AgeMsMax", () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
    try {
      const text = textOf("late", 70_000);
      hashFromUtf8(text, Buffer.alloc(70_000, 3));
      vi.advanceTimersByTime(fromUtf8AgeMsMax + 10);
      // The next value's arrival (or the sweep's timer) drops it: the late execution hashes its text.
      hashFromUtf8(textOf("next", 70_000), Buffer.alloc(70_000, 4));
      expect(sha256TextHash.hash(textOf("late", 70_000))).toEqual(sha(Buffer.from(text)));
      expect(sha256TextHash.hash(textOf("next", 70_000))).toEqual(sha(Buffer.alloc(70_000, 4)));
    } finally {
      vi.useRealTimers();
    }
  });

  it("is told each long string of a received peer message, with its bytes", () => {
    const value = textOf("v€", 80_000);
    const accept = kvMessageBinary.encode({
      _tag: "Accept",
      ballot: { round: 1, replica: 1 },
      slot: 1,
      value: { _tag: "batch", commands: [{ clientId: "c", seq: 1, input: { _tag: "put", key: "k", value } }] },
      commitIndex: 0,
      sentAt: 0,
    });
    const seen: [string, Buffer][] = [];
    kvMessageBinary.decode(accept, 0, (text, utf8) => seen.push([text, Buffer.from(utf8)]));
    expect(seen.map(([text]) => text)).toEqual([value]);
    expect(seen[0]![1].equals(Buffer.from(value))).toBe(true);
    expect(kvMessageReceived.decode(accept)._tag).toBe("Right");
  });
});

describe("the replicas' digest format", () => {
  const config = parseConfig({ members: [1, 2, 3], self: 1 });
  const older = makeContext(config, kv);
  const replicated = makeContext(config, kvReplicated);
  const value = "z".repeat(64 * 1024);

  function snapshotOf(ctx: typeof older) {
    const service = ctx.service.apply(
      { clientId: "c", seq: 1, input: { _tag: "put", key: "k", value } },
      ctx.service.start,
    ).state;
    return makeSnapshot(ctx, {
      slot: 4,
      service,
      outputDigestA: 0,
      outputDigestB: 0,
      configs: [ctx.initial],
      checkpoints: [],
    });
  }

  it("a snapshot written before (no format named) verifies; a corrupted value in it does not", () => {
    const old = snapshotOf(older);
    expect(typeof verifySnapshot(replicated, readSnapshot(old.data), old)).toBe("object");
    const corrupted = old.data.replace("zzzz", "zzzy");
    expect(
      verifySnapshot(replicated, readSnapshot(corrupted), { ...old, contentDigest: contentDigestOf(corrupted) }),
    ).toMatch(/^state digest/);
  });

  it("its own snapshots name sha256 and catch a corrupted value", () => {
    const own = snapshotOf(replicated);
    expect(own.digest).toMatch(/^sha256\//);
    expect(typeof verifySnapshot(replicated, readSnapshot(own.data), own)).toBe("object");
    const corrupted = own.data.replace("zzzz", "zzzy");
    expect(
      verifySnapshot(replicated, readSnapshot(corrupted), { ...own, contentDigest: contentDigestOf(corrupted) }),
    ).toMatch(/^state digest/);
  });
});

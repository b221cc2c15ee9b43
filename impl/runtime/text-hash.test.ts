/**
 * The replicas' hash of long values (text-hash.ts): SHA-256 of the UTF-8, lone surrogates kept
 * apart, the UTF-8 length as the value limit counts it; and a store of the digest format before
 * it (a snapshot whose digest names no format) still verifies under it, a corrupted value caught.
 */
import { describe, expect, it } from "vitest";
import { hash } from "node:crypto";
import { kv, utf8Length } from "../../spec/kv.ts";
import { parseConfig } from "../core/config.ts";
import { contentDigestOf, makeSnapshot, readSnapshot, verifySnapshot } from "../core/snapshot.ts";
import { makeContext } from "../core/state.ts";
import { kvReplicated } from "./core-adapter.ts";
import { sha256TextHash } from "./text-hash.ts";

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

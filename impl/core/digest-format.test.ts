/**
 * Digest formats in the replica (spec/hash.ts `TextHash`): a snapshot taken before a hash of long
 * values was passed in (its digest in the unnamed format) still verifies under a replica that
 * passes one, a changed value is caught in either format, and the divergence monitor compares a
 * checkpoint only with one of its own format.
 */
import { describe, expect, it } from "vitest";
import { fnvTextHash, longTextChars } from "../../spec/hash.ts";
import { kv, kvWith } from "../../spec/kv.ts";
import { parseConfig } from "./config.ts";
import { comparePeerCheckpoint, recordCheckpoint } from "./monitor.ts";
import { contentDigestOf, makeSnapshot, readSnapshot, verifySnapshot, type SnapshotContents } from "./snapshot.ts";
import { makeContext, type MonitorState } from "./state.ts";

const config = parseConfig({ members: [1, 2, 3], self: 1 });
const before = makeContext(config, kv);
const after = makeContext(config, kvWith(fnvTextHash));
const value = "v".repeat(longTextChars * 2);

function contents(
  ctx: typeof before,
): SnapshotContents<ReturnType<typeof kv.transition>, ReturnType<typeof kv.output>> {
  let service = ctx.service.start;
  service = ctx.service.apply({ clientId: "c1", seq: 1, input: { _tag: "put", key: "k", value } }, service).state;
  service = ctx.service.apply({ clientId: "c2", seq: 1, input: { _tag: "put", key: "j", value: "x" } }, service).state;
  return { slot: 8, service, outputDigestA: 1, outputDigestB: 2, configs: [ctx.initial], checkpoints: [] };
}

describe("a snapshot's digest format", () => {
  it("a snapshot of the unnamed format verifies under a replica that hashes long values, and its retry is a duplicate", () => {
    const old = makeSnapshot(before, contents(before));
    expect(old.digest).not.toContain("/");
    const back = verifySnapshot(after, readSnapshot(old.data), old);
    if (typeof back === "string") throw new Error(back);
    const retry = { clientId: "c1", seq: 1, input: { _tag: "put", key: "k", value } } as const;
    expect(after.service.apply(retry, back.service).output._tag).toBe("duplicate");
    // The replica's own snapshots are of its format, and verify too.
    const own = makeSnapshot(after, contents(after));
    expect(own.digest).toMatch(/^fnv\//);
    expect(typeof verifySnapshot(after, readSnapshot(own.data), own)).toBe("object");
  });

  it("a changed long value is caught in either format, and an unknown format is refused", () => {
    for (const info of [makeSnapshot(before, contents(before)), makeSnapshot(after, contents(after))]) {
      const tampered = info.data.replace("vvvv", "vvvw");
      expect(tampered).not.toBe(info.data);
      expect(
        verifySnapshot(after, readSnapshot(tampered), { ...info, contentDigest: contentDigestOf(tampered) }),
      ).toMatch(/^state digest .* is not the claimed/);
    }
    const info = makeSnapshot(after, contents(after));
    expect(verifySnapshot(after, readSnapshot(info.data), { ...info, digest: `md5/${info.digest.slice(4)}` })).toMatch(
      /of a format this version does not make/,
    );
  });
});

describe("the divergence monitor across digest formats", () => {
  const empty: MonitorState = { outputDigestA: 0, outputDigestB: 0, checkpoints: [], peerCheckpoints: [] };
  const own = recordCheckpoint(after, empty, { slot: 8, digest: "fnv/00000000aaaaaaaa:1|1|0000000000000000" }).monitor;

  it("raises an alarm for two digests of one format that differ", () => {
    const peer = { slot: 8, digest: "fnv/00000000bbbbbbbb:1|1|0000000000000000" };
    expect(comparePeerCheckpoint(after, own, 8, 2, peer).divergence?.slot).toBe(8);
  });

  it("does not compare digests of different formats", () => {
    const peer = { slot: 8, digest: "00000000bbbbbbbb:1|1|0000000000000000" };
    expect(comparePeerCheckpoint(after, own, 8, 2, peer).divergence).toBeNull();
  });
});

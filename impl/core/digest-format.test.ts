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
import { Cluster } from "./testing/cluster.ts";
import { comparePeerCheckpoint, recordCheckpoint } from "./monitor.ts";
import { contentDigestOf, makeSnapshot, readSnapshot, verifySnapshot, type SnapshotContents } from "./snapshot.ts";
import { checkpointsKept, emptyMonitor, makeContext } from "./state.ts";

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
  const own = recordCheckpoint(after, emptyMonitor, {
    slot: 8,
    digest: "fnv/00000000aaaaaaaa:1|1|0000000000000000",
  }).monitor;

  it("raises an alarm for two digests of one format that differ", () => {
    const peer = { slot: 8, digest: "fnv/00000000bbbbbbbb:1|1|0000000000000000" };
    expect(comparePeerCheckpoint(after, own, 8, 2, peer).divergence?.slot).toBe(8);
  });

  it("does not compare digests of different formats, and says so once per checkpoint until one is compared", () => {
    const peer = { slot: 8, digest: "00000000bbbbbbbb:1|1|0000000000000000" };
    const r = comparePeerCheckpoint(after, own, 8, 2, peer);
    expect(r.divergence).toBeNull();
    expect(r.monitor.uncompared).toEqual([{ replica: 2, slot: 8, ownFormat: "fnv", peerFormat: "" }]);
    expect(r.monitor.uncomparedCount).toBe(1);
    // The same checkpoint again (every heartbeat repeats it): counted once.
    expect(comparePeerCheckpoint(after, r.monitor, 8, 2, peer).monitor).toBe(r.monitor);
    // A checkpoint of the peer's that is compared ends what the monitor says about it.
    const same = comparePeerCheckpoint(after, r.monitor, 8, 2, own.checkpoints[0]!);
    expect(same.divergence).toBeNull();
    expect(same.monitor.uncompared).toEqual([]);
    expect(same.monitor.uncomparedCount).toBe(1);
    // Or once it is older than every checkpoint kept (a follower hears only the leader's).
    let m = r.monitor;
    for (let slot = 12; slot <= 8 + 4 * checkpointsKept; slot += 4) {
      m = recordCheckpoint(after, m, { slot, digest: `fnv/${slot}` }).monitor;
      expect(m.uncompared.length).toBe(slot < 8 + 4 * checkpointsKept ? 1 : 0);
    }
  });
});

/**
 * A rolling upgrade in the scenario cluster: replicas 1 and 2 run the new digest format (`fnv`
 * here, the simulation's stand-in for the runtime's `sha256`), replica 3 the unnamed format of the
 * version before. Checkpoints every 4 slots; values long enough to be hashed by the passed-in hash.
 */
describe("an upgrade window in a cluster", () => {
  const formats = new Map<number, typeof kv>([
    [1, kvWith(fnvTextHash)],
    [2, kvWith(fnvTextHash)],
    [3, kv],
  ]);
  const cluster = (): Cluster =>
    Cluster.elected(3, { config: { checkpointIntervalSlots: 4 }, appOf: (id) => formats.get(id)! });
  const write = (c: Cluster, from: number, count: number): void => {
    for (let i = 0; i < count; i++)
      c.request(1, { _tag: "put", key: `k${from + i}`, value: value + String(i) }, "linearizable");
    c.stabilize();
    // Heartbeats carry the leader's latest checkpoint, their acknowledgements the followers'.
    c.advance(200, 50);
  };

  it("raises no alarm between the formats, says which peers it could not compare, and catches a real divergence once both speak the new one", () => {
    formats.set(3, kv);
    const c = cluster();
    write(c, 0, 9);
    for (const id of [1, 2, 3]) expect(c.state(id).halted).toBeNull();
    expect(c.state(1).monitor.uncompared).toEqual([{ replica: 3, slot: 8, ownFormat: "fnv", peerFormat: "" }]);
    expect(c.state(3).monitor.uncompared).toEqual([{ replica: 1, slot: 8, ownFormat: "", peerFormat: "fnv" }]);
    // Replicas of one format compare: 1 and 2 agree.
    expect(c.state(2).monitor.uncompared).toEqual([]);

    // Replica 3 is upgraded: from its next checkpoint on it speaks the new format, and the leader
    // compares it again.
    formats.set(3, kvWith(fnvTextHash));
    c.crash(3);
    c.restart(3);
    c.elapse(300);
    c.stabilize();
    write(c, 9, 8);
    for (const id of [1, 2, 3]) expect(c.state(id).halted).toBeNull();
    expect(c.state(1).monitor.uncompared).toEqual([]);

    // A real divergence (replica 3's state changed behind its back) is caught.
    const s = c.state(3);
    const app = formats.get(3)!.transition({ _tag: "put", key: "evil", value: "x" }, s.learner.service.app);
    c.node(3).state = { ...s, learner: { ...s.learner, service: { ...s.learner.service, app } } };
    write(c, 17, 4);
    expect(c.state(3).halted).not.toBeNull();
  });
});

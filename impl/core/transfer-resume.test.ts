/**
 * A state transfer resumed after the receiver restarts (`resumeTransfer`): the chunks a driver
 * kept are taken again as if they had just come, the rest is asked for by (slot, byte offset), and
 * the snapshot installs as if nothing had happened. The safety property: bytes kept of one
 * snapshot and bytes fetched of another, under the same claim, are never installed together; rule
 * S2's digest over every byte refuses the mix, and without that check (the bug zoo's
 * transfer-unverified) the mix becomes the replica's state. And the sender's side: the snapshot
 * a transfer fetches is served for as long as it is asked for, however many snapshots follow it.
 */
import { describe, expect, it } from "vitest";
import { mutantNamed } from "../../refinement-tests/mutants/index.ts";
import { rulesOf } from "../../refinement-tests/mutants/mutant.ts";
import { makeStep, step } from "./replica.ts";
import { defaultRules, type ReplicaRules } from "./rules.ts";
import { snapshotChunk, transferEnds } from "./testing/cluster.ts";
import { copyLearner, withLearner } from "./state.ts";
import { resumeTransfer, servedSnapshotKeepMs } from "./transfer.ts";

/** Two snapshots of the same slot and size whose values differ (x against y): what a mix is made of. */
const ends = () => ({
  a: transferEnds((i) => `v${"x".repeat(i * 9)}`),
  b: transferEnds((i) => `v${"y".repeat(i * 9)}`),
});

/** `bytes` cut every `size` characters: the chunks a driver kept, in order. */
function piecesOf(bytes: string, size: number, until = bytes.length): string[] {
  const pieces: string[] = [];
  for (let offset = 0; offset < until; offset += size) pieces.push(bytes.slice(offset, Math.min(until, offset + size)));
  return pieces;
}

/** Resume with `kept`, then feed the rest of `bytes` from where the transfer stands, as a sender would. */
function resumeThenFetch(rules: ReplicaRules, kept: readonly string[], bytes: string) {
  const { a } = ends();
  const { snapshot, follower, now } = a;
  const claim = { from: 1, slot: snapshot.slot, digest: snapshot.digest, contentDigest: snapshot.contentDigest };
  const staged = { ...claim, totalBytes: bytes.length };
  const resumed = resumeTransfer(rules, follower, staged, kept, now);
  const replicaStep = makeStep(rules);
  // The next tick asks for the byte it stopped at, at once.
  const tick = replicaStep(resumed.state, { _tag: "Tick", now: now + 1 });
  const asked = tick.effects.find((e) => e._tag === "Send" && e.message._tag === "SnapshotRequest");
  let s = tick.state;
  const effects = [];
  for (let offset = resumed.taken; offset < bytes.length; offset += 100) {
    const result = replicaStep(s, {
      _tag: "Receive",
      now: now + 2,
      from: 1,
      message: snapshotChunk(snapshot, bytes, offset, 100),
    });
    s = result.state;
    effects.push(...result.effects);
  }
  return { snapshot, follower, now, resumed, asked, state: s, effects };
}

describe("a state transfer resumed after a restart", () => {
  it("takes the kept chunks again, asks for the rest at the next tick, and installs the same snapshot", () => {
    const { snapshot } = ends().a;
    const data = snapshot.data;
    const kept = piecesOf(data, 100, 300);
    const { resumed, asked, state, follower, now } = resumeThenFetch(defaultRules, kept, data);
    expect(resumed.taken).toBe(300);
    expect(resumed.refused).toBeNull();
    expect(resumed.state.learner.transfer?.received).toBe(300);
    expect(asked).toMatchObject({ to: 1, message: { _tag: "SnapshotRequest", slot: snapshot.slot, offset: 300 } });
    expect(state.learner.executedUpTo).toBe(snapshot.slot);
    // The same state as a transfer that never stopped.
    const direct = step(follower, { _tag: "Receive", now, from: 1, message: snapshotChunk(snapshot, data) }).state;
    expect(state.learner.service).toEqual(direct.learner.service);
  });

  it("never installs from what it kept alone: the last piece is fetched again, in an ordinary step", () => {
    const { snapshot, follower, now } = ends().a;
    const data = snapshot.data;
    const staged = {
      from: 1,
      slot: snapshot.slot,
      digest: snapshot.digest,
      contentDigest: snapshot.contentDigest,
      totalBytes: data.length,
    };
    const resumed = resumeTransfer(defaultRules, follower, staged, piecesOf(data, 100), now);
    expect(resumed.taken).toBe(Math.floor((data.length - 1) / 100) * 100);
    expect(resumed.state.learner.executedUpTo).toBe(follower.learner.executedUpTo);
    // Nothing kept, or kept of a snapshot it no longer wants: no transfer at all.
    expect(resumeTransfer(defaultRules, follower, staged, [], now).taken).toBe(0);
    expect(resumeTransfer(defaultRules, follower, { ...staged, slot: 0 }, piecesOf(data, 100), now).state).toBe(
      follower,
    );
  });

  it("never installs a mix of two snapshots: kept bytes of one, fetched bytes of another, under one claim", () => {
    const { a, b } = ends();
    const data = a.snapshot.data;
    const other = b.snapshot.data;
    // Two snapshots of one slot and one size, their bytes different: the kept half is the other's.
    expect(other.length).toBe(data.length);
    expect(other).not.toBe(data);
    const half = Math.floor(data.length / 200) * 100;
    const kept = piecesOf(other, 100, half);
    const { state, effects } = resumeThenFetch(defaultRules, kept, data);
    expect(state.learner.executedUpTo).toBe(a.follower.learner.executedUpTo);
    expect(effects.filter((e) => e._tag === "Persist" && e.record._tag === "snapshot")).toHaveLength(0);
    expect(effects.find((e) => e._tag === "TransferRefused")).toMatchObject({
      check: "contentDigest",
      slot: a.snapshot.slot,
    });
    // Without rule S2's check (transfer-unverified) the mix is installed: values of both.
    const unchecked = resumeThenFetch(rulesOf(mutantNamed("transfer-unverified")), kept, data);
    expect(unchecked.state.learner.executedUpTo).toBe(a.snapshot.slot);
    const store = JSON.stringify(unchecked.state.learner.service);
    expect(store).toContain("yyyy");
    expect(store).toContain("xxxx");
  });
});

describe("the snapshot a transfer fetches", () => {
  it("is served while it is asked for, after newer snapshots replaced it, and forgotten servedSnapshotKeepMs after", () => {
    const { a, b } = ends();
    const sender = a;
    const { snapshot: fetched, now } = sender;
    // A replica that holds `fetched` as its latest snapshot, asked for it past its first byte.
    const l = copyLearner(sender.follower.learner);
    l.snapshot = fetched;
    const holder = withLearner(sender.follower, l);
    const request = (slot: number, offset: number) => ({ _tag: "SnapshotRequest", slot, offset }) as const;
    const asked = step(holder, { _tag: "Receive", now, from: 3, message: request(fetched.slot, 100) });
    expect(asked.state.learner.servedSnapshot).toBe(fetched);
    // Two newer snapshots later (here: another one in its place, none before it) it is still served.
    const newer = copyLearner(asked.state.learner);
    newer.snapshot = { ...b.snapshot, slot: fetched.slot + 8 };
    newer.priorSnapshot = null;
    const moved = withLearner(asked.state, newer);
    const chunkOf = (s: typeof moved, at: number) =>
      step(s, { _tag: "Receive", now: at, from: 3, message: request(fetched.slot, 200) }).effects.find(
        (e) => e._tag === "Send",
      );
    expect(chunkOf(moved, now + 1)).toMatchObject({ message: { slot: fetched.slot, offset: 200 } });
    // Without it (a replica that kept only its latest two), the transfer would start over.
    const forgotten = withLearner(moved, { ...copyLearner(moved.learner), servedSnapshot: null });
    expect(chunkOf(forgotten, now + 1)).toMatchObject({ message: { slot: fetched.slot + 8, offset: 0 } });
    // Not asked for in servedSnapshotKeepMs: a tick forgets it, and a late request starts over.
    const late = now + servedSnapshotKeepMs + 1;
    expect(step(moved, { _tag: "Tick", now: late }).state.learner.servedSnapshot).toBeNull();
    expect(chunkOf(moved, late)).toMatchObject({ message: { slot: fetched.slot + 8, offset: 0 } });
  });
});

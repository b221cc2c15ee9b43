/**
 * A state transfer resumed after the receiver restarts (`resumeKept`, `takeKept`): `Recover`
 * describes the transfer a driver kept, `KeptChunks` events hand its chunks back a piece at a
 * time, in order, and each chunk is taken again as if it had just come; the rest is asked for by
 * (slot, byte offset), and the snapshot installs as if nothing had happened. The safety property:
 * bytes kept of one snapshot and bytes fetched of another, under the same claim, are never
 * installed together; rule S2's digest over every byte refuses the mix, and without that check
 * (the bug zoo's transfer-unverified) the mix becomes the replica's state. A piece out of order is
 * never taken. And the sender's side: the snapshot a transfer fetches is served for as long as it
 * is asked for, however many snapshots follow it.
 */
import { describe, expect, it } from "vitest";
import { mutantNamed } from "../../refinement-tests/mutants/index.ts";
import { rulesOf } from "../../refinement-tests/mutants/mutant.ts";
import type { KeptTransfer } from "./events.ts";
import { makeStep, step } from "./replica.ts";
import { defaultRules, type ReplicaRules } from "./rules.ts";
import { snapshotChunk, transferEnds } from "./testing/cluster.ts";
import { copyLearner, withLearner } from "./state.ts";
import { resumeKept, resumingKept, servedSnapshotKeepMs } from "./transfer.ts";

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

/** `chunks` grouped `per` to a piece, each with the byte it starts at (a driver's `KeptChunks`). */
function grouped(chunks: readonly string[], per: number): { offset: number; chunks: string[] }[] {
  const out: { offset: number; chunks: string[] }[] = [];
  let offset = 0;
  for (let i = 0; i < chunks.length; i += per) {
    const piece = chunks.slice(i, i + per);
    out.push({ offset, chunks: piece });
    offset += piece.reduce((n, c) => n + c.length, 0);
  }
  return out;
}

/**
 * Resume `staged` at `follower` (as its Recover would), then hand it `kept` `per` chunks a piece,
 * in order, as a driver does: each once the one before is stepped, while the core takes them.
 */
function resume(
  rules: ReplicaRules,
  follower: ReturnType<typeof transferEnds>["follower"],
  staged: KeptTransfer,
  kept: readonly string[],
  now: number,
  per = 2,
) {
  const replicaStep = makeStep(rules);
  let state = resumeKept(rules, follower, staged);
  const effects: { readonly _tag: string }[] = [];
  const pieces = grouped(kept, per);
  let fed = 0;
  for (let i = 0; resumingKept(state); i++) {
    const piece = pieces[i] ?? { offset: pieces.at(-1)?.offset ?? 0, chunks: [] };
    const result = replicaStep(state, { _tag: "KeptChunks", now, ...piece, last: i >= pieces.length - 1 });
    state = result.state;
    effects.push(...result.effects);
    fed += 1;
  }
  const refused = effects.find((e) => e._tag === "TransferRefused") ?? null;
  return { state, taken: state.learner.transfer?.received ?? 0, refused, effects, fed };
}

/** Resume with `kept`, then feed the rest of `bytes` from where the transfer stands, as a sender would. */
function resumeThenFetch(rules: ReplicaRules, kept: readonly string[], bytes: string) {
  const { a } = ends();
  const { snapshot, follower, now } = a;
  const claim = { from: 1, slot: snapshot.slot, digest: snapshot.digest, contentDigest: snapshot.contentDigest };
  const staged = { ...claim, totalBytes: bytes.length };
  const resumed = resume(rules, follower, staged, kept, now);
  const replicaStep = makeStep(rules);
  // The next tick asks for the byte it stopped at, at once.
  const tick = replicaStep(resumed.state, { _tag: "Tick", now: now + 1 });
  const asked = tick.effects.find((e) => e._tag === "Send" && e.message._tag === "SnapshotRequest");
  const fetched = fetchFrom(replicaStep, tick.state, snapshot, bytes, resumed.taken, now + 2);
  return { snapshot, follower, now, resumed, asked, ...fetched };
}

/** The source's chunks of `bytes` from `offset` on, 100 bytes each, received one after another. */
function fetchFrom<St, Ef>(
  replicaStep: (
    state: St,
    event: { _tag: "Receive"; now: number; from: number; message: ReturnType<typeof snapshotChunk> },
  ) => { readonly state: St; readonly effects: readonly Ef[] },
  from: St,
  snapshot: Parameters<typeof snapshotChunk>[0],
  bytes: string,
  offset: number,
  now: number,
): { state: St; effects: Ef[] } {
  let s = from;
  const effects: Ef[] = [];
  for (let at = offset; at < bytes.length; at += 100) {
    const result = replicaStep(s, { _tag: "Receive", now, from: 1, message: snapshotChunk(snapshot, bytes, at, 100) });
    s = result.state;
    effects.push(...result.effects);
  }
  return { state: s, effects };
}

/** The claim of snapshot `snapshot`, `totalBytes` long, kept from replica 1. */
function stagedOf(snapshot: { slot: number; digest: string; contentDigest: string }, totalBytes: number) {
  return { from: 1, slot: snapshot.slot, digest: snapshot.digest, contentDigest: snapshot.contentDigest, totalBytes };
}

describe("a state transfer resumed after a restart", () => {
  it("takes the kept chunks again a piece at a time, asks for the rest at the next tick, and installs the same snapshot", () => {
    const { snapshot } = ends().a;
    const data = snapshot.data;
    const kept = piecesOf(data, 100, 500);
    const { resumed, asked, state, follower, now } = resumeThenFetch(defaultRules, kept, data);
    // Three pieces (two chunks, two, one), one step each; nothing sent while taking them.
    expect(resumed.fed).toBe(3);
    expect(resumed.effects).toEqual([]);
    expect(resumed.taken).toBe(500);
    expect(resumed.refused).toBeNull();
    expect(resumed.state.learner.transfer?.resuming).toBeUndefined();
    expect(asked).toMatchObject({ to: 1, message: { _tag: "SnapshotRequest", slot: snapshot.slot, offset: 500 } });
    expect(state.learner.executedUpTo).toBe(snapshot.slot);
    // The same state as a transfer that never stopped.
    const direct = step(follower, { _tag: "Receive", now, from: 1, message: snapshotChunk(snapshot, data) }).state;
    expect(state.learner.service).toEqual(direct.learner.service);
  });

  it("asks nothing while it takes kept pieces, asks at its first tick after them, and counts the source's silence from there", () => {
    const { snapshot, follower, now } = ends().a;
    const data = snapshot.data;
    const timeout = follower.ctx.config.electionTimeoutMsMax;
    const s0 = resumeKept(defaultRules, follower, stagedOf(snapshot, data.length));
    // Ticks between the pieces (the driver reads each from its store meanwhile) ask nothing.
    const idle = step(s0, { _tag: "Tick", now: now + 1 });
    expect(idle.effects.filter((e) => e._tag === "Send")).toEqual([]);
    const [p1, p2] = grouped(piecesOf(data, 100, 400), 2);
    const first = step(idle.state, { _tag: "KeptChunks", now: now + timeout - 1, ...p1!, last: false });
    expect(first.state.learner.transfer).toMatchObject({ received: 200, resuming: true });
    // Each piece taken is progress: a tick an election timeout after the Recover does not give up.
    expect(step(first.state, { _tag: "Tick", now: now + timeout }).state.learner.transfer?.received).toBe(200);
    const late = now + 10 * timeout;
    const second = step(first.state, { _tag: "KeptChunks", now: late - 1, ...p2!, last: true });
    const tick = step(second.state, { _tag: "Tick", now: late });
    expect(tick.state.learner.transfer?.received).toBe(400);
    const asked = tick.effects.find((e) => e._tag === "Send" && e.message._tag === "SnapshotRequest");
    expect(asked).toMatchObject({ to: 1, message: { offset: 400 } });
    // A source silent for an election timeout from that request: given up.
    const silent = step(tick.state, { _tag: "Tick", now: late + timeout });
    expect(silent.state.learner.transfer).toBeNull();
    // A driver that stops handing pieces over for an election timeout: given up too.
    expect(step(first.state, { _tag: "Tick", now: now + 2 * timeout }).state.learner.transfer).toBeNull();
    // A Recover that took long (its records replayed): the first tick after it starts the count, not the Recover.
    const slow = step(s0, { _tag: "Tick", now: late });
    expect(slow.state.learner.transfer).toMatchObject({ resuming: true, progressAt: late });
    expect(
      step(slow.state, { _tag: "KeptChunks", now: late + 1, ...p1!, last: false }).state.learner.transfer,
    ).toMatchObject({ received: 200 });
    expect(step(slow.state, { _tag: "Tick", now: late + timeout }).state.learner.transfer).toBeNull();
  });

  it("takes a piece only where the transfer stands: one out of order is ignored, and the next in order is taken", () => {
    const { snapshot, follower, now } = ends().a;
    const data = snapshot.data;
    const [p1, p2, p3] = grouped(piecesOf(data, 100, 600), 2);
    const s0 = resumeKept(defaultRules, follower, stagedOf(snapshot, data.length));
    const s1 = step(s0, { _tag: "KeptChunks", now, ...p1!, last: false }).state;
    // Piece three before piece two, or piece one again: nothing taken, the transfer as it was.
    expect(step(s1, { _tag: "KeptChunks", now, ...p3!, last: false }).state).toBe(s1);
    expect(step(s1, { _tag: "KeptChunks", now, ...p1!, last: false }).state).toBe(s1);
    // A piece that claims the right byte but holds chunks out of order: refused whole, by the
    // JSON it breaks or by rule S2's digest over every byte, never installed mixed up.
    const swapped = { offset: p2!.offset, chunks: [p3!.chunks[0]!, p2!.chunks[0]!] };
    const mixed = step(s1, { _tag: "KeptChunks", now, ...swapped, last: true });
    const fetched = fetchFrom(
      step,
      mixed.state,
      snapshot,
      data,
      mixed.state.learner.transfer?.received ?? data.length,
      now + 1,
    );
    const s = fetched.state;
    const effects = [...mixed.effects, ...fetched.effects];
    expect(s.learner.executedUpTo).toBe(follower.learner.executedUpTo);
    expect(effects.find((e) => e._tag === "TransferRefused")).toBeDefined();
    // In order, the same pieces resume it.
    const s2 = step(s1, { _tag: "KeptChunks", now, ...p2!, last: false }).state;
    expect(step(s2, { _tag: "KeptChunks", now, ...p3!, last: true }).state.learner.transfer?.received).toBe(600);
  });

  it("refuses a kept chunk whose JSON is broken, whole: the transfer goes and says why", () => {
    const { snapshot, follower, now } = ends().a;
    const data = snapshot.data;
    const kept = piecesOf(data, 100, 400);
    kept[1] = `}${kept[1]!.slice(1)}`;
    const resumed = resume(defaultRules, follower, stagedOf(snapshot, data.length), kept, now);
    expect(resumed.refused).toMatchObject({ _tag: "TransferRefused", check: "json", slot: snapshot.slot });
    expect(resumed.state.learner.transfer).toBeNull();
  });

  it("never installs from what it kept alone: the last chunk is fetched again, in an ordinary step", () => {
    const { snapshot, follower, now } = ends().a;
    const data = snapshot.data;
    const staged = stagedOf(snapshot, data.length);
    const resumed = resume(defaultRules, follower, staged, piecesOf(data, 100), now);
    expect(resumed.taken).toBe(Math.floor((data.length - 1) / 100) * 100);
    expect(resumed.state.learner.executedUpTo).toBe(follower.learner.executedUpTo);
    // Nothing kept, or kept of a snapshot it no longer wants: no transfer at all.
    expect(resume(defaultRules, follower, staged, [], now).state.learner.transfer).toBeNull();
    expect(resumeKept(defaultRules, follower, { ...staged, slot: 0 })).toBe(follower);
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

/**
 * The step that stages a transfer's chunks: it hands the store each chunk the core took, in
 * order, and nothing the core ignored (a duplicate) or refused; the snapshot record the core
 * persists when it installs the transfer is named to the store as the staged bytes; a refused
 * transfer's stage is dropped. It changes no state and no effect of the core's.
 */
import { describe, expect, it } from "vitest";
import { snapshotChunk, transferEnds } from "../core/testing/cluster.ts";
import { initialState } from "../core/state.ts";
import { kv } from "../../spec/kv.ts";
import { kvStep, type KvRecord } from "./core-adapter.ts";
import { stagingStep, type ReceivedStore, type Resumption } from "./transfer-staging.ts";

const setUp = () => transferEnds();

describe("staging a transfer's chunks", () => {
  it("stages each chunk taken, names the installed record, and drops a refused transfer's stage", () => {
    const { snapshot, follower, now } = setUp();
    const calls: string[] = [];
    let installed: KvRecord | null = null;
    const store: ReceivedStore = {
      receivedChunk: (_from, m) => void calls.push(`chunk ${m.slot} @${m.offset} +${m.data.length}`),
      receivedDropped: () => void calls.push("dropped"),
      receivedInstalled: (record, slot, _digest, totalBytes) => {
        installed = record;
        calls.push(`installed ${slot} ${totalBytes}`);
      },
      resumed: () => void calls.push("resumed"),
    };
    const step = stagingStep(kvStep, store);
    const size = 100;
    const feed = (bytes: string, offsets: readonly number[]) => {
      let s = follower;
      for (const offset of offsets) {
        const message = snapshotChunk(snapshot, bytes, offset, size);
        const result = step(s, { _tag: "Receive", now, from: 1, message });
        expect(result).toEqual(kvStep(s, { _tag: "Receive", now, from: 1, message }));
        s = result.state;
      }
      return s;
    };
    const data = snapshot.data;
    const offsets = Array.from({ length: Math.ceil(data.length / size) }, (_, i) => i * size);
    // The second chunk twice: the core ignores the duplicate, so it is staged once.
    const done = feed(data, [offsets[0]!, offsets[1]!, offsets[1]!, ...offsets.slice(2)]);
    expect(done.learner.executedUpTo).toBe(snapshot.slot);
    expect(calls).toEqual([
      ...offsets.map((o) => `chunk ${snapshot.slot} @${o} +${Math.min(size, data.length - o)}`),
      `installed ${snapshot.slot} ${data.length}`,
    ]);
    expect(installed).toMatchObject({ _tag: "snapshot", slot: snapshot.slot });
    // Refused at its end (a byte changed): every chunk was staged, and the stage is dropped.
    calls.length = 0;
    feed(data.replace('"k3"', '"k9"'), offsets);
    expect(calls.at(-1)).toBe("dropped");
    expect(calls.filter((c) => c.startsWith("chunk"))).toHaveLength(offsets.length - 1);
  });
});

describe("resuming a kept transfer", () => {
  it("tells the store how much of the kept transfer the core took again once the pieces end, and what it refused", () => {
    const { snapshot, follower, now } = setUp();
    const data = snapshot.data;
    const taken: number[] = [];
    const heard: Resumption[] = [];
    const calls: string[] = [];
    const store: ReceivedStore = {
      receivedChunk: (_from, m) => void calls.push(`chunk @${m.offset}`),
      receivedDropped: () => void calls.push("dropped"),
      receivedInstalled: () => undefined,
      resumed: (bytes) => void taken.push(bytes),
    };
    const step = stagingStep(kvStep, store, (r) => void heard.push(r));
    const { slot, digest, contentDigest } = snapshot;
    const kept = { from: 1, slot, digest, contentDigest, totalBytes: data.length };
    const recover = () => step(initialState(follower.ctx.config, kv), { _tag: "Recover", now, records: [], kept });
    const piece = (offset: number, chunks: string[], last: boolean) =>
      ({ _tag: "KeptChunks", now, offset, chunks, last }) as const;
    // Two pieces of two chunks: the store hears nothing until the last is taken, then 400.
    const recovered = recover();
    expect(taken).toEqual([]);
    const first = step(recovered.state, piece(0, [data.slice(0, 100), data.slice(100, 200)], false));
    expect(first.state.learner.transfer?.resuming).toBe(true);
    expect(taken).toEqual([]);
    const second = step(first.state, piece(200, [data.slice(200, 300), data.slice(300, 400)], true));
    expect(second.state.learner.transfer?.received).toBe(400);
    expect(taken).toEqual([400]);
    // A kept chunk that is not JSON: refused (the effect says so), nothing taken, the stage goes.
    const spoiled = step(recover().state, piece(0, [`}${data.slice(1, 100)}`], true));
    expect(spoiled.state.learner.transfer).toBeNull();
    expect(spoiled.effects).toContainEqual(expect.objectContaining({ _tag: "TransferRefused", check: "json" }));
    // Ended by a chunk from the network where the transfer stands: the kept bytes stay, the chunk follows them.
    const overtaken = step(step(recover().state, piece(0, [data.slice(0, 100)], false)).state, {
      _tag: "Receive",
      now,
      from: 1,
      message: snapshotChunk(snapshot, data, 100, 100),
    });
    expect(overtaken.state.learner.transfer).toMatchObject({ received: 200 });
    expect(overtaken.state.learner.transfer?.resuming).toBeUndefined();
    expect(calls).toEqual(["chunk @100"]);
    expect(taken).toEqual([400, 0, 100]);
    expect(heard.map((h) => [h.taken, h.refused?.check ?? null])).toEqual([
      [400, null],
      [0, "json"],
      [100, null],
    ]);
    // Given up mid-resumption (no piece for an election timeout): the core took 100 bytes, but
    // the transfer does not go on from them, so the store is told 0 (the stage goes, no resumption
    // counted) and the operator hears it was not resumed.
    const halfway = step(recover().state, piece(0, [data.slice(0, 100)], false)).state;
    const timer = step(halfway, { _tag: "Tick", now: now + 1 }).state;
    expect(timer.learner.transfer?.resuming).toBe(true);
    const given = step(timer, { _tag: "Tick", now: now + 1 + follower.ctx.config.electionTimeoutMsMax });
    expect(given.state.learner.transfer).toBeNull();
    expect(taken).toEqual([400, 0, 100, 0]);
    expect(heard.at(-1)).toMatchObject({ taken: 0, refused: null });
    taken.length = 3;
    // A Recover without a kept transfer tells the store nothing; one not resumed (stale) says 0 at once.
    step(initialState(follower.ctx.config, kv), { _tag: "Recover", now, records: [] });
    expect(taken).toHaveLength(3);
    step(initialState(follower.ctx.config, kv), { _tag: "Recover", now, records: [], kept: { ...kept, slot: 0 } });
    expect(taken).toEqual([400, 0, 100, 0]);
  });
});

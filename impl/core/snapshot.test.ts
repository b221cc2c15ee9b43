/**
 * Snapshots (snapshot.ts): serialization is deterministic and ASCII, decoding rebuilds the same
 * state, and a snapshot is refused, never installed, when its bytes, slot or state digest do not
 * match what it claims (rule S2). Records (records.ts): compaction keeps exactly what Recover
 * needs, and a crash before a snapshot is durable leaves the previous state (votes included).
 */
import { describe, expect, it } from "vitest";
import { kv, kvGet, type KvInput } from "../../spec/kv.ts";
import { parseConfig } from "./config.ts";
import { compactRecords, type DurableRecord } from "./records.ts";
import { step } from "./replica.ts";
import {
  ContentDigest,
  contentDigestOf,
  decodeSnapshot,
  encodeSnapshot,
  escapedJsonLength,
  escapedJsonValue,
  keptSnapshot,
  makeSnapshot,
  serializationOf,
  snapshotDigest,
  snapshotRecord,
  snapshotSize,
  snapshotSlice,
  readSnapshot,
  verifySnapshot,
  type SnapshotChunk,
  type SnapshotClaim,
  type SnapshotContents,
} from "./snapshot.ts";
import { storeAtRestFor, storedEntryOf, type StoredEntry } from "./store-at-rest.ts";
import { pmGet, pmSet, type PersistentMap } from "../../spec/persistent-map.ts";
import { slotMapEntries } from "./slot-map.ts";
import { initialState, makeContext } from "./state.ts";
import { snapshotChunk, snapshottingCluster, transferEnds } from "./testing/cluster.ts";

const ctx = makeContext(parseConfig({ members: [1, 2, 3], self: 1 }), kv);

function contents(): SnapshotContents<ReturnType<typeof kv.transition>, ReturnType<typeof kv.output>> {
  let service = ctx.service.start;
  service = ctx.service.apply(
    { clientId: "c1", seq: 1, input: { _tag: "put", key: "k", value: "é ✓ \u0000" } },
    service,
  ).state;
  service = ctx.service.apply(
    { clientId: "c2", seq: 4, input: { _tag: "append", key: "j", value: "x" } },
    service,
  ).state;
  return {
    slot: 8,
    service,
    outputDigestA: 0x12345678,
    outputDigestB: 0xfedcba98,
    configs: [ctx.initial],
    checkpoints: [{ slot: 8, digest: "d" }],
  };
}

describe("snapshots", () => {
  it("serialize deterministically to ASCII and decode to the same state", () => {
    const a = encodeSnapshot(ctx, contents());
    expect(encodeSnapshot(ctx, contents())).toBe(a);
    expect(/^[\x20-\x7e]*$/.test(a)).toBe(true);
    const back = decodeSnapshot(ctx, a);
    if (typeof back === "string") throw new Error(back);
    expect(kv.digest(back.service.app)).toBe(kv.digest(contents().service.app));
    expect(kvGet(back.service.app, "k")).toBe("é ✓ \u0000");
    expect(back.service.executed).toBe(2);
    expect(encodeSnapshot(ctx, back)).toBe(a);
  });

  it("take the same bytes and content digest whether the JSON needed escaping or not", () => {
    const plain = (value: string): SnapshotContents<ReturnType<typeof kv.transition>, ReturnType<typeof kv.output>> => {
      const service = ctx.service.apply(
        { clientId: "c1", seq: 1, input: { _tag: "put", key: "k", value } },
        ctx.service.start,
      ).state;
      return { ...contents(), service };
    };
    for (const c of [contents(), plain("only ascii"), plain("del \u007f"), plain("tilde ~")]) {
      const taken = makeSnapshot(ctx, c);
      expect(taken.data).toBe(encodeSnapshot(ctx, c));
      expect(taken.contentDigest).toBe(contentDigestOf(taken.data));
    }
    expect(makeSnapshot(ctx, plain("del \u007f")).data).toContain("del \\u007f");
  });

  it("measure a value's escaped length over the whole of it", () => {
    // Long, each with its only escaped character last, first or alone: the whole is measured.
    const values = ["", "z", `${"y".repeat(3000)}\n`, `"${"y".repeat(3000)}`, "\u007f", `${"y".repeat(2000)}é`];
    for (const value of values) {
      expect(escapedJsonLength(value)).toBe(escapedJsonValue(value).length);
      // JSON of the value, in ASCII.
      expect(JSON.parse(escapedJsonValue(value))).toBe(value);
      expect(escapedJsonValue(value)).toMatch(/^[\x20-\x7e]*$/);
    }
  });

  it("leave the values the store names as holes, which filled give the same bytes (rule V5)", () => {
    const values = [
      "plain ascii",
      'quote " and backslash \\ and del \u007f',
      "controls \u0000\b\t\n\f\r\u001f",
      "é ✓ 😀 and a lone \ud800 surrogate",
      "x".repeat(5000),
    ];
    for (const value of values) expect(escapedJsonLength(value)).toBe(escapedJsonValue(value).length);
    let service = contents().service;
    for (const [i, value] of values.entries())
      service = ctx.service.apply(
        { clientId: `rest${i}`, seq: 1, input: { _tag: "put", key: `k${i}`, value } },
        service,
      ).state;
    const entry = (key: string, length: number): StoredEntry => ({
      _tag: "stored-entry",
      key,
      slot: 3,
      ballot: { round: 1, replica: 1 },
      index: 0,
      length,
      chars: escapedJsonLength(values[Number(key.slice(1))]!),
      hashes: pmGet(service.app.hashes, key)!,
    });
    // Every value but k0 named; k4's name has another length, so its value is serialized here.
    let atRest: PersistentMap<StoredEntry> = { root: undefined, size: 0 };
    for (const [i, value] of values.entries())
      if (i > 0) atRest = pmSet(atRest, `k${i}`, entry(`k${i}`, i === 4 ? value.length + 1 : value.length));
    const c = { ...contents(), service };
    const whole = encodeSnapshot(ctx, c);
    for (const chars of [1, 50, Number.POSITIVE_INFINITY]) {
      const info = makeSnapshot(ctx, { ...c, atRest });
      const serialization = serializationOf(info)!;
      const chunks: SnapshotChunk[] = [];
      while (!serialization.complete) {
        serialization.advance(chars);
        chunks.push(...serialization.takeChunks());
      }
      const holes = chunks.filter((chunk) => typeof chunk !== "string");
      expect(holes.map((h) => h.entry.key)).toEqual(["k1", "k2", "k3"]);
      expect(serialization.holes).toBe(3);
      const filled = chunks.map((chunk) =>
        typeof chunk === "string" ? chunk : escapedJsonValue(kvGet(service.app, chunk.entry.key)!),
      );
      expect(filled.join("")).toBe(whole);
      expect(serialization.bytes).toBe(whole.length);
      // Every other reading serializes the values.
      expect(info.contentDigest).toBe(contentDigestOf(whole));
      expect(info.data).toBe(whole);
    }
    // Read whole before any slice was handed over: no hole, the bytes as ever.
    const early = makeSnapshot(ctx, { ...c, atRest });
    serializationOf(early)!.advance(10);
    expect(early.data).toBe(whole);
    expect(serializationOf(early)!.takeChunks()).toEqual([whole]);
  });

  it("leave a hole for each value at rest without reading it back, and read whole only with a reader (V5)", () => {
    const atRestCtx = makeContext(
      parseConfig({ members: [1, 2, 3], self: 1, valuesAtRest: true, storeAtRestCharsMin: 1 }),
      kv,
    );
    const store = storeAtRestFor(kv);
    const values = ['quote " é ✓ \u0001', "x".repeat(3000)];
    const inMemory = contents();
    let service = inMemory.service;
    for (const [i, value] of values.entries())
      service = ctx.service.apply(
        { clientId: `rest${i}`, seq: 1, input: { _tag: "put", key: `k${i}`, value } },
        service,
      ).state;
    const whole = encodeSnapshot(ctx, { ...inMemory, service });
    let app = service.app;
    let atRest: PersistentMap<StoredEntry> = { root: undefined, size: 0 };
    for (const [i, value] of values.entries()) {
      const input: KvInput = { _tag: "put", key: `k${i}`, value };
      const vote = {
        slot: 5 + i,
        ballot: { round: 1, replica: 1 },
        value: { _tag: "batch", commands: [{ input }] },
      } as const;
      const ref = storedEntryOf(app, `k${i}`, vote, 0)!;
      atRest = pmSet(atRest, ref.key, ref);
      app = store.rest(app, ref);
    }
    const resting = { ...inMemory, service: { ...service, app }, atRest };
    // The application's own snapshot refuses a value at rest: only the holes stand for it.
    expect(() => encodeSnapshot(atRestCtx, resting)).toThrow(/at rest/);
    const read = (entry: StoredEntry): string => values[Number(entry.key.slice(1))]!;
    const sliced = makeSnapshot(atRestCtx, resting);
    const serialization = serializationOf(sliced)!;
    serialization.finish();
    const chunks = serialization.takeChunks();
    expect(chunks.filter((c) => typeof c !== "string").map((h) => (h as { chars: number }).chars)).toEqual(
      values.map(escapedJsonLength),
    );
    expect(chunks.map((c) => (typeof c === "string" ? c : escapedJsonValue(read(c.entry)))).join("")).toBe(whole);
    expect(serialization.bytes).toBe(whole.length);
    // Read whole: from a reader of the vote records only, and only a value of the hole's length.
    expect(() => makeSnapshot(atRestCtx, resting).data).toThrow(/nothing here reads it back/);
    const filled = makeSnapshot(atRestCtx, resting);
    serializationOf(filled)!.fillFrom(read);
    expect(filled.data).toBe(whole);
    expect(filled.contentDigest).toBe(contentDigestOf(whole));
    const wrong = makeSnapshot(atRestCtx, resting);
    serializationOf(wrong)!.fillFrom((entry) => `${read(entry)}"`);
    expect(() => wrong.data).toThrow(/leaves a hole of \d+ characters, and its value has \d+/);
    // A value at rest that the snapshot's names do not name: refused, never a hole of unknown length.
    const unnamed = makeSnapshot(atRestCtx, {
      ...resting,
      atRest: pmSet(atRest, "k1", { ...pmGet(atRest, "k1")!, slot: 9 }),
    });
    expect(() => serializationOf(unnamed)!.finish()).toThrow(/not one its names give/);
  });

  it("serialize in slices of any size to the same bytes and digests, and read like plain ones", () => {
    const many = (): SnapshotContents<ReturnType<typeof kv.transition>, ReturnType<typeof kv.output>> => {
      let service = contents().service;
      for (let i = 0; i < 40; i++) {
        const value = i % 3 === 0 ? `v${i} é ✓ ${"x".repeat(i * 7)}` : `v${i} ${"y".repeat(i * 11)}`;
        service = ctx.service.apply(
          { clientId: `c${i % 5}`, seq: 10 + i, input: { _tag: "put", key: `k${i}`, value } },
          service,
        ).state;
      }
      return { ...contents(), service };
    };
    for (const c of [contents(), many()]) {
      const whole = encodeSnapshot(ctx, c);
      for (const chars of [1, 7, 64, 1000, Number.POSITIVE_INFINITY]) {
        const info = makeSnapshot(ctx, c);
        const serialization = serializationOf(info)!;
        const slices: string[] = [];
        while (!serialization.complete) {
          serialization.advance(chars);
          slices.push(...(serialization.takeChunks() as string[]));
        }
        expect(slices.join("")).toBe(whole);
        const digest = new ContentDigest();
        for (const slice of slices) digest.update(slice);
        expect(digest.hex).toBe(contentDigestOf(whole));
        expect(serialization.takeChunks()).toEqual([]);
        expect(serialization.bytes).toBe(whole.length);
        expect(snapshotSize(info)).toBe(whole.length);
        expect(info.contentDigest).toBe(contentDigestOf(whole));
        // Handed over and not kept: serialized again when the whole is asked for.
        expect(info.data).toBe(whole);
      }
      // Read whole by a reader while chunks are being handed over: the rest are still handed over.
      const early = makeSnapshot(ctx, c);
      const serialization = serializationOf(early)!;
      serialization.advance(10);
      const chunks = serialization.takeChunks() as string[];
      expect(early.contentDigest).toBe(contentDigestOf(whole));
      expect(early.data).toBe(whole);
      while (!serialization.complete) serialization.advance(100);
      expect([...chunks, ...(serialization.takeChunks() as string[])].join("")).toBe(whole);
      // A digest computed elsewhere over the chunks (the storage thread's) is the one read.
      const digest = new ContentDigest();
      for (const chunk of chunks) digest.update(chunk);
      expect(digest.hex).not.toBe(contentDigestOf(whole));
      const handed = makeSnapshot(ctx, c);
      serializationOf(handed)!.knownDigest = "0123456789abcdef";
      expect(handed.contentDigest).toBe("0123456789abcdef");
      // Read before any slice: finished at once, the same fields a plain snapshot has, in the same order.
      const lazy = makeSnapshot(ctx, c);
      const plain = { slot: lazy.slot, digest: lazy.digest, contentDigest: contentDigestOf(whole), data: whole };
      expect(Object.keys(lazy)).toEqual(Object.keys(plain));
      expect({ ...lazy }).toEqual(plain);
      const record = snapshotRecord(lazy, { round: 3, replica: 2 }, 5);
      expect(serializationOf(record)).toBe(serializationOf(lazy));
      expect(JSON.stringify(record)).toBe(
        JSON.stringify({
          _tag: "snapshot",
          slot: lazy.slot,
          digest: lazy.digest,
          contentDigest: plain.contentDigest,
          maxBal: { round: 3, replica: 2 },
          logTruncatedUpTo: 5,
          data: whole,
        }),
      );
      expect(serializationOf(snapshotRecord(plain, { round: 3, replica: 2 }, 5))).toBeUndefined();
    }
  });

  it("write a store of many entries in runs of bounded size, a large value alone, to the same bytes", () => {
    let service = contents().service;
    for (let i = 0; i < 1500; i++) {
      const value =
        i % 500 === 7 ? `big ${i} é`.padEnd(40_000, "z") : `v${i} ${i % 9 === 0 ? "é \u0001" : ""}`.padEnd(100, "y");
      service = ctx.service.apply(
        { clientId: `c${i % 7}`, seq: 10 + i, input: { _tag: "put", key: `k${i}`, value } },
        service,
      ).state;
    }
    const c = { ...contents(), service };
    const whole = encodeSnapshot(ctx, c);
    for (const chars of [1, 5_000, 100_000, Number.POSITIVE_INFINITY]) {
      const serialization = serializationOf(makeSnapshot(ctx, c))!;
      const slices: string[] = [];
      while (!serialization.complete) {
        serialization.advance(chars);
        slices.push(...(serialization.takeChunks() as string[]));
      }
      expect(slices.join("")).toBe(whole);
      if (chars !== 1) continue;
      // One piece a slice: the small entries in runs of about 16 KiB, each 40,000-character value alone.
      const lengths = slices.map((slice) => slice.length);
      expect(lengths.filter((n) => n > 20_000)).toHaveLength(3);
      expect(lengths.filter((n) => n > 40_200)).toEqual([]);
      expect(slices.length).toBeLessThan(200);
    }
  });

  it("serve a state transfer's chunks from the state, piece by piece, never joining the whole string", () => {
    // A context whose application counts how often its state is turned into a snapshot's value:
    // joining the whole string (encodeSnapshot) would do it once more.
    let snapshots = 0;
    const counting = makeContext(parseConfig({ members: [1, 2, 3], self: 1 }), {
      ...kv,
      snapshot: (state: Parameters<typeof kv.snapshot>[0]) => {
        snapshots += 1;
        return kv.snapshot(state);
      },
    });
    let service = contents().service;
    for (let i = 0; i < 30; i++) {
      const value = i % 4 === 0 ? `é ✓ ${"x".repeat(i * 13)} \u0001` : "y".repeat(i * 17);
      service = counting.service.apply(
        { clientId: `c${i % 3}`, seq: 20 + i, input: { _tag: "put", key: `k${i}`, value } },
        service,
      ).state;
    }
    const c = { ...contents(), service };
    const whole = encodeSnapshot(counting, c);
    for (const chunk of [1, 5, 64, 700, whole.length + 3]) {
      const info = makeSnapshot(counting, c);
      // As the storage thread does: every slice taken, none kept.
      const serialization = serializationOf(info)!;
      while (!serialization.complete) {
        serialization.advance(50);
        serialization.takeChunks();
      }
      snapshots = 0;
      const chunks: string[] = [];
      for (let offset = 0; offset < whole.length; offset += chunk) {
        const piece = snapshotSlice(info, offset, chunk);
        expect(piece).toBe(whole.slice(offset, offset + chunk));
        // Asked again (a lost chunk): the same bytes.
        expect(snapshotSlice(info, offset, chunk)).toBe(piece);
        chunks.push(piece);
      }
      expect(chunks.join("")).toBe(whole);
      expect(snapshotSlice(info, whole.length, chunk)).toBe("");
      // Backwards (a transfer that starts over), and five transfers interleaved (more than it keeps cursors for).
      expect(snapshotSlice(info, 0, chunk)).toBe(whole.slice(0, chunk));
      const offsets = [0, 0, 0, 0, 0];
      for (let round = 0; round < 3; round++)
        for (let t = 0; t < offsets.length; t++) {
          expect(snapshotSlice(info, offsets[t]!, chunk)).toBe(whole.slice(offsets[t], offsets[t]! + chunk));
          offsets[t] = offsets[t]! + chunk * (t + 1);
        }
      // The digest without the string, too.
      expect(info.contentDigest).toBe(contentDigestOf(whole));
      expect(snapshotSize(info)).toBe(whole.length);
      // Nothing was encoded whole meanwhile (that reads the application's snapshot value once); the
      // whole string, asked for at last, is.
      expect(snapshots).toBe(0);
      snapshots = 0;
      expect(info.data).toBe(whole);
      expect(snapshots).toBe(1);
    }
    // A snapshot that holds its bytes (read from disk, or received) is sliced as it is.
    const plain = { slot: 8, digest: "d", contentDigest: contentDigestOf(whole), data: whole };
    expect(snapshotSlice(plain, 3, 10)).toBe(whole.slice(3, 13));
  });

  it("keep each session's command digest, and decode a session written without one so that it answers no retry", () => {
    const a = encodeSnapshot(ctx, contents());
    const back = decodeSnapshot(ctx, a);
    if (typeof back === "string") throw new Error(back);
    const retry = { clientId: "c2", seq: 4, input: { _tag: "append", key: "j", value: "x" } } as const;
    expect(ctx.service.apply(retry, back.service).output).toEqual({
      _tag: "duplicate",
      output: { _tag: "value", value: "x" },
    });
    // A snapshot from before sessions kept digests: [clientId, seq, output] only.
    const legacy = JSON.parse(a) as { sessions: unknown[][] };
    legacy.sessions = legacy.sessions.map((x) => x.slice(0, 3));
    const old = decodeSnapshot(ctx, JSON.stringify(legacy));
    if (typeof old === "string") throw new Error(old);
    expect(ctx.service.apply(retry, old.service).output).toEqual({ _tag: "reused", seq: 4 });
    expect(ctx.service.apply({ ...retry, seq: 5 }, old.service).output._tag).toBe("executed");
  });

  it("are refused when a byte, the slot or the state digest does not match the claim", () => {
    const info = makeSnapshot(ctx, contents());
    const verify = (data: string, claim: SnapshotClaim): unknown => verifySnapshot(ctx, readSnapshot(data), claim);
    expect(typeof verify(info.data, info)).toBe("object");
    const tampered = info.data.replace('"x"', '"y"');
    expect(verify(tampered, info)).toMatch(/^content digest/);
    expect(verify(tampered, { ...info, contentDigest: contentDigestOf(tampered) })).toMatch(/^state digest/);
    expect(verify(info.data, { ...info, slot: 9 })).toBe("snapshot of slot 8, claimed 9");
    expect(verify("{", { ...info, contentDigest: contentDigestOf("{") })).toMatch(/^not JSON/);
    expect(verify("{}", { ...info, contentDigest: contentDigestOf("{}") })).toBe("not a paxos-lease snapshot");
  });
});

describe("a snapshot installed by state transfer", () => {
  /** A leader's snapshot after some writes, as a chunk of it all, and a follower of another cluster far behind it. */
  const setUp = () => transferEnds((i) => `é ${"v".repeat(i * 9)}`);

  it("is kept as its state's serialization, and persisted in slices, not as the string received", () => {
    const { snapshot, follower, now } = setUp();
    const data = snapshot.data;
    const { state, effects } = step(follower, {
      _tag: "Receive",
      now,
      from: 1,
      message: snapshotChunk(snapshot, data),
    });
    expect(state.learner.executedUpTo).toBe(snapshot.slot);
    const kept = state.learner.snapshot!;
    expect(serializationOf(kept)).toBeDefined();
    const persisted = effects.flatMap((e) => (e._tag === "Persist" && e.record._tag === "snapshot" ? [e.record] : []));
    expect(persisted).toHaveLength(1);
    expect(serializationOf(persisted[0]!)).toBe(serializationOf(kept));
    // The same bytes and digests as the received ones, read off the state.
    expect({ ...kept }).toEqual({ ...snapshot });
    expect(persisted[0]!.data).toBe(data);
  });

  it("is taken chunk by chunk, never held whole, and refused at the chunk its JSON goes wrong or at the end on a digest", () => {
    const { snapshot, follower, now } = setUp();
    const data = snapshot.data;
    const size = 7;
    /** The follower after the chunks of `bytes` (cut every `size` bytes), or the chunk that ended the transfer. */
    const feed = (bytes: string) => {
      let s = follower;
      for (let offset = 0; offset < bytes.length; offset += size) {
        const message = snapshotChunk(snapshot, bytes, offset, size);
        s = step(s, { _tag: "Receive", now, from: 1, message }).state;
        if (s.learner.transfer === null) return { state: s, endedAt: offset };
        // What the transfer holds of the bytes: a count, two digest lanes and the decoding, no string of them.
        expect(s.learner.transfer.received).toBe(Math.min(bytes.length, offset + size));
        expect(JSON.stringify(s.learner.transfer.decoding)).not.toContain(bytes.slice(0, offset + size));
      }
      return { state: s, endedAt: null };
    };
    const whole = feed(data);
    expect(whole.state.learner.executedUpTo).toBe(snapshot.slot);
    expect({ ...whole.state.learner.snapshot! }).toEqual({ ...snapshot });
    // A value changed on the way: JSON still, so refused by the content digest once complete.
    const changed = feed(data.replace('"k3"', '"k9"'));
    expect(changed.endedAt).toBe(Math.floor((data.length - 1) / size) * size);
    expect(changed.state.learner.snapshot).toBe(follower.learner.snapshot);
    // Malformed: dropped at the chunk that breaks it, the state untouched.
    const at = data.indexOf('"entries"');
    const broken = feed(`${data.slice(0, at)}}${data.slice(at + 1)}`);
    expect(broken.endedAt).toBe(Math.floor(at / size) * size);
    expect(broken.state.learner.executedUpTo).toBe(follower.learner.executedUpTo);
  });

  it("says why it refused a transfer: the sender, the snapshot, the check that failed and the byte", () => {
    const { snapshot, follower, now } = setUp();
    const data = snapshot.data;
    /** The effects of taking `bytes` in one chunk claimed as `claim`. */
    const refusals = (bytes: string, claim: typeof snapshot = snapshot) => {
      const { state, effects } = step(follower, {
        _tag: "Receive",
        now,
        from: 1,
        message: snapshotChunk(claim, bytes),
      });
      expect(state.learner.transfer).toBeNull();
      expect(state.learner.executedUpTo).toBe(follower.learner.executedUpTo);
      expect(effects.filter((e) => e._tag === "Persist")).toEqual([]);
      return effects.filter((e) => e._tag === "TransferRefused");
    };
    const at = data.indexOf('"entries"');
    const [json] = refusals(`${data.slice(0, at)}}${data.slice(at + 1)}`);
    expect(json).toMatchObject({ from: 1, slot: snapshot.slot, digest: snapshot.digest, check: "json", offset: at });
    expect(json!.reason).toMatch(new RegExp(`^not JSON at byte ${at}: `));
    const tampered = data.replace('"k3"', '"k9"');
    const [content] = refusals(tampered);
    expect(content).toMatchObject({ check: "contentDigest", offset: data.length });
    expect(content!.reason).toMatch(/^content digest/);
    // The bytes are the claimed ones, but the state they hold is not the claimed state.
    const [state] = refusals(tampered, { ...snapshot, contentDigest: contentDigestOf(tampered) });
    expect(state).toMatchObject({ check: "state", offset: data.length });
    expect(state!.reason).toMatch(/^state digest/);
    // A good transfer says nothing of the kind.
    const good = step(follower, { _tag: "Receive", now, from: 1, message: snapshotChunk(snapshot, data) });
    expect(good.effects.filter((e) => e._tag === "TransferRefused")).toEqual([]);
  });

  it("is kept as its state's serialization even when the bytes received serialize otherwise (an older version's)", () => {
    const { snapshot, follower, now } = setUp();
    const envelope = JSON.parse(snapshot.data) as { sessions: unknown[][] };
    envelope.sessions = envelope.sessions.map((session) => session.slice(0, 3));
    const older = JSON.stringify(envelope);
    const decoded = decodeSnapshot(ctx, older);
    if (typeof decoded === "string") throw new Error(decoded);
    const claim = { slot: snapshot.slot, digest: snapshotDigest(ctx, decoded), contentDigest: contentDigestOf(older) };
    const mine = encodeSnapshot(ctx, decoded);
    expect(mine).not.toBe(older);
    // Read back from disk, such a snapshot is kept as the bytes read.
    const kept = keptSnapshot(ctx, decoded, older, claim);
    expect(serializationOf(kept)).toBeUndefined();
    expect(kept).toEqual({ ...claim, data: older });
    // Received, it was never held whole: the replica keeps and persists its own serialization,
    // with that serialization's digest (the divergence digest is the claimed one).
    const { state, effects } = step(follower, { _tag: "Receive", now, from: 1, message: snapshotChunk(claim, older) });
    const installed = state.learner.snapshot!;
    expect(serializationOf(installed)).toBeDefined();
    expect({ ...installed }).toEqual({ ...claim, contentDigest: contentDigestOf(mine), data: mine });
    const persisted = effects.find((e) => e._tag === "Persist" && e.record._tag === "snapshot");
    expect(persisted?._tag === "Persist" && persisted.record._tag === "snapshot" && persisted.record.data).toBe(mine);
  });
});

describe("records with snapshots", () => {
  /** A cluster that took snapshots of slots 4 and 8, its disks not compacted. */
  const cluster = snapshottingCluster;

  const recover = (records: readonly DurableRecord<KvInput>[]) =>
    step(initialState(parseConfig({ members: [1, 2, 3], self: 2 }), kv), { _tag: "Recover", now: 0, records }).state;

  it("compaction keeps exactly what Recover needs", () => {
    const records = cluster().node(2).records;
    const compacted = compactRecords(records);
    expect(compacted.length).toBeLessThan(records.length);
    expect(compacted.filter((r) => r._tag === "promise")).toEqual([]);
    expect(compacted.filter((r) => r._tag === "snapshot").map((r) => r.slot)).toEqual([4, 8]);
    const full = recover(records);
    const compact = recover(compacted);
    expect(compact.acceptor.maxBal).toEqual(full.acceptor.maxBal);
    expect(slotMapEntries(compact.acceptor.votes)).toEqual(slotMapEntries(full.acceptor.votes));
    expect(slotMapEntries(compact.learner.log)).toEqual(slotMapEntries(full.learner.log));
    expect(compact.learner.executedUpTo).toBe(9);
    expect(kv.digest(compact.learner.service.app)).toBe(kv.digest(full.learner.service.app));
    expect(compact.learner.snapshot).toEqual(full.learner.snapshot);
    expect(compact.learner.priorSnapshot).toEqual(full.learner.priorSnapshot);
  });

  it("compaction keeps a removed replica's hand-over record, which no snapshot stands for", () => {
    const records: DurableRecord<KvInput>[] = [{ _tag: "handOver", epoch: 1 }, ...cluster().node(2).records];
    expect(records.findIndex((r) => r._tag === "snapshot")).toBeGreaterThan(0);
    expect(compactRecords(records).filter((r) => r._tag === "handOver")).toEqual([{ _tag: "handOver", epoch: 1 }]);
  });

  it("Recover keeps the latest snapshot as its state's serialization, not as the string read from disk", () => {
    // Records as a disk gives them back: plain strings, no serialization behind them.
    const records = JSON.parse(JSON.stringify(cluster().node(2).records)) as DurableRecord<KvInput>[];
    const latest = records.filter((r) => r._tag === "snapshot").at(-1)!;
    const s = recover(records);
    expect(s.learner.snapshot?.slot).toBe(latest.slot);
    expect(serializationOf(s.learner.snapshot!)).toBeDefined();
    expect({ ...s.learner.snapshot! }).toEqual({
      slot: latest.slot,
      digest: latest.digest,
      contentDigest: latest.contentDigest,
      data: latest.data,
    });
  });

  it("a crash before the snapshot is durable leaves the previous snapshot and every vote above it", () => {
    const records = cluster().node(2).records;
    const last = records.map((r) => r._tag).lastIndexOf("snapshot");
    const lost = records.slice(0, last); // the Persist of the snapshot of slot 8 never reached the disk
    const s = recover(lost);
    expect(s.learner.snapshot?.slot).toBe(4);
    expect(s.acceptor.truncatedUpTo).toBe(4);
    expect(slotMapEntries(s.acceptor.votes).map(([slot]) => slot)).toEqual([5, 6, 7, 8, 9]);
    // The chosen records of slots 8 and 9 follow the snapshot record (chosen records go last): lost too.
    expect(s.learner.executedUpTo).toBe(7);
  });

  it("a corrupted snapshot on disk stops Recover loudly", () => {
    const records = cluster()
      .node(2)
      .records.map((r) => (r._tag === "snapshot" && r.slot === 8 ? { ...r, data: r.data.replace('"8"', '"0"') } : r));
    expect(() => recover(records)).toThrow(/the snapshot of slot 8 is corrupt/);
  });
});

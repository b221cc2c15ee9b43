/**
 * The driver with a toy core (a counter that persists every input, replies, and echoes a
 * message to replica 2): Persist is durable before the effects that follow it, many steps
 * share one commit, limits hold, and a throwing core stops the replica.
 */
import fs from "node:fs";
import path from "node:path";
import { Schema } from "effect";
import { afterEach, describe, expect, it } from "vitest";
import type { Event, StepResult } from "../core/index.ts";
import { monotonicClock } from "./clock.ts";
import { Driver, type DurableLog } from "./driver.ts";
import { jsonCodec } from "./framing.ts";
import { sleep, tempDir, waitFor } from "./testing.ts";
import { TraceWriter } from "./trace.ts";

type Msg = { readonly _tag: "echo"; readonly n: number };
type Rec = { readonly _tag: "added"; readonly n: number };
type Input = { readonly add: number };
interface State {
  readonly total: number;
  readonly recovered: number;
  readonly ticks: number;
  readonly nows: readonly number[];
  /** Where the kept transfer's next piece starts while the toy takes them back (null: it takes none). */
  readonly keptAt?: number | null;
  /** The events stepped while it took them: `kept <offset>+<chars>` or the event's tag. */
  readonly keptLog?: readonly string[];
}

function toyStep(state: State, event: Event<Msg, Rec, Input>): StepResult<State, Msg, Rec, number> {
  const nows = [...state.nows.slice(-50), event.now];
  switch (event._tag) {
    case "Recover":
      return {
        state: {
          ...state,
          nows,
          recovered: event.records.length,
          total: event.records.reduce((t, r) => t + r.n, 0),
          keptAt: event.kept === undefined ? null : 0,
        },
        effects: [],
      };
    case "KeptChunks": {
      // Taken only where it stands, as the core does; the last piece ends it.
      const chars = event.chunks.reduce((n, c) => n + c.length, 0);
      if (state.keptAt !== event.offset) return { state: { ...state, nows }, effects: [] };
      const keptLog = [...(state.keptLog ?? []), `kept ${event.offset}+${chars}`];
      return { state: { ...state, nows, keptLog, keptAt: event.last ? null : event.offset + chars }, effects: [] };
    }
    case "Tick": {
      const keptLog = state.keptAt == null ? state.keptLog : [...(state.keptLog ?? []), "tick"];
      return { state: { ...state, nows, ticks: state.ticks + 1, keptLog }, effects: [] };
    }
    case "Receive":
    case "Reconfigure":
    case "OpenSession":
    case "VoteDurable":
    case "FeaturesKnown":
    case "EntriesRead":
      return { state: { ...state, nows }, effects: [] };
    case "ClientRequest": {
      if (event.input.add < 0) throw new Error("assertion failed: negative input");
      const total = state.total + event.input.add;
      return {
        state: { ...state, nows, total },
        effects: [
          { _tag: "Persist", record: { _tag: "added", n: event.input.add } },
          { _tag: "Send", to: 2, message: { _tag: "echo", n: total } },
          { _tag: "Reply", requestId: event.requestId, result: { _tag: "ok", output: total } },
        ],
      };
    }
  }
}

const start: State = { total: 0, recovered: 0, ticks: 0, nows: [] };
const dirs: string[] = [];
const drivers: Driver<State, Msg, Rec, Input, number>[] = [];
afterEach(() => {
  for (const d of drivers.splice(0)) d.stop();
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** A log that records the order of appends against other happenings. */
function journal() {
  const happenings: string[] = [];
  const log = new (class implements DurableLog<Rec> {
    appends = 0;
    recordCount = 0;
    append(records: readonly Rec[]): void {
      this.appends += 1;
      this.recordCount += records.length;
      for (const r of records) happenings.push(`persist ${r.n}`);
    }
  })();
  return { log, happenings };
}

/**
 * A step that answers a peer message with its negation, sent to `replyTo(sender)` (no Persist
 * of its own), and a log whose asynchronous appends wait in `waiting` until a test completes them.
 */
function echoing(replyTo: (from: number) => number) {
  const stepped: number[] = [];
  const echo = (state: State, event: Event<Msg, Rec, Input>): StepResult<State, Msg, Rec, number> => {
    if (event._tag !== "Receive") return toyStep(state, event);
    stepped.push(event.message.n);
    return {
      state,
      effects: [{ _tag: "Send", to: replyTo(event.from), message: { _tag: "echo", n: -event.message.n } }],
    };
  };
  const happenings: string[] = [];
  const waiting: (() => void)[] = [];
  const log: DurableLog<Rec> = {
    recordCount: 0,
    append: () => {
      throw new Error("the driver must use appendAsync");
    },
    appendAsync: (records, done) => {
      happenings.push(`write ${records.map((r) => r.n).join(",")}`);
      waiting.push(() => done(null));
    },
  };
  return { stepped, echo, happenings, waiting, log };
}

function makeDriver(overrides: Partial<ConstructorParameters<typeof Driver<State, Msg, Rec, Input, number>>[0]> = {}) {
  const { log, happenings } = journal();
  const fatal: unknown[] = [];
  const driver = new Driver<State, Msg, Rec, Input, number>({
    step: toyStep,
    state: start,
    log,
    clock: monotonicClock(),
    send: (to, message) => {
      happenings.push(`send ${to} ${message.n}`);
      return true;
    },
    onAlarm: () => undefined,
    onFatal: (error) => fatal.push(error),
    ...overrides,
  });
  drivers.push(driver);
  return { driver, log, happenings, fatal };
}

describe("driver", () => {
  it("recovers first, ticks with fresh monotonic readings, and replies after the record is durable", async () => {
    const { driver, happenings } = makeDriver();
    driver.start([{ _tag: "added", n: 10 }]);
    const result = await driver.submit({ input: { add: 5 }, consistency: "linearizable" });
    happenings.push(`reply ${result._tag === "ok" ? result.output : "?"}`);
    expect(result).toEqual({ _tag: "ok", output: 15 });
    expect(happenings).toEqual(["persist 5", "send 2 15", "reply 15"]);
    await waitFor("ticks", () => (driver.state.ticks > 3 ? true : undefined));
    const nows = driver.state.nows;
    expect([...nows].sort((a, b) => a - b)).toEqual(nows);
    expect(driver.state.recovered).toBe(1);
  });

  it("hands a kept transfer's chunks over a piece at a time, in order, each read once the one before is stepped", async () => {
    // 40 chunks of 64 KiB kept: read back 8 to a piece (512 KiB), as a store would.
    const rows = Array.from({ length: 40 }, (_, i) => String(i % 10).repeat(65_536));
    const reads: number[] = [];
    let largest = 0;
    const { driver } = makeDriver({
      tickIntervalMs: 1,
      keptPiece: (state) => {
        if (state.keptAt == null) return null;
        const offset = state.keptAt;
        const from = offset / 65_536;
        reads.push(offset);
        const chunks = rows.slice(from, from + 8);
        largest = Math.max(
          largest,
          chunks.reduce((n, c) => n + c.length, 0),
        );
        return { offset, chunks, last: from + chunks.length >= rows.length };
      },
    });
    const kept = { from: 2, slot: 9, digest: "d", contentDigest: "c", totalBytes: 50 * 65_536 };
    driver.start([], kept);
    await waitFor("the kept pieces", () => (driver.state.keptAt === null ? true : undefined));
    const taken = (driver.state.keptLog ?? []).filter((e) => e.startsWith("kept"));
    expect(taken).toEqual([0, 8, 16, 24, 32].map((i) => `kept ${i * 65_536}+${8 * 65_536}`));
    // Each piece was read once, where the one before ended, and no event ever held more than a piece.
    expect(reads).toEqual([0, 8, 16, 24, 32].map((i) => i * 65_536));
    expect(largest).toBe(8 * 65_536);
    // Not read again once the toy took the last.
    await sleep(10);
    expect(reads).toHaveLength(5);
  });

  it("ticks at the period the state asks for, and at once at a shorter one when it changes", async () => {
    const { driver } = makeDriver({ tickIntervalMs: (state) => (state.total >= 100 ? 10 : 1_000_000) });
    driver.start([]);
    await sleep(60);
    expect(driver.state.ticks).toBe(0);
    await driver.submit({ input: { add: 100 }, consistency: "linearizable" });
    await waitFor("ticks at the shorter period", () => (driver.state.ticks > 3 ? true : undefined));
  });

  it("takes the next tick's period from the state the tick leaves", async () => {
    // A leader asks for its next tick when its next heartbeat is due: known only once the tick
    // that sent this one is stepped. A period judged before it would tick again at once.
    const { driver } = makeDriver({ tickIntervalMs: (state) => (state.ticks === 0 ? 1 : 1_000_000) });
    driver.start([]);
    await waitFor("the first tick", () => (driver.state.ticks > 0 ? true : undefined));
    await sleep(50);
    expect(driver.state.ticks).toBe(1);
  });

  it("group commits: many concurrent requests share few appends, and every record precedes its effects", async () => {
    const { driver, log, happenings } = makeDriver();
    driver.start([]);
    const results = await Promise.all(
      Array.from({ length: 200 }, () => driver.submit({ input: { add: 1 }, consistency: "linearizable" })),
    );
    expect(results.map((r) => (r._tag === "ok" ? r.output : -1)).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 200 }, (_, i) => i + 1),
    );
    expect(log.recordCount).toBe(200);
    expect(log.appends).toBeLessThan(10);
    // Within the journal, every send of total t comes after the t-th persist.
    let persisted = 0;
    for (const h of happenings) {
      if (h.startsWith("persist")) persisted += 1;
      else expect(Number(h.split(" ")[2])).toBeLessThanOrEqual(persisted);
    }
  });

  it("releases effects before the batch's first Persist at once, and those after it only after the commit", async () => {
    // add 0 is a read: it replies without persisting.
    const readOrWrite = (state: State, event: Event<Msg, Rec, Input>): StepResult<State, Msg, Rec, number> => {
      if (event._tag === "ClientRequest" && event.input.add === 0) {
        return {
          state,
          effects: [{ _tag: "Reply", requestId: event.requestId, result: { _tag: "ok", output: state.total } }],
        };
      }
      return toyStep(state, event);
    };
    // The log notes how many clients still wait at the moment of the commit.
    const pendingAtCommit: number[] = [];
    const holder: { driver?: Driver<State, Msg, Rec, Input, number> } = {};
    const log = {
      recordCount: 0,
      append: (_records: readonly Rec[]) => void pendingAtCommit.push(holder.driver!.depths.requests),
    };
    const { driver } = makeDriver({ step: readOrWrite, log });
    holder.driver = driver;
    driver.start([]);
    await driver.submit({ input: { add: 1 }, consistency: "linearizable" });
    pendingAtCommit.length = 0;
    const results = await Promise.all(
      [0, 2, 0].map((add) => driver.submit({ input: { add }, consistency: "linearizable" })),
    );
    expect(results).toEqual([
      { _tag: "ok", output: 1 },
      { _tag: "ok", output: 3 },
      { _tag: "ok", output: 3 },
    ]);
    // One batch, one commit: the first read was answered before it; the write and the later read after it.
    expect(pendingAtCommit).toEqual([2]);
  });

  it("refuses requests beyond the pending limit and times out unanswered ones", async () => {
    const silent = (state: State, event: Event<Msg, Rec, Input>) => ({
      state: toyStep(state, event).state,
      effects: [],
    });
    const { driver } = makeDriver({ step: silent, requestsPendingMax: 2, requestTimeoutMs: 50 });
    driver.start([]);
    const pending = [1, 2, 3].map(() => driver.submit({ input: { add: 1 }, consistency: "linearizable" }));
    const results = await Promise.all(pending);
    expect(results[2]).toMatchObject({
      _tag: "unavailable",
      outcomeUnknown: false,
      reason: expect.stringMatching(/overloaded/) as unknown,
    });
    expect(results[0]).toMatchObject({
      _tag: "unavailable",
      outcomeUnknown: true,
      reason: expect.stringMatching(/no reply within 50 ms/) as unknown,
    });
  });

  it("takes peer messages before client requests, and client requests only within batchBytesMax", async () => {
    const stepped: string[] = [];
    const { driver } = makeDriver({
      tickIntervalMs: 1_000_000,
      batchBytesMax: 1000,
      step: (state, event) => {
        stepped.push(event._tag);
        return toyStep(state, event);
      },
      onBatch: () => stepped.push("|"),
    });
    driver.start([]);
    const replies = [1, 2, 3].map((add) => driver.submit({ input: { add }, consistency: "linearizable", bytes: 600 }));
    driver.receive(2, { _tag: "echo", n: 1 }, 1, "", 10);
    driver.receive(2, { _tag: "echo", n: 2 }, 2, "", 10);
    expect((await Promise.all(replies)).map((r) => r._tag)).toEqual(["ok", "ok", "ok"]);
    // Recover and both messages ahead of the requests that arrived before them, and one 600-byte
    // request per batch (a second would pass 1000 bytes).
    expect(stepped.join(" ")).toBe("Recover Receive Receive ClientRequest | ClientRequest | ClientRequest |");
  });

  it("drops peer messages beyond the queue limit", () => {
    const { driver } = makeDriver({ eventsQueuedMax: 3 });
    for (let i = 0; i < 10; i++) driver.receive(2, { _tag: "echo", n: i }, i);
    expect(driver.depths).toMatchObject({ events: 3, droppedEvents: 7 });
  });

  it("reads a SendStored's values back as of its step (the batch's own records from the batch), and sends it in its place", async () => {
    type Stored = { readonly _tag: "stored"; readonly slots: readonly number[] };
    const happenings: string[] = [];
    const fatal: unknown[] = [];
    // A store: what was handed over is readable (synced or not), answered on a later turn, in order.
    const handed = new Map<string, Rec>();
    const waiting: (() => void)[] = [];
    const log: DurableLog<Rec> = {
      recordCount: 0,
      append: () => {
        throw new Error("the driver must use appendAsync");
      },
      appendAsync: (records, done) => {
        for (const r of records) handed.set(`added ${r.n}`, r);
        happenings.push(`write ${records.map((r) => r.n).join(",")}`);
        waiting.push(() => done(null));
      },
      read: (keys, done) => {
        happenings.push(`read ${keys.join(",")}`);
        const found = keys.map((key) => handed.get(key));
        setTimeout(() => {
          const missing = keys.find((_, i) => found[i] === undefined);
          if (missing !== undefined) done(new Error(`no record ${missing}`), []);
          else done(null, found as Rec[]);
        }, 1);
      },
    };
    // A request for n persists n, then sends the values of the records named by `slots` (n - 1, n).
    const storedStep = (state: State, event: Event<Msg, Rec, Input>): StepResult<State, Msg, Rec, number, Stored> => {
      if (event._tag !== "ClientRequest") return toyStep(state, event);
      const n = event.input.add;
      return {
        state,
        effects: [
          { _tag: "Persist", record: { _tag: "added", n } },
          { _tag: "SendStored", to: 2, message: { _tag: "stored", slots: n === 1 ? [1] : [n - 1, n] } },
          { _tag: "Reply", requestId: event.requestId, result: { _tag: "ok", output: n } },
        ],
      };
    };
    const readBack: number[] = [];
    const options = {
      step: storedStep,
      state: start,
      log,
      clock: monotonicClock(),
      send: (to: number, message: Msg) => {
        happenings.push(`send ${to} ${message.n}`);
        return true;
      },
      onAlarm: () => undefined,
      onFatal: (error: unknown) => fatal.push(error),
    };
    const driver = new Driver<State, Msg, Rec, Input, number, Stored>({
      ...options,
      stored: {
        keys: (message) => message.slots.map((slot) => `added ${slot}`),
        keyOf: (record) => `added ${record.n}`,
        resolve: (message, records) => ({
          _tag: "echo",
          n: records.reduce((t, r) => t + r.n, 0) * 10 + message.slots.length,
        }),
      },
      onStoredRead: (values) => readBack.push(values),
    });
    driver.start([]);
    const complete = async (what: string): Promise<void> => {
      await waitFor(what, () => (waiting.length > 0 ? true : undefined));
      waiting.shift()!();
    };
    // Its own record only: taken from the batch, no read; sent once that record is durable.
    const first = driver.submit({ input: { add: 1 }, consistency: "linearizable" });
    await complete("the first write");
    expect(await first).toEqual({ _tag: "ok", output: 1 });
    expect(happenings).toEqual(["write 1", "send 2 11"]);
    // Slot 1 from the log, read before this batch's records are handed over; slot 2 from the batch.
    const second = driver.submit({ input: { add: 2 }, consistency: "linearizable" });
    await waitFor("the second write", () => (waiting.length > 0 ? true : undefined));
    expect(happenings.slice(2)).toEqual(["read added 1", "write 2"]);
    await sleep(20);
    // Read back, but not sent before its commit is durable.
    expect(happenings.slice(4)).toEqual([]);
    waiting.shift()!();
    expect(await second).toEqual({ _tag: "ok", output: 2 });
    expect(happenings.slice(4)).toEqual(["send 2 32"]);
    expect(readBack).toEqual([1]);
    // A record the log does not hold stops the replica: the message is never sent, with or without values.
    handed.delete("added 2");
    const third = driver.submit({ input: { add: 3 }, consistency: "linearizable" });
    await complete("the third write");
    expect(await third).toMatchObject({ _tag: "unavailable" });
    expect(String(fatal[0])).toMatch(/reading values at rest back: no record added 2/);
    expect(happenings.slice(5)).toEqual(["read added 2", "write 3"]);
    driver.stop();
    // A driver that cannot read values back stops rather than send a message without them.
    const blind = new Driver<State, Msg, Rec, Input, number, Stored>(options);
    blind.start([]);
    expect(await blind.submit({ input: { add: 5 }, consistency: "linearizable" })).toMatchObject({
      _tag: "unavailable",
    });
    expect(String(fatal[1])).toMatch(/a SendStored effect, but the driver has no reader of values at rest/);
    blind.stop();
  });

  it("stops the replica when the core throws, failing waiting clients", async () => {
    const { driver, fatal } = makeDriver();
    driver.start([]);
    const waiting = driver.submit({ input: { add: -1 }, consistency: "linearizable" });
    expect(await waiting).toMatchObject({ _tag: "unavailable" });
    expect(String(fatal[0])).toMatch(/negative input/);
    expect(await driver.submit({ input: { add: 1 }, consistency: "linearizable" })).toMatchObject({
      _tag: "unavailable",
    });
  });

  it("writes a trace: every event and effect with replica, clock and sequence number", async () => {
    const dir = tempDir("trace");
    dirs.push(dir);
    const file = path.join(dir, "r1.trace.jsonl");
    const trace = new TraceWriter<Msg, Rec, Input, number>(
      file,
      1,
      {
        message: jsonCodec(Schema.Struct({ _tag: Schema.Literal("echo"), n: Schema.Number })),
        record: jsonCodec(Schema.Struct({ _tag: Schema.Literal("added"), n: Schema.Number })),
        input: jsonCodec(Schema.Struct({ add: Schema.Number })),
        output: jsonCodec(Schema.Number),
      },
      "inc-1",
      { clusterId: "c1" },
    );
    const { driver } = makeDriver({ trace, tickIntervalMs: 1000 });
    driver.start([]);
    await driver.submit({ input: { add: 2 }, consistency: "linearizable" });
    driver.receive(2, { _tag: "echo", n: 1 }, 77, "inc-2");
    await sleep(20);
    trace.close();
    const lines = fs
      .readFileSync(file, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.seq)).toEqual(lines.map((_, i) => i));
    expect(lines.every((l) => l.replica === 1)).toBe(true);
    const tags = lines.map((l) =>
      [l.type, ((l.event ?? l.effect) as { _tag?: string } | undefined)?._tag].filter(Boolean).join(":"),
    );
    expect(tags).toEqual([
      "start",
      "event:Recover",
      "event:ClientRequest",
      "commit",
      "effect:Persist",
      "effect:Send",
      "effect:Reply",
      "event:Receive",
    ]);
    expect(lines[0]).toMatchObject({ format: "paxos-lease/trace@1", incarnation: "inc-1", clusterId: "c1" });
    expect(lines[4]).toMatchObject({ effect: { durableSeq: 1, record: { _tag: "added", n: 2 } } });
    expect(lines[5]).toMatchObject({ effect: { to: 2, wireId: 0, message: { n: 2 } } });
    expect(lines[7]).toMatchObject({ event: { from: 2, wireId: 77, senderIncarnation: "inc-2" } });
  });

  it("has a batch's events in the trace file before its records are committed", async () => {
    const dir = tempDir("trace");
    dirs.push(dir);
    const file = path.join(dir, "r1.trace.jsonl");
    const codecs = {
      message: jsonCodec(Schema.Struct({ _tag: Schema.Literal("echo"), n: Schema.Number })),
      record: jsonCodec(Schema.Struct({ _tag: Schema.Literal("added"), n: Schema.Number })),
      input: jsonCodec(Schema.Struct({ add: Schema.Number })),
      output: jsonCodec(Schema.Number),
    };
    const trace = new TraceWriter<Msg, Rec, Input, number>(file, 1, codecs, "inc-1", {});
    const seenAtCommit: string[] = [];
    const log: DurableLog<Rec> = {
      recordCount: 0,
      append: () => seenAtCommit.push(fs.readFileSync(file, "utf8")),
    };
    const { driver } = makeDriver({ trace, log, tickIntervalMs: 1000 });
    driver.start([]);
    await driver.submit({ input: { add: 3 }, consistency: "linearizable" });
    trace.close();
    // The step's only effects follow its Persist, so nothing else flushed the event line earlier.
    expect(seenAtCommit).toHaveLength(1);
    expect(seenAtCommit[0]).toContain('"_tag":"ClientRequest"');
    expect(seenAtCommit[0]).not.toContain('"type":"commit"');
  });

  it("with an asynchronous log, steps what arrives during a commit and holds every effect after a Persist until its records and all before them are durable", async () => {
    const happenings: string[] = [];
    const waiting: (() => void)[] = [];
    let appends = 0;
    const log: DurableLog<Rec> = {
      recordCount: 0,
      append: () => {
        throw new Error("the driver must use appendAsync");
      },
      appendAsync: (records, done) => {
        appends += 1;
        for (const r of records) happenings.push(`write ${r.n}`);
        // Durable only when the test says so.
        waiting.push(() => {
          happenings.push(`durable ${records.map((r) => r.n).join(",")}`);
          done(null);
        });
      },
    };
    const { driver } = makeDriver({ log, send: (to, m) => happenings.push(`send ${to} ${m.n}`) > 0 });
    driver.start([]);
    const first = driver.submit({ input: { add: 1 }, consistency: "linearizable" });
    await waitFor("the first commit to start", () => (waiting.length === 1 ? true : undefined));
    const more = [2, 3, 4].map((n) => driver.submit({ input: { add: n }, consistency: "linearizable" }));
    // The three requests that arrived during the first commit are stepped at once, in one batch.
    await waitFor("the second commit to start", () => (waiting.length === 2 ? true : undefined));
    await sleep(20);
    // Nothing after a Persist has happened yet.
    expect(happenings).toEqual(["write 1", "write 2", "write 3", "write 4"]);
    // The second commit becomes durable first: its effects still wait for the first's.
    waiting.pop()!();
    await sleep(20);
    expect(happenings).toEqual(["write 1", "write 2", "write 3", "write 4", "durable 2,3,4"]);
    waiting.pop()!();
    expect(await first).toEqual({ _tag: "ok", output: 1 });
    expect((await Promise.all(more)).map((r) => (r._tag === "ok" ? r.output : -1))).toEqual([3, 6, 10]);
    expect(happenings.slice(5)).toEqual(["durable 1", "send 2 1", "send 2 3", "send 2 6", "send 2 10"]);
    expect(appends).toBe(2);
  });

  it("steps peer messages during a commit, releasing their effects in order, and holds client bytes beyond one batch", async () => {
    // A peer message is answered with an echo (no Persist); a client request is the toy write.
    const { stepped, echo, happenings, waiting, log } = echoing((from) => from);
    const { driver } = makeDriver({
      step: echo,
      log,
      batchBytesMax: 1000,
      // No tick in the queue to count below.
      tickIntervalMs: 100_000,
      send: (to, m) => happenings.push(`send ${to} ${m.n}`) > 0,
    });
    driver.start([]);
    const big = driver.submit({ input: { add: 1 }, consistency: "linearizable", bytes: 800 });
    await waitFor("the first commit to start", () => (waiting.length === 1 ? true : undefined));
    // 800 client bytes wait for their commit: a request of 300 more waits too, and so does a large
    // peer message; a small one does not.
    const next = driver.submit({ input: { add: 2 }, consistency: "linearizable", bytes: 300 });
    driver.receive(3, { _tag: "echo", n: 9 }, 2, "inc", 5000);
    driver.receive(3, { _tag: "echo", n: 7 }, 1, "inc");
    await waitFor("the peer message to be stepped", () => (stepped.includes(7) ? true : undefined));
    await sleep(20);
    expect(happenings).toEqual(["write 1"]);
    expect(driver.depths.events).toBe(2);
    waiting.shift()!();
    expect(await big).toEqual({ _tag: "ok", output: 1 });
    await waitFor("the second commit to start", () => (waiting.length === 1 ? true : undefined));
    // The echo followed the first write's send (step order); the held request was stepped next.
    expect(happenings).toEqual(["write 1", "send 2 1", "send 3 -7", "send 3 -9", "write 2"]);
    waiting.shift()!();
    expect(await next).toEqual({ _tag: "ok", output: 3 });
  });

  it("lets a message that overtakes leave before earlier commits, waiting only for the records it depends on", async () => {
    // A peer message is answered with an echo of its negation (no Persist of its own).
    const { stepped, echo, happenings, waiting, log } = echoing(() => 3);
    const durable: number[] = [];
    const { driver } = makeDriver({
      step: echo,
      log,
      send: (to, m) => happenings.push(`send ${to} ${m.n}`) > 0,
      // Echoes overtake; each needs the record 99, if pending, durable first.
      overtaking: {
        overtakes: (m) => m.n < 0,
        durable: (r) => void durable.push(r.n),
        dependsOn: (_m, r) => r.n === 99,
      },
    });
    driver.start([{ _tag: "added", n: 5 }]);
    const one = driver.submit({ input: { add: 1 }, consistency: "linearizable" });
    await waitFor("the first commit to start", () => (waiting.length === 1 ? true : undefined));
    driver.receive(2, { _tag: "echo", n: 7 }, 1, "inc");
    // The echo left at once, ahead of the write's send, which waits for record 1.
    await waitFor("the first echo", () => (happenings.includes("send 3 -7") ? true : undefined));
    const two = driver.submit({ input: { add: 99 }, consistency: "linearizable" });
    await waitFor("the second commit to start", () => (waiting.length === 2 ? true : undefined));
    driver.receive(2, { _tag: "echo", n: 8 }, 2, "inc");
    await waitFor("the second echo to be stepped", () => (stepped.includes(8) ? true : undefined));
    await sleep(20);
    expect(happenings).toEqual(["write 1", "send 3 -7", "write 99"]);
    waiting.shift()!();
    expect(await one).toEqual({ _tag: "ok", output: 6 });
    await sleep(10);
    // The second echo still waits for record 99.
    expect(happenings).toEqual(["write 1", "send 3 -7", "write 99", "send 2 6"]);
    waiting.shift()!();
    expect(await two).toEqual({ _tag: "ok", output: 105 });
    expect(happenings.slice(4).sort()).toEqual(["send 2 105", "send 3 -8"]);
    // Told of every record once durable, the recovered ones first.
    expect(durable).toEqual([5, 1, 99]);
  });

  it("steps urgent peer messages first in their batch, so that their answers need not wait for the batch's commit", async () => {
    for (const urgentFirst of [false, true]) {
      // A message of 1000 or more (an Accept, say) persists a record before its echo; a smaller
      // one (a heartbeat) only echoes.
      const { stepped, happenings, waiting, log } = echoing(() => 3);
      const step = (state: State, event: Event<Msg, Rec, Input>): StepResult<State, Msg, Rec, number> => {
        if (event._tag !== "Receive") return toyStep(state, event);
        const n = event.message.n;
        stepped.push(n);
        const echo = { _tag: "Send", to: 3, message: { _tag: "echo", n: -n } } as const;
        return { state, effects: n >= 1000 ? [{ _tag: "Persist", record: { _tag: "added", n } }, echo] : [echo] };
      };
      const { driver } = makeDriver({
        step,
        log,
        send: (to, m) => happenings.push(`send ${to} ${m.n}`) > 0,
        ...(urgentFirst ? { urgent: (m: Msg) => m.n < 1000 } : {}),
      });
      driver.start([]);
      // Both arrive before the driver runs its next batch: the large one first.
      driver.receive(2, { _tag: "echo", n: 1000 }, 1, "inc");
      driver.receive(2, { _tag: "echo", n: 7 }, 2, "inc");
      await waitFor("the commit to start", () => (waiting.length === 1 ? true : undefined));
      await sleep(20);
      expect(stepped, `urgent first: ${urgentFirst}`).toEqual(urgentFirst ? [7, 1000] : [1000, 7]);
      // Stepped first, the small message's echo is before the Persist and leaves at once; stepped
      // after the large one, it waits behind that record's commit.
      expect(happenings, `urgent first: ${urgentFirst}`).toEqual(
        urgentFirst ? ["send 3 -7", "write 1000"] : ["write 1000"],
      );
      waiting.shift()!();
      await waitFor("the rest", () => (happenings.includes("send 3 -1000") ? true : undefined));
      expect(happenings.filter((h) => h.startsWith("send")).sort()).toEqual(["send 3 -1000", "send 3 -7"]);
      driver.stop();
    }
  });

  it("steps the tick after the urgent messages and before the others of its batch", async () => {
    const { happenings, waiting, log } = echoing(() => 3);
    const order: string[] = [];
    const step = (state: State, event: Event<Msg, Rec, Input>): StepResult<State, Msg, Rec, number> => {
      if (event._tag === "Tick" && state.total > 0 && !order.includes("tick")) order.push("tick");
      if (event._tag === "Receive") order.push(String(event.message.n));
      return toyStep(state, event);
    };
    const { driver } = makeDriver({
      step,
      log,
      send: (to, m) => happenings.push(`send ${to} ${m.n}`) > 0,
      urgent: (m) => m.n < 1000,
      commitsInFlightMax: 1,
      tickIntervalMs: 5,
    });
    driver.start([]);
    // A write's commit stays outstanding: no batch is stepped meanwhile, and events pile up.
    const write = driver.submit({ input: { add: 1 }, consistency: "linearizable" });
    await waitFor("the commit to start", () => (waiting.length === 1 ? true : undefined));
    driver.receive(2, { _tag: "echo", n: 1000 }, 1, "inc");
    driver.receive(2, { _tag: "echo", n: 7 }, 2, "inc");
    await sleep(30);
    expect(order).toEqual([]);
    waiting.shift()!();
    await write;
    await waitFor("the next batch", () => (order.length === 3 ? true : undefined));
    expect(order).toEqual(["7", "tick", "1000"]);
  });

  it("stops (fail-stop) when an asynchronous commit fails, releasing nothing that followed it", async () => {
    const sent: number[] = [];
    const log: DurableLog<Rec> = {
      recordCount: 0,
      append: () => undefined,
      appendAsync: (_records, done) => setTimeout(() => done(new Error("disk on fire")), 5),
    };
    const { driver, fatal } = makeDriver({ log, send: (_to, m) => sent.push(m.n) > 0 });
    driver.start([]);
    const result = await driver.submit({ input: { add: 7 }, consistency: "linearizable" });
    expect(result).toMatchObject({ _tag: "unavailable" });
    expect(String(fatal[0])).toMatch(/disk on fire/);
    expect(sent).toEqual([]);
  });

  it("at a clean stop, writes no deferred records while an earlier commit is outstanding", async () => {
    // add < 0 persists only a deferrable record (n < 0); add > 0 is the toy write.
    let deferredStepped = false;
    const step = (state: State, event: Event<Msg, Rec, Input>): StepResult<State, Msg, Rec, number> => {
      if (event._tag !== "ClientRequest" || event.input.add >= 0) return toyStep(state, event);
      deferredStepped = true;
      return {
        state,
        effects: [
          { _tag: "Persist", record: { _tag: "added", n: event.input.add } },
          { _tag: "Reply", requestId: event.requestId, result: { _tag: "ok", output: state.total } },
        ],
      };
    };
    const { waiting, happenings } = echoing(() => 3);
    const log: DurableLog<Rec> = {
      recordCount: 0,
      append: (records) => void happenings.push(`append ${records.map((r) => r.n).join(",")}`),
      appendAsync: (records, done) => {
        happenings.push(`write ${records.map((r) => r.n).join(",")}`);
        waiting.push(() => done(null));
      },
    };
    const { driver } = makeDriver({ step, log, deferrable: (record) => record.n < 0 });
    driver.start([]);
    void driver.submit({ input: { add: 1 }, consistency: "linearizable" });
    await waitFor("the write's commit to start", () => (waiting.length === 1 ? true : undefined));
    // Its reply waits behind the write's commit; its record waits for the next commit.
    const reply = driver.submit({ input: { add: -1 }, consistency: "linearizable" });
    await waitFor("the deferrable request to be stepped", () => (deferredStepped ? true : undefined));
    driver.stop();
    expect(await reply).toMatchObject({ _tag: "unavailable", outcomeUnknown: true });
    // The deferred record is not written: the write before it was never acknowledged.
    expect(happenings).toEqual(["write 1"]);
  });

  it("releases effects after a deferrable Persist before the commit, and steps peer messages before client requests", async () => {
    // A write persists a deferrable "note" (n = -1) before its reply, then a barrier record.
    const order: string[] = [];
    const noteThenBarrier = (state: State, event: Event<Msg, Rec, Input>): StepResult<State, Msg, Rec, number> => {
      if (event._tag === "Receive") order.push(`receive ${event.message.n}`);
      if (event._tag !== "ClientRequest") return toyStep(state, event);
      order.push(`request ${event.input.add}`);
      const total = state.total + event.input.add;
      return {
        state: { ...state, total },
        effects: [
          { _tag: "Persist", record: { _tag: "added", n: -1 } },
          { _tag: "Reply", requestId: event.requestId, result: { _tag: "ok", output: total } },
          { _tag: "Persist", record: { _tag: "added", n: event.input.add } },
          { _tag: "Send", to: 2, message: { _tag: "echo", n: total } },
        ],
      };
    };
    const holder: { driver?: Driver<State, Msg, Rec, Input, number> } = {};
    const atCommit: string[] = [];
    const log = {
      recordCount: 0,
      append: (records: readonly Rec[]) =>
        void atCommit.push(`${records.map((r) => r.n).join(",")} with ${holder.driver!.depths.requests} waiting`),
    };
    const { driver, happenings } = makeDriver({ step: noteThenBarrier, log, deferrable: (record) => record.n < 0 });
    holder.driver = driver;
    driver.start([]);
    const reply = driver.submit({ input: { add: 4 }, consistency: "linearizable" });
    driver.receive(2, { _tag: "echo", n: 9 }, 1, "inc");
    expect(await reply).toEqual({ _tag: "ok", output: 4 });
    await waitFor("the send", () => (happenings.includes("send 2 4") ? true : undefined));
    // Both records in one commit, by which time the reply had gone out; the send came after it.
    expect(atCommit).toEqual(["-1,4 with 0 waiting"]);
    expect(happenings).toEqual(["send 2 4"]);
    // The peer message that arrived after the request was stepped first.
    expect(order).toEqual(["receive 9", "request 4"]);
  });

  it("holds nothing behind a Persist with notify, commits it at once, and feeds VoteDurable once it is durable", async () => {
    // A write's record asks for a notice (as the leader's own vote does); a later write's reply
    // must not wait for it, and the notice comes only once the log says the record is durable.
    const order: string[] = [];
    const notifying = (state: State, event: Event<Msg, Rec, Input>): StepResult<State, Msg, Rec, number> => {
      if (event._tag === "VoteDurable") {
        order.push(`durable ${event.slot}`);
        return { state, effects: [] };
      }
      if (event._tag !== "ClientRequest") return toyStep(state, event);
      const total = state.total + event.input.add;
      return {
        state: { ...state, total },
        effects: [
          {
            _tag: "Persist",
            record: { _tag: "added", n: total },
            notify: { slot: total, ballot: { round: 1, replica: 1 } },
          },
          { _tag: "Reply", requestId: event.requestId, result: { _tag: "ok", output: total } },
        ],
      };
    };
    const { happenings, waiting, log } = echoing(() => 2);
    const { driver } = makeDriver({ step: notifying, log });
    driver.start([]);
    const first = await driver.submit({ input: { add: 1 }, consistency: "linearizable" });
    const second = await driver.submit({ input: { add: 2 }, consistency: "linearizable" });
    // Both replies went out with neither commit durable, and each record was handed over at once.
    expect([first, second]).toEqual([
      { _tag: "ok", output: 1 },
      { _tag: "ok", output: 3 },
    ]);
    expect(happenings).toEqual(["write 1", "write 3"]);
    expect(order).toEqual([]);
    waiting.shift()!();
    await waitFor("the first notice", () => (order.length > 0 ? true : undefined));
    expect(order).toEqual(["durable 1"]);
    waiting.shift()!();
    await waitFor("the second notice", () => (order.length > 1 ? true : undefined));
    expect(order).toEqual(["durable 1", "durable 3"]);
  });

  it("defers a batch of deferrable records to the next commit, commits them alone after a while, and keeps them at a clean stop", async () => {
    // add < 0 persists only a deferrable record (n < 0) and replies; add > 0 is the toy write.
    const noteOrWrite = (state: State, event: Event<Msg, Rec, Input>): StepResult<State, Msg, Rec, number> => {
      if (event._tag === "ClientRequest" && event.input.add < 0) {
        return {
          state,
          effects: [
            { _tag: "Persist", record: { _tag: "added", n: event.input.add } },
            { _tag: "Reply", requestId: event.requestId, result: { _tag: "ok", output: state.total } },
          ],
        };
      }
      return toyStep(state, event);
    };
    const commits: string[] = [];
    const log = {
      recordCount: 0,
      append: (records: readonly Rec[]) => void commits.push(records.map((r) => r.n).join(",")),
    };
    const { driver } = makeDriver({
      step: noteOrWrite,
      log,
      deferrable: (record) => record.n < 0,
      deferredCommitMs: 50,
    });
    driver.start([]);
    expect(await driver.submit({ input: { add: -1 }, consistency: "linearizable" })).toEqual({ _tag: "ok", output: 0 });
    expect(commits).toEqual([]);
    await driver.submit({ input: { add: 5 }, consistency: "linearizable" });
    // The deferred record went first, in the same commit as the next barrier.
    expect(commits).toEqual(["-1,5"]);
    await driver.submit({ input: { add: -2 }, consistency: "linearizable" });
    await waitFor("the deferred record to be committed alone", () => (commits.length === 2 ? true : undefined), 5000);
    expect(commits).toEqual(["-1,5", "-2"]);
    await driver.submit({ input: { add: -3 }, consistency: "linearizable" });
    driver.stop();
    expect(commits).toEqual(["-1,5", "-2", "-3"]);
  });

  it("puts the sends before a batch's first Persist on the wire before the commit", async () => {
    // A write that, like a leader's proposal, sends first and persists after.
    const sendThenPersist = (state: State, event: Event<Msg, Rec, Input>): StepResult<State, Msg, Rec, number> => {
      if (event._tag !== "ClientRequest") return toyStep(state, event);
      return {
        state,
        effects: [
          { _tag: "Send", to: 2, message: { _tag: "echo", n: event.input.add } },
          { _tag: "Persist", record: { _tag: "added", n: event.input.add } },
          { _tag: "Reply", requestId: event.requestId, result: { _tag: "ok", output: event.input.add } },
        ],
      };
    };
    const { driver, happenings } = makeDriver({
      step: sendThenPersist,
      flushSends: () => void happenings.push("flush"),
    });
    driver.start([]);
    await driver.submit({ input: { add: 8 }, consistency: "linearizable" });
    expect(happenings).toEqual(["send 2 8", "flush", "persist 8"]);
  });
});

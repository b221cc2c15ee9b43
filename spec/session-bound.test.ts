/**
 * The bounded session table of feature level 2 (spec/service.ts, Ongaro's thesis section 6.3):
 * deterministic least-recently-executed eviction by count and by bytes of saved outputs, and a
 * client whose session is gone refused as `expired`, never executed a second time. Each test says
 * the hazard it rules out.
 */
import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { emptyPersistentMap, pmGet, pmSet } from "./persistent-map.ts";
import { kv, type KvInput } from "./kv.ts";
import {
  featureLevelMax,
  featureLevelOf,
  featuresMisfit,
  outputBytes,
  raiseFeatures,
  restoredFeatures,
  serviceOf,
  sessionOf,
  sessionsOf,
  type Request,
  type ServiceState,
  type Session,
} from "./service.ts";
import type { KvOutput, KvState } from "./kv.ts";

const service = serviceOf(kv);
type State = ServiceState<KvState, KvOutput>;
const bounds = (sessionsMax: number, outputBytesMax = 1 << 30) => ({ sessionsMax, outputBytesMax });
const put = (key: string, value = "v"): KvInput => ({ _tag: "put", key, value });

/** The eviction order as the linked list holds it, walked from the least recent both ways. */
function evictionOrder(state: State): string[] {
  const f = state.features!;
  // Walks bounded by the links held, so that a list with a cycle fails here instead of hanging.
  const ids: string[] = [];
  for (let id = f.oldest; id !== undefined && ids.length <= f.links.size; id = pmGet(f.links, id)?.newer) ids.push(id);
  const back: string[] = [];
  for (let id = f.newest; id !== undefined && back.length <= f.links.size; id = pmGet(f.links, id)?.older)
    back.unshift(id);
  expect(back).toEqual(ids);
  expect(f.links.size).toBe(ids.length);
  return ids;
}

/** The eviction order the rule names: sessions by their place, the lowest first. */
function byPlace(state: State): string[] {
  return sessionsOf(state)
    .sort(([, a], [, b]) => a.at! - b.at!)
    .map(([clientId]) => clientId);
}

function run(state: State, ...requests: Request<KvInput>[]): { state: State; tags: string[] } {
  const tags: string[] = [];
  for (const r of requests) {
    const applied = service.apply(r, state);
    state = applied.state;
    tags.push(applied.output._tag);
  }
  return { state, tags };
}

describe("feature level 2: the bounded session table", () => {
  it("evicts the least recently executed session, not the oldest opened (a busy client keeps its session)", () => {
    const level2 = raiseFeatures(service.start, 2, bounds(2));
    const { state } = run(
      level2,
      { clientId: "a", seq: 1, input: put("k") },
      { clientId: "b", seq: 1, input: put("k") },
      { clientId: "a", seq: 2, input: put("k") },
      { clientId: "c", seq: 1, input: put("k") },
    );
    expect(sessionsOf(state).map(([c]) => c)).toEqual(["a", "c"]);
    expect(state.features?.evicted).toBe(1);
  });

  it("refuses a retry of an evicted session as expired instead of executing it again", () => {
    const level2 = raiseFeatures(service.start, 2, bounds(1));
    const append: KvInput = { _tag: "append", key: "log", value: "x" };
    const { state, tags } = run(
      level2,
      { clientId: "a", seq: 1, input: append },
      { clientId: "b", seq: 1, input: append },
      // a's answer was lost; its retry comes after its eviction
      { clientId: "a", seq: 1, input: append, retry: true },
      // and its next request, above 1, cannot open a session either
      { clientId: "a", seq: 2, input: append },
    );
    expect(tags).toEqual(["executed", "executed", "expired", "expired"]);
    expect(state.executed).toBe(2);
    expect(sessionOf(state, "a")).toBeUndefined();
  });

  it("at level 1 the same requests run again: the hazard the level closes", () => {
    const append: KvInput = { _tag: "append", key: "log", value: "x" };
    const { state } = run(
      service.start,
      { clientId: "a", seq: 1, input: append },
      { clientId: "a", seq: 1, input: append, retry: true },
    );
    expect(state.executed).toBe(1);
    expect(featureLevelOf(state)).toBe(1);
  });

  it("bounds the bytes of saved outputs: an append's whole value is its output", () => {
    const level2 = raiseFeatures(service.start, 2, bounds(100, 3000));
    const big = "x".repeat(1000);
    let state = level2;
    for (let i = 0; i < 5; i++)
      state = run(state, { clientId: `c${i}`, seq: 1, input: { _tag: "append", key: `k${i}`, value: big } }).state;
    expect(state.sessions.size).toBe(2);
    expect(state.features!.outputBytes).toBeLessThanOrEqual(3000);
    expect(sessionsOf(state).map(([c]) => c)).toEqual(["c3", "c4"]);
  });

  it("keeps the newest session even when its output alone is over the byte bound", () => {
    const level2 = raiseFeatures(service.start, 2, bounds(100, 10));
    const { state } = run(
      level2,
      { clientId: "a", seq: 1, input: put("k") },
      { clientId: "b", seq: 1, input: { _tag: "append", key: "j", value: "y".repeat(50) } },
    );
    expect(sessionsOf(state).map(([c]) => c)).toEqual(["b"]);
  });

  it("cuts a level-1 table at the raise, in client id order, and never lowers the level", () => {
    const { state } = run(service.start, ...["d", "b", "a", "c"].map((c) => ({ clientId: c, seq: 1, input: put(c) })));
    const raised = raiseFeatures(state, 2, bounds(2));
    expect(sessionsOf(raised).map(([c]) => c)).toEqual(["c", "d"]);
    expect(raised.features?.evicted).toBe(2);
    expect(featureLevelOf(raiseFeatures(raised, 2, bounds(5)))).toBe(2);
    expect(featuresMisfit(1, bounds(5))).toMatch(/feature level 1/);
    expect(featuresMisfit(featureLevelMax + 1, bounds(5))).toMatch(new RegExp(`feature level ${featureLevelMax + 1}`));
    expect(featuresMisfit(2, bounds(0))).toMatch(/sessionsMax/);
  });

  test.prop([fc.array(fc.record({ client: fc.integer({ min: 0, max: 6 }), retry: fc.boolean() }), { maxLength: 60 })])(
    "never executes a (client, seq) twice, and keeps the bounds, whatever the order of requests",
    (steps) => {
      let state = raiseFeatures(service.start, 2, bounds(3, 40));
      const next = new Map<number, number>();
      const ran = new Set<string>();
      for (const { client, retry } of steps) {
        const seq = retry ? Math.max(1, (next.get(client) ?? 1) - 1) : (next.get(client) ?? 1);
        const applied = service.apply(
          { clientId: `c${client}`, seq, input: { _tag: "append", key: "k", value: "ab" }, retry },
          state,
        );
        state = applied.state;
        if (applied.output._tag === "executed") {
          expect(ran.has(`${client}#${seq}`)).toBe(false);
          ran.add(`${client}#${seq}`);
        }
        if (!retry) next.set(client, seq + 1);
        expect(state.sessions.size).toBeLessThanOrEqual(3);
        if (state.sessions.size > 1) expect(state.features!.outputBytes).toBeLessThanOrEqual(40);
        expect(evictionOrder(state)).toEqual(byPlace(state));
      }
      expect(state.executed).toBe(ran.size);
    },
  );

  it("restores the order from a snapshot's sessions and refuses a table that breaks it", () => {
    const { state } = run(
      raiseFeatures(service.start, 2, bounds(3)),
      { clientId: "a", seq: 1, input: put("k") },
      { clientId: "b", seq: 1, input: put("k") },
    );
    const f = restoredFeatures(state.sessions, 2, bounds(3), 0, state.executed);
    if (typeof f === "string") throw new Error(f);
    expect(evictionOrder({ ...state, features: f })).toEqual(evictionOrder(state));
    const output: KvOutput = { _tag: "ok" };
    const shared = pmSet(
      pmSet(emptyPersistentMap<Session<KvOutput>>(), "a", { seq: 1, command: "", output, at: 1 }),
      "b",
      {
        seq: 1,
        command: "",
        output,
        at: 1,
      },
    );
    expect(restoredFeatures(shared, 2, bounds(3), 0, 2)).toMatch(/share place 1/);
    const placeless = pmSet(emptyPersistentMap<Session<KvOutput>>(), "a", { seq: 1, command: "", output });
    expect(restoredFeatures(placeless, 2, bounds(3), 0, 2)).toMatch(/no place/);
    expect(restoredFeatures(state.sessions, 2, bounds(1), 0, state.executed)).toMatch(/exceed the bound/);
    expect(outputBytes({ _tag: "value", value: "abc" })).toBe(4 + 5 + 5 + 3);
  });
});

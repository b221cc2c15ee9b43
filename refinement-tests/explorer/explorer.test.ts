/**
 * The explorer of impl/core checked against the world it explores: its time abstraction misses
 * no deadline of the core, a world and checker forked mid-run go on exactly as the original,
 * state keys tell states apart, the searches find a broken replica's bug with a trace that
 * replays in the world, and the correct replica passes at tiny bounds.
 */
import fc from "fast-check";
import { Schema } from "effect";
import { describe, expect, it } from "vitest";
import { kv, type KvInput, type KvOutput, type KvState } from "../../spec/kv.ts";
import { WorldChecker } from "../../proofs/world-checker.ts";
import { ViolationFound } from "../../proofs/violation.ts";
import { step } from "../../impl/core/testing/index.ts";
import { mutantNamed } from "../mutants/index.ts";
import { runOne } from "../suite.ts";
import { scenarioArbitrary, type Action, type Scenario } from "../world/actions.ts";
import { boundsOf } from "../suite.ts";
import { runPrelude } from "../world/preludes.ts";
import { tuningOf, warmUp } from "../world/run.ts";
import { World, type KvReplicaState } from "../world/world.ts";
import { FingerprintSet, Hasher, identityMemo, memoizedHash, valueHash } from "./hash.ts";
import { deadlinesOf } from "./time.ts";
import { defaultBounds, ImplModel, type ModelAction, type ModelState } from "./model.ts";
import { breadthFirst, randomWalks } from "./search.ts";
import { explore, replay } from "./explorer.ts";
import { regressions } from "../regressions/regressions.ts";

/** Replica states met on a few random runs of the world (every role, restarts, transfers). */
function sampleStates(): KvReplicaState[] {
  const out: KvReplicaState[] = [];
  for (let seed = 1; out.length < 400 && seed < 40; seed++) {
    const run = runOne(seed, { shrink: false });
    for (const r of run.first.world.replicas) if (r.state !== null && r.state.started) out.push(r.state);
  }
  return out;
}

/**
 * A deep copy of a value that shows everything a reader of it could see: for each object reached,
 * its prototype, whether it is extensible or frozen, and every own key (symbols and non-enumerable
 * ones too) with its descriptor's flags and value. Functions count by name only.
 */
function image(v: unknown, seen = new Map<object, unknown>()): unknown {
  if (typeof v === "function") return `function ${v.name}`;
  if (typeof v !== "object" || v === null) return v;
  const known = seen.get(v);
  if (known !== undefined) return known;
  const keys: unknown[] = [];
  const out = {
    proto:
      Object.getPrototypeOf(v) === null
        ? null
        : (Object.getPrototypeOf(v) as { constructor?: { name: string } }).constructor?.name,
    extensible: Object.isExtensible(v),
    frozen: Object.isFrozen(v),
    keys,
  };
  seen.set(v, out);
  for (const k of Reflect.ownKeys(v)) {
    const d = Object.getOwnPropertyDescriptor(v, k)!;
    keys.push([String(k), d.enumerable, d.writable, d.configurable, image(d.value, seen), d.get === undefined]);
  }
  return out;
}

/** What a world state passes to the hashes: every replica's state, disk and notices, and what is in flight. */
function hashedParts(s: ModelState): unknown {
  return {
    replicas: s.world.replicas.map((r) => [r.state, r.durable, r.unflushed, r.notices, r.kept]),
    inFlight: s.world.inFlight,
  };
}

/** Deep-freeze a plain value (its objects and arrays). */
function deepFreeze<T>(v: T): T {
  if (typeof v === "object" && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const k of Reflect.ownKeys(v)) deepFreeze((v as Record<PropertyKey, unknown>)[k]);
  }
  return v;
}

/** A state with `now` replaced: what a Tick that changed nothing would leave. */
function sameBut(now: number, s: KvReplicaState): KvReplicaState {
  return { ...s, now };
}

describe("time abstraction", () => {
  it("a Tick before a replica's earliest deadline changes nothing but its clock reading", () => {
    const states = sampleStates();
    expect(states.length).toBeGreaterThan(50);
    let probed = 0;
    for (const s of states) {
      const next = Math.min(...deadlinesOf(s, s.now), s.now + 10_000);
      for (const f of [0.25, 0.5, 0.999]) {
        const at = s.now + (next - s.now) * f;
        if (!(at > s.now && at < next)) continue;
        const r = step(s, { _tag: "Tick", now: at });
        probed++;
        expect(r.effects, `Tick at ${at} (deadline ${next}) sent or persisted something`).toEqual([]);
        expect(valueHash(sameBut(at, r.state))).toEqual(valueHash(sameBut(at, s)));
      }
    }
    expect(probed).toBeGreaterThan(100);
  });

  it("a Tick at the earliest deadline is where something may change: the deadline list is not padded with nonsense", () => {
    const states = sampleStates();
    let changed = 0;
    for (const s of states) {
      const ds = deadlinesOf(s, s.now);
      if (ds.length === 0) continue;
      const r = step(s, { _tag: "Tick", now: Math.min(...ds) });
      if (r.effects.length > 0 || valueHash(sameBut(r.state.now, r.state)).a !== valueHash(sameBut(r.state.now, s)).a)
        changed++;
    }
    expect(changed).toBeGreaterThan(0);
  });
});

describe("forking the world and its checker", () => {
  it("a fork taken mid-run goes on exactly as the original: same states, same verdicts", () => {
    // Drive two worlds with the same actions; fork one of them halfway and continue the fork.
    const actions = [
      { t: "advance", ms: 300 },
      { t: "advance", ms: 300 },
      { t: "deliverAll" },
      { t: "deliverAll" },
      { t: "submit", c: 0, op: { kind: "put", key: 0 } },
      { t: "deliverAll" },
      { t: "crash", r: 0, at: null },
      { t: "advance", ms: 400 },
      { t: "deliverAll" },
      { t: "advance", ms: 300 },
      { t: "deliverAll" },
      { t: "restart", r: 0, clockMs: 5 },
      { t: "deliverAll" },
      { t: "advance", ms: 300 },
      { t: "deliverAll" },
    ] as const satisfies readonly Action[];
    const make = () => {
      const w = new World({ replicas: 3 });
      const c = new WorldChecker<KvState, KvInput, KvOutput>(w, kv, {
        leaseMs: w.tuning.leaseMs,
        alpha: w.tuning.reconfigAlphaSlots,
        initialMembers: w.initialMembers,
      });
      w.observer = (s) => c.observe(s);
      w.boot();
      return { w, c };
    };
    const key = (w: World, c: WorldChecker<KvState, KvInput, KvOutput>) => {
      const h = new Hasher();
      w.hashInto(h);
      c.fingerprint(h);
      return h.done();
    };
    for (let cut = 0; cut <= actions.length; cut += 3) {
      const straight = make();
      const forked = make();
      for (let i = 0; i < cut; i++) forked.w.apply(actions[i]!);
      const w2 = forked.w.clone();
      const c2 = forked.c.fork(w2);
      w2.observer = (s) => c2.observe(s);
      for (let i = cut; i < actions.length; i++) {
        w2.apply(actions[i]!);
        forked.w.apply(actions[i]!); // the original goes on too, unaffected by its copy
      }
      for (const a of actions) straight.w.apply(a);
      expect(key(w2, c2), `fork at ${cut}`).toEqual(key(straight.w, straight.c));
      expect(key(forked.w, forked.c), `original after fork at ${cut}`).toEqual(key(straight.w, straight.c));
      expect(c2.steps).toBe(straight.c.steps);
    }
  });

  it("copies share parts until one changes them: neither sees the other's steps, kept hashes stay true", () => {
    // A clone shares its replica slots, client table and operator's tool with the world it came
    // from, copying each before it changes it, and each part keeps its hash until it changes. At
    // every action of swarm scenarios (clients, faults, membership changes): hash a clone, step
    // the original, and the clone's key must not move; step the clone too, and the two must
    // agree. Every third action changes a hashed world in place. At the end, the world that was
    // copied and hashed at every step must hash as one that ran straight through and was hashed
    // once (a kept hash gone stale would differ).
    const keyOf = (w: World): string => {
      const h = new Hasher();
      w.hashInto(h);
      const { a, b } = h.done();
      return `${a}:${b}`;
    };
    const start = (s: Scenario): World => {
      const w = new World({ replicas: 3, seed: s.seed, tuning: tuningOf(s) });
      w.boot();
      if (s.profile.warmStart) warmUp(w);
      runPrelude(w, s.profile.prelude ?? "none", s.profile.pick ?? 0);
      return w;
    };
    const scenarios = fc.sample(scenarioArbitrary(boundsOf({ actionsMax: 80 })), { seed: 11, numRuns: 12 });
    let steps = 0;
    for (const s of scenarios) {
      const straight = start(s);
      for (const a of s.actions) straight.apply(a);
      let w = start(s);
      s.actions.forEach((a, i) => {
        steps++;
        if (i % 3 === 2) {
          // Hashed, then changed in place (no copy shares it): its kept hashes must be dropped.
          keyOf(w);
          w.apply(a);
          return;
        }
        const copy = w.clone();
        const before = keyOf(copy);
        w.apply(a);
        expect(keyOf(copy), `a copy changed by its original's step ${i}`).toBe(before);
        copy.apply(a);
        expect(keyOf(copy), `step ${i} on a copy and on its original`).toBe(keyOf(w));
        if (i % 2 === 1) w = copy;
      });
      expect(keyOf(w)).toBe(keyOf(straight));
    }
    expect(steps).toBeGreaterThan(200);
  });

  it("the ghost's fingerprint sees every vote, through its memoized per-slot digests and forks", () => {
    const w = new World({ replicas: 3 });
    const c = new WorldChecker<KvState, KvInput, KvOutput>(w, kv, { leaseMs: 300, initialMembers: w.initialMembers });
    const print = (x: WorldChecker<KvState, KvInput, KvOutput>) => {
      const h = new Hasher();
      x.fingerprint(h);
      return h.done();
    };
    const b = { round: 1, replica: 1 };
    for (const a of [0, 1, 2]) c.voting.flushed(a, { _tag: "promise", ballot: b });
    c.voting.flushed(0, { _tag: "vote", slot: 1, ballot: b, value: { _tag: "noop" } });
    const before = print(c); // memoizes slot 1's digest
    const f = c.fork(w);
    expect(print(f)).toEqual(before);
    f.voting.flushed(1, { _tag: "vote", slot: 1, ballot: b, value: { _tag: "noop" } });
    expect(print(f), "a second voter in the same ballot").not.toEqual(before);
    expect(print(c), "the parent keeps its own digest").toEqual(before);
    // Two ghosts whose only difference is the value voted for at a slot.
    const g = c.fork(w);
    const put = { _tag: "batch", commands: [{ input: { _tag: "put", key: "k0", value: "a" } }] } as const;
    const put2 = { _tag: "batch", commands: [{ input: { _tag: "put", key: "k0", value: "b" } }] } as const;
    const g2 = c.fork(w);
    g.voting.flushed(0, { _tag: "vote", slot: 2, ballot: b, value: put });
    g2.voting.flushed(0, { _tag: "vote", slot: 2, ballot: b, value: put2 });
    expect(print(g)).not.toEqual(print(g2));
  });

  it("a forked checker keeps its own ghost: a vote seen by the fork is not seen by its parent", () => {
    const w = new World({ replicas: 3 });
    const c = new WorldChecker<KvState, KvInput, KvOutput>(w, kv, { leaseMs: 300, initialMembers: w.initialMembers });
    const b = { round: 1, replica: 1 };
    c.voting.flushed(0, { _tag: "promise", ballot: b });
    c.voting.flushed(1, { _tag: "promise", ballot: b });
    const f = c.fork(w);
    f.voting.flushed(0, { _tag: "vote", slot: 1, ballot: { round: 1, replica: 1 }, value: { _tag: "noop" } });
    expect(f.voting.slots.has(1)).toBe(true);
    expect(c.voting.slots.has(1)).toBe(false);
    // ...and a check on the fork sees the fork's ghost: a second value in the same ballot fails there only.
    expect(() =>
      f.voting.flushed(1, {
        _tag: "vote",
        slot: 1,
        ballot: { round: 1, replica: 1 },
        value: { _tag: "batch", commands: [{ input: { _tag: "get", key: "k0" } }] },
      }),
    ).toThrow(ViolationFound);
    expect(() =>
      c.voting.flushed(1, {
        _tag: "vote",
        slot: 1,
        ballot: { round: 1, replica: 1 },
        value: { _tag: "batch", commands: [{ input: { _tag: "get", key: "k0" } }] },
      }),
    ).not.toThrow();
  });
});

describe("state keys", () => {
  it("equal data hashes equal, whatever object holds it; a changed field changes the hash", () => {
    const a = { x: 1, y: [1, 2, { z: "s" }], w: -Infinity };
    const b = { x: 1, y: [1, 2, { z: "s" }], w: -Infinity };
    expect(valueHash(a)).toEqual(valueHash(b));
    expect(valueHash({ ...b, x: 2 })).not.toEqual(valueHash(a));
    expect(valueHash({ x: 1, y: [1, 2, { z: "t" }], w: -Infinity })).not.toEqual(valueHash(a));
    expect(valueHash({ x: 0.1 + 0.2 })).not.toEqual(valueHash({ x: 0.3 }));
  });

  it("the visited set finds what it holds across growth, and only that", () => {
    const set = new FingerprintSet(4);
    for (let i = 0; i < 5000; i++) expect(set.add(valueHash({ i }))).toBe(true);
    for (let i = 0; i < 5000; i++) expect(set.add(valueHash({ i }))).toBe(false);
    expect(set.size).toBe(5000);
    expect(set.has(valueHash({ i: 5001 }))).toBe(false);
  });

  it("a world's key ignores message order and ids, and sees a message's content", () => {
    const model = new ImplModel({ ...defaultBounds, rates: "slow" });
    const roots = model.roots();
    if (!Array.isArray(roots)) throw new Error("boot failed");
    const s = roots[0]!.state;
    const twice = model.apply(s, {
      action: { t: "submit", c: 0, op: { kind: "put", key: 0 }, to: s.world.targetFor(s.world.leaseHolders()[0]!) },
    });
    if ("violation" in twice) throw new Error(twice.violation.message);
    expect(model.key(twice)).not.toEqual(model.key(s));
    expect(model.key({ ...twice, used: Uint8Array.of(9) })).not.toEqual(model.key(twice));
  });

  it("hashing leaves a value as it was: keys, descriptors, freezing, and what a strict Schema decoding accepts", () => {
    const v = { x: 1, y: [1, { z: "s" }], w: { k: [2, 3] } };
    const before = image(v);
    valueHash(v);
    memoizedHash(v.w, () => ({ a: 1, b: 2 }));
    expect(image(v)).toEqual(before);
    const Strict = Schema.Struct({
      x: Schema.Number,
      y: Schema.Tuple(Schema.Number, Schema.Struct({ z: Schema.String })),
      w: Schema.Struct({ k: Schema.Array(Schema.Number) }),
    });
    expect(() => Schema.decodeUnknownSync(Strict, { onExcessProperty: "error" })(v)).not.toThrow();
    // A frozen value hashes (a memo written on the object would throw here), and as its copy does.
    const frozen = deepFreeze({ x: 1, y: [1, { z: "s" }], w: { k: [2, 3] } });
    expect(valueHash(frozen)).toEqual(valueHash(v));
    expect(Object.isFrozen(frozen.y[1])).toBe(true);
  });

  it("the image sees a memo written on an object, which a strict Schema decoding refuses", () => {
    const v = { x: 1, w: { k: [2, 3] } };
    const before = image(v);
    // What the memo once was: a non-enumerable symbol-keyed property.
    Object.defineProperty(v.w, Symbol("hash64"), { value: { a: 1, b: 2 }, enumerable: false });
    expect(image(v)).not.toEqual(before);
    const Strict = Schema.Struct({ x: Schema.Number, w: Schema.Struct({ k: Schema.Array(Schema.Number) }) });
    expect(() => Schema.decodeUnknownSync(Strict, { onExcessProperty: "error" })(v)).toThrow();
    // And an identity memo keeps its values apart per memo, invisibly.
    const m1 = identityMemo<number>();
    const m2 = identityMemo<number>();
    const o = {};
    m1.set(o, 1);
    expect([m1.get(o), m2.get(o), Reflect.ownKeys(o)]).toEqual([1, undefined, []]);
    const sealed = Object.freeze({});
    m2.set(sealed, 2);
    expect(m2.get(sealed)).toBe(2);
  });

  it("keying never changes a state: every state of bounded searches, through a state transfer, imaged before and after", () => {
    const hunt = mutantNamed("transfer-drops-sessions").explore;
    if (hunt === undefined) throw new Error("transfer-drops-sessions has no explorer bounds");
    const searches = [
      { bounds: { ...defaultBounds, ...hunt.bounds }, depth: hunt.depth },
      { bounds: { ...defaultBounds, reads: 0 }, depth: 9 },
    ];
    let keyed = 0;
    let transfers = 0;
    for (const { bounds, depth } of searches) {
      const model = new ImplModel(bounds);
      const key = model.key.bind(model);
      model.key = (s) => {
        const before = image(hashedParts(s));
        const out = key(s);
        keyed++;
        if (s.world.replicas.some((r) => r.state?.learner.transfer != null)) transfers++;
        expect(image(hashedParts(s))).toEqual(before);
        return out;
      };
      const r = breadthFirst(model, { depth, maxStates: 5_000 });
      expect(r.counterexample).toBeNull();
      expect(r.distinct).toBeGreaterThan(20);
    }
    expect(keyed).toBeGreaterThan(150);
    expect(transfers).toBeGreaterThan(5);
  });

  it("keying every state of a state transfer leaves it installable: the memo never reaches the decoded snapshot", () => {
    // The transfer-drops-sessions bounds: the follower that missed the writes is sent the leader's
    // snapshot chunk by chunk, one FIFO round at a time, and installs it at its last chunk.
    const hunt = mutantNamed("transfer-drops-sessions").explore;
    if (hunt === undefined) throw new Error("transfer-drops-sessions has no explorer bounds");
    const model = new ImplModel({ ...defaultBounds, ...hunt.bounds });
    const roots = model.roots();
    if (!Array.isArray(roots)) throw new Error("boot failed");
    let s = roots[0]!.state;
    const lagging = s.world.replicas.findIndex((r) => r.state?.learner.executedUpTo === 0);
    expect(lagging).toBeGreaterThanOrEqual(0);
    let transferred = false;
    for (let d = 0; d < hunt.depth && s.world.replicas[lagging]!.state!.learner.executedUpTo === 0; d++) {
      const next = model.apply(s, model.actions(s)[0]!);
      if ("violation" in next) throw new Error(next.violation.message);
      // As the search does: every state reached is keyed before it is expanded.
      model.key(next);
      s = next;
      transferred ||= s.world.replicas[lagging]!.state!.learner.transfer !== null;
    }
    expect(transferred).toBe(true);
    const l = s.world.replicas[lagging]!.state!.learner;
    expect(l.executedUpTo).toBeGreaterThan(0);
    expect(l.snapshot?.slot).toBe(l.executedUpTo);
  });
});

describe("searching impl/core", () => {
  it("with a tiny threshold for the store's values at rest, reaches rule V4's read-backs for a read and a command", () => {
    const atRest = { storeAtRestCharsMin: 1 };
    // A snapshot slot reads nothing back (rule V5: it leaves holes): no goal for it here.
    const goals = [
      { goal: "world: a store value read back for a read", bounds: { writes: 1, reads: 1 }, depth: 12 },
      {
        goal: "world: a store value read back for a command",
        bounds: { writes: 2, reads: 0, writeKinds: "puts-appends" as const },
        depth: 14,
      },
    ];
    for (const { goal, bounds, depth } of goals) {
      const search = (overrides: object) =>
        explore({
          bounds: { ...defaultBounds, ...bounds, orders: "fifo", overrides },
          mode: "bfs",
          depth,
          maxStates: 2_000,
          goal,
        });
      const reached = search(atRest).reached;
      expect(reached, goal).not.toBeNull();
      expect(reached!.length).toBeLessThanOrEqual(depth);
      // Without the threshold nothing rests: the same search exhausts its bounds without one.
      expect(search({}).reached, `${goal} without values at rest`).toBeNull();
    }
  });

  it("breadth first at tiny bounds explores the correct replica completely and finds nothing", () => {
    const model = new ImplModel({ ...defaultBounds, reads: 0 });
    const r = breadthFirst(model, { depth: 4, maxStates: 100_000 });
    expect(r.counterexample).toBeNull();
    expect(r.distinct).toBeGreaterThan(10);
    expect(r.transitions).toBeGreaterThanOrEqual(r.distinct - 1);
  });

  it("finds a broken quorum with a shortest trace that replays in the world", () => {
    const m = mutantNamed("quorum-off-by-one");
    const outcome = explore({
      bounds: { ...defaultBounds, reads: 0 },
      mode: "bfs",
      depth: 6,
      maxStates: 100_000,
      mutant: { name: m.name, step: m.step },
    });
    expect(outcome.regression).not.toBeNull();
    expect(m.expectedCatch.some((c) => outcome.regression!.expect.startsWith(c))).toBe(true);
    expect(replay(outcome.regression!, m.step)?.check).toBe(outcome.regression!.expect);
    // Without the mutant the same scenario passes: the trace shows the bug, not a world defect.
    expect(replay(outcome.regression!)).toBeNull();
  });

  it("from a prelude, the model starts where the prelude ends, and its traces replay with the prelude", () => {
    const m = mutantNamed("quorum-off-by-one");
    const outcome = explore({
      bounds: { ...defaultBounds, writes: 1, reads: 0, prelude: "learner", pick: 0, orders: "fifo" },
      mode: "bfs",
      depth: 12,
      maxStates: 100_000,
      mutant: { name: m.name, step: m.step },
    });
    const roots = new ImplModel({ ...defaultBounds, prelude: "learner", pick: 0 }).roots();
    if (!Array.isArray(roots)) throw new Error("the prelude failed a check");
    // The learner prelude adds a spare: four replicas are born before the first transition.
    expect(roots[0]!.state.world.born()).toHaveLength(4);
    expect(outcome.regression?.scenario.profile.prelude).toBe("learner");
    expect(replay(outcome.regression!, m.step)?.check).toBe(outcome.regression!.expect);
    expect(replay(outcome.regression!)).toBeNull();
  });

  it("with cuts that drop, no message ever waits on a cut link (one-way delays of zero); with cuts that hold, some does", () => {
    /** States on seeded random walks from the warm start with a write, a partition and anytime faults. */
    const waiting = (cuts: "hold" | "drop"): { states: number; waited: number } => {
      const model = new ImplModel({ ...defaultBounds, reads: 0, partitions: 1, environment: "anytime", cuts });
      const roots = model.roots();
      if (!Array.isArray(roots)) throw new Error("booting failed a check");
      let seed = 7;
      const next = (n: number): number => {
        seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
        return (seed >>> 8) % n;
      };
      let states = 0;
      let waited = 0;
      for (let walk = 0; walk < 60; walk++) {
        let state = roots[0]!.state;
        for (let depth = 0; depth < 10; depth++) {
          const actions = model.actions(state);
          if (actions.length === 0) break;
          const after = model.apply(state, actions[next(actions.length)]!);
          if ("violation" in after) throw new Error(after.violation.message);
          state = after;
          const w = state.world;
          states++;
          if (w.inFlight.some((m) => m.kind === "message" && w.linkBlocked(m.from, m.to))) waited++;
        }
      }
      return { states, waited };
    };
    const drop = waiting("drop");
    expect(drop.states).toBeGreaterThan(300);
    expect(drop.waited).toBe(0);
    expect(waiting("hold").waited).toBeGreaterThan(0);
  });

  it("settling after a prelude starts from a quiet network, and its deliveries are in every trace's prefix", () => {
    const bounds = { ...defaultBounds, prelude: "alpha" as const, pick: 16, settle: true };
    const roots = new ImplModel(bounds).roots();
    if (!Array.isArray(roots)) throw new Error("the prelude failed a check");
    const w = roots[0]!.state.world;
    // Nothing is deliverable (messages to a replica cut off stay in flight), and the prefix
    // replays to the very same world.
    expect(w.inFlight.every((m) => m.kind === "message" && w.linkBlocked(m.from, m.to))).toBe(true);
    expect(roots[0]!.prefix.filter((a) => a.t === "deliver").length).toBeGreaterThan(0);
    const again = new ImplModel({ ...bounds, settle: false }).roots();
    if (!Array.isArray(again)) throw new Error("the prelude failed a check");
    expect(again[0]!.state.world.inFlight.length).toBeGreaterThan(w.inFlight.length);
  });

  it("pick bit 8 shrinks 5 replicas to 3 voters before a prelude that stands apart, sparse timers too", () => {
    for (const tuning of [0, 5]) {
      const voters = (pick: number): number => {
        const bounds = { ...defaultBounds, replicas: 5, tuning, prelude: "restartInLease" as const, pick };
        const roots = new ImplModel(bounds).roots();
        if (!Array.isArray(roots)) throw new Error("the prelude failed a check");
        const w = roots[0]!.state.world;
        return w.born().filter((i) => !w.replicas[i]!.retired).length;
      };
      expect(voters(256 + 128)).toBe(3);
      expect(voters(128)).toBe(5);
    }
  });

  it("a spare a membership change starts runs at either extreme of the drift bound, each its own transition", () => {
    /** The changes offered once the network is quiet (the environment acts between waves). */
    const adds = (model: ImplModel): { state: ModelState; actions: ModelAction[] } => {
      const roots = model.roots();
      if (!Array.isArray(roots)) throw new Error("booting failed a check");
      let state = roots[0]!.state;
      for (let i = 0; i < 10; i++) {
        const actions = model.actions(state);
        const changes = actions.filter((a) => a.action?.t === "reconfigure");
        if (changes.length > 0) return { state, actions: changes };
        const next = model.apply(state, actions[0]!);
        if ("violation" in next) throw new Error(next.violation.message);
        state = next;
      }
      throw new Error("no membership change offered");
    };
    const model = new ImplModel({ ...defaultBounds, writes: 0, reads: 1, reconfig: "add", rates: "extremes" });
    const { state, actions } = adds(model);
    expect(actions).toHaveLength(2);
    const rho = model.tuning.clockDriftPpmMax / 1e6;
    const rates = actions.map((a) => {
      const next = model.apply(state, a);
      if ("violation" in next) throw new Error(next.violation.message);
      const w = next.world;
      expect(w.born()).toHaveLength(4);
      // Every other replica keeps its rate.
      for (const i of w.born().slice(0, 3)) expect(w.replicas[i]!.clock.rate).toBe(state.world.replicas[i]!.clock.rate);
      return w.replicas[w.born().at(-1)!]!.clock.rate;
    });
    expect(rates.sort()).toEqual([1 - rho, 1 + rho]);
    // Under the worst-case rates, the spare runs fast like every follower: one transition.
    const worst = new ImplModel({ ...defaultBounds, writes: 0, reads: 1, reconfig: "add" });
    const offered = adds(worst);
    expect(offered.actions).toHaveLength(1);
    const next = worst.apply(offered.state, offered.actions[0]!);
    if ("violation" in next) throw new Error(next.violation.message);
    expect(next.world.replicas[next.world.born().at(-1)!]!.clock.rate).toBe(1 + rho);
  });

  it("the committed explorer trace of the stale read after a replace still catches its mutant, and only it", () => {
    const r = regressions().find((x) => x.name === "explore-lease-read-after-replace")!;
    const m = mutantNamed("lease-read-before-pending-phase1");
    expect(r.mutant).toBe(m.name);
    expect(replay(r, m.step)?.check).toBe("LeaseReadFresh");
    expect(replay(r)).toBeNull();
  });

  it("random walks find it too, and replay", () => {
    const m = mutantNamed("quorum-off-by-one");
    const model = new ImplModel({ ...defaultBounds, reads: 0 }, m.step);
    const r = randomWalks(model, { depth: 10, maxStates: 100_000, seed: 7, walks: 200 });
    expect(r.counterexample).not.toBeNull();
    expect(r.walks).toBeGreaterThan(0);
  });
});

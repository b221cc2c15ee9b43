/**
 * The explorer's state reduction (`reduce`, model.ts `key`): a replica down for good counts only
 * as down, and no partition is offered around it. These tests show that the reduced key merges
 * exactly what it should (states that differ only in a stopped replica's clock or disk, once no
 * restart is left) and nothing else, that no partition touches such a replica, that a reduced
 * search visits exactly one state per class of the unreduced space (the quotient's count, as
 * orbits are counted at the spec level), and that it catches every mutant the unreduced search
 * catches at the same bounds, with a trace as short.
 */
import { describe, expect, it } from "vitest";
import { mutants } from "../mutants/index.ts";
import { defaultBounds, ImplModel, type ImplBounds, type ModelState } from "./model.ts";
import { breadthFirst } from "./search.ts";
import { explore } from "./explorer.ts";
import type { Hash64 } from "./hash.ts";

const hex = (h: Hash64): string => `${h.a.toString(16)}:${h.b.toString(16)}`;

function rootOf(model: ImplModel): ModelState {
  const roots = model.roots();
  if (!Array.isArray(roots)) throw new Error(roots.violation.message);
  return roots[0]!.state;
}

function applied(model: ImplModel, s: ModelState, a: Parameters<ImplModel["apply"]>[1]): ModelState {
  const next = model.apply(s, a);
  if ("violation" in next) throw new Error(next.violation.message);
  return next;
}

describe("the key of a replica down for good", () => {
  // Crash a follower, then change its clock's rate: a difference only a restart could read.
  const pair = (bounds: ImplBounds): [ImplModel, ModelState, ModelState] => {
    const model = new ImplModel(bounds);
    const root = rootOf(model);
    const w = root.world;
    const follower = w.replicas.find((r) => r.born && r.state !== null && r.state.role._tag !== "leader")!;
    const target = w.targetFor(follower.index);
    const down = applied(model, root, { action: { t: "crash", r: target, at: null }, spends: "crashes" });
    const drifted = applied(model, down, { action: { t: "drift", r: target, ppm: 100 } });
    expect(drifted.world.replicas[follower.index]!.clock.rate).not.toBe(
      down.world.replicas[follower.index]!.clock.rate,
    );
    return [model, down, drifted];
  };

  it("merges states that differ only in its clock once no restart is left", () => {
    const [model, a, b] = pair({ ...defaultBounds, crashes: 1, restarts: 0 });
    expect(hex(model.key(a))).toBe(hex(model.key(b)));
  });

  it("keeps them apart while a restart is left (the restarted replica reads its clock)", () => {
    const [model, a, b] = pair({ ...defaultBounds, crashes: 1, restarts: 1 });
    expect(hex(model.key(a))).not.toBe(hex(model.key(b)));
  });

  it("keeps them apart under bounded liveness, whose liveness phase restarts every crashed replica", () => {
    const [model, a, b] = pair({ ...defaultBounds, crashes: 1, restarts: 0, liveness: true });
    expect(hex(model.key(a))).not.toBe(hex(model.key(b)));
  });

  it("keeps them apart when the reduction is off", () => {
    const [model, a, b] = pair({ ...defaultBounds, crashes: 1, restarts: 0, reduce: false });
    expect(hex(model.key(a))).not.toBe(hex(model.key(b)));
  });

  it("keeps a live replica's clock in the key", () => {
    const model = new ImplModel({ ...defaultBounds, crashes: 1, restarts: 0 });
    const root = rootOf(model);
    const live = root.world.replicas.find((r) => r.born && r.state !== null && r.state.role._tag !== "leader")!;
    const drifted = applied(model, root, { action: { t: "drift", r: root.world.targetFor(live.index), ppm: 100 } });
    expect(hex(model.key(drifted))).not.toBe(hex(model.key(root)));
  });
});

describe("partitions around a replica down for good", () => {
  // Crash a follower with no restart left: a cut of its links changes nothing but the budget.
  const crashed = (reduce: boolean) => {
    // Settled: nothing in flight, so the environment acts (partitions among it).
    const model = new ImplModel({ ...defaultBounds, crashes: 1, restarts: 0, partitions: 1, settle: true, reduce });
    const root = rootOf(model);
    const w = root.world;
    const follower = w.replicas.find((r) => r.born && r.state !== null && r.state.role._tag !== "leader")!;
    const down = applied(model, root, {
      action: { t: "crash", r: w.targetFor(follower.index), at: null },
      spends: "crashes",
    });
    const target = w.targetFor(follower.index);
    const cuts = model
      .actions(down)
      .map((a) => a.action)
      .flatMap((a) => (a !== null && (a.t === "cut" || a.t === "isolate") ? [a] : []));
    const touching = cuts.filter((a) => (a.t === "cut" ? a.a === target || a.b === target : a.r === target));
    return { cuts, touching };
  };

  it("are not offered with the reduction: the other cuts are", () => {
    const { cuts, touching } = crashed(true);
    expect(cuts.length).toBeGreaterThan(0);
    expect(touching).toEqual([]);
  });

  it("are offered without it", () => {
    expect(crashed(false).touching.length).toBeGreaterThan(0);
  });
});

/** A model that also records, for every state it keys, the key the reduced model gives it. */
class Classifying extends ImplModel {
  readonly classes = new Set<string>();
  constructor(
    bounds: ImplBounds,
    private readonly reduced: ImplModel,
  ) {
    super({ ...bounds, reduce: false });
  }
  override key(s: ModelState): Hash64 {
    this.classes.add(hex(this.reduced.key(s)));
    return super.key(s);
  }
}

describe("the reduced search", () => {
  // With no restart the crashed replica is down for good and the reduction merges; with one
  // restart left it must merge nothing (a reduction that forgot the restart would lose states).
  it.each([
    [0, 9],
    [1, 8],
  ])("with %i restarts: one state per class of the unreduced space (its quotient)", (restarts, depth) => {
    const bounds: ImplBounds = {
      ...defaultBounds,
      writes: 1,
      reads: 1,
      crashes: 1,
      restarts,
      rates: "extremes",
      orders: "fifo",
    };
    const reducedModel = new ImplModel(bounds);
    const classifying = new Classifying(bounds, reducedModel);
    const full = breadthFirst(classifying, { depth, maxStates: 1_000_000 });
    const reduced = breadthFirst(reducedModel, { depth, maxStates: 1_000_000 });
    expect(full.counterexample).toBeNull();
    expect(reduced.counterexample).toBeNull();
    expect(full.depth).toBe(depth);
    expect(reduced.depth).toBe(depth);
    expect(reduced.distinct).toBe(classifying.classes.size);
    if (restarts === 0) expect(reduced.distinct).toBeLessThan(full.distinct);
    else expect(reduced.distinct).toBe(full.distinct);
  });

  // Every mutant the explorer hunts breadth first whose unreduced search is small: the reduced
  // search finds the same check at the same depth (the larger ones: `npm run bench:explore --
  // --impl --reduction`, which compares all of them).
  const small = 2_500;
  const hunted = mutants.filter((m) => m.explore !== undefined && (m.explore.mode ?? "bfs") === "bfs");
  it.each(hunted.map((m) => [m.name, m] as const))(
    "%s: caught by the reduced search wherever the unreduced one catches it",
    (_, m) => {
      const e = m.explore!;
      const bounds: ImplBounds = { ...defaultBounds, ...e.bounds };
      const run = (reduce: boolean) =>
        explore({
          bounds: { ...bounds, reduce },
          mode: "bfs",
          depth: e.depth,
          maxStates: small,
          mutant: { name: m.name, step: m.step },
        });
      const full = run(false);
      if (full.regression === null) return; // larger than `small`: compared by the benchmark
      const reduced = run(true);
      expect(reduced.regression?.expect).toBe(full.regression.expect);
      expect(reduced.result.counterexample?.length).toBe(full.result.counterexample?.length);
      expect(reduced.result.distinct).toBeLessThanOrEqual(full.result.distinct);
    },
  );
});

describe("--profile-checks", () => {
  it("times every check and the explorer's own work, and the world steps' row excludes the checks", () => {
    const outcome = explore({
      bounds: { ...defaultBounds, reads: 0, crashes: 1 },
      mode: "bfs",
      depth: 5,
      maxStates: 100_000,
      profileChecks: true,
    });
    const rows = outcome.profile!;
    const named = (name: string) => rows.find((r) => r.name === name);
    for (const check of [
      "NoDisruptionByRemoved",
      "Lease: refines Lease, AtMostOneLeaseholder, LeaseBounded (every step)",
      "Voting, Consensus, snapshot order (flushed records)",
    ])
      expect(named(check)?.calls, check).toBeGreaterThan(0);
    const steps = named("world steps (impl/core and the driver)")!;
    const key = named("state key (world hash, ghost fingerprint)")!;
    expect(key.calls).toBeGreaterThanOrEqual(outcome.result.transitions);
    expect(steps.ms).toBeGreaterThanOrEqual(0);
    const measured = rows.reduce((sum, r) => sum + r.ms, 0);
    expect(measured).toBeLessThanOrEqual(outcome.seconds * 1000 + 1);
    // Off by default: nothing measured.
    expect(explore({ bounds: { ...defaultBounds, reads: 0 }, mode: "bfs", depth: 2, maxStates: 100 }).profile).toBe(
      undefined,
    );
  });
});

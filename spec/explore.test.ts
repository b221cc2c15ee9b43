/**
 * The explorer on a toy spec whose state space is easy to count by hand: two counters x and
 * y in 0..max, each incremented by one action. Checks TLC-style counting, shortest traces,
 * step checks, symmetry and bounds.
 */
import { describe, expect, test } from "vitest";
import { explore, formatViolation, simulate, type StepCheck } from "./explore.ts";
import type { Spec } from "./state-machine.ts";

type Pair = readonly [number, number];
type Inc = "x" | "y" | "none";

/** x, y in 0..max; Inc(none) is a self-loop that returns the very state. */
function pairs(max: number, sumBelow = Number.POSITIVE_INFINITY): Spec<Pair, Inc> {
  return {
    name: "Pairs",
    start: [0, 0],
    init: [[0, 0]],
    actions: () => ["x", "y", "none"],
    enabled: (a, s) => a === "none" || (a === "x" ? s[0] : s[1]) < max,
    transition: (a, s) => (a === "x" ? [s[0] + 1, s[1]] : a === "y" ? [s[0], s[1] + 1] : s),
    output: (a) => `Inc(${a})`,
    key: (s) => `${s[0]},${s[1]}`,
    invariants: [
      {
        name: "SumBelow",
        statement: "x + y < bound",
        check: (s) => (s[0] + s[1] < sumBelow ? undefined : `x + y = ${s[0] + s[1]}`),
      },
    ],
    show: (s) => `/\\ x = ${s[0]}\n/\\ y = ${s[1]}`,
    symmetries: [(s) => [s[1], s[0]]],
  };
}

describe("explore", () => {
  test("counts like TLC: distinct states, every generated successor (self-loops included), depth from 1", () => {
    const r = explore(pairs(3));
    expect(r.distinct).toBe(16);
    // 1 initial state + per state: Inc(none) always, Inc(x) and Inc(y) while below 3.
    expect(r.generated).toBe(1 + 16 + 2 * 12);
    expect(r.depth).toBe(7);
    expect(r.complete).toBe(true);
    expect(r.violation).toBeUndefined();
    expect(r.invariantsChecked).toEqual(["SumBelow"]);
  });

  test("finds the shortest trace to a violated invariant", () => {
    const spec = pairs(3, 4);
    const r = explore(spec);
    expect(r.violation?.kind).toBe("invariant");
    expect(r.violation?.check).toBe("SumBelow");
    expect(r.violation?.trace.map((t) => t.action)).toEqual(["Init", "Inc(x)", "Inc(x)", "Inc(x)", "Inc(y)"]);
    const text = formatViolation(spec, r.violation!);
    expect(text).toContain("Invariant SumBelow is violated: x + y = 4");
    expect(text).toContain("Shortest trace (5 states):");
    expect(text).toContain("5: <Inc(y)>\n/\\ x = 3\n/\\ y = 1");
  });

  test("hands every transition to the step checks and reports the failing step with its trace", () => {
    const seen: string[] = [];
    const check: StepCheck<Pair, Inc> = {
      name: "NoDiagonal",
      checkStep: (from, a, to) => {
        seen.push(`${from.join(",")}-${a}`);
        return to[0] === 1 && to[1] === 1 && from !== to ? "reached (1, 1)" : undefined;
      },
    };
    const r = explore(pairs(3), { checks: [check] });
    expect(r.violation?.kind).toBe("step");
    expect(r.violation?.check).toBe("NoDiagonal");
    expect(r.violation?.trace.map((t) => t.action)).toEqual(["Init", "Inc(x)", "Inc(y)"]);
    expect(r.violation?.trace.at(-1)?.state).toEqual([1, 1]);
    expect(seen).toContain("0,0-none");
  });

  test("runs checkInit on initial states", () => {
    const r = explore(pairs(3), { checks: [{ name: "NoStart", checkInit: () => "no", checkStep: () => undefined }] });
    expect(r.violation?.kind).toBe("init");
    expect(r.violation?.trace).toHaveLength(1);
  });

  test("with symmetry, counts orbits (here: unordered pairs)", () => {
    const r = explore(pairs(3), { symmetry: true });
    expect(r.distinct).toBe(10);
    expect(r.depth).toBe(7);
    expect(explore(pairs(3), { symmetry: false }).distinct).toBe(16);
  });

  test("stops at maxStates and maxDepth and says the search was not exhaustive", () => {
    const r = explore(pairs(3), { maxStates: 5 });
    expect(r.distinct).toBe(5);
    expect(r.complete).toBe(false);
    const d = explore(pairs(3), { maxDepth: 3 });
    expect(d.depth).toBe(3);
    expect(d.distinct).toBe(6);
    expect(d.complete).toBe(false);
  });

  test("reports progress", () => {
    const calls: number[] = [];
    explore(pairs(20), { progressEvery: 100, onProgress: (p) => calls.push(p.distinct) });
    expect(calls.length).toBeGreaterThan(2);
  });

  test("simulate replays a walk from a list of choices and stops when nothing is enabled", () => {
    const trace = simulate(pairs(1), [0, 1, 0, 5]);
    expect(trace.map((t) => t.action)).toEqual(["Init", "Inc(x)", "Inc(none)", "Inc(y)", "Inc(none)"]);
    expect(simulate(pairs(1), [0, 1, 0, 5])).toEqual(trace);
  });
});

describe("explore on a nondeterministic spec", () => {
  test("refuses to print a trace it cannot replay", () => {
    let calls = 0;
    const flaky: Spec<number, "step"> = {
      name: "Flaky",
      start: 0,
      init: [0],
      actions: () => ["step"],
      enabled: (_a, s) => s < 3,
      transition: (_a, s) => s + 1 + (calls++ > 1 ? 1 : 0), // reads hidden state: not deterministic
      output: () => "step",
      key: String,
      invariants: [{ name: "Small", statement: "s < 2", check: (s) => (s < 2 ? undefined : "too big") }],
      show: String,
    };
    expect(() => explore(flaky)).toThrow(/Flaky is not deterministic/);
  });
});

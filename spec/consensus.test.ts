/**
 * Consensus (Consensus.tla): TLC's numbers for MCConsensus, Inv failing on a state with two
 * chosen values, and the spec's one step.
 */
import { fc, test } from "@fast-check/vitest";
import { describe, expect } from "vitest";
import { Consensus } from "./consensus.ts";
import { explore, simulate } from "./explore.ts";

describe("Consensus", () => {
  test("MCConsensus (Value = {a, b, c}, ISpec: every chosen with at most one element) gives TLC's 4 distinct, 7 generated, depth 1", () => {
    const r = explore(new Consensus({ values: 3, init: "IInv" }));
    expect([r.distinct, r.generated, r.depth, r.violation]).toEqual([4, 7, 1, undefined]);
  });

  test("from Init (chosen = {}): 4 distinct, 4 generated, depth 2", () => {
    const r = explore(new Consensus({ values: 3 }));
    expect([r.distinct, r.generated, r.depth, r.violation]).toEqual([4, 4, 2, undefined]);
  });

  test("Next chooses one value, once", () => {
    const C = new Consensus({ values: 2 });
    const choose = C.actions()[1]!;
    expect(C.output(choose)).toBe("Choose(v2)");
    expect(C.enabled(choose, C.start)).toBe(true);
    const after = C.transition(choose);
    expect(after).toEqual({ chosen: [1] });
    expect(C.actions().some((a) => C.enabled(a, after))).toBe(false);
  });

  test.prop([fc.array(fc.nat(), { maxLength: 5 })])(
    "is deterministic: the same choices give the same walk",
    (choices) => {
      const C = new Consensus({ values: 3 });
      expect(simulate(C, choices)).toEqual(simulate(C, choices));
      expect(simulate(C, choices).at(-1)!.state.chosen.length).toBeLessThanOrEqual(1);
    },
  );

  test("the invariants fail on states that break them", () => {
    const C = new Consensus({ values: 3 });
    expect(C.Inv(C.make([0, 2]))).toBe("chosen = {v1, v3} has 2 values");
    expect(C.TypeOK({ chosen: [3] })).toBe("chosen holds 3, which is not in Value");
    expect(C.Inv(C.make([1]))).toBeUndefined();
  });
});

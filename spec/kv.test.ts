/**
 * Properties of the replicated application (spec/kv.ts): determinism, the digest tracks the
 * state exactly, snapshots round-trip, and each operation means what its doc says.
 */
import { fc, test } from "@fast-check/vitest";
import { Schema } from "effect";
import { arbitraryOf } from "../proofs/arbitrary.ts";
import { describe, expect } from "vitest";
import { entryHashesForTest, kv, KvInput, kvGet, valueLengthMax, type KvInput as Input } from "./kv.ts";
import { runInputs } from "./state-machine.ts";

// Small key and value alphabets so that operations collide on keys often.
const input: fc.Arbitrary<Input> = fc.oneof(
  fc.record({ _tag: fc.constant("get" as const), key: fc.constantFrom("a", "b", "c") }),
  fc.record({
    _tag: fc.constant("put" as const),
    key: fc.constantFrom("a", "b", "c"),
    value: fc.constantFrom("", "x", "y"),
  }),
  fc.record({ _tag: fc.constant("delete" as const), key: fc.constantFrom("a", "b", "c") }),
  fc.record({
    _tag: fc.constant("cas" as const),
    key: fc.constantFrom("a", "b", "c"),
    expected: fc.constantFrom(null, "", "x", "y"),
    value: fc.constantFrom("x", "y"),
  }),
  fc.record({
    _tag: fc.constant("append" as const),
    key: fc.constantFrom("a", "b", "c"),
    value: fc.constantFrom("x", "y"),
  }),
  fc.constant({ _tag: "noop" as const }),
);

describe("kv", () => {
  test.prop([fc.array(input, { maxLength: 60 })])(
    "is deterministic: same inputs, same states and outputs",
    (inputs) => {
      const a = runInputs(kv, inputs);
      const b = runInputs(kv, inputs);
      expect(kv.digest(a.state)).toBe(kv.digest(b.state));
      expect(a.outputs).toEqual(b.outputs);
      expect(kv.snapshot(a.state)).toEqual(kv.snapshot(b.state));
    },
  );

  test.prop([fc.array(input, { maxLength: 60 })])(
    "the incremental digest equals the digest of the rebuilt state",
    (inputs) => {
      const { state } = runInputs(kv, inputs);
      const rebuilt = kv.restore(kv.snapshot(state));
      expect(kv.digest(rebuilt)).toBe(kv.digest(state));
      expect(kv.snapshot(rebuilt)).toEqual(kv.snapshot(state));
    },
  );

  test.prop([fc.array(input, { maxLength: 40 }), fc.array(input, { maxLength: 40 })])(
    "equal digests exactly when equal snapshots (on these small alphabets)",
    (xs, ys) => {
      const a = runInputs(kv, xs).state;
      const b = runInputs(kv, ys).state;
      const same = JSON.stringify(kv.snapshot(a)) === JSON.stringify(kv.snapshot(b));
      expect(kv.digest(a) === kv.digest(b)).toBe(same);
    },
  );

  test.prop([fc.array(input, { maxLength: 40 }), input])(
    "transition never mutates its argument; read-only inputs change nothing",
    (xs, i) => {
      const { state } = runInputs(kv, xs);
      const before = JSON.stringify(kv.snapshot(state));
      const next = kv.transition(i, state);
      expect(JSON.stringify(kv.snapshot(state))).toBe(before);
      if (kv.readOnly(i)) expect(next).toBe(state);
    },
  );

  test.prop([arbitraryOf(KvInput)], { numRuns: 50 })("inputs generated from the Schema decode and apply", (i) => {
    expect(Schema.is(KvInput)(i)).toBe(true);
    expect(() => kv.apply(i, kv.start)).not.toThrow();
  });

  test("operations mean what they say", () => {
    const { state, outputs } = runInputs(kv, [
      { _tag: "put", key: "k", value: "1" },
      { _tag: "append", key: "k", value: "2" },
      { _tag: "cas", key: "k", expected: "1", value: "x" },
      { _tag: "cas", key: "k", expected: "12", value: "3" },
      { _tag: "get", key: "k" },
      { _tag: "delete", key: "k" },
      { _tag: "get", key: "k" },
      { _tag: "cas", key: "k", expected: null, value: "new" },
      { _tag: "noop" },
    ]);
    expect(outputs).toEqual([
      { _tag: "ok" },
      { _tag: "value", value: "12" },
      { _tag: "cas", swapped: false, current: "12" },
      { _tag: "cas", swapped: true, current: "12" },
      { _tag: "value", value: "3" },
      { _tag: "ok" },
      { _tag: "value", value: null },
      { _tag: "cas", swapped: true, current: null },
      { _tag: "ok" },
    ]);
    expect(kvGet(state, "k")).toBe("new");
  });

  test("an append never grows a value past the value limit: it is refused and changes nothing", () => {
    const half = "x".repeat(valueLengthMax / 2);
    const { state, outputs } = runInputs(kv, [
      { _tag: "put", key: "k", value: half },
      { _tag: "append", key: "k", value: half },
      { _tag: "append", key: "k", value: "y" },
      { _tag: "append", key: "fresh", value: "z" },
    ]);
    expect(outputs[1]).toEqual({ _tag: "value", value: half + half });
    expect(outputs[2]).toEqual({ _tag: "too-large", length: valueLengthMax + 1, limit: valueLengthMax });
    expect(kvGet(state, "k")).toBe(half + half);
    expect(outputs[3]).toEqual({ _tag: "value", value: "z" });
  });

  test("a malformed snapshot is refused with a message naming what is wrong", () => {
    expect(() => kv.restore({ format: "paxos-lease/kv@1", entries: [["a", 1]] })).toThrow(
      /kv snapshot rejected.*Expected string/s,
    );
    expect(() => kv.restore({ format: "other", entries: [] })).toThrow(/kv snapshot rejected.*paxos-lease\/kv@1/s);
    expect(() =>
      kv.restore({
        format: "paxos-lease/kv@1",
        entries: [
          ["a", "1"],
          ["a", "2"],
        ],
      }),
    ).toThrow(/appears twice/);
  });

  test.prop([fc.string({ maxLength: 20 }), fc.string({ maxLength: 200 })])(
    "one pass over an entry gives both digest lanes exactly as two passes do",
    (key, value) => {
      const { once, twice } = entryHashesForTest(key, value);
      expect(once).toEqual(twice);
    },
  );

  test("the digest distinguishes a changed value", () => {
    const a = kv.transition({ _tag: "put", key: "a", value: "1" }, kv.start);
    const b = kv.transition({ _tag: "put", key: "a", value: "2" }, kv.start);
    expect(kv.digest(a)).not.toBe(kv.digest(b));
    expect(kv.digest(kv.start)).toBe("0000000000000000:0");
  });
});

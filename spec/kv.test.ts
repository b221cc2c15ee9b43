/**
 * Properties of the replicated application (spec/kv.ts): determinism, the digest tracks the
 * state exactly, snapshots round-trip, and each operation means what its doc says.
 */
import { fc, test } from "@fast-check/vitest";
import { Schema } from "effect";
import { arbitraryOf } from "../proofs/arbitrary.ts";
import { describe, expect } from "vitest";
import {
  entryHashesForTest,
  kv,
  KvInput,
  kvGet,
  utf8Length,
  valueBytesMax,
  valueLengthMax,
  type KvInput as Input,
} from "./kv.ts";
import { featureLevelValueBytes } from "./service.ts";
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
    const half = "x".repeat(valueBytesMax / 2);
    const { state, outputs } = runInputs(kv, [
      { _tag: "put", key: "k", value: half },
      { _tag: "append", key: "k", value: half },
      { _tag: "append", key: "k", value: "y" },
      { _tag: "append", key: "fresh", value: "z" },
    ]);
    expect(outputs[1]).toEqual({ _tag: "value", value: half + half });
    expect(outputs[2]).toEqual({ _tag: "too-large", length: valueBytesMax + 1, limit: valueBytesMax });
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

  test.prop([fc.string({ maxLength: 20 }), fc.string({ maxLength: 200, unit: codeUnit })])(
    "one pass over an entry gives both digest lanes and the UTF-8 length exactly as three passes do",
    (key, value) => {
      const { once, apart } = entryHashesForTest(key, value);
      expect(once).toEqual(apart);
    },
  );

  test("the digest distinguishes a changed value", () => {
    const a = kv.transition({ _tag: "put", key: "a", value: "1" }, kv.start);
    const b = kv.transition({ _tag: "put", key: "a", value: "2" }, kv.start);
    expect(kv.digest(a)).not.toBe(kv.digest(b));
    expect(kv.digest(kv.start)).toBe("0000000000000000:0");
  });
});

/**
 * UTF-16 code units, the edges of each UTF-8 width and both halves of a surrogate pair often: a
 * string of them holds pairs, lone surrogates, and halves in the wrong order.
 */
const codeUnit = fc.oneof(
  fc.constantFrom("a", "\u007f", "\u0080", "\u07ff", "\u0800", "\uffff", "\ud800", "\udbff", "\udc00", "\udfff"),
  fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
  fc.constantFrom("\u{1f600}", "\u{10ffff}"),
);

describe("kv: the value limit counts bytes of UTF-8 at admission; execution bounds code units", () => {
  test.prop([fc.string({ maxLength: 64, unit: codeUnit })], { numRuns: 2000 })(
    "utf8Length is the length Node's UTF-8 encoder gives",
    (text) => {
      expect(utf8Length(text)).toBe(Buffer.byteLength(text, "utf8"));
      if (!/\p{Cs}/u.test(text)) expect(utf8Length(text)).toBe(new TextEncoder().encode(text).length);
    },
  );

  test("a lone surrogate counts 3 bytes (its U+FFFD, or WTF-8), a pair 4", () => {
    const cases: [string, number][] = [
      ["", 0],
      ["a\u007f", 2],
      ["\u0080\u07ff", 4],
      ["\u0800\uffff", 6],
      ["\u{1f600}", 4],
      ["\ud800", 3],
      ["\udc00", 3],
      ["\udc00\ud800", 6],
      ["\ud800\ud83d\ude00", 7],
      ["\ud83d\ude00\ude00", 7],
    ];
    for (const [text, bytes] of cases) expect(utf8Length(text), JSON.stringify(text)).toBe(bytes);
  });

  // The characters of each UTF-8 width, and how many bytes each takes.
  const wide = fc.constantFrom<[string, number]>(
    ["a", 1],
    ["\u00e9", 2],
    ["\u20ac", 3],
    ["\u{1f600}", 4],
    ["\ud800", 3],
  );
  /** `n` of `char` after ASCII, so that the whole is `valueBytesMax + over` bytes long. */
  const near = (char: string, width: number, n: number, over: number): string =>
    "a".repeat(valueBytesMax - n * width + over) + char.repeat(n);

  // The value limit is admission's (the HTTP layer's): a command chosen with a longer value (one a
  // leader of a version that counted code units admitted) is executed as every version executes it.
  test.prop([wide, fc.integer({ min: 1, max: 4 }), fc.integer({ min: -2, max: 2 })], { numRuns: 20 })(
    "a chosen put or swap is executed whatever its length in bytes: the value limit is admission's",
    ([char, width], n, over) => {
      const value = near(char, width, n, over);
      // Refused only past the bound in code units (which no value the Schema decodes crosses).
      const refused = value.length > valueLengthMax;
      const tooLarge = { _tag: "too-large", length: value.length, limit: valueLengthMax };
      const put = kv.apply({ _tag: "put", key: "k", value }, kv.start);
      expect(put.output).toEqual(refused ? tooLarge : { _tag: "ok" });
      expect(kvGet(put.state, "k")).toBe(refused ? null : value);
      const cas = kv.apply({ _tag: "cas", key: "k", expected: null, value }, kv.start);
      expect(cas.output).toEqual(refused ? tooLarge : { _tag: "cas", swapped: true, current: null });
    },
  );

  test.prop(
    [fc.constantFrom("a", "\u00e9", "\u{1f600}"), fc.integer({ min: -3, max: 3 }), fc.double({ min: 0, max: 1 })],
    { numRuns: 20 },
  )(
    "an append is refused exactly when the whole would be over the bound in code units, wherever the pieces meet",
    (char, over, at) => {
      const whole = "a".repeat(valueLengthMax - 4 + over) + char.repeat(4 / char.length);
      // The first piece within the bound, so that it is stored.
      const cut = Math.floor(at * (valueLengthMax - 4));
      const start = kv.apply({ _tag: "put", key: "k", value: whole.slice(0, cut) }, kv.start);
      const { state, output } = kv.apply({ _tag: "append", key: "k", value: whole.slice(cut) }, start.state);
      const refused = whole.length > valueLengthMax;
      expect(output).toEqual(
        refused ? { _tag: "too-large", length: whole.length, limit: valueLengthMax } : { _tag: "value", value: whole },
      );
      expect(state === start.state).toBe(refused);
    },
  );

  test("a value of 3 MiB of UTF-8 within the bound restores, reads, is replaced, and is appended to up to the bound", () => {
    // Appends of wide characters build values of up to 3 MiB of UTF-8 within valueLengthMax.
    const old = "\u20ac".repeat(valueLengthMax - 1);
    const state = kv.restore({ format: "paxos-lease/kv@1", entries: [["k", old]] });
    expect(kvGet(state, "k")).toBe(old);
    expect(kv.apply({ _tag: "append", key: "k", value: "\u20ac" }, state).output).toEqual({
      _tag: "value",
      value: `${old}\u20ac`,
    });
    expect(kv.apply({ _tag: "append", key: "k", value: "ab" }, state).output).toEqual({
      _tag: "too-large",
      length: valueLengthMax + 1,
      limit: valueLengthMax,
    });
    expect(kvGet(kv.apply({ _tag: "put", key: "k", value: "small" }, state).state, "k")).toBe("small");
    expect(kvGet(kv.apply({ _tag: "delete", key: "k" }, state).state, "k")).toBe(null);
  });
});

describe("the value limit at execution from feature level 4 (bytes of UTF-8)", () => {
  const level4 = featureLevelValueBytes;
  const bytesTooLarge = (length: number) => ({ _tag: "too-large", length, limit: valueBytesMax, unit: "bytes" });
  const pieces = fc.constantFrom("a", "\u00e9", "\u20ac", "\u{1f600}", "\ud800", "\udc00");

  test.prop([pieces, pieces, fc.integer({ min: -3, max: 3 }), fc.double({ min: 0, max: 1 })], { numRuns: 12 })(
    "an append is refused exactly when the whole would be over 1 MiB of UTF-8, wherever the pieces meet (surrogate pairs joined)",
    (head, tail, over, at) => {
      // The whole: ASCII, then `head` at the cut's end and `tail` at the appended text's start.
      const fill = valueBytesMax + over - utf8Length(head + tail);
      const cut = Math.floor(at * fill);
      const first = `${"a".repeat(cut)}${head}`;
      const second = `${tail}${"a".repeat(fill - cut)}`;
      const whole = first + second;
      const start = kv.apply({ _tag: "put", key: "k", value: first }, kv.start, level4);
      expect(kvGet(start.state, "k")).toBe(first);
      const { state, output } = kv.apply({ _tag: "append", key: "k", value: second }, start.state, level4);
      const refused = utf8Length(whole) > valueBytesMax;
      // Compared by flags, not by a diff of megabytes.
      if (refused) expect(output).toEqual(bytesTooLarge(utf8Length(whole)));
      else expect(output._tag === "value" && output.value === whole).toBe(true);
      expect(state === start.state).toBe(refused);
      // Below level 4 the same append is refused only past the bound in code units.
      for (const level of [1, 3]) {
        const below = kv.apply({ _tag: "append", key: "k", value: second }, start.state, level).output;
        if (whole.length > valueLengthMax)
          expect(below).toEqual({ _tag: "too-large", length: whole.length, limit: valueLengthMax });
        else expect(below._tag === "value" && below.value === whole, `level ${level}`).toBe(true);
      }
    },
  );

  test("a put or swap over 1 MiB of UTF-8 (one a leader of an earlier version admitted) is refused at level 4 only", () => {
    const value = "\u00e9".repeat(valueBytesMax / 2 + 1);
    for (const level of [1, 2, 3]) {
      expect(kv.apply({ _tag: "put", key: "k", value }, kv.start, level).output).toEqual({ _tag: "ok" });
      expect(kv.apply({ _tag: "cas", key: "k", expected: null, value }, kv.start, level).output._tag).toBe("cas");
    }
    const put = kv.apply({ _tag: "put", key: "k", value }, kv.start, level4);
    expect(put.output).toEqual(bytesTooLarge(valueBytesMax + 2));
    expect(put.state).toBe(kv.start);
    const cas = kv.apply({ _tag: "cas", key: "k", expected: null, value }, kv.start, level4);
    expect(cas.output).toEqual(bytesTooLarge(valueBytesMax + 2));
    // A value of exactly 1 MiB is taken.
    expect(kv.apply({ _tag: "put", key: "k", value: value.slice(1) }, kv.start, level4).output).toEqual({ _tag: "ok" });
    // Past the bound in code units too, the answer is in bytes at level 4.
    const long = "a".repeat(valueLengthMax + 1);
    expect(kv.apply({ _tag: "put", key: "k", value: long }, kv.start, level4).output).toEqual(
      bytesTooLarge(valueLengthMax + 1),
    );
  });

  test("the byte count kept beside a value is recomputed by a restore: a value of 3 MiB of UTF-8 held from before the raise refuses every append", () => {
    const old = "\u20ac".repeat(valueLengthMax - 1);
    const held = kv.restore(kv.snapshot(kv.restore({ format: "paxos-lease/kv@1", entries: [["k", old]] })));
    expect(kv.apply({ _tag: "append", key: "k", value: "a" }, held, level4).output).toEqual(
      bytesTooLarge(3 * (valueLengthMax - 1) + 1),
    );
    // It stays readable and replaceable; below level 4 the append is executed as before.
    expect(kv.apply({ _tag: "put", key: "k", value: "small" }, held, level4).output).toEqual({ _tag: "ok" });
    expect(kv.apply({ _tag: "append", key: "k", value: "a" }, held, 3).output._tag).toBe("value");
  });

  test("the outputs of the two units differ (the limits are the same number)", () => {
    const units = { _tag: "too-large", length: 5, limit: valueBytesMax } as const;
    expect(kv.outputsEqual(units, { ...units, unit: "bytes" })).toBe(false);
    expect(kv.outputsEqual({ ...units, unit: "bytes" }, { ...units, unit: "bytes" })).toBe(true);
  });
});

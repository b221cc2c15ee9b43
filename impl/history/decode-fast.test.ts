/**
 * The hand-written decoders of decode-fast.ts against the Schemas they stand in for: on
 * values of every shape (valid ones from the Schemas' own generators, near misses, and
 * arbitrary JSON), a fast decoder either declines (undefined) or returns exactly what the
 * Schema decodes; and it does not decline the shapes the importers and the format write.
 */
import { Arbitrary, Either, Schema } from "effect";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { KvInput, KvOutput } from "../../spec/kv.ts";
import { kvInputFast, kvOutputFast, registerInputFast, registerOutputFast } from "./decode-fast.ts";
import { RegisterInput, RegisterOutput } from "./history.ts";

const cases = [
  { name: "register input", schema: RegisterInput, fast: registerInputFast },
  { name: "register output", schema: RegisterOutput, fast: registerOutputFast },
  { name: "kv input", schema: KvInput, fast: kvInputFast },
  { name: "kv output", schema: KvOutput, fast: kvOutputFast },
] as const;

/** Each member's tag field, tag and other fields, for near misses of every member. */
const members: readonly (readonly [string, string | number | boolean, ...string[]])[] = [
  ["f", "read", "key"],
  ["f", "write", "key", "value"],
  ["f", "cas", "key", "from", "to"],
  ["value", 1],
  ["ok", true],
  ["_tag", "get", "key"],
  ["_tag", "put", "key", "value"],
  ["_tag", "delete", "key"],
  ["_tag", "cas", "key", "expected", "value"],
  ["_tag", "append", "key", "value"],
  ["_tag", "noop"],
  ["_tag", "value", "value"],
  ["_tag", "ok"],
  ["_tag", "cas", "swapped", "current"],
  ["_tag", "too-large", "length", "limit"],
];
const fieldValue = fc.oneof(
  fc.constantFrom(null, undefined, true, false, 0, -1, 1.5, Number.NaN, Infinity, "", "k", "x".repeat(1025)),
  fc.string(),
  fc.integer(),
  fc.double(),
  fc.constant({}),
  fc.constant([]),
);
/** Near misses: a member's fields with values of any JSON type, sometimes one missing or one extra. */
const nearMiss = fc
  .tuple(
    fc.constantFrom(...members),
    fc.array(fieldValue, { minLength: 5, maxLength: 5 }),
    fc.integer({ min: -1, max: 8 }),
    fc.boolean(),
  )
  .map(([[tagField, tag, ...fields], values, drop, extra]) => {
    const value: Record<string, unknown> = { [tagField]: tag };
    fields.forEach((field, i) => {
      if (i !== drop) value[field] = values[i];
    });
    if (extra && drop === 8) value.extra = values[4];
    return value;
  });

/** effect 3 types its bridge against the fast-check 3 it bundles; fast-check 4 has what it calls. */
type EffectFastCheck = Parameters<ReturnType<typeof Arbitrary.makeLazy>>[0];
function arbitraryOf(schema: Schema.Schema<unknown, unknown>): fc.Arbitrary<unknown> {
  return Arbitrary.makeLazy(schema)(fc as unknown as EffectFastCheck) as unknown as fc.Arbitrary<unknown>;
}

describe("the fast decoders", () => {
  for (const { name, schema, fast } of cases) {
    const decode = Schema.decodeUnknownEither(schema as Schema.Schema<unknown, unknown>, { onExcessProperty: "error" });
    const agrees = (value: unknown): void => {
      const quick = fast(value);
      if (quick === undefined) return;
      const slow = decode(value);
      expect(Either.isRight(slow), `${name}: the Schema refuses ${JSON.stringify(value)}`).toBe(true);
      if (Either.isRight(slow)) expect(quick).toStrictEqual(slow.right);
    };
    it(`${name}: returns what the Schema decodes, or declines`, () => {
      fc.assert(fc.property(arbitraryOf(schema as Schema.Schema<unknown, unknown>), agrees), {
        numRuns: 500,
      });
      fc.assert(fc.property(nearMiss, agrees), { numRuns: 3000 });
      fc.assert(fc.property(fc.jsonValue(), agrees), { numRuns: 500 });
    });
  }

  it("takes the shapes the importers and the format write", () => {
    for (const input of [
      { f: "read" },
      { f: "write", value: 3 },
      { f: "cas", from: 1, to: null },
      { f: "read", key: "k" },
      { f: "write", key: 7, value: "v" },
    ])
      expect(registerInputFast(input)).toBe(input);
    for (const output of [{ value: 1 }, { value: null }, { ok: false }, {}])
      expect(registerOutputFast(output)).toBe(output);
    for (const input of [
      { _tag: "get", key: "k" },
      { _tag: "put", key: "k", value: "v" },
      { _tag: "delete", key: "k" },
      { _tag: "cas", key: "k", expected: null, value: "v" },
      { _tag: "append", key: "k", value: "v" },
      { _tag: "noop" },
    ])
      expect(kvInputFast(input)).toStrictEqual(input);
    for (const output of [
      { _tag: "value", value: null },
      { _tag: "ok" },
      { _tag: "cas", swapped: true, current: "v" },
      { _tag: "too-large", length: 5, limit: 4 },
    ])
      expect(kvOutputFast(output)).toStrictEqual(output);
  });

  it("declines what the Schema refuses", () => {
    expect(registerInputFast({ f: "read", extra: 1 })).toBeUndefined();
    expect(registerInputFast({ f: "write" })).toBeUndefined();
    expect(registerOutputFast({ value: 1, ok: true })).toBeUndefined();
    expect(kvInputFast({ _tag: "get", key: "" })).toBeUndefined();
    expect(kvInputFast({ _tag: "put", key: "k", value: 1 })).toBeUndefined();
    expect(kvOutputFast({ _tag: "too-large", length: -1, limit: 4 })).toBeUndefined();
  });
});

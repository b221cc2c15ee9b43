/**
 * The streaming decoder of a snapshot's JSON (snapshot-decoder.ts): however the text is cut into
 * chunks it decodes to exactly what JSON.parse makes of it whole, it refuses exactly the text
 * JSON.parse refuses (with a reason, never a throw), and a decoding is a value: reading more from
 * one leaves it as it was, so a state holding it may be stepped twice.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodedValue, decodeMore, decodingStart, type SnapshotDecoding } from "./snapshot-decoder.ts";

/** `text` cut at `cuts` (positions, any order) and decoded chunk by chunk. */
function decodeInChunks(text: string, cuts: readonly number[]): ReturnType<typeof decodedValue> {
  const at = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
  let d: SnapshotDecoding = decodingStart;
  let from = 0;
  for (const cut of [...at, text.length]) {
    d = decodeMore(d, text.slice(from, cut));
    from = cut;
  }
  return decodedValue(d);
}

function parsed(text: string): { json: unknown } | { error: string } {
  try {
    return { json: JSON.parse(text) as unknown };
  } catch (error) {
    return { error: String(error) };
  }
}

/** JSON with the characters a snapshot's text holds: escapes, nesting past the walked depth, spaces. */
const jsonText = fc.oneof(
  fc.json({ maxDepth: 6 }),
  fc.jsonValue({ maxDepth: 6 }).map((v) => JSON.stringify(v, null, 1)),
  fc.constant('{"__proto__":{"a":1},"k":[1,2,{"x":"\\"\\\\"}],"k":"last"}'),
);

describe("decoding a snapshot's JSON as it arrives", () => {
  it("gives JSON.parse's value however the text is cut", () => {
    fc.assert(
      fc.property(jsonText, fc.array(fc.nat(), { maxLength: 12 }), (text, cuts) => {
        const decoded = decodeInChunks(text, cuts);
        expect(decoded).toStrictEqual({ json: JSON.parse(text) as unknown });
      }),
      { numRuns: 300 },
    );
  });

  it("refuses what JSON.parse refuses, with a reason naming the byte, and never throws", () => {
    const damaged = fc
      .tuple(jsonText, fc.nat(), fc.constantFrom("", "{", "}", "[", "]", ",", ":", '"', "\\", "x", "1", " "))
      .map(([text, at, c]) => {
        const i = at % (text.length + 1);
        return text.slice(0, i) + c + text.slice(i + 1);
      });
    fc.assert(
      fc.property(fc.oneof(damaged, fc.string()), fc.array(fc.nat(), { maxLength: 6 }), (text, cuts) => {
        const decoded = decodeInChunks(text, cuts);
        const whole = parsed(text);
        expect("error" in decoded).toBe("error" in whole);
        if ("error" in decoded) expect(decoded.error).toMatch(/^not JSON at byte \d+: /);
        else expect(decoded).toStrictEqual(whole);
      }),
      { numRuns: 500 },
    );
  });

  it("names what is wrong", () => {
    expect(decodeInChunks('{"a":1,}', [3])).toEqual({ error: "not JSON at byte 7: expected a key" });
    expect(decodeInChunks('{"a":1} x', [])).toEqual({ error: "not JSON at byte 8: text after the end of the value" });
    expect(decodeInChunks('{"a":[1,', [2])).toEqual({
      error: "not JSON at byte 8: the text ends inside a value",
    });
  });

  it("leaves the decoding it read from as it was (two continuations of one state)", () => {
    const half = decodeMore(decodingStart, '{"app":[["k","v');
    const one = decodedValue(decodeMore(half, '1"]],"n":1}'));
    const two = decodedValue(decodeMore(half, '2"]],"n":2}'));
    expect(one).toEqual({ json: { app: [["k", "v1"]], n: 1 } });
    expect(two).toEqual({ json: { app: [["k", "v2"]], n: 2 } });
    expect(decodedValue(half)).toEqual({ error: "not JSON at byte 15: the text ends inside a value" });
  });
});

/**
 * A large JSON body parsed from its bytes (json-body.ts) gives exactly what JSON.parse of its
 * decoded text gives, or declines (and the whole text is parsed as before): never another value.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { hasControlByte, splitLongString, withLongString } from "./json-body.ts";

const long = "v".repeat(100_000);

/** The body parsed by the fast path, or "declined". */
function fast(bytes: Buffer): unknown {
  const split = splitLongString(bytes);
  if (split === null) return "declined";
  const filled = withLongString(JSON.parse(split.rest), split.value);
  return filled === undefined ? "declined" : filled;
}

const body = (value: unknown): Buffer => Buffer.from(JSON.stringify(value), "utf8");

describe("a large JSON body parsed from its bytes", () => {
  it("gives JSON.parse's value for a PUT's body and its kin, the long string made from the bytes", () => {
    for (const value of [
      { value: long },
      { value: `${long}é€😀` },
      { expected: "old", op: "cas", value: long },
      { value: long, nested: [1, { a: "b" }, null, true], n: -1.5e3 },
      [long, "short"],
      long,
    ]) {
      expect(fast(body(value))).toEqual(value);
    }
    // Whitespace and the long string's place anywhere.
    const spaced = Buffer.from(`  {\n "op" : "append" ,\t"value":"${long}"  }\n`, "utf8");
    expect(fast(spaced)).toEqual({ op: "append", value: long });
    // An own "__proto__" stays an own property holding the string, as JSON.parse leaves it.
    const proto = Buffer.from(`{"__proto__":"${long}"}`, "utf8");
    const parsed = fast(proto) as Record<string, unknown>;
    expect(Object.getPrototypeOf(parsed)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(parsed, "__proto__")?.value).toBe(long);
  });

  it("declines whatever it cannot judge as JSON.parse would: escapes, control bytes, bad UTF-8, a BOM, a key", () => {
    expect(fast(body({ value: "short" }))).toBe("declined");
    expect(fast(body({ value: long, other: 'a"b' }))).toBe("declined"); // an escape anywhere
    expect(fast(Buffer.from(`{"value":"${long}\t"}`, "utf8"))).toBe("declined"); // a raw tab
    expect(fast(Buffer.from(`{"value":"${long}`, "utf8"))).toBe("declined"); // unterminated
    const badUtf8 = Buffer.concat([Buffer.from(`{"value":"${long}`), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
    expect(fast(badUtf8)).toBe("declined");
    const badAround = Buffer.concat([Buffer.from('{"v":"'), Buffer.from([0xff]), Buffer.from(`","value":"${long}"}`)]);
    expect(fast(badAround)).toBe("declined");
    expect(fast(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), body({ value: long })]))).toBe("declined");
    expect(fast(Buffer.from(`{"${long}":1}`, "utf8"))).toBe("declined"); // the long string is a key
  });

  it("finds a control byte at any place and alignment, and only a control byte", () => {
    const memory = new Uint8Array(48);
    const wrong: string[] = [];
    for (let offset = 0; offset < 4; offset++)
      for (let length = 0; length <= 40; length++) {
        const bytes = memory.subarray(offset, offset + length);
        for (let at = -1; at < length; at++)
          for (const byte of [0x00, 0x1f, 0x20, 0x7f, 0x80, 0x9f, 0xff]) {
            bytes.fill(0x61);
            if (at >= 0) bytes[at] = byte;
            if (hasControlByte(bytes) !== (at >= 0 && byte < 0x20)) wrong.push(`${offset}/${length}/${at}/${byte}`);
          }
      }
    expect(wrong).toEqual([]);
  });

  it("never gives a value JSON.parse of the text would not", () => {
    let taken = 0;
    // Long strings of characters JSON writes as they are (and a few it escapes), spliced anywhere.
    const unit = fc.oneof(
      { weight: 20, arbitrary: fc.constantFrom("a", " ", "é", "€", "😀", "{", "}", ":", ",", "[") },
      { weight: 1, arbitrary: fc.constantFrom("\t", '"', "\\", "\u0000") },
    );
    fc.assert(
      fc.property(
        fc.jsonValue({ maxDepth: 3 }),
        fc.tuple(fc.string({ unit, maxLength: 8 }), fc.integer({ min: 0, max: 2 })),
        fc.nat(),
        (around, [piece, escapes], at) => {
          // About 66 KiB of a repeated piece, sometimes with characters JSON escapes.
          const longString = `${"x".repeat(66_000)}${piece}${"\t".repeat(escapes > 1 ? 1 : 0)}`;
          const text = JSON.stringify(around) ?? "null";
          const cut = at % (text.length + 1);
          // The long string spliced in anywhere: most splices are no JSON, and both must say so.
          const spliced = `${text.slice(0, cut)}${JSON.stringify(longString)}${text.slice(cut)}`;
          const bytes = Buffer.from(spliced, "utf8");
          let expected: unknown;
          try {
            expected = JSON.parse(spliced);
          } catch {
            expected = "refused";
          }
          let got: unknown;
          try {
            got = fast(bytes);
          } catch {
            got = "refused";
          }
          if (got === "declined") return;
          taken += 1;
          expect(got).toEqual(expected);
        },
      ),
      { numRuns: 300 },
    );
    // The fast path was taken, not only declined.
    expect(taken).toBeGreaterThan(30);
  });
});

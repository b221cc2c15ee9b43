/**
 * The binary peer codec, fuzzed with fast-check against the Schema it is compiled from: every
 * message the Schema allows round-trips exactly; random bytes, truncations and single-byte
 * corruptions of real messages never throw and never yield a value the Schema rejects; and each
 * kind of malformed input is refused with a reason that names the field and what was wrong.
 */
import fc from "fast-check";
import { Either, Schema } from "effect";
import { describe, expect, it } from "vitest";
import { arbitraryOf } from "../../proofs/arbitrary.ts";
import { binaryCodec } from "./binary-codec.ts";
import { kvMessageSchema, kvRecordSchema, type KvMessage, type KvRecord } from "./core-adapter.ts";

const messages = binaryCodec(kvMessageSchema);
const isMessage = Schema.is(kvMessageSchema);
const runs = { numRuns: 300 };

/** The decoder's verdict on `bytes`: a value the Schema accepts, or a reason; never a throw. */
function judged(bytes: Uint8Array): Either.Either<KvMessage, string> {
  const decoded = messages.decode(bytes);
  if (Either.isRight(decoded)) expect(isMessage(decoded.right)).toBe(true);
  else expect(decoded.left.length).toBeGreaterThan(0);
  return decoded;
}

describe("binary codec", () => {
  it("round-trips every message and record the Schemas allow", () => {
    for (const schema of [kvMessageSchema, kvRecordSchema] as const) {
      const codec = binaryCodec(schema as Schema.Schema<unknown, unknown>);
      fc.assert(
        fc.property(arbitraryOf(schema as Schema.Schema<unknown, unknown>), (value) => {
          const bytes = codec.encode(value);
          expect(codec.decode(bytes)).toEqual(Either.right(value));
          // The same bytes into memory the caller gives (a thread hands such bytes over by transfer).
          const given = Buffer.alloc(bytes.length + 5, 0xee);
          const into = codec.encodeWith(value, (size) => given.subarray(0, size));
          expect(into.buffer).toBe(given.buffer);
          expect(into.equals(bytes)).toBe(true);
          expect(() => codec.encodeWith(value, (size) => Buffer.alloc(size + 1))).toThrow(/given \d+ bytes to write/);
        }),
        runs,
      );
    }
  });

  it("is smaller than JSON for a message carrying a value, and copies the value's bytes as they are", () => {
    const value = "x".repeat(1 << 20);
    const accept: KvMessage = {
      _tag: "Accept",
      ballot: { round: 3, replica: 1 },
      slot: 9,
      value: { _tag: "batch", commands: [{ clientId: "c1", seq: 4, input: { _tag: "put", key: "k", value } }] },
      commitIndex: 8,
      sentAt: 1234.5,
    };
    expect(isMessage(accept)).toBe(true);
    const bytes = messages.encode(accept);
    expect(bytes.length).toBeLessThan(JSON.stringify(accept).length);
    expect(bytes.includes(Buffer.from(value.slice(0, 4096)))).toBe(true);
    expect(messages.decode(bytes)).toEqual(Either.right(accept));
  });

  it("writes into a scratch buffer large enough, and into a fresh one otherwise, the same bytes", () => {
    const codec = binaryCodec(Schema.Struct({ s: Schema.String, n: Schema.Number }));
    const value = { s: "x".repeat(1000), n: 7 };
    const fresh = codec.encode(value);
    const scratch = Buffer.alloc(4096, 0xee);
    const into = codec.encode(value, scratch);
    expect(into.equals(fresh)).toBe(true);
    expect(into.buffer).toBe(scratch.buffer);
    expect(codec.decode(into)).toEqual(Either.right(value));
    const small = Buffer.alloc(10, 0xee);
    const outgrown = codec.encode(value, small);
    expect(outgrown.equals(fresh)).toBe(true);
    expect(outgrown.buffer).not.toBe(small.buffer);
    expect(small.every((b) => b === 0xee)).toBe(true);
  });

  it("carries strings UTF-8 cannot (unpaired surrogates) and -0 unchanged", () => {
    const codec = binaryCodec(Schema.Struct({ s: Schema.String, n: Schema.Number }));
    for (const value of [
      { s: "a\uD800b", n: -0 },
      { s: "\uDFFF", n: 0.1 },
      { s: "é😀", n: -(2 ** 53 - 1) },
      { s: "", n: Number.POSITIVE_INFINITY },
    ]) {
      const decoded = codec.decode(codec.encode(value));
      expect(Either.isRight(decoded)).toBe(true);
      if (Either.isRight(decoded)) {
        expect(decoded.right.s).toBe(value.s);
        expect(Object.is(decoded.right.n, value.n)).toBe(true);
      }
    }
  });

  it("never throws on random bytes, and accepts only what the Schema accepts", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => {
        judged(bytes);
      }),
      { numRuns: 2000 },
    );
  });

  it("refuses every truncation of a message, and judges every corruption of one", () => {
    fc.assert(
      fc.property(arbitraryOf(kvMessageSchema), fc.nat(), fc.integer({ min: 1, max: 255 }), (message, at, flip) => {
        const bytes = messages.encode(message);
        const cut = at % bytes.length;
        expect(Either.isLeft(judged(bytes.subarray(0, cut)))).toBe(true);
        const corrupt = Buffer.from(bytes);
        corrupt[cut] = corrupt[cut]! ^ flip;
        judged(corrupt);
        judged(Buffer.concat([bytes, Buffer.from([0])]));
      }),
      runs,
    );
  });

  it("names the field and the fault of each kind of malformed message", () => {
    const good: KvMessage = {
      _tag: "Prepare",
      ballot: { round: 2, replica: 1 },
      fromSlot: 5,
      sentAt: 10,
    };
    const bytes = messages.encode(good);
    expect(messages.decode(bytes)).toEqual(Either.right(good));
    const left = (b: Uint8Array): string => Either.getOrElse(Either.flip(messages.decode(b)), () => "decoded");

    expect(left(Buffer.alloc(0))).toMatch(/^message: ends inside a union member/);
    expect(left(Buffer.from([250]))).toMatch(/^message: member 250 of a union of \d+/);
    expect(left(Buffer.concat([bytes, Buffer.from([1, 2])]))).toBe("2 bytes follow the message");
    expect(left(bytes.subarray(0, bytes.length - 1))).toMatch(/^message\.sentAt: ends inside a number/);
    // fromSlot must be a positive integer: 0 is refused by the Schema's own filter.
    const zeroSlot = messages.encode({ ...good, fromSlot: 0 });
    expect(left(zeroSlot)).toMatch(/^message\.fromSlot: .*positive/i);
    // A number of a kind no encoder writes.
    const badKind = Buffer.from(bytes);
    badKind[badKind.length - 2] = 7;
    expect(left(badKind)).toMatch(/^message\.sentAt: a number of unknown kind 7/);

    const strings = binaryCodec(Schema.Struct({ s: Schema.String }));
    expect(Either.flip(strings.decode(Buffer.from([2 * 2, 0xc3, 0x28])))).toEqual(
      Either.right("message.s: a string that is not valid UTF-8"),
    );
    expect(Either.flip(strings.decode(Buffer.from([0xc8, 0x01, 0x61])))).toEqual(
      Either.right("message.s: ends inside a string (100 bytes announced, 1 left)"),
    );
    const list = binaryCodec(Schema.Struct({ xs: Schema.Array(Schema.Number) }));
    expect(Either.flip(list.decode(Buffer.from([0xff, 0xff, 0xff, 0x7f])))).toEqual(
      Either.right("message.xs: 268435455 items announced, more than the 0 bytes left can hold"),
    );
    // The path is built only once decoding fails, step by step on the way out: items and tuple elements by index.
    const nested = binaryCodec(
      Schema.Struct({ rows: Schema.Array(Schema.Struct({ pair: Schema.Tuple(Schema.Number, Schema.String) })) }),
    );
    const rows = nested.encode({ rows: [{ pair: [1, "a"] }, { pair: [2, "b"] }] });
    expect(Either.flip(nested.decode(rows.subarray(0, rows.length - 1)))).toEqual(
      Either.right("message.rows[1].pair[1]: ends inside a string (1 bytes announced, 0 left)"),
    );
  });

  it("reads the leading fields of a record from its first bytes, and never throws on bad bytes", () => {
    const records = binaryCodec(kvRecordSchema);
    fc.assert(
      fc.property(arbitraryOf(kvRecordSchema), fc.integer({ min: 1, max: 7 }), fc.nat(), (record, fields, at) => {
        const bytes = records.encode(record);
        // Whatever follows the fields asked for is not read: the head of the whole bytes is the record's own.
        const head = records.decodeHead(bytes, fields);
        const names = Object.keys(record).slice(0, fields);
        expect(head).toEqual(
          Either.right(Object.fromEntries(names.map((name) => [name, record[name as keyof typeof record]]))),
        );
        // Cut short, the head is read or refused, never thrown.
        const cut = records.decodeHead(bytes.subarray(0, at % bytes.length), fields);
        if (Either.isLeft(cut)) expect(cut.left.length).toBeGreaterThan(0);
      }),
      runs,
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.nat(8), (bytes, fields) => {
        const head = records.decodeHead(bytes, fields);
        if (Either.isLeft(head)) expect(head.left).toMatch(/^message/);
      }),
      { numRuns: 2000 },
    );
    const vote: KvRecord = {
      _tag: "vote",
      slot: 12,
      ballot: { round: 2, replica: 3 },
      value: { _tag: "batch", commands: [{ input: { _tag: "put", key: "k", value: "v".repeat(1000) } }] },
    };
    const bytes = records.encode(vote);
    expect(records.decodeHead(bytes.subarray(0, 8), 2)).toEqual(Either.right({ _tag: "vote", slot: 12 }));
    expect(Either.flip(records.decodeHead(bytes.subarray(0, 1), 2))).toEqual(
      Either.right("message.slot: ends inside a number (1 bytes announced, 0 left)"),
    );
    expect(Either.flip(records.decodeHead(Buffer.from([99]), 2))).toEqual(
      Either.right("message: member 99 of a union of 6"),
    );
    // A codec of no struct has no head.
    expect(Either.flip(binaryCodec(Schema.String).decodeHead(Buffer.from([0]), 1))).toEqual(
      Either.right("message: not a struct"),
    );
  });

  it("picks a union member by its tag, then by the field only it requires, and by guard only when neither tells", () => {
    const records = binaryCodec(kvRecordSchema);
    // The encoder trusts its input: a vote is a vote by its tag, its commands are not checked here
    // (seq 0 is out of range), and the decoder refuses them, naming the field.
    const vote = {
      _tag: "vote",
      slot: 3,
      ballot: { round: 1, replica: 1 },
      value: { _tag: "batch", commands: [{ clientId: "c", seq: 0, input: { _tag: "put", key: "k", value: "v" } }] },
    } as const satisfies KvRecord;
    expect(Either.flip(records.decode(records.encode(vote)))).toEqual(
      Either.right(expect.stringMatching(/^message\.value\.commands\[0\]/) as string),
    );
    // The two kinds of chosen record share their tag: each is told apart by the field only it
    // requires (`ballot`, `value`).
    const byBallot: KvRecord = { _tag: "chosen", slot: 4, ballot: { round: 2, replica: 1 } };
    const byValue: KvRecord = { _tag: "chosen", slot: 4, value: { _tag: "noop" } };
    for (const record of [byBallot, byValue])
      expect(records.decode(records.encode(record))).toEqual(Either.right(record));
    expect(records.encode(byBallot)[0]).not.toBe(records.encode(byValue)[0]);
    // So no guard runs over the value: like a vote's, a chosen value's commands are not checked
    // here (a guard would have refused seq 0), and the decoder refuses them, naming the field.
    const unchecked = { _tag: "chosen", slot: 4, value: vote.value } as const satisfies KvRecord;
    expect(Either.flip(records.decode(records.encode(unchecked)))).toEqual(
      Either.right(expect.stringMatching(/^message\.value\.commands\[0\]/) as string),
    );
    // A value that holds neither field, or both, is left to the guards, in order: no member takes
    // the first, the chosen value's (which ignores excess fields) takes the second.
    expect(() => records.encode({ _tag: "chosen", slot: 4 } as unknown as KvRecord)).toThrow(/no member of the union/);
    const both = { ...byBallot, value: { _tag: "noop" } } as unknown as KvRecord;
    expect(records.decode(records.encode(both))).toEqual(Either.right(byValue));
    expect(() => records.encode({ _tag: "elected" } as unknown as KvRecord)).toThrow(/no member of the union/);
  });

  it("refuses to compile a Schema whose values do not encode as themselves", () => {
    expect(() => binaryCodec(Schema.NumberFromString)).toThrow(/encode as themselves/);
    expect(() => binaryCodec(Schema.Record({ key: Schema.String, value: Schema.Number }))).toThrow(/record/);
  });
});

/**
 * Every message and durable record is an effect Schema: what the Schema generates survives an
 * encode/decode round trip unchanged, and malformed input is refused at the boundary.
 */
import { fc, test } from "@fast-check/vitest";
import { Either, Schema } from "effect";
import { describe, expect, it } from "vitest";
import { arbitraryOf } from "../../proofs/arbitrary.ts";
import { KvInput } from "../../spec/kv.ts";
import { messageSchema, plainEqual } from "./messages.ts";
import { recordSchema } from "./records.ts";

const Message = messageSchema(KvInput);
const Record = recordSchema(KvInput);

describe("message and record schemas", () => {
  test.prop([arbitraryOf(Message)], { numRuns: 200 })("messages round-trip through their encoding", (m) => {
    const encoded = Schema.encodeSync(Message)(m);
    const json = JSON.parse(JSON.stringify(encoded)) as unknown;
    // plainEqual, not toEqual: JSON turns a clock reading of -0 into 0, which is the same reading.
    expect(plainEqual(Schema.decodeUnknownSync(Message)(json), m)).toBe(true);
  });

  test.prop([arbitraryOf(Record)], { numRuns: 200 })("records round-trip through their encoding", (r) => {
    const encoded = Schema.encodeSync(Record)(r);
    const json = JSON.parse(JSON.stringify(encoded)) as unknown;
    expect(plainEqual(Schema.decodeUnknownSync(Record)(json), r)).toBe(true);
  });

  it.each([
    [
      "a command with a clientId but no seq",
      {
        _tag: "vote",
        slot: 1,
        ballot: { round: 1, replica: 1 },
        value: { _tag: "batch", commands: [{ clientId: "c", input: { _tag: "noop" } }] },
      },
    ],
    ["slot 0", { _tag: "chosen", slot: 0, value: { _tag: "noop" } }],
    ["a ballot with round 0 and a replica", { _tag: "promise", ballot: { round: 0, replica: 2 } }],
    ["an unknown tag", { _tag: "forget", slot: 1 }],
  ])("refuses a record with %s", (_what, input) => {
    expect(Either.isLeft(Schema.decodeUnknownEither(Record)(input))).toBe(true);
  });

  it("refuses a message with a negative grant remainder", () => {
    const nack = {
      _tag: "Nack",
      ballot: { round: 1, replica: 1 },
      promised: { round: 2, replica: 2 },
      grantRemainingMs: -1,
    };
    expect(Either.isLeft(Schema.decodeUnknownEither(Message)(nack))).toBe(true);
  });

  test.prop([fc.constantFrom("Prepare", "Accept", "Heartbeat")])(
    "every tag decodes only with its own fields",
    (tag) => {
      expect(Either.isLeft(Schema.decodeUnknownEither(Message)({ _tag: tag }))).toBe(true);
    },
  );
});

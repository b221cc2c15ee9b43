/**
 * The frame decoder at the network boundary, fuzzed with fast-check: random bytes, random
 * chunkings, truncated frames, huge lengths and wrongly typed bodies never throw and always
 * give either the frames that were sent or a clear reason.
 */
import fc from "fast-check";
import { Either, Schema } from "effect";
import { arbitraryOf } from "../../proofs/arbitrary.ts";
import { describe, expect, it } from "vitest";
import { kvMessageSchema, kvRecordSchema } from "./core-adapter.ts";
import { encodeFrame, encodesAsItself, FrameDecoder, jsonCodec } from "./framing.ts";

const Ping = Schema.TaggedStruct("ping", { n: Schema.Int, text: Schema.String });
const codec = jsonCodec(Ping);
const limit = 1024;

/** Split `bytes` at the given cut points. */
function chunked(bytes: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let start = 0;
  for (const point of points) {
    chunks.push(bytes.subarray(start, point));
    start = point;
  }
  chunks.push(bytes.subarray(start));
  return chunks;
}

function feed(decoder: FrameDecoder, chunks: readonly Buffer[]): { frames: Buffer[]; error?: string } {
  const frames: Buffer[] = [];
  for (const chunk of chunks) {
    const result = decoder.push(chunk);
    if (result._tag === "error") return { frames, error: result.reason };
    frames.push(...result.frames);
  }
  return { frames };
}

describe("frame decoder", () => {
  it("returns exactly the frames sent, however the stream is chunked", () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: limit }), { maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (bodies, cuts) => {
          const stream = Buffer.concat(bodies.map((body) => encodeFrame(body, limit)));
          const { frames, error } = feed(new FrameDecoder(limit), chunked(stream, cuts));
          expect(error).toBeUndefined();
          expect(frames.map((f) => Buffer.from(f).toString("hex"))).toEqual(
            bodies.map((b) => Buffer.from(b).toString("hex")),
          );
        },
      ),
    );
  });

  it("never throws on random bytes, and fails for good once the length is over the limit", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 20 }), (chunks) => {
        const decoder = new FrameDecoder(limit);
        const { error } = feed(
          decoder,
          chunks.map((c) => Buffer.from(c)),
        );
        if (error !== undefined) {
          expect(error).toMatch(/exceeds the limit of 1024 bytes/);
          expect(decoder.push(Buffer.from([0, 0, 0, 0]))._tag).toBe("error");
        }
        expect(decoder.pendingBytes).toBeLessThanOrEqual(limit + 4 + 64);
      }),
    );
  });

  it("holds a truncated frame without completing it", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: limit }), fc.nat(), (body, cut) => {
        const frame = encodeFrame(body, limit);
        const prefix = frame.subarray(0, cut % frame.length);
        const { frames, error } = feed(new FrameDecoder(limit), [prefix]);
        expect(error).toBeUndefined();
        expect(frames).toEqual([]);
      }),
    );
  });

  it("rejects a huge length at once, before its body arrives", () => {
    fc.assert(
      fc.property(fc.integer({ min: limit + 1, max: 0xffffffff }), (length) => {
        const header = Buffer.alloc(4);
        header.writeUInt32BE(length, 0);
        const result = new FrameDecoder(limit).push(header);
        expect(result._tag).toBe("error");
      }),
    );
  });

  it("checks the limit frame by frame: one raised after a frame applies to the frames behind it in the same chunk", () => {
    // A handshake's last frame and a large message right behind it, in one read.
    const small = Buffer.from("proof");
    const large = Buffer.alloc(4 * limit, 7);
    const chunk = Buffer.concat([encodeFrame(small, limit), encodeFrame(large, 8 * limit)]);
    const raised = new FrameDecoder(limit);
    raised.feed(chunk);
    const first = raised.next();
    expect(first?._tag === "frame" && first.body.toString()).toBe("proof");
    raised.setLimit(8 * limit);
    const second = raised.next();
    expect(second?._tag === "frame" && second.body.equals(large)).toBe(true);
    expect(raised.next()).toBeNull();
    // Without the raise, the same bytes break the stream at the large frame.
    expect(new FrameDecoder(limit).push(chunk)).toEqual({
      _tag: "error",
      reason: `frame length ${4 * limit} exceeds the limit of ${limit} bytes`,
    });
  });

  it("refuses to encode a body over the limit", () => {
    expect(() => encodeFrame(new Uint8Array(limit + 1), limit)).toThrow(/exceeds 1024/);
  });
});

describe("JSON codec", () => {
  it("round-trips every value of the Schema", () => {
    fc.assert(
      fc.property(fc.integer(), fc.string(), (n, text) => {
        const value = { _tag: "ping" as const, n, text };
        expect(codec.decode(codec.encode(value))).toEqual(Either.right(value));
      }),
    );
  });

  it("gives a reason, never a throw, for bytes that are not UTF-8 JSON of the right shape", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 100 }),
          fc.json().map((j) => Buffer.from(j, "utf8")),
        ),
        (body) => {
          const decoded = codec.decode(body);
          if (Either.isLeft(decoded)) expect(decoded.left).toMatch(/UTF-8|JSON|schema/);
        },
      ),
    );
    expect(codec.decode(Buffer.from('{"_tag":"ping","n":"1","text":"x"}'))).toSatisfy(Either.isLeft);
    expect(codec.decode(Buffer.from('{"_tag":"ping","n":1,"text":"x","extra":true}'))).toSatisfy(Either.isLeft);
    expect(codec.decode(Buffer.from([0xff, 0xfe]))).toEqual(Either.left("body is not valid UTF-8"));
  });

  it("encodes the replica's messages and records as themselves, and decodes their JSON back to equal values", () => {
    expect(encodesAsItself(kvMessageSchema.ast)).toBe(true);
    expect(encodesAsItself(kvRecordSchema.ast)).toBe(true);
    expect(encodesAsItself(Schema.NumberFromString.ast)).toBe(false);
    expect(encodesAsItself(Schema.Struct({ at: Schema.Date }).ast)).toBe(false);
    const roundTrips = <A, I>(schema: Schema.Schema<A, I>): void => {
      const c = jsonCodec(schema);
      const encodeSync = Schema.encodeSync(schema);
      fc.assert(
        fc.property(arbitraryOf(schema), (value) => {
          expect(JSON.stringify(c.encodeValue(value))).toBe(JSON.stringify(encodeSync(value)));
          expect(Either.getOrThrow(c.decode(c.encode(value)))).toEqual(JSON.parse(JSON.stringify(value)));
        }),
        { numRuns: 200 },
      );
    };
    roundTrips(kvMessageSchema);
    roundTrips(kvRecordSchema);
  });
});

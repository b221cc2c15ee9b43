/**
 * Length-prefixed frames on a byte stream, and the JSON-plus-Schema codec for their bodies.
 * A frame is a 4-byte big-endian body length followed by that many bytes of UTF-8 JSON.
 *
 * The decoder is the network boundary: it trusts nothing. A length above `frameBytesMax`, a
 * body that is not UTF-8 JSON, or JSON that the Schema rejects yields an error with a reason
 * (the caller closes that connection and logs it); it never throws and never buffers more
 * than one frame's worth of bytes.
 */
import { Either, ParseResult, Schema, SchemaAST } from "effect";

/**
 * Default largest frame body, in bytes (16 MiB): room for a batch of several maximal (1 MiB)
 * client values in one message. Memory per connection is bounded by it.
 */
export const frameBytesMaxDefault = 16 * 1024 * 1024;
/** Size of the length prefix, in bytes. */
export const frameHeaderBytes = 4;

/** Encode one frame body (already serialized) with its length prefix. */
export function encodeFrame(body: Uint8Array, frameBytesMax: number = frameBytesMaxDefault): Buffer {
  if (body.length > frameBytesMax) throw new Error(`frame body of ${body.length} bytes exceeds ${frameBytesMax}`);
  const frame = Buffer.allocUnsafe(frameHeaderBytes + body.length);
  frame.writeUInt32BE(body.length, 0);
  frame.set(body, frameHeaderBytes);
  return frame;
}

/** The outcome of feeding bytes to a {@link FrameDecoder}. */
export type FrameChunkResult =
  { readonly _tag: "frames"; readonly frames: readonly Buffer[] } | { readonly _tag: "error"; readonly reason: string };

/**
 * Splits a byte stream into frame bodies. Once it reports an error it stays failed: the
 * stream is out of sync and the connection must be closed.
 */
export class FrameDecoder {
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private failed: string | undefined;

  constructor(private frameBytesMax: number = frameBytesMaxDefault) {}

  /** Change the largest accepted frame (a connection allows bigger frames once authenticated). */
  setLimit(frameBytesMax: number): void {
    this.frameBytesMax = frameBytesMax;
  }

  /** Bytes held that do not yet form a whole frame. */
  get pendingBytes(): number {
    return this.buffered;
  }

  /** Feed one chunk; returns every frame body it completed, or the reason the stream is bad. */
  push(chunk: Uint8Array): FrameChunkResult {
    this.feed(chunk);
    const frames: Buffer[] = [];
    for (let next = this.next(); next !== null; next = this.next()) {
      if (next._tag === "error") return next;
      frames.push(next.body);
    }
    return { _tag: "frames", frames };
  }

  /** Hold one chunk; {@link next} takes the frames it completes. */
  feed(chunk: Uint8Array): void {
    if (this.failed !== undefined) return;
    this.chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.buffered += chunk.byteLength;
  }

  /**
   * The next whole frame body held, null when none is whole yet, or the reason the stream is bad.
   * The limit is checked frame by frame, as each is taken: a caller that raises it on one frame
   * (the end of a handshake) has it apply to the frames that came behind in the same chunk.
   */
  next():
    { readonly _tag: "frame"; readonly body: Buffer } | { readonly _tag: "error"; readonly reason: string } | null {
    if (this.failed !== undefined) return { _tag: "error", reason: this.failed };
    if (this.buffered < frameHeaderBytes) return null;
    const length = this.peek(frameHeaderBytes).readUInt32BE(0);
    if (length > this.frameBytesMax) {
      this.failed = `frame length ${length} exceeds the limit of ${this.frameBytesMax} bytes`;
      this.chunks.length = 0;
      this.buffered = 0;
      return { _tag: "error", reason: this.failed };
    }
    if (this.buffered < frameHeaderBytes + length) return null;
    return { _tag: "frame", body: this.take(frameHeaderBytes + length).subarray(frameHeaderBytes) };
  }

  private peek(bytes: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= bytes) return first.subarray(0, bytes);
    const merged = Buffer.concat(this.chunks);
    this.chunks.length = 0;
    this.chunks.push(merged);
    return merged.subarray(0, bytes);
  }

  /**
   * The next `bytes` bytes as a buffer of their own (a frame must not keep a socket's chunk, or the
   * next frame's bytes, alive), copied once: a frame spread over many chunks (a 1 MiB Accept comes
   * in sixteen or more) is joined straight into its own buffer, not joined with what follows and
   * then copied out again.
   */
  private take(bytes: number): Buffer {
    const taken =
      this.chunks.length === 1 ? Buffer.from(this.chunks[0]!.subarray(0, bytes)) : Buffer.concat(this.chunks, bytes);
    let skip = bytes;
    const rest: Buffer[] = [];
    for (const chunk of this.chunks) {
      if (skip >= chunk.length) skip -= chunk.length;
      else {
        rest.push(skip > 0 ? chunk.subarray(skip) : chunk);
        skip = 0;
      }
    }
    this.chunks.length = 0;
    this.chunks.push(...rest);
    this.buffered -= bytes;
    return taken;
  }
}

/**
 * Values of `A` as JSON through a Schema's encoded form, and back with checking. The `Value`
 * variants work on parsed JSON (for bodies nested in an envelope); none of them throws on
 * bad input.
 */
export interface JsonCodec<A> {
  encode(value: A): Buffer;
  encodeValue(value: A): unknown;
  /** Decode a frame body; `Left` carries a readable reason. */
  decode(body: Uint8Array): Either.Either<A, string>;
  decodeValue(json: unknown): Either.Either<A, string>;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Parse UTF-8 JSON without throwing; `Left` carries the reason. */
export function parseJson(body: Uint8Array): Either.Either<unknown, string> {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    return Either.left("body is not valid UTF-8");
  }
  try {
    return Either.right(JSON.parse(text) as unknown);
  } catch (error) {
    return Either.left(`body is not JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** Longest schema error kept in a reason, in characters. */
const reasonLengthMax = 600;

/**
 * True when encoding with the Schema of `ast` gives back the value itself: the AST holds only
 * structs, unions, tuples, literals, keywords and refinements (which check, never change), no
 * transformation and no declaration. Conservative: anything else counts as changing.
 */
export function encodesAsItself(ast: SchemaAST.AST, seen: Set<SchemaAST.AST> = new Set()): boolean {
  if (seen.has(ast)) return true;
  seen.add(ast);
  switch (ast._tag) {
    case "TypeLiteral":
      return (
        ast.propertySignatures.every((p) => encodesAsItself(p.type, seen)) &&
        ast.indexSignatures.every((i) => encodesAsItself(i.type, seen))
      );
    case "Union":
      return ast.types.every((t) => encodesAsItself(t, seen));
    case "Refinement":
      return encodesAsItself(ast.from, seen);
    case "TupleType":
      return (
        ast.elements.every((e) => encodesAsItself(e.type, seen)) && ast.rest.every((r) => encodesAsItself(r.type, seen))
      );
    case "Suspend":
      return encodesAsItself(ast.f(), seen);
    case "Literal":
    case "StringKeyword":
    case "NumberKeyword":
    case "BooleanKeyword":
    case "UndefinedKeyword":
    case "UnknownKeyword":
      return true;
    default:
      return false;
  }
}

/**
 * A {@link JsonCodec} for `schema`. Excess properties are rejected on decode. When the Schema
 * encodes every value as itself ({@link encodesAsItself}), encoding skips the Schema: the values
 * are the core's own, built by typed code, and every receiver (a peer, recovery from disk) decodes
 * them with the Schema at its boundary. Encoding through the Schema cost about a tenth of a
 * leader's CPU under load.
 */
export function jsonCodec<A, E>(schema: Schema.Schema<A, E>): JsonCodec<A> {
  const encodeSync: (value: A) => unknown = encodesAsItself(schema.ast) ? (value) => value : Schema.encodeSync(schema);
  const decodeEither = Schema.decodeUnknownEither(schema);
  const decodeValue = (json: unknown): Either.Either<A, string> => {
    const decoded = decodeEither(json, { onExcessProperty: "error" });
    if (Either.isRight(decoded)) return Either.right(decoded.right);
    const reason = ParseResult.TreeFormatter.formatErrorSync(decoded.left);
    return Either.left(
      `does not match the schema: ${reason.length > reasonLengthMax ? `${reason.slice(0, reasonLengthMax)}...` : reason}`,
    );
  };
  return {
    encode: (value) => Buffer.from(JSON.stringify(encodeSync(value)), "utf8"),
    encodeValue: (value) => encodeSync(value),
    decode(body) {
      const parsed = parseJson(body);
      return Either.isLeft(parsed) ? Either.left(parsed.left) : decodeValue(parsed.right);
    },
    decodeValue,
  };
}

/**
 * A JSON history file (docs/history-format.md) read a chunk at a time: a long nemesis run with
 * bursts writes its history an operation at a time (refinement-tests/nemesis/workload.ts,
 * `writeHistoryFile`) because the whole document can pass the longest string the engine holds
 * (about 512 Mi code units), and so cannot be read back as one string either. Here the document's
 * top-level `operations` array is parsed an element at a time, every other member whole: the same
 * value `JSON.parse` gives for the whole text, with no string longer than one operation.
 */
import fs from "node:fs";

/** Files up to this many bytes are read whole (`JSON.parse` of the text); longer ones streamed. */
export const historyWholeBytesMax = 256 * 1024 * 1024;

/** Options of {@link readJsonStreamed}. */
export interface StreamedReadOptions {
  /** Bytes read at once. Default 4 MiB. */
  readonly chunkBytes?: number;
  /** Each operation as parsed, before it is kept (default: kept as it is). */
  readonly operation?: (op: unknown) => unknown;
}

const [space, tab, newline, ret] = [0x20, 0x09, 0x0a, 0x0d];
const [quote, backslash, comma, colon] = [0x22, 0x5c, 0x2c, 0x3a];
const [openBrace, closeBrace, openBracket, closeBracket] = [0x7b, 0x7d, 0x5b, 0x5d];

/** A file's bytes, a chunk at a time, with a cursor. */
class Bytes {
  private readonly buf: Buffer;
  private len = 0;
  private pos = 0;
  private at = 0;
  constructor(
    private readonly fd: number,
    chunkBytes: number,
  ) {
    this.buf = Buffer.allocUnsafe(chunkBytes);
  }

  /** Whether a byte is at the cursor (reading the next chunk if need be). */
  private fill(): boolean {
    if (this.pos < this.len) return true;
    this.len = fs.readSync(this.fd, this.buf, 0, this.buf.length, this.at);
    this.at += this.len;
    this.pos = 0;
    return this.len > 0;
  }

  /** The byte at the cursor after any whitespace, or -1 at the end. */
  peek(): number {
    for (;;) {
      if (!this.fill()) return -1;
      const c = this.buf[this.pos]!;
      if (c !== space && c !== tab && c !== newline && c !== ret) return c;
      this.pos++;
    }
  }

  /** Take `expected` (after any whitespace), or throw. */
  take(expected: number): void {
    const c = this.peek();
    if (c !== expected)
      throw new Error(
        `expected ${JSON.stringify(String.fromCharCode(expected))} at byte ${this.offset()}, found ${c < 0 ? "the end" : JSON.stringify(String.fromCharCode(c))}`,
      );
    this.pos++;
  }

  /** Byte offset of the cursor in the file. */
  offset(): number {
    return this.at - this.len + this.pos;
  }

  /** The text of one JSON value from the cursor (after any whitespace), not parsed. */
  value(): string {
    if (this.peek() < 0) throw new Error(`a value expected at byte ${this.offset()}, found the end`);
    const pieces: Buffer[] = [];
    let depth = 0;
    let inString = false;
    let escaped = false;
    let started = false;
    for (;;) {
      if (!this.fill()) {
        if (depth === 0 && !inString) break;
        throw new Error(`the file ends inside a value (byte ${this.offset()})`);
      }
      const buf = this.buf;
      const len = this.len;
      let i = this.pos;
      let done = false;
      for (; i < len; i++) {
        const c = buf[i]!;
        if (inString) {
          if (escaped) escaped = false;
          else if (c === backslash) escaped = true;
          else if (c === quote) {
            inString = false;
            if (depth === 0) {
              i++;
              done = true;
              break;
            }
          }
          continue;
        }
        if (!started) {
          started = true;
          if (c === quote) inString = true;
          else if (c === openBrace || c === openBracket) depth = 1;
          continue;
        }
        if (c === quote) inString = true;
        else if (c === openBrace || c === openBracket) depth++;
        else if (c === closeBrace || c === closeBracket) {
          if (depth === 0) {
            done = true;
            break;
          }
          if (--depth === 0) {
            i++;
            done = true;
            break;
          }
        } else if (depth === 0 && (c === comma || c === space || c === tab || c === newline || c === ret)) {
          done = true;
          break;
        }
      }
      pieces.push(Buffer.from(buf.subarray(this.pos, i)));
      this.pos = i;
      if (done) break;
    }
    return Buffer.concat(pieces).toString("utf8");
  }
}

/**
 * The JSON object in `file`, its top-level `operations` array read an element at a time (each
 * handed to `options.operation`): the value `JSON.parse` gives for the whole text. Throws with the
 * byte where the text stops being JSON.
 */
export function readJsonStreamed(file: string, options: StreamedReadOptions = {}): unknown {
  const fd = fs.openSync(file, "r");
  try {
    const bytes = new Bytes(fd, options.chunkBytes ?? 4 * 1024 * 1024);
    const document: Record<string, unknown> = {};
    bytes.take(openBrace);
    if (bytes.peek() === closeBrace) bytes.take(closeBrace);
    else
      for (;;) {
        const key = JSON.parse(bytes.value()) as unknown;
        if (typeof key !== "string") throw new Error(`a member name expected at byte ${bytes.offset()}`);
        bytes.take(colon);
        if (key === "operations" && bytes.peek() === openBracket) {
          bytes.take(openBracket);
          const operations: unknown[] = [];
          if (bytes.peek() === closeBracket) bytes.take(closeBracket);
          else
            for (;;) {
              const op = JSON.parse(bytes.value()) as unknown;
              operations.push(options.operation === undefined ? op : options.operation(op));
              if (bytes.peek() === closeBracket) {
                bytes.take(closeBracket);
                break;
              }
              bytes.take(comma);
            }
          document[key] = operations;
        } else document[key] = JSON.parse(bytes.value()) as unknown;
        if (bytes.peek() === closeBrace) {
          bytes.take(closeBrace);
          break;
        }
        bytes.take(comma);
      }
    if (bytes.peek() >= 0) throw new Error(`unexpected text after the document at byte ${bytes.offset()}`);
    return document;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The JSON document of a history file: parsed whole up to `wholeBytesMax` bytes, streamed
 * beyond (`readJsonStreamed`), where the whole text could not be one string.
 */
export function readHistoryJson(
  file: string,
  wholeBytesMax = historyWholeBytesMax,
  options: StreamedReadOptions = {},
): unknown {
  if (fs.statSync(file).size > wholeBytesMax) return readJsonStreamed(file, options);
  const document = JSON.parse(fs.readFileSync(file, "utf8")) as unknown;
  const ops = (document as { operations?: unknown } | null)?.operations;
  if (options.operation !== undefined && Array.isArray(ops))
    for (let i = 0; i < ops.length; i++) ops[i] = options.operation(ops[i]);
  return document;
}

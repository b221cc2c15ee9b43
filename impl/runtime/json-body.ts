/**
 * A large JSON body parsed without a string of the whole body: its one long string (a PUT's 1 MiB
 * value) is made from the body's bytes directly, and only the rest of the body, a few bytes with
 * a placeholder where that string was, goes through the UTF-8 decoder and `JSON.parse`. Before,
 * a 1 MiB PUT made the body's text (1 MiB) and then the value parsed out of it (1 MiB more), the
 * first garbage at once. It must accept and refuse exactly what `JSON.parse` of the decoded text
 * does: where it cannot tell (an escape anywhere in the body, a control character or a byte that
 * is not UTF-8 in the long string, the placeholder not where a value goes), it declines and the
 * caller parses the whole text as before.
 */
import { isUtf8 } from "node:buffer";

/** A body shorter than this is parsed whole: the saving is a copy of the body, and it is small. */
const longStringBytesMin = 64 * 1024;

/**
 * What stands for the long string in the rest: a JSON string with an escape, which no string of a
 * body without backslashes can equal.
 */
const placeholderJson = '"\\u0000"';
const placeholder = "\u0000";

const quote = 0x22;
const backslash = 0x5c;
/** UTF-8's byte order mark, which the caller's decoder drops and JSON.parse would refuse. */
const byteOrderMark = Buffer.from([0xef, 0xbb, 0xbf]);

/** A body split into its longest string and the JSON text of the rest (the string replaced by a placeholder). */
export interface SplitBody {
  /** The JSON text of the body with the long string's literal replaced by the placeholder. */
  readonly rest: string;
  /** The long string's value. */
  readonly value: string;
  /** The long string's bytes, well-formed UTF-8 (a view of the body's buffer). */
  readonly utf8: Buffer;
}

/**
 * Split `bytes` (a JSON body) at its longest string, or null when the body is short, has an
 * escape anywhere (so every `"` opens or closes a string), has an odd number of quotes, or its
 * longest string holds a control character or bytes that are not UTF-8 (JSON.parse's refusal,
 * with its message, then comes from parsing the whole text).
 */
export function splitLongString(bytes: Buffer): SplitBody | null {
  if (bytes.length < longStringBytesMin || bytes.includes(backslash)) return null;
  if (bytes.subarray(0, byteOrderMark.length).equals(byteOrderMark)) return null;
  let open = -1;
  let close = -1;
  for (let at = bytes.indexOf(quote); at >= 0;) {
    const end = bytes.indexOf(quote, at + 1);
    if (end < 0) return null;
    if (end - at > close - open) [open, close] = [at, end];
    at = bytes.indexOf(quote, end + 1);
  }
  if (close - open - 1 < longStringBytesMin) return null;
  const inside = bytes.subarray(open + 1, close);
  const [before, after] = [bytes.subarray(0, open), bytes.subarray(close + 1)];
  if (hasControlByte(inside) || !isUtf8(inside) || !isUtf8(before) || !isUtf8(after)) return null;
  return {
    rest: `${before.toString("utf8")}${placeholderJson}${after.toString("utf8")}`,
    value: inside.toString("utf8"),
    utf8: inside,
  };
}

/**
 * True when `bytes` holds a byte below 0x20, which a JSON string may not hold raw. Four bytes at a
 * time where they are aligned: `(x - 0x20202020) & ~x & 0x80808080` is nonzero exactly when some
 * byte of the word `x` is below 0x20 (a borrow can only start at such a byte). A loop over every
 * byte took 1 ms of the leader's main thread per 1 MiB body (3 ms under a loaded profile), the
 * words 0.25.
 */
export function hasControlByte(bytes: Uint8Array): boolean {
  if (bytes.length < 16) return bytes.some((byte) => byte < 0x20);
  const start = bytes.byteOffset;
  const wordsFrom = (start + 3) & ~3;
  const wordsTo = (start + bytes.length) & ~3;
  for (let i = 0; i < wordsFrom - start; i++) if (bytes[i]! < 0x20) return true;
  const words = new Uint32Array(bytes.buffer, wordsFrom, (wordsTo - wordsFrom) >>> 2);
  for (let i = 0; i < words.length; i++) {
    const x = words[i]!;
    if (((x - 0x20202020) & ~x & 0x80808080) !== 0) return true;
  }
  for (let i = wordsTo - start; i < bytes.length; i++) if (bytes[i]! < 0x20) return true;
  return false;
}

/**
 * `parsed` (the rest, parsed) with the long string put back where the placeholder is, or
 * undefined when the placeholder is not exactly once in a value's place (a key, say): the caller
 * then parses the whole text.
 */
export function withLongString(parsed: unknown, value: string): unknown {
  let found = 0;
  const fill = (node: unknown): unknown => {
    if (node === placeholder) {
      found += 1;
      return value;
    }
    if (Array.isArray(node)) return node.map(fill);
    if (typeof node !== "object" || node === null) return node;
    const object = node as Record<string, unknown>;
    for (const key of Object.keys(object)) {
      if (key === placeholder) found += 2;
      const filled = fill(object[key]);
      // Defined, not assigned: JSON.parse makes "__proto__" an own property, which assigning would not touch.
      if (filled !== object[key])
        Object.defineProperty(object, key, { value: filled, writable: true, enumerable: true, configurable: true });
    }
    return object;
  };
  const filled = fill(parsed);
  return found === 1 ? filled : undefined;
}

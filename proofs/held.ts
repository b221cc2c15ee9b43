/**
 * Values held by their digest once checked: what a checker keeps of a value past the steps that
 * need it whole. A long string (`heldCharsMin` code units or more) is replaced by its SHA-256 (of
 * its UTF-16 code units, one to one) and its length, so that a run that writes gigabytes of
 * distinct values (bursts of 1 MiB values, lists appended to for minutes) is not held whole for
 * the whole run. Two values are equal iff their held forms are, but for a SHA-256 collision or a
 * client value that spells out a digest itself (a NUL, `sha256:`, 64 hex digits, a length): every
 * check that compares held forms is as strict as the comparison of the values it replaces.
 */
import { createHash } from "node:crypto";

/** Strings at least this long are held as their digest. */
export const heldCharsMin = 1024;

/** The held form of one long string. */
function digestOf(text: string): string {
  return `\u0000sha256:${createHash("sha256").update(text, "utf16le").digest("hex")}:${text.length}`;
}

/** True when `x` is, or holds at any depth (arrays, plain objects), a string of `heldCharsMin` or more. */
function holdsLong(x: unknown): boolean {
  if (typeof x === "string") return x.length >= heldCharsMin;
  if (x === null || typeof x !== "object") return false;
  if (Array.isArray(x)) return x.some(holdsLong);
  if (Object.getPrototypeOf(x) !== Object.prototype) return false;
  for (const v of Object.values(x)) if (holdsLong(v)) return true;
  return false;
}

/**
 * Plain data with every string of {@link heldCharsMin} code units or more replaced by its digest:
 * `value` itself when it holds none (no copy), else a copy (arrays and plain objects; anything else
 * is kept as it is). Idempotent: a held form holds no long string.
 */
export function digestLarge<T>(value: T): T {
  if (!holdsLong(value)) return value;
  return copyDigested(value);
}

function copyDigested<T>(value: T): T {
  if (typeof value === "string") return (value.length < heldCharsMin ? value : digestOf(value)) as T;
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map(copyDigested) as T;
  if (Object.getPrototypeOf(value) !== Object.prototype) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = copyDigested(v);
  return out as T;
}

/**
 * A canonical key of plain data (built in a fixed field order, as the core builds values): its
 * JSON, with long strings held by their digest (`digestLarge`). Equal for a value and its held
 * form; the JSON itself when the value holds no long string (any such string makes the JSON at
 * least as long), so short values cost one `JSON.stringify` as before.
 */
export function heldKey(value: unknown): string {
  const json = JSON.stringify(value);
  return json === undefined || json.length < heldCharsMin ? json : JSON.stringify(digestLarge(value));
}

/**
 * `value`'s key (`heldKey`) and held form at once: `value` itself and its JSON when it holds no
 * long string (one `JSON.stringify`, no copy).
 */
export function heldWithKey<T>(value: T): { readonly key: string; readonly held: T } {
  const json = JSON.stringify(value);
  if (json === undefined || json.length < heldCharsMin) return { key: json, held: value };
  const held = digestLarge(value);
  return { key: JSON.stringify(held), held };
}

/**
 * Are `a` and `b` (either whole or held) the same value by `equal`? Compared as they are first (no
 * hashing when both are whole, or both held), then as held forms.
 */
export function sameHeld<T>(a: T, b: T, equal: (x: T, y: T) => boolean): boolean {
  return equal(a, b) || equal(digestLarge(a), digestLarge(b));
}

/** A text as the checker holds it: itself below {@link heldCharsMin}, else its digest. */
export function heldText(text: string): string {
  return text.length < heldCharsMin ? text : digestOf(text);
}

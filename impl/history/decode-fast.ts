/**
 * The common shapes of an operation's input and output, checked by hand: decoding every
 * operation through its Schema was a fifth of a fresh `check-history` process on a batch of
 * Jepsen histories. Each function here accepts a subset of what its Schema (history.ts,
 * spec/kv.ts) accepts and returns what the Schema would decode it to (a new object in the
 * Schema's field order for kv operations, so that every operation of a kind shares one object
 * shape, as the checker's hot paths need); on anything else it returns undefined, and the
 * caller decodes through the Schema, which also words the error. A test
 * (decode-fast.test.ts) holds each one to its Schema on generated values.
 */
import { keyLengthMax, valueLengthMax, type KvInput, type KvOutput } from "../../spec/kv.ts";
import type { RegisterInput, RegisterOutput } from "./history.ts";

/** A plain object (JSON's, or an object literal) and the number of its own keys; undefined otherwise. */
function fieldsOf(value: unknown): number | undefined {
  if (typeof value !== "object" || value === null || Object.getPrototypeOf(value) !== Object.prototype)
    return undefined;
  return Object.keys(value).length;
}

function registerValue(value: unknown): boolean {
  return value === null || typeof value === "string" || (typeof value === "number" && Number.isFinite(value));
}

/** A register input `{f, key?, ...}`, or undefined (decode it through the Schema). */
export function registerInputFast(raw: unknown): RegisterInput | undefined {
  const fields = fieldsOf(raw);
  if (fields === undefined) return undefined;
  const r = raw as Record<string, unknown>;
  let rest = fields;
  if ("key" in r) {
    const key = r.key;
    if (!(typeof key === "string" || (typeof key === "number" && Number.isFinite(key)))) return undefined;
    rest--;
  }
  switch (r.f) {
    case "read":
      return rest === 1 ? (r as RegisterInput) : undefined;
    case "write":
      return rest === 2 && registerValue(r.value) ? (r as RegisterInput) : undefined;
    case "cas":
      return rest === 3 && registerValue(r.from) && registerValue(r.to) ? (r as RegisterInput) : undefined;
    default:
      return undefined;
  }
}

/** A register output `{value}`, `{ok}` or `{}`, or undefined (decode it through the Schema). */
export function registerOutputFast(raw: unknown): RegisterOutput | undefined {
  const fields = fieldsOf(raw);
  if (fields === 0) return raw as RegisterOutput;
  if (fields !== 1) return undefined;
  const r = raw as Record<string, unknown>;
  if ("value" in r) return registerValue(r.value) ? r : undefined;
  return typeof r.ok === "boolean" ? r : undefined;
}

function isKey(value: unknown): value is string {
  return typeof value === "string" && value.length >= 1 && value.length <= keyLengthMax;
}

function isValue(value: unknown): value is string {
  return typeof value === "string" && value.length <= valueLengthMax;
}

/** A kv input, or undefined (decode it through the Schema). */
export function kvInputFast(raw: unknown): KvInput | undefined {
  const fields = fieldsOf(raw);
  if (fields === undefined) return undefined;
  const r = raw as Record<string, unknown>;
  const key = r.key;
  switch (r._tag) {
    case "get":
      return fields === 2 && isKey(key) ? { _tag: "get", key } : undefined;
    case "put":
      return fields === 3 && isKey(key) && isValue(r.value) ? { _tag: "put", key, value: r.value } : undefined;
    case "delete":
      return fields === 2 && isKey(key) ? { _tag: "delete", key } : undefined;
    case "cas": {
      const expected = r.expected;
      return fields === 4 && isKey(key) && (expected === null || isValue(expected)) && isValue(r.value)
        ? { _tag: "cas", key, expected, value: r.value }
        : undefined;
    }
    case "append":
      return fields === 3 && isKey(key) && isValue(r.value) ? { _tag: "append", key, value: r.value } : undefined;
    case "noop":
      return fields === 1 ? { _tag: "noop" } : undefined;
    default:
      return undefined;
  }
}

function count(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

/** A kv output, or undefined (decode it through the Schema). */
export function kvOutputFast(raw: unknown): KvOutput | undefined {
  const fields = fieldsOf(raw);
  if (fields === undefined) return undefined;
  const r = raw as Record<string, unknown>;
  switch (r._tag) {
    case "value": {
      const value = r.value;
      return fields === 2 && (value === null || typeof value === "string") ? { _tag: "value", value } : undefined;
    }
    case "ok":
      return fields === 1 ? { _tag: "ok" } : undefined;
    case "cas": {
      const current = r.current;
      return fields === 3 && typeof r.swapped === "boolean" && (current === null || typeof current === "string")
        ? { _tag: "cas", swapped: r.swapped, current }
        : undefined;
    }
    case "too-large":
      return fields === 3 && count(r.length) && count(r.limit)
        ? { _tag: "too-large", length: r.length, limit: r.limit }
        : undefined;
    default:
      return undefined;
  }
}

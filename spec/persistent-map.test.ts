/**
 * The persistent map against a plain Map (the model): same contents after any sequence of
 * sets and removes, older versions unchanged, and one canonical shape per content.
 */
import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import {
  emptyPersistentMap,
  pmGet,
  pmHas,
  pmRemove,
  pmSet,
  pmSortedEntries,
  stringHash,
  type PersistentMap,
} from "./persistent-map.ts";

const op = fc.oneof(
  fc.record({ set: fc.constant(true), key: fc.string({ maxLength: 3 }), value: fc.nat(5) }),
  fc.record({ set: fc.constant(false), key: fc.string({ maxLength: 3 }) }),
);

function sorted(m: Map<string, number>): [string, number][] {
  return [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

describe("persistent map", () => {
  test.prop([fc.array(op, { maxLength: 300 })])("agrees with Map after any sets and removes", (ops) => {
    let map: PersistentMap<number> = emptyPersistentMap();
    const model = new Map<string, number>();
    for (const o of ops) {
      if ("value" in o) {
        map = pmSet(map, o.key, o.value);
        model.set(o.key, o.value);
      } else {
        map = pmRemove(map, o.key);
        model.delete(o.key);
      }
      expect(map.size).toBe(model.size);
    }
    expect(pmSortedEntries(map)).toEqual(sorted(model));
    for (const o of ops) {
      expect(pmGet(map, o.key)).toBe(model.get(o.key));
      expect(pmHas(map, o.key)).toBe(model.has(o.key));
    }
  });

  test.prop([fc.array(op, { maxLength: 100 }), op])(
    "an update never changes the version it was applied to",
    (ops, last) => {
      let map: PersistentMap<number> = emptyPersistentMap();
      for (const o of ops) map = "value" in o ? pmSet(map, o.key, o.value) : pmRemove(map, o.key);
      const before = pmSortedEntries(map);
      const after = "value" in last ? pmSet(map, last.key, last.value) : pmRemove(map, last.key);
      expect(pmSortedEntries(map)).toEqual(before);
      if (after !== map) expect(pmSortedEntries(after)).not.toEqual(before);
    },
  );

  it("holds many keys, including colliding fragments, and removes them all", () => {
    let map: PersistentMap<number> = emptyPersistentMap();
    for (let i = 0; i < 5000; i++) map = pmSet(map, `k${i}`, i);
    expect(map.size).toBe(5000);
    for (let i = 0; i < 5000; i++) expect(pmGet(map, `k${i}`)).toBe(i);
    for (let i = 0; i < 5000; i++) map = pmRemove(map, `k${i}`);
    expect(map.size).toBe(0);
    expect(map.root).toBeUndefined();
  });

  it("returns the same map when nothing changes", () => {
    const map = pmSet(emptyPersistentMap<number>(), "a", 1);
    expect(pmSet(map, "a", 1)).toBe(map);
    expect(pmRemove(map, "b")).toBe(map);
  });
});

describe("keys whose whole 32-bit hashes collide", () => {
  // Find two keys with equal hashes (a birthday search over a few hundred thousand keys).
  const seen = new Map<number, string>();
  let pair: [string, string] | undefined;
  for (let i = 0; pair === undefined && i < 2_000_000; i++) {
    const key = `c${i}`;
    const h = stringHash(key);
    const other = seen.get(h);
    if (other !== undefined) pair = [other, key];
    else seen.set(h, key);
  }

  it("share a collision node and stay distinct", () => {
    expect(pair).toBeDefined();
    const [a, b] = pair!;
    expect(stringHash(a)).toBe(stringHash(b));
    let map = pmSet(pmSet(pmSet(emptyPersistentMap<number>(), a, 1), b, 2), "other", 3);
    expect([pmGet(map, a), pmGet(map, b), map.size]).toEqual([1, 2, 3]);
    map = pmSet(map, b, 20);
    expect([pmGet(map, a), pmGet(map, b), map.size]).toEqual([1, 20, 3]);
    map = pmRemove(map, a);
    expect([pmHas(map, a), pmGet(map, b), map.size]).toEqual([false, 20, 2]);
    map = pmRemove(pmRemove(map, b), "other");
    expect(map.root).toBeUndefined();
  });
});

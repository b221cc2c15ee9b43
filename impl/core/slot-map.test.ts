/**
 * The persistent slot map against a plain Map as its model: same contents after any sequence of
 * sets, ordered iteration, and old versions never change.
 */
import { fc, test } from "@fast-check/vitest";
import { describe, expect } from "vitest";
import { emptySlotMap, slotMapDropThrough, slotMapEntries, slotMapGet, slotMapSet, type SlotMap } from "./slot-map.ts";

const key = fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 200_000 }), fc.constant(2 ** 40));

describe("SlotMap", () => {
  test.prop([fc.array(fc.tuple(key, fc.integer()), { maxLength: 200 })])(
    "behaves like a Map and keeps old versions intact",
    (ops) => {
      let map: SlotMap<number> = emptySlotMap();
      const model = new Map<number, number>();
      const versions: [SlotMap<number>, Map<number, number>][] = [];
      for (const [k, v] of ops) {
        map = slotMapSet(map, k, v);
        model.set(k, v);
        versions.push([map, new Map(model)]);
      }
      for (const [m, snapshot] of versions) {
        const sorted = [...snapshot.entries()].sort((a, b) => a[0] - b[0]);
        expect(slotMapEntries(m)).toEqual(sorted);
        expect(m.size).toBe(snapshot.size);
        expect(m.last).toBe(sorted.length === 0 ? 0 : sorted[sorted.length - 1]![0]);
        for (const [k, v] of snapshot) expect(slotMapGet(m, k)).toBe(v);
      }
    },
  );

  test.prop([fc.array(key, { maxLength: 100 }), key, key])("iterates a range in key order", (keys, a, b) => {
    const [from, to] = a <= b ? [a, b] : [b, a];
    let map: SlotMap<number> = emptySlotMap();
    for (const k of keys) map = slotMapSet(map, k, k);
    const expected = [...new Set(keys)].filter((k) => k >= from && k <= to).sort((x, y) => x - y);
    expect(slotMapEntries(map, from, to).map(([k]) => k)).toEqual(expected);
  });

  test.prop([fc.array(key, { maxLength: 100 }), key])(
    "drops every key up to a slot (truncation) and nothing else, leaving the old version intact",
    (keys, through) => {
      let map: SlotMap<number> = emptySlotMap();
      for (const k of keys) map = slotMapSet(map, k, k);
      const before = slotMapEntries(map);
      const dropped = slotMapDropThrough(map, through);
      const expected = before.filter(([k]) => k > through);
      expect(slotMapEntries(dropped)).toEqual(expected);
      expect(dropped.size).toBe(expected.length);
      expect(slotMapEntries(map)).toEqual(before);
      // The truncated map still takes new keys above and below the old ones.
      expect(slotMapGet(slotMapSet(dropped, through + 1, -1), through + 1)).toBe(-1);
    },
  );
});

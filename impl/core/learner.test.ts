/**
 * `tailStart` measures only the values above the slot its caller truncates through anyway (the
 * previous snapshot's): with that floor it must truncate exactly as the walk over the whole log
 * did, and `valueBytes` must be `plainBytes`.
 */
import { fc, test } from "@fast-check/vitest";
import { describe, expect } from "vitest";
import { valueBytes } from "./at-rest.ts";
import { tailStart } from "./learner.ts";
import { noopValue, plainBytes, type Value } from "./messages.ts";
import { slotMapEntries, slotMapOf, type SlotMap } from "./slot-map.ts";

/** The walk over the whole log at and below `slot`, as it was before the floor. */
function tailStartWhole(log: SlotMap<Value<string>>, slot: number, tailBytes: number): number {
  const kept = slotMapEntries(log, 0, slot);
  let bytes = 0;
  for (let i = kept.length - 1; i >= 0; i--) {
    bytes += plainBytes(kept[i]![1]);
    if (bytes > tailBytes && i < kept.length - 1) return kept[i]![0];
  }
  return 0;
}

const value = fc.oneof(
  fc.constant(noopValue as Value<string>),
  fc
    .array(fc.string({ maxLength: 40 }), { minLength: 1, maxLength: 4 })
    .map((inputs): Value<string> => ({ _tag: "batch", commands: inputs.map((input) => ({ input })) })),
);
const log = fc
  .uniqueArray(fc.tuple(fc.integer({ min: 1, max: 24 }), value), { selector: ([slot]) => slot, maxLength: 24 })
  .map((entries) => slotMapOf(entries));

describe("tailStart", () => {
  test.prop([log, fc.integer({ min: 0, max: 26 }), fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 26 })], {
    numRuns: 1000,
  })(
    "truncates through the same slot as the walk over the whole log, once the floor is applied",
    (entries, slot, tailBytes, floor) => {
      const at = Math.max(floor, tailStart(entries, slot, tailBytes, floor));
      expect(at).toBe(Math.max(floor, tailStartWhole(entries, slot, tailBytes)));
      expect(tailStart(entries, slot, tailBytes)).toBe(tailStartWhole(entries, slot, tailBytes));
    },
  );

  test.prop([value])("valueBytes is plainBytes, measured once", (v) => {
    expect(valueBytes(v)).toBe(plainBytes(v));
    expect(valueBytes(v)).toBe(plainBytes(v));
  });
});

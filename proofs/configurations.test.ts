/**
 * The implementation's configurations agree with the spec's (a differential test): the same
 * changes, applied in the same order, make the same voters and learners, and every slot gets the
 * same configuration. And the spec machine itself: a change governs alpha slots after it is
 * chosen, and config(s) is undetermined until slots up to s - alpha are applied.
 */
import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { configurationAt, configurations, type Change, type ChosenInput } from "../spec/configuration.ts";
import { applyChange, initialConfiguration, type ConfigChange } from "../impl/core/testing/index.ts";

const replica = fc.integer({ min: 1, max: 6 });
const change: fc.Arbitrary<Change & ConfigChange> = fc.oneof(
  fc.record({ op: fc.constant("add" as const), replica }),
  fc.record({ op: fc.constant("promote" as const), replica }),
  fc.record({ op: fc.constant("remove" as const), replica }),
  fc.record({ op: fc.constant("replace" as const), remove: replica, add: replica }),
);

describe("configurations: implementation against spec", () => {
  test.prop([fc.array(change, { maxLength: 40 })])("the same changes make the same configurations", (changes) => {
    let spec = {
      voters: [1, 2, 3] as readonly number[],
      learners: [] as readonly number[],
      retired: [] as readonly number[],
    };
    let impl = initialConfiguration([1, 2, 3]);
    for (const ch of changes) {
      const fromImpl = applyChange(impl, ch);
      const fromSpec = applyChangeSpec(spec, ch);
      expect(typeof fromImpl === "string").toBe(fromSpec === null);
      if (typeof fromImpl === "string" || fromSpec === null) continue;
      expect({ voters: fromImpl.voters, learners: fromImpl.learners, retired: fromImpl.retired }).toEqual(fromSpec);
      impl = { ...impl, ...fromImpl };
      spec = fromSpec;
    }
  });
});

function applyChangeSpec(
  c: { voters: readonly number[]; learners: readonly number[]; retired: readonly number[] },
  ch: Change,
) {
  const m = configurations(c.voters, 1);
  const after = m.transition(
    { _tag: "reconfig", change: ch },
    { configs: [{ chosenAt: 0, governsFrom: 1, ...c }], applied: 0 },
  );
  const made = after.configs[after.configs.length - 1]!;
  return after.configs.length === 1 ? null : { voters: made.voters, learners: made.learners, retired: made.retired };
}

describe("spec/configuration.ts", () => {
  it("a change chosen at slot i governs from i + alpha, and config(s) waits for slot s - alpha", () => {
    const m = configurations([1, 2, 3], 3);
    const inputs: ChosenInput[] = [
      { _tag: "other" },
      { _tag: "reconfig", change: { op: "remove", replica: 3 } },
      { _tag: "other" },
    ];
    let state = m.start;
    for (const input of inputs) state = m.transition(input, state);
    expect(state.applied).toBe(3);
    expect(configurationAt(state, 4, 3)?.voters).toEqual([1, 2, 3]);
    expect(configurationAt(state, 5, 3)?.voters).toEqual([1, 2]);
    expect(configurationAt(state, 6, 3)?.voters).toEqual([1, 2]);
    expect(configurationAt(state, 7, 3)).toBeUndefined();
  });

  it("a change that does not fit changes nothing", () => {
    const m = configurations([1], 2);
    const after = m.transition({ _tag: "reconfig", change: { op: "remove", replica: 1 } }, m.start);
    expect(after.configs).toEqual(m.start.configs);
    expect(m.output({ _tag: "reconfig", change: { op: "add", replica: 2 } }, m.start)?.governsFrom).toBe(3);
  });
});

/**
 * The leader's wait for every member before it raises the feature level (feature-gate.ts), and the
 * level a replica names in its incarnation (upgrade-window.ts): counted over every member of the
 * latest configurations, a member not heard from counting as level 1, and a malformed level
 * refused with a reason that names it.
 */
import { describe, expect, it } from "vitest";
import { countFeatures, membersOf, namedFeatureLevel, waitReason } from "./feature-gate.ts";
import { featureLevelOfIncarnation, featureLevelUnnamed, incarnationWith } from "./upgrade-window.ts";
import { digestFormatOfIncarnation } from "./upgrade-window.ts";

describe("the count of the feature levels members name", () => {
  const levels = (named: Record<number, number | null>, members = [1, 2, 3]) => ({
    self: 1,
    selfLevel: 3,
    members,
    named: (id: number) => named[id] ?? null,
  });

  it("is the least level any member named; a member not heard from counts as level 1", () => {
    expect(countFeatures(levels({ 2: 3, 3: 3 }), 3)).toEqual({ known: 3, short: [] });
    expect(countFeatures(levels({ 2: 3, 3: 2 }), 3)).toEqual({ known: 2, short: [{ id: 3, named: 2 }] });
    expect(countFeatures(levels({ 2: 3 }), 3)).toEqual({ known: featureLevelUnnamed, short: [{ id: 3, named: null }] });
    // A learner that joins counts too: the raise waits for it as for a voter.
    expect(countFeatures(levels({ 2: 3, 3: 3, 4: 2 }, [1, 2, 3, 4]), 3).known).toBe(2);
    // Below the target nobody is short, though the count stays the least level named.
    expect(countFeatures(levels({ 2: 3, 3: 2 }), 2)).toEqual({ known: 2, short: [] });
  });

  it("reads every configuration, in force and pending, voters and learners", () => {
    const inForce = { voters: [1, 2, 3], learners: [] };
    const pending = { voters: [1, 2, 3], learners: [5] };
    const removal = { voters: [1, 2], learners: [5] };
    expect(membersOf([inForce, pending, removal])).toEqual([1, 2, 3, 5]);
  });

  it("says why the raise waits, naming each member short of the level", () => {
    expect(
      waitReason(3, [
        { id: 2, named: 2 },
        { id: 4, named: null },
      ]),
    ).toBe(
      "the raise of the feature level to 3 waits until every member says it executes that level: replica 2 executes levels up to 2, replica 4 has not connected to this replica; upgrade them (a member that meets a level it does not know stops there)",
    );
  });
});

describe("the feature level in an incarnation", () => {
  it("is named before the digest format, which the versions before still read", () => {
    const incarnation = incarnationWith("c79d06c4aad5c7ad", "sha256", 3);
    expect(incarnation).toBe("c79d06c4aad5c7ad+level3+sha256");
    expect(featureLevelOfIncarnation(incarnation)).toBe(3);
    expect(digestFormatOfIncarnation(incarnation)).toBe("sha256");
    // A version before levels were named: level 1, which every version executes.
    expect(featureLevelOfIncarnation("c79d06c4aad5c7ad+sha256")).toBe(1);
    expect(featureLevelOfIncarnation("c79d06c4aad5c7ad")).toBe(1);
    // Parts that are not a level are left to later versions.
    expect(featureLevelOfIncarnation("c79d+zstd+level2+sha256")).toBe(2);
  });

  it("is refused, with the reason, when malformed", () => {
    for (const [incarnation, reason] of [
      ["ab+level0+sha256", /names feature level "0", not an integer from 1 to 999999/],
      ["ab+levelx+sha256", /names feature level "x"/],
      ["ab+level+sha256", /names feature level ""/],
      ["ab+level03+sha256", /names feature level "03"/],
      ["ab+level1000000+sha256", /names feature level "1000000"/],
      ["ab+level2+level3+sha256", /names a feature level more than once/],
    ] as const) {
      const level = featureLevelOfIncarnation(incarnation);
      expect(typeof level === "number" ? level : level.refusal, incarnation).toMatch(reason);
    }
  });

  it("stands for an earlier version only in fault-injection tests", () => {
    expect(namedFeatureLevel({}, 3)).toBe(3);
    expect(namedFeatureLevel({ PAXOS_LEASE_TEST_FEATURE_LEVEL: "2", PAXOS_LEASE_ALLOW_TEST_FAULTS: "1" }, 3)).toBe(2);
    expect(() => namedFeatureLevel({ PAXOS_LEASE_TEST_FEATURE_LEVEL: "2" }, 3)).toThrow(
      /PAXOS_LEASE_ALLOW_TEST_FAULTS=1/,
    );
    expect(() =>
      namedFeatureLevel({ PAXOS_LEASE_TEST_FEATURE_LEVEL: "4", PAXOS_LEASE_ALLOW_TEST_FAULTS: "1" }, 3),
    ).toThrow(/not a feature level from 1 to 3: "4"/);
  });
});

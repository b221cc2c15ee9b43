/**
 * Configurations (configuration.ts): every change applies to the latest configuration or is
 * refused for a stated reason, and each slot has exactly one configuration. Majorities of two
 * consecutive configurations intersect when a change adds, promotes or removes one replica, but
 * not across a `replace` ({1,2,3} to {1,2,4}: {2,3} and {1,4}). Raft's single-server changes need
 * that intersection; the alpha window does not, because no slot is ever decided with quorums of
 * two configurations: phase 1 and phase 2 at slot s both count the configuration of s.
 */
import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import {
  applyChange,
  configurationFor,
  initialConfiguration,
  pruneConfigurations,
  type ConfigChange,
  type Configuration,
} from "./configuration.ts";
import { quorumSize } from "./leader.ts";

const none = { retired: [], addresses: [] };
const base: Configuration = { epoch: 0, governsFrom: 1, voters: [1, 2, 3], learners: [4], ...none };

describe("applyChange", () => {
  it.each<[ConfigChange, string]>([
    [{ op: "add", replica: 5 }, "voters=1,2,3 learners=4,5"],
    [{ op: "promote", replica: 4 }, "voters=1,2,3,4 learners="],
    [{ op: "remove", replica: 2 }, "voters=1,3 learners=4"],
    [{ op: "remove", replica: 4 }, "voters=1,2,3 learners="],
    [{ op: "replace", remove: 3, add: 4 }, "voters=1,2,4 learners="],
  ])("applies %j", (change, expected) => {
    const r = applyChange(base, change);
    if (typeof r === "string") throw new Error(r);
    expect(`voters=${r.voters.join(",")} learners=${r.learners.join(",")}`).toBe(expected);
  });

  it.each<[ConfigChange, string]>([
    [{ op: "add", replica: 3 }, "replica 3 is already a member"],
    [{ op: "add", replica: 4 }, "replica 4 is already a member"],
    [{ op: "promote", replica: 3 }, "replica 3 is not a learner"],
    [{ op: "remove", replica: 9 }, "replica 9 is not a member"],
    [{ op: "replace", remove: 4, add: 5 }, "replica 4 is not a voter"],
    [{ op: "replace", remove: 3, add: 5 }, "replica 5 is not a learner (add it first, let it catch up)"],
  ])("refuses %j", (change, reason) => {
    expect(applyChange(base, change)).toBe(reason);
  });

  it("a replace may leave majorities of the two configurations disjoint (harmless: no slot uses both)", () => {
    const r = applyChange({ voters: [1, 2, 3], learners: [4], ...none }, { op: "replace", remove: 3, add: 4 });
    if (typeof r === "string") throw new Error(r);
    expect(r.voters).toEqual([1, 2, 4]);
    expect([2, 3].some((v) => [1, 4].includes(v))).toBe(false);
  });

  it("retires a removed or replaced replica for good, and drops its address", () => {
    const added = applyChange(base, { op: "add", replica: 5, address: { peer: "h5:7005", http: "h5:8005" } });
    if (typeof added === "string") throw new Error(added);
    expect(added.addresses).toEqual([{ replica: 5, peer: "h5:7005", http: "h5:8005" }]);
    const removed = applyChange(added, { op: "remove", replica: 5 });
    if (typeof removed === "string") throw new Error(removed);
    expect(removed).toMatchObject({ learners: [4], retired: [5], addresses: [] });
    expect(applyChange(removed, { op: "add", replica: 5 })).toMatch(/replica 5 was removed .* never added again/);
    const replaced = applyChange(base, { op: "replace", remove: 2, add: 4 });
    if (typeof replaced === "string") throw new Error(replaced);
    expect(replaced).toMatchObject({ voters: [1, 3, 4], learners: [], retired: [2] });
    expect(applyChange(replaced, { op: "add", replica: 2 })).toMatch(/never added again/);
  });

  it("never removes the last voter", () => {
    expect(applyChange({ voters: [7], learners: [], ...none }, { op: "remove", replica: 7 })).toBe(
      "replica 7 is the last voter",
    );
  });

  const change = fc.oneof(
    fc.record({ op: fc.constant("add" as const), replica: fc.integer({ min: 1, max: 8 }) }),
    fc.record({ op: fc.constant("promote" as const), replica: fc.integer({ min: 1, max: 8 }) }),
    fc.record({ op: fc.constant("remove" as const), replica: fc.integer({ min: 1, max: 8 }) }),
    fc.record({
      op: fc.constant("replace" as const),
      remove: fc.integer({ min: 1, max: 8 }),
      add: fc.integer({ min: 1, max: 8 }),
    }),
  );

  test.prop([fc.array(change, { maxLength: 30 })])(
    "keeps voters non-empty, sorted and disjoint from learners; a one-replica change keeps majorities intersecting",
    (changes) => {
      let c = initialConfiguration([1, 2, 3]);
      for (const ch of changes) {
        const r = applyChange(c, ch);
        if (typeof r === "string") continue;
        expect(r.voters.length).toBeGreaterThan(0);
        expect([...r.voters].sort((a, b) => a - b)).toEqual(r.voters);
        expect(r.voters.some((v) => r.learners.includes(v))).toBe(false);
        // Any quorum of the old voters and any quorum of the new ones share a replica (not so for replace).
        const common = c.voters.filter((v) => r.voters.includes(v)).length;
        const overlap =
          quorumSize(c.voters.length) + quorumSize(r.voters.length) - (c.voters.length + r.voters.length - common);
        if (ch.op !== "replace") expect(overlap).toBeGreaterThan(0);
        // A removed id is retired for good: it never comes back.
        for (const gone of c.voters.concat(c.learners)) {
          if (!r.voters.includes(gone) && !r.learners.includes(gone)) expect(r.retired).toContain(gone);
        }
        for (const x of r.retired) expect(r.voters.includes(x) || r.learners.includes(x)).toBe(false);
        expect(r.retired).toEqual(expect.arrayContaining([...c.retired]));
        c = { epoch: c.epoch + 1, governsFrom: c.governsFrom + 1, ...r };
      }
    },
  );
});

describe("configurationFor and pruneConfigurations", () => {
  const configs: Configuration[] = [
    { epoch: 0, governsFrom: 1, voters: [1, 2, 3], learners: [], ...none },
    { epoch: 5, governsFrom: 9, voters: [1, 2, 3], learners: [4], ...none },
    { epoch: 6, governsFrom: 10, voters: [1, 2, 3, 4], learners: [], ...none },
  ];

  it("gives every slot exactly the last configuration that governs from at or below it", () => {
    expect(configurationFor(configs, 1).epoch).toBe(0);
    expect(configurationFor(configs, 8).epoch).toBe(0);
    expect(configurationFor(configs, 9).epoch).toBe(5);
    expect(configurationFor(configs, 10).epoch).toBe(6);
    expect(configurationFor(configs, 1_000).epoch).toBe(6);
  });

  it("drops only configurations that govern no slot from the given one on", () => {
    expect(pruneConfigurations(configs, 8)).toBe(configs);
    expect(pruneConfigurations(configs, 9).map((c) => c.epoch)).toEqual([5, 6]);
    expect(pruneConfigurations(configs, 10).map((c) => c.epoch)).toEqual([6]);
  });
});

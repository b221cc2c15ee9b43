/**
 * The leader's own checks of a membership change: a refusal judged against the configuration it
 * has executed is final only while the core vouches for that configuration; otherwise 503, retry.
 */
import { describe, expect, it } from "vitest";
import { precheckMemberRequest, type PrecheckFacts } from "./member-precheck.ts";

const facts = (over: Partial<PrecheckFacts> = {}): PrecheckFacts => ({
  self: 1,
  latest: { voters: [1, 2, 3], retired: [7] },
  initialMembers: [1, 2, 3],
  unsettled: null,
  addressKnown: (id) => id <= 5,
  featureLevelRequired: 1,
  namedLevel: () => null,
  ...over,
});
const pending = "promote 4 is proposed at slot 9, not yet executed";

describe("precheckMemberRequest", () => {
  it("refuses a removal that would leave two voters for good only on a configuration the core vouches for", () => {
    expect(precheckMemberRequest({ op: "remove", id: 3 }, facts())).toMatchObject({ status: 409, code: "unsafe" });
    // A promotion of 4 may be chosen: the removal may leave three voters after all.
    const retry = precheckMemberRequest({ op: "remove", id: 3 }, facts({ unsettled: pending }));
    expect(retry).toMatchObject({ status: 503, code: "unavailable", headers: { "Retry-After": "1" } });
    expect(retry?.message).toContain(pending);
    // Nor is a removal that looks safe let through then: a pending removal may leave too few.
    const four = { voters: [1, 2, 3, 4], retired: [] };
    expect(precheckMemberRequest({ op: "remove", id: 3 }, facts({ latest: four }))).toBeNull();
    expect(precheckMemberRequest({ op: "remove", id: 3 }, facts({ latest: four, unsettled: pending }))).toMatchObject({
      status: 503,
    });
    // Forced, or of a learner: the voters left do not matter.
    expect(precheckMemberRequest({ op: "remove", id: 3, force: true }, facts({ unsettled: pending }))).toBeNull();
    expect(precheckMemberRequest({ op: "remove", id: 5 }, facts({ unsettled: pending }))).toBeNull();
  });

  it("leaves whether a replace fits to the core, which retries rather than refuses while a change is pending", () => {
    // 4 is no voter in the executed configuration, but a pending promotion may make it one.
    expect(precheckMemberRequest({ op: "replace", old: 4, id: 5 }, facts({ unsettled: pending }))).toBeNull();
    expect(precheckMemberRequest({ op: "replace", old: 4, id: 5 }, facts())).toBeNull();
  });

  it("refuses a removed id for good, pending changes or not, and an unknown joiner until it connects", () => {
    for (const unsettled of [null, pending]) {
      expect(precheckMemberRequest({ op: "add", id: 7 }, facts({ unsettled }))).toMatchObject({
        status: 409,
        code: "retired-replica",
      });
      expect(precheckMemberRequest({ op: "replace", old: 2, id: 7 }, facts({ unsettled }))).toMatchObject({
        code: "retired-replica",
      });
    }
    expect(precheckMemberRequest({ op: "add", id: 6 }, facts())).toMatchObject({ code: "unknown-replica" });
    expect(precheckMemberRequest({ op: "add", id: 6, peerAddress: "h6:7000" }, facts())).toBeNull();
    expect(precheckMemberRequest({ op: "add", id: 5 }, facts())).toBeNull();
  });

  it("refuses a newcomer that does not execute the log's feature level, or the one it is raised to", () => {
    const named = (id: number): number | null => (id === 4 ? 2 : id === 5 ? 3 : null);
    const at3 = facts({ featureLevelRequired: 3, namedLevel: named });
    const short = precheckMemberRequest({ op: "add", id: 4 }, at3);
    expect(short).toMatchObject({ status: 409, code: "feature-level" });
    expect(short?.message).toMatch(/replica 4 executes feature levels up to 2, and the log is at level 3/);
    expect(precheckMemberRequest({ op: "replace", old: 3, id: 4 }, at3)).toMatchObject({ code: "feature-level" });
    expect(precheckMemberRequest({ op: "add", id: 5 }, at3)).toBeNull();
    expect(
      precheckMemberRequest({ op: "add", id: 4 }, facts({ featureLevelRequired: 2, namedLevel: named })),
    ).toBeNull();
    // Not heard from: its levels are unknown; the CLI waits for it to connect, as for its address.
    const unheard = precheckMemberRequest({ op: "add", id: 6, peerAddress: "h6:7000" }, at3);
    expect(unheard).toMatchObject({ status: 409, code: "unknown-replica" });
    expect(unheard?.message).toMatch(/feature levels it executes are not known here/);
    // At level 1 every version will do; a promotion or removal is no newcomer.
    expect(precheckMemberRequest({ op: "add", id: 6, peerAddress: "h6:7000" }, facts())).toBeNull();
    expect(precheckMemberRequest({ op: "promote", id: 4 }, at3)).toBeNull();
  });
});

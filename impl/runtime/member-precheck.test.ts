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
});

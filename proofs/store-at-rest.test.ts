/**
 * EntriesVouched (proofs/store-at-rest.ts) fails on each broken case: a vote record the store names
 * compacted away (rule V3 broken), a value rewritten while the store still names the old vote (rule
 * V1's bookkeeping broken), a reference to another command. And it passes on the replica as it runs.
 */
import { describe, expect, it } from "vitest";
import { kv, type KvInput } from "../spec/kv.ts";
import { pmGet, pmRemove, pmSet } from "../spec/persistent-map.ts";
import { compactRecords, pinnedVotes } from "../impl/core/testing/index.ts";
import { bigThenShortWrites, Cluster } from "../impl/core/testing/cluster.ts";
import { checkEntriesVouched } from "./store-at-rest.ts";
import { checkFailedBy } from "./violation.ts";

const put = (key: string, value: string): KvInput => ({ _tag: "put", key, value });
const big = "b".repeat(100);

/** The writes of `bigThenShortWrites`, "big" first, then `more` short values. */
const written = (more: number): Cluster => bigThenShortWrites({ storeAtRestCharsMin: 50 }, big, more);

describe("EntriesVouched", () => {
  it("passes as the replica runs: a long value is named by its vote, a short one is not", () => {
    const c = written(2);
    const s = c.state(1);
    expect(s.learner.origins.size).toBe(1);
    expect(checkEntriesVouched(1, s, c.node(1).records)).toBe(1);
    // Off (the core's default), nothing is named.
    const off = new Cluster(3, { config: { valuesAtRest: true } });
    expect(off.state(1).learner.origins.size).toBe(0);
  });

  it("fails when compaction deleted a vote record the store names (V3), and passes when it kept it", () => {
    const c = written(8);
    const s = c.state(1);
    const records = c.node(1).records;
    expect(checkFailedBy(() => checkEntriesVouched(1, s, compactRecords(records)))).toBe("EntriesVouched");
    const pinned = compactRecords(records, [], pinnedVotes(s.learner.origins));
    expect(pinned.length).toBeLessThan(records.length);
    expect(checkEntriesVouched(1, s, pinned)).toBe(1);
  });

  it("fails when the store holds another value than the one its vote names, or names another command", () => {
    const c = written(1);
    const s = c.state(1);
    const records = c.node(1).records;
    const app = kv.transition(put("big", `${big}!`), s.learner.service.app);
    const rewritten = { ...s, learner: { ...s.learner, service: { ...s.learner.service, app } } };
    expect(checkFailedBy(() => checkEntriesVouched(1, rewritten, records))).toBe("EntriesVouched");
    const ref = pmGet(s.learner.origins, "big")!;
    expect(ref.key).toBe("big");
    const otherCommand = {
      ...s,
      learner: { ...s.learner, origins: pmSet(s.learner.origins, "big", { ...ref, index: 1 }) },
    };
    expect(checkFailedBy(() => checkEntriesVouched(1, otherCommand, records))).toBe("EntriesVouched");
  });

  it("fails when the store holds a value at rest that no vote names (V1: only a named value rests)", () => {
    const c = written(1);
    const s = c.state(1);
    const records = c.node(1).records;
    expect(typeof pmGet(s.learner.service.app.entries, "big")).toBe("object");
    const unnamed = { ...s, learner: { ...s.learner, origins: pmRemove(s.learner.origins, "big") } };
    expect(checkFailedBy(() => checkEntriesVouched(1, unnamed, records))).toBe("EntriesVouched");
  });
});

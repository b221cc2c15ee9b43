/**
 * Every history check fails on a history that breaks it and passes on one that does not: a lost
 * acknowledged append, an append executed twice, a token nobody appended, an append recorded as
 * failed that took effect, a list read that is not a prefix of the final value, a closing read
 * that did not succeed, and a stale register read (not linearizable).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { KvInput, KvOutput } from "../../spec/kv.ts";
import { checkHistory, checkHistoryWithPage } from "./history-checks.ts";
import { historyDocument, releaseValues, writeHistoryFile, type RecordedOp } from "./workload.ts";

function op(
  client: string,
  input: KvInput,
  invoke: number,
  complete: number | undefined,
  output?: KvOutput,
  outcome?: RecordedOp["outcome"],
): RecordedOp {
  return {
    client,
    input,
    invoke,
    attempts: 1,
    outcome: outcome ?? (complete === undefined ? "unknown" : "ok"),
    ...(complete === undefined ? {} : { complete }),
    ...(output === undefined ? {} : { output }),
  };
}

const value = (v: string | null): KvOutput => ({ _tag: "value", value: v });

/** Two appends and a final read of l0 with `final`; more operations before the final read. */
function listHistory(final: string, extra: RecordedOp[] = []): { ops: RecordedOp[]; finals: Map<string, number> } {
  const ops = [
    op("c1", { _tag: "append", key: "l0", value: "c1.1," }, 0, 2, value("c1.1,")),
    op("c2", { _tag: "append", key: "l0", value: "c2.1," }, 3, 5, value("c1.1,c2.1,")),
    ...extra,
    op("final", { _tag: "get", key: "l0" }, 100, 101, value(final)),
  ];
  return { ops, finals: new Map([["l0", ops.length - 1]]) };
}

function checks(ops: RecordedOp[], finals: Map<string, number>): string[] {
  return checkHistory(ops, finals).violations.map((v) => v.check);
}

describe("history checks", () => {
  it("pass a correct history", () => {
    const { ops, finals } = listHistory("c1.1,c2.1,");
    const report = checkHistory(ops, finals);
    expect(report.violations).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.lists).toEqual({ keys: 1, appendsAcknowledged: 2, tokensInFinalValues: 2 });
  });

  it("NoLostWrite: an acknowledged append missing from the final value", () => {
    const { ops, finals } = listHistory("c1.1,");
    expect(checks(ops, finals)).toContain("NoLostWrite");
  });

  it("ExactlyOnce: a token twice in the final value", () => {
    const { ops, finals } = listHistory("c1.1,c2.1,c2.1,");
    expect(checks(ops, finals)).toContain("ExactlyOnce");
  });

  it("NoPhantomWrite: a token no client appended", () => {
    const { ops, finals } = listHistory("c1.1,c2.1,c9.9,");
    expect(checks(ops, finals)).toContain("NoPhantomWrite");
  });

  it("FailMeansNotExecuted: an append recorded as certainly failed that took effect", () => {
    const failed = op("c3", { _tag: "append", key: "l0", value: "c3.1," }, 10, undefined, undefined, "fail");
    const { ops, finals } = listHistory("c1.1,c2.1,c3.1,", [failed]);
    expect(checks(ops, finals)).toContain("FailMeansNotExecuted");
    // The same append with an unknown outcome may have taken effect: no violation.
    const unknown = op("c3", { _tag: "append", key: "l0", value: "c3.1," }, 10, undefined);
    const again = listHistory("c1.1,c2.1,c3.1,", [unknown]);
    expect(checks(again.ops, again.finals)).toEqual([]);
  });

  it("ListPrefix: a read of a list that is not a prefix of its final value", () => {
    const odd = op("c4", { _tag: "get", key: "l0" }, 6, 7, value("c2.1,"));
    const { ops, finals } = listHistory("c1.1,c2.1,", [odd]);
    expect(checks(ops, finals)).toContain("ListPrefix");
  });

  it("FinalRead: the closing read of a list did not succeed (no final value to check the appends against)", () => {
    const { ops, finals } = listHistory("c1.1,c2.1,");
    const last = ops.length - 1;
    const unanswered = ops.map((o, i) => (i === last ? op("final", o.input, 100, undefined) : o));
    expect(checks(unanswered, finals)).toEqual(["FinalRead"]);
    const refused = ops.map((o, i) => (i === last ? op("final", o.input, 100, 101, undefined, "fail") : o));
    expect(checks(refused, finals)).toEqual(["FinalRead"]);
    expect(checks(ops, finals)).toEqual([]);
  });

  it("Linearizable: a read that misses a write acknowledged before it started", () => {
    const ops = [
      op("c1", { _tag: "put", key: "r0", value: "a" }, 0, 1, { _tag: "ok" }),
      op("c2", { _tag: "put", key: "r0", value: "b" }, 2, 3, { _tag: "ok" }),
      op("c3", { _tag: "get", key: "r0" }, 4, 5, value("a")),
    ];
    const report = checkHistory(ops, new Map());
    expect(report.linearizability.verdict).toBe("not-linearizable");
    expect(report.violations.map((v) => v.check)).toEqual(["Linearizable"]);
    expect(report.violations[0]!.ops).toContain(2);
    expect(report.ok).toBe(false);
    // The run writes check-history's HTML report of it, with the minimised sub-history (all three).
    const { page } = checkHistoryWithPage(ops, new Map(), "nemesis seed 1");
    expect(page).toMatch(/<h2>Key &#34;r0&#34;: not linearizable<\/h2>/);
    expect(page).toMatch(/The smallest sub-history still not linearizable \(3 operations\)/);
    expect(checkHistoryWithPage(ops.slice(0, 2), new Map(), "nemesis seed 1").page).toBeUndefined();
  });
});

describe("the history file", () => {
  it("is written an operation at a time with the bytes of the whole document's JSON", () => {
    const long = 'é"\n'.repeat(200_000);
    const ops = [
      op("c1", { _tag: "put", key: "k", value: long }, 0.0004, 1.2345, { _tag: "ok" }),
      op("c2", { _tag: "append", key: "l0", value: "c2.1," }, 2, undefined, undefined, "fail"),
      op("c3", { _tag: "put", key: "k", value: long }, 3, undefined),
      ...Array.from({ length: 3 }, (_, i) => op(`r${i}`, { _tag: "get", key: "k" }, 4 + i, 5 + i, value(long))),
    ];
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "paxos-lease-history-"));
    try {
      for (const some of [[], ops.slice(0, 1), ops]) {
        const file = path.join(dir, `history-${some.length}.json`);
        writeHistoryFile(file, some);
        expect(fs.readFileSync(file, "utf8")).toBe(`${JSON.stringify(historyDocument(some))}\n`);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("lets go of the operations' long values once written and checked, in place, keeping their start and length", () => {
    const long = "x".repeat(1024 * 1024);
    const ops = [
      op("c1", { _tag: "put", key: "k", value: long }, 0, 1, { _tag: "ok" }),
      op("c2", { _tag: "get", key: "k" }, 2, 3, value(long)),
      op("c3", { _tag: "append", key: "l0", value: "c3.1," }, 4, 5, value("c3.1,")),
    ];
    const held = ops.map((o) => ({ input: o.input, output: o.output }));
    expect(releaseValues(ops)).toBe(2);
    expect(ops[0]!.input).toEqual({ _tag: "put", key: "k", value: `${"x".repeat(32)}... (1048576 code units)` });
    expect(ops[1]!.output).toEqual(value(`${"x".repeat(32)}... (1048576 code units)`));
    // Short values are kept as they are, and the objects the history held are not changed.
    expect(ops[2]!.input).toEqual(held[2]!.input);
    expect(held[0]!.input).toEqual({ _tag: "put", key: "k", value: long });
  });
});

/**
 * The checker agrees with Porcupine on Jepsen etcd logs in Porcupine's format, read through
 * the importer. The logs (testdata/jepsen-etcd/) are small ones written for this test: one per
 * way a register history goes wrong or looks wrong but is not (a failed cas, timed-out writes,
 * reads and cas, nemesis lines, space-padded columns), plus a generated 150-event history, one
 * late read of it made stale and one changed to a value a concurrent write explains. Each
 * verdict below is Porcupine's own, from running its checker with the etcd model and Jepsen log
 * parser of its tests on these files (`bench:linearizability -- --porcupine BIN --jepsen DIR`
 * compares the two on any directory of such logs).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadHistory, modelNamed } from "./history.ts";
import { detectFormat, importPorcupineLog } from "./importers.ts";
import { checkLinearizable } from "./linearizability.ts";

const dir = join(import.meta.dirname, "testdata", "jepsen-etcd");

/** Porcupine's verdicts: true is linearizable. */
const porcupine: Record<string, boolean> = {
  "failed-cas-concurrent.log": true,
  "failed-cas-must-succeed.log": false,
  "generated-concurrent-read.log": true,
  "generated-linearizable.log": true,
  "generated-stale-read.log": false,
  "nemesis-timeouts.log": true,
  "ok-concurrent-writes.log": true,
  "read-before-ok-cas.log": false,
  "read-never-written.log": false,
  "read-nil-after-write.log": false,
  "reads-disagree-on-order.log": false,
  "space-padded.log": true,
  "stale-read.log": false,
  "timed-out-cas-cannot-apply.log": false,
  "timed-out-write-read-later.log": true,
};

describe("agreement with Porcupine on Jepsen etcd logs", () => {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".log"))
    .sort();

  it("has a verdict for every log and a log for every verdict", () => {
    expect(files).toEqual(Object.keys(porcupine).sort());
  });

  it.each(files)("%s", (file) => {
    const text = readFileSync(join(dir, file), "utf8");
    expect(detectFormat(text)).toBe("porcupine-log");
    const history = loadHistory(importPorcupineLog(text));
    const result = checkLinearizable(modelNamed(history.model), history.operations, { allKeys: true });
    expect(result.verdict).toBe(porcupine[file] === true ? "linearizable" : "not-linearizable");
    // Every operation with an outcome is checked; only timed-out reads (no output) are not.
    const timedOutReads = text.split("\n").filter((l) => /:fail\s+:read\s+:timed-out/.test(l)).length;
    expect(result.operations + result.unconstrained + history.failed).toBe(
      text.split("\n").filter((l) => /\s:invoke\s/.test(l)).length,
    );
    expect(history.failed).toBe(timedOutReads);
  });
});

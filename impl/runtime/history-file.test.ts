/**
 * A history file read streamed, an operation at a time (history-file.ts): the same document as
 * `JSON.parse` of the whole text, for a history written by the nemesis (`writeHistoryFile`) with
 * values that cross the reader's chunks, and any JSON layout; `check-history` decides it as it
 * decides the file read whole; a file cut short is refused with the byte where it stops.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { writeHistoryFile, type RecordedOp } from "../../refinement-tests/nemesis/workload.ts";
import { run } from "./check-history.ts";
import { readHistoryJson, readJsonStreamed } from "./history-file.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "paxos-lease-history-file-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A linearizable history with values of every kind of character, some longer than the chunks. */
function ops(): RecordedOp[] {
  const long = 'é"\\{[}],€😀 \n'.repeat(3000);
  const out: RecordedOp[] = [];
  let t = 0;
  for (let i = 0; i < 12; i++) {
    const value = i % 3 === 0 ? `${i}:${long}` : `v${i}]}"`;
    out.push({
      client: `c${i % 3}`,
      input: { _tag: "put", key: "k", value },
      invoke: t++,
      complete: t++,
      outcome: "ok",
      output: { _tag: "ok" },
      attempts: 1,
    });
    out.push({
      client: `c${i % 3}`,
      input: { _tag: "get", key: "k" },
      invoke: t++,
      complete: t++,
      outcome: "ok",
      output: { _tag: "value", value },
      attempts: 1,
    });
  }
  out.push({
    client: "c9",
    input: { _tag: "append", key: "l", value: "x," },
    invoke: t++,
    outcome: "unknown",
    attempts: 1,
  });
  return out;
}

describe("a history file read streamed", () => {
  const file = path.join(dir, "history.json");
  writeHistoryFile(file, ops());
  const whole = JSON.parse(fs.readFileSync(file, "utf8")) as unknown;

  it("gives the document JSON.parse gives, its operations crossing the chunks", () => {
    expect(fs.statSync(file).size).toBeGreaterThan(4 * 1000);
    for (const chunkBytes of [61, 4096, 1 << 20]) expect(readJsonStreamed(file, { chunkBytes })).toEqual(whole);
    // Any layout: whitespace everywhere, other members after the operations, none at all.
    const pretty = path.join(dir, "pretty.json");
    fs.writeFileSync(pretty, JSON.stringify({ ...(whole as object), after: [1, { a: "}" }], n: -1.5e3 }, null, 2));
    expect(readJsonStreamed(pretty, { chunkBytes: 5 })).toEqual(JSON.parse(fs.readFileSync(pretty, "utf8")));
    const empty = path.join(dir, "empty.json");
    fs.writeFileSync(empty, ' { "format" : "paxos-lease/history@1" , "operations" : [ ] } ');
    expect(readJsonStreamed(empty, { chunkBytes: 3 })).toEqual({ format: "paxos-lease/history@1", operations: [] });
    // Each operation handed over as it is read.
    let seen = 0;
    readHistoryJson(file, 0, { operation: (op) => (seen++, op) });
    expect(seen).toBe(ops().length);
  });

  it("refuses a file cut short, or with text after the document, naming the byte", () => {
    const text = fs.readFileSync(file, "utf8");
    const cut = path.join(dir, "cut.json");
    fs.writeFileSync(cut, text.slice(0, text.length - 40));
    expect(() => readJsonStreamed(cut, { chunkBytes: 64 })).toThrow(/byte \d+/);
    fs.writeFileSync(cut, `${text} {}`);
    expect(() => readJsonStreamed(cut)).toThrow(/after the document at byte/);
  });

  it("is decided by check-history as the file read whole", async () => {
    const verdict = async (readWholeBytesMax?: number) => {
      let out = "";
      const status = await run(
        [file],
        {
          format: "auto",
          failedCas: "compare-failed",
          json: true,
          stepsMax: 1_000_000,
          allKeys: false,
          workers: 1,
          report: false,
          ...(readWholeBytesMax === undefined ? {} : { readWholeBytesMax }),
        },
        { out: (t) => (out += t), err: (t) => (out += t) },
      );
      const { verdict, operations, checked } = JSON.parse(out) as Record<string, unknown>;
      return { status, verdict, operations, checked };
    };
    const streamed = await verdict(0);
    expect(streamed).toEqual(await verdict());
    expect(streamed).toMatchObject({ status: 0, verdict: "linearizable", operations: ops().length });
  });
});

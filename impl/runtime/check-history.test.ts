/**
 * The `check-history` command: exit status and report for a linearizable history, a stale
 * read, a malformed file and bad arguments (in process), and once as a real process.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { stepsMaxPerPartitionDefault } from "../history/linearizability.ts";
import { checkHistoryMain } from "./check-history.ts";
import { stepsMaxDefault } from "./check-history-command.ts";

const dir = mkdtempSync(join(tmpdir(), "check-history-"));
const cli = join(import.meta.dirname, "check-history.ts");

async function run(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const status = await checkHistoryMain(args, { out: (t) => (stdout += t), err: (t) => (stderr += t) });
  return { status, stdout, stderr };
}

function runProcess(args: string[]): { status: number; stdout: string; stderr: string } {
  try {
    const stdout = execFileSync(process.execPath, ["--import", "tsx", cli, ...args], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
    return { status: 0, stdout, stderr: "" };
  } catch (error) {
    const e = error as { status: number; stdout: string; stderr: string };
    return { status: e.status, stdout: e.stdout, stderr: e.stderr };
  }
}

function file(name: string, content: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content));
  return path;
}

const write = {
  client: "a",
  input: { _tag: "put", key: "x", value: "1" },
  invoke: 0,
  outcome: "ok",
  complete: 1,
  output: { _tag: "ok" },
};
const read = (value: string | null) => ({
  client: "b",
  input: { _tag: "get", key: "x" },
  invoke: 2,
  outcome: "ok",
  complete: 3,
  output: { _tag: "value", value },
});

describe("check-history", () => {
  it("offers the checker's own step budget as --steps-max's default", () => {
    expect(stepsMaxDefault).toBe(stepsMaxPerPartitionDefault);
  });

  it("exits 0 for a linearizable history and says so (as a real process)", () => {
    const r = runProcess([
      file("good.json", { format: "paxos-lease/history@1", operations: [write, read("1")] }),
      "--model",
      "kv",
    ]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/: linearizable \(model kv; 2 operations checked/);
  });

  it("exits 1 for a stale read and shows the operation that cannot follow", async () => {
    const r = await run([
      file("stale.json", { format: "paxos-lease/history@1", operations: [write, read(null)] }),
      "--json",
    ]);
    expect(r.status).toBe(1);
    const out = JSON.parse(r.stdout) as { verdict: string; violations: { key: string; stuck: { id: number }[] }[] };
    expect(out.verdict).toBe("not-linearizable");
    expect(out.violations[0]!.key).toBe("x");
    expect(out.violations[0]!.stuck.map((s) => s.id)).toEqual([1]);
  });

  it("names the witness of a stale read the search alone is slow to refute", async () => {
    // The checker's own test (impl/history/linearizability.test.ts) decides this history; here:
    // the refutation, the minimised sub-history and the report page as the command shows them.
    const path = join(import.meta.dirname, "../history/testdata/stale-read-after-sixteen-writes.json");
    const json = await run([path, "--json", "--report", dir]);
    expect(json.status).toBe(1);
    const out = JSON.parse(json.stdout) as {
      report: string;
      violations: { refutation: { reason: string; operations: { id: number }[] }; minimised: { id: number }[] }[];
    };
    expect(out.violations[0]!.refutation.operations.map((o) => o.id)).toEqual([16, 17, 18]);
    expect(out.violations[0]!.refutation.reason).toMatch(/#18 saw "a", written only by #16, but #17 overwrote it/);
    // The witness is the minimised sub-history, and the report page says why.
    expect(out.violations[0]!.minimised.map((o) => o.id)).toEqual([16, 17, 18]);
    expect(readFileSync(out.report, "utf8")).toMatch(/refuted without a full search: #18 saw &#34;a&#34;/);
    const text = await run([path, "--no-report"]);
    expect(text.stdout).toMatch(/refuted without a full search: #18 saw "a"/);
  });

  it("takes --model register and reports in JSON what was checked and what was not", async () => {
    // What a register's failed cas means is the checker's (impl/history/linearizability.test.ts).
    const r = await run([
      file("register.json", {
        format: "paxos-lease/history@1",
        operations: [
          { client: "a", input: { f: "write", value: 1 }, invoke: 0, outcome: "ok", complete: 1, output: {} },
          { client: "b", input: { f: "read" }, invoke: 2, outcome: "ok", complete: 3, output: { value: 1 } },
          { client: "c", input: { f: "read" }, invoke: 4, outcome: "unknown" },
        ],
      }),
      "--model",
      "register",
      "--json",
    ]);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as {
      model: string;
      checked: number;
      notChecked: { readsWithUnknownOutcome: number };
    };
    expect([out.model, out.checked, out.notChecked.readsWithUnknownOutcome]).toEqual(["register", 2, 1]);
  });

  it("exits 2 with a one-line message for malformed files and bad arguments", async () => {
    expect((await run([file("bad.json", "{ nope")])).stderr).toMatch(/^check-history: \S+bad.json: not JSON: .*\n$/);
    const wrong = await run([
      file("wrong.json", { format: "paxos-lease/history@1", operations: [{ ...write, invoke: -1 }] }),
    ]);
    expect(wrong.status).toBe(2);
    expect(wrong.stderr).toMatch(
      /^check-history: \S+wrong.json: operation 0: "invoke" must be a finite, non-negative number, not -1\n$/,
    );
    expect(
      (await run([file("ok.json", { format: "paxos-lease/history@1", operations: [] }), "--model", "queue"])).stderr,
    ).toMatch(/--model.*queue.*kv, register/s);
    const mismatch = await run([
      file("reg.json", { format: "paxos-lease/history@1", model: "register", operations: [] }),
      "--model",
      "kv",
    ]);
    expect(mismatch.stderr).toMatch(
      /^check-history: \S+reg.json: the history is a register history, but the kv model was asked for\n$/,
    );
    expect((await run([join(dir, "missing.json")])).stderr).toMatch(/cannot read/);
    expect((await run([])).status).toBe(2);
  });

  it("checks a directory of histories in any format, one JSON line each and a summary", async () => {
    const batch = mkdtempSync(join(dir, "batch-"));
    writeFileSync(
      join(batch, "a-good.json"),
      JSON.stringify({ format: "paxos-lease/history@1", operations: [write, read("1")] }),
    );
    writeFileSync(
      join(batch, "b-stale.json"),
      JSON.stringify({ format: "paxos-lease/history@1", operations: [write, read(null)] }),
    );
    writeFileSync(
      join(batch, "c-etcd.log"),
      [
        "INFO  jepsen.util - 0\t:invoke\t:write\t3",
        "INFO  jepsen.util - 0\t:ok\t:write\t3",
        "INFO  jepsen.util - 1\t:invoke\t:cas\t[3 4]",
        "INFO  jepsen.util - 1\t:fail\t:cas\t[3 4]",
      ].join("\n"),
    );
    writeFileSync(
      join(batch, "d-history.edn"),
      "{:type :invoke, :f :read, :value nil, :process 0}\n{:type :ok, :f :read, :value 2, :process 0}\n",
    );
    writeFileSync(join(batch, "e-broken.json"), "[");
    writeFileSync(join(batch, "notes.md"), "not a history");
    for (const workers of ["1", "2"]) {
      const r = await run([batch, "--json", "--workers", workers]);
      expect(r.status).toBe(1);
      const lines = r.stdout
        .trim()
        .split("\n")
        .map(
          (l) =>
            JSON.parse(l) as {
              file?: string;
              verdict?: string;
              summary?: boolean;
              histories?: number;
              errors?: number;
              notLinearizable?: number;
            },
        );
      const verdicts: Record<string, string | undefined> = Object.fromEntries(
        lines.filter((l) => l.file !== undefined).map((l) => [l.file!.split("/").at(-1)!, l.verdict]),
      );
      expect(verdicts).toEqual({
        "a-good.json": "linearizable",
        "b-stale.json": "not-linearizable",
        "c-etcd.log": "not-linearizable",
        "d-history.edn": "not-linearizable",
        "e-broken.json": "error",
      });
      expect(lines.at(-1)).toMatchObject({ summary: true, histories: 5, errors: 1, notLinearizable: 3 });
    }
  });
});

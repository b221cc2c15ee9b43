/**
 * The bench scripts' flags: `readFlags` says run, help or error for every kind of command line;
 * one real script shows the exits (help: 0 on stdout, a bad flag: 2 with the usage on stderr);
 * and every bench script reads its flags through `benchFlags`, none by hand.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { readFlags } from "./flags.ts";

const options = {
  seconds: { type: "string", default: "3" },
  only: { type: "string" },
  json: { type: "boolean", default: false },
} as const;

describe("readFlags", () => {
  it("gives the values, defaults filled in", () => {
    expect(readFlags(options, [])).toEqual({ kind: "run", values: { seconds: "3", json: false, help: false } });
    expect(readFlags(options, ["--seconds", "7", "--json", "--only", "x"])).toEqual({
      kind: "run",
      values: { seconds: "7", json: true, only: "x", help: false },
    });
  });

  it("says help for --help, whatever else is there", () => {
    expect(readFlags(options, ["--help"])).toEqual({ kind: "help" });
    expect(readFlags(options, ["--json", "--help"])).toEqual({ kind: "help" });
  });

  it("refuses an unknown flag, a missing value, a value given to a switch and a stray argument", () => {
    for (const argv of [["--secs", "3"], ["--seconds"], ["--json=yes"], ["extra"]]) {
      const read = readFlags(options, argv);
      expect(read.kind, argv.join(" ")).toBe("error");
      expect(read.kind === "error" && read.message.length > 0).toBe(true);
    }
    const unknown = readFlags(options, ["--secs", "3"]);
    expect(unknown.kind === "error" ? unknown.message : "").toContain("--secs");
  });
});

const root = path.resolve(import.meta.dirname, "..", "..");

describe("benchFlags in a bench script", () => {
  const script = path.join(root, "bench", "step.ts");
  const tsx = ["--import", "tsx", script];

  it("--help prints the usage on stdout and exits 0", () => {
    const out = execFileSync(process.execPath, [...tsx, "--help"], { cwd: root, encoding: "utf8" });
    expect(out).toMatch(/^usage: npm run bench:step/);
    expect(out).toContain("--seconds S");
  });

  it("a bad flag prints what was wrong and the usage on stderr, and exits 2", () => {
    const run = spawnSync(process.execPath, [...tsx, "--secnds", "1"], { cwd: root, encoding: "utf8" });
    expect(run.status).toBe(2);
    expect(run.stdout).toBe("");
    expect(run.stderr).toContain("--secnds");
    expect(run.stderr).toContain("usage: npm run bench:step");
  });

  it("a bad value is refused the same way", () => {
    const run = spawnSync(process.execPath, [...tsx, "--seconds", "soon"], { cwd: root, encoding: "utf8" });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain("--seconds must be a positive number, got 'soon'");
    expect(run.stderr).toContain("usage: npm run bench:step");
  });
});

describe("every bench script", () => {
  it("reads its flags through benchFlags, none by hand", () => {
    const dir = path.join(root, "bench");
    const scripts = readdirSync(dir).filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts"));
    const withFlags = scripts.filter((f) => readFileSync(path.join(dir, f), "utf8").includes("benchFlags("));
    expect(withFlags.length).toBeGreaterThanOrEqual(17);
    const byHand = scripts.filter((f) => /\bparseArgs\b|process\.argv/.test(readFileSync(path.join(dir, f), "utf8")));
    expect(byHand).toEqual([]);
  });
});

/**
 * `npm run check` end to end: a clean campaign exits 0 with a JSON summary; a campaign against a
 * broken variant exits 1, writes the shrunk trace (text and Mermaid) and a regression file, and
 * prints a replay command that reproduces the same failure and the command that opens it in the
 * trace explorer.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadView } from "../view/load.ts";

const cli = new URL("./check.ts", import.meta.url).pathname;

function check(args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ["--import", "tsx", cli, ...args], { encoding: "utf8", timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("npm run check", () => {
  it("a clean campaign exits 0 and summarizes as JSON", () => {
    const r = check(["--runs", "30", "--workers", "1", "--json", "--shard", "1/2"]);
    expect(r.status, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout) as { runs: number; violations: number; events: number; shard: string };
    expect(summary.runs).toBe(15);
    expect(summary.shard).toBe("1/2");
    expect(summary.violations).toBe(0);
    expect(summary.events).toBeGreaterThan(0);
  });

  it("a violation exits 1 with a trace, a Mermaid diagram, a regression file and a replay command that reproduces it", () => {
    const out = mkdtempSync(join(tmpdir(), "paxos-lease-check-"));
    const r = check(["--runs", "20", "--workers", "1", "--mutant", "reply-before-durable", "--out", out]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("DurableBeforeSend");
    const folder = /trace \(text\): +(\S+)\/failure\.txt/.exec(r.stderr)?.[1];
    expect(folder).toBeDefined();
    expect(readFileSync(join(folder!, "failure.txt"), "utf8")).toContain("DurableBeforeSend");
    expect(readFileSync(join(folder!, "trace.mmd"), "utf8")).toMatch(/^sequenceDiagram/);
    expect(existsSync(join(folder!, "regression.json"))).toBe(true);
    const replay = /replay: +npm run check -- (--replay \S+ .*)$/m.exec(r.stderr)?.[1];
    expect(replay).toBeDefined();
    const again = check([...replay!.split(" "), "--out", out]);
    expect(again.status).toBe(1);
    expect(again.stderr).toContain("DurableBeforeSend");
    const view = /step through it: npm run view -- (\S+)$/m.exec(r.stderr)?.[1];
    expect(view).toBe(folder);
    const trace = loadView(view!);
    expect(trace.violation?.check).toBe("DurableBeforeSend");
    expect(trace.source.replay).toBe(`npm run check -- ${replay!}`);
  });

  it("--tuning reaches every run, and the failure report's replay carries it and reproduces the failure", () => {
    const own = check(["--runs", "4", "--workers", "1", "--json"]);
    const zeroDelay = check(["--runs", "4", "--workers", "1", "--json", "--tuning", "zero-delay"]);
    expect(own.status, own.stderr).toBe(0);
    expect(zeroDelay.status, zeroDelay.stderr).toBe(0);
    const a = JSON.parse(own.stdout) as { tuning: string; events: number; counters: Record<string, number> };
    const b = JSON.parse(zeroDelay.stdout) as { tuning: string; events: number; counters: Record<string, number> };
    expect(a.tuning).toBe("own");
    expect(b.tuning).toBe("zero-delay");
    expect({ events: b.events, counters: b.counters }).not.toEqual({ events: a.events, counters: a.counters });

    const out = mkdtempSync(join(tmpdir(), "paxos-lease-check-"));
    const r = check([
      "--runs",
      "20",
      "--workers",
      "1",
      "--mutant",
      "reply-before-durable",
      "--tuning",
      "zero-delay",
      "--out",
      out,
    ]);
    expect(r.status).toBe(1);
    const replay = /replay: +npm run check -- (--replay \S+ .*)$/m.exec(r.stderr)?.[1];
    expect(replay).toContain("--tuning zero-delay");
    const again = check([...replay!.split(" "), "--out", out]);
    expect(again.status, again.stderr).toBe(1);
    expect(again.stderr).toContain("DurableBeforeSend");
  });

  it("refuses an unknown tuning, naming the ones there are", () => {
    const r = check(["--runs", "1", "--tuning", "fast"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(
      '--tuning: unknown tuning "fast": expected one of own, drift, zero-delay, restart-lower',
    );
  });
});

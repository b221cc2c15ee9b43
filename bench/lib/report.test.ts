/**
 * What bench scripts print beside their numbers: the load average's format, progress lines on
 * stderr, and every bench script using these two instead of a copy of its own.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it, vi } from "vitest";
import { loadAverage, notAResult, progressOf } from "./report.ts";

describe("bench/lib/report", () => {
  it("gives the 1, 5 and 15 minute load averages with the decimals asked for", () => {
    expect(loadAverage()).toMatch(/^\d+\.\d{2} \d+\.\d{2} \d+\.\d{2}$/);
    expect(loadAverage(1)).toMatch(/^\d+\.\d \d+\.\d \d+\.\d$/);
  });

  it("writes a progress line to stderr under the script's name, nothing to stdout", () => {
    const stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    const stdout = vi.spyOn(process.stdout, "write");
    try {
      progressOf("bench:test")("3 of 5 points");
      expect(stderr).toHaveBeenCalledWith("[bench:test] 3 of 5 points\n");
      expect(stdout).not.toHaveBeenCalled();
    } finally {
      stderr.mockRestore();
      stdout.mockRestore();
    }
  });

  it("calls a run with a leadership change, a failed or an unknown write no result, and says why", () => {
    const clean = { leadershipChanges: 0, failed: 0, outcomeUnknown: 0 };
    expect(notAResult(clean)).toBeNull();
    expect(notAResult({ ...clean, leadershipChanges: 1 })).toBe("1 leadership changes during the run");
    expect(notAResult({ ...clean, failed: 3 })).toBe("3 failed writes during the run");
    expect(notAResult({ leadershipChanges: 2, failed: 1, outcomeUnknown: 4 })).toBe(
      "2 leadership changes, 1 failed writes, 4 writes of unknown outcome during the run",
    );
  });

  it("is what every bench script uses: none formats the load average or a progress line by hand", () => {
    const dir = path.resolve(import.meta.dirname, "..");
    const scripts = readdirSync(dir).filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts"));
    const text = (f: string): string => readFileSync(path.join(dir, f), "utf8");
    expect(scripts.filter((f) => text(f).includes("progressOf(")).length).toBeGreaterThanOrEqual(6);
    const byHand = scripts.filter((f) =>
      /loadavg\(\)\s*\.map\(\(\w+\) => \w+\.toFixed\(\d\)\)\s*\.join\(|stderr\.write\(`\[[\w:-]+\] \$\{/.test(text(f)),
    );
    expect(byHand).toEqual([]);
  });
});

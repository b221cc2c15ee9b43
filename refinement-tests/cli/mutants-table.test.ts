/**
 * `npm run mutants:table` end to end: runs of `npm run mutants -- --json` become the table of
 * teeth (a re-run of one mutant replaces its row); help exits 0; a file that is missing, not JSON
 * or not a mutants run exits 2 with a message naming the file and what is wrong.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const cli = new URL("./mutants-table.ts", import.meta.url).pathname;

function table(args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ["--import", "tsx", cli, ...args], { encoding: "utf8", timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const dir = mkdtempSync(join(tmpdir(), "mutants-table-"));
function file(name: string, content: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content));
  return path;
}

const run = (hunts: { explore: boolean; random: boolean; exploreSeconds?: number; exhausted?: boolean }) => ({
  replicas: 5,
  tuning: "drift",
  load: 1.5,
  budgetSeconds: 10,
  budgetClock: "cpu",
  mutants: [
    {
      mutant: "quorum-off-by-one",
      hunts: [
        {
          engine: "explore",
          caught: hunts.explore,
          cpuSeconds: hunts.exploreSeconds ?? 0.5,
          effort: 850,
          ...(hunts.exhausted === undefined ? {} : { exhausted: hunts.exhausted }),
        },
        { engine: "random", caught: hunts.random, cpuSeconds: 0.25, effort: 3 },
      ],
    },
  ],
});

describe("npm run mutants:table", () => {
  it("tables a run, and a re-run replaces the rows it has", () => {
    const r = table([
      file("a.json", run({ explore: false, random: true })),
      file("b.json", run({ explore: true, random: true })),
    ]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain("| mutant | 5, drift: explorer | random |");
    expect(r.stdout).toContain("| quorum-off-by-one | 0.50 s, 850 states | 0.25 s, 3 runs |");
  });

  it("a re-run of one engine replaces that engine's hunts and keeps the other's", () => {
    const random = run({ explore: false, random: true });
    const explorer = {
      ...run({ explore: true, random: false }),
      load: 7.5,
      budgetSeconds: 20,
      mutants: [
        {
          mutant: "quorum-off-by-one",
          hunts: [{ engine: "explore", caught: false, cpuSeconds: 20, effort: 6946 }],
        },
      ],
    };
    const r = table([
      file("d.json", { ...random, mutants: [{ ...random.mutants[0]!, hunts: random.mutants[0]!.hunts.slice(1) }] }),
      file("e.json", explorer),
    ]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain("| quorum-off-by-one | no (6,946 states in 20 s) | 0.25 s, 3 runs |");
    expect(r.stdout).toContain("load 1.5; every mutant by the explorer: budget 20 s CPU per hunt, load 7.5)");
    const again = table([file("f.json", run({ explore: false, random: true })), file("g.json", explorer)]);
    expect(again.stdout).toContain(
      "load 1.5; re-run of every mutant by the explorer: budget 20 s CPU per hunt, load 7.5)",
    );
  });

  it("says what was not caught: within what budget, or that its bounds were exhausted and when", () => {
    const budget = table([
      file("c.json", run({ explore: false, random: true, exploreSeconds: 10.02, exhausted: false })),
    ]);
    expect(budget.status, budget.stderr).toBe(0);
    expect(budget.stdout).toContain("| quorum-off-by-one | no (850 states in 10 s) | 0.25 s, 3 runs |");
    const exhausted = table([file("h.json", run({ explore: false, random: true, exhausted: true }))]);
    expect(exhausted.stdout).toContain(
      "| quorum-off-by-one | no (bounds exhausted: 850 states in 0.50 s) | 0.25 s, 3 runs |",
    );
    // A run made before hunts reported it: an explorer hunt that stopped before its budget.
    const older = table([file("i.json", run({ explore: false, random: true }))]);
    expect(older.stdout).toContain("| quorum-off-by-one | no (bounds exhausted: 850 states in 0.50 s) |");
  });

  it("says the random suite at restart-lower is the own tuning's", () => {
    const explorer = run({ explore: true, random: false });
    const r = table([
      file("j.json", {
        ...explorer,
        tuning: "restart-lower",
        mutants: [{ ...explorer.mutants[0]!, hunts: explorer.mutants[0]!.hunts.slice(0, 1) }],
      }),
    ]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain("| quorum-off-by-one | 0.50 s, 850 states | same as own |");
    expect(r.stdout).toContain("tuning restart-lower: explorer 1/1, random same as own, some engine 1/1");
  });

  it("prints help and exits 0", () => {
    const r = table(["--help"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^usage: npm run mutants:table -- FILE/);
  });

  it("refuses a missing file, a file that is not JSON and one that is not a mutants run, naming it", () => {
    const missing = table([join(dir, "none.json")]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain("none.json cannot be read (ENOENT)");
    const text = table([file("notes.txt", "# not json")]);
    expect(text.status).toBe(2);
    expect(text.stderr).toMatch(/notes\.txt is not JSON/);
    const other = table([file("other.json", { name: "paxos-lease" })]);
    expect(other.status).toBe(2);
    expect(other.stderr).toContain("other.json has no replicas and tuning");
    const none = table([]);
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/^usage:/);
  });
});

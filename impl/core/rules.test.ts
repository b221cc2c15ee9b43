/**
 * Each rule guards against a hazard, and a check that cannot fail is a defect: with one rule of
 * `defaultRules` replaced by a broken variant, a golden scenario (or a randomized run) shows the
 * hazard the rule exists for, while with the real rules it does not. The broken variants are the
 * bug zoo's (refinement-tests/mutants/, one home for them all), which the refinement checkers
 * catch at scale; here each one meets the scenario that shows its hazard in a few steps.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Linter as EslintLinter } from "eslint";
import { describe, expect, it } from "vitest";
import { mutantNamed } from "../../refinement-tests/mutants/index.ts";
import { rulesOf } from "../../refinement-tests/mutants/mutant.ts";
import { defaultRules, type ReplicaRules } from "./rules.ts";
import { parseScript, ScriptRunner } from "./testing/script.ts";
import { simulate } from "./testing/simulate.ts";

/** The rules of the bug zoo's mutant `name`: `defaultRules` with one rule broken. */
function broken(name: string): ReplicaRules {
  return rulesOf(mutantNamed(name));
}

function script(name: string): string {
  return readFileSync(join(import.meta.dirname, "testdata", `${name}.txt`), "utf8");
}

/** Replay a scenario with `rules`; return every output line and the most lease holders seen at once. */
function replay(name: string, rules: ReplicaRules): { lines: string[]; maxHolders: number } {
  const runner = new ScriptRunner(rules);
  const lines: string[] = [];
  let maxHolders = 0;
  for (const block of parseScript(script(name)).blocks) {
    try {
      lines.push(...runner.run(block.command));
    } catch (e) {
      lines.push(`error: ${e instanceof Error ? e.message : String(e)}`);
      break;
    }
    maxHolders = Math.max(maxHolders, runner.cluster?.leaseHolders().length ?? 0);
  }
  return { lines, maxHolders };
}

describe("each rule prevents its hazard", () => {
  it("L4 (restart wait): without it, a restarted acceptor lets a second replica trust a lease", () => {
    expect(replay("restart-during-lease", defaultRules).maxHolders).toBe(1);
    expect(replay("restart-during-lease", broken("restart-forgets-grant")).maxHolders).toBe(2);
  });

  it("L1 (a grant in force refuses other ballots): without it, two replicas trust a lease", () => {
    const correct = replay("grant-in-force", defaultRules);
    expect(correct.maxHolders).toBe(1);
    expect(correct.lines).toContain("3 reply #1 redirect leader=1");
    const lines = replay("grant-in-force", broken("grant-ignored"));
    expect(lines.maxHolders).toBe(2);
    // The new leader acknowledges a write that the cut-off leader's read by lease then misses.
    expect(lines.lines).toContain("3 reply #1 ok done");
    expect(lines.lines).toContain("1 reply #2 ok value=null");
  });

  it("L6 (a candidate yields to a higher ballot): without it, candidates whose timers fire together refuse one another round after round", () => {
    const leaders = (lines: readonly string[]) => lines.filter((l) => / is leader /.test(l));
    const correct = replay("candidates-under-load", defaultRules);
    expect(leaders(correct.lines)).toEqual(["3 is leader (1,3)", "2 is leader (2,2)", "3 is leader (3,3)"]);
    expect(correct.maxHolders).toBe(1);
    const kept = replay("candidates-under-load", broken("self-grant-kept"));
    expect(leaders(kept.lines)).toEqual([]);
    expect(kept.maxHolders).toBe(0);
    // Each round the highest candidate is refused by the others' self-grants, and is still campaigning.
    expect(kept.lines).toContain("1->3 Nack b=(3,3) promised=(3,1) grantRemaining=300");
    expect(kept.lines).toContain(
      "3: candidate (3,3) maxBal=(3,3) grant=(3,3)until2100 commit=0 executed=0 leader=none",
    );
  });

  it("L2 (count from the quorum-th grant): counting from the freshest grant keeps a cut-off leader's lease alive", () => {
    expect(replay("lease-expiry", defaultRules).maxHolders).toBe(1);
    expect(replay("lease-expiry", broken("lease-from-freshest-grant")).maxHolders).toBe(2);
  });

  it("L3 (execute what phase 1 revealed before reading by lease): without it, a read misses an acknowledged write", () => {
    const correct = replay("lease-read", defaultRules).lines;
    expect(correct).toContain("1 reply #2 ok done");
    expect(correct).toContain("3 reply #3 ok value=2");
    expect(replay("lease-read", broken("lease-read-before-reproposals")).lines).toContain("3 reply #3 ok value=null");
  });

  it("L3 with configurations (phase 1 of every configuration above the executed prefix): without it, a read after a replace misses a write", () => {
    // The rule as it was: the lease and the revealed slots executed, phase 1 of the pending
    // configuration not asked for.
    const rules = broken("lease-read-before-pending-phase1");
    for (const name of ["lease-read-after-replace", "lease-read-after-replace-snapshot"]) {
      const correct = replay(name, defaultRules).lines;
      expect(correct).toContain("1 reply #3 ok done");
      expect(correct).not.toContain("2 reply #4 ok value=null");
      expect(replay(name, rules).lines).toContain("2 reply #4 ok value=null");
    }
    expect(replay("lease-read-after-replace", defaultRules).lines).toContain("2 reply #4 ok value=2");
  });

  it("R4 (refuse a leader the acceptor knows removed): without it, a lagging removed voter is elected and binds the voters in force for a lease", () => {
    const correct = replay("reconfig-removed-voter-campaigns", defaultRules).lines;
    expect(correct).toContain("2->3 Nack b=(2,3) promised=(1,1) grantRemaining=0");
    expect(correct).toContain("2 is leader (3,2)");
    expect(correct).not.toContain("3 is leader (2,3)");
    const lines = replay("reconfig-removed-voter-campaigns", broken("help-removed-leader")).lines;
    expect(lines).toContain("3 is leader (2,3)");
    expect(lines.some((l) => l.startsWith("2 may not campaign now"))).toBe(true);
  });

  it("P2c (re-propose the highest-ballot vote): proposing a no-op instead is stopped by the acceptor's assertion", () => {
    const lines = replay("lease-read", broken("phase2a-ignores-votes")).lines;
    expect(
      lines.some(
        (l) => l.startsWith("error:") && l.includes("P2c: ballot (2,3) proposes another value at chosen slot 1"),
      ),
    ).toBe(true);
  });

  it("quorums must intersect: a minority quorum breaks Consistency in randomized runs", () => {
    const rules = broken("quorum-off-by-one");
    const found = [0, 1, 2, 3, 4]
      .map((seed) => simulate(seed, 600, rules))
      .find((r) => r?.includes("Consistency") === true);
    expect(found).toBeDefined();
  });
});

describe("each rule of snapshots, transfer and reconfiguration prevents its hazard", () => {
  it("T2 (a Promise covers no slot at or below the acceptor's truncation point): counting it, a new leader proposes a no-op over a chosen slot", () => {
    expect(replay("truncated-promise", defaultRules).lines.some((l) => l.startsWith("error:"))).toBe(false);
    const lines = replay("truncated-promise", broken("truncated-promise-counted")).lines;
    // Replica 2 still has slot 1 in its log (only votes are gone), so its own P2c assertion stops it.
    expect(
      lines.some(
        (l) => l.startsWith("error:") && l.includes("P2c: ballot (2,3) proposes another value at chosen slot 1"),
      ),
    ).toBe(true);
  });

  it("T3 (a Promise omits the votes its acceptor executed): counting it at those slots, a new leader proposes no-ops over chosen slots", () => {
    const correct = replay("chosen-omitted-promise", defaultRules).lines;
    expect(correct.some((l) => l.startsWith("error:"))).toBe(false);
    expect(correct).toContain("2->3 Promise b=(2,3) from=1 truncated=3 votes=[] t=650");
    expect(correct).toContain("3->2 CatchUp 1..3");
    const lines = replay("chosen-omitted-promise", broken("truncated-promise-counted")).lines;
    expect(
      lines.some(
        (l) => l.startsWith("error:") && l.includes("P2c: ballot (2,3) proposes another value at chosen slot 1"),
      ),
    ).toBe(true);
  });

  it("S1 (install only above the executed prefix): installing a stale transfer takes a replica back in time", () => {
    const installsOfEight = (rules: ReplicaRules) =>
      replay("transfer-stale", rules).lines.filter((l) => l.startsWith("3 persist snapshot s=8")).length;
    expect(installsOfEight(defaultRules)).toBe(0); // the one install of slot 8 happens in a quiet step
    expect(installsOfEight(broken("stale-transfer-installed"))).toBe(1);
  });

  it("S2 (verify the digests before installing): without it, a corrupted transfer becomes the replica's state", () => {
    const correct = replay("transfer-stale", defaultRules).lines;
    expect(correct.some((l) => l.includes("ALARM"))).toBe(false);
    const lines = replay("transfer-stale", broken("transfer-unverified")).lines;
    expect(lines.some((l) => l.includes("ALARM"))).toBe(true);
  });
});

type EslintConfig = EslintLinter.Config;

describe("the rules seam is total", () => {
  const root = join(import.meta.dirname, "..", "..");

  it("eslint.config.js restricts exactly the rules of defaultRules", () => {
    const config = readFileSync(join(root, "eslint.config.js"), "utf8");
    const list = /const coreRules = \[([^\]]*)\]/.exec(config)?.[1] ?? "";
    const restricted = [...list.matchAll(/"(\w+)"/g)].map((m) => m[1]);
    expect(restricted.sort()).toEqual(Object.keys(defaultRules).sort());
  });

  it("ESLint refuses a rule called directly instead of through rules", async () => {
    // The seam's block of the project's own ESLint configuration, run without type information
    // (which the restriction does not need) so that the test is fast.
    const { Linter } = await import("eslint");
    const { parser } = await import("typescript-eslint");
    const url = pathToFileURL(join(root, "eslint.config.js")).href;
    const { default: config } = (await import(url)) as { default: EslintConfig[] };
    const seam = config.filter((c) => c.rules?.["no-restricted-syntax"] !== undefined);
    expect(seam).toHaveLength(1);
    const linter = new Linter({ cwd: root, configType: "flat" });
    const lint = (code: string, filename: string) =>
      linter
        .verify(code, [{ files: ["**/*.ts"], languageOptions: { parser } }, ...seam], { filename })
        .map((m) => m.ruleId);
    const path = join(root, "impl/core/replica.ts");
    const source = readFileSync(path, "utf8");
    const direct = source
      .replace(/electionDue,(\s*)nextBallot,/, "electionDue,$1mayCampaign,$1nextBallot,")
      .replace("&& rules.mayCampaign(rules, state, now)", "&& mayCampaign(rules, state, now)");
    expect(direct).not.toBe(source);
    expect(lint(direct, path)).toEqual(["no-restricted-imports", "no-restricted-syntax"]);
    expect(lint(source, path)).toEqual([]);
    // rules.ts assembles the rules from their definitions: the one file allowed to name them all.
    expect(lint(direct, join(root, "impl/core/rules.ts"))).toEqual([]);
  });
});

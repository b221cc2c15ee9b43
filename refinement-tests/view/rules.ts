/**
 * Which of the core's rules (impl/core/rules.ts) a step applied, for the trace explorer: a
 * `ReplicaRules` object that calls the real (or a mutant's) rules and notes each call and its
 * result, and the doc paragraph of every rule, read from docs/ (each rule is found there by its
 * label or name, so a rule the docs lost fails `rules.test.ts` of this folder). The recording
 * rules make exactly the decisions of the rules they wrap.
 */
import { readFileSync } from "node:fs";
import type { ReplicaRules } from "../../impl/core/testing/index.ts";
import type { RuleDoc } from "./format.ts";

type RuleName = keyof ReplicaRules;

/**
 * Per rule: its label in the docs (L1..L6, R1, R4, R5, T2, S1, S2; empty for the rules the docs explain
 * without one) and the text that finds its paragraph there.
 */
export const ruleCatalog: Readonly<
  Record<RuleName, { readonly label: string; readonly file: string; readonly find: string }>
> = {
  compareBallots: { label: "", file: "docs/impl.md", find: "`becomeCandidate` takes the ballot" },
  quorumSize: { label: "", file: "docs/impl.md", find: "A slot is\nchosen when a quorum voted" },
  canPromise: { label: "L1", file: "docs/impl.md", find: "**L1, the grant (acceptor).**" },
  grantUntilFor: { label: "L1", file: "docs/impl.md", find: "**L1, the grant (acceptor).**" },
  restartWaitUntil: { label: "L4", file: "docs/impl.md", find: "**L4, the restart wait.**" },
  leaseFrom: { label: "L2", file: "docs/impl.md", find: "**L2, the leader's lease.**" },
  leaseExpiry: { label: "L2", file: "docs/impl.md", find: "**L2, the leader's lease.**" },
  grantCountedFrom: { label: "L2", file: "docs/impl.md", find: "**L2, the leader's lease.**" },
  canServeLeaseRead: { label: "L3", file: "docs/impl.md", find: "**L3, reads after phase 1.**" },
  yieldsToHigherBallot: {
    label: "L6",
    file: "docs/impl.md",
    find: "**L6, a self-grant dies with its campaign or leadership.**",
  },
  mayCampaign: { label: "L5", file: "docs/impl.md", find: "**L5, elections wait for grants.**" },
  mergeRevealed: {
    label: "",
    file: "docs/impl.md",
    find: "the candidate keeps, per slot, the vote with the highest ballot",
  },
  phase2aValue: { label: "", file: "docs/impl.md", find: "proposes every slot up to `phase1MaxSlot`" },
  learnableFromLeader: { label: "", file: "docs/impl.md", find: "`learnableFromLeader`" },
  checkpointDue: {
    label: "",
    file: "docs/impl.md",
    find: "At every slot that is a multiple of `checkpointIntervalSlots`",
  },
  nextToExecute: { label: "", file: "docs/impl.md", find: "the learner\nexecutes strictly in slot order" },
  sessionAnswer: { label: "", file: "docs/impl.md", find: "(rule `sessionAnswer`)" },
  executeCommand: { label: "", file: "docs/impl.md", find: "Execution goes through `serviceOf(app).apply`" },
  executeFeatures: { label: "", file: "docs/impl.md", find: "**Feature levels.**" },
  openSession: { label: "", file: "docs/impl.md", find: "**Sessions the service opens (level 3).**" },
  governsFrom: { label: "R1", file: "docs/impl.md", find: "(`governsFrom`, rule R1;" },
  retirement: { label: "R5", file: "docs/impl.md", find: "**Retired ids and retirement (R5).**" },
  promiseCoversFrom: { label: "T2", file: "docs/impl.md", find: "**Phase 1 over forgotten votes (rule T2).**" },
  promiseOmitsThrough: {
    label: "T3",
    file: "docs/impl.md",
    find: "**A Promise without the chosen values (rule T3).**",
  },
  mayHelpLeader: { label: "R4", file: "docs/impl.md", find: "**Removed replicas cannot disturb (R4).**" },
  snapshotDue: { label: "", file: "docs/impl.md", find: "**Snapshots.**" },
  readsAtRest: {
    label: "V4",
    file: "docs/impl.md",
    find: "**The store's values at rest (rule V4, `readsAtRest`).**",
  },
  transferUseful: { label: "S1", file: "docs/impl.md", find: "(rule S1," },
  verifySnapshot: { label: "S2", file: "docs/impl.md", find: "`verifySnapshot` (rule S2)" },
};

const root = new URL("../../", import.meta.url);

/** The section heading above `at` in a markdown text (`## 8. Lease rules, ...`), or the file's title. */
function sectionOf(text: string, at: number): string {
  const before = text.slice(0, at);
  const m = [...before.matchAll(/^#{1,3} (.+)$/gm)].pop();
  return m === undefined ? "" : m[1]!;
}

/** The paragraph (or list item) of `text` that holds position `at`, as one line. */
function paragraphAt(text: string, at: number): string {
  const start = Math.max(text.lastIndexOf("\n\n", at) + 2, text.lastIndexOf("\n- ", at) + 1, 0);
  let end = text.indexOf("\n\n", at);
  const item = text.indexOf("\n- ", at);
  if (item >= 0 && (end < 0 || item < end)) end = item;
  return text
    .slice(start, end < 0 ? text.length : end)
    .replace(/^- /, "")
    .replace(/\s*\n\s*/g, " ")
    .trim();
}

/** The doc of one rule; throws when the docs no longer hold it (a rule the docs lost). */
export function ruleDoc(name: RuleName, files: (file: string) => string = readDoc): RuleDoc {
  const entry = ruleCatalog[name];
  const text = files(entry.file);
  const at = text.indexOf(entry.find);
  if (at < 0)
    throw new Error(`rule ${name} (${entry.label}): ${entry.file} no longer contains ${JSON.stringify(entry.find)}`);
  const section = sectionOf(text, at);
  return {
    label: ruleKey(name),
    title: ruleKey(name) === name ? name : `${entry.label} ${name}`,
    where: `${entry.file}${section === "" ? "" : `, "${section}"`}`,
    text: paragraphAt(text, at),
  };
}

const docCache = new Map<string, string>();
function readDoc(file: string): string {
  let text = docCache.get(file);
  if (text === undefined) {
    text = readFileSync(new URL(file, root), "utf8");
    docCache.set(file, text);
  }
  return text;
}

/** A call of a rule: `L5 mayCampaign -> false`. */
export interface RuleCall {
  readonly name: RuleName;
  readonly result: unknown;
}

/** Results worth showing: booleans, small numbers, strings; anything else is summarized. */
function showResult(result: unknown): string {
  if (typeof result === "boolean") return String(result);
  if (typeof result === "number")
    return Number.isFinite(result) ? String(Math.round(result * 1000) / 1000) : String(result);
  if (typeof result === "string") return result.length > 40 ? `"${result.slice(0, 40)}..."` : `"${result}"`;
  if (result === undefined) return "none";
  if (Array.isArray(result)) return `${result.length} items`;
  return "a value";
}

/** The key a step's rule entry starts with: the label, or the name for a rule without one. */
export function ruleKey(name: RuleName): string {
  const label = ruleCatalog[name].label;
  return label === "" ? name : label;
}

/** The text of a step's rule list entry: `L5 mayCampaign -> false (x3)`. */
export function ruleText(name: RuleName, results: readonly unknown[], detail: boolean): string {
  const label = ruleCatalog[name].label === "" ? "" : `${ruleCatalog[name].label} `;
  if (!detail) return `${label}${name}`;
  const shown = [...new Set(results.map(showResult))];
  const more = results.length > 1 ? ` (x${results.length})` : "";
  return `${label}${name} -> ${shown.slice(0, 3).join(", ")}${shown.length > 3 ? ", ..." : ""}${more}`;
}

/** `rules` with every call noted in `calls` (the caller empties it between steps). */
export function recordingRules(rules: ReplicaRules, calls: RuleCall[]): ReplicaRules {
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(rules) as RuleName[]) {
    const f = rules[name] as (...args: unknown[]) => unknown;
    out[name] = (...args: unknown[]): unknown => {
      const result = f(...args);
      calls.push({ name, result });
      return result;
    };
  }
  return out as unknown as ReplicaRules;
}

/** The calls grouped per rule, in order of first call. */
export function groupCalls(calls: readonly RuleCall[]): Map<RuleName, unknown[]> {
  const grouped = new Map<RuleName, unknown[]>();
  for (const c of calls) {
    let list = grouped.get(c.name);
    if (list === undefined) grouped.set(c.name, (list = []));
    list.push(c.result);
  }
  return grouped;
}

/**
 * `npm run mutants:table -- FILE...`: the rule x engine x replicas x tuning table of
 * docs/refinement.md, from the JSON of `npm run mutants -- --json [--replicas N] [--tuning T]`
 * runs (one column pair per replica count and tuning, in the order given). A cell gives the CPU
 * seconds and the runs (random) or distinct states (explorer) to the catch, or "no" with what the
 * budget covered.
 */
import { readFileSync } from "node:fs";
import { huntEffort } from "../mutants/effort.ts";

interface Hunt {
  readonly engine: "explore" | "random";
  readonly caught: boolean;
  readonly cpuSeconds: number;
  readonly effort: number;
  /** Every state within the bounds expanded (explore; absent from runs made before it was reported). */
  readonly exhausted?: boolean;
}

interface Run {
  readonly replicas: number;
  readonly tuning: string;
  readonly load: number;
  readonly budgetSeconds: number;
  /** What the budget counts (runs before it counted CPU seconds counted wall seconds). */
  readonly budgetClock?: "cpu" | "wall";
  readonly mutants: readonly { readonly mutant: string; readonly hunts: readonly Hunt[] }[];
}

const usage = "usage: npm run mutants:table -- FILE... (each the output of npm run mutants -- --json)\n";
const files = process.argv.slice(2);
if (files.includes("--help") || files.includes("-h")) {
  process.stdout.write(usage);
  process.exit(0);
}
if (files.length === 0 || files.some((f) => f.startsWith("-"))) {
  process.stderr.write(usage);
  process.exit(2);
}

/** One file's run, or exit 2 naming the file and what is wrong with it. */
function readRun(file: string): Run {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    return refuse(file, `cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  let run: unknown;
  try {
    run = JSON.parse(text);
  } catch (error) {
    return refuse(file, `is not JSON (${(error as Error).message})`);
  }
  const r = run as Partial<Run> | null;
  if (typeof r !== "object" || r === null || typeof r.replicas !== "number" || typeof r.tuning !== "string")
    return refuse(file, "has no replicas and tuning: not the output of npm run mutants -- --json");
  if (!Array.isArray(r.mutants))
    return refuse(file, "has no list of mutants: not the output of npm run mutants -- --json");
  return run as Run;
}

function refuse(file: string, why: string): never {
  process.stderr.write(`mutants:table: ${file} ${why}\n`);
  process.exit(2);
}
/**
 * One column pair per replica count and tuning: a later file of the same replicas and tuning (a
 * re-run of some mutants, `--only NAME`, or of one engine, `--engine E`) replaces the hunts it
 * has (a mutant's hunt by the same engine), and its load and budget are listed beside the
 * column's.
 */
type Row = Run["mutants"][number];
const runs: Run[] = [];
const reruns = new Map<Run, Run[]>();
/** The engines the first file of each column hunted with. */
const firstEngines = new Map<Run, Set<string>>();
const enginesOf = (run: Run): Set<string> => new Set(run.mutants.flatMap((m) => m.hunts.map((h) => h.engine)));
/** The budget of a re-run's hunts (a cell that says "no" names what its own hunt had). */
const budgetOf = new Map<Hunt, number>();
/** `row` with the hunts of `again` in place of its hunts by the same engines. */
function replaced(row: Row, again: Row): Row {
  const kept = row.hunts.filter((h) => !again.hunts.some((x) => x.engine === h.engine));
  return { ...row, hunts: [...kept, ...again.hunts] };
}
for (const f of files) {
  const run = readRun(f);
  const i = runs.findIndex((r) => r.replicas === run.replicas && r.tuning === run.tuning);
  if (i < 0) {
    runs.push(run);
    firstEngines.set(run, enginesOf(run));
    continue;
  }
  const base = runs[i]!;
  const merged: Run = {
    ...base,
    mutants: [
      ...base.mutants.map((m) => {
        const again = run.mutants.find((x) => x.mutant === m.mutant);
        return again === undefined ? m : replaced(m, again);
      }),
      ...run.mutants.filter((m) => !base.mutants.some((x) => x.mutant === m.mutant)),
    ],
  };
  for (const m of run.mutants) for (const h of m.hunts) budgetOf.set(h, run.budgetSeconds);
  reruns.set(merged, [...(reruns.get(base) ?? []), run]);
  firstEngines.set(merged, firstEngines.get(base)!);
  runs[i] = merged;
}
const names = [...new Set(runs.flatMap((r) => r.mutants.map((m) => m.mutant)))];

/**
 * A hunt's cell. A search that missed says whether it exhausted its bounds (in the seconds it
 * took; an explorer hunt of an older run that stopped before its budget did so too, as nothing
 * else stops it) or ran out of budget. The random suite at restart-lower runs the own tuning's
 * scenarios (its draws include restarts whose clock reads lower): its column is the own one's.
 */
function cell(h: Hunt | undefined, budget: number, tuning: string, engine: string): string {
  if (h === undefined) return engine === "random" && tuning === "restart-lower" ? "same as own" : "-";
  if (h.caught) return `${h.cpuSeconds.toFixed(2)} s, ${huntEffort(h.engine, h.effort)}`;
  const exhausted = h.exhausted ?? (h.engine === "explore" && h.cpuSeconds < budget);
  if (exhausted) return `no (bounds exhausted: ${huntEffort(h.engine, h.effort)} in ${h.cpuSeconds.toFixed(2)} s)`;
  return `no (${huntEffort(h.engine, h.effort)} in ${budget} s)`;
}

const head = ["mutant", ...runs.flatMap((r) => [`${r.replicas}, ${r.tuning}: explorer`, "random"])];
const lines = [`| ${head.join(" | ")} |`, `|${head.map(() => " --- |").join("")}`];
for (const name of names) {
  const cells = runs.flatMap((r) => {
    const m = r.mutants.find((x) => x.mutant === name);
    return ["explore", "random"].map((e) => {
      const h = m?.hunts.find((x) => x.engine === e);
      return cell(h, (h === undefined ? undefined : budgetOf.get(h)) ?? r.budgetSeconds, r.tuning, e);
    });
  });
  lines.push(`| ${name} | ${cells.join(" | ")} |`);
}
lines.push("");
for (const r of runs) {
  const hunted = (e: string) => r.mutants.filter((m) => m.hunts.some((h) => h.engine === e)).length;
  const caught = (e: string) => r.mutants.filter((m) => m.hunts.some((h) => h.engine === e && h.caught)).length;
  const any = r.mutants.filter((m) => m.hunts.some((h) => h.caught)).length;
  const budget = (x: Run) => `${x.budgetSeconds} s ${x.budgetClock === "cpu" ? "CPU" : "wall"}`;
  // The re-runs, grouped by the engines they ran: which mutants, budgets and loads.
  // (A file of one engine that the column's first file did not run is that engine's hunt, not a re-run.)
  const groups = new Map<string, Run[]>();
  for (const x of reruns.get(r) ?? []) {
    const engines = [...enginesOf(x)].sort().join(",");
    groups.set(engines, [...(groups.get(engines) ?? []), x]);
  }
  const rerun = [...groups]
    .map(([engines, again]) => {
      const loads = again.map((x) => x.load);
      const names = [...new Set(again.flatMap((x) => x.mutants.map((m) => m.mutant)))];
      const which = names.length === r.mutants.length ? "every mutant" : names.join(", ");
      const by = engines === "explore" ? " by the explorer" : engines === "random" ? " by the random suite" : "";
      const rerunOf = engines.split(",").some((e) => firstEngines.get(r)!.has(e)) ? "re-run of " : "";
      const [low, high] = [Math.min(...loads).toFixed(1), Math.max(...loads).toFixed(1)];
      return `; ${rerunOf}${which}${by}: budget ${[...new Set(again.map(budget))].join(", ")} per hunt, load ${low === high ? low : `${low} to ${high}`}`;
    })
    .join("");
  const random =
    hunted("random") === 0 && r.tuning === "restart-lower"
      ? "random same as own"
      : `random ${caught("random")}/${hunted("random")}`;
  lines.push(
    `- ${r.replicas} replicas, tuning ${r.tuning}: explorer ${caught("explore")}/${hunted("explore")}, ${random}, some engine ${any}/${r.mutants.length} (budget ${budget(r)} per hunt, load ${r.load.toFixed(1)}${rerun})`,
  );
}
process.stdout.write(`${lines.join("\n")}\n`);

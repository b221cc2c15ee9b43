/**
 * `npm run mutants [-- --json] [--only NAME] [--seed S] [--budget-seconds T]`: the bug zoo's
 * report card. For each deliberately broken variant (refinement-tests/mutants/), run the ORDINARY
 * suite (safety, or liveness for liveness bugs; the same generator as `npm run check`, nothing
 * tuned per mutant) one generated run after another on this one thread until a check fails,
 * and print: mutant, caught or not, runs and seconds to catch, which check caught it.
 *
 * Exit status: 0 when every mutant is caught within the budget (default 60 s each), 1 otherwise.
 * Runs are deterministic: the number of runs to catch depends only on the seed; seconds depend
 * on the machine.
 */
import { Command, InvalidArgumentError } from "commander";
import { mutants } from "../mutants/index.ts";
import { runOne, runSeed } from "../suite.ts";

function int(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`expected an integer, got ${JSON.stringify(value)}`);
  return n;
}

const program = new Command()
  .name("mutants")
  .description("Run the ordinary suites against every broken variant of the protocol until each is caught.")
  .option("--json", "print the table as JSON", false)
  .option("--only <name>", "only this mutant")
  .option("--seed <s>", "campaign seed (run k uses the same seed as `npm run check` run k)", int, 1)
  .option("--budget-seconds <t>", "give up on a mutant after this long", int, 60)
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
  .configureOutput({ writeErr: (s) => process.stderr.write(s) });
program.parse();
const opts = program.opts<{ json: boolean; only?: string; seed: number; budgetSeconds: number }>();

interface Row {
  readonly mutant: string;
  readonly mode: string;
  readonly caught: boolean;
  readonly runs: number;
  readonly events: number;
  readonly seconds: number;
  readonly check: string | null;
  readonly expected: boolean;
  readonly message: string | null;
  readonly replay: string | null;
}

const selected = mutants.filter((m) => opts.only === undefined || m.name === opts.only);
if (selected.length === 0) {
  process.stderr.write(`mutants: no mutant named ${opts.only}\n`);
  process.exit(2);
}

const rows: Row[] = [];
for (const m of selected) {
  const liveness = m.mode === "liveness";
  const started = performance.now();
  let runs = 0;
  let events = 0;
  let row: Row | null = null;
  while ((performance.now() - started) / 1000 < opts.budgetSeconds) {
    const seed = runSeed(opts.seed, runs);
    const one = runOne(seed, { liveness, step: m.step, shrink: false });
    runs++;
    events += one.first.events;
    if (one.failed === null) continue;
    const check = one.failed.failure.check;
    row = {
      mutant: m.name,
      mode: m.mode,
      caught: true,
      runs,
      events,
      seconds: (performance.now() - started) / 1000,
      check,
      expected: m.expectedCatch.some((e) => check.startsWith(e)),
      message: one.failed.failure.message,
      replay: `npm run check -- --runs ${runs} --seed ${opts.seed}${liveness ? " --liveness" : ""} --mutant ${m.name} --workers 1`,
    };
    break;
  }
  row ??= {
    mutant: m.name,
    mode: m.mode,
    caught: false,
    runs,
    events,
    seconds: (performance.now() - started) / 1000,
    check: null,
    expected: false,
    message: null,
    replay: null,
  };
  rows.push(row);
  if (!opts.json)
    process.stderr.write(
      `${row.mutant}: ${row.caught ? `caught by ${row.check} after ${row.runs} runs (${row.seconds.toFixed(1)} s)` : "NOT CAUGHT"}\n`,
    );
}

const caughtSeconds = rows
  .filter((r) => r.caught)
  .map((r) => r.seconds)
  .sort((a, b) => a - b);
const median = caughtSeconds.length === 0 ? null : caughtSeconds[Math.floor((caughtSeconds.length - 1) / 2)]!;
const allCaught = rows.every((r) => r.caught);

if (opts.json) {
  process.stdout.write(
    `${JSON.stringify({ seed: opts.seed, budgetSeconds: opts.budgetSeconds, allCaught, medianSeconds: median, mutants: rows }, null, 2)}\n`,
  );
} else {
  const header = ["mutant", "mode", "caught", "runs", "seconds", "caught by"];
  const table = rows.map((r) => [
    r.mutant,
    r.mode,
    r.caught ? "yes" : "NO",
    String(r.runs),
    r.seconds.toFixed(1),
    r.check === null ? "-" : `${r.check}${r.expected ? "" : " (unexpected)"}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (i === 3 || i === 4 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ");
  process.stdout.write(`${[line(header), line(widths.map((w) => "-".repeat(w))), ...table.map(line)].join("\n")}\n`);
  process.stdout.write(
    `\n${rows.filter((r) => r.caught).length}/${rows.length} caught; median ${median === null ? "-" : median.toFixed(1)} s to catch on one core (seed ${opts.seed})\n`,
  );
}
process.exit(allCaught ? 0 : 1);

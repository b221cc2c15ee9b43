/**
 * `check-history FILE... | DIR [--json]`: decide whether client histories are linearizable
 * (docs/history-format.md). Reads this project's JSON format, Jepsen's EDN histories and
 * Porcupine's logs (impl/history/importers.ts); a directory stands for the history files in
 * it. One line per history, then a summary; with `--json`, one JSON object per line. Start-up
 * is paid once: every history is checked in this process, on worker threads when the work is
 * large enough to repay them.
 *
 * Exit status: 0 every history linearizable; 1 some history not linearizable; 2 bad arguments
 * or some file unreadable or malformed (and none not linearizable); 3 some history undecided
 * within the step budget (and nothing worse).
 */
import { availableParallelism } from "node:os";
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, statSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { kvSees, loadHistory, modelNamed, type LoadedHistory } from "../history/history.ts";
import type { Minimised } from "../history/minimise.ts";
import { failedKeys, renderReport } from "../history/report.ts";
import { detectFormat, importHistory } from "../history/importers.ts";
import {
  checkLinearizable,
  noPartition,
  type LinearizabilityResult,
  type Operation,
} from "../history/linearizability.ts";
import type { KvInput, KvOutput } from "../../spec/kv.ts";
import type { Options, Output } from "./check-history-command.ts";
import { checkOnWorkers, workersAvailable } from "./history-pool.ts";
import { historyWholeBytesMax, readJsonStreamed } from "./history-file.ts";

/**
 * V8's tier-up budget while checking: how much bytecode a function runs (weighted by size)
 * between V8's checks for whether to give it to the optimizing compiler, about 15 times V8's
 * default of 67,584. The optimizing compiler runs on a thread of its own whose CPU counts: a
 * batch of small histories (100 of about 80 operations) spent more CPU compiling a dozen
 * functions that ran a few thousand times each than running them. With this budget only code
 * that runs long enough to repay its compilation is compiled; on long searches the search
 * loop is still compiled within milliseconds (docs/history-format.md, "Limits, measured").
 * Verdicts never depend on it.
 */
export const checkingInterruptBudget = 1_000_000;

/**
 * Set V8's tier-up budget for checking ({@link checkingInterruptBudget}), as `check-history`
 * does before it reads a file. V8 reads the flag each time it resets a function's budget, so
 * setting it at run time is enough; it applies to the whole process, worker threads included.
 */
export function tierUpForChecking(): void {
  setFlagsFromString(`--interrupt-budget=${checkingInterruptBudget}`);
}

/** Files whose names end so are read from a directory. */
const historyExtensions = [".json", ".edn", ".log", ".txt"];

export { checkHistoryCommand, checkHistoryMain, reportDirDefault, type Output } from "./check-history-command.ts";

/** The history files named by `paths` (directories expanded, sorted), or an error per path. */
function expand(paths: readonly string[]): { files: string[]; errors: { file: string; error: string }[] } {
  const files: string[] = [];
  const errors: { file: string; error: string }[] = [];
  for (const path of paths) {
    try {
      if (statSync(path).isDirectory()) {
        const inside = readdirSync(path)
          .filter((name) => historyExtensions.some((ext) => name.endsWith(ext)))
          .sort();
        if (inside.length === 0)
          errors.push({ file: path, error: `no history files (${historyExtensions.join(", ")})` });
        files.push(...inside.map((name) => join(path, name)));
      } else files.push(path);
    } catch (error) {
      errors.push({ file: path, error: `cannot read: ${(error as Error).message}` });
    }
  }
  return { files, errors };
}

/** The first bytes of `file` as text (enough to tell its format). */
function head(file: string): string {
  const fd = openSync(file, "r");
  try {
    const buf = Buffer.alloc(64 * 1024);
    return buf.toString("utf8", 0, readSync(fd, buf, 0, buf.length, 0));
  } finally {
    closeSync(fd);
  }
}

/**
 * Read, import and decode one history file; an Error of one line when it cannot. A history of
 * this project's format longer than `opts.readWholeBytesMax` is read streamed, an operation at a
 * time (impl/runtime/history-file.ts): its whole text can be longer than the longest string.
 */
function load(file: string, opts: Options): LoadedHistory {
  let size: number;
  try {
    size = statSync(file).size;
  } catch (error) {
    throw new Error(`cannot read: ${(error as Error).message}`);
  }
  if (size > (opts.readWholeBytesMax ?? historyWholeBytesMax)) {
    const format = opts.format === "auto" ? detectFormat(head(file)) : opts.format;
    if (format === "paxos-lease") {
      let document: unknown;
      try {
        document = readJsonStreamed(file);
      } catch (error) {
        throw new Error(`not JSON: ${(error as Error).message}`);
      }
      return loadHistory(document, opts.model);
    }
  }
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new Error(`cannot read: ${(error as Error).message}`);
  }
  const format = opts.format === "auto" ? detectFormat(text) : opts.format;
  let document: unknown;
  try {
    document = importHistory(text, format, { failedCas: opts.failedCas });
  } catch (error) {
    throw new Error(format === "paxos-lease" ? `not JSON: ${(error as Error).message}` : (error as Error).message);
  }
  return loadHistory(document, opts.model);
}

type Result = LinearizabilityResult<KvInput, KvOutput>;

/** Worth worker threads: a large history, or many of them. */
function workersFor(histories: readonly LoadedHistory[], asked: number | undefined): number {
  if (asked !== undefined) return asked;
  const ops = histories.reduce((sum, h) => sum + h.operations.length, 0);
  return ops >= 20_000 && workersAvailable() ? Math.max(1, availableParallelism()) : 1;
}

/** Run the command on `paths` with the parsed options `opts`; resolves to the exit status. */
export async function run(paths: readonly string[], opts: Options, io: Output): Promise<number> {
  const started = performance.now();
  const { files, errors } = expand(paths);
  const loaded: { file: string; history: LoadedHistory }[] = [];
  for (const file of files) {
    try {
      loaded.push({ file, history: load(file, opts) });
    } catch (error) {
      errors.push({ file, error: (error as Error).message });
    }
  }
  const workers = workersFor(
    loaded.map((l) => l.history),
    opts.workers,
  );
  const checkStarted = performance.now();
  const results: Result[] =
    workers > 1
      ? await checkOnWorkers(
          loaded.map((l) => l.history),
          { workers, stepsMaxPerPartition: opts.stepsMax, allKeys: opts.allKeys },
        )
      : loaded.map((l) =>
          checkLinearizable(modelNamed(l.history.model), l.history.operations, {
            stepsMaxPerPartition: opts.stepsMax,
            allKeys: opts.allKeys,
          }),
        );
  const checkSeconds = (performance.now() - checkStarted) / 1000;
  const explained = loaded.map((l, i) => explain(l.file, l.history, results[i]!, opts, i));
  for (const e of errors) {
    if (opts.json) io.out(`${JSON.stringify({ file: e.file, verdict: "error", error: e.error })}\n`);
    else io.err(`check-history: ${e.file}: ${e.error}\n`);
  }
  loaded.forEach((l, i) =>
    io.out(
      opts.json
        ? `${JSON.stringify(report(l.file, l.history, results[i]!, explained[i]!))}\n`
        : text(l.file, l.history, results[i]!, explained[i]!),
    ),
  );
  const count = (v: string): number => results.filter((r) => r.verdict === v).length;
  const summary = {
    summary: true,
    histories: files.length + errors.filter((e) => !files.includes(e.file)).length,
    linearizable: count("linearizable"),
    notLinearizable: count("not-linearizable"),
    unknown: count("unknown"),
    errors: errors.length,
    operationsChecked: results.reduce((sum, r) => sum + r.operations, 0),
    workers,
    checkSeconds,
    seconds: (performance.now() - started) / 1000,
  };
  if (loaded.length + errors.length > 1) {
    io.out(
      opts.json
        ? `${JSON.stringify(summary)}\n`
        : `\n${summary.histories} histories: ${summary.linearizable} linearizable, ${summary.notLinearizable} not linearizable, ${summary.unknown} undecided, ${summary.errors} unreadable; ${summary.operationsChecked} operations checked in ${checkSeconds.toFixed(3)} s (${workers} thread${workers === 1 ? "" : "s"}), ${summary.seconds.toFixed(3)} s in all\n`,
    );
  }
  if (summary.notLinearizable > 0) return 1;
  if (summary.errors > 0) return 2;
  return summary.unknown > 0 ? 3 : 0;
}

function opJson(op: Operation<KvInput, KvOutput>) {
  return {
    id: op.id,
    client: op.client,
    input: op.input,
    output: op.output ?? null,
    invoke: op.invoke,
    complete: op.complete === Infinity ? null : op.complete,
  };
}

/** The minimised sub-history of each failed key, and the HTML page written. */
interface Explanation {
  readonly minimised: ReadonlyMap<string, Minimised<KvInput, KvOutput>>;
  readonly page?: string;
}

/** Minimise each failed key and write the HTML report (for a history that is not linearizable). */
function explain(file: string, history: LoadedHistory, result: Result, opts: Options, index: number): Explanation {
  const { keys, minimised } = failedKeys(modelNamed(history.model), history.operations, result, { sees: kvSees });
  if (keys.length === 0 || opts.report === false) return { minimised };
  mkdirSync(opts.report, { recursive: true });
  const page = join(opts.report, `${String(index).padStart(3, "0")}-${basename(file).replace(/[^\w.-]/g, "_")}.html`);
  writeFileSync(
    page,
    renderReport({
      title: file,
      model: history.model,
      summary: `${result.operations} operations checked over ${result.partitions.length} keys; ${keys.length} not linearizable.`,
      keys,
    }),
  );
  return { minimised, page };
}

/** What was checked and what was not, by kind, over the keys searched. */
function breakdown(history: LoadedHistory, result: Result) {
  const model = modelNamed(history.model);
  const searched = new Set(result.partitions.map((p) => p.partition));
  const counts = { unknownOutcome: 0, unrecordedOutput: 0, unknownReads: 0, unrecordedReads: 0 };
  for (const o of history.operations) {
    if (o.output === undefined && model.readOnly(o.input)) {
      if (o.complete === Infinity) counts.unknownReads++;
      else counts.unrecordedReads++;
      continue;
    }
    if (!searched.has(model.partition(o.input) ?? noPartition)) continue;
    if (o.complete === Infinity) counts.unknownOutcome++;
    else if (o.output === undefined) counts.unrecordedOutput++;
  }
  return counts;
}

/** The JSON object of one history's result. */
function report(file: string, history: LoadedHistory, result: Result, explanation: Explanation) {
  const counts = breakdown(history, result);
  return {
    file,
    model: history.model,
    verdict: result.verdict,
    operations: history.operations.length + history.failed,
    checked: result.operations,
    checkedWithUnknownOutcome: counts.unknownOutcome,
    checkedWithoutRecordedOutput: counts.unrecordedOutput,
    notChecked: {
      failed: history.failed,
      readsWithUnknownOutcome: counts.unknownReads,
      readsWithoutRecordedOutput: counts.unrecordedReads,
      notSearched: result.notSearched.operations,
    },
    keys: result.partitions.map((p) => ({
      key: p.partition,
      checked: p.operations,
      verdict: p.verdict,
      steps: p.steps,
    })),
    keysNotSearched: result.notSearched.partitions,
    steps: result.steps,
    violations: result.partitions
      .filter((p) => p.verdict !== "linearizable")
      .map((p) => ({
        key: p.partition,
        verdict: p.verdict,
        operations: p.operations,
        longestPrefix: p.longestPrefix?.map((op) => op.id),
        stuck: p.stuck?.map(opJson),
        refutation:
          p.refutation === undefined
            ? undefined
            : { reason: p.refutation.reason, operations: p.refutation.operations.map(opJson) },
        minimised: explanation.minimised.get(p.partition)?.operations.map(opJson),
      })),
    ...(explanation.page === undefined ? {} : { report: explanation.page }),
  };
}

function describe(op: Operation<unknown, unknown>): string {
  const done =
    op.complete === Infinity
      ? "unknown outcome"
      : op.output === undefined
        ? `completed at ${op.complete}, output not recorded`
        : `-> ${JSON.stringify(op.output)} at ${op.complete}`;
  return `#${op.id} ${op.client} ${JSON.stringify(op.input)} invoked ${op.invoke} ${done}`;
}

/** The text report of one history. */
function text(file: string, history: LoadedHistory, result: Result, explanation: Explanation): string {
  const r = report(file, history, result, explanation);
  const notSearched =
    result.notSearched.partitions > 0
      ? `, ${result.notSearched.operations} on ${result.notSearched.partitions} keys not searched after the first key that is not linearizable (--all-keys searches them)`
      : "";
  const n = r.notChecked;
  let out = `${file}: ${result.verdict} (model ${history.model}; ${r.checked} operations checked over ${result.partitions.length} keys, ${r.checkedWithUnknownOutcome} of them with unknown outcome, ${r.checkedWithoutRecordedOutput} completed without a recorded output; not checked: ${n.failed} failed (never executed), ${n.readsWithUnknownOutcome + n.readsWithoutRecordedOutput} reads with no output (constrain nothing)${notSearched}; ${result.steps} search steps)\n`;
  for (const p of result.partitions.filter((x) => x.verdict !== "linearizable")) {
    out += `  key ${JSON.stringify(p.partition)}: ${p.verdict} after ${p.steps} steps over ${p.operations} operations\n`;
    if (p.refutation !== undefined) {
      out += `    refuted without a full search: ${p.refutation.reason}:\n`;
      for (const op of p.refutation.operations) out += `      ${describe(op)}\n`;
      continue;
    }
    if (p.longestPrefix === undefined) continue;
    out += `    longest linearizable prefix (${p.longestPrefix.length} operations), its last ones:\n`;
    for (const op of p.longestPrefix.slice(-10)) out += `      ${describe(op)}\n`;
    out += `    none of these can come next:\n`;
    for (const op of p.stuck ?? []) out += `      ${describe(op)}\n`;
    const small = explanation.minimised.get(p.partition);
    if (small !== undefined) {
      out += `    the smallest sub-history still not linearizable (${small.operations.length} operations${small.minimal ? "" : ", perhaps not the smallest: the budget ran out"}):\n`;
      for (const op of small.operations) out += `      ${describe(op)}\n`;
    }
  }
  if (explanation.page !== undefined) out += `  report: ${explanation.page}\n`;
  return out;
}

// Run as a script only when this very file is the script (not from the CLI's bundle). Not a
// top-level await: the command loads this module when it runs, which must have finished loading.
if (process.argv[1]?.endsWith("check-history.ts") === true && import.meta.filename === process.argv[1]) {
  void import("./check-history-command.ts")
    .then(({ checkHistoryMain }) =>
      checkHistoryMain(process.argv.slice(2), {
        out: (t) => process.stdout.write(t),
        err: (t) => process.stderr.write(t),
      }),
    )
    .then((status) => (process.exitCode = status));
}

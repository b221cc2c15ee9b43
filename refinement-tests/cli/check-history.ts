/**
 * `npm run check-history -- FILE --model kv|register [--json] [--steps-max N]`: decide
 * whether a client history (docs/history-format.md) is linearizable. Exit status: 0
 * linearizable, 1 not linearizable, 2 bad arguments or a malformed file, 3 undecided within
 * the step budget.
 */
import { readFileSync } from "node:fs";
import { Command, InvalidArgumentError } from "commander";
import { checkLinearizable, type Operation } from "../../proofs/linearizability.ts";
import { loadHistory, modelNamed, type LoadedHistory, type ModelName } from "../../proofs/history.ts";

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new InvalidArgumentError(`expected a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

function describe(op: Operation<unknown, unknown>): string {
  const done = op.complete === Infinity ? "unknown outcome" : `-> ${JSON.stringify(op.output)} at ${op.complete}`;
  return `#${op.id} ${op.client} ${JSON.stringify(op.input)} invoked ${op.invoke} ${done}`;
}

/** Where the command writes; the CLI passes the process's streams, tests capture them. */
export interface Output {
  out(text: string): void;
  err(text: string): void;
}

class Exit extends Error {
  constructor(readonly status: number) {
    super(`exit ${status}`);
  }
}

/** Run the command on `argv` (the arguments after the program name); returns the exit status. */
export function checkHistoryMain(argv: readonly string[], io: Output): number {
  try {
    return run(argv, io);
  } catch (error) {
    if (error instanceof Exit) return error.status;
    throw error;
  }
}

function run(argv: readonly string[], io: Output): number {
  const program = new Command()
    .name("check-history")
    .description("Decide whether a client history is linearizable (Wing-Gong search with Lowe's memoization, per key).")
    .argument("<file>", "history file in the paxos-lease/history@1 JSON format (docs/history-format.md)")
    .option("--model <model>", "sequential model: kv or register", "kv")
    .option("--json", "print the result as JSON", false)
    .option("--steps-max <n>", "search steps allowed per key before answering 'unknown'", positiveInt, 20_000_000)
    .exitOverride((err) => {
      throw new Exit(err.exitCode === 0 ? 0 : 2);
    })
    .configureOutput({ writeOut: (t) => io.out(t), writeErr: (t) => io.err(t) });
  program.parse(argv, { from: "user" });
  const file = program.args[0]!;
  const opts = program.opts<{ model: string; json: boolean; stepsMax: number }>();
  const fail = (message: string): never => {
    io.err(`check-history: ${message}\n`);
    throw new Exit(2);
  };

  if (opts.model !== "kv" && opts.model !== "register")
    fail(`--model must be kv or register, not ${JSON.stringify(opts.model)}`);
  let text = "";
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    fail(`cannot read ${file}: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    fail(`${file} is not JSON: ${(error as Error).message}`);
  }
  let history: LoadedHistory | undefined;
  try {
    history = loadHistory(json, opts.model as ModelName);
  } catch (error) {
    fail(`${file}: ${(error as Error).message}`);
  }
  if (history === undefined) return 2;

  const started = performance.now();
  const result = checkLinearizable(modelNamed(history.model), history.operations, {
    stepsMaxPerPartition: opts.stepsMax,
  });
  const seconds = (performance.now() - started) / 1000;
  const bad = result.partitions.filter((p) => p.verdict !== "linearizable");

  if (opts.json) {
    io.out(
      JSON.stringify(
        {
          file,
          model: history.model,
          verdict: result.verdict,
          operations: history.operations.length + history.failed,
          checked: result.operations,
          unknownOutcomeChecked: history.unknown - result.unconstrained,
          notChecked: { failed: history.failed, unknownReadOnly: result.unconstrained },
          keys: result.partitions.map((p) => ({ key: p.partition, checked: p.operations, verdict: p.verdict })),
          steps: result.steps,
          seconds,
          violations: bad.map((p) => ({
            key: p.partition,
            verdict: p.verdict,
            operations: p.operations,
            longestPrefix: p.longestPrefix?.map((op) => op.id),
            stuck: p.stuck?.map((op) => ({
              id: op.id,
              client: op.client,
              input: op.input,
              output: op.output,
              invoke: op.invoke,
              complete: op.complete === Infinity ? null : op.complete,
            })),
          })),
        },
        null,
        2,
      ) + "\n",
    );
  } else {
    io.out(
      `${file}: ${result.verdict} (model ${history.model}; ${result.operations} operations checked, ${history.unknown - result.unconstrained} of them with unknown outcome; not checked: ${history.failed} failed (never executed), ${result.unconstrained} reads with unknown outcome (constrain nothing); ${result.partitions.length} keys; ${result.steps} search steps; ${seconds.toFixed(3)} s)\n`,
    );
    for (const p of bad) {
      io.out(
        `\nkey ${JSON.stringify(p.partition)}: ${p.verdict} after ${p.steps} steps over ${p.operations} operations\n`,
      );
      if (p.longestPrefix !== undefined) {
        io.out(`  longest linearizable prefix (${p.longestPrefix.length} operations):\n`);
        for (const op of p.longestPrefix.slice(-10)) io.out(`    ${describe(op)}\n`);
        io.out(`  none of these can come next:\n`);
        for (const op of p.stuck ?? []) io.out(`    ${describe(op)}\n`);
      }
    }
  }
  return result.verdict === "linearizable" ? 0 : result.verdict === "not-linearizable" ? 1 : 3;
}

if (process.argv[1] !== undefined && import.meta.filename === process.argv[1]) {
  process.exitCode = checkHistoryMain(process.argv.slice(2), {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
  });
}

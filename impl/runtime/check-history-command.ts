/**
 * The `check-history` command's arguments, apart from the checker it runs
 * (impl/runtime/check-history.ts, loaded when the command runs): the service's CLI lists the
 * command among its own without loading the checker and the schema library every other command
 * does without.
 */
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import type { ModelName } from "../history/history.ts";
import type { FailedCas, SourceFormat } from "../history/importers.ts";

/**
 * Search steps allowed per key before the checker answers "unknown" (impl/history/linearizability.ts checks it is its
 * own default).
 */
export const stepsMaxDefault = 20_000_000;

/** Where the command writes; the CLI passes the process's streams, tests capture them. */
export interface Output {
  out(text: string): void;
  err(text: string): void;
}

export interface Options {
  readonly model?: ModelName;
  readonly format: SourceFormat | "auto";
  readonly failedCas: FailedCas;
  readonly json: boolean;
  readonly stepsMax: number;
  readonly allKeys: boolean;
  readonly workers?: number;
  /** Where HTML reports of non-linearizable histories go; false: none. */
  readonly report: string | false;
  /**
   * Histories of this project's format longer than this many bytes are read streamed, an operation
   * at a time (impl/runtime/history-file.ts). Default `historyWholeBytesMax`; tests lower it.
   */
  readonly readWholeBytesMax?: number;
}

/** The default folder of HTML reports. */
export const reportDirDefault = join(tmpdir(), "paxos-lease-check-history");

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new InvalidArgumentError(`expected a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

/**
 * The `check-history` command, for the service's CLI (`paxos-lease check-history`) and for
 * `npm run check-history`: one definition of its arguments. `done` receives the exit status.
 */
export function checkHistoryCommand(io: Output, done: (status: number) => void): Command {
  return (
    new Command("check-history")
      .description(
        "Decide whether client histories are linearizable (docs/history-format.md); exit 0 yes, 1 no, 2 bad input, 3 undecided.",
      )
      .argument("<paths...>", "history files, or directories of them (.json, .edn, .log, .txt)")
      .addOption(
        new Option("--model <model>", "sequential model (default: the file's model, else kv)").choices([
          "kv",
          "register",
        ]),
      )
      .addOption(
        new Option("--format <format>", "input format")
          .choices(["auto", "paxos-lease", "jepsen-edn", "porcupine-log"])
          .default("auto"),
      )
      .addOption(
        new Option("--failed-cas <meaning>", "what a Jepsen :fail of a :cas means")
          .choices(["compare-failed", "not-executed"])
          .default("compare-failed"),
      )
      .option("--json", "one JSON object per history (one per line), then a summary line for several", false)
      .option(
        "--steps-max <n>",
        "search steps allowed per key before answering 'unknown'",
        positiveInt,
        stepsMaxDefault,
      )
      .option("--all-keys", "search every key, not only up to the first that is not linearizable", false)
      .option("--workers <n>", "worker threads (default: the cores, when the histories are large)", positiveInt)
      .option("--report <dir>", "write an HTML report of each history that is not linearizable here", reportDirDefault)
      .option("--no-report", "write no HTML report")
      .exitOverride()
      .configureOutput({ writeOut: (t) => io.out(t), writeErr: (t) => io.err(t) })
      // optsWithGlobals: inside the service's CLI, --json is also the program's own option.
      .action(async (paths: string[], _opts: unknown, command: Command) => {
        const { run, tierUpForChecking } = await import("./check-history.ts");
        tierUpForChecking();
        done(await run(paths, command.optsWithGlobals<Options>(), io));
      })
  );
}

/** Run the command on `argv` (the arguments after the program name); resolves to the exit status. */
export async function checkHistoryMain(argv: readonly string[], io: Output): Promise<number> {
  let status = 2;
  try {
    await checkHistoryCommand(io, (s) => (status = s)).parseAsync(argv, { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    throw error;
  }
  return status;
}

/**
 * What the two explorers' command lines share (`npm run explore -- --spec ...`, explore.ts, and
 * `npm run explore -- --impl ...`, explore-impl.ts): the Io they write through, flag parsing with
 * usage errors that exit 2, progress on stderr at most once a second, and the report's rows.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";

/** Where the CLI writes and how it reads time: injectable so tests run it in-process. */
export interface Io {
  out(line: string): void;
  err(line: string): void;
  /** Milliseconds, monotonic. */
  now(): number;
  /** CPU seconds used by this process so far (optional: reported when given). */
  cpu?(): number;
  /** Write a file (the trace view of a violation); default: nowhere. */
  writeFile?(file: string, text: string): void;
}

/** A mistake on the command line, said in one sentence for the user (exit code 2). */
export class UsageError extends Error {}

/** The flags of `argv` (strict: an unknown flag or a positional argument is a UsageError). */
export function parseFlags(
  argv: readonly string[],
  options: NonNullable<ParseArgsConfig["options"]>,
): Record<string, string | boolean | undefined> {
  try {
    const parsed = parseArgs({ args: [...argv], strict: true, allowPositionals: false, options });
    return parsed.values as Record<string, string | boolean | undefined>;
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
}

/** The integer `text` of `--flag`, between min and max. */
export function integerFlag(flag: string, text: string, min: number, max: number): number {
  if (!/^-?\d+$/.test(text)) throw new UsageError(`--${flag} must be an integer, got '${text}'`);
  const n = Number(text);
  if (n < min || n > max) throw new UsageError(`--${flag} must be between ${min} and ${max}, got ${n}`);
  return n;
}

/**
 * `body()`, or undefined when it throws a UsageError (or, with `alsoUsage`, another error that
 * carries a user's mistake): then `explore: MESSAGE` and the hint to run `help` are printed, and
 * the caller exits with 2.
 */
export function catchUsage<T>(
  io: Io,
  help: string,
  body: () => T,
  alsoUsage: (e: unknown) => boolean = () => false,
): T | undefined {
  try {
    return body();
  } catch (e) {
    if (!(e instanceof UsageError) && !alsoUsage(e)) throw e;
    io.err(`explore: ${(e as Error).message}`);
    io.err(`Try '${help}'.`);
    return undefined;
  }
}

/** A progress callback that prints `line(p, seconds so far)` to stderr at most once a second. */
export function progressPrinter<P>(io: Io, line: (p: P, seconds: number) => string): (p: P) => void {
  const started = io.now();
  let last = started;
  return (p) => {
    const t = io.now();
    if (t - last < 1000) return;
    last = t;
    io.err(`explore: ${line(p, (t - started) / 1000)}`);
  };
}

/** Distinct states per second, rounded. */
export function perSecond(states: number, seconds: number): number {
  return Math.round(states / Math.max(seconds, 1e-9));
}

/** The report's figures, one `label  value` row each, aligned. */
export function printRows(io: Io, rows: readonly (readonly [string, string])[]): void {
  for (const [label, value] of rows) io.out(`  ${label.padEnd(20)}${value}`);
}

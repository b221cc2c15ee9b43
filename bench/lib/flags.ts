/**
 * The flags of a bench script, read one way everywhere: `--help` prints the script's usage and
 * exits 0; an unknown flag, a missing value or a stray argument prints what was wrong and the
 * usage and exits 2 (as a bad `npm run` line should: nothing is measured).
 */
import { parseArgs, type ParseArgsConfig } from "node:util";

type Options = NonNullable<ParseArgsConfig["options"]>;
type WithHelp<O extends Options> = O & { help: { type: "boolean"; default: false } };
/** The values parsed for `options` (and `help`), typed as `parseArgs` types them. */
export type FlagValues<O extends Options> = ReturnType<
  typeof parseArgs<{ options: WithHelp<O>; strict: true; allowPositionals: false }>
>["values"];

/** What the flags of `argv` say: run with these values, print the help, or refuse them. */
export function readFlags<const O extends Options>(
  options: O,
  argv: readonly string[],
):
  | { readonly kind: "run"; readonly values: FlagValues<O> }
  | { readonly kind: "help" }
  | { readonly kind: "error"; readonly message: string } {
  let values: FlagValues<O>;
  try {
    values = parseArgs({
      args: [...argv],
      options: { ...options, help: { type: "boolean", default: false } },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    return { kind: "error", message: error instanceof Error ? error.message : String(error) };
  }
  return (values as { readonly help?: boolean }).help === true ? { kind: "help" } : { kind: "run", values };
}

/**
 * The values of this process's flags for `options` (a `--help` flag is added); on `--help`, print
 * `usage` and exit 0; on a bad flag, print the error and `usage` to stderr and exit 2.
 */
export function benchFlags<const O extends Options>(
  options: O,
  usage: string,
  argv: readonly string[] = process.argv.slice(2),
): FlagValues<O> {
  const read = readFlags(options, argv);
  const text = usage.endsWith("\n") ? usage : `${usage}\n`;
  if (read.kind === "help") {
    process.stdout.write(text);
    process.exit(0);
  }
  if (read.kind === "error") {
    process.stderr.write(`${read.message}\n\n${text}`);
    process.exit(2);
  }
  return read.values;
}

/** A flag's value is wrong: print `message` and `usage` to stderr and exit 2. */
export function refuseFlags(message: string, usage: string): never {
  process.stderr.write(`${message}\n\n${usage.endsWith("\n") ? usage : `${usage}\n`}`);
  process.exit(2);
}

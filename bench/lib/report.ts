/**
 * What a bench script prints beside its numbers, one way everywhere: progress lines on stderr
 * (stdout stays for the result, so `--json` output can be piped), and the machine's load average,
 * which every number measured here is reported with (a number measured under load says little
 * without it).
 */
import os from "node:os";

/**
 * The load averages over 1, 5 and 15 minutes, each with `digits` decimals, separated by spaces
 * ("0.52 0.61 0.70"). Default 2 decimals.
 */
export function loadAverage(digits = 2): string {
  return os
    .loadavg()
    .map((l) => l.toFixed(digits))
    .join(" ");
}

/** A printer of progress lines for the script `name`: each line goes to stderr as "[name] line". */
export function progressOf(name: string): (line: string) => void {
  return (line) => void process.stderr.write(`[${name}] ${line}\n`);
}

/**
 * Porcupine (github.com/anishathalye/porcupine, Go) run beside paxos-lease's checker on the
 * same Jepsen etcd logs, measured the same way. Porcupine is never part of this repository:
 * the bench runs a binary the user builds, a small driver around Porcupine's `CheckEvents`
 * with the etcd model and the Jepsen log parser of Porcupine's own tests, which
 *
 *   - takes log files as arguments and parses all of them before checking any;
 *   - prints one line per file, `FILE<TAB>true|false<TAB>...` (true: linearizable);
 *   - checks all the files PORCUPINE_REPEAT times (an environment variable; default 1) and
 *     after each round prints `round<TAB>N<TAB>wall W ms<TAB>cpu C ms`, C being the CPU time
 *     of its whole process over that round's checking (getrusage: every thread, Go's
 *     collector included), exactly what lib/history-rounds.ts reports for ours.
 *
 * A driver that prints no round lines is still compared on verdicts; its times are then the
 * wall time of its `total` line, and are labelled so.
 */
import { execFileSync } from "node:child_process";

/** One run of the driver: verdicts by file, and per round the checking's times. */
export interface PorcupineRun {
  readonly verdicts: ReadonlyMap<string, boolean>;
  /** Per round; `cpuMs` is null when the driver reports only wall time. */
  readonly rounds: readonly { readonly cpuMs: number | null; readonly wallMs: number }[];
}

/** Run the driver once over `files`, checking them `rounds` times. Throws when its output is not understood. */
export function runPorcupine(binary: string, files: readonly string[], rounds: number): PorcupineRun {
  const output = execFileSync(binary, files, {
    encoding: "utf8",
    env: { ...process.env, PORCUPINE_REPEAT: String(rounds) },
    maxBuffer: 64 * 1024 * 1024,
  });
  const verdicts = new Map<string, boolean>();
  const measured: { cpuMs: number | null; wallMs: number }[] = [];
  let totalWallMs: number | null = null;
  const wanted = new Set(files);
  for (const line of output.split("\n")) {
    const fields = line.split("\t");
    const round = /^round\t\d+\twall ([\d.]+) ms\tcpu ([\d.]+) ms$/.exec(line);
    if (round !== null) measured.push({ wallMs: Number(round[1]), cpuMs: Number(round[2]) });
    else if (fields[0] === "total") totalWallMs = Number(/([\d.]+) ms$/.exec(line)?.[1] ?? Number.NaN);
    else if (wanted.has(fields[0]!) && (fields[1] === "true" || fields[1] === "false"))
      verdicts.set(fields[0]!, fields[1] === "true");
  }
  const missing = files.filter((f) => !verdicts.has(f));
  if (missing.length > 0)
    throw new Error(
      `${binary} gave no verdict for ${missing.length} files (first: ${missing[0]}); see bench/lib/porcupine.ts`,
    );
  if (measured.length === 0) {
    if (totalWallMs === null || Number.isNaN(totalWallMs)) throw new Error(`${binary} printed no times`);
    measured.push({ cpuMs: null, wallMs: totalWallMs });
  }
  return { verdicts, rounds: measured };
}

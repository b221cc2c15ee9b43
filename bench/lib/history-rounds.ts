/**
 * One measuring process of bench:linearizability's side-by-side runs, the twin of the
 * Porcupine driver it is compared with (lib/porcupine.ts): read and decode every history file
 * first, then check all of them ROUNDS times in this process, and print one JSON line with each
 * file's verdict and, per round, the CPU and wall milliseconds of the checking alone. CPU is
 * this whole process's (every thread: V8's compiler and collector count, as Go's collector
 * does for Porcupine). The first round of a fresh process is what one `check-history DIR` run
 * pays (code still cold); later rounds show the compiled speed. Like `check-history`, it sets
 * V8's tier-up budget for checking (impl/runtime/check-history.ts, `tierUpForChecking`) first.
 *
 * Run: `tsx bench/lib/history-rounds.ts ROUNDS FILE...` (files in any format check-history reads).
 */
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { loadHistory, modelNamed, type LoadedHistory } from "../../impl/history/history.ts";
import { detectFormat, importHistory } from "../../impl/history/importers.ts";
import { checkLinearizable } from "../../impl/history/linearizability.ts";
import { tierUpForChecking } from "../../impl/runtime/check-history.ts";

/** What one measuring process prints. */
export interface RoundsReport {
  readonly verdicts: Record<string, string>;
  readonly operations: number;
  /** CPU before the first file is read: Node, the TypeScript loader and the checker's modules. */
  readonly startupCpuMs: number;
  /** CPU of reading, importing and decoding every file (before the rounds). */
  readonly parseCpuMs: number;
  readonly rounds: readonly { readonly cpuMs: number; readonly wallMs: number }[];
}

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

async function main(): Promise<void> {
  const [roundsArg, ...files] = process.argv.slice(2);
  const rounds = Number(roundsArg);
  if (!Number.isSafeInteger(rounds) || rounds < 1 || files.length === 0)
    throw new Error("usage: history-rounds.ts ROUNDS FILE...");
  // As `check-history` does before reading a file: V8's tier-up budget for checking.
  tierUpForChecking();
  const startupCpuMs = cpuMs();
  const histories: LoadedHistory[] = files.map((file) => {
    const text = readFileSync(file, "utf8");
    return loadHistory(importHistory(text, detectFormat(text)));
  });
  const parseCpuMs = cpuMs() - startupCpuMs;
  // Let the compiler threads finish the decoding code's jobs: they are parsing's cost, not checking's.
  await sleep(100);
  const verdicts: Record<string, string> = {};
  const measured: { cpuMs: number; wallMs: number }[] = [];
  for (let round = 0; round < rounds; round++) {
    const cpu = cpuMs();
    const wall = performance.now();
    histories.forEach((h, i) => {
      const verdict = checkLinearizable(modelNamed(h.model), h.operations).verdict;
      if (round === 0) verdicts[files[i]!] = verdict;
    });
    measured.push({ cpuMs: cpuMs() - cpu, wallMs: performance.now() - wall });
  }
  const operations = histories.reduce((sum, h) => sum + h.operations.length, 0);
  const report: RoundsReport = { verdicts, operations, startupCpuMs, parseCpuMs, rounds: measured };
  console.log(JSON.stringify(report));
}

await main();

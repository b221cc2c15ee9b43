/**
 * What the nemesis tests share: the seed (PAXOS_LEASE_NEMESIS_SEED overrides a file's own), one
 * run made before a file's tests, the checks every passing run meets, and the run's folder, kept
 * when the run failed (or when PAXOS_LEASE_KEEP_TEST_DATA=1) with the command that runs its
 * schedule again, and removed otherwise.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, expect } from "vitest";
import { tempDir } from "../../impl/runtime/testing.ts";
import { runNemesis, summaryText, type NemesisOptions, type NemesisReport } from "./run.ts";

/** A test file's seed: PAXOS_LEASE_NEMESIS_SEED, or the file's own. */
export function nemesisTestSeed(own: number): number {
  return Number(process.env.PAXOS_LEASE_NEMESIS_SEED ?? own);
}

/**
 * The replicas of a run whose logs say they served a state transfer's chunks read back from a
 * snapshot's stored record after they let that snapshot's state go (impl/runtime/replica-main.ts,
 * `onChunkAtRest`), each life's line in its replica's log (those of killed lives too).
 */
export function chunksAtRestSaid(run: NemesisTestRun): string[] {
  const cluster = path.join(run.out, "cluster");
  return fs
    .readdirSync(cluster)
    .filter((file) => file.endsWith(".log"))
    .filter((file) => fs.readFileSync(path.join(cluster, file), "utf8").includes(chunksAtRestText));
}

/** What a replica logs for the first chunk of each snapshot read back after its state went (replica-main.ts). */
const chunksAtRestText = "read back from its stored record, its state let go";

/** A run made for a test file: its folder and report, set before the file's tests start. */
export interface NemesisTestRun {
  out: string;
  report: NemesisReport;
}

/**
 * Make one run before the file's tests (`name` prefixes what it prints), in a fresh folder,
 * and print its summary; after them keep or remove the folder (`keepRunFolderIfFailed`). With
 * `skip`, nothing runs.
 */
export function useNemesisRun(
  name: string,
  options: Omit<NemesisOptions, "out">,
  testFile: string,
  timeoutMs: number,
  skip = false,
): NemesisTestRun {
  const note = (text: string): void => void process.stdout.write(`[${name}] ${text}\n`);
  const run = { out: "", report: undefined } as unknown as NemesisTestRun;
  let report: NemesisReport | undefined;
  beforeAll(async () => {
    if (skip) return;
    run.out = tempDir(name.replace(/[^a-z0-9]+/gi, "-"));
    report = await runNemesis({ ...options, out: run.out });
    run.report = report;
    note(summaryText(report));
  }, timeoutMs);
  afterAll(() => {
    if (!skip) keepRunFolderIfFailed(run.out, options.seed, report, testFile, note);
  });
  return run;
}

/** What every passing run shows: no violation, a linearizable history with acknowledged appends. */
export function expectEveryCheckPassed(report: NemesisReport): void {
  expect(report.violations, summaryText(report)).toEqual([]);
  expect(report.ok, summaryText(report)).toBe(true);
  expect(report.history.linearizability.verdict).toBe("linearizable");
  expect(report.history.lists.appendsAcknowledged).toBeGreaterThan(0);
}

export function keepRunFolderIfFailed(
  out: string,
  seed: number,
  report: NemesisReport | undefined,
  testFile: string,
  note: (text: string) => void,
): void {
  const failed = report === undefined || !report.ok;
  if (!failed && process.env.PAXOS_LEASE_KEEP_TEST_DATA !== "1") {
    fs.rmSync(out, { recursive: true, force: true });
    return;
  }
  const again =
    report === undefined
      ? `PAXOS_LEASE_NEMESIS_SEED=${seed} npx vitest run ${path.relative(process.cwd(), testFile)}`
      : report.replay;
  note(`run folder kept: ${out} (seed ${seed}); run the schedule again: ${again}`);
}

/**
 * What the nemesis tests share: a run's folder is kept when the run failed (or when
 * PAXOS_LEASE_KEEP_TEST_DATA=1), with the command that runs its schedule again, and removed
 * otherwise.
 */
import fs from "node:fs";
import path from "node:path";
import type { NemesisReport } from "./run.ts";

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

/**
 * Disk faults for fault-injection tests only. A SIGKILL keeps the operating system's page
 * cache, so a write that was never fsynced survives it and no test can tell whether a replica
 * answered before its fsync returned. These modes make that visible:
 *
 * - power loss (`PAXOS_LEASE_TEST_POWER_LOSS=1`): the store notes, after each fsync returns,
 *   the last record that fsync made durable (file `synced-seq`). A power cut is then simulated
 *   by killing the process and leaving a `POWER-CUT` file in its data directory: at its next
 *   start the store forgets every record written after the last completed fsync, as the
 *   machine's crash would have (Jepsen's lazyfs idea, at the level of the store's records).
 * - acknowledging before the fsync (`PAXOS_LEASE_TEST_ACK_BEFORE_FSYNC=1`): a deliberately
 *   broken store that reports a commit durable as soon as it is written, before its fsync
 *   returns. The replica then answers before its fsync; trace validation must catch it.
 *
 * Both are refused unless `PAXOS_LEASE_ALLOW_TEST_FAULTS=1` is also set: a production replica
 * never runs with them.
 */
import fs from "node:fs";
import path from "node:path";

/** Which test-only disk faults a store runs with. */
export interface DiskFaults {
  /** Keep `synced-seq` up to date and obey a `POWER-CUT` file at open. */
  readonly powerLoss: boolean;
  /** Broken on purpose: acknowledge a commit before its fsync returns. */
  readonly ackBeforeSync: boolean;
}

/** No fault: what every production replica runs with. */
export const noDiskFaults: DiskFaults = { powerLoss: false, ackBeforeSync: false };

/** The file, in a data directory, that holds the last record the last completed fsync made durable. */
export const syncedSeqFileName = "synced-seq";
/** The file that says the machine lost power since the store was last open. */
export const powerCutFileName = "POWER-CUT";

/** The disk faults the environment asks for (default: none). */
export function diskFaultsFromEnv(env: NodeJS.ProcessEnv): DiskFaults {
  const powerLoss = env.PAXOS_LEASE_TEST_POWER_LOSS === "1";
  const ackBeforeSync = env.PAXOS_LEASE_TEST_ACK_BEFORE_FSYNC === "1";
  if ((powerLoss || ackBeforeSync) && env.PAXOS_LEASE_ALLOW_TEST_FAULTS !== "1") {
    throw new Error(
      `${powerLoss ? "PAXOS_LEASE_TEST_POWER_LOSS" : "PAXOS_LEASE_TEST_ACK_BEFORE_FSYNC"} is for fault-injection tests only; set PAXOS_LEASE_ALLOW_TEST_FAULTS=1 to use it (never in production)`,
    );
  }
  return { powerLoss, ackBeforeSync };
}

/**
 * Cut the power of the replica whose data directory is `dir`, after its process was killed:
 * at its next start its store (in power-loss mode) loses what no completed fsync covered.
 */
export function cutPower(dir: string): void {
  fs.writeFileSync(path.join(dir, powerCutFileName), "the machine lost power: forget what was not fsynced\n");
}

/** The last record a completed fsync made durable, as noted in `dir` (0: none noted). */
export function syncedSeqOf(dir: string): number {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dir, syncedSeqFileName), "utf8");
  } catch {
    return 0;
  }
  const n = Number(text.trim());
  return Number.isSafeInteger(n) && n >= 0 ? n : 0;
}

/**
 * The file where a store in power-loss mode notes its fsyncs, opened for `noteSynced`. Each note
 * overwrites the same fixed-width bytes in one write, never truncating the file: a kill can land
 * between any two notes, never inside one (a truncate-then-write would leave it empty).
 */
export function openSyncedSeq(dir: string): number {
  const file = path.join(dir, syncedSeqFileName);
  // Not "a": with O_APPEND every write would go to the end, whatever its position.
  return fs.openSync(file, fs.existsSync(file) ? "r+" : "w+");
}

/** Note that every record up to `seq` is durable (no fsync of its own: only the page cache must hold it). */
export function noteSynced(fd: number, seq: number): void {
  fs.writeSync(fd, `${String(seq).padStart(19, "0")}\n`, 0);
}

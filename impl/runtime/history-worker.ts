/**
 * A worker thread of the history checker's pool (history-pool.ts): checks the partitions it
 * is sent, one at a time, and stops a search early when the history it belongs to already has
 * a key that is not linearizable (a flag in shared memory, set by the pool).
 */
import { parentPort, workerData } from "node:worker_threads";
import { modelNamed, type HistoryOperation, type ModelName } from "../history/history.ts";
import { checkPartition } from "../history/linearizability.ts";

/** A partition to check. */
export interface PartitionJob {
  readonly job: number;
  readonly history: number;
  readonly model: ModelName;
  readonly key: string;
  readonly ops: readonly HistoryOperation[];
  readonly stepsMax: number;
}

const stopFlags = new Int32Array(workerData as SharedArrayBuffer);
const port = parentPort!;
port.on("message", (job: PartitionJob) => {
  const result = checkPartition(modelNamed(job.model), job.key, job.ops, {
    stepsMax: job.stepsMax,
    stop: () => Atomics.load(stopFlags, job.history) !== 0,
  });
  port.postMessage({ job: job.job, result });
});

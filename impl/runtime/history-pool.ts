/**
 * Checks many histories, or one history of many keys, on worker threads: each key is a job,
 * the largest jobs go first, and once a key of a history is not linearizable the rest of that
 * history's keys are skipped (or stopped mid-search) unless every key is asked for. The
 * verdicts are those of the in-thread checker (impl/history), which this only schedules.
 */
import { existsSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { modelNamed, type HistoryOperation, type ModelName } from "../history/history.ts";
import {
  partitionHistory,
  summarize,
  type LinearizabilityResult,
  type PartitionResult,
} from "../history/linearizability.ts";
import type { KvInput, KvOutput } from "../../spec/kv.ts";
import type { PartitionJob } from "./history-worker.ts";

/** A history to check. */
export interface PoolHistory {
  readonly model: ModelName;
  readonly operations: readonly HistoryOperation[];
}

type Result = LinearizabilityResult<KvInput, KvOutput>;
type Partition = PartitionResult<KvInput, KvOutput>;

/** The pool's options. */
export interface PoolOptions {
  /** Worker threads, at least 1. */
  readonly workers: number;
  readonly stepsMaxPerPartition: number;
  /** Search every key of a history even after one is found not linearizable. */
  readonly allKeys: boolean;
}

/**
 * The worker module: compiled JavaScript beside this module, or the TypeScript source beside
 * it or (from the CLI's bundle in out/bundle/) in the source tree. Null when there is none:
 * the caller checks in this thread.
 */
function workerModule(): URL | null {
  const candidates = ["./history-worker.js", "./history-worker.ts", "../../impl/runtime/history-worker.ts"];
  for (const candidate of candidates) {
    const url = new URL(candidate, import.meta.url);
    if (existsSync(url)) return url;
  }
  return null;
}

/** True when worker threads can be started here. */
export function workersAvailable(): boolean {
  return workerModule() !== null;
}

/** Worker threads do not inherit tsx's loader on Node 20: each registers it to run from source. */
function startWorker(url: URL, stopFlags: SharedArrayBuffer): Worker {
  if (url.pathname.endsWith(".js")) return new Worker(url, { workerData: stopFlags });
  const boot = `import("tsx/esm/api").then(({ register }) => { register(); return import(${JSON.stringify(url.href)}); })`;
  return new Worker(boot, { eval: true, workerData: stopFlags });
}

/** Check `histories` on `options.workers` threads; results in the order of `histories`. */
export async function checkOnWorkers(histories: readonly PoolHistory[], options: PoolOptions): Promise<Result[]> {
  const grouped = histories.map((h) => partitionHistory(modelNamed(h.model), h.operations));
  const jobs: PartitionJob[] = [];
  grouped.forEach((g, history) => {
    for (const p of g.partitions)
      jobs.push({
        job: jobs.length,
        history,
        model: histories[history]!.model,
        key: p.key,
        ops: p.ops,
        stepsMax: options.stepsMaxPerPartition,
      });
  });
  const queue = [...jobs].sort((a, b) => b.ops.length - a.ops.length || a.job - b.job);
  const stopFlags = new SharedArrayBuffer(4 * Math.max(1, histories.length));
  const stopped = new Int32Array(stopFlags);
  const results = new Map<number, Partition>();
  const url = workerModule();
  if (url === null) throw new Error("the history checker's worker module is missing");
  const workers = Array.from({ length: Math.min(options.workers, Math.max(1, jobs.length)) }, () =>
    startWorker(url, stopFlags),
  );
  try {
    await Promise.all(
      workers.map(
        (worker) =>
          new Promise<void>((resolve, reject) => {
            const feed = (): void => {
              let job = queue.shift();
              while (job !== undefined && !options.allKeys && Atomics.load(stopped, job.history) !== 0)
                job = queue.shift();
              if (job === undefined) resolve();
              else worker.postMessage(job);
            };
            worker.on("message", (m: { job: number; result: Partition }) => {
              const job = jobs[m.job]!;
              results.set(m.job, m.result);
              if (m.result.verdict === "not-linearizable" && !options.allKeys) Atomics.store(stopped, job.history, 1);
              feed();
            });
            worker.on("error", reject);
            feed();
          }),
      ),
    );
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return grouped.map((g, history) => {
    const mine = jobs.filter((j) => j.history === history);
    const searched = mine.map((j) => results.get(j.job)).filter((r): r is Partition => r !== undefined);
    // A search stopped because another key already failed says nothing: it is not counted as searched.
    const counted = options.allKeys
      ? searched
      : searched.filter((r) => r.verdict !== "unknown" || Atomics.load(stopped, history) === 0);
    const notSearched = mine.filter((j) => !counted.some((r) => r.partition === j.key));
    return summarize(counted, g.unconstrained, {
      partitions: notSearched.length,
      operations: notSearched.reduce((sum, j) => sum + j.ops.length, 0),
    });
  });
}

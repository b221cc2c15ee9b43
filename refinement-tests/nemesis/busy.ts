/**
 * Busy threads of the harness that take the machine's cores from everything else, as a loaded
 * machine's runnable threads do: the starved machine a flood fault needs where the flood alone
 * leaves cores to spare.
 *
 * Why: the heartbeat relay (impl/runtime/heartbeat-relay.ts) sends copies only when the leader's
 * main thread handed over no heartbeat for two intervals. A flood of new connections does not
 * hold the loop that long by itself (Node takes up one new connection per turn; a wave of 1,000
 * at load 5 left a largest stall of 98 ms, docs/performance.md): the loop stalls because the
 * machine does not run it. On a machine with cores to spare a flood therefore relayed nothing,
 * and a run that injected one missed its required counter. Threads of the harness, not processes,
 * so that none outlives it.
 */
import os from "node:os";
import { Worker } from "node:worker_threads";

/**
 * How many busy threads the flood runs after `wavesWithoutCopy` waves that relayed nothing, on a
 * machine of `cores`: none before the first such wave, then one per core, doubling with each
 * further wave, at most eight per core. Gently: a machine starved more than it takes costs the
 * leader its lease for longer.
 */
export function busyThreadsFor(wavesWithoutCopy: number, cores: number): number {
  if (wavesWithoutCopy <= 0) return 0;
  return cores * Math.min(8, 2 ** (wavesWithoutCopy - 1));
}

/** The harness's busy threads (see the module's comment); `stop` ends them all. */
export class BusyThreads {
  private readonly threads: Worker[] = [];
  /** The most that ran at once. */
  most = 0;

  /** Threads running now. */
  get count(): number {
    return this.threads.length;
  }

  /** The machine's cores, as Node sees them. */
  static cores(): number {
    return os.availableParallelism();
  }

  /** Run `n` busy threads in all (more are started; none is stopped). */
  raiseTo(n: number): void {
    while (this.threads.length < n) {
      const thread = new Worker("for (;;) {}", {
        eval: true,
        resourceLimits: { maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 1 },
      });
      // Never what keeps the harness alive, and an end by terminate() is no error of the run.
      thread.unref();
      thread.on("error", () => undefined);
      this.threads.push(thread);
    }
    this.most = Math.max(this.most, this.threads.length);
  }

  /** End every busy thread. */
  async stop(): Promise<void> {
    await Promise.all(this.threads.splice(0).map((thread) => thread.terminate()));
  }
}

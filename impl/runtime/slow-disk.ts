/**
 * A slow disk, for fault-injection tests only: while slow mode is on, every group commit takes a
 * fixed delay longer to become durable, exactly as a slower fsync would (nothing the batch
 * releases leaves before it; with the asynchronous append the event loop keeps running, with
 * the blocking one it stands still). Slow mode is toggled at run time by SIGUSR2, so a test can
 * slow one replica's disk for a while.
 *
 * Configured by `PAXOS_LEASE_TEST_FSYNC_DELAY_MS`, which is refused unless
 * `PAXOS_LEASE_ALLOW_TEST_FAULTS=1` is also set: a production replica never runs with it.
 * It only delays; it never reorders, drops or acknowledges anything early.
 */
import type { DurableLog } from "./driver.ts";

/** Largest injectable delay per commit, in milliseconds. */
export const testFsyncDelayMsMax = 10_000;

/** The slow-disk switch of one replica process. Starts off. */
export class SlowDisk {
  private active = false;
  private readonly cell = new Int32Array(new SharedArrayBuffer(4));

  constructor(readonly delayMs: number) {
    if (!(Number.isInteger(delayMs) && delayMs >= 1 && delayMs <= testFsyncDelayMsMax)) {
      throw new Error(`test fsync delay ${delayMs} ms is not an integer in [1, ${testFsyncDelayMsMax}]`);
    }
  }

  get on(): boolean {
    return this.active;
  }

  /** Flip slow mode; returns the new mode. */
  toggle(): boolean {
    this.active = !this.active;
    return this.active;
  }

  /** Block the thread for the delay when slow mode is on. */
  afterCommit(): void {
    if (this.active) Atomics.wait(this.cell, 0, 0, this.delayMs);
  }

  /** `log`, with every append followed by the delay (when on). */
  wrap<R>(log: DurableLog<R>): DurableLog<R> {
    const wrapped: DurableLog<R> = {
      append: (records) => {
        log.append(records);
        if (records.length > 0) this.afterCommit();
      },
      // A read is served in its place among the appends; the delay is the fsync's, not the read's.
      read: log.read?.bind(log),
      get recordCount() {
        return log.recordCount;
      },
    };
    const appendAsync = log.appendAsync?.bind(log);
    if (appendAsync === undefined) return wrapped;
    // Acknowledgements stay in order: one delayed while slow mode was on holds back later ones.
    const waiting: { ready: boolean; error: Error | null; done: (error: Error | null) => void }[] = [];
    const flush = (): void => {
      while (waiting.length > 0 && waiting[0]!.ready) {
        const next = waiting.shift()!;
        next.done(next.error);
      }
    };
    return {
      ...wrapped,
      get recordCount() {
        return log.recordCount;
      },
      appendAsync: (records, done) => {
        const entry = { ready: false, error: null as Error | null, done };
        waiting.push(entry);
        appendAsync(records, (error) => {
          entry.error = error;
          const finish = (): void => {
            entry.ready = true;
            flush();
          };
          if (error !== null || records.length === 0 || !this.active) finish();
          else setTimeout(finish, this.delayMs);
        });
      },
    };
  }
}

/** The slow disk the environment asks for, or null (the default: none). */
export function slowDiskFromEnv(env: NodeJS.ProcessEnv): SlowDisk | null {
  const text = env.PAXOS_LEASE_TEST_FSYNC_DELAY_MS;
  if (text === undefined) return null;
  if (env.PAXOS_LEASE_ALLOW_TEST_FAULTS !== "1") {
    throw new Error(
      "PAXOS_LEASE_TEST_FSYNC_DELAY_MS is for fault-injection tests only; set PAXOS_LEASE_ALLOW_TEST_FAULTS=1 to use it (never in production)",
    );
  }
  const delayMs = Number(text);
  if (!Number.isFinite(delayMs))
    throw new Error(`PAXOS_LEASE_TEST_FSYNC_DELAY_MS is not a number: ${JSON.stringify(text)}`);
  return new SlowDisk(delayMs);
}

/**
 * The event loop's lag, sampled only while the replica works. Node's delay monitor
 * (perf_hooks' `monitorEventLoopDelay`, what prom-client's default metrics run all the time) wakes
 * the loop every `resolutionMs` (10 ms: a stall of B ms reads as at least B - 10), 100 times a
 * second per replica whether or not anything happens: on an idle cluster those were about 280 of
 * its 380 wake-ups per second. Here the monitor runs from the first piece of work (a batch that
 * wrote records or answered a client, an HTTP answer, a connection refused) until
 * `idleAfterMs` without any, and is stopped in between, so an idle replica is not woken for it,
 * and a busy one measures at the same resolution as before.
 *
 * Hazard: a stall while the replica is idle (no client, no write: only ticks and heartbeats) is not
 * sampled. Such a stall still shows where the lease feels it, in the heartbeat histograms (a
 * follower's gap between heartbeats, a leader's renewal round trip: impl/runtime/metrics.ts).
 * It never decides anything: it observes.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from "node:perf_hooks";

/** Lag statistics over one window, in seconds (all 0 when nothing was sampled). */
export interface LagStats {
  readonly samples: number;
  readonly minS: number;
  readonly maxS: number;
  readonly meanS: number;
  readonly stddevS: number;
  readonly p50S: number;
  readonly p90S: number;
  readonly p99S: number;
}

/** Options of {@link LoopLag}; each states its default. */
export interface LoopLagOptions {
  /** The delay monitor's period while sampling, in milliseconds. Default 10 (prom-client's). */
  readonly resolutionMs?: number;
  /**
   * How long sampling goes on after the last work, in milliseconds (it stops between
   * `idleAfterMs` and twice that after it). Default 1000.
   */
  readonly idleAfterMs?: number;
}

/** The lag monitor of one replica's event loop; `work()` keeps it sampling. */
export class LoopLag {
  readonly resolutionMs: number;
  readonly idleAfterMs: number;
  private readonly histogram: IntervalHistogram;
  private sampling = false;
  /** Work since the idle check last ran. */
  private worked = false;
  private idleCheck: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(options: LoopLagOptions = {}) {
    this.resolutionMs = options.resolutionMs ?? 10;
    this.idleAfterMs = options.idleAfterMs ?? 1000;
    if (!(Number.isInteger(this.resolutionMs) && this.resolutionMs >= 1))
      throw new Error(`the lag monitor's resolution (${this.resolutionMs} ms) must be a positive integer`);
    if (!(Number.isFinite(this.idleAfterMs) && this.idleAfterMs > 0))
      throw new Error(`the lag monitor's idle time (${this.idleAfterMs} ms) must be positive`);
    this.histogram = monitorEventLoopDelay({ resolution: this.resolutionMs });
  }

  /** Whether the monitor is sampling now. */
  get active(): boolean {
    return this.sampling;
  }

  /** The replica did some work: sample (from now, if not already) until it has been idle a while. */
  work(): void {
    if (this.sampling) {
      this.worked = true;
      return;
    }
    if (this.closed) return;
    this.sampling = true;
    this.worked = false;
    this.histogram.enable();
    this.armIdleCheck();
  }

  /** The statistics since the last call (or since the start), then a new window. */
  take(): LagStats {
    const h = this.histogram;
    const samples = h.count;
    const stats: LagStats =
      samples === 0
        ? { samples: 0, minS: 0, maxS: 0, meanS: 0, stddevS: 0, p50S: 0, p90S: 0, p99S: 0 }
        : {
            samples,
            minS: h.min / 1e9,
            maxS: h.max / 1e9,
            meanS: h.mean / 1e9,
            stddevS: h.stddev / 1e9,
            p50S: h.percentile(50) / 1e9,
            p90S: h.percentile(90) / 1e9,
            p99S: h.percentile(99) / 1e9,
          };
    h.reset();
    return stats;
  }

  /** Stop sampling for good. */
  close(): void {
    this.closed = true;
    this.stop();
  }

  private armIdleCheck(): void {
    this.idleCheck = setTimeout(() => {
      this.idleCheck = null;
      if (this.worked && !this.closed) {
        this.worked = false;
        this.armIdleCheck();
      } else this.stop();
    }, this.idleAfterMs);
    // Never what keeps a process alive.
    this.idleCheck.unref();
  }

  private stop(): void {
    if (this.idleCheck !== null) clearTimeout(this.idleCheck);
    this.idleCheck = null;
    if (!this.sampling) return;
    this.sampling = false;
    this.histogram.disable();
  }
}

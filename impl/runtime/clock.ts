/**
 * The replica's clock: monotonic milliseconds from `process.hrtime`, never wall-clock time.
 * Every event handed to `step` carries a fresh reading, and the lease arithmetic in
 * impl/core relies on this clock only advancing, at a rate within the configured drift bound.
 *
 * For fault-injection tests (clock drift beyond or within the bound) a rate and an offset can
 * be injected through environment variables; that is refused unless
 * `PAXOS_LEASE_ALLOW_TEST_CLOCK=1` is set too, so a production replica never runs on a
 * skewed clock by accident. This module must never read `Date`.
 */

/**
 * A source of monotonic time in milliseconds. Readings never decrease, not even across a
 * restart of the process on the same machine: the origin is the system's monotonic clock
 * (CLOCK_MONOTONIC, time since boot), not the process start, so a reading taken after a
 * restart is never mistaken for one from before it.
 */
export interface MonotonicClock {
  /** Milliseconds since the machine's monotonic origin; fractional (microsecond resolution). */
  nowMs(): number;
  /** The injected rate, 1 for a real clock; reported on the status page. */
  readonly rate: number;
  /** The injected offset in milliseconds, 0 for a real clock; written in the trace header. */
  readonly offsetMs: number;
}

/** Slowest injectable test rate. */
export const testClockRateMin = 0.5;
/** Fastest injectable test rate. */
export const testClockRateMax = 2;
/** Largest injectable offset, in milliseconds. */
export const testClockOffsetMsMax = 3_600_000;

/** Options of {@link monotonicClock}. */
export interface ClockOptions {
  /** Clock rate relative to real time. Default 1. Test-only. */
  readonly rate?: number;
  /** Added to every reading, in milliseconds. Default 0. Test-only. */
  readonly offsetMs?: number;
}

/** A clock that reads `process.hrtime.bigint()`, scaled by `rate` and shifted by `offsetMs`. */
export function monotonicClock(options: ClockOptions = {}): MonotonicClock {
  const rate = options.rate ?? 1;
  const offsetMs = options.offsetMs ?? 0;
  if (!(rate >= testClockRateMin && rate <= testClockRateMax)) {
    throw new Error(`clock rate ${rate} outside [${testClockRateMin}, ${testClockRateMax}]`);
  }
  if (!(Math.abs(offsetMs) <= testClockOffsetMsMax)) {
    throw new Error(`clock offset ${offsetMs} ms outside [-${testClockOffsetMsMax}, ${testClockOffsetMsMax}]`);
  }
  let last = -Infinity;
  return {
    rate,
    offsetMs,
    nowMs(): number {
      const sinceBootUs = Number(process.hrtime.bigint() / 1000n);
      const reading = (sinceBootUs / 1000) * rate + offsetMs;
      // hrtime is monotonic; this assertion turns a platform bug into a loud stop.
      if (reading < last) throw new Error(`monotonic clock went backwards: ${reading} < ${last}`);
      last = reading;
      return reading;
    },
  };
}

/**
 * The clock a replica process uses: real, unless the test-only variables
 * `PAXOS_LEASE_CLOCK_RATE` / `PAXOS_LEASE_CLOCK_OFFSET_MS` are set, which requires
 * `PAXOS_LEASE_ALLOW_TEST_CLOCK=1`.
 */
export function clockFromEnv(env: NodeJS.ProcessEnv): MonotonicClock {
  const rateText = env.PAXOS_LEASE_CLOCK_RATE;
  const offsetText = env.PAXOS_LEASE_CLOCK_OFFSET_MS;
  if (rateText === undefined && offsetText === undefined) return monotonicClock();
  if (env.PAXOS_LEASE_ALLOW_TEST_CLOCK !== "1") {
    throw new Error(
      "PAXOS_LEASE_CLOCK_RATE / PAXOS_LEASE_CLOCK_OFFSET_MS are for fault-injection tests only; " +
        "set PAXOS_LEASE_ALLOW_TEST_CLOCK=1 to use them (never in production: a skewed clock breaks leases)",
    );
  }
  const rate = rateText === undefined ? 1 : Number(rateText);
  const offsetMs = offsetText === undefined ? 0 : Number(offsetText);
  if (!Number.isFinite(rate)) throw new Error(`PAXOS_LEASE_CLOCK_RATE is not a number: ${JSON.stringify(rateText)}`);
  if (!Number.isFinite(offsetMs))
    throw new Error(`PAXOS_LEASE_CLOCK_OFFSET_MS is not a number: ${JSON.stringify(offsetText)}`);
  return monotonicClock({ rate, offsetMs });
}

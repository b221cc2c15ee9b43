/**
 * The replica clock: monotonic readings in milliseconds, and the test-only skew that is
 * refused unless explicitly allowed and bounded when allowed.
 */
import { describe, expect, it } from "vitest";
import { clockFromEnv, monotonicClock } from "./clock.ts";

describe("clock", () => {
  it("never goes backwards and advances with real time", async () => {
    const clock = monotonicClock();
    const first = clock.nowMs();
    let last = first;
    for (let i = 0; i < 10_000; i++) {
      const now = clock.nowMs();
      expect(now).toBeGreaterThanOrEqual(last);
      last = now;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(clock.nowMs() - first).toBeGreaterThanOrEqual(15);
    expect(clock.rate).toBe(1);
  });

  it("scales and shifts only when the test clock is allowed, within bounds", () => {
    expect(() => clockFromEnv({ PAXOS_LEASE_CLOCK_RATE: "1.01" })).toThrow(
      /fault-injection tests only.*PAXOS_LEASE_ALLOW_TEST_CLOCK=1/,
    );
    expect(() => clockFromEnv({ PAXOS_LEASE_CLOCK_OFFSET_MS: "5" })).toThrow(/PAXOS_LEASE_ALLOW_TEST_CLOCK/);
    const allowed = { PAXOS_LEASE_ALLOW_TEST_CLOCK: "1" };
    expect(clockFromEnv({ ...allowed, PAXOS_LEASE_CLOCK_RATE: "1.5" }).rate).toBe(1.5);
    expect(() => clockFromEnv({ ...allowed, PAXOS_LEASE_CLOCK_RATE: "3" })).toThrow(/outside \[0.5, 2\]/);
    expect(() => clockFromEnv({ ...allowed, PAXOS_LEASE_CLOCK_RATE: "fast" })).toThrow(/not a number/);
    expect(() => clockFromEnv({ ...allowed, PAXOS_LEASE_CLOCK_OFFSET_MS: "1e12" })).toThrow(/offset/);
    const real = monotonicClock().nowMs();
    const shifted = clockFromEnv({ ...allowed, PAXOS_LEASE_CLOCK_OFFSET_MS: "60000" }).nowMs();
    expect(shifted - real).toBeGreaterThan(59_000);
    expect(clockFromEnv({ ...allowed, PAXOS_LEASE_CLOCK_OFFSET_MS: "60000" }).offsetMs).toBe(60_000);
    expect(monotonicClock().offsetMs).toBe(0);
    expect(clockFromEnv({}).rate).toBe(1);
  });
});

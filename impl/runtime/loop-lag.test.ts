/**
 * The loop-lag monitor samples only while the replica works: it starts on work, stops once idle,
 * records nothing meanwhile, and sees a stall while sampling (impl/runtime/metrics.test.ts checks
 * what the replica's metrics show of it). Without the idle stop, an idle replica is woken 100
 * times a second for it.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { LoopLag } from "./loop-lag.ts";
import { sleep, stallLoop } from "./testing.ts";

describe("the loop-lag monitor", () => {
  afterEach(() => void vi.useRealTimers());

  it("samples from the first work until idleAfterMs with no work, and not before", () => {
    vi.useFakeTimers();
    const lag = new LoopLag({ idleAfterMs: 1000 });
    expect(lag.active).toBe(false);
    lag.work();
    expect(lag.active).toBe(true);
    vi.advanceTimersByTime(600);
    lag.work();
    vi.advanceTimersByTime(600);
    // Work came within the last check's window: still sampling.
    expect(lag.active).toBe(true);
    vi.advanceTimersByTime(1000);
    expect(lag.active).toBe(false);
    lag.work();
    expect(lag.active).toBe(true);
    lag.close();
    expect(lag.active).toBe(false);
    lag.work();
    expect(lag.active).toBe(false);
  });

  it("records nothing while idle", async () => {
    const lag = new LoopLag();
    await sleep(60);
    expect(lag.take().samples).toBe(0);
    lag.close();
  });

  it("sees a stall of the loop while sampling, at least as long as the stall", async () => {
    const lag = new LoopLag();
    lag.work();
    await sleep(30);
    stallLoop(60);
    await sleep(30);
    const stats = lag.take();
    lag.close();
    expect(stats.samples).toBeGreaterThan(0);
    expect(stats.maxS).toBeGreaterThanOrEqual(0.06);
    expect(stats.minS).toBeGreaterThan(0);
    // A new window after take().
    expect(lag.take().samples).toBe(0);
  });

  it("refuses a resolution or idle time that is not positive", () => {
    expect(() => new LoopLag({ resolutionMs: 0 })).toThrow(/resolution/);
    expect(() => new LoopLag({ resolutionMs: 2.5 })).toThrow(/resolution/);
    expect(() => new LoopLag({ idleAfterMs: 0 })).toThrow(/idle/);
  });
});

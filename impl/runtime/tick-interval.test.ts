/**
 * The period the runtime ticks a replica at (tickIntervalMs): at once while chosen values wait to
 * be executed (a step executes at most batchBytesMax of them, the next tick executes on), the
 * usual period otherwise, and the usual period for a halted replica, which executes nothing more.
 */
import { describe, expect, it } from "vitest";
import { executionPending, step } from "../core/index.ts";
import { followerLearningAtOnce } from "../core/testing/cluster.ts";
import { tickIntervalMs } from "./replica-main.ts";

/** A follower that learned five chosen slots at once, of which a 200-byte step executes two. */
function followerWithExecutionLeft() {
  const { leader, follower, now } = followerLearningAtOnce(200);
  return { follower, now, executedUpTo: leader.learner.executedUpTo };
}

describe("tickIntervalMs", () => {
  it("ticks at once while execution is left, at the usual period once it is done", () => {
    const start = followerWithExecutionLeft();
    const { executedUpTo } = start;
    let { follower, now } = start;
    expect(executionPending(follower)).toBe(true);
    expect(follower.learner.executedUpTo).toBeLessThan(executedUpTo);
    expect(tickIntervalMs(follower)).toBe(1);
    for (let i = 0; i < 20 && executionPending(follower); i++) {
      now += 1;
      follower = step(follower, { _tag: "Tick", now }).state;
    }
    expect(follower.learner.executedUpTo).toBe(executedUpTo);
    // A follower that heard its leader lately: its next tick is when the election would be due.
    const usual = tickIntervalMs(follower);
    expect(usual).toBeGreaterThan(10);
    expect(usual).toBeLessThanOrEqual(follower.ctx.config.electionTimeoutMsMin);
  });

  it("gives a halted replica, which executes nothing more, the usual period", () => {
    const { follower } = followerWithExecutionLeft();
    const halted = { ...follower, halted: { slot: follower.learner.executedUpTo + 1, message: "stopped" } };
    expect(executionPending(halted)).toBe(false);
    // As a follower that heard its leader lately: its next tick is when the election would be due.
    const period = tickIntervalMs(halted);
    expect(period).toBeGreaterThan(10);
    expect(period).toBeLessThanOrEqual(halted.ctx.config.electionTimeoutMsMin);
  });
});

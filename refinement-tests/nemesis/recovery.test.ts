/** The nemesis report's recovery figure: how long after a fault's end some replica held a lease. */
import { describe, expect, it } from "vitest";
import { leaseholderAfter } from "./run.ts";

const interval = (replica: number, from: number, to: number) => ({ replica, ballot: `(1,${replica})`, from, to });

describe("leaseholderAfter", () => {
  it("is 0 when a lease held at the fault's end, the wait for the first one otherwise, null when none came", () => {
    expect(leaseholderAfter(100, [interval(1, 50, 150)])).toBe(0);
    expect(leaseholderAfter(100, [interval(1, 50, 100), interval(2, 400, 900), interval(3, 250, 300)])).toBe(150);
    expect(leaseholderAfter(100, [interval(1, 10, 90)])).toBeNull();
    expect(leaseholderAfter(100, [])).toBeNull();
  });
});

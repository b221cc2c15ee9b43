/** The nemesis report's recovery figure: how long after a fault's end some replica held a lease. */
import { describe, expect, it } from "vitest";
import { leaseholderAfter, longestLeaseless } from "./run.ts";

const interval = (replica: number, from: number, to: number) => ({ replica, ballot: `(1,${replica})`, from, to });

describe("leaseholderAfter", () => {
  it("is 0 when a lease held at the fault's end, the wait for the first one otherwise, null when none came", () => {
    expect(leaseholderAfter(100, [interval(1, 50, 150)])).toBe(0);
    expect(leaseholderAfter(100, [interval(1, 50, 100), interval(2, 400, 900), interval(3, 250, 300)])).toBe(150);
    expect(leaseholderAfter(100, [interval(1, 10, 90)])).toBeNull();
    expect(leaseholderAfter(100, [])).toBeNull();
  });

  it("the longest stretch without a leaseholder from a fault's start to the first lease after its end", () => {
    // Leases 0..100 and 400..900 (another replica), the fault 50..300: leaseless from 100 to 400.
    expect(longestLeaseless(50, 300, [interval(1, 0, 100), interval(2, 400, 900)])).toBe(300);
    // Overlapping leases across the fault: never leaseless.
    expect(longestLeaseless(50, 300, [interval(1, 0, 200), interval(2, 150, 900)])).toBe(0);
    expect(longestLeaseless(50, 300, [interval(1, 0, 100)])).toBeNull();
  });
});

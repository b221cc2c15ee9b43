import { describe, expect, it } from "vitest";
import { CatchUpHold } from "./catch-up-hold.ts";

describe("CatchUpHold", () => {
  it("lets a catch-up request go when nothing arrives on the peer's bulk connection", () => {
    const hold = new CatchUpHold(50, 1000);
    expect(hold.hold(1, null, 0)).toBe(false);
    expect(hold.hold(1, 51, 10)).toBe(false);
  });

  it("holds it while the peer streams large messages, at most holdMsMax in a row, per peer", () => {
    const hold = new CatchUpHold(50, 1000);
    expect(hold.hold(1, 5, 0)).toBe(true);
    expect(hold.hold(2, 5, 10)).toBe(true);
    expect(hold.hold(1, 0, 999)).toBe(true);
    expect(hold.hold(1, 0, 1000)).toBe(false);
    // The next one starts a new hold.
    expect(hold.hold(1, 0, 1001)).toBe(true);
    expect(hold.hold(2, 0, 1009)).toBe(true);
    // A quiet spell ends a hold.
    expect(hold.hold(2, 60, 1010)).toBe(false);
    expect(hold.hold(2, 0, 1020)).toBe(true);
  });
});

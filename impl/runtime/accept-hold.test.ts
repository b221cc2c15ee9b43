import { describe, expect, it } from "vitest";
import { AcceptResendHold, copiesPerPeerMax } from "./accept-hold.ts";

const ballot = { round: 3, replica: 1 };
const large = 1 << 20;

/** A hold with a quiet spell of 400 ms, at most 3200 ms, for Accepts of 64 KiB or more. */
function newHold(): AcceptResendHold {
  return new AcceptResendHold(400, 3200, 64 * 1024);
}

describe("AcceptResendHold", () => {
  it("lets every first copy go, and never holds a small Accept", () => {
    const hold = newHold();
    expect(hold.hold(2, { ballot, slot: 7 }, large, 1, 0)).toBe(false);
    hold.sent(2, { ballot, slot: 7 }, 100, 1, 0);
    expect(hold.hold(2, { ballot, slot: 7 }, 100, 1, 10)).toBe(false);
    expect(hold.remembered(2)).toBe(0);
  });

  it("holds a resend while its first copy went on the same connections within the quiet spell, per peer", () => {
    const hold = newHold();
    hold.sent(2, { ballot, slot: 7 }, large, 1, 0);
    expect(hold.hold(2, { ballot, slot: 7 }, large, 1, 50)).toBe(true);
    expect(hold.hold(2, { ballot, slot: 7 }, large, 1, 399)).toBe(true);
    // Another peer, another slot, another ballot at that slot: none of them was sent before.
    expect(hold.hold(3, { ballot, slot: 7 }, large, 1, 50)).toBe(false);
    expect(hold.hold(2, { ballot, slot: 8 }, large, 1, 50)).toBe(false);
    expect(hold.hold(2, { ballot: { round: 4, replica: 1 }, slot: 7 }, large, 1, 50)).toBe(false);
  });

  it("lets the resend go once a connection to the peer opened again: the first copy may have gone with it", () => {
    const hold = newHold();
    hold.sent(2, { ballot, slot: 7 }, large, 1, 0);
    expect(hold.hold(2, { ballot, slot: 7 }, large, 2, 50)).toBe(false);
    // That resend is the copy on the new connections now.
    hold.sent(2, { ballot, slot: 7 }, large, 2, 50);
    expect(hold.hold(2, { ballot, slot: 7 }, large, 2, 100)).toBe(true);
  });

  it("past the quiet spell, holds only while the peer acknowledges Accepts, and never past holdMsMax", () => {
    const hold = newHold();
    hold.sent(2, { ballot, slot: 7 }, large, 1, 0);
    // Nothing acknowledged: a quiet peer gets the resend.
    expect(hold.hold(2, { ballot, slot: 7 }, large, 1, 400)).toBe(false);
    // It works through its queue: each acknowledgement holds the resend one quiet spell longer.
    hold.acknowledged(2, 5, 500);
    expect(hold.hold(2, { ballot, slot: 7 }, large, 1, 600)).toBe(true);
    expect(hold.hold(2, { ballot, slot: 7 }, large, 1, 900)).toBe(false);
    hold.acknowledged(2, 6, 3000);
    expect(hold.hold(2, { ballot, slot: 7 }, large, 1, 3199)).toBe(true);
    expect(hold.hold(2, { ballot, slot: 7 }, large, 1, 3200)).toBe(false);
  });

  it("forgets a first copy once the peer acknowledged it, and keeps at most a bounded number per peer", () => {
    const hold = newHold();
    hold.sent(2, { ballot, slot: 7 }, large, 1, 0);
    hold.acknowledged(2, 7, 10);
    expect(hold.remembered(2)).toBe(0);
    expect(hold.hold(2, { ballot, slot: 7 }, large, 1, 20)).toBe(false);
    for (let slot = 1; slot <= copiesPerPeerMax + 10; slot++) hold.sent(2, { ballot, slot }, large, 1, 30);
    expect(hold.remembered(2)).toBe(copiesPerPeerMax);
    // The oldest went first.
    expect(hold.hold(2, { ballot, slot: 1 }, large, 1, 40)).toBe(false);
    expect(hold.hold(2, { ballot, slot: copiesPerPeerMax + 10 }, large, 1, 40)).toBe(true);
  });
});

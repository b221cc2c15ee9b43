/**
 * Ballots are totally ordered by (round, replica), and `ballotToNat` is the order-preserving
 * injection into Lamport's `Ballot == Nat` that the refinement to Voting relies on.
 */
import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { ballotToNat, ballotZero, compareBallots, type Ballot } from "./ballot.ts";

const members = [2, 5, 9];
const ballot: fc.Arbitrary<Ballot> = fc.record({
  round: fc.integer({ min: 1, max: 50 }),
  replica: fc.constantFrom(...members),
});

describe("ballots", () => {
  test.prop([ballot, ballot, ballot])("compareBallots is a total order", (a, b, c) => {
    expect(Math.sign(compareBallots(a, b)) + Math.sign(compareBallots(b, a))).toBe(0);
    if (compareBallots(a, b) <= 0 && compareBallots(b, c) <= 0) expect(compareBallots(a, c)).toBeLessThanOrEqual(0);
    expect(compareBallots(a, b) === 0).toBe(a.round === b.round && a.replica === b.replica);
  });

  test.prop([ballot, ballot])("ballotToNat preserves order and is injective", (a, b) => {
    expect(Math.sign(ballotToNat(a, members) - ballotToNat(b, members))).toBe(Math.sign(compareBallots(a, b)));
  });

  it("maps the first ballots onto 0, 1, 2, ... and ballotZero onto Lamport's -1", () => {
    expect(ballotToNat(ballotZero, members)).toBe(-1);
    expect(ballotToNat({ round: 1, replica: 2 }, members)).toBe(0);
    expect(ballotToNat({ round: 1, replica: 9 }, members)).toBe(2);
    expect(ballotToNat({ round: 2, replica: 2 }, members)).toBe(3);
    expect(compareBallots(ballotZero, { round: 1, replica: 2 })).toBeLessThan(0);
  });

  it("refuses a ballot of a non-member", () => {
    expect(() => ballotToNat({ round: 1, replica: 3 }, members)).toThrow(/not a member/);
  });
});

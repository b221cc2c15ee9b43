/**
 * The lease spec: its state space, exclusivity (AtMostOneLeaseholder) on random walks and
 * exhaustively, and its invariants failing on states that break them. Its broken variants, which
 * the explorer must catch, are in refinement-tests/mutants/spec/lease.ts.
 */
import { fc, test } from "@fast-check/vitest";
import { describe, expect } from "vitest";
import { explore, simulate } from "./explore.ts";
import { Lease, NoLease, type LeaseState } from "./lease.ts";

const lease = new Lease({ holders: 3, timeMax: 8, leaseTicks: 3 });

describe("Lease", () => {
  test("explores exhaustively with every invariant holding; pinned counts", () => {
    const two = new Lease({ holders: 2, timeMax: 6, leaseTicks: 3 });
    const r = explore(two);
    expect([r.distinct, r.generated, r.depth, r.violation]).toEqual([103, 263, 9, undefined]);
    expect(explore(two, { symmetry: true }).distinct).toBeLessThan(103);
    expect(explore(lease).violation).toBeUndefined();
  });

  test.prop([fc.array(fc.nat(), { maxLength: 60 })])(
    "exclusivity: at most one holder at every instant of every walk",
    (choices) => {
      for (const { state } of simulate(lease, choices)) {
        expect(lease.holders(state).length).toBeLessThanOrEqual(1);
        expect(lease.AtMostOneLeaseholder(state)).toBeUndefined();
      }
    },
  );

  test.prop([fc.array(fc.nat(), { maxLength: 60 })])("is deterministic", (choices) => {
    expect(simulate(lease, choices)).toEqual(simulate(lease, choices));
  });

  test("a holder keeps the lease until expiry, and nobody else acquires it meanwhile", () => {
    const [, acquired] = simulate(lease, [0]).map((t) => t.state);
    expect(acquired).toEqual({ now: 0, expiry: [3, NoLease, NoLease] });
    expect(lease.Holds(acquired!, 0)).toBe(true);
    expect(lease.AcquireEnabled(acquired!)).toBe(false);
    const late: LeaseState = { now: 3, expiry: [3, NoLease, NoLease] };
    expect(lease.Holds(late, 0)).toBe(false);
    expect(lease.AcquireEnabled(late)).toBe(true);
    expect(lease.ExpireEnabled(late, 0)).toBe(true);
  });

  test("the invariants fail on states that break them", () => {
    expect(lease.AtMostOneLeaseholder({ now: 1, expiry: [3, 2, NoLease] })).toBe(
      "p1 and p2 both hold the lease at time 1",
    );
    expect(lease.LeaseBounded({ now: 1, expiry: [9, NoLease, NoLease] })).toBe(
      "p1's lease ends at 9, more than D = 3 after now = 1",
    );
    expect(lease.TypeOK({ now: 9, expiry: [NoLease, NoLease, NoLease] })).toBe("now = 9 is not in 0..8");
    expect(lease.TypeOK({ now: 0, expiry: [0, NoLease, NoLease] })).toBe("expiry[p1] = 0 is out of range");
  });
});

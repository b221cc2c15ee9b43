/**
 * Broken variants of the lease spec (spec/lease.ts), each breaking one action of Lampson's lock
 * that times out. spec-variants.test.ts requires the explorer to catch each with the invariant
 * it breaks and the exact shortest trace.
 */
import { Lease, NoLease, type LeaseState } from "../../../spec/lease.ts";

/** Acquire(p) without its guard: p takes the lease while another holds it. */
export class AcquireIgnoringHolder extends Lease {
  override AcquireEnabled(): boolean {
    return true;
  }
}

/** Renew(p) extending the old expiry by D instead of setting it to now + D. */
export class RenewFromExpiry extends Lease {
  override grant(s: LeaseState, p: number): LeaseState {
    const e = s.expiry[p]!;
    return {
      now: s.now,
      expiry: s.expiry.map((x, q) =>
        q === p ? (e === NoLease || e <= s.now ? s.now : e) + this.constants.leaseTicks : x,
      ),
    };
  }
}

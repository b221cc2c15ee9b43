/**
 * A lease over true time: a lock that times out (Lampson, "How to Build a Highly Available
 * System Using Consensus", section 2.2: "a lease is a lock that times out"; its holder may
 * act alone until the lease expires). True time is data here: `now` is a tick count that the
 * Tick action advances up to a bound, and expiry[p] is the true time at which holder p's
 * lease ends. Actions: Acquire(p), Renew(p), Expire(p), Tick. Invariant:
 * AtMostOneLeaseholder, at most one holder at any instant.
 *
 * This is the spec the replicas' leases implement: proofs/leases.ts maps each replica onto
 * Holds(p) here, holding while it would answer a read by lease (rule L3 of impl/core/lease.ts,
 * judged by its own clock), and clock drift is what the mapping must absorb. The spec itself
 * knows no clocks but true time.
 *
 * Pure: no clock, no randomness; imports nothing of the project but spec/.
 */
import { permutations } from "./constants.ts";
import type { Invariant, Spec } from "./state-machine.ts";

/** The bounds of one lease model. */
export interface LeaseConstants {
  /** |Holder|: the processes that may hold the lease, p1 .. pN (1..8). */
  readonly holders: number;
  /** True time runs 0..timeMax ticks (1..64). */
  readonly timeMax: number;
  /** D: a lease acquired or renewed at time t ends at t + D (1..64 ticks). */
  readonly leaseTicks: number;
}

/** "No lease": expiry[p] before p first acquires, and after Expire(p). */
export const NoLease = "None";
export type NoLease = typeof NoLease;

/** A state: true time and, per holder, when its lease ends. */
export interface LeaseState {
  readonly now: number;
  readonly expiry: readonly (number | NoLease)[];
}

export type LeaseAction =
  | { readonly _tag: "Acquire"; readonly p: number }
  | { readonly _tag: "Renew"; readonly p: number }
  | { readonly _tag: "Expire"; readonly p: number }
  | { readonly _tag: "Tick" };

export const holdersMax = 8;
export const leaseTimeMax = 64;

/** p1, p2, ... for holder indices 0, 1, ... */
export function holderName(p: number): string {
  return `p${p + 1}`;
}

/** `Lease(constants)`: the lease spec for one set of holders and one time bound. */
export class Lease implements Spec<LeaseState, LeaseAction> {
  readonly name: string = "Lease";
  readonly constants: LeaseConstants;
  /** Init == now = 0 /\ expiry = [p |-> None]. */
  readonly start: LeaseState;
  readonly init: readonly LeaseState[];
  readonly invariants: readonly Invariant<LeaseState>[];
  readonly symmetries: readonly ((state: LeaseState) => LeaseState)[];
  private readonly allActions: readonly LeaseAction[];

  constructor(constants: LeaseConstants) {
    const check = (what: string, x: number, max: number): void => {
      if (!Number.isInteger(x) || x < 1 || x > max)
        throw new RangeError(`${what} must be an integer between 1 and ${max}, got ${x}`);
    };
    check("holders", constants.holders, holdersMax);
    check("timeMax", constants.timeMax, leaseTimeMax);
    check("leaseTicks", constants.leaseTicks, leaseTimeMax);
    this.constants = constants;
    this.start = { now: 0, expiry: Array<NoLease>(constants.holders).fill(NoLease) };
    this.init = [this.start];
    const actions: LeaseAction[] = [];
    for (let p = 0; p < constants.holders; p++)
      actions.push({ _tag: "Acquire", p }, { _tag: "Renew", p }, { _tag: "Expire", p });
    actions.push({ _tag: "Tick" });
    this.allActions = actions;
    this.invariants = [
      {
        name: "TypeOK",
        statement: "now \\in 0..TimeMax /\\ expiry \\in [Holder -> 1..(TimeMax + D) \\cup {None}]",
        check: (s) => this.TypeOK(s),
      },
      {
        name: "AtMostOneLeaseholder",
        statement: "\\A p, q \\in Holder : Holds(p) /\\ Holds(q) => p = q",
        check: (s) => this.AtMostOneLeaseholder(s),
      },
      {
        name: "LeaseBounded",
        statement: "\\A p \\in Holder : Holds(p) => expiry[p] <= now + D",
        check: (s) => this.LeaseBounded(s),
      },
    ];
    this.symmetries = permutations(constants.holders)
      .slice(1)
      .map((perm) => (s: LeaseState) => {
        const expiry: (number | NoLease)[] = [];
        s.expiry.forEach((e, p) => (expiry[perm[p]!] = e));
        return { now: s.now, expiry };
      });
  }

  /** Holds(p) == expiry[p] # None /\ now < expiry[p]: p's lease is valid at true time now. */
  Holds(s: LeaseState, p: number): boolean {
    const e = s.expiry[p]!;
    return e !== NoLease && s.now < e;
  }

  /** The holders whose lease is valid now. */
  holders(s: LeaseState): number[] {
    return s.expiry.map((_, p) => p).filter((p) => this.Holds(s, p));
  }

  // ---- Invariants ---------------------------------------------------------------------------

  TypeOK(s: LeaseState): string | undefined {
    const { holders, timeMax, leaseTicks } = this.constants;
    if (!Number.isInteger(s.now) || s.now < 0 || s.now > timeMax) return `now = ${s.now} is not in 0..${timeMax}`;
    if (s.expiry.length !== holders) return `expiry has ${s.expiry.length} entries, not ${holders}`;
    for (let p = 0; p < holders; p++) {
      const e = s.expiry[p]!;
      if (e !== NoLease && (!Number.isInteger(e) || e < 1 || e > timeMax + leaseTicks))
        return `expiry[${holderName(p)}] = ${e} is out of range`;
    }
    return undefined;
  }

  /** AtMostOneLeaseholder == \A p, q \in Holder : Holds(p) /\ Holds(q) => p = q. */
  AtMostOneLeaseholder(s: LeaseState): string | undefined {
    const h = this.holders(s);
    if (h.length > 1) return `${h.map(holderName).join(" and ")} both hold the lease at time ${s.now}`;
    return undefined;
  }

  /** LeaseBounded == \A p \in Holder : Holds(p) => expiry[p] <= now + D: nobody holds a lease longer than D. */
  LeaseBounded(s: LeaseState): string | undefined {
    for (const p of this.holders(s)) {
      const e = s.expiry[p] as number;
      if (e > s.now + this.constants.leaseTicks)
        return `${holderName(p)}'s lease ends at ${e}, more than D = ${this.constants.leaseTicks} after now = ${s.now}`;
    }
    return undefined;
  }

  // ---- Actions --------------------------------------------------------------------------------

  /** Acquire(p) == /\ \A q \in Holder : ~Holds(q) /\ expiry' = [expiry EXCEPT ![p] = now + D] /\ UNCHANGED now. */
  AcquireEnabled(s: LeaseState): boolean {
    return this.holders(s).length === 0;
  }

  /** Renew(p) == /\ Holds(p) /\ expiry' = [expiry EXCEPT ![p] = now + D] /\ UNCHANGED now. */
  RenewEnabled(s: LeaseState, p: number): boolean {
    return this.Holds(s, p);
  }

  /** Expire(p) == /\ expiry[p] # None /\ now >= expiry[p] /\ expiry' = [expiry EXCEPT ![p] = None] /\ UNCHANGED now. */
  ExpireEnabled(s: LeaseState, p: number): boolean {
    const e = s.expiry[p]!;
    return e !== NoLease && s.now >= e;
  }

  /** Tick == /\ now < TimeMax /\ now' = now + 1 /\ UNCHANGED expiry: true time advances. */
  TickEnabled(s: LeaseState): boolean {
    return s.now < this.constants.timeMax;
  }

  /** The effect of Acquire(p) and Renew(p): p's lease now ends at now + D. */
  grant(s: LeaseState, p: number): LeaseState {
    return { now: s.now, expiry: s.expiry.map((e, q) => (q === p ? s.now + this.constants.leaseTicks : e)) };
  }

  // ---- Spec -----------------------------------------------------------------------------------

  actions(): readonly LeaseAction[] {
    return this.allActions;
  }

  enabled(action: LeaseAction, s: LeaseState): boolean {
    switch (action._tag) {
      case "Acquire":
        return this.AcquireEnabled(s);
      case "Renew":
        return this.RenewEnabled(s, action.p);
      case "Expire":
        return this.ExpireEnabled(s, action.p);
      case "Tick":
        return this.TickEnabled(s);
    }
  }

  transition(action: LeaseAction, s: LeaseState): LeaseState {
    switch (action._tag) {
      case "Acquire":
      case "Renew":
        return this.grant(s, action.p);
      case "Expire":
        return { now: s.now, expiry: s.expiry.map((e, q) => (q === action.p ? NoLease : e)) };
      case "Tick":
        return { now: s.now + 1, expiry: s.expiry };
    }
  }

  output(action: LeaseAction): string {
    return action._tag === "Tick" ? "Tick" : `${action._tag}(${holderName(action.p)})`;
  }

  key(s: LeaseState): string {
    return `${s.now}|${s.expiry.join(",")}`;
  }

  show(s: LeaseState): string {
    return [
      `/\\ now = ${s.now}`,
      `/\\ expiry = (${s.expiry.map((e, p) => `${holderName(p)} :> ${e}`).join(" @@ ")})`,
    ].join("\n");
  }
}

/**
 * The abstraction from the world to the Lease spec (spec/lease.ts), and the lease invariants.
 *
 *   Holds(p) at true time t  ==  p is up and, asked for a linearizable read at t, would answer it
 *                                 from its own state: rule L3 (`canServeLeaseRead`) holds at its
 *                                 own clock reading (its lease holds by its own clock, and phase 1
 *                                 revealed every vote that could be chosen above its executed prefix)
 *   expiry[p]                ==  the true instant at which p's clock reaches role.leaseUntil
 *
 * Each world step maps to a stutter or to one Lease action of the replica that stepped:
 * Acquire(p) (p holds after, not before: enabled only if nobody else holds now), Renew(p)
 * (p's expiry moved while it holds: a renewal, or a change of its clock rate), Release(p) (p
 * stopped believing early: it stepped down or crashed; the spec's holder may give its lock up
 * at any time, which only shrinks the set of holders), or Tick (true time passed; leases whose
 * expiry is reached lapse, Tick and Expire(p) bundled). Acquire and Renew must set expiry <=
 * now + D (the spec sets exactly now + D; a real leader may trust less than the whole lease).
 *
 * Invariants (proofs/leases.md): AtMostOneLeaseholder (no two replicas hold at one true
 * instant), LeaseBounded (nobody holds more than D = leaseMs ahead), LeaseReadFresh (a read
 * answered by lease reflects every write acknowledged, and every state a read observed, before
 * it arrived). Beliefs only start at steps, and a fixed clock's belief only ends as time
 * passes, so checking at every step's instant checks every instant.
 */
import type { ReplicaState } from "../impl/core/testing/index.ts";
import { violated, type Tally } from "./violation.ts";
import type { SystemView, WorldStep } from "./world-view.ts";

/** One replica's belief: the true instant its lease ends, or -Infinity when it holds none. */
export interface LeaseBelief {
  readonly replica: number;
  readonly from: number;
  readonly until: number;
}

/** The Lease ghost: per replica, the true time its current belief ends; the history of beliefs. */
export class LeaseGhost<S, I, O> {
  /** expiry[p] in true time, -Infinity when p holds no lease. */
  readonly until: number[];
  private readonly since: number[];
  /** Every belief interval that ended, for reports (bounded). */
  get history(): readonly LeaseBelief[] {
    return this.ended;
  }
  private ended: LeaseBelief[] = [];
  /** `ended` is shared with a fork (or the ghost forked from): copy it before a change. */
  private borrowed = false;
  private static readonly historyMax = 256;

  constructor(
    private readonly view: SystemView<S, I, O>,
    /** D: the lease duration, true milliseconds. */
    private readonly leaseMs: number,
    private readonly tally: Tally,
  ) {
    this.until = view.replicas.map(() => Number.NEGATIVE_INFINITY);
    this.since = view.replicas.map(() => 0);
  }

  /** Take over `other`'s beliefs and history (the explorer forks the checker; see VotingGhost.copyFrom). */
  copyFrom(other: LeaseGhost<S, I, O>): void {
    for (let p = 0; p < this.until.length; p++) {
      this.until[p] = other.until[p]!;
      this.since[p] = other.since[p]!;
    }
    // Copy on write: beliefs end at few steps, and a fork is made per explored state.
    this.ended = other.ended;
    this.borrowed = other.borrowed = true;
  }

  /**
   * When replica `r`'s current lease ends, in true time (-Infinity: it holds none now). It holds
   * one while rule L3 lets it answer reads by lease; between its steps only its clock moves, so the
   * lease lasts until its clock reaches leaseUntil (rule L3 depends on time through that alone).
   */
  beliefOf(r: number): number {
    const rep = this.view.replicas[r]!;
    const s = rep.state;
    if (s === null || s.role._tag !== "leader") return Number.NEGATIVE_INFINITY;
    const rules = this.view.rules;
    if (!rules.canServeLeaseRead(rules, s, rep.localAt(this.view.trueTime))) return Number.NEGATIVE_INFINITY;
    return rep.trueAt(s.role.leaseUntil);
  }

  /** The holders at the current instant. */
  holders(): number[] {
    const now = this.view.trueTime;
    const out: number[] = [];
    this.until.forEach((u, p) => {
      if (u > now) out.push(p);
    });
    return out;
  }

  show(until: readonly number[]): string {
    const now = this.view.trueTime;
    const entries = until.map((u, p) => `p${p + 1} :> ${u > now ? round(u) : "None"}`);
    return `/\\ now = ${round(now)}\n/\\ expiry = (${entries.join(" @@ ")})`;
  }

  /** Map one world step onto the Lease spec and check it. */
  observe(step: WorldStep<S, I, O>): void {
    switch (step.kind) {
      case "time":
        this.tick();
        return;
      case "fault":
        return;
      case "clock":
      case "crash":
        this.replicaChanged(step.replica);
        return;
      case "event":
        this.replicaChanged(step.replica);
        return;
    }
  }

  private tick(): void {
    const now = this.view.trueTime;
    let lapsed = 0;
    this.until.forEach((u, p) => {
      if (u !== Number.NEGATIVE_INFINITY && u <= now) {
        lapsed++;
        this.end(p, u);
        if (this.cutOff(p)) this.tally.add("sometimes: lease expiry inside a partition");
        this.tally.add("sometimes: lease expired");
        this.until[p] = Number.NEGATIVE_INFINITY;
      }
    });
    this.tally.add(lapsed > 0 ? "Lease: Tick (and Expire)" : "Lease: Tick");
  }

  private cutOff(p: number): boolean {
    for (let o = 0; o < this.view.replicas.length; o++)
      if (o !== p && (this.view.linkBlocked(p, o) || this.view.linkBlocked(o, p))) return true;
    return false;
  }

  private end(p: number, at: number): void {
    if (this.borrowed) {
      this.ended = this.ended.slice();
      this.borrowed = false;
    }
    if (this.ended.length >= LeaseGhost.historyMax) this.ended.shift();
    this.ended.push({ replica: p, from: this.since[p]!, until: at });
  }

  private replicaChanged(p: number): void {
    const now = this.view.trueTime;
    const prev = this.until[p]!;
    const cur = this.beliefOf(p);
    const held = prev > now;
    const holds = cur > now;
    if (!held && !holds) return;
    if (held && !holds) {
      this.end(p, now);
      this.until[p] = Number.NEGATIVE_INFINITY;
      this.tally.add("Lease: Release");
      return;
    }
    if (held && cur === prev) return;
    const action = held ? `Renew(p${p + 1})` : `Acquire(p${p + 1})`;
    const after = this.until.slice();
    after[p] = cur;
    if (!held) {
      for (let q = 0; q < this.until.length; q++) {
        if (q === p || !(this.until[q]! > now)) continue;
        violated({
          check: "AtMostOneLeaseholder",
          level: "Lease",
          message: `replica index ${p} believes it holds the lease from true time ${round(now)} until ${round(cur)}, while replica index ${q} still holds it until ${round(this.until[q]!)}: Acquire(p${p + 1}) is not enabled`,
          before: this.show(this.until),
          after: this.show(after),
          action,
        });
      }
      this.since[p] = now;
    }
    if (cur - now > this.leaseMs) {
      violated({
        check: "LeaseBounded",
        level: "Lease",
        message: `replica index ${p} trusts its lease until true time ${round(cur)}, ${round(cur - now)} ms ahead, more than D = ${this.leaseMs} ms`,
        before: this.show(this.until),
        after: this.show(after),
        action,
      });
    }
    this.until[p] = cur;
    this.tally.add(held ? "Lease: Renew" : "Lease: Acquire");
  }

  /**
   * LeaseReadFresh, for one read answered from local state by `reader` (state after the step):
   * it must have executed every slot some client observed before the read arrived.
   */
  leaseRead(reader: number, state: ReplicaState<S, I, O>, observedSlot: number): void {
    this.tally.add("sometimes: lease read served");
    if (state.learner.executedUpTo >= observedSlot) return;
    violated({
      check: "LeaseReadFresh",
      level: "Lease",
      message: `replica index ${reader} answered a read by lease from its state after slot ${state.learner.executedUpTo}, but a client had already observed slot ${observedSlot} (an acknowledged write or an earlier read): the read is stale`,
    });
  }
}

function round(t: number): number {
  return Math.round(t * 1000) / 1000;
}

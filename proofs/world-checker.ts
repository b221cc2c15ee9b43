/**
 * Every check of the refinement chain, run after every step of the world (DESIGN.md, "The
 * refinement chain"):
 *
 *   Service (service-level.ts)      ExecutedPrefixAgreement, ExactlyOnce, DigestAgreement, RepliesMatchSpec
 *     ^ executed sequence = commands of the contiguous chosen prefix
 *   Consensus[slot] (consensus-per-slot.ts)   refines Consensus, LearnedIsChosen
 *     ^ chosen = values a quorum voted for in one ballot
 *   Voting[slot] (voting-per-slot.ts)         refines Voting, OneValuePerBallot, OneVote, VotesSafe, PromiseCoversVotes
 *     ^ votes = ghost of every durable vote, maxBal = durable promise
 *   the world's replicas                      DurableBeforeSend, DurableMaxBal (durability.ts)
 *   Lease (leases.ts)                         refines Lease, AtMostOneLeaseholder, LeaseBounded, LeaseReadFresh
 *
 * Carried effects are consumed in the order the replica carried them out, so a check sees the
 * ghost exactly as it was at that effect (a Send before its Persist is caught). The first
 * failure throws `ViolationFound`; counters of matched spec actions and rare states ("sometimes")
 * accumulate in `tally`. The checker only reads the world.
 */
import type { Application } from "../spec/state-machine.ts";
import { slotMapEntries, type ReplicaState } from "../impl/core/index.ts";
import { ConsensusGhost } from "./consensus-per-slot.ts";
import { checkDurableBeforeSend, checkLiveAcceptor } from "./durability.ts";
import { LeaseGhost } from "./leases.ts";
import { ServiceGhost } from "./service-level.ts";
import { Tally, violated } from "./violation.ts";
import { VotingGhost } from "./voting-per-slot.ts";
import type { SystemView, WorldStep } from "./world-view.ts";

/** The rare states the suites must reach (a campaign that never reaches one fails). */
export const sometimesRequired = [
  "sometimes: leader change mid phase 2",
  "sometimes: lease expiry inside a partition",
  "sometimes: read refused for want of a lease",
  "sometimes: retry answered from the session table",
] as const;

/** Options of the checker. */
export interface CheckerOptions {
  /** D, the lease duration in milliseconds (true time bound of any lease). */
  readonly leaseMs: number;
}

/** All checks over one world. */
export class WorldChecker<S, I, O> {
  readonly tally = new Tally();
  readonly voting: VotingGhost<I>;
  readonly consensus: ConsensusGhost<I>;
  readonly service: ServiceGhost<S, I, O>;
  readonly lease: LeaseGhost<S, I, O>;
  /** World steps checked. */
  steps = 0;

  constructor(
    private readonly view: SystemView<S, I, O>,
    app: Application<S, I, O>,
    options: CheckerOptions,
  ) {
    this.service = new ServiceGhost(app, (slot) => this.consensus.chosen.get(slot)?.value, this.tally);
    this.consensus = new ConsensusGhost<I>(this.tally, (slot) => this.service.chosen(slot));
    this.voting = new VotingGhost<I>(view.members, this.tally, (e) => this.consensus.choose(e));
    this.lease = new LeaseGhost(view, options.leaseMs, this.tally);
  }

  /** Check one world step (call after the world carried it out). Throws ViolationFound. */
  observe(step: WorldStep<S, I, O>): void {
    this.steps++;
    if (step.kind === "event") this.event(step);
    else this.tally.add(`world: ${step.kind}`);
    this.lease.observe(step);
  }

  private event(step: WorldStep<S, I, O> & { kind: "event" }): void {
    const a = step.replica;
    const id = this.view.members[a]!;
    const votedSlots: number[] = [];
    let answered = false;
    for (const c of step.carried) {
      switch (c._tag) {
        case "Flush":
          for (const record of c.records) {
            this.voting.flushed(a, record);
            if (record._tag === "vote") {
              votedSlots.push(record.slot);
              if (record.value._tag === "noop") this.tally.add("sometimes: a no-op fills a gap");
            }
            if (record._tag === "chosen") this.consensus.learned(id, record.slot, record.value);
          }
          break;
        case "Send":
          checkDurableBeforeSend(this.voting, a, c.message);
          if (c.message._tag === "CatchUpReply") this.tally.add("sometimes: catch-up used");
          break;
        case "Reply":
          answered ||= c.sameStep;
          this.service.reply(c);
          if (c.sameStep && c.result._tag === "ok") this.answeredLocally(step, c.request.seq === undefined);
          break;
        case "Alarm":
          violated({ check: "DigestAgreement", level: "Service", message: `replica ${id} raised a divergence alarm: ${c.message}` });
          break;
        case "Crash":
          this.tally.add("sometimes: crash in the middle of a step");
          break;
      }
    }
    if (step.after === null) return;
    checkLiveAcceptor(this.voting, a, step.after, votedSlots);
    this.service.executed(a, step.before, step.after, step.event === "Recover");
    this.rareStates(step, step.after, answered);
  }

  private answeredLocally(step: WorldStep<S, I, O> & { kind: "event" }, read: boolean): void {
    if (!read) {
      this.tally.add("sometimes: retry answered from the session table");
      return;
    }
    // A lease read changes nothing; if a crash landed after the reply, the state it read is `before`.
    const after = step.after ?? step.before!;
    this.lease.leaseRead(step.replica, after, this.service.observedSlot);
    if (after.learner.executedUpTo > this.service.observedSlot) this.service.observedSlot = after.learner.executedUpTo;
  }

  /** The "sometimes" counters that need the replica's state. */
  private rareStates(step: WorldStep<S, I, O> & { kind: "event" }, after: ReplicaState<S, I, O>, answered: boolean): void {
    const before = step.before;
    if (after.role._tag === "leader" && before?.role._tag !== "leader") {
      this.tally.add("sometimes: leader elected");
      const revealed = slotMapEntries(after.role.revealed);
      if (revealed.length > 0) this.tally.add("sometimes: phase 1 revealed a vote");
      if (revealed.some(([slot]) => !this.consensus.chosen.has(slot))) this.tally.add("sometimes: leader change mid phase 2");
    }
    if (step.event === "ClientRequest" && step.request !== undefined && step.request.seq === undefined && !answered && before?.role._tag === "leader") {
      const role = before.role;
      const rep = this.view.replicas[step.replica]!;
      if (!(rep.localAt(this.view.trueTime) < role.leaseUntil)) this.tally.add("sometimes: read refused for want of a lease");
      else this.tally.add("sometimes: read waits for phase 1's re-proposals");
    }
    if (step.event === "Receive" && step.message?._tag === "Prepare" && before !== null && before.now < before.acceptor.noPromiseUntil) {
      this.tally.add("sometimes: prepare during the restart wait");
    }
  }
}

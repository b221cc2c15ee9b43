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
 *   configurations (configurations.ts)        OneConfigurationPerSlot, RetiresOnlyWhenRemoved
 *   the world's replicas                      DurableBeforeSend, DurableMaxBal (durability.ts)
 *   Lease (leases.ts)                         refines Lease, AtMostOneLeaseholder, LeaseBounded, LeaseReadFresh
 *
 * Carried effects are consumed in the order the replica carried them out, so a check sees the
 * ghost exactly as it was at that effect (a Send before its Persist is caught). The first
 * failure throws `ViolationFound`; counters of matched spec actions and rare states ("sometimes")
 * accumulate in `tally`. The checker only reads the world.
 */
import type { Application } from "../spec/state-machine.ts";
import { configurationFor, slotMapEntries, type ReplicaState } from "../impl/core/testing/index.ts";
import { checkRetirement, ConfigurationGhost } from "./configurations.ts";
import { ConsensusGhost } from "./consensus-per-slot.ts";
import { checkDurableBeforeSend, checkLiveAcceptor } from "./durability.ts";
import { checkPromise, checkSnapshot, checkSnapshotAdvances, checkTruncation } from "./snapshots.ts";
import { LeaseGhost } from "./leases.ts";
import { ServiceGhost } from "./service-level.ts";
import { Tally, violated, type Fingerprint } from "./violation.ts";
import { VotingGhost } from "./voting-per-slot.ts";
import type { SystemView, WorldStep } from "./world-view.ts";

/** The rare states the suites must reach (a campaign that never reaches one fails). */
export const sometimesRequired = [
  "sometimes: leader change mid phase 2",
  "sometimes: lease expiry inside a partition",
  "sometimes: read refused for want of a lease",
  "sometimes: retry answered from the session table",
  // Snapshots, truncation, state transfer, reconfiguration.
  "sometimes: snapshot taken",
  "sometimes: snapshot installed by state transfer",
  "sometimes: stale transfer ignored",
  "sometimes: Promise with forgotten votes",
  "sometimes: membership change executed",
  "sometimes: leader elected with a configuration pending",
  "sometimes: removed leader stepped down",
  "world: crash during a snapshot",
  // Membership in real runs, and exactly-once.
  "sometimes: removed replica retired",
  "sometimes: joiner executed slots before its own addition",
  "world: message sent by an address the log carried",
  "sometimes: reused sequence number refused",
] as const;

/** Options of the checker. */
export interface CheckerOptions {
  /** D, the lease duration in milliseconds (true time bound of any lease). */
  readonly leaseMs: number;
  /** alpha, the reconfiguration window in slots (the replicas' reconfigAlphaSlots). Default 64. */
  readonly alpha?: number;
  /** The initial configuration's voters. Default: every member of the view. */
  readonly initialMembers?: readonly number[];
}

/** All checks over one world. */
export class WorldChecker<S, I, O> {
  readonly tally: Tally;
  readonly voting: VotingGhost<I>;
  readonly consensus: ConsensusGhost<I>;
  readonly service: ServiceGhost<S, I, O>;
  readonly lease: LeaseGhost<S, I, O>;
  readonly configurations: ConfigurationGhost<I>;
  /** World steps checked. */
  steps = 0;
  /** Per replica index: the slot of its latest durable snapshot (0: none). */
  private readonly durableSnapshot: number[];

  constructor(
    private readonly view: SystemView<S, I, O>,
    private readonly app: Application<S, I, O>,
    private readonly options: CheckerOptions,
    /** Where counters accumulate; forks share their parent's. Default: a tally of its own. */
    tally: Tally = new Tally(),
    /** The checker this one is a fork of: its immutable specs are shared. */
    parent?: WorldChecker<S, I, O>,
  ) {
    this.tally = tally;
    const chosenValue = (slot: number) => this.consensus.chosen.get(slot)?.value;
    this.service = new ServiceGhost(app, chosenValue, this.tally, parent?.service.shared);
    this.configurations = new ConfigurationGhost<I>(
      options.initialMembers ?? view.members,
      options.alpha ?? 64,
      chosenValue,
      undefined,
      parent?.configurations.machine,
    );
    this.consensus = new ConsensusGhost<I>(this.tally, (slot) => {
      this.service.chosen(slot);
      this.configurations.chosen();
    });
    this.voting = new VotingGhost<I>(
      view.members,
      this.tally,
      (e) => this.consensus.choose(e),
      (slot) => this.configurations.at(slot)?.voters,
    );
    this.lease = new LeaseGhost(view, options.leaseMs, this.tally);
    this.durableSnapshot = view.members.map(() => 0);
  }

  /**
   * A checker over `view` (a copy of this checker's world) whose ghost state is a copy of this
   * one's, so that the two go on apart: the exhaustive explorer forks the checker whenever it
   * forks the world. Counters stay shared, so they add up over the whole exploration.
   */
  fork(view: SystemView<S, I, O>): WorldChecker<S, I, O> {
    const c = new WorldChecker(view, this.app, this.options, this.tally, this);
    c.steps = this.steps;
    c.configurations.copyFrom(this.configurations);
    c.consensus.copyFrom(this.consensus);
    c.voting.copyFrom(this.voting);
    c.service.copyFrom(this.service);
    c.lease.copyFrom(this.lease);
    for (let a = 0; a < this.durableSnapshot.length; a++) c.durableSnapshot[a] = this.durableSnapshot[a]!;
    return c;
  }

  /**
   * Feed the ghost state that later checks read, beyond what the world's own state shows, into
   * `f`: every vote ever durable (a crash or a snapshot may have erased it from the replicas), the
   * highest slot a client observed, the lease beliefs and each replica's durable snapshot. What is
   * left out (chosen values, configurations, the spec's service state) is a function of it. Two
   * worlds with equal states and equal fingerprints get the same verdicts from here on.
   */
  fingerprint(f: Fingerprint): void {
    this.voting.fingerprint(f);
    f.num(this.service.observedSlot);
    for (const u of this.lease.until) f.num(u);
    for (const slot of this.durableSnapshot) f.num(slot);
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
            if (record._tag === "snapshot") {
              checkSnapshotAdvances(id, record.slot, this.durableSnapshot[a]!);
              this.durableSnapshot[a] = record.slot;
            }
          }
          break;
        case "Send":
          checkDurableBeforeSend(this.voting, a, c.message);
          if (c.message._tag === "Promise") checkPromise(this.voting, a, c.message, this.durableSnapshot[a]!);
          if (c.message._tag === "SnapshotChunk") this.tally.add("sometimes: state transfer");
          if (c.message._tag === "CatchUpReply") this.tally.add("sometimes: catch-up used");
          break;
        case "Reply":
          answered ||= c.sameStep;
          this.service.reply(c);
          if (c.sameStep && c.result._tag === "ok") this.answeredLocally(step, c.request.seq === undefined);
          break;
        case "Alarm":
          violated({
            check: "DigestAgreement",
            level: "Service",
            message: `replica ${id} raised a divergence alarm: ${c.message}`,
          });
          break;
        case "Crash":
          this.tally.add("sometimes: crash in the middle of a step");
          break;
      }
    }
    if (step.after === null) return;
    const retired = step.after.removal?.retired;
    if (retired != null && step.before?.removal?.retired == null) {
      checkRetirement(this.configurations, id, retired);
      this.tally.add("sometimes: removed replica retired");
    }
    checkLiveAcceptor(this.voting, a, step.after, votedSlots);
    this.service.executed(a, step.before, step.after, step.event === "Recover");
    this.configurations.checkReplica(id, step.after);
    checkTruncation(id, step.after, this.durableSnapshot[a]!, this.service.prefix);
    const snapshot = step.after.learner.snapshot;
    if (snapshot !== null && snapshot !== step.before?.learner.snapshot) {
      checkSnapshot(id, step.after.ctx, snapshot, this.service, this.configurations);
      this.tally.add(
        step.event === "Receive" && step.message?._tag === "SnapshotChunk"
          ? "sometimes: snapshot installed by state transfer"
          : "sometimes: snapshot taken",
      );
    }
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
  private rareStates(
    step: WorldStep<S, I, O> & { kind: "event" },
    after: ReplicaState<S, I, O>,
    answered: boolean,
  ): void {
    const before = step.before;
    if (after.role._tag === "leader" && before?.role._tag !== "leader") {
      this.tally.add("sometimes: leader elected");
      const revealed = slotMapEntries(after.role.revealed);
      if (revealed.length > 0) this.tally.add("sometimes: phase 1 revealed a vote");
      if (revealed.some(([slot]) => !this.consensus.chosen.has(slot)))
        this.tally.add("sometimes: leader change mid phase 2");
    }
    if (
      step.event === "ClientRequest" &&
      step.request !== undefined &&
      step.request.seq === undefined &&
      !answered &&
      before?.role._tag === "leader"
    ) {
      const role = before.role;
      const rep = this.view.replicas[step.replica]!;
      if (!(rep.localAt(this.view.trueTime) < role.leaseUntil))
        this.tally.add("sometimes: read refused for want of a lease");
      else this.tally.add("sometimes: read waits for phase 1's re-proposals");
    }
    if (after.role._tag === "leader" && before?.role._tag !== "leader" && after.learner.configs.length > 1) {
      this.tally.add("sometimes: leader elected with a configuration pending");
    }
    if (before?.role._tag === "leader" && after.role._tag === "follower") {
      const next = configurationFor(after.learner.configs, after.learner.executedUpTo + 1);
      if (!next.voters.includes(after.ctx.config.self)) this.tally.add("sometimes: removed leader stepped down");
    }
    if (
      step.event === "Receive" &&
      step.message?._tag === "Promise" &&
      step.message.truncatedUpTo >= step.message.fromSlot
    ) {
      this.tally.add("sometimes: Promise with forgotten votes");
    }
    if (
      after.learner.configs !== before?.learner.configs &&
      after.learner.executedUpTo > (before?.learner.executedUpTo ?? 0)
    ) {
      const latest = after.learner.configs[after.learner.configs.length - 1]!;
      if (latest.epoch > (before?.learner.executedUpTo ?? 0)) this.tally.add("sometimes: membership change executed");
    }
    if (
      step.event === "Receive" &&
      step.message?._tag === "SnapshotChunk" &&
      before !== null &&
      step.message.slot <= before.learner.executedUpTo
    ) {
      this.tally.add("sometimes: stale transfer ignored");
    }
    if (after.ctx.config.joining && after.learner.executedUpTo > (before?.learner.executedUpTo ?? 0)) {
      const latest = after.learner.configs[after.learner.configs.length - 1]!;
      const self = after.ctx.config.self;
      if (!latest.voters.includes(self) && !latest.learners.includes(self) && !latest.retired.includes(self))
        this.tally.add("sometimes: joiner executed slots before its own addition");
    }
    if (
      step.event === "Receive" &&
      step.message?._tag === "Prepare" &&
      before !== null &&
      before.now < before.acceptor.noPromiseUntil
    ) {
      this.tally.add("sometimes: prepare during the restart wait");
    }
  }
}

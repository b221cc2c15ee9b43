/**
 * Every check of the refinement chain, run after every step of the world (docs/refinement.md,
 * sections 3 to 5):
 *
 *   Service (service-level.ts)      ExecutedPrefixAgreement, ExactlyOnce, DigestAgreement, RepliesMatchSpec
 *     ^ executed sequence = commands of the contiguous chosen prefix
 *   Consensus[slot] (consensus-per-slot.ts)   refines Consensus, LearnedIsChosen
 *     ^ chosen = values a quorum voted for in one ballot
 *   Voting[slot] (voting-per-slot.ts)         refines Voting, OneValuePerBallot, OneVote, VotesSafe, PromiseCoversVotes
 *     ^ votes = ghost of every durable vote, maxBal = durable promise
 *   configurations (configurations.ts)        OneConfigurationPerSlot, RetiresOnlyWhenRemoved,
 *                                             NoDisruptionByRemoved
 *   the world's replicas                      DurableBeforeSend, DurableMaxBal (durability.ts)
 *                                             EntriesVouched (store-at-rest.ts)
 *   Lease (leases.ts)                         refines Lease, AtMostOneLeaseholder, LeaseBounded, LeaseReadFresh
 *
 * Carried effects are consumed in the order the replica carried them out, so a check sees the
 * ghost exactly as it was at that effect (a Send before its Persist is caught). The first
 * failure throws `ViolationFound`; counters of matched spec actions and rare states ("sometimes")
 * accumulate in `tally`. The checker only reads the world.
 */
import { sessionOf, type ServiceState } from "../spec/service.ts";
import type { Application } from "../spec/state-machine.ts";
import {
  checkQuorumOrigin,
  compareBallots,
  configurationFor,
  phase1CoversAbove,
  slotMapEntries,
  slotMapGet,
  valuesEqual,
  type PromiseMsg,
  type ReplicaId,
  type ReplicaState,
  type Value,
} from "../impl/core/testing/index.ts";
import type { CheckProfile } from "./check-profile.ts";
import {
  checkNoDisruptionByRemoved,
  checkRefusalFinal,
  checkRetirement,
  ConfigurationGhost,
} from "./configurations.ts";
import { ConsensusGhost } from "./consensus-per-slot.ts";
import { heldKey } from "./held.ts";
import { checkCountedVotesDurable, checkDurableBeforeSend, checkLiveAcceptor } from "./durability.ts";
import { checkPromise, checkSnapshot, checkSnapshotAdvances, checkTruncation } from "./snapshots.ts";
import { checkEntriesVouched } from "./store-at-rest.ts";
import { LeaseGhost } from "./leases.ts";
import { evictionInSnapshot, evictionTransferred, ServiceGhost } from "./service-level.ts";
import { Tally, violated, type Fingerprint } from "./violation.ts";
import { VotingGhost } from "./voting-per-slot.ts";
import type { Carried, ReplicaView, RequestInfo, SystemView, WorldStep } from "./world-view.ts";

/**
 * Where leases, clock drift and reconfiguration meet: a lease read with a configuration change
 * pending while the reader's clock runs slow and a voter's of the pending configuration fast.
 */
export const leaseReadDriftApart =
  "sometimes: lease read with a configuration change pending, the reader's clock slow and a new voter's fast";

/** The rare states the suites must reach (a campaign that never reaches one fails). */
export const sometimesRequired = [
  "sometimes: leader change mid phase 2",
  "sometimes: phase 1 revealed votes of two ballots for two values at one slot",
  "sometimes: lease expiry inside a partition",
  "sometimes: read refused for want of a lease",
  "sometimes: retry answered from the session table",
  // Snapshots, truncation, state transfer, reconfiguration.
  "sometimes: snapshot taken",
  "sometimes: snapshot installed by state transfer",
  "sometimes: stale transfer ignored",
  "sometimes: Promise with forgotten votes",
  "sometimes: membership change executed",
  "sometimes: leader elected inside the alpha window",
  "sometimes: removed leader stepped down",
  "world: crash during a snapshot",
  // A crash while a transfer is in progress (its chunks are read and dropped, never durable, except
  // at the `resume-transfers` suite tuning, where the restart resumes them): the replica comes back
  // with the state it had, and the transfer starts over. And a crash inside the
  // step that installs the transferred snapshot, its record written but not durable: the same. The
  // `retryAfterTransfer` prelude's pick bit 2 builds both, the `transfer` prelude's bit 5 the second
  // (random faults reached it about once in 1,000 runs).
  "world: crash during a transfer",
  "world: crash while installing a transferred snapshot",
  // Membership in real runs, and exactly-once.
  "sometimes: removed replica retired",
  "sometimes: replica caught up from a CatchUp's sender that is ahead",
  "sometimes: removed replica handed over by a learner of its newest configuration",
  "sometimes: joiner executed slots before its own addition",
  "world: message sent by an address the log carried",
  "sometimes: reused sequence number refused",
  // Where features meet: leases across membership changes, snapshots and transfers.
  "sometimes: lease read with a configuration change pending",
  leaseReadDriftApart,
  "sometimes: lease read just after a configuration change took effect",
  "sometimes: lease counted from grants of a configuration whose phase 1 is incomplete",
  "sometimes: removed or lagging voter campaigning",
  "sometimes: snapshot taken while a lease is held",
  "sometimes: state transfer while a lease is held",
  "sometimes: corrupted state transfer refused",
  "sometimes: state transfer resumed by asking again for a lost chunk",
  "sometimes: log truncated past the snapshot before last (the log's tail)",
  "sometimes: retry answered from a session that came by state transfer",
  // The leader's own vote counted only once durable: two followers choose without it.
  "sometimes: slot chosen without the leader's own vote",
  "world: crash before the leader's own vote was durable",
  "world: reply sent, then crash before the leader's own vote was durable",
  // ... and where it meets reconfiguration.
  "sometimes: membership change chosen without the leader's own vote",
  "sometimes: slot chosen without the leader's own vote inside the alpha window",
  // The runtime's settings (tuning 10): a follower whose process was stopped past an election
  // timeout beyond its deadline waits its whole election timeout (impl/core/election.ts).
  "world: a follower stopped an election timeout past its deadline waited its election timeout",
] as const;

/**
 * A rare state of CheckQuorum counting the time the leader ran (every tuning but 9, which counts
 * the clock): the CI safety campaign requires it, and tuning 9's must not reach it
 * (refinement-tests/suites.test.ts).
 */
export const keptAcrossOwnStall =
  "sometimes: leader kept leading across a stall of its own (CheckQuorum counts time run)";

/**
 * Rule L6's leader half at work: a leader whose lease had lapsed met a higher ballot and helped it
 * in the same step (impl/core/lease.ts, `yieldsToHigherBallot`). The CI liveness campaign requires
 * it (refinement-tests/suites.test.ts).
 */
export const lapsedLeaderGaveWay = "sometimes: leader whose lease lapsed gave way to a higher ballot at once";

/** The rare states the liveness suites must reach as well. */
export const sometimesRequiredInLiveness = [
  "liveness: leaseholder after a membership change",
  "liveness: election race won within one round trip",
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

/** What the profile calls the checks run on each kind of carried effect. */
const carriedChecks: Record<Carried<unknown, unknown>["_tag"], string> = {
  Flush: "Voting, Consensus, snapshot order (flushed records)",
  Send: "DurableBeforeSend, PromiseCoversVotes (sends)",
  Reply: "Service replies, LeaseReadFresh (replies)",
  ChangeAnswer: "RefusalFinal (membership answers)",
  OpenAnswer: "RepliesMatchSpec (open-session answers)",
  Alarm: "DigestAgreement (alarms)",
  Crash: "crash mid-step (no verdict)",
};

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
  /**
   * Per replica index: the service state a state transfer installed in this life (null: none), for
   * a counter of no verdict: a retry answered from a session that came with the transfer.
   */
  private readonly transferred: (ServiceState<S, O> | null)[];
  /** Time per check (null: not measured). A fork measures into its parent's profile. */
  profile: CheckProfile | null = null;

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
    this.service = new ServiceGhost(app, chosenValue, this.tally, parent?.service.shared, (a, stored) =>
      this.voting.durableVoteValue(a, stored.slot, stored.ballot),
    );
    this.configurations = new ConfigurationGhost<I>(
      options.initialMembers ?? view.members,
      options.alpha ?? 64,
      chosenValue,
      undefined,
      parent?.configurations.machine,
    );
    this.consensus = new ConsensusGhost<I>(
      this.tally,
      (slot) => {
        this.service.chosen(slot);
        this.configurations.chosen();
      },
      () => Math.min(this.service.prefix, this.configurations.prefix),
    );
    this.voting = new VotingGhost<I>(
      view.members,
      this.tally,
      (e) => this.consensus.choose(e),
      (slot) => this.configurations.at(slot)?.voters,
    );
    this.lease = new LeaseGhost(view, options.leaseMs, this.tally);
    this.durableSnapshot = view.members.map(() => 0);
    this.transferred = view.members.map(() => null);
  }

  /**
   * A checker over `view` (a copy of this checker's world) whose ghost state is a copy of this
   * one's, so that the two go on apart: the exhaustive explorer forks the checker whenever it
   * forks the world. Counters stay shared, so they add up over the whole exploration.
   */
  fork(view: SystemView<S, I, O>): WorldChecker<S, I, O> {
    const c = new WorldChecker(view, this.app, this.options, this.tally, this);
    c.steps = this.steps;
    c.profile = this.profile;
    c.configurations.copyFrom(this.configurations);
    c.consensus.copyFrom(this.consensus);
    c.voting.copyFrom(this.voting);
    c.service.copyFrom(this.service);
    c.lease.copyFrom(this.lease);
    for (let a = 0; a < this.durableSnapshot.length; a++) c.durableSnapshot[a] = this.durableSnapshot[a]!;
    for (let a = 0; a < this.transferred.length; a++) c.transferred[a] = this.transferred[a]!;
    return c;
  }

  /**
   * Feed the ghost state that later checks read, beyond what the world's own state shows, into
   * `f`: every vote ever durable (a crash or a snapshot may have erased it from the replicas), the
   * highest slot a client observed, the lease beliefs and each replica's durable snapshot. What is
   * left out (chosen values, configurations, the spec's service state) is a function of it. Two
   * worlds with equal states and equal fingerprints get the same verdicts from here on.
   * `downForGood(a)`: replica `a` is down and will never run again, so its durable snapshot, read
   * only by checks of its own steps, is left out too.
   */
  fingerprint(f: Fingerprint, downForGood?: (a: number) => boolean): void {
    this.voting.fingerprint(f);
    f.num(this.service.observedSlot);
    for (const u of this.lease.until) f.num(u);
    for (let a = 0; a < this.durableSnapshot.length; a++)
      f.num(downForGood?.(a) === true ? -1 : this.durableSnapshot[a]!);
  }

  /** Check one world step (call after the world carried it out). Throws ViolationFound. */
  observe(step: WorldStep<S, I, O>): void {
    this.steps++;
    const p = this.profile;
    if (step.kind === "event") this.event(step);
    else this.tally.add(`world: ${step.kind}`);
    const t = p === null ? 0 : performance.now();
    this.lease.observe(step);
    p?.lap("Lease: refines Lease, AtMostOneLeaseholder, LeaseBounded (every step)", t);
  }

  private event(step: WorldStep<S, I, O> & { kind: "event" }): void {
    const a = step.replica;
    const id = this.view.members[a]!;
    const votedSlots: number[] = [];
    let answered = false;
    /** A snapshot record was flushed, or a compaction in pieces ended: the world compacted the disk. */
    let compacted = false;
    const p = this.profile;
    let t = p === null ? 0 : performance.now();
    for (const c of step.carried) {
      switch (c._tag) {
        case "Flush":
          if (c.compacted === true) compacted = true;
          for (const record of c.records) {
            this.voting.flushed(a, record);
            if (record._tag === "vote") {
              votedSlots.push(record.slot);
              if (record.value._tag === "noop") this.tally.add("sometimes: a no-op fills a gap");
            }
            if (record._tag === "chosen") {
              const value = "value" in record ? record.value : this.voting.votedValue(a, record.slot, record.ballot);
              this.consensus.learned(id, record.slot, value);
            }
            if (record._tag === "snapshot") {
              checkSnapshotAdvances(id, record.slot, this.durableSnapshot[a]!);
              this.durableSnapshot[a] = record.slot;
              compacted = true;
            }
          }
          break;
        case "Send":
          checkDurableBeforeSend(this.voting, a, c.message);
          if (c.message._tag === "Promise") {
            const executed = (step.after ?? step.before)?.learner.executedUpTo ?? 0;
            checkPromise(this.voting, a, c.message, this.durableSnapshot[a]!, executed, this.service.prefix);
          }
          if (c.message._tag === "SnapshotChunk") {
            this.tally.add("sometimes: state transfer");
            if (this.lease.holders().length > 0) this.tally.add("sometimes: state transfer while a lease is held");
          }
          if (c.message._tag === "CatchUpReply") this.tally.add("sometimes: catch-up used");
          break;
        case "Reply":
          answered ||= c.sameStep;
          this.service.reply(c);
          // A read that waited for a value at rest is answered locally too, once it is back (rule V4).
          if ((c.sameStep || c.waited === true) && c.result._tag === "ok") this.answeredLocally(step, c.request);
          else if (c.request.seq === undefined && c.result._tag === "ok") this.answeredThroughLog(step, c.request);
          break;
        case "OpenAnswer":
          this.service.openAnswer(c.result);
          break;
        case "ChangeAnswer":
          if (c.sameStep && c.result._tag === "refused" && step.before !== null)
            checkRefusalFinal(id, step.before, c.change, this.consensus.chosen);
          if (c.sameStep && c.result._tag === "unavailable" && step.before?.role._tag === "leader")
            this.tally.add("sometimes: membership change to retry: its leader could not vouch for the configuration");
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
      if (p !== null) t = p.lap(carriedChecks[c._tag], t);
    }
    if (step.after === null) return;
    const retired = step.after.removal?.retired;
    if (retired != null && step.before?.removal?.retired == null) {
      checkRetirement(this.configurations, id, retired);
      this.tally.add("sometimes: removed replica retired");
    }
    checkLiveAcceptor(this.voting, a, step.after, votedSlots);
    if (step.after.role._tag === "leader") checkCountedVotesDurable(this.voting, step.after.role);
    if (p !== null) t = p.lap("RetiresOnlyWhenRemoved, DurableMaxBal, CountedVotesDurable (live acceptor)", t);
    this.helped(step, id, step.after);
    if (p !== null) t = p.lap("NoDisruptionByRemoved", t);
    this.service.executed(a, step.before, step.after, step.event === "Recover");
    if (p !== null) t = p.lap("Service: ExecutedPrefixAgreement, ExactlyOnce (executed)", t);
    this.configurations.checkReplica(id, step.after);
    if (p !== null) t = p.lap("OneConfigurationPerSlot (a replica's configurations)", t);
    checkTruncation(id, step.after, this.durableSnapshot[a]!, this.service.prefix);
    const named = step.after.learner.origins;
    const renamed = named !== step.before?.learner.origins;
    if (
      step.after.ctx.storeAtRest !== null &&
      (compacted || renamed || step.after.learner.service !== step.before?.learner.service)
    ) {
      checkEntriesVouched(id, step.after, this.view.replicas[a]!.durable);
      if (renamed && named.size > 0) this.tally.add("sometimes: a store value named by the vote that wrote it");
      if (p !== null) t = p.lap("EntriesVouched", t);
    }
    const snapshot = step.after.learner.snapshot;
    if (snapshot !== null && snapshot !== step.before?.learner.snapshot) {
      checkSnapshot(id, step.after.ctx, snapshot, this.service, this.configurations);
      const installed = step.event === "Receive" && step.message?._tag === "SnapshotChunk";
      this.tally.add(installed ? "sometimes: snapshot installed by state transfer" : "sometimes: snapshot taken");
      if ((step.after.learner.service.features?.evicted ?? 0) > 0)
        this.tally.add(installed ? evictionTransferred : evictionInSnapshot);
      if (installed && step.after.learner.executedUpTo === snapshot.slot)
        this.transferred[a] = step.after.learner.service;
      if (!installed && this.lease.holders().length > 0)
        this.tally.add("sometimes: snapshot taken while a lease is held");
      const before = step.event === "Recover" ? null : step.before;
      if (!installed && before !== null && step.after.learner.logTruncatedUpTo > (before.learner.snapshot?.slot ?? 0))
        this.tally.add("sometimes: log truncated past the snapshot before last (the log's tail)");
    }
    this.transferFaults(step, step.after);
    if (p !== null) t = p.lap("Truncation and snapshot checks", t);
    this.rareStates(step, step.after, answered);
    this.catchUpPaths(step, step.after);
    p?.lap("counters of rare states (no verdict)", t);
  }

  /**
   * The two faults a state transfer recovers from (impl/core/transfer.ts): a corrupted transfer,
   * complete but failing its digests, is dropped whole (rule S2); a transfer whose chunk (or the
   * request for it) was lost asks for that chunk again after a heartbeat interval of silence
   * (`requestedAt` then passes `progressAt`) and resumes when it comes.
   */
  private transferFaults(step: WorldStep<S, I, O> & { kind: "event" }, state: ReplicaState<S, I, O>): void {
    const transfer = step.before?.learner.transfer ?? null;
    if (transfer === null || step.message?._tag !== "SnapshotChunk") return;
    const after = state.learner.transfer;
    const installed = state.learner.snapshot !== step.before?.learner.snapshot;
    if (after === null && !installed) this.tally.add("sometimes: corrupted state transfer refused");
    // The transfer in progress went on (a newer snapshot's first chunk would start another one).
    const grew =
      after === null
        ? installed && state.learner.snapshot?.slot === transfer.slot
        : after.slot === transfer.slot && after.received > transfer.received;
    if (grew && transfer.requestedAt > transfer.progressAt)
      this.tally.add("sometimes: state transfer resumed by asking again for a lost chunk");
  }

  /**
   * The two ways a removed replica's chosen slots reach the replicas that stay (proofs/reconfiguration.md):
   * a removed replica handed over (rule R5) by a heartbeat from a learner of the newest configuration
   * it knows (a learner promoted since, leading a later configuration), and a replica asked by a
   * CatchUp from above its executed prefix that asks the sender for those slots in turn.
   */
  private catchUpPaths(step: WorldStep<S, I, O> & { kind: "event" }, after: ReplicaState<S, I, O>): void {
    const before = step.before;
    const m = step.message;
    if (before === null || step.event !== "Receive" || m === undefined || step.from === undefined) return;
    if (m._tag === "Heartbeat" && after.removal?.handedOver === true && before.removal?.handedOver !== true) {
      const latest = before.learner.configs[before.learner.configs.length - 1]!;
      if (latest.learners.includes(step.from))
        this.tally.add("sometimes: removed replica handed over by a learner of its newest configuration");
    }
    if (m._tag === "CatchUp" && m.fromSlot - 1 > before.learner.executedUpTo) {
      const from = step.from;
      if (step.carried.some((c) => c._tag === "Send" && c.to === from && c.message._tag === "CatchUp"))
        this.tally.add("sometimes: replica caught up from a CatchUp's sender that is ahead");
    }
  }

  /**
   * A leader whose lease had lapsed by its own clock helped a higher ballot's Prepare, Accept or
   * Heartbeat in one step: it gave way (rule L6) rather than refuse with its self-grant.
   */
  private gaveWay(step: WorldStep<S, I, O>, before: ReplicaState<S, I, O> | null, after: ReplicaState<S, I, O>): void {
    if (step.kind !== "event" || step.event !== "Receive" || before?.role._tag !== "leader") return;
    const m = step.message;
    if (m === undefined || (m._tag !== "Prepare" && m._tag !== "Accept" && m._tag !== "Heartbeat")) return;
    if (this.view.rules.compareBallots(m.ballot, before.role.ballot) <= 0) return;
    if (after.now < before.role.leaseUntil) return;
    const grant = after.acceptor.grantTo;
    if (after.role._tag === "follower" && this.view.rules.compareBallots(grant, m.ballot) === 0)
      this.tally.add(lapsedLeaderGaveWay);
  }

  /**
   * A Prepare, Accept or Heartbeat that the replica helped (a grant to its ballot given or renewed):
   * NoDisruptionByRemoved, when the ballot's leader was removed.
   */
  private helped(step: WorldStep<S, I, O> & { kind: "event" }, id: number, after: ReplicaState<S, I, O>): void {
    const m = step.message;
    const before = step.before;
    if (m === undefined || before === null || step.event !== "Receive") return;
    if (m._tag !== "Prepare" && m._tag !== "Accept" && m._tag !== "Heartbeat") return;
    if (m.ballot.replica === id) return;
    const grant = after.acceptor;
    if (grant.grantTo.round !== m.ballot.round || grant.grantTo.replica !== m.ballot.replica) return;
    if (grant.grantUntil === before.acceptor.grantUntil) return;
    const what = m._tag === "Prepare" ? "promised" : m._tag === "Accept" ? "voted for" : "renewed its grant to";
    checkNoDisruptionByRemoved(this.configurations, id, before.learner.executedUpTo, m.ballot.replica, what);
  }

  private answeredLocally(step: WorldStep<S, I, O> & { kind: "event" }, request: RequestInfo<I>): void {
    if (request.seq !== undefined) {
      this.tally.add("sometimes: retry answered from the session table");
      // Where snapshots, transfers and sessions meet: the session that answered came with a
      // snapshot a state transfer installed (a snapshot that dropped sessions would run it again).
      const transferred = this.transferred[step.replica];
      const session = transferred == null ? undefined : sessionOf(transferred, request.clientId);
      if (session !== undefined && session.seq >= request.seq)
        this.tally.add("sometimes: retry answered from a session that came by state transfer");
      return;
    }
    // A lease read changes nothing; if a crash landed after the reply, the state it read is `before`.
    const after = step.after ?? step.before!;
    this.lease.leaseRead(step.replica, after, this.service.observedSlot);
    const configs = after.learner.configs;
    if (configs.length > 1) {
      this.tally.add("sometimes: lease read with a configuration change pending");
      if (this.driftApart(step.replica, configs[configs.length - 1]!.voters)) this.tally.add(leaseReadDriftApart);
    }
    const inForce = configs[0]!;
    if (inForce.epoch > 0 && after.learner.executedUpTo < inForce.governsFrom + after.ctx.config.reconfigAlphaSlots)
      this.tally.add("sometimes: lease read just after a configuration change took effect");
    if (after.learner.executedUpTo > this.service.observedSlot) this.service.observedSlot = after.learner.executedUpTo;
  }

  /**
   * The reader's clock runs slower than true time (its lease lasts longer in true time than by its
   * clock) and the clock of some voter of `voters` other than the reader runs faster (that voter's
   * grant lapses sooner): the two directions of drift that rule L2's margin covers together.
   */
  private driftApart(reader: number, voters: readonly ReplicaId[]): boolean {
    const t = this.view.trueTime;
    const rate = (r: ReplicaView<S, I, O>): number => r.localAt(t + 1000) - r.localAt(t);
    if (!(rate(this.view.replicas[reader]!) < 1000)) return false;
    return this.view.replicas.some(
      (r, k) => k !== reader && r.state !== null && voters.includes(r.id) && rate(r) > 1000,
    );
  }

  /**
   * A read answered through the log observed the state after its slot: later reads by lease must
   * reflect at least that slot (LeaseReadFresh), as they must reflect an acknowledged write.
   */
  private answeredThroughLog(step: WorldStep<S, I, O> & { kind: "event" }, request: RequestInfo<I>): void {
    const slot = slotOfLogAnswer(step.before, step.after, request, (s) => this.consensus.chosen.get(s)?.value);
    if (slot === undefined) return;
    this.tally.add("sometimes: read answered through the log");
    if (slot > this.service.observedSlot) this.service.observedSlot = slot;
  }

  /**
   * A replica starts a campaign while it is removed in the latest chosen configuration, or does not
   * know it yet (it has not executed a change already chosen): the campaigns rule R4 is about.
   */
  private campaigns(before: ReplicaState<S, I, O> | null, after: ReplicaState<S, I, O>): void {
    // Rule L5's exception: a voter whose removal is chosen, and known to it, starts a campaign
    // (it promises a ballot of its own), since no voter that stays votes in the configuration
    // governing its next slot. With a single voter it may be elected, decide the window's last
    // slots and retire within the same step, so the step's start tells.
    if (before !== null && before.role._tag !== "leader") {
      const self = after.ctx.config.self;
      const own = after.acceptor.maxBal;
      const campaigned = own.replica === self && compareBallots(own, before.acceptor.maxBal) > 0;
      if (campaigned && before.learner.configs[before.learner.configs.length - 1]!.retired.includes(self))
        this.tally.add("sometimes: retiring voter campaigning where no staying voter may");
    }
    if (after.role._tag !== "candidate" || before?.role._tag === "candidate") return;
    const latest = this.configurations.configs[this.configurations.configs.length - 1]!;
    const mine = after.learner.configs[after.learner.configs.length - 1]!;
    if (!latest.voters.includes(after.ctx.config.self) || mine.epoch < latest.chosenAt)
      this.tally.add("sometimes: removed or lagging voter campaigning");
  }

  /**
   * A leader whose lease holds by its own clock (a quorum of grants in every configuration it
   * holds) while phase 1 of one of them is incomplete: the state in which only rule L3 keeps its
   * reads safe (HeartbeatAcks or truncated Promises of a pending configuration).
   */
  private incompleteLease(
    step: WorldStep<S, I, O> & { kind: "event" },
    before: ReplicaState<S, I, O> | null,
    after: ReplicaState<S, I, O>,
  ): void {
    const role = after.role;
    if (role._tag !== "leader") return;
    const local = this.view.replicas[step.replica]!.localAt(this.view.trueTime);
    if (!(local < role.leaseUntil)) return;
    const rules = this.view.rules;
    if (phase1CoversAbove(rules, role, after.learner.configs, after.learner.executedUpTo)) return;
    if (
      before !== null &&
      before.role._tag === "leader" &&
      local < before.role.leaseUntil &&
      !phase1CoversAbove(rules, before.role, before.learner.configs, before.learner.executedUpTo)
    )
      return;
    this.tally.add("sometimes: lease counted from grants of a configuration whose phase 1 is incomplete");
  }

  /**
   * Phase 1 at a slot hears votes of two ballots for two values (the one revealed so far and the
   * Promise's): the state in which Paxos's P2c, re-proposing the highest-ballot vote, decides
   * what is safe.
   */
  private twoBallotsRevealed(before: ReplicaState<S, I, O> | null, m: PromiseMsg<I>): void {
    const role = before?.role;
    if (role === undefined || role._tag === "follower" || compareBallots(m.ballot, role.ballot) !== 0) return;
    if (role._tag === "candidate" && m.fromSlot !== role.fromSlot) return;
    const mergeFrom = role._tag === "candidate" ? role.fromSlot : role.nextSlot;
    for (const v of m.votes) {
      if (v.slot < mergeFrom) continue;
      const known = slotMapGet(role.revealed, v.slot);
      if (known === undefined || compareBallots(known.ballot, v.ballot) === 0 || valuesEqual(known.value, v.value))
        continue;
      this.tally.add("sometimes: phase 1 revealed votes of two ballots for two values at one slot");
      return;
    }
  }

  /**
   * A follower's Accepted completes a quorum at a leader whose own vote there is not known durable
   * yet: two followers chose the slot without it (proofs/durability.md, CountedVotesDurable). Where
   * it meets reconfiguration: the slot holds a membership change, or falls inside the alpha window
   * (a change chosen, not yet governing), so its quorum is one of the voters in force there.
   */
  private chosenWithoutOwnVote(before: ReplicaState<S, I, O> | null, after: ReplicaState<S, I, O>): void {
    const role = before?.role;
    if (role?._tag !== "leader") return;
    const self = after.ctx.config.self;
    role.inflight.forEach((proposal, i) => {
      const slot = role.inflightBase + i;
      const k = proposal.voters.indexOf(self);
      if (proposal.chosen || k < 0 || (proposal.acks & (1 << k)) !== 0) return;
      if (after.learner.executedUpTo < slot && slotMapGet(after.learner.log, slot) === undefined) return;
      this.tally.add("sometimes: slot chosen without the leader's own vote");
      if (proposal.value._tag === "reconfig")
        this.tally.add("sometimes: membership change chosen without the leader's own vote");
      if (before!.learner.configs.length > 1)
        this.tally.add("sometimes: slot chosen without the leader's own vote inside the alpha window");
    });
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
    if (step.event === "Recover" && after.removal?.handedOver === true)
      this.tally.add("sometimes: removed replica restarted handed over (its hand-over record)");
    this.campaigns(before, after);
    this.incompleteLease(step, before, after);
    if (after.role._tag === "leader" && before?.role._tag !== "leader" && after.learner.configs.length > 1) {
      this.tally.add("sometimes: leader elected inside the alpha window");
    }
    if (
      after.role._tag === "leader" &&
      after.role.stalls.length > 0 &&
      after.now >= checkQuorumOrigin(this.view.rules, after, after.role) + after.ctx.config.electionTimeoutMsMin
    )
      // A tick now would have stepped it down had CheckQuorum counted the clock (check-quorum.ts).
      // Reached only with the option on: every tuning but 9.
      this.tally.add(keptAcrossOwnStall);
    this.gaveWay(step, before, after);
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
    if (step.event === "Receive" && step.message?._tag === "Promise") this.twoBallotsRevealed(before, step.message);
    if (step.event === "Receive" && step.message?._tag === "Accepted") this.chosenWithoutOwnVote(before, after);
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

/**
 * The slot at which a leader executed the one-shot request (a read through the log) it answered in
 * a step: its proposal's slot in the leader's pipeline before the step, or, when it was proposed
 * and chosen in that same step (a configuration with one voter), the first slot executed in the
 * step whose chosen batch holds that command (whole or held). Undefined if neither says.
 */
export function slotOfLogAnswer<S, I, O>(
  before: ReplicaState<S, I, O> | null,
  after: ReplicaState<S, I, O> | null,
  request: RequestInfo<I>,
  chosenValue: (slot: number) => Value<I> | undefined,
): number | undefined {
  if (before?.role._tag === "leader") {
    const role = before.role;
    const i = role.inflight.findIndex((p) => p.requestIds.includes(request.requestId));
    if (i >= 0) return role.inflightBase + i;
  }
  const from = (before?.learner.executedUpTo ?? 0) + 1;
  const to = after?.learner.executedUpTo ?? from - 1;
  for (let slot = from; slot <= to; slot++) {
    const value = chosenValue(slot);
    if (value?._tag !== "batch") continue;
    // The chosen value may be held by its digest already (proofs/held.ts): compare held keys.
    const wanted = heldKey(request.input);
    if (value.commands.some((c) => c.clientId === undefined && heldKey(c.input) === wanted)) return slot;
  }
  return undefined;
}

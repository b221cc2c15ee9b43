/**
 * Trace validation, part two: the invariants of proofs/ checked on the merged, replayed traces
 * of a real run (trace-replay.ts). Steps of all replicas are merged in true time: every replica
 * reads the machine's monotonic clock, so a reading with its injected skew removed is true time
 * on one axis for the whole run.
 *
 *   TraceExplainedByCore  each life's traced effects are what `step` returns (trace-replay.ts)
 *   DurableBeforeSend     no Promise(b) leaves unless durable maxBal >= b; no Accepted(s, b)
 *                         unless the vote (s, b) is durable, at the moment it leaves
 *   DurableRecordsSurvive a restarted replica recovers exactly the records it committed before
 *   OneValuePerBallot     at most one value per (slot, ballot) in Accepts and durable votes
 *   VoteAboveMaxBal       an acceptor never votes in a ballot below one it promised (durably)
 *   ExecutedPrefixAgreement every replica executes the same value at every slot
 *   ChosenAt              every executed value had a quorum of durable votes in one ballot
 *   AtMostOneLeaseholder  no two replicas believe they hold a lease at one true instant
 *   ReceiveHasSend        every receipt pairs with a send of the same message
 *   NoDivergenceAlarm     no replica raised the divergence alarm
 *
 * Until the world checkers of proofs/ (issue #4) are on main, these are implemented here over
 * the replayed steps; `ReplayStep` carries the states before and after each event, so the same
 * steps can be handed to those checkers through an adapter. The checks only read.
 */
import { createHash } from "node:crypto";
import { compareBallots, showBallot, slotMapGet, type Ballot } from "../../impl/core/index.ts";
import type { KvMessage, KvRecord } from "../../impl/runtime/core-adapter.ts";
import type { ClockSkew } from "./cluster.ts";
import { readTraceLives, replayLives, type LifeSummary, type ReplayStep, type TraceViolation } from "./trace-replay.ts";

/** Options of {@link checkTraces}. */
export interface TraceCheckOptions {
  /** Trace file per replica id. */
  readonly files: ReadonlyMap<number, string>;
  readonly core?: Record<string, unknown>;
  /**
   * Clock skew per replica id, overriding what the traces' start lines say. Default: the start
   * lines (a trace validator told a wrong clock sees leases where there were none: the
   * beyond-the-bound experiment and the tests use that).
   */
  readonly clocks?: ReadonlyMap<number, ClockSkew>;
  /** Violations kept per check (the rest are counted). Default 20. */
  readonly violationsPerCheckMax?: number;
}

/** One interval during which a replica believed it held a lease, in true (monotonic) ms. */
export interface LeaseInterval {
  readonly replica: number;
  readonly ballot: string;
  readonly from: number;
  readonly to: number;
}

/** The outcome of trace validation. */
export interface TraceReport {
  readonly ok: boolean;
  readonly violations: readonly TraceViolation[];
  /** Violations per check, including those not kept. */
  readonly violationCounts: Readonly<Record<string, number>>;
  readonly steps: number;
  readonly lives: number;
  /** How often each notable thing happened: what the run exercised. */
  readonly tally: Readonly<Record<string, number>>;
  readonly leaseIntervals: readonly LeaseInterval[];
  /** Highest executed slot seen. */
  readonly executedSlots: number;
}

/** A short fingerprint of a message's traced text (sends are kept until their receipt). */
function fingerprint(text: string): string {
  return createHash("sha1").update(text).digest("base64");
}

/** Beliefs of one replica in one ballot that touch (within this many true ms) are one interval. */
const leaseJoinGapMs = 0;

/** Durable Voting state of one acceptor: its maxBal and the votes on its disk. */
class DurableGhost {
  maxBal: Ballot = { round: 0, replica: 0 };
  readonly votes = new Set<string>();
  apply(record: KvRecord): void {
    if (record._tag === "chosen") return;
    if (compareBallots(record.ballot, this.maxBal) > 0) this.maxBal = record.ballot;
    if (record._tag === "vote") this.votes.add(`${record.slot}/${showBallot(record.ballot)}`);
  }
  reset(records: readonly KvRecord[]): void {
    this.maxBal = { round: 0, replica: 0 };
    this.votes.clear();
    for (const record of records) this.apply(record);
  }
}

/** All checks over the merged steps of one run. */
class TraceChecker {
  readonly violations: TraceViolation[] = [];
  readonly counts: Record<string, number> = {};
  readonly tally: Record<string, number> = {};
  private readonly ballotValues = new Map<string, string>();
  private readonly executed = new Map<number, string>();
  /** Every vote any acceptor made durable: "slot/ballot" -> value key -> voter ids. */
  private readonly durableVotes = new Map<string, Map<string, Set<number>>>();
  private readonly acceptorMax = new Map<number, Ballot>();
  private readonly ghosts = new Map<number, DurableGhost>();
  private readonly sends = new Map<string, string>();
  private readonly receipts = new Map<string, string>();
  readonly leaseIntervals: LeaseInterval[] = [];
  private readonly lastLease = new Map<number, number>();
  /** Per replica: the belief opened by its last step (closed by its next step). */
  private readonly openLease = new Map<number, { life: number; ballot: string; from: number; until: number }>();
  steps = 0;
  maxExecuted = 0;

  constructor(
    private readonly members: readonly number[],
    private readonly trueAt: (step: ReplayStep, reading: number) => number,
    private readonly keepPerCheck: number,
  ) {}

  violate(check: string, replica: number, message: string): void {
    const count = (this.counts[check] ?? 0) + 1;
    this.counts[check] = count;
    if (count <= this.keepPerCheck) this.violations.push({ check, replica, message });
  }

  count(what: string): void {
    this.tally[what] = (this.tally[what] ?? 0) + 1;
  }

  observe(step: ReplayStep): void {
    this.steps += 1;
    this.count(`event ${step.event._tag}`);
    const ghost = this.ghostOf(step.replica);
    if (step.event._tag === "Recover") {
      ghost.reset(step.event.records);
      this.recovered(step.replica, step.event.records);
    }
    let persisted = false;
    let sendIndex = 0;
    for (const effect of step.effects) {
      switch (effect._tag) {
        case "Persist":
          // A `chosen` record is deferrable: what follows it does not wait for its commit.
          if (effect.record._tag !== "chosen") persisted = true;
          if (!step.committed) break;
          ghost.apply(effect.record);
          this.durable(step.replica, effect.record);
          break;
        case "Send": {
          const wireId = step.wireIds[sendIndex++];
          // In a last batch lost to a SIGKILL, nothing after a (non-deferrable) Persist left the process.
          if (persisted && !step.committed) break;
          this.count(`send ${effect.message._tag}`);
          this.durableBeforeSend(step.replica, ghost, effect.message);
          this.phase2aValue(step.replica, effect.message);
          if (wireId !== undefined) this.pairSend(`${step.incarnation}/${wireId}->${effect.to}`, JSON.stringify(step.sentAs[sendIndex - 1]));
          break;
        }
        case "Reply":
          this.count(`reply ${effect.result._tag}`);
          if (step.event._tag === "ClientRequest" && effect.requestId === step.event.requestId && effect.result._tag === "ok") {
            this.count(step.event.input._tag === "get" ? "read answered in its own step (lease read)" : "write answered in its own step (session table)");
          }
          break;
        case "Alarm":
          this.violate("NoDivergenceAlarm", step.replica, effect.message);
          break;
      }
    }
    if (step.event._tag === "Receive" && step.receivedAs !== undefined) {
      this.pairReceipt(`${step.receivedAs.incarnation}/${step.receivedAs.wireId}->${step.replica}`, JSON.stringify(step.receivedMessage));
    }
    this.executedPrefix(step);
    this.lease(step);
    this.rareStates(step);
  }

  private ghostOf(replica: number): DurableGhost {
    let ghost = this.ghosts.get(replica);
    if (ghost === undefined) this.ghosts.set(replica, (ghost = new DurableGhost()));
    return ghost;
  }

  /**
   * The records a restarted replica found on its disk. They include any a SIGKILL kept out of
   * the trace (a commit whose lines were lost), so they count as durable votes too.
   */
  private recovered(replica: number, records: readonly KvRecord[]): void {
    for (const record of records) {
      if (record._tag !== "vote") continue;
      const slotBallot = `${record.slot}/${showBallot(record.ballot)}`;
      const value = JSON.stringify(record.value);
      this.oneValue(replica, slotBallot, value, "a recovered vote");
      let byValue = this.durableVotes.get(slotBallot);
      if (byValue === undefined) this.durableVotes.set(slotBallot, (byValue = new Map<string, Set<number>>()));
      let voters = byValue.get(value);
      if (voters === undefined) byValue.set(value, (voters = new Set<number>()));
      voters.add(replica);
    }
  }

  /** A record reached replica's disk: Voting's ghost and the per-acceptor order of ballots. */
  private durable(replica: number, record: KvRecord): void {
    if (record._tag === "chosen") return;
    const max = this.acceptorMax.get(replica);
    if (record._tag === "vote" && max !== undefined && compareBallots(record.ballot, max) < 0) {
      this.violate("VoteAboveMaxBal", replica, `voted at slot ${record.slot} in ${showBallot(record.ballot)} after promising ${showBallot(max)}`);
    }
    if (max === undefined || compareBallots(record.ballot, max) > 0) this.acceptorMax.set(replica, record.ballot);
    if (record._tag !== "vote") return;
    const slotBallot = `${record.slot}/${showBallot(record.ballot)}`;
    const value = JSON.stringify(record.value);
    this.oneValue(replica, slotBallot, value, "a durable vote");
    let byValue = this.durableVotes.get(slotBallot);
    if (byValue === undefined) this.durableVotes.set(slotBallot, (byValue = new Map<string, Set<number>>()));
    let voters = byValue.get(value);
    if (voters === undefined) byValue.set(value, (voters = new Set<number>()));
    voters.add(replica);
  }

  private oneValue(replica: number, slotBallot: string, value: string, what: string): void {
    const known = this.ballotValues.get(slotBallot);
    if (known === undefined) this.ballotValues.set(slotBallot, value);
    else if (known !== value) this.violate("OneValuePerBallot", replica, `${what} at slot/ballot ${slotBallot} is ${value.slice(0, 200)}, another is ${known.slice(0, 200)}`);
  }

  private phase2aValue(replica: number, message: KvMessage): void {
    if (message._tag !== "Accept") return;
    this.oneValue(replica, `${message.slot}/${showBallot(message.ballot)}`, JSON.stringify(message.value), "an Accept");
  }

  /**
   * DurableBeforeSend, as the core's contract states it: at each Send, in effect order, the
   * durable records are those of earlier steps and the Persists before it in this step.
   */
  private durableBeforeSend(replica: number, ghost: DurableGhost, message: KvMessage): void {
    if (message._tag === "Promise" && compareBallots(ghost.maxBal, message.ballot) < 0) {
      this.violate("DurableBeforeSend", replica, `Promise ${showBallot(message.ballot)} sent while durable maxBal is ${showBallot(ghost.maxBal)}`);
    }
    if (message._tag === "Accepted" && !ghost.votes.has(`${message.slot}/${showBallot(message.ballot)}`)) {
      this.violate("DurableBeforeSend", replica, `Accepted for slot ${message.slot} in ${showBallot(message.ballot)} sent before the vote was durable`);
    }
  }

  private pairSend(key: string, text: string): void {
    const hash = fingerprint(text);
    const receipt = this.receipts.get(key);
    if (receipt === undefined) this.sends.set(key, hash);
    else {
      this.receipts.delete(key);
      if (receipt !== hash) this.violate("ReceiveHasSend", 0, `receipt ${key} differs from the message sent`);
    }
  }

  private pairReceipt(key: string, text: string): void {
    const hash = fingerprint(text);
    const send = this.sends.get(key);
    if (send === undefined) this.receipts.set(key, hash);
    else {
      this.sends.delete(key);
      if (send !== hash) this.violate("ReceiveHasSend", 0, `receipt ${key} differs from the message sent`);
    }
  }

  /** ExecutedPrefixAgreement: the value executed at each slot is the same everywhere. */
  private executedPrefix(step: ReplayStep): void {
    const from = step.event._tag === "Recover" ? 0 : step.before.learner.executedUpTo;
    const to = step.after.learner.executedUpTo;
    for (let slot = from + 1; slot <= to; slot++) {
      const value = slotMapGet(step.after.learner.log, slot);
      const text = JSON.stringify(value);
      const known = this.executed.get(slot);
      if (known === undefined) this.executed.set(slot, text);
      else if (known !== text) this.violate("ExecutedPrefixAgreement", step.replica, `slot ${slot}: executed ${text.slice(0, 200)}, another replica executed ${known.slice(0, 200)}`);
    }
    if (to > this.maxExecuted) this.maxExecuted = to;
  }

  /** Lease beliefs: replica r believes at true t iff it leads and its clock at t < leaseUntil. */
  private lease(step: ReplayStep): void {
    const t = this.trueAt(step, step.now);
    const open = this.openLease.get(step.replica);
    if (open !== undefined) {
      // Same life: the belief lasted until this step at most. Another life: until its lease ran out.
      const to = open.life === step.life ? Math.min(open.until, t) : open.until;
      if (to > open.from) this.addLeaseInterval({ replica: step.replica, ballot: open.ballot, from: open.from, to });
      this.openLease.delete(step.replica);
    }
    const role = step.after.role;
    if (role._tag === "leader" && step.after.halted === null) {
      const until = this.trueAt(step, role.leaseUntil);
      if (until > t) this.openLease.set(step.replica, { life: step.life, ballot: showBallot(role.ballot), from: t, until });
    }
  }

  /** Record a belief, joining it to the replica's previous one when they touch (one per step otherwise). */
  private addLeaseInterval(interval: LeaseInterval): void {
    const index = this.lastLease.get(interval.replica);
    const previous = index === undefined ? undefined : this.leaseIntervals[index];
    if (previous !== undefined && previous.ballot === interval.ballot && interval.from <= previous.to + leaseJoinGapMs) {
      this.leaseIntervals[index!] = { ...previous, to: Math.max(previous.to, interval.to) };
      return;
    }
    this.lastLease.set(interval.replica, this.leaseIntervals.length);
    this.leaseIntervals.push(interval);
  }

  private rareStates(step: ReplayStep): void {
    const before = step.before;
    const after = step.after;
    if (after.role._tag === "leader" && before.role._tag !== "leader") this.count("leader elected");
    if (after.role._tag === "candidate" && before.role._tag !== "candidate") this.count("campaign started");
    if (before.role._tag === "leader" && after.role._tag !== "leader") this.count("leader stepped down");
    if (step.event._tag === "Receive" && step.event.message._tag === "Prepare" && before.now < before.acceptor.noPromiseUntil) this.count("prepare during the restart wait");
    if (step.event._tag === "ClientRequest" && before.role._tag === "leader" && step.event.input._tag === "get" && !(step.now < before.role.leaseUntil)) {
      this.count("read at a leader without a valid lease");
    }
  }

  /** Checks that need the whole run. */
  finish(summaries: readonly LifeSummary[]): void {
    for (const [key] of this.receipts) this.violate("ReceiveHasSend", 0, `receipt ${key} has no matching send in any trace`);
    for (const [key, open] of this.openLease) this.addLeaseInterval({ replica: key, ballot: open.ballot, from: open.from, to: open.until });
    this.openLease.clear();
    this.leaseOverlaps();
    this.chosenAt();
    this.recoveries(summaries);
  }

  private leaseOverlaps(): void {
    const sorted = [...this.leaseIntervals].sort((a, b) => a.from - b.from);
    let latest: LeaseInterval | undefined;
    for (const interval of sorted) {
      if (latest !== undefined && latest.replica !== interval.replica && interval.from < latest.to) {
        this.violate("AtMostOneLeaseholder", interval.replica, `replica ${interval.replica} (${interval.ballot}) believed it held a lease from ${interval.from.toFixed(3)} while replica ${latest.replica} (${latest.ballot}) did until ${latest.to.toFixed(3)} (true ms)`);
      }
      if (latest === undefined || interval.to > latest.to) latest = interval;
    }
  }

  private chosenAt(): void {
    const quorum = Math.floor(this.members.length / 2) + 1;
    const bySlot = new Map<number, { value: string; voters: number }[]>();
    for (const [slotBallot, byValue] of this.durableVotes) {
      const slot = Number(slotBallot.split("/")[0]);
      let list = bySlot.get(slot);
      if (list === undefined) bySlot.set(slot, (list = []));
      for (const [value, voters] of byValue) list.push({ value, voters: voters.size });
    }
    for (const [slot, value] of this.executed) {
      const ok = (bySlot.get(slot) ?? []).some((v) => v.value === value && v.voters >= quorum);
      if (!ok) this.violate("ChosenAt", 0, `slot ${slot} executed ${value.slice(0, 200)} without a quorum of durable votes for it in one ballot`);
    }
  }

  private recoveries(summaries: readonly LifeSummary[]): void {
    for (const v of checkRecoveries(summaries)) this.violate(v.check, v.replica, v.message);
  }
}

/**
 * DurableRecordsSurvive: each life of a replica recovers exactly the records its previous life
 * recovered plus those it committed (and, after a SIGKILL, possibly a prefix of the records of
 * the batches whose commit was not traced).
 */
export function checkRecoveries(summaries: readonly LifeSummary[]): TraceViolation[] {
  const violations: TraceViolation[] = [];
  const byReplica = new Map<number, LifeSummary[]>();
  for (const s of summaries) {
    let list = byReplica.get(s.replica);
    if (list === undefined) byReplica.set(s.replica, (list = []));
    list.push(s);
  }
  for (const [replica, lives] of byReplica) {
    lives.sort((a, b) => a.life - b.life);
    for (let k = 1; k < lives.length; k++) {
      const previous = lives[k - 1]!;
      const expected = [...previous.recoveredRecords, ...previous.committedRecords].map((r) => JSON.stringify(r));
      const recovered = lives[k]!.recoveredRecords.map((r) => JSON.stringify(r));
      const extra = recovered.slice(expected.length);
      const uncertain = previous.uncertainRecords.map((r) => JSON.stringify(r));
      const prefixOk = expected.every((r, i) => recovered[i] === r);
      // Transactions commit in order: what a SIGKILL left beyond the committed records is a prefix of the uncertain ones.
      const extraOk = extra.length <= uncertain.length && extra.every((r, i) => r === uncertain[i]);
      if (!prefixOk || !extraOk) {
        violations.push({ check: "DurableRecordsSurvive", replica, message: `life ${k} recovered ${recovered.length} records; life ${k - 1} left ${expected.length} committed (+${uncertain.length} uncertain), and they differ` });
      }
    }
  }
  return violations;
}

/** The replayed steps of a run, merged in true time, and what the replay itself found. */
export interface MergedReplay {
  /** Lazily replayed: iterate once. `summaries` and `violations` are complete after iterating. */
  readonly steps: Iterable<ReplayStep>;
  readonly summaries: LifeSummary[];
  readonly violations: TraceViolation[];
  readonly members: readonly number[];
  readonly lives: number;
}

/** Machine monotonic time of a reading of `step`'s replica, with `clocks` overriding the trace's own. */
function trueTimeOf(clocks: TraceCheckOptions["clocks"], step: ReplayStep, reading: number): number {
  const clock = clocks?.get(step.replica) ?? step.clock;
  return (reading - clock.offsetMs) / clock.rate;
}

/** Replay every replica's trace through `step`, merged by true time (a k-way merge). */
export function replayMerged(options: Pick<TraceCheckOptions, "files" | "core" | "clocks">): MergedReplay {
  const violations: TraceViolation[] = [];
  const summaries: LifeSummary[] = [];
  const members = [...options.files.keys()].sort((a, b) => a - b);
  let lives = 0;
  const streams = members.map((replica) => {
    const traced = readTraceLives(options.files.get(replica)!);
    lives += traced.length;
    return replayLives(traced, options.core === undefined ? {} : { core: options.core }, violations, summaries);
  });
  function* merge(): Generator<ReplayStep> {
    // A handful of replicas: a linear scan per step is enough.
    const heads = streams.map((s) => s.next());
    for (;;) {
      let best = -1;
      let bestTime = Infinity;
      heads.forEach((head, i) => {
        if (head.done === true) return;
        const t = trueTimeOf(options.clocks, head.value, head.value.now);
        if (t < bestTime) {
          best = i;
          bestTime = t;
        }
      });
      if (best < 0) return;
      yield (heads[best] as IteratorYieldResult<ReplayStep>).value;
      heads[best] = streams[best]!.next();
    }
  }
  return { steps: merge(), summaries, violations, members, lives };
}

/** Run every check over replayed steps (in true-time order). */
export function checkSteps(replay: MergedReplay, options: Pick<TraceCheckOptions, "clocks" | "violationsPerCheckMax"> = {}): TraceReport {
  const checker = new TraceChecker(replay.members, (step, reading) => trueTimeOf(options.clocks, step, reading), options.violationsPerCheckMax ?? 20);
  for (const step of replay.steps) checker.observe(step);
  checker.finish(replay.summaries);
  for (const v of replay.violations) checker.violate(v.check, v.replica, v.message);
  const counts = checker.counts;
  return {
    ok: Object.keys(counts).length === 0,
    violations: checker.violations,
    violationCounts: counts,
    steps: checker.steps,
    lives: replay.lives,
    tally: checker.tally,
    leaseIntervals: checker.leaseIntervals,
    executedSlots: checker.maxExecuted,
  };
}

/** Replay and merge every replica's trace, and run every check. */
export function checkTraces(options: TraceCheckOptions): TraceReport {
  return checkSteps(replayMerged(options), options);
}

/**
 * Trace validation, part two: the merged, replayed traces of a real run (trace-replay.ts) checked
 * by the same world checker of proofs/ that checks every step of the simulated world
 * (proofs/world-checker.ts: Voting, Consensus, Service, durability and lease invariants), plus the
 * checks only a real run needs. Steps of all replicas are merged in true time: every replica reads
 * the machine's monotonic clock, so a reading with its injected skew removed is true time on one
 * axis for the whole run.
 *
 *   from proofs/ (through `ProofsView`, the world view of a real run):
 *     OneValuePerBallot, OneVote, VotesSafe, VoterOfTheSlot, refines Voting  (durable votes)
 *     LearnedIsChosen, refines Consensus            (chosen records)
 *     ExecutedPrefixAgreement, ExactlyOnce, DigestAgreement (also: no divergence alarm),
 *     RepliesMatchSpec                               (executed prefixes, replies)
 *     DurableBeforeSend, DurableMaxBal, PromiseCoversVotes (each Send, in effect order)
 *     AtMostOneLeaseholder, LeaseBounded, LeaseReadFresh (beliefs by each replica's own clock)
 *     snapshot, truncation and configuration checks
 *   here (a simulated world has no such thing to check):
 *     TraceExplainedByCore  each life's traced effects are what `step` returns (trace-replay.ts)
 *     DurableRecordsSurvive a restarted replica recovers the records it committed, less what a snapshot superseded
 *     ReceiveHasSend        every receipt pairs with a send of the same message
 *
 * The proofs/ checker stops at its first violation (its ghost state is meaningless after one);
 * the local checks go on. The checks only read.
 */
import {
  compactRecords,
  defaultRules,
  pinnedSnapshots,
  pinnedVotes,
  plainEqual,
  showBallot,
} from "../../impl/core/testing/index.ts";
import { kvConfig, kvReplicated, type KvRecord, type KvReplicaState } from "../../impl/runtime/core-adapter.ts";
import type { KvInput, KvOutput, KvState } from "../../spec/kv.ts";
import { digestLarge } from "../../proofs/held.ts";
import { ViolationFound } from "../../proofs/violation.ts";
import { WorldChecker } from "../../proofs/world-checker.ts";
import type { Carried, ReplicaView, RequestInfo, SystemView, WorldStep } from "../../proofs/world-view.ts";
import type { ClockSkew } from "./cluster.ts";
import {
  Interner,
  recordDigest,
  streamTraceLives,
  replayLives,
  type HeldRecord,
  type LifeSummary,
  type ReplayStep,
  type TraceViolation,
} from "./trace-replay.ts";

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
  /**
   * Told every replayed step once proofs/ has checked it (the trace explorer records the run
   * this way): the step as proofs/ saw it (null once proofs/ stopped, at its first violation),
   * the system view, and the names proofs/ tallied for it (spec actions, rare states). Default none.
   */
  readonly onStep?: (step: ReplayStep, seen: StepSeen) => void;
}

/** What proofs/ made of one replayed step (see `onStep`). */
export interface StepSeen {
  readonly trueTime: number;
  readonly world: KvStep | null;
  readonly view: SystemView<KvState, KvInput, KvOutput>;
  readonly tallied: readonly string[];
}

/** One interval during which a replica believed it held a lease, in true (monotonic) ms (for the recovery figures). */
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
  /** How often each notable thing happened (the trace's events, and proofs/' spec actions and rare states). */
  readonly tally: Readonly<Record<string, number>>;
  readonly leaseIntervals: readonly LeaseInterval[];
  /** Highest executed slot seen. */
  readonly executedSlots: number;
}

type KvStep = WorldStep<KvState, KvInput, KvOutput>;

/** A replica as proofs/ sees it: its latest state and the clock of its current life. */
class TracedReplica implements ReplicaView<KvState, KvInput, KvOutput> {
  state: KvReplicaState | null = null;
  /**
   * Its disk as proofs/ reads it: the records it recovered, then those flushed in this life, less
   * what a durable snapshot superseded (compacted as the simulated world compacts its disks:
   * `compactRecords` with the pins of the step that flushed the snapshot).
   */
  durable: KvRecord[] = [];
  /** Every record of `durable`, uncompacted, as its `recordDigest`: what its next life must find. */
  written: string[] = [];
  /** The incarnation of its latest step. */
  incarnation: string | null = null;
  readonly paused = false;
  clock: ClockSkew = { rate: 1, offsetMs: 0 };
  /** The life whose remaining steps are dropped: it crashed with an uncommitted batch. */
  crashedLife = -1;
  constructor(
    readonly id: number,
    readonly index: number,
  ) {}
  localAt(t: number): number {
    return t * this.clock.rate + this.clock.offsetMs;
  }
  trueAt(reading: number): number {
    return (reading - this.clock.offsetMs) / this.clock.rate;
  }
}

/**
 * The world view of a real run, for proofs/world-checker.ts: one replayed step at a time, in
 * true-time order. A traced step becomes a world step whose carried effects are its effects in
 * order: committed Persists as Flushes, Sends, Replies (with the request as its ClientRequest
 * event named it), Alarms. A step with a non-deferrable Persist that never committed (the last
 * batch of a SIGKILLed life) crashes the replica there: the rest of that life left no effect.
 * A SIGKILL may also commit a batch without tracing its commit line; the records the next life
 * recovers beyond those traced as committed are flushed at the start of its Recover step. A
 * replica's state between its lives stays that of its last step: a killed leader keeps believing
 * in its lease until it runs out, which is what the lease argument must cover anyway. Link
 * faults live in the relays, not in the traces: no link is reported cut.
 */
class ProofsView implements SystemView<KvState, KvInput, KvOutput> {
  trueTime = 0;
  readonly replicas: TracedReplica[];
  /** Real replicas run impl/core's step, assembled from the default rules. */
  readonly rules = defaultRules;
  readonly checker: WorldChecker<KvState, KvInput, KvOutput>;
  /** The first violation proofs/ found (it stops there). */
  violation: { check: string; replica: number; message: string } | null = null;
  /** The world step proofs/ was last handed (null after it stopped). */
  lastStep: KvStep | null = null;
  private readonly requests = new Map<string, RequestInfo<KvInput>>();
  /** Membership changes asked of a replica ("incarnation/requestId"): their replies go to an operator. */
  private readonly changes = new Set<string>();
  /** Open-session requests received (feature level 3), by incarnation and request id, until answered. */
  private readonly opens = new Set<string>();
  private readonly byId = new Map<number, TracedReplica>();

  constructor(
    readonly members: readonly number[],
    core: Record<string, unknown>,
    private readonly clocks: TraceCheckOptions["clocks"],
    /** The cluster's initial voters (replicas that joined later are among `members` only). */
    initialMembers: readonly number[] = members,
  ) {
    this.replicas = members.map((id, index) => new TracedReplica(id, index));
    for (const r of this.replicas) this.byId.set(r.id, r);
    const config = kvConfig(initialMembers[0]!, initialMembers, core);
    // The store as the replicas run it (long values hashed by SHA-256): the service state the
    // checker computes is compared with the replicas' own, digest format included.
    this.checker = new WorldChecker(this, kvReplicated, {
      leaseMs: config.leaseMs,
      alpha: config.reconfigAlphaSlots,
      initialMembers,
    });
  }

  linkBlocked(): boolean {
    return false;
  }

  /** Check one replayed step at true time `t` (true times never decrease). */
  observe(step: ReplayStep, t: number): void {
    this.lastStep = null;
    if (this.violation !== null) return;
    const r = this.byId.get(step.replica);
    if (r === undefined)
      throw new Error(
        `a trace step of replica ${step.replica}, which is not among the members ${this.members.join(", ")}`,
      );
    if (r.crashedLife === step.life) return;
    if (r.incarnation !== step.incarnation) {
      // A life's requests it never answered: no later step of that life will answer them.
      if (r.incarnation !== null) this.forgetRequests(r.incarnation);
      r.incarnation = step.incarnation;
    }
    try {
      if (t > this.trueTime) {
        const from = this.trueTime;
        this.trueTime = t;
        this.checker.observe({ kind: "time", from, to: t });
      }
      r.clock = this.clocks?.get(step.replica) ?? step.clock;
      const { carried, crashed } = this.carried(r, step);
      const before = step.event._tag === "Recover" ? null : step.before;
      const after = crashed ? null : step.after;
      if (crashed) r.crashedLife = step.life;
      r.state = after;
      const world: KvStep = {
        kind: "event",
        replica: r.index,
        event: step.event._tag,
        before,
        after,
        carried,
        ...(step.event._tag === "Receive" ? { from: step.event.from, message: step.event.message } : {}),
        ...(step.event._tag === "ClientRequest"
          ? { request: this.requests.get(`${step.incarnation}/${step.event.requestId}`) }
          : {}),
      };
      this.lastStep = world;
      this.checker.observe(world);
    } catch (error) {
      if (!(error instanceof ViolationFound)) throw error;
      const v = error.violation;
      const detail = [
        v.action === undefined ? "" : ` (step maps to ${v.action})`,
        v.before === undefined ? "" : `\nbefore:\n${v.before}`,
        v.after === undefined ? "" : `\nafter:\n${v.after}`,
      ].join("");
      this.violation = {
        check: v.check,
        replica: step.replica,
        message: `${v.message}${detail} [life ${step.incarnation}, ${step.event._tag} at clock ${step.now}]`,
      };
    }
  }

  /** Forget the requests of a life that ended (`incarnation`): they hold the values they write. */
  private forgetRequests(incarnation: string): void {
    const prefix = `${incarnation}/`;
    for (const key of this.requests.keys()) if (key.startsWith(prefix)) this.requests.delete(key);
  }

  /** The effects of one step as proofs/ sees them carried out, and whether the replica crashed in it. */
  private carried(r: TracedReplica, step: ReplayStep): { carried: Carried<KvInput, KvOutput>[]; crashed: boolean } {
    const carried: Carried<KvInput, KvOutput>[] = [];
    let snapshotFlushed = false;
    const flush = (record: KvRecord): void => {
      r.durable.push(record);
      r.written.push(recordDigest(record));
      if (record._tag === "snapshot") snapshotFlushed = true;
      const last = carried[carried.length - 1];
      if (last?._tag === "Flush") carried[carried.length - 1] = { _tag: "Flush", records: [...last.records, record] };
      else carried.push({ _tag: "Flush", records: [record] });
    };
    const event = step.event;
    if (event._tag === "Recover") {
      const known = r.written;
      const found = event.records.map(recordDigest);
      // The disk holds the known records, less what compaction deleted (impl/runtime/storage.ts), then
      // the committed-but-untraced tail: the records after the last one matched in order are new.
      // Anything else is DurableRecordsSurvive's to report.
      const extra = event.records.slice(matchedPrefix(found, known));
      r.durable = event.records.slice(0, event.records.length - extra.length);
      r.written = found.slice(0, r.durable.length);
      for (const record of extra) flush(record);
    }
    if (event._tag === "Reconfigure") this.changes.add(`${step.incarnation}/${event.requestId}`);
    if (event._tag === "OpenSession") this.opens.add(`${step.incarnation}/${event.requestId}`);
    if (event._tag === "ClientRequest") {
      this.requests.set(`${step.incarnation}/${event.requestId}`, {
        requestId: event.requestId,
        clientId: event.clientId ?? `one-shot ${step.incarnation}/${event.requestId}`,
        seq: event.seq,
        input: event.input,
        consistency: event.consistency,
        replica: r.index,
        invokedAt: this.trueTime,
      });
    }
    for (const effect of step.effects) {
      switch (effect._tag) {
        case "Persist":
          if (step.committed) flush(effect.record);
          // A `chosen` record is deferrable, and the leader's own vote (`notify`) holds back nothing: what follows
          // does not wait for them. Any other: the process died before its commit.
          else if (effect.record._tag !== "chosen" && effect.notify === undefined)
            return { carried: [...carried, { _tag: "Crash", lost: 1 }], crashed: true };
          break;
        case "Send":
          carried.push({ _tag: "Send", to: effect.to, message: effect.message });
          break;
        case "Reply": {
          // The answer to an operator's membership change: no client request, nothing the
          // Service checks judge (the configuration checks follow the change through the log).
          if (this.changes.has(`${step.incarnation}/${effect.requestId}`)) break;
          // The answer to an open-session request (feature level 3): the Service checks judge the id.
          if (this.opens.delete(`${step.incarnation}/${effect.requestId}`)) {
            const sameStep = event._tag === "OpenSession" && event.requestId === effect.requestId;
            carried.push({ _tag: "OpenAnswer", result: effect.result, sameStep });
            break;
          }
          const request = this.requests.get(`${step.incarnation}/${effect.requestId}`);
          if (request === undefined)
            throw new Error(
              `replica ${r.id} (life ${step.incarnation}) replied to request ${effect.requestId}, which its trace never received`,
            );
          this.requests.delete(`${step.incarnation}/${effect.requestId}`);
          const sameStep = event._tag === "ClientRequest" && event.requestId === effect.requestId;
          carried.push({ _tag: "Reply", request, result: effect.result, sameStep });
          break;
        }
        case "Alarm":
          carried.push({ _tag: "Alarm", message: effect.message });
          break;
      }
    }
    // The disk compacted once a snapshot is durable, keeping what the new state still names.
    if (snapshotFlushed)
      r.durable = compactRecords(r.durable, pinnedSnapshots(step.after), pinnedVotes(step.after.learner.origins));
    return { carried, crashed: false };
  }
}

/** The checks over the merged steps of one run: proofs/ through ProofsView, ReceiveHasSend here. */
class TraceChecker {
  readonly violations: TraceViolation[] = [];
  readonly counts: Record<string, number> = {};
  readonly tally: Record<string, number> = {};
  readonly proofs: ProofsView;
  /**
   * Sends waiting for their receipt and receipts for their send, by wire id: the message as its
   * trace line holds it (parsed JSON), its long strings `digestLarge`d (a message to a replica
   * that was down is never received: a burst's values would be held for the whole run), compared
   * whole once both are seen. Hashing each message's whole text instead cost most of a run's check.
   */
  private readonly sends = new Map<string, unknown>();
  private readonly receipts = new Map<string, unknown>();
  /** Receipts already paired with their send, by key (for copies: see `pair`). */
  private readonly paired = new Map<string, unknown>();
  readonly leaseIntervals: LeaseInterval[] = [];
  private readonly lastLease = new Map<number, number>();
  /** Per replica: the belief opened by its last step (closed by its next step). */
  private readonly openLease = new Map<number, { life: number; ballot: string; from: number; until: number }>();
  steps = 0;
  maxExecuted = 0;
  private readonly tallied: string[] = [];

  constructor(
    members: readonly number[],
    core: Record<string, unknown>,
    private readonly clocks: TraceCheckOptions["clocks"],
    private readonly keepPerCheck: number,
    private readonly onStep: TraceCheckOptions["onStep"],
    initialMembers: readonly number[] = members,
  ) {
    this.proofs = new ProofsView(members, core, clocks, initialMembers);
    if (onStep !== undefined) this.proofs.checker.tally.listener = (name) => this.tallied.push(name);
  }

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
    const t = trueTimeOf(this.clocks, step, step.now);
    this.proofs.observe(step, t);
    let persisted = false;
    let sendIndex = 0;
    for (const effect of step.effects) {
      if (effect._tag === "Persist" && effect.record._tag !== "chosen" && effect.notify === undefined) persisted = true;
      if (effect._tag === "Reply") this.count(`reply ${effect.result._tag}`);
      if (effect._tag !== "Send") continue;
      const wireId = step.wireIds[sendIndex++];
      // In a last batch lost to a SIGKILL, nothing after a (non-deferrable) Persist left the process.
      if (persisted && !step.committed) continue;
      this.count(`send ${effect.message._tag}`);
      if (wireId !== undefined)
        this.pair(`${step.incarnation}/${wireId}->${effect.to}`, step.sentAs[sendIndex - 1], this.sends, this.receipts);
    }
    if (step.event._tag === "Receive" && step.receivedAs !== undefined) {
      this.pair(
        `${step.receivedAs.incarnation}/${step.receivedAs.wireId}->${step.replica}`,
        step.receivedMessage,
        this.receipts,
        this.sends,
      );
    }
    if (step.after.learner.executedUpTo > this.maxExecuted) this.maxExecuted = step.after.learner.executedUpTo;
    this.lease(step, t);
    if (this.onStep !== undefined) {
      this.onStep(step, { trueTime: t, world: this.proofs.lastStep, view: this.proofs, tallied: this.tallied });
      this.tallied.length = 0;
    }
  }

  /**
   * Pair a send with its receipt (whichever comes first waits in its map for the other). A second
   * receipt of one send is a copy (a leader's heartbeat relay sends copies of heartbeats under
   * their wire id: impl/runtime/heartbeat-relay.ts); it must carry the same message.
   */
  private pair(key: string, traced: unknown, waiting: Map<string, unknown>, counterpart: Map<string, unknown>): void {
    const message = digestLarge(traced);
    if (waiting === this.receipts && (this.paired.has(key) || waiting.has(key))) {
      const before = this.paired.has(key) ? this.paired.get(key) : waiting.get(key);
      this.count("receipt of a copy");
      if (!plainEqual(before, message))
        this.violate("ReceiveHasSend", 0, `receipt ${key} differs from an earlier receipt of it`);
      return;
    }
    if (!counterpart.has(key)) {
      waiting.set(key, message);
      return;
    }
    const other = counterpart.get(key);
    counterpart.delete(key);
    // Only heartbeats are ever copied: the others need not be remembered.
    if ((message as { _tag?: unknown } | null)?._tag === "Heartbeat") this.paired.set(key, message);
    if (!plainEqual(other, message)) this.violate("ReceiveHasSend", 0, `receipt ${key} differs from the message sent`);
  }

  /** The lease bars: replica r believes at true t iff it leads and its clock at t < leaseUntil. */
  private lease(step: ReplayStep, t: number): void {
    const open = this.openLease.get(step.replica);
    if (open !== undefined) {
      // Same life: the belief lasted until this step at most. Another life: until its lease ran out.
      const to = open.life === step.life ? Math.min(open.until, t) : open.until;
      if (to > open.from) this.addLeaseInterval({ replica: step.replica, ballot: open.ballot, from: open.from, to });
      this.openLease.delete(step.replica);
    }
    const role = step.after.role;
    if (role._tag === "leader" && step.after.halted === null) {
      const until = trueTimeOf(this.clocks, step, role.leaseUntil);
      if (until > t)
        this.openLease.set(step.replica, { life: step.life, ballot: showBallot(role.ballot), from: t, until });
    }
  }

  /** Record a belief, joining it to the replica's previous one in the same ballot when they touch. */
  private addLeaseInterval(interval: LeaseInterval): void {
    const index = this.lastLease.get(interval.replica);
    const previous = index === undefined ? undefined : this.leaseIntervals[index];
    if (previous !== undefined && previous.ballot === interval.ballot && interval.from <= previous.to) {
      this.leaseIntervals[index!] = { ...previous, to: Math.max(previous.to, interval.to) };
      return;
    }
    this.lastLease.set(interval.replica, this.leaseIntervals.length);
    this.leaseIntervals.push(interval);
  }

  /** Checks that need the whole run. */
  finish(summaries: readonly LifeSummary[]): void {
    for (const [key] of this.receipts)
      this.violate("ReceiveHasSend", 0, `receipt ${key} has no matching send in any trace`);
    for (const [key, open] of this.openLease)
      this.addLeaseInterval({ replica: key, ballot: open.ballot, from: open.from, to: open.until });
    this.openLease.clear();
    const v = this.proofs.violation;
    if (v !== null) this.violate(v.check, v.replica, v.message);
    for (const [name, n] of this.proofs.checker.tally.counts) this.tally[name] = n;
    for (const violation of checkRecoveries(summaries))
      this.violate(violation.check, violation.replica, violation.message);
  }
}

/** How many of `found`'s first records occur in `known` in order (with gaps: compaction deletes records). */
export function matchedPrefix(found: readonly string[], known: readonly string[]): number {
  let j = 0;
  for (let i = 0; i < found.length; i++) {
    while (j < known.length && known[j] !== found[i]) j++;
    if (j === known.length) return i;
    j++;
  }
  return found.length;
}

/**
 * Whether a disk that held `written` (in order) can have come back as `recovered`: the store
 * deletes what durable snapshots supersede (impl/runtime/storage.ts, `compactRecords`), possibly
 * not after the last one (a crash between the commit and the compaction), so `recovered` must be
 * `written` in order with some records left out, and keep every record `compactRecords(written)`
 * keeps: nothing invented, nothing reordered, nothing Recover needs lost.
 */
function recoveredFrom(written: readonly HeldRecord[], recovered: readonly HeldRecord[]): boolean {
  const all = written.map((r) => JSON.stringify(r));
  const got = recovered.map((r) => JSON.stringify(r));
  return (
    isSubsequence(got, all) &&
    isSubsequence(
      compactRecords(written).map((r) => JSON.stringify(r)),
      got,
    )
  );
}

function isSubsequence(small: readonly string[], big: readonly string[]): boolean {
  let i = 0;
  for (const x of big) if (i < small.length && small[i] === x) i++;
  return i === small.length;
}

/**
 * DurableRecordsSurvive: each life of a replica recovers the records its previous life recovered
 * plus those it committed (and, after a SIGKILL, possibly a prefix of the records of the batches
 * whose commit was not traced), less what a durable snapshot superseded (`recoveredFrom`). A life
 * that traced no Recover (killed while it opened its store) is passed over: the next life is held
 * to what the last life that recovered left.
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
    const traced = lives.filter((l) => l.recovered);
    for (let k = 1; k < traced.length; k++) {
      const previous = traced[k - 1]!;
      const left = [...previous.recoveredRecords, ...previous.committedRecords];
      const recovered = traced[k]!.recoveredRecords;
      // Transactions commit in order: a SIGKILL may have left any prefix of the uncertain records durable.
      const explained =
        previous.uncertainRecords.some((_, n) =>
          recoveredFrom([...left, ...previous.uncertainRecords.slice(0, n + 1)], recovered),
        ) || recoveredFrom(left, recovered);
      if (!explained) {
        violations.push({
          check: "DurableRecordsSurvive",
          replica,
          message: `life ${traced[k]!.life} recovered ${recovered.length} records; life ${previous.life} left ${left.length} committed (+${previous.uncertainRecords.length} uncertain), and they differ`,
        });
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
  /** The initial members, as every trace's start lines name them (replicas that joined are not among them). */
  readonly initialMembers: readonly number[];
  readonly lives: number;
  /** The core configuration overrides the run used. */
  readonly core: Record<string, unknown>;
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
  let initialMembers: readonly number[] = members;
  // One interner for every replica's trace: a value's copies in all of them become one string.
  const strings = new Interner();
  const streams = members.map((replica) => {
    const traced = streamTraceLives(options.files.get(replica)!, strings);
    lives += traced.length;
    if (traced[0] !== undefined && traced[0].members.length > 0) initialMembers = traced[0].members;
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
  return { steps: merge(), summaries, violations, members, initialMembers, lives, core: options.core ?? {} };
}

/** Run every check over replayed steps (in true-time order). */
export function checkSteps(
  replay: MergedReplay,
  options: Pick<TraceCheckOptions, "clocks" | "violationsPerCheckMax" | "onStep"> = {},
): TraceReport {
  const checker = new TraceChecker(
    replay.members,
    replay.core,
    options.clocks,
    options.violationsPerCheckMax ?? 20,
    options.onStep,
    replay.initialMembers,
  );
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

/**
 * The simulated world: a deterministic cluster of 3 or 5 replicas running impl/core's `step`
 * unchanged, with messages in flight per directed link, durable stores with an unflushed
 * buffer, true time, each replica's own clock (offset and rate within the drift bound), and
 * clients that retry (their requests travel the network too: delayed, dropped, duplicated). Faults are the actions of ./actions.ts; `apply(action)` carries one out
 * as one or more atomic world steps and hands each step to the observer (the checkers of
 * proofs/) before the next begins.
 *
 * Driver rules, the same as the runtime's: effects are carried out in order; a Persist goes to
 * the unflushed buffer, which is flushed before the next Send or Reply and at the end of the
 * step (group commit). A crash may land before any effect of a step: the unflushed buffer is
 * lost and the remaining effects never happen. A restart boots `initialState` and feeds it
 * `Recover` with the flushed records and a fresh clock reading.
 *
 * Everything is a pure function of the options and the action list: no clock, no randomness.
 */
import { kv, type KvInput, type KvOutput, type KvState } from "../../spec/kv.ts";
import {
  initialState,
  parseConfig,
  step as defaultStep,
  type ClientResult,
  type Config,
  type DurableRecord,
  type Message,
  type ReplicaEvent,
  type ReplicaState,
  type Step,
} from "../../impl/core/index.ts";
import type { Carried, ReplicaView, RequestInfo, SystemView, WorldStep } from "../../proofs/world-view.ts";
import type { Action, OpSpec } from "./actions.ts";
import { showMessage, showRecord, showResult, showInput } from "./show.ts";

export type KvReplicaState = ReplicaState<KvState, KvInput, KvOutput>;
export type KvWorldStep = WorldStep<KvState, KvInput, KvOutput>;
export type KvSystemView = SystemView<KvState, KvInput, KvOutput>;

/** Replica configuration fields the world sets (ids and seed are the world's). */
export interface ReplicaTuning {
  readonly leaseMs: number;
  readonly clockDriftPpmMax: number;
  readonly leaseMarginMs: number;
  readonly electionTimeoutMsMin: number;
  readonly electionTimeoutMsMax: number;
  readonly heartbeatIntervalMs: number;
  readonly pipelineSlotsMax: number;
  readonly batchCommandsMax: number;
  readonly checkpointIntervalSlots: number;
  readonly requestsPendingMax: number;
  readonly catchUpSlotsMax: number;
}

/**
 * The replica tuning of the suites. The drift bound is large (5%) so that lease arithmetic is
 * exercised, not rounded away; pipelines and batches are short so that small runs fill them;
 * checkpoints are frequent so that the divergence monitor compares often.
 */
export const defaultTuning: ReplicaTuning = {
  leaseMs: 300,
  clockDriftPpmMax: 50_000,
  leaseMarginMs: 10,
  electionTimeoutMsMin: 400,
  electionTimeoutMsMax: 600,
  heartbeatIntervalMs: 50,
  pipelineSlotsMax: 4,
  batchCommandsMax: 3,
  checkpointIntervalSlots: 4,
  requestsPendingMax: 16,
  catchUpSlotsMax: 4,
};

/**
 * The tunings a swarm profile chooses from: the default; everything at its tightest (a pipeline
 * and batch of one, catch-up one slot at a time, a checkpoint every slot, two pending requests);
 * perfect clocks with no margin at all; a long lease with slow heartbeats.
 */
export const tunings: readonly ReplicaTuning[] = [
  defaultTuning,
  { ...defaultTuning, pipelineSlotsMax: 1, batchCommandsMax: 1, catchUpSlotsMax: 1, checkpointIntervalSlots: 1, requestsPendingMax: 2 },
  { ...defaultTuning, clockDriftPpmMax: 0, leaseMarginMs: 0 },
  { ...defaultTuning, leaseMs: 900, electionTimeoutMsMin: 1000, electionTimeoutMsMax: 1400, heartbeatIntervalMs: 120, pipelineSlotsMax: 8 },
];

/** How to build a world. */
export interface WorldOptions {
  /** Replicas (ids 1..N). Default 3. */
  readonly replicas?: number;
  /** Clients c1..cK. Default 3. */
  readonly clients?: number;
  /** Keys k0..k(n-1) the clients use. Default 2. */
  readonly keys?: number;
  /** Seed of the replicas' generators (election timeouts). Default 1. */
  readonly seed?: number;
  readonly tuning?: ReplicaTuning;
  /** The replica step function. Default: impl/core's `step`. The bug zoo passes broken ones. */
  readonly step?: Step;
  /** Most messages in flight; a send beyond it is lost (a full socket buffer). Default 256. */
  readonly inFlightMax?: number;
  /** Keep a readable trace of every step. Default false (the campaign runs without). */
  readonly record?: boolean;
}

/** A message in flight between replicas, or a client request on its way to a replica. */
export type InFlight =
  | { readonly id: number; readonly kind: "message"; readonly from: number; readonly to: number; readonly message: Message<KvInput> }
  /** A client request (`requestId` in the world's request table); client links are never cut. */
  | { readonly id: number; readonly kind: "request"; readonly to: number; readonly requestId: number };

interface Clock {
  base: number;
  rate: number;
  since: number;
}

class ReplicaSlot implements ReplicaView<KvState, KvInput, KvOutput> {
  state: KvReplicaState | null = null;
  readonly durable: DurableRecord<KvInput>[] = [];
  unflushed: DurableRecord<KvInput>[] = [];
  paused = false;
  crashAt: number | null = null;
  readonly clock: Clock;
  constructor(
    readonly id: number,
    readonly index: number,
    readonly config: Config,
    base: number,
  ) {
    this.clock = { base, rate: 1, since: 0 };
  }
  localAt(t: number): number {
    return this.clock.base + this.clock.rate * (t - this.clock.since);
  }
  trueAt(reading: number): number {
    return this.clock.since + (reading - this.clock.base) / this.clock.rate;
  }
}

/** One client operation, as the linearizability checker and the reports see it. */
export interface ClientOp {
  readonly opId: number;
  readonly client: string;
  readonly input: KvInput;
  readonly seq: number | undefined;
  readonly invokedAt: number;
  completedAt: number | undefined;
  output: KvOutput | undefined;
  attempts: number;
}

interface ClientSlot {
  readonly id: string;
  nextSeq: number;
  opsStarted: number;
  /** Index of the replica this client believes leads. */
  guess: number;
  op: ClientOp | null;
  /** The last value this client saw under each key (its guess for a cas). */
  readonly seen: Map<string, string | null>;
  /** The next reply to this client is lost on its way. */
  loseNextReply: boolean;
}

/** One entry of the readable trace. */
export interface TraceEntry {
  /** World step number (1-based). */
  readonly n: number;
  /** True time, ms. */
  readonly t: number;
  readonly text: string;
  /** For deliveries and client requests: the sender (`R1`, `c2`) and receiver. */
  readonly from?: string;
  readonly to?: string;
  /** Lines for what the step carried out. */
  readonly details: readonly string[];
  /** Messages sent and replies given, for the sequence diagram. */
  readonly arrows: readonly { readonly from: string; readonly to: string; readonly label: string }[];
}

/** Thrown by an observer to stop the run at the current step. */
export class StopRun extends Error {}

/** The simulated cluster. */
export class World implements KvSystemView {
  trueTime = 0;
  /** World steps taken so far. */
  events = 0;
  readonly members: readonly number[];
  readonly replicas: readonly ReplicaSlot[];
  readonly clients: readonly ClientSlot[];
  readonly keys: readonly string[];
  readonly ops: ClientOp[] = [];
  readonly inFlight: InFlight[] = [];
  readonly trace: TraceEntry[] | null;
  readonly counters = new Map<string, number>();
  readonly tuning: ReplicaTuning;
  /** Called after every step; it may throw StopRun. */
  observer: ((step: KvWorldStep) => void) | null = null;
  private readonly n: number;
  private readonly blocked: boolean[];
  private blockedCount = 0;
  private pausedCount = 0;
  private readonly step: Step;
  private readonly inFlightMax: number;
  private nextMessageId = 1;
  private nextRequestId = 1;
  private readonly requests = new Map<number, { readonly info: RequestInfo<KvInput>; readonly op: ClientOp }>();
  private readonly driftRho: number;

  constructor(options: WorldOptions = {}) {
    const n = options.replicas ?? 3;
    this.n = n;
    this.tuning = options.tuning ?? defaultTuning;
    this.step = options.step ?? defaultStep;
    this.inFlightMax = options.inFlightMax ?? 256;
    this.trace = options.record === true ? [] : null;
    this.members = Array.from({ length: n }, (_, i) => i + 1);
    this.driftRho = this.tuning.clockDriftPpmMax / 1e6;
    const seed = options.seed ?? 1;
    this.replicas = this.members.map((id, index) => {
      const config: Config = { ...configFor(this.tuning, this.members, id), seed: seed >>> 0 };
      // Clocks start far apart: no replica's reading means anything to another.
      return new ReplicaSlot(id, index, config, 10_000 * (index + 1));
    });
    this.blocked = new Array<boolean>(n * n).fill(false);
    this.keys = Array.from({ length: options.keys ?? 2 }, (_, i) => `k${i}`);
    this.clients = Array.from({ length: options.clients ?? 3 }, (_, i) => ({
      id: `c${i + 1}`,
      nextSeq: 1,
      opsStarted: 0,
      guess: i % n,
      op: null,
      seen: new Map(),
      loseNextReply: false,
    }));
  }

  /** Boot every replica (each handles `Recover` with an empty disk). One world step per replica. */
  boot(): void {
    for (const r of this.replicas) this.restartReplica(r);
  }

  // ---- SystemView -----------------------------------------------------------------------------

  linkBlocked(a: number, b: number): boolean {
    return this.blocked[a * this.n + b]!;
  }

  count(name: string, by = 1): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + by);
  }

  // ---- Actions --------------------------------------------------------------------------------

  /** Replica index for target `r`: r mod N, except that r = N names the current leader (the live one with the highest ballot). */
  target(r: number): number {
    if (r !== this.n) return r % this.n;
    let best = -1;
    for (const rep of this.replicas) {
      const s = rep.state;
      if (s === null || s.role._tag !== "leader") continue;
      if (best < 0) best = rep.index;
      else {
        const other = this.replicas[best]!.state!.role as { ballot: { round: number; replica: number } };
        const mine = s.role.ballot;
        if (mine.round > other.ballot.round || (mine.round === other.ballot.round && mine.replica > other.ballot.replica)) best = rep.index;
      }
    }
    return best < 0 ? 0 : best;
  }

  /** Carry out one action as zero or more world steps. */
  apply(a: Action): void {
    switch (a.t) {
      case "deliver": {
        const m = this.pickDeliverable(a.i);
        if (m !== undefined) this.deliver(m);
        return;
      }
      case "deliverAll":
        this.deliverAll();
        return;
      case "drop":
      case "duplicate": {
        if (this.inFlight.length === 0) return;
        const index = a.i % this.inFlight.length;
        const m = this.inFlight[index]!;
        if (a.t === "drop") {
          this.inFlight.splice(index, 1);
          this.faultStep(`drop ${this.describe(m)}`);
        } else {
          this.duplicate(m);
          this.faultStep(`duplicate ${this.describe(m)}`);
        }
        return;
      }
      case "cut": {
        const x = this.target(a.a);
        const y = this.target(a.b);
        if (x === y) return;
        this.setBlocked(x, y, true);
        if (!a.oneWay) this.setBlocked(y, x, true);
        this.faultStep(`cut R${x + 1}${a.oneWay ? "->" : "<->"}R${y + 1}`);
        return;
      }
      case "isolate": {
        const r = this.target(a.r);
        const side = new Set<number>([r]);
        for (let k = 1; k <= (a.others ?? 0) && side.size < Math.ceil(this.n / 2); k++) side.add((r + k) % this.n);
        for (const x of side) {
          for (let o = 0; o < this.n; o++) {
            if (side.has(o)) continue;
            this.setBlocked(x, o, true);
            this.setBlocked(o, x, true);
          }
        }
        this.faultStep(`isolate ${[...side].map((x) => `R${x + 1}`).join(",")} from the rest`);
        return;
      }
      case "bridge": {
        const leader = this.target(this.n);
        let keep = a.r % this.n;
        if (keep === leader) keep = (leader + 1) % this.n;
        for (let o = 0; o < this.n; o++) {
          if (o === leader || o === keep) continue;
          this.setBlocked(leader, o, true);
          this.setBlocked(o, leader, true);
        }
        this.faultStep(`bridge: R${leader + 1} reaches only R${keep + 1}`);
        return;
      }
      case "heal":
        if (this.blockedCount === 0) return;
        this.healAll();
        return;
      case "crash":
        this.crash(this.target(a.r), a.at);
        return;
      case "restart": {
        const r = this.replicas[this.target(a.r)]!;
        if (r.state !== null) this.crash(r.index, null);
        r.clock.base = a.clockMs;
        r.clock.since = this.trueTime;
        this.restartReplica(r);
        return;
      }
      case "pause":
      case "resume": {
        const pause = a.t === "pause";
        // Resuming names a paused replica if the target is not one.
        let r = this.replicas[this.target(a.r)]!;
        if (!pause && !r.paused) r = this.replicas.find((x) => x.paused) ?? r;
        if (r.paused === pause) return;
        r.paused = pause;
        this.pausedCount += pause ? 1 : -1;
        this.faultStep(`${a.t} R${r.id}`);
        return;
      }
      case "drift":
        this.drift(this.target(a.r), a.ppm);
        return;
      case "advance":
        this.advance(a.ms);
        return;
      case "submit":
        this.submit(a.c % this.clients.length, a.op);
        return;
      case "retry": {
        const c = this.clients[a.c % this.clients.length]!;
        if (c.op !== null) this.sendAttempt(c, c.op);
        return;
      }
      case "loseReply": {
        const c = this.clients[a.c % this.clients.length]!;
        if (c.loseNextReply) return;
        c.loseNextReply = true;
        this.faultStep(`${c.id}'s next reply will be lost`);
        return;
      }
    }
  }

  /** Restore every link. */
  healAll(): void {
    this.blocked.fill(false);
    this.blockedCount = 0;
    this.faultStep("heal");
  }

  /** Resume every paused replica. */
  resumeAll(): void {
    for (const r of this.replicas) if (r.paused) this.apply({ t: "resume", r: r.index });
  }

  /** Cancel every armed crash (the faults are over). */
  disarmCrashes(): void {
    for (const r of this.replicas) r.crashAt = null;
  }

  /** Restart every crashed replica (clock readings continue from a fixed offset). */
  restartAll(): void {
    for (const r of this.replicas) if (r.state === null) this.apply({ t: "restart", r: r.index, clockMs: 500_000 * (r.index + 1) });
  }

  /** Let `ms` pass, then tick every live, running replica. */
  advance(ms: number): void {
    const from = this.trueTime;
    this.trueTime += ms;
    this.emit({ kind: "time", from, to: this.trueTime }, `advance ${ms} ms (true time ${round(this.trueTime)})`);
    this.tickAll();
  }

  /** Tick every live, running replica at its own clock. */
  tickAll(): void {
    for (const r of this.replicas) {
      if (r.state === null || r.paused) continue;
      this.runEvent(r, { _tag: "Tick", now: r.localAt(this.trueTime) }, `tick R${r.id}`, {});
    }
  }

  /** Deliver every message deliverable now, oldest first. */
  deliverAll(): void {
    const snapshot = this.inFlight.filter((m) => this.deliverable(m)).map((m) => m.id);
    for (const id of snapshot) {
      const index = this.inFlight.findIndex((m) => m.id === id);
      if (index < 0) continue;
      const m = this.inFlight[index]!;
      if (this.deliverable(m)) this.deliver(m);
    }
  }

  /** The replicas that lead and believe, by their own clock, that they hold a lease now. */
  leaseHolders(): number[] {
    const out: number[] = [];
    for (const r of this.replicas) {
      const s = r.state;
      if (s !== null && s.halted === null && s.role._tag === "leader" && r.localAt(this.trueTime) < s.role.leaseUntil) out.push(r.index);
    }
    return out;
  }

  /** True when some client has an operation outstanding. */
  pendingOps(): number {
    let n = 0;
    for (const c of this.clients) if (c.op !== null) n++;
    return n;
  }

  /** Resend every outstanding operation (liveness mode's patient clients); no reply is lost any more. */
  retryAll(): void {
    for (const c of this.clients) c.loseNextReply = false;
    for (const c of this.clients) if (c.op !== null) this.sendAttempt(c, c.op);
  }

  // ---- Messages ---------------------------------------------------------------------------------

  private idOf(index: number): number {
    return this.members[index]!;
  }

  private setBlocked(a: number, b: number, value: boolean): void {
    const k = a * this.n + b;
    if (this.blocked[k] === value) return;
    this.blocked[k] = value;
    this.blockedCount += value ? 1 : -1;
  }

  private deliverable(m: InFlight): boolean {
    if (this.replicas[m.to]!.paused) return false;
    return m.kind === "request" || !this.blocked[m.from * this.n + m.to]!;
  }

  /** `R1->R2 Accept ...` or `c1 -> R2 #3 put(k0,c1.3)`. */
  private describe(m: InFlight): string {
    if (m.kind === "message") return `R${this.idOf(m.from)}->R${this.idOf(m.to)} ${showMessage(m.message)}`;
    const req = this.requests.get(m.requestId)!.info;
    return `${req.clientId}->R${this.idOf(m.to)} ${req.seq === undefined ? "" : `#${req.seq} `}${showInput(req.input)}`;
  }

  /** A copy of a message; a copied client request gets a request id of its own (a new connection). */
  private duplicate(m: InFlight): void {
    if (m.kind === "message") {
      this.enqueue(m.from, m.to, m.message);
      this.count("message duplicated");
      return;
    }
    const original = this.requests.get(m.requestId)!;
    const requestId = this.nextRequestId++;
    this.requests.set(requestId, { info: { ...original.info, requestId }, op: original.op });
    this.enqueueRequest(m.to, requestId);
    this.count("client request duplicated");
  }

  private enqueueRequest(to: number, requestId: number): boolean {
    if (this.inFlight.length >= this.inFlightMax) {
      this.count("message lost to a full network");
      return false;
    }
    this.inFlight.push({ id: this.nextMessageId++, kind: "request", to, requestId });
    return true;
  }

  private pickDeliverable(i: number): InFlight | undefined {
    if (this.inFlight.length === 0) return undefined;
    if (this.blockedCount === 0 && this.pausedCount === 0) return this.inFlight[i % this.inFlight.length];
    const ok = this.inFlight.filter((m) => this.deliverable(m));
    return ok.length === 0 ? undefined : ok[i % ok.length];
  }

  private enqueue(from: number, to: number, message: Message<KvInput>): void {
    if (this.blocked[from * this.n + to]!) {
      this.count("message lost to a partition");
      return;
    }
    if (this.inFlight.length >= this.inFlightMax) {
      this.count("message lost to a full network");
      return;
    }
    this.inFlight.push({ id: this.nextMessageId++, kind: "message", from, to, message });
  }

  private deliver(m: InFlight): void {
    const index = this.inFlight.indexOf(m);
    this.inFlight.splice(index, 1);
    if (m.kind === "request") {
      this.deliverRequest(m.to, m.requestId);
      return;
    }
    const r = this.replicas[m.to]!;
    const label = `deliver R${this.idOf(m.from)}->R${r.id} ${showMessage(m.message)}`;
    if (r.state === null) {
      this.faultStep(`${label} (lost: R${r.id} is down)`);
      return;
    }
    this.runEvent(r, { _tag: "Receive", now: r.localAt(this.trueTime), from: this.idOf(m.from), message: m.message }, label, {
      from: this.idOf(m.from),
      message: m.message,
      arrowFrom: `R${this.idOf(m.from)}`,
    });
  }

  // ---- Replicas -----------------------------------------------------------------------------------

  private crash(index: number, at: number | null): void {
    const r = this.replicas[index]!;
    if (r.state === null) return;
    if (at !== null) {
      r.crashAt = at;
      this.faultStep(`arm crash of R${r.id} before effect ${at} of its next step`);
      return;
    }
    const before = r.state;
    r.state = null;
    r.crashAt = null;
    this.count("crash");
    this.emit({ kind: "crash", replica: index, before }, `crash R${r.id}`);
  }

  private restartReplica(r: ReplicaSlot): void {
    const fresh = initialState(r.config, kv);
    r.state = fresh;
    r.crashAt = null;
    r.unflushed = [];
    this.runEvent(r, { _tag: "Recover", now: r.localAt(this.trueTime), records: r.durable.slice() }, `restart R${r.id} (${r.durable.length} records, clock ${round(r.localAt(this.trueTime))})`, {}, null);
  }

  private drift(index: number, ppm: number): void {
    const r = this.replicas[index]!;
    const rate = 1 + Math.max(-this.driftRho, Math.min(this.driftRho, ppm / 1e6));
    if (rate === r.clock.rate) return;
    r.clock.base = r.localAt(this.trueTime);
    r.clock.since = this.trueTime;
    r.clock.rate = rate;
    this.count("clock drift changed");
    this.emit({ kind: "clock", replica: index }, `drift R${r.id} rate=${rate}`);
  }

  /**
   * Run one event at replica `r` and carry out its effects (see the module comment). `before`
   * overrides the state reported as the step's prior state (null for a boot).
   */
  private runEvent(
    r: ReplicaSlot,
    event: ReplicaEvent<KvInput>,
    label: string,
    info: { from?: number; message?: Message<KvInput>; request?: RequestInfo<KvInput>; arrowFrom?: string },
    before: KvReplicaState | null = r.state,
  ): void {
    const state = r.state!;
    const result = this.step(state, event);
    const carried: Carried<KvInput, KvOutput>[] = [];
    const details: string[] | null = this.trace === null ? null : [];
    const arrows: { from: string; to: string; label: string }[] | null = this.trace === null ? null : [];
    const effects = result.effects;
    const crashAt = r.crashAt;
    let crashed = false;
    for (let k = 0; k <= effects.length; k++) {
      if (crashAt !== null && k === Math.min(crashAt, effects.length)) {
        crashed = true;
        const lost = r.unflushed.length;
        carried.push({ _tag: "Crash", lost });
        if (lost > 0) this.count("crash lost unflushed records");
        this.count("crash mid-step");
        details?.push(`crash before effect ${k} (${lost} unflushed records lost, ${effects.length - k} effects dropped)`);
        r.unflushed = [];
        r.state = null;
        r.crashAt = null;
        break;
      }
      if (k === effects.length) break;
      const e = effects[k]!;
      switch (e._tag) {
        case "Persist":
          r.unflushed.push(e.record);
          details?.push(`persist ${showRecord(e.record)}`);
          break;
        case "Send":
          this.flush(r, carried);
          carried.push({ _tag: "Send", to: e.to, message: e.message });
          this.enqueue(r.index, e.to - 1, e.message);
          arrows?.push({ from: `R${r.id}`, to: `R${e.to}`, label: showMessage(e.message) });
          break;
        case "Reply": {
          this.flush(r, carried);
          const req = this.requests.get(e.requestId);
          if (req === undefined) throw new Error(`R${r.id} replied to unknown request ${e.requestId}`);
          const sameStep = event._tag === "ClientRequest" && event.requestId === e.requestId;
          carried.push({ _tag: "Reply", request: req.info, result: e.result, sameStep });
          details?.push(`reply ${req.info.clientId}: ${showResult(e.result)}`);
          arrows?.push({ from: `R${r.id}`, to: req.info.clientId, label: showResult(e.result) });
          this.onReply(req.op, req.info, e.result);
          break;
        }
        case "Alarm":
          this.flush(r, carried);
          carried.push({ _tag: "Alarm", message: e.message });
          details?.push(`ALARM ${e.message}`);
          break;
      }
    }
    if (!crashed) {
      this.flush(r, carried);
      r.state = result.state;
    }
    const step: KvWorldStep = {
      kind: "event",
      replica: r.index,
      event: event._tag,
      from: info.from,
      message: info.message,
      request: info.request,
      before,
      after: r.state,
      carried,
    };
    this.emit(step, label, details ?? undefined, arrows ?? undefined, info.arrowFrom, `R${r.id}`);
  }

  private flush(r: ReplicaSlot, carried: Carried<KvInput, KvOutput>[]): void {
    if (r.unflushed.length === 0) return;
    const records = r.unflushed;
    for (const rec of records) r.durable.push(rec);
    r.unflushed = [];
    carried.push({ _tag: "Flush", records });
  }

  // ---- Clients ----------------------------------------------------------------------------------------

  private submit(ci: number, spec: OpSpec): void {
    const c = this.clients[ci]!;
    if (c.op !== null) {
      this.sendAttempt(c, c.op);
      return;
    }
    const key = this.keys[spec.key % this.keys.length]!;
    c.opsStarted++;
    const value = `${c.id}.${c.opsStarted}`;
    let input: KvInput;
    switch (spec.kind) {
      case "put":
        input = { _tag: "put", key, value };
        break;
      case "append":
        input = { _tag: "append", key, value };
        break;
      case "get":
        input = { _tag: "get", key };
        break;
      case "cas":
        input = { _tag: "cas", key, expected: c.seen.get(key) ?? null, value };
        break;
    }
    const seq = kv.readOnly(input) ? undefined : c.nextSeq++;
    const op: ClientOp = { opId: this.ops.length, client: c.id, input, seq, invokedAt: this.trueTime, completedAt: undefined, output: undefined, attempts: 0 };
    this.ops.push(op);
    c.op = op;
    this.sendAttempt(c, op);
  }

  /** The client sends (or resends) its operation to the replica it believes leads: a request enters the network. */
  private sendAttempt(c: ClientSlot, op: ClientOp): void {
    op.attempts++;
    if (op.attempts > 1) this.count("client retry");
    const r = this.replicas[c.guess]!;
    const requestId = this.nextRequestId++;
    const info: RequestInfo<KvInput> = {
      requestId,
      clientId: c.id,
      seq: op.seq,
      input: op.input,
      consistency: "linearizable",
      replica: r.index,
      invokedAt: op.invokedAt,
    };
    this.requests.set(requestId, { info, op });
    const sent = this.enqueueRequest(r.index, requestId);
    const what = `${op.seq === undefined ? "" : `#${op.seq} `}${showInput(op.input)}`;
    this.faultStep(`${c.id} ${op.attempts > 1 ? "retries" : "sends"} ${what} to R${r.id}${sent ? "" : " (lost: the network is full)"}`);
  }

  /** A client request arrives at replica index `to`. */
  private deliverRequest(to: number, requestId: number): void {
    const { info, op } = this.requests.get(requestId)!;
    const r = this.replicas[to]!;
    const c = this.clients.find((x) => x.id === info.clientId)!;
    const label = `deliver ${info.clientId}->R${r.id} ${info.seq === undefined ? "" : `#${info.seq} `}${showInput(info.input)}`;
    if (r.state === null) {
      // The connection fails; the client tries another replica next time.
      if (c.op === op) c.guess = (c.guess + 1) % this.n;
      this.faultStep(`${label} (lost: R${r.id} is down)`);
      return;
    }
    const event: ReplicaEvent<KvInput> = {
      _tag: "ClientRequest",
      now: r.localAt(this.trueTime),
      requestId,
      clientId: info.seq === undefined ? undefined : info.clientId,
      seq: info.seq,
      input: info.input,
      consistency: "linearizable",
    };
    this.runEvent(r, event, label, { request: info, arrowFrom: info.clientId });
  }

  private onReply(op: ClientOp, info: RequestInfo<KvInput>, result: ClientResult<KvOutput>): void {
    const c = this.clients.find((x) => x.id === info.clientId)!;
    if (c.op !== op) return; // a late answer to an operation already finished
    if (c.loseNextReply) {
      c.loseNextReply = false;
      this.count("client reply lost");
      return;
    }
    switch (result._tag) {
      case "ok": {
        op.completedAt = this.trueTime;
        op.output = result.output;
        c.op = null;
        const key = op.input._tag === "noop" ? undefined : op.input.key;
        if (key !== undefined) {
          const o = result.output;
          if (o._tag === "value") c.seen.set(key, o.value);
          else if (op.input._tag === "put") c.seen.set(key, op.input.value);
          else if (o._tag === "cas") c.seen.set(key, o.swapped && op.input._tag === "cas" ? op.input.value : o.current);
        }
        return;
      }
      case "redirect":
        c.guess = result.leader === null ? (c.guess + 1) % this.n : this.members.indexOf(result.leader);
        if (c.guess < 0) c.guess = 0;
        return;
      case "unavailable":
        if (!result.outcomeUnknown) c.guess = (c.guess + 1) % this.n;
        return;
      case "stale-seq":
        return;
    }
  }

  // ---- Steps ---------------------------------------------------------------------------------------------

  /** A line in the trace that is no world step (phase changes of the run). */
  note(text: string): void {
    this.trace?.push({ n: this.events, t: this.trueTime, text: `-- ${text} --`, details: [], arrows: [] });
  }

  private faultStep(text: string): void {
    this.emit({ kind: "fault" }, text);
  }

  private emit(
    step: KvWorldStep,
    text: string,
    details: readonly string[] = [],
    arrows: readonly { from: string; to: string; label: string }[] = [],
    from?: string,
    to?: string,
  ): void {
    this.events++;
    if (this.trace !== null) {
      this.trace.push({ n: this.events, t: this.trueTime, text, details, arrows, ...(from === undefined ? {} : { from }), ...(to === undefined ? {} : { to }) });
    }
    this.observer?.(step);
  }
}

const configs = new Map<string, Config>();

/** Decoding a configuration is costly; every run with the same tuning shares the decoded one. */
function configFor(tuning: ReplicaTuning, members: readonly number[], self: number): Config {
  const key = `${JSON.stringify(tuning)}|${members.length}|${self}`;
  let config = configs.get(key);
  if (config === undefined) {
    config = parseConfig({ ...tuning, members, self, seed: 0 });
    configs.set(key, config);
  }
  return config;
}

function round(t: number): number {
  return Math.round(t * 1000) / 1000;
}

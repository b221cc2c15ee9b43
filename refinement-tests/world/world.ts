/**
 * The simulated world: a deterministic cluster of 3 or 5 replicas running impl/core's `step`
 * unchanged, with messages in flight per directed link, durable stores with an unflushed
 * buffer, true time, each replica's own clock (offset and rate within the drift bound), and
 * clients that retry (their requests travel the network too: delayed, dropped, duplicated). Faults are the actions of
 * ./actions.ts; `apply(action)` carries one out
 * as one or more atomic world steps and hands each step to the observer (the checkers of
 * proofs/) before the next begins.
 *
 * Driver rules, the same as the runtime's: effects are carried out in order; a Persist goes to
 * the unflushed buffer, which is flushed before the next Send or Reply and at the end of the
 * step (group commit). A Persist with `notify` (the leader's own vote) holds back nothing: it
 * waits in the buffer for its notice, which flushes the buffer and then steps `VoteDurable` at
 * the replica, for a later barrier's flush, or for a crash, which loses it with the notice. A
 * `chosen` record holds back nothing either (a recovery aid: the runtime's `deferrable`): it waits
 * for a later flush, at the latest the next advance of time (the runtime commits it within
 * 100 ms), or for a crash. So a reply that the followers' votes allow leaves while the leader's
 * own vote may still wait, as in the runtime. A
 * notice follows its step at once, or (`noticesDelayed`) waits for a `durable` action, the next
 * advance of time or a delivery of everything, so that it lands before, between or after the
 * followers' votes. A crash may land before any effect of a step: the unflushed buffer is
 * lost and the remaining effects never happen. A restart boots `initialState` and feeds it
 * `Recover` with the flushed records and a fresh clock reading.
 *
 * Everything is a pure function of the options and the action list: no clock, no randomness.
 *
 * By concern: tuning.ts (the replicas' configurations), replica-slot.ts (a replica's state, disk,
 * clock, crash arming, and what a crash, a boot, a flush and drift do to them), network.ts
 * (`Network`: what is in flight, cut links, message ids), clients.ts (`Clients`: client operations,
 * the request table, what a client makes of an answer), membership.ts (addresses, and `Operator`:
 * the changes asked for and the follow-up after an add); this file runs them together, one
 * atomic step at a time, and reports each step to the observer.
 */
import { kv, kvWith, type KvInput, type KvOutput, type KvState } from "../../spec/kv.ts";
import { violated, ViolationFound } from "../../proofs/violation.ts";
import { fnvTextHash } from "../../spec/hash.ts";
import type { Application } from "../../spec/state-machine.ts";
import {
  configurationFor,
  defaultRules,
  executionPending,
  AssertionFailure,
  fillSnapshotHoles,
  initialState,
  keysReadBy,
  mulberry32,
  sameEntry,
  pinnedSnapshots,
  pinnedVotes,
  readChunkFromRecords,
  readEntryFromRecords,
  readFromRecords,
  replicasOf,
  resumingKept,
  snapshotSize,
  resolveStored,
  showChange,
  slotMapGet,
  type ConfigChange,
  step as defaultStep,
  type Config,
  type DurableRecord,
  type Message,
  type ReplicaEffect,
  type ReplicaEvent,
  type ReadEntries,
  type ReplicaRules,
  type ReplicaState,
  type Step,
} from "../../impl/core/testing/index.ts";
import type { Carried, RequestInfo, SystemView, WorldStep } from "../../proofs/world-view.ts";
import type { Action, OpSpec, ReconfigureKind } from "./actions.ts";
import { showInput, showMessage, showRecord, showResult } from "../../impl/core/testing/show.ts";
import type { Hasher } from "../explorer/hash.ts";
import {
  Clients,
  openingInput,
  type ClientContext,
  type ClientOp,
  type ClientSlot,
  type SentRequest,
} from "./clients.ts";
import { addressOfReplica, knowsFromLog, Operator, type ChangeAsked } from "./membership.ts";
import { corrupted, Network, type ChunkFault, type InFlight } from "./network.ts";
import {
  compactionFaults,
  deferrable,
  keptChunksPerPiece,
  keptPiece,
  keptThrough,
  keptWith,
  ReplicaSlot,
  type OwedRead,
} from "./replica-slot.ts";
import { configFor, defaultTuning, type ReplicaTuning } from "./tuning.ts";

export type KvReplicaState = ReplicaState<KvState, KvInput, KvOutput>;
export type KvWorldStep = WorldStep<KvState, KvInput, KvOutput>;
export type KvSystemView = SystemView<KvState, KvInput, KvOutput>;

/** How to build a world. */
export interface WorldOptions {
  /** Replicas (ids 1..N): the initial members. Default 3. */
  readonly replicas?: number;
  /**
   * Spare replicas (ids N+1..N+spares), not started: a reconfiguration action boots one with an
   * empty disk and adds it as a learner. Default 3 (a removed replica's id is never added again).
   */
  readonly spares?: number;
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
  /**
   * The notices of the leader's own votes durable wait for a `durable` action, the next advance of
   * true time or a delivery of everything, instead of following the step that asked for them.
   * Default false.
   */
  readonly noticesDelayed?: boolean;
  /**
   * The store replica index `index` runs. Default: the tuning's (`World.app`). A test passes a
   * broken one to one replica, to show the checks catch it.
   */
  readonly appOf?: (index: number) => KvApp;
}

/** The key-value store as the world's replicas run it. */
export type KvApp = Application<KvState, KvInput, KvOutput>;

/** The store with a passed-in hash of long texts (the tuning's `longValues`). */
const kvHashed: KvApp = kvWith(fnvTextHash);

/** The store a tuning's replicas run, and the checks judge them by. */
export function appOf(tuning: ReplicaTuning): KvApp {
  return tuning.longValues === true ? kvHashed : kv;
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

/** The simulated cluster. */
export class World implements KvSystemView {
  trueTime = 0;
  /** World steps taken so far. */
  events = 0;
  readonly members: readonly number[];
  readonly replicas: readonly ReplicaSlot[];
  readonly keys: readonly string[];
  /**
   * The clients, their operations and the requests they sent. Copy on write: a clone shares it
   * with the world it was cloned from until one of the two changes it (`ownClients`).
   */
  private clientTable: Clients;
  private clientsShared = false;
  /** Bit i set: replica slot i is shared with a clone (or the world cloned from), to be copied before it changes. */
  private sharedSlots = 0;
  /** What is in flight, the cut links and the message ids. */
  private readonly network: Network;
  /** The initial members (ids 1..N); `members` also lists the spares. */
  readonly initialMembers: readonly number[];
  /** The operator's tool: the membership changes it asked for, and what it has yet to ask (copy on write). */
  private operator: Operator;
  private operatorShared = false;
  readonly trace: TraceEntry[] | null;
  readonly counters: Map<string, number>;
  readonly tuning: ReplicaTuning;
  /** The store of the tuning (`appOf`): what the checks judge the replicas by. */
  readonly app: KvApp;
  /** The store replica index i runs (`WorldOptions.appOf`). */
  private readonly appAt: (index: number) => KvApp;
  /** Called after every step (the checkers; a violation they throw stops the run). */
  observer: ((step: KvWorldStep) => void) | null = null;
  /** Initial members; faults and clients name replicas among the born ones. */
  private readonly n: number;
  /** Every replica slot, spares included. */
  private readonly total: number;
  private pausedCount = 0;
  /**
   * The id of the first entry put in flight since true time last moved: an entry delivered with a
   * smaller id was sent at an earlier instant, so it arrived after a delay (counted; the
   * explorer's zero-delay hunts show their traces have none).
   */
  private instantFirstId = 1;
  private readonly step: Step;
  /** The rules the step was assembled from (rule L3 says who holds a lease). */
  readonly rules: ReplicaRules;
  private nextRequestId = 1;
  private readonly driftRho: number;
  /** See `WorldOptions.noticesDelayed`. */
  readonly noticesDelayed: boolean;
  /** True while notices are being delivered right after their steps (no nesting). */
  private deliveringNotices = false;
  /** The seed the reads answered late draw their delays from (`ReplicaTuning.readsLateMsMax`). */
  private readonly seed: number;
  /** `ReadEntries` asked so far: read k draws its delay from the seed and k (a fresh id: not hashed). */
  private readsAsked = 0;
  /**
   * The faults are over (the liveness phase): no answer carries a wrong value any more, every read
   * owed is answered at the next advance of time and every new one at once.
   */
  private readFaultsOver = false;

  /** A world built from `options`; with `from` (see `clone`), a copy of that world instead. */
  constructor(options: WorldOptions = {}, from?: World) {
    if (from !== undefined) {
      this.n = from.n;
      this.total = from.total;
      this.tuning = from.tuning;
      this.app = from.app;
      this.appAt = from.appAt;
      this.step = from.step;
      this.rules = from.rules;
      this.trace = from.trace === null ? null : from.trace.slice();
      this.members = from.members;
      this.initialMembers = from.initialMembers;
      this.driftRho = from.driftRho;
      this.noticesDelayed = from.noticesDelayed;
      this.seed = from.seed;
      this.readsAsked = from.readsAsked;
      this.readFaultsOver = from.readFaultsOver;
      // Copy on write (`own`): each replica slot is shared with `from` until one of the two changes it.
      this.replicas = from.replicas.slice();
      if (this.total <= 30) this.sharedSlots = from.sharedSlots = (1 << this.total) - 1;
      else this.replicas = from.replicas.map((r) => r.copy());
      this.keys = from.keys;
      this.clientTable = from.clientTable;
      this.clientsShared = from.clientsShared = true;
      this.trueTime = from.trueTime;
      this.events = from.events;
      this.network = from.network.copy(this);
      this.operator = from.operator;
      this.operatorShared = from.operatorShared = true;
      this.counters = from.counters;
      this.pausedCount = from.pausedCount;
      this.instantFirstId = from.instantFirstId;
      this.nextRequestId = from.nextRequestId;
      return;
    }
    const n = options.replicas ?? 3;
    this.n = n;
    this.total = n + (options.spares ?? 3);
    this.tuning = options.tuning ?? defaultTuning;
    const app = appOf(this.tuning);
    this.app = app;
    this.appAt = options.appOf ?? (() => app);
    this.step = options.step ?? defaultStep;
    this.rules = this.step.rules ?? defaultRules;
    this.trace = options.record === true ? [] : null;
    this.members = Array.from({ length: this.total }, (_, i) => i + 1);
    this.initialMembers = this.members.slice(0, n);
    this.driftRho = this.tuning.clockDriftPpmMax / 1e6;
    this.noticesDelayed = options.noticesDelayed ?? false;
    const seed = options.seed ?? 1;
    this.seed = seed;
    this.replicas = this.members.map((id, index) => {
      const config: Config = { ...configFor(this.tuning, this.initialMembers, id), seed: seed >>> 0 };
      // Clocks start far apart: no replica's reading means anything to another.
      const slot = new ReplicaSlot(id, index, config, 10_000 * (index + 1));
      slot.compactionPieceRecords = this.tuning.compactionPieceRecords ?? 0;
      slot.compactionFault = compactionFaults.get(this.step) ?? null;
      return slot;
    });
    this.counters = new Map<string, number>();
    this.network = new Network(this.total, options.inFlightMax ?? 256, this);
    this.keys = Array.from({ length: options.keys ?? 2 }, (_, i) => `k${i}`);
    this.clientTable = new Clients(
      options.clients ?? 3,
      n,
      this.keys,
      undefined,
      this.tuning.longValues === true,
      this.tuning.valueLimit === true,
    );
    this.operator = new Operator();
  }

  /**
   * An independent copy of this world, to go on from apart: replica states, records and messages
   * are immutable values and are shared; everything that changes is copied. The copy has no
   * observer; its counters are this world's (they add up over every copy).
   */
  clone(): World {
    return new World({}, this);
  }

  /**
   * Replica slot `index`, this world's own to change: copied first if a clone shares it. A caller
   * holding the slot from before must go on with the one returned.
   */
  private own(index: number): ReplicaSlot {
    const bit = 1 << index;
    let r = this.replicas[index]!;
    if ((this.sharedSlots & bit) !== 0) {
      r = r.copy();
      (this.replicas as ReplicaSlot[])[index] = r;
      this.sharedSlots &= ~bit;
    } else r.changed();
    return r;
  }

  /** The client table, this world's own to change (copied first if a clone shares it). */
  private ownClients(): Clients {
    if (this.clientsShared) {
      this.clientTable = this.clientTable.copy();
      this.clientsShared = false;
    } else this.clientTable.changed();
    return this.clientTable;
  }

  /** The operator's tool, this world's own to change (copied first if a clone shares it). */
  private ownOperator(): Operator {
    if (this.operatorShared) {
      this.operator = this.operator.copy();
      this.operatorShared = false;
    } else this.operator.changed();
    return this.operator;
  }

  /**
   * Feed this world's state into `h`: what decides its future, and nothing else. True time; per
   * replica its state, disk, clock, life and the addresses it knows (`ReplicaSlot.hashInto`); the
   * network (`Network.hashInto`: the multiset of messages in flight, cut links, an armed chunk
   * fault); the clients, their operations and the request table (`Clients.hashInto`); membership
   * changes asked for and what the operator's tool has yet to ask (`Operator.hashInto`). Left out:
   * step and message counters, the trace, counters of rare events, and the next fresh ids.
   *
   * `downForGood(index)`: the caller knows that replica `index`, now down, will never run again
   * (it retired, or the explorer has no restart left to give it). Then only that it is down (and
   * born, paused, retired) counts: no transition or check reads a stopped replica's disk, clock
   * or addresses except to restart it. Messages it sent that are still in flight count as always.
   */
  hashInto(h: Hasher, downForGood?: (index: number) => boolean): void {
    h.num(this.trueTime);
    for (const r of this.replicas) r.hashInto(h, this.trueTime, r.state === null && downForGood?.(r.index) === true);
    this.network.hashInto(h);
    h.hash(this.clientTable.hash());
    h.hash(this.operator.hash());
  }

  /** Boot every initial member (each handles `Recover` with an empty disk). One world step per replica. */
  boot(): void {
    for (let i = 0; i < this.n; i++) {
      const r = this.own(i);
      r.born = true;
      r.startList = new Set(this.initialMembers);
      this.restartReplica(r);
    }
  }

  /**
   * Start spare `r` with an empty disk, not yet a member (a joining replica), knowing the address
   * of itself and of the replica `leader` alone: the operator gave it the one member it asked.
   * Every other replica learns its address when it dials them, or from the log once it is added.
   */
  private startSpare(spare: ReplicaSlot, leader: ReplicaSlot): void {
    const r = this.own(spare.index);
    r.born = true;
    r.startList = new Set([r.id, leader.id]);
    this.restartReplica(r);
  }

  // ---- Addresses --------------------------------------------------------------------------------

  /**
   * Can replica index `a` send to replica index `b`? Only if it knows b's address: b is in its
   * start list, b's address is in a configuration it holds (the log carries the addresses of the
   * members it added: `Configuration.addresses`), or b dialled it in this life. The runtime's
   * transport dials every peer it knows and keeps redialling, so b, when up and knowing a's
   * address, will have dialled a by now: then a learns b here (a handshake).
   */
  private reachable(a: number, b: number): boolean {
    if (a === b) return true;
    const ra = this.replicas[a]!;
    const rb = this.replicas[b]!;
    if (ra.startList.has(rb.id) || ra.learned.has(rb.id)) return true;
    if (knowsFromLog(ra.state, rb.id)) {
      this.count("message sent by an address the log carried");
      return true;
    }
    if (rb.state !== null && !this.linkBlocked(b, a) && (rb.startList.has(ra.id) || knowsFromLog(rb.state, ra.id))) {
      this.own(a).learned.add(rb.id);
      return true;
    }
    return false;
  }

  /** The indices of the replicas started so far (the initial members, then the spares that joined). */
  born(): number[] {
    const out: number[] = [];
    for (const r of this.replicas) if (r.born) out.push(r.index);
    return out;
  }

  // ---- SystemView -----------------------------------------------------------------------------

  linkBlocked(a: number, b: number): boolean {
    return this.network.linkBlocked(a, b);
  }

  /** Is some link cut? */
  anyLinkBlocked(): boolean {
    return this.network.anyLinkBlocked();
  }

  /** What is in flight, oldest first. */
  /**
   * Was `m` put in flight before true time last moved? It can then arrive only after a delay (the
   * explorer's zero-delay hunts lose what a prelude left so).
   */
  sentBeforeNow(m: InFlight): boolean {
    return m.id < this.instantFirstId;
  }

  get inFlight(): readonly InFlight[] {
    return this.network.inFlight;
  }

  count(name: string, by = 1): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + by);
  }

  // ---- Actions --------------------------------------------------------------------------------

  /**
   * Replica index for target `r`: the (r mod B)-th of the B replicas started so far (the N initial
   * members until a spare joins), except that r = N names the current leader (the live one with
   * the highest ballot).
   */
  target(r: number): number {
    if (r !== this.n) {
      const born = this.born();
      return born[r % born.length]!;
    }
    let best = -1;
    for (const rep of this.replicas) {
      const s = rep.state;
      if (s === null || s.role._tag !== "leader") continue;
      if (best < 0) best = rep.index;
      else {
        const other = this.replicas[best]!.state!.role as { ballot: { round: number; replica: number } };
        const mine = s.role.ballot;
        if (
          mine.round > other.ballot.round ||
          (mine.round === other.ballot.round && mine.replica > other.ballot.replica)
        )
          best = rep.index;
      }
    }
    return best < 0 ? 0 : best;
  }

  /** The client request with id `requestId`: what was sent and the operation it is an attempt at. */
  requestOf(requestId: number): SentRequest | undefined {
    return this.clientTable.request(requestId);
  }

  /** Feature level 3: the index of the client that sent open-session request `requestId`, if one did. */
  openRequester(requestId: number): number | undefined {
    return this.clientTable.openOf(requestId);
  }

  /** Membership changes asked for, by request id: the change and the answer (once given). */
  get changes(): ReadonlyMap<number, ChangeAsked> {
    return this.operator.changes;
  }

  /** The clients c1..cK (to read: `steerClient` changes where one sends next). */
  get clients(): readonly Readonly<ClientSlot>[] {
    return this.clientTable.slots;
  }

  /** Client `c` believes replica index `index` leads: it sends its next request there. */
  steerClient(c: number, index: number): void {
    this.ownClients().slots[c]!.guess = index;
  }

  /** Every client operation so far, in the order invoked. */
  get ops(): readonly ClientOp[] {
    return this.clientTable.ops;
  }

  /** A target `r` that names replica index `index` (started) by position, never as "the current leader". */
  targetFor(index: number): number {
    const born = this.born();
    const at = born.indexOf(index);
    if (at < 0) throw new Error(`replica index ${index} was never started`);
    return at === this.n ? at + born.length : at;
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
      case "durable": {
        const owed = this.noticesOwed();
        if (owed.length > 0) this.deliverNotice(owed[a.i % owed.length]!);
        return;
      }
      case "drop":
      case "duplicate": {
        if (this.inFlight.length === 0) return;
        const index = a.i % this.inFlight.length;
        const m = this.inFlight[index]!;
        if (a.t === "drop") {
          this.network.removeAt(index);
          this.faultStep(this.text(() => `drop ${this.describe(m)}`));
        } else {
          this.duplicate(m);
          this.faultStep(this.text(() => `duplicate ${this.describe(m)}`));
        }
        return;
      }
      case "cut": {
        const x = this.target(a.a);
        const y = this.target(a.b);
        if (x === y) return;
        this.network.cut(x, y, a.oneWay);
        this.faultStep(`cut R${x + 1}${a.oneWay ? "->" : "<->"}R${y + 1}`);
        return;
      }
      case "isolate":
        this.isolate(this.target(a.r), a.others ?? 0);
        return;
      case "bridge": {
        const leader = this.target(this.n);
        const born = this.born();
        let keep = born[a.r % born.length]!;
        if (keep === leader) keep = born[(born.indexOf(leader) + 1) % born.length]!;
        this.network.bridge(leader, keep, born);
        this.faultStep(`bridge: R${leader + 1} reaches only R${keep + 1}`);
        return;
      }
      case "heal":
        if (!this.network.anyLinkBlocked()) return;
        this.healAll();
        return;
      case "crash":
        this.crash(this.target(a.r), a.at);
        return;
      case "restart":
        this.restartIndex(this.target(a.r), a.clockMs);
        return;
      case "pause":
      case "resume": {
        const pause = a.t === "pause";
        // Resuming names a paused replica if the target is not one.
        let r = this.replicas[this.target(a.r)]!;
        if (!pause && !r.paused) r = this.replicas.find((x) => x.paused) ?? r;
        this.setPaused(r, pause);
        return;
      }
      case "drift":
        this.drift(this.target(a.r), a.ppm);
        return;
      case "advance":
        this.advance(a.ms);
        return;
      case "submit": {
        const c = a.c % this.clients.length;
        if (a.to !== undefined) this.ownClients().slots[c]!.guess = this.target(a.to);
        this.submit(c, a.op);
        return;
      }
      case "retry": {
        const i = a.c % this.clients.length;
        if (this.clients[i]!.op === null) return;
        const c = this.ownClients().slots[i]!;
        if (a.to !== undefined) c.guess = this.target(a.to);
        this.sendAttempt(c, c.op!);
        return;
      }
      case "reconfigure":
        this.reconfigure(a.kind, a.r, a.to);
        return;
      case "crashInSnapshot": {
        const r = this.replicas[this.target(a.r)]!;
        if (r.state === null || r.crashAtSnapshot) return;
        this.own(r.index).crashAtSnapshot = true;
        this.faultStep(`arm a crash of R${r.id} during its next snapshot`);
        return;
      }
      case "dropChunk":
      case "corruptChunk":
        this.chunkFault(a.t, a.i);
        return;
      case "staleChunk":
        this.staleChunk(a.i, this.target(a.from), this.target(a.to));
        return;
      case "reuseSeq": {
        const c = a.c % this.clients.length;
        if (a.to !== undefined) this.ownClients().slots[c]!.guess = this.target(a.to);
        this.reuseSeq(c, a.op);
        return;
      }
      case "loseReply": {
        const i = a.c % this.clients.length;
        if (this.clients[i]!.loseNextReply) return;
        const c = this.ownClients().slots[i]!;
        c.loseNextReply = true;
        this.faultStep(`${c.id}'s next reply will be lost`);
        return;
      }
    }
  }

  /**
   * A symmetric partition: replica index `r` and the `others` started replicas after it on one side
   * (at most half of them), the rest on the other.
   */
  isolate(r: number, others: number): void {
    const side = this.isolationSide(r, others);
    this.network.partition(side, this.born());
    this.faultStep(`isolate ${[...side].map((x) => `R${x + 1}`).join(",")} from the rest`);
  }
  /** The replicas `isolate(r, others)` cuts off from the rest: r and the `others` born after it (a minority). */
  isolationSide(r: number, others: number): Set<number> {
    const born = this.born();
    const side = new Set<number>([r]);
    const at = born.indexOf(r);
    for (let k = 1; k <= others && side.size < Math.ceil(born.length / 2); k++) side.add(born[(at + k) % born.length]!);
    return side;
  }

  /** Restore every link. */
  healAll(): void {
    this.network.healAll();
    this.faultStep("heal");
  }

  /** Resume every paused replica. */
  resumeAll(): void {
    for (const r of this.replicas) if (r.paused) this.setPaused(r, false);
  }

  /** Pause (stall) or resume replica `index`: the liveness phase under load schedules replicas this way. */
  stall(index: number, pause: boolean): void {
    this.setPaused(this.replicas[index]!, pause);
  }

  private setPaused(r: ReplicaSlot, pause: boolean): void {
    if (r.paused === pause) return;
    this.own(r.index).paused = pause;
    this.pausedCount += pause ? 1 : -1;
    this.faultStep(`${pause ? "pause" : "resume"} R${r.id}`);
  }

  /**
   * Cancel every armed crash (the faults are over): reads are no longer answered late, nor wrong,
   * those owed included (a wrong answer owed would stop its replica after the liveness phase
   * restarted every one).
   */
  disarmCrashes(): void {
    this.readFaultsOver = true;
    for (const r of this.replicas)
      if (r.readsOwed.some((owed) => owed.wrong))
        this.own(r.index).readsOwed = r.readsOwed.map((owed) => (owed.wrong ? { ...owed, wrong: false } : owed));
    for (const { index, crashAt, crashAtSnapshot } of this.replicas) {
      if (crashAt === null && !crashAtSnapshot) continue;
      const r = this.own(index);
      r.crashAt = null;
      r.crashAtSnapshot = false;
    }
  }

  /** Restart every crashed replica that was ever started (clock readings continue from a fixed offset). */
  restartAll(): void {
    for (const r of this.replicas)
      if (r.born && !r.retired && r.state === null) this.restartIndex(r.index, 500_000 * (r.index + 1));
  }

  /** Boot replica `index` from its disk, its clock reading `clockMs` now (a live one is crashed first). */
  private restartIndex(index: number, clockMs: number): void {
    if (this.replicas[index]!.retired) return;
    if (this.replicas[index]!.state !== null) this.crash(index, null);
    const r = this.own(index);
    r.setClock(clockMs, this.trueTime);
    this.restartReplica(r);
  }

  /** Has the operator's tool a membership change left to ask a leader for? */
  operatorFollowingUp(): boolean {
    return this.operator.followingUp();
  }

  /** Let `ms` pass, then tick every live, running replica (and let the operator's tool go on). */
  advance(ms: number): void {
    const from = this.trueTime;
    this.trueTime += ms;
    if (ms > 0) this.instantFirstId = this.network.nextId;
    this.emit({ kind: "time", from, to: this.trueTime }, `advance ${ms} ms (true time ${round(this.trueTime)})`);
    // Time passed: every storage thread finished what it was writing, deferred records included
    // (the runtime commits those within 100 ms; each tick flushes its replica's buffer first).
    this.deliverNotices();
    this.answerDueReads();
    this.tickAll(ms > 0);
    this.operatorFollowUp();
  }

  /** Tick every live, running replica at its own clock, with `flushFirst` its buffer flushed before. */
  private tickAll(flushFirst: boolean): void {
    for (const r of this.replicas) {
      if (r.state === null || r.paused) continue;
      this.runEvent(r, { _tag: "Tick", now: r.localAt(this.trueTime) }, `tick R${r.id}`, { flushFirst });
    }
  }

  /**
   * Deliver the oldest deliverable message, else a notice owed, else a read owed however late it
   * was drawn (no time passes: every storage thread finishes at once); false when there is none.
   */
  deliverOne(): boolean {
    const m = this.pickDeliverable(0);
    if (m !== undefined) {
      this.deliver(m);
      return true;
    }
    const owed = this.noticesOwed();
    if (owed.length > 0) {
      this.deliverNotice(owed[0]!);
      return true;
    }
    const reading = this.replicas.find((r) => r.readsOwed.length > 0 && r.state !== null && !r.paused);
    if (reading === undefined) return false;
    this.answerOwed(reading.index);
    return true;
  }

  /**
   * Deliver the oldest message deliverable now but those of `held` (ids; a reordering the network
   * may make: a prelude holds a message back this way). False if there was none.
   */
  deliverOneExcept(held: ReadonlySet<number>): boolean {
    const m = this.inFlight.find((x) => !held.has(x.id) && this.deliverable(x));
    if (m === undefined) return false;
    this.deliver(m);
    return true;
  }

  /** Deliver every client request in flight now (not the replicas' messages), oldest first. */
  deliverRequests(): void {
    const ids = this.inFlight.filter((m) => m.kind === "request" && this.deliverable(m)).map((m) => m.id);
    for (const id of ids) {
      const m = this.inFlight.find((x) => x.id === id);
      if (m !== undefined) this.deliver(m);
    }
  }

  /**
   * Deliver every message deliverable now, oldest first, then every notice owed (so that the
   * followers' votes a previous delivery sent come before the leader's own).
   */
  deliverAll(): void {
    const snapshot = this.inFlight.filter((m) => this.deliverable(m)).map((m) => m.id);
    for (const id of snapshot) {
      const index = this.inFlight.findIndex((m) => m.id === id);
      if (index < 0) continue;
      const m = this.inFlight[index]!;
      if (this.deliverable(m)) this.deliver(m);
    }
    this.deliverNotices();
  }

  /**
   * The replicas that hold a lease now: each, judged by its own clock, would answer a read by
   * lease (rule L3: its lease holds and phase 1 revealed everything above its executed prefix).
   */
  leaseHolders(): number[] {
    const out: number[] = [];
    for (const r of this.replicas) {
      const s = r.state;
      if (
        s !== null &&
        s.role._tag === "leader" &&
        this.rules.canServeLeaseRead(this.rules, s, r.localAt(this.trueTime))
      )
        out.push(r.index);
    }
    return out;
  }

  /**
   * True when the one leaseholder's every configuration member (voters and learners) is up and has
   * executed exactly what the leader executed, to the same application state: a replica added
   * during the run has caught up, by state transfer or by the log.
   */
  membersConverged(): boolean {
    const holders = this.leaseHolders();
    if (holders.length !== 1) return false;
    const leader = this.replicas[holders[0]!]!.state!;
    const digest = this.app.digest(leader.learner.service.app);
    for (const id of replicasOf(leader.learner.configs, leader.ctx.config.self)) {
      const s = this.replicas[id - 1]?.state;
      if (s === null || s === undefined) return false;
      if (s.learner.executedUpTo !== leader.learner.executedUpTo || this.app.digest(s.learner.service.app) !== digest)
        return false;
    }
    return true;
  }

  /**
   * The replicas still running although they know their removal, which the leader's configuration
   * in force made: each must retire once the cluster took over (rule R5), however its farewell
   * went. (A replica removed while down that never learns it is told by its peers' transport in
   * the runtime, a 'removed' frame the world does not model.) Empty when no single replica holds
   * a lease.
   */
  removedNotRetired(): number[] {
    const holders = this.leaseHolders();
    if (holders.length !== 1) return [];
    const leader = this.replicas[holders[0]!]!.state!;
    const inForce = configurationFor(leader.learner.configs, leader.learner.executedUpTo + 1);
    const out: number[] = [];
    for (const r of this.replicas) {
      const s = r.state;
      if (!r.born || r.retired || s === null || !inForce.retired.includes(r.id)) continue;
      if (s.learner.configs[s.learner.configs.length - 1]!.retired.includes(r.id)) out.push(r.id);
    }
    return out;
  }

  /** True when some client has an operation outstanding. */
  pendingOps(): number {
    return this.clientTable.pending();
  }

  /** Resend every outstanding operation (liveness mode's patient clients); no reply is lost any more. */
  retryAll(): void {
    const clients = this.ownClients().slots;
    for (const c of clients) c.loseNextReply = false;
    for (const c of clients) if (c.op !== null) this.sendAttempt(c, c.op);
    clients.forEach((c, ci) => {
      if (c.op === null && c.waiting !== null && c.opened === null) this.sendOpen(ci, c);
    });
  }

  // ---- Messages ---------------------------------------------------------------------------------

  private idOf(index: number): number {
    return this.members[index]!;
  }

  private deliverable(m: InFlight): boolean {
    if (this.replicas[m.to]!.paused) return false;
    return m.kind === "request" || !this.network.linkBlocked(m.from, m.to);
  }

  /** `R1->R2 Accept ...` or `c1 -> R2 #3 put(k0,c1.3)`. */
  private describe(m: InFlight): string {
    if (m.kind === "message") return `R${this.idOf(m.from)}->R${this.idOf(m.to)} ${showMessage(m.message, false)}`;
    const opener = this.clientTable.openOf(m.requestId);
    if (opener !== undefined) return `${this.clientTable.slots[opener]!.id}->R${this.idOf(m.to)} open a session`;
    const req = this.clientTable.request(m.requestId)!.info;
    return `${req.clientId}->R${this.idOf(m.to)} ${req.seq === undefined ? "" : `#${req.seq} `}${showInput(req.input)}`;
  }

  /** A copy of a message; a copied client request gets a request id of its own (a new connection). */
  private duplicate(m: InFlight): void {
    if (m.kind === "message") {
      this.enqueue(m.from, m.to, m.message);
      this.count("message duplicated");
      return;
    }
    const table = this.ownClients();
    const requestId = this.nextRequestId++;
    const opener = table.openOf(m.requestId);
    if (opener !== undefined) {
      // A copy of an open-session request: its answer opens a session the client never learns of.
      table.copiedOpen(requestId, opener);
      this.enqueueRequest(m.to, requestId);
      this.count("client request duplicated");
      return;
    }
    const original = table.request(m.requestId)!;
    table.sent(requestId, { ...original.info, requestId }, original.op);
    this.enqueueRequest(m.to, requestId);
    this.count("client request duplicated");
  }

  private enqueueRequest(to: number, requestId: number): boolean {
    return this.network.sendRequest(to, requestId);
  }

  private pickDeliverable(i: number): InFlight | undefined {
    if (this.inFlight.length === 0) return undefined;
    if (!this.network.anyLinkBlocked() && this.pausedCount === 0) return this.inFlight[i % this.inFlight.length];
    const ok = this.inFlight.filter((m) => this.deliverable(m));
    return ok.length === 0 ? undefined : ok[i % ok.length];
  }

  private enqueue(from: number, to: number, message: Message<KvInput>): void {
    if (this.network.linkBlocked(from, to)) {
      this.count("message lost to a partition");
      return;
    }
    if (!this.reachable(from, to)) {
      this.count("message lost: the receiver's address is unknown");
      return;
    }
    this.network.send(from, to, message);
  }

  private deliver(m: InFlight): void {
    this.network.remove(m);
    if (m.id < this.instantFirstId) this.count("message delivered after true time moved");
    if (m.kind === "request") {
      this.deliverRequest(m.to, m.requestId);
      return;
    }
    const r = this.replicas[m.to]!;
    const label = this.trace === null ? "" : `deliver R${this.idOf(m.from)}->R${r.id} ${showMessage(m.message, false)}`;
    if (r.state === null) {
      this.faultStep(`${label} (lost: R${r.id} is down)`);
      return;
    }
    this.runEvent(
      r,
      { _tag: "Receive", now: r.localAt(this.trueTime), from: this.idOf(m.from), message: m.message },
      label,
      {
        from: this.idOf(m.from),
        message: m.message,
        arrowFrom: `R${this.idOf(m.from)}`,
      },
    );
  }

  // ---- Replicas -----------------------------------------------------------------------------------

  private crash(index: number, at: number | null): void {
    if (this.replicas[index]!.state === null) return;
    const r = this.own(index);
    if (at !== null) {
      r.crashAt = at;
      this.faultStep(`arm crash of R${r.id} before effect ${at} of its next step`);
      return;
    }
    const before = r.state;
    this.countCrashBeforeOwnVote(r);
    if (before?.learner.transfer != null) this.count("crash during a transfer");
    this.countReadsLost(r);
    r.stop();
    this.count("crash");
    this.emit({ kind: "crash", replica: index, before }, `crash R${r.id}`);
  }

  private restartReplica(slot: ReplicaSlot): void {
    const r = this.own(slot.index);
    r.boot(initialState(r.config, this.appAt(slot.index)));
    // Where the disk keeps a transfer, Recover describes it; its chunks follow (`feedKept`).
    const k = this.tuning.resumeTransfers === true ? r.kept : null;
    const kept =
      k === null
        ? {}
        : {
            kept: {
              from: k.from,
              slot: k.slot,
              digest: k.digest,
              contentDigest: k.contentDigest,
              totalBytes: k.totalBytes,
            },
          };
    const keptText = k === null ? "" : `, ${k.chunks.length} chunks of a transfer kept`;
    if (voteRepeated(r.durable)) this.count("a replica recovered a vote repeated in its ballot");
    this.runEvent(
      r,
      { _tag: "Recover", now: r.localAt(this.trueTime), records: r.durable.slice(), ...kept },
      `restart R${r.id} (${r.durable.length} records${keptText}, clock ${round(r.localAt(this.trueTime))})`,
      {},
      null,
    );
  }

  private drift(index: number, ppm: number): void {
    const rate = 1 + Math.max(-this.driftRho, Math.min(this.driftRho, ppm / 1e6));
    if (rate === this.replicas[index]!.clock.rate) return;
    const r = this.own(index);
    r.setRate(rate, this.trueTime);
    this.count("clock drift changed");
    this.emit({ kind: "clock", replica: index }, `drift R${r.id} rate=${rate}`);
  }

  /**
   * Run one event at replica `r` and carry out its effects (see the module comment). `before`
   * overrides the state reported as the step's prior state (null for a boot).
   */
  private runEvent(
    slot: ReplicaSlot,
    event: ReplicaEvent<KvInput>,
    label: string,
    info: {
      from?: number;
      message?: Message<KvInput>;
      request?: RequestInfo<KvInput>;
      arrowFrom?: string;
      flushFirst?: boolean;
      /** An `EntriesRead` carrying a wrong value: a refusal by V2's comparison stops the replica. */
      wrongValue?: boolean;
    },
    before: KvReplicaState | null = slot.state,
  ): void {
    const r = this.own(slot.index);
    const state = r.state!;
    const carried: Carried<KvInput, KvOutput>[] = [];
    if (info.flushFirst === true) this.flush(r, carried);
    const result = this.stepChecked(r, state, event, info.wrongValue === true);
    if (result === null) return;
    // The snapshots the core still serves beyond its latest two: a compaction in this step keeps their records.
    r.pinned = pinnedSnapshots(result.state);
    // The vote records its store names: a compaction in this step keeps them (rule V3).
    r.pinnedVotes = pinnedVotes(result.state.learner.origins);
    const leftBefore = executionPending(state);
    if (this.tuning.electionWaitsAfterStall === true && state.role._tag === "follower") {
      const due = state.election.heardAt + state.election.timeoutMs;
      if (state.now < due && event.now > due + this.tuning.heartbeatIntervalMs) {
        this.count("a follower stalled past its election deadline waited for its leader");
        // Stopped, not merely late: it waits its whole election timeout (impl/core/election.ts).
        if (event.now - due > this.tuning.electionTimeoutMsMin)
          this.count("a follower stopped an election timeout past its deadline waited its election timeout");
      }
    }
    if (
      this.tuning.prepareResendBackoff === true &&
      state.role._tag === "candidate" &&
      result.state.role._tag === "candidate" &&
      result.state.role.prepareResendAfterMs > state.role.prepareResendAfterMs
    )
      this.count("a candidate's Prepare resends backed off");
    const won = result.state.role;
    if (
      this.tuning.promiseOmitsChosen === true &&
      state.role._tag === "candidate" &&
      won._tag === "leader" &&
      won.inflightBase > won.fromSlot &&
      won.coversFrom.some((from, i) => (won.promised & (1 << i)) !== 0 && from > won.fromSlot)
    )
      this.count("a candidate caught up on a reported-chosen prefix and won above it");
    const details: string[] | null = this.trace === null ? null : [];
    const arrows: { from: string; to: string; label: string }[] | null = this.trace === null ? null : [];
    const effects = result.effects;
    let crashAt = r.crashAt;
    let crashed = false;
    // The store values the step asked for (rule V4): read back once the step is carried out.
    const reads: ReadEntries[] = [];
    // Where the tuning keeps transfers, the driver stores what the step did to one as it returns,
    // before its effects: a crash before the first effect loses that too.
    let staged = this.tuning.resumeTransfers === true;
    for (let k = 0; k <= effects.length; k++) {
      if (crashAt !== null && k === Math.min(crashAt, effects.length)) {
        crashed = true;
        if (k === 0) staged = false;
        const lost = r.unflushed.length;
        carried.push({ _tag: "Crash", lost });
        if (lost > 0) this.count("crash lost unflushed records");
        this.countCrashBeforeOwnVote(r);
        this.countReadsLost(r);
        this.count("crash mid-step");
        if (state.learner.transfer !== null) this.count("crash during a transfer");
        details?.push(
          `crash before effect ${k} (${lost} unflushed records lost, ${effects.length - k} effects dropped)`,
        );
        r.stop();
        break;
      }
      if (k === effects.length) break;
      const e = effects[k]!;
      switch (e._tag) {
        case "Persist":
          // A snapshot's values at rest, read back from the disk now (rule V5), before a flush compacts it.
          if (fillSnapshotHoles(e.record, readEntryFromRecords(this.appAt(slot.index), [...r.durable, ...r.unflushed])))
            this.count("a snapshot's holes filled from the vote records of its store values at rest");
          r.unflushed.push(e.record);
          if (e.notify !== undefined) r.notices.push(e.notify);
          else if (!deferrable(e.record)) r.barrierUnflushed = true;
          details?.push(`persist ${showRecord(e.record, false)}`);
          if (e.record._tag === "snapshot" && r.crashAtSnapshot) {
            // A crash during the snapshot: the record was written but not flushed.
            r.crashAtSnapshot = false;
            crashAt = k + 1;
            this.count("crash during a snapshot");
            // The snapshot a transfer installs: the old state must come back, the transfer start over.
            if (event._tag === "Receive" && event.message._tag === "SnapshotChunk")
              this.count("crash while installing a transferred snapshot");
          }
          break;
        case "SendStored":
        case "Send": {
          this.flushBarrier(r, carried);
          // A message holding values at rest leaves with them read back from the disk (flushed just now).
          const message =
            e._tag === "Send"
              ? e.message
              : resolveStored(e.message, readFromRecords(r.durable), readChunkFromRecords(r.durable));
          if (e._tag === "SendStored")
            this.count(
              message._tag === "SnapshotChunk"
                ? "SnapshotChunk read back from the snapshot's durable record"
                : `${message._tag} with values read back from the disk`,
            );
          carried.push({ _tag: "Send", to: e.to, message });
          if (
            this.tuning.adaptiveBatching &&
            message._tag === "Accept" &&
            message.value._tag === "batch" &&
            message.value.commands.length > 1
          )
            this.count("adaptive batching: an Accept of several commands sent");
          if (
            message._tag === "Promise" &&
            message.truncatedUpTo >= message.fromSlot &&
            message.truncatedUpTo > state.acceptor.truncatedUpTo
          )
            this.count("a Promise omitted chosen votes");
          this.enqueue(r.index, e.to - 1, message);
          arrows?.push({ from: `R${r.id}`, to: `R${e.to}`, label: showMessage(message, false) });
          break;
        }
        case "Reply": {
          this.flushBarrier(r, carried);
          const asked = this.operator.changes.get(e.requestId);
          if (asked !== undefined) {
            const sameStep = event._tag === "Reconfigure" && event.requestId === e.requestId;
            carried.push({ _tag: "ChangeAnswer", change: asked.change, result: e.result, sameStep });
            this.ownOperator().answered(e.requestId, e.result);
            this.count(`membership change ${e.result._tag}`);
            details?.push(`reply operator: ${showResult(e.result)}`);
            break;
          }
          const table = this.ownClients();
          const opener = table.openOf(e.requestId);
          if (opener !== undefined) {
            const sameStep = event._tag === "OpenSession" && event.requestId === e.requestId;
            carried.push({ _tag: "OpenAnswer", result: e.result, sameStep });
            details?.push(`reply ${table.slots[opener]!.id}: ${showResult(e.result)}`);
            table.openAnswer(opener, e.result, this.clientContext);
            break;
          }
          const req = table.request(e.requestId);
          if (req === undefined) throw new Error(`R${r.id} replied to unknown request ${e.requestId}`);
          const sameStep = event._tag === "ClientRequest" && event.requestId === e.requestId;
          // A read that waited for a value at rest, answered once it is back (rule V4).
          const waited =
            event._tag === "EntriesRead" && state.learner.waitingReads.some((w) => w.requestId === e.requestId);
          carried.push({ _tag: "Reply", request: req.info, result: e.result, sameStep, ...(waited ? { waited } : {}) });
          if (waited) this.count("a read by lease answered once its value was read back");
          if (leftBefore) this.count("client answered with execution left for a tick");
          this.noteReplyAheadOfOwnVote(r, result.state.learner.executedUpTo);
          details?.push(`reply ${req.info.clientId}: ${showResult(e.result)}`);
          arrows?.push({ from: `R${r.id}`, to: req.info.clientId, label: showResult(e.result) });
          table.answer(req.op, req.info, e.result, this.clientContext);
          break;
        }
        case "Alarm":
          this.flushBarrier(r, carried);
          carried.push({ _tag: "Alarm", message: e.message });
          details?.push(`ALARM ${e.message}`);
          break;
        case "ReadEntries":
          reads.push(e);
          details?.push(`read back ${e.entries.length} store values (${e.purpose})`);
          break;
        case "TransferRefused":
          // A stutter: nothing was installed, the transfer is dropped and catch-up starts over.
          details?.push(`transfer of snapshot ${e.slot} from R${e.from} refused (${e.check}): ${e.reason}`);
          break;
      }
    }
    if (staged) this.stage(r, event, state, result.state, effects, crashed);
    if (!crashed) {
      this.flushBarrier(r, carried);
      r.state = result.state;
      if (info.message?._tag === "SnapshotChunk" && r.state.learner.snapshot !== state.learner.snapshot) r.installs++;
      // A snapshot taken at a slot that is no multiple of the slot interval: due by its commands
      // (`snapshotIntervalCommands`) or by its bytes, not by its slot.
      const taken = r.state.learner.snapshot;
      if (
        taken !== state.learner.snapshot &&
        taken !== null &&
        event._tag !== "Recover" &&
        info.message?._tag !== "SnapshotChunk" &&
        taken.slot % r.state.ctx.config.snapshotIntervalSlots !== 0
      )
        this.count("snapshot taken before its slot interval");
      // The step's bytes of values (batchBytesMax) ran out with slots ready: a later tick executes them.
      if (executionPending(r.state)) {
        this.count("execution left for a tick");
        // Where partial execution meets snapshots and membership changes (the small-steps suite):
        // a snapshot taken, or a change of the voters executed, with chosen slots still to execute.
        const after = r.state.learner;
        if (after.snapshot !== state.learner.snapshot && info.message?._tag !== "SnapshotChunk")
          this.count("snapshot taken with execution left for a tick");
        const epochOf = (configs: typeof after.configs): number => configs[configs.length - 1]!.epoch;
        if (epochOf(after.configs) > epochOf(state.learner.configs))
          this.count("membership change executed with execution left for a tick");
      }
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
    if (this.sessionsOpened) this.startWaiting();
    const retired = r.state?.removal?.retired;
    if (retired != null) this.retire(r, retired);
    else {
      if (!crashed)
        for (const read of reads) {
          this.checkReadBackProgress(r, read);
          this.readEntries(r.index, read);
        }
      if (!this.noticesDelayed) this.noticesAtOnce(r.index);
    }
    if (event._tag !== "KeptChunks") this.feedKept(r);
  }

  /**
   * While replica `r` takes back the chunks its disk kept (`resumingKept`): its next piece, as a
   * driver reads it from its store, stepped after the Recover and then after each other event of
   * the replica (ticks and messages come between the pieces, as in the runtime). The piece is the
   * one that starts where the transfer stands, so nothing but the disk and the state says which.
   */
  private feedKept(r: ReplicaSlot): void {
    const state = r.state;
    if (state === null || r.kept === null || r.paused || !resumingKept(state)) return;
    const piece = keptPiece(r.kept, state.learner.transfer!.received);
    this.runEvent(
      r,
      { _tag: "KeptChunks", now: state.now, ...piece },
      this.text(
        () =>
          `R${r.id} takes back ${piece.chunks.length} kept chunks at byte ${piece.offset}${piece.last ? " (the last)" : ""}`,
      ),
      {},
    );
  }

  /**
   * Replica `index`'s storage thread reads what a `ReadEntries` names (rule V4): each value read
   * back from its durable vote records by rule V2 (`readEntryFromRecords`, which throws on a record
   * that is gone or holds another value) now, as the step that asked is carried out, in order with
   * its appends and ahead of any compaction they make due, as the runtime's storage thread reads
   * them. The `EntriesRead` is stepped at once, or (`ReplicaTuning.readsLateMsMax`) at the first
   * advance of true time past a delay drawn from the seed: owed meanwhile, and lost with the
   * process if it stops first. Only while the process that asked runs.
   */
  private readEntries(index: number, read: ReadEntries): void {
    const r = this.own(index);
    if (r.state === null || r.paused) return;
    if (r.lostRead) {
      r.lostRead = false;
      this.count("a store value read asked again after a crash lost one");
    }
    let values: string[];
    try {
      values = read.entries.map(readEntryFromRecords(this.appAt(index), r.durable));
    } catch (error) {
      // The disk no longer holds what the store names (rule V3): EntriesVouched's failure, found
      // where the storage thread reads it, whether or not the checks ran after the step.
      if (!(error instanceof Error) || !error.message.startsWith("EntryFromDurableVote")) throw error;
      return violated({ check: "EntriesVouched", level: "Service", message: `R${r.id}: ${error.message}` });
    }
    if (r.compacting !== null) this.count("a store value read back between the pieces of a compaction");
    // Once the faults are over (the liveness phase), the storage thread keeps up: answers at once.
    const lateMs = this.readFaultsOver ? 0 : (this.tuning.readsLateMsMax ?? 0);
    const busyUntil = this.readFaultsOver ? 0 : r.readsBusyUntil;
    if (lateMs <= 0 && busyUntil <= this.trueTime) {
      this.answerRead(index, read, values);
      return;
    }
    // Read k's draws: its delay (a quarter at once), and whether its answer carries a wrong value.
    let prng = (Math.imul(this.seed >>> 0, 0x9e3779b1) ^ Math.imul(++this.readsAsked, 0x85ebca6b)) >>> 0;
    const draw = (): number => {
      const next = mulberry32(prng);
      prng = next.prng;
      return next.value / 2 ** 32;
    };
    const at = draw();
    const drawn = at < 0.25 ? 0 : Math.floor(((at - 0.25) / 0.75) * (lateMs + 1));
    const delay = Math.max(drawn, busyUntil - this.trueTime);
    const wrong = this.tuning.readsWrong === true && !this.readFaultsOver && draw() < 1 / 8;
    if (delay === 0 && !wrong) {
      this.answerRead(index, read, values);
      return;
    }
    const s = r.state;
    const owed: OwedRead = {
      read,
      values,
      dueAt: this.trueTime + delay,
      askedAt: this.trueTime,
      wrong,
      asked: {
        leaseHeld: this.rules.canServeLeaseRead(this.rules, s, r.localAt(this.trueTime)),
        leading: s.role._tag === "leader" ? `${s.role.ballot.round}.${s.role.ballot.replica}` : null,
        epoch: s.learner.configs[s.learner.configs.length - 1]!.epoch,
        compactions: r.compactions,
        installs: r.installs,
      },
    };
    r.readsOwed = r.readsOwed.concat([owed]);
    if (delay === 0) this.answerOwed(index);
  }

  /**
   * Replica `index`'s storage thread is busy for `ms` of true time from now (a targeted schedule's
   * slow disk, ./preludes.ts): no read it owes or is asked meanwhile is answered before then.
   */
  slowReads(index: number, ms: number): void {
    const r = this.own(index);
    const until = this.trueTime + ms;
    r.readsBusyUntil = until;
    r.readsOwed = r.readsOwed.map((owed) => (owed.dueAt >= until ? owed : { ...owed, dueAt: until }));
    this.faultStep(`R${r.id}'s storage thread is busy for ${ms} ms: its reads wait`);
  }

  /** Replica `index`'s storage thread catches up: every read it owes is due now, and it is no longer busy. */
  readsCaughtUp(index: number): void {
    const r = this.own(index);
    r.readsBusyUntil = 0;
    r.readsOwed = r.readsOwed.map((owed) => (owed.dueAt <= this.trueTime ? owed : { ...owed, dueAt: this.trueTime }));
    this.faultStep(`R${r.id}'s storage thread catches up: its reads are due`);
  }

  /** Every read owed whose delay is over, to a replica that runs: oldest first per replica. */
  private answerDueReads(): void {
    for (const slot of this.replicas) {
      while (true) {
        const r = this.replicas[slot.index]!;
        const first = r.readsOwed[0];
        if (first === undefined || r.state === null || r.paused) break;
        if (first.dueAt > this.trueTime && !this.readFaultsOver) break;
        this.answerOwed(r.index);
      }
    }
  }

  /** Replica `index`'s storage thread answers its oldest read owed, counting what happened meanwhile. */
  private answerOwed(index: number): void {
    const r = this.own(index);
    const owed = r.readsOwed[0]!;
    r.readsOwed = r.readsOwed.slice(1);
    const s = r.state!;
    const leading = s.role._tag === "leader" ? `${s.role.ballot.round}.${s.role.ballot.replica}` : null;
    if (owed.dueAt > owed.askedAt) {
      this.count(`a store value read back late for a ${owed.read.purpose}`);
      if (owed.asked.leaseHeld && !this.rules.canServeLeaseRead(this.rules, s, r.localAt(this.trueTime)))
        this.count("a store value read back late: the lease it was asked under lapsed meanwhile");
      if (owed.asked.leading !== leading)
        this.count("a store value read back late: its replica's leadership changed meanwhile");
      if (owed.asked.installs !== r.installs)
        this.count("a store value read back late: a state transfer installed meanwhile");
      if (owed.asked.epoch !== s.learner.configs[s.learner.configs.length - 1]!.epoch)
        this.count("a store value read back late: a membership change came meanwhile");
      if (owed.asked.compactions !== r.compactions)
        this.count("a store value read back late: a compaction ran meanwhile");
      if (owed.read.purpose === "read" && this.waitsWithAnother(s, owed.read))
        this.count("a store value read back late: the batch execution waits at reads it and another value at rest");
      const atRest = s.ctx.storeAtRest;
      if (
        atRest !== null &&
        owed.read.entries.some((ref) => {
          const held = atRest.resting(s.learner.service.app, ref.key);
          return held === null || !sameEntry(held, ref);
        })
      )
        this.count("a store value read back late: its entry no longer rests as named");
    }
    const values = owed.wrong ? [wrongValue(owed.values[0]!), ...owed.values.slice(1)] : owed.values;
    this.answerRead(index, owed.read, values, owed.wrong);
  }

  /**
   * Does replica state `s` wait to execute a batch that reads a key of `read` and another value at
   * rest, asked for already (a read back for a read by lease answered while a batch waits for it and
   * for another: where a replica that put the value back at rest would ask for it forever)?
   */
  private waitsWithAnother(s: KvReplicaState, read: ReadEntries): boolean {
    const keys = this.keysWaitedFor(s);
    if (keys === null) return false;
    const mine = read.entries.filter((ref) => keys.has(ref.key));
    const others = s.learner.reading.filter((ref) => keys.has(ref.key) && !mine.some((m) => m.key === ref.key));
    return mine.length > 0 && others.length > 0;
  }

  /** The keys the batch that `s`'s execution waits at reads, if it waits at one. */
  private keysWaitedFor(s: KvReplicaState): ReadonlySet<string> | null {
    const atRest = s.ctx.storeAtRest;
    const slot = this.rules.nextToExecute(s.learner.log, s.learner.executedUpTo);
    const held = slot === undefined ? undefined : slotMapGet(s.learner.log, slot);
    if (atRest === null || !s.learner.executionWaits || held === undefined || held._tag !== "batch") return null;
    return new Set(keysReadBy(atRest, held));
  }

  /**
   * ReadBackProgress: replica `r` asks for the store values at rest that the slot its execution
   * waits at reads (a `ReadEntries` for a command) at most once per key its batch reads, in one
   * life: a value read back stays in memory until that slot is executed (rule V4). One ask more is a
   * replica that put back at rest a value the slot waits for, and asks again: each answer putting
   * the one before back, it would ask forever and never execute the slot (a livelock).
   */
  private checkReadBackProgress(r: ReplicaSlot, read: ReadEntries): void {
    const s = r.state;
    if (read.purpose !== "command" || s === null) return;
    const slot = s.learner.executedUpTo + 1;
    const asks = r.readBacksAt?.slot === slot ? r.readBacksAt.asks + 1 : 1;
    r.readBacksAt = { slot, asks };
    const keys = this.keysWaitedFor(s)?.size ?? 0;
    if (asks > keys)
      violated({
        check: "ReadBackProgress",
        level: "Core",
        message: `R${r.id} asked ${asks} times for the store values at rest that slot ${slot} reads without executing it, its batch reading ${keys} keys: a value it waits for went back to rest`,
      });
  }

  /**
   * Step `EntriesRead` at replica `index` with `values` (`wrong`: one of them carries a changed code
   * unit, which the core must refuse).
   */
  private answerRead(index: number, read: ReadEntries, values: readonly string[], wrong = false): void {
    const r = this.replicas[index]!;
    this.count(`a store value read back for a ${read.purpose}`);
    if (wrong) this.count("a store value read back with a wrong value");
    this.runEvent(
      r,
      { _tag: "EntriesRead", now: r.localAt(this.trueTime), entries: read.entries, values },
      this.text(
        () =>
          `R${r.id} read back ${values.length} store values for a ${read.purpose}${wrong ? " (one of them wrong)" : ""}`,
      ),
      { flushFirst: true, ...(wrong ? { wrongValue: true } : {}) },
    );
  }

  /**
   * Replica `r` steps `event`. A throw is a violation (a replica never throws on its input), but
   * where the event is an `EntriesRead` carrying a wrong value and the core refused it by V2's
   * comparison: then the replica stops, as the runtime's does on a throw from its step (null).
   */
  private stepChecked(
    r: ReplicaSlot,
    state: KvReplicaState,
    event: ReplicaEvent<KvInput>,
    wrongValue: boolean,
  ): { state: KvReplicaState; effects: readonly ReplicaEffect<KvInput, KvOutput>[] } | null {
    try {
      return this.step(state, event);
    } catch (error) {
      if (!(error instanceof Error) || error instanceof AssertionFailure || error instanceof ViolationFound)
        throw error;
      if (wrongValue && error.message.startsWith("EntryFromDurableVote")) {
        this.count("a wrong value read back was refused: its replica stopped");
        this.countReadsLost(r);
        r.stop();
        this.emit({ kind: "crash", replica: r.index, before: state }, `R${r.id} stops: ${error.message}`);
        return null;
      }
      return violated({
        check: "ReplicaThrew",
        level: "Core",
        message: `R${r.id} threw on ${event._tag}: ${error.message}`,
      });
    }
  }

  /** `r` stops with reads owed: their answers are lost with the process (counted). */
  private countReadsLost(r: ReplicaSlot): void {
    if (r.readsOwed.length > 0) this.count("a store value read lost with its replica's crash");
  }

  /**
   * Where the tuning resumes transfers (`ReplicaTuning.resumeTransfers`): what the disk keeps of a
   * state transfer after a step of replica `r` from `before` to `after`, as the runtime's staging
   * keeps it (impl/runtime/transfer-staging.ts): a chunk the core took is kept; a transfer given up
   * or refused goes; an installed one goes with the snapshot record that installs it, so a crash
   * before that record is durable keeps every chunk. A transfer resumed after a restart keeps
   * every kept chunk until the resumption ends (`feedKept`), then the chunks the core took again,
   * and counts the resume.
   */
  private stage(
    r: ReplicaSlot,
    event: ReplicaEvent<KvInput>,
    before: KvReplicaState,
    after: KvReplicaState,
    effects: readonly ReplicaEffect<KvInput, KvOutput>[],
    crashed: boolean,
  ): void {
    if (event._tag === "Recover") {
      // Not resumed (no longer useful): the stage goes. Resumed: it stays whole until the resumption ends.
      if (event.kept !== undefined && !resumingKept(after)) r.kept = null;
      return;
    }
    const was = before.learner.transfer;
    const now = after.learner.transfer;
    if (was?.resuming === true && now?.resuming !== true) {
      // The resumption ended (its last piece, a chunk not taken, a refusal, or another event): the
      // disk keeps the chunks the core took again, the rest goes (the runtime's `resumed`).
      const taken = event._tag === "KeptChunks" ? (now?.received ?? 0) : was.received;
      r.kept = r.kept === null ? null : keptThrough(r.kept, taken);
      if (r.kept !== null) {
        r.resumed = true;
        this.count("a transfer resumed after a restart");
        if (r.kept.chunks.length > keptChunksPerPiece)
          this.count("a resumed transfer took its kept chunks in several steps");
      }
      if (event._tag === "KeptChunks") return;
    }
    // Kept chunks taken back: the disk holds them already.
    if (event._tag === "KeptChunks") return;
    if (was?.resuming === true && now?.resuming === true) this.count("an event stepped between kept pieces");
    if (r.resumed && was !== null && effects.some((e) => e._tag === "TransferRefused"))
      this.count("a resumed transfer refused");
    if (event._tag === "Receive" && event.message._tag === "SnapshotChunk") {
      const m = event.message;
      const end = m.offset + m.data.length;
      const installed =
        now === null &&
        end === m.totalBytes &&
        effects.some((e) => e._tag === "Persist" && e.record._tag === "snapshot" && e.record.slot === m.slot);
      const taken =
        installed ||
        (now !== null &&
          now !== was &&
          now.slot === m.slot &&
          now.contentDigest === m.contentDigest &&
          now.received === end);
      if (taken) {
        if (m.offset === 0) r.resumed = false;
        r.kept = keptWith(r.kept, event.from, m);
      }
      if (installed) {
        // Gone with the snapshot record's flush at the end of the step; a crash before it keeps them.
        if (crashed) return;
        if (r.resumed) this.count("a resumed transfer installed");
        r.kept = null;
        r.resumed = false;
        return;
      }
    }
    if (was !== null && now === null) {
      r.kept = null;
      r.resumed = false;
    }
  }

  /** Without `noticesDelayed`: replica `index`'s owed notices follow the step that asked for them. */
  private noticesAtOnce(index: number): void {
    if (this.deliveringNotices) return;
    this.deliveringNotices = true;
    try {
      for (
        let r = this.replicas[index]!;
        r.notices.length > 0 && r.state !== null && !r.paused;
        r = this.replicas[index]!
      )
        this.deliverNotice(index);
    } finally {
      this.deliveringNotices = false;
    }
  }

  /** Replica `r` retired (rule R5): its process stops for good, as the runtime's does. */
  private retire(slot: ReplicaSlot, reason: string): void {
    const r = this.own(slot.index);
    const before = r.state;
    r.stop();
    r.retired = true;
    this.count("replica retired");
    this.emit({ kind: "crash", replica: r.index, before }, `R${r.id} retires for good: ${reason}`);
  }

  private flush(slot: ReplicaSlot, carried: Carried<KvInput, KvOutput>[]): void {
    const r = this.own(slot.index);
    // A compaction under way goes one piece further after each flush (a group of appends, or a
    // tick's: the storage thread idle), as the runtime's `compactSome` does.
    const running = r.compacting !== null;
    const before = r.durable;
    const records = r.flush();
    if (records !== null && votedAgain(before, records))
      this.count("a vote written again in its ballot after a snapshot forgot its slot");
    const finished = running ? r.compactSome() : null;
    if (records !== null || finished !== null)
      carried.push({
        _tag: "Flush",
        records: records ?? [],
        ...(finished === null ? {} : { compacted: true as const }),
      });
    if (finished !== null && finished.pieces > 1) {
      if (finished.appendsBetween) this.count("compaction decided in pieces, records appended between them");
      if (finished.pinsChangedBetween)
        this.count("compaction decided in pieces, the store's pins changed between them");
    }
    if (r.keptForStore > 0) {
      this.count("compaction kept a vote record the store names");
      r.keptForStore = 0;
    }
  }

  /**
   * A client reply leaves `r` while a slot it executed (up to `executedUpTo`) still waits for its
   * own vote to be durable: two followers' votes chose it, and the reply rests on them alone.
   */
  private noteReplyAheadOfOwnVote(r: ReplicaSlot, executedUpTo: number): void {
    if (r.ownVoteUnflushedUpTo(executedUpTo) === null) return;
    this.count("reply sent before the leader's own vote was durable");
    r.repliedAheadOf = Math.max(r.repliedAheadOf, executedUpTo);
  }

  /** `r` is about to crash: count the leader's own votes lost with it, and the replies that left ahead of them. */
  private countCrashBeforeOwnVote(r: ReplicaSlot): void {
    if (r.ownVoteUnflushedUpTo(Infinity) === null) return;
    this.count("crash before the leader's own vote was durable");
    if (r.ownVoteUnflushedUpTo(r.repliedAheadOf) !== null)
      this.count("reply sent, then crash before the leader's own vote was durable");
  }

  /** Flush if the buffer holds a record that holds back what follows (see `ReplicaSlot.barrierUnflushed`). */
  private flushBarrier(slot: ReplicaSlot, carried: Carried<KvInput, KvOutput>[]): void {
    if (slot.barrierUnflushed) this.flush(slot, carried);
  }

  // ---- Durability notices (the leader's own votes) ---------------------------------------------

  /** The replicas that are owed a notice and can take it now (running, not paused), by index. */
  private noticesOwed(): number[] {
    const out: number[] = [];
    for (const r of this.replicas) if (r.notices.length > 0 && r.state !== null && !r.paused) out.push(r.index);
    return out;
  }

  /** Deliver every notice owed to a replica that can take it, oldest first per replica. */
  private deliverNotices(): void {
    for (let owed = this.noticesOwed(); owed.length > 0; owed = this.noticesOwed()) this.deliverNotice(owed[0]!);
  }

  /**
   * Replica `index`'s storage made its oldest owed record durable: flush its buffer (the records
   * before the notice, and any after it, in order) and step `VoteDurable`.
   */
  private deliverNotice(index: number): void {
    const r = this.own(index);
    const notice = r.notices[0]!;
    r.notices = r.notices.slice(1);
    this.runEvent(
      r,
      { _tag: "VoteDurable", now: r.localAt(this.trueTime), slot: notice.slot, ballot: notice.ballot },
      this.text(() => `R${r.id}'s own vote at slot ${notice.slot} is durable`),
      { flushFirst: true },
    );
  }

  // ---- Membership and state-transfer faults ----------------------------------------------------

  /**
   * An operator asks the current leader (nothing happens without one) for a membership change that
   * fits the newest configuration the operator knows (the leader's latest, or a newer one an
   * earlier answer reported, which a leader elected since may not have executed yet, as an
   * operator reading its last answer would): add a replica that is no member (a removed one, with
   * its old disk, or the next spare, booted now with an empty disk), promote a learner, remove a
   * voter (or the leader itself), or replace a voter by a learner. With `to`, replica `to` is
   * asked instead, if it believes it leads.
   */
  private reconfigure(kind: ReconfigureKind, which: number, to?: number): void {
    const leaderIndex = this.target(to ?? this.n);
    const at = this.replicas[leaderIndex]!;
    if (at.state === null || at.state.role._tag !== "leader") return;
    const configs = at.state.learner.configs;
    const answered = this.operator.newestAnswered();
    const own = configs[configs.length - 1]!;
    const latest = answered !== null && answered.epoch > own.epoch ? answered : own;
    let change: ConfigChange;
    switch (kind) {
      case "start": {
        // An operator starts the next spare ahead of any change; it waits, idle, to be added.
        const spare = this.replicas.find((x) => !x.born);
        if (spare === undefined) return;
        this.startSpare(spare, at);
        return;
      }
      case "add": {
        const members = new Set([...latest.voters, ...latest.learners]);
        const candidates = this.replicas.filter((x) => x.born && !members.has(x.id));
        const spare = this.replicas.find((x) => !x.born);
        if (spare !== undefined) candidates.push(spare);
        if (candidates.length === 0) return;
        const joining = candidates[which % candidates.length]!;
        if (!joining.born) this.startSpare(joining, at);
        // The change carries the new replica's addresses, which the operator's tool finds, and
        // the members', which the leader knows (its start list, the log): so the new replica
        // reaches every member, and a member restarted from its start list reaches it.
        change = {
          op: "add",
          replica: joining.id,
          address: addressOfReplica(joining.id),
          members: [...members].sort((x, y) => x - y).map((id) => ({ replica: id, ...addressOfReplica(id) })),
        };
        break;
      }
      case "promote":
        if (latest.learners.length === 0) return;
        change = { op: "promote", replica: latest.learners[which % latest.learners.length]! };
        break;
      case "remove":
        change = { op: "remove", replica: latest.voters[which % latest.voters.length]! };
        break;
      case "removeLeader":
        change = { op: "remove", replica: at.id };
        break;
      case "replace":
        if (latest.learners.length === 0) return;
        change = {
          op: "replace",
          remove: latest.voters[which % latest.voters.length]!,
          add: latest.learners[which % latest.learners.length]!,
        };
        break;
    }
    const requestId = this.askLeader(at, change);
    if (change.op === "add") {
      // The operator's tool goes on as `members add` and `members replace` do: it asks again
      // while no leader answers, and once the new replica has caught up it promotes it, or (for
      // odd `which`) swaps it for a voter.
      const replace = which % 2 === 1 ? latest.voters[(which >> 1) % latest.voters.length]! : null;
      const then: ConfigChange =
        replace === null
          ? { op: "promote", replica: change.replica }
          : { op: "replace", remove: replace, add: change.replica };
      this.ownOperator().followAdd(change, then, requestId, this.trueTime);
    }
  }

  /** Send `change` to replica `at` (the leader, as far as the operator knows) as a Reconfigure event. */
  private askLeader(at: ReplicaSlot, change: ConfigChange): number {
    const requestId = this.nextRequestId++;
    this.ownOperator().asked(requestId, change);
    this.count(`membership change asked: ${change.op}`);
    if (at.paused) {
      this.faultStep(`operator asks R${at.id} to ${showChange(change)} (lost: R${at.id} is paused)`);
      return requestId;
    }
    this.runEvent(
      at,
      { _tag: "Reconfigure", now: at.localAt(this.trueTime), requestId, change },
      `operator asks R${at.id} to ${showChange(change)}`,
      {},
    );
    return requestId;
  }

  /**
   * The second half of an operator's `members add` or `members replace`: when the tool says so, ask
   * the current leader (if there is one) for the change that follows the add.
   */
  private operatorFollowUp(): void {
    if (!this.operator.dueBy(this.trueTime)) return;
    const change = this.ownOperator().due(this.trueTime);
    if (change === null) return;
    const at = this.replicas[this.target(this.n)]!;
    if (at.state === null || at.state.role._tag !== "leader") return;
    // An add chosen after all (its answer was lost with a leader): go on with the next step.
    if (change.op === "add" && replicasOf(at.state.learner.configs, at.id).includes(change.replica)) {
      this.ownOperator().skip();
      return;
    }
    const requestId = this.askLeader(at, change);
    this.ownOperator().asking(requestId);
  }

  /**
   * Lose the i-th state-transfer chunk in flight (a partial transfer), or change one byte of it (a
   * corrupted one); with none in flight, the next chunk sent suffers it.
   */
  private chunkFault(kind: ChunkFault, i: number): void {
    const chunks = this.network.chunksInFlight();
    if (chunks.length === 0) {
      if (this.network.chunkFaultArmed !== null) return;
      this.network.armChunkFault(kind);
      this.faultStep(`the next state-transfer chunk will be ${kind === "dropChunk" ? "lost" : "corrupted"}`);
      return;
    }
    const k = chunks[i % chunks.length]!;
    const m = this.inFlight[k]! as InFlight & { kind: "message" };
    if (kind === "dropChunk") {
      this.network.removeAt(k);
      this.count("state-transfer chunk lost");
      this.faultStep(`drop ${this.describe(m)}`);
      return;
    }
    this.network.replaceAt(k, { ...m, message: corrupted(m.message) });
    this.count("state-transfer chunk corrupted");
    this.faultStep(`corrupt a byte of ${this.describe(m)}`);
  }

  /**
   * A transfer from a stale peer: replica `from` sends replica `to` the first chunk of its latest
   * (or, for odd i, its previous) snapshot unasked, as a late answer to a request `to` made long
   * ago. If `to` has executed past that snapshot, it must ignore it (rule S1); if not, it is an
   * ordinary transfer.
   */
  private staleChunk(i: number, from: number, to: number): void {
    const source = this.replicas[from]!.state;
    if (source === null || from === to || !this.replicas[to]!.born) return;
    const snapshot =
      i % 2 === 1 && source.learner.priorSnapshot !== null ? source.learner.priorSnapshot : source.learner.snapshot;
    if (snapshot === null) return;
    const totalBytes = snapshotSize(snapshot);
    const length = Math.min(source.ctx.config.transferChunkBytesMax, totalBytes);
    const { slot, digest, contentDigest } = snapshot;
    const chunk = { _tag: "StoredChunk", slot, digest, contentDigest, totalBytes, offset: 0, length } as const;
    // Its bytes as the replica serves them: from its disk (one recovered holds no others in memory).
    const onDisk = this.replicas[from]!.durable.concat(this.replicas[from]!.unflushed);
    const message: Message<KvInput> = {
      _tag: "SnapshotChunk",
      slot,
      digest,
      contentDigest,
      totalBytes,
      offset: 0,
      data: readChunkFromRecords(onDisk)(chunk),
    };
    this.enqueue(from, to, message);
    this.count("state-transfer chunk from a stale peer");
    this.faultStep(`R${this.idOf(from)} offers R${this.idOf(to)} its snapshot of slot ${snapshot.slot}, unasked`);
  }

  // ---- Clients ----------------------------------------------------------------------------------------

  /** The replicas raise the log to feature level 2 (the `bounded-sessions` suite tuning): sessions are evicted. */
  private get sessionsBounded(): boolean {
    return (this.tuning.featureLevel ?? 1) >= 2;
  }

  /** The replicas raise the log to feature level 3 (the `opened-sessions` suite tuning): the service opens sessions. */
  private get sessionsOpened(): boolean {
    return (this.tuning.featureLevel ?? 1) >= 3;
  }

  private submit(ci: number, spec: OpSpec): void {
    const table = this.ownClients();
    const c = table.slots[ci]!;
    if (c.op !== null) {
      this.sendAttempt(c, c.op);
      return;
    }
    // At feature level 3 a client without a session asks the service for one first (and again,
    // as a retry, while no answer came).
    if (this.sessionsOpened && c.opened === null) {
      c.waiting ??= spec;
      this.sendOpen(ci, c);
      return;
    }
    // At feature level 2 every session opens with a put of its own (`openingInput`), not the drawn
    // op; at level 3 no request opens a session, and the first may be any write.
    const input =
      this.sessionsBounded && !this.sessionsOpened && c.nextSeq === 1 ? openingInput(c) : table.inputOf(c, spec);
    const seq = this.app.readOnly(input) ? undefined : c.nextSeq++;
    const op = table.newOp(c, input, seq, false, this.trueTime);
    c.op = op;
    this.sendAttempt(c, op);
  }

  /**
   * A faulty client sends another command (a write, with a fresh value) under the sequence number
   * of its latest write, whether that one was answered or is still outstanding. Whichever of the
   * two reaches the log first under that number runs; the other must be refused (seq-reused), and
   * never answered with the other's output. Sent once, and not the client's outstanding operation.
   */
  private reuseSeq(ci: number, spec: OpSpec): void {
    const seq = this.clients[ci]!.nextSeq - 1;
    if (seq < 1) return;
    const table = this.ownClients();
    const c = table.slots[ci]!;
    const input = table.inputOf(c, spec.kind === "get" ? { ...spec, kind: "put" } : spec);
    this.count("client reused a sequence number");
    this.sendAttempt(c, table.newOp(c, input, seq, true, this.trueTime));
  }

  /** The client sends (or resends) its operation to the replica it believes leads: a request enters the network. */
  private sendAttempt(c: ClientSlot, op: ClientOp): void {
    op.attempts++;
    if (op.attempts > 1) this.count("client retry");
    const r = this.replicas[c.guess]!;
    const requestId = this.nextRequestId++;
    const info: RequestInfo<KvInput> = {
      requestId,
      clientId: op.client, // the session the operation began in (`sessionId`)
      seq: op.seq,
      input: op.input,
      consistency: "linearizable",
      replica: r.index,
      invokedAt: op.invokedAt,
    };
    // The caller took `c` and `op` from this world's own client table.
    this.ownClients().sent(requestId, info, op);
    const sent = this.enqueueRequest(r.index, requestId);
    this.faultStep(
      this.text(() => {
        const what = `${op.seq === undefined ? "" : `#${op.seq} `}${showInput(op.input)}`;
        const verb = op.reused ? "reuses its number for" : op.attempts > 1 ? "retries" : "sends";
        return `${op.client} ${verb} ${what} to R${r.id}${sent ? "" : " (lost: the network is full)"}`;
      }),
    );
  }

  /** Feature level 3: every client the service just opened a session for starts the operation it waited with. */
  private startWaiting(): void {
    this.clientTable.slots.forEach((c, ci) => {
      if (c.opened === null || c.waiting === null || c.op !== null) return;
      const spec = c.waiting;
      this.ownClients().slots[ci]!.waiting = null;
      this.submit(ci, spec);
    });
  }

  /** Client index `ci` asks the replica it believes leads to open a session (feature level 3). */
  private sendOpen(ci: number, c: ClientSlot): void {
    if (c.opening !== null) this.count("client retry of an open-session request");
    const r = this.replicas[c.guess]!;
    const requestId = this.nextRequestId++;
    this.ownClients().sentOpen(requestId, ci);
    const sent = this.enqueueRequest(r.index, requestId);
    this.faultStep(
      this.text(() => `${c.id} asks R${r.id} to open a session${sent ? "" : " (lost: the network is full)"}`),
    );
  }

  /** An open-session request of client index `ci` arrives at replica index `to`. */
  private deliverOpen(to: number, requestId: number, ci: number): void {
    const r = this.replicas[to]!;
    const c = this.clientTable.slots[ci]!;
    const label = this.trace === null ? "" : `deliver ${c.id}->R${r.id} open a session`;
    if (r.state === null) {
      const table = this.ownClients();
      const own = table.slots[ci]!;
      if (own.opening === requestId) {
        own.opening = null;
        own.guess = this.nextGuess(own.guess);
      }
      this.faultStep(`${label} (lost: R${r.id} is down)`);
      return;
    }
    const event: ReplicaEvent<KvInput> = { _tag: "OpenSession", now: r.localAt(this.trueTime), requestId };
    this.runEvent(r, event, label, { arrowFrom: c.id });
  }

  /** A client request arrives at replica index `to`. */
  private deliverRequest(to: number, requestId: number): void {
    const open = this.clientTable.openOf(requestId);
    if (open !== undefined) return this.deliverOpen(to, requestId, open);
    const { info } = this.clientTable.request(requestId)!;
    const r = this.replicas[to]!;
    const label =
      this.trace === null
        ? ""
        : `deliver ${info.clientId}->R${r.id} ${info.seq === undefined ? "" : `#${info.seq} `}${showInput(info.input)}`;
    if (r.state === null) {
      // The connection fails; the client tries another replica next time.
      const table = this.ownClients();
      const c = table.slot(info.clientId);
      if (c.op === table.request(requestId)!.op) c.guess = this.nextGuess(c.guess);
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

  /** The next replica a client tries after a failed attempt: the next one started, in index order. */
  private nextGuess(guess: number): number {
    const born = this.born();
    const at = born.indexOf(guess);
    return born[(at + 1) % born.length]!;
  }

  /** What a client needs of this world to take an answer (made when one is taken: a clone makes no closures). */
  private get clientContext(): ClientContext {
    return {
      now: () => this.trueTime,
      count: (name) => this.count(name),
      nextGuess: (guess) => this.nextGuess(guess),
      indexOf: (id) => this.members.indexOf(id),
    };
  }

  // ---- Steps ---------------------------------------------------------------------------------------------

  /** A line in the trace that is no world step (phase changes of the run). */
  note(text: string): void {
    this.trace?.push({ n: this.events, t: this.trueTime, text: `-- ${text} --`, details: [], arrows: [] });
  }

  /** A trace line, built only when the trace is kept (building them costs more than a step). */
  private text(make: () => string): string {
    return this.trace === null ? "" : make();
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
      this.trace.push({
        n: this.events,
        t: this.trueTime,
        text,
        details,
        arrows,
        ...(from === undefined ? {} : { from }),
        ...(to === undefined ? {} : { to }),
      });
    }
    this.observer?.(step);
  }
}

/** `value` with its first code unit changed: of the same length, with other entry hashes. */
function wrongValue(value: string): string {
  return (value.charCodeAt(0) === 0x78 ? "y" : "x") + value.slice(1);
}

function round(t: number): number {
  return Math.round(t * 1000) / 1000;
}

/**
 * Does a vote record of `written` repeat, in its ballot, a vote record of `durable` with a snapshot
 * record after it (the slot's vote forgotten, then voted again: a copy of its Accept that arrived
 * late)?
 */
function votedAgain(durable: readonly DurableRecord<KvInput>[], written: readonly DurableRecord<KvInput>[]): boolean {
  const forgotten = new Set<string>();
  let votes: (DurableRecord<KvInput> & { readonly _tag: "vote" })[] = [];
  for (const rec of durable) {
    if (rec._tag === "vote") votes.push(rec);
    if (rec._tag !== "snapshot") continue;
    for (const v of votes) if (v.slot <= rec.slot) forgotten.add(voteKey(v));
    votes = votes.filter((v) => v.slot > rec.slot);
  }
  if (forgotten.size === 0) return false;
  return written.some((rec) => rec._tag === "vote" && forgotten.has(voteKey(rec)));
}

function voteKey(v: DurableRecord<KvInput> & { readonly _tag: "vote" }): string {
  return `${v.slot}:${v.ballot.round},${v.ballot.replica}`;
}

/**
 * Do `records` hold one slot's vote twice in one ballot with no snapshot record between them? An
 * Accept resent after a snapshot dropped the slot's vote is voted again, rule V3 keeps both
 * records where that vote wrote a value at rest, and a later compaction may delete the snapshot
 * between them: `Recover` then meets the vote repeated.
 */
function voteRepeated(records: readonly DurableRecord<KvInput>[]): boolean {
  const since = new Map<number, string>();
  for (const rec of records) {
    if (rec._tag === "snapshot") since.clear();
    if (rec._tag !== "vote") continue;
    const ballot = `${rec.ballot.round},${rec.ballot.replica}`;
    if (since.get(rec.slot) === ballot) return true;
    since.set(rec.slot, ballot);
  }
  return false;
}

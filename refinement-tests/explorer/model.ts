/**
 * The implementation as a model to explore: a state is the simulated world (refinement-tests/
 * world/, replicas running impl/core's `step` unchanged, under the world's own driver rules) with
 * its checker from proofs/ and the budgets spent; a transition is one world action
 * (world/actions.ts), carried out by `World.apply` with every check after every world step, exactly
 * as a random run does. So a path of the explorer is a world scenario, and a counterexample
 * replays as one (`runScenario`, regression files).
 *
 * Transitions from a state, in a fixed order: deliver each distinct message or client request in
 * flight; advance true time to the next instant where a decision can change (explorer/time.ts);
 * deliver everything in flight at once (optional: a shortcut, no new behaviour); clients start
 * their one operation, or retry it, at a replica that believes it leads; and within the budgets:
 * lose or duplicate a message, crash a replica (unflushed records are lost) and restart it with
 * its clock continuing or set lower than any reading of its previous life (messages of that life
 * may still be in flight), ask the leader for a membership change, corrupt a state-transfer chunk
 * or offer a stale one. Clocks run at the extremes of the drift bound: every combination of slow
 * (1 - rho) and fast (1 + rho) replicas is an initial state, and a spare a membership change
 * starts runs slow or fast from its boot on (each its own transition).
 *
 * Never imports impl/ beyond its public index: the model is the world's, the explorer only chooses.
 */
import { AssertionFailure, type Step } from "../../impl/core/testing/index.ts";
import { kv, type KvInput, type KvOutput, type KvState } from "../../spec/kv.ts";
import { ViolationFound, type Violation } from "../../proofs/violation.ts";
import { CheckProfile } from "../../proofs/check-profile.ts";
import { WorldChecker } from "../../proofs/world-checker.ts";
import { type Action, type ReconfigureKind, type Scenario } from "../world/actions.ts";
import { runPrelude, type Prelude } from "../world/preludes.ts";
import { linearizability, livenessPhase, tuningOf, warmUp } from "../world/run.ts";
import { inFlightHash } from "../world/network.ts";
import type { ReplicaTuning } from "../world/tuning.ts";
import { World } from "../world/world.ts";
import { Hasher, identityMemo, type Hash64 } from "./hash.ts";
import { nextAdvanceMs } from "./time.ts";

/** What a model explores: the cluster, the workload and the fault budgets. */
export interface ImplBounds {
  /** Initial members (3, 5 or 7). */
  readonly replicas: number;
  /** Client writes (each by a client of its own, `writesPerClient` puts each, one after another). */
  readonly writes: number;
  /**
   * Puts each writing client sends, the next once the last was answered (a `session-expired`
   * answer included). Default 1. At feature level 2 each session also opens with a put of its own
   * (world/clients.ts, `openingInput`), not counted here; more than one put a client lets a client
   * whose session another one's evicted meet `session-expired`.
   */
  readonly writesPerClient: number;
  /**
   * What the writes are: all puts (default), or `puts-appends`: writing client c's k-th write
   * (from 0) is an append when c + k is odd, so that an append reads what a put wrote (with
   * `overrides.storeAtRestCharsMin`, a value the store holds at rest: rule V4's read-back for a
   * command). The tuning's `valueLimit` makes every write an append either way.
   */
  readonly writeKinds: "puts" | "puts-appends";
  /**
   * Which key each write names: all key 0 (default), or `first-apart`: the first write of writing
   * client 0 names key 0, every other write key 1, so that key 0 keeps the value the first write's
   * vote wrote while later writes take snapshots past that vote's slot (with
   * `overrides.storeAtRestCharsMin`, a vote record the store names below the log's truncation
   * point, kept by rule V3); or `alternate`: writing client c's k-th write (from 0) names key
   * (c + k) mod 2, so that a key's name moves to a later vote between two snapshots while the
   * other key's writes take them. Reads read key 0.
   */
  readonly writeKeys: "one" | "first-apart" | "alternate";
  /** Client linearizable reads (each by a client of its own). */
  readonly reads: number;
  /** Crashes (unflushed records are lost). */
  readonly crashes: number;
  /** Restarts of crashed replicas (-1: as many as crashes). */
  readonly restarts: number;
  /** Messages lost. */
  readonly losses: number;
  /** Messages duplicated. */
  readonly duplicates: number;
  /**
   * Messages (or client requests) held back: a held message may be delivered at any later
   * instant, or never. Every other message is delivered at the instant it was sent (true time
   * advances only once none is left): one-way delays of zero, in every order.
   */
  readonly delays: number;
  /**
   * Which messages the budgets of losses, duplicates and delays may take: any message or client
   * request (default), or `accepts`: Accept messages only (a narrower space where a fault on the
   * Accept of a slot is what the bounds are for: a copy of one voted again after a snapshot).
   */
  readonly faultMessages: "any" | "accepts";
  /** Network partitions: a link cut one way, or a replica cut off from every other (healing is free). */
  readonly partitions: number;
  /**
   * What a partition does to messages already in flight on the links it cuts: `hold`, they wait
   * for the heal (the world's partition: a cut delays what is on the wire); `drop`, a link is cut
   * only while nothing is in flight on it, so a partition loses what is sent over it afterwards
   * and delays nothing (with no held messages: one-way delays of zero throughout, every message
   * either lost or delivered before true time moves). With `drop`, what a prelude's partition
   * holds on a cut link when the prelude ends is lost before the first transition.
   */
  readonly cuts: "hold" | "drop";
  /** Client retries (a client whose request is not in flight resends it). */
  readonly retries: number;
  /** A faulty client sends another write under the number of its latest one (exactly-once must refuse one of them). */
  readonly reuses: number;
  /**
   * Membership change asked of the leader: none, add a spare, remove a voter, add a spare and replace a voter by it, or
   * remove a voter and then replace another by a learner a prelude added (two changes, which may share a window).
   */
  readonly reconfig: "none" | "add" | "remove" | "replace" | "remove-replace";
  /** State-transfer faults: a chunk in flight corrupted, or a peer's snapshot offered unasked. */
  readonly chunkFaults: number;
  /** Index into the world's `tunings`. */
  readonly tuning: number;
  /** Fields of that tuning replaced (a snapshot interval, the drift bound). */
  readonly overrides: Partial<ReplicaTuning>;
  /** Cold: from boot; warm: from the first leader holding a lease (the world's fault-free warm-up). */
  readonly start: "cold" | "warm";
  /**
   * A targeted fault-free schedule run after the start (world/preludes.ts, as in the random
   * suites): the explorer then starts from where features meet, a change pending or a leader just
   * lost, instead of spending its depth on getting there. "none": from the start itself.
   */
  readonly prelude: Prelude;
  /** Chooses within the prelude (which change, how the leader is lost: world/preludes.ts). */
  readonly pick: number;
  /**
   * After the prelude (and the clock rates), deliver everything deliverable, oldest first, until
   * nothing is (a fault-free wave at one instant, as in the prelude itself): the explorer then
   * starts from a quiet network instead of spending its depth on the tail of the prelude's
   * messages (a state transfer in progress takes a dozen rounds). Held back by nothing; the
   * deliveries are part of every trace's prefix.
   */
  readonly settle: boolean;
  /**
   * Clock rates: `worst`, the first leader slow and every other replica fast (a leader trusts its
   * lease longest while the grants behind it run out soonest); `extremes`, every combination of
   * slow and fast (2^n initial states, n the replicas born by then, a prelude's spare included); or
   * all slow, or all fast. A spare started later by a membership change is fast (`worst`, `fast`),
   * slow, or either (`extremes`: the change is two transitions).
   */
  readonly rates: "worst" | "extremes" | "slow" | "fast";
  /** Clock readings a restarted replica starts from: its old clock's, lower than any of its last life, or both. */
  readonly restartClocks: "continue" | "lower" | "both";
  /** Offer "deliver everything in flight" as one transition (a shortcut through fault-free stretches). */
  readonly deliverAll: boolean;
  /**
   * Delivery orders: `all`, every order (each deliverable message is a transition); `fifo`,
   * everything deliverable is delivered at once in the order it was sent (one transition per
   * round trip), and a held message alone may be delivered at any time: any other order then
   * costs a hold. `fifo` reaches much deeper for the same number of states.
   */
  readonly orders: "all" | "fifo";
  /** The replicas' generator seed (election timeouts). */
  readonly seed: number;
  /**
   * When clients, crashes, restarts, partitions and membership changes may act: `between-waves`,
   * only when no message is deliverable but held ones (a wave of zero-delay deliveries has run
   * its course; holding a message back covers an action in the middle of a wave), or `anytime`.
   */
  readonly environment: "between-waves" | "anytime";
  /**
   * Merge states that differ only in what no transition or check reads (`key`): the disk, clock
   * and addresses of a replica that is down for good (it retired, or no restart is left and no
   * liveness phase will restart it). True by default; false explores the unreduced space (the
   * tests compare the two).
   */
  readonly reduce: boolean;
  /**
   * Bounded liveness: from every state found, the fault-free continuation of the random suites'
   * liveness mode (heal, restart, resume, no more faults; world/run.ts, `livenessPhase`) must
   * reach a leaseholder within 2 D + 5 election timeouts and convergence (every request answered,
   * every member caught up, every removed replica retired) within 20 s of simulated time.
   */
  readonly liveness: boolean;
}

/** The bounds `npm run explore -- --impl` starts from. */
export const defaultBounds: ImplBounds = {
  replicas: 3,
  writes: 1,
  writesPerClient: 1,
  writeKinds: "puts",
  writeKeys: "one",
  reads: 1,
  crashes: 0,
  restarts: -1,
  losses: 0,
  duplicates: 0,
  delays: 0,
  faultMessages: "any",
  partitions: 0,
  cuts: "hold",
  retries: 0,
  reuses: 0,
  reconfig: "none",
  chunkFaults: 0,
  tuning: 0,
  overrides: {},
  start: "warm",
  prelude: "none",
  pick: 0,
  settle: false,
  rates: "worst",
  restartClocks: "both",
  deliverAll: true,
  orders: "all",
  seed: 1,
  environment: "between-waves",
  reduce: true,
  liveness: false,
};

/** Budgets, by position in `ModelState.used`. */
const budget = {
  writes: 0,
  reads: 1,
  crashes: 2,
  losses: 3,
  duplicates: 4,
  delays: 5,
  partitions: 6,
  retries: 7,
  reconfig: 8,
  chunkFaults: 9,
  restarts: 10,
  reuses: 11,
};
type BudgetKind = keyof typeof budget;

/** One explored state. */
export interface ModelState {
  readonly world: World;
  readonly checker: WorldChecker<KvState, KvInput, KvOutput>;
  /** Budget spent, per `budget` kind. */
  readonly used: Uint8Array;
  /** The contents (`contentOf`) of the messages in flight that are held back, sorted. */
  readonly held: readonly string[];
}

/** A transition: the world action and the budget it spends (or holding back a message in flight). */
export interface ModelAction {
  /** The world action; null for a hold, which changes only what the explorer lets happen next. */
  readonly action: Action | null;
  /** World actions carried out after `action` in the same transition (a round of FIFO deliveries). */
  readonly rest?: readonly Action[];
  readonly spends?: BudgetKind;
  /** Hold back the message in flight with this content: no world action (the world is unchanged). */
  readonly hold?: string;
  /** What kind of transition it is, when the world action does not say (random walks pick by kind). */
  readonly label?: string;
}

/** An initial state and the actions that made it from the booted world (clock rates). */
export interface Root {
  readonly state: ModelState;
  readonly prefix: readonly Action[];
}

/** A check that failed on a transition. */
export interface Found {
  readonly violation: Violation;
  /** Before any transition (booting, or settling the network): the world actions that led there. */
  readonly prefix?: readonly Action[];
}

/** The check a `Found` names when the model's `goal` was reached: a state found, not a bug. */
export const goalReached = "goal reached";

/** Simulated time the bounded-liveness continuation may take: the random suites' liveness bound. */
const livenessBoundMs = 20_000;

/** Rounds of deliveries `settle` may take (a state transfer takes a round per chunk). */
const settleRoundsMax = 200;

/** The membership changes of each `reconfig` bound, asked in order. */
const reconfigSteps: Record<ImplBounds["reconfig"], readonly ReconfigureKind[]> = {
  none: [],
  add: ["add"],
  remove: ["remove"],
  replace: ["add", "replace"],
  "remove-replace": ["remove", "replace"],
};

/** The model of one configuration of bounds and one step function (impl/core's, or a mutant's). */
export class ImplModel {
  readonly clients: number;
  readonly tuning: ReplicaTuning;
  /** Operations each client started before the model's first transition (a prelude's). */
  private opsBefore: readonly number[] = [];
  /**
   * Where the time goes (null: not measured): `explorer` times the explorer's own work per
   * transition (copies, world steps with their checks, keys, enabled transitions), `checks` each
   * check of proofs/ within the world steps. Set before `roots()`.
   */
  profile: { readonly explorer: CheckProfile; readonly checks: CheckProfile } | null = null;
  /**
   * A state to reach rather than a bug to find (null: none): the name of a counter, a checker's
   * (`sometimes: a request after eviction got session-expired`) or the world's (`world: ...`). The
   * first transition that counts it is reported as a `Found` whose check is `goalReached`, so
   * that breadth first gives the shortest path there and the states it took. Set before `roots()`.
   */
  goal: string | null = null;

  constructor(
    readonly bounds: ImplBounds,
    readonly step?: Step,
  ) {
    this.clients = Math.max(3, bounds.writes + bounds.reads);
    this.tuning = tuningOf(this.scenario([]));
  }

  /** The world scenario a path of this model is: its actions after boot (and warm-up). */
  scenario(actions: readonly Action[]): Scenario {
    const b = this.bounds;
    return {
      seed: b.seed,
      profile: {
        weights: {} as Scenario["profile"]["weights"],
        advanceMsMax: 0,
        warmStart: b.start === "warm",
        tuning: b.tuning,
        ...(b.prelude === "none" ? {} : { prelude: b.prelude, pick: b.pick }),
        ...(Object.keys(b.overrides).length === 0 ? {} : { tuningOverrides: b.overrides }),
      },
      actions,
    };
  }

  /** The initial states: the booted (and warmed-up) cluster, once per combination of clock rates. */
  roots(): Root[] | Found {
    const ppm = this.tuning.clockDriftPpmMax;
    const combos: number[][] = [];
    let booted: ModelState;
    try {
      booted = this.boot();
    } catch (error) {
      if (error instanceof ViolationFound) return { violation: error.violation };
      if (error instanceof AssertionFailure)
        return { violation: { check: "core assertion", level: "Core", message: error.message } };
      throw error;
    }
    const rates = this.bounds.rates;
    // Every replica born by now, a spare a prelude added included (replica indices, ascending).
    const born = booted.world.born();
    const k = born.length;
    if (rates === "slow" || ppm === 0) combos.push(new Array<number>(k).fill(-ppm));
    else if (rates === "fast") combos.push(new Array<number>(k).fill(ppm));
    else if (rates === "worst") {
      const leader = booted.world.leaseHolders()[0] ?? 0;
      combos.push(born.map((r) => (r === leader ? -ppm : ppm)));
    } else
      for (let mask = 0; mask < 1 << k; mask++)
        combos.push(Array.from({ length: k }, (_, j) => (((mask >> j) & 1) === 0 ? -ppm : ppm)));
    const roots: Root[] = [];
    for (const rates of combos) {
      let state = booted;
      const prefix: Action[] = [];
      rates.forEach((r, j) => {
        if (r === 0) return;
        const a: Action = { t: "drift", r: state.world.targetFor(born[j]!), ppm: r };
        const next = this.apply(state, { action: a });
        if ("violation" in next) throw new Error(`setting clock rates failed: ${next.violation.message}`);
        state = next;
        prefix.push(a);
      });
      if (this.bounds.cuts === "drop") {
        const dropped = this.dropHeld(state, prefix);
        if ("violation" in dropped) return { ...dropped, prefix };
        state = dropped;
      }
      if (this.bounds.settle) {
        const settled = this.settle(state, prefix);
        if ("violation" in settled) return { ...settled, prefix };
        state = settled;
      }
      roots.push({ state, prefix });
    }
    return roots;
  }

  /**
   * With cuts that drop: lose every message a prelude's partition holds on a cut link (one that
   * was on the wire when the link was cut), appending the losses to `prefix`. A cut that drops
   * delays nothing, so a prelude's cuts drop too: no message sent before it arrives after the heal.
   * So is every message or client request the prelude left in flight when it let true time move
   * (the replies to its last deliveries, when it ends on a step of time): it could arrive only
   * after a delay, and at zero delay what is not delivered at once is lost.
   */
  private dropHeld(s: ModelState, prefix: Action[]): ModelState | Found {
    let state = s;
    for (;;) {
      const w = state.world;
      const i = w.inFlight.findIndex(
        (m) => w.sentBeforeNow(m) || (m.kind === "message" && w.linkBlocked(m.from, m.to)),
      );
      if (i < 0) return state;
      const a: Action = { t: "drop", i };
      prefix.push(a);
      const next = this.apply(state, { action: a });
      if ("violation" in next) return next;
      state = next;
    }
  }

  /** Deliver everything deliverable until nothing is (bounded), appending the deliveries to `prefix`. */
  private settle(s: ModelState, prefix: Action[]): ModelState | Found {
    let state = s;
    for (let round = 0; round < settleRoundsMax; round++) {
      const { unheldAt } = distinctDeliverable(state.world, state.held);
      if (unheldAt.length === 0) return state;
      const a = fifoRound(unheldAt);
      prefix.push(a.action!, ...(a.rest ?? []));
      const next = this.apply(state, a);
      if ("violation" in next) return next;
      state = next;
    }
    throw new Error(`the network did not settle within ${settleRoundsMax} rounds of deliveries`);
  }

  /** The booted (and warmed-up) cluster; a check that fails already there is thrown as ViolationFound. */
  private boot(): ModelState {
    const world = new World({
      replicas: this.bounds.replicas,
      clients: this.clients,
      seed: this.bounds.seed,
      tuning: this.tuning,
      ...(this.step === undefined ? {} : { step: this.step }),
    });
    const checker = new WorldChecker<KvState, KvInput, KvOutput>(world, kv, {
      leaseMs: this.tuning.leaseMs,
      alpha: this.tuning.reconfigAlphaSlots,
      initialMembers: world.initialMembers,
    });
    checker.profile = this.profile?.checks ?? null;
    world.observer = (s) => checker.observe(s);
    world.boot();
    if (this.bounds.start === "warm") warmUp(world);
    runPrelude(world, this.bounds.prelude, this.bounds.pick);
    this.opsBefore = world.clients.map((c) => c.opsStarted);
    world.observer = null;
    return { world, checker, used: new Uint8Array(Object.keys(budget).length), held: [] };
  }

  /** Every transition enabled in `s`, in a fixed order (see the module comment). */
  actions(s: ModelState): ModelAction[] {
    const p = this.profile;
    if (p === null) return this.enabled(s);
    const t = performance.now();
    const out = this.enabled(s);
    p.explorer.lap("enabled transitions", t);
    return out;
  }

  private enabled(s: ModelState): ModelAction[] {
    const out: ModelAction[] = [];
    const w = s.world;
    const b = this.bounds;
    const { deliverable, positions, contents, unheld, heldAt, unheldAt } = distinctDeliverable(w, s.held);
    if (b.orders === "all") for (const i of deliverable) out.push({ action: { t: "deliver", i } });
    else {
      if (unheld > 0) out.push(fifoRound(unheldAt));
      for (const i of heldAt) out.push({ action: { t: "deliver", i } });
    }
    const ms = nextAdvanceMs(w.replicas, w.trueTime);
    if (ms !== null && unheld === 0) out.push({ action: { t: "advance", ms } });
    if (b.orders === "all" && b.deliverAll && deliverable.length > 1) out.push({ action: { t: "deliverAll" } });
    // The messages the faults may take (`faultMessages`), by their position among the distinct ones.
    const faulty = (j: number): boolean => b.faultMessages === "any" || isAccept(w.inFlight[positions[j]!]!);
    if (s.used[budget.delays]! < b.delays)
      contents.forEach((c, j) => {
        if (faulty(j) && countOf(s.held, c) < countInFlight(w, c))
          out.push({ action: null, spends: "delays", hold: c });
      });
    if (s.used[budget.losses]! < b.losses)
      positions.forEach((i, j) => {
        if (faulty(j)) out.push({ action: { t: "drop", i }, spends: "losses" });
      });
    if (s.used[budget.duplicates]! < b.duplicates)
      positions.forEach((i, j) => {
        if (faulty(j)) out.push({ action: { t: "duplicate", i }, spends: "duplicates" });
      });
    // The environment acts between waves only: an action in the middle of a wave is the same
    // action at the wave's end with the rest of the wave's messages to that replica held back.
    if (unheld > 0 && b.environment === "between-waves") return this.chunkFaultActions(s, out);
    this.clientActions(s, this.believedLeaders(w), out);
    if (s.used[budget.partitions]! < b.partitions)
      this.partitionActions(w, out, b.cuts === "drop", b.reduce ? this.downForGood(s) : undefined);
    if (w.anyLinkBlocked()) out.push({ action: { t: "heal" } });
    for (const r of w.replicas) {
      if (!r.born) continue;
      const target = w.targetFor(r.index);
      if (r.state !== null) {
        if (s.used[budget.crashes]! < b.crashes)
          out.push({ action: { t: "crash", r: target, at: null }, spends: "crashes" });
        continue;
      }
      if (s.used[budget.restarts]! >= this.restartBound()) continue;
      const continued = r.localAt(w.trueTime);
      if (b.restartClocks !== "lower")
        out.push({ action: { t: "restart", r: target, clockMs: continued }, spends: "restarts" });
      if (b.restartClocks !== "continue")
        out.push({ action: { t: "restart", r: target, clockMs: 0 }, spends: "restarts" });
    }
    this.reconfigActions(s, out);
    return this.chunkFaultActions(s, out);
  }

  /** Which replicas of `s` are down and will never run again (undefined: none can be). */
  private downForGood(s: ModelState): ((index: number) => boolean) | undefined {
    const w = s.world;
    // Bounded liveness restarts every crashed replica (its liveness phase): only retired ones stay down.
    const restartsLeft = this.bounds.liveness || s.used[budget.restarts]! < this.restartBound();
    let any = false;
    for (const r of w.replicas) if (r.born && r.state === null && (r.retired || !restartsLeft)) any = true;
    if (!any) return undefined;
    return (index) => {
      const r = w.replicas[index]!;
      return r.born && r.state === null && (r.retired || !restartsLeft);
    };
  }

  private restartBound(): number {
    return this.bounds.restarts < 0 ? this.bounds.crashes : this.bounds.restarts;
  }

  private chunkFaultActions(s: ModelState, out: ModelAction[]): ModelAction[] {
    if (s.used[budget.chunkFaults]! < this.bounds.chunkFaults) this.chunkActions(s.world, out);
    return out;
  }

  /**
   * Cut each link one way; cut each replica off from every other; and once four or more replicas
   * are born (after a membership change adds one), cut each pair of neighbours off from the rest,
   * which splits a configuration in transition between its old and its new voters. With
   * `quiet` (cuts that drop), only where no message is in flight on a link the cut takes. With
   * `gone` (the reduction), never a link of a replica down for good, nor that replica cut off:
   * it sends nothing and what is sent to it is lost either way, so such a cut changes nothing but
   * the budget left (the same world, with less to spend).
   */
  private partitionActions(w: World, out: ModelAction[], quiet: boolean, gone?: (index: number) => boolean): void {
    const born = gone === undefined ? w.born() : w.born().filter((i) => !gone(i));
    const onWire = (cut: (from: number, to: number) => boolean): boolean =>
      quiet && w.inFlight.some((m) => m.kind === "message" && cut(m.from, m.to));
    for (const x of born) {
      for (const y of born) {
        if (x === y || w.linkBlocked(x, y) || onWire((from, to) => from === x && to === y)) continue;
        out.push({ action: { t: "cut", a: w.targetFor(x), b: w.targetFor(y), oneWay: true }, spends: "partitions" });
      }
    }
    for (const others of born.length >= 4 ? [0, 1] : [0])
      for (const x of born) {
        const side = w.isolationSide(x, others);
        if (onWire((from, to) => side.has(from) !== side.has(to))) continue;
        out.push({ action: { t: "isolate", r: w.targetFor(x), others }, spends: "partitions" });
      }
  }

  /** Replica indices that believe they lead (live, not halted). */
  private believedLeaders(w: World): number[] {
    const out: number[] = [];
    for (const r of w.replicas)
      if (r.state !== null && r.state.halted === null && r.state.role._tag === "leader") out.push(r.index);
    return out;
  }

  /** Writes and reads start at a believed leader; a client with an operation and no request in flight may retry. */
  private clientActions(s: ModelState, leaders: readonly number[], out: ModelAction[]): void {
    const w = s.world;
    const b = this.bounds;
    const targets = leaders.map((l) => w.targetFor(l));
    for (let c = 0; c < b.writes + b.reads; c++) {
      const client = w.clients[c]!;
      const write = c < b.writes;
      const started = client.opsStarted - this.opsBefore[c]!;
      if (client.waiting !== null) {
        // Feature level 3: the client asked the service to open it a session and waits for the
        // answer (its operation starts then, by itself). It asks again only as a retry, and only
        // while none of its open-session requests is in flight.
        if (s.used[budget.retries]! >= b.retries) continue;
        if (w.inFlight.some((m) => m.kind === "request" && w.openRequester(m.requestId) === c)) continue;
        const op = client.waiting;
        for (const to of targets) out.push({ action: { t: "submit", c, op, to }, spends: "retries" });
        continue;
      }
      // A prelude's client may still wait for its own operation: it starts the model's after.
      if (client.op === null && started < (write ? b.writesPerClient : 1)) {
        // Appends near the value limit with the tuning's `valueLimit` (world/tuning.ts), else puts
        // (and appends between them with `writeKinds`).
        const append = this.tuning.valueLimit === true || (b.writeKinds === "puts-appends" && (c + started) % 2 === 1);
        const kind = !write ? "get" : append ? "append" : "put";
        const key = !write ? 0 : writeKey(b.writeKeys, c, started);
        const op = { kind, key } as const;
        for (const to of targets) out.push({ action: { t: "submit", c, op, to }, spends: write ? "writes" : "reads" });
        if (started === 0) continue;
      }
      if (started === 0) continue;
      if (write && s.used[budget.reuses]! < b.reuses)
        for (const to of targets)
          out.push({ action: { t: "reuseSeq", c, op: { kind: "put", key: 0 }, to }, spends: "reuses" });
      if (client.op === null || s.used[budget.retries]! >= b.retries) continue;
      const op = client.op;
      if (w.inFlight.some((m) => m.kind === "request" && w.requestOf(m.requestId)?.op === op)) continue;
      for (const to of targets) out.push({ action: { t: "retry", c, to }, spends: "retries" });
    }
  }

  /** The next membership change of the bound, asked of the leader, for each voter it may name. */
  private reconfigActions(s: ModelState, out: ModelAction[]): void {
    const steps = reconfigSteps[this.bounds.reconfig];
    const done = s.used[budget.reconfig]!;
    if (done >= steps.length) return;
    const w = s.world;
    const leader = w.replicas[w.target(this.bounds.replicas)]!;
    if (leader.state === null || leader.state.role._tag !== "leader") return;
    const configs = leader.state.learner.configs;
    const latest = configs[configs.length - 1]!;
    const kind = steps[done]!;
    if (kind === "add") {
      const add: Action = { t: "reconfigure", kind, r: 0 };
      const members = new Set([...latest.voters, ...latest.learners]);
      const spare = w.replicas.find((x) => !x.born);
      if (spare === undefined || w.replicas.some((x) => x.born && !members.has(x.id))) {
        out.push({ action: add, spends: "reconfig" });
        return;
      }
      // The spare started for the change runs at the extremes of the drift bound too, from its
      // boot on: one transition per rate the bounds ask for (see `rates`).
      const ppm = this.tuning.clockDriftPpmMax;
      const born = w.born().length;
      const r = born === this.bounds.replicas ? 2 * born + 1 : born;
      for (const rate of spareRates(this.bounds.rates, ppm))
        out.push({ action: add, rest: rate === 0 ? [] : [{ t: "drift", r, ppm: rate }], spends: "reconfig" });
      return;
    }
    if (kind === "replace" && latest.learners.length === 0) return;
    for (let r = 0; r < latest.voters.length; r++)
      out.push({ action: { t: "reconfigure", kind, r }, spends: "reconfig" });
  }

  /** Corrupt each state-transfer chunk in flight; offer each replica's snapshot to each other replica. */
  private chunkActions(w: World, out: ModelAction[]): void {
    w.inFlight.forEach((m, k) => {
      if (m.kind !== "message" || m.message._tag !== "SnapshotChunk") return;
      const i = w.inFlight.slice(0, k).filter((x) => x.kind === "message" && x.message._tag === "SnapshotChunk").length;
      out.push({ action: { t: "corruptChunk", i }, spends: "chunkFaults" });
    });
    for (const from of w.replicas) {
      if (from.state === null || from.state.learner.snapshot === null) continue;
      // i = 0 offers the latest snapshot; i = 1 the one before it (the world's staleChunk).
      const kinds = from.state.learner.priorSnapshot === null ? [0] : [0, 1];
      for (const to of w.replicas) {
        if (to === from || !to.born || to.state === null) continue;
        for (const i of kinds)
          out.push({
            action: { t: "staleChunk", i, from: w.targetFor(from.index), to: w.targetFor(to.index) },
            spends: "chunkFaults",
          });
      }
    }
  }

  /**
   * Carry out `a` on a copy of `s`, with every check after every world step (and the client
   * history's linearizability once an operation completes). The state reached, or what failed.
   */
  apply(s: ModelState, a: ModelAction): ModelState | Found {
    if (a.hold !== undefined) {
      const used = s.used.slice();
      used[budget.delays]!++;
      return { world: s.world, checker: s.checker, used, held: [...s.held, a.hold].sort() };
    }
    const p = this.profile?.explorer ?? null;
    let t = p === null ? 0 : performance.now();
    const world = s.world.clone();
    const checker = s.checker.fork(world);
    if (p !== null) t = p.lap("clone the world, fork the checker", t);
    const checksBefore = checker.profile?.totalMs ?? 0;
    world.observer = (step) => checker.observe(step);
    const completed = completedOps(world);
    const counted = this.goal === null ? 0 : this.goalCount(world, checker);
    try {
      world.apply(a.action!);
      if (a.rest !== undefined) for (const x of a.rest) world.apply(x);
      if (p !== null) t = p.lap(worldSteps, t, (checker.profile?.totalMs ?? 0) - checksBefore);
      if (completedOps(world) > completed) {
        const lin = linearizability(world);
        p?.lap("Linearizability (when an operation completes)", t);
        if (lin !== null) return { violation: lin };
      }
      if (this.goal !== null && this.goalCount(world, checker) > counted)
        return { violation: { check: goalReached, level: "Goal", message: `reached ${this.goal}` } };
    } catch (error) {
      if (error instanceof ViolationFound) return { violation: error.violation };
      if (error instanceof AssertionFailure)
        return { violation: { check: "core assertion", level: "Core", message: error.message } };
      throw error;
    } finally {
      world.observer = null;
    }
    let used = s.used;
    if (a.spends !== undefined) {
      used = s.used.slice();
      used[budget[a.spends]]!++;
    }
    return { world, checker, used, held: stillHeld(world, s.held) };
  }

  /**
   * How many times `goal` was counted so far, over every state explored (counters add up over
   * every copy of a world and every fork of a checker).
   */
  private goalCount(world: World, checker: WorldChecker<KvState, KvInput, KvOutput>): number {
    const goal = this.goal!;
    return goal.startsWith("world: ")
      ? (world.counters.get(goal.slice("world: ".length)) ?? 0)
      : checker.tally.get(goal);
  }

  /**
   * Bounded liveness (when the bounds ask for it): run the liveness phase on a copy of `s`. What
   * failed there (a liveness bound, or a safety check on the way), or null. The state itself is
   * unchanged; the counterexample is the path to `s`, replayed in liveness mode.
   */
  livenessOf(s: ModelState): Found | null {
    if (!this.bounds.liveness) return null;
    const world = s.world.clone();
    const checker = s.checker.fork(world);
    world.observer = (step) => checker.observe(step);
    let failed: Violation | null = null;
    try {
      livenessPhase(world, checker, livenessBoundMs, (v) => (failed = v));
      failed ??= linearizability(world);
    } catch (error) {
      if (error instanceof ViolationFound) failed = error.violation;
      else if (error instanceof AssertionFailure)
        failed = { check: "core assertion", level: "Core", message: error.message };
      else throw error;
    } finally {
      world.observer = null;
    }
    return failed === null ? null : { violation: failed };
  }

  /**
   * The state's 64-bit key: the world, the checker's ghost state, and the budgets spent. With
   * `reduce`, a replica down for good (retired, or down with no restart left in the budget and no
   * liveness phase to restart it: nothing starts it again) counts only as down: its disk, clock,
   * addresses and durable snapshot are left out. Nothing reads them: the replica takes no step, so
   * no check of its steps runs; time advances by the deadlines of live replicas only; its lease
   * belief ended when it went down; the ghost keeps its votes apart from its disk; messages it
   * sent still count.
   */
  key(s: ModelState): Hash64 {
    const p = this.profile?.explorer ?? null;
    const t = p === null ? 0 : performance.now();
    const out = this.keyOf(s);
    p?.lap("state key (world hash, ghost fingerprint)", t);
    return out;
  }

  private keyOf(s: ModelState): Hash64 {
    const h = new Hasher();
    const gone = this.bounds.reduce ? this.downForGood(s) : undefined;
    s.world.hashInto(h, gone);
    s.checker.fingerprint(h, gone);
    for (const u of s.used) h.word(u);
    for (const c of s.held) h.str(c);
    return h.done();
  }
}

/** The explorer profile's row for world steps, less the checks they ran (`profile.checks`). */
const worldSteps = "world steps (impl/core and the driver)";

/** The clock rates (ppm) a spare started by a membership change may run at, under `rates`. */
function spareRates(rates: ImplBounds["rates"], ppm: number): number[] {
  if (ppm === 0) return [0];
  if (rates === "slow") return [-ppm];
  if (rates === "extremes") return [-ppm, ppm];
  // "worst" makes every replica but the first leader fast, as "fast" does.
  return [ppm];
}

function completedOps(w: World): number {
  let n = 0;
  for (const op of w.ops) if (op.completedAt !== undefined) n++;
  return n;
}

/**
 * What an entry in flight carries, by identity (an entry is immutable; a request's content depends
 * only on its id's request), in a memo that never shows on the entry (explorer/hash.ts).
 */
const contents = identityMemo<string>();

/** What an entry in flight carries, without its ids: copies have the same content. */
function contentOf(w: World, m: World["inFlight"][number]): string {
  const known = contents.get(m);
  if (known !== undefined) return known;
  const c = computeContent(w, m);
  contents.set(m, c);
  return c;
}

function computeContent(w: World, m: World["inFlight"][number]): string {
  if (m.kind === "request") {
    // Feature level 3: copies of one client's open-session requests open the same way.
    const opener = w.openRequester(m.requestId);
    if (opener !== undefined) return `open ${m.to} ${opener}`;
    const { info } = w.requestOf(m.requestId)!;
    return `request ${m.to} ${info.clientId} ${info.seq ?? "-"} ${JSON.stringify(info.input)}`;
  }
  const { a, b } = inFlightHash(m);
  return `${a}:${b}`;
}

/**
 * The distinct entries in flight that can be delivered now (a copy of a message or request counts
 * once): `deliverable` holds their positions among the deliverable entries (what `deliver i`
 * names), `positions` their positions in `inFlight` (what `drop i` and `duplicate i` name),
 * `contents` their contents; `unheld` counts the deliverable entries not held back.
 */
function distinctDeliverable(
  w: World,
  held: readonly string[],
): {
  deliverable: number[];
  positions: number[];
  contents: string[];
  unheld: number;
  heldAt: number[];
  unheldAt: number[];
} {
  const seen = new Set<string>();
  const deliverable: number[] = [];
  const positions: number[] = [];
  const contents: string[] = [];
  const heldLeft = held.length === 0 ? null : new Map<string, number>();
  if (heldLeft !== null) for (const c of held) heldLeft.set(c, (heldLeft.get(c) ?? 0) + 1);
  let unheld = 0;
  let k = 0;
  const heldAt: number[] = [];
  const unheldAt: number[] = [];
  const inFlight = w.inFlight;
  for (let i = 0; i < inFlight.length; i++) {
    const m = inFlight[i]!;
    if (w.replicas[m.to]!.paused || (m.kind === "message" && w.linkBlocked(m.from, m.to))) continue;
    const at = k++;
    const content = contentOf(w, m);
    const h = heldLeft?.get(content) ?? 0;
    if (h > 0) {
      heldLeft!.set(content, h - 1);
      if (!seen.has(content)) heldAt.push(at);
    } else {
      unheld++;
      unheldAt.push(at);
    }
    if (seen.has(content)) continue;
    seen.add(content);
    deliverable.push(at);
    positions.push(i);
    contents.push(content);
  }
  return { deliverable, positions, contents, unheld, heldAt, unheldAt };
}

/**
 * One round of FIFO deliveries: every entry not held back that is deliverable now (positions
 * `at` among the deliverable ones, ascending), in the order sent, as `deliver i` actions. Each
 * delivery removes its entry and appends what it sends at the end, so the k-th one is then at
 * position at[k] - k.
 */
function fifoRound(at: readonly number[]): ModelAction {
  const steps: Action[] = at.map((i, k) => ({ t: "deliver", i: i - k }));
  return { action: steps[0]!, rest: steps.slice(1), label: "fifo" };
}

/** The key writing client `c`'s `k`-th write (from 0) names under `writeKeys`. */
function writeKey(keys: ImplBounds["writeKeys"], c: number, k: number): number {
  if (keys === "first-apart") return c > 0 || k > 0 ? 1 : 0;
  if (keys === "alternate") return (c + k) % 2;
  return 0;
}

function isAccept(m: World["inFlight"][number]): boolean {
  return m.kind === "message" && m.message._tag === "Accept";
}

function countOf(xs: readonly string[], x: string): number {
  let n = 0;
  for (const y of xs) if (y === x) n++;
  return n;
}

function countInFlight(w: World, content: string): number {
  let n = 0;
  for (const m of w.inFlight) if (contentOf(w, m) === content) n++;
  return n;
}

/** The held contents still in flight (a delivered or lost message is no longer held). */
function stillHeld(w: World, held: readonly string[]): readonly string[] {
  if (held.length === 0) return held;
  const inFlight = new Map<string, number>();
  for (const m of w.inFlight) {
    const c = contentOf(w, m);
    inFlight.set(c, (inFlight.get(c) ?? 0) + 1);
  }
  const out: string[] = [];
  for (const c of held) {
    const n = inFlight.get(c) ?? 0;
    if (n === 0) continue;
    inFlight.set(c, n - 1);
    out.push(c);
  }
  return out.length === held.length ? held : out;
}

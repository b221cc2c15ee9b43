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
 * (1 - rho) and fast (1 + rho) replicas is an initial state.
 *
 * Never imports impl/ beyond its public index: the model is the world's, the explorer only chooses.
 */
import { AssertionFailure, type Step } from "../../impl/core/index.ts";
import { kv, type KvInput, type KvOutput, type KvState } from "../../spec/kv.ts";
import { ViolationFound, type Violation } from "../../proofs/violation.ts";
import { WorldChecker } from "../../proofs/world-checker.ts";
import { type Action, type ReconfigureKind, type Scenario } from "../world/actions.ts";
import { linearizability, tuningOf, warmUp } from "../world/run.ts";
import { inFlightHash, World, type ReplicaTuning } from "../world/world.ts";
import { Hasher, type Hash64 } from "./hash.ts";
import { nextAdvanceMs } from "./time.ts";

/** What a model explores: the cluster, the workload and the fault budgets. */
export interface ImplBounds {
  /** Initial members (3, 5 or 7). */
  readonly replicas: number;
  /** Client writes (each by a client of its own, one `put` each). */
  readonly writes: number;
  /** Client linearizable reads (each by a client of its own). */
  readonly reads: number;
  /** Crashes (a crashed replica may restart at any time; restarts are not counted). */
  readonly crashes: number;
  /** Messages lost. */
  readonly losses: number;
  /** Messages duplicated. */
  readonly duplicates: number;
  /**
   * Times true time may advance while messages are deliverable (each such advance delays every
   * one of them past that instant). Otherwise a message is delivered at the instant it was sent:
   * one-way delays of zero, in every order.
   */
  readonly delays: number;
  /** Network partitions: a link cut one way, or a replica cut off from every other (healing is free). */
  readonly partitions: number;
  /** Client retries (a client whose request is not in flight resends it). */
  readonly retries: number;
  /** Membership change asked of the leader: none, add a spare, remove a voter, or add a spare and replace a voter by it. */
  readonly reconfig: "none" | "add" | "remove" | "replace";
  /** State-transfer faults: a chunk in flight corrupted, or a peer's snapshot offered unasked. */
  readonly chunkFaults: number;
  /** Index into the world's `tunings`. */
  readonly tuning: number;
  /** Fields of that tuning replaced (a snapshot interval, the drift bound). */
  readonly overrides: Partial<ReplicaTuning>;
  /** Cold: from boot; warm: from the first leader holding a lease (the world's fault-free warm-up). */
  readonly start: "cold" | "warm";
  /** Clock rates: every combination of the extremes, or all slow, or all fast. */
  readonly rates: "extremes" | "slow" | "fast";
  /** Clock readings a restarted replica starts from: its old clock's, lower than any of its last life, or both. */
  readonly restartClocks: "continue" | "lower" | "both";
  /** Offer "deliver everything in flight" as one transition (a shortcut through fault-free stretches). */
  readonly deliverAll: boolean;
  /** The replicas' generator seed (election timeouts). */
  readonly seed: number;
}

/** The bounds `npm run explore -- --impl` starts from. */
export const defaultBounds: ImplBounds = {
  replicas: 3,
  writes: 1,
  reads: 1,
  crashes: 0,
  losses: 0,
  duplicates: 0,
  delays: 0,
  partitions: 0,
  retries: 0,
  reconfig: "none",
  chunkFaults: 0,
  tuning: 0,
  overrides: {},
  start: "warm",
  rates: "extremes",
  restartClocks: "both",
  deliverAll: true,
  seed: 1,
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
};
type BudgetKind = keyof typeof budget;

/** One explored state. */
export interface ModelState {
  readonly world: World;
  readonly checker: WorldChecker<KvState, KvInput, KvOutput>;
  /** Budget spent, per `budget` kind. */
  readonly used: Uint8Array;
}

/** A transition: the world action and the budget it spends. */
export interface ModelAction {
  readonly action: Action;
  readonly spends?: BudgetKind;
}

/** An initial state and the actions that made it from the booted world (clock rates). */
export interface Root {
  readonly state: ModelState;
  readonly prefix: readonly Action[];
}

/** A check that failed on a transition. */
export interface Found {
  readonly violation: Violation;
}

/** The membership changes of each `reconfig` bound, asked in order. */
const reconfigSteps: Record<ImplBounds["reconfig"], readonly ReconfigureKind[]> = {
  none: [],
  add: ["add"],
  remove: ["remove"],
  replace: ["add", "replace"],
};

/** The model of one configuration of bounds and one step function (impl/core's, or a mutant's). */
export class ImplModel {
  readonly clients: number;
  readonly tuning: ReplicaTuning;

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
        ...(Object.keys(b.overrides).length === 0 ? {} : { tuningOverrides: b.overrides }),
      },
      actions,
    };
  }

  /** The initial states: the booted (and warmed-up) cluster, once per combination of clock rates. */
  roots(): Root[] {
    const n = this.bounds.replicas;
    const ppm = this.tuning.clockDriftPpmMax;
    const combos: number[][] = [];
    if (this.bounds.rates === "slow" || ppm === 0) combos.push(new Array<number>(n).fill(-ppm));
    else if (this.bounds.rates === "fast") combos.push(new Array<number>(n).fill(ppm));
    else
      for (let mask = 0; mask < 1 << n; mask++)
        combos.push(Array.from({ length: n }, (_, r) => (((mask >> r) & 1) === 0 ? -ppm : ppm)));
    const booted = this.boot();
    return combos.map((rates) => {
      let state = booted;
      const prefix: Action[] = [];
      rates.forEach((r, index) => {
        if (r === 0) return;
        const a: Action = { t: "drift", r: state.world.targetFor(index), ppm: r };
        const next = this.apply(state, { action: a });
        if ("violation" in next) throw new Error(`setting clock rates failed: ${next.violation.message}`);
        state = next;
        prefix.push(a);
      });
      return { state, prefix };
    });
  }

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
    world.observer = (s) => checker.observe(s);
    world.boot();
    if (this.bounds.start === "warm") warmUp(world);
    world.observer = null;
    return { world, checker, used: new Uint8Array(Object.keys(budget).length) };
  }

  /** Every transition enabled in `s`, in a fixed order (see the module comment). */
  actions(s: ModelState): ModelAction[] {
    const out: ModelAction[] = [];
    const w = s.world;
    const b = this.bounds;
    const left = (k: Exclude<BudgetKind, "reconfig">): boolean => s.used[budget[k]]! < b[k];
    const { deliverable, positions } = distinctDeliverable(w);
    for (const i of deliverable) out.push({ action: { t: "deliver", i } });
    const ms = nextAdvanceMs(w.replicas, w.trueTime);
    if (ms !== null) {
      if (deliverable.length === 0) out.push({ action: { t: "advance", ms } });
      else if (left("delays")) out.push({ action: { t: "advance", ms }, spends: "delays" });
    }
    if (b.deliverAll && deliverable.length > 1) out.push({ action: { t: "deliverAll" } });
    const leaders = this.believedLeaders(w);
    this.clientActions(s, leaders, out);
    if (left("losses")) for (const i of positions) out.push({ action: { t: "drop", i }, spends: "losses" });
    if (left("duplicates"))
      for (const i of positions) out.push({ action: { t: "duplicate", i }, spends: "duplicates" });
    if (left("partitions")) this.partitionActions(w, out);
    if (w.anyLinkBlocked()) out.push({ action: { t: "heal" } });
    for (const r of w.replicas) {
      if (!r.born) continue;
      const target = w.targetFor(r.index);
      if (r.state !== null) {
        if (left("crashes")) out.push({ action: { t: "crash", r: target, at: null }, spends: "crashes" });
        continue;
      }
      const continued = r.localAt(w.trueTime);
      if (b.restartClocks !== "lower") out.push({ action: { t: "restart", r: target, clockMs: continued } });
      if (b.restartClocks !== "continue") out.push({ action: { t: "restart", r: target, clockMs: 0 } });
    }
    this.reconfigActions(s, out);
    if (left("chunkFaults")) this.chunkActions(w, out);
    return out;
  }

  /** Cut each link one way; cut each replica off from every other. */
  private partitionActions(w: World, out: ModelAction[]): void {
    const born = w.born();
    for (const x of born) {
      for (const y of born) {
        if (x === y || w.linkBlocked(x, y)) continue;
        out.push({ action: { t: "cut", a: w.targetFor(x), b: w.targetFor(y), oneWay: true }, spends: "partitions" });
      }
    }
    for (const x of born) out.push({ action: { t: "isolate", r: w.targetFor(x), others: 0 }, spends: "partitions" });
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
      if (client.opsStarted === 0) {
        const op = { kind: write ? ("put" as const) : ("get" as const), key: 0 };
        for (const to of targets) out.push({ action: { t: "submit", c, op, to }, spends: write ? "writes" : "reads" });
        continue;
      }
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
      out.push({ action: { t: "reconfigure", kind, r: 0 }, spends: "reconfig" });
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
      for (const to of w.replicas) {
        if (to === from || !to.born || to.state === null) continue;
        out.push({
          action: { t: "staleChunk", i: 0, from: w.targetFor(from.index), to: w.targetFor(to.index) },
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
    const world = s.world.clone();
    const checker = s.checker.fork(world);
    world.observer = (step) => checker.observe(step);
    const completed = completedOps(world);
    try {
      world.apply(a.action);
      if (completedOps(world) > completed) {
        const lin = linearizability(world);
        if (lin !== null) return { violation: lin };
      }
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
    return { world, checker, used };
  }

  /** The state's 64-bit key: the world, the checker's ghost state, and the budgets spent. */
  key(s: ModelState): Hash64 {
    const h = new Hasher();
    s.world.hashInto(h);
    s.checker.fingerprint(h);
    for (const u of s.used) h.word(u);
    return h.done();
  }
}

function completedOps(w: World): number {
  let n = 0;
  for (const op of w.ops) if (op.completedAt !== undefined) n++;
  return n;
}

/**
 * The distinct entries in flight that can be delivered now (a copy of a message or request counts
 * once): `deliverable` holds their positions among the deliverable entries (what `deliver i`
 * names), `positions` their positions in `inFlight` (what `drop i` and `duplicate i` name).
 */
function distinctDeliverable(w: World): { deliverable: number[]; positions: number[] } {
  const seen = new Set<string>();
  const deliverable: number[] = [];
  const positions: number[] = [];
  let k = 0;
  w.inFlight.forEach((m, i) => {
    if (w.replicas[m.to]!.paused || (m.kind === "message" && w.linkBlocked(m.from, m.to))) return;
    const at = k++;
    const content =
      m.kind === "request" ? requestContent(w, m.requestId, m.to) : (({ a, b }) => `${a}:${b}`)(inFlightHash(m));
    if (seen.has(content)) return;
    seen.add(content);
    deliverable.push(at);
    positions.push(i);
  });
  return { deliverable, positions };
}

/** Two copies of one client request (a duplicate has a request id of its own) are the same delivery. */
function requestContent(w: World, requestId: number, to: number): string {
  const { info } = w.requestOf(requestId)!;
  return `request ${to} ${info.clientId} ${info.seq ?? "-"} ${JSON.stringify(info.input)}`;
}

/**
 * Faults as data: every action the simulated world can take (deliver, drop, duplicate, reorder
 * by choosing which message to deliver, partitions symmetric and one-way, heal, crash with the
 * crash landing in the middle of a step or of a snapshot, restart, pause and resume, clock drift,
 * advancing true time, client submits and retries, a client reusing a sequence number for another
 * command, membership changes asked of the leader (add a
 * spare, promote, remove, remove the leader itself, replace), and state-transfer faults: a chunk
 * lost, corrupted, or replayed late from a stale peer), and the fast-check arbitraries that
 * generate and shrink lists of them.
 *
 * Actions name things by small numbers that the world interprets modulo what exists at that
 * moment (the i-th deliverable message, replica r mod N, or with r = N the current leader), so
 * every list is meaningful and a shrunk list still runs. Generation is swarm testing (Groce et al., ISSTA 2012): each
 * run first
 * draws a profile (how often each kind of action occurs, how far time jumps), so some runs are
 * all partitions and fine-grained time while others crash and restart replicas constantly. The
 * same generator serves every suite and every mutant; nothing is tuned per bug.
 */
import fc from "fast-check";
import type { Prelude } from "./preludes.ts";
import type { ReplicaTuning } from "./tuning.ts";

/** What a client asks for. Values are made unique by the world (client and operation number). */
export interface OpSpec {
  readonly kind: "put" | "append" | "get" | "cas";
  /** Key index, modulo the world's key count. */
  readonly key: number;
}

/**
 * The membership changes an operator asks for (the world picks the replicas; see world.ts), and
 * `start`: the operator starts the next spare ahead of any change, to be added later.
 */
export type ReconfigureKind = "start" | "add" | "promote" | "remove" | "removeLeader" | "replace";

/** One action of the world. Numbers are interpreted modulo what exists (see the module comment). */
export type Action =
  /** Deliver the i-th deliverable message in flight (oldest first): i = 0 is FIFO, others reorder. */
  | { readonly t: "deliver"; readonly i: number }
  /** Deliver every message deliverable now, oldest first (not the ones those deliveries send). */
  | { readonly t: "deliverAll" }
  /**
   * A storage thread finished a write: of the replicas owed a durability notice (the leader's own
   * vote, `Persist.notify`), the i-th takes its oldest. Only in runs whose profile draws this kind:
   * elsewhere a notice follows the step that asked for it.
   */
  | { readonly t: "durable"; readonly i: number }
  /** Lose the i-th message in flight. */
  | { readonly t: "drop"; readonly i: number }
  /** Put a copy of the i-th message in flight. */
  | { readonly t: "duplicate"; readonly i: number }
  /** Cut the link a -> b, and b -> a too unless `oneWay`. */
  | { readonly t: "cut"; readonly a: number; readonly b: number; readonly oneWay: boolean }
  /**
   * A symmetric partition: replica r and the `others` replicas after it (by index) on one side,
   * the rest on the other (`others` = 0: r alone). The minority side is at most half.
   */
  | { readonly t: "isolate"; readonly r: number; readonly others: number }
  /**
   * Jepsen's bridge: cut the current leader off from every replica but r, so r alone hears both
   * sides (with 3 replicas: two majorities that share r). The partition where leases are tested.
   */
  | { readonly t: "bridge"; readonly r: number }
  /** Restore every link. */
  | { readonly t: "heal" }
  /** Crash replica r now, or (with `at`) just before effect `at` of its next step: unflushed records are lost. */
  | { readonly t: "crash"; readonly r: number; readonly at: number | null }
  /**
   * Boot crashed replica r from its disk, its monotonic clock starting at `clockMs` (a live r is crashed first: a
   * reboot).
   */
  | { readonly t: "restart"; readonly r: number; readonly clockMs: number }
  /** Stop replica r's process (SIGSTOP): it handles nothing, its clock runs on. */
  | { readonly t: "pause"; readonly r: number }
  | { readonly t: "resume"; readonly r: number }
  /** Set replica r's clock rate to 1 + ppm / 1e6 (the world clamps it to the drift bound). */
  | { readonly t: "drift"; readonly r: number; readonly ppm: number }
  /** Let `ms` of true time pass, then tick every live, running replica at its own clock. */
  | { readonly t: "advance"; readonly ms: number }
  /**
   * Client c starts an operation (or, with one outstanding, retries it). With `to` (a replica
   * target, as for faults) it sends to that replica instead of the one it believes leads: the
   * exhaustive explorer picks every replica that believes it leads; the generator never sets it.
   */
  | { readonly t: "submit"; readonly c: number; readonly op: OpSpec; readonly to?: number }
  /** Client c resends its outstanding operation (same sequence number) to the replica it believes leads, or to `to`. */
  | { readonly t: "retry"; readonly c: number; readonly to?: number }
  /** The next reply client c's connection carries is lost (the request may have executed; the client will retry). */
  | { readonly t: "loseReply"; readonly c: number }
  /**
   * Client c (a faulty client) sends another command under the sequence number of its latest
   * write, executed or still outstanding: it must never be answered with the other command's
   * output, and it runs only if it wins the number.
   */
  | { readonly t: "reuseSeq"; readonly c: number; readonly op: OpSpec; readonly to?: number }
  /**
   * An operator asks the current leader for a membership change of kind `kind` (replica picked by
   * `r`); with `to` (a replica target), that replica instead if it believes it leads (a deposed
   * leader that has not heard of its successor). The generator never sets it.
   */
  | { readonly t: "reconfigure"; readonly kind: ReconfigureKind; readonly r: number; readonly to?: number }
  /** Replica r crashes during its next snapshot: after the snapshot record is written, before it is durable. */
  | { readonly t: "crashInSnapshot"; readonly r: number }
  /** Lose the i-th state-transfer chunk in flight (a partial transfer); with none in flight, the next one sent. */
  | { readonly t: "dropChunk"; readonly i: number }
  /** Change a byte of the i-th state-transfer chunk in flight; with none in flight, of the next one sent. */
  | { readonly t: "corruptChunk"; readonly i: number }
  /**
   * Replica `from` sends replica `to`, unasked, the first chunk of a snapshot it holds (a late answer from a stale
   * peer).
   */
  | { readonly t: "staleChunk"; readonly i: number; readonly from: number; readonly to: number };

/** The kinds of action, in a fixed order. */
export const actionKinds = [
  "deliver",
  "deliverAll",
  "drop",
  "duplicate",
  "cut",
  "isolate",
  "bridge",
  "heal",
  "crash",
  "restart",
  "pause",
  "resume",
  "drift",
  "advance",
  "submit",
  "retry",
  "loseReply",
  "reconfigure",
  "crashInSnapshot",
  "dropChunk",
  "corruptChunk",
  "staleChunk",
  "reuseSeq",
  "durable",
] as const;
export type ActionKind = (typeof actionKinds)[number];

/** A swarm profile: the weight of every kind of action in one run, and how far time may jump. */
export interface Profile {
  readonly weights: Readonly<Record<ActionKind, number>>;
  /** Largest single advance of true time, milliseconds. */
  readonly advanceMsMax: number;
  /** Start from a cluster that has elected its first leader (fault-free warm-up), or from cold. */
  readonly warmStart: boolean;
  /** Index into the world's `tunings` (0, the default, when absent). */
  readonly tuning?: number;
  /** A targeted schedule run after the warm-up, before the actions (./preludes.ts; "none" when absent). */
  readonly prelude?: Prelude;
  /** Chooses within the prelude: which change, how the leader is lost. */
  readonly pick?: number;
  /**
   * Fields of that tuning replaced for this run (the exhaustive explorer's bounds: a snapshot
   * interval, the largest drift bound). The generator never sets it.
   */
  readonly tuningOverrides?: Partial<ReplicaTuning>;
  /**
   * One-way delays of zero: before true time moves, every message deliverable is delivered, and
   * every one those deliveries send (`npm run mutants -- --tuning zero-delay`). Time still moves
   * in the drawn steps, so timers fire and leaders change as in any run; what the actions choose
   * between two advances (which message first, which to lose or copy, which link to cut) is
   * unchanged. The generator never sets it.
   */
  readonly zeroDelay?: boolean;
  /**
   * The liveness phase under load: each replica runs for one tick, then stalls for a time drawn
   * uniformly from [0, livenessStallMsMax] ms (paused: no tick, no delivery, as a process the
   * machine does not schedule), so its timers fire late, together with the messages that waited
   * for it, and the bounds stretch by three stalls per election timeout (world/run.ts,
   * `livenessPhase`). The stalls are drawn from the scenario's seed. The generator never sets it.
   */
  readonly livenessStallMsMax?: number;
  /**
   * Long values hashed as the runtime hashes them (`ReplicaTuning.longValues`), laid over the
   * tuning: the store built with a passed-in hash of long texts and every fourth operation's value
   * long enough to go through it. The swarm draws it last (`lateDrawArbitrary`). Off when absent.
   */
  readonly longValues?: boolean;
  /**
   * The `alpha` prelude phase first sets the leader's clock slow and the others' fast, at the
   * drift bound (./preludes.ts, `PreludeOptions`): leases, drift and a pending configuration
   * change meet. The swarm draws it last (`lateDrawArbitrary`), for a quarter of its runs. Off
   * when absent.
   */
  readonly driftApart?: boolean;
  /**
   * After the prelude, the whole machine stops for this long (`machineStopped`, ./preludes.ts):
   * every replica paused, then resumed. The swarm draws it last (`lateDrawArbitrary`), for three
   * quarters of the runs that draw the runtime's settings (tuning 10), more than an election
   * timeout past the followers' deadlines: where they wait their whole election timeout. Absent:
   * no stop.
   */
  readonly machineStopMs?: number;
  /**
   * The storage thread answers the store's reads late (`ReplicaTuning.readsLateMsMax`): each
   * `ReadEntries` after a delay drawn from the seed, up to this many ms, so that a lease lapse, a
   * leader change, a crash, a transfer, a membership change or a compaction lands between the
   * request and the answer. The swarm draws it last (`lateDrawArbitrary`), for three quarters of
   * the runs that draw the runtime's settings (tuning 10, the only one whose store holds values
   * at rest), and for a quarter of those the `lateRead` prelude in place of the one drawn (a read
   * by lease that waits for a value while the leader's storage thread is slow, then a lease lapse,
   * a leader change, a crash or a rewrite), or for half of that quarter (pick bit 3) the
   * `twoAtRest` prelude (a batch that reads two values at rest, one of them read back for a read
   * by lease first), or for a quarter of it (pick bit 4 of the rest) the `revote` prelude (a vote
   * repeated in its ballot across the follower's snapshot, then a restart). Absent: every answer at once.
   */
  readonly readsLateMsMax?: number;
  /**
   * With `readsLateMsMax`, an answer in eight carries a wrong value (`ReplicaTuning.readsWrong`):
   * drawn for half of them.
   */
  readonly readsWrong?: boolean;
}

/** Bounds of the generator. */
export interface GeneratorBounds {
  readonly replicas: number;
  readonly clients: number;
  readonly keys: number;
  /** Drift bound in parts per million (the replicas' clockDriftPpmMax). */
  readonly driftPpmMax: number;
  readonly actionsMin: number;
  readonly actionsMax: number;
}

const weight = (max: number) => fc.integer({ min: 0, max });

/** A swarm profile. Delivery and time always have weight: without them nothing happens. */
export const profileArbitrary: fc.Arbitrary<Profile> = fc
  .record({
    deliver: fc.integer({ min: 3, max: 12 }),
    deliverAll: weight(4),
    drop: weight(2),
    duplicate: weight(2),
    cut: weight(3),
    isolate: weight(4),
    bridge: weight(3),
    heal: weight(2),
    crash: weight(2),
    restart: weight(2),
    pause: weight(1),
    resume: weight(2),
    drift: weight(2),
    advance: fc.integer({ min: 3, max: 10 }),
    submit: fc.integer({ min: 2, max: 10 }),
    retry: weight(3),
    loseReply: weight(2),
    reconfigure: weight(3),
    crashInSnapshot: weight(1),
    dropChunk: weight(2),
    corruptChunk: weight(1),
    staleChunk: weight(3),
    reuseSeq: weight(1),
    // Above 0: the leader's own votes become durable when this action (or time, or a delivery of
    // everything) says, before, between or after the followers' votes; at 0, at once.
    durable: weight(4),
    // 1: time moves in steps of at most a millisecond, so messages arrive with near-zero delays.
    advanceMsMax: fc.constantFrom(1, 20, 100, 300, 700),
    warmStart: fc.oneof({ arbitrary: fc.constant(true), weight: 4 }, { arbitrary: fc.constant(false), weight: 1 }),
    // The swarm's tunings: all but the explorer's sparse timers (5); adaptive batching, as the
    // runtime's replicas run (6, or in half of those runs, drawn last, the runtime's own settings,
    // 10); the real defaults' proportions (7) often enough that joiners catch up on long logs and
    // from old snapshots in every campaign; the shortest log tail (8).
    tuning: fc.oneof(
      { arbitrary: fc.constant(0), weight: 5 },
      { arbitrary: fc.integer({ min: 1, max: 4 }), weight: 4 },
      { arbitrary: fc.constant(6), weight: 2 },
      { arbitrary: fc.constant(7), weight: 2 },
      { arbitrary: fc.constant(8), weight: 1 },
    ),
    // Most runs start from the warm start alone; the rest from a targeted schedule that reaches
    // where membership changes, leases, snapshots and transfers meet (./preludes.ts).
    prelude: fc.oneof(
      { arbitrary: fc.constant<Prelude>("none"), weight: 3 },
      { arbitrary: fc.constant<Prelude>("writes"), weight: 1 },
      { arbitrary: fc.constant<Prelude>("learner"), weight: 2 },
      { arbitrary: fc.constant<Prelude>("alpha"), weight: 2 },
      { arbitrary: fc.constant<Prelude>("leaderLost"), weight: 2 },
      { arbitrary: fc.constant<Prelude>("reelected"), weight: 3 },
      { arbitrary: fc.constant<Prelude>("restartInLease"), weight: 1 },
      { arbitrary: fc.constant<Prelude>("twoBallots"), weight: 2 },
      { arbitrary: fc.constant<Prelude>("transfer"), weight: 2 },
      { arbitrary: fc.constant<Prelude>("retryAfterTransfer"), weight: 1 },
    ),
    pick: fc.nat({ max: 63 }),
  })
  .map(({ advanceMsMax, warmStart, tuning, prelude, pick, ...weights }) => ({
    weights,
    advanceMsMax,
    warmStart,
    tuning,
    prelude,
    pick,
  }));

const opArbitrary = (keys: number): fc.Arbitrary<OpSpec> =>
  fc.record({ kind: fc.constantFrom<OpSpec["kind"]>("put", "append", "get", "cas"), key: fc.nat({ max: keys - 1 }) });

/** Arbitrary for one action of a given kind. */
function kindArbitrary(kind: ActionKind, p: Profile, b: GeneratorBounds): fc.Arbitrary<Action> {
  // A replica target: 0..N-1 names a replica, N names "the current leader" (Jepsen's nemeses
  // that target the primary), which is where the interesting faults land.
  const r = fc.oneof(
    { arbitrary: fc.nat({ max: b.replicas - 1 }), weight: 1 },
    { arbitrary: fc.constant(b.replicas), weight: 1 },
  );
  const i = fc.nat({ max: 63 });
  switch (kind) {
    case "deliver":
      // Mostly the oldest messages: reordering a few at a time is what finds ordering bugs.
      return fc
        .oneof(
          { arbitrary: fc.constant(0), weight: 3 },
          { arbitrary: fc.nat({ max: 3 }), weight: 2 },
          { arbitrary: i, weight: 1 },
        )
        .map((n) => ({ t: "deliver", i: n }));
    case "deliverAll":
      return fc.constant({ t: "deliverAll" });
    case "drop":
      return i.map((n) => ({ t: "drop", i: n }));
    case "duplicate":
      return i.map((n) => ({ t: "duplicate", i: n }));
    case "cut":
      return fc.record({ a: r, b: r, oneWay: fc.boolean() }).map((x) => ({ t: "cut", ...x }));
    case "isolate":
      return fc
        .record({ r, others: fc.nat({ max: Math.max(0, Math.floor((b.replicas - 1) / 2) - 1) }) })
        .map((x) => ({ t: "isolate", ...x }));
    case "bridge":
      return fc.nat({ max: b.replicas - 1 }).map((n) => ({ t: "bridge", r: n }));
    case "heal":
      return fc.constant({ t: "heal" });
    case "crash":
      return fc.record({ r, at: fc.option(fc.nat({ max: 6 }), { nil: null }) }).map((x) => ({ t: "crash", ...x }));
    case "restart":
      // Often below every reading of the replica's previous life (clocks start at 10,000 x index and
      // more), while that life's messages may still be in flight: the hazard rule L4 guards.
      return fc
        .record({
          r,
          clockMs: fc.oneof(
            { arbitrary: fc.nat({ max: 1_000_000 }), weight: 2 },
            { arbitrary: fc.nat({ max: 5_000 }), weight: 1 },
          ),
        })
        .map((x) => ({ t: "restart", ...x }));
    case "pause":
      return r.map((n) => ({ t: "pause", r: n }));
    case "resume":
      return r.map((n) => ({ t: "resume", r: n }));
    case "drift":
      return fc
        .record({
          r,
          ppm: fc.oneof(
            fc.constantFrom(-b.driftPpmMax, b.driftPpmMax, 0),
            fc.integer({ min: -b.driftPpmMax, max: b.driftPpmMax }),
          ),
        })
        .map((x) => ({ t: "drift", ...x }));
    case "advance":
      return fc.integer({ min: 1, max: p.advanceMsMax }).map((ms) => ({ t: "advance", ms }));
    case "submit":
      return fc
        .record({ c: fc.nat({ max: b.clients - 1 }), op: opArbitrary(b.keys) })
        .map((x) => ({ t: "submit", ...x }));
    case "retry":
      return fc.nat({ max: b.clients - 1 }).map((c) => ({ t: "retry", c }));
    case "loseReply":
      return fc.nat({ max: b.clients - 1 }).map((c) => ({ t: "loseReply", c }));
    case "reconfigure":
      return fc
        .record({
          kind: fc.constantFrom<ReconfigureKind>(
            "start",
            "add",
            "add",
            "promote",
            "promote",
            "remove",
            "removeLeader",
            "replace",
          ),
          r: fc.nat({ max: 7 }),
        })
        .map((x) => ({ t: "reconfigure", ...x }));
    case "crashInSnapshot":
      return r.map((n) => ({ t: "crashInSnapshot", r: n }));
    case "dropChunk":
    case "corruptChunk":
      return i.map((n) => ({ t: kind, i: n }));
    case "staleChunk":
      return fc.record({ i, from: r, to: r }).map((x) => ({ t: "staleChunk", ...x }));
    case "reuseSeq":
      return fc
        .record({ c: fc.nat({ max: b.clients - 1 }), op: opArbitrary(b.keys) })
        .map((x) => ({ t: "reuseSeq", ...x }));
    case "durable":
      return fc.nat({ max: 3 }).map((n) => ({ t: "durable", i: n }));
  }
}

/** Arbitrary for one action under profile `p`. */
export function actionArbitrary(p: Profile, b: GeneratorBounds): fc.Arbitrary<Action> {
  const parts = actionKinds
    .filter((k) => p.weights[k] > 0)
    .map((k) => ({ arbitrary: kindArbitrary(k, p, b), weight: p.weights[k] }));
  return fc.oneof(...parts);
}

/** A run's input: the replicas' generator seed, the swarm profile and the action list. */
export interface Scenario {
  readonly seed: number;
  readonly profile: Profile;
  readonly actions: readonly Action[];
}

/**
 * With 5 or 7 replicas, a third of the runs set the prelude's pick bit 6: the leader first removes
 * voters one by one until 3 are left (./preludes.ts), and the prelude builds its 3-replica history
 * among them. The histories the preludes build with 3 replicas (a voter that missed a replace and
 * then wins an election; two voters, one of them leading, asked to leave in one window) are not
 * built with 5 or 7 by the same pick, and a quorum of 5 or 7 makes them rarer still by random
 * faults; this is how a large cluster gets there, by its own membership changes.
 */
function shrinkSometimes(p: Profile): fc.Arbitrary<Profile> {
  return fc.nat({ max: 2 }).map((k) => (k === 0 ? { ...p, pick: (p.pick ?? 0) | 64 } : p));
}

/** The index of the runtime's own settings in the world's `tunings` (world/tuning.ts). */
export const runtimeTuning = 10;

/**
 * The profile fields the swarm draws after the actions, so that every earlier draw (the profile,
 * the actions) stays what the same seed drew before these fields came: in a quarter of the runs,
 * long values hashed by a passed-in hash, as the runtime's store hashes them; in half of the runs
 * that drew the runtime's adaptive batching alone (tuning 6), the runtime's own settings (tuning
 * 10: adaptive batching, followers that wait for their leader after a stall, long values hashed).
 */
const lateDrawArbitrary = fc.record({
  longValues: fc.nat({ max: 3 }),
  runtime: fc.boolean(),
  driftApart: fc.nat({ max: 3 }),
  machineStop: fc.nat({ max: 3 }),
  // Past the runtime tuning's longest election timeout plus its shortest (600 + 400 ms).
  machineStopMs: fc.integer({ min: 1100, max: 3000 }),
  // Delays up to past a lease and an election timeout (300 + 600 ms) and beyond.
  readsLate: fc.nat({ max: 3 }),
  readsLateMsMax: fc.integer({ min: 200, max: 2500 }),
  readsWrong: fc.boolean(),
  readsPrelude: fc.nat({ max: 3 }),
});

function withLateDraw(
  p: Profile,
  late: {
    longValues: number;
    runtime: boolean;
    driftApart: number;
    machineStop: number;
    machineStopMs: number;
    readsLate: number;
    readsLateMsMax: number;
    readsWrong: boolean;
    readsPrelude: number;
  },
  over?: Partial<Profile>,
): Profile {
  const longValues = over?.longValues ?? late.longValues === 0;
  const runtime = over?.tuning === undefined && p.tuning === 6 && late.runtime;
  const driftApart = over?.driftApart ?? late.driftApart === 0;
  const machineStopMs = over?.machineStopMs ?? (runtime && late.machineStop !== 0 ? late.machineStopMs : undefined);
  const readsLateMsMax = over?.readsLateMsMax ?? (runtime && late.readsLate !== 0 ? late.readsLateMsMax : undefined);
  const readsWrong = over?.readsWrong ?? (readsLateMsMax !== undefined && late.readsWrong);
  // A quarter of the runs with reads answered late (drawn, or laid over the tuning by a hunt's
  // `tuningOverrides`) start from a read that waits for one.
  const readsLate = readsLateMsMax ?? over?.tuningOverrides?.readsLateMsMax;
  const lateRead = over?.prelude === undefined && readsLate !== undefined && late.readsPrelude === 0;
  return {
    ...p,
    ...(longValues ? { longValues } : {}),
    ...(runtime ? { tuning: runtimeTuning } : {}),
    ...(driftApart ? { driftApart } : {}),
    ...(machineStopMs === undefined ? {} : { machineStopMs }),
    ...(readsLateMsMax === undefined ? {} : { readsLateMsMax }),
    ...(readsWrong ? { readsWrong } : {}),
    // Half of them (pick bit 3) from a batch that reads two values at rest instead, and a quarter
    // (pick bit 4 of the rest) from a vote repeated in its ballot across a snapshot.
    ...(lateRead ? { prelude: latePrelude(p.pick ?? 0) } : {}),
  };
}

/** The prelude drawn in place of another for a run with reads answered late, by its pick. */
function latePrelude(pick: number): Prelude {
  if ((pick & 8) !== 0) return "twoAtRest";
  return (pick & 16) !== 0 ? "revote" : "lateRead";
}

/** Arbitrary for a whole scenario: a profile, then a list of actions drawn under it. */
export function scenarioArbitrary(b: GeneratorBounds, over?: Partial<Profile>): fc.Arbitrary<Scenario> {
  // Profile fields laid over the drawn ones before the actions are drawn, so that the actions
  // follow them (a time step drawn within `advanceMsMax`).
  const drawn = b.replicas > 3 ? profileArbitrary.chain(shrinkSometimes) : profileArbitrary;
  const profiles = over === undefined ? drawn : drawn.map((p) => ({ ...p, ...over }));
  return fc
    .tuple(fc.nat({ max: 0xffff }), profiles)
    .chain(([seed, profile]) =>
      fc
        .tuple(
          fc.array(actionArbitrary(profile, b), { minLength: b.actionsMin, maxLength: b.actionsMax, size: "max" }),
          lateDrawArbitrary,
        )
        .map(([actions, late]) => ({ seed, profile: withLateDraw(profile, late, over), actions })),
    );
}

/** An action as one line, for traces and regression files. */
export function showAction(a: Action): string {
  switch (a.t) {
    case "deliver":
    case "drop":
    case "duplicate":
    case "durable":
      return `${a.t} ${a.i}`;
    case "deliverAll":
    case "heal":
      return a.t;
    case "cut":
      return `cut ${a.a}${a.oneWay ? "->" : "<->"}${a.b}`;
    case "isolate":
      return a.others === 0 ? `isolate ${a.r}` : `isolate ${a.r} +${a.others}`;
    case "bridge":
    case "pause":
    case "resume":
      return `${a.t} ${a.r}`;
    case "crash":
      return a.at === null ? `crash ${a.r}` : `crash ${a.r} at=${a.at}`;
    case "restart":
      return `restart ${a.r} clock=${a.clockMs}`;
    case "drift":
      return `drift ${a.r} ppm=${a.ppm}`;
    case "advance":
      return `advance ${a.ms}`;
    case "submit":
      return `submit ${a.c} ${a.op.kind} k${a.op.key}${a.to === undefined ? "" : ` to ${a.to}`}`;
    case "retry":
      return `retry ${a.c}${a.to === undefined ? "" : ` to ${a.to}`}`;
    case "loseReply":
      return `lose-reply ${a.c}`;
    case "reconfigure":
      return `reconfigure ${a.kind} ${a.r}${a.to === undefined ? "" : ` to ${a.to}`}`;
    case "crashInSnapshot":
      return `crash-in-snapshot ${a.r}`;
    case "dropChunk":
    case "corruptChunk":
      return `${a.t === "dropChunk" ? "drop-chunk" : "corrupt-chunk"} ${a.i}`;
    case "staleChunk":
      return `stale-chunk ${a.i} ${a.from}->${a.to}`;
    case "reuseSeq":
      return `reuse-seq ${a.c} ${a.op.kind} k${a.op.key}${a.to === undefined ? "" : ` to ${a.to}`}`;
  }
}

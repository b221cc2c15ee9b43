/**
 * `explore(spec, bounds)`: breadth-first search over the reachable states of a Spec, the way
 * TLC's model checker does it. Every distinct state (by the spec's canonical key, or by the
 * smallest key over its symmetry orbit when `symmetry` is asked for) is checked against the
 * invariants; every transition is handed to the pluggable step checks (refinement checkers
 * from proofs/ plug in here). The first failure stops the search and comes back with the
 * shortest trace that reaches it, because BFS meets states in order of distance from Init.
 *
 * Counting follows TLC so the numbers can be compared with its reports: "generated" is the
 * number of initial states plus every successor generated, duplicates and self-loops
 * included and one per satisfying binding of an action's existentials (`Spec.witnesses`);
 * "depth" counts the initial states as depth 1.
 *
 * Generic over Spec; imports nothing of the project but spec/state-machine.ts. No clock: the
 * caller measures time and may watch progress through `onProgress`.
 */
import type { Invariant, Spec } from "./state-machine.ts";

/**
 * A check run on every transition of the explored spec, for example "this step of Paxos is
 * a stutter or one step of Voting". Returns `undefined` when the step is fine and otherwise
 * a sentence saying what is wrong.
 */
export interface StepCheck<S, A> {
  readonly name: string;
  /** Run once on every initial state (default: nothing to check). */
  checkInit?(state: S): string | undefined;
  /** Run on every transition `from -action-> to`, including self-loops. */
  checkStep(from: S, action: A, to: S): string | undefined;
  /** Lines describing what the check saw, for the final report. */
  summary?(): readonly string[];
}

/** What to explore and what to check. Every field is optional. */
export interface ExploreBounds<S, A> {
  /** Stop (with `complete: false`) after this many distinct states. Default 20,000,000. */
  readonly maxStates?: number;
  /** Do not expand states at this depth (Init is depth 1). Default: unbounded. */
  readonly maxDepth?: number;
  /** Count states up to the spec's symmetries (TLC's SYMMETRY). Default false. */
  readonly symmetry?: boolean;
  /** The invariants checked on every distinct state. Default: `spec.invariants`. */
  readonly invariants?: readonly Invariant<S>[];
  /** Checks run on every transition. Default: none. */
  readonly checks?: readonly StepCheck<S, A>[];
  /** Called every `progressEvery` expanded states. */
  readonly onProgress?: (progress: ExploreProgress) => void;
  /** Default 65,536. */
  readonly progressEvery?: number;
}

/** Counters, TLC's way (see the module comment). */
export interface ExploreProgress {
  readonly distinct: number;
  readonly generated: number;
  readonly depth: number;
  /** States found but not yet expanded. */
  readonly queued: number;
}

/** One step of a counterexample: the action taken (`"Init"` first) and the state reached. */
export interface TraceStep<S> {
  readonly action: string;
  readonly state: S;
}

/** A failed check with the shortest trace to it. */
export interface Violation<S> {
  /**
   * `invariant`: a reachable state breaks it; `step`: a transition fails a step check; `init`: an initial state fails a
   * step check.
   */
  readonly kind: "invariant" | "step" | "init";
  /** Name of the invariant or step check. */
  readonly check: string;
  readonly message: string;
  /** From an initial state to the offending state (for `step`, the last entry is the step's target). */
  readonly trace: readonly TraceStep<S>[];
}

export interface ExploreResult<S> extends ExploreProgress {
  /** Distinct transitions (state, enabled action instance) handed to the step checks. */
  readonly transitions: number;
  /** False when `maxStates` or `maxDepth` cut the search short. */
  readonly complete: boolean;
  readonly invariantsChecked: readonly string[];
  readonly stepChecks: readonly { readonly name: string; readonly summary: readonly string[] }[];
  readonly violation?: Violation<S>;
}

/** Explore `spec` breadth first; see the module comment. */
export function explore<S, A>(spec: Spec<S, A>, bounds: ExploreBounds<S, A> = {}): ExploreResult<S> {
  const invariants = bounds.invariants ?? spec.invariants;
  const checks = bounds.checks ?? [];
  const maxStates = bounds.maxStates ?? 20_000_000;
  const maxDepth = bounds.maxDepth ?? Number.POSITIVE_INFINITY;
  const progressEvery = bounds.progressEvery ?? 65_536;
  const canonical = canonicalKey(spec, bounds.symmetry === true);
  const counted = spec.witnesses !== undefined;

  // The index of a state is its position in `states`, so a Set of keys suffices; adding
  // and comparing sizes costs one hash lookup per successor.
  const seen = new Set<string>();
  const states: S[] = [];
  const parents: number[] = [];
  let generated = 0;
  let transitions = 0;
  let depth = 0;
  let complete = true;

  const finish = (violation?: Violation<S>): ExploreResult<S> => ({
    distinct: states.length,
    generated,
    depth,
    queued: 0,
    transitions,
    complete: violation === undefined && complete,
    invariantsChecked: invariants.map((i) => i.name),
    stepChecks: checks.map((c) => ({ name: c.name, summary: c.summary?.() ?? [] })),
    ...(violation === undefined ? {} : { violation }),
  });
  const checkState = (index: number): Violation<S> | undefined => {
    const s = states[index]!;
    for (const inv of invariants) {
      const message = inv.check(s);
      if (message !== undefined)
        return { kind: "invariant", check: inv.name, message, trace: traceTo(spec, states, parents, index) };
    }
    return undefined;
  };
  /** Record `t` (reached from `parent`) if it is new, and check the invariants on it. */
  const add = (t: S, parent: number): Violation<S> | undefined => {
    const size = seen.size;
    if (seen.add(canonical(t)).size === size) return undefined;
    states.push(t);
    parents.push(parent);
    return checkState(states.length - 1);
  };
  /** Generate every successor of states[i], hand each transition to the step checks, record new states. */
  const expand = (i: number): Violation<S> | undefined => {
    const s = states[i]!;
    for (const a of spec.actions(s)) {
      const w = counted ? spec.witnesses!(a, s) : spec.enabled(a, s) ? 1 : 0;
      if (w === 0) continue;
      generated += w;
      transitions++;
      const t = spec.transition(a, s);
      for (const check of checks) {
        const message = check.checkStep(s, a, t);
        if (message !== undefined)
          return {
            kind: "step",
            check: check.name,
            message,
            trace: [...traceTo(spec, states, parents, i), { action: spec.output(a, s), state: t }],
          };
      }
      if (t === s) continue; // a self-loop: the spec returned the very same state
      if (states.length >= maxStates) {
        if (!seen.has(canonical(t))) complete = false;
        continue;
      }
      const bad = add(t, i);
      if (bad !== undefined) return bad;
    }
    return undefined;
  };

  depth = spec.init.length > 0 ? 1 : 0;
  for (const s of spec.init) {
    generated++;
    for (const check of checks) {
      const message = check.checkInit?.(s);
      if (message !== undefined)
        return finish({ kind: "init", check: check.name, message, trace: [{ action: "Init", state: s }] });
    }
    const bad = add(s, -1);
    if (bad !== undefined) return finish(bad);
  }

  let levelEnd = states.length;
  for (let i = 0; i < states.length; i++) {
    if (i === levelEnd) {
      depth++;
      levelEnd = states.length;
    }
    if (depth >= maxDepth) {
      complete = false;
      break;
    }
    if (i % progressEvery === 0 && i > 0)
      bounds.onProgress?.({ distinct: states.length, generated, depth, queued: states.length - i });
    const bad = expand(i);
    if (bad !== undefined) return finish(bad);
  }
  return finish();
}

/** The key that identifies a state during exploration: its own, or the least over its orbit. */
function canonicalKey<S, A>(spec: Spec<S, A>, symmetry: boolean): (s: S) => string {
  const group = symmetry ? (spec.symmetries ?? []) : [];
  if (group.length === 0) return (s) => spec.key(s);
  return (s) => {
    let best = spec.key(s);
    for (const g of group) {
      const k = spec.key(g(s));
      if (k < best) best = k;
    }
    return best;
  };
}

/**
 * The path from an initial state to `states[index]`, with action names. Only parents are
 * stored during the search; each action is found again by replaying the parent's actions,
 * which is cheap next to storing one per state.
 */
function traceTo<S, A>(
  spec: Spec<S, A>,
  states: readonly S[],
  parents: readonly number[],
  index: number,
): TraceStep<S>[] {
  const path: number[] = [];
  for (let i = index; i !== -1; i = parents[i]!) path.push(i);
  path.reverse();
  const trace: TraceStep<S>[] = [{ action: "Init", state: states[path[0]!]! }];
  for (let j = 1; j < path.length; j++) {
    const from = states[path[j - 1]!]!;
    const to = states[path[j]!]!;
    const target = spec.key(to);
    let name: string | undefined;
    for (const a of spec.actions(from)) {
      if (spec.enabled(a, from) && spec.key(spec.transition(a, from)) === target) {
        name = spec.output(a, from);
        break;
      }
    }
    // Replaying the parent must reproduce the state it produced during the search; if it
    // does not, the spec is not deterministic, and no trace it gives can be trusted.
    if (name === undefined)
      throw new Error(
        `${spec.name} is not deterministic: no action of the parent state reproduces a state it produced`,
      );
    trace.push({ action: name, state: to });
  }
  return trace;
}

/** A counterexample as text: the failed check, then each step and the state it reached. */
export function formatViolation<S>(spec: { show(state: S): string }, violation: Violation<S>): string {
  const head =
    violation.kind === "invariant"
      ? `Invariant ${violation.check} is violated`
      : violation.kind === "init"
        ? `Initial state fails ${violation.check}`
        : `Step check ${violation.check} fails on the last step`;
  const lines = [`${head}: ${violation.message}`, `Shortest trace (${violation.trace.length} states):`];
  violation.trace.forEach((step, i) => {
    lines.push(`${i + 1}: <${step.action}>`);
    lines.push(spec.show(step.state));
  });
  return lines.join("\n");
}

/**
 * A walk through the spec driven by `choices`: at each step the enabled actions are listed
 * in `actions` order and choice c picks the one at c modulo their number; the walk stops
 * early when nothing is enabled. Deterministic, so a list of choices (for example one that
 * fast-check generated and shrank) replays the same walk. Starts from `spec.init[0]` unless
 * `from` is given.
 */
export function simulate<S, A>(spec: Spec<S, A>, choices: Iterable<number>, from: S = spec.init[0]!): TraceStep<S>[] {
  const trace: TraceStep<S>[] = [{ action: "Init", state: from }];
  let s = from;
  for (const choice of choices) {
    const enabled = [...spec.actions(s)].filter((a) => spec.enabled(a, s));
    if (enabled.length === 0) break;
    const a = enabled[((choice % enabled.length) + enabled.length) % enabled.length]!;
    const t = spec.transition(a, s);
    trace.push({ action: spec.output(a, s), state: t });
    s = t;
  }
  return trace;
}

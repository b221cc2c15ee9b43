/**
 * The one shape every spec and the replicated application share: a state machine in the
 * sense of Lampson ("How to Build a Highly Available System Using Consensus", section 2):
 * the tuple (States, Inputs, Outputs, transition: Input x State -> State,
 * output: Input x State -> Output, Start).
 *
 * Determinism is a requirement, not a convenience: `transition` and `output` must be pure
 * functions of their arguments. They read no clock, no randomness and no global state, and
 * they never mutate the state they are given. Replication depends on it: every replica that
 * applies the same inputs in the same order from Start reaches the same state and produces
 * the same outputs (step 4 of the recipe), and exhaustive exploration depends on it too.
 *
 * This module imports nothing of the project and must never do so.
 */

/**
 * Lampson's tuple. `States`, `Inputs` and `Outputs` are the type parameters; `start` is
 * Start; `transition` and `output` are the two functions. Both functions see the state
 * *before* the input is applied: `output(i, s)` is what applying `i` in `s` returns.
 */
export interface StateMachine<S, I, O> {
  /** A short name used in reports, for example `"kv"` or `"Paxos"`. */
  readonly name: string;
  /** Start: the state before any input. */
  readonly start: S;
  /** transition: Input x State -> State. Pure; must not mutate `state`. */
  transition(input: I, state: S): S;
  /** output: Input x State -> Output. Pure; computed from the state before the input. */
  output(input: I, state: S): O;
}

/**
 * Apply one input: the pair (transition, output) computed together. Machines whose two
 * functions share work may provide `apply` themselves (see {@link Application}); this
 * helper falls back to calling both functions of the tuple.
 */
export function applyInput<S, I, O>(
  machine: StateMachine<S, I, O> & { apply?: (input: I, state: S) => Applied<S, O> },
  input: I,
  state: S,
): Applied<S, O> {
  if (machine.apply !== undefined) return machine.apply(input, state);
  return { state: machine.transition(input, state), output: machine.output(input, state) };
}

/** The result of applying one input. */
export interface Applied<S, O> {
  readonly state: S;
  readonly output: O;
}

/** Apply a sequence of inputs from `state` (default: Start) and collect the outputs. */
export function runInputs<S, I, O>(
  machine: StateMachine<S, I, O> & { apply?: (input: I, state: S) => Applied<S, O> },
  inputs: Iterable<I>,
  state: S = machine.start,
): { readonly state: S; readonly outputs: readonly O[] } {
  const outputs: O[] = [];
  let current = state;
  for (const input of inputs) {
    const applied = applyInput(machine, input, current);
    outputs.push(applied.output);
    current = applied.state;
  }
  return { state: current, outputs };
}

/**
 * A replicated application: a deterministic state machine that the replicas run (step 1 of
 * the recipe), plus what replication needs to know about it. `spec/kv.ts` is the default.
 *
 * - `readOnly(i)`: true when `transition(i, s)` equals `s` for every state `s`. Only such
 *   inputs may be answered from a leaseholder's local state without going through the log.
 * - `noop`: an input that changes nothing; a new leader fills log gaps with it.
 * - `digest(s)`: a cheap fingerprint of the state; equal states have equal digests. Used to
 *   monitor replicas for differences in state (step 6 of the recipe). A digest may name its
 *   format in front (`name/`, spec/hash.ts `digestFormat`); digests of different formats are
 *   never compared, and `digestAs` computes one in a format the replica no longer makes.
 * - `textHash`: the hash of long texts its digests use, passed in by the runtime (null or absent:
 *   the specs' own); the service's command digests (spec/service.ts) use it too.
 * - `snapshot` / `restore`: the state as plain JSON-safe data and back;
 *   `restore(snapshot(s))` equals `s`.
 */
export interface Application<S, I, O> extends StateMachine<S, I, O> {
  /**
   * Apply `input` by the rules of feature `level` (spec/service.ts: the level the service state
   * executes by, a function of the chosen log; default 1, the level every log starts at). An
   * application whose rules do not change with the level ignores it. `transition` and `output`
   * are level 1's.
   */
  apply(input: I, state: S, level?: number): Applied<S, O>;
  readOnly(input: I): boolean;
  readonly noop: I;
  digest(state: S): string;
  /**
   * The digest of `state` in the format named `format` ("" for the unnamed one), or null when the
   * application cannot make digests of that format. Absent: only `digest`'s own format.
   */
  digestAs?(state: S, format: string): string | null;
  /** spec/hash.ts `TextHash` (spelled out here: this module imports nothing of the project). */
  readonly textHash?: {
    readonly name: string;
    readonly hash: (text: string) => readonly [number, number, number];
  } | null;
  snapshot(state: S): unknown;
  restore(data: unknown): S;
  /** Structural equality of outputs (outputs are plain data). */
  outputsEqual(a: O, b: O): boolean;
}

/**
 * An invariant: a named predicate on states. `check` returns `undefined` when the state
 * satisfies it and otherwise a sentence saying what is wrong, so that reports name both the
 * invariant and the offending part of the state.
 */
export interface Invariant<S> {
  readonly name: string;
  /** One-line statement, for reports and docs. */
  readonly statement: string;
  check(state: S): string | undefined;
}

/**
 * A spec in the style of TLA+: a state machine whose inputs are *actions*, each with an
 * `enabled` guard; Next is the disjunction over all actions. `actions(s)` lists every action
 * instance worth trying in `s` (a superset of the enabled ones is fine: `enabled` decides),
 * in a fixed order, so that exploration is deterministic. `transition(a, s)` is defined only
 * when `enabled(a, s)`. The output of an action is its name with its arguments
 * (`"Phase2a(1, v2)"`), which is what traces and refinement reports print.
 *
 * An action instance binds every bound variable that changes the successor (for Paxos's
 * `Phase1b(a) == \E m \in msgs : ...`, the message m), so `transition` is a function.
 * Existentials that only guard (`\E Q \in Quorum : ShowsSafeAt(Q, b, v)`) stay inside the
 * action; `witnesses` counts their satisfying bindings, because TLC generates one successor
 * per binding and its "states generated" counts every one of them.
 *
 * States are immutable, so `transition` may return the very state it was given when the
 * action changes nothing (a self-loop); explorers take `to === from` as a known state.
 */
export interface Spec<S, A> extends StateMachine<S, A, string> {
  /** Init. Most specs have one initial state; some (inductive checks) have many. */
  readonly init: readonly S[];
  actions(state: S): Iterable<A>;
  enabled(action: A, state: S): boolean;
  /**
   * How many successors TLC generates for `action` in `state`: the number of satisfying
   * bindings of the existential quantifiers inside the action (all equal to
   * `transition(action, state)`). Zero exactly when the action is not enabled. Optional:
   * when absent, 1 if enabled and 0 otherwise. Explorers call it instead of `enabled`, so a
   * spec whose guard already counts witnesses evaluates it once.
   */
  witnesses?(action: A, state: S): number;
  /** A canonical key: two states are equal exactly when their keys are equal. */
  key(state: S): string;
  /** The invariants checked on every reachable state. */
  readonly invariants: readonly Invariant<S>[];
  /** A readable rendering of a state for counterexample reports. */
  show(state: S): string;
  /**
   * Optional symmetry (TLC's SYMMETRY): every element of the symmetry group except the
   * identity, as a map on states. The spec must commute with each of them (a permuted
   * state's successors are the permuted successors). Explorers use them only when asked.
   */
  readonly symmetries?: readonly ((state: S) => S)[];
}

/**
 * Checking that an invariant is inductive, the trick of MCPaxos.tla's MCISpec
 * (`IInv /\ [][Next]_vars`): start from arbitrary states that satisfy the invariant, not only
 * reachable ones, take every enabled step of Next, and require the invariant again. A state
 * that satisfies the invariant but has a successor that does not is a counterexample to
 * induction (CTI): the invariant is too weak to be proved by induction, even if it holds on
 * every reachable state.
 *
 * TLC enumerates every state satisfying IInv, which is only possible for tiny constants;
 * here fast-check generates them, from the Schema of the spec's state (see
 * proofs/paxos-inductive.ts), for constants large enough to be interesting.
 */
import type { Invariant, Spec } from "../spec/state-machine.ts";

/** A state satisfying the invariant whose successor by `action` does not. */
export interface CounterexampleToInduction<S> {
  readonly state: S;
  readonly action: string;
  readonly successor: S;
  /** The conjunct the successor breaks, and why. */
  readonly invariant: string;
  readonly message: string;
}

/** The first conjunct of `invariants` that `state` breaks, if any. */
export function firstViolated<S>(
  invariants: readonly Invariant<S>[],
  state: S,
): { readonly invariant: string; readonly message: string } | undefined {
  for (const inv of invariants) {
    const message = inv.check(state);
    if (message !== undefined) return { invariant: inv.name, message };
  }
  return undefined;
}

/**
 * One step of the inductive check from `state`, which must satisfy `invariants` (it throws
 * otherwise, so a generator that produces bad states cannot pass silently): every enabled
 * action's successor must satisfy them too.
 */
export function inductiveStep<S, A>(
  spec: Spec<S, A>,
  invariants: readonly Invariant<S>[],
  state: S,
): CounterexampleToInduction<S> | undefined {
  const before = firstViolated(invariants, state);
  if (before !== undefined)
    throw new Error(
      `inductiveStep needs a state that satisfies the invariant; ${before.invariant} fails: ${before.message}`,
    );
  for (const a of spec.actions(state)) {
    if (!spec.enabled(a, state)) continue;
    const successor = spec.transition(a, state);
    const after = firstViolated(invariants, successor);
    if (after !== undefined) return { state, action: spec.output(a, state), successor, ...after };
  }
  return undefined;
}

/** A counterexample to induction as text. */
export function formatCounterexample<S>(spec: { show(state: S): string }, cti: CounterexampleToInduction<S>): string {
  return [
    `Counterexample to induction: ${cti.invariant} holds before <${cti.action}> but not after: ${cti.message}`,
    "State (satisfies the invariant):",
    spec.show(cti.state),
    `After <${cti.action}>:`,
    spec.show(cti.successor),
  ].join("\n");
}

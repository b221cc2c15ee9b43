/**
 * The step-refinement checker: given an upper spec U and a refinement mapping f from lower
 * states to U's states, it checks that f(init) is an initial state of U and that every step
 * s -> t of the lower system is, under f, either a stutter (f(s) = f(t)) or exactly one
 * enabled action of U leading from f(s) to f(t). It names that action, so reports read
 * "Phase2b(a2) on 2a(1, v1) |-> VoteFor(a2, 1, v1)".
 *
 * It is Lamport's proof obligation `Inv /\ [Next]_vars => [U!Next]_<<mapped vars>>`, checked
 * on every explored transition instead of proved. The lower side is anything with states:
 * a Spec explored by spec/explore.ts (Paxos, Voting) or, later, the simulated world. The
 * verdict depends only on the pair (f(s), f(t)), so it is computed once per pair of
 * abstract states and remembered; the search over U's actions then costs next to nothing.
 */
import type { StepCheck } from "../spec/explore.ts";
import type { Spec } from "../spec/state-machine.ts";

/** A refinement mapping: the upper spec and the abstraction function onto its states. */
export interface RefinementMapping<L, U, UA> {
  /** For reports, for example "Paxos => Voting". */
  readonly name: string;
  readonly upper: Spec<U, UA>;
  /** The abstraction function. Pure. */
  readonly map: (lower: L) => U;
}

/** How one abstract step is explained by the upper spec. */
export type StepMatch<UA> =
  | { readonly kind: "stutter" }
  | { readonly kind: "action"; readonly action: UA; readonly name: string }
  | { readonly kind: "none" }
  | { readonly kind: "ambiguous"; readonly names: readonly string[] };

/**
 * Which step of `upper` leads from `from` to `to`: a stutter when the keys are equal,
 * otherwise the enabled actions whose successor has `to`'s key (exactly one expected).
 */
export function matchStep<U, UA>(upper: Spec<U, UA>, from: U, to: U): StepMatch<UA> {
  const target = upper.key(to);
  if (upper.key(from) === target) return { kind: "stutter" };
  const found: UA[] = [];
  for (const a of upper.actions(from)) {
    if (upper.enabled(a, from) && upper.key(upper.transition(a, from)) === target) found.push(a);
  }
  if (found.length === 0) return { kind: "none" };
  if (found.length > 1) return { kind: "ambiguous", names: found.map((a) => upper.output(a, from)) };
  const action = found[0]!;
  return { kind: "action", action, name: upper.output(action, from) };
}

/** The name of an action without its arguments: "VoteFor(a1, 0, v1)" -> "VoteFor". */
function kindOf(name: string): string {
  const i = name.indexOf("(");
  return i === -1 ? name : name.slice(0, i);
}

/** Options of {@link refinementCheck}. */
export interface RefinementOptions<LA> {
  /** The kind of a lower action for the summary (default: every step counts as "step"). */
  readonly lowerKind?: (action: LA) => string;
}

/** A step check (for explore's `checks`) that also tallies which upper action each lower kind became. */
export interface RefinementCheck<L, LA> extends StepCheck<L, LA> {
  /** "lowerKind |-> upperKind" (or "lowerKind |-> stutter") -> number of transitions. */
  readonly tally: ReadonlyMap<string, number>;
}

/**
 * A StepCheck that checks `mapping` on every transition (see the module comment). Failures
 * name the upper spec's verdict and show both abstract states.
 */
export function refinementCheck<L, LA, U, UA>(
  mapping: RefinementMapping<L, U, UA>,
  options: RefinementOptions<LA> = {},
): RefinementCheck<L, LA> {
  const { upper, map } = mapping;
  const initKeys = new Set(upper.init.map((s) => upper.key(s)));
  // Verdicts by abstract source state, then by abstract target: the name of the upper
  // action's kind. Nested maps spare building a pair key per transition.
  const verdicts = new Map<string, Map<string, string>>();
  // lowerKind -> verdict -> transitions.
  const counts = new Map<string, Map<string, number>>();
  const lowerKind = options.lowerKind ?? (() => "step");
  let lastFrom: L | undefined;
  let lastMapped: U | undefined;
  let lastKey = "";
  let lastVerdicts = new Map<string, string>();

  const failure = (from: U, to: U, match: StepMatch<UA>): string => {
    const what =
      match.kind === "ambiguous"
        ? `matches ${match.names.length} ${upper.name} actions (${match.names.join(", ")}), not exactly one`
        : `is neither a stutter nor a step of any enabled ${upper.name} action`;
    return `the mapped step ${what}\nmapped state before:\n${upper.show(from)}\nmapped state after:\n${upper.show(to)}`;
  };
  const count = (kind: string, verdict: string): void => {
    let byVerdict = counts.get(kind);
    if (byVerdict === undefined) counts.set(kind, (byVerdict = new Map<string, number>()));
    byVerdict.set(verdict, (byVerdict.get(verdict) ?? 0) + 1);
  };

  return {
    name: mapping.name,
    get tally() {
      const out = new Map<string, number>();
      for (const [kind, byVerdict] of counts)
        for (const [verdict, n] of byVerdict) out.set(`${kind} |-> ${verdict}`, n);
      return out;
    },
    checkInit(state) {
      const mapped = map(state);
      if (initKeys.has(upper.key(mapped))) return undefined;
      return `the mapped initial state is not an initial state of ${upper.name}:\n${upper.show(mapped)}`;
    },
    checkStep(from, action, to) {
      if (from !== lastFrom) {
        lastFrom = from;
        lastMapped = map(from);
        lastKey = upper.key(lastMapped);
        let known = verdicts.get(lastKey);
        if (known === undefined) verdicts.set(lastKey, (known = new Map<string, string>()));
        lastVerdicts = known;
      }
      if (to === from) {
        count(lowerKind(action), "stutter");
        return undefined;
      }
      const mappedTo = map(to);
      const toKey = upper.key(mappedTo);
      let verdict = toKey === lastKey ? "stutter" : lastVerdicts.get(toKey);
      if (verdict === undefined) {
        const match = matchStep(upper, lastMapped!, mappedTo);
        if (match.kind !== "action") return failure(lastMapped!, mappedTo, match);
        verdict = kindOf(match.name);
        lastVerdicts.set(toKey, verdict);
      }
      count(lowerKind(action), verdict);
      return undefined;
    },
    summary() {
      return [...this.tally].sort(([a], [b]) => (a < b ? -1 : 1)).map(([line, n]) => `${line}: ${n}`);
    },
  };
}

/**
 * One step described in both specs: "Phase2b(a2) on 2a(1, v1) |-> VoteFor(a2, 1, v1)", or
 * "... |-> stutter", or an explanation of why it maps to nothing.
 */
export function describeStep<L, LA, U, UA>(
  lower: Spec<L, LA>,
  mapping: RefinementMapping<L, U, UA>,
  from: L,
  action: LA,
  to: L,
): string {
  const match = matchStep(mapping.upper, mapping.map(from), mapping.map(to));
  const left = lower.output(action, from);
  switch (match.kind) {
    case "stutter":
      return `${left} |-> stutter`;
    case "action":
      return `${left} |-> ${match.name}`;
    case "none":
      return `${left} |-> no ${mapping.upper.name} action`;
    case "ambiguous":
      return `${left} |-> ambiguous: ${match.names.join(", ")}`;
  }
}

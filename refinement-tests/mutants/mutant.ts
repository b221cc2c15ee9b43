/**
 * The shape of a deliberately broken variant of the protocol (the bug zoo). A mutant is a step
 * function built from impl/core with one rule replaced (`makeStep({ ...defaultRules, rule })`),
 * or a wrapper that reorders or filters the effects of the real step where the bug is in what
 * is carried out. Mutants live here only: production code has no bug flags.
 */
import {
  defaultRules,
  makeStep,
  step as realStep,
  type ReplicaRules,
  type Step,
} from "../../impl/core/testing/index.ts";
import type { ImplBounds } from "../explorer/model.ts";
import type { ReplicaTuning } from "../world/tuning.ts";

/**
 * Where the exhaustive explorer catches a mutant: the budgets over the explorer's defaults
 * (refinement-tests/explorer/model.ts) and the depth. These are the smallest budgets the bug
 * needs (a leader change needs a crash; a stale read needs a read), found by trying; the random
 * engine has no such per-bug settings.
 */
export interface ExplorerBounds {
  readonly bounds: Partial<ImplBounds>;
  readonly depth: number;
  /** Breadth first (default: every state within the depth, the shortest trace) or random walks. */
  readonly mode?: "bfs" | "random";
  /** Random walks: their seed (default 1). */
  readonly walkSeed?: number;
  /**
   * `--write-traces` keeps the explorer's catch beside the shortest (`NAME@rN-explorer.json`) where
   * another engine's is shorter: a route only a prelude of the random suite takes, re-run by
   * `npm test` so that the explorer's own stays checked.
   */
  readonly keepTrace?: boolean;
}

/** One broken variant. */
export interface Mutant {
  /** Kebab-case name, used by `npm run mutants` and `npm run check -- --mutant`. */
  readonly name: string;
  /** What is broken, in one sentence. */
  readonly description: string;
  /** The checks expected to catch it (any of them). */
  readonly expectedCatch: readonly string[];
  /** Which suite catches it: the safety suite, or (for liveness bugs) the liveness suite. */
  readonly mode: "safety" | "liveness";
  readonly step: Step;
  /**
   * Laid over every draw of the random suite that hunts it (`tuningOverrides`), after the hunt's
   * own tuning: the feature level and session table the bug lives at (the level 3 mutants take the
   * `opened-sessions` suite tuning's). The swarm's own draws stay at level 1. Default: none.
   */
  readonly randomTuning?: Partial<ReplicaTuning>;
  /** Where `npm run mutants -- --engine explore` looks (default: the explorer's defaults, depth 12). */
  readonly explore?: ExplorerBounds;
  /**
   * Where it looks with 5 or 7 initial members, when the bounds of `explore` (written for 3) do
   * not reach the bug there: a quorum of 7 needs more links cut, a prelude's pick chosen for 3
   * replicas builds another history with 7. Default: `explore`, with the replica count changed.
   */
  readonly exploreWith?: { readonly 5?: ExplorerBounds; readonly 7?: ExplorerBounds };
  /**
   * Where it looks at zero one-way delay (`npm run mutants -- --tuning zero-delay`), by replica
   * count, where its bounds with every hold made a loss do not reach the bug: a route that needs
   * no message delayed (a prelude that builds the history, a crash and restart where a hold stood
   * for a late message). Taken with no hold and with cuts that drop whatever these bounds say, so
   * every message is lost or delivered before true time moves. Default: `explore`/`exploreWith`
   * with every hold made a loss.
   */
  readonly exploreZeroDelay?: {
    readonly 3?: ExplorerBounds;
    readonly 5?: ExplorerBounds;
    readonly 7?: ExplorerBounds;
  };
}

/** Where the explorer hunts mutant `m` with `replicas` initial members (undefined: it does not). */
export function huntBounds(m: Mutant, replicas: number): ExplorerBounds | undefined {
  const own = replicas === 5 || replicas === 7 ? m.exploreWith?.[replicas] : undefined;
  return own ?? m.explore;
}

/** Where the explorer hunts mutant `m` at zero one-way delay with `replicas` members, if the mutant says. */
export function zeroDelayBounds(m: Mutant, replicas: number): ExplorerBounds | undefined {
  return replicas === 3 || replicas === 5 || replicas === 7 ? m.exploreZeroDelay?.[replicas] : undefined;
}

/** The rules each `withRules` step was built from (the trace explorer shows which rules a step applied). */
export const rulesOfStep = new WeakMap<Step, ReplicaRules>();

/** A step with some rules replaced. */
export function withRules(rules: Partial<ReplicaRules>): Step {
  const all = { ...defaultRules, ...rules };
  const step = makeStep(all);
  rulesOfStep.set(step, all);
  return step;
}

/**
 * The rules a mutant's step was assembled from (`withRules`), for tests that run the broken rule
 * through another harness (impl/core's scenarios and randomized runs); throws for a mutant that
 * rewrites effects instead.
 */
export function rulesOf(m: Mutant): ReplicaRules {
  const rules = rulesOfStep.get(m.step);
  if (rules === undefined) throw new Error(`mutant ${m.name} rewrites effects: it replaces no rule`);
  return rules;
}

/** The real step, with its effects rewritten. */
export function withEffects(rewrite: (effects: ReturnType<Step>["effects"]) => ReturnType<Step>["effects"]): Step {
  return (state, event) => {
    const r = realStep(state, event);
    return { state: r.state, effects: rewrite(r.effects) as typeof r.effects };
  };
}

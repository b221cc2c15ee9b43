/**
 * Lamport's Consensus (tlaplus/Examples, specifications/Paxos/Consensus.tla), transcribed:
 * one variable `chosen`, the set of chosen values; Next chooses one value when none has been
 * chosen; the invariant is Inv == TypeOK /\ Cardinality(chosen) <= 1 (at most one value is
 * ever chosen).
 *
 * Source material: "choose an order for them (consensus per input)": this is what each slot
 * of the replicated log must look like to its users. Voting implements it under
 * `chosen <- V!chosen`, and Paxos through Voting.
 *
 * Pure: no clock, no randomness; imports nothing of the project but spec/.
 */
import { permutations, valueName, valuesMax } from "./constants.ts";
import type { Invariant, Spec } from "./state-machine.ts";

/** A state of Consensus: the chosen values, as sorted value indices. */
export interface ConsensusState {
  readonly chosen: readonly number[];
}

/** The one action: Choose(v) is the disjunct of `\E v \in Value : chosen' = {v}` for v. */
export interface ConsensusAction {
  readonly _tag: "Choose";
  readonly v: number;
}

/** The constants of Consensus.tla, and which initial predicate to use. */
export interface ConsensusConstants {
  /** |Value|: the values are v1 .. vN. */
  readonly values: number;
  /**
   * `"Init"` (default): Init == chosen = {}. `"IInv"`: every state satisfying MCConsensus's
   * IInv == chosen \in SUBSET Value /\ Cardinality(chosen) <= 1, as in its ISpec, which checks
   * that Inv is inductive.
   */
  readonly init?: "Init" | "IInv";
}

/** `Consensus(constants)`: the spec for one set Value. */
export class Consensus implements Spec<ConsensusState, ConsensusAction> {
  readonly name: string = "Consensus";
  readonly values: number;
  readonly start: ConsensusState;
  readonly init: readonly ConsensusState[];
  readonly invariants: readonly Invariant<ConsensusState>[];
  readonly symmetries: readonly ((state: ConsensusState) => ConsensusState)[];
  private readonly allActions: readonly ConsensusAction[];

  constructor(constants: ConsensusConstants) {
    const n = constants.values;
    if (!Number.isInteger(n) || n < 1 || n > valuesMax)
      throw new RangeError(`values must be an integer between 1 and ${valuesMax}, got ${n}`);
    this.values = n;
    this.start = { chosen: [] };
    const singletons = Array.from({ length: n }, (_, v) => ({ chosen: [v] }));
    this.init = constants.init === "IInv" ? [this.start, ...singletons] : [this.start];
    this.allActions = Array.from({ length: n }, (_, v) => ({ _tag: "Choose", v }));
    this.invariants = [
      { name: "TypeOK", statement: "chosen \\subseteq Value /\\ IsFiniteSet(chosen)", check: (s) => this.TypeOK(s) },
      { name: "Inv", statement: "Cardinality(chosen) <= 1: at most one value is chosen", check: (s) => this.Inv(s) },
    ];
    this.symmetries = permutations(n)
      .slice(1)
      .map((perm) => (s: ConsensusState) => ({ chosen: s.chosen.map((v) => perm[v]!).sort((x, y) => x - y) }));
  }

  /** Build a state from any list of values (sorted, duplicates dropped). */
  make(chosen: readonly number[]): ConsensusState {
    return { chosen: [...new Set(chosen)].sort((x, y) => x - y) };
  }

  /** TypeOK == chosen \subseteq Value /\ IsFiniteSet(chosen). */
  TypeOK(s: ConsensusState): string | undefined {
    for (const v of s.chosen)
      if (!Number.isInteger(v) || v < 0 || v >= this.values) return `chosen holds ${v}, which is not in Value`;
    return undefined;
  }

  /** The safety conjunct of Inv: Cardinality(chosen) <= 1. */
  Inv(s: ConsensusState): string | undefined {
    if (s.chosen.length > 1) return `chosen = ${this.showChosen(s)} has ${s.chosen.length} values`;
    return undefined;
  }

  actions(): readonly ConsensusAction[] {
    return this.allActions;
  }

  /** Next == chosen = {} /\ \E v \in Value : chosen' = {v}. */
  enabled(_action: ConsensusAction, s: ConsensusState): boolean {
    return s.chosen.length === 0;
  }

  transition(action: ConsensusAction): ConsensusState {
    return { chosen: [action.v] };
  }

  output(action: ConsensusAction): string {
    return `Choose(${valueName(action.v)})`;
  }

  key(s: ConsensusState): string {
    return s.chosen.join(",");
  }

  show(s: ConsensusState): string {
    return `/\\ chosen = ${this.showChosen(s)}`;
  }

  private showChosen(s: ConsensusState): string {
    return `{${s.chosen.map(valueName).join(", ")}}`;
  }
}

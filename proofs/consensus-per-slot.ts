/**
 * The abstraction from Voting (per slot) to Lamport's Consensus (Consensus.tla), one instance
 * per slot, and the checks at that level:
 *   chosen[slot] == {v : \E b : ChosenAt(b, v)}  (Voting.tla's `chosen`, from the ghost votes)
 * Each step must map, in every slot's instance, to a stutter or to Choose(v) with chosen = {}
 * (checked with the step-refinement checker's `matchStep` against spec/consensus.ts itself),
 * so Consensus.tla's Inv (at most one value chosen) holds per slot. LearnedIsChosen: every value
 * a replica writes into its log (a `chosen` record) is the value chosen at that slot.
 *
 * Step bundling: one world step can complete quorums at several slots (a flushed vote record
 * per slot); each slot's instance then takes its own Choose. See proofs/consensus-service.md.
 */
import { Consensus, type ConsensusState } from "../spec/consensus.ts";
import { valuesEqual, type Value } from "../impl/core/testing/index.ts";
import { matchStep } from "./refinement.ts";
import { violated, type Tally } from "./violation.ts";
import type { ChosenEvent } from "./voting-per-slot.ts";

/** The spec every slot's instance is checked against (immutable, shared by every ghost). */
const consensusOfTwo = new Consensus({ values: 2 });

/** The Consensus-per-slot ghost: the value chosen at each slot. */
export class ConsensusGhost<I> {
  /** chosen[slot]: the value chosen there (Consensus.tla's chosen = {value}). */
  get chosen(): ReadonlyMap<number, { readonly key: string; readonly value: Value<I>; readonly ballot: number }> {
    return this.values;
  }
  private values = new Map<number, { readonly key: string; readonly value: Value<I>; readonly ballot: number }>();
  /** `values` is shared with a fork (or the ghost forked from): copy it before a change. */
  private borrowed = false;
  /** Two values per instance are enough: a second chosen value is already the violation. */
  private readonly spec = consensusOfTwo;

  constructor(
    private readonly tally: Tally,
    private readonly onChosen: (slot: number, value: Value<I>) => void,
  ) {}

  /** Take over `other`'s chosen values (the explorer forks the checker; see VotingGhost.copyFrom). */
  copyFrom(other: ConsensusGhost<I>): void {
    // Copy on write: a slot is chosen at few steps, and a fork is made per explored state.
    this.values = other.values;
    this.borrowed = other.borrowed = true;
  }

  /** A quorum voted for one value in one ballot at a slot (from the Voting level). */
  choose(e: ChosenEvent<I>): void {
    const known = this.chosen.get(e.slot);
    const before: ConsensusState = known === undefined ? { chosen: [] } : { chosen: [0] };
    if (known !== undefined && known.key === e.key) return;
    const after: ConsensusState = known === undefined ? { chosen: [0] } : { chosen: [0, 1] };
    const match = matchStep(this.spec, before, after);
    if (match.kind !== "action") {
      violated({
        check: `refines Consensus[slot ${e.slot}]`,
        level: "Consensus",
        message: `slot ${e.slot}: ${e.key} is chosen in ballot ${e.ballot}, but ${known!.key} was already chosen in ballot ${known!.ballot}: the step is no Consensus action (Choose needs chosen = {}), and Inv (Cardinality(chosen) <= 1) fails`,
        before: `${this.spec.show(before)}\n   v1 = ${known?.key ?? "-"}`,
        after: `${this.spec.show(after)}\n   v1 = ${known?.key ?? "-"}\n   v2 = ${e.key}`,
        action: "Choose(v2)",
      });
    }
    if (this.borrowed) {
      this.values = new Map(this.values);
      this.borrowed = false;
    }
    this.values.set(e.slot, { key: e.key, value: e.value, ballot: e.ballot });
    this.tally.add("Consensus: Choose");
    this.onChosen(e.slot, e.value);
  }

  /** LearnedIsChosen: replica `replica` wrote `value` into its log at `slot`. */
  learned(replica: number, slot: number, value: Value<I>): void {
    const c = this.chosen.get(slot);
    if (c !== undefined && valuesEqual(c.value, value)) return;
    violated({
      check: "LearnedIsChosen",
      level: "Consensus",
      message:
        c === undefined
          ? `replica ${replica} learned ${JSON.stringify(value)} at slot ${slot}, but nothing is chosen there (no quorum of durable votes in one ballot)`
          : `replica ${replica} learned ${JSON.stringify(value)} at slot ${slot}, but ${c.key} is chosen there`,
    });
  }
}

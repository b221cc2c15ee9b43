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
 *
 * A chosen value is kept whole until the levels above have applied it (`release`, once the
 * Service's prefix passed its slot), then held by its digest (proofs/held.ts): every later check
 * compares it as held forms (LearnedIsChosen, ExecutedPrefixAgreement).
 */
import { Consensus, type ConsensusState } from "../spec/consensus.ts";
import { valuesEqual, type Value } from "../impl/core/testing/index.ts";
import { digestLarge, sameHeld } from "./held.ts";
import { matchStep } from "./refinement.ts";
import { violated, type Tally } from "./violation.ts";
import type { ChosenEvent } from "./voting-per-slot.ts";

/** The spec every slot's instance is checked against (immutable, shared by every ghost). */
const consensusOfTwo = new Consensus({ values: 2 });

/** The Consensus-per-slot ghost: the value chosen at each slot. */
export class ConsensusGhost<I> {
  /**
   * chosen[slot]: the value chosen there (Consensus.tla's chosen = {value}), whole until released,
   * then held (proofs/held.ts).
   */
  get chosen(): ReadonlyMap<number, { readonly key: string; readonly value: Value<I>; readonly ballot: number }> {
    return this.values;
  }
  private values = new Map<number, { readonly key: string; readonly value: Value<I>; readonly ballot: number }>();
  /** `values` is shared with a fork (or the ghost forked from): copy it before a change. */
  private borrowed = false;
  /** The slots whose value is still kept whole and holds a long string (to be held once released). */
  private whole: number[] = [];
  /** Two values per instance are enough: a second chosen value is already the violation. */
  private readonly spec = consensusOfTwo;

  constructor(
    private readonly tally: Tally,
    private readonly onChosen: (slot: number, value: Value<I>) => void,
    /**
     * The last slot the levels above have applied (told after `onChosen`): the values up to it are
     * held by their digest from then on. Default: none is (every value kept whole).
     */
    private readonly appliedUpTo: () => number = () => 0,
  ) {}

  /** Take over `other`'s chosen values (the explorer forks the checker; see VotingGhost.copyFrom). */
  copyFrom(other: ConsensusGhost<I>): void {
    // Copy on write: a slot is chosen at few steps, and a fork is made per explored state.
    this.values = other.values;
    this.borrowed = other.borrowed = true;
    this.whole = other.whole.slice();
  }

  /** Chosen values kept whole so far that hold a long string (for the tests of what is held). */
  get keptWhole(): number {
    return this.whole.length;
  }

  /** Hold the values of the slots up to `upTo` by their digest: the levels above applied them. */
  private release(upTo: number): void {
    if (!this.whole.some((slot) => slot <= upTo)) return;
    if (this.borrowed) {
      this.values = new Map(this.values);
      this.borrowed = false;
    }
    this.whole = this.whole.filter((slot) => {
      if (slot > upTo) return true;
      const c = this.values.get(slot)!;
      this.values.set(slot, { key: c.key, value: digestLarge(c.value), ballot: c.ballot });
      return false;
    });
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
    // A key with a digest in it: the value holds a long string (proofs/held.ts, `heldKey`).
    if (e.key.includes("\\u0000sha256:")) this.whole.push(e.slot);
    this.tally.add("Consensus: Choose");
    this.onChosen(e.slot, e.value);
    this.release(this.appliedUpTo());
  }

  /** LearnedIsChosen: replica `replica` wrote `value` (whole or held) into its log at `slot`. */
  learned(replica: number, slot: number, value: Value<I>): void {
    const c = this.chosen.get(slot);
    if (c !== undefined && sameHeld(c.value, value, valuesEqual)) return;
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

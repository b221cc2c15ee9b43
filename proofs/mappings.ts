/**
 * The refinement mappings of Lamport's Paxos hierarchy, as named pure functions:
 *
 *   Paxos -> Voting     votingOf:    maxBal <- maxBal, votes <- votes, where
 *                                    votes[a] == {<<m.bal, m.val>> : 2b messages m from a}
 *                                    (Paxos.tla: `V == INSTANCE Voting`)
 *   Voting -> Consensus consensusOf: chosen <- V!chosen, where
 *                                    chosen == {v \in Value : \E b \in Ballot : ChosenAt(b, v)}
 *                                    (Voting.tla: `C == INSTANCE Consensus`)
 *
 * and the RefinementMappings that the step-refinement checker consumes. The state functions
 * `votes` and `chosen` are defined where Lamport defines them (Paxos.instanceV, Voting.chosen);
 * this module names the substitutions and never re-implements them.
 */
import { Consensus, type ConsensusAction, type ConsensusState } from "../spec/consensus.ts";
import type { PaxosAction } from "../spec/paxos.ts";
import type { Spec } from "../spec/state-machine.ts";
import type { Voting, VotingAction, VotingState } from "../spec/voting.ts";
import { refinementCheck, type RefinementCheck, type RefinementMapping } from "./refinement.ts";

/**
 * Paxos in either encoding (spec/paxos.ts, spec/compact/paxos.ts): its states S, its actions,
 * V == INSTANCE Voting and the state of V a state maps to.
 */
export interface PaxosSpec<S> extends Spec<S, PaxosAction> {
  readonly V: Voting;
  readonly constants: { readonly values: number };
  instanceV(s: S): VotingState;
}

/**
 * A pure function that remembers its last argument (by identity) and result. The checks of
 * one exploration map the same state one after the other (Paxos => Voting, then Paxos =>
 * Consensus through Voting), so one remembered pair spares the second computation.
 */
function rememberingLast<A extends object, B>(f: (a: A) => B): (a: A) => B {
  let lastIn: A | undefined;
  let lastOut: B | undefined;
  return (a) => {
    if (a !== lastIn) {
      lastOut = f(a);
      lastIn = a;
    }
    return lastOut!;
  };
}

/** Paxos -> Voting: the state of V == INSTANCE Voting in Paxos.tla. */
export function votingOf<S extends object>(paxos: PaxosSpec<S>): (s: S) => VotingState {
  return rememberingLast((s: S) => paxos.instanceV(s));
}

/** Voting -> Consensus: chosen <- V!chosen, the values some quorum voted for in one ballot. */
export function consensusOf(voting: Voting): (s: VotingState) => ConsensusState {
  return rememberingLast((s: VotingState) => ({ chosen: voting.chosen(s) }));
}

/** THEOREM Spec => V!Spec of Paxos.tla, as a mapping to check. */
export function paxosRefinesVoting<S extends object>(
  paxos: PaxosSpec<S>,
  toVoting = votingOf(paxos),
): RefinementMapping<S, VotingState, VotingAction> {
  return { name: "Paxos => Voting", upper: paxos.V, map: toVoting };
}

/** THEOREM Spec => C!Spec of Voting.tla, as a mapping to check. */
export function votingRefinesConsensus(
  voting: Voting,
): RefinementMapping<VotingState, ConsensusState, ConsensusAction> {
  return {
    name: "Voting => Consensus",
    upper: new Consensus({ values: voting.constants.values }),
    map: consensusOf(voting),
  };
}

/**
 * Paxos => Consensus through Voting (THEOREM Spec => V!C!Spec, the transitivity remark at
 * the end of Paxos.tla): chosen <- V!chosen with votes <- votes.
 */
export function paxosRefinesConsensus<S extends object>(
  paxos: PaxosSpec<S>,
  toVoting = votingOf(paxos),
): RefinementMapping<S, ConsensusState, ConsensusAction> {
  const toConsensus = consensusOf(paxos.V);
  return {
    name: "Paxos => Consensus",
    upper: new Consensus({ values: paxos.constants.values }),
    map: (s) => toConsensus(toVoting(s)),
  };
}

/** The refinement checks run when exploring Paxos: to Voting and, through it, to Consensus. */
export function paxosChecks<S extends object>(paxos: PaxosSpec<S>): RefinementCheck<S, PaxosAction>[] {
  const lowerKind = (a: PaxosAction): string => a._tag;
  const toVoting = votingOf(paxos);
  return [
    refinementCheck(paxosRefinesVoting(paxos, toVoting), { lowerKind }),
    refinementCheck(paxosRefinesConsensus(paxos, toVoting), { lowerKind }),
  ];
}

/** The refinement check run when exploring Voting: to Consensus. */
export function votingChecks(voting: Voting): RefinementCheck<VotingState, VotingAction>[] {
  return [refinementCheck(votingRefinesConsensus(voting), { lowerKind: (a) => a._tag })];
}

/**
 * The leader assumes its own vote: when a follower's Accepted arrives, it takes the slot as chosen
 * if that vote and its own, not yet known durable, make a quorum, and answers the client. It never
 * records the own vote among the proposal's acks before `VoteDurable` (so CountedVotesDurable, which
 * reads the acks, sees nothing): the bug shows only where the reply leaves before the vote is on
 * disk, which is where the runtime puts a reply (a `chosen` record holds back nothing). There a
 * crash erases the vote, and the slot the client was answered for may be chosen otherwise.
 */
import {
  compareBallots,
  step as realStep,
  type Leader,
  type ReplicaEvent,
  type ReplicaState,
} from "../../impl/core/testing/index.ts";
import type { Mutant } from "./mutant.ts";

/** `state` with the leader's proposal at `slot` given `acks` (the state as it is when it has none). */
function withAcks<S, I, O>(state: ReplicaState<S, I, O>, slot: number, acks: (was: number) => number) {
  const leader = state.role;
  if (leader._tag !== "leader") return state;
  const index = slot - leader.inflightBase;
  const proposal = leader.inflight[index];
  if (proposal === undefined) return state;
  const inflight = leader.inflight.slice();
  inflight[index] = { ...proposal, acks: acks(proposal.acks) };
  const role: Leader<I> = { ...leader, inflight };
  return { ...state, role };
}

function assumed<S, I, O>(state: ReplicaState<S, I, O>, event: ReplicaEvent<I>) {
  const leader = state.role;
  const own = state.acceptor.ownVotes;
  if (event._tag !== "Receive" || event.message._tag !== "Accepted" || leader._tag !== "leader" || own === null)
    return realStep(state, event);
  const slot = event.message.slot;
  const proposal = leader.inflight[slot - leader.inflightBase];
  const self = proposal?.voters.indexOf(state.ctx.config.self) ?? -1;
  const pending = compareBallots(own.ballot, leader.ballot) === 0 && slot > own.durableUpTo;
  if (proposal === undefined || self < 0 || !pending || (proposal.acks & (1 << self)) !== 0)
    return realStep(state, event);
  // Count the own vote for this step only, then take the count back out of the acks.
  const bit = 1 << self;
  const result = realStep(
    withAcks(state, slot, (acks) => acks | bit),
    event,
  );
  return { state: withAcks(result.state, slot, (acks) => acks & ~bit), effects: result.effects };
}

export const ownVoteAssumed: Mutant = {
  name: "own-vote-assumed",
  description:
    "the leader takes a slot as chosen, and answers, when a follower's vote and its own not yet durable vote make a quorum",
  expectedCatch: ["ExecutedPrefixAgreement", "refines Consensus", "LearnedIsChosen", "RepliesMatchSpec"],
  mode: "safety",
  step: assumed,
  explore: { bounds: { reads: 0 }, depth: 4 },
};

/**
 * The leader's own vote counted before it is durable: the driver feeds the core `VoteDurable` as
 * soon as the vote is handed to storage, in the step that cast it, while the record still waits
 * in the buffer (its Persist holds nothing back). A crash then erases a vote of a quorum the
 * leader counted, and the slot it answered for may be chosen otherwise.
 */
import {
  step as realStep,
  type ReplicaEffect,
  type ReplicaEvent,
  type ReplicaState,
} from "../../impl/core/testing/index.ts";
import type { Mutant } from "./mutant.ts";

function early<S, I, O>(state: ReplicaState<S, I, O>, event: ReplicaEvent<I>) {
  const first = realStep(state, event);
  let s = first.state;
  const effects: ReplicaEffect<I, O>[] = [...first.effects];
  for (const e of first.effects) {
    if (e._tag !== "Persist" || e.notify === undefined) continue;
    const told = realStep(s, { _tag: "VoteDurable", now: event.now, ...e.notify });
    s = told.state;
    effects.push(...told.effects);
  }
  return { state: s, effects };
}

export const ownVoteCountedBeforeDurable: Mutant = {
  name: "own-vote-counted-before-durable",
  description:
    "the leader is told its own vote is durable as soon as it is handed to storage, before the write returns",
  expectedCatch: ["CountedVotesDurable", "refines Consensus", "ExecutedPrefixAgreement", "LearnedIsChosen"],
  mode: "safety",
  step: early,
  explore: { bounds: { reads: 0 }, depth: 4 },
};

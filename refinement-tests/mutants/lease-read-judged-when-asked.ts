/**
 * Rule V4 judged at the wrong instant: a read by lease that waited for a value at rest is judged
 * against the lease as of when it arrived, not when the value is back (`entriesRead` serves it
 * again as if it arrived then). A leader paused, or cut off, while its storage thread reads the
 * value comes back after another replica has led and acknowledged a write, still believing it
 * leads: it answers the read from its old state. LeaseReadFresh catches it (a read served again
 * must reflect what clients observed by then); the `lateRead` prelude with pick 1 builds that
 * history (refinement-tests/world/preludes.ts).
 *
 * Its answers stay linearizable: the read was invoked before the other leader's write, its
 * replica held the lease when it arrived, and the state it answers from is that of a chosen
 * prefix at least as long, so the read may be linearized at its arrival; the history checker
 * passes its trace. What it breaks is V4 as the core states it (proofs/store-at-rest.md, "Where
 * V4 meets the other features"), not a property a client can see.
 */
import { defaultRules, makeStep, step as realStep, type Step } from "../../impl/core/testing/index.ts";
import type { Mutant } from "./mutant.ts";
import { valuesAtRestTuning } from "./values-at-rest.ts";

/** The clock reading the waiting reads are judged at, while the broken step runs (null: the event's). */
let askedAt: number | null = null;

const judgedWhenAsked = makeStep({
  ...defaultRules,
  canServeLeaseRead: (rules, state, now) => defaultRules.canServeLeaseRead(rules, state, askedAt ?? now),
});

const step: Step = (state, event) => {
  const waiting = state.learner.waitingReads;
  if (event._tag !== "EntriesRead" || waiting.length === 0) return realStep(state, event);
  askedAt = Math.min(...waiting.map((req) => req.now));
  try {
    return judgedWhenAsked(state, event);
  } finally {
    askedAt = null;
  }
};

export const leaseReadJudgedWhenAsked: Mutant = {
  name: "lease-read-judged-when-asked",
  description:
    "a read by lease that waited for a value at rest is judged against the lease as of its arrival, not as of the value's return",
  expectedCatch: ["LeaseReadFresh"],
  mode: "safety",
  randomTuning: valuesAtRestTuning,
  step,
};

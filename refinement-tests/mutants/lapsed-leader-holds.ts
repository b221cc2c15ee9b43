/**
 * Rule L6 without its leader half: a leader whose lease has lapsed keeps its self-grant when it
 * meets a higher ballot, as every leader did before the give-way. Safe, but a leader resumed after
 * a stall of its own longer than its lease (a starved machine, a SIGSTOP) renews its self-grant
 * with its first heartbeat and refuses the candidates that campaigned meanwhile; it yields only
 * when their Nacks show it a higher promise, and the candidates then need a resend, one more round
 * trip. With CheckQuorum counting the time the leader ran (the default), the stall does not step
 * the leader down by itself, so the liveness phase's election race (every election timer fires in
 * one tick, and no leaseholder follows before time moves: LivenessElectionRace) catches it.
 */
import { defaultRules } from "../../impl/core/testing/index.ts";
import type { ExplorerBounds, Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

/**
 * The explorer's bounded liveness, as for self-grant-kept: the race at the end of the continuation,
 * here after the leaderLost prelude with pick 32, which leaves two voters, so that the candidate
 * needs the leader's promise (with three, the two candidates elect each other without it).
 */
const race = (pick: number): ExplorerBounds => ({
  bounds: { writes: 0, reads: 0, prelude: "leaderLost", pick, orders: "fifo", liveness: true },
  depth: 4,
});

export const lapsedLeaderHolds: Mutant = {
  name: "lapsed-leader-holds",
  description: "a leader whose lease lapsed keeps its self-grant on meeting a higher ballot, a round trip longer",
  expectedCatch: ["LivenessElectionRace", "LivenessLeaseholder", "Liveness"],
  mode: "liveness",
  step: withRules({
    yieldsToHigherBallot: (rules, role, ballot, now) =>
      role._tag === "candidate" && defaultRules.yieldsToHigherBallot(rules, role, ballot, now),
  }),
  explore: race(32),
};

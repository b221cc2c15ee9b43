/**
 * CheckQuorum: a leader that no quorum of the configuration in force has answered for an election
 * timeout of the time it ran steps down: it is cut off, followers elsewhere are electing a new
 * leader, and its clients are better redirected. Time it did not run is not counted: a leader is
 * stepped at least once a heartbeat interval (its heartbeat is its timer), so an event that comes
 * later than that after the one before ends a stall, a span in which the process was stopped or
 * waited for a core, not one in which its peers failed to answer. Without this, a leader paused
 * longer than an election timeout (a loaded machine, a SIGSTOP, a long GC) stepped down on its
 * first tick after the stall, before it could read the answers waiting in its sockets.
 *
 * On with the configuration's `checkQuorumCountsRunTime`, on by default; off, the clock counts. A
 * leader resumed after a stall longer than its lease still gives way at once to the followers that
 * campaigned meanwhile (rule L6, lease.ts `yieldsToHigherBallot`). It decides only when a leader
 * gives up leading by itself. It never lengthens a lease (rule L2 counts the
 * clock from the grants' send times) nor shortens the time an acceptor refuses other ballots (rule
 * L1, the acceptor's own clock): proofs/leases.md, "CheckQuorum counts the time the leader ran".
 */
import { configurationFor } from "./configuration.ts";
import { leaseFromConfiguration } from "./lease.ts";
import type { ReplicaRules } from "./rules.ts";
import { copyLeader, copyReplica, type Leader, type ReplicaState, type Stall } from "./state.ts";

/** Stalls a leader remembers; beyond, the oldest is forgotten (counted as run: it steps down sooner, never later). */
export const stallsMax = 16;

/** Where CheckQuorum counts from: the send time of the latest grant request a quorum answered, or the election. */
export function checkQuorumOrigin<S, I, O>(rules: ReplicaRules, state: ReplicaState<S, I, O>, role: Leader<I>): number {
  const inForce = configurationFor(state.learner.configs, state.learner.executedUpTo + 1);
  return Math.max(leaseFromConfiguration(rules, role.peers, role.grantSentAt, inForce), role.electedAt);
}

/** Milliseconds of `stalls` within [from, to]. */
export function stalledWithin(stalls: readonly Stall[], from: number, to: number): number {
  let ms = 0;
  for (const s of stalls) ms += Math.max(0, Math.min(s.to, to) - Math.max(s.from, from));
  return ms;
}

/** Whether CheckQuorum steps the leader down at `now`: an election timeout of time run passed without a quorum. */
export function checkQuorumFails<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  role: Leader<I>,
  now: number,
): boolean {
  const from = checkQuorumOrigin(rules, state, role);
  // Without `checkQuorumCountsRunTime` no stall is ever noted: the clock counts.
  return now - from - stalledWithin(role.stalls, from, now) >= state.ctx.config.electionTimeoutMsMin;
}

/**
 * Note that a leader stepped last at `previous` is stepped again only at `now`: past one heartbeat
 * interval, the rest is a stall. Stalls that end before CheckQuorum's origin no longer matter.
 */
export function noteStall<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  previous: number,
  now: number,
): ReplicaState<S, I, O> {
  const role = state.role;
  const due = previous + state.ctx.config.heartbeatIntervalMs;
  if (role._tag !== "leader" || !(now > due) || !state.ctx.config.checkQuorumCountsRunTime) return state;
  const from = checkQuorumOrigin(rules, state, role);
  const kept = role.stalls.filter((s) => s.to > from);
  kept.push({ from: due, to: now });
  const leader = copyLeader(role);
  leader.stalls = kept.length > stallsMax ? kept.slice(kept.length - stallsMax) : kept;
  const s = copyReplica(state);
  s.role = leader;
  return s;
}

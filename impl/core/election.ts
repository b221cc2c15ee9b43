/**
 * Leader election: when a follower has heard nothing from a leader for a randomized timeout on its
 * own clock, it campaigns with a ballot above every round it has seen; a candidate that meets a
 * higher ballot backs off, and one whose phase 1 stalls retries with a new ballot after a new
 * random timeout. Randomness comes only from a mulberry32 generator whose state lives in the
 * replica state, seeded from the configuration and the replica id, so runs replay exactly.
 *
 * Election affects liveness only: safety never depends on who campaigns or when, provided a
 * replica never starts a campaign while a lease grant it gave to another ballot is in force: its
 * election timer, restarted at every grant and longer than the lease, sees to that (rule L5).
 */
import type { Ballot } from "./ballot.ts";
import { configurationFor } from "./configuration.ts";
import type { ReplicaRules } from "./rules.ts";
import { copyElection, withElection, type ReplicaState } from "./state.ts";

/** mulberry32: the next state and a uniformly distributed unsigned 32-bit output. */
export function mulberry32(prng: number): { readonly prng: number; readonly value: number } {
  const next = (prng + 0x6d2b79f5) >>> 0;
  let t = next;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return { prng: next, value: (t ^ (t >>> 14)) >>> 0 };
}

/**
 * Restart the election timer at `now` with a fresh timeout drawn uniformly from
 * [electionTimeoutMsMin, electionTimeoutMsMax]. Drawn at every role change and promise, so that
 * replicas that time out together once rarely do so again.
 */
export function restartElectionTimer<S, I, O>(state: ReplicaState<S, I, O>, now: number): ReplicaState<S, I, O> {
  const { electionTimeoutMsMin: min, electionTimeoutMsMax: max } = state.ctx.config;
  const drawn = mulberry32(state.election.prng);
  const timeoutMs = min + (drawn.value % (max - min + 1));
  const election = copyElection(state.election);
  election.prng = drawn.prng;
  election.heardAt = now;
  election.timeoutMs = timeoutMs;
  return withElection(state, election);
}

/** The current leader was heard from at `now`: the timer starts over, with the same timeout. */
export function resetElectionTimer<S, I, O>(state: ReplicaState<S, I, O>, now: number): ReplicaState<S, I, O> {
  if (state.election.heardAt === now) return state;
  const election = copyElection(state.election);
  election.heardAt = now;
  return withElection(state, election);
}

/** Note a round seen in some ballot, so that the next campaign goes above it. */
export function noteRound<S, I, O>(state: ReplicaState<S, I, O>, ballot: Ballot): ReplicaState<S, I, O> {
  if (ballot.round <= state.election.roundSeen) return state;
  const election = copyElection(state.election);
  election.roundSeen = ballot.round;
  return withElection(state, election);
}

/** The ballot this replica would campaign with next: above every round it has seen or promised. */
export function nextBallot<S, I, O>(state: ReplicaState<S, I, O>): Ballot {
  return { round: Math.max(state.acceptor.maxBal.round, state.election.roundSeen) + 1, replica: state.ctx.config.self };
}

/**
 * Rule L5: only a voter of the configuration that governs its first unexecuted slot campaigns:
 * learners and removed replicas never do. Nor does a voter whose
 * removal is chosen (retired in the latest configuration it holds): the voters that stay can
 * decide the window's remaining slots, with its votes, which it keeps giving until it retires;
 * its campaigns would only disturb them. Unless no voter that stays is a voter of that governing
 * configuration (a removal and a promotion chosen in one alpha window): then the staying voters
 * may not campaign for those slots, so a retiring voter still does, or nobody could decide them.
 * Nor does a replica fetching a snapshot (a transfer in progress): its next slot lies below its
 * peers' truncation points, so no quorum's Promises can cover it (rule T2) and it cannot be
 * elected until the transfer ends, yet each campaign would bind its own vote to its ballot for a
 * lease and refuse a voter that is up to date. A transfer that stops making progress is
 * abandoned after an election timeout, so this waits a bounded time.
 *
 * Elections wait for grants without asking here: every grant a follower gives, and its restart
 * wait, restarts its election timer at the same reading, and `electionTimeoutMsMin > leaseMs`
 * (the configuration refuses otherwise), so when the timer fires no grant to another ballot is in
 * force and the restart wait is over: the replica can promise its own ballot (proofs/leases.md,
 * "Rule L5"; phase 1b asserts it).
 */
export function mayCampaign<S, I, O>(_rules: ReplicaRules, state: ReplicaState<S, I, O>, _now: number): boolean {
  if (state.halted !== null || !state.started || state.role._tag !== "follower") return false;
  if (state.learner.transfer !== null) return false;
  const self = state.ctx.config.self;
  const configs = state.learner.configs;
  const governing = configurationFor(configs, state.learner.executedUpTo + 1);
  if (!governing.voters.includes(self)) return false;
  const latest = configs[configs.length - 1]!;
  return !latest.retired.includes(self) || !governing.voters.some((v) => latest.voters.includes(v));
}

/** Is the election deadline reached? */
export function electionDue<S, I, O>(state: ReplicaState<S, I, O>, now: number): boolean {
  return now >= state.election.heardAt + state.election.timeoutMs;
}

/**
 * A follower last stepped at `previous`, before its election deadline, and stepped again only at
 * `now`, more than a heartbeat interval past it, was stalled (config `electionWaitsAfterStall`):
 * its timer did not fire when due, so the silence it would act on is its own. It waits for its
 * leader before it campaigns: the deadline moves to `now` plus a heartbeat interval, and the
 * event at hand (a heartbeat, say) may reset it as usual. A follower that ran again more than
 * an election timeout past its deadline (`now - deadline > electionTimeoutMsMin`: its process was
 * stopped, as a paused machine or SIGSTOP stops every process of the cluster at once, not merely
 * late for a core) waits its whole election timeout from `now` instead: its leader, stopped with
 * it, must be scheduled again before its first heartbeat leaves, and on a loaded machine that took
 * longer than a heartbeat interval after a thaw (bench/thaw-leader.ts, docs/performance.md). A
 * follower whose leader died and whose timer merely fires late still waits one heartbeat
 * interval. Once per stall: the next step finds `previous` past the deadline. Elections only move
 * later (rule L5 unchanged).
 */
export function waitAfterStall<S, I, O>(
  state: ReplicaState<S, I, O>,
  previous: number,
  now: number,
): ReplicaState<S, I, O> {
  const config = state.ctx.config;
  if (!config.electionWaitsAfterStall || state.role._tag !== "follower") return state;
  const due = state.election.heardAt + state.election.timeoutMs;
  if (!(previous < due && now > due + config.heartbeatIntervalMs)) return state;
  const waitMs = now - due > config.electionTimeoutMsMin ? state.election.timeoutMs : config.heartbeatIntervalMs;
  const election = copyElection(state.election);
  election.heardAt = now + waitMs - state.election.timeoutMs;
  return withElection(state, election);
}

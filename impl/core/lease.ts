/**
 * The lease, in one place: how an acceptor grants one and how long the grant binds it, the
 * restart wait that stands in for grants a crash forgot, how a leader counts the grants it holds
 * and when its lease expires by its own clock, and when it may answer a read by lease. The rules
 * are named as docs/impl.md section 8 states them (L1 to L6), each with its hazard there; the
 * spec is `spec/lease.ts` (Acquire, Renew, Expire over true time), and `proofs/leases.ts` maps
 * every replica onto it: a replica holds the spec's lease while `canServeLeaseRead` holds.
 *
 * | spec/lease.ts          | here                                                               |
 * | ---------------------- | ------------------------------------------------------------------ |
 * | Acquire(p), Renew(p)   | `recordGrant`: a quorum of grants moves `leaseUntil` (L2)           |
 * | expiry[p]              | `leaseExpiry(leaseFrom)` on p's clock, placed on true time         |
 * | Holds(p)               | `canServeLeaseRead` (L3)                                           |
 * | Expire(p)              | p's clock passes `leaseUntil`; `dropSelfGrant` when it steps down |
 * | (the guard of Acquire) | the grant an acceptor gives (`grant`, L1) and the restart wait (L4) |
 *
 * The acceptor side binds: whoever promises or votes for a ballot, or acknowledges its
 * heartbeat, grants it a lease and helps no other ballot until its own clock reads
 * `grantUntilFor(now)` (`canPromise` in acceptor.ts enforces it). The leader side trusts less than
 * it was granted: it counts from the send time of the request a quorum answered and shortens the
 * lease by the drift bound and a margin, so that it stops trusting its lease before any grant
 * behind it could have run out. Elections wait for grants (rule L5) in election.ts; the self-grant
 * of a candidate, or of a leader whose lease lapsed, yields to a higher ballot, and a deposed
 * leader's dies with its leadership (rule L6).
 *
 * It must never let a lease hold without a quorum of grants in the configuration that governs the
 * leader's next slot to execute, never count a grant from a send time later than
 * the request's, and never let a read be answered by lease before phase 1 has revealed, and the
 * leader executed, every vote that could have been chosen above its executed prefix.
 */
import { ballotZero, type Ballot } from "./ballot.ts";
import { leaderLeaseMs, type Config } from "./config.ts";
import { fail } from "./assert.ts";
import { sameIds, type Configuration } from "./configuration.ts";
import type { ReplicaId } from "./events.ts";
import type { PromiseRecord } from "./records.ts";
import { peerIndex, phase1CoversAbove } from "./quorums.ts";
import type { ReplicaRules } from "./rules.ts";
import {
  copyAcceptor,
  copyLeader,
  type AcceptorState,
  type Draft,
  type GrantTimes,
  type Leader,
  type ReplicaState,
  type Role,
} from "./state.ts";

// ---------------------------------------------------------------------------------------------
// The grant (acceptor side): rules L1, L4, L6.

/** Rule L1: a grant given at own clock reading `now` holds until `now + leaseMs` on the same clock. */
export function grantUntilFor(now: number, config: Config): number {
  return now + config.leaseMs;
}

/**
 * Rule L4: a replica that restarts at own clock reading `now` helps no ballot but its durable maxBal
 * until `now + leaseMs`. Any grant it gave before the crash was given before the restart and lasts
 * `leaseMs` of a clock that runs at most (1 + rho) fast, so it has run out by then.
 */
export function restartWaitUntil(now: number, config: Config): number {
  return now + config.leaseMs;
}

/** Grant a lease to `ballot` from `now` (the acceptor has just promised or voted for it). */
export function grant<I>(
  rules: ReplicaRules,
  acceptor: AcceptorState<I>,
  config: Config,
  ballot: Ballot,
  now: number,
): Draft<AcceptorState<I>> {
  const a = copyAcceptor(acceptor);
  a.maxBal = rules.compareBallots(ballot, acceptor.maxBal) > 0 ? ballot : acceptor.maxBal;
  a.grantTo = ballot;
  a.grantUntil = rules.grantUntilFor(now, config);
  return a;
}

/**
 * A heartbeat of `ballot`: renew the grant (rule L1). A heartbeat of a ballot above maxBal raises
 * maxBal first (Voting's IncreaseMaxBal), persisted like a promise.
 * Precondition: `rules.canPromise(rules, acceptor, ballot, now)`.
 */
export function renewGrant<I>(
  rules: ReplicaRules,
  acceptor: AcceptorState<I>,
  config: Config,
  ballot: Ballot,
  now: number,
): { readonly acceptor: AcceptorState<I>; readonly record: PromiseRecord | null } {
  if (!rules.canPromise(rules, acceptor, ballot, now))
    fail(`renewGrant: may not grant to ${ballot.round},${ballot.replica}`);
  const rises = rules.compareBallots(ballot, acceptor.maxBal) > 0;
  return { acceptor: grant(rules, acceptor, config, ballot, now), record: rises ? { _tag: "promise", ballot } : null };
}

/**
 * Rule L6: drop the grant to `ballot` if that is the one in force. Used when this replica stops
 * leading or campaigning for `ballot`: its self-grant protected only its own lease, which it no
 * longer trusts (or never had). Grants given to other replicas are never dropped.
 */
export function dropSelfGrant<I>(rules: ReplicaRules, acceptor: AcceptorState<I>, ballot: Ballot): AcceptorState<I> {
  if (rules.compareBallots(acceptor.grantTo, ballot) !== 0) return acceptor;
  const a = copyAcceptor(acceptor);
  a.grantTo = ballotZero;
  a.grantUntil = Number.NEGATIVE_INFINITY;
  return a;
}

/**
 * Rule L6, the give-way: a candidate, or a leader whose lease has lapsed by its own clock
 * (`now >= leaseUntil`), that meets a higher ballot (in a Prepare, Accept or Heartbeat it may
 * otherwise help) steps down before judging it, and stepping down drops its self-grant. That grant
 * then protects no lease: only a leader of the replica's ballot b counts grants to b, and once it
 * steps down nobody ever leads b again (its next campaign takes a higher ballot), so no lease, now
 * or later, counts it. Any grant it gave to another ballot had run out before it campaigned (rule
 * L5), so the higher ballot finds nothing in force and is helped at once. Without this, a
 * candidate refuses every other ballot for as long as it campaigns (it renews its self-grant at
 * every resend), and candidates whose timers fire before a Nack and a resend have made the round
 * trip refuse one another round after round; and a leader resumed after a stall longer than its
 * lease renews its self-grant with its first heartbeat and refuses the candidates that campaigned
 * meanwhile for one more round trip (proofs/leases.md, "Rule L6").
 *
 * A leader whose lease holds keeps its self-grant and refuses: safety would allow it to step down
 * then too (its lease ends with its leadership), but the grants of its quorum refuse the higher
 * ballot anyway, and a campaign that cannot win would only depose a leader that a quorum answers.
 */
export function yieldsToHigherBallot<I>(rules: ReplicaRules, role: Role<I>, ballot: Ballot, now: number): boolean {
  if (role._tag === "follower" || rules.compareBallots(ballot, role.ballot) <= 0) return false;
  return role._tag === "candidate" || !(now < role.leaseUntil);
}

// ---------------------------------------------------------------------------------------------
// Counting and expiry (leader side): rule L2.

/**
 * Rule L2: a grant counts from the send time of the request it answers (echoed back), never from
 * when its answer arrived: the acceptor's grant may have started long before a delayed answer.
 */
export function grantCountedFrom(sentAt: number, _receivedAt: number): number {
  return sentAt;
}

/**
 * Rule L2, first half: the lease is counted from the quorum-th most recent grant's send time: at
 * least a quorum of acceptors (self included) granted at or after it. -Infinity with fewer grants.
 */
export function leaseFrom(grantSentAt: GrantTimes, quorum: number): number {
  for (const t of grantSentAt) {
    let above = 0;
    let atLeast = 0;
    for (const u of grantSentAt) {
      if (u > t) above++;
      if (u >= t) atLeast++;
    }
    if (above < quorum && quorum <= atLeast) return t;
  }
  return Number.NEGATIVE_INFINITY;
}

/**
 * Rule L2, second half: the leader trusts its lease until `from + leaseMs * (1 - rho) / (1 + rho)
 * - leaseMarginMs` on its own clock. An acceptor that received a request sent at true time t_s
 * refuses other ballots until at least t_s + leaseMs / (1 + rho) (its clock runs at most 1 + rho
 * fast); the leader's clock runs at least 1 - rho fast, so its trust ends by t_s + leaseMs / (1 + rho).
 */
export function leaseExpiry(from: number, config: Config): number {
  return from + leaderLeaseMs(config);
}

/**
 * Rule L2 with configurations: the lease counts from the quorum-th most recent grant among the
 * voters of `config`, the configuration governing the leader's next slot to execute. A quorum of
 * grants there is all a lease needs, though pending configurations may govern later slots:
 * nobody but this leader can decide that next slot while the grants hold (rule L1), nobody
 * executes past a slot no one decided, so no write above the executed prefix is observed
 * (proofs/leases.md, "LeaseReadFresh across configurations"). Once the leader executes into a
 * pending configuration, that one governs its next slot and the lease is counted there
 * (`syncPeers`). CheckQuorum asks the same of the configuration in force.
 */
export function leaseFromConfiguration(
  rules: ReplicaRules,
  peers: readonly ReplicaId[],
  grantSentAt: GrantTimes,
  config: Configuration,
): number {
  // Usually every peer votes: the grant times are then the voters' times as they are.
  const times = sameIds(config.voters, peers)
    ? grantSentAt
    : config.voters.map((voter) => {
        const i = peerIndex(peers, voter);
        return i < 0 ? Number.NEGATIVE_INFINITY : grantSentAt[i]!;
      });
  return rules.leaseFrom(times, rules.quorumSize(config.voters.length));
}

/** The grant times over `peers` with none but self's, at `now`. */
export function selfGrantOnly(peers: readonly ReplicaId[], self: ReplicaId, now: number): GrantTimes {
  return peers.map((id) => (id === self ? now : Number.NEGATIVE_INFINITY));
}

/** `times` with peer `index`'s grant at `sentAt`, if that is later than the one recorded. */
export function withGrant(times: GrantTimes, index: number, sentAt: number): GrantTimes {
  if (index < 0 || !(sentAt > times[index]!)) return times;
  const next = times.slice();
  next[index] = sentAt;
  return next;
}

/**
 * Record a lease grant (a Promise, Accepted or HeartbeatAck echoing `sentAt`) from peer `index` and recompute the
 * lease.
 */
export function recordGrant<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  leader: Leader<I>,
  index: number,
  sentAt: number,
): Leader<I> {
  const grantSentAt = withGrant(leader.grantSentAt, index, sentAt);
  if (grantSentAt === leader.grantSentAt) return leader;
  const next = copyLeader(leader);
  next.grantSentAt = grantSentAt;
  return withLease(rules, state, next);
}

/** `leader` (a draft) with its lease recomputed from its grants in the configuration governing its next slot. */
export function withLease<S, I, O>(rules: ReplicaRules, state: ReplicaState<S, I, O>, leader: Leader<I>): Leader<I> {
  const from = leaseFromConfiguration(rules, leader.peers, leader.grantSentAt, state.learner.configs[0]!);
  if (from === leader.leaseFrom) return leader;
  const next = copyLeader(leader);
  next.leaseFrom = from;
  next.leaseUntil = rules.leaseExpiry(from, state.ctx.config);
  return next;
}

// ---------------------------------------------------------------------------------------------
// Reads: rule L3.

/**
 * Rule L3: a leader with executed prefix e answers a linearizable read from its own state only when
 *
 * 1. its lease holds (a quorum of grants in the configuration governing e + 1), so no other ballot
 *    can choose e + 1 while it reads, and nobody executes anything above e;
 * 2. phase 1 has revealed every vote that could be chosen above e: in every configuration that may
 *    govern a slot above e (the one governing e + 1 and every pending one), a quorum of voters
 *    promised its ballot with Promises that report their votes from the first slot that
 *    configuration governs above e (`phase1CoversAbove`); and
 * 3. it has executed every slot phase 1 revealed a vote for (`phase1MaxSlot`).
 *
 * Then every write a previous leader may have acknowledged is at or below e (proofs/leases.md).
 * A grant is not a Promise: a HeartbeatAck from a voter of a pending configuration, or a Promise
 * from an acceptor that truncated its votes past the slot, proves that nobody else leads there,
 * not that nothing was chosen there before (scenarios lease-read-after-replace*.txt).
 */
export function canServeLeaseRead<S, I, O>(rules: ReplicaRules, state: ReplicaState<S, I, O>, now: number): boolean {
  const role = state.role;
  if (role._tag !== "leader" || state.halted !== null) return false;
  if (!(now < role.leaseUntil)) return false;
  const executed = state.learner.executedUpTo;
  return executed >= role.phase1MaxSlot && phase1CoversAbove(rules, role, state.learner.configs, executed);
}

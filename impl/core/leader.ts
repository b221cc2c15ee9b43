/**
 * The proposer side of a replica: phase 1 collection as a candidate, then, as leader, phase 2 per
 * slot with a bounded pipeline and batching, lease accounting from the echoed send times of grants,
 * heartbeats, and the replies to clients once their slots are executed. It implements Paxos.tla's
 * Phase1a and Phase2a (with Multi-Paxos's one phase 1 for all slots from `fromSlot` on) and the
 * leader side of the lease (rules L2, L3).
 *
 * It must never propose two values for one slot in its ballot (OneValuePerBallot), never propose
 * at a slot phase 1 covered anything but the value `phase2aValue` picks, and never count a grant
 * from any ballot but its own or a send time later than the request's.
 */
import type { ServiceOutput } from "../../spec/service.ts";
import { compareBallots } from "./ballot.ts";
import { leaderLeaseMs, type Config } from "./config.ts";
import { fail } from "./assert.ts";
import { phase2b, renewGrant } from "./acceptor.ts";
import type { ClientResult } from "./events.ts";
import { noopValue, type AcceptMsg, type Command, type PromiseMsg, type Value } from "./messages.ts";
import { latestCheckpoint } from "./monitor.ts";
import { learnChosen, type ExecutedSlot } from "./learner.ts";
import type { ReplicaEffect } from "./replica.ts";
import type { ReplicaRules } from "./rules.ts";
import { slotMapGet, slotMapSet, type SlotMap } from "./slot-map.ts";
import {
  copyCandidate,
  copyLeader,
  copyProposal,
  copyReplica,
  withRole,
  type Candidate,
  type GrantTimes,
  type Leader,
  type PendingBatch,
  type Proposal,
  type ReplicaState,
  type Vote,
} from "./state.ts";

/** Quorum: a majority of the members. Any two quorums intersect (Paxos Made Simple, section 2.2). */
export function quorumSize(members: number): number {
  return Math.floor(members / 2) + 1;
}

/** Number of set bits in a member mask. */
export function popcount(mask: number): number {
  let x = mask >>> 0;
  let n = 0;
  while (x !== 0) {
    x &= x - 1;
    n++;
  }
  return n;
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
 * Rule L2: a grant counts from the send time of the request it answers (echoed back), never from
 * when its answer arrived: the acceptor's grant may have started long before a delayed answer.
 */
export function grantCountedFrom(sentAt: number, _receivedAt: number): number {
  return sentAt;
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
 * Rule L3: a leader answers a linearizable read from its own state only while its lease holds
 * (no other ballot can have chosen anything) and only once it has executed every slot its phase 1
 * revealed (every write a previous leader may have acknowledged is among them).
 */
export function canServeLeaseRead<S, I, O>(state: ReplicaState<S, I, O>, now: number): boolean {
  const role = state.role;
  if (role._tag !== "leader" || state.halted !== null) return false;
  return now < role.leaseUntil && state.learner.executedUpTo >= role.phase1MaxSlot;
}

/** Phase 1: the vote with the higher ballot wins (Paxos.tla's ShowsSafeAt picks the maximum ballot voted). */
export function mergeRevealed<I>(current: Vote<I> | undefined, reported: Vote<I>): Vote<I> {
  if (current === undefined || compareBallots(reported.ballot, current.ballot) > 0) return reported;
  return current;
}

/**
 * Phase 2a at a slot phase 1 covered: a value known chosen; else the value of the highest-ballot
 * vote phase 1 revealed (the only safe value, Paxos Made Simple P2c); else a no-op, which is safe
 * because no value can have been chosen there in a lower ballot.
 */
export function phase2aValue<I>(revealed: Vote<I> | undefined, knownChosen: Value<I> | undefined): Value<I> {
  if (knownChosen !== undefined) return knownChosen;
  if (revealed !== undefined) return revealed.value;
  return noopValue;
}

function withGrant(times: GrantTimes, index: number, sentAt: number): GrantTimes {
  if (!(sentAt > times[index]!)) return times;
  const next = times.slice();
  next[index] = sentAt;
  return next;
}

/** The grant times with none but self's at `now`. */
export function selfGrantOnly(members: number, selfIndex: number, now: number): GrantTimes {
  const times = new Array<number>(members).fill(Number.NEGATIVE_INFINITY);
  times[selfIndex] = now;
  return times;
}

/** A candidate takes a Promise for its ballot: merge the reported votes, count the promise and the grant. */
export function collectPromise<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  candidate: Candidate<I>,
  fromIndex: number,
  m: PromiseMsg<I>,
): ReplicaState<S, I, O> {
  if (m.fromSlot !== candidate.fromSlot) return state;
  let revealed: SlotMap<Vote<I>> = candidate.revealed;
  for (const v of m.votes) {
    if (v.slot < candidate.fromSlot) continue;
    if (compareBallots(v.ballot, candidate.ballot) >= 0) fail(`Promise for ${candidate.ballot.round} reports a vote in ballot ${v.ballot.round} at slot ${v.slot}`);
    const current = slotMapGet(revealed, v.slot);
    const merged = rules.mergeRevealed(current, { ballot: v.ballot, value: v.value });
    if (merged !== current) revealed = slotMapSet(revealed, v.slot, merged);
  }
  const role = copyCandidate(candidate);
  role.promised = candidate.promised | (1 << fromIndex);
  role.revealed = revealed;
  role.grantSentAt = withGrant(candidate.grantSentAt, fromIndex, m.sentAt);
  return withRole(state, role);
}

/** Record a lease grant (an Accepted or HeartbeatAck echoing `sentAt`) and recompute the lease. */
export function recordGrant<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  leader: Leader<I>,
  index: number,
  sentAt: number,
): Leader<I> {
  const grantSentAt = withGrant(leader.grantSentAt, index, sentAt);
  if (grantSentAt === leader.grantSentAt) return leader;
  const from = rules.leaseFrom(grantSentAt, rules.quorumSize(state.ctx.members.length));
  const next = copyLeader(leader);
  next.grantSentAt = grantSentAt;
  if (from !== leader.leaseFrom) {
    next.leaseFrom = from;
    next.leaseUntil = rules.leaseExpiry(from, state.ctx.config);
  }
  return next;
}

function leaderOf<S, I, O>(state: ReplicaState<S, I, O>): Leader<I> {
  if (state.role._tag !== "leader") fail(`expected a leader, found a ${state.role._tag}`);
  return state.role;
}

/**
 * Phase 2a at `slot`: send Accept to every other member, vote for the value as an acceptor, and put
 * the proposal in the pipeline. A one-member cluster chooses at once.
 *
 * The Accepts leave before the leader's own vote record: an Accept (Paxos.tla's 2a) is a proposal,
 * not a promise, and needs nothing durable behind it (the leader never proposes again in this
 * ballot after a restart: it recovers its promise of this ballot and campaigns above it). So the
 * leader's fsync runs in parallel with the followers' instead of before them. Its own vote still
 * counts only once durable: it is persisted before any later effect, replies included.
 */
function proposeSlot<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  value: Value<I>,
  requestIds: readonly number[],
  now: number,
  out: ReplicaEffect<I, O>[],
): ReplicaState<S, I, O> {
  const leader = leaderOf(state);
  const slot = leader.nextSlot;
  if (slot !== leader.inflightBase + leader.inflight.length) fail(`pipeline: slot ${slot} is not the next after ${leader.inflightBase}+${leader.inflight.length}`);
  const accept: AcceptMsg<I> = { _tag: "Accept", ballot: leader.ballot, slot, value, commitIndex: state.learner.executedUpTo, sentAt: now };
  const voted = phase2b(rules, state.acceptor, state.ctx.config, accept, now);
  if (voted.record === null) fail(`OneValuePerBallot: slot ${slot} already has a vote in the leader's ballot`);
  for (const to of state.ctx.others) out.push({ _tag: "Send", to, message: accept });
  out.push({ _tag: "Persist", record: voted.record });
  const selfBit = 1 << state.ctx.selfIndex;
  const proposal: Proposal<I> = { value, acks: selfBit, requestIds, sentAt: now, chosen: false };
  const inflight = leader.inflight.slice();
  inflight.push(proposal);
  const grown = copyLeader(leader);
  grown.nextSlot = slot + 1;
  grown.inflight = inflight;
  const s = copyReplica(state);
  s.acceptor = voted.acceptor;
  s.role = recordGrant(rules, state, grown, state.ctx.selfIndex, now);
  return chooseIfQuorum(rules, s, slot, out);
}

/** If the proposal at `slot` has a quorum of votes in the leader's ballot, it is chosen: learn it. */
function chooseIfQuorum<S, I, O>(rules: ReplicaRules, state: ReplicaState<S, I, O>, slot: number, out: ReplicaEffect<I, O>[]): ReplicaState<S, I, O> {
  const leader = leaderOf(state);
  const index = slot - leader.inflightBase;
  const proposal = leader.inflight[index]!;
  const quorum = rules.quorumSize(state.ctx.members.length);
  const votes = popcount(proposal.acks);
  if (votes > state.ctx.members.length) fail(`quorum count: ${votes} votes from ${state.ctx.members.length} members`);
  if (proposal.chosen || votes < quorum) return state;
  const inflight = leader.inflight.slice();
  const chosen = copyProposal(proposal);
  chosen.chosen = true;
  inflight[index] = chosen;
  const next = copyLeader(leader);
  next.inflight = inflight;
  return learnChosen(withRole(state, next), slot, proposal.value, out);
}

/**
 * Fill the pipeline: propose the slots phase 1 covered (re-proposals and no-ops) first, then the
 * pending client commands, one batch per slot, while fewer than `pipelineSlotsMax` slots are open.
 */
export function proposeReady<S, I, O>(rules: ReplicaRules, state: ReplicaState<S, I, O>, now: number, out: ReplicaEffect<I, O>[]): ReplicaState<S, I, O> {
  let s = state;
  const pipelineSlotsMax = s.ctx.config.pipelineSlotsMax;
  for (;;) {
    if (s.role._tag !== "leader") return s;
    const leader = s.role;
    if (leader.inflight.length >= pipelineSlotsMax) return s;
    const slot = leader.nextSlot;
    if (slot <= leader.phase1MaxSlot) {
      const value = rules.phase2aValue(slotMapGet(leader.revealed, slot), slotMapGet(s.learner.log, slot));
      s = proposeSlot(rules, s, value, noRequests, now, out);
      continue;
    }
    const batch = leader.pending[0];
    if (batch === undefined) return s;
    const taken = copyLeader(leader);
    taken.pending = leader.pending.slice(1);
    taken.pendingCount = leader.pendingCount - batch.commands.length;
    s = withRole(s, taken);
    s = proposeSlot(rules, s, { _tag: "batch", commands: batch.commands }, batch.requestIds, now, out);
  }
}

const noRequests: readonly number[] = [];

/**
 * Queue a client command for proposal, or refuse it when `requestsPendingMax` commands already wait.
 */
export function submit<S, I, O>(
  state: ReplicaState<S, I, O>,
  command: Command<I>,
  requestId: number,
  out: ReplicaEffect<I, O>[],
): ReplicaState<S, I, O> {
  const leader = leaderOf(state);
  const config = state.ctx.config;
  if (leader.pendingCount >= config.requestsPendingMax) {
    out.push({ _tag: "Reply", requestId, result: { _tag: "unavailable", reason: `busy: ${leader.pendingCount} requests pending`, outcomeUnknown: false } });
    return state;
  }
  const pending = leader.pending.slice();
  const last = pending[pending.length - 1];
  if (last !== undefined && last.commands.length < config.batchCommandsMax) {
    const commands = last.commands.slice();
    commands.push(command);
    const requestIds = last.requestIds.slice();
    requestIds.push(requestId);
    pending[pending.length - 1] = { commands, requestIds };
  } else {
    const batch: PendingBatch<I> = { commands: [command], requestIds: [requestId] };
    pending.push(batch);
  }
  const next = copyLeader(leader);
  next.pending = pending;
  next.pendingCount = leader.pendingCount + 1;
  return withRole(state, next);
}

/** An Accepted for the leader's ballot: a vote (maybe completing a quorum) and a lease grant. */
export function collectAccepted<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  fromIndex: number,
  slot: number,
  sentAt: number,
  out: ReplicaEffect<I, O>[],
): ReplicaState<S, I, O> {
  const leader = recordGrant(rules, state, leaderOf(state), fromIndex, sentAt);
  const index = slot - leader.inflightBase;
  const proposal = leader.inflight[index];
  const bit = 1 << fromIndex;
  if (proposal === undefined || (proposal.acks & bit) !== 0) return leader === state.role ? state : withRole(state, leader);
  const acked = copyProposal(proposal);
  acked.acks = proposal.acks | bit;
  const inflight = leader.inflight.slice();
  inflight[index] = acked;
  const next = copyLeader(leader);
  next.inflight = inflight;
  return chooseIfQuorum(rules, withRole(state, next), slot, out);
}

/** The client-visible result of a service output. */
export function resultOf<O>(output: ServiceOutput<O>): ClientResult<O> {
  if (output._tag === "stale") return { _tag: "stale-seq", lastSeq: output.lastSeq };
  return { _tag: "ok", output: output.output };
}

/** Answer the clients whose commands were just executed, and drop executed slots from the pipeline. */
export function answerExecuted<S, I, O>(state: ReplicaState<S, I, O>, executed: readonly ExecutedSlot<O>[], out: ReplicaEffect<I, O>[]): ReplicaState<S, I, O> {
  const leader = leaderOf(state);
  for (const e of executed) {
    const proposal = leader.inflight[e.slot - leader.inflightBase];
    if (proposal === undefined) continue;
    for (let i = 0; i < proposal.requestIds.length; i++) {
      const requestId = proposal.requestIds[i]!;
      const output = e.outputs[i];
      if (requestId < 0) continue;
      if (output === undefined) fail(`slot ${e.slot}: no output for command ${i}`);
      out.push({ _tag: "Reply", requestId, result: resultOf(output) });
    }
  }
  const executedUpTo = state.learner.executedUpTo;
  if (executedUpTo < leader.inflightBase) return state;
  if (executedUpTo >= leader.nextSlot) fail(`leader executed slot ${executedUpTo} beyond its proposals (next ${leader.nextSlot})`);
  const inflight = leader.inflight.slice(executedUpTo + 1 - leader.inflightBase);
  const next = copyLeader(leader);
  next.inflight = inflight;
  next.inflightBase = executedUpTo + 1;
  return withRole(state, next);
}

/**
 * A deposed leader answers every request it holds: proposed ones `unavailable` with an unknown
 * outcome (the slot may still be chosen and executed), queued ones `unavailable` (never proposed).
 */
export function failAll<I, O>(leader: Leader<I>, reason: string, out: ReplicaEffect<I, O>[]): void {
  for (const p of leader.inflight) {
    for (const requestId of p.requestIds) {
      if (requestId >= 0) out.push({ _tag: "Reply", requestId, result: { _tag: "unavailable", reason, outcomeUnknown: true } });
    }
  }
  for (const batch of leader.pending) {
    for (const requestId of batch.requestIds) out.push({ _tag: "Reply", requestId, result: { _tag: "unavailable", reason, outcomeUnknown: false } });
  }
}

/**
 * Heartbeat, when due: renew the self-grant (the leader is one of its own acceptors), send every
 * follower the commit index and latest checkpoint, and resend Accepts not yet voted for.
 */
export function heartbeat<S, I, O>(rules: ReplicaRules, state: ReplicaState<S, I, O>, now: number, out: ReplicaEffect<I, O>[]): ReplicaState<S, I, O> {
  let leader = leaderOf(state);
  if (now < leader.heartbeatAt) return state;
  const { ctx } = state;
  const renewed = renewGrant(rules, state.acceptor, ctx.config, leader.ballot, now);
  if (renewed.record !== null) fail("a leader's maxBal is its own ballot");
  const message = { _tag: "Heartbeat", ballot: leader.ballot, commitIndex: state.learner.executedUpTo, sentAt: now, checkpoint: latestCheckpoint(state.monitor) } as const;
  for (const to of ctx.others) out.push({ _tag: "Send", to, message });
  leader = recordGrant(rules, state, leader, ctx.selfIndex, now);
  leader = resendAccepts(state, leader, now, out);
  const next = copyLeader(leader);
  next.heartbeatAt = now + ctx.config.heartbeatIntervalMs;
  const s = copyReplica(state);
  s.acceptor = renewed.acceptor;
  s.role = next;
  return s;
}

function resendAccepts<S, I, O>(state: ReplicaState<S, I, O>, leader: Leader<I>, now: number, out: ReplicaEffect<I, O>[]): Leader<I> {
  const { ctx } = state;
  let inflight: Proposal<I>[] | null = null;
  for (let i = 0; i < leader.inflight.length; i++) {
    const p = leader.inflight[i]!;
    if (p.chosen || now < p.sentAt + ctx.config.heartbeatIntervalMs) continue;
    const accept: AcceptMsg<I> = {
      _tag: "Accept",
      ballot: leader.ballot,
      slot: leader.inflightBase + i,
      value: p.value,
      commitIndex: state.learner.executedUpTo,
      sentAt: now,
    };
    ctx.members.forEach((to, index) => {
      if (to !== ctx.config.self && (p.acks & (1 << index)) === 0) out.push({ _tag: "Send", to, message: accept });
    });
    inflight ??= leader.inflight.slice();
    const resent = copyProposal(p);
    resent.sentAt = now;
    inflight[i] = resent;
  }
  if (inflight === null) return leader;
  const next = copyLeader(leader);
  next.inflight = inflight;
  return next;
}

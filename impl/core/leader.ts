/**
 * The proposer side of a replica: phase 1 collection as a candidate (and, as leader, for every
 * configuration it learns of), then phase 2 per slot with a bounded pipeline and batching, each
 * slot counted in the configuration that governs it; heartbeats; membership changes; and the
 * replies to clients once their slots are executed. It implements Paxos.tla's Phase1a and Phase2a
 * (with Multi-Paxos's one phase 1 for all slots from `fromSlot` on). Every grant it receives goes
 * to lease.ts (`recordGrant`), which counts the lease.
 *
 * It must never propose two values for one slot in its ballot (OneValuePerBallot), never propose
 * at a slot phase 1 does not cover (a quorum of the governing configuration, with Promises that
 * report that slot), never propose at a slot whose configuration it does not know (beyond alpha)
 * or does not vote in, never propose at a slot phase 1 covered anything but the value
 * `phase2aValue` picks, and never count a grant from any ballot but its own or a send time later
 * than the request's.
 */
import { featureLevelSessionsBounded, type ServiceOutput } from "../../spec/service.ts";
import { fail } from "./assert.ts";
import { inMemory } from "./at-rest.ts";
import { phase2b } from "./acceptor.ts";
import { applyChange, configurationFor, showChange, type ConfigChange } from "./configuration.ts";
import type { ClientResult, ReplicaId } from "./events.ts";
import {
  noopValue,
  openCountMax,
  plainBytes,
  type AcceptMsg,
  type Command,
  type PrepareMsg,
  type PromiseMsg,
  type FeaturesValue,
  type Value,
} from "./messages.ts";
import { latestCheckpoint } from "./monitor.ts";
import { learnChosen, putAtRest, type ExecutedSlot } from "./learner.ts";
import type { Ballot } from "./ballot.ts";
import { recordGrant, renewGrant, withGrant, withLease } from "./lease.ts";
import { carryOver, carryOverMask, peerIndex, peersOf, phase1Covers, unpromised } from "./quorums.ts";
import type { ReplicaEffect } from "./replica.ts";
import type { ReplicaRules } from "./rules.ts";
import { slotMapForEach, slotMapGet, slotMapSet, type SlotMap } from "./slot-map.ts";
import {
  copyAcceptor,
  copyCandidate,
  copyLearner,
  copyLeader,
  copyProposal,
  copyReplica,
  withRole,
  type AcceptorState,
  type Leader,
  commandsOf,
  requestIdsOf,
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

/** Phase 1: the vote with the higher ballot wins (Paxos.tla's ShowsSafeAt picks the maximum ballot voted). */
export function mergeRevealed<I>(rules: ReplicaRules, current: Vote<I> | undefined, reported: Vote<I>): Vote<I> {
  if (current === undefined || rules.compareBallots(reported.ballot, current.ballot) > 0) return reported;
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

/**
 * A candidate, or a leader whose phase 1 goes on for a configuration it learned of later, takes a
 * Promise for its ballot: merge the reported votes (a leader only at slots it has not proposed
 * yet), count the promise for the slots it covers (rule T2) and the grant.
 */
export function collectPromise<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  from: ReplicaId,
  m: PromiseMsg<I>,
): ReplicaState<S, I, O> {
  const role = state.role;
  if (role._tag === "follower") return state;
  if (role._tag === "candidate" && m.fromSlot !== role.fromSlot) return state;
  const index = peerIndex(role.peers, from);
  if (index < 0) return state;
  const mergeFrom = role._tag === "candidate" ? role.fromSlot : role.nextSlot;
  let revealed: SlotMap<Vote<I>> = role.revealed;
  let last = 0;
  for (const v of m.votes) {
    // A leader's own proposals may come back in a late Promise (an acceptor that voted for them
    // after promising): they are not phase 1 information. A vote above the ballot cannot be.
    const order = rules.compareBallots(v.ballot, role.ballot);
    if (v.slot < mergeFrom || order === 0) continue;
    if (order > 0)
      fail(`Promise for ${role.ballot.round} reports a vote in ballot ${v.ballot.round} at slot ${v.slot}`);
    const current = slotMapGet(revealed, v.slot);
    const merged = rules.mergeRevealed(rules, current, { ballot: v.ballot, value: v.value });
    if (merged !== current) revealed = slotMapSet(revealed, v.slot, merged);
    last = Math.max(last, v.slot);
  }
  const coversFrom = role.coversFrom.slice();
  coversFrom[index] = Math.min(coversFrom[index]!, rules.promiseCoversFrom(m.fromSlot, m.truncatedUpTo));
  if (role._tag === "candidate") {
    const c = copyCandidate(role);
    c.promised = role.promised | (1 << index);
    c.coversFrom = coversFrom;
    c.revealed = revealed;
    c.grantSentAt = withGrant(role.grantSentAt, index, m.sentAt);
    return withRole(state, c);
  }
  const l = copyLeader(role);
  l.promised = role.promised | (1 << index);
  l.coversFrom = coversFrom;
  l.revealed = revealed;
  l.phase1MaxSlot = Math.max(role.phase1MaxSlot, last);
  return withRole(state, recordGrant(rules, state, l, index, m.sentAt));
}

function leaderOf<S, I, O>(state: ReplicaState<S, I, O>): Leader<I> {
  if (state.role._tag !== "leader") fail(`expected a leader, found a ${state.role._tag}`);
  return state.role;
}

/**
 * Phase 2a at the leader's next slot, counted in `voters` (the configuration that governs it): send
 * Accept to every other voter, vote for the value as an acceptor, and put the proposal in the
 * pipeline. A configuration with a single voter chooses once the leader's vote is durable.
 *
 * The Accepts leave before the leader's own vote record: an Accept (Paxos.tla's 2a) is a proposal,
 * not a promise, and needs nothing durable behind it (the leader never proposes again in this
 * ballot after a restart: it recovers its promise of this ballot and campaigns above it). So the
 * leader's fsync runs in parallel with the followers' instead of before them.
 *
 * The leader's own vote counts only once durable, as a follower's does (whose Accepted leaves only
 * after its Persist): its Persist asks to be told (`notify`) instead of holding back every later
 * effect, and the vote joins the proposal's acks when `VoteDurable` comes (`ownVoteDurable`). So
 * two followers' votes choose a slot without it, and no reply waits for the leader's fsync when
 * theirs came first; a value is still chosen only by a quorum of durable votes
 * (proofs/durability.md, CountedVotesDurable).
 */
function proposeSlot<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  value: Value<I>,
  voters: readonly ReplicaId[],
  requestIds: readonly number[],
  now: number,
  out: ReplicaEffect<I, O>[],
): ReplicaState<S, I, O> {
  const leader = leaderOf(state);
  const slot = leader.nextSlot;
  const self = state.ctx.config.self;
  if (slot !== leader.inflightBase + leader.inflight.length)
    fail(`pipeline: slot ${slot} is not the next after ${leader.inflightBase}+${leader.inflight.length}`);
  const selfVoter = voters.indexOf(self);
  if (selfVoter < 0) fail(`the leader proposes at slot ${slot} whose configuration it does not vote in`);
  const accept: AcceptMsg<I> = {
    _tag: "Accept",
    ballot: leader.ballot,
    slot,
    value,
    commitIndex: state.learner.executedUpTo,
    sentAt: now,
  };
  const voted = phase2b(rules, state.acceptor, state.ctx.config, accept, now);
  if (voted.record === null) fail(`OneValuePerBallot: slot ${slot} already has a vote in the leader's ballot`);
  for (const to of voters) if (to !== self) out.push({ _tag: "Send", to, message: accept });
  out.push({ _tag: "Persist", record: voted.record, notify: { slot, ballot: leader.ballot } });
  const proposal: Proposal<I> = {
    value,
    voters,
    acks: 0,
    requestIds,
    sentAt: now,
    resendAfterMs: state.ctx.config.heartbeatIntervalMs,
    chosen: false,
  };
  const inflight = leader.inflight.slice();
  inflight.push(proposal);
  const grown = copyLeader(leader);
  grown.nextSlot = slot + 1;
  grown.inflight = inflight;
  const s = copyReplica(state);
  s.acceptor = awaitOwnVote(rules, voted.acceptor, leader.ballot, slot);
  s.role = recordGrant(rules, state, grown, peerIndex(leader.peers, self), now);
  return s;
}

/** `acceptor` after the leader's own vote at `slot` in `ballot`: one more vote whose durability it awaits. */
function awaitOwnVote<I>(
  rules: ReplicaRules,
  acceptor: AcceptorState<I>,
  ballot: Ballot,
  slot: number,
): AcceptorState<I> {
  const own = acceptor.ownVotes;
  if (own !== null && rules.compareBallots(own.ballot, ballot) === 0) {
    if (slot <= own.durableUpTo) fail(`own vote at slot ${slot} in a ballot already durable up to ${own.durableUpTo}`);
    return acceptor;
  }
  const next = copyAcceptor(acceptor);
  // Below its first proposal the leader cast no vote in this ballot.
  next.ownVotes = { ballot, durableUpTo: slot - 1 };
  return next;
}

/**
 * `VoteDurable`: the leader's own vote at `slot` in `ballot` is durable, and with it every vote it
 * cast before in that ballot (records become durable in the order persisted). Count it in the
 * proposals at those slots (now it may complete a quorum), and put the executed slots it holds at
 * rest (`valuesAtRest`). A notice of an older ballot, or of a replica that no longer leads it,
 * only records the durability: its slots' quorums are another leader's affair.
 */
export function ownVoteDurable<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  slot: number,
  ballot: Ballot,
  out: ReplicaEffect<I, O>[],
): ReplicaState<S, I, O> {
  const own = state.acceptor.ownVotes;
  if (own === null || rules.compareBallots(own.ballot, ballot) !== 0 || slot <= own.durableUpTo) return state;
  let s = copyReplica(state);
  const acceptor = copyAcceptor(state.acceptor);
  acceptor.ownVotes = { ballot, durableUpTo: slot };
  s.acceptor = acceptor;
  if (s.ctx.config.valuesAtRest) {
    const from = Math.max(own.durableUpTo + 1, s.learner.logTruncatedUpTo + 1);
    const to = Math.min(slot, s.learner.executedUpTo);
    if (from <= to) {
      const learner = copyLearner(s.learner);
      putAtRest(rules, s, learner, from, to);
      s.learner = learner;
    }
  }
  const leader = s.role;
  if (leader._tag !== "leader" || rules.compareBallots(leader.ballot, ballot) !== 0) return s;
  const self = s.ctx.config.self;
  for (let at = Math.max(leader.inflightBase, own.durableUpTo + 1); at <= slot; at++) {
    const role = leaderOf(s);
    const proposal = role.inflight[at - role.inflightBase];
    if (proposal === undefined) break;
    const voter = proposal.voters.indexOf(self);
    if (voter < 0) fail(`the leader's own vote at slot ${at}, whose configuration it does not vote in`);
    const acked = copyProposal(proposal);
    acked.acks = proposal.acks | (1 << voter);
    const inflight = role.inflight.slice();
    inflight[at - role.inflightBase] = acked;
    const next = copyLeader(role);
    next.inflight = inflight;
    s = chooseIfQuorum(rules, withRole(s, next), at, out);
  }
  return s;
}

/**
 * If the proposal at `slot` has a quorum of votes (of its configuration) in the leader's ballot, it is chosen: learn
 * it.
 */
function chooseIfQuorum<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  slot: number,
  out: ReplicaEffect<I, O>[],
): ReplicaState<S, I, O> {
  const leader = leaderOf(state);
  const index = slot - leader.inflightBase;
  const proposal = leader.inflight[index]!;
  const quorum = rules.quorumSize(proposal.voters.length);
  const votes = popcount(proposal.acks);
  if (votes > proposal.voters.length) fail(`quorum count: ${votes} votes from ${proposal.voters.length} voters`);
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
 * pending client commands and membership changes, one batch (or change) per slot as `batchReady`
 * allows, then no-ops up to
 * `fillUpTo`, while fewer than `pipelineSlotsMax` slots are open. A slot is proposed only once its
 * configuration is known (rule R2, asserted), this replica votes in it, and phase 1 covers it; for a
 * configuration whose voters have not all promised, phase 1 goes on (`solicitPromises`).
 */
export function proposeReady<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  now: number,
  out: ReplicaEffect<I, O>[],
): ReplicaState<S, I, O> {
  let s = state;
  const { pipelineSlotsMax, reconfigAlphaSlots } = s.ctx.config;
  for (;;) {
    if (s.role._tag !== "leader") return s;
    const leader = s.role;
    if (leader.inflight.length >= pipelineSlotsMax) return s;
    const slot = leader.nextSlot;
    // R2: the configuration of `slot` is known only up to alpha slots above the executed prefix.
    // The pipeline (at most pipelineSlotsMax <= alpha slots above it) keeps every proposal inside.
    if (slot > s.learner.executedUpTo + reconfigAlphaSlots)
      fail(
        `R2: slot ${slot} is beyond the known configurations (executed ${s.learner.executedUpTo}, alpha ${reconfigAlphaSlots})`,
      );
    const config = configurationFor(s.learner.configs, slot);
    if (!config.voters.includes(s.ctx.config.self)) return s;
    if (!phase1Covers(rules, leader, config, slot)) return solicitPromises(s, leader, slot, now, out);
    const known = slotMapGet(s.learner.log, slot);
    // A slot phase 1 covered, or one this replica already knows chosen (it caught up before it
    // was elected, maybe from peers outside its phase 1 quorum), gets its safe value.
    if (slot <= leader.phase1MaxSlot || known !== undefined) {
      // At or above nextSlot, above the executed prefix: a value known chosen there is in memory.
      const chosen = known === undefined ? undefined : inMemory(known, `propose slot ${slot}`);
      const value = rules.phase2aValue(slotMapGet(leader.revealed, slot), chosen);
      s = proposeSlot(rules, s, value, config.voters, noRequests, now, out);
      continue;
    }
    const raise = featuresDue(s, leader);
    if (raise !== null) {
      s = proposeSlot(rules, s, raise, config.voters, noRequests, now, out);
      continue;
    }
    const batch = leader.pending[0];
    if (batch === undefined) {
      if (slot > leader.fillUpTo) return s;
      s = proposeSlot(rules, s, noopValue, config.voters, noRequests, now, out);
      continue;
    }
    if (s.ctx.config.adaptiveBatching && !batchReady(rules, leader, s.ctx.config.self)) return s;
    const taken = copyLeader(leader);
    taken.pending = leader.pending.slice(1);
    taken.pendingCount = leader.pendingCount - batch.count;
    s = withRole(s, taken);
    const value: Value<I> =
      batch.change !== undefined
        ? { _tag: "reconfig", change: batch.change }
        : batch.opens === true
          ? { _tag: "open", count: batch.count }
          : { _tag: "batch", commands: commandsOf(batch) };
    s = proposeSlot(rules, s, value, config.voters, requestIdsOf(batch), now, out);
  }
}

const noRequests: readonly number[] = [];

/**
 * The raise of the feature level this leader proposes next, or null: its configured `featureLevel`
 * is above the level executed, or equal to it with other session bounds, every member is known to
 * execute it (`featuresKnown`: a member that does not would stop at the raise, events.ts
 * `FeaturesKnown`), and no raise is in its pipeline. Ahead of client commands: the rules switch
 * at the raise's slot, for every replica alike.
 */
export function featuresDue<S, I, O>(state: ReplicaState<S, I, O>, leader: Leader<I>): FeaturesValue | null {
  const { featureLevel, sessionsMax, sessionOutputBytesMax } = state.ctx.config;
  if (featureLevel < featureLevelSessionsBounded || state.featuresKnown < featureLevel) return null;
  const f = state.learner.service.features;
  const level = f?.level ?? 1;
  if (featureLevel < level) return null;
  if (
    f !== undefined &&
    featureLevel === level &&
    f.sessionsMax === sessionsMax &&
    f.outputBytesMax === sessionOutputBytesMax
  )
    return null;
  for (const p of leader.inflight) if (p.value._tag === "features") return null;
  return { _tag: "features", level: featureLevel, sessionsMax, outputBytesMax: sessionOutputBytesMax };
}

/**
 * Adaptive batching (config `adaptiveBatching`): the first pending batch is proposed at once when no slot of the
 * pipeline
 * awaits its quorum (so a lone client never waits), or when it is full (a later batch exists);
 * otherwise it keeps collecting commands until a slot is chosen, and the next slot carries them
 * all. Under load a round trip then carries every command that arrived during the previous one,
 * instead of a slot (its messages, records and fsyncs) per command or two.
 */
function batchReady<I>(rules: ReplicaRules, leader: Leader<I>, self: ReplicaId): boolean {
  if (leader.pending.length > 1) return true;
  for (const proposal of leader.inflight) if (!proposal.chosen && !answeredAsIfOwn(rules, proposal, self)) return false;
  return true;
}

/**
 * Would `proposal` be chosen with the leader's own vote counted? Batching goes on at the first
 * follower's answer, as when the own vote counted at once: whether the slot is chosen then by that
 * vote or by the second follower's changes what is safe, not how long a batch should collect.
 */
function answeredAsIfOwn<I>(rules: ReplicaRules, proposal: Proposal<I>, self: ReplicaId): boolean {
  const voter = proposal.voters.indexOf(self);
  const acks = voter < 0 ? proposal.acks : proposal.acks | (1 << voter);
  return popcount(acks) >= rules.quorumSize(proposal.voters.length);
}

/**
 * Phase 1 for a configuration the leader learned of after its election: ask the voters of the
 * configuration governing `slot` that have not promised (with a Promise that reports `slot`) to
 * promise the leader's ballot from `slot` on. At most once per heartbeat interval.
 */
function solicitPromises<S, I, O>(
  state: ReplicaState<S, I, O>,
  leader: Leader<I>,
  slot: number,
  now: number,
  out: ReplicaEffect<I, O>[],
): ReplicaState<S, I, O> {
  if (now < leader.prepareSentAt + state.ctx.config.heartbeatIntervalMs) return state;
  const config = configurationFor(state.learner.configs, slot);
  const prepare: PrepareMsg = { _tag: "Prepare", ballot: leader.ballot, fromSlot: slot, sentAt: now };
  for (const to of unpromised(leader, config, slot))
    if (to !== state.ctx.config.self) out.push({ _tag: "Send", to, message: prepare });
  const next = copyLeader(leader);
  next.prepareSentAt = now;
  return withRole(state, next);
}

/**
 * The voter whose snapshot this leader must fetch, or null: phase 1 does not cover the leader's
 * next slot, and a voter of its configuration promised with a Promise that does not report it
 * because that acceptor forgot its votes there (truncated above it: it executed the slot, the
 * leader has not). The slot is chosen and this leader lags behind that voter's snapshot; it steps
 * down and catches up by state transfer (rule T2's liveness side) rather than wait for Promises
 * from the other voters, which may be down for good (a replaced voter, a crashed old leader).
 */
export function stalledBehind<S, I, O>(rules: ReplicaRules, state: ReplicaState<S, I, O>): ReplicaId | null {
  const leader = state.role;
  if (leader._tag !== "leader" || leader.inflight.length >= state.ctx.config.pipelineSlotsMax) return null;
  const slot = leader.nextSlot;
  const config = configurationFor(state.learner.configs, slot);
  if (phase1Covers(rules, leader, config, slot)) return null;
  for (const voter of config.voters) {
    const i = peerIndex(leader.peers, voter);
    if (i >= 0 && (leader.promised & (1 << i)) !== 0 && leader.coversFrom[i]! > slot) return voter;
  }
  return null;
}

/**
 * Refuse a request as `unavailable` (busy) when `pendingMax` requests already wait for a slot; say
 * whether it was refused.
 */
function refusedBusy<I, O>(
  pending: number,
  pendingMax: number,
  requestId: number,
  out: ReplicaEffect<I, O>[],
): boolean {
  if (pending < pendingMax) return false;
  out.push({
    _tag: "Reply",
    requestId,
    result: { _tag: "unavailable", reason: `busy: ${pending} requests pending`, outcomeUnknown: false },
  });
  return true;
}

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
  if (refusedBusy(leader.pendingCount, config.requestsPendingMax, requestId, out)) return state;
  const pending = leader.pending.slice();
  const last = pending[pending.length - 1];
  const bytes = plainBytes(command);
  if (
    last !== undefined &&
    last.change === undefined &&
    last.opens !== true &&
    last.count < config.batchCommandsMax &&
    last.bytes + bytes <= config.batchBytesMax
  ) {
    const newest = { requestId, command, earlier: last.newest };
    pending[pending.length - 1] = { newest, count: last.count + 1, bytes: last.bytes + bytes };
  } else {
    const batch: PendingBatch<I> = { newest: { requestId, command, earlier: null }, count: 1, bytes };
    pending.push(batch);
  }
  const next = copyLeader(leader);
  next.pending = pending;
  next.pendingCount = leader.pendingCount + 1;
  return withRole(state, next);
}

/**
 * Queue an open-session request (feature level 3): with the open-session requests queued last, in
 * one `open` value of at most `batchCommandsMax`, or refuse it when `requestsPendingMax` requests
 * already wait. The caller checked that level 3 is executed or this leader raises to it.
 */
export function submitOpen<S, I, O>(
  state: ReplicaState<S, I, O>,
  requestId: number,
  out: ReplicaEffect<I, O>[],
): ReplicaState<S, I, O> {
  const leader = leaderOf(state);
  const config = state.ctx.config;
  if (refusedBusy(leader.pendingCount, config.requestsPendingMax, requestId, out)) return state;
  const pending = leader.pending.slice();
  const last = pending[pending.length - 1];
  if (last !== undefined && last.opens === true && last.count < Math.min(config.batchCommandsMax, openCountMax)) {
    pending[pending.length - 1] = {
      ...last,
      newest: { requestId, command: null, earlier: last.newest },
      count: last.count + 1,
    };
  } else pending.push({ newest: { requestId, command: null, earlier: null }, count: 1, bytes: 0, opens: true });
  const next = copyLeader(leader);
  next.pending = pending;
  next.pendingCount = leader.pendingCount + 1;
  return withRole(state, next);
}

/**
 * Rule R3: may the leader propose `change` now? It must fit the latest configuration the leader
 * knows, and a learner is promoted (or replaces a voter) only once it has reported an executed
 * prefix within one catch-up reply of the leader's: a voter that lags far behind would only stall
 * the quorums it is needed in. (Liveness only: safety never depends on who is a voter.)
 */
export function changeAllowed<S, I, O>(state: ReplicaState<S, I, O>, change: ConfigChange): string | null {
  return changeMisfit(state, change) ?? joinerLagging(state, change);
}

/** Why `change` does not fit the latest configuration this replica has executed, or null. */
function changeMisfit<S, I, O>(state: ReplicaState<S, I, O>, change: ConfigChange): string | null {
  const { configs } = state.learner;
  const applied = applyChange(configs[configs.length - 1]!, change);
  return typeof applied === "string" ? applied : null;
}

/** Why the replica `change` makes a voter has not caught up enough to become one, or null. */
function joinerLagging<S, I, O>(state: ReplicaState<S, I, O>, change: ConfigChange): string | null {
  const leader = leaderOf(state);
  const joining = change.op === "promote" ? change.replica : change.op === "replace" ? change.add : null;
  if (joining === null) return null;
  const reported = leader.progress[peerIndex(leader.peers, joining)] ?? -1;
  const needed = Math.max(1, state.learner.executedUpTo - state.ctx.config.catchUpSlotsMax);
  if (reported < needed) {
    return `replica ${joining} has not caught up: it reported slot ${reported < 0 ? "none" : reported} executed, the leader ${state.learner.executedUpTo}`;
  }
  return null;
}

/**
 * Rule R3's refusal is final only when the configuration it judged is the one the change would
 * meet: a read of the configuration as fresh as a read by lease (rule L3: the lease holds, and
 * phase 1 has revealed, and the leader executed, every vote that could be chosen above its
 * executed prefix), with no membership change of the leader's own between that prefix and the
 * change (chosen but not executed, in the pipeline, or queued before it). Otherwise this names
 * what the leader has yet to vouch for, and the refusal becomes an `unavailable` to retry: a new
 * leader that re-proposes a promotion would refuse a replace of the promoted voter as "not a
 * voter" although the promotion is chosen, and the operator would give up.
 */
export function unsettledMembership<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  now: number,
): string | null {
  const leader = leaderOf(state);
  const executed = state.learner.executedUpTo;
  if (!rules.canServeLeaseRead(rules, state, now))
    return `the leader cannot vouch for the configuration yet (no lease, or phase 1 above slot ${executed} not complete and executed)`;
  let found: string | null = null;
  slotMapForEach(state.learner.log, executed + 1, Number.MAX_SAFE_INTEGER, (slot, value) => {
    if (value._tag === "reconfig") found = `${showChange(value.change)} is chosen at slot ${slot}, not yet executed`;
    return found === null;
  });
  if (found !== null) return found;
  leader.inflight.forEach((proposal, i) => {
    if (found === null && proposal.value._tag === "reconfig")
      found = `${showChange(proposal.value.change)} is proposed at slot ${leader.inflightBase + i}, not yet executed`;
  });
  if (found !== null) return found;
  const queued = leader.pending.find((batch) => batch.change !== undefined)?.change;
  return queued === undefined ? null : `${showChange(queued)} is queued before it`;
}

/**
 * Queue a membership change in a slot of its own, or refuse it (rule R3): `refused` when it does
 * not fit a configuration the leader can vouch for (`unsettledMembership`), `unavailable` (retry)
 * when it does not fit the one executed so far but a change the leader has yet to execute may
 * make it fit.
 */
export function submitChange<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  change: ConfigChange,
  requestId: number,
  now: number,
  out: ReplicaEffect<I, O>[],
): ReplicaState<S, I, O> {
  const misfit = changeMisfit(state, change);
  const unsettled = misfit === null ? null : unsettledMembership(rules, state, now);
  if (misfit !== null && unsettled !== null) {
    const reason = `${misfit} in the configuration executed so far, but ${unsettled}; retry`;
    out.push({ _tag: "Reply", requestId, result: { _tag: "unavailable", reason, outcomeUnknown: false } });
    return state;
  }
  const refusal = misfit ?? joinerLagging(state, change);
  if (refusal !== null) {
    out.push({ _tag: "Reply", requestId, result: { _tag: "refused", reason: refusal } });
    return state;
  }
  const leader = leaderOf(state);
  const pending = leader.pending.slice();
  pending.push({ newest: { requestId, command: null, earlier: null }, count: 0, bytes: 0, change });
  const next = copyLeader(leader);
  next.pending = pending;
  return withRole(state, next);
}

/** An Accepted for the leader's ballot: a lease grant, and a vote if `from` votes in the slot's configuration. */
export function collectAccepted<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  from: ReplicaId,
  slot: number,
  sentAt: number,
  out: ReplicaEffect<I, O>[],
): ReplicaState<S, I, O> {
  const leader = recordGrant(rules, state, leaderOf(state), peerIndex(leaderOf(state).peers, from), sentAt);
  const index = slot - leader.inflightBase;
  const proposal = leader.inflight[index];
  const voter = proposal === undefined ? -1 : proposal.voters.indexOf(from);
  if (proposal === undefined || voter < 0 || (proposal.acks & (1 << voter)) !== 0)
    return leader === state.role ? state : withRole(state, leader);
  const acked = copyProposal(proposal);
  acked.acks = proposal.acks | (1 << voter);
  const inflight = leader.inflight.slice();
  inflight[index] = acked;
  const next = copyLeader(leader);
  next.inflight = inflight;
  return chooseIfQuorum(rules, withRole(state, next), slot, out);
}

/** The client-visible result of a service output. */
export function resultOf<O>(output: ServiceOutput<O>): ClientResult<O> {
  if (output._tag === "stale") return { _tag: "stale-seq", lastSeq: output.lastSeq };
  if (output._tag === "reused") return { _tag: "seq-reused", seq: output.seq };
  if (output._tag === "expired") return { _tag: "session-expired" };
  if (output._tag === "opened") return { _tag: "session-opened", clientId: output.clientId };
  return { _tag: "ok", output: output.output };
}

function changeResult<O>(e: ExecutedSlot<O>): ClientResult<O> {
  const outcome = e.change;
  if (outcome === undefined) fail(`slot ${e.slot}: a membership change without an outcome`);
  if (outcome._tag === "refused") return { _tag: "refused", reason: outcome.reason };
  const c = outcome.configuration;
  return { _tag: "reconfigured", epoch: c.epoch, governsFrom: c.governsFrom, voters: c.voters, learners: c.learners };
}

/**
 * Answer the clients whose commands were just executed, and drop executed slots from the pipeline.
 * A membership change chosen here makes the leader fill the window up to the slot before it
 * governs with no-ops when idle, so that it takes effect promptly.
 */
export function answerExecuted<S, I, O>(
  state: ReplicaState<S, I, O>,
  executed: readonly ExecutedSlot<O>[],
  out: ReplicaEffect<I, O>[],
): ReplicaState<S, I, O> {
  const leader = leaderOf(state);
  let fillUpTo = leader.fillUpTo;
  for (const e of executed) {
    if (e.change?._tag === "applied") fillUpTo = Math.max(fillUpTo, e.change.configuration.governsFrom - 1);
    const proposal = leader.inflight[e.slot - leader.inflightBase];
    if (proposal === undefined) continue;
    if (proposal.value._tag === "reconfig") {
      const requestId = proposal.requestIds[0] ?? -1;
      if (requestId >= 0) out.push({ _tag: "Reply", requestId, result: changeResult(e) });
      continue;
    }
    for (let i = 0; i < proposal.requestIds.length; i++) {
      const requestId = proposal.requestIds[i]!;
      const output = e.outputs[i];
      if (requestId < 0) continue;
      if (output === undefined) fail(`slot ${e.slot}: no output for command ${i}`);
      out.push({ _tag: "Reply", requestId, result: resultOf(output) });
    }
  }
  const executedUpTo = state.learner.executedUpTo;
  if (executedUpTo < leader.inflightBase && fillUpTo === leader.fillUpTo) return state;
  const next = copyLeader(leader);
  next.fillUpTo = fillUpTo;
  if (executedUpTo >= leader.inflightBase) {
    next.inflight = leader.inflight.slice(executedUpTo + 1 - leader.inflightBase);
    next.inflightBase = executedUpTo + 1;
  }
  // Slots the leader knew chosen before it proposed there (it caught up while campaigning) may be
  // executed past its proposals: they need no proposal, the pipeline just moves on.
  if (executedUpTo >= leader.nextSlot) {
    if (next.inflight.length !== 0) fail(`leader executed slot ${executedUpTo} with proposals still open above it`);
    next.nextSlot = executedUpTo + 1;
  }
  return withRole(state, next);
}

/**
 * A deposed leader answers every request it holds: proposed ones `unavailable` with an unknown
 * outcome (the slot may still be chosen and executed), queued ones `unavailable` (never proposed).
 */
export function failAll<I, O>(leader: Leader<I>, reason: string, out: ReplicaEffect<I, O>[]): void {
  for (const p of leader.inflight) {
    for (const requestId of p.requestIds) {
      if (requestId >= 0)
        out.push({ _tag: "Reply", requestId, result: { _tag: "unavailable", reason, outcomeUnknown: true } });
    }
  }
  for (const batch of leader.pending) {
    for (const requestId of requestIdsOf(batch))
      out.push({ _tag: "Reply", requestId, result: { _tag: "unavailable", reason, outcomeUnknown: false } });
  }
}

/**
 * Heartbeat, when due: renew the self-grant (the leader is one of its own acceptors), send every
 * peer (voters and learners) the commit index and latest checkpoint, and resend Accepts not yet
 * voted for.
 */
export function heartbeat<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  now: number,
  out: ReplicaEffect<I, O>[],
): ReplicaState<S, I, O> {
  let leader = leaderOf(state);
  if (now < leader.heartbeatAt) return state;
  const { ctx } = state;
  const self = ctx.config.self;
  const renewed = renewGrant(rules, state.acceptor, ctx.config, leader.ballot, now);
  if (renewed.record !== null) fail("a leader's maxBal is its own ballot");
  const message = {
    _tag: "Heartbeat",
    ballot: leader.ballot,
    commitIndex: state.learner.executedUpTo,
    sentAt: now,
    checkpoint: latestCheckpoint(state.monitor),
  } as const;
  for (const to of leader.peers) if (to !== self) out.push({ _tag: "Send", to, message });
  leader = recordGrant(rules, state, leader, peerIndex(leader.peers, self), now);
  leader = resendAccepts(state, leader, now, out);
  const next = copyLeader(leader);
  next.heartbeatAt = now + ctx.config.heartbeatIntervalMs;
  const s = copyReplica(state);
  s.acceptor = renewed.acceptor;
  s.role = next;
  return s;
}

/**
 * Longest wait between two resends of one unacknowledged Accept, in heartbeat intervals. Resends
 * back off: the first after one interval, each next after twice the wait before, at most this
 * many intervals (50, 100, 200, 200, ... ms at the defaults). A lost Accept still costs its write
 * at most one such wait, while a voter that is only slow (a long fsync, a loaded machine) gets
 * one copy of each value per wait instead of one per heartbeat: with up to `pipelineSlotsMax`
 * values of up to `batchBytesMax` each, resent every heartbeat, a slow voter was flooded with
 * megabytes it already had, every one to decode, and the leader spent its turns encoding them.
 */
export const acceptResendIntervalsMax = 4;

/**
 * Send again the Accepts of the slots not yet chosen whose resend is due, to the voters that have
 * not voted, backing off per slot (`acceptResendIntervalsMax`). Time enters only as `now`.
 */
function resendAccepts<S, I, O>(
  state: ReplicaState<S, I, O>,
  leader: Leader<I>,
  now: number,
  out: ReplicaEffect<I, O>[],
): Leader<I> {
  const { ctx } = state;
  let inflight: Proposal<I>[] | null = null;
  for (let i = 0; i < leader.inflight.length; i++) {
    const p = leader.inflight[i]!;
    if (p.chosen || now < p.sentAt + p.resendAfterMs) continue;
    const accept: AcceptMsg<I> = {
      _tag: "Accept",
      ballot: leader.ballot,
      slot: leader.inflightBase + i,
      value: p.value,
      commitIndex: state.learner.executedUpTo,
      sentAt: now,
    };
    p.voters.forEach((to, index) => {
      if (to !== ctx.config.self && (p.acks & (1 << index)) === 0) out.push({ _tag: "Send", to, message: accept });
    });
    inflight ??= leader.inflight.slice();
    const resent = copyProposal(p);
    resent.sentAt = now;
    resent.resendAfterMs = Math.min(p.resendAfterMs * 2, ctx.config.heartbeatIntervalMs * acceptResendIntervalsMax);
    inflight[i] = resent;
  }
  if (inflight === null) return leader;
  const next = copyLeader(leader);
  next.inflight = inflight;
  return next;
}

/** A peer reported its executed prefix (in a HeartbeatAck): the leader promotes learners only once they caught up. */
export function recordProgress<I>(leader: Leader<I>, from: ReplicaId, executedUpTo: number): Leader<I> {
  const index = peerIndex(leader.peers, from);
  if (index < 0 || leader.progress[index] === executedUpTo) return leader;
  const progress = leader.progress.slice();
  progress[index] = executedUpTo;
  const next = copyLeader(leader);
  next.progress = progress;
  return next;
}

/**
 * The configurations changed (a change was executed, a configuration stopped governing, or a
 * snapshot was installed): carry the candidate's or leader's per-peer bookkeeping over to the new
 * peer list by id, and recompute the lease from the configurations now held.
 */
export function syncPeers<S, I, O>(rules: ReplicaRules, state: ReplicaState<S, I, O>): ReplicaState<S, I, O> {
  const role = state.role;
  if (role._tag === "follower") return state;
  const peers = peersOf(state.learner.configs, state.ctx.config.self);
  const samePeers = peers.length === role.peers.length && peers.every((id, i) => id === role.peers[i]);
  if (samePeers && role._tag === "candidate") return state;
  if (role._tag === "candidate") {
    const c = copyCandidate(role);
    c.peers = peers;
    c.promised = carryOverMask(role.peers, role.promised, peers);
    c.coversFrom = carryOver(role.peers, role.coversFrom, peers, Number.POSITIVE_INFINITY);
    c.grantSentAt = carryOver(role.peers, role.grantSentAt, peers, Number.NEGATIVE_INFINITY);
    return withRole(state, c);
  }
  const l = copyLeader(role);
  if (!samePeers) {
    l.peers = peers;
    l.promised = carryOverMask(role.peers, role.promised, peers);
    l.coversFrom = carryOver(role.peers, role.coversFrom, peers, Number.POSITIVE_INFINITY);
    l.grantSentAt = carryOver(role.peers, role.grantSentAt, peers, Number.NEGATIVE_INFINITY);
    l.progress = carryOver(role.peers, role.progress, peers, -1);
  }
  return withRole(state, withLease(rules, state, l));
}

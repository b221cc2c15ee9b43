/**
 * The acceptor: Phase1b (promise a ballot, report votes) and Phase2b (vote) of Lamport's Paxos,
 * one instance per slot. Whoever promises or votes for a ballot also grants it a lease (lease.ts,
 * `grant`): on its own clock, it helps no other ballot for `leaseMs`, which `canPromise` enforces.
 *
 * It must never help a ballot below maxBal (Paxos Made Simple, section 2.2, P1a), never help another
 * ballot while a grant is in force (rule L1), never help any ballot but its durable maxBal during the
 * restart wait (rule L4), and never let a promise or vote leave before its record is persisted (the
 * caller emits the returned record before the reply).
 */
import type { Ballot } from "./ballot.ts";
import type { Config } from "./config.ts";
import { fail } from "./assert.ts";
import { sameValue, type HeldValue } from "./at-rest.ts";
import {
  type AcceptMsg,
  type AcceptedMsg,
  type NackMsg,
  type PrepareMsg,
  type PromiseMsg,
  type SlotVote,
} from "./messages.ts";
import type { PromiseRecord, VoteRecord } from "./records.ts";
import type { ReplicaRules } from "./rules.ts";
import { slotMapDropThrough, slotMapForEach, slotMapGet, slotMapSet } from "./slot-map.ts";
import { grant } from "./lease.ts";
import { copyAcceptor, type AcceptorState } from "./state.ts";

/**
 * May this acceptor promise, vote for, or grant a lease to `ballot` at own clock reading `now`?
 *
 * - Never below maxBal (P1a): a promise is a promise.
 * - Rule L1: while a grant is in force (now < grantUntil) only the ballot it was given to. The
 *   leader holding that grant serves reads locally; helping another ballot could let it choose a
 *   write the leaseholder's reads would miss.
 * - Rule L4: during the restart wait (now < noPromiseUntil) only the durable maxBal. Any grant the
 *   replica gave before its crash was to its maxBal at the time (a grant in force blocks every
 *   other ballot, so maxBal cannot have moved past it), and that promise was persisted before the
 *   grant left; so helping the durable maxBal again cannot break a forgotten grant.
 */
export function canPromise<I>(rules: ReplicaRules, acceptor: AcceptorState<I>, ballot: Ballot, now: number): boolean {
  const order = rules.compareBallots(ballot, acceptor.maxBal);
  if (order < 0) return false;
  if (now < acceptor.noPromiseUntil && order !== 0) return false;
  if (now < acceptor.grantUntil && rules.compareBallots(ballot, acceptor.grantTo) !== 0) return false;
  return true;
}

/** The refusal of `ballot`: what this acceptor promised and how long its grant to another ballot still holds. */
export function nackFor<I>(rules: ReplicaRules, acceptor: AcceptorState<I>, ballot: Ballot, now: number): NackMsg {
  const grantRemainingMs =
    now < acceptor.grantUntil && rules.compareBallots(ballot, acceptor.grantTo) !== 0 ? acceptor.grantUntil - now : 0;
  const waitRemainingMs = now < acceptor.noPromiseUntil ? acceptor.noPromiseUntil - now : 0;
  return {
    _tag: "Nack",
    ballot,
    promised: acceptor.maxBal,
    grantRemainingMs: Math.max(grantRemainingMs, waitRemainingMs),
  };
}

/** The acceptor's state after a step, the record to persist first (if any), and its reply. */
export interface AcceptorStep<I, Rec, Reply> {
  readonly acceptor: AcceptorState<I>;
  readonly record: Rec | null;
  readonly reply: Reply;
}

/**
 * Phase1b(a) of Paxos.tla, for every slot >= fromSlot at once: promise `m.ballot` (maxBal :=
 * m.ballot, persisted when it rises) and report the latest vote of every such slot above the
 * point through which it omits votes, together with that point: the votes at or below the
 * truncation point are forgotten, and the Promise must say so rather than look like "no vote
 * there". With `promiseOmitsChosen` the point is the replica's executed prefix `executedUpTo`
 * (0 without it; rule T3, `rules.promiseOmitsThrough`): those slots are chosen, the candidate
 * fetches their values by catch-up rather than in the Promise, and the Promise counts only above
 * them (rule T2). A Prepare of the ballot already promised is answered again (retransmission)
 * without a new record.
 * Precondition: `rules.canPromise(rules, acceptor, m.ballot, now)`.
 */
export function phase1b<I>(
  rules: ReplicaRules,
  acceptor: AcceptorState<I>,
  config: Config,
  m: PrepareMsg,
  now: number,
  executedUpTo: number,
): AcceptorStep<I, PromiseRecord, PromiseMsg<I, HeldValue<I>>> {
  if (!rules.canPromise(rules, acceptor, m.ballot, now))
    fail(`phase1b: may not promise ${m.ballot.round},${m.ballot.replica}`);
  const rises = rules.compareBallots(m.ballot, acceptor.maxBal) > 0;
  // A vote at a slot this replica executed may be at rest: the reply then goes as a SendStored.
  const votes: SlotVote<I, HeldValue<I>>[] = [];
  const omitted = rules.promiseOmitsThrough(acceptor.truncatedUpTo, executedUpTo);
  const from = Math.max(m.fromSlot, omitted + 1);
  slotMapForEach(acceptor.votes, from, Number.MAX_SAFE_INTEGER, (slot, vote) => {
    votes.push({ slot, ballot: vote.ballot, value: vote.value });
    return true;
  });
  return {
    acceptor: grant(rules, acceptor, config, m.ballot, now),
    record: rises ? { _tag: "promise", ballot: m.ballot } : null,
    reply: {
      _tag: "Promise",
      ballot: m.ballot,
      fromSlot: m.fromSlot,
      truncatedUpTo: omitted,
      votes,
      sentAt: m.sentAt,
    },
  };
}

/**
 * Phase2b(a) of Paxos.tla at slot `m.slot`: vote for `m.value` in `m.ballot` (maxBal := m.ballot,
 * votes[slot] := (m.ballot, m.value)). A repeated Accept of the same ballot and slot is answered
 * again without a new record; by OneValuePerBallot its value must be the same. At a slot at or
 * below the truncation point the acceptor votes too: the slot is chosen, so a leader whose phase
 * 1 was complete there proposes the chosen value (Paxos's P2c), and the vote can only help that
 * leader learn it; such a vote is forgotten again at the next truncation.
 * Precondition: `rules.canPromise(rules, acceptor, m.ballot, now)`.
 */
export function phase2b<I>(
  rules: ReplicaRules,
  acceptor: AcceptorState<I>,
  config: Config,
  m: AcceptMsg<I>,
  now: number,
): AcceptorStep<I, VoteRecord<I>, AcceptedMsg> {
  if (!rules.canPromise(rules, acceptor, m.ballot, now))
    fail(`phase2b: may not vote in ${m.ballot.round},${m.ballot.replica}`);
  const existing = slotMapGet(acceptor.votes, m.slot);
  const repeat = existing !== undefined && rules.compareBallots(existing.ballot, m.ballot) === 0;
  if (repeat && !sameValue(existing.value, m.value)) {
    fail(`OneValuePerBallot: two values proposed at slot ${m.slot} in ballot (${m.ballot.round},${m.ballot.replica})`);
  }
  if (existing !== undefined && rules.compareBallots(existing.ballot, m.ballot) > 0) {
    fail(`phase2b: a vote in a higher ballot than maxBal at slot ${m.slot}`);
  }
  const granted = grant(rules, acceptor, config, m.ballot, now);
  if (!repeat) granted.votes = slotMapSet(acceptor.votes, m.slot, { ballot: m.ballot, value: m.value });
  return {
    acceptor: granted,
    record: repeat ? null : { _tag: "vote", slot: m.slot, ballot: m.ballot, value: m.value },
    reply: { _tag: "Accepted", ballot: m.ballot, slot: m.slot, sentAt: m.sentAt },
  };
}

/**
 * Rule T3: the slot through which a Promise omits its votes, given the acceptor's truncation point
 * and the executed prefix it may report chosen (0 unless `promiseOmitsChosen`): never above what
 * the replica knows chosen and can hand over (its snapshot and its log of executed slots), so that
 * the candidate can fetch those values by catch-up. Safety rests on rule T2, which counts the
 * Promise only above this point whatever it is; this bound keeps the claim "chosen" true
 * (PromiseReportsVotes) and the candidate live.
 */
export function promiseOmitsThrough(truncatedUpTo: number, executedUpTo: number): number {
  return Math.max(truncatedUpTo, executedUpTo);
}

/**
 * Forget the votes at slots <= `through` (truncation). Precondition: every such slot is chosen and
 * executed into a snapshot whose record is persisted before any later effect (so no Promise that
 * omits them leaves first). proofs/truncation.md states why no vote that could still matter is lost.
 */
export function truncateVotes<I>(acceptor: AcceptorState<I>, through: number): AcceptorState<I> {
  if (through <= acceptor.truncatedUpTo) return acceptor;
  const a = copyAcceptor(acceptor);
  a.votes = slotMapDropThrough(acceptor.votes, through);
  a.truncatedUpTo = through;
  return a;
}

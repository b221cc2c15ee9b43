/**
 * `step`: the whole replica as one pure function from (state, event) to (state, effects), in the
 * style of etcd-io/raft's `Step`. A message's ballot is handled first (refuse it, or step down
 * before helping it); then the message is dispatched to the role that handles it. Role changes
 * are the verbs `becomeCandidate`, `becomeLeader`, `stepDown` and `halt`.
 *
 * `step` must never read a clock (time is `event.now`), draw randomness outside the seeded
 * generator in the state, perform I/O, or mutate the state it is given. The effects it returns
 * are ordered: a Persist must be durable before any later effect is carried out.
 */
import { featureLevelOf, featureLevelSessionsOpened, sessionOf } from "../../spec/service.ts";
import { inMemory, sameValue, type StoredMessage } from "./at-rest.ts";
import { fail } from "./assert.ts";
import { checkQuorumFails, noteStall } from "./check-quorum.ts";
import { nackFor, phase1b, phase2b } from "./acceptor.ts";
import { showBallot, type Ballot } from "./ballot.ts";
import { configurationFor, pruneConfigurations, type Configuration } from "./configuration.ts";
import {
  electionDue,
  nextBallot,
  noteRound,
  resetElectionTimer,
  restartElectionTimer,
  waitAfterStall,
} from "./election.ts";
import type {
  ClientRequest,
  Effect,
  EntriesRead,
  Event,
  OpenSessionRequest,
  ReconfigureRequest,
  ReplicaId,
  StepResult,
} from "./events.ts";
import {
  answerExecuted,
  collectAccepted,
  collectPromise,
  failAll,
  heartbeat,
  ownVoteDurable,
  proposeReady,
  recordProgress,
  resultOf,
  stalledBehind,
  submit,
  submitChange,
  submitOpen,
  syncPeers,
  unsettledMembership,
} from "./leader.ts";
import {
  answerCatchUp,
  catchUpFromAsker,
  catchUpOf,
  executeReady,
  unsupportedMessage,
  type UnsupportedLevel,
  learnCommitted,
  withCommitIndexAtLeast,
  needsCatchUp,
  receiveCatchUp,
  keysReadBy,
  putAtRest,
  restAgain,
  requestCatchUp,
  type ReadBack,
  sendHeld,
  takeSnapshot,
} from "./learner.ts";
import { dropSelfGrant, leaseFromConfiguration, recordGrant, renewGrant, selfGrantOnly } from "./lease.ts";
import {
  type AcceptMsg,
  type HeartbeatMsg,
  type Message,
  type NackMsg,
  type PrepareMsg,
  type PromiseMsg,
  type Value,
  valuesEqual,
} from "./messages.ts";
import { comparePeerCheckpoint, divergenceMessage, latestCheckpoint, type Divergence } from "./monitor.ts";
import { peerIndex, peersOf, phase1Covers } from "./quorums.ts";
import type { ChosenVoteRecord, DurableRecord, SnapshotRecord } from "./records.ts";
import { defaultRules, type ReplicaRules } from "./rules.ts";
import { keptSnapshot, readSnapshot, restingSnapshot } from "./snapshot.ts";
import { sameEntry, type StoredEntry } from "./store-at-rest.ts";
import { emptySlotMap, slotMapDropThrough, slotMapGet, slotMapHas, slotMapSet, type SlotMap } from "./slot-map.ts";
import {
  copyAcceptor,
  copyCandidate,
  copyElection,
  copyLearner,
  copyMonitor,
  copyReplica,
  follower,
  freshState,
  noOrigins,
  ownBallot,
  withAcceptor,
  withLearner,
  withMonitor,
  withRole,
  type AcceptorState,
  type Candidate,
  type Draft,
  type HeldVote,
  type Leader,
  type LearnerState,
  type Removal,
  type ReplicaState,
  type Vote,
} from "./state.ts";
import {
  answerSnapshotRequest,
  expireServed,
  receiveChunk,
  requestSnapshot,
  resumeKept,
  takeKept,
  tickTransfer,
} from "./transfer.ts";

/** An event for a replica of an application with inputs I. */
export type ReplicaEvent<I> = Event<Message<I>, DurableRecord<I>, I>;
/** An effect of a replica of an application with inputs I and outputs O. */
export type ReplicaEffect<I, O> = Effect<Message<I>, DurableRecord<I>, O, StoredMessage<I>>;
/** What `step` returns. */
export type ReplicaStepResult<S, I, O> = StepResult<
  ReplicaState<S, I, O>,
  Message<I>,
  DurableRecord<I>,
  O,
  StoredMessage<I>
>;
/**
 * The step function's type. `rules`, when present, are the rules it was assembled from
 * (`makeStep`): checkers ask them what the replica would do, for example whether it would answer a
 * read by lease (rule L3), which is what holding a lease means (proofs/leases.md).
 */
export interface Step {
  <S, I, O>(state: ReplicaState<S, I, O>, event: ReplicaEvent<I>): ReplicaStepResult<S, I, O>;
  readonly rules?: ReplicaRules;
}

type Out<I, O> = ReplicaEffect<I, O>[];

/** Assemble the replica's step function from `rules`. */
export function makeStep(rules: ReplicaRules): Step {
  const step = <S, I, O>(state: ReplicaState<S, I, O>, event: ReplicaEvent<I>): ReplicaStepResult<S, I, O> => {
    const effects: Out<I, O> = [];
    const next = dispatch(rules, state, event, effects);
    return { state: next, effects: chosenRecordsLast(effects) };
  };
  return Object.assign(step, { rules });
}

/**
 * Move `chosen` records after every other effect of the step (keeping their order). They only
 * speed up recovery (a restarted replica executes its log again without asking its peers); safety
 * never rests on them, since a value is chosen because a quorum's vote records are durable. So a
 * reply to a client need not wait for their fsync: a write costs one fsync on the leader's
 * critical path, not two. Every other Persist keeps its place.
 */
function chosenRecordsLast<I, O>(effects: Out<I, O>): Out<I, O> {
  let chosenAt = -1;
  for (let i = 0; i < effects.length; i++) {
    const e = effects[i]!;
    if (e._tag === "Persist" && e.record._tag === "chosen") {
      if (chosenAt < 0) chosenAt = i;
    } else if (chosenAt >= 0) {
      const others = effects.filter((x) => !(x._tag === "Persist" && x.record._tag === "chosen"));
      const chosen = effects.filter((x) => x._tag === "Persist" && x.record._tag === "chosen");
      return others.concat(chosen);
    }
  }
  return effects;
}

function dispatch<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  event: ReplicaEvent<I>,
  out: Out<I, O>,
): ReplicaState<S, I, O> {
  if (state.removal?.retired != null) return retiredStep(state, event, out);
  return noteRemoval(rules, handle(rules, state, event, out), event, out);
}

function handle<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  event: ReplicaEvent<I>,
  out: Out<I, O>,
): ReplicaState<S, I, O> {
  if (event._tag === "Recover") {
    const recovered = recover(rules, state, event.records, event.now);
    return event.kept === undefined ? recovered : resumeKept(rules, recovered, event.kept);
  }
  if (!state.started) fail(`the first event after a (re)start must be Recover, got ${event._tag}`);
  if (!(event.now >= state.now)) fail(`clock went backwards: ${event.now} after ${state.now}`);
  let s = state;
  if (state.now !== event.now) {
    const c = copyReplica(state);
    c.now = event.now;
    // A leader stepped again only past its heartbeat's due time was stalled: CheckQuorum skips it.
    s = noteStall(rules, c, state.now, event.now);
    // A follower stepped again only past its election deadline was stalled: it waits for its leader.
    s = waitAfterStall(s, state.now, event.now);
  }
  if (s.halted !== null) {
    if (event._tag === "ClientRequest" || event._tag === "Reconfigure" || event._tag === "OpenSession")
      out.push(unavailable(event.requestId, `replica stopped: ${s.halted.message}`, false));
    return s;
  }
  switch (event._tag) {
    case "Receive":
      return receive(rules, s, event.from, event.message, event.now, out);
    case "Tick":
      return tick(rules, s, event.now, out);
    case "ClientRequest":
      // A replica whose removal is chosen serves no client: it may not lead the slots after the
      // window, and its hints may name itself. Until it retires it only votes and answers catch-up.
      if (s.removal !== null) {
        out.push(unavailable(event.requestId, `replica ${s.ctx.config.self} is being removed from the cluster`, false));
        return s;
      }
      return clientRequest(rules, s, event, out);
    case "Reconfigure":
      return reconfigure(rules, s, event, out);
    case "OpenSession":
      if (s.removal !== null) {
        out.push(unavailable(event.requestId, `replica ${s.ctx.config.self} is being removed from the cluster`, false));
        return s;
      }
      return openSessionRequest(rules, s, event, out);
    case "VoteDurable":
      return afterLearning(rules, ownVoteDurable(rules, s, event.slot, event.ballot, out), event.now, out);
    case "FeaturesKnown":
      return featuresKnown(rules, s, event.level, event.now, out);
    case "EntriesRead":
      return entriesRead(rules, s, event, out);
    case "KeptChunks":
      return takeKept(rules, s, event, out);
  }
}

/**
 * The driver's count of what the members execute (`FeaturesKnown`). A leader held back from its
 * raise by a lower count proposes it as soon as the count reaches its configured level.
 */
function featuresKnown<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  level: number,
  now: number,
  out: Out<I, O>,
): ReplicaState<S, I, O> {
  if (!Number.isSafeInteger(level) || level < 1) fail(`FeaturesKnown: level ${level} is not a positive integer`);
  if (level === state.featuresKnown) return state;
  const c = copyReplica(state);
  c.featuresKnown = level;
  return c.role._tag === "leader" ? propose(rules, c, now, out) : c;
}

/** A retired replica does nothing: it refuses requests and ignores everything else (its driver stops it). */
function retiredStep<S, I, O>(
  state: ReplicaState<S, I, O>,
  event: ReplicaEvent<I>,
  out: Out<I, O>,
): ReplicaState<S, I, O> {
  if (event._tag === "ClientRequest" || event._tag === "Reconfigure" || event._tag === "OpenSession")
    out.push(unavailable(event.requestId, state.removal!.retired!, false));
  return state;
}

/**
 * Follow this replica's own removal (rule R5): once its removal is chosen, note how far it got,
 * when it last made progress, and whether a voter of the configuration that removed it has told
 * it (a heartbeat) that every slot before that configuration governs is chosen; once
 * `rules.retirement` says so, step down and retire. From then on `step` does nothing
 * (`retiredStep`).
 */
function noteRemoval<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  event: ReplicaEvent<I>,
  out: Out<I, O>,
): ReplicaState<S, I, O> {
  if (!state.started || state.halted !== null) return state;
  const now = event.now;
  const configs = state.learner.configs;
  const latest = configs[configs.length - 1]!;
  const self = state.ctx.config.self;
  const removal = state.removal;
  // A member of the latest configuration is neither removed nor retiring: the common case, decided here.
  if (latest.voters.includes(self) || latest.learners.includes(self))
    return removal === null ? state : withRemoval(state, null);
  if (!latest.retired.includes(self))
    return rules.retirement(state, now) === null ? state : retire(rules, state, now, out);
  const executedUpTo = state.learner.executedUpTo;
  const handedOver = (removal?.handedOver ?? false) || handsOver(configs, self, event);
  // The hand-over is durable: a restart must not make it wait for one again, from members it knows
  // that may all have retired by then (`recover`).
  if (handedOver && !(removal?.handedOver ?? false))
    out.push({ _tag: "Persist", record: { _tag: "handOver", epoch: removedBy(configs, self).epoch } });
  const noted: Removal =
    removal === null || executedUpTo > removal.executedUpTo || handedOver !== removal.handedOver
      ? {
          executedUpTo,
          progressAt: removal === null || executedUpTo > removal.executedUpTo ? now : removal.progressAt,
          handedOver,
          retired: null,
        }
      : removal;
  const s = noted === removal ? state : withRemoval(state, noted);
  return rules.retirement(s, now) === null ? s : retire(rules, s, now, out);
}

/** Step down and retire, for the reason `rules.retirement` gives. */
function retire<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  now: number,
  out: Out<I, O>,
): ReplicaState<S, I, O> {
  const reason = rules.retirement(state, now)!;
  const removal = state.removal;
  return withRemoval(stepDown(rules, state, now, reason, out), {
    executedUpTo: removal?.executedUpTo ?? state.learner.executedUpTo,
    progressAt: removal?.progressAt ?? now,
    handedOver: removal?.handedOver ?? false,
    retired: reason,
  });
}

/**
 * Is `event` a heartbeat from a member of the latest configuration (which no longer lists `self`)
 * saying that every slot before the first configuration that removed `self` governs is chosen?
 * That member then knows all of them, so the configurations that go on without `self` can learn
 * them from it; a replica that retired before any of them did might have left none able to.
 * A member is a voter or a learner: only a leader sends heartbeats, so a learner of the latest
 * configuration this replica knows that sends one has since been promoted, and leads a later
 * configuration, which goes on without `self` too (a retired id is never added again, and no change
 * makes a voter a learner). A removed replica that missed the changes after its own asks them both
 * (`awaitHandOver`): the voters it knows may all have retired since, the leader in force may be a
 * learner it knows. A heartbeat from a replica that the latest configuration retired never counts:
 * it may be a removed leader's last one, and that leader leaves with it.
 */
function handsOver<I>(configs: readonly Configuration[], self: ReplicaId, event: ReplicaEvent<I>): boolean {
  if (event._tag !== "Receive" || event.message._tag !== "Heartbeat") return false;
  const latest = configs[configs.length - 1]!;
  if (!latest.voters.includes(event.from) && !latest.learners.includes(event.from)) return false;
  return event.message.commitIndex >= removedBy(configs, self).governsFrom - 1;
}

/** The first configuration held that retires `self` (the latest if none does). */
function removedBy(configs: readonly Configuration[], self: ReplicaId): Configuration {
  return configs.find((c) => c.retired.includes(self)) ?? configs[configs.length - 1]!;
}

function withRemoval<S, I, O>(state: ReplicaState<S, I, O>, removal: Removal | null): ReplicaState<S, I, O> {
  const s = copyReplica(state);
  s.removal = removal;
  return s;
}

function unavailable<I, O>(requestId: number, reason: string, outcomeUnknown: boolean): ReplicaEffect<I, O> {
  return { _tag: "Reply", requestId, result: { _tag: "unavailable", reason, outcomeUnknown } };
}

// ---------------------------------------------------------------------------------------------
// Recover
// ---------------------------------------------------------------------------------------------

/**
 * Rebuild a replica from its durable records alone (Paxos Made Simple, section 2.3): maxBal is the
 * highest ballot promised, voted in, or carried by a snapshot; each slot's vote is its last vote
 * record; the log holds the chosen records; the latest snapshot record stands for the prefix it
 * covers (its votes and log below are forgotten, exactly as they were when it was taken); the
 * chosen log above it is executed again. Grants are forgotten, hence the restart wait (rule L4).
 * A hand-over record makes a removed replica restart handed over (`resumeHandedOver`, rule R5).
 * Records that contradict each other, or a snapshot that does not match its digests, are refused:
 * they mean a corrupted disk. A snapshot whose Persist never became durable is simply absent.
 */
export function recover<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  records: readonly DurableRecord<I>[],
  now: number,
): ReplicaState<S, I, O> {
  const fresh = freshState(state.ctx);
  let maxBal = fresh.acceptor.maxBal;
  let votes: SlotMap<Vote<I>> = emptySlotMap();
  let log: SlotMap<Value<I>> = emptySlotMap();
  // The last vote record at each slot above the log's truncation point, for the chosen records
  // that name one (a snapshot drops votes from `votes` up to its slot, not from here).
  let voted: SlotMap<Vote<I>> = emptySlotMap();
  let snapshot: SnapshotRecord | null = null;
  let prior: SnapshotRecord | null = null;
  let handedOver = false;
  for (const record of records) {
    switch (record._tag) {
      case "promise":
        maxBal = higher(rules, maxBal, record.ballot);
        break;
      case "vote": {
        const previous = slotMapGet(votes, record.slot);
        // The same vote again is no contradiction: an Accept resent after a snapshot dropped the
        // slot's vote is voted anew, and compaction keeps both records of a slot whose vote wrote a
        // value at rest (rule V3) while it may delete the snapshot between them.
        const again =
          previous !== undefined &&
          rules.compareBallots(previous.ballot, record.ballot) === 0 &&
          valuesEqual(previous.value, record.value);
        if (previous !== undefined && !again && rules.compareBallots(previous.ballot, record.ballot) >= 0) {
          fail(
            `recover: vote record at slot ${record.slot} in ${showBallot(record.ballot)} follows one in ${showBallot(previous.ballot)}`,
          );
        }
        votes = slotMapSet(votes, record.slot, { ballot: record.ballot, value: record.value });
        voted = slotMapSet(voted, record.slot, { ballot: record.ballot, value: record.value });
        maxBal = higher(rules, maxBal, record.ballot);
        break;
      }
      case "chosen":
        // Chosen records are written after the other effects of their step (`chosenRecordsLast`),
        // so those of the slots a snapshot covers may follow it; the log keeps what the live one kept.
        if (snapshot !== null && record.slot <= snapshot.logTruncatedUpTo) break;
        if (slotMapGet(log, record.slot) !== undefined) fail(`recover: slot ${record.slot} has two chosen records`);
        log = slotMapSet(log, record.slot, "value" in record ? record.value : votedValue(rules, voted, record));
        break;
      case "snapshot":
        if (snapshot !== null && record.slot <= snapshot.slot)
          fail(`recover: a snapshot of slot ${record.slot} after one of slot ${snapshot.slot}`);
        prior = snapshot;
        snapshot = record;
        maxBal = higher(rules, maxBal, record.maxBal);
        votes = slotMapDropThrough(votes, record.slot);
        log = slotMapDropThrough(log, record.logTruncatedUpTo);
        voted = slotMapDropThrough(voted, record.logTruncatedUpTo);
        break;
      case "handOver":
        handedOver = true;
        break;
    }
  }
  const acceptor = copyAcceptor(fresh.acceptor);
  acceptor.maxBal = maxBal;
  acceptor.votes = votes;
  acceptor.noPromiseUntil = rules.restartWaitUntil(now, state.ctx.config);
  const learner = copyLearner(fresh.learner);
  learner.log = log;
  const rebuilt = copyReplica(fresh);
  if (snapshot !== null) restoreSnapshot(rules, rebuilt, acceptor, learner, snapshot);
  // With values at rest its chunks are read from its record: its bytes need not stay in memory.
  if (prior !== null)
    learner.priorSnapshot = state.ctx.config.valuesAtRest
      ? restingSnapshot(prior, prior.data.length)
      : { slot: prior.slot, digest: prior.digest, contentDigest: prior.contentDigest, data: prior.data };
  const election = copyElection(fresh.election);
  election.roundSeen = maxBal.round;
  rebuilt.started = true;
  rebuilt.now = now;
  rebuilt.acceptor = acceptor;
  rebuilt.learner = learner;
  rebuilt.election = election;
  let executed = executeReady(rules, rebuilt, false).state;
  if (state.ctx.config.valuesAtRest)
    executed = restSlots(rules, executed, executed.learner.logTruncatedUpTo + 1, executed.learner.executedUpTo, voted);
  const recovered = restartElectionTimer(executed, now);
  return handedOver ? resumeHandedOver(recovered, now) : recovered;
}

/**
 * Put at rest the values of the executed slots `from`..`to` that a vote record holds
 * (`valuesAtRest`, `putAtRest`). After a recovery `voted` names the last vote record of every
 * slot above the log's truncation point: the log's tail at and below the snapshot rests on them,
 * although the acceptor forgot those votes (`compactRecords` keeps their records).
 */
function restSlots<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  from: number,
  to: number,
  voted: SlotMap<HeldVote<I>> = state.acceptor.votes,
): ReplicaState<S, I, O> {
  const next = copyReplica(state);
  const learner = copyLearner(state.learner);
  putAtRest(rules, next, learner, from, to, voted);
  next.learner = learner;
  return next;
}

/** The value a chosen record names by its vote: the last vote record at its slot, in its ballot. */
function votedValue<I>(rules: ReplicaRules, voted: SlotMap<Vote<I>>, record: ChosenVoteRecord): Value<I> {
  const vote = slotMapGet(voted, record.slot);
  if (vote === undefined || rules.compareBallots(vote.ballot, record.ballot) !== 0) {
    fail(
      `recover: the chosen record at slot ${record.slot} names a vote in ${showBallot(record.ballot)}, but the last vote record there is ${vote === undefined ? "none" : `in ${showBallot(vote.ballot)}`}`,
    );
  }
  return vote.value;
}

/**
 * A replica whose hand-over record is durable (rule R5) restarts handed over: it retires once its
 * removal governs its next slot to execute, or `retireGraceMs` after this restart if it executes
 * nothing, without waiting for a hand-over again. The members of the configuration it knows may
 * all have retired meanwhile, leaving nobody it knows to hand over. A record whose removal is not
 * among the recovered configurations (the records of the slots up to it were not yet durable when
 * it crashed) is left aside: the replica learns its removal again and waits for a hand-over again.
 */
function resumeHandedOver<S, I, O>(state: ReplicaState<S, I, O>, now: number): ReplicaState<S, I, O> {
  const configs = state.learner.configs;
  if (!configs[configs.length - 1]!.retired.includes(state.ctx.config.self)) return state;
  return withRemoval(state, {
    executedUpTo: state.learner.executedUpTo,
    progressAt: now,
    handedOver: true,
    retired: null,
  });
}

/** The higher of two ballots, by the rules' order. */
function higher(rules: ReplicaRules, a: Ballot, b: Ballot): Ballot {
  return rules.compareBallots(b, a) > 0 ? b : a;
}

/**
 * Recover from a snapshot record: its state becomes the executed prefix and its slot the votes'
 * truncation point. A snapshot that does not check out means a corrupted disk: stop loudly.
 */
function restoreSnapshot<S, I, O>(
  rules: ReplicaRules,
  rebuilt: Draft<ReplicaState<S, I, O>>,
  acceptor: Draft<AcceptorState<I>>,
  learner: Draft<LearnerState<S, I, O>>,
  record: SnapshotRecord,
): void {
  const contents = rules.verifySnapshot(rebuilt.ctx, readSnapshot(record.data), record);
  if (typeof contents === "string") fail(`recover: the snapshot of slot ${record.slot} is corrupt: ${contents}`);
  acceptor.truncatedUpTo = record.slot;
  learner.service = contents.service;
  learner.origins = noOrigins; // the snapshot's values are in memory, named by no vote
  learner.executedUpTo = record.slot;
  learner.commitIndex = record.slot;
  learner.configs = pruneConfigurations(contents.configs, record.slot + 1);
  // Kept as its state's serialization when that gives its bytes again: the string read from disk goes.
  learner.snapshot = keptSnapshot(rebuilt.ctx, contents, record.data, record);
  learner.logTruncatedUpTo = record.logTruncatedUpTo;
  // The chosen records of slots the snapshot covers may have been lost in a crash (they are written
  // last in their step): then the log holds nothing it could serve below the snapshot.
  for (let slot = record.logTruncatedUpTo + 1; slot <= record.slot; slot++) {
    if (slotMapGet(learner.log, slot) !== undefined) continue;
    learner.logTruncatedUpTo = record.slot;
    learner.log = slotMapDropThrough(learner.log, record.slot);
    break;
  }
  const monitor = copyMonitor(rebuilt.monitor);
  monitor.outputDigestA = contents.outputDigestA;
  monitor.outputDigestB = contents.outputDigestB;
  monitor.checkpoints = contents.checkpoints;
  rebuilt.monitor = monitor;
}

// ---------------------------------------------------------------------------------------------
// Transitions
// ---------------------------------------------------------------------------------------------

/**
 * Campaign: take a ballot above every round seen, promise it to self (persisted), and send
 * Prepare (Phase1a) for every slot from the first unexecuted one to the voters of every
 * configuration held (the one governing that slot and the pending ones).
 * Precondition: `rules.mayCampaign(rules, state, now)`.
 */
export function becomeCandidate<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  now: number,
  out: Out<I, O>,
): ReplicaState<S, I, O> {
  if (state.role._tag !== "follower") fail(`becomeCandidate from ${state.role._tag}`);
  const self = state.ctx.config.self;
  const ballot = nextBallot(state);
  const fromSlot = state.learner.executedUpTo + 1;
  const prepare: PrepareMsg = { _tag: "Prepare", ballot, fromSlot, sentAt: now };
  const own = phase1b(rules, state.acceptor, state.ctx.config, prepare, now, reportableChosen(state));
  if (own.record === null) fail(`a new ballot ${showBallot(ballot)} must raise maxBal`);
  out.push({ _tag: "Persist", record: own.record });
  for (const to of votersOf(state)) if (to !== self) out.push({ _tag: "Send", to, message: prepare });
  let revealed: SlotMap<Vote<I>> = emptySlotMap();
  // Its own votes from its first unexecuted slot on: none is at rest (only executed slots' are).
  for (const v of own.reply.votes)
    revealed = slotMapSet(revealed, v.slot, { ballot: v.ballot, value: inMemory(v.value, "becomeCandidate") });
  const peers = peersOf(state.learner.configs, self);
  const covers = rules.promiseCoversFrom(fromSlot, own.reply.truncatedUpTo);
  const role: Candidate<I> = {
    _tag: "candidate",
    ballot,
    fromSlot,
    peers,
    promised: 1 << peerIndex(peers, self),
    coversFrom: peers.map((id) => (id === self ? covers : Number.POSITIVE_INFINITY)),
    revealed,
    prepareSentAt: now,
    prepareResendAfterMs: state.ctx.config.heartbeatIntervalMs,
    grantSentAt: selfGrantOnly(peers, self, now),
  };
  const s = copyReplica(state);
  s.role = role;
  s.acceptor = own.acceptor;
  s.learner = withLeaderHint(state.learner, null);
  return maybeElected(rules, restartElectionTimer(s, now), now, out);
}

/** Every voter of every configuration this replica holds, ascending. */
function votersOf<S, I, O>(state: ReplicaState<S, I, O>): ReplicaId[] {
  const ids = new Set<ReplicaId>();
  for (const c of state.learner.configs) for (const v of c.voters) ids.add(v);
  return [...ids].sort((a, b) => a - b);
}

function withLeaderHint<S, I, O>(learner: LearnerState<S, I, O>, leaderHint: ReplicaId | null): LearnerState<S, I, O> {
  if (learner.leaderHint === leaderHint) return learner;
  const l = copyLearner(learner);
  l.leaderHint = leaderHint;
  return l;
}

/**
 * The executed prefix a Promise of this replica may report chosen in place of its votes (rule T3,
 * acceptor.ts `phase1b`): all of it with `promiseOmitsChosen`, none without.
 */
function reportableChosen<S, I, O>(state: ReplicaState<S, I, O>): number {
  return state.ctx.config.promiseOmitsChosen ? state.learner.executedUpTo : 0;
}

/**
 * The first slot this candidate would propose at if elected now: its first unexecuted slot
 * (becomeLeader proposes from there). Without `promiseOmitsChosen`, the slot it campaigned from:
 * its stories and committed traces elect as before.
 */
function electionStart<S, I, O>(state: ReplicaState<S, I, O>, fromSlot: number): number {
  return state.ctx.config.promiseOmitsChosen ? Math.max(fromSlot, state.learner.executedUpTo + 1) : fromSlot;
}

/**
 * Phase 1 covers the first slot it would propose at (a quorum of its configuration promised, with
 * Promises reporting it): lead. With `promiseOmitsChosen` that slot moves up as the candidate
 * executes the chosen slots that Promises omitted (`catchUpToReported`): it never proposes at a
 * slot it has not either executed or seen covered by a quorum's Promises (rule T2).
 */
function maybeElected<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  now: number,
  out: Out<I, O>,
): ReplicaState<S, I, O> {
  const role = state.role;
  if (role._tag !== "candidate") return state;
  const start = electionStart(state, role.fromSlot);
  const config = configurationFor(state.learner.configs, start);
  if (!phase1Covers(rules, role, config, start)) return state;
  return becomeLeader(rules, state, now, out);
}

/**
 * A candidate told by a Promise that slots through `chosenUpTo` are chosen (rule T3: the acceptor
 * executed them) learns that they are (its commit index) and asks that acceptor for their values,
 * one CatchUp at a time: each reply asks for the next (the CatchUpReply case of `receive`), a lost
 * one is asked again after a heartbeat interval (`tick`). A reply holds at most `catchUpSlotsMax`
 * entries and `batchBytesMax` bytes; a log truncated below the asked slot answers with a state
 * transfer instead (`answerCatchUp`).
 */
function catchUpToReported<S, I, O>(
  state: ReplicaState<S, I, O>,
  from: ReplicaId,
  chosenUpTo: number,
  now: number,
  out: Out<I, O>,
): ReplicaState<S, I, O> {
  return requestCatchUp(withCommitIndexAtLeast(state, chosenUpTo), from, now, out);
}

/** A peer whose Promise for this candidate's ballot reported chosen slots it has not executed yet, or null. */
function reportedAhead<S, I, O>(state: ReplicaState<S, I, O>, c: Candidate<I>): ReplicaId | null {
  const start = electionStart(state, c.fromSlot);
  for (let i = 0; i < c.peers.length; i++)
    if ((c.promised & (1 << i)) !== 0 && c.coversFrom[i]! > start) return c.peers[i]!;
  return null;
}

/**
 * Phase 1 is complete for the first slot: lead. Announce with a heartbeat at once, then propose
 * the slots phase 1 covered (re-proposals, no-ops in gaps), then client commands; phase 1 goes on
 * for any configuration whose voters have not promised yet. The lease counts from the Promises'
 * grants in the configuration governing its next slot.
 */
export function becomeLeader<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  now: number,
  out: Out<I, O>,
): ReplicaState<S, I, O> {
  const c = state.role;
  if (c._tag !== "candidate") fail(`becomeLeader from ${c._tag}`);
  if (rules.compareBallots(state.acceptor.maxBal, c.ballot) !== 0)
    fail(`becomeLeader: maxBal ${showBallot(state.acceptor.maxBal)} is not the ballot ${showBallot(c.ballot)}`);
  const { configs } = state.learner;
  const from = leaseFromConfiguration(rules, c.peers, c.grantSentAt, configs[0]!);
  const nextSlot = state.learner.executedUpTo + 1;
  const { prepareResendAfterMs: _resendAfter, ...phaseOne } = copyCandidate(c);
  const leader: Leader<I> = {
    // What phase 1 gathered carries over as it is.
    ...phaseOne,
    _tag: "leader",
    // Lease reads also wait for the slots the candidate already knew chosen beyond its executed
    // prefix (learned by catch-up while campaigning): a write acknowledged there is re-proposed.
    phase1MaxSlot: Math.max(c.fromSlot - 1, c.revealed.last, state.learner.log.last),
    nextSlot,
    inflightBase: nextSlot,
    inflight: [],
    pending: [],
    pendingCount: 0,
    // A change chosen before this leader was elected governs from a later slot: fill the window up to it.
    fillUpTo: configs[configs.length - 1]!.governsFrom - 1,
    progress: c.peers.map(() => -1),
    leaseFrom: from,
    leaseUntil: rules.leaseExpiry(from, state.ctx.config),
    heartbeatAt: now,
    electedAt: now,
    stalls: [],
  };
  const elected = copyReplica(state);
  elected.role = leader;
  elected.learner = withLeaderHint(state.learner, state.ctx.config.self);
  return propose(rules, heartbeat(rules, elected, now, out), now, out);
}

/**
 * Stop leading or campaigning: answer every held request, drop the self-grant (it protected only
 * this replica's own lease, which it no longer trusts), and wait a fresh election timeout.
 */
export function stepDown<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  now: number,
  reason: string,
  out: Out<I, O>,
): ReplicaState<S, I, O> {
  const role = state.role;
  if (role._tag === "follower") return state;
  if (role._tag === "leader") failAll(role, `leadership lost: ${reason}`, out);
  const s = copyReplica(state);
  s.role = follower;
  s.acceptor = dropSelfGrant(rules, state.acceptor, role.ballot);
  s.learner = withLeaderHint(state.learner, null);
  return restartElectionTimer(s, now);
}

/**
 * Divergence: raise the alarm and stop serving until restarted. A restart rebuilds the state from
 * the durable log; if the divergence came from a non-deterministic application, it recurs and the
 * replica halts again at the same checkpoint.
 */
export function halt<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  d: Divergence,
  now: number,
  out: Out<I, O>,
): ReplicaState<S, I, O> {
  const message = divergenceMessage(d);
  out.push({ _tag: "Alarm", slot: d.slot, replicas: d.replicas, digests: d.digests, message });
  const s = stepDown(rules, state, now, `diverged at slot ${d.slot}`, out);
  const halted = copyReplica(s);
  halted.halted = { slot: d.slot, message: `diverged at slot ${d.slot}` };
  return halted;
}

/**
 * The log raises the feature level above what this version executes: stop before that slot, say
 * so (an `Alarm` naming this replica alone) and serve nothing until restarted on a version that
 * knows the level. Executing on would make this replica's state differ from every upgraded one's.
 */
function haltUnsupported<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  u: UnsupportedLevel,
  now: number,
  out: Out<I, O>,
): ReplicaState<S, I, O> {
  const self = state.ctx.config.self;
  const message = unsupportedMessage(self, u);
  out.push({ _tag: "Alarm", slot: u.slot, replicas: [self], digests: [], message });
  const s = stepDown(rules, state, now, `feature level ${u.level} unsupported at slot ${u.slot}`, out);
  const halted = copyReplica(s);
  halted.halted = { slot: u.slot, message };
  return halted;
}

// ---------------------------------------------------------------------------------------------
// Receive
// ---------------------------------------------------------------------------------------------

/**
 * A message from another replica. Messages from any replica are handled, not only from members of
 * a configuration this replica knows: a replica that joins learns its leader from the leader's
 * heartbeats, and a replica that lags may not know the configuration its leader was added in.
 * Membership matters where counting happens: quorums, leases and promotions count only the voters
 * of the configuration concerned.
 */
function receive<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  from: ReplicaId,
  m: Message<I>,
  now: number,
  out: Out<I, O>,
): ReplicaState<S, I, O> {
  if (from === state.ctx.config.self) return state;
  switch (m._tag) {
    case "Prepare":
    case "Accept":
    case "Heartbeat":
      return receiveFromProposer(rules, state, from, m, now, out);
    case "Promise":
      return receivePromise(rules, state, from, m, now, out);
    case "Accepted": {
      if (!leadsBallot(rules, state, m.ballot)) return state;
      const s = collectAccepted(rules, state, from, m.slot, rules.grantCountedFrom(m.sentAt, now), out);
      return afterLearning(rules, s, now, out);
    }
    case "HeartbeatAck":
      return receiveHeartbeatAck(
        rules,
        state,
        from,
        m.ballot,
        rules.grantCountedFrom(m.sentAt, now),
        m.executedUpTo,
        m.checkpoint,
        now,
        out,
      );
    case "Nack":
      return receiveNack(rules, state, m, now, out);
    case "CatchUp":
      answerCatchUp(state, from, m, out);
      handOver(state, from, now, out);
      return catchUpFromAsker(state, from, m, out);
    case "CatchUpReply": {
      // A leader proposes every slot from its first unexecuted one itself; it needs no catch-up.
      if (state.role._tag === "leader") return state;
      let s = afterLearning(rules, receiveCatchUp(state, m, out), now, out);
      if (s.role._tag !== "candidate" || !s.ctx.config.promiseOmitsChosen) return s;
      // A candidate fetching what Promises reported chosen asks for the next values at once, and
      // its campaign lasts while they come: campaigning again from a slot or two higher, each
      // time with a higher ballot, would restart the election timer of every acceptor it asks
      // (each grant does), and keep an up-to-date replica from campaigning at all.
      if (s.learner.executedUpTo > state.learner.executedUpTo) s = resetElectionTimer(s, now);
      return maybeElected(rules, requestCatchUp(s, from, now, out), now, out);
    }
    case "SnapshotRequest":
      return answerSnapshotRequest(state, from, m, now, out);
    case "SnapshotChunk": {
      const s = receiveChunk(rules, state, from, m, now, out);
      if (s.learner.executedUpTo === state.learner.executedUpTo) return s;
      // Installed: the log above the snapshot comes by ordinary catch-up.
      return requestCatchUpOf(afterLearning(rules, syncPeers(rules, s), now, out), now, out);
    }
  }
}

function requestCatchUpOf<S, I, O>(state: ReplicaState<S, I, O>, now: number, out: Out<I, O>): ReplicaState<S, I, O> {
  const to = state.learner.leaderHint;
  return to === null || state.halted !== null ? state : requestCatchUp(state, to, now, out);
}

/**
 * A Promise for the ballot this replica campaigns for or leads: collect it. A Promise that does
 * not cover the candidate's first slot (the acceptor forgot the votes there, rule T2) means this
 * replica lags behind that acceptor's snapshot: fetch it, so that the next campaign starts above.
 */
function receivePromise<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  from: ReplicaId,
  m: PromiseMsg<I>,
  now: number,
  out: Out<I, O>,
): ReplicaState<S, I, O> {
  const role = state.role;
  if (role._tag === "follower" || rules.compareBallots(role.ballot, m.ballot) !== 0) return state;
  const promise = { ...m, sentAt: rules.grantCountedFrom(m.sentAt, now) };
  let s = collectPromise(rules, state, from, promise);
  if (role._tag === "candidate" && rules.promiseCoversFrom(m.fromSlot, m.truncatedUpTo) > role.fromSlot)
    s = state.ctx.config.promiseOmitsChosen
      ? catchUpToReported(s, from, m.truncatedUpTo, now, out)
      : requestSnapshot(s, from, now, out);
  return role._tag === "candidate" ? maybeElected(rules, s, now, out) : propose(rules, s, now, out);
}

function leadsBallot<S, I, O>(rules: ReplicaRules, state: ReplicaState<S, I, O>, ballot: Ballot): boolean {
  return state.role._tag === "leader" && rules.compareBallots(state.role.ballot, ballot) === 0;
}

/**
 * Prepare, Accept and Heartbeat: the ballot first. A ballot this acceptor may not help (below
 * maxBal, or another ballot holds a grant, or the restart wait, or its leader was removed as of
 * the slots this replica has not executed: rule R4) is refused with a Nack. A candidate, or a
 * leader whose lease lapsed, meeting a higher ballot it may help steps down first, dropping its
 * self-grant (rule L6), so that it helps that ballot at once; a leader whose lease holds keeps its
 * self-grant, which refuses it while in force. A ballot above the one this replica leads makes it
 * step down before helping.
 */
function receiveFromProposer<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  from: ReplicaId,
  m: PrepareMsg | AcceptMsg<I> | HeartbeatMsg,
  now: number,
  out: Out<I, O>,
): ReplicaState<S, I, O> {
  let s = noteRound(state, m.ballot);
  const leaderExecutedUpTo = m._tag === "Prepare" ? m.fromSlot - 1 : m.commitIndex;
  const { configs, executedUpTo } = s.learner;
  const mayHelp = rules.mayHelpLeader(configs, executedUpTo, m.ballot.replica, leaderExecutedUpTo);
  // Rule L6: a candidate, or a leader whose lease lapsed, gives up its ballot, and with it its
  // self-grant, before it judges a higher one.
  if (mayHelp && rules.yieldsToHigherBallot(rules, s.role, m.ballot, now))
    s = stepDown(rules, s, now, `replica ${from} campaigns with higher ballot ${showBallot(m.ballot)}`, out);
  if (!mayHelp || !rules.canPromise(rules, s.acceptor, m.ballot, now)) {
    const nack: NackMsg = nackFor(rules, s.acceptor, m.ballot, now);
    out.push({ _tag: "Send", to: from, message: nack });
    return s;
  }
  const own = ownBallot(s.role);
  if (own !== null && rules.compareBallots(m.ballot, own) > 0)
    s = stepDown(rules, s, now, `replica ${from} leads higher ballot ${showBallot(m.ballot)}`, out);
  switch (m._tag) {
    case "Prepare":
      return receivePrepare(rules, s, from, m, now, out);
    case "Accept":
      return receiveAccept(rules, s, from, m, now, out);
    case "Heartbeat":
      return receiveHeartbeat(rules, s, from, m, now, out);
  }
}

/**
 * Phase1b: promise, persist, answer with the votes from fromSlot on. A Prepare from the leader this
 * replica follows (phase 1 going on for a configuration it joined) keeps it following.
 */
function receivePrepare<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  from: ReplicaId,
  m: PrepareMsg,
  now: number,
  out: Out<I, O>,
): ReplicaState<S, I, O> {
  const r = phase1b(rules, state.acceptor, state.ctx.config, m, now, reportableChosen(state));
  if (r.record !== null) out.push({ _tag: "Persist", record: r.record });
  sendHeld(out, from, r.reply);
  const following = r.record === null && state.learner.leaderHint === from;
  const s = withAcceptor(state, r.acceptor);
  if (following) return heardFromLeader(s, from, now);
  return restartElectionTimer(withLearner(s, withLeaderHint(state.learner, null)), now);
}

/** Phase2b: vote, persist, answer; then learn what the leader says is committed. */
function receiveAccept<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  from: ReplicaId,
  m: AcceptMsg<I>,
  now: number,
  out: Out<I, O>,
): ReplicaState<S, I, O> {
  // Paired with the leader's phase2aValue: a proposal at a slot known chosen must carry the chosen
  // value (P2c); anything else means two values could be chosen.
  const known = slotMapGet(state.learner.log, m.slot);
  if (known !== undefined && !sameValue(known, m.value))
    fail(`P2c: ballot ${showBallot(m.ballot)} proposes another value at chosen slot ${m.slot}`);
  const r = phase2b(rules, state.acceptor, state.ctx.config, m, now);
  if (r.record !== null) out.push({ _tag: "Persist", record: r.record });
  out.push({ _tag: "Send", to: from, message: r.reply });
  let s = heardFromLeader(withAcceptor(state, r.acceptor), from, now);
  // A vote at a slot already executed (a new leader proposing the chosen value again) rests at once.
  if (r.record !== null && state.ctx.config.valuesAtRest && m.slot <= state.learner.executedUpTo)
    s = restSlots(rules, s, m.slot, m.slot);
  s = learnCommitted(rules, s, m.ballot, m.commitIndex, out);
  s = afterLearning(rules, s, now, out);
  return s.halted === null ? requestCatchUp(s, from, now, out) : s;
}

/** A heartbeat: renew the grant, learn the commit index, compare checkpoints, acknowledge. */
function receiveHeartbeat<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  from: ReplicaId,
  m: HeartbeatMsg,
  now: number,
  out: Out<I, O>,
): ReplicaState<S, I, O> {
  const r = renewGrant(rules, state.acceptor, state.ctx.config, m.ballot, now);
  if (r.record !== null) out.push({ _tag: "Persist", record: r.record });
  let s = heardFromLeader(r.acceptor === state.acceptor ? state : withAcceptor(state, r.acceptor), from, now);
  s = learnCommitted(rules, s, m.ballot, m.commitIndex, out);
  s = afterLearning(rules, s, now, out);
  if (m.checkpoint !== null && s.halted === null) s = comparePeer(rules, s, from, m.checkpoint, now, out);
  if (s.halted !== null) return s;
  out.push({
    _tag: "Send",
    to: from,
    message: {
      _tag: "HeartbeatAck",
      ballot: m.ballot,
      sentAt: m.sentAt,
      executedUpTo: s.learner.executedUpTo,
      checkpoint: latestCheckpoint(s.monitor),
    },
  });
  return requestCatchUp(s, from, now, out);
}

function heardFromLeader<S, I, O>(state: ReplicaState<S, I, O>, from: ReplicaId, now: number): ReplicaState<S, I, O> {
  const learner = withLeaderHint(state.learner, from);
  return resetElectionTimer(learner === state.learner ? state : withLearner(state, learner), now);
}

function receiveHeartbeatAck<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  from: ReplicaId,
  ballot: Ballot,
  sentAt: number,
  executedUpTo: number,
  checkpoint: { readonly slot: number; readonly digest: string } | null,
  now: number,
  out: Out<I, O>,
): ReplicaState<S, I, O> {
  if (state.role._tag !== "leader" || rules.compareBallots(state.role.ballot, ballot) !== 0) return state;
  const leader = recordGrant(rules, state, state.role, peerIndex(state.role.peers, from), sentAt);
  const s = withRole(state, recordProgress(leader, from, executedUpTo));
  return checkpoint === null ? s : comparePeer(rules, s, from, checkpoint, now, out);
}

/** A refusal: a higher promised ballot makes a candidate or leader of the refused ballot step down. */
function receiveNack<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  m: NackMsg,
  now: number,
  out: Out<I, O>,
): ReplicaState<S, I, O> {
  const s = noteRound(state, m.promised);
  const own = ownBallot(s.role);
  if (own === null || rules.compareBallots(own, m.ballot) !== 0) return s;
  if (rules.compareBallots(m.promised, own) <= 0) return s; // a grant elsewhere: retransmission retries later
  return stepDown(rules, s, now, `an acceptor promised higher ballot ${showBallot(m.promised)}`, out);
}

function comparePeer<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  peer: ReplicaId,
  report: { readonly slot: number; readonly digest: string },
  now: number,
  out: Out<I, O>,
): ReplicaState<S, I, O> {
  const r = comparePeerCheckpoint(state.ctx, state.monitor, state.learner.executedUpTo, peer, report);
  const s = r.monitor === state.monitor ? state : withMonitor(state, r.monitor);
  return r.divergence === null ? s : halt(rules, s, r.divergence, now, out);
}

/**
 * After the log grew: execute what is ready (in slot order, at most `batchBytesMax` bytes of values
 * per step: the rest on the next tick, {@link executionPending}), persist a snapshot if one was
 * reached (and truncate below it), follow the configurations (a leader or candidate no longer
 * voting in the configuration of its next slot steps down), answer the leader's clients, refill the
 * pipeline, and halt if a checkpoint disagreed with a peer's.
 */
function afterLearning<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  now: number,
  out: Out<I, O>,
): ReplicaState<S, I, O> {
  let s = state;
  let more = false;
  // A slot chosen as this round proposed others (a notice of the leader's own vote, a single
  // voter's): execute again what that chose.
  for (
    let round = 0;
    round === 0 ||
    (s.role._tag === "leader" &&
      !more &&
      !s.learner.executionWaits &&
      slotMapHas(s.learner.log, s.learner.executedUpTo + 1));
    round++
  ) {
    const before = s;
    const isLeader = before.role._tag === "leader";
    const r = executeReady(rules, before, isLeader, before.ctx.config.batchBytesMax);
    more = r.more;
    s = r.state;
    if (r.readBack !== null) s = readBack(s, r.readBack, true, out);
    if (r.snapshot !== null) s = takeSnapshot(s, r.snapshot, out);
    if (s.learner.configs !== before.learner.configs) {
      s = syncPeers(rules, s);
      if (isLeader) farewell(before, s, now, out);
    }
    if (isLeader) s = answerExecuted(s, r.executed, out);
    s = stepDownIfRemoved(rules, s, now, out);
    if (r.divergence !== null) return halt(rules, s, r.divergence, now, out);
    if (r.unsupported !== null) return haltUnsupported(rules, s, r.unsupported, now, out);
    if (s.role._tag === "leader") s = proposeReady(rules, s, now, out);
  }
  return s;
}

/**
 * Ask the driver for the store values at rest of `wanted` (rule V4, a `ReadEntries`) that are not
 * asked for already; with `execution`, execution waits for them (`executionWaits`).
 */
function readBack<S, I, O>(
  state: ReplicaState<S, I, O>,
  wanted: ReadBack,
  execution: boolean,
  out: Out<I, O>,
): ReplicaState<S, I, O> {
  const asked = state.learner.reading;
  const entries = wanted.entries.filter((ref) => !asked.some((a) => sameEntry(a, ref)));
  if (entries.length === 0 && (!execution || state.learner.executionWaits)) return state;
  if (entries.length > 0) out.push({ _tag: "ReadEntries", entries, purpose: wanted.purpose });
  const learner = copyLearner(state.learner);
  learner.reading = entries.length === 0 ? asked : asked.concat(entries);
  if (execution) learner.executionWaits = true;
  return withLearner(state, learner);
}

/**
 * The driver read back store values at rest (rule V4): check each against its entry (V2's
 * comparison: a value that is not the one named throws) and put it back in memory where the store
 * still holds that entry at rest; execute on; serve again the reads that waited, as if they arrived
 * now (a read by lease judged against the lease now); then put the values back at rest where they
 * are still named (rule V1), so that reads do not pile values up in memory.
 */
function entriesRead<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  event: EntriesRead,
  out: Out<I, O>,
): ReplicaState<S, I, O> {
  const atRest = state.ctx.storeAtRest;
  if (atRest === null) return state;
  if (event.values.length !== event.entries.length)
    fail(`EntriesRead: ${event.values.length} values for ${event.entries.length} entries`);
  const learner = copyLearner(state.learner);
  let app = learner.service.app;
  event.entries.forEach((ref, i) => {
    app = atRest.restore(app, ref, event.values[i]!);
  });
  if (app !== learner.service.app) learner.service = { ...learner.service, app };
  learner.reading = learner.reading.filter((a) => !event.entries.some((ref) => sameEntry(a, ref)));
  learner.executionWaits = false;
  const waiting = learner.waitingReads;
  learner.waitingReads = [];
  let s = afterLearning(rules, withLearner(state, learner), event.now, out);
  for (const req of waiting) {
    const now = { ...req, now: event.now };
    if (s.halted !== null) out.push(unavailable(req.requestId, `replica stopped: ${s.halted.message}`, false));
    else if (s.removal !== null)
      out.push(unavailable(req.requestId, `replica ${s.ctx.config.self} is being removed from the cluster`, false));
    else s = clientRequest(rules, s, now, out);
  }
  const after = copyLearner(s.learner);
  // Not the values the slot that execution still waits at reads: put back at rest, each would be
  // asked for again once the others came, and each answer would put the one before back (a slot
  // reading two keys, one read back first for a read, was asked for forever).
  const waitedFor = after.executionWaits ? keysReadNext(rules, s) : null;
  restAgain(s.ctx, after, waitedFor === null ? event.entries : event.entries.filter((ref) => !waitedFor.has(ref.key)));
  return after.service === s.learner.service ? s : withLearner(s, after);
}

/** The keys whose values the commands of the next slot to execute read (rule V4), if it is chosen and held whole. */
function keysReadNext<S, I, O>(rules: ReplicaRules, state: ReplicaState<S, I, O>): ReadonlySet<string> | null {
  const atRest = state.ctx.storeAtRest;
  const slot = rules.nextToExecute(state.learner.log, state.learner.executedUpTo);
  const held = slot === undefined ? undefined : slotMapGet(state.learner.log, slot);
  if (atRest === null || held === undefined || held._tag !== "batch") return null;
  return new Set(keysReadBy(atRest, held));
}

/**
 * A leader whose configurations no longer list some of its peers (their removal governs now) sends
 * them a last heartbeat with its commit index: they learn that the window's last slots are
 * decided, catch up to them, see the removal govern and retire at once (rule R5), instead of
 * waiting out `retireGraceMs` for slots nobody sends them any more.
 */
function farewell<S, I, O>(
  before: ReplicaState<S, I, O>,
  after: ReplicaState<S, I, O>,
  now: number,
  out: Out<I, O>,
): void {
  if (before.role._tag !== "leader" || after.role._tag !== "leader") return;
  const kept = after.role.peers;
  const message = lastHeartbeat(after.role.ballot, after, now);
  for (const to of before.role.peers) if (!kept.includes(to)) out.push({ _tag: "Send", to, message });
}

/** A heartbeat of `ballot` telling the slots up to this replica's executed prefix are chosen. */
function lastHeartbeat<S, I, O>(ballot: Ballot, state: ReplicaState<S, I, O>, now: number): HeartbeatMsg {
  return {
    _tag: "Heartbeat",
    ballot,
    commitIndex: state.learner.executedUpTo,
    sentAt: now,
    checkpoint: latestCheckpoint(state.monitor),
  };
}

/**
 * A leader that hears from a replica its latest configuration removed (a CatchUp: the removed
 * replica waits for its hand-over, `awaitHandOver`) sends it the farewell heartbeat a leader of
 * the configurations that still listed it would have sent. A leader elected after the removal
 * never held such a configuration, so without this a removed replica whose farewell was lost, or
 * a removed leader that stepped down, would wait for ever (rule R5).
 */
function handOver<S, I, O>(state: ReplicaState<S, I, O>, from: ReplicaId, now: number, out: Out<I, O>): void {
  const role = state.role;
  if (role._tag !== "leader" || state.halted !== null) return;
  const configs = state.learner.configs;
  if (!configs[configs.length - 1]!.retired.includes(from)) return;
  out.push({ _tag: "Send", to: from, message: lastHeartbeat(role.ballot, state, now) });
}

/**
 * A follower whose removal is chosen, waiting for a member of the configuration that goes on
 * without it to hand over (rule R5), asks the voters and learners of that configuration once per
 * heartbeat interval for the slot after its executed prefix: their leader answers with a farewell
 * heartbeat (`handOver`), the others with the slot if they have it. The learners are asked too: a
 * replica that restarts after its removal knows only the configurations up to the slots it had
 * executed, whose voters may all have been removed and retired since, while the leader in force is
 * a learner it knows that was promoted later.
 */
function awaitHandOver<S, I, O>(state: ReplicaState<S, I, O>, now: number, out: Out<I, O>): ReplicaState<S, I, O> {
  const removal = state.removal;
  if (removal === null || removal.handedOver || removal.retired !== null || state.halted !== null) return state;
  const { learner, ctx } = state;
  if (now < learner.catchUpSentAt + ctx.config.heartbeatIntervalMs) return state;
  const self = ctx.config.self;
  const message = catchUpOf(learner);
  const latest = learner.configs[learner.configs.length - 1]!;
  for (const to of [...latest.voters, ...latest.learners]) if (to !== self) out.push({ _tag: "Send", to, message });
  const l = copyLearner(learner);
  l.catchUpSentAt = now;
  return withLearner(state, l);
}

/** Propose what is ready; a slot chosen at once (a single voter) is then executed and answered. */
function propose<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  now: number,
  out: Out<I, O>,
): ReplicaState<S, I, O> {
  const s = proposeReady(rules, state, now, out);
  return s.role._tag === "leader" && slotMapHas(s.learner.log, s.learner.executedUpTo + 1)
    ? afterLearning(rules, s, now, out)
    : s;
}

/**
 * A leader or candidate that is not a voter of the configuration governing its next slot to execute
 * steps down: that configuration no longer counts it (a removed leader thus leads until the slot
 * before its removal governs, and the remaining voters elect a successor).
 */
function stepDownIfRemoved<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  now: number,
  out: Out<I, O>,
): ReplicaState<S, I, O> {
  const role = state.role;
  if (role._tag === "follower") return state;
  const self = state.ctx.config.self;
  const config = configurationFor(state.learner.configs, state.learner.executedUpTo + 1);
  if (config.voters.includes(self)) return state;
  if (role._tag === "leader") {
    // A last heartbeat hands over the commit index: the voters that remain learn the slots up to
    // here, so that their first phase 1 starts in the configuration that excludes this replica.
    const message = lastHeartbeat(role.ballot, state, now);
    for (const to of role.peers) if (to !== self) out.push({ _tag: "Send", to, message });
  }
  return stepDown(
    rules,
    state,
    now,
    `replica ${self} is not a voter from slot ${state.learner.executedUpTo + 1} on`,
    out,
  );
}

// ---------------------------------------------------------------------------------------------
// Tick
// ---------------------------------------------------------------------------------------------

/**
 * Slots ready in the log that a step left to the next because its bytes ran out (afterLearning):
 * the next tick executes them. The driver ticks at once while this holds. Never for a halted
 * replica, which executes nothing more: its driver would tick it at once for ever; nor while
 * execution waits for store values at rest (rule V4): their `EntriesRead` executes on.
 */
export function executionPending<S, I, O>(state: ReplicaState<S, I, O>, rules: ReplicaRules = defaultRules): boolean {
  if (state.halted !== null || state.learner.executionWaits) return false;
  const next = rules.nextToExecute(state.learner.log, state.learner.executedUpTo);
  return next !== undefined && slotMapHas(state.learner.log, next);
}

function tick<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  now: number,
  out: Out<I, O>,
): ReplicaState<S, I, O> {
  if (executionPending(state, rules)) {
    const s = afterLearning(rules, state, now, out);
    if (s.halted !== null) return s;
    state = s;
  }
  state = expireServed(state, now);
  const role = state.role;
  switch (role._tag) {
    case "follower": {
      if (electionDue(state, now) && rules.mayCampaign(rules, state, now))
        return becomeCandidate(rules, state, now, out);
      const s = tickTransfer(state, now, out);
      if (needsCatchUp(s) && s.learner.leaderHint !== null) return requestCatchUp(s, s.learner.leaderHint, now, out);
      return awaitHandOver(s, now, out);
    }
    case "candidate": {
      if (electionDue(state, now)) {
        const s = stepDown(rules, state, now, `phase 1 of ${showBallot(role.ballot)} timed out`, out);
        return rules.mayCampaign(rules, s, now) ? becomeCandidate(rules, s, now, out) : s;
      }
      let s = tickTransfer(state, now, out);
      if (s.ctx.config.promiseOmitsChosen) {
        // Slots executed by the last tick (a reply's values beyond `batchBytesMax`) may complete phase 1.
        s = maybeElected(rules, s, now, out);
        if (s.role._tag !== "candidate") return s;
        const ahead = reportedAhead(s, s.role);
        if (ahead !== null) s = requestCatchUp(s, ahead, now, out);
      }
      return resendPrepare(rules, s, role, now, out);
    }
    case "leader": {
      // CheckQuorum (check-quorum.ts): a leader that no quorum of the configuration in force has
      // answered for an election timeout of the time it ran is cut off; followers elsewhere are
      // electing a new leader, so its clients are better redirected.
      // It counts from the election at the earliest. A leader elected in a configuration
      // that governs only its first slots (its own single vote, say) then executes into one whose
      // voters have not answered yet; stepping down at once would leave those slots undecided.
      if (checkQuorumFails(rules, state, role, now))
        return stepDown(rules, state, now, "no quorum answered for an election timeout", out);
      const ahead = stalledBehind(rules, state);
      if (ahead !== null)
        return requestSnapshot(
          stepDown(rules, state, now, `behind the snapshot of replica ${ahead}`, out),
          ahead,
          now,
          out,
        );
      return propose(rules, heartbeat(rules, state, now, out), now, out);
    }
  }
}

/**
 * A candidate resends Prepare to the voters that have not promised: one heartbeat interval after
 * the last send; with `prepareResendBackoff`, twice the wait before each next time, up to
 * `electionTimeoutMsMax`. A resend is for a lost message; an acceptor answers each one with its
 * whole Promise again, every vote above the candidate's point, so resending every heartbeat
 * interval flooded a slow link with megabytes of copies while the first was still on its way
 * (impl/core/large-promises.test.ts).
 */
function resendPrepare<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  c: Candidate<I>,
  now: number,
  out: Out<I, O>,
): ReplicaState<S, I, O> {
  const { ctx } = state;
  if (now < c.prepareSentAt + c.prepareResendAfterMs) return state;
  const self = ctx.config.self;
  const renewed = renewGrant(rules, state.acceptor, ctx.config, c.ballot, now);
  const prepare: PrepareMsg = { _tag: "Prepare", ballot: c.ballot, fromSlot: c.fromSlot, sentAt: now };
  for (const to of votersOf(state)) {
    const index = peerIndex(c.peers, to);
    if (to !== self && (index < 0 || (c.promised & (1 << index)) === 0))
      out.push({ _tag: "Send", to, message: prepare });
  }
  const grantSentAt = c.grantSentAt.slice();
  grantSentAt[peerIndex(c.peers, self)] = now;
  const role = copyCandidate(c);
  role.prepareSentAt = now;
  if (ctx.config.prepareResendBackoff)
    role.prepareResendAfterMs = Math.min(c.prepareResendAfterMs * 2, ctx.config.electionTimeoutMsMax);
  role.grantSentAt = grantSentAt;
  const s = copyReplica(state);
  s.acceptor = renewed.acceptor;
  s.role = role;
  return s;
}

// ---------------------------------------------------------------------------------------------
// Client requests
// ---------------------------------------------------------------------------------------------

/**
 * A client request. Stale reads: local state, at any replica. Elsewhere only the leader serves:
 * a linearizable read by lease when rule L3 allows, else through the log; a write through the log,
 * unless the session table already holds its answer: a retry (ok with the cached output), the same
 * number with another command (seq-reused), or an older number (stale-seq).
 */
function clientRequest<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  req: ClientRequest<I>,
  out: Out<I, O>,
): ReplicaState<S, I, O> {
  const { app } = state.ctx;
  const readOnly = app.readOnly(req.input);
  if (readOnly && req.consistency === "stale") return answerLocally(state, req, out);
  if (state.role._tag !== "leader") return redirect(state, req.requestId, out);
  if (readOnly) {
    if (rules.canServeLeaseRead(rules, state, req.now)) return answerLocally(state, req, out);
    return propose(rules, submit(state, { input: req.input }, req.requestId, out), req.now, out);
  }
  if (req.clientId !== undefined && req.seq !== undefined) {
    const answer = rules.sessionAnswer(
      sessionOf(state.learner.service, req.clientId),
      req.seq,
      req.input,
      state.ctx.app.textHash ?? null,
    );
    if (answer !== undefined) {
      out.push({ _tag: "Reply", requestId: req.requestId, result: resultOf(answer) });
      return state;
    }
  }
  const command =
    req.clientId !== undefined && req.seq !== undefined
      ? { clientId: req.clientId, seq: req.seq, input: req.input }
      : { input: req.input };
  return propose(rules, submit(state, command, req.requestId, out), req.now, out);
}

/**
 * An operator's membership change: only the leader serves it, in a slot of its own (rule R3 may
 * refuse it at once); the reply comes once that slot is executed. Refusing at once judges the
 * change against the latest configuration the leader holds, which is complete only once it has
 * executed every slot its phase 1 found (`phase1MaxSlot`): a leader elected behind a chosen change
 * (a learner's addition, say) would otherwise refuse what that change allows ("not a learner").
 * Until then it answers `unavailable`, and the operator retries.
 */
function reconfigure<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  req: ReconfigureRequest,
  out: Out<I, O>,
): ReplicaState<S, I, O> {
  if (state.role._tag !== "leader") return redirect(state, req.requestId, out);
  if (state.learner.executedUpTo < state.role.phase1MaxSlot) {
    const reason = `the leader has not yet executed the slots its election found (executed ${state.learner.executedUpTo} of ${state.role.phase1MaxSlot}); retry`;
    out.push({
      _tag: "Reply",
      requestId: req.requestId,
      result: { _tag: "unavailable", reason, outcomeUnknown: false },
    });
    return state;
  }
  return propose(rules, submitChange(rules, state, req.change, req.requestId, req.now, out), req.now, out);
}

/**
 * A client asks for a session (feature level 3): only the leader serves it, through the log (an
 * `open` value, `submitOpen`), once level 3 is executed or this leader raises the log to it (its
 * raise goes ahead of every client request, `featuresDue`). Below that the service opens no
 * sessions, and the request is refused: the client names a session itself (levels 1 and 2).
 */
function openSessionRequest<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  req: OpenSessionRequest,
  out: Out<I, O>,
): ReplicaState<S, I, O> {
  if (state.role._tag !== "leader") return redirect(state, req.requestId, out);
  const level = featureLevelOf(state.learner.service);
  const target = state.ctx.config.featureLevel;
  if (level < featureLevelSessionsOpened && (target < featureLevelSessionsOpened || state.featuresKnown < target)) {
    const held =
      target >= featureLevelSessionsOpened
        ? ` (its raise to ${target} waits until every member says it executes that level)`
        : "";
    const reason = `the cluster runs at feature level ${level}, which opens no sessions (level ${featureLevelSessionsOpened} does)${held}: name the session with a client id of your own`;
    out.push({ _tag: "Reply", requestId: req.requestId, result: { _tag: "refused", reason } });
    return state;
  }
  return propose(rules, submitOpen(state, req.requestId, out), req.now, out);
}

/** Only the leader serves this request: name the replica this one believes leads. */
function redirect<S, I, O>(state: ReplicaState<S, I, O>, requestId: number, out: Out<I, O>): ReplicaState<S, I, O> {
  out.push({ _tag: "Reply", requestId, result: { _tag: "redirect", leader: state.learner.leaderHint } });
  return state;
}

/** Answer a read-only request from this replica's executed state. */
function answerLocally<S, I, O>(
  state: ReplicaState<S, I, O>,
  req: ClientRequest<I>,
  out: Out<I, O>,
): ReplicaState<S, I, O> {
  const atRest = state.ctx.storeAtRest;
  if (atRest !== null) {
    // Rule V4: a read of a value at rest waits for it to be read back, then is served again.
    const key = atRest.reads(req.input);
    const ref: StoredEntry | null = key === null ? null : atRest.resting(state.learner.service.app, key);
    if (ref !== null) {
      const learner = copyLearner(state.learner);
      learner.waitingReads = state.learner.waitingReads.concat([req]);
      return readBack(withLearner(state, learner), { entries: [ref], purpose: "read" }, false, out);
    }
  }
  const output = state.ctx.app.output(req.input, state.learner.service.app);
  out.push({ _tag: "Reply", requestId: req.requestId, result: { _tag: "ok", output } });
  return state;
}

/**
 * For a driver's own checks before a membership change (the HTTP API's): null when this replica
 * leads and can vouch for its latest configuration at its clock reading `now` (rule R3's
 * `unsettledMembership`), else what it has yet to vouch for. A refusal judged against the
 * configuration the driver sees is final only when this is null; otherwise the caller retries.
 */
export function membershipUnsettled<S, I, O>(state: ReplicaState<S, I, O>, now: number): string | null {
  if (state.role._tag !== "leader") return "this replica does not lead";
  return unsettledMembership(defaultRules, state, now);
}

/** The replica's step function: `makeStep(defaultRules)`. */
export const step: Step = makeStep(defaultRules);

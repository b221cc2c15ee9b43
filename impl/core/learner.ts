/**
 * The learner: it learns which values are chosen (from a leader's commit index, or from another
 * replica's log by catch-up), and executes the chosen log strictly in slot order through the
 * service spec's `apply` (spec/service.ts), so that the session table, and with it exactly-once,
 * is part of the replicated state. Execution is step 4 of the recipe; it is also where the
 * divergence monitor takes its checkpoints.
 *
 * It must never execute a slot before every lower slot, never put a value in the log that is not
 * chosen, and never deduplicate client requests by itself (the service spec does that).
 */
import type { Applied } from "../../spec/state-machine.ts";
import type { ServiceOutput, ServiceState } from "../../spec/service.ts";
import { ballotEquals, type Ballot } from "./ballot.ts";
import { fail } from "./assert.ts";
import type { ReplicaId } from "./events.ts";
import { valuesEqual, type CatchUpMsg, type CatchUpReplyMsg, type ChosenEntry, type Command, type Value } from "./messages.ts";
import { checkpointDigest, foldOutput, recordCheckpoint, type Divergence } from "./monitor.ts";
import type { ReplicaRules } from "./rules.ts";
import { slotMapGet, slotMapHas, slotMapSet, type SlotMap } from "./slot-map.ts";
import { copyLearner, copyMonitor, copyReplica, withLearner, type ReplicaContext, type ReplicaState, type Vote } from "./state.ts";
import type { ReplicaEffect } from "./replica.ts";

/**
 * May a follower take its own vote at a slot as the chosen value, once a leader of `ballot` said
 * the slot is committed? Only if the vote is in that very ballot: the leader proposed exactly one
 * value per slot in its ballot (OneValuePerBallot), and it declares a slot committed only when a
 * quorum voted for that value in its ballot, or when it knew the slot chosen before it proposed
 * anything there (then it made no proposal there, so no vote in its ballot exists).
 */
export function learnableFromLeader<I>(vote: Vote<I> | undefined, ballot: Ballot): boolean {
  return vote !== undefined && ballotEquals(vote.ballot, ballot);
}

/** The outputs of one executed slot, one per command of its batch. */
export interface ExecutedSlot<O> {
  readonly slot: number;
  readonly outputs: readonly ServiceOutput<O>[];
}

/**
 * The next slot to execute: executedUpTo + 1 once the log has it. Execution is strictly in slot
 * order (step 4 of the recipe); a gap stops it until the gap is filled.
 */
export function nextToExecute<I>(log: SlotMap<Value<I>>, executedUpTo: number): number | undefined {
  return slotMapHas(log, executedUpTo + 1) ? executedUpTo + 1 : undefined;
}

/** Execute one command through the service spec. A command without a session is applied to the application alone. */
export function executeCommand<S, I, O>(
  ctx: ReplicaContext<S, I, O>,
  service: ServiceState<S, O>,
  command: Command<I>,
): Applied<ServiceState<S, O>, ServiceOutput<O>> {
  if (command.clientId !== undefined && command.seq !== undefined) {
    return ctx.service.apply({ clientId: command.clientId, seq: command.seq, input: command.input }, service);
  }
  const applied = ctx.app.apply(command.input, service.app);
  return {
    state: { app: applied.state, sessions: service.sessions, executed: service.executed + 1 },
    output: { _tag: "executed", output: applied.output },
  };
}

/** The learner after executing every slot ready in the log. */
export interface ExecuteResult<S, I, O> {
  readonly state: ReplicaState<S, I, O>;
  /** Executed slots with their outputs; empty unless `collect` was true. */
  readonly executed: readonly ExecutedSlot<O>[];
  readonly divergence: Divergence | null;
}

/**
 * Execute slots executedUpTo + 1, executedUpTo + 2, ... for as long as the log has them, taking a
 * checkpoint at each checkpoint slot. Strictly in order: a gap stops execution until it is filled.
 */
export function executeReady<S, I, O>(rules: ReplicaRules, state: ReplicaState<S, I, O>, collect: boolean): ExecuteResult<S, I, O> {
  const { ctx, learner } = state;
  const first = rules.nextToExecute(learner.log, learner.executedUpTo);
  if (first === undefined || !slotMapHas(learner.log, first)) return { state, executed: [], divergence: null };
  let executedUpTo = learner.executedUpTo;
  let service = learner.service;
  let monitor = state.monitor;
  let a = monitor.outputDigestA;
  let b = monitor.outputDigestB;
  let divergence: Divergence | null = null;
  const executed: ExecutedSlot<O>[] = [];
  for (let slot: number | undefined = first; slot !== undefined; slot = rules.nextToExecute(learner.log, slot)) {
    const value = slotMapGet(learner.log, slot);
    if (value === undefined) break;
    const outputs: ServiceOutput<O>[] = [];
    if (value._tag === "batch") {
      for (const command of value.commands) {
        const applied = rules.executeCommand(ctx, service, command);
        service = applied.state;
        const folded = foldOutput(a, b, applied.output);
        a = folded.a;
        b = folded.b;
        if (collect) outputs.push(applied.output);
      }
    }
    if (collect) executed.push({ slot, outputs });
    if (rules.checkpointDue(slot, ctx.config)) {
      const recorded = recordCheckpoint(ctx, monitor, { slot, digest: checkpointDigest(ctx, service, a, b) });
      monitor = recorded.monitor;
      divergence ??= recorded.divergence;
    }
    executedUpTo = slot;
  }
  const nextLearner = copyLearner(learner);
  nextLearner.service = service;
  nextLearner.executedUpTo = executedUpTo;
  nextLearner.commitIndex = Math.max(learner.commitIndex, executedUpTo);
  const nextMonitor = copyMonitor(monitor);
  nextMonitor.outputDigestA = a;
  nextMonitor.outputDigestB = b;
  const next = copyReplica(state);
  next.learner = nextLearner;
  next.monitor = nextMonitor;
  return { state: next, executed, divergence };
}

/**
 * Put a chosen value in the log and emit its `chosen` record. A value already there must be equal:
 * at most one value is ever chosen per slot (Consensus.tla's invariant).
 */
export function learnChosen<S, I, O>(
  state: ReplicaState<S, I, O>,
  slot: number,
  value: Value<I>,
  out: ReplicaEffect<I, O>[],
): ReplicaState<S, I, O> {
  const known = slotMapGet(state.learner.log, slot);
  if (known !== undefined) {
    if (!valuesEqual(known, value)) fail(`Consistency: two different values learned chosen at slot ${slot}`);
    return state;
  }
  if (slot <= state.learner.executedUpTo) fail(`learnChosen: slot ${slot} executed without being in the log`);
  out.push({ _tag: "Persist", record: { _tag: "chosen", slot, value } });
  const learner = copyLearner(state.learner);
  learner.log = slotMapSet(state.learner.log, slot, value);
  return withLearner(state, learner);
}

/**
 * A leader of `ballot` says every slot <= `commitIndex` is chosen. Learn the ones whose value this
 * replica voted for in that ballot (rule `learnableFromLeader`), in slot order up to the first it
 * cannot learn; the rest come by catch-up.
 */
export function learnCommitted<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  ballot: Ballot,
  commitIndex: number,
  out: ReplicaEffect<I, O>[],
): ReplicaState<S, I, O> {
  let s = state;
  if (commitIndex > s.learner.commitIndex) {
    const learner = copyLearner(s.learner);
    learner.commitIndex = commitIndex;
    s = withLearner(s, learner);
  }
  for (let slot = s.learner.executedUpTo + 1; slot <= commitIndex; slot++) {
    if (slotMapHas(s.learner.log, slot)) continue;
    const vote = slotMapGet(s.acceptor.votes, slot);
    if (!rules.learnableFromLeader(vote, ballot)) break;
    s = learnChosen(s, slot, vote!.value, out);
  }
  return s;
}

/** True when this replica knows slots are chosen that it cannot execute for lack of their values. */
export function needsCatchUp<S, I, O>(state: ReplicaState<S, I, O>): boolean {
  const { learner } = state;
  return learner.commitIndex > learner.executedUpTo && !slotMapHas(learner.log, learner.executedUpTo + 1);
}

/** Ask `to` for the chosen values this replica lacks, at most once per heartbeat interval. */
export function requestCatchUp<S, I, O>(
  state: ReplicaState<S, I, O>,
  to: ReplicaId,
  now: number,
  out: ReplicaEffect<I, O>[],
): ReplicaState<S, I, O> {
  const { learner, ctx } = state;
  if (!needsCatchUp(state) || to === ctx.config.self) return state;
  if (now < learner.catchUpSentAt + ctx.config.heartbeatIntervalMs) return state;
  const message: CatchUpMsg = { _tag: "CatchUp", fromSlot: learner.executedUpTo + 1, toSlot: learner.commitIndex };
  out.push({ _tag: "Send", to, message });
  const next = copyLearner(learner);
  next.catchUpSentAt = now;
  return withLearner(state, next);
}

/** Answer a CatchUp with the contiguous run of chosen entries from `fromSlot` this replica has (bounded). */
export function answerCatchUp<S, I, O>(state: ReplicaState<S, I, O>, from: ReplicaId, m: CatchUpMsg, out: ReplicaEffect<I, O>[]): void {
  const last = Math.min(m.toSlot, m.fromSlot + state.ctx.config.catchUpSlotsMax - 1);
  const entries: ChosenEntry<I>[] = [];
  for (let slot = m.fromSlot; slot <= last; slot++) {
    const value = slotMapGet(state.learner.log, slot);
    if (value === undefined) break;
    entries.push({ slot, value });
  }
  if (entries.length > 0) out.push({ _tag: "Send", to: from, message: { _tag: "CatchUpReply", entries } });
}

/** Take the chosen entries of a CatchUpReply into the log (every replica's log holds chosen values only). */
export function receiveCatchUp<S, I, O>(state: ReplicaState<S, I, O>, m: CatchUpReplyMsg<I>, out: ReplicaEffect<I, O>[]): ReplicaState<S, I, O> {
  let s = state;
  // Entries already in the log are compared with it (learnChosen asserts they are equal).
  for (const entry of m.entries) s = learnChosen(s, entry.slot, entry.value, out);
  const learner = copyLearner(s.learner);
  learner.catchUpSentAt = Number.NEGATIVE_INFINITY;
  return withLearner(s, learner);
}

/**
 * The learner: it learns which values are chosen (from a leader's commit index, or from another
 * replica's log by catch-up), and executes the chosen log strictly in slot order through the
 * service spec's `apply` (spec/service.ts), so that the session table, and with it exactly-once,
 * is part of the replicated state. Execution is step 4 of the recipe; it is also where membership
 * changes take effect (alpha slots later), where the divergence monitor takes its checkpoints, and
 * where snapshots are taken and the log and votes below them truncated.
 *
 * It must never execute a slot before every lower slot, never put a value in the log that is not
 * chosen, and never deduplicate client requests by itself (the service spec does that).
 */
import type { Applied } from "../../spec/state-machine.ts";
import {
  featureLevelMax,
  featureLevelOf,
  featuresMisfit,
  raiseFeatures,
  type ServiceOutput,
  type SessionBounds,
  type ServiceState,
} from "../../spec/service.ts";
import { pmGet, pmHas, pmRemove, pmSet, type PersistentMap } from "../../spec/persistent-map.ts";
import { truncateVotes } from "./acceptor.ts";
import type { Ballot } from "./ballot.ts";
import { fail } from "./assert.ts";
import type { Config } from "./config.ts";
import {
  applyChange,
  configurationFor,
  configurationReplicasMax,
  pruneConfigurations,
  replicasOf,
  type ConfigChange,
  type Configuration,
} from "./configuration.ts";
import type { ReadEntriesPurpose, ReplicaId } from "./events.ts";
import { holdsStored, inMemory, isStored, sameValue, valueBytes, type HeldValue, type StoredValue } from "./at-rest.ts";
import {
  valuesEqual,
  type CatchUpMsg,
  type CatchUpReplyMsg,
  type ChosenEntry,
  type Command,
  type PromiseMsg,
  type Value,
} from "./messages.ts";
import { checkpointDigest, foldOutput, recordCheckpoint, type Divergence } from "./monitor.ts";
import type { DurableRecord } from "./records.ts";
import { sameEntry, type StoreAtRest, type StoredEntry } from "./store-at-rest.ts";
import type { ReplicaRules } from "./rules.ts";
import { makeSnapshot, snapshotRecord, snapshotSize, type SnapshotContents } from "./snapshot.ts";
import {
  slotMapDropThrough,
  slotMapEntries,
  slotMapForEach,
  slotMapGet,
  slotMapHas,
  slotMapSet,
  type SlotMap,
} from "./slot-map.ts";
import {
  copyAcceptor,
  copyLearner,
  copyMonitor,
  copyReplica,
  withLearner,
  type HeldVote,
  type LearnerState,
  type ReplicaContext,
  type ReplicaState,
  type Draft,
} from "./state.ts";
import type { ReplicaEffect } from "./replica.ts";
import { sendChunk } from "./transfer.ts";

/**
 * May a follower take its own vote at a slot as the chosen value, once a leader of `ballot` said
 * the slot is committed? Only if the vote is in that very ballot: the leader proposed exactly one
 * value per slot in its ballot (OneValuePerBallot), and it declares a slot committed only when a
 * quorum voted for that value in its ballot, or when it knew the slot chosen before it proposed
 * anything there (then it made no proposal there, so no vote in its ballot exists).
 */
export function learnableFromLeader<I>(rules: ReplicaRules, vote: HeldVote<I> | undefined, ballot: Ballot): boolean {
  return vote !== undefined && rules.compareBallots(vote.ballot, ballot) === 0;
}

/** What executing a membership change did: the configuration it made, or why it did not fit. */
export type ChangeOutcome =
  | { readonly _tag: "applied"; readonly configuration: Configuration }
  | { readonly _tag: "refused"; readonly reason: string };

/** The outputs of one executed slot, one per command of its batch (and the outcome of a membership change). */
export interface ExecutedSlot<O> {
  readonly slot: number;
  readonly outputs: readonly ServiceOutput<O>[];
  readonly change?: ChangeOutcome | undefined;
}

/**
 * The next slot to execute: executedUpTo + 1 once the log has it. Execution is strictly in slot
 * order (step 4 of the recipe); a gap stops it until the gap is filled.
 */
export function nextToExecute<I>(log: SlotMap<HeldValue<I>>, executedUpTo: number): number | undefined {
  return slotMapHas(log, executedUpTo + 1) ? executedUpTo + 1 : undefined;
}

/**
 * Execute one command through the service spec. A command without a session is applied to the
 * application alone, by the rules of the feature level the service state executes by (as the
 * service spec applies one with a session).
 */
export function executeCommand<S, I, O>(
  ctx: ReplicaContext<S, I, O>,
  service: ServiceState<S, O>,
  command: Command<I>,
): Applied<ServiceState<S, O>, ServiceOutput<O>> {
  if (command.clientId !== undefined && command.seq !== undefined) {
    return ctx.service.apply({ clientId: command.clientId, seq: command.seq, input: command.input }, service);
  }
  const applied = ctx.app.apply(command.input, service.app, featureLevelOf(service));
  return {
    state: { ...service, app: applied.state, executed: service.executed + 1 },
    output: { _tag: "executed", output: applied.output },
  };
}

/**
 * Rule R1 (the alpha window): a change chosen at slot `chosenAt` governs the slots from
 * chosenAt + alpha on. Every replica computes the same slot, so every slot is decided under exactly
 * one configuration; and a leader that has executed up to e knows the configuration of every slot
 * up to e + alpha, which is as far as it ever proposes.
 */
export function governsFrom(chosenAt: number, alpha: number): number {
  return chosenAt + alpha;
}

/**
 * Rule R5 (retirement): is this replica retired at clock reading `now`, and why (null: not yet)?
 * Only a replica whose removal is chosen (its id retired in the latest configuration it holds)
 * ever retires, and retired ids are never added again, so a replica that is in no list (a joining
 * one catching up on slots before its addition, or from a snapshot older than it) waits instead.
 * And only once the configuration that goes on without it has taken over: a voter of it said (a
 * heartbeat) that every slot before the removal governs is chosen, so it knows them all and the
 * others can learn them from it. Without that, the replicas that stay may lag behind slots only
 * the removed ones know (a majority removed at once, the one that stays cut off meanwhile), and
 * would wait for ever once those retired. Then it retires once the removal governs its next slot
 * to execute (no slot it has yet to execute needs it), or once it has executed nothing for
 * `retireGraceMs` since it learned of the removal.
 */
export function retirement<S, I, O>(state: ReplicaState<S, I, O>, now: number): string | null {
  const self = state.ctx.config.self;
  const configs = state.learner.configs;
  const latest = configs[configs.length - 1]!;
  if (!latest.retired.includes(self) || state.removal === null || !state.removal.handedOver) return null;
  const why = `replica ${self} was removed from the cluster: the configuration chosen at slot ${latest.epoch} (voters ${latest.voters.join(",")}${latest.learners.length === 0 ? "" : `, learners ${latest.learners.join(",")}`}) does not include it`;
  if (configurationFor(configs, state.learner.executedUpTo + 1).retired.includes(self)) return why;
  const idleMs = now - state.removal.progressAt;
  if (idleMs >= state.ctx.config.retireGraceMs)
    return `${why}; it executed nothing for ${Math.round(idleMs)} ms short of slot ${latest.governsFrom}, where the removal governs`;
  return null;
}

/** Execute a membership change chosen at `slot`: a new configuration on top of the latest, or a refusal. */
function executeChange(
  rules: ReplicaRules,
  configs: readonly Configuration[],
  change: ConfigChange,
  slot: number,
  alpha: number,
): { configs: readonly Configuration[]; outcome: ChangeOutcome } {
  const latest = configs[configs.length - 1]!;
  const applied = applyChange(latest, change);
  if (typeof applied === "string") return { configs, outcome: { _tag: "refused", reason: applied } };
  const configuration: Configuration = {
    epoch: slot,
    governsFrom: rules.governsFrom(slot, alpha),
    voters: applied.voters,
    learners: applied.learners,
    retired: applied.retired,
    addresses: applied.addresses,
  };
  // Peers are counted in 31-bit masks: the configurations held at once may list at most 31 replicas.
  const held = new Set(replicasOf([...configs, configuration], applied.voters[0]!));
  if (held.size > configurationReplicasMax) {
    return {
      configs,
      outcome: {
        _tag: "refused",
        reason: `the configurations in force and pending would list ${held.size} replicas, more than ${configurationReplicasMax}`,
      },
    };
  }
  if (!(configuration.governsFrom > slot))
    fail(`a change chosen at slot ${slot} would govern slot ${configuration.governsFrom}`);
  const next = configs.slice();
  next.push(configuration);
  return { configs: next, outcome: { _tag: "applied", configuration } };
}

/** The learner after executing the slots ready in the log (all of them, or up to a step's bytes). */
export interface ExecuteResult<S, I, O> {
  readonly state: ReplicaState<S, I, O>;
  /** True when the step's bytes ran out with the next slot ready in the log: a later step goes on. */
  readonly more: boolean;
  /** Executed slots with their outputs; empty unless `collect` was true (changes are always listed). */
  readonly executed: readonly ExecutedSlot<O>[];
  readonly divergence: Divergence | null;
  /** The state at the last snapshot slot executed, to be persisted by the caller; null if none was reached. */
  readonly snapshot: SnapshotContents<S, O> | null;
  /**
   * A slot execution stopped before: it raises the feature level above {@link featureLevelMax}, the
   * highest this version knows, so this replica must not execute it or anything after it. Null: none.
   */
  readonly unsupported: UnsupportedLevel | null;
  /**
   * Execution stopped before the next slot for these store values at rest (rule V4): a command of
   * the slot reads them, or the slot is a snapshot slot. Null: it did not stop for values.
   */
  readonly readBack: ReadBack | null;
}

/** Store values at rest the core needs in memory, and why (a `ReadEntries` effect's contents). */
export interface ReadBack {
  readonly entries: readonly StoredEntry[];
  readonly purpose: ReadEntriesPurpose;
}

/**
 * Rule V4: the store values at rest that executing `value` on `app` needs first: those its commands
 * read (a get, swap or append of a key at rest; a put or delete needs nothing). Null when none. A
 * snapshot slot needs none: its serialization leaves each value at rest a hole of the length its
 * reference gives, filled from the vote record where the snapshot is written (rule V5).
 */
export function readsAtRest<S, I>(atRest: StoreAtRest<S, I>, app: S, value: Value<I>): ReadBack | null {
  const entries: StoredEntry[] = [];
  for (const key of keysReadBy(atRest, value)) {
    const ref = atRest.resting(app, key);
    if (ref !== null) entries.push(ref);
  }
  return entries.length === 0 ? null : { entries, purpose: "command" };
}

/**
 * The keys whose values the commands of `value` read (a get, swap or append; a put or delete reads
 * none), each once, in the order of the commands; none for a value that is not a batch. Rule V4
 * asks for those of them at rest (`readsAtRest`), and keeps them in memory while execution waits
 * at the slot (`entriesRead`).
 */
export function keysReadBy<S, I>(atRest: StoreAtRest<S, I>, value: Value<I>): readonly string[] {
  const keys: string[] = [];
  if (value._tag === "batch")
    for (const command of value.commands) {
      const key = atRest.reads(command.input);
      if (key !== null && !keys.includes(key)) keys.push(key);
    }
  return keys;
}

/** A raise of the feature level to `level` at `slot`, above what this version executes. */
export interface UnsupportedLevel {
  readonly slot: number;
  readonly level: number;
}

/** The halt message for `u`: what the operator must do. */
export function unsupportedMessage(self: ReplicaId, u: UnsupportedLevel): string {
  return `replica ${self} cannot execute slot ${u.slot}: it raises the feature level to ${u.level}, above ${featureLevelMax}, the highest this version executes; it stops there rather than execute later slots by rules it does not know: upgrade it`;
}

/**
 * Execute a raise of the feature level: through the service spec (`raiseFeatures`), or nothing for
 * a malformed one (a level below 2), which every version executes alike. A level above
 * {@link featureLevelMax} never gets here (`executeReady` stops before it).
 */
export function executeFeatures<S, O>(
  service: ServiceState<S, O>,
  level: number,
  bounds: SessionBounds,
): ServiceState<S, O> {
  // Only the bounds: a FeaturesValue carries its tag too, which the state must not keep.
  const { sessionsMax, outputBytesMax } = bounds;
  return featuresMisfit(level, bounds) === null
    ? raiseFeatures(service, level, { sessionsMax, outputBytesMax })
    : service;
}

/**
 * Execute slots executedUpTo + 1, executedUpTo + 2, ... for as long as the log has them, taking a
 * checkpoint at each checkpoint slot and at each snapshot slot, and capturing the state at the last
 * snapshot slot. Strictly in order: a gap stops execution until it is filled. One call executes at
 * most `bytesMax` bytes of values (at least one slot; `more` says that the next one is ready): a
 * follower told at once that eight slots of 1 MiB values are chosen would otherwise hash and apply
 * all of them in one step, which on a loaded machine outlasts a heartbeat interval.
 */
export function executeReady<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  collect: boolean,
  bytesMax: number = Number.POSITIVE_INFINITY,
): ExecuteResult<S, I, O> {
  const { ctx, learner } = state;
  const first = rules.nextToExecute(learner.log, learner.executedUpTo);
  if (first === undefined || !slotMapHas(learner.log, first))
    return { state, more: false, executed: [], divergence: null, snapshot: null, unsupported: null, readBack: null };
  let executedUpTo = learner.executedUpTo;
  let bytesSinceSnapshot = learner.bytesSinceSnapshot;
  let commandsSinceSnapshot = learner.commandsSinceSnapshot;
  // The latest snapshot's size matters only once the bytes since it reach the interval: read it
  // only then, so that a snapshot still being serialized in slices is not finished here at once.
  let snapshotBytes = -1;
  let service = learner.service;
  const atRest = ctx.storeAtRest;
  let origins = learner.origins;
  let configs = learner.configs;
  let monitor = state.monitor;
  let a = monitor.outputDigestA;
  let b = monitor.outputDigestB;
  let divergence: Divergence | null = null;
  let snapshot: SnapshotContents<S, O> | null = null;
  const executed: ExecutedSlot<O>[] = [];
  let stepBytes = 0;
  let more = false;
  let unsupported: UnsupportedLevel | null = null;
  let readBack: ReadBack | null = null;
  for (let slot: number | undefined = first; slot !== undefined; slot = rules.nextToExecute(learner.log, slot)) {
    const held = slotMapGet(learner.log, slot);
    if (held === undefined) break;
    if (stepBytes >= bytesMax) {
      more = true;
      break;
    }
    const value = inMemory(held, `execute slot ${slot}`);
    if (value._tag === "features" && value.level > featureLevelMax) {
      unsupported = { slot, level: value.level };
      break;
    }
    // Whether this slot is a snapshot slot depends on its value alone: known before it executes.
    const bytes = valueBytes(value);
    const bytesAfter = bytesSinceSnapshot + bytes;
    // Counted only where the bound is set: a replica without it keeps the states it had (the explorer's).
    const commandsAfter =
      ctx.config.snapshotIntervalCommands < Number.MAX_SAFE_INTEGER
        ? commandsSinceSnapshot + commandCount(value)
        : commandsSinceSnapshot;
    if (snapshotBytes < 0 && bytesAfter >= ctx.config.snapshotIntervalBytes)
      snapshotBytes = snapshotSize(learner.snapshot);
    const snapshotDue = rules.snapshotDue(slot, ctx.config, bytesAfter, Math.max(snapshotBytes, 0), commandsAfter);
    if (atRest !== null) {
      // Rule V4: never execute on a value at rest; stop here until the driver reads it back.
      readBack = rules.readsAtRest(atRest, service.app, value);
      if (readBack !== null) break;
    }
    stepBytes += bytes;
    bytesSinceSnapshot = bytesAfter;
    commandsSinceSnapshot = commandsAfter;
    const outputs: ServiceOutput<O>[] = [];
    let outcome: ChangeOutcome | undefined;
    if (value._tag === "batch") {
      for (const command of value.commands) {
        // A key written anew is named by no older vote (rule V1): `putAtRest` names it again. A
        // command that leaves an entry at rest as it was (a retry its session answers) keeps its name.
        const written = atRest === null ? null : atRest.writes(command.input);
        const resting = atRest === null || written === null ? null : atRest.resting(service.app, written);
        const applied = rules.executeCommand(ctx, service, command);
        service = applied.state;
        if (
          written !== null &&
          pmHas(origins, written) &&
          (resting === null || atRest?.resting(service.app, written) !== resting)
        )
          origins = pmRemove(origins, written);
        const folded = foldOutput(a, b, applied.output);
        a = folded.a;
        b = folded.b;
        if (collect) outputs.push(applied.output);
      }
    } else if (value._tag === "reconfig") {
      const r = executeChange(rules, configs, value.change, slot, ctx.config.reconfigAlphaSlots);
      configs = r.configs;
      outcome = r.outcome;
    } else if (value._tag === "features") {
      service = rules.executeFeatures(service, value.level, value);
    } else if (value._tag === "open") {
      for (let i = 0; i < value.count; i++) {
        const applied = rules.openSession(service);
        service = applied.state;
        const folded = foldOutput(a, b, applied.output);
        a = folded.a;
        b = folded.b;
        if (collect) outputs.push(applied.output);
      }
    }
    if (collect || outcome !== undefined) executed.push({ slot, outputs, change: outcome });
    configs = pruneConfigurations(configs, slot + 1);
    if (snapshotDue) {
      bytesSinceSnapshot = 0;
      commandsSinceSnapshot = 0;
    }
    if (rules.checkpointDue(slot, ctx.config) || snapshotDue) {
      const recorded = recordCheckpoint(ctx, monitor, { slot, digest: checkpointDigest(ctx, service, a, b) });
      monitor = recorded.monitor;
      divergence ??= recorded.divergence;
    }
    // The values named by their votes as of this slot are filled from those votes where the
    // snapshot's bytes are written (rule V5, proofs/store-at-rest.md).
    if (snapshotDue)
      snapshot = {
        slot,
        service,
        outputDigestA: a,
        outputDigestB: b,
        configs,
        checkpoints: monitor.checkpoints,
        ...(origins.size > 0 ? { atRest: origins } : {}),
      };
    executedUpTo = slot;
  }
  const nextLearner = copyLearner(learner);
  nextLearner.service = service;
  nextLearner.origins = origins;
  nextLearner.executedUpTo = executedUpTo;
  nextLearner.bytesSinceSnapshot = bytesSinceSnapshot;
  nextLearner.commandsSinceSnapshot = commandsSinceSnapshot;
  nextLearner.commitIndex = Math.max(learner.commitIndex, executedUpTo);
  nextLearner.configs = configs;
  if (learner.transfer !== null && learner.transfer.slot <= executedUpTo) nextLearner.transfer = null;
  const nextMonitor = copyMonitor(monitor);
  nextMonitor.outputDigestA = a;
  nextMonitor.outputDigestB = b;
  const next = copyReplica(state);
  next.learner = nextLearner;
  next.monitor = nextMonitor;
  if (ctx.config.valuesAtRest && executedUpTo >= first) putAtRest(rules, next, nextLearner, first, executedUpTo);
  return { state: next, more, executed, divergence, snapshot, unsupported, readBack };
}

/**
 * Put the values of the executed slots `from`..`to` at rest (`valuesAtRest`, impl/core/at-rest.ts):
 * where this replica's vote holds the value, the vote and the log keep only where it lies on disk
 * (the vote record, persisted before any effect after the vote). A value the log holds without
 * such a vote (learned by catch-up) stays in memory, and so does everything above `to`, and so does a
 * value whose only vote here is the leader's own, not yet known durable (`AcceptorState.ownVotes`). `voted`
 * gives the vote records to name when the votes no longer hold them (a recovery below its
 * snapshot's slot, where the votes are forgotten but the log keeps a tail). Writes `next` and
 * `learner`, copies the caller made.
 */
export function putAtRest<S, I, O>(
  rules: ReplicaRules,
  next: Draft<ReplicaState<S, I, O>>,
  learner: Draft<LearnerState<S, I, O>>,
  from: number,
  to: number,
  voted: SlotMap<HeldVote<I>> = next.acceptor.votes,
): void {
  let votes = next.acceptor.votes;
  let log = learner.log;
  let origins = learner.origins;
  const own = next.acceptor.ownVotes;
  for (let slot = from; slot <= to; slot++) {
    const vote = slotMapGet(voted, slot);
    if (vote === undefined) continue;
    // The leader's own vote not yet known durable holds nothing at rest: no record may be read back
    // before it is on disk (its `VoteDurable` puts the slot at rest, `ownVoteDurable`).
    if (own !== null && slot > own.durableUpTo && rules.compareBallots(vote.ballot, own.ballot) === 0) continue;
    const stored: StoredValue = isStored(vote.value)
      ? vote.value
      : { _tag: "stored", slot, ballot: vote.ballot, bytes: valueBytes(vote.value) };
    const mine = slotMapGet(votes, slot);
    if (mine !== undefined && mine.value === vote.value && mine.value !== stored)
      votes = slotMapSet(votes, slot, { ballot: vote.ballot, value: stored });
    const known = slotMapGet(log, slot);
    if (known === undefined || isStored(known)) continue;
    if (known === vote.value || (!isStored(vote.value) && valuesEqual(known, vote.value))) {
      log = slotMapSet(log, slot, stored);
      const value = vote.value;
      if (!isStored(value)) origins = nameByVote(next.ctx, learner, origins, slot, vote.ballot, value);
    }
  }
  learner.origins = origins;
  if (votes !== next.acceptor.votes) {
    const acceptor = copyAcceptor(next.acceptor);
    acceptor.votes = votes;
    next.acceptor = acceptor;
  }
  learner.log = log;
}

/**
 * Rule V1 (`storeAtRestCharsMin`, proofs/store-at-rest.md): name by the durable vote at `slot` in
 * `ballot` every value of at least that length that one of its commands wrote and the store
 * (`learner.service`, the state after execution) still holds, and hold it at rest: the store's
 * entry becomes its `StoredEntry`. `origins` unchanged when off. `value` is the vote's, in memory.
 * Writes `learner.service`, a copy the caller made.
 */
function nameByVote<S, I, O>(
  ctx: ReplicaContext<S, I, O>,
  learner: Draft<LearnerState<S, I, O>>,
  origins: PersistentMap<StoredEntry>,
  slot: number,
  ballot: Ballot,
  value: Value<I>,
): PersistentMap<StoredEntry> {
  const atRest = ctx.storeAtRest;
  if (atRest === null || value._tag !== "batch") return origins;
  const named = { slot, ballot, value };
  let app = learner.service.app;
  value.commands.forEach((command, index) => {
    const key = atRest.writes(command.input);
    if (key === null) return;
    const ref = atRest.originOf(app, key, named, index, ctx.config.storeAtRestCharsMin);
    if (ref === null) return;
    origins = pmSet(origins, key, ref);
    app = atRest.rest(app, ref);
  });
  if (app !== learner.service.app) learner.service = { ...learner.service, app };
  return origins;
}

/**
 * Rule V1 again for values read back (rule V4) once what needed them is done: each of `entries`
 * that `origins` still names (its key not written since) goes back to rest. Writes `learner.service`.
 */
export function restAgain<S, I, O>(
  ctx: ReplicaContext<S, I, O>,
  learner: Draft<LearnerState<S, I, O>>,
  entries: readonly StoredEntry[],
): void {
  const atRest = ctx.storeAtRest;
  if (atRest === null) return;
  let app = learner.service.app;
  for (const ref of entries) {
    const named = pmGet(learner.origins, ref.key);
    if (named === undefined || !sameEntry(named, ref) || atRest.resting(app, ref.key) !== null) continue;
    app = atRest.rest(app, named);
  }
  if (app !== learner.service.app) learner.service = { ...learner.service, app };
}

/**
 * Is `slot` a snapshot slot? Every multiple of `snapshotIntervalSlots`, every slot that brings
 * the bytes of values executed since the last snapshot slot to `snapshotIntervalBytes` or to the
 * size of the latest snapshot (`snapshotBytes`), whichever is larger, and every slot that brings the
 * commands executed since the last snapshot slot to `snapshotIntervalCommands`. A log of 1 MiB values
 * held a gigabyte between two snapshots by slots, and a snapshot serializes the whole state, so a state
 * larger than the interval is not written more often than the values executed; a slot of a batch
 * costs the log and the store in proportion to its commands, so a long interval by slots for a lone
 * writer is not one of many times its commands under many writers. The counts are functions of the
 * chosen log and the latest snapshot one of the state, so replicas snapshot at the same slots (a
 * replica that lost its latest snapshot to a crash may pick others until its next).
 */
export function snapshotDue(
  slot: number,
  config: Config,
  bytesSinceSnapshot: number,
  snapshotBytes: number,
  commandsSinceSnapshot: number,
): boolean {
  return (
    slot % config.snapshotIntervalSlots === 0 ||
    bytesSinceSnapshot >= Math.max(config.snapshotIntervalBytes, snapshotBytes) ||
    commandsSinceSnapshot >= config.snapshotIntervalCommands
  );
}

/**
 * The commands a chosen value carries, as `snapshotIntervalCommands` counts them: a batch's, a
 * session opening's, one otherwise.
 */
export function commandCount<I>(value: Value<I>): number {
  if (value._tag === "batch") return value.commands.length;
  if (value._tag === "open") return value.count;
  return 1;
}

/**
 * Persist a snapshot of the executed prefix up to `contents.slot`, then truncate: forget the votes
 * at slots <= its slot (rule T1, proofs/truncation.md) and the log up to the previous snapshot's
 * slot (the log of the last interval stays, so that a peer lagging less than one interval catches
 * up from the log rather than by state transfer; the previous snapshot stays too, so that a
 * transfer of it in progress can finish), or further, so that the log keeps at most
 * `logTailBytes` of values at and below the new snapshot's slot (`tailStart`). The record is persisted before any later
 * effect, so no Promise that omits the forgotten votes can leave before the snapshot is durable;
 * a crash before that leaves the previous snapshot and every vote in place.
 */
export function takeSnapshot<S, I, O>(
  state: ReplicaState<S, I, O>,
  contents: SnapshotContents<S, O>,
  out: ReplicaEffect<I, O>[],
): ReplicaState<S, I, O> {
  const { learner } = state;
  if (contents.slot > learner.executedUpTo)
    fail(`snapshot of slot ${contents.slot} beyond the executed prefix ${learner.executedUpTo}`);
  if (learner.snapshot !== null && contents.slot <= learner.snapshot.slot) return state;
  const info = makeSnapshot(state.ctx, contents);
  const logTruncatedUpTo = Math.max(
    learner.logTruncatedUpTo,
    learner.snapshot?.slot ?? 0,
    tailStart(
      learner.log,
      info.slot,
      state.ctx.config.logTailBytes,
      Math.max(learner.logTruncatedUpTo, learner.snapshot?.slot ?? 0),
    ),
  );
  out.push({ _tag: "Persist", record: snapshotRecord(info, state.acceptor.maxBal, logTruncatedUpTo) });
  const l = copyLearner(learner);
  l.priorSnapshot = learner.snapshot;
  l.snapshot = info;
  l.logTruncatedUpTo = logTruncatedUpTo;
  l.log = slotMapDropThrough(learner.log, logTruncatedUpTo);
  const s = copyReplica(state);
  s.learner = l;
  s.acceptor = truncateVotes(state.acceptor, info.slot);
  return s;
}

/**
 * The slot through which the log may be truncated so that what it keeps at and below `slot` is the
 * newest run of values within `tailBytes` (and at least the value at `slot`, if the log has it);
 * 0 when all of it fits. Only the values above `floor` are measured: the caller truncates through
 * `floor` anyway (the previous snapshot's slot), so a slot at or below it would change nothing, and
 * a snapshot then measures each value of its interval once (a value's size is measured once, at
 * its execution, `valueBytes`), not the whole log again.
 */
export function tailStart<I>(log: SlotMap<HeldValue<I>>, slot: number, tailBytes: number, floor = 0): number {
  let total = 0;
  slotMapForEach(log, floor + 1, slot, (_, value) => {
    total += valueBytes(value);
    return true;
  });
  if (total <= tailBytes) return 0;
  const kept = slotMapEntries(log, floor + 1, slot);
  let bytes = 0;
  for (let i = kept.length - 1; i >= 0; i--) {
    bytes += valueBytes(kept[i]![1]);
    if (bytes > tailBytes && i < kept.length - 1) return kept[i]![0];
  }
  return 0;
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
    if (!sameValue(known, value)) fail(`Consistency: two different values learned chosen at slot ${slot}`);
    return state;
  }
  if (slot <= state.learner.executedUpTo) {
    // Executed here, and gone from the log by truncation: nothing to learn, nothing to compare with.
    if (slot <= state.learner.logTruncatedUpTo) return state;
    fail(`learnChosen: slot ${slot} executed without being in the log`);
  }
  out.push({ _tag: "Persist", record: chosenRecord(state, slot, value) });
  const learner = copyLearner(state.learner);
  learner.log = slotMapSet(state.learner.log, slot, value);
  return withLearner(state, learner);
}

/**
 * The durable record of `value` chosen at `slot`: a reference to this replica's vote there when
 * the vote holds that value (its record is already in the log, ahead of this one), so the value is
 * on disk once; the value itself otherwise.
 */
function chosenRecord<S, I, O>(state: ReplicaState<S, I, O>, slot: number, value: Value<I>): DurableRecord<I> {
  const vote = slotMapGet(state.acceptor.votes, slot);
  if (vote !== undefined && sameValue(vote.value, value)) return { _tag: "chosen", slot, ballot: vote.ballot };
  return { _tag: "chosen", slot, value };
}

/** The state with its commit index raised to `slot` when that is higher: every slot <= `slot` is known chosen. */
export function withCommitIndexAtLeast<S, I, O>(state: ReplicaState<S, I, O>, slot: number): ReplicaState<S, I, O> {
  if (slot <= state.learner.commitIndex) return state;
  const learner = copyLearner(state.learner);
  learner.commitIndex = slot;
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
  let s = withCommitIndexAtLeast(state, commitIndex);
  for (let slot = s.learner.executedUpTo + 1; slot <= commitIndex; slot++) {
    if (slotMapHas(s.learner.log, slot)) continue;
    const vote = slotMapGet(s.acceptor.votes, slot);
    if (!rules.learnableFromLeader(rules, vote, ballot)) break;
    s = learnChosen(s, slot, inMemory(vote!.value, `learn slot ${slot}`), out);
  }
  return s;
}

/**
 * True when this replica knows slots are chosen that it cannot execute for lack of their values,
 * and no state transfer is already bringing them.
 */
export function needsCatchUp<S, I, O>(state: ReplicaState<S, I, O>): boolean {
  const { learner } = state;
  return (
    learner.commitIndex > learner.executedUpTo &&
    learner.transfer === null &&
    !slotMapHas(learner.log, learner.executedUpTo + 1)
  );
}

/**
 * The CatchUp this learner sends: from its first unexecuted slot (which tells the receiver that
 * every slot below it is chosen and known here, `catchUpFromAsker`) to its commit index, or to that
 * first slot alone when it knows nothing chosen beyond (a removed replica asking for its hand-over).
 */
export function catchUpOf<S, I, O>(learner: LearnerState<S, I, O>): CatchUpMsg {
  const fromSlot = learner.executedUpTo + 1;
  return { _tag: "CatchUp", fromSlot, toSlot: Math.max(fromSlot, learner.commitIndex) };
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
  out.push({ _tag: "Send", to, message: catchUpOf(learner) });
  const next = copyLearner(learner);
  next.catchUpSentAt = now;
  return withLearner(state, next);
}

/**
 * Answer a CatchUp with the contiguous run of chosen entries from `fromSlot` this replica has
 * (at most `catchUpSlotsMax` entries, and no entry after the first once `batchBytesMax` bytes of
 * values are in: a learner behind by forty 1 MiB values got one reply of 40 MiB, above the frame
 * limit, encoded and dropped on every retry); if its log is truncated at or above `fromSlot`,
 * with the first chunk of its snapshot instead (state transfer, impl/core/transfer.ts).
 */
export function answerCatchUp<S, I, O>(
  state: ReplicaState<S, I, O>,
  from: ReplicaId,
  m: CatchUpMsg,
  out: ReplicaEffect<I, O>[],
): void {
  const { learner } = state;
  if (
    m.fromSlot <= learner.logTruncatedUpTo ||
    (learner.snapshot !== null && m.fromSlot <= learner.snapshot.slot && !slotMapHas(learner.log, m.fromSlot))
  ) {
    sendChunk(state, state.learner.snapshot, from, 0, out);
    return;
  }
  const last = Math.min(m.toSlot, m.fromSlot + state.ctx.config.catchUpSlotsMax - 1);
  const entries: ChosenEntry<I, HeldValue<I>>[] = [];
  let bytes = 0;
  for (let slot = m.fromSlot; slot <= last; slot++) {
    const value = slotMapGet(state.learner.log, slot);
    if (value === undefined) break;
    bytes += valueBytes(value);
    if (entries.length > 0 && bytes > state.ctx.config.batchBytesMax) break;
    entries.push({ slot, value });
  }
  if (entries.length > 0) sendHeld(out, from, { _tag: "CatchUpReply", entries });
}

/**
 * A CatchUp asks from the first slot its sender has not executed (`requestCatchUp`, and a removed
 * replica's `awaitHandOver`), so its sender has executed, and knows chosen, every slot below
 * `m.fromSlot`. A replica that has executed fewer learns that they are chosen (its commit index)
 * and asks the sender for them in turn, unless it leads (a leader proposes every slot from its
 * first unexecuted one itself) or a state transfer is already bringing them. Without this, chosen
 * slots known only to a replica whose removal they chose could stay unknown for ever: an isolated
 * sole voter replaces itself, chooses the window's slots alone, and its farewell heartbeat is lost;
 * the new voter has not executed far enough to campaign (rule L5), and the removed replica, which
 * may not retire before it is handed over (rule R5), only asks it for the slot after its own.
 * Outside `requestCatchUp`'s rate limit, and leaving it alone: it answers one CatchUp with one (the
 * sender's rate limit holds), and a request to a leader hint that cannot help must not crowd it
 * out, nor it a request to the leader.
 */
export function catchUpFromAsker<S, I, O>(
  state: ReplicaState<S, I, O>,
  from: ReplicaId,
  m: CatchUpMsg,
  out: ReplicaEffect<I, O>[],
): ReplicaState<S, I, O> {
  const known = m.fromSlot - 1;
  if (state.role._tag === "leader" || known <= state.learner.executedUpTo || from === state.ctx.config.self)
    return state;
  const s = withCommitIndexAtLeast(state, known);
  if (needsCatchUp(s)) out.push({ _tag: "Send", to: from, message: catchUpOf(s.learner) });
  return s;
}

/**
 * Send `message`: as a `Send` when every value it carries is in memory, else as a `SendStored`,
 * which the driver completes from its durable records (impl/core/at-rest.ts).
 */
export function sendHeld<I, O>(
  out: ReplicaEffect<I, O>[],
  to: ReplicaId,
  message: CatchUpReplyMsg<I, HeldValue<I>> | PromiseMsg<I, HeldValue<I>>,
): void {
  if (holdsStored(message)) out.push({ _tag: "SendStored", to, message });
  else out.push({ _tag: "Send", to, message: message as CatchUpReplyMsg<I> | PromiseMsg<I> });
}

/** Take the chosen entries of a CatchUpReply into the log (every replica's log holds chosen values only). */
export function receiveCatchUp<S, I, O>(
  state: ReplicaState<S, I, O>,
  m: CatchUpReplyMsg<I>,
  out: ReplicaEffect<I, O>[],
): ReplicaState<S, I, O> {
  let s = state;
  // Entries already in the log are compared with it (learnChosen asserts they are equal).
  for (const entry of m.entries) s = learnChosen(s, entry.slot, entry.value, out);
  const learner = copyLearner(s.learner);
  learner.catchUpSentAt = Number.NEGATIVE_INFINITY;
  return withLearner(s, learner);
}

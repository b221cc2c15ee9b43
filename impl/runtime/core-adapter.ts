/**
 * The one place where the runtime knows the concrete replica core of impl/core running the
 * key-value application of spec/kv.ts: its step function, Schemas and initial state, and the
 * read-only view of its state for status and metrics. Everything else in impl/runtime is
 * generic over messages, records and state. Reads the core's state; never changes it.
 */
import {
  chunkOfRecord,
  entryOfVote,
  initialState,
  isStored,
  snapshotSlice,
  snapshotSize,
  type StoredChunkMsg,
  resolveStored,
  valueBytes,
  messageSchema,
  ownBallot,
  parseConfig,
  recordSchema,
  showBallot,
  step,
  type Config,
  type DurableRecord,
  type Message,
  type ReplicaState,
  type ReplicaId,
  type StoredMessage,
  type StoredValue,
  type Configuration,
} from "../core/index.ts";
import { hashFromUtf8, sha256TextHash } from "./text-hash.ts";
import { kvWith, KvInput, KvOutput, type KvState } from "../../spec/kv.ts";
import type { EntryReader, StepFunction, StoredReader } from "./driver.ts";
import type { SnapshotSlice } from "./storage.ts";
import { binaryCodec, type BinaryCodec } from "./binary-codec.ts";
import { jsonCodec } from "./framing.ts";
import type { TraceCodecs } from "./trace.ts";
import type { BatchFacts, ConfigurationView, CoreAdapter, CoreView, MembershipView, SessionsView } from "./view.ts";
import { featureLevelMax, featureLevelOf } from "../../spec/service.ts";

export type KvMessage = Message<KvInput>;
export type KvRecord = DurableRecord<KvInput>;
export type KvReplicaState = ReplicaState<KvState, KvInput, KvOutput>;
/** A message whose values are at rest (a `SendStored` effect's, impl/core/at-rest.ts). */
export type KvStoredMessage = StoredMessage<KvInput>;

/** The message and record Schemas of the key-value replica. */
export const kvMessageSchema = messageSchema(KvInput);
export const kvRecordSchema = recordSchema(KvInput);
/** Peer messages on the wire (impl/runtime/transport.ts): the binary codec compiled from the message Schema. */
export const kvMessageBinary = binaryCodec(kvMessageSchema);
/**
 * Peer messages as a replica receives them: {@link kvMessageBinary}, with the SHA-256 of each long
 * string (an Accept's value) taken from the frame's bytes as it is decoded (text-hash.ts
 * `hashFromUtf8`), where executing the value would hash a UTF-8 copy of it.
 */
export const kvMessageReceived: BinaryCodec<KvMessage> = {
  ...kvMessageBinary,
  decode: (bytes, offset, onUtf8String = hashFromUtf8) => kvMessageBinary.decode(bytes, offset, onUtf8String),
};
/** Records on disk (impl/runtime/storage.ts, `binary`): the binary codec compiled from the record Schema. */
export const kvRecordBinary = binaryCodec(kvRecordSchema);

/** Codecs for the wire, the disk and the trace. */
export const kvCodecs: TraceCodecs<KvMessage, KvRecord, KvInput, KvOutput> = {
  message: jsonCodec(kvMessageSchema),
  record: jsonCodec(kvRecordSchema),
  input: jsonCodec(KvInput),
  output: jsonCodec(KvOutput),
};

/** The key-value replica's step function: impl/core's `step`, unchanged. */
export const kvStep: StepFunction<KvReplicaState, KvMessage, KvRecord, KvInput, KvOutput, KvStoredMessage> = step;

/**
 * The core configuration for replica `self` of `members`, with operator `overrides` (from a
 * JSON file: leaseMs, clockDriftPpmMax, ...). Throws the core's ConfigError, which names each
 * bad field and the hazard it guards against.
 */
export function kvConfig(
  self: ReplicaId,
  members: readonly ReplicaId[],
  overrides: Record<string, unknown> = {},
  joining = false,
): Config {
  for (const field of ["self", "members", "joining"]) {
    if (field in overrides)
      throw new Error(
        `the core configuration file must not set ${field}: it comes from --id, --peers, --join and --initial-members`,
      );
  }
  // The runtime batches adaptively, has a follower stalled past its election deadline wait for its
  // leader (a heartbeat interval, or an election timeout after a stop: `waitAfterStall`), backs a
  // candidate's Prepare resends off (`resendPrepare`), answers a Prepare without the votes it
  // executed (`promiseOmitsChosen`: the candidate fetches them by catch-up), and keeps executed
  // values at rest in its store (read back by the storage thread when a peer needs them:
  // kvStoredReader), unless the operator says otherwise (impl/core/config.ts).
  return parseConfig({
    ...runtimeCoreSettings,
    ...overrides,
    self,
    members: [...members],
    joining,
  });
}

/**
 * The core settings a replica runs with unless its core configuration file says otherwise, where
 * they differ from the core's defaults (kept at the core's so that its stories and committed traces
 * replay). World tuning 10 runs them all (refinement-tests/world/tuning.ts, checked by world.test).
 */
export const runtimeCoreSettings = {
  adaptiveBatching: true,
  electionWaitsAfterStall: true,
  prepareResendBackoff: true,
  promiseOmitsChosen: true,
  valuesAtRest: true,
} as const;

/** The key of a vote record (storage.ts, `keyOf`): the slot and ballot by which a value at rest names it. */
export function kvRecordKey(record: KvRecord): string | null {
  return record._tag === "vote" ? voteKey(record.slot, record.ballot) : null;
}

function voteKey(slot: number, ballot: { readonly round: number; readonly replica: number }): string {
  return `vote ${slot} ${ballot.round}.${ballot.replica}`;
}

/**
 * The key by which a state transfer's chunk at rest reads bytes [offset, offset + length) of the
 * snapshot record of `slot` (storage-worker.ts: storage.ts `readSnapshotSlice`).
 */
export function snapshotSliceKey(slot: number, offset: number, length: number): string {
  return `snapshot ${slot} ${offset} ${length}`;
}

/** The slot, offset and length a {@link snapshotSliceKey} names; null for any other key. */
export function parseSnapshotSliceKey(key: string): { slot: number; offset: number; length: number } | null {
  const match = /^snapshot (\d+) (\d+) (\d+)$/.exec(key);
  if (match === null) return null;
  return { slot: Number(match[1]), offset: Number(match[2]), length: Number(match[3]) };
}

/** The bytes of chunk `m` at rest from `record`: a slice the store read, or the snapshot record of the batch itself. */
function chunkFrom(m: StoredChunkMsg, record: KvRecord | SnapshotSlice): string {
  if (!("_tag" in record))
    return chunkOfRecord(
      {
        slot: record.slot,
        digest: record.digest,
        contentDigest: record.contentDigest,
        data: { length: record.totalBytes },
      },
      m,
      () => record.data,
    );
  if (record._tag !== "snapshot" || record.slot !== m.slot)
    throw new Error(`the chunk at rest of the snapshot of slot ${m.slot} was given another record`);
  // Persisted in the same batch: read from its serialization, never joined whole.
  return chunkOfRecord(
    {
      slot: record.slot,
      digest: record.digest,
      contentDigest: record.contentDigest,
      data: { length: snapshotSize(record) },
    },
    m,
    () => snapshotSlice(record, m.offset, m.length),
  );
}

/** The values at rest of `message`, in the order `resolveStored` reads them. */
function storedValuesOf(message: KvStoredMessage): StoredValue[] {
  if (message._tag === "StoredChunk") return [];
  const values = message._tag === "Promise" ? message.votes.map((v) => v.value) : message.entries.map((e) => e.value);
  return values.filter(isStored);
}

/**
 * How the driver reads a `SendStored` back (impl/core/at-rest.ts): each value at rest is the
 * value of the vote record at its slot in its ballot. The record must be that vote and its value
 * as large as the core measured it, or the message is not sent (the replica stops): a store that
 * gives back another record is never trusted with a peer's catch-up.
 */
export const kvStoredReader: StoredReader<KvMessage, KvRecord, KvStoredMessage> = {
  keys: (message) =>
    message._tag === "StoredChunk"
      ? [snapshotSliceKey(message.slot, message.offset, message.length)]
      : storedValuesOf(message).map((v) => voteKey(v.slot, v.ballot)),
  keyOf: (record) => (record._tag === "snapshot" ? `snapshot ${record.slot}` : kvRecordKey(record)),
  recordKey: (key) => {
    const slice = parseSnapshotSliceKey(key);
    return slice === null ? key : `snapshot ${slice.slot}`;
  },
  resolve: (message, records) => {
    if (message._tag === "StoredChunk") {
      const record = records[0] as KvRecord | SnapshotSlice | undefined;
      if (record === undefined)
        throw new Error(`no record for the chunk at rest of the snapshot of slot ${message.slot}`);
      return resolveStored(
        message,
        () => {
          throw new Error("a chunk holds no value at rest");
        },
        (m) => chunkFrom(m, record),
      );
    }
    let next = 0;
    return resolveStored(message, (stored) => {
      const record = records[next++];
      const key = voteKey(stored.slot, stored.ballot);
      if (record === undefined || kvRecordKey(record) !== key || record._tag !== "vote")
        throw new Error(`the value at rest at slot ${stored.slot} needs record ${key}, and was given another`);
      const bytes = valueBytes(record.value);
      if (bytes !== stored.bytes)
        throw new Error(`record ${key} holds a value of ${bytes} bytes where the one at rest has ${stored.bytes}`);
      return record.value;
    });
  },
};

/**
 * How the driver reads the store's values at rest back (a `ReadEntries` effect, rule V4,
 * proofs/store-at-rest.md): each from this replica's vote record at the entry's slot in its
 * ballot, by rule V2 with the store as the replicas run it (`entryOfVote`, the entry hashes
 * recomputed by {@link kvReplicated}): a record of other bytes stops the replica.
 */
export const kvEntryReader: EntryReader<KvRecord> = {
  key: (entry) => voteKey(entry.slot, entry.ballot),
  value: (entry, record) => entryOfVote(kvReplicated, record._tag === "vote" ? record : undefined, entry),
};

/**
 * The key-value store as the replicas run it: long values hashed by SHA-256 (impl/runtime/text-hash.ts),
 * digest format `sha256`.
 */
export const kvReplicated = kvWith(sha256TextHash);

/** The digest format of {@link kvReplicated}'s digests, which a replica names in its handshake. */
export const kvDigestFormat = sha256TextHash.name;

/** A fresh key-value replica (its first event must be Recover). */
export function kvInitialState(config: Config): KvReplicaState {
  return initialState(config, kvReplicated);
}

function configurationView(c: Configuration): ConfigurationView {
  return { epoch: c.epoch, governsFrom: c.governsFrom, voters: c.voters, learners: c.learners, retired: c.retired };
}

function membershipOf(state: KvReplicaState): MembershipView {
  const { config } = state.ctx;
  const configs = state.learner.configs;
  const latest = configs[configs.length - 1]!;
  const self = config.self;
  const role = state.role;
  const progress = new Map<ReplicaId, number>();
  if (role._tag === "leader")
    role.peers.forEach((peer, i) => {
      const executed = role.progress[i] ?? -1;
      if (peer !== self && executed >= 0) progress.set(peer, executed);
    });
  const transfer = state.learner.transfer;
  const addresses = new Map<ReplicaId, { peer: string; http: string | null }>();
  for (const c of configs)
    for (const a of c.addresses) addresses.set(a.replica, { peer: a.peer, http: a.http ?? null });
  return {
    initialMembers: config.members,
    alpha: config.reconfigAlphaSlots,
    inForce: configurationView(configs[0]!),
    pending: configs.slice(1).map(configurationView),
    self: latest.voters.includes(self) ? "voter" : latest.learners.includes(self) ? "learner" : "none",
    joining: config.joining,
    retired: state.removal?.retired ?? null,
    addresses,
    transfer:
      transfer === null
        ? null
        : {
            from: transfer.from,
            slot: transfer.slot,
            receivedBytes: transfer.received,
            totalBytes: transfer.totalBytes,
          },
    snapshotSlot: state.learner.snapshot?.slot ?? null,
    progress,
  };
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, "0");
}

function ballotText(state: KvReplicaState): string | null {
  const ballot = ownBallot(state.role);
  return ballot === null ? null : showBallot(ballot);
}

function factsOf(state: KvReplicaState): BatchFacts {
  const role = state.role;
  return {
    role: !state.started ? "starting" : state.halted !== null ? "halted" : role._tag,
    leader: role._tag === "leader" ? state.ctx.config.self : state.learner.leaderHint,
    ballot: ballotText(state),
    promisedBallot: state.acceptor.maxBal,
    leaseUntil: role._tag === "leader" ? role.leaseUntil : null,
    executedSlot: state.learner.executedUpTo,
    uncompared: state.monitor.uncompared,
    uncomparedCount: state.monitor.uncomparedCount,
    // What `membershipOf` reads but the leader's progress, the transfer and the snapshot slot,
    // which only the status shows (it builds the whole view).
    membershipOf: [state.ctx.config, state.learner.configs, state.removal],
  };
}

/** The feature level and the session table, from the replicated state (spec/service.ts). */
function sessionsViewOf(state: KvReplicaState): SessionsView {
  const service = state.learner.service;
  return {
    featureLevel: featureLevelOf(service),
    featureLevelMax,
    featureLevelTarget: state.ctx.config.featureLevel,
    featureLevelKnown: state.featuresKnown,
    count: service.sessions.size,
    evicted: service.features?.evicted ?? 0,
  };
}

function viewOf(state: KvReplicaState): CoreView {
  const role = state.role;
  const leader = role._tag === "leader" ? state.ctx.config.self : state.learner.leaderHint;
  return {
    role: !state.started ? "starting" : state.halted !== null ? "halted" : role._tag,
    leader,
    ballot: ballotText(state),
    promised: showBallot(state.acceptor.maxBal),
    promisedBallot: state.acceptor.maxBal,
    leaseUntil: role._tag === "leader" ? role.leaseUntil : null,
    executedSlot: state.learner.executedUpTo,
    digest: `${state.ctx.app.digest(state.learner.service.app)}|${state.learner.service.executed}|${hex8(state.monitor.outputDigestA)}${hex8(state.monitor.outputDigestB)}`,
    commitIndex: state.learner.commitIndex,
    pendingCommands: role._tag === "leader" ? role.pendingCount : 0,
    inflightSlots: role._tag === "leader" ? role.inflight.filter((p) => !p.chosen).length : 0,
    halted:
      state.halted === null
        ? null
        : state.halted.message.startsWith("diverged")
          ? `divergence at slot ${state.halted.slot}: ${state.halted.message}`
          : `stopped at slot ${state.halted.slot}: ${state.halted.message}`,
    uncompared: state.monitor.uncompared,
    uncomparedCount: state.monitor.uncomparedCount,
    membership: membershipOf(state),
    sessions: sessionsViewOf(state),
  };
}

/**
 * What may leave before earlier batches' records are durable (the driver's `overtaking`): the
 * lease's heartbeats and grants, which must keep flowing while a follower syncs a vote for a
 * large value, and Accepts (a proposal needs nothing durable but the proposer's promise of its
 * ballot: docs/impl.md; held, a leader's resends of an unacknowledged 1 MiB Accept would pile up
 * behind a slow commit and leave all at once). Each still waits for every record it depends on,
 * erring towards waiting:
 *
 * - a grant (HeartbeatAck) for ballot b needs the durable maxBal >= b (DurableBeforeSend,
 *   proofs/durability.ts). While the durable records hold a ballot >= b it needs nothing more;
 *   otherwise the raise it rests on is a pending promise or vote record, and it waits for every
 *   one of a round >= b's;
 * - a Heartbeat's or Accept's commit index says the slots up to it are chosen: it waits for every
 *   pending vote at or below it but the leader's own in its ballot (which count in no quorum
 *   until their `VoteDurable`, so no chosen slot rests on one), and, like a grant, for the
 *   promise of its ballot if that is not durable yet (a leader that restarted without it could
 *   propose again in the same ballot);
 * - neither waits for a `chosen` or `handOver` record (recovery aids nothing depends on) or a snapshot record:
 *   a snapshot stands for slots already chosen and executed, from records durable or pending on
 *   their own (a crash before it is durable recovers the same prefix from them, and re-executes
 *   it to the same state), and the maxBal it carries is the acceptor's current one, which no
 *   snapshot raises. Waiting for it, a grant or heartbeat waited for a whole snapshot's commit
 *   (and, before compaction moved behind its fsync, for a log interval read back), long enough
 *   to cost a leader its lease under steady small writes.
 *
 * The durable ballot is compared conservatively: a durable ballot of the same round counts
 * only when it is the same ballot.
 */
export class KvOvertaking {
  /** The highest ballot among the durable promise and vote records seen (by round, then exact match). */
  private durableMax: { round: number; replica: number } | null = null;

  overtakes(message: KvMessage): boolean {
    return message._tag === "Heartbeat" || message._tag === "HeartbeatAck" || message._tag === "Accept";
  }

  durable(record: KvRecord): void {
    if (record._tag !== "promise" && record._tag !== "vote") return;
    const b = record.ballot;
    const m = this.durableMax;
    if (m === null || b.round > m.round || (b.round === m.round && b.replica > m.replica)) this.durableMax = b;
  }

  dependsOn(message: KvMessage, record: KvRecord): boolean {
    if (record._tag === "chosen" || record._tag === "snapshot" || record._tag === "handOver") return false;
    if (message._tag !== "Heartbeat" && message._tag !== "HeartbeatAck" && message._tag !== "Accept") return true;
    const b = message.ballot;
    const m = this.durableMax;
    const promiseDurable = m !== null && (m.round > b.round || (m.round === b.round && m.replica === b.replica));
    switch (record._tag) {
      case "promise":
        return !promiseDurable && record.ballot.round >= b.round;
      case "vote": {
        // A commit index tells followers what is chosen; the leader's own votes in its ballot count in
        // no quorum until durable (their Persist has `notify`), so nothing it says waits for them.
        const own = record.ballot.round === b.round && record.ballot.replica === b.replica;
        if (message._tag !== "HeartbeatAck" && !own && record.slot <= message.commitIndex) return true;
        return !promiseDurable && record.ballot.round >= b.round;
      }
      default:
        return true;
    }
  }
}

/** Status and metrics view of the key-value replica. */
export const kvAdapter: CoreAdapter<KvReplicaState, KvMessage> = {
  view: viewOf,
  facts: factsOf,
  // A follower reports its executed slot in HeartbeatAck; a leader has executed every slot up to the commit index it
  // sends.
  peerExecutedSlot: (message) => {
    if (message._tag === "HeartbeatAck") return message.executedUpTo;
    if (message._tag === "Heartbeat" || message._tag === "Accept") return message.commitIndex;
    return undefined;
  },
  messageType: (message) => message._tag,
};

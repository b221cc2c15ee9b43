/**
 * The one place where the runtime knows the concrete replica core of impl/core running the
 * key-value application of spec/kv.ts: its step function, Schemas and initial state, and the
 * read-only view of its state for status and metrics. Everything else in impl/runtime is
 * generic over messages, records and state. Reads the core's state; never changes it.
 */
import {
  initialState,
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
  type Configuration,
} from "../core/index.ts";
import { kv, KvInput, KvOutput, type KvState } from "../../spec/kv.ts";
import type { StepFunction } from "./driver.ts";
import { binaryCodec } from "./binary-codec.ts";
import { jsonCodec } from "./framing.ts";
import type { TraceCodecs } from "./trace.ts";
import type { ConfigurationView, CoreAdapter, CoreView, MembershipView } from "./view.ts";

export type KvMessage = Message<KvInput>;
export type KvRecord = DurableRecord<KvInput>;
export type KvReplicaState = ReplicaState<KvState, KvInput, KvOutput>;

/** The message and record Schemas of the key-value replica. */
export const kvMessageSchema = messageSchema(KvInput);
export const kvRecordSchema = recordSchema(KvInput);
/** Peer messages on the wire (impl/runtime/transport.ts): the binary codec compiled from the message Schema. */
export const kvMessageBinary = binaryCodec(kvMessageSchema);

/** Codecs for the wire, the disk and the trace. */
export const kvCodecs: TraceCodecs<KvMessage, KvRecord, KvInput, KvOutput> = {
  message: jsonCodec(kvMessageSchema),
  record: jsonCodec(kvRecordSchema),
  input: jsonCodec(KvInput),
  output: jsonCodec(KvOutput),
};

/** The key-value replica's step function: impl/core's `step`, unchanged. */
export const kvStep: StepFunction<KvReplicaState, KvMessage, KvRecord, KvInput, KvOutput> = step;

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
  // The runtime batches adaptively unless the operator says otherwise (impl/core/config.ts).
  return parseConfig({ adaptiveBatching: true, ...overrides, self, members: [...members], joining });
}

/** A fresh key-value replica (its first event must be Recover). */
export function kvInitialState(config: Config): KvReplicaState {
  return initialState(config, kv);
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
            receivedBytes: transfer.data.length,
            totalBytes: transfer.totalBytes,
          },
    snapshotSlot: state.learner.snapshot?.slot ?? null,
    progress,
  };
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, "0");
}

function viewOf(state: KvReplicaState): CoreView {
  const role = state.role;
  const leader = role._tag === "leader" ? state.ctx.config.self : state.learner.leaderHint;
  const ballot = ownBallot(role);
  return {
    role: !state.started ? "starting" : state.halted !== null ? "halted" : role._tag,
    leader,
    ballot: ballot === null ? null : showBallot(ballot),
    promised: showBallot(state.acceptor.maxBal),
    promisedRound: state.acceptor.maxBal.round,
    leaseUntil: role._tag === "leader" ? role.leaseUntil : null,
    executedSlot: state.learner.executedUpTo,
    digest: `${kv.digest(state.learner.service.app)}|${state.learner.service.executed}|${hex8(state.monitor.outputDigestA)}${hex8(state.monitor.outputDigestB)}`,
    commitIndex: state.learner.commitIndex,
    pendingCommands: role._tag === "leader" ? role.pendingCount : 0,
    inflightSlots: role._tag === "leader" ? role.inflight.filter((p) => !p.chosen).length : 0,
    halted: state.halted === null ? null : `divergence at slot ${state.halted.slot}: ${state.halted.message}`,
    membership: membershipOf(state),
  };
}

/** Status and metrics view of the key-value replica. */
export const kvAdapter: CoreAdapter<KvReplicaState, KvMessage> = {
  view: viewOf,
  // A follower reports its executed slot in HeartbeatAck; a leader has executed every slot up to the commit index it sends.
  peerExecutedSlot: (message) => {
    if (message._tag === "HeartbeatAck") return message.executedUpTo;
    if (message._tag === "Heartbeat" || message._tag === "Accept") return message.commitIndex;
    return undefined;
  },
  messageType: (message) => message._tag,
};

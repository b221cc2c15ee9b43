/**
 * The divergence monitor, step 6 of the recipe ("monitor replicas for differences in state or
 * output"; Paxos Made Live, section 6.3, checksums of replica state). At every checkpoint slot a
 * replica records a digest of its service state and of every output it has produced; replicas
 * exchange their latest checkpoint in heartbeats and acknowledgements and compare digests of the
 * same slot. A mismatch raises an `Alarm` effect naming both replicas and the slot, and halts the
 * replica that saw it.
 *
 * It must never change what the replica executes or answers, except to stop it: with two digests it
 * cannot tell which side is wrong, so the only safe response is to stop serving and alert.
 */
import { digestFormat } from "../../spec/hash.ts";
import type { ServiceOutput, ServiceState } from "../../spec/service.ts";
import type { Config } from "./config.ts";
import type { ReplicaId } from "./events.ts";
import type { Checkpoint } from "./messages.ts";
import { checkpointsKept, copyMonitor, type MonitorState, type ReplicaContext } from "./state.ts";

/** A checkpoint is taken after executing every slot that is a multiple of `checkpointIntervalSlots`. */
export function checkpointDue(slot: number, config: Config): boolean {
  return slot % config.checkpointIntervalSlots === 0;
}

// Scratch lanes of the output hash below: reset at the start of every call, so the function is
// pure as seen from outside (JavaScript runs one call at a time).
let laneA = 0;
let laneB = 0;

function mixChar(c: number): void {
  laneA = Math.imul(laneA ^ c, 0x01000193);
  laneB = Math.imul(laneB ^ c, 0x5bd1e995) ^ (laneB >>> 15);
}

function hashString(s: string): void {
  mixChar(0x22);
  for (let i = 0; i < s.length; i++) mixChar(s.charCodeAt(i));
  mixChar(0x22);
}

function hashPlain(v: unknown): void {
  switch (typeof v) {
    case "string":
      return hashString(v);
    case "number":
      if (Number.isInteger(v) && Math.abs(v) < 0x7fff_ffff) {
        mixChar(0x23);
        mixChar(v & 0xffff);
        mixChar(v >>> 16);
        return;
      }
      return hashString(String(v));
    case "boolean":
      return mixChar(v ? 0x74 : 0x66);
    case "object":
      if (v === null) return mixChar(0x6e);
      if (Array.isArray(v)) {
        mixChar(0x5b);
        for (const x of v) hashPlain(x);
        return mixChar(0x5d);
      }
      mixChar(0x7b);
      for (const key of Object.keys(v)) {
        const x = (v as Record<string, unknown>)[key];
        if (x === undefined) continue;
        hashString(key);
        hashPlain(x);
      }
      return mixChar(0x7d);
    default:
      return mixChar(0x3f);
  }
}

/**
 * Fold one output (plain data: the application's outputs are plain data) into the running
 * two-lane output digest. The walk follows the output's own key order, which is deterministic
 * because every replica builds outputs with the same code.
 */
export function foldOutput(
  a: number,
  b: number,
  output: ServiceOutput<unknown>,
): { readonly a: number; readonly b: number } {
  laneA = a ^ 0x811c9dc5;
  laneB = b ^ 0x050c5d1f;
  hashPlain(output);
  return { a: laneA >>> 0, b: laneB >>> 0 };
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, "0");
}

/**
 * The digest recorded at a checkpoint: application state, requests executed (with, above feature
 * level 1, the level, the sessions kept and the sessions evicted: `countsOf`), and the output chain.
 */
export function checkpointDigest<S, I, O>(
  ctx: ReplicaContext<S, I, O>,
  service: ServiceState<S, O>,
  a: number,
  b: number,
): string {
  return `${ctx.app.digest(service.app)}|${countsOf(service)}|${hex8(a)}${hex8(b)}`;
}

/**
 * The counts a checkpoint digest holds: requests executed, and above feature level 1 also
 * `~level.sessions.evicted`, so that two replicas that evicted differently disagree at once (at level
 * 1 the digest is the one of earlier versions), and from level 3 on `.opened`, the sessions the
 * service opened, so that two that opened differently do too.
 */
export function countsOf<S, O>(service: ServiceState<S, O>): string {
  const f = service.features;
  if (f === undefined) return `${service.executed}`;
  const counts = `${service.executed}~${f.level}.${service.sessions.size}.${f.evicted}`;
  return f.opened === undefined ? counts : `${counts}.${f.opened}`;
}

/** Two replicas' digests differ at `slot`. */
export interface Divergence {
  readonly slot: number;
  readonly replicas: readonly ReplicaId[];
  readonly digests: readonly string[];
}

/**
 * Judge a peer's checkpoint against ours of the same slot. Equal digests agree; two digests of one
 * format that differ are a divergence. Digests of different formats (spec/hash.ts `digestFormat`:
 * a replica of a version before the format changed, or our checkpoint kept in a snapshot taken
 * before the upgrade) differ whether or not the states do, so they are not compared, and the
 * monitor says so (`uncompared`, per peer, until one of that peer's checkpoints is compared):
 * never a false alarm, never a silent skip.
 */
function judge(
  monitor: MonitorState,
  own: Checkpoint,
  peer: Checkpoint,
  self: ReplicaId,
  peerId: ReplicaId,
): { readonly monitor: MonitorState; readonly divergence: Divergence | null } {
  const ownFormat = digestFormat(own.digest);
  const peerFormat = digestFormat(peer.digest);
  if (ownFormat !== peerFormat) {
    // A peer repeats its latest checkpoint in every heartbeat or acknowledgement: counted once.
    if (monitor.uncompared.some((u) => u.replica === peerId && u.slot === own.slot))
      return { monitor, divergence: null };
    const next = copyMonitor(monitor);
    next.uncompared = [
      ...monitor.uncompared.filter((u) => u.replica !== peerId),
      { replica: peerId, slot: own.slot, ownFormat, peerFormat },
    ];
    next.uncomparedCount = monitor.uncomparedCount + 1;
    return { monitor: next, divergence: null };
  }
  let m = monitor;
  if (monitor.uncompared.some((u) => u.replica === peerId)) {
    const next = copyMonitor(monitor);
    next.uncompared = monitor.uncompared.filter((u) => u.replica !== peerId);
    m = next;
  }
  if (own.digest === peer.digest) return { monitor: m, divergence: null };
  return { monitor: m, divergence: { slot: own.slot, replicas: [self, peerId], digests: [own.digest, peer.digest] } };
}

/**
 * Record this replica's own checkpoint and compare it with peers' reports that waited for it.
 */
export function recordCheckpoint<S, I, O>(
  ctx: ReplicaContext<S, I, O>,
  monitor: MonitorState,
  own: Checkpoint,
): { readonly monitor: MonitorState; readonly divergence: Divergence | null } {
  const kept =
    monitor.checkpoints.length >= checkpointsKept ? monitor.checkpoints.slice(1) : monitor.checkpoints.slice();
  kept.push(own);
  let divergence: Divergence | null = null;
  let judged: MonitorState = monitor;
  let peers = monitor.peerCheckpoints;
  if (peers.some((p) => p.checkpoint.slot <= own.slot)) {
    for (const p of peers) {
      if (p.checkpoint.slot !== own.slot) continue;
      const r = judge(judged, own, p.checkpoint, ctx.config.self, p.replica);
      judged = r.monitor;
      divergence ??= r.divergence;
    }
    peers = peers.filter((p) => p.checkpoint.slot > own.slot);
  }
  const next = copyMonitor(judged);
  next.checkpoints = kept;
  next.peerCheckpoints = peers;
  // What is said of a peer's checkpoint older than every one kept is dropped: a follower hears only
  // the leader's checkpoints, and would otherwise go on naming a former leader that was upgraded.
  if (judged.uncompared.some((u) => u.slot < kept[0]!.slot))
    next.uncompared = judged.uncompared.filter((u) => u.slot >= kept[0]!.slot);
  return { monitor: next, divergence };
}

/**
 * Replica `peer` reported its latest checkpoint. Compare it with ours at the same slot if we have
 * one; remember it (the earliest one per peer) if we have not executed that far yet; ignore it if
 * it is older than the checkpoints we keep.
 */
export function comparePeerCheckpoint<S, I, O>(
  ctx: ReplicaContext<S, I, O>,
  monitor: MonitorState,
  executedUpTo: number,
  peer: ReplicaId,
  report: Checkpoint,
): { readonly monitor: MonitorState; readonly divergence: Divergence | null } {
  if (report.slot > executedUpTo) {
    const current = monitor.peerCheckpoints.find((p) => p.replica === peer);
    if (current !== undefined && current.checkpoint.slot <= report.slot) return { monitor, divergence: null };
    const peers = monitor.peerCheckpoints.filter((p) => p.replica !== peer);
    peers.push({ replica: peer, checkpoint: report });
    const next = copyMonitor(monitor);
    next.peerCheckpoints = peers;
    return { monitor: next, divergence: null };
  }
  for (const own of monitor.checkpoints) {
    if (own.slot === report.slot) return judge(monitor, own, report, ctx.config.self, peer);
  }
  return { monitor, divergence: null };
}

/** This replica's latest checkpoint, or null before the first. */
export function latestCheckpoint(monitor: MonitorState): Checkpoint | null {
  return monitor.checkpoints[monitor.checkpoints.length - 1] ?? null;
}

/** The alarm text for a divergence. */
export function divergenceMessage(d: Divergence): string {
  return `replicas ${d.replicas.join(" and ")} diverged at slot ${d.slot}: digests ${d.digests.join(" vs ")}`;
}

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
import type { ServiceOutput, ServiceState } from "../../spec/service.ts";
import type { Config } from "./config.ts";
import type { ReplicaId } from "./events.ts";
import type { Checkpoint } from "./messages.ts";
import { checkpointsKept, type MonitorState, type ReplicaContext } from "./state.ts";

/** A checkpoint is taken after executing every slot that is a multiple of `checkpointIntervalSlots`. */
export function checkpointDue(slot: number, config: Config): boolean {
  return slot % config.checkpointIntervalSlots === 0;
}

function fnvStep(h: number, s: string): number {
  let x = h;
  for (let i = 0; i < s.length; i++) {
    x ^= s.charCodeAt(i);
    x = Math.imul(x, 0x01000193);
  }
  return x >>> 0;
}

/** Fold one output into lane A of the running output digest (an FNV-1a chain). */
export function foldOutputA(digest: number, output: ServiceOutput<unknown>): number {
  return fnvStep(digest ^ 0x811c9dc5, JSON.stringify(output));
}

/** Fold one output into lane B (a different basis, so that both lanes rarely collide together). */
export function foldOutputB(digest: number, output: ServiceOutput<unknown>): number {
  return fnvStep(Math.imul(digest, 31) ^ 0x050c5d1f, JSON.stringify(output));
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, "0");
}

/** The digest recorded at a checkpoint: application state, requests executed, and the output chain. */
export function checkpointDigest<S, I, O>(ctx: ReplicaContext<S, I, O>, service: ServiceState<S, O>, a: number, b: number): string {
  return `${ctx.app.digest(service.app)}|${service.executed}|${hex8(a)}${hex8(b)}`;
}

/** Two replicas' digests differ at `slot`. */
export interface Divergence {
  readonly slot: number;
  readonly replicas: readonly ReplicaId[];
  readonly digests: readonly string[];
}

function compare(own: Checkpoint, peer: Checkpoint, self: ReplicaId, peerId: ReplicaId): Divergence | null {
  if (own.slot !== peer.slot || own.digest === peer.digest) return null;
  return { slot: own.slot, replicas: [self, peerId], digests: [own.digest, peer.digest] };
}

/**
 * Record this replica's own checkpoint and compare it with peers' reports that waited for it.
 */
export function recordCheckpoint<S, I, O>(
  ctx: ReplicaContext<S, I, O>,
  monitor: MonitorState,
  own: Checkpoint,
): { readonly monitor: MonitorState; readonly divergence: Divergence | null } {
  const kept = monitor.checkpoints.length >= checkpointsKept ? monitor.checkpoints.slice(1) : monitor.checkpoints.slice();
  kept.push(own);
  let divergence: Divergence | null = null;
  let peers = monitor.peerCheckpoints;
  for (let i = 0; i < peers.length; i++) {
    const report = peers[i];
    if (report === null || report === undefined || report.slot > own.slot) continue;
    divergence ??= compare(own, report, ctx.config.self, ctx.members[i]!);
    if (peers === monitor.peerCheckpoints) peers = peers.slice();
    (peers as (Checkpoint | null)[])[i] = null;
  }
  return { monitor: { ...monitor, checkpoints: kept, peerCheckpoints: peers }, divergence };
}

/**
 * A peer (member index `peerIndex`) reported its latest checkpoint. Compare it with ours at the same
 * slot if we have one; remember it if we have not executed that far yet; ignore it if it is older
 * than the checkpoints we keep.
 */
export function comparePeerCheckpoint<S, I, O>(
  ctx: ReplicaContext<S, I, O>,
  monitor: MonitorState,
  executedUpTo: number,
  peerIndex: number,
  report: Checkpoint,
): { readonly monitor: MonitorState; readonly divergence: Divergence | null } {
  if (report.slot > executedUpTo) {
    const current = monitor.peerCheckpoints[peerIndex];
    if (current !== null && current !== undefined && current.slot <= report.slot) return { monitor, divergence: null };
    const peers = monitor.peerCheckpoints.slice();
    peers[peerIndex] = report;
    return { monitor: { ...monitor, peerCheckpoints: peers }, divergence: null };
  }
  for (const own of monitor.checkpoints) {
    if (own.slot === report.slot) return { monitor, divergence: compare(own, report, ctx.config.self, ctx.members[peerIndex]!) };
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

/**
 * State transfer: how a replica that lags behind a peer's log truncation catches up. It fetches
 * the peer's durable snapshot in chunks of at most `transferChunkBytesMax` bytes, each asked for by
 * (snapshot slot, byte offset), so that a lost chunk is asked for again and a transfer resumes
 * where it stopped; then it fetches the log above the snapshot by ordinary catch-up.
 *
 * The receiver never holds the snapshot's bytes whole: each chunk, taken only in order, goes into
 * the running content digest and the streaming decoding of its JSON (snapshot-decoder.ts) and is
 * dropped, so a transfer costs the receiver about the state it decodes and one chunk. Once the
 * last byte is in, rule S2 judges the whole as before: the digest of every byte, the slot inside,
 * the divergence digest of the decoded state. A transfer whose JSON goes wrong part way is dropped
 * at that chunk. Either way the step says so (a `TransferRefused` effect: the sender, the
 * snapshot, the check and the byte), so that the driver can tell the operator why.
 *
 * It must never install a partial transfer, one whose digests do not match what it received,
 * or a stale one (not above the replica's executed prefix); it never lets a leader install
 * anything (a leader proposes every slot above its executed prefix itself); and it holds at most
 * one transfer, of one snapshot, at a time.
 */
import { truncateVotes } from "./acceptor.ts";
import { pruneConfigurations } from "./configuration.ts";
import type { KeptChunks, KeptTransfer, ReplicaId, TransferCheck, TransferRefusal } from "./events.ts";
import type { SnapshotChunkMsg, SnapshotRequestMsg } from "./messages.ts";
import type { ReplicaEffect } from "./replica.ts";
import type { ReplicaRules } from "./rules.ts";
import { slotMapDropThrough } from "./slot-map.ts";
import { decodedValue, decodeMore, decodingStart } from "./snapshot-decoder.ts";
import {
  ContentDigest,
  contentDigestStart,
  makeSnapshot,
  snapshotRecord,
  snapshotSize,
  snapshotSlice,
  type SnapshotContents,
  type SnapshotInfo,
} from "./snapshot.ts";
import {
  copyLearner,
  copyMonitor,
  copyReplica,
  noOrigins,
  withLearner,
  type ReplicaState,
  type Transfer,
} from "./state.ts";

/**
 * Send `to` the chunk of `snapshot` that starts at byte `offset`: read from the snapshot's durable
 * record by the driver with `valuesAtRest` (a `SendStored`), else from the snapshot in memory.
 */
export function sendChunk<S, I, O>(
  state: ReplicaState<S, I, O>,
  snapshot: SnapshotInfo | null,
  to: ReplicaId,
  offset: number,
  out: ReplicaEffect<I, O>[],
): void {
  if (snapshot === null) return;
  // The snapshot's size and the chunk, read without joining the whole snapshot into one string.
  const totalBytes = snapshotSize(snapshot);
  if (offset >= totalBytes) return;
  const length = Math.min(state.ctx.config.transferChunkBytesMax, totalBytes - offset);
  // Values at rest: the chunk's bytes are read from the durable snapshot record (impl/core/at-rest.ts).
  if (state.ctx.config.valuesAtRest) {
    const { slot, digest, contentDigest } = snapshot;
    const stored = { _tag: "StoredChunk", slot, digest, contentDigest, totalBytes, offset, length } as const;
    out.push({ _tag: "SendStored", to, message: stored });
    return;
  }
  const message: SnapshotChunkMsg = {
    _tag: "SnapshotChunk",
    slot: snapshot.slot,
    digest: snapshot.digest,
    contentDigest: snapshot.contentDigest,
    totalBytes,
    offset,
    data: snapshotSlice(snapshot, offset, state.ctx.config.transferChunkBytesMax),
  };
  out.push({ _tag: "Send", to, message });
}

/**
 * How long a snapshot that a peer's transfer fetches is still served after its last request,
 * once newer snapshots replaced it (`LearnerState.servedSnapshot`), in milliseconds: long enough
 * for the receiver to restart and resume (impl/runtime: a kill, a start, its kept chunks taken
 * again). *Hazard:* the replica holds that snapshot meanwhile: its record on disk with
 * `valuesAtRest` (`pinnedSnapshots`), else its state in memory (shared with its current state but
 * for what changed since); after it, a transfer that comes back starts over.
 */
export const servedSnapshotKeepMs = 60_000;

/** The snapshot a transfer fetches, unless it was last asked for more than `servedSnapshotKeepMs` ago. */
function servedOf<S, I, O>(state: ReplicaState<S, I, O>, now: number): SnapshotInfo | null {
  const { servedSnapshot, servedAt } = state.learner;
  return servedSnapshot !== null && now < servedAt + servedSnapshotKeepMs ? servedSnapshot : null;
}

/**
 * Serve a chunk of the snapshot asked for: the latest one, the one before it (a transfer that
 * started before the latest was taken goes on), or one a transfer is fetching (`servedSnapshot`,
 * kept while asked for, however many snapshots were taken since). A request for a snapshot this
 * replica no longer holds, or for none in particular (slot 0), is answered with the first chunk
 * of the latest one: the requester starts over with that. A request past a snapshot's first byte
 * is a transfer in progress: that snapshot becomes (or stays) the one served.
 */
export function answerSnapshotRequest<S, I, O>(
  state: ReplicaState<S, I, O>,
  from: ReplicaId,
  m: SnapshotRequestMsg,
  now: number,
  out: ReplicaEffect<I, O>[],
): ReplicaState<S, I, O> {
  const { snapshot, priorSnapshot, servedAt } = state.learner;
  const served = servedOf(state, now);
  const asked = [snapshot, priorSnapshot, served].find((s) => s !== null && s.slot === m.slot) ?? null;
  if (asked === null) {
    sendChunk(state, snapshot, from, 0, out);
    return served === state.learner.servedSnapshot ? state : withServed(state, null, Number.NEGATIVE_INFINITY);
  }
  sendChunk(state, asked, from, m.offset, out);
  // Noted again at most once per heartbeat interval: the requests of one transfer come many a second.
  if (m.offset === 0 || (asked === served && now < servedAt + state.ctx.config.heartbeatIntervalMs)) return state;
  return withServed(state, asked, now);
}

/**
 * The slots of the snapshots whose records a driver must keep besides the latest two
 * (`compactRecords`' `pinned`): the one a transfer fetches (`servedSnapshot`), whose chunks, with
 * values at rest, are read from its record. A driver compacting its records passes these as of
 * the step that persisted the snapshot that makes the compaction due, or any later one.
 */
export function pinnedSnapshots<S, I, O>(state: ReplicaState<S, I, O>): readonly number[] {
  const served = state.learner.servedSnapshot;
  return served === null ? noSlots : [served.slot];
}

const noSlots: readonly number[] = [];

/** On a tick: forget the snapshot a transfer fetched, not asked for in `servedSnapshotKeepMs` (its state is freed). */
export function expireServed<S, I, O>(state: ReplicaState<S, I, O>, now: number): ReplicaState<S, I, O> {
  const { servedSnapshot } = state.learner;
  if (servedSnapshot === null || servedOf(state, now) !== null) return state;
  return withServed(state, null, Number.NEGATIVE_INFINITY);
}

function withServed<S, I, O>(
  state: ReplicaState<S, I, O>,
  served: SnapshotInfo | null,
  at: number,
): ReplicaState<S, I, O> {
  const l = copyLearner(state.learner);
  l.servedSnapshot = served;
  l.servedAt = at;
  return withLearner(state, l);
}

/**
 * Rule S1: a transfer of the snapshot of `slot` is useful only above the executed prefix. A stale
 * one (from a peer that lags behind this replica) would take the replica back in time: its state
 * would no longer be that of its executed prefix, and slots it already answered clients for would
 * be executed again.
 */
export function transferUseful(slot: number, executedUpTo: number): boolean {
  return slot > executedUpTo;
}

/** Ask `to` for its snapshot from the start (at most once per heartbeat interval, never during a transfer). */
export function requestSnapshot<S, I, O>(
  state: ReplicaState<S, I, O>,
  to: ReplicaId,
  now: number,
  out: ReplicaEffect<I, O>[],
): ReplicaState<S, I, O> {
  const { learner, ctx } = state;
  if (
    learner.transfer !== null ||
    to === ctx.config.self ||
    now < learner.catchUpSentAt + ctx.config.heartbeatIntervalMs
  )
    return state;
  out.push({ _tag: "Send", to, message: { _tag: "SnapshotRequest", slot: 0, offset: 0 } });
  const l = copyLearner(learner);
  l.catchUpSentAt = now;
  return withLearner(state, l);
}

function withTransfer<S, I, O>(state: ReplicaState<S, I, O>, transfer: Transfer | null): ReplicaState<S, I, O> {
  const l = copyLearner(state.learner);
  l.transfer = transfer;
  return withLearner(state, l);
}

function askNext<I, O>(t: Transfer, now: number, out: ReplicaEffect<I, O>[]): Transfer {
  out.push({ _tag: "Send", to: t.from, message: { _tag: "SnapshotRequest", slot: t.slot, offset: t.received } });
  return {
    from: t.from,
    slot: t.slot,
    digest: t.digest,
    contentDigest: t.contentDigest,
    totalBytes: t.totalBytes,
    received: t.received,
    digestLanes: t.digestLanes,
    decoding: t.decoding,
    requestedAt: now,
    progressAt: t.progressAt,
  };
}

/** The transfer a chunk belongs to: the one in progress, a new one it starts, or null (ignore the chunk). */
function transferFor(current: Transfer | null, from: ReplicaId, m: SnapshotChunkMsg, now: number): Transfer | null {
  const same =
    current !== null &&
    current.slot === m.slot &&
    current.contentDigest === m.contentDigest &&
    current.digest === m.digest &&
    current.totalBytes === m.totalBytes;
  if (same) return current;
  // Only a first chunk starts a transfer, and only of a snapshot at least as new as the one in progress.
  if (m.offset !== 0 || (current !== null && current.slot > m.slot)) return null;
  return {
    from,
    slot: m.slot,
    digest: m.digest,
    contentDigest: m.contentDigest,
    totalBytes: m.totalBytes,
    received: 0,
    digestLanes: contentDigestStart,
    decoding: decodingStart,
    requestedAt: now,
    progressAt: now,
  };
}

/**
 * A chunk arrived. Take it if it is the next one of the transfer in progress (or the first of a
 * newer snapshot): digest and decode it, ask for the next, and once every byte is here verify and
 * install. Anything else (a duplicate, a chunk out of order, a stale snapshot, a chunk at a
 * leader) is ignored; a chunk whose JSON does not decode drops the transfer (catch-up starts over).
 */
export function receiveChunk<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  from: ReplicaId,
  m: SnapshotChunkMsg,
  now: number,
  out: ReplicaEffect<I, O>[],
): ReplicaState<S, I, O> {
  if (state.role._tag === "leader" || !rules.transferUseful(m.slot, state.learner.executedUpTo)) return state;
  if (m.data.length === 0 || m.offset + m.data.length > m.totalBytes) return state;
  const t = transferFor(state.learner.transfer, from, m, now);
  if (t === null || m.offset !== t.received) return state;
  const digest = ContentDigest.resume(t.digestLanes);
  digest.update(m.data);
  const decoding = decodeMore(t.decoding, m.data);
  // Malformed part way: no later chunk can mend it, and the digests would refuse it at the end.
  if (decoding.error !== null) return refuse(state, t, "json", decoding.offset, decoding.error, out);
  const grown: Transfer = {
    from,
    slot: t.slot,
    digest: t.digest,
    contentDigest: t.contentDigest,
    totalBytes: t.totalBytes,
    received: t.received + m.data.length,
    digestLanes: digest.lanes,
    decoding,
    requestedAt: now,
    progressAt: now,
  };
  if (grown.received < t.totalBytes) return withTransfer(state, askNext(grown, now, out));
  const claim = { slot: t.slot, digest: t.digest, contentDigest: t.contentDigest };
  const contents = rules.verifySnapshot(state.ctx, { contentDigest: digest.hex, json: decodedValue(decoding) }, claim);
  // A complete transfer that does not check out is dropped; catch-up starts over (perhaps elsewhere).
  if (typeof contents === "string") {
    const check = digest.hex === t.contentDigest ? "state" : "contentDigest";
    return refuse(state, t, check, t.totalBytes, contents, out);
  }
  // Kept as its state's serialization: written in slices, and served again from the state.
  return installSnapshot(state, makeSnapshot(state.ctx, contents), contents, out);
}

/**
 * After a restart, resume the transfer a driver kept (`Recover`'s `kept`): a transfer of that
 * snapshot from `kept.from`, at byte 0, that takes back the chunks the driver kept (`takeKept`)
 * before it asks its source for anything. Only when the snapshot is still useful (rule S1) and no
 * transfer is in progress. Nothing of it is trusted: its bytes come in `KeptChunks` events and
 * go through `receiveChunk` as if they had just come.
 */
export function resumeKept<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  kept: KeptTransfer,
): ReplicaState<S, I, O> {
  if (state.learner.transfer !== null || state.role._tag === "leader") return state;
  if (!rules.transferUseful(kept.slot, state.learner.executedUpTo)) return state;
  const { from, slot, digest, contentDigest, totalBytes } = kept;
  return withTransfer(state, {
    from,
    slot,
    digest,
    contentDigest,
    totalBytes,
    received: 0,
    digestLanes: contentDigestStart,
    decoding: decodingStart,
    requestedAt: Number.NEGATIVE_INFINITY,
    // Counted from the first piece or tick after the Recover, not from the Recover (which may take long).
    progressAt: Number.NEGATIVE_INFINITY,
    resuming: true,
  });
}

/** Whether the core takes back kept chunks (`KeptChunks`): a driver feeds the next piece only while it does. */
export function resumingKept<S, I, O>(state: ReplicaState<S, I, O>): boolean {
  return state.learner.transfer?.resuming === true;
}

/**
 * A piece of the kept transfer (`KeptChunks`): take each of its chunks again, in order, exactly
 * as if it had just come from the transfer's source: each goes through `receiveChunk`, so the
 * digest lanes and the decoding are rebuilt as they were, a chunk whose JSON goes wrong is refused
 * (`TransferRefused`) and drops the transfer, and the install still waits for every byte and for
 * rule S2 over all of them: bytes kept of one snapshot and bytes fetched of another are never
 * installed together (their content digest is not the one claimed). Only the piece that goes on
 * where the transfer stands is taken; any other is ignored. It never installs: it stops before
 * the chunk that would complete the snapshot, which is fetched again, so that the install happens
 * in an ordinary step. The requests the chunks would have sent are not sent. The resumption ends
 * with the `last` piece, or at the first chunk not taken; the transfer then asks its source for
 * the rest at the next tick (`tickTransfer`), by (slot, byte offset), or is dropped if it took
 * nothing.
 */
export function takeKept<S, I, O>(
  rules: ReplicaRules,
  state: ReplicaState<S, I, O>,
  piece: KeptChunks,
  out: ReplicaEffect<I, O>[],
): ReplicaState<S, I, O> {
  const t = state.learner.transfer;
  if (t === null || t.resuming !== true || piece.offset !== t.received) return state;
  let s = state;
  for (const data of piece.chunks) {
    const at = s.learner.transfer!;
    if (at.received + data.length >= at.totalBytes) return resumed(s);
    const { from, slot, digest, contentDigest, totalBytes, received } = at;
    const m: SnapshotChunkMsg = {
      _tag: "SnapshotChunk",
      slot,
      digest,
      contentDigest,
      totalBytes,
      offset: received,
      data,
    };
    const sent: ReplicaEffect<I, O>[] = [];
    const next = receiveChunk(rules, s, from, m, piece.now, sent);
    const refused = sent.find((e): e is TransferRefusal => e._tag === "TransferRefused");
    if (refused !== undefined) {
      out.push(refused);
      return next;
    }
    // Not taken (a leader, a chunk that does not fit): what was taken before stays, the rest is fetched.
    if (next.learner.transfer?.received !== received + data.length) return resumed(s);
    s = next;
  }
  if (piece.last) return resumed(s);
  return withTransfer(s, { ...s.learner.transfer!, requestedAt: Number.NEGATIVE_INFINITY, resuming: true });
}

/** The resumption of a kept transfer ends: it asks for the rest at the next tick, or goes if it took nothing. */
function resumed<S, I, O>(state: ReplicaState<S, I, O>): ReplicaState<S, I, O> {
  const t = state.learner.transfer;
  if (t === null) return state;
  if (t.received === 0) return withTransfer(state, null);
  const { resuming: _, ...rest } = t;
  // Asked for at the next tick: nothing was sent for the bytes taken again.
  return withTransfer(state, { ...rest, requestedAt: Number.NEGATIVE_INFINITY });
}

/** Drop transfer `t`, saying why (the driver logs and counts it); catch-up starts over. */
function refuse<S, I, O>(
  state: ReplicaState<S, I, O>,
  t: Transfer,
  check: TransferCheck,
  offset: number,
  reason: string,
  out: ReplicaEffect<I, O>[],
): ReplicaState<S, I, O> {
  const { from, slot, digest, contentDigest } = t;
  out.push({ _tag: "TransferRefused", from, slot, digest, contentDigest, check, offset, reason });
  return withTransfer(state, null);
}

/**
 * Install a verified snapshot above the executed prefix: persist it as this replica's own snapshot,
 * take its state, configurations and checkpoints, and truncate the log and the votes through its
 * slot (the slots are chosen, and now executed into a durable snapshot). The caller then executes
 * whatever the log holds above it.
 */
export function installSnapshot<S, I, O>(
  state: ReplicaState<S, I, O>,
  info: SnapshotInfo,
  contents: SnapshotContents<S, O>,
  out: ReplicaEffect<I, O>[],
): ReplicaState<S, I, O> {
  const slot = info.slot;
  // Its bytes as `info` holds them: serialized in slices as they are written, when it can be.
  out.push({ _tag: "Persist", record: snapshotRecord(info, state.acceptor.maxBal, slot) });
  const l = copyLearner(state.learner);
  l.service = contents.service;
  l.origins = noOrigins; // a peer's values, named by no vote of this replica
  l.executedUpTo = slot;
  l.bytesSinceSnapshot = 0;
  l.commandsSinceSnapshot = 0;
  l.commitIndex = Math.max(state.learner.commitIndex, slot);
  l.configs = pruneConfigurations(contents.configs, slot + 1);
  l.priorSnapshot = state.learner.snapshot;
  l.snapshot = info;
  l.logTruncatedUpTo = slot;
  l.log = slotMapDropThrough(state.learner.log, slot);
  l.transfer = null;
  l.catchUpSentAt = Number.NEGATIVE_INFINITY;
  const m = copyMonitor(state.monitor);
  m.outputDigestA = contents.outputDigestA;
  m.outputDigestB = contents.outputDigestB;
  m.checkpoints = contents.checkpoints;
  m.peerCheckpoints = state.monitor.peerCheckpoints.filter((p) => p.checkpoint.slot > slot);
  const s = copyReplica(state);
  s.learner = l;
  s.monitor = m;
  s.acceptor = truncateVotes(state.acceptor, slot);
  return s;
}

/**
 * On a tick: ask again for the chunk a transfer waits for, once per heartbeat interval (a lost
 * request or chunk costs one interval); give the transfer up when its source has been silent for
 * an election timeout (catch-up then starts over, from the leader of the moment).
 */
export function tickTransfer<S, I, O>(
  state: ReplicaState<S, I, O>,
  now: number,
  out: ReplicaEffect<I, O>[],
): ReplicaState<S, I, O> {
  const t = state.learner.transfer;
  if (t === null) return state;
  const config = state.ctx.config;
  // Taking back kept chunks: nothing is asked yet; a driver that stops handing them over for an
  // election timeout (from the first tick after the Recover, or the last piece taken) leaves a
  // transfer that is given up. The Recover itself may take long: its clock reading counts for nothing.
  if (t.resuming === true) {
    if (t.progressAt === Number.NEGATIVE_INFINITY) return withTransfer(state, { ...t, progressAt: now });
    return now >= t.progressAt + config.electionTimeoutMsMax ? withTransfer(state, null) : state;
  }
  // Resumed (`takeKept`) and never asked yet: its source's silence counts from this first request,
  // not from the steps that took the kept chunks again.
  if (t.requestedAt === Number.NEGATIVE_INFINITY)
    return withTransfer(state, { ...askNext(t, now, out), progressAt: now });
  if (now >= t.progressAt + config.electionTimeoutMsMax) return withTransfer(state, null);
  if (now < t.requestedAt + config.heartbeatIntervalMs) return state;
  return withTransfer(state, askNext(t, now, out));
}

/**
 * One write's path, stage by stage, from the marks of impl/runtime/timeline.ts: for each write of a
 * lone client, the time from its request to each stage on the leader and on the follower whose
 * Accepted the leader took first (the one that made the quorum), and the segments between them.
 */
import type { TimelineMark, TimelineStage } from "../../impl/runtime/timeline.ts";

/** The marks of one thread of one replica. */
export interface ThreadMarks {
  readonly replica: number;
  /** The replica's main thread (else its storage thread). */
  readonly main: boolean;
  readonly marks: readonly TimelineMark[];
}

/** A write as the client saw it: sent and answered, in microseconds of the monotonic clock. */
export interface ClientWrite {
  readonly sentUs: number;
  readonly doneUs: number;
}

/** The segments of a write's path, in order; each ends at the stage its name ends with. */
export const segmentNames = [
  "client -> leader: request handed to the driver",
  "leader: driver -> step of the request",
  "leader: step -> Accepts handed to the sockets",
  "sockets, network -> follower: Accept decoded",
  "follower: decoded -> step of the Accept",
  "follower: step -> vote handed to the storage thread",
  "follower: hand-over -> storage thread takes it",
  "follower storage: SQLite write",
  "follower storage: fsync",
  "follower: fsync -> main thread learns it is durable",
  "follower: durable -> Accepted handed to the socket",
  "sockets, network -> leader: Accepted decoded",
  "leader: decoded -> step of the Accepted",
  "leader: step -> reply (its own vote durable)",
  "leader -> client: response read",
] as const;

/** One write's path: each segment's duration (microseconds), and facts about the leader's own vote. */
export interface WritePath {
  readonly totalUs: number;
  readonly segmentsUs: readonly number[];
  /** From the leader's Accepts on the wire to its own vote durable. */
  readonly leaderVoteUs: number;
  /** The leader's own vote: hand-over, SQLite write, fsync, back to the main thread (as the follower's). */
  readonly leaderVoteSegmentsUs: readonly number[];
  /** Whether the reply waited for the leader's own vote (durable after the Accepted was stepped). */
  readonly waitedForOwnVote: boolean;
  /** The socket writes of the leader's Accepts (both followers), and of the follower's Accepted. */
  readonly socketWritesUs: readonly [number, number];
  /** Microseconds of garbage collection on any replica's main thread that overlapped the write. */
  readonly gcUs: number;
}

class Marks {
  private readonly marks: readonly TimelineMark[];
  constructor(marks: readonly TimelineMark[]) {
    this.marks = [...marks].sort((a, b) => a.timeUs - b.timeUs);
  }
  /** The first mark of `stage` (with `key`, when given) at or after `fromUs`. */
  first(stage: TimelineStage, fromUs: number, key?: number): number | undefined {
    let lo = 0;
    let hi = this.marks.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.marks[mid]!.timeUs < fromUs) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.marks.length; i++) {
      const m = this.marks[i]!;
      if (m.stage === stage && (key === undefined || m.key === key)) return m.timeUs;
    }
    return undefined;
  }
  /** The marks of `stage` between `fromUs` and `toUs`. */
  between(stage: TimelineStage, fromUs: number, toUs: number): TimelineMark[] {
    return this.marks.filter((m) => m.stage === stage && m.timeUs >= fromUs && m.timeUs <= toUs);
  }
}

/** The path of every write whose stages were all marked; writes with a stage missing are counted apart. */
export function writePaths(
  leader: number,
  threads: readonly ThreadMarks[],
  writes: readonly ClientWrite[],
): { readonly paths: WritePath[]; readonly incomplete: number } {
  const of = (replica: number, main: boolean): Marks =>
    new Marks(threads.filter((t) => t.replica === replica && t.main === main).flatMap((t) => t.marks));
  const leaderMain = of(leader, true);
  const leaderStorage = of(leader, false);
  const followers = [...new Set(threads.map((t) => t.replica))]
    .filter((r) => r !== leader)
    .map((r) => ({ main: of(r, true), storage: of(r, false) }));
  const gcs = threads.filter((t) => t.main).flatMap((t) => t.marks.filter((m) => m.stage === "gc"));
  const paths: WritePath[] = [];
  let incomplete = 0;
  for (const write of writes) {
    const path = pathOf(write);
    if (path === null) incomplete += 1;
    else paths.push(path);
  }
  return { paths, incomplete };

  function pathOf(write: ClientWrite): WritePath | null {
    const submit = leaderMain.first("submit", write.sentUs);
    if (submit === undefined || submit > write.doneUs) return null;
    const stepRequest = leaderMain.first("step-request", submit);
    if (stepRequest === undefined) return null;
    const accepts = leaderMain.between("send-accept", stepRequest, write.doneUs);
    if (accepts.length === 0) return null;
    const slot = accepts[0]!.key;
    const leaderFlush = leaderMain.first("flush", accepts[0]!.timeUs);
    const leaderFlushed = leaderFlush === undefined ? undefined : leaderMain.first("flushed", leaderFlush);
    const leaderDurable = leaderMain.first("durable", stepRequest, slot);
    const recvAccepted = leaderMain.first("recv-accepted", stepRequest, slot);
    const reply = leaderMain.first("reply", stepRequest);
    if (
      leaderFlush === undefined ||
      leaderFlushed === undefined ||
      leaderDurable === undefined ||
      recvAccepted === undefined ||
      reply === undefined
    )
      return null;
    const stepAccepted = leaderMain.first("step-accepted", recvAccepted, slot);
    if (stepAccepted === undefined) return null;
    const leaderPost = leaderMain.first("post", stepRequest, slot);
    const leaderTake = leaderStorage.first("storage-take", stepRequest, slot);
    const leaderWritten = leaderStorage.first("storage-written", stepRequest, slot);
    const leaderSynced = leaderStorage.first("storage-synced", stepRequest, slot);
    if (
      leaderPost === undefined ||
      leaderTake === undefined ||
      leaderWritten === undefined ||
      leaderSynced === undefined
    )
      return null;
    // The follower whose Accepted was on the wire first made the quorum.
    let best: number[] | null = null;
    for (const f of followers) {
      const recv = f.main.first("recv-accept", leaderFlush - 1, slot);
      if (recv === undefined) continue;
      const step = f.main.first("step-accept", recv, slot);
      const post = f.main.first("post", recv, slot);
      const take = f.storage.first("storage-take", recv, slot);
      const written = f.storage.first("storage-written", recv, slot);
      const synced = f.storage.first("storage-synced", recv, slot);
      const durable = f.main.first("durable", recv, slot);
      const sent = f.main.first("send-accepted", recv, slot);
      const flush = sent === undefined ? undefined : f.main.first("flush", sent);
      const flushed = flush === undefined ? undefined : f.main.first("flushed", flush);
      const stages = [recv, step, post, take, written, synced, durable, flush];
      if (stages.some((t) => t === undefined) || flushed === undefined) continue;
      if (best === null || flush! < best[7]!) best = [...(stages as number[]), flushed - flush!];
    }
    if (best === null) return null;
    const chain = [
      write.sentUs,
      submit,
      stepRequest,
      leaderFlush,
      ...best.slice(0, 8),
      recvAccepted,
      stepAccepted,
      reply,
    ];
    chain.push(write.doneUs);
    const segmentsUs = chain.slice(1).map((t, i) => t - chain[i]!);
    let gcUs = 0;
    for (const gc of gcs) {
      const end = gc.timeUs + gc.key;
      gcUs += Math.max(0, Math.min(end, write.doneUs) - Math.max(gc.timeUs, write.sentUs));
    }
    return {
      totalUs: write.doneUs - write.sentUs,
      segmentsUs,
      leaderVoteUs: leaderDurable - leaderFlush,
      leaderVoteSegmentsUs: [
        leaderTake - leaderPost,
        leaderWritten - leaderTake,
        leaderSynced - leaderWritten,
        leaderDurable - leaderSynced,
      ],
      waitedForOwnVote: leaderDurable > stepAccepted,
      socketWritesUs: [leaderFlushed - leaderFlush, best[8]!],
      gcUs,
    };
  }
}

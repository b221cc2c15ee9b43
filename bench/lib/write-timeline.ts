/**
 * One write's path, stage by stage, from the marks of impl/runtime/timeline.ts: for each write of a
 * lone client, the time from its request to each stage on the leader and on the follower whose
 * Accepted the leader took first (the one that made the quorum), and the segments between them.
 *
 * The leader's own vote is found by its slot, not by the order of the marks. Its step puts the
 * Accepts before the vote's Persist (impl/core/leader.ts, `proposeSlot`) and the driver sends what
 * precedes a batch's first Persist before committing it, so the Accepts usually leave first. But
 * an Accept that needs a record of an earlier commit waits for it (impl/runtime/driver.ts,
 * "Overtaking"), and the Accepts of a second slot proposed in the same batch wait for the batch's
 * commit: then the vote was handed over before its Accepts left. Each path says which came first.
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

/** The follower's part of a path, from the Accept on the wire to its vote durable: in a write's path and a slot's. */
const followerSegmentNames = [
  "sockets, network -> follower: Accept decoded",
  "follower: decoded -> step of the Accept",
  "follower: step -> vote handed to the storage thread",
  "follower: hand-over -> storage thread takes it",
  "follower storage: SQLite write",
  "follower storage: fsync",
  "follower: fsync -> main thread learns it is durable",
] as const;

/** The segments of a write's path, in order; each ends at the stage its name ends with. */
export const segmentNames = [
  "client -> leader: request handed to the driver",
  "leader: driver -> step of the request",
  "leader: step -> Accepts handed to the sockets",
  ...followerSegmentNames,
  "follower: durable -> Accepted handed to the socket",
  "sockets, network -> leader: Accepted decoded",
  "leader: decoded -> step of the Accepted",
  "leader: step -> reply (its own vote durable)",
  "leader -> client: response read",
] as const;

/** One write's path: each segment's duration (microseconds), and facts about the leader's own vote. */
export interface WritePath {
  /** When the client sent the write (its {@link ClientWrite}'s `sentUs`). */
  readonly sentUs: number;
  readonly totalUs: number;
  readonly segmentsUs: readonly number[];
  /** From the leader's Accepts on the wire (or its vote's hand-over, when that came first) to its own vote durable. */
  readonly leaderVoteUs: number;
  /** Whether the leader handed its own vote to storage before its Accepts left. */
  readonly voteBeforeAccepts: boolean;
  /** The leader's own vote: hand-over, SQLite write, fsync, back to the main thread (as the follower's). */
  readonly leaderVoteSegmentsUs: readonly number[];
  /** Whether the reply waited for the leader's own vote (durable after the Accepted was stepped). */
  readonly waitedForOwnVote: boolean;
  /** The socket writes of the leader's Accepts (both followers), and of the follower's Accepted. */
  readonly socketWritesUs: readonly [number, number];
  /** Microseconds of garbage collection on any replica's main thread that overlapped the write. */
  readonly gcUs: number;
}

/** The marks of one thread (or several), sorted by time, searched from a time on. */
export class Marks {
  private readonly marks: readonly TimelineMark[];
  constructor(marks: readonly TimelineMark[]) {
    this.marks = [...marks].sort((a, b) => a.timeUs - b.timeUs);
  }
  /** The first mark of `stage` (with `key`, when given) at or after `fromUs`. */
  first(stage: TimelineStage, fromUs: number, key?: number): number | undefined {
    for (let i = this.index(fromUs); i < this.marks.length; i++) {
      const m = this.marks[i]!;
      if (m.stage === stage && (key === undefined || m.key === key)) return m.timeUs;
    }
    return undefined;
  }
  /** The first mark of `stage` at or after `fromUs`, whatever its key. */
  firstMark(stage: TimelineStage, fromUs: number): TimelineMark | undefined {
    for (let i = this.index(fromUs); i < this.marks.length; i++)
      if (this.marks[i]!.stage === stage) return this.marks[i];
    return undefined;
  }
  /** The time of the last mark of `stage` before `toUs`. */
  lastBefore(stage: TimelineStage, toUs: number): number | undefined {
    for (let i = this.index(toUs) - 1; i >= 0; i--) if (this.marks[i]!.stage === stage) return this.marks[i]!.timeUs;
    return undefined;
  }
  /** The index of the first mark at or after `fromUs`. */
  private index(fromUs: number): number {
    let lo = 0;
    let hi = this.marks.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.marks[mid]!.timeUs < fromUs) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
  /** The times of every mark of `stage` with `key`, in order. */
  all(stage: TimelineStage, key: number): number[] {
    return this.marks.filter((m) => m.stage === stage && m.key === key).map((m) => m.timeUs);
  }
  /** How many marks lie strictly between the two times. */
  within(fromUs: number, toUs: number): number {
    let n = 0;
    for (let i = this.index(fromUs); i < this.marks.length && this.marks[i]!.timeUs < toUs; i++)
      if (this.marks[i]!.timeUs > fromUs) n += 1;
    return n;
  }
  /** The marks of `stage` between `fromUs` and `toUs`. */
  between(stage: TimelineStage, fromUs: number, toUs: number): TimelineMark[] {
    const found: TimelineMark[] = [];
    for (let i = this.index(fromUs); i < this.marks.length && this.marks[i]!.timeUs <= toUs; i++)
      if (this.marks[i]!.stage === stage) found.push(this.marks[i]!);
    return found;
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
      sentUs: write.sentUs,
      totalUs: write.doneUs - write.sentUs,
      segmentsUs,
      leaderVoteUs: leaderDurable - Math.min(leaderFlush, leaderPost),
      voteBeforeAccepts: leaderPost < accepts[0]!.timeUs,
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

/** What made the slowest writes slow: each segment's share, the collector's, and the leader's own vote. */
export interface WriteTail {
  /** How many writes are in the tail (the slowest `fraction`, at least one). */
  readonly writes: number;
  /**
   * Each segment, in the order of {@link segmentNames}: its mean beyond its median over the whole run, and in how
   * many tail writes it was the segment furthest beyond its median.
   */
  readonly segments: readonly { readonly meanBeyondP50Us: number; readonly largestIn: number }[];
  /** Tail writes that a collection on a replica's main thread overlapped, and their mean pause. */
  readonly withGc: number;
  readonly gcMeanUs: number;
  /** Tail writes whose reply waited for the leader's own vote. */
  readonly waitedForOwnVote: number;
}

/** The slowest `fraction` of `paths` (0.01: the writes at and beyond p99), put down to their segments. */
export function writeTail(paths: readonly WritePath[], fraction: number): WriteTail {
  const count = Math.max(1, Math.ceil(paths.length * fraction));
  const tail = [...paths].sort((a, b) => b.totalUs - a.totalUs).slice(0, paths.length === 0 ? 0 : count);
  const medians = segmentNames.map((_, i) => {
    const sorted = paths.map((p) => p.segmentsUs[i]!).sort((a, b) => a - b);
    return sorted.length === 0 ? 0 : sorted[Math.floor(sorted.length / 2)]!;
  });
  const beyond = medians.map(() => 0);
  const largest = medians.map(() => 0);
  for (const p of tail) {
    let at = 0;
    p.segmentsUs.forEach((us, i) => {
      beyond[i]! += us - medians[i]!;
      if (us - medians[i]! > p.segmentsUs[at]! - medians[at]!) at = i;
    });
    largest[at]! += 1;
  }
  const withGc = tail.filter((p) => p.gcUs > 0);
  return {
    writes: tail.length,
    segments: medians.map((_, i) => ({
      meanBeyondP50Us: beyond[i]! / Math.max(1, tail.length),
      largestIn: largest[i]!,
    })),
    withGc: withGc.length,
    gcMeanUs: withGc.reduce((n, p) => n + p.gcUs, 0) / Math.max(1, withGc.length),
    waitedForOwnVote: tail.filter((p) => p.waitedForOwnVote).length,
  };
}

/**
 * Each write's latency had the follower that made the quorum sent its Accepted from its storage
 * thread right after the fsync (`sendUs` for that write) instead of through its main thread: the
 * segments "fsync -> main thread learns it is durable" and "durable -> Accepted handed to the socket"
 * replaced by `sendUs`. `allWrites` false keeps the writes whose reply waited for the leader's own
 * vote as they were (that vote, not the follower, was then the last one needed). A bound on the
 * same marks, every other timing unchanged.
 */
export function withoutAnswerTurn(paths: readonly WritePath[], sendUs: number, allWrites: boolean): number[] {
  const learn = segmentNames.indexOf("follower: fsync -> main thread learns it is durable");
  const send = segmentNames.indexOf("follower: durable -> Accepted handed to the socket");
  return paths.map((p) =>
    !allWrites && p.waitedForOwnVote
      ? p.totalUs
      : p.totalUs - Math.max(0, p.segmentsUs[learn]! + p.segmentsUs[send]! - sendUs),
  );
}

/** The segments of a slot's path under many clients, in order; each ends at the stage its name ends with. */
export const slotSegmentNames = [
  "leader: Accept handed to the transport -> its flush starts",
  ...followerSegmentNames,
  "follower: durable -> Accepted's flush starts",
  "sockets, network -> leader: Accepted decoded",
  "leader: decoded -> step of the Accepted",
  "leader: step -> first reply (its own vote durable)",
] as const;

/** One slot's path from the leader's Accept to its first reply, through the follower that made the quorum. */
export interface SlotPath {
  readonly slot: number;
  /** From the Accept handed to the transport to the first reply after the quorum's Accepted was stepped. */
  readonly totalUs: number;
  readonly segmentsUs: readonly number[];
  /** The leader's own vote: hand-over, SQLite write, fsync, back to the main thread. */
  readonly leaderVoteSegmentsUs: readonly number[];
  /** Whether the first reply waited for the leader's own vote (durable after the Accepted was stepped). */
  readonly waitedForOwnVote: boolean;
  /** Whether the leader handed its own vote to storage before this slot's first Accept was sent. */
  readonly voteBeforeAccepts: boolean;
  /** Appends (hand-overs) that the follower's storage thread took in the same group commit as this slot's vote. */
  readonly followerGroupAppends: number;
  /** Microseconds of collection on the leader's and on that follower's main threads within the path. */
  readonly gcUs: { readonly leader: number; readonly follower: number };
}

/**
 * The path of every slot the leader sent an Accept for, under any number of clients. A hand-over is
 * keyed by the slot of its first vote, and an acceptor persists its votes in slot order, so the
 * leader's own vote at a slot is in its last hand-over keyed at or below that slot (before the slot
 * was chosen: the vote is persisted in the step that proposes it), whether it was handed over before
 * or after the Accepts left (see the module comment). A follower's vote is the first hand-over after
 * its step of the Accept (it persists before it answers). A hand-over's group commit is the first
 * take after it (the storage thread takes everything posted so far).
 */
export function slotPaths(
  leader: number,
  threads: readonly ThreadMarks[],
): { readonly paths: SlotPath[]; readonly incomplete: number } {
  const of = (replica: number, main: boolean): Marks =>
    new Marks(threads.filter((t) => t.replica === replica && t.main === main).flatMap((t) => t.marks));
  const gcOf = (replica: number): TimelineMark[] =>
    threads.filter((t) => t.replica === replica && t.main).flatMap((t) => t.marks.filter((m) => m.stage === "gc"));
  const leaderMain = of(leader, true);
  const leaderStorage = of(leader, false);
  const followers = [...new Set(threads.map((t) => t.replica))]
    .filter((r) => r !== leader)
    .map((r) => ({ main: of(r, true), storage: of(r, false), gc: gcOf(r) }));
  const leaderGc = gcOf(leader);
  const leaderPosts = ownVoteHandOver(threads.filter((t) => t.replica === leader && t.main).flatMap((t) => t.marks));
  const overlap = (gcs: readonly TimelineMark[], from: number, to: number): number =>
    gcs.reduce((n, gc) => n + Math.max(0, Math.min(gc.timeUs + gc.key, to) - Math.max(gc.timeUs, from)), 0);
  const sends = threads
    .filter((t) => t.replica === leader && t.main)
    .flatMap((t) => t.marks.filter((m) => m.stage === "send-accept"));
  const seen = new Set<number>();
  const paths: SlotPath[] = [];
  let incomplete = 0;
  for (const send of sends.sort((a, b) => a.timeUs - b.timeUs)) {
    // A slot's Accept is re-sent (catch-up, a new ballot) rarely; its first send is its path.
    if (seen.has(send.key)) continue;
    seen.add(send.key);
    const path = pathOf(send.key, send.timeUs);
    if (path === null) incomplete += 1;
    else paths.push(path);
  }
  return { paths, incomplete };

  function storagePath(main: Marks, storage: Marks, post: TimelineMark | undefined): number[] | null {
    if (post === undefined) return null;
    const take = storage.first("storage-take", post.timeUs);
    const written = take === undefined ? undefined : storage.first("storage-written", take);
    const synced = written === undefined ? undefined : storage.first("storage-synced", written);
    const durable = synced === undefined ? undefined : main.first("durable", synced, post.key);
    if (take === undefined || written === undefined || synced === undefined || durable === undefined) return null;
    return [post.timeUs, take, written, synced, durable];
  }

  function pathOf(slot: number, sendUs: number): SlotPath | null {
    const flush = leaderMain.first("flush", sendUs);
    const stepped = leaderMain.first("step-accepted", sendUs, slot);
    if (flush === undefined || stepped === undefined) return null;
    const reply = leaderMain.first("reply", stepped);
    const own = storagePath(leaderMain, leaderStorage, leaderPosts(slot, stepped));
    if (reply === undefined || own === null) return null;
    let best: { chain: number[]; groupAppends: number; gc: number } | null = null;
    for (const f of followers) {
      const recv = f.main.first("recv-accept", flush - 1, slot);
      const step = recv === undefined ? undefined : f.main.first("step-accept", recv, slot);
      const vote = step === undefined ? null : storagePath(f.main, f.storage, f.main.firstMark("post", step));
      const sent = vote === null ? undefined : f.main.first("send-accepted", vote[4]!, slot);
      const back = sent === undefined ? undefined : f.main.first("flush", sent);
      if (recv === undefined || step === undefined || vote === null || back === undefined) continue;
      const arrived = leaderMain.first("recv-accepted", back - 1, slot);
      if (arrived === undefined || arrived > stepped) continue;
      if (best !== null && back >= best.chain[9]!) continue;
      // The hand-overs taken in the same group: those after the previous take, up to this one.
      const previousTake = f.storage.lastBefore("storage-take", vote[1]!) ?? vote[0]! - 1e6;
      const groupAppends = f.main.between("post", previousTake, vote[1]!).length;
      best = {
        chain: [sendUs, flush, recv, step, ...vote, back, arrived, stepped, reply],
        groupAppends,
        gc: overlap(f.gc, sendUs, reply),
      };
    }
    if (best === null) return null;
    const { chain } = best;
    return {
      slot,
      totalUs: reply - sendUs,
      segmentsUs: chain.slice(1).map((t, i) => t - chain[i]!),
      leaderVoteSegmentsUs: own.slice(1).map((t, i) => t - own[i]!),
      waitedForOwnVote: own[4]! > stepped,
      voteBeforeAccepts: own[0]! < sendUs,
      followerGroupAppends: best.groupAppends,
      gcUs: { leader: overlap(leaderGc, sendUs, reply), follower: best.gc },
    };
  }
}

/**
 * The hand-over that holds a replica's own vote at `slot`, from its main thread's marks: the last
 * one keyed at the greatest slot at most `slot` that has any, no later than `beforeUs` (see
 * {@link slotPaths}).
 */
export function ownVoteHandOver(
  marks: readonly TimelineMark[],
): (slot: number, beforeUs: number) => TimelineMark | undefined {
  const byKey = new Map<number, TimelineMark[]>();
  for (const m of [...marks].sort((a, b) => a.timeUs - b.timeUs))
    if (m.stage === "post" && m.key >= 0) {
      const same = byKey.get(m.key);
      if (same === undefined) byKey.set(m.key, [m]);
      else same.push(m);
    }
  const keys = [...byKey.keys()].sort((a, b) => a - b);
  return (slot, beforeUs) => {
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (keys[mid]! <= slot) lo = mid + 1;
      else hi = mid;
    }
    if (lo === 0) return undefined;
    return byKey.get(keys[lo - 1]!)!.findLast((m) => m.timeUs <= beforeUs);
  };
}

/** What a stretch of the leader's main thread without any mark was waiting for (see {@link leaderGaps}). */
export const gapCauses = [
  "a collection on the leader's main thread",
  "an fsync: the leader's own, or both followers'",
  "the leader's storage thread synced, its main thread not yet told",
  "a follower's storage thread synced, its main thread not yet told",
  "a vote handed over, its storage thread not yet taken it",
  "none of these: messages in flight, or processes waiting for a CPU",
] as const;

/** Intervals [from, to] of one kind, and how much of [a, b] they cover. */
function covered(intervals: readonly (readonly [number, number])[], a: number, b: number): number {
  let n = 0;
  for (const [from, to] of intervals) n += Math.max(0, Math.min(to, b) - Math.max(from, a));
  return n;
}

/**
 * The stretches of at least `gapUs` between `fromUs` and `toUs` in which the leader's main thread
 * made no mark (it stepped, sent, received, handed over and replied nothing), each put down to the
 * first cause in {@link gapCauses} that covers more than half of it: under steady load the leader
 * then waits for something, and this says what. Returns, per cause, the stretches and their time.
 */
export function leaderGaps(
  leader: number,
  threads: readonly ThreadMarks[],
  fromUs: number,
  toUs: number,
  gapUs = 5000,
): { readonly cause: (typeof gapCauses)[number]; readonly gaps: number; readonly us: number }[] {
  const replicas = [...new Set(threads.map((t) => t.replica))];
  const marksOf = (replica: number, main: boolean, stage: TimelineStage): number[] =>
    threads
      .filter((t) => t.replica === replica && t.main === main)
      .flatMap((t) => t.marks.filter((m) => m.stage === stage).map((m) => m.timeUs))
      .sort((a, b) => a - b);
  /** Each `from` mark paired with the first `to` mark at or after it. */
  const pairs = (from: readonly number[], to: readonly number[]): [number, number][] => {
    const out: [number, number][] = [];
    let j = 0;
    for (const t of from) {
      while (j < to.length && to[j]! < t) j++;
      if (j < to.length) out.push([t, to[j]!]);
    }
    return out;
  };
  const per = new Map(
    replicas.map((r) => [
      r,
      {
        fsync: pairs(marksOf(r, false, "storage-written"), marksOf(r, false, "storage-synced")),
        back: pairs(marksOf(r, false, "storage-synced"), marksOf(r, true, "durable")),
        handOver: pairs(marksOf(r, true, "post"), marksOf(r, false, "storage-take")),
      },
    ]),
  );
  const gcs: [number, number][] = threads
    .filter((t) => t.replica === leader && t.main)
    .flatMap((t) => t.marks.filter((m) => m.stage === "gc").map((m): [number, number] => [m.timeUs, m.timeUs + m.key]));
  const marks = threads
    .filter((t) => t.replica === leader && t.main)
    .flatMap((t) => t.marks.filter((m) => m.stage !== "gc" && m.timeUs >= fromUs && m.timeUs <= toUs))
    .map((m) => m.timeUs)
    .sort((a, b) => a - b);
  const followers = replicas.filter((r) => r !== leader);
  const own = per.get(leader)!;
  const result = gapCauses.map((cause) => ({ cause, gaps: 0, us: 0 }));
  for (let i = 1; i < marks.length; i++) {
    const a = marks[i - 1]!;
    const b = marks[i]!;
    const half = (b - a) / 2;
    if (b - a < gapUs) continue;
    const over = (intervals: readonly (readonly [number, number])[]): boolean => covered(intervals, a, b) > half;
    const cause = over(gcs)
      ? 0
      : over(own.fsync) || (followers.length > 0 && followers.every((f) => over(per.get(f)!.fsync)))
        ? 1
        : over(own.back)
          ? 2
          : followers.some((f) => over(per.get(f)!.back))
            ? 3
            : replicas.some((r) => over(per.get(r)!.handOver))
              ? 4
              : 5;
    result[cause]!.gaps += 1;
    result[cause]!.us += b - a;
  }
  return result;
}

/**
 * The storage threads' housekeeping marked on the timeline, and the main threads' work on a
 * snapshot (the `step` that took it, its slices, the appends held behind them): spans whose key is
 * their duration.
 */
const housekeepingStages = [
  "compact",
  "checkpoint",
  "collect",
  "snapshot-step",
  "snapshot-slices",
  "snapshot-held",
] as const satisfies readonly TimelineStage[];

/** The stages of `housekeepingStages` marked on a main thread. */
const mainThreadStages: ReadonlySet<string> = new Set(["snapshot-step", "snapshot-slices", "snapshot-held"]);

/** One kind of a storage thread's housekeeping over a window, and the writes it overlapped. */
export interface Housekeeping {
  readonly stage: (typeof housekeepingStages)[number];
  /** Spans in the window, over every storage thread. */
  readonly spans: number;
  readonly p50Us: number;
  /** The longest span: the longest any append that came meanwhile waited behind it on that thread. */
  readonly maxUs: number;
  readonly sumUs: number;
  /** Writes during which a span of it ran on any storage thread. */
  readonly writes: number;
  /** The same among `slow`. */
  readonly slowWrites: number;
}

/**
 * What the storage threads did besides appends while the client wrote (a compaction's pieces and
 * its deletion, WAL checkpoints, full collections), and the main threads for a snapshot, each with
 * the writes it overlapped: the work an append arriving meanwhile waits behind. `slowFromUs`:
 * where the slow writes begin.
 */
export function housekeeping(
  threads: readonly ThreadMarks[],
  writes: readonly ClientWrite[],
  slowFromUs: number,
): Housekeeping[] {
  const from = writes[0]?.sentUs ?? 0;
  const to = writes.at(-1)?.doneUs ?? 0;
  return housekeepingStages.map((stage) => {
    const spans = threads
      .filter((t) => t.main === mainThreadStages.has(stage))
      .flatMap((t) => t.marks.filter((m) => m.stage === stage && m.timeUs >= from && m.timeUs <= to))
      .map((m): [number, number] => [m.timeUs, m.timeUs + m.key])
      .sort((a, b) => a[0] - b[0]);
    const durations = spans.map(([s, e]) => e - s).sort((a, b) => a - b);
    const overlaps = (w: ClientWrite): boolean => spans.some(([s, e]) => s < w.doneUs && e > w.sentUs);
    const hit = writes.filter(overlaps);
    return {
      stage,
      spans: spans.length,
      p50Us: durations[Math.floor(durations.length / 2)] ?? 0,
      maxUs: durations.at(-1) ?? 0,
      sumUs: durations.reduce((a, b) => a + b, 0),
      writes: hit.length,
      slowWrites: hit.filter((w) => w.doneUs - w.sentUs >= slowFromUs).length,
    };
  });
}

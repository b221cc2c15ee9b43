/**
 * What overlapped the slowest writes of a lone client (bench/write-tail.ts): each candidate cause
 * is an amount of time per write (a collection's pause, a snapshot's work, a thread's wait for a
 * core, a follower's part beyond its median), and a write is "overlapped" by it when that amount
 * exceeds the cause's baseline by more than its threshold. Comparing how often a cause overlaps
 * the slowest writes with how often it overlaps any write says whether it makes the tail (a cause
 * that overlaps 10% of all writes and 10% of the slow ones does not), and survives a loaded
 * machine better than the latencies themselves do.
 */
import type { TimelineMark, TimelineStage } from "../../impl/runtime/timeline.ts";
import type { ClientWrite, ThreadMarks } from "./write-timeline.ts";

/** An interval of the monotonic clock, in microseconds. */
export interface Span {
  readonly fromUs: number;
  readonly toUs: number;
}

/** One candidate cause of a slow write. */
export interface Cause {
  readonly name: string;
  /** Its time within the write, in microseconds. */
  readonly amountUs: (write: ClientWrite) => number;
  /** What any write has of it anyway (a thread's usual wait for a core): subtracted first. Default 0. */
  readonly baselineUs?: number;
  /** How far beyond the baseline the amount must be for the write to count as overlapped. Default 0. */
  readonly thresholdUs?: number;
}

/** Spans as a cause: the time of them within each write. */
export function spanCause(name: string, spans: readonly Span[]): Cause {
  const sorted = [...spans].sort((a, b) => a.fromUs - b.fromUs);
  const longest = sorted.reduce((n, s) => Math.max(n, s.toUs - s.fromUs), 0);
  return {
    name,
    amountUs: (w) => {
      let n = 0;
      // Spans that may end after the write's start begin at most `longest` before it.
      let lo = 0;
      let hi = sorted.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (sorted[mid]!.fromUs < w.sentUs - longest) lo = mid + 1;
        else hi = mid;
      }
      for (let i = lo; i < sorted.length && sorted[i]!.fromUs < w.doneUs; i++)
        n += Math.max(0, Math.min(sorted[i]!.toUs, w.doneUs) - Math.max(sorted[i]!.fromUs, w.sentUs));
      return n;
    },
  };
}

/** The spans of marks of `stage` whose key is their duration in microseconds (`gc`, `compact`, `tick`, ...). */
export function markedSpans(marks: readonly TimelineMark[], stage: TimelineStage): Span[] {
  return marks.filter((m) => m.stage === stage).map((m) => ({ fromUs: m.timeUs, toUs: m.timeUs + m.key }));
}

/**
 * A cumulative counter sampled over time (a thread's time waiting for a core, from
 * /proc/PID/task/TID/schedstat): its growth within each write, linearly interpolated between
 * samples. The baseline is its median growth over `writes`, so that a thread's usual waits are not
 * taken for a cause.
 */
export function counterCause(
  name: string,
  timesUs: readonly number[],
  values: readonly number[],
  writes: readonly ClientWrite[],
  thresholdUs: number,
): Cause {
  const at = (t: number): number => {
    if (timesUs.length === 0) return 0;
    let lo = 0;
    let hi = timesUs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (timesUs[mid]! <= t) lo = mid + 1;
      else hi = mid;
    }
    if (lo === 0) return values[0]!;
    if (lo === timesUs.length) return values.at(-1)!;
    const t0 = timesUs[lo - 1]!;
    const t1 = timesUs[lo]!;
    const v0 = values[lo - 1]!;
    return v0 + ((values[lo]! - v0) * (t - t0)) / Math.max(1e-9, t1 - t0);
  };
  const amountUs = (w: ClientWrite): number => Math.max(0, at(w.doneUs) - at(w.sentUs));
  const sorted = writes.map(amountUs).sort((a, b) => a - b);
  return { name, amountUs, baselineUs: sorted[Math.floor(sorted.length / 2)] ?? 0, thresholdUs };
}

/** One cause's row: how often it overlapped the slow writes against any write, and for how long. */
export interface OverlapRow {
  readonly name: string;
  /** Slow writes it overlapped (beyond baseline and threshold). */
  readonly slow: number;
  /** Its mean time beyond its baseline in the slow writes it overlapped, microseconds. */
  readonly slowMeanUs: number;
  /** Its time beyond its baseline over all the slow writes, microseconds. */
  readonly slowSumUs: number;
  /** The fraction of all writes it overlapped. */
  readonly allFraction: number;
  /** Slow writes in which it was the largest cause (by time beyond its baseline). */
  readonly largestIn: number;
}

/** The slow writes put down to `causes`. */
export interface OverlapTable {
  readonly writes: number;
  readonly slowWrites: number;
  /** Where the slow writes begin (the latency at the slowest `fraction`), microseconds. */
  readonly slowFromUs: number;
  readonly rows: readonly OverlapRow[];
  /** Slow writes no cause overlapped. */
  readonly unexplained: number;
}

/** The slowest `fraction` of `writes` (at least one), and what overlapped each of them. */
export function overlapTable(writes: readonly ClientWrite[], causes: readonly Cause[], fraction: number): OverlapTable {
  const latency = (w: ClientWrite): number => w.doneUs - w.sentUs;
  const count = writes.length === 0 ? 0 : Math.max(1, Math.ceil(writes.length * fraction));
  const slow = [...writes].sort((a, b) => latency(b) - latency(a)).slice(0, count);
  const beyond = (c: Cause, w: ClientWrite): number => c.amountUs(w) - (c.baselineUs ?? 0);
  const over = (c: Cause, w: ClientWrite): boolean => beyond(c, w) > (c.thresholdUs ?? 0);
  const largest = causes.map(() => 0);
  let unexplained = 0;
  for (const w of slow) {
    let at = -1;
    causes.forEach((c, i) => {
      if (over(c, w) && (at < 0 || beyond(c, w) > beyond(causes[at]!, w))) at = i;
    });
    if (at < 0) unexplained += 1;
    else largest[at]! += 1;
  }
  const rows = causes.map((c, i): OverlapRow => {
    const hit = slow.filter((w) => over(c, w));
    const sum = hit.reduce((n, w) => n + beyond(c, w), 0);
    return {
      name: c.name,
      slow: hit.length,
      slowMeanUs: sum / Math.max(1, hit.length),
      slowSumUs: sum,
      allFraction: writes.filter((w) => over(c, w)).length / Math.max(1, writes.length),
      largestIn: largest[i]!,
    };
  });
  return {
    writes: writes.length,
    slowWrites: slow.length,
    slowFromUs: slow.length === 0 ? 0 : latency(slow.at(-1)!),
    rows,
    unexplained,
  };
}

/** A replica's thread, as the bench names it: the role of its replica and what the thread is. */
export interface NamedThread {
  readonly replica: number;
  readonly kind: "main" | "storage" | "relay";
  /** "leader main", "follower 2 storage", ... */
  readonly name: string;
  /** Its id in the operating system, from its timeline's `thread` mark (-1: unknown). */
  readonly tid: number;
  readonly marks: readonly TimelineMark[];
}

/**
 * Each replica's threads by what they are: the main thread, the storage thread (it marks its
 * takes), the heartbeat relay's (it marks its hand-overs; only the leader's hands any over).
 * Threads of neither kind (a follower's idle relay) are left out.
 */
export function namedThreads(leader: number, threads: readonly ThreadMarks[]): NamedThread[] {
  const out: NamedThread[] = [];
  for (const t of threads) {
    const has = (stage: TimelineStage): boolean => t.marks.some((m) => m.stage === stage);
    const kind = t.main ? "main" : has("storage-take") ? "storage" : has("relay") ? "relay" : null;
    if (kind === null) continue;
    const role = t.replica === leader ? "leader" : `follower ${t.replica}`;
    out.push({
      replica: t.replica,
      kind,
      name: `${role} ${kind}`,
      tid: t.marks.find((m) => m.stage === "thread")?.key ?? -1,
      marks: t.marks,
    });
  }
  const order = (t: NamedThread): number =>
    (t.replica === leader ? 0 : t.replica) * 3 + ["main", "storage", "relay"].indexOf(t.kind);
  return out.sort((a, b) => order(a) - order(b));
}

/** An fsync's spans on a storage thread: from each `storage-written` to the next `storage-synced`. */
export function fsyncSpans(marks: readonly TimelineMark[]): Span[] {
  const sorted = [...marks].sort((a, b) => a.timeUs - b.timeUs);
  const spans: Span[] = [];
  let from: number | null = null;
  for (const m of sorted) {
    if (m.stage === "storage-written") from = m.timeUs;
    else if (m.stage === "storage-synced" && from !== null) {
      spans.push({ fromUs: from, toUs: m.timeUs });
      from = null;
    }
  }
  return spans;
}

/** The spans longer than `minUs`, each cut to what exceeds `minUs` (its end kept). */
export function longSpans(spans: readonly Span[], minUs: number): Span[] {
  return spans.filter((s) => s.toUs - s.fromUs > minUs).map((s) => ({ fromUs: s.fromUs + minUs, toUs: s.toUs }));
}

/** The union of `spans`, as spans that do not overlap, in order. */
export function unionSpans(spans: readonly Span[]): Span[] {
  const out: { fromUs: number; toUs: number }[] = [];
  for (const s of [...spans].sort((a, b) => a.fromUs - b.fromUs)) {
    const last = out.at(-1);
    if (last !== undefined && s.fromUs <= last.toUs) last.toUs = Math.max(last.toUs, s.toUs);
    else out.push({ fromUs: s.fromUs, toUs: s.toUs });
  }
  return out;
}

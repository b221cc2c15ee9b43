/**
 * Timestamps of a write's stages in a replica process, for `bench/write-timeline.ts`: where a lone
 * write's time goes between the client's request and its reply, on the leader and the followers,
 * their main threads and their storage threads. Off unless `PAXOS_LEASE_TIMELINE_DIR` names a
 * directory when the process (or thread) starts; then every thread appends its marks to a file
 * of its own there (`PID-THREAD.timeline`), a quarter of a second at a time. When off, each mark
 * costs a test of `timeline` against null.
 *
 * A mark is a stage, a key (the slot it concerns, or -1) and the time, in microseconds of the
 * monotonic clock (CLOCK_MONOTONIC, shared by every process of the machine, so the marks of the
 * three replicas compare directly). The file is pairs of float64: the time, then stage * 2^32 +
 * key + 1.
 */
import fs from "node:fs";
import path from "node:path";
import { PerformanceObserver } from "node:perf_hooks";
import { threadId } from "node:worker_threads";
import type { KvRecord } from "./core-adapter.ts";

/** The stages marked, in the order of a write's path. Their names are the file format's. */
const timelineStages = [
  /** The leader's HTTP API hands a client's request to the driver. */
  "submit",
  /** `step` takes a client request. */
  "step-request",
  /** An Accept is handed to the transport (queued for the next flush). */
  "send-accept",
  /** The transport writes the messages queued since the last flush (marked as it starts). */
  "flush",
  /** The transport's writes returned (a loopback peer may have read them meanwhile). */
  "flushed",
  /** A batch's records are handed to the storage thread; key: the slot of its first vote. */
  "post",
  /** The storage thread takes a group of appends; key: the first vote's slot. */
  "storage-take",
  /** The storage thread has written them (SQLite). */
  "storage-written",
  /** The storage thread's fsync returned; the replies are posted next. */
  "storage-synced",
  /** The main thread learns that a batch's records are durable; key as for `post`. */
  "durable",
  /** The transport decoded an Accept from a peer. */
  "recv-accept",
  /** `step` takes an Accept. */
  "step-accept",
  /** An Accepted is handed to the transport. */
  "send-accepted",
  /** The transport decoded an Accepted from a peer. */
  "recv-accepted",
  /** `step` takes an Accepted. */
  "step-accepted",
  /** The client's request has its result, and its response is written next. */
  "reply",
  /** A collection of the garbage collector began; key: its duration in microseconds. */
  "gc",
  /** The storage thread began a piece of a compaction (or its deletions); key: its duration in microseconds. */
  "compact",
  /** The storage thread began a checkpoint of the WAL; key: its duration in microseconds. */
  "checkpoint",
  /** The storage thread began a full collection of its heap; key: its duration in microseconds. */
  "collect",
  /** A main thread's `step` that took a snapshot began (the core's part of it); key: its duration in microseconds. */
  "snapshot-step",
  /** A main thread began serializing slices of a snapshot in one turn; key: its duration in microseconds. */
  "snapshot-slices",
  /** A snapshot's append was made, held until its slices were serialized; key: how long it was held (us). */
  "snapshot-held",
  /** The thread's timeline began; key: its thread id in the operating system (-1: unknown). */
  "thread",
  /** A main thread's `step` of a tick (the driver's timer) began; key: its duration in microseconds. */
  "tick",
  /** The heartbeat relay's thread handled a command or sent copies; key: its duration in microseconds. */
  "relay",
] as const;

export type TimelineStage = (typeof timelineStages)[number];

const stageIndex = new Map<string, number>(timelineStages.map((name, index) => [name, index]));

/** Microseconds of the monotonic clock. */
export function nowUs(): number {
  const [seconds, nanoseconds] = process.hrtime();
  return seconds * 1e6 + nanoseconds / 1e3;
}

/**
 * One thread's marks, appended to its file. The writes go through libuv's thread pool, one at a
 * time, never on the thread that marks: a write that waits for the file system's journal (tens of
 * milliseconds on a disk others are syncing) would otherwise stall the very path measured.
 */
export class Timeline {
  private readonly buffer = new Float64Array(2 * 16_384);
  private length = 0;
  private readonly fd: number;
  /** Filled buffers waiting for their write, oldest first; the first is being written while `writing`. */
  private readonly queued: Uint8Array[] = [];
  private writing = false;

  constructor(file: string) {
    this.fd = fs.openSync(file, "a");
    this.mark("thread", osThreadId());
    setInterval(() => this.flush(), 250).unref();
    process.on("exit", () => this.flushSync());
    // Collections, placed on the same clock (performance.now() is monotonic too, with its own origin).
    const offsetUs = nowUs() - performance.now() * 1e3;
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries())
        this.markAt("gc", Math.round(entry.duration * 1e3), offsetUs + entry.startTime * 1e3);
    }).observe({ entryTypes: ["gc"] });
  }

  mark(stage: TimelineStage, key: number): void {
    this.markAt(stage, key, nowUs());
  }

  /** Mark `stage` as begun at `startUs` (from {@link nowUs}), its key the microseconds since. */
  span(stage: TimelineStage, startUs: number): void {
    const now = nowUs();
    this.markAt(stage, Math.round(now - startUs), startUs);
  }

  private markAt(stage: TimelineStage, key: number, timeUs: number): void {
    if (this.length === this.buffer.length) this.flush();
    this.buffer[this.length++] = timeUs;
    this.buffer[this.length++] = stageIndex.get(stage)! * 2 ** 32 + key + 1;
  }

  /** Queue the marks made so far for writing (in the background). */
  flush(): void {
    if (this.length === 0) return;
    this.queued.push(new Uint8Array(this.buffer.slice(0, this.length).buffer));
    this.length = 0;
    this.writeNext();
  }

  private writeNext(): void {
    if (this.writing || this.queued.length === 0) return;
    this.writing = true;
    fs.write(this.fd, this.queued[0]!, () => {
      this.queued.shift();
      this.writing = false;
      this.writeNext();
    });
  }

  /** Write every mark now, blocking (at exit, and in tests). */
  flushSync(): void {
    // A write in flight may have reached the file already, its marks then twice there (a reader
    // looks for the first mark of each stage, so it reads the same write's path).
    for (const bytes of this.queued) fs.writeSync(this.fd, bytes);
    this.queued.length = 0;
    if (this.length > 0) fs.writeSync(this.fd, new Uint8Array(this.buffer.buffer, 0, this.length * 8));
    this.length = 0;
  }
}

/** This thread's id in the operating system (Linux: /proc/thread-self), for the scheduler's counts; -1 elsewhere. */
function osThreadId(): number {
  try {
    return Number(/task\/(\d+)$/.exec(fs.readlinkSync("/proc/thread-self"))?.[1] ?? -1);
  } catch {
    return -1;
  }
}

/** This thread's timeline, when `PAXOS_LEASE_TIMELINE_DIR` is set. */
export const timeline: Timeline | null = ((): Timeline | null => {
  const dir = process.env.PAXOS_LEASE_TIMELINE_DIR;
  if (dir === undefined || dir === "") return null;
  return new Timeline(path.join(dir, `${process.pid}-${threadId}.timeline`));
})();

/** The slot of the first vote among `records` (-1: none), the key of the storage marks. */
export function firstVoteSlot(records: readonly KvRecord[]): number {
  for (const record of records) if (record._tag === "vote") return record.slot;
  return -1;
}

/** One mark read back from a timeline file. */
export interface TimelineMark {
  readonly timeUs: number;
  readonly stage: TimelineStage;
  readonly key: number;
}

/** The marks of one timeline file, in the order written. */
export function readTimeline(bytes: Uint8Array): TimelineMark[] {
  const words = new Float64Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const marks: TimelineMark[] = [];
  for (let i = 0; i + 1 < words.length; i += 2) {
    const code = words[i + 1]!;
    const stage = timelineStages[Math.floor(code / 2 ** 32)];
    if (stage === undefined) throw new Error(`timeline: unknown stage in mark ${i / 2}`);
    marks.push({ timeUs: words[i]!, stage, key: (code % 2 ** 32) - 1 });
  }
  return marks;
}

/**
 * The event loop of a replica process: it feeds `step` one event at a time (never two at
 * once), stamping each with a fresh clock reading when it is handled, and carries out the
 * effects in order. Group commit: the Persist records of a whole batch of steps are written in
 * one transaction with one fsync, and only then are the sends, replies and alarms that follow
 * the batch's first Persist released (those before it go at once). Every Persist therefore is
 * durable before any effect that follows it.
 *
 * Every queue is bounded: peer messages beyond `eventsQueuedMax` are dropped (as a network
 * would), client requests beyond `requestsPendingMax` are refused at once as overloaded, and
 * a client waits at most `requestTimeoutMs`. A throw from `step` or from storage stops the
 * replica (fail-stop): continuing after either could break the contract above.
 */
import type { ClientResult, Consistency, Effect, Event, ReplicaId, StepResult } from "../core/events.ts";
import type { MonotonicClock } from "./clock.ts";
import type { TraceWriter } from "./trace.ts";

/** The replica core, as the driver sees it. */
export type StepFunction<S, M, R, I, O> = (state: S, event: Event<M, R, I>) => StepResult<S, M, R, O>;

/** Where Persist records go. `append` returns once they are durable. */
export interface DurableLog<R> {
  append(records: readonly R[]): void;
  readonly recordCount: number;
}

/** What a client submits. */
export interface Submission<I> {
  readonly input: I;
  readonly consistency: Consistency;
  readonly clientId?: string | undefined;
  readonly seq?: number | undefined;
}

/** Facts about one batch, for metrics. */
export interface BatchReport {
  readonly events: number;
  readonly records: number;
  /** Duration of the commit (the transaction and its fsync), in milliseconds; 0 when none. */
  readonly fsyncMs: number;
  readonly sends: number;
  readonly replies: number;
}

/** Options of {@link Driver}. Limits state their defaults. */
export interface DriverOptions<S, M, R, I, O> {
  readonly step: StepFunction<S, M, R, I, O>;
  readonly state: S;
  readonly log: DurableLog<R>;
  readonly clock: MonotonicClock;
  /** Carry out a Send; returns false when the network dropped it. */
  readonly send: (to: ReplicaId, message: M, wireId: number) => boolean;
  readonly onAlarm: (alarm: Extract<Effect<M, R, O>, { _tag: "Alarm" }>) => void;
  /** Called when the replica must stop: `step` or storage threw. */
  readonly onFatal: (error: unknown) => void;
  /** Called after every batch with the new state. */
  readonly onBatch?: (state: S, report: BatchReport) => void;
  readonly trace?: TraceWriter<M, R, I, O> | undefined;
  /** Tick period, in milliseconds. Default 5. */
  readonly tickIntervalMs?: number;
  /** Events handled in one batch (one commit). Default 256. */
  readonly batchEventsMax?: number;
  /** Peer messages queued before more are dropped. Default 10000. */
  readonly eventsQueuedMax?: number;
  /** Client requests in flight before more are refused. Default 1000. */
  readonly requestsPendingMax?: number;
  /** Longest wait for a reply, in milliseconds. Default 10000. */
  readonly requestTimeoutMs?: number;
}

type Pending<M, R, I> =
  | { readonly _tag: "Receive"; readonly from: ReplicaId; readonly message: M; readonly wireId: number; readonly senderIncarnation: string }
  | { readonly _tag: "Tick" }
  | { readonly _tag: "ClientRequest"; readonly requestId: number; readonly submission: Submission<I> }
  | { readonly _tag: "Recover"; readonly records: readonly R[] };

interface Waiter<O> {
  readonly resolve: (result: ClientResult<O>) => void;
  readonly timer: NodeJS.Timeout;
}

/** Drives one replica core. */
export class Driver<S, M, R, I, O> {
  private current: S;
  private readonly queue: Pending<M, R, I>[] = [];
  private readonly waiters = new Map<number, Waiter<O>>();
  private nextRequestId = 1;
  private nextWireId = 0;
  private batchNumber = 0;
  private tickQueued = false;
  private scheduled = false;
  private stopped = false;
  private ticker: NodeJS.Timeout | null = null;
  private droppedEvents = 0;
  private readonly batchEventsMax: number;
  private readonly eventsQueuedMax: number;
  private readonly requestsPendingMax: number;
  private readonly requestTimeoutMs: number;

  constructor(private readonly options: DriverOptions<S, M, R, I, O>) {
    this.current = options.state;
    this.batchEventsMax = options.batchEventsMax ?? 256;
    this.eventsQueuedMax = options.eventsQueuedMax ?? 10_000;
    this.requestsPendingMax = options.requestsPendingMax ?? 1000;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
  }

  /** The core's state after the last batch. */
  get state(): S {
    return this.current;
  }

  /** Events waiting, client requests waiting for a reply, and peer messages dropped so far. */
  get depths(): { readonly events: number; readonly requests: number; readonly droppedEvents: number } {
    return { events: this.queue.length, requests: this.waiters.size, droppedEvents: this.droppedEvents };
  }

  /** Hand the core its durable records (the first event), then start ticking. */
  start(records: readonly R[]): void {
    this.enqueue({ _tag: "Recover", records });
    const interval = this.options.tickIntervalMs ?? 5;
    this.ticker = setInterval(() => {
      if (this.tickQueued) return;
      this.tickQueued = true;
      this.enqueue({ _tag: "Tick" });
    }, interval);
  }

  /** Stop handling events; waiting clients get `unavailable`. */
  stop(): void {
    this.stopped = true;
    if (this.ticker !== null) clearInterval(this.ticker);
    for (const [requestId, waiter] of this.waiters) {
      clearTimeout(waiter.timer);
      this.waiters.delete(requestId);
      waiter.resolve({ _tag: "unavailable", reason: "replica is shutting down", outcomeUnknown: true });
    }
    this.queue.length = 0;
  }

  /** A message from a peer (sent under `wireId` by the sender's `senderIncarnation`). Dropped when the queue is full. */
  receive(from: ReplicaId, message: M, wireId: number, senderIncarnation = ""): void {
    if (this.queue.length >= this.eventsQueuedMax) {
      this.droppedEvents += 1;
      return;
    }
    this.enqueue({ _tag: "Receive", from, message, wireId, senderIncarnation });
  }

  /** Submit a client request; resolves with the core's reply, or `unavailable` on overload or timeout. */
  submit(submission: Submission<I>): Promise<ClientResult<O>> {
    if (this.stopped) return Promise.resolve({ _tag: "unavailable", reason: "replica is shutting down", outcomeUnknown: false });
    if (this.waiters.size >= this.requestsPendingMax) {
      return Promise.resolve({ _tag: "unavailable", reason: `overloaded: ${this.requestsPendingMax} requests pending`, outcomeUnknown: false });
    }
    const requestId = this.nextRequestId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(requestId);
        resolve({ _tag: "unavailable", reason: `no reply within ${this.requestTimeoutMs} ms`, outcomeUnknown: true });
      }, this.requestTimeoutMs);
      this.waiters.set(requestId, { resolve, timer });
      this.enqueue({ _tag: "ClientRequest", requestId, submission });
    });
  }

  private enqueue(pending: Pending<M, R, I>): void {
    if (this.stopped) return;
    this.queue.push(pending);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.runBatch());
    }
  }

  private stamp(pending: Pending<M, R, I>, now: number): Event<M, R, I> {
    switch (pending._tag) {
      case "Receive":
        return { _tag: "Receive", now, from: pending.from, message: pending.message };
      case "Tick":
        this.tickQueued = false;
        return { _tag: "Tick", now };
      case "ClientRequest": {
        const s = pending.submission;
        return { _tag: "ClientRequest", now, requestId: pending.requestId, clientId: s.clientId, seq: s.seq, input: s.input, consistency: s.consistency };
      }
      case "Recover":
        return { _tag: "Recover", now, records: pending.records };
    }
  }

  private runBatch(): void {
    this.scheduled = false;
    if (this.stopped) return;
    try {
      this.handleBatch(this.queue.splice(0, this.batchEventsMax));
    } catch (error) {
      this.stop();
      this.options.onFatal(error);
      return;
    }
    if (this.queue.length > 0 && !this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.runBatch());
    }
  }

  /**
   * Step every event; carry out the effects that precede the batch's first Persist at once;
   * commit every record of the batch in one transaction; then carry out the rest in order.
   * So a lease read answered before any Persist of its batch never waits for an fsync.
   */
  private handleBatch(batch: readonly Pending<M, R, I>[]): void {
    const { clock, trace } = this.options;
    const batchNumber = this.batchNumber++;
    const effects: Effect<M, R, O>[] = [];
    for (const pending of batch) {
      const event = this.stamp(pending, clock.nowMs());
      trace?.event(event.now, batchNumber, event, pending._tag === "Receive" ? { wireId: pending.wireId, senderIncarnation: pending.senderIncarnation } : {});
      const result = this.options.step(this.current, event);
      this.current = result.state;
      for (const effect of result.effects) effects.push(effect);
    }
    const firstPersist = effects.findIndex((effect) => effect._tag === "Persist");
    const head = firstPersist < 0 ? effects : effects.slice(0, firstPersist);
    const tail = firstPersist < 0 ? [] : effects.slice(firstPersist);
    const early = this.carryOut(head, batchNumber, 0);
    const records: R[] = [];
    for (const effect of tail) if (effect._tag === "Persist") records.push(effect.record);
    const firstSeq = this.options.log.recordCount + 1;
    let fsyncMs = 0;
    if (records.length > 0) {
      // The batch's events reach the trace before its records reach the disk: a SIGKILL right
      // after the commit then leaves lines enough to replay what was committed.
      trace?.flush();
      const started = clock.nowMs();
      this.options.log.append(records);
      fsyncMs = clock.nowMs() - started;
      trace?.commit(clock.nowMs(), batchNumber, records.length, fsyncMs);
    }
    const late = this.carryOut(tail, batchNumber, firstSeq);
    this.options.onBatch?.(this.current, { events: batch.length, records: records.length, fsyncMs, sends: early.sends + late.sends, replies: early.replies + late.replies });
  }

  /** Sends, replies and alarms, in order; every Persist among or before `effects` is durable already. */
  private carryOut(effects: readonly Effect<M, R, O>[], batchNumber: number, firstSeq: number): { sends: number; replies: number } {
    if (effects.length === 0) return { sends: 0, replies: 0 };
    const { trace, clock } = this.options;
    const now = clock.nowMs();
    let durableSeq = firstSeq;
    const wireIds: number[] = [];
    for (const effect of effects) {
      if (effect._tag === "Send") wireIds.push(this.nextWireId++);
      if (trace === undefined) continue;
      if (effect._tag === "Persist") trace.effect(now, batchNumber, effect, { durableSeq: durableSeq++ });
      else if (effect._tag === "Send") trace.effect(now, batchNumber, effect, { wireId: wireIds.at(-1)! });
      else trace.effect(now, batchNumber, effect);
    }
    // The trace reaches the file before any peer or client can see these effects.
    trace?.flush();
    let sends = 0;
    let replies = 0;
    for (const effect of effects) {
      if (effect._tag === "Send") {
        this.options.send(effect.to, effect.message, wireIds[sends++]!);
      } else if (effect._tag === "Reply") {
        replies += 1;
        this.resolve(effect.requestId, effect.result);
      } else if (effect._tag === "Alarm") {
        this.options.onAlarm(effect);
      }
    }
    return { sends, replies };
  }

  private resolve(requestId: number, result: ClientResult<O>): void {
    const waiter = this.waiters.get(requestId);
    // A reply to a request that timed out already is dropped: that client was told the outcome is unknown.
    if (waiter === undefined) return;
    clearTimeout(waiter.timer);
    this.waiters.delete(requestId);
    waiter.resolve(result);
  }
}

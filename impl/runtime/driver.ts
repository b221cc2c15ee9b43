/**
 * The event loop of a replica process: it feeds `step` one event at a time (never two at
 * once), stamping each with a fresh clock reading when it is handled, and carries out the
 * effects in order. Group commit: the Persist records of a whole batch of steps are written in
 * one transaction with one fsync, and only then are the sends, replies and alarms that follow
 * the batch's first Persist released (those before it go at once). Every Persist therefore is
 * durable before any effect that follows it, except one with `notify` (the leader's own vote):
 * it holds back nothing, is committed at once with its batch, and once that commit is durable the
 * driver feeds the core `VoteDurable`, which alone counts the vote.
 *
 * Pipelined commits: with an asynchronous log, later batches are stepped while an earlier
 * batch's records are being made durable (their records join the storage thread's next group
 * commit), and every effect is released in the order `step` returned it: a batch's effects wait
 * for every earlier batch's commit as well as its own. So heartbeats and grants are stepped as
 * they arrive however long an fsync of megabytes takes, and the rule above holds across batches.
 * Large messages and client requests join a batch only within `batchBytesMax` of the bytes of
 * the batches whose commit is outstanding, so the pipeline holds about one batch of large values
 * (memory, and what later effects wait behind), and any number of small ones.
 *
 * Overtaking: a message that `overtakes` names (the lease's heartbeats and grants, Accepts) needs only the
 * records it `dependsOn` to be durable, not every earlier one. Such sends before their batch's
 * first Persist leave first among the batch's effects, as soon as the commits holding any
 * record they depend on are durable (at once when none is pending), even while earlier batches'
 * unrelated records (a follower's vote for a 1 MiB value, say) are still being synced. So an
 * fsync of megabytes that takes hundreds of milliseconds delays no lease renewal that does not
 * need it. Each such send still never leaves before a record it depends on is durable.
 *
 * Peer traffic first: peer messages and ticks wait in a queue of their own, and every batch takes
 * them before any client request: the `urgent` messages first (heartbeats and their answers),
 * then the tick (so a replica that was slow counts the heartbeats that reached it meanwhile before
 * it judges its timers), then the other messages. So neither a heartbeat's answer nor a leader's
 * heartbeats wait behind the commit of a vote stepped earlier in the same batch (an Accept of
 * 1 MiB, or a proposal made when an Accepted chose a slot). Client requests
 * join a batch only while the batch's bytes stay within `batchBytesMax`, so that no batch holds
 * the event loop for long however large the requests are, and the grants, heartbeats, Promises and
 * Accepts that keep the lease alive never wait behind more than one bounded batch of client work.
 *
 * Values at rest (impl/core/at-rest.ts): a `SendStored` is the Send of its message with its
 * values read back from the durable records, as of the step that emitted it. Each is read when
 * its batch is stepped, before the batch's records go to the log: a record persisted earlier in
 * the same batch is taken from the batch (it is not in the log yet), every other by the log's
 * `read`, which is served in order behind the appends made before it and ahead of this batch's
 * (and of any compaction a snapshot in it would cause). The effect then waits, in its place, for
 * its read as well as for the commits ahead of it. A record the log does not hold stops the
 * replica: the message is never sent without its values, nor with other ones.
 *
 * The key-value store's values at rest (rule V4, proofs/store-at-rest.md): a `ReadEntries` asks
 * for the values its entries name, each in this replica's vote record that wrote it. They are read
 * by the log's `read` when the effect's batch is stepped, in order behind the appends made before
 * it and ahead of this batch's (and of any compaction they cause: the pins the storage thread
 * was sent name every record an entry of this step names), in reads of a bounded size, and each
 * value is checked against its entry (rule V2: `EntryReader.value`) as its read comes back. Once
 * all are back the core is fed one `EntriesRead` with them; nothing else waits. A record the log
 * does not hold, or one V2 refuses, stops the replica: it never serves a value it cannot vouch for.
 *
 * Every queue is bounded: peer messages beyond `eventsQueuedMax` are dropped (as a network
 * would), client requests beyond `requestsPendingMax` are refused at once as overloaded, and
 * a client waits at most `requestTimeoutMs`. A throw from `step` or from storage stops the
 * replica (fail-stop): continuing after either could break the contract above.
 */
import type {
  ClientResult,
  Consistency,
  Effect,
  ReadEntries,
  StoredEntry,
  Event,
  KeptTransfer,
  ReplicaId,
  StepResult,
  TransferRefusal,
  ConfigChange,
  VoteRef,
} from "../core/index.ts";
import type { MonotonicClock } from "./clock.ts";
import type { TraceWriter } from "./trace.ts";

/** The replica core, as the driver sees it. */
export type StepFunction<S, M, R, I, O, H = never> = (state: S, event: Event<M, R, I>) => StepResult<S, M, R, O, H>;

/** Where Persist records go. */
export interface DurableLog<R> {
  /** Append; returns once the records are durable. */
  append(records: readonly R[]): void;
  /**
   * Append, calling `done` once the records are durable (or with the error that kept them from
   * it); appends become durable, and are acknowledged, in the order made. When present the driver
   * uses it, keeps the event loop free while the disk works, and steps later batches meanwhile.
   */
  appendAsync?(records: readonly R[], done: (error: Error | null) => void): void;
  /**
   * Read back the records of `keys` (see {@link StoredReader}) as they stand after every append
   * made so far, and before any made later, or any compaction one of those causes; `done` gets
   * them in the order of `keys`, or an error naming a key the log does not hold. Needed only by a
   * driver that reads values at rest.
   */
  read?(keys: readonly string[], done: (error: Error | null, records: readonly R[]) => void): void;
  readonly recordCount: number;
}

/** How the values at rest of a `SendStored` effect's message are found (impl/core/at-rest.ts). */
export interface StoredReader<M, R, H> {
  /** The keys of the records that hold `message`'s values at rest (the log's `read`). */
  keys(message: H): readonly string[];
  /** The key of `record` (null: none), to find a record persisted in the same batch. */
  keyOf(record: R): string | null;
  /**
   * The `keyOf` of the record that read key `key` reads from (a part of a record: a state
   * transfer's chunk of a snapshot record). Default: `key` itself.
   */
  recordKey?(key: string): string;
  /** `message` with its values taken from `records`, those of `keys(message)` in order; throws if one does not fit. */
  resolve(message: H, records: readonly R[]): M;
}

/**
 * How the values of the store a `ReadEntries` effect names are found (rule V4, proofs/store-at-rest.md).
 */
export interface EntryReader<R> {
  /** The key of the vote record that holds the value `entry` names (the log's `read`). */
  key(entry: StoredEntry): string;
  /**
   * The value `entry` names, from `record`, the one read by `key(entry)`: rule V2 (the record is
   * that vote, its command at the entry's index wrote the entry's key, with the entry's length
   * and hashes); throws, naming what differs, otherwise.
   */
  value(entry: StoredEntry, record: R): string;
}

/**
 * Code units of the store's values one read of a `ReadEntries` asks the log for at most (a value
 * longer than this is read alone): each read's answer crosses from the storage thread as one message.
 */
export const entriesReadCharsMax = 4 * 1024 * 1024;

/**
 * Which messages may leave before earlier batches' records are durable, and what each still
 * needs durable first. It is told every record once durable (the recovered ones first), in order.
 */
export interface Overtaking<M, R> {
  overtakes(message: M): boolean;
  durable(record: R): void;
  /** Whether `message` (one that `overtakes`) needs `record`, not yet durable, durable before it leaves. */
  dependsOn(message: M, record: R): boolean;
}

/** What a client submits. */
export interface Submission<I> {
  readonly input: I;
  readonly consistency: Consistency;
  readonly clientId?: string | undefined;
  readonly seq?: number | undefined;
  /** Its size (the request body), in bytes, for `batchBytesMax`. Default 0. */
  readonly bytes?: number | undefined;
}

/** Facts about one batch, for metrics. */
export interface BatchReport {
  readonly events: number;
  /** Records the batch persisted (their commits are reported by `onCommit`). */
  readonly records: number;
  readonly sends: number;
  readonly replies: number;
}

/** Options of {@link Driver}. Limits state their defaults. */
export interface DriverOptions<S, M, R, I, O, H = never> {
  readonly step: StepFunction<S, M, R, I, O, H>;
  /**
   * How a `SendStored` effect's message is read back (see "Values at rest" above; the log must
   * have `read`). Default: none (a `SendStored` then stops the replica: the core was configured
   * with `valuesAtRest` and nothing reads the records back).
   */
  readonly stored?: StoredReader<M, R, H>;
  /** Called with the number of values read back from the log (not from the batch) for each `SendStored`. */
  readonly onStoredRead?: (values: number) => void;
  /**
   * How the store's values a `ReadEntries` effect names are read back (see "The key-value store's
   * values at rest" above; the log must have `read`). Default: none (a `ReadEntries` then stops
   * the replica: the core was configured with `storeAtRestCharsMin` and nothing reads them back).
   */
  readonly entries?: EntryReader<R>;
  /** Called with the number of values and their code units once a `ReadEntries` is read back. */
  readonly onEntriesRead?: (values: number, chars: number) => void;
  readonly state: S;
  readonly log: DurableLog<R>;
  readonly clock: MonotonicClock;
  /** Carry out a Send; returns false when the network dropped it. */
  readonly send: (to: ReplicaId, message: M, wireId: number) => boolean;
  /**
   * Put the sends carried out so far on the wire (the transport may hold them to write them together). Default:
   * nothing.
   */
  readonly flushSends?: () => void;
  /**
   * Records that no later effect depends on (a recovery aid such as the core's `chosen`
   * records): effects after them need not wait for them to be durable. They are still committed
   * with their batch, in order. Default: none (every Persist is a barrier).
   */
  readonly deferrable?: (record: R) => boolean;
  /**
   * Longest a deferrable record waits for another commit to join before it is committed alone, in milliseconds. Default
   * 100.
   */
  readonly deferredCommitMs?: number;
  readonly onAlarm: (alarm: Extract<Effect<M, R, O>, { _tag: "Alarm" }>) => void;
  /** A state transfer refused and dropped (catch-up starts over): say why. Default: nothing. */
  readonly onTransferRefused?: (refusal: TransferRefusal) => void;
  /** Called when the replica must stop: `step` or storage threw. */
  readonly onFatal: (error: unknown) => void;
  /** Called after every batch with the new state. */
  readonly onBatch?: (state: S, report: BatchReport) => void;
  /**
   * The next piece of the state transfer kept across the restart (`start`'s `kept`) for the core
   * to take back, read from the store, or null: the core takes none now (it took the last, or
   * stopped taking them: impl/core/transfer.ts, `resumingKept`). Asked after each batch while no
   * piece waits, so that one piece is in memory at a time and each is a step of its own between
   * ticks and messages, never the whole kept transfer in one event. Default: none.
   */
  readonly keptPiece?: (state: S) => KeptPiece | null;
  /**
   * Called once each commit is durable, with the records it wrote (those of earlier batches that
   * joined it included) and its duration from the hand-over of its records until durable (earlier
   * commits' included), in milliseconds. A batch whose records joined a later commit, or whose
   * commit it does not wait for (the leader's own vote), reports none in `onBatch`.
   */
  readonly onCommit?: (records: number, fsyncMs: number) => void;
  readonly trace?: TraceWriter<M, R, I, O> | undefined;
  /**
   * Tick period, in milliseconds, or the period the core's state asks for: the next tick is queued
   * once a tick has been stepped, at the period of the state it left (a leader's next heartbeat,
   * say), and a batch whose state asks for a shorter one gets its next tick within it. Default 10
   * (5 cost twice the idle CPU, about 7% of a core per replica, for timers no coarser than needed:
   * heartbeats every 50 ms, elections after 400 ms).
   */
  readonly tickIntervalMs?: number | ((state: S) => number);
  /** Events handled in one batch (one commit). Default 256. */
  readonly batchEventsMax?: number;
  /**
   * Bytes of peer messages and client requests handled in one batch (at least one event always
   * goes), in bytes. Default 1 MiB: a batch's work (decoding, hashing, encoding and writing its
   * values) then stays within milliseconds, and peer messages never wait long behind client work.
   */
  readonly batchBytesMax?: number;
  /** Peer messages queued before more are dropped. Default 10000. */
  readonly eventsQueuedMax?: number;
  /** Messages that may leave before earlier batches' records are durable (see the module comment). Default: none. */
  readonly overtaking?: Overtaking<M, R>;
  /**
   * Peer messages stepped first in their batch, ahead of the other messages taken with them (the
   * lease's heartbeats and their answers): their answers then come before the batch's first
   * Persist and leave without waiting for its commit (see "Overtaking"). Default: none.
   */
  readonly urgent?: (message: M) => boolean;
  /**
   * Commits outstanding (records handed to the log, not yet durable) before no further batch is stepped. Default 16.
   */
  readonly commitsInFlightMax?: number;
  /** Client requests in flight before more are refused. Default 1000. */
  readonly requestsPendingMax?: number;
  /** Longest wait for a reply, in milliseconds. Default 10000. */
  readonly requestTimeoutMs?: number;
}

/** A piece of a kept transfer's chunks (a `KeptChunks` event but for its clock reading). */
export interface KeptPiece {
  readonly offset: number;
  readonly chunks: readonly string[];
  readonly last: boolean;
}

type Pending<M, R, I> =
  | {
      readonly _tag: "Receive";
      readonly from: ReplicaId;
      readonly message: M;
      readonly wireId: number;
      readonly senderIncarnation: string;
      readonly bytes: number;
    }
  | { readonly _tag: "Tick" }
  | { readonly _tag: "ClientRequest"; readonly requestId: number; readonly submission: Submission<I> }
  | { readonly _tag: "Reconfigure"; readonly requestId: number; readonly change: ConfigChange }
  | { readonly _tag: "OpenSession"; readonly requestId: number }
  | { readonly _tag: "Recover"; readonly records: readonly R[]; readonly kept?: KeptTransfer }
  | ({ readonly _tag: "KeptChunks" } & KeptPiece)
  | { readonly _tag: "VoteDurable"; readonly vote: VoteRef }
  | { readonly _tag: "FeaturesKnown"; readonly level: number }
  | { readonly _tag: "EntriesRead"; readonly entries: readonly StoredEntry[]; readonly values: readonly string[] };

interface Waiter<O> {
  readonly resolve: (result: ClientResult<O>) => void;
  /** When it times out (performance.now()). */
  readonly deadline: number;
}

/** What waits for a batch's values at rest to be read back (see `readStored`). */
interface Gate {
  open: boolean;
  readonly waiting: (() => void)[];
}

/** Run `run` once `gate` is open (at once when there is none, or it is open). */
function afterGate(gate: Gate | null, run: () => void): void {
  if (gate === null || gate.open) run();
  else gate.waiting.push(run);
}

/** The gate of a batch's values at rest (`read`) when `segment` holds a SendStored that waits for it, else null. */
function gateOf(read: Gate | null, segment: readonly { readonly _tag: string }[]): Gate | null {
  return read !== null && segment.some((e) => e._tag === "SendStored") ? read : null;
}

/** Shared empty lists and a callback that does nothing (a batch allocates none of them). */
const noEffects: readonly never[] = [];
const noRecords: readonly never[] = [];
const noNotices: readonly VoteRef[] = [];
const nothing = (): void => undefined;

/** A peer message at most this large, in bytes, may overtake larger ones (see `nextBatch`). */
const smallMessageBytes = 4096;

/** Drives one replica core. */
export class Driver<S, M, R, I, O, H = never> {
  private current: S;
  /** Peer messages, the tick and Recover: every batch takes these first. */
  private readonly queue: Pending<M, R, I>[] = [];
  /** Client requests and membership changes, taken after the peer events within `batchBytesMax`. */
  private readonly clients: Pending<M, R, I>[] = [];
  /**
   * Clients waiting for a reply, by request id. Every wait is `requestTimeoutMs` long, so the map's
   * order (insertion) is the order of their deadlines: one timer, for the oldest, serves them all.
   */
  private readonly waiters = new Map<number, Waiter<O>>();
  private expiry: NodeJS.Timeout | null = null;
  private nextRequestId = 1;
  private nextWireId = 0;
  private batchNumber = 0;
  private tickQueued = false;
  /** A piece of the kept transfer waits in the queue (`keptPiece`). */
  private keptQueued = false;
  private scheduled = false;
  /** Commits handed to the log and not yet durable. */
  private commitsInFlight = 0;
  /** Bytes of peer messages and client requests in batches whose commit is outstanding (see `nextBatch`). */
  private bytesInFlight = 0;
  /**
   * Effects waiting for their turn, in the order `step` returned them: the front segment runs as
   * soon as it is ready (a head at once, a tail once its commit is durable), and no segment runs
   * before the ones ahead of it.
   */
  private readonly outbox: { ready: boolean; run: () => void }[] = [];
  /** Commits handed to the log and not yet durable, oldest first, with their records and what waits for each. */
  private readonly pendingCommits: {
    id: number;
    records: readonly R[];
    durable: boolean;
    finish: () => void;
    then: (() => void)[];
  }[] = [];
  private nextCommitId = 1;
  /** Deferrable records waiting for the next commit (see `handleBatch`), and the last batch they came from. */
  private deferred: R[] = [];
  private deferredBatch = -1;
  private deferredTimer: NodeJS.Timeout | null = null;
  /** The message each `SendStored` effect stands for, once read back (see `readStored`). */
  private readonly storedSends = new WeakMap<object, M>();
  private failed = false;
  private stopped = false;
  private ticker: NodeJS.Timeout | null = null;
  /** When the next tick is queued (performance.now()). */
  private tickDueAt = 0;
  private droppedEvents = 0;
  /** Bytes of the batch `nextBatch` returned last. */
  private batchBytes = 0;
  private readonly batchEventsMax: number;
  private readonly batchBytesMax: number;
  private readonly commitsInFlightMax: number;
  private readonly eventsQueuedMax: number;
  private readonly requestsPendingMax: number;
  private readonly requestTimeoutMs: number;

  constructor(private readonly options: DriverOptions<S, M, R, I, O, H>) {
    this.current = options.state;
    this.batchEventsMax = options.batchEventsMax ?? 256;
    this.batchBytesMax = options.batchBytesMax ?? 1024 * 1024;
    this.commitsInFlightMax = options.commitsInFlightMax ?? 16;
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
    return {
      events: this.queue.length + this.clients.length,
      requests: this.waiters.size,
      droppedEvents: this.droppedEvents,
    };
  }

  /**
   * Hand the core its durable records (the first event), with the state transfer the store kept
   * across the restart if any (`kept`: the core resumes it), then start ticking.
   */
  start(records: readonly R[], kept?: KeptTransfer): void {
    for (const record of records) this.options.overtaking?.durable(record);
    this.enqueue({ _tag: "Recover", records, ...(kept === undefined ? {} : { kept }) });
    this.setTicker(this.tickInterval());
  }

  /** The tick period the current state asks for. */
  private tickInterval(): number {
    const interval = this.options.tickIntervalMs ?? 10;
    return typeof interval === "number" ? interval : interval(this.current);
  }

  /** Queue the next tick in `delayMs`, and after it the one after, at the period the state then asks for. */
  private setTicker(delayMs: number): void {
    if (this.ticker !== null) clearTimeout(this.ticker);
    this.tickDueAt = performance.now() + delayMs;
    this.ticker = setTimeout(() => {
      this.ticker = null;
      if (this.stopped) return;
      if (!this.tickQueued) {
        this.tickQueued = true;
        this.enqueue({ _tag: "Tick" });
      }
      // A period the state asks for is taken from the state the tick leaves (runBatch).
      if (typeof this.options.tickIntervalMs !== "function") this.setTicker(this.tickInterval());
    }, delayMs);
  }

  /** Stop handling events; waiting clients get `unavailable`. */
  stop(): void {
    if (this.deferredTimer !== null) clearTimeout(this.deferredTimer);
    this.deferredTimer = null;
    // A clean stop keeps the deferred records too (after a failure nothing more is written),
    // unless an earlier commit is still outstanding: its commit line never comes (what waits for
    // it never happens, below), and a later batch's commit line without it would say its records
    // reached the disk in another order than the trace shows.
    const outstanding = this.pendingCommits.some((commit) => !commit.durable);
    if (!this.stopped && !this.failed && this.deferred.length > 0 && !outstanding) {
      const records = this.deferred;
      this.deferred = [];
      try {
        this.options.log.append(records);
        this.options.trace?.commit(this.options.clock.nowMs(), this.deferredBatch, records.length, 0);
      } catch {
        // Deferrable records are a recovery aid: losing them at a stop costs a catch-up, no more.
      }
    }
    this.stopped = true;
    if (this.ticker !== null) clearTimeout(this.ticker);
    this.ticker = null;
    if (this.expiry !== null) clearTimeout(this.expiry);
    this.expiry = null;
    for (const [requestId, waiter] of this.waiters) {
      this.waiters.delete(requestId);
      waiter.resolve({ _tag: "unavailable", reason: "replica is shutting down", outcomeUnknown: true });
    }
    this.queue.length = 0;
    this.clients.length = 0;
    // What waited for a commit never happens, as after a crash.
    this.outbox.length = 0;
    this.pendingCommits.length = 0;
  }

  /**
   * A message from a peer (sent under `wireId` by the sender's `senderIncarnation`; `bytes` long on
   * the wire). Dropped when the queue is full.
   */
  receive(from: ReplicaId, message: M, wireId: number, senderIncarnation = "", bytes = 0): void {
    if (this.queue.length >= this.eventsQueuedMax) {
      this.droppedEvents += 1;
      return;
    }
    this.enqueue({ _tag: "Receive", from, message, wireId, senderIncarnation, bytes });
  }

  /**
   * Tell the core the feature level every member is known to execute (its `FeaturesKnown` event),
   * in order with the peer messages and ticks; never dropped.
   */
  featuresKnown(level: number): void {
    if (!this.stopped) this.enqueue({ _tag: "FeaturesKnown", level });
  }

  /** Submit a client request; resolves with the core's reply, or `unavailable` on overload or timeout. */
  submit(submission: Submission<I>): Promise<ClientResult<O>> {
    return this.request((requestId) => ({ _tag: "ClientRequest", requestId, submission }));
  }

  /** Ask for a membership change (the core's Reconfigure event); resolves like {@link submit}. */
  reconfigure(change: ConfigChange): Promise<ClientResult<O>> {
    return this.request((requestId) => ({ _tag: "Reconfigure", requestId, change }));
  }

  /** Ask the service to open a session (level 3, the core's OpenSession event); resolves like {@link submit}. */
  openSession(): Promise<ClientResult<O>> {
    return this.request((requestId) => ({ _tag: "OpenSession", requestId }));
  }

  private request(pending: (requestId: number) => Pending<M, R, I>): Promise<ClientResult<O>> {
    if (this.stopped)
      return Promise.resolve({ _tag: "unavailable", reason: "replica is shutting down", outcomeUnknown: false });
    if (this.waiters.size >= this.requestsPendingMax) {
      return Promise.resolve({
        _tag: "unavailable",
        reason: `overloaded: ${this.requestsPendingMax} requests pending`,
        outcomeUnknown: false,
      });
    }
    const requestId = this.nextRequestId++;
    return new Promise((resolve) => {
      this.waiters.set(requestId, { resolve, deadline: performance.now() + this.requestTimeoutMs });
      if (this.expiry === null) this.armExpiry(this.requestTimeoutMs);
      this.enqueue(pending(requestId));
    });
  }

  /** Time out the waits whose deadline passed (the oldest first), then wait for the next one's. */
  private armExpiry(delayMs: number): void {
    this.expiry = setTimeout(() => {
      this.expiry = null;
      const now = performance.now();
      for (const [requestId, waiter] of this.waiters) {
        if (waiter.deadline > now) return this.armExpiry(waiter.deadline - now);
        this.waiters.delete(requestId);
        waiter.resolve({
          _tag: "unavailable",
          reason: `no reply within ${this.requestTimeoutMs} ms`,
          outcomeUnknown: true,
        });
      }
    }, delayMs);
  }

  private enqueue(pending: Pending<M, R, I>): void {
    if (this.stopped) return;
    if (pending._tag === "ClientRequest" || pending._tag === "Reconfigure" || pending._tag === "OpenSession")
      this.clients.push(pending);
    else this.queue.push(pending);
    this.schedule();
  }

  /**
   * Run the next batch soon, unless one is scheduled or too many commits are outstanding (each schedules when done).
   */
  private schedule(): void {
    if (this.scheduled || this.commitsInFlight >= this.commitsInFlightMax) return;
    if (this.queue.length === 0 && !this.mayJoin(0, this.clientBytes(this.clients[0]))) return;
    this.scheduled = true;
    setImmediate(this.runNextBatch);
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
        return {
          _tag: "ClientRequest",
          now,
          requestId: pending.requestId,
          clientId: s.clientId,
          seq: s.seq,
          input: s.input,
          consistency: s.consistency,
        };
      }
      case "Reconfigure":
        return { _tag: "Reconfigure", now, requestId: pending.requestId, change: pending.change };
      case "OpenSession":
        return { _tag: "OpenSession", now, requestId: pending.requestId };
      case "Recover":
        return {
          _tag: "Recover",
          now,
          records: pending.records,
          ...(pending.kept === undefined ? {} : { kept: pending.kept }),
        };
      case "KeptChunks":
        this.keptQueued = false;
        return { _tag: "KeptChunks", now, offset: pending.offset, chunks: pending.chunks, last: pending.last };
      case "VoteDurable":
        return { _tag: "VoteDurable", now, slot: pending.vote.slot, ballot: pending.vote.ballot };
      case "FeaturesKnown":
        return { _tag: "FeaturesKnown", now, level: pending.level };
      case "EntriesRead":
        return { _tag: "EntriesRead", now, entries: pending.entries, values: pending.values };
    }
  }

  /** After a batch: the next piece of the kept transfer, if the core takes one and none waits (`keptPiece`). */
  private feedKept(): void {
    const next = this.options.keptPiece;
    if (next === undefined || this.keptQueued || this.stopped) return;
    const piece = next(this.current);
    if (piece === null) return;
    this.keptQueued = true;
    this.enqueue({ _tag: "KeptChunks", offset: piece.offset, chunks: piece.chunks, last: piece.last });
  }

  /** `runBatch`, bound once (not a closure per batch). */
  private readonly runNextBatch = (): void => this.runBatch();

  private runBatch(): void {
    this.scheduled = false;
    if (this.stopped || this.commitsInFlight >= this.commitsInFlightMax) return;
    try {
      const batch = this.nextBatch();
      if (batch.length === 0) return;
      this.handleBatch(batch);
      this.feedKept();
      // The next tick once this one is stepped; and a state that asks for a shorter period (a new
      // leader, say) gets its next tick within it.
      if (typeof this.options.tickIntervalMs === "function" && !this.stopped) {
        const period = this.tickInterval();
        if (this.ticker === null ? !this.tickQueued : performance.now() + period < this.tickDueAt - 1)
          this.setTicker(period);
      }
    } catch (error) {
      this.fail(error);
      return;
    }
    this.schedule();
  }

  /**
   * The next batch: peer events in arrival order with the tick after the messages, then client
   * requests in arrival order, within `batchEventsMax` events and `batchBytesMax` bytes counted
   * with those of the batches whose commit is outstanding (the first event always goes, whatever
   * its size, when no bytes are outstanding). So a follower stepping Accepts of large values
   * holds about one batch of them in the pipeline, not sixteen, while the heartbeats and grants
   * between them are stepped at once.
   */
  private nextBatch(): Pending<M, R, I>[] {
    const batch: Pending<M, R, I>[] = [];
    let bytes = 0;
    let tick: Pending<M, R, I> | null = null;
    let taken = 0;
    // Small messages (heartbeats, grants, votes) overtake large ones that do not fit this batch:
    // the network may reorder messages anyway, and a heartbeat must not wait behind megabytes of
    // Accepts, or the leader's lease and the election timers would depend on the load.
    let left: Pending<M, R, I>[] | null = null;
    for (const pending of this.queue) {
      const size = pending._tag === "Receive" ? pending.bytes : 0;
      if (taken >= this.batchEventsMax || !(size <= smallMessageBytes || this.mayJoin(bytes, size, taken))) {
        (left ??= []).push(pending);
        continue;
      }
      taken += 1;
      bytes += size;
      if (pending._tag === "Tick") tick = pending;
      else batch.push(pending);
    }
    this.queue.length = 0;
    if (left !== null) for (const pending of left) this.queue.push(pending);
    this.urgentFirst(batch, tick);
    let clients = 0;
    for (const pending of this.clients) {
      const size = this.clientBytes(pending) ?? 0;
      if (taken >= this.batchEventsMax || !this.mayJoin(bytes, size, taken)) break;
      taken += 1;
      clients += 1;
      bytes += size;
      batch.push(pending);
    }
    if (clients > 0) this.clients.splice(0, clients);
    this.batchBytes = bytes;
    return batch;
  }

  /**
   * Order the peer events of `batch` and the `tick` (if any): a Recover and the driver's own
   * FeaturesKnown and KeptChunks first, then the urgent messages, then the tick, then the other messages, each
   * group in arrival order. Without
   * `urgent`, the tick goes after every message. Stepping a message before another that arrived
   * earlier is a reordering the network may make anyway (the core assumes no order), and a tick
   * before a message is a timer that fired a little earlier.
   */
  private urgentFirst(batch: Pending<M, R, I>[], tick: Pending<M, R, I> | null): void {
    const urgent = this.options.urgent;
    if (urgent === undefined) {
      if (tick !== null) batch.push(tick);
      return;
    }
    // One event alone has no order to change (the batch of a lone write, most often).
    if (batch.length + (tick === null ? 0 : 1) <= 1) {
      if (tick !== null) batch.push(tick);
      return;
    }
    const isUrgent = (p: Pending<M, R, I>): boolean => p._tag === "Receive" && urgent(p.message);
    const own = (p: Pending<M, R, I>): boolean =>
      p._tag === "Recover" || p._tag === "FeaturesKnown" || p._tag === "KeptChunks";
    const recover = batch.filter(own);
    const first = batch.filter(isUrgent);
    const rest = batch.filter((p) => !own(p) && !isUrgent(p));
    batch.length = 0;
    batch.push(...recover, ...first, ...(tick === null ? [] : [tick]), ...rest);
  }

  /** The size of a client request, for `batchBytesMax`; undefined for none. */
  private clientBytes(pending: Pending<M, R, I> | undefined): number | undefined {
    if (pending === undefined) return undefined;
    return pending._tag === "ClientRequest" ? (pending.submission.bytes ?? 0) : 0;
  }

  /**
   * Whether an event of `size` bytes (undefined: there is none) may join a batch holding `bytes`
   * in `taken` events: always as the first event while no bytes wait for a commit, else within
   * `batchBytesMax` of the batch's bytes and those outstanding.
   */
  private mayJoin(bytes: number, size: number | undefined, taken = 0): boolean {
    if (size === undefined) return false;
    if (taken === 0 && this.bytesInFlight === 0) return true;
    return this.bytesInFlight + bytes + size <= this.batchBytesMax;
  }

  private fail(error: unknown): void {
    this.failed = true;
    this.stop();
    this.options.onFatal(error);
  }

  /**
   * Step every event; carry out the effects that precede the batch's first (non-deferrable)
   * Persist as soon as every earlier batch's effects went (at once when none wait); commit every
   * record of the batch in one transaction; then carry out the rest in order once the commit is
   * durable. So a lease read answered before any Persist of its batch never waits for this
   * batch's fsync. With an asynchronous log further batches are stepped meanwhile (see the
   * module comment), and their effects queue behind these.
   *
   * A batch whose records are all deferrable waits for nothing: its records join the next
   * commit (written first, in order), or are committed on their own after `deferredCommitMs`.
   */
  private handleBatch(batch: readonly Pending<M, R, I>[]): void {
    const { clock, trace } = this.options;
    const batchNumber = this.batchNumber++;
    const batchBytes = this.batchBytes;
    // A lone event's effects are taken as `step` returned them (nothing here changes them).
    let effects: readonly Effect<M, R, O, H>[] = noEffects;
    let gathered: Effect<M, R, O, H>[] | null = null;
    for (const pending of batch) {
      const event = this.stamp(pending, clock.nowMs());
      trace?.event(
        event.now,
        batchNumber,
        event,
        pending._tag === "Receive" ? { wireId: pending.wireId, senderIncarnation: pending.senderIncarnation } : {},
      );
      const result = this.options.step(this.current, event);
      this.current = result.state;
      if (result.effects.length === 0) continue;
      if (effects.length === 0) effects = result.effects;
      else {
        if (gathered === null) effects = gathered = [...effects];
        for (const effect of result.effects) gathered.push(effect);
      }
    }
    const after = this.current;
    // A batch that did nothing but change the state (a vote that chose nothing, most ticks).
    if (effects.length === 0) {
      const report = { events: batch.length, records: 0, sends: 0, replies: 0 };
      if (this.outbox.length === 0) this.options.onBatch?.(after, report);
      else this.release(() => this.options.onBatch?.(after, report));
      return;
    }
    // One pass over the effects: the barrier (the first Persist that is neither the leader's own
    // vote nor deferrable), the records, the own votes' notices, the head's overtaking sends.
    const { deferrable, overtaking } = this.options;
    let barrier = -1;
    let headRecords = 0;
    let stored = false;
    let records: R[] | null = null;
    let notices: VoteRef[] | null = null;
    let first: Effect<M, R, O, H>[] | null = null;
    for (let i = 0; i < effects.length; i++) {
      const effect = effects[i]!;
      if (effect._tag === "Persist") {
        (records ??= []).push(effect.record);
        if (effect.notify !== undefined) (notices ??= []).push(effect.notify);
        else if (barrier < 0 && deferrable?.(effect.record) !== true) barrier = i;
        if (barrier < 0) headRecords += 1;
      } else if (effect._tag === "SendStored") stored = true;
      // Read as of now, before this batch's records go to the log; nothing waits for it.
      else if (effect._tag === "ReadEntries") this.readEntries(effect);
      // The head's overtaking sends go first (docs/trace-format.md), then the rest of it in order.
      else if (barrier < 0 && effect._tag === "Send" && overtaking?.overtakes(effect.message) === true)
        (first ??= []).push(effect);
    }
    const head = barrier < 0 ? effects : effects.slice(0, barrier);
    const tail = barrier < 0 ? noEffects : effects.slice(barrier);
    const batchRecords = records ?? noRecords;
    const firstSeq = this.options.log.recordCount + this.deferred.length + 1;
    // What `onBatch` gets once every effect of the batch went (carryOut counts them in).
    const counts = { events: batch.length, records: batchRecords.length, sends: 0, replies: 0 };
    const report = (): void => this.options.onBatch?.(after, counts);
    // Values at rest are read as of now, before this batch's records go to the log.
    const read = stored ? this.readStored(effects) : null;
    const overtakers = first;
    const rest = overtakers === null ? head : head.filter((e) => !overtakers.includes(e));
    // Idempotent: the rest of the head runs it first if the commit it waits for has not yet (the
    // rest waits for every earlier commit, so the overtakers may go then too).
    let overtook = overtakers === null;
    const overtake = (): void => {
      if (overtook || this.stopped) return;
      overtook = true;
      this.carryOut(overtakers!, batchNumber, firstSeq, counts);
    };
    if (overtakers !== null) {
      const needs = this.latestCommitNeeded(overtakers);
      if (needs === null) overtake();
      else needs.then.push(overtake);
    }
    if (tail.length === 0) {
      if (notices !== null) this.commitNow(batchRecords, batchNumber, batchBytes, notices, nothing);
      else if (batchRecords.length > 0) this.defer(batchRecords, batchNumber);
      this.release(
        () => {
          overtake();
          this.carryOut(rest, batchNumber, firstSeq, counts);
          report();
        },
        gateOf(read, rest),
      );
      return;
    }
    this.release(
      () => {
        overtake();
        this.carryOut(rest, batchNumber, firstSeq, counts);
      },
      gateOf(read, rest),
    );
    const held = { ready: false, run: nothing };
    this.outbox.push(held);
    this.commitNow(batchRecords, batchNumber, batchBytes, notices ?? noNotices, () => {
      held.run = () => {
        this.carryOut(tail, batchNumber, firstSeq + headRecords, counts);
        report();
      };
      afterGate(gateOf(read, tail), () => {
        held.ready = true;
        this.drain();
      });
    });
  }

  /**
   * Commit the deferred records and `records` now; once durable, feed the core a `VoteDurable` for
   * each of `notices`, in order, and call `then`.
   */
  private commitNow(
    records: readonly R[],
    batchNumber: number,
    batchBytes: number,
    notices: readonly VoteRef[],
    then: (fsyncMs: number) => void,
  ): void {
    const all = this.deferred.length === 0 ? records : this.deferred.concat(records);
    if (this.deferred.length > 0) this.deferred = [];
    this.bytesInFlight += batchBytes;
    this.commit(all, batchNumber, true, (fsyncMs) => {
      this.bytesInFlight -= batchBytes;
      for (const vote of notices) this.enqueue({ _tag: "VoteDurable", vote });
      then(fsyncMs);
    });
  }

  /**
   * Read back the values at rest of the `SendStored` effects among `effects` (see "Values at
   * rest" above), into `storedSends`; null when there are none, else the gate that opens once
   * every one is read (at once when none needed the log).
   */
  private readStored(effects: readonly Effect<M, R, O, H>[]): Gate | null {
    if (!effects.some((e) => e._tag === "SendStored")) return null;
    const { stored, log } = this.options;
    if (stored === undefined) throw new Error("a SendStored effect, but the driver has no reader of values at rest");
    const gate: Gate = { open: false, waiting: [] };
    // The records persisted before each SendStored that the log has not been handed yet.
    const unposted = new Map<string, R>();
    const note = (record: R): void => {
      const key = stored.keyOf(record);
      if (key !== null) unposted.set(key, record);
    };
    this.deferred.forEach(note);
    const fromLog: { effect: Effect<M, R, O, H> & { _tag: "SendStored" }; keys: string[]; found: (R | null)[] }[] = [];
    for (const effect of effects) {
      if (effect._tag === "Persist") note(effect.record);
      if (effect._tag !== "SendStored") continue;
      const keys = stored.keys(effect.message);
      const found = keys.map((key) => unposted.get(stored.recordKey?.(key) ?? key) ?? null);
      if (found.every((record) => record !== null)) this.storedSends.set(effect, stored.resolve(effect.message, found));
      else fromLog.push({ effect, keys: keys.filter((_, i) => found[i] === null), found });
    }
    if (fromLog.length === 0) {
      gate.open = true;
      return gate;
    }
    if (log.read === undefined) throw new Error("a SendStored effect, but the log cannot read records back");
    log.read(
      fromLog.flatMap((f) => f.keys),
      (error, records) => {
        if (this.stopped) return;
        try {
          if (error !== null) throw new Error(`reading values at rest back: ${error.message}`, { cause: error });
          let next = 0;
          for (const { effect, found } of fromLog) {
            const whole = found.map((record) => record ?? records[next++]!);
            this.storedSends.set(effect, stored.resolve(effect.message, whole));
          }
          this.options.onStoredRead?.(next);
          gate.open = true;
          for (const run of gate.waiting.splice(0)) run();
        } catch (failure) {
          this.fail(failure);
        }
      },
    );
    return gate;
  }

  /**
   * Read back the values a `ReadEntries` names (see "The key-value store's values at rest" above),
   * in reads of at most `entriesReadCharsMax` code units, each record once, and feed the core an
   * `EntriesRead` with them once every read is back.
   */
  private readEntries(effect: ReadEntries): void {
    const { entries: reader, log } = this.options;
    if (reader === undefined)
      throw new Error("a ReadEntries effect, but the driver has no reader of the store's values");
    if (log.read === undefined) throw new Error("a ReadEntries effect, but the log cannot read records back");
    const entries = effect.entries;
    const values: string[] = new Array<string>(entries.length);
    if (entries.length === 0) return this.enqueue({ _tag: "EntriesRead", entries, values });
    // The entries by the record that holds them, in the effect's order.
    const byKey = new Map<string, number[]>();
    for (let i = 0; i < entries.length; i++) {
      const key = reader.key(entries[i]!);
      const at = byKey.get(key);
      if (at === undefined) byKey.set(key, [i]);
      else at.push(i);
    }
    const reads: { keys: string[]; chars: number }[] = [];
    for (const [key, at] of byKey) {
      let chars = 0;
      for (const i of at) chars += entries[i]!.length;
      const last = reads[reads.length - 1];
      if (last === undefined || last.chars + chars > entriesReadCharsMax) reads.push({ keys: [key], chars });
      else {
        last.keys.push(key);
        last.chars += chars;
      }
    }
    let left = reads.length;
    for (const { keys } of reads)
      log.read(keys, (error, records) => {
        if (this.stopped) return;
        try {
          if (error !== null) throw new Error(`reading the store's values back: ${error.message}`, { cause: error });
          keys.forEach((key, k) => {
            const record = records[k];
            if (record === undefined) throw new Error(`reading the store's values back: no record ${key}`);
            for (const i of byKey.get(key)!) values[i] = reader.value(entries[i]!, record);
          });
          left -= 1;
          if (left > 0) return;
          let chars = 0;
          for (const value of values) chars += value.length;
          this.options.onEntriesRead?.(values.length, chars);
          this.enqueue({ _tag: "EntriesRead", entries, values });
        } catch (failure) {
          this.fail(failure);
        }
      });
  }

  /** The latest pending commit holding a record that one of `sends` depends on; null when none. */
  private latestCommitNeeded(sends: readonly Effect<M, R, O, H>[]): (typeof this.pendingCommits)[number] | null {
    const overtaking = this.options.overtaking!;
    for (let i = this.pendingCommits.length - 1; i >= 0; i--) {
      const commit = this.pendingCommits[i]!;
      if (commit.durable) continue;
      for (const effect of sends) {
        if (effect._tag !== "Send") continue;
        if (commit.records.some((record) => overtaking.dependsOn(effect.message, record))) return commit;
      }
    }
    return null;
  }

  /** Carry out `run` once every segment ahead of it has run and `gate` (if any) is open (at once if nothing waits). */
  private release(run: () => void, gate: Gate | null = null): void {
    if (gate === null || gate.open) {
      if (this.outbox.length === 0) return run();
      return void this.outbox.push({ ready: true, run });
    }
    const segment = { ready: false, run };
    this.outbox.push(segment);
    afterGate(gate, () => {
      segment.ready = true;
      this.drain();
    });
  }

  /** Run the ready segments at the front of the outbox, in order. */
  private drain(): void {
    while (this.outbox.length > 0 && this.outbox[0]!.ready && !this.stopped) this.outbox.shift()!.run();
  }

  /** Hold deferrable records for the next commit; commit them alone if none comes soon. */
  private defer(records: readonly R[], batchNumber: number): void {
    for (const record of records) this.deferred.push(record);
    this.deferredBatch = batchNumber;
    if (this.deferredTimer !== null) return;
    this.deferredTimer = setTimeout(() => {
      this.deferredTimer = null;
      if (this.stopped || this.deferred.length === 0) return;
      const all = this.deferred;
      this.deferred = [];
      this.commit(all, this.deferredBatch, false, () => undefined);
    }, this.options.deferredCommitMs ?? 100);
  }

  /**
   * Commit `records` (the batch's events reach the trace first, so a SIGKILL right after the
   * commit leaves lines enough to replay what was committed); `then` once they are durable.
   * A `blocking` commit counts towards `commitsInFlightMax` until then.
   */
  private commit(records: readonly R[], batchNumber: number, blocking: boolean, then: (fsyncMs: number) => void): void {
    const { clock, trace, log } = this.options;
    if (this.deferredTimer !== null && this.deferred.length === 0) {
      clearTimeout(this.deferredTimer);
      this.deferredTimer = null;
    }
    trace?.flush();
    const started = clock.nowMs();
    const committed = (): void => {
      for (const record of records) this.options.overtaking?.durable(record);
      const fsyncMs = clock.nowMs() - started;
      trace?.commit(clock.nowMs(), batchNumber, records.length, fsyncMs);
      this.options.onCommit?.(records.length, fsyncMs);
      then(fsyncMs);
    };
    if (log.appendAsync === undefined) {
      log.append(records);
      return committed();
    }
    if (blocking) this.commitsInFlight += 1;
    const pending = { id: this.nextCommitId++, records, durable: false, finish: committed, then: [] as (() => void)[] };
    this.pendingCommits.push(pending);
    log.appendAsync(records, (error) => {
      if (blocking) this.commitsInFlight -= 1;
      // Stopped meanwhile: what followed the Persist never happens, as after a crash.
      if (this.stopped) return;
      if (error !== null) return this.fail(error);
      pending.durable = true;
      this.completeCommits();
      this.schedule();
    });
  }

  /**
   * Finish the durable commits at the front, oldest first: a log acknowledges appends in order,
   * and should one come early it waits here for those before it, so that no commit line, and no
   * effect behind it, ever comes before an earlier commit's.
   */
  private completeCommits(): void {
    while (this.pendingCommits.length > 0 && this.pendingCommits[0]!.durable && !this.stopped) {
      const commit = this.pendingCommits.shift()!;
      try {
        commit.finish();
        for (const run of commit.then) run();
      } catch (failure) {
        return this.fail(failure);
      }
    }
  }

  /**
   * Sends, replies and alarms, in order; every Persist among or before `effects` is durable
   * already. Adds the sends and replies carried out to `counts`.
   */
  private carryOut(
    stepped: readonly Effect<M, R, O, H>[],
    batchNumber: number,
    firstSeq: number,
    counts: { sends: number; replies: number },
  ): void {
    if (stepped.length === 0) return;
    // A SendStored is the Send of its message with the values at rest read back, traced as such.
    const effects = stepped.some((e) => e._tag === "SendStored") ? stepped.map((e) => this.sendOf(e)) : stepped;
    const { trace, clock } = this.options;
    // The sends get the next wire ids, in order, reserved before any goes.
    const firstWireId = this.nextWireId;
    for (const effect of effects) if (effect._tag === "Send") this.nextWireId += 1;
    let sends = 0;
    if (trace !== undefined) {
      const now = clock.nowMs();
      let durableSeq = firstSeq;
      for (const effect of effects) {
        if (effect._tag === "Persist") trace.effect(now, batchNumber, effect, { durableSeq: durableSeq++ });
        else if (effect._tag === "Send") trace.effect(now, batchNumber, effect, { wireId: firstWireId + sends++ });
        else trace.effect(now, batchNumber, effect);
      }
      // The trace reaches the file before any peer or client can see these effects.
      trace.flush();
      sends = 0;
    }
    for (const effect of effects) {
      if (effect._tag === "Send") {
        this.options.send(effect.to, effect.message, firstWireId + sends++);
      } else if (effect._tag === "Reply") {
        counts.replies += 1;
        this.resolve(effect.requestId, effect.result);
      } else if (effect._tag === "Alarm") {
        this.options.onAlarm(effect);
      } else if (effect._tag === "TransferRefused") {
        this.options.onTransferRefused?.(effect);
      }
      // A ReadEntries was read when its batch was stepped (`readEntries`): nothing to carry out.
    }
    counts.sends += sends;
    // Sends before a batch's first Persist must leave before its fsync, not after it.
    if (sends > 0) this.options.flushSends?.();
  }

  /** `effect`, or for a SendStored the Send it stands for (see `readStored`). */
  private sendOf(effect: Effect<M, R, O, H>): Effect<M, R, O, H> {
    if (effect._tag !== "SendStored") return effect;
    const message = this.storedSends.get(effect);
    if (message === undefined) throw new Error("a SendStored effect carried out before its values were read back");
    this.storedSends.delete(effect);
    return { _tag: "Send", to: effect.to, message };
  }

  private resolve(requestId: number, result: ClientResult<O>): void {
    const waiter = this.waiters.get(requestId);
    // A reply to a request that timed out already is dropped: that client was told the outcome is unknown.
    if (waiter === undefined) return;
    this.waiters.delete(requestId);
    waiter.resolve(result);
  }
}

/**
 * One replica process, assembled: durable storage, the trace writer, the driver running
 * impl/core's `step`, the peer transport, the HTTP API with status page and metrics. Start
 * order matters: storage is opened and checked before anything listens, so a replica with
 * damaged or foreign data never serves; the first event handed to the core is Recover.
 */
import { randomBytes } from "node:crypto";
import type http from "node:http";
import type { AddressInfo } from "node:net";
import type { ReplicaId } from "../core/events.ts";
import type { MonotonicClock } from "./clock.ts";
import type { SlowDisk } from "./slow-disk.ts";
import { kvAdapter, kvCodecs, kvConfig, kvInitialState, kvStep, type KvMessage, type KvRecord, type KvReplicaState } from "./core-adapter.ts";
import { Driver, type BatchReport } from "./driver.ts";
import { createHttpServer } from "./http-api.ts";
import type { Logger } from "./log.ts";
import { ReplicaMetrics } from "./metrics.ts";
import { buildStatus, RecentEvents, type ReplicaStatus } from "./status.ts";
import { statusPageHtml } from "./status-page.ts";
import { Storage } from "./storage.ts";
import { TraceWriter } from "./trace.ts";
import { formatAddress, Transport, type Address } from "./transport.ts";
import type { CoreView } from "./view.ts";
import type { KvInput, KvOutput } from "../../spec/kv.ts";

/** Everything a replica needs to start. Limits state their defaults. */
export interface ReplicaOptions {
  readonly id: ReplicaId;
  readonly clusterId: string;
  readonly secret: Uint8Array;
  /** Every member's peer address, this replica's own included. */
  readonly members: ReadonlyMap<ReplicaId, Address>;
  /** Where to accept peers. Default: this replica's entry in `members`. */
  readonly listen?: Address;
  /** Where to serve clients. */
  readonly http: Address;
  /** The client address told to peers (for redirects). Default: `http`. */
  readonly advertiseHttp?: string;
  readonly dataDir: string;
  /** Create a fresh store if there is none. Default false. */
  readonly init?: boolean;
  /** Write an event trace (JSON lines) to this file. Default: none. */
  readonly traceFile?: string;
  /** Core configuration fields (leaseMs, ...); see impl/core/config.ts. Default: the core's defaults. */
  readonly core?: Record<string, unknown>;
  readonly clock: MonotonicClock;
  readonly log: Logger;
  /** Longest wait for the core's reply, in milliseconds. Default 10000. */
  readonly requestTimeoutMs?: number;
  /** Test-only: a disk whose commits can be slowed at run time. Default: none. */
  readonly slowDisk?: SlowDisk | null;
  /** Called when the replica must stop (core assertion or storage failure). */
  readonly onFatal: (error: unknown) => void;
}

/** A started replica. */
export interface RunningReplica {
  readonly httpAddress: string;
  readonly peerPort: number;
  readonly driver: Driver<KvReplicaState, KvMessage, KvRecord, KvInput, KvOutput>;
  stop(): Promise<void>;
}


type KvDriver = Driver<KvReplicaState, KvMessage, KvRecord, KvInput, KvOutput>;

/** Open storage, then start the core, the transport and the HTTP server. Throws StorageError or ConfigError before serving anything. */
export async function startReplica(options: ReplicaOptions): Promise<RunningReplica> {
  const replica = new ReplicaProcess(options);
  await replica.start();
  return replica;
}

/** The parts of one replica process and the wiring between them. */
class ReplicaProcess implements RunningReplica {
  readonly driver: KvDriver;
  private readonly storage: Storage<KvRecord>;
  private readonly records: readonly KvRecord[];
  private readonly trace: TraceWriter<KvMessage, KvRecord, KvInput, KvOutput> | undefined;
  private readonly transport: Transport<KvMessage>;
  private readonly metrics: ReplicaMetrics;
  private readonly server: http.Server;
  private readonly events: RecentEvents;
  private readonly peerExecuted = new Map<ReplicaId, number>();
  private readonly advertiseHttp: string;
  private readonly startedAtMs: number;
  private lastView: CoreView;
  private stopped = false;

  constructor(private readonly options: ReplicaOptions) {
    const { id, clock } = options;
    if (!options.members.has(id)) throw new Error(`replica ${id} is not in the member list (${[...options.members.keys()].join(", ")})`);
    const config = kvConfig(id, [...options.members.keys()], options.core);
    const opened = Storage.open<KvRecord>({ dir: options.dataDir, clusterId: options.clusterId, replicaId: id, codec: kvCodecs.record, create: options.init === true });
    options.log.info({ file: opened.storage.file, records: opened.records.length, created: opened.created }, "storage opened");
    this.storage = opened.storage;
    this.records = opened.records;
    const incarnation = randomBytes(8).toString("hex");
    // The clock's injected skew (test-only; 1 and 0 otherwise) lets trace validation map readings to true time.
    const header = { clusterId: options.clusterId, members: config.members, leaseMs: config.leaseMs, clockRate: clock.rate, clockOffsetMs: clock.offsetMs };
    this.trace = options.traceFile === undefined ? undefined : new TraceWriter(options.traceFile, id, kvCodecs, incarnation, header);
    this.startedAtMs = clock.nowMs();
    this.events = new RecentEvents(() => clock.nowMs());
    this.events.add("info", `started with ${opened.records.length} durable records${opened.created ? " (fresh store)" : ""}`);
    this.advertiseHttp = options.advertiseHttp ?? formatAddress(options.http);
    const initial = kvInitialState(config);
    this.lastView = kvAdapter.view(initial);
    this.driver = this.newDriver(initial);
    this.transport = this.newTransport(incarnation);
    this.metrics = this.newMetrics();
    this.server = this.newHttpServer();
  }

  get httpAddress(): string {
    const bound = this.server.address() as AddressInfo;
    return `${bound.address}:${bound.port}`;
  }

  get peerPort(): number {
    return this.transport.port;
  }

  /** Hand the core its records, then listen for peers and clients. */
  async start(): Promise<void> {
    this.driver.start(this.records);
    try {
      await this.transport.start();
      await listen(this.server, this.options.http);
    } catch (error) {
      this.driver.stop();
      await this.transport.close();
      this.storage.close();
      this.trace?.close();
      throw error;
    }
    const members = [...this.options.members.keys()];
    this.options.log.info({ http: this.httpAddress, peer: formatAddress(this.listenAddress()), members }, "replica serving");
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.driver.stop();
    this.server.closeAllConnections();
    await Promise.all([new Promise<void>((resolve) => this.server.close(() => resolve())), this.transport.close()]);
    this.storage.close();
    this.trace?.close();
    this.options.log.info("replica stopped");
  }

  private listenAddress(): Address {
    return this.options.listen ?? this.options.members.get(this.options.id)!;
  }

  private httpOf(peer: ReplicaId): string | null {
    return peer === this.options.id ? this.advertiseHttp : (this.transport.peerInfo(peer)?.http ?? null);
  }

  private newDriver(initial: KvReplicaState): KvDriver {
    const { log } = this.options;
    return new Driver({
      step: kvStep,
      state: initial,
      log: this.options.slowDisk == null ? this.storage : this.options.slowDisk.wrap(this.storage),
      clock: this.options.clock,
      trace: this.trace,
      requestTimeoutMs: this.options.requestTimeoutMs,
      send: (to, message, wireId) => {
        const sent = this.transport.send(to, message, wireId);
        if (sent) this.metrics.messagesSent.inc({ to: String(to) });
        return sent;
      },
      flushSends: () => this.transport.flush(),
      // `chosen` records only spare a restarted replica from asking peers (docs/impl.md, section 11).
      deferrable: (record) => record._tag === "chosen",
      onAlarm: (alarm) => {
        this.metrics.alarms.inc();
        this.events.add("error", `divergence alarm at slot ${alarm.slot}: ${alarm.message}`);
        log.error({ slot: alarm.slot, replicas: alarm.replicas, digests: alarm.digests }, `replica divergence: ${alarm.message}`);
      },
      onFatal: (error) => {
        log.fatal({ err: error }, "replica stopping: the core or storage failed");
        this.trace?.flush();
        this.options.onFatal(error);
      },
      onBatch: (state, report) => this.afterBatch(kvAdapter.view(state), report),
    });
  }

  /** Metrics, recent events and a log line for what a batch changed. */
  private afterBatch(view: CoreView, report: BatchReport): void {
    const before = this.lastView;
    this.lastView = view;
    this.metrics.onBatch(report, before, view);
    if (view.role === before.role && view.leader === before.leader && view.ballot === before.ballot) return;
    this.events.noteViewChange(before, view);
    this.options.log.info({ role: view.role, leader: view.leader, ballot: view.ballot, executedSlot: view.executedSlot }, `role ${view.role}, leader ${view.leader ?? "unknown"}`);
  }

  private newTransport(incarnation: string): Transport<KvMessage> {
    const { id } = this.options;
    return new Transport<KvMessage>({
      self: id,
      clusterId: this.options.clusterId,
      secret: this.options.secret,
      listen: this.listenAddress(),
      peers: new Map([...this.options.members].filter(([peer]) => peer !== id)),
      codec: kvCodecs.message,
      info: { http: this.advertiseHttp, incarnation },
      clock: this.options.clock,
      log: this.options.log,
      onMessage: (from, message, wireId, senderIncarnation) => {
        this.metrics.messagesReceived.inc({ from: String(from), type: kvAdapter.messageType(message) });
        const executed = kvAdapter.peerExecutedSlot(message);
        if (executed !== undefined) this.peerExecuted.set(from, executed);
        this.driver.receive(from, message, wireId, senderIncarnation);
      },
      onRejected: (reason) => {
        this.metrics.framesRejected.inc();
        this.events.add("warn", `closed a peer connection: ${reason.slice(0, 200)}`);
      },
      onDropped: (_to, reason) => this.metrics.messagesDropped.inc({ reason }),
      onPeerEvent: (peer, event) => {
        if (event === "connected") this.events.add("info", `link to replica ${peer} up`);
        if (event === "disconnected") this.events.add("warn", `link to replica ${peer} down`);
      },
    });
  }

  private newMetrics(): ReplicaMetrics {
    const depths = {
      events: () => this.driver.depths.events,
      requests: () => this.driver.depths.requests,
      droppedEvents: () => this.driver.depths.droppedEvents,
      outboundBytes: () => this.transport.outboundQueuedBytes(),
    };
    return new ReplicaMetrics(this.options.id, depths, () => kvAdapter.view(this.driver.state), () => this.options.clock.nowMs());
  }

  private status(): ReplicaStatus {
    return buildStatus({
      replica: this.options.id,
      clusterId: this.options.clusterId,
      http: this.advertiseHttp,
      startedAtMs: this.startedAtMs,
      nowMs: this.options.clock.nowMs(),
      view: kvAdapter.view(this.driver.state),
      peers: this.transport.health(),
      peerExecuted: this.peerExecuted,
      httpOf: (peer) => this.httpOf(peer),
      storage: { file: this.storage.file, records: this.storage.recordCount },
      queues: this.driver.depths,
      clockRate: this.options.clock.rate,
      events: this.events.list(),
    });
  }

  private newHttpServer(): http.Server {
    return createHttpServer({
      replicaId: this.options.id,
      submit: (submission) => this.driver.submit(submission),
      httpAddressOf: (peer) => this.httpOf(peer),
      status: () => this.status(),
      metrics: () => this.metrics.render(),
      page: statusPageHtml(this.options.id),
      log: this.options.log,
      onResponse: (route, code) => this.metrics.httpResponses.inc({ route, status: String(code) }),
    });
  }
}

function listen(server: http.Server, address: Address): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(address.port, address.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

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
import { kvAdapter, kvCodecs, kvConfig, kvInitialState, kvStep, type KvMessage, type KvRecord, type KvReplicaState } from "./core-adapter.ts";
import { Driver } from "./driver.ts";
import { createHttpServer } from "./http-api.ts";
import type { Logger } from "./log.ts";
import { ReplicaMetrics } from "./metrics.ts";
import { buildStatus, RecentEvents } from "./status.ts";
import { statusPageHtml } from "./status-page.ts";
import { Storage } from "./storage.ts";
import { TraceWriter } from "./trace.ts";
import { formatAddress, Transport, type Address } from "./transport.ts";
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

/** Open storage, then start the core, the transport and the HTTP server. Throws StorageError or ConfigError before serving anything. */
export async function startReplica(options: ReplicaOptions): Promise<RunningReplica> {
  const { id, log, clock } = options;
  const self = options.members.get(id);
  if (self === undefined) throw new Error(`replica ${id} is not in the member list (${[...options.members.keys()].join(", ")})`);
  const config = kvConfig(id, [...options.members.keys()], options.core);
  const opened = Storage.open<KvRecord>({ dir: options.dataDir, clusterId: options.clusterId, replicaId: id, codec: kvCodecs.record, create: options.init === true });
  log.info({ file: opened.storage.file, records: opened.records.length, created: opened.created }, "storage opened");
  const incarnation = randomBytes(8).toString("hex");
  const trace =
    options.traceFile === undefined ? undefined : new TraceWriter(options.traceFile, id, kvCodecs, incarnation, { clusterId: options.clusterId, members: config.members, leaseMs: config.leaseMs });
  const startedAtMs = clock.nowMs();
  const events = new RecentEvents(() => clock.nowMs());
  const peerExecuted = new Map<ReplicaId, number>();
  // The driver, transport and metrics refer to each other; they are wired through this holder.
  const wired: { transport?: Transport<KvMessage>; metrics?: ReplicaMetrics } = {};
  let lastView = kvAdapter.view(kvInitialState(config));

  const driver = new Driver<KvReplicaState, KvMessage, KvRecord, KvInput, KvOutput>({
    step: kvStep,
    state: kvInitialState(config),
    log: opened.storage,
    clock,
    trace,
    requestTimeoutMs: options.requestTimeoutMs,
    send: (to, message, wireId) => {
      const sent = wired.transport?.send(to, message, wireId) ?? false;
      if (sent) wired.metrics?.messagesSent.inc({ to: String(to) });
      return sent;
    },
    onAlarm: (alarm) => {
      wired.metrics?.alarms.inc();
      events.add("error", `divergence alarm at slot ${alarm.slot}: ${alarm.message}`);
      log.error({ slot: alarm.slot, replicas: alarm.replicas, digests: alarm.digests }, `replica divergence: ${alarm.message}`);
    },
    onFatal: (error) => {
      log.fatal({ err: error }, "replica stopping: the core or storage failed");
      trace?.flush();
      options.onFatal(error);
    },
    onBatch: (state, report) => {
      const view = kvAdapter.view(state);
      wired.metrics?.onBatch(report, lastView, view);
      if (view.role !== lastView.role || view.leader !== lastView.leader || view.ballot !== lastView.ballot) {
        events.noteViewChange(lastView, view);
        log.info({ role: view.role, leader: view.leader, ballot: view.ballot, executedSlot: view.executedSlot }, `role ${view.role}, leader ${view.leader ?? "unknown"}`);
      }
      lastView = view;
    },
  });

  const advertiseHttp = options.advertiseHttp ?? formatAddress(options.http);
  const peers = new Map([...options.members].filter(([peer]) => peer !== id));
  const liveTransport = new Transport<KvMessage>({
    self: id,
    clusterId: options.clusterId,
    secret: options.secret,
    listen: options.listen ?? self,
    peers,
    codec: kvCodecs.message,
    info: { http: advertiseHttp, incarnation },
    clock,
    log,
    onMessage: (from, message, wireId, senderIncarnation) => {
      wired.metrics?.messagesReceived.inc({ from: String(from), type: kvAdapter.messageType(message) });
      const executed = kvAdapter.peerExecutedSlot(message);
      if (executed !== undefined) peerExecuted.set(from, executed);
      driver.receive(from, message, wireId, senderIncarnation);
    },
    onRejected: (reason) => {
      wired.metrics?.framesRejected.inc();
      events.add("warn", `closed a peer connection: ${reason.slice(0, 200)}`);
    },
    onDropped: (_to, reason) => wired.metrics?.messagesDropped.inc({ reason }),
    onPeerEvent: (peer, event) => {
      if (event === "connected") events.add("info", `link to replica ${peer} up`);
      if (event === "disconnected") events.add("warn", `link to replica ${peer} down`);
    },
  });
  wired.transport = liveTransport;
  const httpOf = (peer: ReplicaId): string | null => (peer === id ? advertiseHttp : (liveTransport.peerInfo(peer)?.http ?? null));
  const liveMetrics = new ReplicaMetrics(
    id,
    {
      events: () => driver.depths.events,
      requests: () => driver.depths.requests,
      droppedEvents: () => driver.depths.droppedEvents,
      outboundBytes: () => liveTransport.outboundQueuedBytes(),
    },
    () => kvAdapter.view(driver.state),
    () => clock.nowMs(),
  );
  wired.metrics = liveMetrics;
  const status = () =>
    buildStatus({
      replica: id,
      clusterId: options.clusterId,
      http: advertiseHttp,
      startedAtMs,
      nowMs: clock.nowMs(),
      view: kvAdapter.view(driver.state),
      peers: liveTransport.health(),
      peerExecuted,
      httpOf,
      storage: { file: opened.storage.file, records: opened.storage.recordCount },
      queues: driver.depths,
      clockRate: clock.rate,
      events: events.list(),
    });
  const server = createHttpServer({
    replicaId: id,
    submit: (submission) => driver.submit(submission),
    httpAddressOf: httpOf,
    status,
    metrics: () => liveMetrics.render(),
    page: statusPageHtml(id),
    log,
    onResponse: (route, code) => liveMetrics.httpResponses.inc({ route, status: String(code) }),
  });

  driver.start(opened.records);
  events.add("info", `started with ${opened.records.length} durable records${opened.created ? " (fresh store)" : ""}`);
  try {
    await liveTransport.start();
    await listen(server, options.http);
  } catch (error) {
    driver.stop();
    await liveTransport.close();
    opened.storage.close();
    trace?.close();
    throw error;
  }
  const bound = server.address() as AddressInfo;
  log.info({ http: `${bound.address}:${bound.port}`, peer: formatAddress(options.listen ?? self), members: config.members }, "replica serving");

  let stopped = false;
  return {
    httpAddress: `${bound.address}:${bound.port}`,
    peerPort: liveTransport.port,
    driver,
    async stop() {
      if (stopped) return;
      stopped = true;
      driver.stop();
      server.closeAllConnections();
      await Promise.all([new Promise<void>((resolve) => server.close(() => resolve())), liveTransport.close()]);
      opened.storage.close();
      trace?.close();
      log.info("replica stopped");
    },
  };
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

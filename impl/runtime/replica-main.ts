/**
 * One replica process, assembled: durable storage, the trace writer, the driver running
 * impl/core's `step`, the peer transport, the HTTP API with status page and metrics. Start
 * order matters: storage is opened and checked before anything listens, so a replica with
 * damaged or foreign data never serves; the first event handed to the core is Recover.
 *
 * Membership: a replica started with `joining` is not one of the initial members; it dials the
 * peers it is given, which learn its address from the handshake, and waits to be added (POST
 * /v1/members at the leader). A replica that learns it was removed retires: it stops its core and
 * its links, keeps answering /status and GET /v1/members (role "removed"), refuses client
 * requests with 410, and marks its data directory so that it is never started again.
 */
import { AcceptResendHold } from "./accept-hold.ts";
import { CatchUpHold } from "./catch-up-hold.ts";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type http from "node:http";
import type { AddressInfo } from "node:net";
import type { ClientResult, MemberAddress, ReplicaId, StoredEntry } from "../core/index.ts";
import type { PersistentMap } from "../../spec/persistent-map.ts";
import {
  executionPending,
  membershipUnsettled,
  pinnedSnapshots,
  pinnedVotes,
  resumingKept,
  serializationOf,
  valueBytes,
} from "../core/index.ts";
import { precheckMemberRequest } from "./member-precheck.ts";
import { Admission, driverRequestsPendingMax, httpConnectionsMaxDefault, type AdmissionOptions } from "./admission.ts";
import type { MonotonicClock } from "./clock.ts";
import type { SlowDisk } from "./slow-disk.ts";
import { noDiskFaults, type DiskFaults } from "./disk-faults.ts";
import {
  kvAdapter,
  kvCodecs,
  kvMessageReceived,
  kvConfig,
  kvDigestFormat,
  kvInitialState,
  kvStep,
  kvStoredReader,
  kvEntryReader,
  type KvMessage,
  type KvRecord,
  type KvStoredMessage,
  type KvReplicaState,
  KvOvertaking,
} from "./core-adapter.ts";
import { Driver, type BatchReport, type DurableLog, type StepFunction, type Submission } from "./driver.ts";
import {
  connectionsPerAddressMaxOf,
  createHttpServer,
  type ApiError,
  type ApiServer,
  type MemberRequest,
} from "./http-api.ts";
import { TlsFiles, type TlsFileNames, type TlsMaterial } from "./certs.ts";
import type { Logger } from "./log.ts";
import { largePromiseBytes, ReplicaMetrics } from "./metrics.ts";
import { ClusterHosts } from "./access.ts";
import { buildStatus, RecentEvents, type ReplicaStatus } from "./status.ts";
import { statusPageHtml } from "./status-page.ts";
import { StorageError } from "./storage.ts";
import { StorageThread } from "./storage-thread.ts";
import { LogLimiter } from "./log-limiter.ts";
import { firstVoteSlot, nowUs, timeline } from "./timeline.ts";
import { peerHandshakeTimeoutMsDefault, type PeerAdmissionLimits } from "./peer-admission.ts";
import { TokenStore } from "./tokens.ts";
import { TraceWriter } from "./trace.ts";
import { reportTransferRefused } from "./transfer-refused.ts";
import { stagingStep, type Resumption } from "./transfer-staging.ts";
import { addressOfText, formatAddress, Transport, type Address, type PeerInfo } from "./transport.ts";
import { HeartbeatRelay, heartbeatRelayMsDefault } from "./heartbeat-relay.ts";
import { featureLevelOfIncarnation, forPeer, incarnationWith } from "./upgrade-window.ts";
import { countFeatures, membersOf, waitReason } from "./feature-gate.ts";
import { featureLevelMax, featureLevelOf } from "../../spec/service.ts";
import type { BatchFacts, CoreView, UncomparedView } from "./view.ts";
import type { KvInput, KvOutput } from "../../spec/kv.ts";

/** Everything a replica needs to start. Limits state their defaults. */
export interface ReplicaOptions {
  readonly id: ReplicaId;
  readonly clusterId: string;
  /** The cluster secret peers authenticate with; required without `tls`. */
  readonly secret?: Uint8Array | undefined;
  /**
   * TLS for the client API (HTTPS) and between replicas (mutual TLS): this replica's certificate,
   * key and the cluster CA, re-read when they change. Default: none (HTTP, and the secret).
   */
  readonly tls?: TlsFileNames | undefined;
  /**
   * The peers to dial, by id, with their addresses, this replica's own included. Without
   * `initialMembers`, these are the cluster's initial members; with it, any members of the
   * running cluster (a joining replica lists every current member, so that each learns its address).
   */
  readonly members: ReadonlyMap<ReplicaId, Address>;
  /** This replica joins a running cluster: it is not one of the initial members. Default false. */
  readonly joining?: boolean;
  /**
   * The cluster's initial members: required with `joining`; otherwise the keys of `members` by
   * default (give them when `members` lists the current members instead of the initial ones).
   */
  readonly initialMembers?: readonly ReplicaId[];
  /** The peer address told to peers (where they dial this replica). Default: its entry in `members`. */
  readonly advertisePeer?: Address;
  /** Where to accept peers. Default: this replica's entry in `members`. */
  readonly listen?: Address;
  /** Where to serve clients. */
  readonly http: Address;
  /** The tokens file (impl/runtime/tokens.ts): every client request but `/` and `/healthz` needs one of its tokens. */
  readonly tokensFile: string;
  /** `/status` and `/metrics` answer without a token. Default false. */
  readonly publicStatus?: boolean;
  /** Further names (HOST or HOST:PORT) clients reach this replica under, besides its own addresses. Default none. */
  readonly allowHosts?: readonly string[];
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
  /**
   * Bounds on the client requests and request bytes held at once (impl/runtime/admission.ts). Default: its defaults.
   */
  readonly admission?: AdmissionOptions;
  /** Bounds on peer connections in their handshake (impl/runtime/peer-admission.ts). Default: its defaults. */
  readonly peerAdmission?: Partial<PeerAdmissionLimits>;
  /** Time a peer connection has to authenticate, in milliseconds. Default 5000. */
  readonly peerHandshakeTimeoutMs?: number;
  /** Refused and failed peer connections are logged at most once per address per this interval. Default 10 s. */
  readonly peerLogIntervalMs?: number;
  /** Client connections open at once; beyond, a new one is closed as it arrives. Default 4096. */
  readonly httpConnectionsMax?: number;
  /** Client connections open at once from one address; beyond, a new one is closed. Default a quarter of all. */
  readonly httpConnectionsPerAddressMax?: number;
  /**
   * How long after the main thread's last heartbeat to a peer the heartbeat relay may send it copies
   * (impl/runtime/heartbeat-relay.ts), in milliseconds; 0: no relay. Default 1000.
   */
  readonly heartbeatRelayMs?: number;
  /** Test-only: a disk whose commits can be slowed at run time. Default: none. */
  readonly slowDisk?: SlowDisk | null;
  /** Test-only: power loss, or a store that acknowledges before its fsync (disk-faults.ts). Default: none. */
  readonly diskFaults?: DiskFaults;
  /**
   * Test-only: the feature level this replica names in its handshake, below what it executes, to
   * stand for a replica of an earlier version (feature-gate.ts `namedFeatureLevel`). Default:
   * `featureLevelMax`.
   */
  readonly featureLevelNamed?: number;
  /** Called when the replica must stop (core assertion or storage failure). */
  readonly onFatal: (error: unknown) => void;
}

/** A started replica. */
export interface RunningReplica {
  readonly httpAddress: string;
  readonly peerPort: number;
  readonly driver: Driver<KvReplicaState, KvMessage, KvRecord, KvInput, KvOutput, KvStoredMessage>;
  stop(): Promise<void>;
}

type KvDriver = Driver<KvReplicaState, KvMessage, KvRecord, KvInput, KvOutput, KvStoredMessage>;

/**
 * Open storage, then start the core, the transport and the HTTP server. Throws StorageError or ConfigError before
 * serving anything.
 */
export async function startReplica(options: ReplicaOptions): Promise<RunningReplica> {
  const replica = new ReplicaProcess(options);
  await replica.start();
  return replica;
}

/** The parts of one replica process and the wiring between them. */
class ReplicaProcess implements RunningReplica {
  readonly driver: KvDriver;
  private readonly storage: StorageThread;
  /** The records the store held at the start, until `start` hands them to the core (then none). */
  private records: readonly KvRecord[];
  private readonly trace: TraceWriter<KvMessage, KvRecord, KvInput, KvOutput> | undefined;
  private readonly transport: Transport<KvMessage>;
  /** Sends copies of the leader's heartbeats while the main thread cannot (null: off). */
  private readonly relay: HeartbeatRelay | null;
  private readonly metrics: ReplicaMetrics;
  private readonly admission: Admission;
  private readonly server: ApiServer;
  private readonly tlsFiles: TlsFiles | undefined;
  private readonly tokens: TokenStore;
  private readonly refusalLog = new LogLimiter(60_000);
  private readonly events: RecentEvents;
  private readonly peerExecuted = new Map<ReplicaId, number>();
  private readonly catchUpHold: CatchUpHold;
  private readonly acceptHold: AcceptResendHold;
  private readonly advertiseHttp: string;
  private readonly startedAtMs: number;
  /** The view as of the last batch that changed its role, leader, ballot or membership (see `afterBatch`). */
  private lastView: CoreView;
  private lastFacts: BatchFacts;
  private stopped = false;
  /** Why this replica no longer serves (it was removed), or null. */
  private retiredReason: string | null = null;
  /** The feature level this replica names in its handshake. */
  private readonly featureLevelNamed: number;
  /** The count last handed to the core (`FeaturesKnown`), and why the raise waits, as last logged. */
  private featureCount: { known: number; waits: string } = { known: -1, waits: "" };
  private readonly removedMarker: string;

  constructor(private readonly options: ReplicaOptions) {
    const { id, clock } = options;
    if (!options.members.has(id))
      throw new Error(`replica ${id} is not in the member list (${[...options.members.keys()].join(", ")})`);
    const joining = options.joining === true;
    if (joining && options.initialMembers === undefined)
      throw new Error("a joining replica needs the cluster's initial members (--initial-members)");
    const initialMembers = options.initialMembers ?? [...options.members.keys()];
    const config = kvConfig(id, initialMembers, options.core, joining);
    this.removedMarker = path.join(options.dataDir, "REMOVED");
    if (options.secret === undefined && options.tls === undefined)
      throw new Error("replicas authenticate each other with the cluster secret or TLS certificates: give one");
    // Read before the store is opened: a replica whose tokens file or certificate is unusable never serves.
    this.tlsFiles =
      options.tls === undefined
        ? undefined
        : new TlsFiles(options.tls, {
            onChange: (material) => this.renewTls(material),
            onError: (message) => options.log.error({ files: options.tls }, message),
          });
    this.tokens = new TokenStore(options.tokensFile, {
      onReload: (count) => options.log.info({ file: options.tokensFile, tokens: count }, "tokens file re-read"),
      onReloadError: (message) =>
        options.log.error({ file: options.tokensFile }, `${message}; no token is accepted until it is fixed`),
    });
    if (fs.existsSync(this.removedMarker)) {
      const why = fs.readFileSync(this.removedMarker, "utf8").trim().slice(0, 300);
      throw new StorageError(
        "removed",
        this.removedMarker,
        `${why === "" ? `replica ${id} was removed from the cluster` : why}; a removed replica never serves again: delete this directory, and add a replica under a new id`,
      );
    }
    // The store lives on a thread of its own (impl/runtime/storage-thread.ts); it compacts the
    // records a durable snapshot supersedes (impl/core/records.ts).
    const opened = StorageThread.open({
      dir: options.dataDir,
      clusterId: options.clusterId,
      replicaId: id,
      create: options.init === true,
      // Every fsync's return is traced: trace validation checks no effect left before it.
      onSynced: (seq) => this.trace?.synced(clock.nowMs(), seq),
      faults: options.diskFaults ?? noDiskFaults,
      // A state transfer's staged bytes that do not give the digest verified are never stored.
      onUnvouched: ({ slot, contentDigest, stagedDigest }) =>
        options.log.warn(
          { slot, contentDigest, stagedDigest },
          `the staged bytes of the snapshot at slot ${slot} received by state transfer digest to ${stagedDigest}, not the ${contentDigest} verified as they came: not stored; the snapshot is stored as this replica's own serialization, which gives ${contentDigest}`,
        ),
      // Said once per snapshot: its chunks come from its record, its state gone from memory.
      onChunkAtRest: (slot) => {
        if (this.chunksAtRestSaid.has(slot)) return;
        this.chunksAtRestSaid.add(slot);
        options.log.info(
          { slot },
          `state transfer chunks of the snapshot at slot ${slot} read back from its stored record, its state let go`,
        );
      },
    });
    try {
      checkInitialMembers(options.dataDir, config.members, joining);
    } catch (error) {
      opened.storage.close();
      throw error;
    }
    options.log.info(
      { file: opened.storage.file, records: opened.records.length, created: opened.created },
      "storage opened",
    );
    if (opened.lostToPowerCut !== null)
      options.log.warn(
        { lost: opened.lostToPowerCut },
        `test fault: power cut; ${opened.lostToPowerCut} records written after the last fsync were lost`,
      );
    this.storage = opened.storage;
    this.records = opened.records;
    this.catchUpHold = new CatchUpHold(config.heartbeatIntervalMs, config.electionTimeoutMsMin);
    // Resends of Accepts of 64 KiB of values or more wait while the first copy may still arrive:
    // a quiet spell of one election timeout lets them go, and none waits more than eight.
    this.acceptHold = new AcceptResendHold(config.electionTimeoutMsMin, 8 * config.electionTimeoutMsMin, 64 * 1024);
    // The digest format and the feature level ride on the incarnation: a version before formats
    // were named refuses any field its handshake does not know, but takes any incarnation
    // (impl/runtime/upgrade-window.ts).
    this.featureLevelNamed = options.featureLevelNamed ?? featureLevelMax;
    const incarnation = incarnationWith(randomBytes(8).toString("hex"), kvDigestFormat, this.featureLevelNamed);
    // The clock's injected skew (test-only; 1 and 0 otherwise) lets trace validation map readings to true time.
    const header = {
      clusterId: options.clusterId,
      members: config.members,
      leaseMs: config.leaseMs,
      // The level this life raises the log to when it leads: a rolling upgrade changes it between
      // lives, and a replay of each life runs the core with its own.
      featureLevel: config.featureLevel,
      clockRate: clock.rate,
      clockOffsetMs: clock.offsetMs,
      // This life traces the return of every fsync (`synced` lines).
      syncs: true,
    };
    this.trace =
      options.traceFile === undefined
        ? undefined
        : new TraceWriter(options.traceFile, id, kvCodecs, incarnation, header, (record) =>
            this.storage.traced(record),
          );
    this.startedAtMs = clock.nowMs();
    this.events = new RecentEvents(() => clock.nowMs());
    this.events.add(
      "info",
      `started with ${opened.records.length} durable records${opened.created ? " (fresh store)" : ""}`,
    );
    this.advertiseHttp = options.advertiseHttp ?? formatAddress(options.http);
    const initial = kvInitialState(config);
    this.lastView = kvAdapter.view(initial);
    this.lastFacts = kvAdapter.facts(initial);
    this.admission = new Admission(options.admission);
    this.driver = this.newDriver(initial);
    // Transfers read their chunks from the snapshots' records (impl/core/at-rest.ts): the store keeps
    // every snapshot the core serves, and a snapshot's state goes once its record is written. A
    // trace writes every Persist's record whole after its commit, reading a snapshot's bytes from
    // its state: with one, the state goes once the line is written too (`awaitTrace`).
    this.storage.releaseSnapshots = config.valuesAtRest;
    this.storage.awaitTrace = this.trace !== undefined;
    this.storage.pinnedSnapshots = () => pinnedSnapshots(this.driver.state);
    // The votes that wrote the store's values at rest outlive compaction (rule V3,
    // proofs/store-at-rest.md), and so do those the latest snapshot's holes name while its state is
    // held (it may be read whole on this thread until then: `readEntry`); the set is made again
    // only when the names changed.
    let origins = this.driver.state.learner.origins;
    let holes: PersistentMap<StoredEntry> | null = null;
    let pinnedVoteSlots = pinnedVotes(origins);
    this.storage.pinnedVotes = () => {
      const snapshot = this.driver.state.learner.snapshot;
      const named = snapshot === null ? null : (serializationOf(snapshot)?.named ?? null);
      if (this.driver.state.learner.origins !== origins || named !== holes) {
        origins = this.driver.state.learner.origins;
        holes = named;
        pinnedVoteSlots = pinnedVotes(origins);
        if (holes !== null) pinnedVoteSlots = new Set([...pinnedVoteSlots, ...pinnedVotes(holes)]);
      }
      return pinnedVoteSlots;
    };
    this.transport = this.newTransport(incarnation);
    this.metrics = this.newMetrics();
    const relayMs = options.heartbeatRelayMs ?? heartbeatRelayMsDefault;
    this.relay =
      relayMs === 0
        ? null
        : new HeartbeatRelay({
            self: id,
            clusterId: options.clusterId,
            secret: options.secret,
            tls: this.tlsFiles?.current,
            info: this.peerInfo(incarnation),
            intervalMs: Math.max(1, Math.round(config.heartbeatIntervalMs / clock.rate)),
            windowMs: relayMs,
            handshakeTimeoutMs: options.peerHandshakeTimeoutMs ?? peerHandshakeTimeoutMsDefault,
            log: options.log,
            onRelayed: (to) => this.metrics.heartbeatsRelayed.inc({ to: String(to) }),
          });
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
    // A state transfer the store kept across the restart goes with the records: the core resumes
    // it, and its chunks follow a piece at a time (the driver's `keptPiece`).
    this.driver.start(this.records, this.storage.keptTransfer() ?? undefined);
    // Not kept: the core keeps what it needs of them (values at rest and its snapshots' bytes stay on disk).
    this.records = [];
    // Right behind Recover: until told, the core takes every member to know every level.
    this.countFeatures();
    try {
      await this.transport.start();
      await listen(this.server, this.options.http);
    } catch (error) {
      this.driver.stop();
      await this.relay?.close();
      await this.transport.close();
      this.storage.close();
      this.trace?.close();
      throw error;
    }
    const members = [...this.options.members.keys()];
    const joining = this.options.joining === true;
    this.options.log.info(
      { http: this.httpAddress, peer: formatAddress(this.listenAddress()), members, joining },
      joining
        ? "replica serving; waiting to be added to the cluster (POST /v1/members at the leader)"
        : "replica serving",
    );
    if (joining) this.events.add("info", "joining: waiting to be added as a learner");
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.driver.stop();
    this.metrics.loopLag.close();
    this.tlsFiles?.close();
    this.server.closeAllConnections();
    await Promise.all([
      new Promise<void>((resolve) => this.server.close(() => resolve())),
      this.transport.close(),
      this.relay?.close(),
    ]);
    this.storage.close();
    this.trace?.close();
    this.options.log.info("replica stopped");
  }

  /** A renewed certificate: new connections, peer and client, present it. */
  private renewTls(material: TlsMaterial): void {
    this.transport.renewTls(material);
    this.relay?.renewTls(material);
    if ("setSecureContext" in this.server) this.server.setSecureContext({ ...material });
    this.options.log.info({ files: this.options.tls }, "TLS certificate re-read: new connections use it");
    this.events.add("info", "TLS certificate renewed");
  }

  private listenAddress(): Address {
    return this.options.listen ?? this.options.members.get(this.options.id)!;
  }

  private httpOf(peer: ReplicaId): string | null {
    if (peer === this.options.id) return this.advertiseHttp;
    return this.transport.peerInfo(peer)?.http ?? this.lastView.membership.addresses.get(peer)?.http ?? null;
  }

  /** The addresses this replica knows for `id`: from its handshake (it dialled us), else from the log. */
  private addressOf(id: ReplicaId): { peer: string; http: string | null } | null {
    const fromLog = this.lastView.membership.addresses.get(id);
    const address = this.transport.peerAddress(id);
    if (address === null) return fromLog ?? null;
    const http = this.transport.peerInfo(id)?.http ?? fromLog?.http ?? null;
    return { peer: formatAddress(address), http: http === "" ? null : http };
  }

  /**
   * Where the members of the latest configuration listen, as far as this replica knows (itself
   * included): an add carries them, so that the new replica and every member learn them all.
   */
  private memberAddresses(): MemberAddress[] {
    const m = kvAdapter.view(this.driver.state).membership;
    const latest = m.pending.at(-1) ?? m.inForce;
    const out: MemberAddress[] = [];
    for (const id of [...latest.voters, ...latest.learners].sort((a, b) => a - b)) {
      if (id === this.options.id) {
        const peer = formatAddress(this.options.advertisePeer ?? this.options.members.get(id)!);
        out.push({ replica: id, peer, http: this.advertiseHttp });
        continue;
      }
      const known = this.addressOf(id);
      if (known !== null)
        out.push({ replica: id, peer: known.peer, ...(known.http === null ? {} : { http: known.http }) });
    }
    return out;
  }

  /**
   * Dial every member whose address the log carries and the transport does not know yet: so a
   * replica learns a member added while it was down, or added by another leader, and keeps it
   * across restarts (the configurations, with their addresses, are in its snapshots and log).
   */
  private learnAddresses(view: CoreView): void {
    for (const [peer, address] of view.membership.addresses) {
      if (peer === this.options.id || this.transport.peerAddress(peer) !== null) continue;
      const parsed = addressOfText(address.peer);
      if (parsed !== null && this.transport.addPeer(peer, parsed))
        this.events.add("info", `learned replica ${peer} at ${address.peer} from the log`);
    }
  }

  /** Say what came of a transfer the store kept across the restart (transfer-staging.ts). */
  private transferResumed({ kept, taken, refused }: Resumption): void {
    const { from, slot, totalBytes } = kept;
    if (refused !== null)
      return reportTransferRefused(refused, { log: this.options.log, metrics: this.metrics, events: this.events });
    const text =
      taken === 0
        ? `the state transfer of snapshot ${slot} from replica ${from} kept before the restart is not resumed (no longer needed, or nothing kept): catch-up starts over`
        : `state transfer of snapshot ${slot} from replica ${from} resumed at byte ${taken} of ${totalBytes} from the chunks kept before the restart`;
    this.events.add("info", text);
    this.options.log.info({ peer: from, slot, taken, totalBytes }, text);
  }

  private newDriver(initial: KvReplicaState): KvDriver {
    const { log } = this.options;
    return new Driver({
      // A transfer's chunks go to the store as they come; its snapshot is stored as them (transfer-staging.ts).
      step: stagingStep(timeline === null ? kvStep : timedStep, this.storage, (resumption) =>
        this.transferResumed(resumption),
      ),
      state: initial,
      log: timedLog(this.options.slowDisk == null ? this.storage : this.options.slowDisk.wrap(this.storage)),
      clock: this.options.clock,
      trace: this.trace,
      requestTimeoutMs: this.options.requestTimeoutMs,
      requestsPendingMax: driverRequestsPendingMax(this.admission.requestsInFlightMax),
      tickIntervalMs: (state) => tickIntervalMs(state, this.options.clock.rate),
      send: (to, given, wireId) => {
        const window = forPeer(given, this.transport.peerInfo(to));
        if (window.withheld !== null) this.noteWithheld(to, window.withheld);
        const message = window.send;
        if (message === null) {
          this.metrics.messagesDropped.inc({ reason: "snapshot-to-earlier-version" });
          return false;
        }
        if (
          message._tag === "CatchUp" &&
          this.catchUpHold.hold(to, this.transport.bulkHeardMsAgo(to), this.options.clock.nowMs())
        ) {
          this.metrics.messagesDropped.inc({ reason: "catch-up-while-streaming" });
          return false;
        }
        const nowMs = this.options.clock.nowMs();
        const acceptBytes = message._tag === "Accept" ? valueBytes(message.value) : 0;
        if (
          message._tag === "Accept" &&
          this.acceptHold.hold(to, message, acceptBytes, this.transport.linkGeneration(to), nowMs)
        ) {
          this.metrics.messagesDropped.inc({ reason: "accept-resend-in-flight" });
          return false;
        }
        const sent = this.transport.send(to, message, wireId);
        if (sent) this.metrics.messagesSent.inc({ to: String(to) });
        if (sent && message._tag === "Promise") {
          let bytes = 0;
          for (const vote of message.votes) bytes += valueBytes(vote.value);
          if (bytes >= largePromiseBytes) this.metrics.largePromisesSent.inc();
        }
        // The exact frame sent, for the relay to copy should this thread not get to send the next.
        if (sent && message._tag === "Heartbeat" && this.relay !== null) {
          const address = this.transport.peerAddress(to);
          if (address !== null) this.relay.heartbeat(to, address, this.transport.frameOf(message, wireId));
        }
        if (sent && message._tag === "Accept")
          this.acceptHold.sent(to, message, acceptBytes, this.transport.linkGeneration(to), nowMs);
        if (message._tag === "Heartbeat")
          this.metrics.heartbeatHold.observe(Math.max(0, this.options.clock.nowMs() - message.sentAt) / 1000);
        if (timeline !== null && (message._tag === "Accept" || message._tag === "Accepted"))
          timeline.mark(message._tag === "Accept" ? "send-accept" : "send-accepted", message.slot);
        return sent;
      },
      flushSends: () => {
        timeline?.mark("flush", -1);
        this.transport.flush();
        timeline?.mark("flushed", -1);
      },
      // `chosen` records only spare a restarted replica from asking peers (docs/impl.md, section 11).
      deferrable: (record) => record._tag === "chosen",
      // Executed values rest in the store; a Promise or catch-up that needs one reads it back there.
      stored: kvStoredReader,
      onStoredRead: (values) => this.metrics.valuesReadFromDisk.inc(values),
      entries: kvEntryReader,
      onEntriesRead: (values) => this.metrics.storeValuesReadFromDisk.inc(values),
      overtaking: new KvOvertaking(),
      // A follower's HeartbeatAck stepped after an Accept in the same batch would wait for that
      // vote's fsync (hundreds of milliseconds for a 1 MiB value on a loaded machine), and the
      // leader's CheckQuorum with it; the tick comes after these, so a leader's heartbeats do not
      // wait for a proposal that an Accepted of the same batch made.
      urgent: (message) => message._tag === "Heartbeat" || message._tag === "HeartbeatAck",
      onAlarm: (alarm) => {
        this.metrics.alarms.inc();
        this.events.add("error", `divergence alarm at slot ${alarm.slot}: ${alarm.message}`);
        log.error(
          { slot: alarm.slot, replicas: alarm.replicas, digests: alarm.digests },
          `replica divergence: ${alarm.message}`,
        );
      },
      // Why a transfer was refused, for the operator (docs/operations.md, "A refused state transfer").
      onTransferRefused: (refusal) =>
        reportTransferRefused(refusal, { log: this.options.log, metrics: this.metrics, events: this.events }),
      onFatal: (error) => {
        log.fatal({ err: error }, "replica stopping: the core or storage failed");
        this.trace?.flush();
        this.options.onFatal(error);
      },
      onBatch: (state, report) => this.afterBatch(state, report),
      // A transfer kept across the restart: its chunks read back and taken a piece at a time.
      keptPiece: (state) =>
        resumingKept(state) ? this.storage.keptPiece(state.learner.transfer?.received ?? 0) : null,
      onCommit: (records, fsyncMs) => this.metrics.onCommit(records, fsyncMs),
    });
  }

  /** A client's request through the driver, with its stages on the timeline (bench/write-timeline.ts). */
  private async timedSubmit(submission: Submission<KvInput>): Promise<ClientResult<KvOutput>> {
    timeline?.mark("submit", -1);
    const result = await this.driver.submit(submission);
    timeline?.mark("reply", -1);
    return result;
  }

  /**
   * Heartbeat timing at arrival (metrics only): a leader's renewal round trip from the `sentAt`
   * its answer echoes (its own clock), and a follower's time since the previous heartbeat of the
   * same sender in the same ballot.
   */
  private timeHeartbeat(from: ReplicaId, message: KvMessage): void {
    if (message._tag !== "Heartbeat" && message._tag !== "HeartbeatAck") return;
    const now = this.options.clock.nowMs();
    if (message._tag === "HeartbeatAck") {
      this.metrics.heartbeatRoundTrip.observe(Math.max(0, now - message.sentAt) / 1000);
      return;
    }
    this.metrics.heartbeatArrived(from, message.ballot, now);
  }

  /**
   * Once, after Recover: the snapshot the core recovered is on disk, so its state goes as a
   * written one's does (storage-thread.ts, `releaseSnapshots`): its chunks are read from its record.
   */
  private releaseRecovered(state: KvReplicaState): void {
    if (this.recoveredReleased || !state.started) return;
    this.recoveredReleased = true;
    if (!this.storage.releaseSnapshots || state.learner.snapshot === null) return;
    const serialization = serializationOf(state.learner.snapshot);
    if (serialization !== undefined) this.storage.letGo(serialization, state.learner.snapshot.slot);
  }

  private recoveredReleased = false;
  /** The snapshots whose chunks at rest were logged (`onChunkAtRest`): once each. */
  private readonly chunksAtRestSaid = new Set<number>();

  /**
   * Metrics, recent events and a log line for what a batch changed. The whole view (the
   * membership's maps, the digest's text) is built only when the role, leader, ballot or what the
   * membership is made of changed: not for the batches of every write.
   */
  private afterBatch(state: KvReplicaState, report: BatchReport): void {
    this.releaseRecovered(state);
    const facts = kvAdapter.facts(state);
    const was = this.lastFacts;
    if (facts.role !== "leader") this.relay?.clear();
    this.lastFacts = facts;
    this.metrics.onBatch(report, was, facts);
    if (facts.uncompared !== was.uncompared) this.noteUncompared(was.uncompared, facts.uncompared);
    if (
      facts.role === was.role &&
      facts.leader === was.leader &&
      facts.ballot === was.ballot &&
      facts.membershipOf.every((part, i) => part === was.membershipOf[i])
    )
      return;
    const view = kvAdapter.view(state);
    const before = this.lastView;
    this.lastView = view;
    this.learnAddresses(view);
    this.noteMembership(before, view);
    this.countFeatures();
    if (view.role === before.role && view.leader === before.leader && view.ballot === before.ballot) return;
    this.events.noteViewChange(before, view);
    this.options.log.info(
      { role: view.role, leader: view.leader, ballot: view.ballot, executedSlot: view.executedSlot },
      `role ${view.role}, leader ${view.leader ?? "unknown"}`,
    );
  }

  /**
   * Say when the divergence monitor starts or stops comparing a peer's checkpoints: digests of two
   * formats (a peer of another version during an upgrade) are never compared, and the operator
   * should know which peers are not watched and why (docs/operations.md, "Upgrading").
   */
  private noteUncompared(before: readonly UncomparedView[], after: readonly UncomparedView[]): void {
    const format = (f: string): string => (f === "" ? "the unnamed format of versions before sha256" : f);
    for (const u of after) {
      if (before.some((b) => b.replica === u.replica)) continue;
      const text = `checkpoints of replica ${u.replica} are not compared: its digest at slot ${u.slot} is in ${format(u.peerFormat)}, this replica's in ${format(u.ownFormat)} (replicas of two versions; compared again once both make one format)`;
      this.events.add("warn", text);
      this.options.log.warn({ peer: u.replica, slot: u.slot, ownFormat: u.ownFormat, peerFormat: u.peerFormat }, text);
    }
    for (const b of before) {
      if (after.some((u) => u.replica === b.replica)) continue;
      const text = `checkpoints of replica ${b.replica} are compared again (one digest format)`;
      this.events.add("info", text);
      this.options.log.info({ peer: b.replica }, text);
    }
  }

  /** Peers (by id and incarnation) already told of in the log for what is withheld from them. */
  private readonly withheldNoted = new Set<string>();

  /**
   * Say once per peer process what is held back from a peer that names no digest format (a version
   * before formats were named, impl/runtime/upgrade-window.ts): it does not see this replica's
   * checkpoints, and cannot install its snapshots until it is upgraded.
   */
  private noteWithheld(peer: ReplicaId, what: "checkpoint" | "snapshot"): void {
    const key = `${peer}/${this.transport.peerInfo(peer)?.incarnation ?? ""}/${what}`;
    if (this.withheldNoted.has(key)) return;
    this.withheldNoted.add(key);
    const text =
      what === "checkpoint"
        ? `replica ${peer} names no digest format (a version before sha256 digests): it is sent no checkpoints, which it would take for a divergence; upgrade it`
        : `replica ${peer} names no digest format (a version before sha256 digests): it cannot install this replica's snapshot (format sha256) and is not sent it; upgrade it`;
    this.events.add("warn", text);
    this.options.log.warn({ peer, withheld: what }, text);
  }

  /** The feature level `peer` named in its last handshake with this replica (null: none seen). */
  private namedLevel(peer: ReplicaId): number | null {
    const info = this.transport.peerInfo(peer);
    if (info === null) return null;
    const level = featureLevelOfIncarnation(info.incarnation);
    return typeof level === "number" ? level : null;
  }

  /**
   * Count the feature levels the members named (impl/runtime/feature-gate.ts) and hand the core
   * the least of them when it changed; a leader whose raise waits says once why.
   */
  private countFeatures(): void {
    if (this.retiredReason !== null) return;
    const state = this.driver.state;
    const target = state.ctx.config.featureLevel;
    const { known, short } = countFeatures(
      {
        self: this.options.id,
        selfLevel: this.featureLevelNamed,
        members: membersOf(state.learner.configs),
        named: (id) => this.namedLevel(id),
      },
      target,
    );
    if (known !== this.featureCount.known) this.driver.featuresKnown(known);
    const waiting = state.role._tag === "leader" && target > featureLevelOf(state.learner.service) && short.length > 0;
    const waits = waiting ? waitReason(target, short) : "";
    if (waits !== "" && waits !== this.featureCount.waits) {
      this.events.add("warn", waits);
      this.options.log.warn({ target, known, short }, waits);
    } else if (waits === "" && this.featureCount.waits !== "" && known >= target) {
      const text = `every member says it executes feature level ${target}: the leader raises the log to it`;
      this.events.add("info", text);
      this.options.log.info({ target }, text);
    }
    this.featureCount = { known, waits };
  }

  /** Log membership changes this replica executed, and retire once it knows it was removed. */
  private noteMembership(before: CoreView, view: CoreView): void {
    const m = view.membership;
    const latest = m.pending.at(-1) ?? m.inForce;
    const previous = before.membership.pending.at(-1) ?? before.membership.inForce;
    if (latest.epoch !== previous.epoch && view.role !== "starting") {
      const text = `configuration chosen at slot ${latest.epoch}: voters ${latest.voters.join(",")}${latest.learners.length === 0 ? "" : `, learners ${latest.learners.join(",")}`}; governs from slot ${latest.governsFrom}`;
      this.events.add("info", text);
      this.options.log.info(
        { epoch: latest.epoch, governsFrom: latest.governsFrom, voters: latest.voters, learners: latest.learners },
        text,
      );
    }
    // The core decides (rule R5): only a replica whose id the log retired ever retires, once no
    // slot it has yet to execute needs its vote. A joining replica catching up on slots before its
    // own addition is in no list yet, and waits.
    if (this.retiredReason === null && m.retired !== null) this.retire(m.retired);
  }

  /**
   * Why `peer` is no longer a member, when this replica knows it for sure: the configuration in
   * force retired `peer` (retired ids never come back), and this replica is one of its voters. It
   * has then executed every slot before that configuration governs, so, as with the leader's
   * farewell (rule R4), the voters that go on without `peer` can learn them all from it. A removal
   * still pending is not enough: the slots before it governs may need the peer's vote.
   */
  private removedPeer(peer: ReplicaId): string | null {
    if (this.retiredReason !== null) return null;
    const m = kvAdapter.view(this.driver.state).membership;
    if (!m.inForce.retired.includes(peer) || !m.inForce.voters.includes(this.options.id)) return null;
    return `replica ${peer} was removed from the cluster: the configuration in force since slot ${m.inForce.governsFrom} (voters ${m.inForce.voters.join(",")}${m.inForce.learners.length === 0 ? "" : `, learners ${m.inForce.learners.join(",")}`}) does not include it, as replica ${this.options.id} knows`;
  }

  /** Stop the core and the links; keep answering /status; mark the data directory. */
  private retire(reason: string): void {
    this.retiredReason = reason;
    this.options.log.warn(
      { reason },
      "replica removed from the cluster: it stops serving; stop this process and delete its data directory",
    );
    this.events.add("warn", `${reason}; this replica no longer serves`);
    try {
      fs.writeFileSync(this.removedMarker, `${reason}\n`);
    } catch (error) {
      this.options.log.error({ err: error, file: this.removedMarker }, "could not mark the data directory as removed");
    }
    setImmediate(() => {
      this.driver.stop();
      void this.transport.close();
    });
  }

  /** What this replica tells its peers about itself in a handshake. */
  private peerInfo(incarnation: string): PeerInfo {
    return {
      http: this.advertiseHttp,
      incarnation,
      peer: formatAddress(this.options.advertisePeer ?? this.options.members.get(this.options.id)!),
    };
  }

  private newTransport(incarnation: string): Transport<KvMessage> {
    const { id } = this.options;
    return new Transport<KvMessage>({
      self: id,
      clusterId: this.options.clusterId,
      secret: this.options.secret,
      tls: this.tlsFiles?.current,
      listen: this.listenAddress(),
      peers: new Map([...this.options.members].filter(([peer]) => peer !== id)),
      codec: kvMessageReceived,
      info: this.peerInfo(incarnation),
      clock: this.options.clock,
      log: this.options.log,
      admission: this.options.peerAdmission,
      handshakeTimeoutMs: this.options.peerHandshakeTimeoutMs,
      refusalLogIntervalMs: this.options.peerLogIntervalMs,
      relayable: (message) => message._tag === "Heartbeat",
      onMessage: (from, message, wireId, senderIncarnation, bytes, relayed) => {
        this.metrics.messagesReceived.inc({ from: String(from), type: kvAdapter.messageType(message) });
        if (relayed) this.metrics.heartbeatCopiesReceived.inc({ from: String(from) });
        this.timeHeartbeat(from, message);
        if (message._tag === "Accepted") this.acceptHold.acknowledged(from, message.slot, this.options.clock.nowMs());
        const executed = kvAdapter.peerExecutedSlot(message);
        if (executed !== undefined) this.peerExecuted.set(from, executed);
        if (timeline !== null && (message._tag === "Accept" || message._tag === "Accepted"))
          timeline.mark(message._tag === "Accept" ? "recv-accept" : "recv-accepted", message.slot);
        this.driver.receive(from, message, wireId, senderIncarnation, bytes);
      },
      onRejected: (reason, logged) => {
        this.metrics.framesRejected.inc();
        // As the log: a flood of bad connections must not push everything else off the page.
        if (logged) this.events.add("warn", `closed a peer connection: ${reason.slice(0, 200)}`);
      },
      onRefused: (reason) => this.metrics.peerRefused.inc({ reason }),
      onDropped: (_to, reason) => this.metrics.messagesDropped.inc({ reason }),
      removedPeer: (peer) => this.removedPeer(peer),
      onRemoved: (by, reason) => {
        if (this.retiredReason === null) this.retire(`${reason} (told by replica ${by} when this replica reconnected)`);
      },
      onPeerLearned: (peer, address) =>
        this.events.add("info", `learned replica ${peer} at ${formatAddress(address)} (it connected to us)`),
      infoRefusal: (info) => {
        const level = featureLevelOfIncarnation(info.incarnation);
        return typeof level === "number" ? null : level.refusal;
      },
      onPeerEvent: (peer, event) => {
        // A handshake tells the feature level the peer executes.
        if (event === "connected" || event === "inbound") this.countFeatures();
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
      admission: () => this.admission.depths,
      appendsBehindSnapshot: () => this.storage.appendsBehindSnapshot,
      receivedUnvouched: () => this.storage.receivedUnvouched,
      transfersResumed: () => this.storage.transfersResumed,
      chunksAtRest: () => this.storage.chunksAtRest,
      snapshotValuesAtRest: () => this.storage.snapshotValuesAtRest,
    };
    return new ReplicaMetrics(
      this.options.id,
      depths,
      () => kvAdapter.view(this.driver.state),
      () => this.options.clock.nowMs(),
      this.driver.state.ctx.config,
    );
  }

  private status(): ReplicaStatus {
    return buildStatus({
      retired: this.retiredReason,
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

  /** The GET /v1/members document: the membership as this replica knows it, with addresses and progress. */
  private membersDocument(): Record<string, unknown> {
    const view = kvAdapter.view(this.driver.state);
    const m = view.membership;
    const latest = m.pending.at(-1) ?? m.inForce;
    const ids = new Set<ReplicaId>([...m.inForce.voters, ...m.inForce.learners, ...latest.voters, ...latest.learners]);
    for (const c of m.pending) for (const r of [...c.voters, ...c.learners]) ids.add(r);
    const health = new Map(this.transport.health().map((h) => [h.id, h]));
    const replicas = [...ids]
      .sort((a, b) => a - b)
      .map((id) => {
        const self = id === this.options.id;
        const executed = self ? view.executedSlot : (m.progress.get(id) ?? this.peerExecuted.get(id) ?? null);
        const address = self
          ? formatAddress(this.options.advertisePeer ?? this.options.members.get(id)!)
          : (this.addressOf(id)?.peer ?? null);
        return {
          id,
          role: latest.voters.includes(id) ? "voter" : latest.learners.includes(id) ? "learner" : "leaving",
          peerAddress: address,
          http: this.httpOf(id),
          connected: self ? null : (health.get(id)?.outbound ?? false),
          executedSlot: executed,
          lag: executed === null ? null : view.executedSlot - executed,
        };
      });
    // Replicas that dialled this one but are no members (spares waiting to be added), so that an
    // operator's tool can find a spare's address at any replica, whichever leads.
    const spares = this.transport
      .health()
      .filter((h) => !ids.has(h.id) && !latest.retired.includes(h.id) && h.inbound)
      .map((h) => ({ id: h.id, peerAddress: h.address, http: h.info?.http ?? null }));
    return {
      replica: this.options.id,
      role: this.retiredReason !== null ? "removed" : view.role,
      retired: this.retiredReason,
      leader: view.leader,
      leaderHttp: view.leader === null ? null : this.httpOf(view.leader),
      executedSlot: view.executedSlot,
      initialMembers: m.initialMembers,
      alpha: m.alpha,
      inForce: m.inForce,
      pending: m.pending,
      self: m.self,
      joining: m.joining,
      transfer: m.transfer,
      snapshotSlot: m.snapshotSlot,
      replicas,
      spares,
    };
  }

  /** Leader-side checks before a change is proposed (./member-precheck.ts); see docs/http-api.md. */
  private precheck(request: MemberRequest): ApiError | null {
    const view = kvAdapter.view(this.driver.state);
    if (view.role !== "leader") return null; // the driver redirects to the leader
    const m = view.membership;
    return precheckMemberRequest(request, {
      self: this.options.id,
      latest: m.pending.at(-1) ?? m.inForce,
      initialMembers: m.initialMembers,
      unsettled: membershipUnsettled(this.driver.state, this.options.clock.nowMs()),
      addressKnown: (id) => this.addressOf(id) !== null,
      featureLevelRequired: Math.max(view.sessions.featureLevel, view.sessions.featureLevelTarget),
      namedLevel: (id) => this.namedLevel(id),
    });
  }

  private newHttpServer(): http.Server {
    const hosts = new ClusterHosts({
      port: this.options.http.port,
      own: [formatAddress(this.options.http), this.advertiseHttp],
      extra: this.options.allowHosts ?? [],
      peers: () =>
        this.transport
          .health()
          .map((peer) => peer.info?.http)
          .filter((http) => http !== undefined),
    });
    return createHttpServer({
      tls: this.tlsFiles?.current,
      access: {
        authenticate: (authorization) => this.tokens.authenticate(authorization),
        hostAllowed: (host) => hosts.allows(host),
        publicStatus: this.options.publicStatus === true,
      },
      members: {
        show: () => this.membersDocument(),
        precheck: (request) => this.precheck(request),
        addressOf: (id) => this.addressOf(id),
        memberAddresses: () => this.memberAddresses(),
        reconfigure: (change) => this.driver.reconfigure(change),
      },
      retired: () => this.retiredReason,
      replicaId: this.options.id,
      submit:
        timeline === null
          ? (submission) => this.driver.submit(submission)
          : (submission) => this.timedSubmit(submission),
      openSession: () => this.driver.openSession(),
      admission: this.admission,
      httpAddressOf: (peer) => this.httpOf(peer),
      status: () => this.status(),
      metrics: () => this.metrics.render(),
      page: statusPageHtml(this.options.id),
      log: this.options.log,
      connectionsMax: this.options.httpConnectionsMax,
      ...(this.options.httpConnectionsPerAddressMax === undefined
        ? {}
        : { connectionsPerAddressMax: this.options.httpConnectionsPerAddressMax }),
      onConnectionDropped: (remote, bound) => {
        this.metrics.loopLag.work();
        const now = this.options.clock.nowMs();
        if (bound === "total") {
          this.metrics.httpConnectionsDropped.inc();
          if (this.refusalLog.allow(`connections-full ${remote}`, now))
            this.options.log.warn(
              { remote, max: this.options.httpConnectionsMax ?? httpConnectionsMaxDefault },
              "client connection closed: --http-connections-max connections are open (logged once a minute per address)",
            );
          return;
        }
        this.metrics.httpConnectionsAddressDropped.inc();
        if (this.refusalLog.allow(`connections-per-address ${remote}`, now))
          this.options.log.warn(
            {
              remote,
              max:
                this.options.httpConnectionsPerAddressMax ??
                connectionsPerAddressMaxOf(this.options.httpConnectionsMax ?? httpConnectionsMaxDefault),
            },
            "client connection closed: --http-connections-per-address-max connections from its address are open (logged once a minute per address)",
          );
      },
      onResponse: (route, code) => this.metrics.httpResponse(route, code),
      onAccessRefused: (reason, remote) => {
        this.metrics.httpRefused.inc({ reason });
        // One line per reason and client address per minute: a scan must not flood the log.
        if (this.refusalLog.allow(`${reason} ${remote}`, this.options.clock.nowMs()))
          this.options.log.warn({ reason, remote }, "client request refused by the access checks");
      },
    });
  }
}

/**
 * Every replica must derive the membership of every slot from the same initial configuration.
 * The first start records it next to the store; a later start with other initial members (an
 * initial member restarted with the current members as --peers but without --initial-members,
 * say) is refused before anything is served.
 */
/**
 * When the core is next ticked, judged from the state the last tick left: at the next instant a
 * tick can change something. A leader's timed work is its heartbeat (every 50 ms by default: it
 * renews the lease and resends unacknowledged Accepts), so it is ticked when the next one is due;
 * its CheckQuorum and its Prepare resends to a new voter are then judged at most one heartbeat
 * interval late (both count in election timeouts and heartbeat intervals, and the lease it stops
 * serving by has its own clock check). A follower's only timer is its election timeout (400 ms or
 * more by default): it is ticked when that is due (each heartbeat pushes it back, so an idle
 * follower wakes for a tick a few times a second). A candidate every 10 ms, and so is a replica
 * with work its ticks pace (catching up on chosen slots, a snapshot transfer, handing over after
 * its removal). A replica whose last step left chosen values to execute (a step executes at most
 * `batchBytesMax` of them) is ticked at once, after the messages waiting. The core's semantics do
 * not depend on it: every event carries its own clock reading. `rate` is the clock's (1 but in
 * tests): periods are wall-clock milliseconds.
 */
export function tickIntervalMs(state: KvReplicaState, rate = 1): number {
  const { learner, role } = state;
  if (executionPending(state)) return 1;
  const busy = learner.commitIndex > learner.executedUpTo || learner.transfer !== null || state.removal !== null;
  if (busy || role._tag === "candidate") return 10;
  const { heartbeatIntervalMs, electionTimeoutMsMin } = state.ctx.config;
  if (role._tag === "leader")
    return Math.max(1, Math.ceil(Math.min(heartbeatIntervalMs, role.heartbeatAt - state.now) / rate));
  const due = state.election.heardAt + state.election.timeoutMs - state.now;
  // Past due and still a follower: it may not campaign (a learner, say), and the next tick that
  // could change that is as far as any; a sixteenth of the election timeout, 10 to 25 ms.
  if (due <= 0) return Math.max(10, Math.min(25, Math.floor(electionTimeoutMsMin / 16)));
  return Math.max(1, Math.ceil(Math.min(electionTimeoutMsMin, due) / rate));
}

function checkInitialMembers(dataDir: string, members: readonly ReplicaId[], joining: boolean): void {
  const file = path.join(dataDir, "initial-members.json");
  const wanted = { initialMembers: [...members].sort((a, b) => a - b), joining };
  if (!fs.existsSync(file)) {
    fs.writeFileSync(`${file}.tmp`, `${JSON.stringify(wanted)}\n`);
    fs.renameSync(`${file}.tmp`, file);
    return;
  }
  let recorded: { initialMembers?: unknown; joining?: unknown };
  try {
    recorded = JSON.parse(fs.readFileSync(file, "utf8")) as { initialMembers?: unknown; joining?: unknown };
  } catch (error) {
    throw new StorageError("damaged", file, `not JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  const ids = Array.isArray(recorded.initialMembers) ? recorded.initialMembers.join(",") : "?";
  if (ids !== wanted.initialMembers.join(",")) {
    throw new StorageError(
      "foreign",
      file,
      `this replica was started with initial members ${ids}, not ${wanted.initialMembers.join(",")}: give --initial-members ${ids} (--peers may list the current members)`,
    );
  }
  if (recorded.joining !== joining) {
    throw new StorageError(
      "foreign",
      file,
      recorded.joining === true
        ? "this replica joined the cluster: start it with --join"
        : "this replica is an initial member: start it without --join",
    );
  }
}

function listen(server: ApiServer, address: Address): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(address.port, address.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

/** `step`, with the events of a write's path on the timeline (bench/write-timeline.ts). */
const timedStep: StepFunction<KvReplicaState, KvMessage, KvRecord, KvInput, KvOutput, KvStoredMessage> = (
  state,
  event,
) => {
  if (event._tag === "ClientRequest") timeline?.mark("step-request", -1);
  else if (event._tag === "Receive" && (event.message._tag === "Accept" || event.message._tag === "Accepted"))
    timeline?.mark(event.message._tag === "Accept" ? "step-accept" : "step-accepted", event.message.slot);
  const startUs = nowUs();
  const result = kvStep(state, event);
  if (result.effects.some((e) => e._tag === "Persist" && e.record._tag === "snapshot"))
    timeline?.span("snapshot-step", startUs);
  else if (event._tag === "Tick") timeline?.span("tick", startUs);
  return result;
};

/** `log`, with its hand-overs and their acknowledgements on the timeline when there is one. */
function timedLog(log: DurableLog<KvRecord>): DurableLog<KvRecord> {
  if (timeline === null || log.appendAsync === undefined) return log;
  const appendAsync = log.appendAsync.bind(log);
  return {
    append: (records) => log.append(records),
    read: log.read?.bind(log),
    appendAsync: (records, done) => {
      const key = firstVoteSlot(records);
      timeline?.mark("post", key);
      appendAsync(records, (error) => {
        timeline?.mark("durable", key);
        done(error);
      });
    },
    get recordCount() {
      return log.recordCount;
    },
  };
}

/**
 * Prometheus metrics of one replica (prom-client, own registry): commits, lease renewals,
 * elections and leader changes derived from successive core views; fsync latency and group
 * commit sizes from the driver; message, frame and HTTP counters; and queue depths sampled at
 * scrape time. Metrics observe; nothing decides on them.
 */
import { admissionRefusals } from "./peer-admission.ts";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { parseConfig, transferChecks, type Ballot, type Config, type ReplicaId } from "../core/index.ts";
import type { BatchReport } from "./driver.ts";
import type { BatchMetricsView, CoreView } from "./view.ts";
import { LoopLag } from "./loop-lag.ts";

/** The prefix of the process metrics (prom-client's defaults and the loop's lag). */
const processPrefix = "paxos_lease_process_";

/**
 * prom-client's default event-loop monitor, set to a period so long that it never fires: prom-client
 * starts one with every set of default metrics and has no option to leave it out. Its gauges are
 * replaced by those of {@link LoopLag}, which samples only while the replica works.
 */
const defaultLagMonitorOffMs = 2 ** 31 - 1;

/** The lag gauges of prom-client's default metrics (names after the prefix), each with the statistic it shows. */
const lagGauges = [
  ["nodejs_eventloop_lag_min_seconds", "The minimum recorded event loop delay", "minS"],
  ["nodejs_eventloop_lag_max_seconds", "The maximum recorded event loop delay", "maxS"],
  ["nodejs_eventloop_lag_mean_seconds", "The mean of the recorded event loop delays", "meanS"],
  ["nodejs_eventloop_lag_stddev_seconds", "The standard deviation of the recorded event loop delays", "stddevS"],
  ["nodejs_eventloop_lag_p50_seconds", "The 50th percentile of the recorded event loop delays", "p50S"],
  ["nodejs_eventloop_lag_p90_seconds", "The 90th percentile of the recorded event loop delays", "p90S"],
  ["nodejs_eventloop_lag_p99_seconds", "The 99th percentile of the recorded event loop delays", "p99S"],
] as const;

/** Depths sampled when /metrics is scraped. */
export interface DepthSource {
  readonly events: () => number;
  readonly requests: () => number;
  readonly droppedEvents: () => number;
  readonly outboundBytes: () => ReadonlyMap<ReplicaId, number>;
  /** Appends that waited behind a snapshot being serialized (storage-thread.ts). Default: none. */
  readonly appendsBehindSnapshot?: () => number;
  /** State transfers whose staged bytes did not give the digest verified (storage-thread.ts). Default: none. */
  readonly receivedUnvouched?: () => number;
  /** State transfers resumed after a restart from the chunks the store kept (storage-thread.ts). Default: none. */
  readonly transfersResumed?: () => number;
  /**
   * State-transfer chunks served from the stored record of a snapshot whose state was let go
   * (storage-thread.ts, `chunksAtRest`). Default: none.
   */
  readonly chunksAtRest?: () => number;
  /**
   * The store's values at rest snapshots serialized by a hole the storage thread filled from the
   * vote record (storage-thread.ts, `snapshotValuesAtRest`). Default: none.
   */
  readonly snapshotValuesAtRest?: () => number;
  /**
   * Admission control: requests and bytes held (`smallBytes` of them in the small requests'
   * reserve), requests waiting for room, refusals so far by reason. Default: none.
   */
  readonly admission?: () => {
    readonly requests: number;
    readonly bytes: number;
    readonly smallBytes: number;
    readonly waiting: number;
    readonly refused: { readonly requests: number; readonly bytes: number };
  };
}

/** The timing a replica's heartbeat histograms are cut by (impl/core/config.ts). */
export type HeartbeatTiming = Pick<Config, "heartbeatIntervalMs" | "leaseMs" | "electionTimeoutMsMin">;

/**
 * Bucket bounds of the heartbeat histograms, in milliseconds, finest around the heartbeat
 * interval, the lease and the election timeout, so that a quarter, half and all of the lease and
 * half and all of the election timeout are bounds whatever they are configured to (a bench counts
 * the heartbeats past them). At the defaults (50, 300 and 400 ms): 5, 10, 25, 50, 75, 100, 150,
 * 200, 300, 400, 600, 1000 and 2000 ms.
 */
export function heartbeatBucketsMs(timing: HeartbeatTiming): number[] {
  const { heartbeatIntervalMs: h, leaseMs: l, electionTimeoutMsMin: e } = timing;
  const bounds = [h / 10, h / 5, h / 2, h, 2 * h, l / 4, l / 2, l, 2 * l, e / 2, e, 2.5 * e, 5 * e];
  return [...new Set(bounds)].sort((a, b) => a - b);
}

/** The metric set of one replica. */
/** Values a Promise carries from which it counts as large (`largePromisesSent`): 1 MiB. */
export const largePromiseBytes = 1_048_576;

export class ReplicaMetrics {
  readonly registry = new Registry();
  private readonly commits = new Counter({
    name: "paxos_lease_commits_total",
    help: "Slots executed (commits applied to the state machine)",
    registers: [this.registry],
  });
  private readonly renewals = new Counter({
    name: "paxos_lease_lease_renewals_total",
    help: "Times this replica, as leader, extended its lease",
    registers: [this.registry],
  });
  private readonly elections = new Counter({
    name: "paxos_lease_elections_total",
    help: "Campaigns this replica started (became candidate)",
    registers: [this.registry],
  });
  private readonly leaderships = new Counter({
    name: "paxos_lease_leaderships_total",
    help: "Times this replica became leader",
    registers: [this.registry],
  });
  private readonly stepDowns = new Counter({
    name: "paxos_lease_step_downs_total",
    help: "Times this replica stopped leading, by cause: own (it stepped down by itself: CheckQuorum, its removal, behind a snapshot, or it campaigned again in a higher ballot of its own) or deposed (it promised another replica's higher ballot)",
    labelNames: ["cause"],
    registers: [this.registry],
  });
  private readonly leaderChanges = new Counter({
    name: "paxos_lease_leader_changes_total",
    help: "Changes of the leader this replica believes in",
    registers: [this.registry],
  });
  private readonly fsync = new Histogram({
    name: "paxos_lease_fsync_seconds",
    help: "Duration of one commit, from its hand-over to the storage thread until durable (transaction, fsync and the wait behind earlier commits)",
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });
  /**
   * Leader: from stepping a heartbeat (its `sentAt`, echoed in the answer) to the answer's arrival
   * off the socket: the part of the lease one renewal uses up. Past `leaseMs` no renewal can land.
   */
  readonly heartbeatRoundTrip: Histogram;
  /**
   * Leader: from stepping a heartbeat to handing it to the transport: the part of the round trip
   * spent behind the leader's storage. A heartbeat waits for the records it rests on
   * (DurableBeforeSend): its ballot's promise while not durable, and votes of earlier ballots at or
   * below the commit index it announces; never the leader's own votes in its ballot, which count
   * in no quorum before they are durable (impl/runtime/core-adapter.ts, `KvOvertaking`).
   */
  readonly heartbeatHold: Histogram;
  /**
   * Follower: time between the arrivals of two heartbeats from the same leader in the same ballot;
   * one longer than the election timeout lets the follower campaign. Fed by `heartbeatArrived`.
   */
  private readonly heartbeatGap: Histogram;
  /** Leader: copies of heartbeats its relay thread sent while the main thread sent none (heartbeat-relay.ts). */
  readonly heartbeatsRelayed: Counter<"to">;
  /** Follower: copies of a leader's heartbeats that came on its relay connection. */
  readonly heartbeatCopiesReceived: Counter<"from">;
  /** When the last heartbeat of each sender arrived, and in which ballot (for `heartbeatGap`). */
  private readonly heartbeatArrivals = new Map<ReplicaId, { readonly ballot: Ballot; readonly atMs: number }>();
  private readonly commitRecords = new Histogram({
    name: "paxos_lease_group_commit_records",
    help: "Records written per group commit",
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 1024],
    registers: [this.registry],
  });
  private readonly batchEvents = new Histogram({
    name: "paxos_lease_batch_events",
    help: "Events handled per batch",
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    registers: [this.registry],
  });
  /**
   * Values at rest (impl/core/at-rest.ts) read back from the store for a Promise or catch-up this
   * replica sent: how often its heap held no copy of a value a peer needed.
   */
  readonly valuesReadFromDisk = new Counter({
    name: "paxos_lease_values_read_from_disk_total",
    help: "Values at rest read back from the store for a Promise or catch-up reply sent to a peer",
    registers: [this.registry],
  });
  /**
   * The key-value store's values at rest (proofs/store-at-rest.md) read back from the vote records
   * that wrote them, for a command or a read that needed them whole (rule V4).
   */
  readonly storeValuesReadFromDisk = new Counter({
    name: "paxos_lease_store_values_read_from_disk_total",
    help: "Values of the key-value store at rest read back from the vote records that wrote them",
    registers: [this.registry],
  });
  /**
   * Promises sent carrying at least `largePromiseBytes` of values: a candidate behind slots that
   * hold large values (a lagging candidate facing them, impl/core/large-promises.test.ts), whose
   * Prepare resends back off (`prepareResendBackoff`) lest the copies flood its links.
   */
  readonly largePromisesSent = new Counter({
    name: "paxos_lease_large_promises_sent_total",
    help: "Promises sent to a peer carrying at least 1 MiB of accepted values",
    registers: [this.registry],
  });
  readonly messagesSent = new Counter({
    name: "paxos_lease_messages_sent_total",
    help: "Messages sent to peers",
    labelNames: ["to"],
    registers: [this.registry],
  });
  readonly messagesReceived = new Counter({
    name: "paxos_lease_messages_received_total",
    help: "Messages received from peers",
    labelNames: ["from", "type"],
    registers: [this.registry],
  });
  readonly messagesDropped = new Counter({
    name: "paxos_lease_messages_dropped_total",
    help: "Messages not sent or not queued",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  readonly framesRejected = new Counter({
    name: "paxos_lease_peer_connections_rejected_total",
    help: "Peer connections closed for a bad frame, message or handshake",
    registers: [this.registry],
  });
  readonly peerRefused = new Counter({
    name: "paxos_lease_peer_connections_refused_total",
    help: "Peer connections refused before their handshake: too many from their address, or in all (docs/operations.md)",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  readonly httpResponses = new Counter({
    name: "paxos_lease_http_responses_total",
    help: "Client API responses",
    labelNames: ["route", "status"],
    registers: [this.registry],
  });
  readonly httpConnectionsDropped = new Counter({
    name: "paxos_lease_http_connections_dropped_total",
    help: "Client connections closed as they arrived because --http-connections-max were open",
    registers: [this.registry],
  });
  readonly httpConnectionsAddressDropped = new Counter({
    name: "paxos_lease_http_connections_per_address_dropped_total",
    help: "Client connections closed as they arrived because --http-connections-per-address-max were open from their address",
    registers: [this.registry],
  });
  readonly httpRefused = new Counter({
    name: "paxos_lease_http_refused_total",
    help: "Client API requests refused by the access checks, by reason (unauthenticated, forbidden, host-refused, origin-refused, unsupported-media-type)",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  readonly transfersRefused = new Counter({
    name: "paxos_lease_transfers_refused_total",
    help: "State transfers refused and dropped, by the check that failed (json, contentDigest, state); catch-up starts over",
    labelNames: ["check"],
    registers: [this.registry],
  });
  readonly alarms = new Counter({
    name: "paxos_lease_divergence_alarms_total",
    help: "Replica divergence alarms raised by the core",
    registers: [this.registry],
  });
  /** Peers' checkpoints the divergence monitor could not compare: digests of two formats (an upgrade window). */
  readonly checkpointsUncompared = new Counter({
    name: "paxos_lease_checkpoints_uncompared_total",
    help: "Peers' divergence checkpoints not compared because their digest format is not this replica's (replicas of two versions during an upgrade); GET /status lists the peers",
    registers: [this.registry],
  });

  /**
   * The event loop's lag, sampled while the replica works (impl/runtime/loop-lag.ts): a batch that
   * wrote records or answered a client, and every HTTP answer or refusal, keep it sampling.
   */
  readonly loopLag = new LoopLag();

  /** This replica's id, which owns the ballots it campaigns in. */
  private readonly self: ReplicaId;

  /** `timing`: the replica's own (default: the core's defaults), which the heartbeat buckets follow. */
  constructor(
    replica: ReplicaId,
    depths: DepthSource,
    view: () => CoreView,
    clockNowMs: () => number,
    timing: HeartbeatTiming = parseConfig({ members: [replica], self: replica }),
  ) {
    this.self = replica;
    this.registry.setDefaultLabels({ replica: String(replica) });
    collectDefaultMetrics({
      register: this.registry,
      prefix: processPrefix,
      eventLoopMonitoringPrecision: defaultLagMonitorOffMs,
    });
    this.lagMetrics();
    for (const reason of admissionRefusals) this.peerRefused.inc({ reason }, 0);
    for (const check of transferChecks) this.transfersRefused.inc({ check }, 0);
    const registers = [this.registry];
    const buckets = heartbeatBucketsMs(timing).map((ms) => ms / 1000);
    this.heartbeatRoundTrip = new Histogram({
      name: "paxos_lease_heartbeat_round_trip_seconds",
      help: "Leader: from stepping a heartbeat to its answer's arrival (the part of the lease one renewal uses up)",
      buckets,
      registers,
    });
    this.heartbeatHold = new Histogram({
      name: "paxos_lease_heartbeat_hold_seconds",
      help: "Leader: from stepping a heartbeat to handing it to the transport (waits for its ballot's promise while not durable, and for votes of earlier ballots up to the commit index it announces)",
      buckets,
      registers,
    });
    this.heartbeatsRelayed = new Counter({
      name: "paxos_lease_heartbeats_relayed_total",
      help: "Leader: copies of heartbeats its relay thread sent because the main thread had sent none for two heartbeat intervals",
      labelNames: ["to"],
      registers,
    });
    this.heartbeatCopiesReceived = new Counter({
      name: "paxos_lease_heartbeat_copies_received_total",
      help: "Follower: copies of a leader's heartbeats that arrived on its heartbeat relay connection",
      labelNames: ["from"],
      registers,
    });
    this.heartbeatGap = new Histogram({
      name: "paxos_lease_heartbeat_gap_seconds",
      help: "Follower: time between the arrivals of two heartbeats from one leader in one ballot (it campaigns past its election timeout)",
      buckets,
      registers,
    });
    const admission = depths.admission;
    if (admission !== undefined) {
      new Gauge({
        name: "paxos_lease_admission_requests_in_flight",
        help: "Client requests admitted and not yet answered",
        registers,
        collect() {
          this.set(admission().requests);
        },
      });
      new Gauge({
        name: "paxos_lease_admission_bytes_in_flight",
        help: "Bytes of admitted client request bodies not yet answered, the small requests' reserve included",
        registers,
        collect() {
          this.set(admission().bytes);
        },
      });
      new Gauge({
        name: "paxos_lease_admission_small_bytes_in_flight",
        help: "Of the bytes in flight, those of small requests (bodies under --request-small-bytes-max, 64 KiB by default) held in their reserve",
        registers,
        collect() {
          this.set(admission().smallBytes);
        },
      });
      new Gauge({
        name: "paxos_lease_admission_requests_waiting",
        help: "Client requests waiting for room within the byte bounds, their bodies unread",
        registers,
        collect() {
          this.set(admission().waiting);
        },
      });
      new Counter({
        name: "paxos_lease_admission_refused_total",
        help: "Client requests refused with 429, by the limit they would have passed (requests, bytes)",
        labelNames: ["limit"],
        registers,
        collect() {
          const refused = admission().refused;
          this.reset();
          this.inc({ limit: "requests" }, refused.requests);
          this.inc({ limit: "bytes" }, refused.bytes);
        },
      });
    }
    const unvouched = depths.receivedUnvouched;
    if (unvouched !== undefined)
      new Counter({
        name: "paxos_lease_transfer_stage_refused_total",
        help: "State transfers whose staged bytes, read back, did not give the digest verified: stored as the replica's own serialization",
        registers,
        collect() {
          this.reset();
          this.inc(unvouched());
        },
      });
    const resumed = depths.transfersResumed;
    if (resumed !== undefined)
      new Counter({
        name: "paxos_lease_transfers_resumed_total",
        help: "State transfers that went on after a restart from the chunks kept on disk, instead of starting over from byte 0 (a resumption given up counts as none)",
        registers,
        collect() {
          this.reset();
          this.inc(resumed());
        },
      });
    const atRest = depths.chunksAtRest;
    if (atRest !== undefined)
      new Counter({
        name: "paxos_lease_transfer_chunks_at_rest_total",
        help: "State-transfer chunks served from the stored record of a snapshot whose state this replica let go",
        registers,
        collect() {
          this.reset();
          this.inc(atRest());
        },
      });
    const valuesAtRest = depths.snapshotValuesAtRest;
    if (valuesAtRest !== undefined)
      new Counter({
        name: "paxos_lease_snapshot_values_at_rest_total",
        help: "Values of the key-value store at rest that snapshots serialized by filling them in from their vote records",
        registers,
        collect() {
          this.reset();
          this.inc(valuesAtRest());
        },
      });
    const behindSnapshot = depths.appendsBehindSnapshot;
    if (behindSnapshot !== undefined)
      new Counter({
        name: "paxos_lease_appends_behind_snapshot_total",
        help: "Appends that waited behind a snapshot record still being serialized (records reach the disk in order)",
        registers,
        collect() {
          this.reset();
          this.inc(behindSnapshot());
        },
      });
    new Gauge({
      name: "paxos_lease_event_queue_depth",
      help: "Events waiting for the core",
      registers,
      collect() {
        this.set(depths.events());
      },
    });
    new Gauge({
      name: "paxos_lease_client_requests_pending",
      help: "Client requests waiting for a reply",
      registers,
      collect() {
        this.set(depths.requests());
      },
    });
    new Gauge({
      name: "paxos_lease_peer_events_dropped",
      help: "Peer messages dropped because the event queue was full",
      registers,
      collect() {
        this.set(depths.droppedEvents());
      },
    });
    new Gauge({
      name: "paxos_lease_peer_outbound_bytes",
      help: "Bytes queued on the outbound connection to a peer",
      labelNames: ["peer"],
      registers,
      collect() {
        for (const [peer, bytes] of depths.outboundBytes()) this.set({ peer: String(peer) }, bytes);
      },
    });
    new Gauge({
      name: "paxos_lease_is_leader",
      help: "1 when this replica leads",
      registers,
      collect() {
        this.set(view().role === "leader" ? 1 : 0);
      },
    });
    new Gauge({
      name: "paxos_lease_executed_slot",
      help: "Highest slot executed",
      registers,
      collect() {
        this.set(view().executedSlot);
      },
    });
    new Gauge({
      name: "paxos_lease_feature_level",
      help: "The feature level in force after the executed slot (1 until a raise is executed; docs/operations.md, Upgrading)",
      registers,
      collect() {
        this.set(view().sessions.featureLevel);
      },
    });
    new Gauge({
      name: "paxos_lease_feature_level_target",
      help: "The feature level a leader raises the log to (featureLevel of the core configuration; docs/operations.md, Upgrading)",
      registers,
      collect() {
        this.set(view().sessions.featureLevelTarget);
      },
    });
    new Gauge({
      name: "paxos_lease_feature_level_known",
      help: "The least feature level the members named in their handshakes: a leader raises the log to the target only once this reaches it",
      registers,
      collect() {
        this.set(view().sessions.featureLevelKnown);
      },
    });
    new Gauge({
      name: "paxos_lease_sessions",
      help: "Client sessions the replicated state keeps (bounded by sessionsMax from feature level 2)",
      registers,
      collect() {
        this.set(view().sessions.count);
      },
    });
    new Gauge({
      name: "paxos_lease_sessions_evicted",
      help: "Client sessions evicted by the session bound since feature level 2 was raised: a running count of the replicated state, equal on every replica at a slot",
      registers,
      collect() {
        this.set(view().sessions.evicted);
      },
    });
    new Gauge({
      name: "paxos_lease_commit_index",
      help: "Highest slot known chosen (with all below)",
      registers,
      collect() {
        this.set(view().commitIndex);
      },
    });
    new Gauge({
      name: "paxos_lease_promised_round",
      help: "Round of the highest ballot promised",
      registers,
      collect() {
        this.set(view().promisedBallot.round);
      },
    });
    new Gauge({
      name: "paxos_lease_leader_pending_commands",
      help: "Client commands a leader holds before proposing",
      registers,
      collect() {
        this.set(view().pendingCommands);
      },
    });
    new Gauge({
      name: "paxos_lease_leader_inflight_slots",
      help: "Slots proposed and not yet chosen",
      registers,
      collect() {
        this.set(view().inflightSlots);
      },
    });
    new Gauge({
      name: "paxos_lease_configuration_voters",
      help: "Voters of the configuration in force",
      registers,
      collect() {
        this.set(view().membership.inForce.voters.length);
      },
    });
    new Gauge({
      name: "paxos_lease_configuration_learners",
      help: "Learners of the configuration in force",
      registers,
      collect() {
        this.set(view().membership.inForce.learners.length);
      },
    });
    new Gauge({
      name: "paxos_lease_configuration_epoch",
      help: "Slot at which the configuration in force was chosen (0: the initial one)",
      registers,
      collect() {
        this.set(view().membership.inForce.epoch);
      },
    });
    new Gauge({
      name: "paxos_lease_configurations_pending",
      help: "Chosen configurations that govern later slots",
      registers,
      collect() {
        this.set(view().membership.pending.length);
      },
    });
    new Gauge({
      name: "paxos_lease_lease_remaining_seconds",
      help: "Time left on this leader's lease by its own clock (0 when not leader)",
      registers,
      collect() {
        const until = view().leaseUntil;
        this.set(until === null ? 0 : Math.max(0, until - clockNowMs()) / 1000);
      },
    });
  }

  /**
   * A heartbeat from `from` in `ballot` arrived at `nowMs` (this replica's clock). The gap is
   * measured from the previous heartbeat of the same sender in the same ballot only: a leader
   * that lost its leadership and won it again later leads in a new ballot, and the time it spent
   * without leading is no gap between two heartbeats of one leadership.
   */
  heartbeatArrived(from: ReplicaId, ballot: Ballot, nowMs: number): void {
    const last = this.heartbeatArrivals.get(from);
    if (last !== undefined && last.ballot.round === ballot.round && last.ballot.replica === ballot.replica)
      this.heartbeatGap.observe(Math.max(0, nowMs - last.atMs) / 1000);
    this.heartbeatArrivals.set(from, { ballot, atMs: nowMs });
  }

  /**
   * The loop's lag under prom-client's names (the statistics since the last scrape; all 0 when the
   * replica did no work meanwhile), and the time one `setImmediate` takes at the scrape.
   */
  private lagMetrics(): void {
    const registers = [this.registry];
    for (const [name] of lagGauges) this.registry.removeSingleMetric(`${processPrefix}${name}`);
    this.registry.removeSingleMetric(`${processPrefix}nodejs_eventloop_lag_seconds`);
    new Gauge({
      name: `${processPrefix}nodejs_eventloop_lag_seconds`,
      help: "Lag of event loop in seconds (one setImmediate at the scrape)",
      registers,
      async collect() {
        const start = performance.now();
        await new Promise((resolve) => setImmediate(resolve));
        this.set((performance.now() - start) / 1000);
      },
    });
    const loopLag = this.loopLag;
    let stats = loopLag.take();
    // The first gauge collected in a scrape takes the window; the others read the same one.
    const [first, ...rest] = lagGauges;
    new Gauge({
      name: `${processPrefix}${first[0]}`,
      help: `${first[1]}, sampled while the replica works`,
      registers,
      collect() {
        stats = loopLag.take();
        this.set(stats[first[2]]);
      },
    });
    for (const [name, help, key] of rest)
      new Gauge({
        name: `${processPrefix}${name}`,
        help: `${help}, sampled while the replica works`,
        registers,
        collect() {
          this.set(stats[key]);
        },
      });
  }

  /** Count a client API answer (the HTTP API's `onResponse`): work, for the lag monitor. */
  httpResponse(route: string, status: number): void {
    this.httpResponses.inc({ route, status: String(status) });
    this.loopLag.work();
  }

  /**
   * Account for one commit made durable (the driver's `onCommit`): a batch's records can join a
   * later commit, or be committed while the batch's report is long made (the leader's own vote),
   * so the commits are counted here, not per batch.
   */
  onCommit(records: number, fsyncMs: number): void {
    this.fsync.observe(fsyncMs / 1000);
    this.commitRecords.observe(records);
  }

  /** Account for one driver batch and the view change it caused. */
  onBatch(report: BatchReport, before: BatchMetricsView, after: BatchMetricsView): void {
    if (report.records > 0 || report.replies > 0) this.loopLag.work();
    this.batchEvents.observe(report.events);
    if (after.executedSlot > before.executedSlot) this.commits.inc(after.executedSlot - before.executedSlot);
    if (after.uncomparedCount > before.uncomparedCount)
      this.checkpointsUncompared.inc(after.uncomparedCount - before.uncomparedCount);
    if (after.role === "candidate" && (before.role !== "candidate" || after.ballot !== before.ballot))
      this.elections.inc();
    if (after.role === "leader" && (before.role !== "leader" || after.ballot !== before.ballot)) this.leaderships.inc();
    if (before.role === "leader" && (after.role !== "leader" || after.ballot !== before.ballot))
      this.stepDowns.inc({ cause: this.deposed(before, after) ? "deposed" : "own" });
    if (after.leader !== before.leader && after.leader !== null) this.leaderChanges.inc();
    const renewed = before.role === "leader" && after.role === "leader" && after.ballot === before.ballot;
    if (renewed && after.leaseUntil !== null && before.leaseUntil !== null && after.leaseUntil > before.leaseUntil)
      this.renewals.inc();
  }

  /**
   * Whether a leadership ended by a promise to another replica's higher ballot. A promise to a
   * ballot of its own is its own campaign (CheckQuorum, then an election it may have won within
   * the same batch), not a deposition. A batch that both deposed it and saw it campaign again in
   * a higher ballot of its own is not told apart from the latter: the views show only the end.
   */
  private deposed(before: BatchMetricsView, after: BatchMetricsView): boolean {
    const was = before.promisedBallot;
    const now = after.promisedBallot;
    if (now.round === was.round && now.replica === was.replica) return false;
    return now.replica !== this.self;
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

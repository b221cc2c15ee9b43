/**
 * The status of one replica as JSON (served at /status and rendered by the status page): who
 * leads, ballot, lease remaining, executed slot, each peer's link health and lag, queue depths,
 * and a bounded list of recent events (role and leader changes, peer links, alarms).
 * Observation only; nothing here feeds back into the core.
 */
import type { ReplicaId } from "../core/index.ts";
import type { PeerHealth } from "./transport.ts";
import type { ConfigurationView, CoreView, MembershipView } from "./view.ts";

/** Recent events kept for the status page. */
export const recentEventsMax = 100;

export interface RecentEvent {
  /** Local monotonic clock reading, in milliseconds. */
  readonly atMs: number;
  /** Wall-clock time, for humans only. */
  readonly time: string;
  readonly level: "info" | "warn" | "error";
  readonly text: string;
}

/** A bounded, newest-last log of notable events. */
export class RecentEvents {
  private readonly items: RecentEvent[] = [];

  constructor(private readonly nowMs: () => number) {}

  add(level: RecentEvent["level"], text: string): void {
    this.items.push({ atMs: this.nowMs(), time: new Date().toISOString(), level, text });
    if (this.items.length > recentEventsMax) this.items.splice(0, this.items.length - recentEventsMax);
  }

  /** Newest first. */
  list(): readonly RecentEvent[] {
    return [...this.items].reverse();
  }

  /** Note what changed between two views, as sentences. */
  noteViewChange(before: CoreView, after: CoreView): void {
    if (after.role !== before.role || after.ballot !== before.ballot) {
      const ballot = after.ballot === null ? "" : ` in ballot ${after.ballot}`;
      this.add(after.role === "halted" ? "error" : "info", `became ${after.role}${ballot}`);
    }
    if (after.leader !== before.leader) {
      this.add("info", after.leader === null ? "no leader known" : `leader is replica ${after.leader}`);
    }
  }
}

/** One peer as the status shows it. */
export interface PeerStatus extends PeerHealth {
  readonly http: string | null;
  readonly executedSlot: number | null;
  /** Our executed slot minus the peer's last reported one (null: not known here). */
  readonly lag: number | null;
}

/** The whole /status document. */
export interface ReplicaStatus {
  readonly replica: ReplicaId;
  readonly clusterId: string;
  readonly http: string;
  readonly uptimeMs: number;
  readonly role: CoreView["role"] | "removed";
  /** Why this replica no longer serves (it was removed from the cluster), or null. */
  readonly retired: string | null;
  readonly leader: ReplicaId | null;
  readonly leaderHttp: string | null;
  readonly ballot: string | null;
  readonly promised: string;
  readonly leaseRemainingMs: number | null;
  readonly executedSlot: number;
  /** Fingerprint of the executed state (see CoreView.digest): equal on replicas at the same executed slot. */
  readonly digest: string;
  readonly commitIndex: number;
  readonly pendingCommands: number;
  readonly inflightSlots: number;
  readonly halted: string | null;
  /**
   * Peers whose latest checkpoint the divergence monitor could not compare with this replica's: the
   * digests are of two formats (replicas of two versions during an upgrade; docs/operations.md,
   * "Upgrading"). Empty once every peer's checkpoints are compared again.
   */
  readonly uncomparedCheckpoints: CoreView["uncompared"];
  /**
   * The feature level in force, the highest this version executes, and the session table's size and
   * evictions (docs/operations.md, "Upgrading"; docs/http-api.md, sessions).
   */
  readonly sessions: CoreView["sessions"];
  readonly membership: {
    readonly initialMembers: readonly ReplicaId[];
    readonly alpha: number;
    readonly inForce: ConfigurationView;
    readonly pending: readonly ConfigurationView[];
    readonly self: MembershipView["self"];
    readonly transfer: MembershipView["transfer"];
    readonly snapshotSlot: number | null;
  };
  readonly storage: { readonly file: string; readonly records: number };
  readonly queues: { readonly events: number; readonly requests: number; readonly droppedEvents: number };
  readonly clockRate: number;
  readonly peers: readonly PeerStatus[];
  readonly events: readonly RecentEvent[];
}

/** Everything {@link buildStatus} reads. */
export interface StatusSources {
  readonly retired: string | null;
  readonly replica: ReplicaId;
  readonly clusterId: string;
  readonly http: string;
  readonly startedAtMs: number;
  readonly nowMs: number;
  readonly view: CoreView;
  readonly peers: readonly PeerHealth[];
  readonly peerExecuted: ReadonlyMap<ReplicaId, number>;
  readonly httpOf: (id: ReplicaId) => string | null;
  readonly storage: { readonly file: string; readonly records: number };
  readonly queues: ReplicaStatus["queues"];
  readonly clockRate: number;
  readonly events: readonly RecentEvent[];
}

/** Assemble the /status document. */
export function buildStatus(s: StatusSources): ReplicaStatus {
  const view = s.view;
  return {
    replica: s.replica,
    clusterId: s.clusterId,
    http: s.http,
    uptimeMs: Math.round(s.nowMs - s.startedAtMs),
    role: s.retired !== null ? "removed" : view.role,
    retired: s.retired,
    leader: view.leader,
    leaderHttp: view.leader === null ? null : s.httpOf(view.leader),
    ballot: view.ballot,
    promised: view.promised,
    leaseRemainingMs: view.leaseUntil === null ? null : Math.max(0, Math.round(view.leaseUntil - s.nowMs)),
    executedSlot: view.executedSlot,
    digest: view.digest,
    commitIndex: view.commitIndex,
    pendingCommands: view.pendingCommands,
    inflightSlots: view.inflightSlots,
    halted: view.halted,
    uncomparedCheckpoints: view.uncompared,
    sessions: view.sessions,
    membership: {
      initialMembers: view.membership.initialMembers,
      alpha: view.membership.alpha,
      inForce: view.membership.inForce,
      pending: view.membership.pending,
      self: view.membership.self,
      transfer: view.membership.transfer,
      snapshotSlot: view.membership.snapshotSlot,
    },
    storage: s.storage,
    queues: s.queues,
    clockRate: s.clockRate,
    peers: s.peers.map((peer) => {
      const executed = s.peerExecuted.get(peer.id) ?? null;
      return {
        ...peer,
        http: s.httpOf(peer.id),
        executedSlot: executed,
        lag: executed === null ? null : view.executedSlot - executed,
      };
    }),
    events: s.events,
  };
}

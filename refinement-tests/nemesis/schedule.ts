/**
 * Fault schedules: a seed gives the same list of faults, with the same kinds, start offsets,
 * durations and parameters, every time. The processes' timing is not deterministic, so the
 * same schedule does not give the same run; which replica "the leader" is gets resolved when
 * the fault starts, and the run's report records the resolved targets and the actual times so
 * a run can be re-driven fault by fault. Pure: no clock, no I/O.
 */

/** Every kind of fault the nemesis injects. */
export const faultKinds = [
  /** SIGKILL the leader; restart it on its data after the duration. */
  "kill-leader",
  /** SIGKILL a follower; restart it after the duration. */
  "kill-follower",
  /** SIGKILL a majority (the leader and followers); restart them after the duration. */
  "kill-majority",
  /** SIGSTOP the leader for the duration (longer than a lease), then SIGCONT: the stale-lease hazard. */
  "pause-leader",
  /** Cut the leader off from every other replica, both ways (frames dropped). */
  "partition-leader",
  /** Cut one follower off, both ways. */
  "partition-follower",
  /** Every replica hears the others only through one bridge replica (Jepsen's bridge; 5 replicas). */
  "partition-bridge",
  /** The leader's messages to the others are lost; theirs still reach it. */
  "one-way-from-leader",
  /** The others' messages to the leader are lost; its messages still reach them. */
  "one-way-to-leader",
  /** Every link loses a fraction of its frames. */
  "lossy-links",
  /**
   * Every link delays every frame (by the parameter, plus jitter of up to half of it: messages on different links
   * reorder).
   */
  "slow-links",
  /** Every connection of the leader's links is reset and reconnects are refused. */
  "cut-leader",
  /**
   * The leader's link goes down and up again and again (on hosts: its interface; on the relay: its peer frames
   * dropped).
   */
  "flap-leader",
  /** Stop the leader cleanly (SIGTERM) and start it again on its data at once. */
  "restart-leader",
  /** Stop a follower cleanly and start it again. */
  "restart-follower",
  /** The leader's commits take longer (test-only slow disk). */
  "slow-disk-leader",
  /**
   * Concurrent writes of 1 MiB values to the leader (the parameter: how many writers, each in a
   * closed loop) for the duration, beside the clients' load: a legal burst the leader must ride
   * out without losing its lease.
   */
  "burst",
  /**
   * Waves of new client connections to the leader (the parameter: how many per wave, opened at
   * once), each with one linearizable read and `Connection: close`, back to back for the duration,
   * beside the clients' load: legal clients the leader must serve or refuse without losing its
   * lease. On a loaded machine its main thread then waits for a core, and the heartbeat relay
   * (impl/runtime/heartbeat-relay.ts) sends the followers copies of its heartbeats meanwhile.
   */
  "flood",
  /**
   * Hostile connections to the leader's client port while the next faults go on (it holds no
   * fault slot): bytes that are not HTTP, too many or too large headers, an unknown
   * Transfer-Encoding, two Host headers, trickled headers, silence, and the per-address bound
   * filled from one address and passed by the parameter's count. Each must be refused or closed as
   * documented, without costing the leader its leadership and with the honest clients served.
   */
  "hostile-clients",
  /**
   * A follower falls behind a snapshot while appends are in flight: it is cut off (both ways)
   * while writers of 64 KiB values (the parameter: how many) make the state large and the log
   * pass a snapshot slot, held until the leader's latest snapshot lies beyond the follower's (at
   * most a bound); then it is healed under the same writes, which go on until it has caught up
   * past that snapshot (again at most a bound). Every replica serializes that large state while
   * Accepts and catch-up replies keep arriving: the appends that wait behind a snapshot.
   */
  "follower-behind-snapshot",
  /**
   * The same, and once the healed follower is receiving the leader's snapshot (its /status shows a
   * transfer in progress), SIGKILL the follower, the receiver; restart it half a second later.
   */
  "transfer-kill-receiver",
  /** The same, but SIGKILL the replica sending the snapshot (the leader, as a rule); restart it. */
  "transfer-kill-sender",
  /**
   * SIGSTOP every replica process at once for longer than an election timeout (a paused virtual
   * machine, a suspended laptop), then SIGCONT them all in a random order within a few
   * milliseconds: the longer wait after a stop (`waitAfterStall`) for real.
   */
  "freeze-all",
  /**
   * The leader's machine loses power: SIGKILL, and every write it had not fsynced is lost; restart after the duration.
   */
  "power-loss-leader",
  /** A follower's machine loses power; restart after the duration. */
  "power-loss-follower",
  // Membership changes (membership.ts): made in the background while the faults after them go on.
  /** Start a spare and add it: learner, catch-up, promotion. */
  "member-add",
  /** Replace a follower by a spare (added first), and stop the replaced one once it retired. */
  "member-replace",
  /** The same, and SIGKILL the leader right after the replacement is chosen. */
  "member-replace-kill-leader",
  /** Remove a follower (only with more than three voters) and stop it once it retired. */
  "member-remove",
  /** Add a spare under a new id on the emptied data directory of the replica removed last. */
  "member-readd",
] as const;
export type FaultKind = (typeof faultKinds)[number];

/** One planned fault. Times are milliseconds from the run's origin. */
export interface PlannedFault {
  readonly kind: FaultKind;
  readonly at: number;
  readonly durationMs: number;
  /**
   * Loss rate (lossy-links), delay in ms (slow-links), writers (burst, follower-behind-snapshot), connections per
   * wave (flood) or connections past the per-address bound (hostile-clients); 0 otherwise.
   */
  readonly parameter: number;
  /** A number in [0, 1) to pick among equally good targets (a follower, a majority's members). */
  readonly pick: number;
}

/** Options of {@link planSchedule}. */
export interface ScheduleOptions {
  readonly seed: number;
  /** Faults start no later than this (ms from the origin); healing and checks come after. */
  readonly faultsMs: number;
  /** Quiet time before the first fault, in milliseconds. Default 3000. */
  readonly warmupMs?: number;
  /** Kinds to draw from. Default: every kind valid for `replicas`. */
  readonly kinds?: readonly FaultKind[];
  /** Draw kinds in this order (cycling) instead of at random. Default false. */
  readonly inOrder?: boolean;
  readonly replicas: number;
  /** Spare replicas the membership changes may use. Default 0: no membership changes. */
  readonly spares?: number;
  /** Scales durations and gaps (the short test run uses < 1). Default 1. */
  readonly pace?: number;
}

/** mulberry32: the schedule's only source of randomness. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Duration range of each kind, in milliseconds (before `pace`). */
const durations: Record<FaultKind, readonly [number, number]> = {
  "kill-leader": [1000, 4000],
  "kill-follower": [1000, 5000],
  "kill-majority": [1000, 3000],
  // At least three leases (300 ms by default): the others elect a new leader meanwhile.
  "pause-leader": [1200, 4000],
  "partition-leader": [1500, 5000],
  "partition-follower": [1500, 5000],
  "partition-bridge": [1500, 5000],
  "one-way-from-leader": [1500, 4000],
  "one-way-to-leader": [1500, 4000],
  "lossy-links": [2000, 5000],
  "slow-links": [2000, 5000],
  "cut-leader": [1000, 3000],
  "flap-leader": [1500, 4000],
  "restart-leader": [0, 0],
  "restart-follower": [0, 0],
  "slow-disk-leader": [1500, 4000],
  burst: [1500, 4000],
  flood: [2000, 5000],
  // How long new rounds of hostile connections start; a round waits for its 408s (10 s and more).
  "hostile-clients": [4000, 12000],
  // The least time cut off; the fault holds on until the leader's snapshot passes the follower.
  "follower-behind-snapshot": [1500, 3000],
  "transfer-kill-receiver": [1500, 3000],
  "transfer-kill-sender": [1500, 3000],
  // Longer than the longest election timeout (600 ms by default) and a few leases.
  "freeze-all": [1100, 3000],
  "power-loss-leader": [1000, 4000],
  "power-loss-follower": [1000, 5000],
  // A change holds nothing: the next fault starts while it is being made.
  "member-add": [0, 0],
  "member-replace": [0, 0],
  "member-replace-kill-leader": [0, 0],
  "member-remove": [0, 0],
  "member-readd": [0, 0],
};

/** The kinds that make a follower fall behind a snapshot (and the two that kill during its transfer). */
export const behindKinds: readonly FaultKind[] = [
  "follower-behind-snapshot",
  "transfer-kill-receiver",
  "transfer-kill-sender",
];

export function isBehindKind(kind: FaultKind): boolean {
  return behindKinds.includes(kind);
}

/** Is `kind` a membership change (made in the background by membership.ts)? */
export function isMembershipKind(kind: FaultKind): boolean {
  return kind.startsWith("member-");
}

/** The kinds that make sense for a cluster of `replicas` with `spares` (membership changes need spares). */
export function kindsFor(replicas: number, spares = 0): FaultKind[] {
  return faultKinds.filter((k) => (k !== "partition-bridge" || replicas >= 5) && (!isMembershipKind(k) || spares > 0));
}

function parameterOf(kind: FaultKind, random: () => number): number {
  if (kind === "lossy-links") return Math.round((0.1 + 0.4 * random()) * 100) / 100;
  if (kind === "slow-links") return Math.round(10 + 140 * random());
  if (kind === "burst") return 4 + Math.floor(13 * random());
  if (kind === "flood") return 300 + Math.floor(501 * random());
  if (kind === "hostile-clients") return 8 + Math.floor(25 * random());
  if (isBehindKind(kind)) return 8 + Math.floor(9 * random());
  return 0;
}

/** The faults of a run, in start order, none overlapping another. */
export function planSchedule(options: ScheduleOptions): PlannedFault[] {
  const random = seededRandom(options.seed);
  const spares = options.spares ?? 0;
  const kinds = options.kinds ?? kindsFor(options.replicas, spares);
  if (kinds.length === 0) throw new Error("no fault kinds to draw from");
  for (const kind of kinds)
    if (!kindsFor(options.replicas, spares).includes(kind))
      throw new Error(
        isMembershipKind(kind)
          ? `fault ${kind} needs spare replicas (--spares)`
          : `fault ${kind} needs more than ${options.replicas} replicas`,
      );
  const pace = options.pace ?? 1;
  const faults: PlannedFault[] = [];
  let at = options.warmupMs ?? 3000;
  const offset = Math.floor(random() * kinds.length);
  for (let i = 0; at < options.faultsMs; i++) {
    const kind =
      options.inOrder === true ? kinds[(i + offset) % kinds.length]! : kinds[Math.floor(random() * kinds.length)]!;
    const [min, max] = durations[kind];
    const durationMs = Math.round(
      (min + (max - min) * random()) * (kind === "pause-leader" || kind === "freeze-all" ? Math.max(1, pace) : pace),
    );
    faults.push({ kind, at: Math.round(at), durationMs, parameter: parameterOf(kind, random), pick: random() });
    // Recovery time after each fault: a new leader, catch-up, some load under no fault. Hostile
    // clients overlap the next fault: it starts with them (unless they are all there is to draw).
    const gap = (1500 + 2500 * random()) * pace;
    if (kind !== "hostile-clients" || kinds.every((k) => k === "hostile-clients")) at += durationMs + gap;
  }
  return faults;
}

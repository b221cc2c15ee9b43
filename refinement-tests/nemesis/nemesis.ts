/**
 * The nemesis: carries out a planned schedule (schedule.ts) on a live cluster. Each fault's
 * targets are resolved when it starts ("the leader" is whoever says it leads then), the fault
 * holds for its duration, and then exactly what it broke is healed: killed replicas restart on
 * their data, paused ones resume, links pass again, a slow disk is fast again. Everything it
 * does is recorded with run times, for the report and the run's page.
 */
import http from "node:http";
import net from "node:net";
import { sleep } from "../../impl/runtime/testing.ts";
import { BusyThreads, busyThreadsFor } from "./busy.ts";
import { monotonicMs, type BurstCounters, type NemesisCluster } from "./cluster.ts";
import type { MembershipChanges } from "./membership.ts";
import { effectOf } from "./network.ts";
import { connectionsPerAddressMaxOf } from "../../impl/runtime/http-api.ts";
import { httpConnectionsMaxDefault } from "../../impl/runtime/admission.ts";
import {
  holdPerAddress,
  honestOpsNotCompleted,
  judgeProbe,
  leadershipChangesWhenQuiet,
  probe,
  probeKinds,
  type LeaderSample,
} from "./hostile.ts";
import { healthyLink } from "./proxy.ts";
import { isBehindKind, isMembershipKind, seededRandom, type FaultKind, type PlannedFault } from "./schedule.ts";
import type { RecordedOp } from "./workload.ts";

/** A fault as it happened. Times are run times (ms from the origin). */
export interface InjectedFault {
  readonly kind: FaultKind;
  readonly planned: PlannedFault;
  readonly targets: readonly number[];
  /** The leader when the fault started (null: none known). */
  readonly leader: number | null;
  readonly startedAt: number;
  endedAt: number;
  label: string;
  /** What the link faults did meanwhile ("812 packets dropped"), if anything. */
  effect?: string;
}

/**
 * The values a follower-behind-snapshot fault writes, in bytes: a few dozen of them make a state
 * that takes several event-loop turns to serialize, without the traces of a run growing past what
 * its checker can read back.
 */
const behindValueBytes = 64 * 1024;
/**
 * The keys each of its writers cycles through: with 8 to 16 writers, a state of 4 to 8 MiB, which
 * takes several turns of the event loop to serialize, so that appends arrive meanwhile.
 */
const behindKeysPerWriter = 8;

/** "1 MiB", "64 KiB". */
function sizeText(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${bytes / (1024 * 1024)} MiB` : `${bytes / 1024} KiB`;
}

/** How long a follower-behind-snapshot fault may hold its follower cut off, waiting for the leader's snapshot. */
const behindMsMax = 20_000;
/** How long its writes may go on after healing, waiting for the follower to pass that snapshot. */
const catchUpMsMax = 10_000;
/** The same after a kill during the transfer (the writes stopped): the transfer starts over, behind a restart. */
const catchUpAfterKillMsMax = 30_000;

/** How long a transfer-kill fault watches the healed follower for a transfer in progress. */
const transferWatchMsMax = 15_000;
/**
 * How many times a transfer-kill fault heals its follower and watches for a transfer: when the
 * follower passed the leader's snapshot with none seen in progress (it ran between two polls),
 * it is cut off again until the writes take the leader's snapshot past it, and healed again.
 */
const transferAttemptsMax = 3;
/** How long a victim of a transfer-kill fault stays down before its restart. */
const transferDownMs = 500;
/** How long after a thaw of every replica a leader must show up. */
const thawLeaderMsMax = 10_000;
/**
 * How long a flood goes on past its planned end while no heartbeat copy has been relayed (its
 * waves meanwhile beside more and more busy threads, busy.ts): a flood ends with the relay
 * reached, or this long later without it.
 */
const floodLongerMsMax = 10_000;

/**
 * What the nemesis's own faults reached, counted by the harness (no replica counts them): the
 * kills that landed while a state transfer was in progress, and what came of each thaw of every
 * replica. The report's `reached` line prints them beside the replicas' counters.
 */
export interface FaultCounts {
  /** SIGKILLs of a transfer's receiver or sender while the receiver's /status showed it in progress. */
  readonly killedDuringTransfer: number;
  /** Transfer-kill faults whose follower showed no transfer in progress in any of its watches: no kill. */
  readonly transfersNotSeen: number;
  /** freeze-all faults after whose thaw a leader showed up. */
  readonly thawsWithLeader: number;
  /** Of those: some replica campaigned (`paxos_lease_elections_total` grew) between the stop and the leader. */
  readonly thawCampaigns: number;
  /** Of those: no campaign, and the leader before the stop led after it (it kept its lease). */
  readonly thawLeaderKept: number;
  /** Hostile connections (hostile.ts) answered and closed as documented. */
  readonly hostileDocumented: number;
  /** Hostile connections a fault in force cut short (a replica killed, stopped or restarted meanwhile). */
  readonly hostileCutShort: number;
  /** Connections past `--http-connections-per-address-max` from one address that the replica closed as they came. */
  readonly hostileRefusedPastBound: number;
  /**
   * Heartbeat copies relayed during the floods, each flood's own count at its end (`startFlood`):
   * a flooded leader restarted later counts them no more at the end of the run.
   */
  readonly relayedDuringFloods: number;
}

export const noFaultCounts: FaultCounts = {
  killedDuringTransfer: 0,
  transfersNotSeen: 0,
  thawsWithLeader: 0,
  thawCampaigns: 0,
  thawLeaderKept: 0,
  hostileDocumented: 0,
  hostileCutShort: 0,
  hostileRefusedPastBound: 0,
  relayedDuringFloods: 0,
};

/** How long after the last fault or change ended the harness counts as quiet (a new leader settled). */
const settleMs = 2000;
/** The workload's write deadline plus one attempt's timeout: how long an honest operation may take. */
const honestOpMsMax = 7000;
/** How long past-the-bound connections may stay open before the replica's loop takes and closes them. */
const perAddressHoldMs = 5000;
/** How often a hostile-clients fault samples who leads. */
const leaderSampleMs = 250;
/**
 * Where hostile connections come from on the relay: not the honest clients' 127.0.0.1, so that the
 * per-address bound they fill is theirs alone.
 */
const hostileAddresses = { perAddress: "127.0.0.2", probes: "127.0.0.3" } as const;

/**
 * Is the transfer that a replica's /status shows (`membership.transfer`) in progress: a peer's
 * snapshot asked for and not all of it received yet?
 */
export function transferInFlight(
  transfer: { readonly receivedBytes: number; readonly totalBytes: number } | null | undefined,
): boolean {
  return (
    transfer !== null &&
    transfer !== undefined &&
    (transfer.totalBytes === 0 || transfer.receivedBytes < transfer.totalBytes)
  );
}

/**
 * The heartbeat copies the members relayed between two reads of their counters (a member restarted
 * in between counts from its start).
 */
export function relayedSince(
  before: ReadonlyMap<number, BurstCounters>,
  after: ReadonlyMap<number, BurstCounters>,
): number {
  let relayed = 0;
  for (const [id, c] of after) {
    const was = before.get(id)?.heartbeatsRelayed ?? 0;
    relayed += c.heartbeatsRelayed >= was ? c.heartbeatsRelayed - was : c.heartbeatsRelayed;
  }
  return relayed;
}

/** Runs a schedule against a cluster; `stop()` makes it heal and return early. */
export class Nemesis {
  readonly injected: InjectedFault[] = [];
  private stopping = false;
  /** Ordinary faults in force now (membership changes are not faults in force). */
  private activeFaults = 0;
  /** The writers of a burst under way: told to stop at its end, and what they got. */
  private burst: { stop: boolean; done: Promise<string> } | null = null;
  /** What a follower-behind-snapshot fault under way saw of the snapshots, for its effect. */
  private behind: string[] = [];
  /** What the harness's own faults reached (see {@link FaultCounts}). */
  readonly counts: { -readonly [K in keyof FaultCounts]: number } = { ...noFaultCounts };
  /** What a fault found wrong that no later check would see (no leader after a thaw). */
  readonly violations: string[] = [];
  /** The campaigns counted when a freeze-all fault under way began, and its leader then. */
  private freeze: { elections: number; leader: number | null } | null = null;
  /** Membership changes being made now. */
  private changesInFlight = 0;
  /** Run time since which no fault or change has been in force (null: one is). */
  private quietSince: number | null = 0;
  /** Grows whenever a fault or change starts: a probe that saw it change was not quiet throughout. */
  private unquietEpoch = 0;
  /** The stretches (run times) that were quiet, settled, since the run began; the last one open. */
  private readonly quietWindows: [number, number][] = [];
  /** The hostile-clients faults, one after another, in the background. */
  private hostileChain: Promise<void> = Promise.resolve();
  /** The honest clients' operations so far (the workload's), for the hostile-clients check. */
  honestOps: () => readonly RecordedOp[] = () => [];

  constructor(
    private readonly cluster: NemesisCluster,
    private readonly origin: number,
    private readonly onFault: (fault: InjectedFault, phase: "start" | "end") => void = () => undefined,
    /** Where the `member-*` kinds go (required to plan them). */
    private readonly membership: MembershipChanges | null = null,
    /**
     * How long to watch for a transfer in progress, how long its victim stays down, and how long
     * to wait for a leader after a thaw (tests shorten them).
     */
    private readonly bounds: {
      readonly transferWatchMs: number;
      readonly transferDownMs: number;
      readonly thawLeaderMs: number;
    } = { transferWatchMs: transferWatchMsMax, transferDownMs, thawLeaderMs: thawLeaderMsMax },
  ) {}

  /** Is an ordinary fault in force now? */
  faultActive(): boolean {
    return this.activeFaults > 0;
  }

  private now(): number {
    return monotonicMs() - this.origin;
  }

  stop(): void {
    this.stopping = true;
  }

  /** Resolves once the hostile-clients faults under way are done (they run in the background). */
  backgroundSettled(): Promise<void> {
    return this.hostileChain;
  }

  /** A fault or change starts: the harness is no longer quiet. */
  private unquiet(): void {
    this.unquietEpoch += 1;
    if (this.quietSince !== null && this.now() > this.quietSince + settleMs)
      this.quietWindows.push([this.quietSince + settleMs, this.now()]);
    this.quietSince = null;
  }

  /** A fault or change ended: quiet again if it was the last in force. */
  private maybeQuiet(): void {
    if (this.activeFaults === 0 && this.changesInFlight === 0) this.quietSince = this.now();
  }

  /** No fault or change in force, and none for {@link settleMs}. */
  private quiet(): boolean {
    return this.quietSince !== null && this.now() >= this.quietSince + settleMs;
  }

  /** Carry out every fault of `schedule` in order; returns once the last is healed. */
  async run(schedule: readonly PlannedFault[]): Promise<void> {
    for (const planned of schedule) {
      while (!this.stopping && this.now() < planned.at) await sleep(Math.min(50, planned.at - this.now()));
      if (this.stopping) return;
      await this.inject(planned);
    }
  }

  private async inject(planned: PlannedFault): Promise<void> {
    if (isMembershipKind(planned.kind)) return this.change(planned);
    if (planned.kind === "hostile-clients") {
      this.hostileChain = this.hostileChain.then(() => this.hostile(planned));
      return;
    }
    const cluster = this.cluster;
    const leader = await cluster.leader();
    // Faults hit the members of the current configuration (spares waiting to join are left alone).
    const ids = cluster.memberIds.filter((id) => cluster.running(id) || cluster.wanted(id));
    // Without a known leader, the leader-targeted faults hit a replica picked by the schedule.
    const pivot = leader ?? ids[Math.floor(planned.pick * ids.length)]!;
    const others = ids.filter((id) => id !== pivot);
    const follower = others[Math.floor(planned.pick * others.length)]!;
    // A stop of the whole machine stops every replica process, spares that run included.
    const targets =
      planned.kind === "freeze-all"
        ? cluster.ids.filter((id) => cluster.running(id))
        : targetsOf(planned.kind, pivot, follower, others, planned.pick);
    const fault: InjectedFault = {
      kind: planned.kind,
      planned,
      targets,
      leader,
      startedAt: this.now(),
      endedAt: Number.NaN,
      label: labelOf(planned, targets),
    };
    this.injected.push(fault);
    this.onFault(fault, "start");
    this.activeFaults += 1;
    this.unquiet();
    try {
      const before = await cluster.network.counters();
      await this.begin(planned, targets);
      const until = this.now() + planned.durationMs;
      if (planned.kind === "flap-leader") await this.flap(planned, targets, until);
      while (!this.stopping && this.now() < until) await sleep(Math.min(50, until - this.now()));
      if (isBehindKind(planned.kind)) await this.fallBehind(targets[0]!, targets[1]!);
      const effect = effectOf(before, await cluster.network.counters());
      if (effect !== "") fault.effect = effect;
      const burst = this.burst;
      await this.end(planned, targets);
      if (burst !== null) fault.effect = [...this.behind.splice(0), await burst.done].join("; ");
      else if (this.behind.length > 0)
        fault.effect = [fault.effect, ...this.behind.splice(0)].filter((e) => e !== undefined).join("; ");
    } finally {
      this.activeFaults -= 1;
      this.maybeQuiet();
    }
    fault.endedAt = this.now();
    this.onFault(fault, "end");
  }

  /** A membership change: queued, made in the background while the next faults go on. */
  private change(planned: PlannedFault): void {
    if (this.membership === null) throw new Error(`${planned.kind} needs spare replicas`);
    const fault: InjectedFault = {
      kind: planned.kind,
      planned,
      targets: [],
      leader: null,
      startedAt: this.now(),
      endedAt: Number.NaN,
      label: planned.kind,
    };
    this.injected.push(fault);
    this.onFault(fault, "start");
    this.changesInFlight += 1;
    this.unquiet();
    this.membership.enqueue(planned, (change) => {
      this.changesInFlight -= 1;
      this.maybeQuiet();
      fault.endedAt = change.endedAt;
      fault.label = `${change.outcome === "done" ? "" : `(${change.outcome}) `}${change.description}`;
      this.onFault(fault, "end");
    });
  }

  /** Until `until`: the targets' links down for 200 to 700 ms, up for 200 to 700 ms, again and again; up at the end. */
  private async flap(planned: PlannedFault, targets: readonly number[], until: number): Promise<void> {
    const random = seededRandom(Math.floor(planned.pick * 0xffff_ffff));
    const network = this.cluster.network;
    for (let down = true; !this.stopping && this.now() < until; down = !down) {
      for (const id of targets) await network.setInterface(id, !down);
      const ms = Math.min(200 + 500 * random(), until - this.now());
      await sleep(Math.max(0, ms));
    }
    for (const id of targets) await network.setInterface(id, true);
  }

  private async begin(planned: PlannedFault, targets: readonly number[]): Promise<void> {
    const cluster = this.cluster;
    const network = cluster.network;
    const set = new Set(targets);
    switch (planned.kind) {
      case "kill-leader":
      case "kill-follower":
      case "kill-majority":
        await Promise.all(targets.map((id) => cluster.kill(id, "SIGKILL")));
        return;
      case "power-loss-leader":
      case "power-loss-follower":
        await Promise.all(targets.map((id) => cluster.cutPower(id)));
        return;
      case "pause-leader":
        for (const id of targets) cluster.signal(id, "SIGSTOP");
        return;
      case "freeze-all": {
        const elections = sumElections(await cluster.burstCounters());
        this.freeze = { elections, leader: await cluster.leader() };
        for (const id of targets) cluster.signal(id, "SIGSTOP");
        return;
      }
      case "partition-leader":
      case "partition-follower":
        await network.setLinks((from, to) => set.has(from) !== set.has(to), { ...healthyLink, mode: "drop" });
        return;
      case "partition-bridge": {
        // targets[0] is the bridge; targets[1..] one side; the rest the other side.
        const bridge = targets[0]!;
        const side = new Set(targets.slice(1));
        await network.setLinks((from, to) => from !== bridge && to !== bridge && side.has(from) !== side.has(to), {
          ...healthyLink,
          mode: "drop",
        });
        return;
      }
      case "one-way-from-leader":
        await network.setLinks((from) => set.has(from), { ...healthyLink, mode: "drop" });
        return;
      case "one-way-to-leader":
        await network.setLinks((_from, to) => set.has(to), { ...healthyLink, mode: "drop" });
        return;
      case "lossy-links":
        await network.setLinks(() => true, { ...healthyLink, lossRate: planned.parameter });
        return;
      case "slow-links":
        // Jitter of half the delay: messages on different links reorder.
        await network.setLinks(() => true, { ...healthyLink, ...slowLink(planned.parameter) });
        return;
      case "cut-leader":
        await network.setLinks((from, to) => set.has(from) || set.has(to), { ...healthyLink, mode: "cut" });
        return;
      case "flap-leader":
        // Flapping happens in flap(), for the fault's whole duration.
        return;
      case "restart-leader":
      case "restart-follower":
        for (const id of targets) await cluster.kill(id, "SIGTERM");
        return;
      case "slow-disk-leader":
        for (const id of targets) cluster.setSlowDisk(id, true);
        return;
      case "burst":
        this.startBurst(targets[0]!, planned.parameter);
        return;
      case "flood":
        this.startFlood(targets[0]!, planned.parameter);
        return;
      case "follower-behind-snapshot":
      case "transfer-kill-receiver":
      case "transfer-kill-sender": {
        // targets[0] is cut off; the writes go to targets[1], the leader.
        await this.cutOff(targets[0]!);
        this.startBurst(targets[1]!, planned.parameter, behindValueBytes, behindKeysPerWriter);
        return;
      }
      case "member-add":
      case "member-replace":
      case "member-replace-kill-leader":
      case "member-remove":
      case "member-readd":
      case "hostile-clients":
        throw new Error(`${planned.kind} is made in the background, not a fault in force`);
    }
  }

  /**
   * `writers` closed loops of PUTs of `valueBytes` values (default 1 MiB, the largest a value may
   * be) to `target`, each on keys of its own outside the workload's (`keysPerWriter` of them in
   * turn, default 1), until the fault ends. The answers are counted for
   * the report; the writes' outcomes are not part of the checked history (the clients' are).
   */
  private startBurst(target: number, writers: number, valueBytes = 1024 * 1024, keysPerWriter = 1): void {
    const state = { stop: false, done: Promise.resolve("") };
    const agent = new http.Agent({ keepAlive: true, maxSockets: writers });
    const counts = new Map<string, number>();
    const count = (what: string): void => void counts.set(what, (counts.get(what) ?? 0) + 1);
    const url = `${this.cluster.endpoint(target)}/v1/kv/`;
    const headers = { Authorization: `Bearer ${this.cluster.token}`, "Content-Type": "application/json" };
    const writer = async (w: number): Promise<void> => {
      for (let round = 0; !state.stop && !this.stopping; round++) {
        const value = `${w}.${round}.`.padEnd(valueBytes, String.fromCharCode(97 + ((w + round) % 26)));
        const key = keysPerWriter === 1 ? `nemesis-burst-${w}` : `nemesis-burst-${w}-${round % keysPerWriter}`;
        const answer = await put(`${url}${key}`, JSON.stringify({ value }), headers, agent);
        count(answer);
        // Refused (429, a redirect) or lost: a client backs off before it tries again.
        if (answer !== "200") await sleep(100);
      }
    };
    // Whether the burst reached the catch-up hold (a follower asking for values still streaming to
    // it), and appends waiting behind a snapshot being serialized.
    const countersBefore = this.cluster.burstCounters();
    const all = Array.from({ length: writers }, (_, w) => writer(w));
    state.done = Promise.all(all).then(async () => {
      agent.destroy();
      const answers = [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([what, n]) => `${n} ${what}`);
      const [before, after] = [await countersBefore, await this.cluster.burstCounters()];
      // A member restarted meanwhile counts from zero again: all it counts now is new.
      const grown = (of: (c: BurstCounters) => number): number => {
        let sum = 0;
        for (const [id, counters] of after) {
          const [n, was] = [of(counters), before.has(id) ? of(before.get(id)!) : 0];
          sum += n >= was ? n - was : n;
        }
        return sum;
      };
      const held = grown((c) => c.catchUpsHeld);
      const behind = grown((c) => c.appendsBehindSnapshot);
      return `${writers} writers of ${sizeText(valueBytes)}: ${answers.join(", ") || "no answer"}; ${held} catch-up requests held while streaming; ${behind} appends behind a snapshot`;
    });
    this.burst = state;
  }

  /**
   * Waves of `perWave` new connections to `target`'s client port, opened at once, each sending one
   * linearizable read with `Connection: close` and waiting for its status line; the next wave
   * starts once the last connection of this one is done, until the fault ends. The answers, the
   * heartbeat copies the leader's relay sent meanwhile, and whether `target` still leads at the
   * end make the fault's effect. The reads are not part of the checked history.
   *
   * The copies go only once the leader's main thread has sent no heartbeat for two intervals,
   * which a flood brings about only where the machine does not run that thread (busy.ts). After
   * each wave that relayed nothing yet the harness starves the machine further with busy threads
   * (`busyThreadsFor`), and stops them at the first copy; the flood goes on past its end while no
   * copy was relayed, at most {@link floodLongerMsMax}. A run that schedules a flood so reaches
   * the relay on a quiet machine too, where a flood of a few seconds did not.
   */
  private startFlood(target: number, perWave: number): void {
    const state = { stop: false, done: Promise.resolve("") };
    const counts = new Map<string, number>();
    const count = (what: string): void => void counts.set(what, (counts.get(what) ?? 0) + 1);
    const url = new URL(this.cluster.endpoint(target));
    const request = `GET /v1/kv/nemesis-flood HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${this.cluster.token}\r\nConnection: close\r\n\r\n`;
    const one = (): Promise<void> =>
      new Promise((resolve) => {
        let head = "";
        let finished = false;
        const socket = net.connect({ host: url.hostname, port: Number(url.port) });
        const finish = (what: string): void => {
          if (finished) return;
          finished = true;
          clearTimeout(timer);
          socket.destroy();
          count(what);
          resolve();
        };
        const timer = setTimeout(() => finish("no answer in 10 s"), 10_000);
        socket.on("connect", () => socket.write(request));
        socket.on("data", (chunk: Buffer) => {
          head += chunk.toString("latin1");
          if (head.length >= 12) finish(head.slice(9, 12));
        });
        socket.on("error", (error: NodeJS.ErrnoException) => finish(error.code ?? "connection lost"));
        socket.on("close", () => finish("closed without an answer"));
      });
    let waves = 0;
    const countersBefore = this.cluster.burstCounters();
    const busy = new BusyThreads();
    const cores = BusyThreads.cores();
    state.done = (async () => {
      const before = await countersBefore;
      const startedAt = this.now();
      let relayed = 0;
      let wavesWithoutCopy = 0;
      let busyFrom: number | null = null;
      /** When the fault's end was asked for, and how long the flood went on after it. */
      let endAskedAt: number | null = null;
      let longerMs = 0;
      try {
        while (!this.stopping) {
          if (state.stop) {
            const now = this.now();
            endAskedAt ??= now;
            longerMs = now - endAskedAt;
            if (relayed > 0 || longerMs >= floodLongerMsMax) break;
          }
          await Promise.all(Array.from({ length: perWave }, one));
          waves += 1;
          relayed = relayedSince(before, await this.cluster.burstCounters());
          if (relayed > 0) {
            await busy.stop();
            continue;
          }
          wavesWithoutCopy += 1;
          busyFrom ??= this.now();
          busy.raiseTo(busyThreadsFor(wavesWithoutCopy, cores));
        }
      } finally {
        await busy.stop();
      }
      relayed = relayedSince(before, await this.cluster.burstCounters());
      this.counts.relayedDuringFloods += relayed;
      const leader = await this.cluster.leader();
      const answers = [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([what, n]) => `${n} ${what}`);
      const starved =
        busy.most === 0
          ? ""
          : ` (beside up to ${busy.most} busy threads from ${((busyFrom! - startedAt) / 1000).toFixed(1)} s in${relayed > 0 ? ", until the first copy" : ""})`;
      const longer = longerMs === 0 ? "" : `; went on ${(longerMs / 1000).toFixed(1)} s past its end for a copy`;
      return `${waves} waves of ${perWave} connections: ${answers.join(", ") || "no answer"}; ${relayed} heartbeat copies relayed${starved}${longer}; ${leader === target ? `r${target} still leads` : `the leader is ${leader === null ? "unknown" : `r${leader}`} now`}`;
    })();
    this.burst = state;
  }

  /**
   * A hostile-clients fault, in the background while the next faults go on: rounds of hostile
   * connections (hostile.ts, every kind at once, and on the relay the per-address bound filled
   * from one address and passed by `planned.parameter` more) to whoever leads when each round
   * starts, new rounds until its duration has passed, each round waiting for its 408s. Meanwhile
   * it samples who leads. Violations: an answer other than the documented one; a missing or late
   * one, a connection kept past the per-address bound, a leadership change, or an honest operation
   * not completed ok, while no other fault or change was in force.
   */
  private async hostile(planned: PlannedFault): Promise<void> {
    const cluster = this.cluster;
    const leader = await cluster.leader();
    const fault: InjectedFault = {
      kind: planned.kind,
      planned,
      targets: leader === null ? [] : [leader],
      leader,
      startedAt: this.now(),
      endedAt: Number.NaN,
      label: `hostile-clients ${leader === null ? "(no leader)" : `r${leader}`} (${planned.parameter} past the per-address bound)`,
    };
    this.injected.push(fault);
    this.onFault(fault, "start");
    const until = this.now() + planned.durationMs;
    const samples: LeaderSample[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling && !this.stopping) {
        const status = await cluster.leaderStatus();
        samples.push({
          at: this.now(),
          leader: status?.replica ?? null,
          ballot: status?.ballot ?? null,
          quiet: this.quiet(),
        });
        await sleep(leaderSampleMs);
      }
    })();
    const tally = new Map<string, number>();
    const add = (what: string, n = 1): void => void tally.set(what, (tally.get(what) ?? 0) + n);
    const relay = cluster.network.kind === "relay";
    const bound = connectionsPerAddressMaxOf(httpConnectionsMaxDefault);
    let rounds = 0;
    do {
      const target = (await cluster.leader()) ?? leader;
      if (target === null) {
        await sleep(200);
        continue;
      }
      rounds += 1;
      const endpoint = cluster.endpoint(target);
      const [epoch, quietAtStart] = [this.unquietEpoch, this.quiet()];
      const quietThroughout = (): boolean => quietAtStart && this.quiet() && this.unquietEpoch === epoch;
      const probes = probeKinds.map(async (kind) => {
        const result = await probe(kind, endpoint, cluster.token, relay ? hostileAddresses.probes : undefined);
        const verdict = judgeProbe(result, quietThroughout());
        if (verdict === "documented") this.counts.hostileDocumented += 1;
        else if (verdict === "cut short") this.counts.hostileCutShort += 1;
        else
          this.violations.push(
            `HostileClients: r${target} ${verdict.violation} (hostile-clients at ${Math.round(planned.at)} ms)`,
          );
        add(result.status === null ? `${kind} no answer` : `${kind} ${result.status}`);
      });
      const perAddress = relay
        ? holdPerAddress(
            endpoint,
            hostileAddresses.perAddress,
            bound,
            planned.parameter,
            perAddressHoldMs,
            () => this.stopping,
          ).then((held) => {
            this.counts.hostileRefusedPastBound += held.refused;
            add(`past the per-address bound of ${bound}: refused`, held.refused);
            if (held.keptPastBound > 0 && quietThroughout())
              this.violations.push(
                `HostileClients: r${target} kept ${held.keptPastBound} connections past --http-connections-per-address-max (${bound}) from ${hostileAddresses.perAddress} (hostile-clients at ${Math.round(planned.at)} ms)`,
              );
            if (held.keptPastBound > 0) add("past the per-address bound: kept", held.keptPastBound);
          })
        : Promise.resolve();
      await Promise.all([...probes, perAddress]);
    } while (!this.stopping && this.now() < until);
    sampling = false;
    await sampler;
    const changes = leadershipChangesWhenQuiet(samples);
    for (const change of changes)
      this.violations.push(
        `HostileClients: leadership changed under hostile connections with no other fault in force: ${change} (hostile-clients at ${Math.round(planned.at)} ms)`,
      );
    const windows = [...this.quietWindows];
    if (this.quietSince !== null && this.now() > this.quietSince + settleMs)
      windows.push([this.quietSince + settleMs, this.now()]);
    const inSpan = windows
      .map(([from, to]): [number, number] => [Math.max(from, fault.startedAt), Math.min(to, this.now())])
      .filter(([from, to]) => to > from);
    const notCompleted = honestOpsNotCompleted(this.honestOps(), inSpan, honestOpMsMax);
    for (const op of notCompleted.slice(0, 5))
      this.violations.push(
        `HostileClients: ${op.client}'s ${op.input._tag} invoked at ${Math.round(op.invoke)} ms, with no other fault in force, ended ${op.outcome} (${op.note ?? "no note"})`,
      );
    const quietMs = inSpan.reduce((sum, [from, to]) => sum + (to - from), 0);
    const answers = [...tally].sort(([a], [b]) => a.localeCompare(b)).map(([what, n]) => `${n} ${what}`);
    fault.effect = `${rounds} rounds: ${answers.join(", ") || "none"}${relay ? "" : " (no per-address probe: on hosts the harness has one address)"}; ${samples.length} leader samples, ${changes.length} leadership changes with no other fault in force (${Math.round(quietMs)} ms of it), ${notCompleted.length} honest operations not completed then`;
    fault.endedAt = this.now();
    this.onFault(fault, "end");
  }

  /** The latest snapshot slot of `id` (-1: none, or no answer). */
  private async snapshotSlot(id: number): Promise<number> {
    return (await this.cluster.status(id))?.membership.snapshotSlot ?? -1;
  }

  /**
   * Hold the follower cut off until the leader's latest snapshot lies beyond the follower's (the
   * writes go on meanwhile), for at most {@link behindMsMax}.
   */
  private async fallBehind(follower: number, leader: number): Promise<void> {
    const started = this.now();
    const deadline = started + behindMsMax;
    const behind = await this.snapshotSlot(follower);
    let ahead = await this.snapshotSlot(leader);
    while (!this.stopping && ahead <= behind && this.now() < deadline) {
      await sleep(100);
      ahead = await this.snapshotSlot(leader);
    }
    this.behind.push(
      ahead > behind
        ? `r${follower} behind r${leader}'s snapshot at slot ${ahead} (its own at ${behind})`
        : `r${follower} not behind a snapshot within ${Math.round(this.now() - started)} ms (r${leader}'s at ${ahead})`,
    );
  }

  /**
   * After healing: the writes go on until the follower's latest snapshot reaches the leader's of
   * the moment (it took or installed one while appends kept coming), for at most `boundMs`
   * ({@link catchUpMsMax}; {@link catchUpAfterKillMsMax} after a kill during the transfer).
   */
  private async catchUp(follower: number, leader: number, boundMs = catchUpMsMax): Promise<void> {
    const started = this.now();
    const deadline = started + boundMs;
    const target = await this.snapshotSlot(leader);
    let reached = await this.snapshotSlot(follower);
    while (!this.stopping && reached < target && this.now() < deadline) {
      await sleep(100);
      reached = await this.snapshotSlot(follower);
    }
    this.behind.push(
      reached >= target
        ? `r${follower} past that snapshot ${Math.round(this.now() - started)} ms after healing (at ${reached})`
        : `r${follower} still behind it ${Math.round(this.now() - started)} ms after healing (at ${reached})`,
    );
  }

  /** Drop every packet between `follower` and the others (healed by `healLinks`). */
  private async cutOff(follower: number): Promise<void> {
    await this.cluster.network.setLinks((from, to) => (from === follower) !== (to === follower), {
      ...healthyLink,
      mode: "drop",
    });
  }

  /**
   * Watch the healed `follower`'s /status (every 10 ms, at most {@link transferWatchMsMax} by default) until
   * it shows a transfer in progress, then SIGKILL the receiver (`follower`) or the sender (the
   * replica its transfer names) and restart it {@link transferDownMs} later. Returns the killed
   * replica, or null when no transfer showed up (counted, and said in the fault's effect). A watch
   * that ends with the follower past `leader`'s snapshot of the healing and no transfer seen (it
   * ran between two polls) cuts the follower off again behind the still running writes, heals it,
   * and watches again, {@link transferAttemptsMax} watches in all.
   */
  async killDuringTransfer(kind: FaultKind, follower: number, leader: number): Promise<number | null> {
    const cluster = this.cluster;
    const started = this.now();
    for (let attempt = 1; !this.stopping; attempt++) {
      const healed = this.now();
      const target = await this.snapshotSlot(leader);
      let past = false;
      while (!this.stopping && !past && this.now() < healed + this.bounds.transferWatchMs) {
        const membership = (await cluster.status(follower))?.membership;
        const transfer = membership?.transfer;
        if (transfer !== null && transfer !== undefined && transferInFlight(transfer)) {
          const victim = kind === "transfer-kill-receiver" ? follower : transfer.from;
          await cluster.kill(victim, "SIGKILL");
          this.counts.killedDuringTransfer += 1;
          this.behind.push(
            `r${victim} (the ${kind === "transfer-kill-receiver" ? "receiver" : "sender"}) killed ${Math.round(this.now() - healed)} ms after healing, r${follower} at ${transfer.receivedBytes} of ${transfer.totalBytes} bytes of r${transfer.from}'s snapshot at slot ${transfer.slot}`,
          );
          await sleep(this.bounds.transferDownMs);
          if (!cluster.running(victim) && cluster.wanted(victim)) cluster.start(victim);
          return victim;
        }
        past = target >= 0 && (membership?.snapshotSlot ?? -1) >= target;
        if (!past) await sleep(10);
      }
      if (!past || attempt >= transferAttemptsMax || this.stopping) break;
      this.behind.push(
        `r${follower} past r${leader}'s snapshot at slot ${target} ${Math.round(this.now() - healed)} ms after healing with no transfer seen in progress: cut off again`,
      );
      await this.cutOff(follower);
      await this.fallBehind(follower, leader);
      await cluster.network.healLinks();
    }
    this.counts.transfersNotSeen += 1;
    this.behind.push(
      `r${follower} showed no transfer in progress within ${Math.round(this.now() - started)} ms: nobody killed`,
    );
    return null;
  }

  /**
   * SIGCONT every stopped replica, in an order drawn from the fault's pick, 0 to 2 ms apart; then
   * wait (at most {@link thawLeaderMsMax}) for a leader, and count whether some replica campaigned
   * meanwhile or the leader from before the stop kept leading. No leader in time is a violation.
   */
  private async thaw(planned: PlannedFault, targets: readonly number[]): Promise<void> {
    const cluster = this.cluster;
    const random = seededRandom(Math.floor(planned.pick * 0xffff_ffff) ^ 0x5bd1e995);
    const order = [...targets];
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    const thawedAt = this.now();
    for (const [i, id] of order.entries()) {
      if (i > 0) {
        const gapMs = Math.floor(random() * 3);
        if (gapMs > 0) await sleep(gapMs);
      }
      cluster.signal(id, "SIGCONT");
    }
    const spreadMs = this.now() - thawedAt;
    const before = this.freeze;
    this.freeze = null;
    const leader = await cluster.waitForLeader(this.bounds.thawLeaderMs);
    const afterMs = Math.round(this.now() - thawedAt);
    const thawed = `thawed r${order.join(",r")} within ${spreadMs.toFixed(1)} ms`;
    if (leader === null) {
      this.behind.push(`${thawed}; no leader within ${afterMs} ms`);
      this.violations.push(
        `NoRecovery: no leader within ${this.bounds.thawLeaderMs / 1000} s of thawing every replica (${planned.kind} at ${Math.round(planned.at)} ms)`,
      );
      return;
    }
    const campaigns = sumElections(await cluster.burstCounters()) - (before?.elections ?? 0);
    this.counts.thawsWithLeader += 1;
    if (campaigns > 0) this.counts.thawCampaigns += 1;
    else if (before?.leader === leader) this.counts.thawLeaderKept += 1;
    this.behind.push(
      `${thawed}; r${leader} leads ${afterMs} ms later (before the stop: ${before?.leader === null || before === null ? "none" : `r${before.leader}`}); ${campaigns} campaigns`,
    );
  }

  private async end(planned: PlannedFault, targets: readonly number[]): Promise<void> {
    const cluster = this.cluster;
    switch (planned.kind) {
      case "pause-leader":
        for (const id of targets) cluster.signal(id, "SIGCONT");
        return;
      case "slow-disk-leader":
        for (const id of targets) cluster.setSlowDisk(id, false);
        return;
      case "kill-leader":
      case "kill-follower":
      case "kill-majority":
      case "restart-leader":
      case "restart-follower":
      case "power-loss-leader":
      case "power-loss-follower":
        for (const id of targets) if (!cluster.running(id) && cluster.wanted(id)) cluster.start(id);
        return;
      case "flap-leader":
        for (const id of targets) await cluster.network.setInterface(id, true);
        return;
      case "burst":
      case "flood":
        if (this.burst !== null) this.burst.stop = true;
        await this.burst?.done;
        this.burst = null;
        return;
      case "freeze-all":
        await this.thaw(planned, targets);
        return;
      case "follower-behind-snapshot":
      case "transfer-kill-receiver":
      case "transfer-kill-sender": {
        await cluster.network.healLinks();
        let leader = targets[1]!;
        if (planned.kind !== "follower-behind-snapshot") {
          const killed = await this.killDuringTransfer(planned.kind, targets[0]!, leader);
          // The kill landed under the writes; the transfer that starts over runs without them: with
          // a snapshot every sixteen of their writes, the leader's latest snapshot would keep moving
          // past the one being sent, and the writes go into every replica's trace (a run that wrote
          // on for 30 s left traces of gigabytes, more than the check can read back).
          if (this.burst !== null) this.burst.stop = true;
          await this.burst?.done;
          // With the sender killed, the follower catches up from whoever leads next.
          if (killed === leader) leader = (await cluster.waitForLeader(catchUpMsMax)) ?? leader;
        }
        await this.catchUp(
          targets[0]!,
          leader,
          planned.kind === "follower-behind-snapshot" ? catchUpMsMax : catchUpAfterKillMsMax,
        );
        if (this.burst !== null) this.burst.stop = true;
        await this.burst?.done;
        this.burst = null;
        return;
      }
      default:
        await cluster.network.healLinks();
    }
  }

  /** Undo everything: every link healthy, every replica running, resumed and on a fast disk. */
  async healAll(): Promise<void> {
    await this.cluster.network.healLinks();
    for (const id of this.cluster.ids) await this.cluster.network.setInterface(id, true);
    for (const id of this.cluster.ids) {
      if (this.cluster.paused(id)) this.cluster.signal(id, "SIGCONT");
      if (!this.cluster.running(id)) {
        if (this.cluster.wanted(id)) this.cluster.start(id);
      } else if (this.cluster.slowDisk(id)) this.cluster.setSlowDisk(id, false);
    }
    await sleep(0);
  }
}

/** Who a fault hits, given the pivot (the leader, or a picked replica) and the others. */
function targetsOf(
  kind: FaultKind,
  pivot: number,
  follower: number,
  others: readonly number[],
  pick: number,
): number[] {
  switch (kind) {
    case "kill-follower":
    case "partition-follower":
    case "restart-follower":
    case "power-loss-follower":
      return [follower];
    case "kill-majority": {
      // The pivot and enough others for a majority of the whole cluster.
      const majority = Math.floor((others.length + 1) / 2) + 1;
      const rotated = [
        ...others.slice(Math.floor(pick * others.length)),
        ...others.slice(0, Math.floor(pick * others.length)),
      ];
      return [pivot, ...rotated.slice(0, majority - 1)];
    }
    case "partition-bridge": {
      // A bridge that is not the leader, the leader on one side with half of the rest.
      const bridge = follower;
      const rest = others.filter((id) => id !== bridge);
      return [bridge, pivot, ...rest.slice(0, Math.floor(rest.length / 2))];
    }
    case "lossy-links":
    case "slow-links":
      return [];
    case "burst":
    case "flood":
      return [pivot];
    case "follower-behind-snapshot":
    case "transfer-kill-receiver":
    case "transfer-kill-sender":
      return [follower, pivot];
    default:
      return [pivot];
  }
}

/** The links of a slow-links fault: `delayMs` plus up to half as much again. */
function slowLink(delayMs: number): { readonly delayMs: number; readonly jitterMs: number } {
  return { delayMs, jitterMs: Math.round(delayMs / 2) };
}

function labelOf(planned: PlannedFault, targets: readonly number[]): string {
  const who = targets.length === 0 ? "all links" : `r${targets.join(",r")}`;
  const extra =
    planned.kind === "lossy-links"
      ? ` ${Math.round(planned.parameter * 100)}%`
      : planned.kind === "slow-links"
        ? ` +${planned.parameter} ms (jitter ${slowLink(planned.parameter).jitterMs} ms)`
        : planned.kind === "burst"
          ? ` ${planned.parameter} writers of 1 MiB`
          : planned.kind === "flood"
            ? ` waves of ${planned.parameter} connections`
            : "";
  if (isBehindKind(planned.kind))
    return `${planned.kind} r${targets[0]} (${planned.parameter} writers of ${sizeText(behindValueBytes)} to r${targets[1]})`;
  return `${planned.kind} ${who}${extra}`;
}

/** One PUT; what came of it: its status code, or why there was none. Never throws. */
function put(url: string, body: string, headers: Record<string, string>, agent: http.Agent): Promise<string> {
  return new Promise((resolve) => {
    const request = http.request(url, { method: "PUT", headers, agent, timeout: 15_000 }, (response) => {
      response.resume();
      response.on("end", () => resolve(String(response.statusCode ?? 0)));
      response.on("error", () => resolve("connection lost"));
    });
    request.on("timeout", () => request.destroy(new Error("timeout")));
    request.on("error", (error) => resolve(error.message === "timeout" ? "no answer in 15 s" : "connection lost"));
    request.end(body);
  });
}

/** The campaigns the members counted (each since its last start). */
function sumElections(counters: ReadonlyMap<number, BurstCounters>): number {
  let sum = 0;
  for (const c of counters.values()) sum += c.elections;
  return sum;
}

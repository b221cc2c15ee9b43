/**
 * Membership changes made by the nemesis while its ordinary faults go on: each planned change
 * (schedule.ts, the `member-*` kinds) is queued and carried out in the background, one change at
 * a time, as an operator's tool would (start a spare with an empty data directory, add it through
 * whichever replica answers, wait until it caught up, promote it or swap it for a voter; remove a
 * voter; stop a removed replica once it retired, and reuse its emptied directory for a replica
 * under a new id). Kills, pauses and partitions keep landing meanwhile, so changes are made
 * during them. A retired id is never started again.
 *
 * After each change, once no fault is active and every member is running (a quorum of the
 * current configuration up and connected), a leader must hold a lease within
 * `livenessBoundMs`: the nemesis's liveness check after a membership change.
 */
import { KvClient, type ApiReply } from "../../impl/runtime/client.ts";
import { sleep } from "../../impl/runtime/testing.ts";
import type { NemesisCluster } from "./cluster.ts";
import type { FaultKind, PlannedFault } from "./schedule.ts";

/** How long one change may take, faults included, in milliseconds. */
export const changeDeadlineMs = 40_000;
/**
 * The bound of the liveness check: from the moment a quorum of the current configuration is up
 * and connected (no fault active, every member running), a leader holds a lease within this many
 * milliseconds. The defaults give an election timeout of 400 to 600 ms, a restart wait of one
 * lease (300 ms) and grants of one lease: a few elections' worth, with room for a loaded machine.
 */
export const livenessBoundMs = 5000;

/** What one change did. Times are run times (ms from the origin). */
export interface MembershipChange {
  readonly kind: FaultKind;
  startedAt: number;
  endedAt: number;
  /** `add 4`, `replace 2 by 5`, `remove 3`, or why it was skipped. */
  description: string;
  outcome: "done" | "skipped" | "failed";
  /**
   * For a removal or replacement: ms from the change being chosen until the removed replica retired (null: not seen).
   */
  retiredAfterMs: number | null;
  /**
   * Ms from a quorum of the new configuration being up and connected until a leader held a lease (null: not measured).
   */
  leaderWithLeaseMs: number | null;
}

/** The membership changes of one run. */
export class MembershipChanges {
  readonly changes: MembershipChange[] = [];
  /** Liveness violations: a leader with a lease did not show up within the bound. */
  readonly violations: string[] = [];
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly cluster: NemesisCluster,
    private readonly now: () => number,
    /** Is an ordinary fault in force (kills, pauses, partitions, lossy links...)? */
    private readonly faultActive: () => boolean,
    private readonly progress: (line: string) => void = () => undefined,
  ) {}

  /**
   * Queue the change `planned` (a `member-*` kind); it starts once the changes before it are
   * done, and `onDone` is called when it ends.
   */
  enqueue(planned: PlannedFault, onDone: (change: MembershipChange) => void = () => undefined): MembershipChange {
    const change: MembershipChange = {
      kind: planned.kind,
      startedAt: Number.NaN,
      endedAt: Number.NaN,
      description: planned.kind,
      outcome: "skipped",
      retiredAfterMs: null,
      leaderWithLeaseMs: null,
    };
    this.changes.push(change);
    this.chain = this.chain.then(async () => {
      await this.carryOut(planned, change);
      onDone(change);
    });
    return change;
  }

  /** Resolves once every queued change is done. */
  settled(): Promise<void> {
    return this.chain;
  }

  private async carryOut(planned: PlannedFault, change: MembershipChange): Promise<void> {
    change.startedAt = this.now();
    try {
      const made = await this.make(planned, change);
      change.outcome = made ? "done" : "skipped";
    } catch (error) {
      change.outcome = "failed";
      change.description += `: ${error instanceof Error ? error.message : String(error)}`;
    }
    change.endedAt = this.now();
    this.progress(`${(change.endedAt / 1000).toFixed(1)}s membership ${change.outcome}: ${change.description}`);
    if (change.outcome === "done") await this.checkLiveness(change);
  }

  /** Carry out one change; false when it does not apply now (no spare left, too few voters). */
  private async make(planned: PlannedFault, change: MembershipChange): Promise<boolean> {
    const cluster = this.cluster;
    const deadline = this.now() + changeDeadlineMs;
    const voters = cluster.memberIds;
    const leader = await cluster.leader();
    const followers = voters.filter((id) => id !== leader);
    const follower = followers[Math.floor(planned.pick * followers.length)];
    switch (planned.kind) {
      case "member-add":
      case "member-readd": {
        const spare = cluster.unusedSpares()[0];
        if (spare === undefined) return this.skip(change, "no spare left");
        if (planned.kind === "member-readd") {
          // The host of the replica removed last whose directory no replica in service uses (a
          // host re-added under a new id is in service again): its directory emptied, a new id on it.
          const inService = (id: number, other: number): boolean =>
            other !== id && !cluster.retired.has(other) && cluster.dataDir(other) === cluster.dataDir(id);
          const gone = [...cluster.retired].reverse().find((id) => !cluster.ids.some((other) => inService(id, other)));
          if (gone === undefined) return this.skip(change, "no host of a removed replica is free");
          cluster.reuseDataDir(spare, cluster.dataDir(gone));
          change.description = `re-add the host of removed replica ${gone} as replica ${spare}, with fresh data`;
        } else change.description = `add ${spare}`;
        await this.addLearner(spare, deadline);
        await this.post({ op: "promote", id: spare }, deadline);
        cluster.configured.add(spare);
        return true;
      }
      case "member-replace":
      case "member-replace-kill-leader": {
        const spare = cluster.unusedSpares()[0];
        if (spare === undefined) return this.skip(change, "no spare left");
        if (follower === undefined) return this.skip(change, "no follower to replace");
        change.description = `replace ${follower} by ${spare}${planned.kind === "member-replace-kill-leader" ? ", then kill the leader" : ""}`;
        await this.addLearner(spare, deadline);
        await this.post({ op: "replace", old: follower, id: spare }, deadline);
        cluster.configured.delete(follower);
        cluster.configured.add(spare);
        const chosenAt = this.now();
        if (planned.kind === "member-replace-kill-leader") await this.killLeader(follower);
        await this.retire(follower, chosenAt, change);
        return true;
      }
      case "member-remove": {
        // Keep at least three voters, so that the cluster still tolerates a failure.
        if (voters.length <= 3 || follower === undefined) return this.skip(change, "only three voters");
        change.description = `remove ${follower}`;
        await this.post({ op: "remove", id: follower }, deadline);
        cluster.configured.delete(follower);
        await this.retire(follower, this.now(), change);
        return true;
      }
      default:
        throw new Error(`${planned.kind} is not a membership change`);
    }
  }

  private skip(change: MembershipChange, why: string): false {
    change.description = `${change.kind} skipped: ${why}`;
    return false;
  }

  /** Start spare `id` (it joins, dialling every replica) and add it as a learner. */
  private async addLearner(id: number, deadline: number): Promise<void> {
    if (!this.cluster.running(id)) this.cluster.start(id);
    await this.post({ op: "add", id }, deadline);
  }

  /** SIGKILL the leader right after a change (not the replica just removed), and restart it a little later. */
  private async killLeader(removed: number): Promise<void> {
    const leader = await this.cluster.leader();
    if (leader === null || leader === removed) return;
    await this.cluster.kill(leader, "SIGKILL");
    this.progress(`${(this.now() / 1000).toFixed(1)}s membership: killed leader ${leader} right after the change`);
    void sleep(1500).then(() => {
      if (this.cluster.wanted(leader) && !this.cluster.running(leader)) this.cluster.start(leader);
    });
  }

  /**
   * Replica `id` was removed: wait until it says it retired (it stops campaigning and serving),
   * then stop it for good. One that is down never learns it; the operator stops it anyway.
   */
  private async retire(id: number, chosenAt: number, change: MembershipChange): Promise<void> {
    const until = this.now() + 15_000;
    while (this.now() < until) {
      const status = await this.cluster.status(id);
      if (status?.role === "removed") {
        change.retiredAfterMs = Math.round(this.now() - chosenAt);
        break;
      }
      if (!this.cluster.running(id)) break;
      await sleep(100);
    }
    this.cluster.retired.add(id);
    await this.cluster.kill(id, "SIGTERM");
  }

  /** POST a change until it is made (retrying without a leader, while a learner catches up, or a replica connects). */
  private async post(body: Record<string, unknown>, deadline: number): Promise<ApiReply> {
    for (;;) {
      const endpoints = this.cluster.memberIds
        .filter((id) => this.cluster.running(id) && !this.cluster.paused(id))
        .map((id) => this.cluster.endpoint(id));
      let reply: ApiReply | null = null;
      if (endpoints.length > 0) {
        try {
          reply = await new KvClient({ endpoints, deadlineMs: 3000, token: this.cluster.token }).call(
            "POST",
            "/v1/members",
            body,
          );
        } catch {
          reply = null;
        }
      }
      if (reply?.status === 200) return reply;
      const code = reply?.status === 409 ? String(reply.body.code) : "";
      const said = reply?.body.message;
      const message = reply === null ? "no answer" : `${reply.status} ${typeof said === "string" ? said : ""}`;
      // An earlier attempt was made after all (its answer was lost with a leader).
      const misfit = code === "refused" || code === "not-a-learner";
      if (misfit && /already a member|is not a learner|is not a voter|is not a member/.test(message)) {
        if (await this.alreadyMade(body)) return reply!;
        throw new Error(`${JSON.stringify(body)} refused: ${message}`);
      }
      if (reply !== null && reply.status !== 503 && !["not-caught-up", "unknown-replica"].includes(code) && code !== "")
        throw new Error(`${JSON.stringify(body)} refused: ${message}`);
      if (this.now() > deadline)
        throw new Error(`${JSON.stringify(body)} not made within ${changeDeadlineMs} ms: ${message}`);
      await sleep(300);
    }
  }

  /** Does the leader's configuration already show `body` made? */
  private async alreadyMade(body: Record<string, unknown>): Promise<boolean> {
    const leader = await this.cluster.leader();
    if (leader === null) return false;
    const status = await this.cluster.status(leader);
    if (status === undefined) return false;
    const latest = status.membership.pending.at(-1) ?? status.membership.inForce;
    const id = Number(body.id);
    switch (body.op) {
      case "add":
        return latest.learners.includes(id) || latest.voters.includes(id);
      case "promote":
        return latest.voters.includes(id);
      case "replace":
        return latest.voters.includes(id) && !latest.voters.includes(Number(body.old));
      case "remove":
        return !latest.voters.includes(id) && !latest.learners.includes(id);
      default:
        return false;
    }
  }

  /**
   * Liveness after a membership change: once no fault is active and every member runs (a quorum
   * of the current configuration up and connected), a leader holds a lease within the bound. A
   * fault that starts meanwhile voids the measurement.
   */
  private async checkLiveness(change: MembershipChange): Promise<void> {
    const quorumUp = (): boolean =>
      !this.faultActive() && this.cluster.memberIds.every((id) => this.cluster.running(id) && !this.cluster.paused(id));
    const waitUntil = this.now() + changeDeadlineMs;
    while (!quorumUp()) {
      if (this.now() > waitUntil) return;
      await sleep(50);
    }
    const from = this.now();
    while (this.now() - from <= livenessBoundMs) {
      if (!quorumUp()) return;
      const leader = await this.cluster.leader();
      const status = leader === null ? undefined : await this.cluster.status(leader);
      if (status !== undefined && status.role === "leader" && (status.leaseRemainingMs ?? 0) > 0) {
        change.leaderWithLeaseMs = Math.round(this.now() - from);
        return;
      }
      await sleep(50);
    }
    if (!quorumUp()) return;
    this.violations.push(
      `LivenessAfterChange: after ${change.description}, members ${this.cluster.memberIds.join(",")} were all up and connected, but no leader held a lease within ${livenessBoundMs} ms`,
    );
  }
}

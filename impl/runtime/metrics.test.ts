/**
 * Metrics derived from successive core views: commits count executed slots, elections count
 * campaigns, renewals count lease extensions in one ballot, and the recent-events list stays
 * bounded. Each check is paired with a change that must not count.
 */
import { describe, expect, it } from "vitest";
import { ReplicaMetrics } from "./metrics.ts";
import { sleep, stallLoop } from "./testing.ts";
import { RecentEvents, recentEventsMax } from "./status.ts";
import type { CoreView } from "./view.ts";

const base: CoreView = {
  role: "follower",
  leader: null,
  ballot: null,
  promised: "(0,0)",
  promisedBallot: { round: 0, replica: 0 },
  leaseUntil: null,
  executedSlot: 0,
  commitIndex: 0,
  pendingCommands: 0,
  inflightSlots: 0,
  halted: null,
  digest: "",
  uncompared: [],
  uncomparedCount: 0,
  sessions: { featureLevel: 1, featureLevelMax: 2, featureLevelTarget: 1, featureLevelKnown: 2, count: 0, evicted: 0 },
  membership: {
    initialMembers: [1, 2, 3],
    alpha: 64,
    inForce: { epoch: 0, governsFrom: 1, voters: [1, 2, 3], learners: [], retired: [] },
    pending: [],
    self: "voter",
    joining: false,
    retired: null,
    addresses: new Map(),
    transfer: null,
    snapshotSlot: null,
    progress: new Map(),
  },
};
/** The view's fields for a promise of ballot (round, replica): its text and its fields. */
function promise(round: number, replica: number): Pick<CoreView, "promised" | "promisedBallot"> {
  return { promised: `(${round},${replica})`, promisedBallot: { round, replica } };
}

const report = { events: 1, records: 1, sends: 0, replies: 0 };

const quietSources = { events: () => 0, requests: () => 0, droppedEvents: () => 0, outboundBytes: () => new Map() };

/** Metrics over a view that `step` changes batch by batch, as the driver reports them. */
function viewStepper(sources: ConstructorParameters<typeof ReplicaMetrics>[1] = quietSources): {
  metrics: ReplicaMetrics;
  step: (next: Partial<CoreView>) => void;
} {
  let view = base;
  const metrics = new ReplicaMetrics(
    1,
    sources,
    () => view,
    () => 0,
  );
  const step = (next: Partial<CoreView>): void => {
    const before = view;
    view = { ...view, ...next };
    metrics.onBatch(report, before, view);
  };
  return { metrics, step };
}

async function value(metrics: ReplicaMetrics, name: string): Promise<number> {
  const metric = await metrics.registry.getSingleMetric(name)?.get();
  return metric?.values[0]?.value ?? Number.NaN;
}

describe("replica metrics", () => {
  it("derive commits, elections, leaderships and renewals from view changes", async () => {
    const { metrics, step } = viewStepper({
      events: () => 3,
      requests: () => 0,
      droppedEvents: () => 0,
      outboundBytes: () => new Map([[2, 10]]),
    });
    step({ role: "candidate", ballot: "(1,1)" });
    step({ role: "candidate", ballot: "(1,1)" });
    step({ role: "leader", ballot: "(1,1)", leader: 1, leaseUntil: 100 });
    step({ leaseUntil: 150 });
    step({ leaseUntil: 150, executedSlot: 4 });
    step({ leaseUntil: 120 });
    step({ role: "follower", ballot: null, leader: 2, leaseUntil: null, executedSlot: 5 });
    expect(await value(metrics, "paxos_lease_elections_total")).toBe(1);
    expect(await value(metrics, "paxos_lease_leaderships_total")).toBe(1);
    expect(await value(metrics, "paxos_lease_lease_renewals_total")).toBe(1);
    expect(await value(metrics, "paxos_lease_commits_total")).toBe(5);
    expect(await value(metrics, "paxos_lease_leader_changes_total")).toBe(2);
    const text = (await metrics.render()).body;
    expect(text).toMatch(/paxos_lease_event_queue_depth\{replica="1"\} 3/);
    expect(text).toMatch(/paxos_lease_peer_outbound_bytes\{peer="2",replica="1"\} 10/);
    // Commits are counted as the driver reports them durable, not per batch (a batch's records may
    // join a later commit).
    expect(text).toMatch(/paxos_lease_fsync_seconds_count\{replica="1"\} 0/);
    metrics.onCommit(3, 2);
    metrics.onCommit(1, 4);
    const after = (await metrics.render()).body;
    expect(after).toMatch(/paxos_lease_fsync_seconds_count\{replica="1"\} 2/);
    expect(after).toMatch(/paxos_lease_fsync_seconds_sum\{replica="1"\} 0\.006/);
    expect(after).toMatch(/paxos_lease_group_commit_records_sum\{replica="1"\} 4/);
  });

  it("count the peers' checkpoints not compared for their digest format, each once", async () => {
    const { metrics, step } = viewStepper();
    const uncompared = [{ replica: 3, slot: 8, ownFormat: "sha256", peerFormat: "" }];
    step({ uncompared, uncomparedCount: 1 });
    step({ executedSlot: 9 });
    expect(await value(metrics, "paxos_lease_checkpoints_uncompared_total")).toBe(1);
    step({ uncompared: [{ ...uncompared[0]!, slot: 12 }], uncomparedCount: 2 });
    step({ uncompared: [] });
    expect(await value(metrics, "paxos_lease_checkpoints_uncompared_total")).toBe(2);
  });

  it("count step-downs by cause: by itself (its promise unchanged) or deposed (it promised a higher ballot)", async () => {
    const { metrics, step } = viewStepper();
    const leading = { role: "leader", ballot: "(1,1)", ...promise(1, 1), leader: 1, leaseUntil: 100 } as const;
    step(leading);
    // CheckQuorum: a follower again, still promised to its own ballot.
    step({ role: "follower", ballot: null, leader: null, leaseUntil: null });
    step({ ...leading, ballot: "(2,1)", ...promise(2, 1) });
    step({ executedSlot: 3 });
    // A candidate's Prepare in ballot (2,3): promised, so deposed.
    step({ role: "follower", ballot: null, ...promise(2, 3), leader: null, leaseUntil: null });
    step({ role: "candidate", ballot: "(3,1)", ...promise(3, 1) });
    step({ role: "follower", ballot: null });
    const text = (await metrics.render()).body;
    expect(text).toMatch(/paxos_lease_step_downs_total\{cause="own",replica="1"\} 1\n/);
    expect(text).toMatch(/paxos_lease_step_downs_total\{cause="deposed",replica="1"\} 1\n/);
  });

  it("count a leader that elects itself again in a higher ballot within one batch as stepping down by itself", async () => {
    const { metrics, step } = viewStepper();
    const leading = { role: "leader", ballot: "(1,1)", ...promise(1, 1), leader: 1, leaseUntil: 100 } as const;
    step(leading);
    // CheckQuorum, a campaign and its win in one batch: its own higher ballot, nobody else's.
    step({ ...leading, ballot: "(2,1)", ...promise(2, 1), leaseUntil: 200 });
    // Stepped down and campaigning in its own ballot (10,1): by itself too, though not leading.
    step({ role: "candidate", ballot: "(10,1)", ...promise(10, 1), leader: null, leaseUntil: null });
    step({ ...leading, ballot: "(10,1)", ...promise(10, 1) });
    // Replica 3's Prepare in (11,3), then its own campaign in (12,1) lost: a follower promised to
    // its own ballot. The batch that deposed it is the first; it counts there.
    step({ role: "follower", ballot: null, ...promise(11, 3), leader: null, leaseUntil: null });
    step({ role: "candidate", ballot: "(12,1)", ...promise(12, 1) });
    step({ ...leading, ballot: "(12,1)", ...promise(12, 1) });
    // Replica 2 leads (13,2) and replica 1 promised it within the batch that ended its leadership.
    step({ role: "follower", ballot: null, ...promise(13, 2), leader: 2, leaseUntil: null });
    const text = (await metrics.render()).body;
    expect(text).toMatch(/paxos_lease_step_downs_total\{cause="own",replica="1"\} 2\n/);
    expect(text).toMatch(/paxos_lease_step_downs_total\{cause="deposed",replica="1"\} 2\n/);
    expect(await value(metrics, "paxos_lease_leaderships_total")).toBe(4);
  });

  it("read the step-down cause off the promised ballot's fields, never off its displayed text", async () => {
    const { metrics, step } = viewStepper();
    // The text says nothing a parser could read an owner from: only the fields decide.
    const shown = (round: number, replica: number): Pick<CoreView, "promised" | "promisedBallot"> => ({
      promised: `ballot ${round} of replica ${replica}`,
      promisedBallot: { round, replica },
    });
    const leading = { role: "leader", ballot: "(1,1)", ...shown(1, 1), leader: 1, leaseUntil: 100 } as const;
    step(leading);
    // Its own higher ballot (a campaign of its own after CheckQuorum): own.
    step({ role: "candidate", ballot: "(2,1)", ...shown(2, 1), leader: null, leaseUntil: null });
    step({ ...leading, ballot: "(2,1)", ...shown(2, 1) });
    // Replica 11's higher ballot: deposed.
    step({ role: "follower", ballot: null, ...shown(21, 11), leader: null, leaseUntil: null });
    step({ ...leading, ballot: "(22,1)", ...shown(22, 1) });
    // CheckQuorum: the same ballot shown otherwise is still its own promise, so own.
    step({
      role: "follower",
      ballot: null,
      promised: "(22,1)",
      promisedBallot: { round: 22, replica: 1 },
      leaseUntil: null,
    });
    const text = (await metrics.render()).body;
    expect(text).toMatch(/paxos_lease_step_downs_total\{cause="own",replica="1"\} 2\n/);
    expect(text).toMatch(/paxos_lease_step_downs_total\{cause="deposed",replica="1"\} 1\n/);
    expect(await value(metrics, "paxos_lease_promised_round")).toBe(22);
  });

  it("count the appends that waited behind a snapshot, as the storage thread reports them", async () => {
    let behind = 0;
    const depths = { events: () => 0, requests: () => 0, droppedEvents: () => 0, outboundBytes: () => new Map() };
    const metrics = new ReplicaMetrics(
      1,
      { ...depths, appendsBehindSnapshot: () => behind, receivedUnvouched: () => behind * 2 },
      () => base,
      () => 0,
    );
    expect(await value(metrics, "paxos_lease_appends_behind_snapshot_total")).toBe(0);
    expect(await value(metrics, "paxos_lease_transfer_stage_refused_total")).toBe(0);
    behind = 3;
    expect(await value(metrics, "paxos_lease_appends_behind_snapshot_total")).toBe(3);
    expect(await value(metrics, "paxos_lease_transfer_stage_refused_total")).toBe(6);
    const without = new ReplicaMetrics(
      1,
      depths,
      () => base,
      () => 0,
    );
    expect(without.registry.getSingleMetric("paxos_lease_appends_behind_snapshot_total")).toBeUndefined();
  });

  it("show the membership: voters and learners in force, its epoch, pending configurations", async () => {
    let view = base;
    const metrics = new ReplicaMetrics(
      1,
      { events: () => 0, requests: () => 0, droppedEvents: () => 0, outboundBytes: () => new Map() },
      () => view,
      () => 0,
    );
    expect(await value(metrics, "paxos_lease_configuration_voters")).toBe(3);
    expect(await value(metrics, "paxos_lease_configuration_learners")).toBe(0);
    expect(await value(metrics, "paxos_lease_configurations_pending")).toBe(0);
    const pending = { epoch: 40, governsFrom: 104, voters: [1, 2, 3], learners: [4], retired: [] };
    view = { ...base, membership: { ...base.membership, pending: [pending] } };
    expect(await value(metrics, "paxos_lease_configurations_pending")).toBe(1);
    expect(await value(metrics, "paxos_lease_configuration_learners")).toBe(0);
    view = { ...base, membership: { ...base.membership, inForce: pending } };
    expect(await value(metrics, "paxos_lease_configuration_learners")).toBe(1);
    expect(await value(metrics, "paxos_lease_configuration_epoch")).toBe(40);
  });

  it("measure heartbeat gaps within one leadership: a leader elected again starts afresh", async () => {
    const metrics = new ReplicaMetrics(
      1,
      { events: () => 0, requests: () => 0, droppedEvents: () => 0, outboundBytes: () => new Map() },
      () => base,
      () => 0,
    );
    const gaps = async (): Promise<{ count: number; sum: number; over400ms: number }> => {
      const text = (await metrics.render()).body;
      const sample = (name: string): number =>
        Number(new RegExp(`^paxos_lease_heartbeat_gap_seconds${name} (\\S+)$`, "m").exec(text)?.[1]);
      const count = sample('_count\\{replica="1"\\}');
      return {
        count,
        sum: sample('_sum\\{replica="1"\\}'),
        over400ms: count - sample('_bucket\\{le="0.4",replica="1"\\}'),
      };
    };
    // Replica 2 leads in (1,2), loses its leadership to replica 3 in (2,3) for ten seconds, then
    // leads again in (3,2): neither the switch to 3 nor replica 2's return is a gap.
    metrics.heartbeatArrived(2, { round: 1, replica: 2 }, 1000);
    metrics.heartbeatArrived(2, { round: 1, replica: 2 }, 1050);
    metrics.heartbeatArrived(3, { round: 2, replica: 3 }, 1500);
    metrics.heartbeatArrived(3, { round: 2, replica: 3 }, 1560);
    metrics.heartbeatArrived(2, { round: 3, replica: 2 }, 11_000);
    metrics.heartbeatArrived(2, { round: 3, replica: 2 }, 11_040);
    expect(await gaps()).toEqual({ count: 3, sum: expect.closeTo(0.15, 6) as number, over400ms: 0 });
    // A leader silent for half a second within its ballot is a gap past the election timeout.
    metrics.heartbeatArrived(2, { round: 3, replica: 2 }, 11_540);
    expect((await gaps()).over400ms).toBe(1);
  });

  it("cut the heartbeat histograms at the replica's own lease and election timeout", async () => {
    const timing = { heartbeatIntervalMs: 100, leaseMs: 1000, electionTimeoutMsMin: 1334 };
    const metrics = new ReplicaMetrics(
      1,
      { events: () => 0, requests: () => 0, droppedEvents: () => 0, outboundBytes: () => new Map() },
      () => base,
      () => 0,
      timing,
    );
    const text = (await metrics.render()).body;
    for (const le of ["0.25", "0.5", "1", "0.667", "1.334"])
      expect(text).toContain(`paxos_lease_heartbeat_round_trip_seconds_bucket{le="${le}",replica="1"} 0`);
    expect(text).not.toContain('paxos_lease_heartbeat_gap_seconds_bucket{le="0.075"');
  });

  it("keep at most the newest recent events, newest first", () => {
    const events = new RecentEvents(() => 0);
    for (let i = 0; i < recentEventsMax + 20; i++) events.add("info", `e${i}`);
    const list = events.list();
    expect(list.length).toBe(recentEventsMax);
    expect(list[0]!.text).toBe(`e${recentEventsMax + 19}`);
    events.noteViewChange(base, { ...base, role: "leader", ballot: "(2,1)", leader: 1 });
    expect(
      events
        .list()
        .slice(0, 2)
        .map((e) => e.text),
    ).toEqual(["leader is replica 1", "became leader in ballot (2,1)"]);
  });
});

describe("the replica's lag metrics", () => {
  const newMetrics = (): ReplicaMetrics =>
    new ReplicaMetrics(
      1,
      { events: () => 0, requests: () => 0, droppedEvents: () => 0, outboundBytes: () => new Map() },
      () => base,
      () => 0,
    );
  const batch = (records: number, replies: number) => ({ ...report, records, replies });

  it("sample after a batch that wrote records or answered a client, or an HTTP answer, and not after a tick or heartbeat", () => {
    const quiet = newMetrics();
    quiet.onBatch(batch(0, 0), base, base);
    expect(quiet.loopLag.active).toBe(false);
    quiet.loopLag.close();
    for (const work of [
      (m: ReplicaMetrics) => m.onBatch(batch(1, 0), base, base),
      (m: ReplicaMetrics) => m.onBatch(batch(0, 1), base, base),
      (m: ReplicaMetrics) => m.httpResponse("kv-put", 200),
    ]) {
      const metrics = newMetrics();
      work(metrics);
      expect(metrics.loopLag.active).toBe(true);
      metrics.loopLag.close();
    }
  });

  it("show each lag statistic once under prom-client's names: a stall while working, zero while idle", async () => {
    const metrics = newMetrics();
    const lines = (text: string, name: string): string[] =>
      text.split("\n").filter((l) => l.startsWith(`paxos_lease_process_nodejs_eventloop_lag_${name}`));
    const idle = (await metrics.render()).body;
    for (const name of ["seconds", "min_seconds", "max_seconds", "mean_seconds", "p50_seconds", "p99_seconds"])
      expect(lines(idle, name)).toHaveLength(1);
    expect(lines(idle, "p99_seconds")[0]).toMatch(/ 0$/);
    metrics.httpResponse("kv-put", 200);
    await sleep(30);
    stallLoop(60);
    await sleep(30);
    const busy = (await metrics.render()).body;
    metrics.loopLag.close();
    const max = Number(lines(busy, "max_seconds")[0]!.split(" ").at(-1));
    expect(max).toBeGreaterThanOrEqual(0.06);
    expect(busy).toContain('paxos_lease_http_responses_total{route="kv-put",status="200",replica="1"} 1');
  });
});

/**
 * The two faults that reach crossings the others miss, against a stand-in cluster (no process,
 * no network): `freeze-all` stops every running replica and thaws them all, counts a leader after
 * the thaw and whether it took a campaign, and reports no leader as a violation; a transfer-kill
 * fault kills the receiver or the sender only once the follower's /status shows a transfer in
 * progress (cutting the follower off again when it passed the snapshot with none seen), and
 * counts a fault that saw none. The real runs are nemesis.test's (freeze-all) and
 * `npm run nemesis -- --kinds transfer-kill-receiver,transfer-kill-sender` (docs/nemesis.md).
 */
import { describe, expect, it } from "vitest";
import type { BurstCounters, NemesisCluster } from "./cluster.ts";
import { monotonicMs, noBurstCounters } from "./cluster.ts";
import { Nemesis } from "./nemesis.ts";
import type { PlannedFault } from "./schedule.ts";

const counters: BurstCounters = noBurstCounters;

interface Transfer {
  readonly from: number;
  readonly slot: number;
  readonly receivedBytes: number;
  readonly totalBytes: number;
}

/** Three replicas that do what they are told and say what the test wants them to. */
function standIn(options: {
  readonly leaderAfterThaw: number | null;
  readonly campaignsAtThaw: number;
  /** What r2's /status shows, poll by poll: "past" is no transfer and r2's snapshot at the leader's. */
  readonly transfers?: readonly (Transfer | null | "past")[];
}) {
  const signals: [number, string, number][] = [];
  const killed: number[] = [];
  const started: number[] = [];
  let frozen = false;
  let thawed = false;
  let polls = 0;
  /** Times r2 was cut off again: each moves the leader's snapshot on by ten slots. */
  let cuts = 0;
  let heals = 0;
  const leaderSlot = (): number => 40 + 10 * cuts;
  const cluster = {
    ids: [1, 2, 3],
    memberIds: [1, 2, 3],
    running: (id: number) => !killed.includes(id) || started.includes(id),
    wanted: () => true,
    signal: (id: number, signal: string) => {
      signals.push([id, signal, monotonicMs()]);
      if (signal === "SIGSTOP") frozen = true;
      else thawed = true;
    },
    leader: () => Promise.resolve(frozen && !thawed ? null : 1),
    waitForLeader: () => Promise.resolve(options.leaderAfterThaw),
    burstCounters: () =>
      Promise.resolve(new Map([[1, { ...counters, elections: 5 + (thawed ? options.campaignsAtThaw : 0) }]] as const)),
    kill: (id: number) => {
      killed.push(id);
      return Promise.resolve();
    },
    start: (id: number) => void started.push(id),
    status: (id: number) => {
      if (id !== 2) return Promise.resolve({ membership: { transfer: null, snapshotSlot: leaderSlot() } });
      // Cut off again: r2 stays where it was, behind the leader's new snapshot.
      if (cuts > heals) return Promise.resolve({ membership: { transfer: null, snapshotSlot: 20 } });
      const shown = options.transfers?.[Math.min(polls++, options.transfers.length - 1)] ?? null;
      const transfer = shown === "past" ? null : shown;
      return Promise.resolve({ membership: { transfer, snapshotSlot: shown === "past" ? leaderSlot() : 20 } });
    },
    network: {
      counters: () => Promise.resolve({ unit: "connections", dropped: 0, reset: 0 }),
      setLinks: () => {
        cuts += 1;
        return Promise.resolve();
      },
      healLinks: () => {
        heals += 1;
        return Promise.resolve();
      },
    },
  };
  return {
    cluster: cluster as unknown as NemesisCluster,
    signals,
    killed,
    started,
    links: () => ({ cuts, heals }),
  };
}

const freeze: PlannedFault = { kind: "freeze-all", at: 0, durationMs: 20, parameter: 0, pick: 0.37 };
const bounds = { transferWatchMs: 200, transferDownMs: 10, thawLeaderMs: 50 };

describe("freeze-all", () => {
  it("stops every running replica, then resumes each once, within a few ms, and counts the leader kept", async () => {
    const { cluster, signals } = standIn({ leaderAfterThaw: 1, campaignsAtThaw: 0 });
    const nemesis = new Nemesis(cluster, monotonicMs(), undefined, null, bounds);
    await nemesis.run([freeze]);
    const stops = signals.filter(([, s]) => s === "SIGSTOP");
    const resumes = signals.filter(([, s]) => s === "SIGCONT");
    expect(stops.map(([id]) => id)).toEqual([1, 2, 3]);
    expect(resumes.map(([id]) => id).sort()).toEqual([1, 2, 3]);
    expect(resumes.at(-1)![2] - resumes[0]![2]).toBeLessThan(50);
    expect(nemesis.counts).toMatchObject({ thawsWithLeader: 1, thawCampaigns: 0, thawLeaderKept: 1 });
    expect(nemesis.violations).toEqual([]);
    expect(nemesis.injected[0]!.effect).toMatch(
      /^thawed r\d,r\d,r\d within [\d.]+ ms; r1 leads \d+ ms later \(before the stop: r1\); 0 campaigns$/,
    );
  });

  it("counts a campaign at the thaw, and a thaw with no leader is a violation that counts nothing", async () => {
    const campaign = standIn({ leaderAfterThaw: 2, campaignsAtThaw: 3 });
    const withCampaign = new Nemesis(campaign.cluster, monotonicMs(), undefined, null, bounds);
    await withCampaign.run([freeze]);
    expect(withCampaign.counts).toMatchObject({ thawsWithLeader: 1, thawCampaigns: 1, thawLeaderKept: 0 });

    const none = new Nemesis(
      standIn({ leaderAfterThaw: null, campaignsAtThaw: 0 }).cluster,
      monotonicMs(),
      undefined,
      null,
      bounds,
    );
    await none.run([freeze]);
    expect(none.counts.thawsWithLeader).toBe(0);
    expect(none.violations).toEqual([
      expect.stringMatching(/^NoRecovery: no leader within 0.05 s of thawing every replica/),
    ]);
  });
});

describe("a kill during a transfer", () => {
  const inFlight: Transfer = { from: 3, slot: 40, receivedBytes: 65_536, totalBytes: 4_000_000 };

  it("waits for the follower's /status to show a transfer in progress, then kills the receiver or the sender", async () => {
    const receiver = standIn({ leaderAfterThaw: 1, campaignsAtThaw: 0, transfers: [null, null, inFlight] });
    const nemesis = new Nemesis(receiver.cluster, monotonicMs(), undefined, null, bounds);
    expect(await nemesis.killDuringTransfer("transfer-kill-receiver", 2, 1)).toBe(2);
    expect(receiver.killed).toEqual([2]);
    expect(receiver.started).toEqual([2]);

    const sender = standIn({ leaderAfterThaw: 1, campaignsAtThaw: 0, transfers: [inFlight] });
    const other = new Nemesis(sender.cluster, monotonicMs(), undefined, null, bounds);
    expect(await other.killDuringTransfer("transfer-kill-sender", 2, 1)).toBe(3);
    expect(sender.killed).toEqual([3]);
    expect(other.counts).toMatchObject({ killedDuringTransfer: 1, transfersNotSeen: 0 });
  });

  it("cuts the follower off again when it passed the snapshot with no transfer seen, and watches again", async () => {
    const missed = standIn({ leaderAfterThaw: 1, campaignsAtThaw: 0, transfers: [null, "past", null, inFlight] });
    const nemesis = new Nemesis(missed.cluster, monotonicMs(), undefined, null, bounds);
    expect(await nemesis.killDuringTransfer("transfer-kill-receiver", 2, 1)).toBe(2);
    expect(missed.killed).toEqual([2]);
    expect(missed.links()).toEqual({ cuts: 1, heals: 1 });
    expect(nemesis.counts).toMatchObject({ killedDuringTransfer: 1, transfersNotSeen: 0 });
  });

  it("kills nobody when no transfer shows up in progress (none, or one already complete), and counts that", async () => {
    const done = { ...inFlight, receivedBytes: inFlight.totalBytes };
    const { cluster, killed, links } = standIn({ leaderAfterThaw: 1, campaignsAtThaw: 0, transfers: [null, done] });
    const nemesis = new Nemesis(cluster, monotonicMs(), undefined, null, bounds);
    expect(await nemesis.killDuringTransfer("transfer-kill-receiver", 2, 1)).toBeNull();
    expect(killed).toEqual([]);
    // Still behind the snapshot at the end of the watch: no transfer came, and none is tried again.
    expect(links()).toEqual({ cuts: 0, heals: 0 });
    expect(nemesis.counts).toMatchObject({ killedDuringTransfer: 0, transfersNotSeen: 1 });

    // Past the snapshot every time: three watches, two cuts, then counted as not seen.
    const past = standIn({ leaderAfterThaw: 1, campaignsAtThaw: 0, transfers: [null, "past"] });
    const again = new Nemesis(past.cluster, monotonicMs(), undefined, null, bounds);
    expect(await again.killDuringTransfer("transfer-kill-sender", 2, 1)).toBeNull();
    expect(past.killed).toEqual([]);
    expect(past.links()).toEqual({ cuts: 2, heals: 2 });
    expect(again.counts).toMatchObject({ killedDuringTransfer: 0, transfersNotSeen: 1 });
  });
});

/**
 * The nemesis's required interaction counters: a run that injects a fault meant to reach a state
 * and never reaches it says so (`neverReached`), as a campaign of the world that misses a required
 * "sometimes" counter does; and a schedule holding follower-behind-snapshot gets the snapshot
 * interval that fault needs, unless the run's core overrides name one. And the replay command a run
 * prints runs it again with the core settings it had: split by a real shell and parsed by the
 * command's own flags (command.ts), it gives back the run's core overrides, those of
 * membership.test and hosts.test among them; `--core` refuses what a replica would refuse.
 */
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { appendBytesRan, appendBytesRefused } from "../../proofs/service-level.ts";
import { burstCountersIn, noBurstCounters, sumBurstCounters } from "./cluster.ts";
import { BusyThreads, busyThreadsFor } from "./busy.ts";
import { noFaultCounts, relayedSince, transferInFlight } from "./nemesis.ts";
import {
  behindSnapshotIntervalBytes,
  commandSparesDefault,
  coreOf,
  neverReachedOf,
  reachedRequired,
  replayCommand,
  type NemesisOptions,
  openedSessionsRequired,
  sessionsBoundedOf,
  sessionsOpenedOf,
  valueBytesOf,
  valueBytesRequired,
  sessionsRequired,
  summarizeFloods,
} from "./run.ts";
import { planSchedule } from "./schedule.ts";
import { coreOverridesOf, nemesisCommand, type NemesisFlags } from "./command.ts";

const behind = "appends behind a snapshot (paxos_lease_appends_behind_snapshot_total)";
const fromDisk = "values read back from disk (paxos_lease_values_read_from_disk_total)";
const relayed = "heartbeat copies relayed (paxos_lease_heartbeats_relayed_total)";
const killed = "killed during a transfer";
const resumed = "a transfer resumed after a restart (paxos_lease_transfers_resumed_total)";
const thawed = "a leader after a thaw of every replica";
const hostile = "hostile connections answered as documented";
const counted = {
  appendsBehindSnapshot: 0,
  catchUpsHeld: 0,
  valuesReadFromDisk: 0,
  heartbeatsRelayed: 0,
  largePromises: 0,
  elections: 0,
  transfersResumed: 0,
  sessionsEvicted: 0,
  sessionsExpired: 0,
  sessionsOpened: 0,
  openedSessionsExpired: 0,
  appendsRefusedInBytes: 0,
  appendsOverBytesRan: 0,
  featureLevelRaised: 0,
  ...noFaultCounts,
};

describe("required interaction counters", () => {
  it("name appends behind a snapshot, driven by follower-behind-snapshot, values read back from disk, and heartbeat copies relayed", () => {
    expect(reachedRequired.map((r) => r.name)).toEqual([behind, fromDisk, relayed, killed, resumed, thawed, hostile]);
  });

  it("ask a run with hostile clients for connections answered as documented (those cut short by other faults do not count)", () => {
    expect(
      neverReachedOf({ ...counted, hostileCutShort: 7, hostileRefusedPastBound: 30 }, ["hostile-clients"]),
    ).toEqual([hostile]);
    expect(neverReachedOf({ ...counted, hostileDocumented: 7 }, ["hostile-clients"])).toEqual([]);
  });

  it("ask a run with a transfer-kill fault for a kill during a transfer, and one with freeze-all for a leader after the thaw", () => {
    // A transfer-kill fault that never saw a transfer in progress killed nobody: not reached.
    expect(
      neverReachedOf({ ...counted, appendsBehindSnapshot: 3, transfersNotSeen: 2 }, [
        "transfer-kill-receiver",
        "transfer-kill-sender",
      ]),
    ).toEqual([killed, resumed]);
    expect(neverReachedOf({ ...counted, killedDuringTransfer: 1 }, ["transfer-kill-sender"])).toEqual([]);
    // A receiver killed mid-transfer that started over from byte 0 did not resume it.
    expect(neverReachedOf({ ...counted, killedDuringTransfer: 1 }, ["transfer-kill-receiver"])).toEqual([resumed]);
    expect(
      neverReachedOf({ ...counted, killedDuringTransfer: 1, transfersResumed: 1 }, ["transfer-kill-receiver"]),
    ).toEqual([]);
    // A thaw after which no leader showed up counts nothing (and is a NoRecovery violation).
    expect(neverReachedOf(counted, ["freeze-all"])).toEqual([thawed]);
    expect(neverReachedOf({ ...counted, thawsWithLeader: 1, thawLeaderKept: 1 }, ["freeze-all"])).toEqual([]);
  });

  it("ask a run with a flood for heartbeat copies relayed by its leader", () => {
    expect(neverReachedOf(counted, ["flood"])).toEqual([relayed]);
    expect(neverReachedOf({ ...counted, heartbeatsRelayed: 4 }, ["flood", "burst"])).toEqual([]);
    // Copies a flood counted at its end reach it too: the flooded leader, restarted later, counts none at the end.
    expect(neverReachedOf({ ...counted, relayedDuringFloods: 3 }, ["flood", "kill-leader"])).toEqual([]);
  });

  it("count a flood's copies per member between two reads, a member restarted in between from its start", () => {
    const of = (...relayedBy: number[]) =>
      new Map(relayedBy.map((n, i) => [i + 1, { ...noBurstCounters, heartbeatsRelayed: n }] as const));
    expect(relayedSince(of(5, 0, 0), of(5, 0, 0))).toBe(0);
    expect(relayedSince(of(5, 0, 0), of(9, 0, 2))).toBe(6);
    // Member 1 restarted (its counter from 0 again): its 3 since the start count.
    expect(relayedSince(of(5, 0, 0), of(3, 0, 0))).toBe(3);
  });

  it("starve a flood's machine with busy threads only after a wave that relayed nothing, doubling up to eight per core", () => {
    expect([0, 1, 2, 3, 4, 5, 9].map((waves) => busyThreadsFor(waves, 2))).toEqual([0, 2, 4, 8, 16, 16, 16]);
    expect(busyThreadsFor(1, 8)).toBe(8);
  });

  it("start busy threads up to a count, never fewer, and end them all", async () => {
    const busy = new BusyThreads();
    busy.raiseTo(2);
    busy.raiseTo(1);
    expect([busy.count, busy.most]).toEqual([2, 2]);
    await busy.stop();
    expect([busy.count, busy.most]).toEqual([0, 2]);
  });

  it("say so when a run injected the fault and the counter stayed at zero, or was never read", () => {
    expect(
      neverReachedOf({ ...counted, catchUpsHeld: 3, valuesReadFromDisk: 1 }, [
        "kill-leader",
        "follower-behind-snapshot",
      ]),
    ).toEqual([behind]);
    expect(neverReachedOf(null, ["follower-behind-snapshot"])).toEqual([behind]);
    expect(neverReachedOf({ ...counted, appendsBehindSnapshot: 2 }, ["kill-follower"])).toEqual([fromDisk]);
    expect(neverReachedOf(counted, ["restart-follower", "follower-behind-snapshot"])).toEqual([behind, fromDisk]);
  });

  it("ask a run whose session table is smaller than its clients for evictions and session-expired met, whatever its faults", () => {
    const [evicted, expired] = sessionsRequired.map((r) => r.name);
    expect(neverReachedOf(counted, ["kill-leader"], true)).toEqual([evicted, expired]);
    expect(neverReachedOf({ ...counted, sessionsEvicted: 9 }, [], true)).toEqual([expired]);
    expect(neverReachedOf({ ...counted, sessionsEvicted: 9, sessionsExpired: 4 }, [], true)).toEqual([]);
    expect(neverReachedOf(counted, ["kill-leader"])).toEqual([]);
    // Bounded: at level 2 with fewer sessions than clients; the level's own or a large table is not.
    expect(sessionsBoundedOf({ featureLevel: 2, sessionsMax: 4 }, 8)).toBe(true);
    expect(sessionsBoundedOf({ featureLevel: 2, sessionsMax: 8 }, 8)).toBe(false);
    expect(sessionsBoundedOf({ featureLevel: 2 }, 8)).toBe(false);
    expect(sessionsBoundedOf({ sessionsMax: 4 }, 8)).toBe(false);
    // The command that runs it again names the level and the bound as flags.
    expect(replayCommand({ seed: 1, faultsMs: 6000, out: "x", core: { featureLevel: 2, sessionsMax: 4 } })).toBe(
      "npm run nemesis -- --seed 1 --minutes 0.1 --replicas 3 --clients 16 --spares 0 --feature-level 2 --sessions-max 4",
    );
  });

  it("ask a run at feature level 3 for sessions the service opened, and one of them evicted when its table is smaller than its clients", () => {
    const [evicted, expired] = sessionsRequired.map((r) => r.name);
    const [opened, openedEvicted] = openedSessionsRequired.map((r) => r.name);
    expect(neverReachedOf(counted, [], false, true)).toEqual([opened]);
    expect(neverReachedOf(counted, [], true, true)).toEqual([evicted, expired, opened, openedEvicted]);
    // Expired answers met only under client-chosen ids (from before the raise) show no opened session evicted.
    const metUnderChosen = { ...counted, sessionsEvicted: 9, sessionsExpired: 4, sessionsOpened: 20 };
    expect(neverReachedOf(metUnderChosen, [], true, true)).toEqual([openedEvicted]);
    expect(neverReachedOf({ ...metUnderChosen, openedSessionsExpired: 3 }, [], true, true)).toEqual([]);
    expect(neverReachedOf({ ...counted, sessionsOpened: 20 }, [], false, true)).toEqual([]);
    // Level 3 opens sessions; levels 1 and 2 do not. Bounded at level 3 as at level 2.
    expect(sessionsOpenedOf({ featureLevel: 3 })).toBe(true);
    expect(sessionsOpenedOf({ featureLevel: 2, sessionsMax: 4 })).toBe(false);
    expect(sessionsOpenedOf({})).toBe(false);
    expect(sessionsBoundedOf({ featureLevel: 3, sessionsMax: 4 }, 8)).toBe(true);
    expect(
      replayCommand({ seed: 3, faultsMs: 18_000, out: "x", clients: 8, core: { featureLevel: 3, sessionsMax: 4 } }),
    ).toBe(
      "npm run nemesis -- --seed 3 --minutes 0.3 --replicas 3 --clients 8 --spares 0 --feature-level 3 --sessions-max 4",
    );
  });

  it("ask a run at feature level 4 for the refusal in bytes, and a run raised to it for the raise and the append run before it", () => {
    const [refused, refusedTraced, raised, ran, ranTraced] = valueBytesRequired.map((r) => r.name);
    const none = { raised: false, tally: {} };
    expect(neverReachedOf(counted, [], false, false, none)).toEqual([refused, refusedTraced]);
    expect(neverReachedOf(counted, [], false, false, { raised: true, tally: {} })).toEqual([
      refused,
      refusedTraced,
      raised,
      ran,
      ranTraced,
    ]);
    // Answered to a client but not in the traces (or the traces not checked), and the other way round.
    const answered = { ...counted, appendsRefusedInBytes: 3 };
    expect(neverReachedOf(answered, [], false, false, none)).toEqual([refusedTraced]);
    expect(neverReachedOf(answered, [], false, false, { raised: false, tally: null })).toEqual([refusedTraced]);
    expect(neverReachedOf(counted, [], false, false, { raised: false, tally: { [appendBytesRefused]: 3 } })).toEqual([
      refused,
    ]);
    expect(neverReachedOf(answered, [], false, false, { raised: false, tally: { [appendBytesRefused]: 3 } })).toEqual(
      [],
    );
    const all = { ...answered, appendsOverBytesRan: 2, featureLevelRaised: 1 };
    const tally = { [appendBytesRefused]: 3, [appendBytesRan]: 2 };
    expect(neverReachedOf(all, [], false, false, { raised: true, tally })).toEqual([]);
    expect(neverReachedOf({ ...all, featureLevelRaised: 0 }, [], false, false, { raised: true, tally })).toEqual([
      raised,
    ]);
    // Not a level-4 run: nothing of it asked.
    expect(neverReachedOf(counted, [])).toEqual([]);
    expect(valueBytesOf({ featureLevel: 4 })).toBe(true);
    expect(valueBytesOf({ featureLevel: 3 }, 4)).toBe(true);
    expect(valueBytesOf({ featureLevel: 3 })).toBe(false);
    expect(valueBytesOf({ featureLevel: 2 }, 3)).toBe(false);
    expect(valueBytesOf({})).toBe(false);
    // The replay names the raise; the command refuses one that is no raise.
    expect(replayCommand({ seed: 5, faultsMs: 6000, out: "x", core: { featureLevel: 3 }, raiseFeatureLevel: 4 })).toBe(
      "npm run nemesis -- --seed 5 --minutes 0.1 --replicas 3 --clients 16 --spares 0 --feature-level 3 --raise-feature-level 4",
    );
    expect(() => coreOverridesOf({ featureLevel: 3, raiseFeatureLevel: 3 })).toThrow(
      /--raise-feature-level 3 must be above the level the run starts at \(--feature-level, 3\)/,
    );
    expect(() => coreOverridesOf({ raiseFeatureLevel: 1 })).toThrow(/must be above the level the run starts at/);
  });

  it("come with a replay command that names the spares only where they are not the command's default", () => {
    const run = { seed: 3, faultsMs: 18_000, out: "x", clients: 8, kinds: ["flood" as const] };
    const flags = (spares?: number) =>
      replayCommand(spares === undefined ? run : { ...run, spares }).replace(
        "npm run nemesis -- --seed 3 --minutes 0.3 --replicas 3 --clients 8",
        "",
      );
    // The command's own run without --spares had 4: the replay leaves them to the default.
    expect(commandSparesDefault).toBe(4);
    expect(flags(4)).toBe(" --kinds flood");
    // runNemesis without spares (a test's run) had none, which the command must be told.
    expect(flags()).toBe(" --spares 0 --kinds flood");
    expect(flags(0)).toBe(" --spares 0 --kinds flood");
    expect(flags(2)).toBe(" --spares 2 --kinds flood");
  });

  it("are satisfied once counted, and required of no run that did not inject the fault", () => {
    expect(neverReachedOf({ ...counted, appendsBehindSnapshot: 2 }, ["follower-behind-snapshot"])).toEqual([]);
    expect(neverReachedOf({ ...counted, valuesReadFromDisk: 5 }, ["kill-follower"])).toEqual([]);
    expect(neverReachedOf(counted, ["burst", "kill-leader"])).toEqual([]);
  });
});

describe("the core of a run with follower-behind-snapshot", () => {
  const withIt = planSchedule({ seed: 5, faultsMs: 20_000, replicas: 3, kinds: ["follower-behind-snapshot"] });
  const without = planSchedule({ seed: 5, faultsMs: 20_000, replicas: 3, kinds: ["kill-leader"] });

  it("snapshots every few of the fault's writes, unless the overrides say otherwise", () => {
    expect(coreOf({}, withIt)).toEqual({ snapshotIntervalBytes: behindSnapshotIntervalBytes });
    expect(coreOf({ core: { leaseMs: 400 } }, withIt)).toEqual({
      leaseMs: 400,
      snapshotIntervalBytes: behindSnapshotIntervalBytes,
    });
    expect(coreOf({ core: { snapshotIntervalBytes: 99 } }, withIt)).toEqual({ snapshotIntervalBytes: 99 });
    expect(coreOf({}, without)).toEqual({});
  });

  it("snapshots as often for the faults that kill during the transfer", () => {
    const kill = planSchedule({ seed: 5, faultsMs: 20_000, replicas: 3, kinds: ["transfer-kill-sender"] });
    expect(coreOf({}, kill)).toEqual({ snapshotIntervalBytes: behindSnapshotIntervalBytes });
  });

  it("draws 8 to 16 writers for the fault", () => {
    for (const f of withIt) {
      expect(f.parameter).toBeGreaterThanOrEqual(8);
      expect(f.parameter).toBeLessThanOrEqual(16);
    }
  });
});

describe("the lease through floods", () => {
  it("counts the floods with a leaseholder throughout, and the longest time without one", () => {
    const at = { endedAt: 0, leaseholderAfterMs: 0 };
    expect(
      summarizeFloods([
        { ...at, kind: "flood", leaselessMs: 0 },
        { ...at, kind: "flood", leaselessMs: 420 },
        { ...at, kind: "kill-leader", leaselessMs: 900 },
      ]),
    ).toBe("2; a leaseholder throughout 1 of them; longest time without one during a flood: 420 ms");
  });
});

describe("a transfer in progress, as a follower's /status shows it", () => {
  it("is one asked for and not all received; none, or one complete, is not", () => {
    expect(transferInFlight({ receivedBytes: 0, totalBytes: 0 })).toBe(true);
    expect(transferInFlight({ receivedBytes: 16_384, totalBytes: 5_000_000 })).toBe(true);
    expect(transferInFlight({ receivedBytes: 5_000_000, totalBytes: 5_000_000 })).toBe(false);
    expect(transferInFlight(null)).toBe(false);
    expect(transferInFlight(undefined)).toBe(false);
  });
});

describe("the schedule of a whole-machine stop", () => {
  it("stops every replica longer than the longest election timeout (600 ms), even at a fast pace", () => {
    const faults = planSchedule({ seed: 9, faultsMs: 60_000, replicas: 3, kinds: ["freeze-all"], pace: 0.5 });
    expect(faults.length).toBeGreaterThan(3);
    for (const f of faults) {
      expect(f.durationMs).toBeGreaterThanOrEqual(1100);
      expect(f.durationMs).toBeLessThanOrEqual(3000);
    }
  });
});

describe("the members' counters", () => {
  it("reads each from its metric's lines and sums them over the members", () => {
    const metrics = [
      'paxos_lease_messages_dropped_total{reason="catch-up-while-streaming"} 2',
      'paxos_lease_messages_dropped_total{reason="other"} 9',
      "paxos_lease_appends_behind_snapshot_total 3",
      'paxos_lease_heartbeats_relayed_total{peer="2"} 4',
      'paxos_lease_heartbeats_relayed_total{peer="3"} 1',
      "paxos_lease_transfers_resumed_total 1",
      "# HELP paxos_lease_elections_total campaigns",
      "paxos_lease_elections_total 6",
      // A count of the replicated state, with the replica's default label: the members' highest.
      'paxos_lease_sessions_evicted{replica="1"} 7',
      'paxos_lease_sessions{replica="1"} 4',
    ].join("\n");
    const one = burstCountersIn(metrics);
    expect(one).toEqual({
      ...noBurstCounters,
      catchUpsHeld: 2,
      appendsBehindSnapshot: 3,
      heartbeatsRelayed: 5,
      transfersResumed: 1,
      elections: 6,
      sessionsEvicted: 7,
    });
    expect(sumBurstCounters([one, noBurstCounters, { ...one, sessionsEvicted: 5 }])).toEqual({
      ...noBurstCounters,
      catchUpsHeld: 4,
      appendsBehindSnapshot: 6,
      heartbeatsRelayed: 10,
      transfersResumed: 2,
      elections: 12,
      sessionsEvicted: 7,
    });
  });
});

/** The flags of `command` (`npm run nemesis -- ...`) as a shell gives them to the program. */
function argvOf(command: string): string[] {
  const prefix = "npm run nemesis -- ";
  expect(command.startsWith(prefix)).toBe(true);
  const words = execFileSync("bash", ["-c", `printf '%s\\0' ${command.slice(prefix.length)}`], { encoding: "utf8" });
  return words.split("\0").slice(0, -1);
}

/** The flags `argv` gives, parsed as `npm run nemesis` parses them (a bad one throws). */
function parsed(argv: readonly string[]): NemesisFlags {
  const program = nemesisCommand()
    .exitOverride()
    .configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  program.parse([...argv], { from: "user" });
  return program.opts<NemesisFlags>();
}

describe("a nemesis run's replay command", () => {
  const runs: readonly Omit<NemesisOptions, "out">[] = [
    // membership.test's settings: level 3, a table of 4, a snapshot every 256 slots.
    {
      seed: 7,
      faultsMs: 30_000,
      clients: 8,
      spares: 2,
      kinds: ["member-replace-kill-leader", "member-remove"],
      inOrder: true,
      core: { featureLevel: 3, sessionsMax: 4, snapshotIntervalSlots: 256 },
    },
    // hosts.test's: level 2, a table of 6, a snapshot every 64 slots, on hosts.
    {
      seed: 11,
      faultsMs: 25_000,
      clients: 12,
      pace: 0.6,
      quietMs: 2000,
      net: "hosts",
      core: { featureLevel: 2, sessionsMax: 6, snapshotIntervalSlots: 64 },
    },
    // Overrides without a level, of several kinds of value.
    { seed: 3, faultsMs: 6000, core: { leaseMs: 250, snapshotIntervalBytes: 1_048_576, valuesAtRest: false } },
    { seed: 4, faultsMs: 6000 },
  ];

  it("sets the run's core overrides again, the level and the table's bound with their own flags", () => {
    for (const run of runs) {
      const command = replayCommand({ ...run, out: "x" });
      const flags = parsed(argvOf(command));
      expect(coreOverridesOf(flags), command).toEqual(run.core ?? {});
      expect(flags.seed).toBe(run.seed);
      expect(flags.minutes * 60_000).toBe(run.faultsMs);
      expect(flags.clients).toBe(run.clients ?? 16);
      expect(flags.net).toBe(run.net ?? "relay");
    }
    expect(replayCommand({ ...runs[0]!, out: "x" })).toContain(
      `--feature-level 3 --sessions-max 4 --core '{"snapshotIntervalSlots":256}'`,
    );
  });

  it("refuses, naming it, a --core that is no object, names what a flag or the harness sets, or that a replica would refuse", () => {
    const refused =
      (...argv: string[]) =>
      () =>
        coreOverridesOf(parsed(argv));
    expect(refused("--core", "[256]")).toThrow(/expected a JSON object of core settings/);
    expect(refused("--core", "{snapshotIntervalSlots: 256}")).toThrow(/expected a JSON object of core settings/);
    expect(refused("--core", '{"featureLevel":2}')).toThrow(/must not set featureLevel: pass --feature-level/);
    expect(refused("--core", '{"members":[1,2]}')).toThrow(/must not set members: the harness sets it/);
    expect(refused("--core", '{"snapshotIntervalSlots":-1}')).toThrow(
      /--core: invalid replica configuration:\s+snapshotIntervalSlots \(-1\)/,
    );
    expect(refused("--core", '{"snapshotEverySlots":64}')).toThrow(
      /--core: invalid replica configuration:[\s\S]*snapshotEverySlots/,
    );
    expect(refused("--sessions-max", "4")).toThrow(
      /--sessions-max bounds the session table only at --feature-level 2 and above/,
    );
    expect(coreOverridesOf(parsed(["--feature-level", "2", "--sessions-max", "4"]))).toEqual({
      featureLevel: 2,
      sessionsMax: 4,
    });
  });
});

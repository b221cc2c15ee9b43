/**
 * Every check added for snapshots, truncation, state transfer and reconfiguration fails on a
 * hand-built bad state or step (a check that cannot fail is a defect), and passes on the good one
 * next to it: per-slot acceptors (VoterOfTheSlot, ProposalInKnownConfiguration, quorums of the
 * slot's configuration), OneConfigurationPerSlot, SnapshotMatchesSpec, SnapshotsAdvance,
 * TruncationSafe, PromiseReportsVotes.
 */
import { describe, expect, it } from "vitest";
import { kv, type KvInput, type KvOutput, type KvState } from "../spec/kv.ts";
import {
  initialState,
  makeSnapshot,
  parseConfig,
  slotMapSet,
  step,
  type Ballot,
  type Configuration,
  type DurableRecord,
  type PromiseMsg,
  type ReplicaState,
  type Value,
} from "../impl/core/testing/index.ts";
import {
  checkNoDisruptionByRemoved,
  checkRefusalFinal,
  ConfigurationGhost,
  lastVoterSlot,
  nextConfiguration,
} from "./configurations.ts";
import { ServiceGhost } from "./service-level.ts";
import { checkPromise, checkSnapshot, checkSnapshotAdvances, checkTruncation } from "./snapshots.ts";
import { checkFailedBy, Tally } from "./violation.ts";
import { VotingGhost } from "./voting-per-slot.ts";

type St = ReplicaState<KvState, KvInput, KvOutput>;
const universe = [1, 2, 3, 4];
const b = (round: number, replica: number): Ballot => ({ round, replica });
const put = (value: string): Value<KvInput> => ({
  _tag: "batch",
  commands: [{ clientId: "c1", seq: 1, input: { _tag: "put", key: "x", value } }],
});
const promise = (ballot: Ballot): DurableRecord<KvInput> => ({ _tag: "promise", ballot });
const vote = (slot: number, ballot: Ballot, value: Value<KvInput>): DurableRecord<KvInput> => ({
  _tag: "vote",
  slot,
  ballot,
  value,
});

function booted(self = 1): St {
  return step(initialState(parseConfig({ members: [1, 2, 3], self }), kv), { _tag: "Recover", now: 0, records: [] })
    .state;
}

describe("Voting with per-slot acceptors", () => {
  /** Slots 1..9 are decided by {1,2,3}, slots 10.. by {3,4}; slot 20 is not determined yet. */
  const votersOf = (slot: number) => (slot >= 20 ? undefined : slot >= 10 ? [3, 4] : [1, 2, 3]);
  const ghost = (chosen: string[] = []) =>
    new VotingGhost<KvInput>(universe, new Tally(), (e) => chosen.push(`${e.slot}:${e.key}`), votersOf);

  it("VoterOfTheSlot: a replica votes at a slot whose configuration does not list it", () => {
    const g = ghost();
    g.flushed(2, promise(b(1, 4)));
    g.flushed(3, promise(b(1, 4)));
    expect(checkFailedBy(() => g.flushed(3, vote(1, b(1, 4), put("1"))))).toBe("VoterOfTheSlot");
    expect(checkFailedBy(() => g.flushed(3, vote(10, b(1, 4), put("1"))))).toBe("passes");
  });

  it("ProposalInKnownConfiguration: a vote at a slot the chosen prefix does not assign a configuration yet", () => {
    const g = ghost();
    g.flushed(2, promise(b(1, 3)));
    expect(checkFailedBy(() => g.flushed(2, vote(20, b(1, 3), put("1"))))).toBe("ProposalInKnownConfiguration");
  });

  it("a value is chosen by a quorum of the slot's configuration, and only by one", () => {
    const chosen: string[] = [];
    const g = ghost(chosen);
    for (const a of [0, 1, 2, 3]) g.flushed(a, promise(b(1, 3)));
    g.flushed(2, vote(10, b(1, 3), put("1")));
    g.flushed(0, vote(1, b(1, 3), put("2")));
    expect(chosen).toEqual([]); // {3} is no quorum of {3,4}; {1} is none of {1,2,3}
    g.flushed(3, vote(10, b(1, 3), put("1")));
    expect(chosen.map((c) => c.split(":")[0])).toEqual(["10"]);
  });

  it("refines Voting: ShowsSafeAt needs a quorum of the slot's configuration to have promised", () => {
    const g = ghost();
    // Replicas 1 and 2 promised (a quorum of {1,2,3}), but not of {3,4}: no vote at slot 10 in (1,3) is enabled.
    g.flushed(0, promise(b(1, 3)));
    g.flushed(1, promise(b(1, 3)));
    g.flushed(2, promise(b(1, 3)));
    expect(checkFailedBy(() => g.flushed(2, vote(10, b(1, 3), put("1"))))).toBe("refines Voting[slot 10]");
  });
});

describe("configurations", () => {
  it("nextConfiguration refuses what does not fit and applies the rest", () => {
    const c = { chosenAt: 0, governsFrom: 1, voters: [1, 2, 3], learners: [], retired: [] };
    expect(nextConfiguration(c, { op: "promote", replica: 4 })).toBeNull();
    expect(nextConfiguration(c, { op: "add", replica: 4 })).toEqual({ voters: [1, 2, 3], learners: [4], retired: [] });
    expect(nextConfiguration({ ...c, voters: [1] }, { op: "remove", replica: 1 })).toBeNull();
    expect(nextConfiguration(c, { op: "remove", replica: 3 })).toEqual({ voters: [1, 2], learners: [], retired: [3] });
    expect(nextConfiguration({ ...c, retired: [4] }, { op: "add", replica: 4 })).toBeNull();
  });

  it("OneConfigurationPerSlot: a replica that holds another configuration for a slot than the chosen prefix makes", () => {
    const chosen = new Map<number, Value<KvInput>>([[1, { _tag: "reconfig", change: { op: "remove", replica: 3 } }]]);
    const g = new ConfigurationGhost<KvInput>([1, 2, 3], 2, (slot) => chosen.get(slot));
    g.chosen();
    expect(g.at(2)?.voters).toEqual([1, 2, 3]);
    expect(g.at(3)?.voters).toEqual([1, 2]);
    expect(g.at(4)).toBeUndefined();
    const s = booted();
    const stale: St = { ...s, learner: { ...s.learner, executedUpTo: 1 } };
    expect(checkFailedBy(() => g.checkReplica(1, stale))).toBe("OneConfigurationPerSlot");
    const right: Configuration = {
      epoch: 1,
      governsFrom: 3,
      voters: [1, 2],
      learners: [],
      retired: [3],
      addresses: [],
    };
    const good: St = { ...s, learner: { ...s.learner, executedUpTo: 1, configs: [s.learner.configs[0]!, right] } };
    expect(checkFailedBy(() => g.checkReplica(1, good))).toBe("passes");
    // The same voters, but replica 3 not retired: it could be added again.
    const forgetful: St = {
      ...s,
      learner: { ...s.learner, executedUpTo: 1, configs: [s.learner.configs[0]!, { ...right, retired: [] }] },
    };
    expect(checkFailedBy(() => g.checkReplica(1, forgetful))).toBe("OneConfigurationPerSlot");
  });
  it("NoDisruptionByRemoved: a replica that executed every slot a removed replica could lead helps its ballot", () => {
    // Replica 3 is removed at slot 1 with alpha 2: it votes (and may lead) in slots 1..2 only.
    const chosen = new Map<number, Value<KvInput>>([[1, { _tag: "reconfig", change: { op: "remove", replica: 3 } }]]);
    const g = new ConfigurationGhost<KvInput>([1, 2, 3], 2, (slot) => chosen.get(slot));
    expect(checkFailedBy(() => checkNoDisruptionByRemoved(g, 1, 5, 3, "promised"))).toBe("passes");
    g.chosen();
    expect(lastVoterSlot(g.configs, 3)).toBe(2);
    expect(lastVoterSlot(g.configs, 2)).toBeUndefined();
    expect(checkFailedBy(() => checkNoDisruptionByRemoved(g, 1, 2, 3, "promised"))).toBe("NoDisruptionByRemoved");
    expect(checkFailedBy(() => checkNoDisruptionByRemoved(g, 1, 1, 3, "promised"))).toBe("passes");
    expect(checkFailedBy(() => checkNoDisruptionByRemoved(g, 1, 9, 2, "promised"))).toBe("passes");
  });
});

describe("RefusalFinal", () => {
  const promote4 = { op: "promote", replica: 4 } as const;
  const add4: Value<KvInput> = { _tag: "reconfig", change: { op: "add", replica: 4 } };
  const none = new Map<number, { value: Value<KvInput> }>();

  it("fails a refusal at once of a change that fits once a change chosen above the executed prefix, voted by the leader there, or queued is executed", () => {
    const leader = booted();
    expect(checkFailedBy(() => checkRefusalFinal(1, leader, promote4, none))).toBe("passes");
    const chosenAbove = new Map([[leader.learner.executedUpTo + 2, { value: add4 }]]);
    expect(checkFailedBy(() => checkRefusalFinal(1, leader, promote4, chosenAbove))).toBe("RefusalFinal");
    const voted: St = {
      ...leader,
      acceptor: { ...leader.acceptor, votes: slotMapSet(leader.acceptor.votes, 1, { ballot: b(1, 1), value: add4 }) },
    };
    expect(checkFailedBy(() => checkRefusalFinal(1, voted, promote4, none))).toBe("RefusalFinal");
    // Its own vote there lost to another value, chosen: nothing is ahead.
    expect(checkFailedBy(() => checkRefusalFinal(1, voted, promote4, new Map([[1, { value: put("v") }]])))).toBe(
      "passes",
    );
    // A change chosen at or below the executed prefix is in the configuration judged.
    const executed: St = { ...leader, learner: { ...leader.learner, executedUpTo: 3 } };
    const below = new Map([[3, { value: add4 }]]);
    expect(checkFailedBy(() => checkRefusalFinal(1, executed, promote4, below))).toBe("passes");
  });

  it("passes a refusal that no change ahead overturns", () => {
    const leader = booted();
    const chosenAbove = new Map([[2, { value: add4 }]]);
    // 5 is a learner in no configuration ahead; 1 is a voter before and after.
    expect(checkFailedBy(() => checkRefusalFinal(1, leader, { op: "promote", replica: 5 }, chosenAbove))).toBe(
      "passes",
    );
    expect(checkFailedBy(() => checkRefusalFinal(1, leader, { op: "add", replica: 1 }, chosenAbove))).toBe("passes");
    // A change that fits the executed configuration was refused for another reason (catch-up).
    expect(checkFailedBy(() => checkRefusalFinal(1, leader, { op: "add", replica: 5 }, chosenAbove))).toBe("passes");
  });
});

describe("snapshots and truncation", () => {
  const chosen = new Map<number, Value<KvInput>>([[1, put("1")]]);
  const service = () => {
    const g = new ServiceGhost(kv, (slot) => chosen.get(slot), new Tally());
    g.chosen(1);
    return g;
  };
  const configurations = () => {
    const g = new ConfigurationGhost<KvInput>([1, 2, 3], 64, (slot) => chosen.get(slot));
    g.chosen();
    return g;
  };

  it("SnapshotMatchesSpec: a snapshot whose state is not the spec's after the prefix it claims", () => {
    const s = booted();
    const ctx = s.ctx;
    const right = ctx.service.apply(
      { clientId: "c1", seq: 1, input: { _tag: "put", key: "x", value: "1" } },
      ctx.service.start,
    ).state;
    const wrong = ctx.service.apply(
      { clientId: "c1", seq: 1, input: { _tag: "put", key: "x", value: "2" } },
      ctx.service.start,
    ).state;
    const snapshotOf = (service: typeof right, slot = 1) =>
      makeSnapshot(ctx, { slot, service, outputDigestA: 0, outputDigestB: 0, configs: [ctx.initial], checkpoints: [] });
    expect(checkFailedBy(() => checkSnapshot(1, ctx, snapshotOf(right), service(), configurations()))).toBe("passes");
    expect(checkFailedBy(() => checkSnapshot(1, ctx, snapshotOf(wrong), service(), configurations()))).toBe(
      "SnapshotMatchesSpec",
    );
    expect(checkFailedBy(() => checkSnapshot(1, ctx, snapshotOf(right, 2), service(), configurations()))).toBe(
      "SnapshotMatchesSpec",
    );
  });

  it("SnapshotsAdvance: a snapshot made durable after a later one", () => {
    expect(checkFailedBy(() => checkSnapshotAdvances(1, 6, 4))).toBe("passes");
    expect(checkFailedBy(() => checkSnapshotAdvances(1, 4, 6))).toBe("SnapshotsAdvance");
  });

  it("TruncationSafe: votes forgotten beyond the durable snapshot, or beyond the chosen prefix", () => {
    const s = booted();
    const truncated = (t: number): St => ({ ...s, acceptor: { ...s.acceptor, truncatedUpTo: t } });
    expect(checkFailedBy(() => checkTruncation(1, truncated(4), 4, 10))).toBe("passes");
    expect(checkFailedBy(() => checkTruncation(1, truncated(5), 4, 10))).toBe("TruncationSafe");
    expect(checkFailedBy(() => checkTruncation(1, truncated(4), 4, 3))).toBe("TruncationSafe");
  });

  it("PromiseReportsVotes: a Promise that omits a vote it does not claim forgotten or executed, or claims unchosen slots", () => {
    const g = new VotingGhost<KvInput>([1, 2, 3], new Tally(), () => undefined);
    g.flushed(0, promise(b(1, 1)));
    g.flushed(1, promise(b(1, 1)));
    g.flushed(0, vote(3, b(1, 1), put("1")));
    const m = (truncatedUpTo: number, votes: PromiseMsg<KvInput>["votes"]): PromiseMsg<KvInput> => ({
      _tag: "Promise",
      ballot: b(2, 2),
      fromSlot: 1,
      truncatedUpTo,
      votes,
      sentAt: 0,
    });
    // Durable snapshot, executed prefix, chosen prefix.
    const check = (p: PromiseMsg<KvInput>, snapshot: number, executed = snapshot, chosen = 10) =>
      checkFailedBy(() => checkPromise(g, 0, p, snapshot, executed, chosen));
    expect(check(m(0, []), 0)).toBe("PromiseReportsVotes");
    expect(check(m(0, [{ slot: 3, ballot: b(1, 1), value: put("1") }]), 0)).toBe("passes");
    expect(check(m(4, []), 4)).toBe("passes");
    expect(check(m(4, []), 2)).toBe("PromiseReportsVotes");
    // Rule T3: omitted because executed (chosen), above the durable snapshot.
    expect(check(m(4, []), 2, 4)).toBe("passes");
    expect(check(m(4, []), 0, 3)).toBe("PromiseReportsVotes");
    expect(check(m(4, []), 0, 4, 3)).toBe("PromiseReportsVotes");
  });
});

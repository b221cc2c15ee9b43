/**
 * What the key-value replica lets overtake earlier commits (KvOvertaking): heartbeats and grants
 * only, each waiting for every record it depends on; which core settings it takes by default; and
 * how it reads values at rest back (kvStoredReader).
 */
import { describe, expect, it } from "vitest";
import { valueBytes } from "../core/index.ts";
import { Cluster } from "../core/testing/cluster.ts";
import {
  KvOvertaking,
  kvAdapter,
  kvConfig,
  kvStoredReader,
  type KvMessage,
  type KvRecord,
  type KvReplicaState,
  type KvStoredMessage,
} from "./core-adapter.ts";

const ballot = (round: number, replica: number) => ({ round, replica });
const ack = (round: number, replica: number): KvMessage => ({
  _tag: "HeartbeatAck",
  ballot: ballot(round, replica),
  sentAt: 0,
  executedUpTo: 0,
  checkpoint: null,
});
const heartbeat = (round: number, replica: number, commitIndex: number): KvMessage => ({
  _tag: "Heartbeat",
  ballot: ballot(round, replica),
  commitIndex,
  sentAt: 0,
  checkpoint: null,
});
const accept = (round: number, replica: number, commitIndex: number): KvMessage => ({
  _tag: "Accept",
  ballot: ballot(round, replica),
  slot: commitIndex + 5,
  value: { _tag: "noop" },
  commitIndex,
  sentAt: 0,
});
const promise = (round: number, replica: number): KvRecord => ({ _tag: "promise", ballot: ballot(round, replica) });
const vote = (slot: number, round: number, replica: number): KvRecord => ({
  _tag: "vote",
  slot,
  ballot: ballot(round, replica),
  value: { _tag: "noop" },
});

const snapshot = (slot: number): KvRecord => ({
  _tag: "snapshot",
  slot,
  digest: "d",
  contentDigest: "c",
  maxBal: ballot(2, 1),
  logTruncatedUpTo: 0,
  data: "{}",
});

describe("KvOvertaking", () => {
  it("lets only heartbeats, grants and Accepts overtake", () => {
    const o = new KvOvertaking();
    expect(o.overtakes(ack(1, 1))).toBe(true);
    expect(o.overtakes(heartbeat(1, 1, 0))).toBe(true);
    expect(o.overtakes(accept(1, 1, 0))).toBe(true);
    expect(o.overtakes({ _tag: "Accepted", ballot: ballot(1, 1), slot: 1, sentAt: 0 })).toBe(false);
  });

  it("holds a grant for a promise or vote that raised maxBal to its ballot, until the durable maxBal covers it", () => {
    const o = new KvOvertaking();
    expect(o.dependsOn(ack(2, 1), promise(2, 1))).toBe(true);
    expect(o.dependsOn(ack(2, 1), vote(5, 2, 1))).toBe(true);
    expect(o.dependsOn(ack(2, 1), vote(5, 1, 3))).toBe(false);
    expect(o.dependsOn(ack(2, 1), { _tag: "chosen", slot: 5, value: { _tag: "noop" } })).toBe(false);
    expect(o.dependsOn(ack(2, 1), snapshot(5))).toBe(false);
    o.durable(promise(2, 1));
    // The promise of its ballot is durable: a vote in that ballot raises nothing.
    expect(o.dependsOn(ack(2, 1), vote(6, 2, 1))).toBe(false);
    // The same round by another replica is not known to be below: it waits.
    expect(o.dependsOn(ack(2, 3), promise(2, 3))).toBe(true);
  });

  it("holds a heartbeat or Accept for earlier ballots' votes up to its commit index, not its own, and for its promise", () => {
    const o = new KvOvertaking();
    expect(o.dependsOn(accept(2, 1, 0), promise(2, 1))).toBe(true);
    o.durable(promise(2, 1));
    for (const m of [heartbeat(2, 1, 10), accept(2, 1, 10)]) {
      // The leader's own votes count in no quorum until their notice says they are durable.
      expect(o.dependsOn(m, vote(10, 2, 1))).toBe(false);
      expect(o.dependsOn(m, vote(10, 1, 3))).toBe(true);
      expect(o.dependsOn(m, vote(11, 1, 3))).toBe(false);
      // A snapshot stands for slots chosen already: nothing waits for its commit.
      expect(o.dependsOn(m, snapshot(10))).toBe(false);
    }
  });
});

describe("kvConfig", () => {
  it("keeps executed values at rest unless the configuration file turns it off", () => {
    expect(kvConfig(1, [1, 2, 3]).valuesAtRest).toBe(true);
    expect(kvConfig(1, [1, 2, 3], { valuesAtRest: false }).valuesAtRest).toBe(false);
  });

  it("snapshots every 8,192 slots or 8,192 commands unless the configuration file says otherwise, by bytes as the core does", () => {
    const config = kvConfig(1, [1, 2, 3]);
    expect([config.snapshotIntervalSlots, config.snapshotIntervalCommands, config.snapshotIntervalBytes]).toEqual([
      8192,
      8192,
      128 * 1024 * 1024,
    ]);
    expect(kvConfig(1, [1, 2, 3], { snapshotIntervalSlots: 1024 }).snapshotIntervalSlots).toBe(1024);
  });
});

describe("kvStoredReader", () => {
  const stored = (slot: number, round: number, bytes: number) =>
    ({ _tag: "stored", slot, ballot: ballot(round, 1), bytes }) as const;
  const put = (value: string): KvRecord => ({
    _tag: "vote",
    slot: 7,
    ballot: ballot(3, 1),
    value: { _tag: "batch", commands: [{ clientId: "c", seq: 1, input: { _tag: "put", key: "k", value } }] },
  });
  const record = put("v");
  const bytes = valueBytes((record as Extract<KvRecord, { _tag: "vote" }>).value);
  const reply = (slot: number, round: number, size: number): KvStoredMessage => ({
    _tag: "CatchUpReply",
    entries: [
      { slot: 6, value: { _tag: "noop" } },
      { slot, value: stored(slot, round, size) },
    ],
  });

  it("names each value at rest by its vote's slot and ballot, and puts the vote's value in its place", () => {
    expect(kvStoredReader.keys(reply(7, 3, bytes))).toEqual(["vote 7 3.1"]);
    expect(kvStoredReader.keyOf(record)).toBe("vote 7 3.1");
    expect(kvStoredReader.keyOf(promise(3, 1))).toBeNull();
    expect(kvStoredReader.resolve(reply(7, 3, bytes), [record])).toEqual({
      _tag: "CatchUpReply",
      entries: [
        { slot: 6, value: { _tag: "noop" } },
        { slot: 7, value: (record as Extract<KvRecord, { _tag: "vote" }>).value },
      ],
    });
  });

  it("refuses a record that is not the vote named, or holds a value of another size", () => {
    expect(() => kvStoredReader.resolve(reply(7, 4, bytes), [record])).toThrow(
      /needs record vote 7 4\.1, and was given another/,
    );
    expect(() => kvStoredReader.resolve(reply(7, 3, bytes), [])).toThrow(/needs record vote 7 3\.1/);
    expect(() => kvStoredReader.resolve(reply(7, 3, bytes + 1), [record])).toThrow(
      new RegExp(`holds a value of ${bytes} bytes where the one at rest has ${bytes + 1}`),
    );
  });
});

describe("kvAdapter.facts", () => {
  const same = (state: KvReplicaState): void => {
    const { membershipOf, ...facts } = kvAdapter.facts(state);
    const view = kvAdapter.view(state);
    expect(facts).toEqual({
      role: view.role,
      leader: view.leader,
      ballot: view.ballot,
      promisedBallot: view.promisedBallot,
      leaseUntil: view.leaseUntil,
      executedSlot: view.executedSlot,
      uncompared: view.uncompared,
      uncomparedCount: view.uncomparedCount,
    });
    expect(membershipOf.length).toBeGreaterThan(0);
  };

  it("says what the view says of role, leader, ballot, promise, lease, executed slot and uncompared checkpoints, and keeps the membership's parts", () => {
    const c = Cluster.elected(3);
    for (const id of [1, 2, 3]) same(c.state(id));
    const before = kvAdapter.facts(c.state(1));
    c.request(1, { _tag: "put", key: "k", value: "v" }, "linearizable");
    c.stabilize();
    for (const id of [1, 2, 3]) same(c.state(id));
    const after = kvAdapter.facts(c.state(1));
    expect(after.executedSlot).toBeGreaterThan(before.executedSlot);
    // A write changes none of what the membership is made of: the batch's view is not rebuilt.
    expect(after.membershipOf.every((part, i) => part === before.membershipOf[i])).toBe(true);
  });
});

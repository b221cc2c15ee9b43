/**
 * Every check of the world's refinement chain fails on a hand-built bad state or step: a check
 * that cannot fail is a defect (docs/adding-an-invariant.md). Each test builds the smallest
 * ghost history or replica state that breaks one invariant and expects that invariant's name in
 * the violation; the positive cases next to them show the same checks pass on good steps.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { kv, type KvInput, type KvOutput, type KvState } from "../spec/kv.ts";
import { openSession, raiseFeatures } from "../spec/service.ts";
import {
  defaultRules,
  initialState,
  parseConfig,
  slotMapOf,
  step,
  type Ballot,
  type DurableRecord,
  type Leader,
  type ReplicaState,
  type StoredValue,
  type Value,
} from "../impl/core/testing/index.ts";
import { parseScript, ScriptRunner } from "../impl/core/testing/script.ts";
import { ConsensusGhost } from "./consensus-per-slot.ts";
import { checkCountedVotesDurable, checkDurableBeforeSend, checkLiveAcceptor } from "./durability.ts";
import { LeaseGhost } from "./leases.ts";
import { lateFirstRefused, openedEvicted, ServiceGhost } from "./service-level.ts";
import { checkFailedBy, Tally } from "./violation.ts";
import { VotingGhost, valueKey } from "./voting-per-slot.ts";
import { slotOfLogAnswer } from "./world-checker.ts";
import type { SystemView } from "./world-view.ts";

type St = ReplicaState<KvState, KvInput, KvOutput>;
const members = [1, 2, 3];
const b = (round: number, replica: number): Ballot => ({ round, replica });
const put = (value: string): Value<KvInput> => ({
  _tag: "batch",
  commands: [{ clientId: "c1", seq: 1, input: { _tag: "put", key: "x", value } }],
});
const v1 = put("1");
const v2 = put("2");

function voting(onChosen: (slot: number, key: string) => void = () => undefined): VotingGhost<KvInput> {
  return new VotingGhost<KvInput>(members, new Tally(), (e) => onChosen(e.slot, e.key));
}
const promise = (ballot: Ballot): DurableRecord<KvInput> => ({ _tag: "promise", ballot });
const vote = (slot: number, ballot: Ballot, value: Value<KvInput>): DurableRecord<KvInput> => ({
  _tag: "vote",
  slot,
  ballot,
  value,
});

/** A started replica (Recover with no records) of replica `self`. */
function booted(self = 1): St {
  const config = parseConfig({ members, self });
  return step(initialState(config, kv), { _tag: "Recover", now: 0, records: [] }).state;
}

describe("Voting per slot", () => {
  it("accepts Phase 1 then Phase 2 by a quorum and reports the value chosen", () => {
    const chosen: string[] = [];
    const g = voting((_slot, key) => chosen.push(key));
    expect(
      checkFailedBy(() => {
        g.flushed(0, promise(b(1, 1)));
        g.flushed(1, promise(b(1, 1)));
        g.flushed(0, vote(1, b(1, 1), v1));
        g.flushed(1, vote(1, b(1, 1), v1));
      }),
    ).toBe("passes");
    expect(chosen).toEqual([valueKey(v1)]);
  });

  it("ChosenNamesDurableVote: a chosen record may name only a vote its acceptor made durable", () => {
    const g = voting();
    const named = (ballot: Ballot): DurableRecord<KvInput> => ({ _tag: "chosen", slot: 1, ballot });
    g.flushed(0, promise(b(1, 1)));
    g.flushed(1, promise(b(1, 1)));
    g.flushed(0, vote(1, b(1, 1), v1));
    g.flushed(1, vote(1, b(1, 1), v1));
    // Acceptor 2 never voted at slot 1, and acceptor 0 did so in another ballot.
    expect(checkFailedBy(() => g.flushed(2, named(b(1, 1))))).toBe("ChosenNamesDurableVote");
    expect(checkFailedBy(() => g.flushed(0, named(b(2, 1))))).toBe("ChosenNamesDurableVote");
    expect(checkFailedBy(() => g.flushed(0, named(b(1, 1))))).toBe("passes");
    expect(g.votedValue(1, 1, b(1, 1))).toBe(v1);
    // Acceptor 0 votes for the same value again in a higher ballot: Recover resolves a reference
    // against the last vote record at the slot, so the older vote may be named no more.
    g.flushed(0, promise(b(2, 2)));
    g.flushed(1, promise(b(2, 2)));
    g.flushed(0, vote(1, b(2, 2), v1));
    expect(checkFailedBy(() => g.flushed(0, named(b(1, 1))))).toBe("ChosenNamesDurableVote");
    expect(checkFailedBy(() => g.flushed(0, named(b(2, 2))))).toBe("passes");
    expect(checkFailedBy(() => g.flushed(1, named(b(1, 1))))).toBe("passes");
  });

  it("OneValuePerBallot: two values in one ballot at one slot", () => {
    const g = voting();
    g.flushed(0, promise(b(1, 1)));
    g.flushed(1, promise(b(1, 1)));
    g.flushed(0, vote(1, b(1, 1), v1));
    expect(checkFailedBy(() => g.flushed(1, vote(1, b(1, 1), v2)))).toBe("OneValuePerBallot");
  });

  it("OneVote: one acceptor votes twice in one ballot", () => {
    const g = voting();
    g.flushed(0, promise(b(1, 1)));
    g.flushed(1, promise(b(1, 1)));
    g.flushed(0, vote(1, b(1, 1), v1));
    expect(checkFailedBy(() => g.flushed(0, vote(1, b(1, 1), v2)))).toBe("OneVote");
  });

  it("refines Voting: a vote below the acceptor's maxBal is no enabled VoteFor", () => {
    const g = voting();
    g.flushed(0, promise(b(1, 1)));
    g.flushed(1, promise(b(1, 1)));
    g.flushed(2, promise(b(2, 1)));
    expect(checkFailedBy(() => g.flushed(2, vote(1, b(1, 1), v1)))).toBe("refines Voting[slot 1]");
  });

  it("refines Voting: a vote no quorum shows safe (no phase 1) is no enabled VoteFor", () => {
    const g = voting();
    expect(checkFailedBy(() => g.flushed(0, vote(1, b(1, 1), v1)))).toBe("refines Voting[slot 1]");
  });

  it("refines Voting: phase 2a ignoring the highest vote phase 1 reported", () => {
    const g = voting();
    // Ballot (1,1) chooses v1 at slot 1 with a1, a2; then (2,2) promised by a2, a3 must propose v1.
    g.flushed(0, promise(b(1, 1)));
    g.flushed(1, promise(b(1, 1)));
    g.flushed(0, vote(1, b(1, 1), v1));
    g.flushed(1, vote(1, b(1, 1), v1));
    g.flushed(1, promise(b(2, 2)));
    g.flushed(2, promise(b(2, 2)));
    expect(checkFailedBy(() => g.flushed(2, vote(1, b(2, 2), v2)))).toBe("refines Voting[slot 1]");
    expect(checkFailedBy(() => g.flushed(2, vote(1, b(2, 2), v1)))).toBe("passes");
  });

  it("VotesSafe: SafeAt fails for a vote above a ballot whose quorum could still choose another value", () => {
    const g = voting();
    const sv = g.slot(1);
    // a1, a2 voted v1 in ballot 0 (chosen); a vote for v2 in ballot 3 is not safe.
    sv.byAcceptor[0]!.push(0);
    sv.byAcceptor[1]!.push(0);
    sv.byBallot.set(0, { key: valueKey(v1), value: v1, voters: 0b011, count: 2 });
    g.maxBal.splice(0, 3, 3, 3, 3);
    expect(g.safeAt(sv, 3, valueKey(v2))).toBe(0);
    expect(g.safeAt(sv, 3, valueKey(v1))).toBeUndefined();
    // A ballot with no votes and no quorum past it is not safe either.
    g.maxBal.splice(0, 3, 1, 1, 1);
    expect(g.safeAt(sv, 3, valueKey(v1))).toBe(2);
  });
});

describe("Consensus per slot", () => {
  it("refines Consensus: a second value chosen at one slot", () => {
    const c = new ConsensusGhost<KvInput>(new Tally(), () => undefined);
    c.choose({ slot: 1, ballot: 0, key: valueKey(v1), value: v1 });
    expect(checkFailedBy(() => c.choose({ slot: 1, ballot: 3, key: valueKey(v2), value: v2 }))).toBe(
      "refines Consensus[slot 1]",
    );
  });

  it("LearnedIsChosen: a replica learns a value that is not chosen", () => {
    const c = new ConsensusGhost<KvInput>(new Tally(), () => undefined);
    expect(checkFailedBy(() => c.learned(1, 1, v1))).toBe("LearnedIsChosen");
    c.choose({ slot: 1, ballot: 0, key: valueKey(v1), value: v1 });
    expect(checkFailedBy(() => c.learned(1, 1, v2))).toBe("LearnedIsChosen");
    expect(checkFailedBy(() => c.learned(1, 1, v1))).toBe("passes");
  });
});

describe("Durability", () => {
  it("DurableBeforeSend: a Promise or Accepted that is not on disk yet", () => {
    const g = voting();
    expect(
      checkFailedBy(() =>
        checkDurableBeforeSend(g, 0, {
          _tag: "Promise",
          ballot: b(1, 1),
          fromSlot: 1,
          truncatedUpTo: 0,
          votes: [],
          sentAt: 0,
        }),
      ),
    ).toBe("DurableBeforeSend");
    expect(
      checkFailedBy(() => checkDurableBeforeSend(g, 0, { _tag: "Accepted", ballot: b(1, 1), slot: 1, sentAt: 0 })),
    ).toBe("DurableBeforeSend");
    g.flushed(0, promise(b(1, 1)));
    expect(
      checkFailedBy(() =>
        checkDurableBeforeSend(g, 0, {
          _tag: "Promise",
          ballot: b(1, 1),
          fromSlot: 1,
          truncatedUpTo: 0,
          votes: [],
          sentAt: 0,
        }),
      ),
    ).toBe("passes");
  });

  it("DurableBeforeSend: a HeartbeatAck (a lease grant that raised maxBal) before the promise is on disk", () => {
    const g = voting();
    const ack = {
      _tag: "HeartbeatAck",
      ballot: b(2, 3),
      sentAt: 0,
      executedUpTo: 0,
      checkpoint: null,
    } as const;
    expect(checkFailedBy(() => checkDurableBeforeSend(g, 0, ack))).toBe("DurableBeforeSend");
    g.flushed(0, promise(b(1, 1)));
    expect(checkFailedBy(() => checkDurableBeforeSend(g, 0, ack))).toBe("DurableBeforeSend");
    g.flushed(0, promise(b(2, 3)));
    expect(checkFailedBy(() => checkDurableBeforeSend(g, 0, ack))).toBe("passes");
  });

  it("CountedVotesDurable: a leader counts a vote, its own included, that is not on disk", () => {
    // The real core: replica 1 leads ballot (1,1) and has proposed a write at slot 1, with its
    // own vote counted (the scenario driver tells it at once that the vote is durable).
    const runner = new ScriptRunner();
    for (const command of ["start 3", "elapse 300", "campaign 1", "stabilize", "put 1 x 1 client=c1 seq=1"])
      runner.run(command);
    const leader = runner.cluster!.state(1).role as Leader<KvInput>;
    expect(leader._tag).toBe("leader");
    expect(leader.inflight[0]!.acks).not.toBe(0);
    const g = voting();
    for (let a = 0; a < 3; a++) g.flushed(a, promise(b(1, 1)));
    // In memory only (a crash now erases it): the leader may not count it.
    expect(checkFailedBy(() => checkCountedVotesDurable(g, leader))).toBe("CountedVotesDurable");
    const value = leader.inflight[0]!.value;
    g.flushed(0, vote(1, b(1, 1), value));
    expect(checkFailedBy(() => checkCountedVotesDurable(g, leader))).toBe("passes");
    // A follower's vote counted that is not on disk either (an Accepted sent before its Persist).
    const p = leader.inflight[0]!;
    const withFollower: Leader<KvInput> = { ...leader, inflight: [{ ...p, acks: p.acks | 2 }] };
    expect(checkFailedBy(() => checkCountedVotesDurable(g, withFollower))).toBe("CountedVotesDurable");
  });

  it("DurableMaxBal: a promise held in memory only", () => {
    const g = voting();
    const s = booted();
    const promisedInMemory: St = { ...s, acceptor: { ...s.acceptor, maxBal: b(3, 2) } };
    expect(checkFailedBy(() => checkLiveAcceptor(g, 0, promisedInMemory, []))).toBe("DurableMaxBal");
    expect(checkFailedBy(() => checkLiveAcceptor(g, 0, s, []))).toBe("passes");
  });

  it("PromiseCoversVotes: a vote above maxBal", () => {
    const g = voting();
    g.flushed(0, promise(b(1, 1)));
    const s = booted();
    const bad: St = {
      ...s,
      acceptor: { ...s.acceptor, maxBal: b(1, 1), votes: slotMapOf([[1, { ballot: b(2, 1), value: v1 }]]) },
    };
    expect(checkFailedBy(() => checkLiveAcceptor(g, 0, bad, [1]))).toBe("PromiseCoversVotes");
  });
});

describe("Service", () => {
  function serviceWith(chosen: Map<number, Value<KvInput>>): ServiceGhost<KvState, KvInput, KvOutput> {
    const g = new ServiceGhost(kv, (slot) => chosen.get(slot), new Tally());
    for (const slot of chosen.keys()) g.chosen(slot);
    return g;
  }
  const executedThrough = (s: St, log: Map<number, Value<KvInput>>, upTo: number, service = s.learner.service): St => ({
    ...s,
    learner: { ...s.learner, log: slotMapOf(log), executedUpTo: upTo, service },
  });

  it("ExecutedPrefixAgreement: a replica executed a slot that is not chosen", () => {
    const g = serviceWith(new Map());
    const s = booted();
    expect(checkFailedBy(() => g.executed(0, s, executedThrough(s, new Map([[1, v1]]), 1), false))).toBe(
      "ExecutedPrefixAgreement",
    );
  });

  it("ValueAtRestDurable: a value at rest that no durable vote record holds, or that holds another value", () => {
    const chosen = new Map([[1, v1]]);
    const stored: StoredValue = { _tag: "stored", slot: 1, ballot: b(1, 1), bytes: 0 };
    const s = booted();
    const input: KvInput = { _tag: "put", key: "x", value: "1" };
    const service = s.ctx.service.apply({ clientId: "c1", seq: 1, input }, s.learner.service).state;
    const atRest: St = { ...s, learner: { ...s.learner, log: slotMapOf([[1, stored]]), executedUpTo: 1, service } };
    const ghost = (durable: Value<KvInput> | undefined): ServiceGhost<KvState, KvInput, KvOutput> => {
      const g = new ServiceGhost(
        kv,
        (slot) => chosen.get(slot),
        new Tally(),
        undefined,
        () => durable,
      );
      g.chosen(1);
      return g;
    };
    expect(checkFailedBy(() => ghost(undefined).executed(0, s, atRest, false))).toBe("ValueAtRestDurable");
    const other: Value<KvInput> = { _tag: "noop" };
    expect(checkFailedBy(() => ghost(other).executed(0, s, atRest, false))).toBe("ExecutedPrefixAgreement");
    expect(checkFailedBy(() => ghost(v1).executed(0, s, atRest, false))).toBe("passes");
  });

  it("ExactlyOnce and DigestAgreement: a replica's state differs from the spec's after the same prefix", () => {
    const chosen = new Map([[1, v1]]);
    const g = serviceWith(chosen);
    const s = booted();
    const twice = { ...s.learner.service, executed: 2 };
    expect(checkFailedBy(() => g.executed(0, s, executedThrough(s, chosen, 1, twice), false))).toBe("ExactlyOnce");
    const wrongApp = {
      ...s.learner.service,
      executed: 1,
      app: kv.apply({ _tag: "put", key: "x", value: "9" }, kv.start).state,
    };
    expect(checkFailedBy(() => g.executed(0, s, executedThrough(s, chosen, 1, wrongApp), false))).toBe(
      "DigestAgreement",
    );
  });

  it("DigestAgreement and RepliesMatchSpec at feature level 2: another eviction, an expiry at level 1", () => {
    const cmd = (clientId: string) => ({
      clientId,
      seq: 1,
      input: { _tag: "put", key: clientId, value: "1" } as KvInput,
    });
    const raise: Value<KvInput> = { _tag: "features", level: 2, sessionsMax: 1, outputBytesMax: 1 << 20 };
    const chosen = new Map<number, Value<KvInput>>([
      [1, raise],
      [2, { _tag: "batch", commands: [cmd("a")] }],
      [3, { _tag: "batch", commands: [cmd("b")] }],
    ]);
    const tally = new Tally();
    const g = new ServiceGhost(kv, (slot) => chosen.get(slot), tally);
    g.chosen(3);
    expect(tally.get("sometimes: a session was evicted")).toBe(1);
    const s = booted();
    const run = (service = s.learner.service, evict = true) => {
      let state = s.ctx.service.apply(
        cmd("a"),
        raiseFeatures(service, 2, { sessionsMax: evict ? 1 : 2, outputBytesMax: 1 << 20 }),
      ).state;
      state = s.ctx.service.apply(cmd("b"), state).state;
      return state;
    };
    expect(checkFailedBy(() => g.executed(0, s, executedThrough(s, chosen, 3, run()), false))).toBe("passes");
    // a replica that kept the evicted session (another bound): its table differs from the spec's
    expect(
      checkFailedBy(() => g.executed(0, s, executedThrough(s, chosen, 3, run(s.learner.service, false)), false)),
    ).toBe("DigestAgreement");
    const request = { requestId: 1, ...cmd("a"), consistency: "linearizable" as const, replica: 0, invokedAt: 0 };
    const expired = { _tag: "Reply", request, result: { _tag: "session-expired" }, sameStep: false } as const;
    expect(checkFailedBy(() => g.reply(expired))).toBe("passes");
    const level1 = serviceWith(new Map([[1, { _tag: "batch", commands: [cmd("b")] }]]));
    expect(checkFailedBy(() => level1.reply(expired))).toBe("RepliesMatchSpec");
  });

  it("at feature level 3: a replica that reopens an evicted session id, and answers the spec never gave", () => {
    const first = { clientId: "session 1", seq: 1, input: { _tag: "append", key: "x", value: "a" } as KvInput };
    const chosen = new Map<number, Value<KvInput>>([
      [1, { _tag: "features", level: 3, sessionsMax: 1, outputBytesMax: 1 << 20 }],
      [2, { _tag: "open", count: 1 }],
      [3, { _tag: "batch", commands: [first] }],
      [4, { _tag: "open", count: 1 }], // opens session 2, evicting session 1
      [5, { _tag: "batch", commands: [first] }], // a late copy of session 1's first request
    ]);
    const tally = new Tally();
    const g = new ServiceGhost(kv, (slot) => chosen.get(slot), tally);
    g.chosen(5);
    expect(tally.get(openedEvicted)).toBe(1);
    expect(tally.get(lateFirstRefused)).toBe(1);
    const s = booted();
    /** Slots 1..5 executed with `open` for each open-session request (the spec's, or a broken stand-in). */
    const run = (open: (state: St["learner"]["service"]) => St["learner"]["service"]) => {
      let state = raiseFeatures(s.learner.service, 3, { sessionsMax: 1, outputBytesMax: 1 << 20 });
      state = open(state);
      state = s.ctx.service.apply(first, state).state;
      state = open(state);
      return s.ctx.service.apply(first, state).state;
    };
    const spec = (state: St["learner"]["service"]) => openSession(state).state;
    // The stand-in forgets its count of opened sessions (as one restored from a snapshot without it
    // would) and opens session 1 again: the late copy of session 1's first request then runs twice.
    const reopening = (state: St["learner"]["service"]) => {
      const reopened = openSession({ ...state, features: { ...state.features!, opened: 0 } }).state;
      return { ...reopened, features: { ...reopened.features!, opened: (state.features?.opened ?? 0) + 1 } };
    };
    expect(checkFailedBy(() => g.executed(0, s, executedThrough(s, chosen, 5, run(spec)), false))).toBe("passes");
    // Caught as the hole it opens: the replica executed one request more than the spec.
    expect(checkFailedBy(() => g.executed(0, s, executedThrough(s, chosen, 5, run(reopening)), false))).toBe(
      "ExactlyOnce",
    );
    const opened = (clientId: string) => ({ _tag: "session-opened" as const, clientId });
    expect(checkFailedBy(() => g.openAnswer(opened("session 2")))).toBe("passes");
    expect(checkFailedBy(() => g.openAnswer(opened("session 2")))).toBe("RepliesMatchSpec");
    expect(checkFailedBy(() => g.openAnswer(opened("session 3")))).toBe("RepliesMatchSpec");
  });

  it("RepliesMatchSpec: an answer before the request is chosen, a wrong output, a wrong stale-seq", () => {
    const request = {
      requestId: 1,
      clientId: "c1",
      seq: 1,
      input: { _tag: "put", key: "x", value: "1" } as KvInput,
      consistency: "linearizable" as const,
      replica: 0,
      invokedAt: 0,
    };
    const none = serviceWith(new Map());
    expect(
      checkFailedBy(() =>
        none.reply({ _tag: "Reply", request, result: { _tag: "ok", output: { _tag: "ok" } }, sameStep: false }),
      ),
    ).toBe("RepliesMatchSpec");
    const append = {
      _tag: "batch",
      commands: [{ clientId: "c1", seq: 1, input: { _tag: "append", key: "x", value: "a" } }],
    } as const;
    const g = serviceWith(new Map([[1, append]]));
    const r2 = { ...request, input: append.commands[0].input };
    expect(
      checkFailedBy(() =>
        g.reply({
          _tag: "Reply",
          request: r2,
          result: { _tag: "ok", output: { _tag: "value", value: "aa" } },
          sameStep: false,
        }),
      ),
    ).toBe("RepliesMatchSpec");
    expect(
      checkFailedBy(() =>
        g.reply({
          _tag: "Reply",
          request: r2,
          result: { _tag: "ok", output: { _tag: "value", value: "a" } },
          sameStep: false,
        }),
      ),
    ).toBe("passes");
    expect(
      checkFailedBy(() =>
        g.reply({ _tag: "Reply", request: r2, result: { _tag: "stale-seq", lastSeq: 1 }, sameStep: true }),
      ),
    ).toBe("RepliesMatchSpec");
    expect(
      checkFailedBy(() =>
        g.reply({ _tag: "Reply", request: r2, result: { _tag: "seq-reused", seq: 1 }, sameStep: true }),
      ),
    ).toBe("RepliesMatchSpec");
    expect(
      checkFailedBy(() =>
        none.reply({ _tag: "Reply", request, result: { _tag: "seq-reused", seq: 1 }, sameStep: true }),
      ),
    ).toBe("RepliesMatchSpec");
  });

  it("ExactlyOnce: another command under an executed number answered with that number's output", () => {
    const append = {
      _tag: "batch",
      commands: [{ clientId: "c1", seq: 1, input: { _tag: "append", key: "x", value: "a" } }],
    } as const;
    const g = serviceWith(new Map([[1, append]]));
    const reused = {
      requestId: 2,
      clientId: "c1",
      seq: 1,
      input: { _tag: "append", key: "y", value: "a" } as KvInput,
      consistency: "linearizable" as const,
      replica: 0,
      invokedAt: 0,
    };
    // The first command's very output, so only the command tells the answer is wrong.
    const ok = { _tag: "ok", output: { _tag: "value", value: "a" } } as const;
    expect(checkFailedBy(() => g.reply({ _tag: "Reply", request: reused, result: ok, sameStep: true }))).toBe(
      "ExactlyOnce",
    );
    const refused = { _tag: "seq-reused", seq: 1 } as const;
    expect(checkFailedBy(() => g.reply({ _tag: "Reply", request: reused, result: refused, sameStep: true }))).toBe(
      "passes",
    );
    const retry = { ...reused, input: append.commands[0].input };
    expect(checkFailedBy(() => g.reply({ _tag: "Reply", request: retry, result: ok, sameStep: true }))).toBe("passes");
  });
});

describe("Leases", () => {
  function view(states: (St | null)[], trueTime: number): SystemView<KvState, KvInput, KvOutput> {
    return {
      trueTime,
      members,
      linkBlocked: () => false,
      // The leaders below are bare roles: they hold a lease while their clock reads below leaseUntil.
      rules: {
        ...defaultRules,
        canServeLeaseRead: (_rules, s, now) => s.role._tag === "leader" && now < s.role.leaseUntil,
      },
      // `state` reads the array at each access, so a test can change a replica between steps.
      replicas: states.map((_, index) => ({
        id: index + 1,
        index,
        get state() {
          return states[index] ?? null;
        },
        durable: [],
        paused: false,
        localAt: (t: number) => t,
        trueAt: (r: number) => r,
      })),
    };
  }
  const leading = (s: St, ballot: Ballot, leaseUntil: number): St => ({
    ...s,
    role: { _tag: "leader", ballot, leaseUntil } as unknown as Leader<KvInput>,
  });

  it("AtMostOneLeaseholder: a second replica acquires while the first still holds", () => {
    const states: (St | null)[] = [leading(booted(1), b(1, 1), 250), booted(2), booted(3)];
    const v = view(states, 10);
    const g = new LeaseGhost(v, 300, new Tally());
    g.observe({ kind: "event", replica: 0, event: "Tick", before: null, after: states[0]!, carried: [] });
    states[1] = leading(booted(2), b(2, 2), 260);
    expect(
      checkFailedBy(() =>
        g.observe({ kind: "event", replica: 1, event: "Tick", before: null, after: states[1]!, carried: [] }),
      ),
    ).toBe("AtMostOneLeaseholder");
  });

  it("AtMostOneLeaseholder passes once the first lease has run out by true time", () => {
    const states: (St | null)[] = [leading(booted(1), b(1, 1), 250), booted(2), booted(3)];
    let now = 10;
    const v = {
      ...view(states, 0),
      get trueTime() {
        return now;
      },
    };
    const g = new LeaseGhost(v, 300, new Tally());
    g.observe({ kind: "event", replica: 0, event: "Tick", before: null, after: states[0]!, carried: [] });
    now = 250;
    g.observe({ kind: "time", from: 10, to: 250 });
    states[1] = leading(booted(2), b(2, 2), 500);
    expect(
      checkFailedBy(() =>
        g.observe({ kind: "event", replica: 1, event: "Tick", before: null, after: states[1]!, carried: [] }),
      ),
    ).toBe("passes");
  });

  it("LeaseBounded: a lease trusted more than D ahead", () => {
    const states: (St | null)[] = [leading(booted(1), b(1, 1), 400), booted(2), booted(3)];
    const g = new LeaseGhost(view(states, 0), 300, new Tally());
    expect(
      checkFailedBy(() =>
        g.observe({ kind: "event", replica: 0, event: "Tick", before: null, after: states[0]!, carried: [] }),
      ),
    ).toBe("LeaseBounded");
  });

  it("Holds(p) is rule L3: a leader that trusts leaseUntil holds no lease until phase 1 of the pending configuration is in", () => {
    // impl/core/testdata/lease-read-after-replace.txt, up to the read: 2 leads with grants in
    // {1,2,3} and {1,2,4} (4's HeartbeatAck) but no Promise of {1,2,4}.
    const script = readFileSync(
      join(import.meta.dirname, "../impl/core/testdata/lease-read-after-replace.txt"),
      "utf8",
    );
    const runner = new ScriptRunner();
    const blocks = parseScript(script).blocks;
    const at = blocks.findIndex((b) => b.command === "get 2 b");
    for (const b of blocks.slice(0, at)) runner.run(b.command);
    const c = runner.cluster!;
    const v: SystemView<KvState, KvInput, KvOutput> = {
      trueTime: c.now,
      members: [1, 2, 3, 4],
      linkBlocked: () => false,
      rules: defaultRules,
      replicas: [1, 2, 3, 4].map((id, index) => ({
        id,
        index,
        state: c.node(id).state,
        durable: [],
        paused: false,
        localAt: (t: number) => t,
        trueAt: (r: number) => r,
      })),
    };
    const s2 = c.state(2);
    expect(s2.role._tag === "leader" && c.clock(2) < s2.role.leaseUntil).toBe(true);
    const g = new LeaseGhost(v, 300, new Tally());
    expect(g.beliefOf(1)).toBe(Number.NEGATIVE_INFINITY);
    // Once 4's Promise is in and the write it reveals is executed, 2 holds it until leaseUntil.
    runner.run("release");
    runner.run("stabilize");
    const after = { ...v, replicas: v.replicas.map((r) => ({ ...r, state: c.node(r.id).state })) };
    const s2after = c.state(2);
    expect(s2after.role._tag).toBe("leader");
    expect(new LeaseGhost(after, 300, new Tally()).beliefOf(1)).toBe(
      s2after.role._tag === "leader" ? s2after.role.leaseUntil : 0,
    );
  });

  it("a read answered through the log is observed at its slot (from the leader's pipeline, or the slots executed in the step)", () => {
    const get: KvInput = { _tag: "get", key: "x" };
    const request = {
      requestId: 7,
      clientId: "c2",
      seq: undefined,
      input: get,
      consistency: "linearizable",
      replica: 0,
      invokedAt: 0,
    } as const;
    const s = booted(1);
    const proposal = (requestIds: number[]) => ({
      value: v1,
      voters: members,
      acks: 1,
      requestIds,
      sentAt: 0,
      chosen: true,
    });
    const before: St = {
      ...s,
      role: {
        _tag: "leader",
        inflightBase: 4,
        inflight: [proposal([3]), proposal([5, 7])],
      } as unknown as Leader<KvInput>,
    };
    expect(slotOfLogAnswer(before, s, request, () => undefined)).toBe(5);
    // Proposed and chosen in the same step: found among the slots the step executed.
    const executed: St = { ...s, learner: { ...s.learner, executedUpTo: 2 } };
    const chosen = (slot: number): Value<KvInput> | undefined =>
      slot === 2 ? { _tag: "batch", commands: [{ input: { _tag: "get", key: "x" } }] } : v1;
    expect(slotOfLogAnswer(s, executed, request, chosen)).toBe(2);
    expect(slotOfLogAnswer(s, s, request, chosen)).toBeUndefined();
  });

  it("LeaseReadFresh: a lease read from a state older than what a client observed", () => {
    const g = new LeaseGhost(view([booted(1), booted(2), booted(3)], 0), 300, new Tally());
    expect(checkFailedBy(() => g.leaseRead(0, booted(1), 1))).toBe("LeaseReadFresh");
    expect(checkFailedBy(() => g.leaseRead(0, booted(1), 0))).toBe("passes");
  });
});

/**
 * Paxos in its compact encoding (spec/compact/paxos.ts): TLC's numbers for MCPaxos, pinned counts for larger constants, each
 * conjunct of Inv failing on a state that breaks it, the TLC-style rendering, the
 * Schema-to-state bridge, and determinism and symmetry as properties.
 */
import { fc, test } from "@fast-check/vitest";
import { describe, expect } from "vitest";
import { arbitraryOf } from "../../proofs/arbitrary.ts";
import { explore, simulate } from "../explore.ts";
import { None, type Message, type PaxosState } from "../paxos.ts";
import { CompactPaxos, type CompactPaxosState } from "./paxos.ts";

const small = new CompactPaxos({ acceptors: 3, values: 2, maxBallot: 1 });
const idle: PaxosState = { maxBal: [-1, -1, -1], maxVBal: [-1, -1, -1], maxVal: [None, None, None], msgs: [] };

describe("Paxos, compact encoding", () => {
  test("MCPaxos (acceptor a1, value v1, quorum {a1}, ballots 0..1) gives TLC's 25 distinct, 82 generated, depth 9, with or without symmetry", () => {
    const mc = new CompactPaxos({ acceptors: 1, values: 1, maxBallot: 1 });
    for (const symmetry of [false, true]) {
      const r = explore(mc, { symmetry });
      expect([r.distinct, r.generated, r.depth, r.violation]).toEqual([25, 82, 9, undefined]);
    }
  });

  test.each([
    [2, 1, 1, false, [81, 326, 13]],
    [2, 1, 1, true, [53, 215, 13]],
    [3, 1, 1, false, [1681, 9903, 17]],
    [3, 2, 1, false, [3921, 23563, 17]],
    [3, 2, 1, true, [443, 2697, 17]],
  ] as const)(
    "%i acceptors, %i values, ballots 0..%i, symmetry %s: distinct, generated, depth = %j",
    (acceptors, values, maxBallot, symmetry, expected) => {
      const r = explore(new CompactPaxos({ acceptors, values, maxBallot }), { symmetry });
      expect([r.distinct, r.generated, r.depth]).toEqual(expected);
      expect(r.violation).toBeUndefined();
    },
  );

  test("3 acceptors, 2 values, ballots 0..2: 185369 distinct, 1361380 generated, depth 25, Inv on every state", () => {
    const r = explore(new CompactPaxos({ acceptors: 3, values: 2, maxBallot: 2 }));
    expect([r.distinct, r.generated, r.depth, r.complete, r.violation]).toEqual([185369, 1361380, 25, true, undefined]);
  });

  test("each conjunct of Inv fails on a state that breaks it", () => {
    const P = small;
    const bad = new Uint16Array(P.start) as CompactPaxosState;
    bad[0] = 7; // maxBal[a1] = 6
    expect(P.TypeOK(bad)).toBe("maxBal[a1] = 6 is not in Ballot \\cup {-1}");
    const stray = new Uint16Array(P.start) as CompactPaxosState;
    stray[P.stateWords - 1] = 0x8000;
    expect(P.TypeOK(stray)).toMatch(/outside Message/);
    expect(P.Inv2(P.make({ ...idle, maxVBal: [0, -1, -1], maxVal: [0, None, None] }))).toBe(
      "<<maxVBal[a1], maxVal[a1]>> = <<0, v1>> is not in votes[a1]",
    );
    expect(P.Inv2(P.make({ ...idle, maxVal: [1, None, None] }))).toBe("maxVBal[a1] = -1 but maxVal[a1] = v2");
    const early1b: Message = { type: "1b", acc: 1, bal: 1, mbal: -1, mval: None };
    expect(P.Inv3of1b(P.make({ ...idle, msgs: [early1b] }))).toMatch(/maxBal\[a2\] = -1 < 1/);
    const lying1b: Message = { type: "1b", acc: 1, bal: 1, mbal: 0, mval: 0 };
    expect(P.Inv3of1b(P.make({ ...idle, maxBal: [-1, 1, -1], msgs: [lying1b] }))).toMatch(
      /reports a vote <<0, v1>> that is not in votes\[a2\]/,
    );
    expect(P.Inv3of2a(P.make({ ...idle, msgs: [{ type: "2a", bal: 0, val: 0 }] }))).toMatch(
      /no quorum Q has V!ShowsSafeAt\(Q, 0, v1\)/,
    );
    const both2a = P.make({
      ...idle,
      maxBal: [0, 0, 0],
      msgs: [
        { type: "2a", bal: 0, val: 0 },
        { type: "2a", bal: 0, val: 1 },
      ],
    });
    expect(P.Inv3of2a(both2a)).toBe("two 2a messages in ballot 0: for v1 and v2");
    const split = P.make({
      ...idle,
      maxBal: [0, 0, -1],
      msgs: [
        { type: "2b", acc: 0, bal: 0, val: 0 },
        { type: "2b", acc: 1, bal: 0, val: 1 },
      ],
    });
    const named = (name: string) => P.invariants.find((i) => i.name === name)!;
    expect(named("V!OneValuePerBallot").check(split)).toBe("ballot 0 has votes for v1 and v2");
    const unsafe = P.make({
      ...idle,
      maxBal: [0, 0, 1],
      msgs: [
        { type: "2b", acc: 0, bal: 0, val: 0 },
        { type: "2b", acc: 1, bal: 0, val: 0 },
        { type: "2b", acc: 2, bal: 1, val: 1 },
      ],
    });
    expect(named("V!VotesSafe").check(unsafe)).toBe("a3 voted for v2 in ballot 1, but SafeAt(1, v2) is false");
    expect(P.Inv(P.start)).toBeUndefined();
    expect(P.invariants.map((i) => i.name)).toEqual([
      "TypeOK",
      "Inv!2",
      "Inv!3(1b)",
      "Inv!3(2a)",
      "V!VotesSafe",
      "V!OneValuePerBallot",
    ]);
  });

  test("Phase2a counts TLC's bindings: per quorum, and per 1b message reporting the highest vote for v", () => {
    const P = small;
    const oneB = (acc: number, mbal: number, mval: number | None): Message => ({ type: "1b", acc, bal: 1, mbal, mval });
    const s = P.make({ ...idle, maxBal: [1, 1, 1], msgs: [oneB(0, 0, 0), oneB(1, 0, 0), oneB(2, -1, None)] });
    // {a1, a2}: two messages report <<0, v1>>; {a1, a3} and {a2, a3}: one each. v2 is not safe.
    expect(P.Phase2aWitnesses(s, 1, 0)).toBe(4);
    expect(P.Phase2aWitnesses(s, 1, 1)).toBe(0);
    const fresh = P.make({ ...idle, maxBal: [1, 1, -1], msgs: [oneB(0, -1, None), oneB(1, -1, None)] });
    expect(P.Phase2aWitnesses(fresh, 1, 1)).toBe(1);
    expect(P.Phase2aWitnesses(P.Phase2a(fresh, 1, 0), 1, 1)).toBe(0);
  });

  test("renders states the way TLC prints them", () => {
    const s = small.make({
      ...idle,
      maxBal: [0, -1, -1],
      msgs: [
        { type: "1a", bal: 0 },
        { type: "1b", acc: 0, bal: 0, mbal: -1, mval: None },
      ],
    });
    expect(small.show(s)).toBe(
      [
        "/\\ maxBal = (a1 :> 0 @@ a2 :> -1 @@ a3 :> -1)",
        "/\\ maxVBal = (a1 :> -1 @@ a2 :> -1 @@ a3 :> -1)",
        "/\\ maxVal = (a1 :> None @@ a2 :> None @@ a3 :> None)",
        '/\\ msgs = {[type |-> "1a", bal |-> 0], [type |-> "1b", acc |-> a1, bal |-> 0, mbal |-> -1, mval |-> None]}',
      ].join("\n"),
    );
    expect(small.output({ _tag: "Phase2b", a: 1, bal: 1, val: 0 })).toBe("Phase2b(a2) on 2a(1, v1)");
  });

  test.prop([arbitraryOf(small.schemas().State)])("a TypeOK state from the Schema survives make and view", (view) => {
    const s = small.make(view);
    expect(small.TypeOK(s)).toBeUndefined();
    const back = small.view(s);
    expect(back.maxBal).toEqual(view.maxBal);
    expect(back.maxVal).toEqual(view.maxVal);
    expect(new Set(back.msgs.map((m) => JSON.stringify(m)))).toEqual(
      new Set(view.msgs.map((m) => JSON.stringify(small.message(small.indexOf(m))))),
    );
  });

  test("make rejects what is not in the constants' types", () => {
    expect(() => small.make({ ...idle, maxBal: [5, -1, -1] })).toThrow(/not in Ballot/);
    expect(() => small.make({ ...idle, msgs: [{ type: "2a", bal: 0, val: 7 }] })).toThrow(/not in Message/);
    expect(() => new CompactPaxos({ acceptors: 3, values: 9, maxBallot: 4 })).toThrow(/compact encoding/);
  });

  test.prop([fc.array(fc.nat(), { maxLength: 40 })])("is deterministic and never mutates a state", (choices) => {
    const first = simulate(small, choices);
    expect(simulate(small, choices).map((t) => small.key(t.state))).toEqual(first.map((t) => small.key(t.state)));
    for (const { state } of first) {
      const copy = state.slice();
      for (const a of small.actions()) if (small.enabled(a, state)) small.transition(a, state);
      expect(state).toEqual(copy);
    }
  });

  test.prop([fc.array(fc.nat(), { maxLength: 40 }), fc.nat()])("commutes with its symmetries", (choices, pick) => {
    const s = simulate(small, choices).at(-1)!.state;
    const g = small.symmetries[pick % small.symmetries.length]!;
    const successors = (t: CompactPaxosState): CompactPaxosState[] =>
      small
        .actions()
        .filter((a) => small.enabled(a, t))
        .map((a) => small.transition(a, t));
    const keys = (ts: CompactPaxosState[]): string[] => ts.map((t) => small.key(t)).sort();
    expect(keys(successors(g(s)))).toEqual(keys(successors(s).map(g)));
    expect(small.Inv(g(s))).toBeUndefined();
  });
});

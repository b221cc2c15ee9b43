/**
 * Paxos as it reads beside Paxos.tla (spec/paxos.ts) and in its compact encoding
 * (spec/compact/paxos.ts, which `npm run explore` uses). For both encodings: TLC's numbers for
 * MCPaxos and pinned counts for larger constants; each conjunct of Inv fails on a state that
 * breaks it; Phase2a counts TLC's bindings; the spec is deterministic and commutes with its
 * symmetries. Between them: the compact encoding reaches exactly the same states, state for
 * state, and prints states as the readable one does (the way TLC prints them). What only the
 * compact encoding has (its words, make and view) is tested in spec/compact/paxos.test.ts.
 */
import { fc, test } from "@fast-check/vitest";
import { describe, expect } from "vitest";
import type { BallotConstants } from "./constants.ts";
import { CompactPaxos, type CompactPaxosState } from "./compact/paxos.ts";
import { explore, simulate } from "./explore.ts";
import { None, Paxos, type Message, type PaxosAction, type PaxosOperators, type PaxosState } from "./paxos.ts";
import type { Spec } from "./state-machine.ts";

const small = new Paxos({ acceptors: 3, values: 2, maxBallot: 1 });
const idle: PaxosState = { maxBal: [-1, -1, -1], maxVBal: [-1, -1, -1], maxVal: [None, None, None], msgs: [] };

/** A state with msgs given in any order, as the spec keeps them: a set in canonical order. */
function state(s: PaxosState): PaxosState {
  let out: PaxosState = { ...s, msgs: [] };
  for (const m of s.msgs) out = small.Send(out, m);
  return out;
}

/** A state as TLC prints it, with msgs as a set (the two encodings list its records in different orders). */
function shown(text: string): string[] {
  return text.split("\n").flatMap((line) => {
    const msgs = /^\/\\ msgs = \{(.*)\}$/.exec(line);
    return msgs === null ? [line] : (msgs[1]!.match(/\[[^\]]*\]/g) ?? []).sort();
  });
}

/** What the shared tests need of an encoding. */
type Encoding<S> = Spec<S, PaxosAction> &
  PaxosOperators<S> & {
    Inv(s: S): string | undefined;
    readonly symmetries: readonly ((s: S) => S)[];
  };

/** The tests both encodings pass; `make` builds an encoded state from plain data. */
function describeEncoding<S, E extends Encoding<S>>(
  name: string,
  create: (constants: BallotConstants) => E,
  make: (P: E, view: PaxosState) => S,
): void {
  describe(`Paxos, ${name}`, () => {
    const P = create({ acceptors: 3, values: 2, maxBallot: 1 });

    test("MCPaxos (acceptor a1, value v1, quorum {a1}, ballots 0..1) gives TLC's 25 distinct, 82 generated, depth 9, with or without symmetry", () => {
      const mc = create({ acceptors: 1, values: 1, maxBallot: 1 });
      for (const symmetry of [false, true]) {
        const r = explore(mc, { symmetry });
        expect([r.distinct, r.generated, r.depth, r.violation]).toEqual([25, 82, 9, undefined]);
      }
    });

    test.each([
      [2, 1, 1, false, [81, 326, 13]],
      [2, 1, 1, true, [53, 215, 13]],
      [3, 2, 1, false, [3921, 23563, 17]],
      [3, 2, 1, true, [443, 2697, 17]],
    ] as const)(
      "%i acceptors, %i values, ballots 0..%i, symmetry %s: distinct, generated, depth = %j, Inv on every state",
      (acceptors, values, maxBallot, symmetry, expected) => {
        const r = explore(create({ acceptors, values, maxBallot }), { symmetry });
        expect([r.distinct, r.generated, r.depth]).toEqual(expected);
        expect(r.violation).toBeUndefined();
      },
    );

    test("each conjunct of Inv fails on a state that breaks it", () => {
      const at = (view: PaxosState): S => make(P, view);
      expect(P.Inv2(at({ ...idle, maxVBal: [0, -1, -1], maxVal: [0, None, None] }))).toBe(
        "<<maxVBal[a1], maxVal[a1]>> = <<0, v1>> is not in votes[a1]",
      );
      expect(P.Inv2(at({ ...idle, maxVal: [1, None, None] }))).toBe("maxVBal[a1] = -1 but maxVal[a1] = v2");
      const early1b: Message = { type: "1b", acc: 1, bal: 1, mbal: -1, mval: None };
      expect(P.Inv3of1b(at({ ...idle, msgs: [early1b] }))).toMatch(/maxBal\[a2\] = -1 < 1/);
      const lying1b: Message = { type: "1b", acc: 1, bal: 1, mbal: 0, mval: 0 };
      expect(P.Inv3of1b(at({ ...idle, maxBal: [-1, 1, -1], msgs: [lying1b] }))).toMatch(
        /reports a vote <<0, v1>> that is not in votes\[a2\]/,
      );
      expect(P.Inv3of2a(at({ ...idle, msgs: [{ type: "2a", bal: 0, val: 0 }] }))).toMatch(
        /no quorum Q has V!ShowsSafeAt\(Q, 0, v1\)/,
      );
      const both2a = at({
        ...idle,
        maxBal: [0, 0, 0],
        msgs: [
          { type: "2a", bal: 0, val: 0 },
          { type: "2a", bal: 0, val: 1 },
        ],
      });
      expect(P.Inv3of2a(both2a)).toMatch(/^two 2a messages in ballot 0/);
      const split = at({
        ...idle,
        maxBal: [0, 0, -1],
        msgs: [
          { type: "2b", acc: 0, bal: 0, val: 0 },
          { type: "2b", acc: 1, bal: 0, val: 1 },
        ],
      });
      const named = (name: string) => P.invariants.find((i) => i.name === name)!;
      expect(named("V!OneValuePerBallot").check(split)).toBe("ballot 0 has votes for v1 and v2");
      const unsafe = at({
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
      expect(P.Inv(split)).toBe("V!OneValuePerBallot: ballot 0 has votes for v1 and v2");
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
      const oneB = (acc: number, mbal: number, mval: number | None): Message => ({
        type: "1b",
        acc,
        bal: 1,
        mbal,
        mval,
      });
      const s = make(P, { ...idle, maxBal: [1, 1, 1], msgs: [oneB(0, 0, 0), oneB(1, 0, 0), oneB(2, -1, None)] });
      // {a1, a2}: two messages report <<0, v1>>; {a1, a3} and {a2, a3}: one each. v2 is not safe.
      expect(P.Phase2aWitnesses(s, 1, 0)).toBe(4);
      expect(P.witnesses!({ _tag: "Phase2a", b: 1, v: 0 }, s)).toBe(4);
      expect(P.Phase2aWitnesses(s, 1, 1)).toBe(0);
      expect(P.enabled({ _tag: "Phase2a", b: 1, v: 1 }, s)).toBe(false);
      const fresh = make(P, { ...idle, maxBal: [1, 1, -1], msgs: [oneB(0, -1, None), oneB(1, -1, None)] });
      expect(P.Phase2aWitnesses(fresh, 1, 1)).toBe(1);
      expect(P.Phase2aWitnesses(P.Phase2a(fresh, 1, 0), 1, 1)).toBe(0);
    });

    test.prop([fc.array(fc.nat(), { maxLength: 40 })])("is deterministic and never mutates a state", (choices) => {
      const first = simulate(P, choices);
      expect(simulate(P, choices).map((t) => P.key(t.state))).toEqual(first.map((t) => P.key(t.state)));
      for (const { state: s } of first) {
        const copy = JSON.stringify(s);
        for (const a of P.actions(s)) if (P.enabled(a, s)) P.transition(a, s);
        expect(JSON.stringify(s)).toBe(copy);
      }
    });

    test.prop([fc.array(fc.nat(), { maxLength: 40 }), fc.nat()])("commutes with its symmetries", (choices, pick) => {
      const s = simulate(P, choices).at(-1)!.state;
      const g = P.symmetries[pick % P.symmetries.length]!;
      const successors = (t: S): S[] => [...P.actions(t)].filter((a) => P.enabled(a, t)).map((a) => P.transition(a, t));
      const keys = (ts: S[]): string[] => ts.map((t) => P.key(t)).sort();
      expect(keys(successors(g(s)))).toEqual(keys(successors(s).map(g)));
      expect(P.Inv(g(s))).toBeUndefined();
    });
  });
}

describeEncoding<PaxosState, Paxos>(
  "read beside Paxos.tla",
  (k) => new Paxos(k),
  (_, view) => state(view),
);
describeEncoding<CompactPaxosState, CompactPaxos>(
  "compact encoding",
  (k) => new CompactPaxos(k),
  (P, view) => P.make(view),
);

describe("Paxos, the readable spec and its compact encoding", () => {
  test.each([
    [1, 1, 1],
    [2, 2, 1],
    [3, 2, 1],
    [2, 1, 2],
  ])(
    "the compact encoding reaches the same states, state for state, with the same counts (%i acceptors, %i values, ballots 0..%i)",
    (acceptors, values, maxBallot) => {
      const readable = new Paxos({ acceptors, values, maxBallot });
      const compact = new CompactPaxos({ acceptors, values, maxBallot });
      const readableStates: string[] = [];
      const compactStates: string[] = [];
      const collect = <S>(into: string[], key: (s: S) => string) => [
        { name: "collect", statement: "", check: (s: S) => void into.push(key(s)) },
      ];
      const rr = explore(readable, { invariants: collect(readableStates, (s: PaxosState) => readable.key(s)) });
      const rc = explore(compact, {
        invariants: collect(compactStates, (s: CompactPaxosState) => readable.key(state(compact.view(s)))),
      });
      expect([rc.distinct, rc.generated, rc.depth]).toEqual([rr.distinct, rr.generated, rr.depth]);
      expect(new Set(compactStates)).toEqual(new Set(readableStates));
      expect(readableStates.length).toBe(rr.distinct);
    },
  );

  test("TypeOK fails on plain data outside the constants' types", () => {
    expect(small.TypeOK({ ...idle, maxBal: [6, -1, -1] })).toBe("maxBal[a1] = 6 is not in Ballot \\cup {-1}");
    expect(small.TypeOK({ ...idle, msgs: [{ type: "2a", bal: 0, val: 7 }] })).toMatch(/not in Message/);
    expect(small.TypeOK(small.start)).toBeUndefined();
  });

  test.prop([fc.array(fc.nat(), { maxLength: 40 })])(
    "prints states and actions as the compact encoding does (the way TLC prints them)",
    (choices) => {
      const compact = new CompactPaxos(small.constants);
      for (const { state: s, action } of simulate(small, choices)) {
        expect(shown(small.show(s))).toEqual(shown(compact.show(compact.make(s))));
        if (action !== "Init") expect(action).toMatch(/^Phase(1a|1b|2a|2b)\(/);
      }
      expect(small.output({ _tag: "Phase2b", a: 1, bal: 1, val: 0 })).toBe("Phase2b(a2) on 2a(1, v1)");
    },
  );
});

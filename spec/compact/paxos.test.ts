/**
 * What only the compact encoding of Paxos (spec/compact/paxos.ts) has: a large pinned count that
 * only it explores fast, TypeOK on words the encoding can hold but the types do not allow, the
 * exact TLC-style rendering, and the Schema-to-state bridge (make and view). What both encodings
 * must pass (TLC's numbers, each conjunct of Inv, Phase2a's bindings, determinism, symmetry) is in
 * spec/paxos.test.ts, run once for each.
 */
import { test } from "@fast-check/vitest";
import { describe, expect } from "vitest";
import { arbitraryOf } from "../../proofs/arbitrary.ts";
import { explore } from "../explore.ts";
import { None, type PaxosState } from "../paxos.ts";
import { CompactPaxos, type CompactPaxosState } from "./paxos.ts";

const small = new CompactPaxos({ acceptors: 3, values: 2, maxBallot: 1 });
const idle: PaxosState = { maxBal: [-1, -1, -1], maxVBal: [-1, -1, -1], maxVal: [None, None, None], msgs: [] };

describe("Paxos, compact encoding", () => {
  test.each([
    [3, 1, 1, [1681, 9903, 17]],
    [3, 2, 2, [185369, 1361380, 25]],
  ] as const)(
    "%i acceptors, %i values, ballots 0..%i: distinct, generated, depth = %j, Inv on every state",
    (acceptors, values, maxBallot, expected) => {
      const r = explore(new CompactPaxos({ acceptors, values, maxBallot }));
      expect([r.distinct, r.generated, r.depth, r.complete, r.violation]).toEqual([...expected, true, undefined]);
    },
  );

  test("TypeOK fails on words outside the types", () => {
    const bad = new Uint16Array(small.start) as CompactPaxosState;
    bad[0] = 7; // maxBal[a1] = 6
    expect(small.TypeOK(bad)).toBe("maxBal[a1] = 6 is not in Ballot \\cup {-1}");
    const stray = new Uint16Array(small.start) as CompactPaxosState;
    stray[small.stateWords - 1] = 0x8000;
    expect(small.TypeOK(stray)).toMatch(/outside Message/);
    expect(small.TypeOK(small.start)).toBeUndefined();
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
});

/**
 * Voting (Voting.tla): TLC's numbers for MCVoting, the theorems MCVoting checks (MCInv) on
 * every reachable state, each invariant failing on a state that breaks it, and determinism.
 */
import { fc, test } from "@fast-check/vitest";
import { describe, expect } from "vitest";
import { explore, simulate } from "./explore.ts";
import { Voting, type VotingState } from "./voting.ts";

const mcVoting = new Voting({ acceptors: 3, values: 2, maxBallot: 1 });

function reachable(voting: Voting): VotingState[] {
  const states: VotingState[] = [];
  explore(voting, { invariants: [{ name: "collect", statement: "", check: (s) => void states.push(s) }] });
  return states;
}

describe("Voting", () => {
  test("MCVoting (3 acceptors, 2 values, majorities, ballots 0..1, SYMMETRY) gives TLC's 77 distinct, 451 generated, depth 11", () => {
    const r = explore(mcVoting, { symmetry: true });
    expect([r.distinct, r.generated, r.depth]).toEqual([77, 451, 11]);
    expect(r.violation).toBeUndefined();
  });

  test("without symmetry: 599 distinct states, which fall into exactly TLC's 77 orbits", () => {
    const r = explore(mcVoting);
    expect([r.distinct, r.generated, r.depth]).toEqual([599, 3124, 11]);
    const orbitKeys = new Set(
      reachable(mcVoting).map(
        (s) => [s, ...mcVoting.symmetries.map((g) => g(s))].map((t) => mcVoting.key(t)).sort()[0],
      ),
    );
    expect(orbitKeys.size).toBe(77);
  });

  test("ballots 0..2: 6752 distinct, 41017 generated, depth 16", () => {
    const r = explore(new Voting({ acceptors: 3, values: 2, maxBallot: 2 }));
    expect([r.distinct, r.generated, r.depth, r.violation]).toEqual([6752, 41017, 16, undefined]);
  });

  test("MCInv's theorems hold on every reachable state: AllSafeAtZero, ChoosableThm, OneValuePerBallot => OneVote, VotesSafeImpliesConsistency, ShowsSafety", () => {
    const V = new Voting({ acceptors: 3, values: 2, maxBallot: 2 });
    const { ballots, values, quorums } = V.constants;
    const failures: string[] = [];
    const expectThat = (ok: boolean, what: string): void => {
      if (!ok) failures.push(what);
    };
    for (const s of reachable(V)) {
      for (let v = 0; v < values; v++) expectThat(V.SafeAt(s, 0, v), "AllSafeAtZero");
      for (let b = 0; b < ballots; b++) {
        for (let v = 0; v < values; v++) {
          expectThat(!V.ChosenAt(s, b, v) || V.NoneOtherChoosableAt(s, b, v), "ChoosableThm");
          for (const Q of quorums) expectThat(!V.ShowsSafeAt(s, Q, b, v) || V.SafeAt(s, b, v), "ShowsSafety");
        }
      }
      expectThat(V.OneValuePerBallot(s) !== undefined || V.OneVote(s) === undefined, "OneValuePerBallot => OneVote");
      expectThat(V.chosen(s).length <= 1, "VotesSafeImpliesConsistency");
    }
    expect(failures).toEqual([]);
  });

  test("the invariants fail on states that break them", () => {
    const V = mcVoting;
    const none = [[], [], []] as const;
    const bad = new Uint16Array(V.start) as VotingState;
    bad[0] = 9; // maxBal[a1] = 8, outside Ballot \cup {-1}
    expect(V.TypeOK(bad)).toMatch(/maxBal\[a1\] = 8/);
    // a1 and a2 voted v1 in ballot 0 (so v1 may be chosen); a3 voted v2 in ballot 1.
    const unsafe = V.make({ votes: [[[0, 0]], [[0, 0]], [[1, 1]]], maxBal: [0, 0, 1] });
    expect(V.VotesSafe(unsafe)).toBe("a3 voted for v2 in ballot 1, but SafeAt(1, v2) is false");
    const twice = V.make({
      votes: [
        [
          [0, 0],
          [0, 1],
        ],
        [],
        [],
      ],
      maxBal: [0, -1, -1],
    });
    expect(V.OneVote(twice)).toBe("a1 voted for v1 and v2 in ballot 0");
    const split = V.make({ votes: [[[0, 0]], [[0, 1]], []], maxBal: [0, 0, -1] });
    expect(V.OneValuePerBallot(split)).toBe("ballot 0 has votes for v1 and v2");
    expect(V.OneVote(split)).toBeUndefined();
    expect(V.Inv(V.make({ votes: [...none], maxBal: [-1, -1, -1] }))).toBeUndefined();
  });

  test("VoteFor counts TLC's bindings: one per quorum Q and per c (and voter) witnessing ShowsSafeAt", () => {
    const V = mcVoting;
    const s = V.make({ votes: [[], [], []], maxBal: [1, 1, 1] });
    // Ballot 1, nobody voted: every quorum, c = -1 only (c = 0 needs a vote in ballot 0).
    expect(V.VoteForWitnesses(s, 0, 1, 0)).toBe(3);
    const voted = V.make({ votes: [[[0, 0]], [[0, 0]], []], maxBal: [1, 1, 1] });
    // Q = {a1, a2}: c = 0 with voters a1 and a2; Q = {a1, a3}, {a2, a3}: c = 0 with one voter each.
    expect(V.VoteForWitnesses(voted, 2, 1, 0)).toBe(4);
    expect(V.VoteForWitnesses(voted, 2, 1, 1)).toBe(0);
  });

  test.prop([fc.array(fc.nat(), { maxLength: 30 })])("is deterministic and never mutates a state", (choices) => {
    const first = simulate(mcVoting, choices);
    const again = simulate(mcVoting, choices);
    expect(again.map((t) => mcVoting.key(t.state))).toEqual(first.map((t) => mcVoting.key(t.state)));
    expect(again.map((t) => t.action)).toEqual(first.map((t) => t.action));
    for (let i = 1; i < first.length; i++) {
      const before = first[i - 1]!.state;
      const copy = before.slice();
      for (const a of mcVoting.actions()) if (mcVoting.enabled(a, before)) mcVoting.transition(a, before);
      expect(before).toEqual(copy);
    }
  });

  test.prop([fc.array(fc.nat(), { maxLength: 30 }), fc.nat()])("commutes with its symmetries", (choices, pick) => {
    const s = simulate(mcVoting, choices).at(-1)!.state;
    const g = mcVoting.symmetries[pick % mcVoting.symmetries.length]!;
    const successors = (t: VotingState): VotingState[] =>
      mcVoting
        .actions()
        .filter((a) => mcVoting.enabled(a, t))
        .map((a) => mcVoting.transition(a, t));
    const keys = (ts: VotingState[]): string[] => ts.map((t) => mcVoting.key(t)).sort();
    expect(keys(successors(g(s)))).toEqual(keys(successors(s).map(g)));
  });

  test("rejects constants that break QuorumAssumption", () => {
    expect(
      () =>
        new Voting({
          acceptors: 4,
          values: 1,
          maxBallot: 1,
          quorums: [
            [0, 1],
            [2, 3],
          ],
        }),
    ).toThrow(/QuorumAssumption/);
    expect(() => new Voting({ acceptors: 0, values: 1, maxBallot: 1 })).toThrow(RangeError);
  });
});

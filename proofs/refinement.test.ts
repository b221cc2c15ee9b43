/**
 * The step-refinement checker on Lamport's hierarchy: Paxos => Voting => Consensus holds on
 * every explored transition and each step is named; wrong mappings are caught with the
 * shortest trace; ambiguous and non-initial mappings are reported.
 */
import { describe, expect, test } from "vitest";
import { explore } from "../spec/explore.ts";
import { CompactPaxos, type CompactPaxosState } from "../spec/compact/paxos.ts";
import { None } from "../spec/paxos.ts";
import type { Spec } from "../spec/state-machine.ts";
import { Voting, type VotingState } from "../spec/voting.ts";
import { paxosChecks, paxosRefinesVoting, votingChecks, votingOf, votingRefinesConsensus } from "./mappings.ts";
import { describeStep, matchStep, refinementCheck } from "./refinement.ts";

const paxos = new CompactPaxos({ acceptors: 3, values: 2, maxBallot: 1 });

describe("refinement checker", () => {
  test("Paxos => Voting and Paxos => Consensus hold on every transition; Phase1b is IncreaseMaxBal, Phase2b is VoteFor or a stutter", () => {
    const checks = paxosChecks(paxos);
    const r = explore(paxos, { checks });
    expect(r.violation).toBeUndefined();
    expect(r.transitions).toBe(22994);
    expect([...checks[0]!.tally.keys()].sort()).toEqual([
      "Phase1a |-> stutter",
      "Phase1b |-> IncreaseMaxBal",
      "Phase2a |-> stutter",
      "Phase2b |-> VoteFor",
      "Phase2b |-> stutter",
    ]);
    expect([...checks[1]!.tally.keys()].sort()).toEqual([
      "Phase1a |-> stutter",
      "Phase1b |-> stutter",
      "Phase2a |-> stutter",
      "Phase2b |-> Choose",
      "Phase2b |-> stutter",
    ]);
    const total = [...checks[0]!.tally.values()].reduce((x, y) => x + y, 0);
    expect(total).toBe(r.transitions);
  });

  test("Voting => Consensus holds on every transition of MCVoting", () => {
    const voting = new Voting({ acceptors: 3, values: 2, maxBallot: 1 });
    const checks = votingChecks(voting);
    expect(explore(voting, { checks }).violation).toBeUndefined();
    expect(checks[0]!.summary!()).toEqual(
      expect.arrayContaining([expect.stringMatching(/^VoteFor \|-> Choose: \d+$/)]),
    );
  });

  test("names the Voting action of a Paxos step", () => {
    const s = paxos.make({
      maxBal: [1, 1, -1],
      maxVBal: [-1, -1, -1],
      maxVal: [None, None, None],
      msgs: [
        { type: "1a", bal: 1 },
        { type: "1b", acc: 0, bal: 1, mbal: -1, mval: None },
        { type: "1b", acc: 1, bal: 1, mbal: -1, mval: None },
        { type: "2a", bal: 1, val: 0 },
      ],
    });
    const mapping = paxosRefinesVoting(paxos);
    const step = (action: Parameters<CompactPaxos["transition"]>[0]): string =>
      describeStep(paxos, mapping, s, action, paxos.transition(action, s));
    expect(step({ _tag: "Phase2b", a: 1, bal: 1, val: 0 })).toBe("Phase2b(a2) on 2a(1, v1) |-> VoteFor(a2, 1, v1)");
    expect(step({ _tag: "Phase1b", a: 2, bal: 1 })).toBe("Phase1b(a3) on 1a(1) |-> IncreaseMaxBal(a3, 1)");
    expect(step({ _tag: "Phase1a", b: 0 })).toBe("Phase1a(0) |-> stutter");
    expect(step({ _tag: "Phase2a", b: 0, v: 1 })).toBe("Phase2a(0, v2) |-> stutter");
  });

  test("catches a wrong mapping (maxBal read from maxVBal) with the shortest trace and both abstract states", () => {
    const wrong = {
      name: "Paxos => Voting, maxBal <- maxVBal",
      upper: paxos.V,
      map: (s: CompactPaxosState): VotingState =>
        paxos.V.make({ ...paxos.V.view(votingOf(paxos)(s)), maxBal: paxos.view(s).maxVBal }),
    };
    const r = explore(paxos, { checks: [refinementCheck(wrong)] });
    expect(r.violation?.kind).toBe("step");
    expect(r.violation?.check).toBe("Paxos => Voting, maxBal <- maxVBal");
    expect(r.violation?.trace.map((t) => t.action)).toEqual([
      "Init",
      "Phase1a(0)",
      "Phase1b(a1) on 1a(0)",
      "Phase1b(a2) on 1a(0)",
      "Phase2a(0, v1)",
      "Phase2b(a1) on 2a(0, v1)",
    ]);
    expect(r.violation?.message).toContain("is neither a stutter nor a step of any enabled Voting action");
    expect(r.violation?.message).toContain(
      "mapped state before:\n/\\ votes = (a1 :> {} @@ a2 :> {} @@ a3 :> {})\n/\\ maxBal = (a1 :> -1 @@ a2 :> -1 @@ a3 :> -1)",
    );
    expect(r.violation?.message).toContain(
      "mapped state after:\n/\\ votes = (a1 :> {<<0, v1>>} @@ a2 :> {} @@ a3 :> {})",
    );
  });

  test("catches a wrong mapping (votes read off 2a messages) at the first Phase2a", () => {
    const fromProposals = (s: CompactPaxosState): VotingState => {
      const view = paxos.view(s);
      const proposed = view.msgs.flatMap((m) => (m.type === "2a" ? [[m.bal, m.val] as const] : []));
      return paxos.V.make({ maxBal: view.maxBal, votes: view.maxBal.map(() => proposed) });
    };
    const r = explore(paxos, {
      checks: [refinementCheck({ name: "votes from 2a", upper: paxos.V, map: fromProposals })],
    });
    expect(r.violation?.trace.at(-1)?.action).toBe("Phase2a(0, v1)");
    expect(r.violation?.trace).toHaveLength(5);
  });

  test("checks that the mapped initial state is initial", () => {
    const shifted = (s: CompactPaxosState): VotingState =>
      paxos.V.make({ ...paxos.V.view(votingOf(paxos)(s)), maxBal: [0, -1, -1] });
    const r = explore(paxos, { checks: [refinementCheck({ name: "shifted", upper: paxos.V, map: shifted })] });
    expect(r.violation?.kind).toBe("init");
    expect(r.violation?.message).toMatch(/not an initial state of Voting/);
  });

  test("reports a step that two upper actions explain as ambiguous", () => {
    const twins: Spec<number, string> = {
      name: "Twins",
      start: 0,
      init: [0],
      actions: () => ["left", "right"],
      enabled: (_a, s) => s === 0,
      transition: () => 1,
      output: (a) => a,
      key: String,
      invariants: [],
      show: String,
    };
    expect(matchStep(twins, 0, 1)).toEqual({ kind: "ambiguous", names: ["left", "right"] });
    expect(matchStep(twins, 1, 0)).toEqual({ kind: "none" });
    expect(matchStep(twins, 1, 1)).toEqual({ kind: "stutter" });
    const check = refinementCheck<number, string, number, string>({ name: "into twins", upper: twins, map: (s) => s });
    expect(check.checkStep(0, "go", 1)).toMatch(/matches 2 Twins actions \(left, right\), not exactly one/);
  });

  test("Voting => Consensus names Choose for the vote that completes a quorum", () => {
    const voting = new Voting({ acceptors: 3, values: 2, maxBallot: 1 });
    const s = voting.make({ votes: [[[0, 1]], [], []], maxBal: [0, 0, -1] });
    const mapping = votingRefinesConsensus(voting);
    expect(describeStep(voting, mapping, s, { _tag: "VoteFor", a: 1, b: 0, v: 1 }, voting.VoteFor(s, 1, 0, 1))).toBe(
      "VoteFor(a2, 0, v2) |-> Choose(v2)",
    );
  });
});

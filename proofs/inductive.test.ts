/**
 * The MCISpec-style inductive check: from states generated (via Schemas) to satisfy an
 * invariant, every step of Next must keep it. Paxos's inductive invariant passes; Lamport's
 * first attempt and weakened versions yield counterexamples to induction.
 */
import { fc, test } from "@fast-check/vitest";
import { describe, expect } from "vitest";
import { Consensus } from "../spec/consensus.ts";
import { explore } from "../spec/explore.ts";
import { CompactPaxos, type CompactPaxosState } from "../spec/compact/paxos.ts";
import { None, type PaxosState } from "../spec/paxos.ts";
import type { Invariant } from "../spec/state-machine.ts";
import { firstViolated, formatCounterexample, inductiveStep } from "./inductive.ts";
import { inductiveInvariant, inductiveStrengthening, paxosStatesSatisfying } from "./paxos-inductive.ts";

const paxos = new CompactPaxos({ acceptors: 3, values: 2, maxBallot: 2 });
const strong = inductiveInvariant(paxos);
const names = (invs: readonly Invariant<CompactPaxosState>[]): string[] => invs.map((i) => i.name);
const without = (name: string): Invariant<CompactPaxosState>[] => strong.filter((i) => i.name !== name);

/** Search for a counterexample to induction of `inv` among generated states (fixed seed: reproducible). */
function searchCti(inv: readonly Invariant<CompactPaxosState>[]) {
  const run = fc.check(
    fc.property(paxosStatesSatisfying(paxos, names(inv)), (s) => inductiveStep(paxos, inv, s) === undefined),
    { seed: 2026, numRuns: 3000 },
  );
  return run.counterexample === null ? undefined : inductiveStep(paxos, inv, run.counterexample[0]);
}

describe("inductive invariant", () => {
  test.prop([paxosStatesSatisfying(paxos, names(strong))], { numRuns: 400 })(
    "Inv with the proof's three conjuncts is inductive: every step from a state satisfying it keeps it",
    (s) => {
      expect(firstViolated(strong, s)).toBeUndefined();
      const cti = inductiveStep(paxos, strong, s);
      expect(cti === undefined ? "" : formatCounterexample(paxos, cti)).toBe("");
    },
  );

  test("the strengthening holds on every reachable state (it is an invariant, not only inductive)", () => {
    const r = explore(new CompactPaxos({ acceptors: 3, values: 2, maxBallot: 1 }), {
      invariants: inductiveInvariant(new CompactPaxos({ acceptors: 3, values: 2, maxBallot: 1 })),
    });
    expect(r.violation).toBeUndefined();
    expect(r.distinct).toBe(3921);
  });

  test.prop(
    [
      fc
        .constantFrom(...names(strong))
        .chain((drop) => paxosStatesSatisfying(paxos, names(without(drop))).map((s) => [drop, s] as const)),
    ],
    { numRuns: 200 },
  )("the generator yields states satisfying exactly the conjuncts asked for", ([drop, s]) => {
    expect(firstViolated(without(drop), s)).toBeUndefined();
  });

  test("Lamport's first attempt (Inv of the Examples' Paxos.tla) is not inductive: a counterexample to induction is found and printed", () => {
    const cti = searchCti(paxos.invariants);
    expect(cti).toBeDefined();
    expect(firstViolated(paxos.invariants, cti!.state)).toBeUndefined();
    expect(firstViolated(paxos.invariants, cti!.successor)?.invariant).toBe(cti!.invariant);
    const text = formatCounterexample(paxos, cti!);
    expect(text).toMatch(/^Counterexample to induction: \S+ holds before <.+> but not after: /);
    expect(text).toContain("State (satisfies the invariant):\n/\\ maxBal = ");
  });

  test("with one value (MCPaxos's constants, where TLC could check MCISpec), Lamport's Inv shows no counterexample; with two values, even one acceptor does", () => {
    const search = (values: number) => {
      const p = new CompactPaxos({ acceptors: 1, values, maxBallot: 1 });
      return fc.check(
        fc.property(
          paxosStatesSatisfying(p, names(p.invariants)),
          (s) => inductiveStep(p, p.invariants, s) === undefined,
        ),
        { seed: 2026, numRuns: 2000 },
      ).failed;
    };
    expect(search(1)).toBe(false);
    expect(search(2)).toBe(true);
  });

  test.each(["Inv!3(2a)", "OneBReportsLastVote", "VoteHas2a", "MaxVBalAtMostMaxBal"])(
    "dropping %s leaves an invariant with counterexamples to induction",
    (drop) => {
      const weak = without(drop);
      const cti = searchCti(weak);
      expect(cti).toBeDefined();
      expect(firstViolated(weak, cti!.state)).toBeUndefined();
      expect(firstViolated(weak, cti!.successor)).toBeDefined();
    },
  );

  test("the strengthening's conjuncts fail on states that break them", () => {
    const idle: PaxosState = { maxBal: [-1, -1, -1], maxVBal: [-1, -1, -1], maxVal: [None, None, None], msgs: [] };
    const [maxVBalAtMostMaxBal, oneBReportsLastVote, voteHas2a] = inductiveStrengthening(paxos);
    expect(maxVBalAtMostMaxBal!.check(paxos.make({ ...idle, maxVBal: [0, -1, -1], maxVal: [0, None, None] }))).toBe(
      "maxBal[a1] = -1 < maxVBal[a1] = 0",
    );
    const hiding = paxos.make({
      ...idle,
      maxBal: [2, -1, -1],
      msgs: [
        { type: "2b", acc: 0, bal: 0, val: 1 },
        { type: "1b", acc: 0, bal: 2, mbal: -1, mval: None },
      ],
    });
    expect(oneBReportsLastVote!.check(hiding)).toMatch(/hides the vote <<0, v2>> of a1/);
    expect(
      voteHas2a!.check(
        paxos.make({
          ...idle,
          maxBal: [0, -1, -1],
          maxVBal: [0, -1, -1],
          maxVal: [1, None, None],
          msgs: [{ type: "2b", acc: 0, bal: 0, val: 1 }],
        }),
      ),
    ).toMatch(/no 2a message for <<0, v2>>/);
    expect(
      voteHas2a!.check(
        paxos.make({
          ...idle,
          msgs: [
            { type: "2b", acc: 0, bal: 1, val: 1 },
            { type: "2a", bal: 1, val: 1 },
          ],
        }),
      ),
    ).toMatch(/maxVBal\[a1\] = -1 < 1/);
  });

  test("inductiveStep refuses a state that does not satisfy the invariant", () => {
    const bad = paxos.make({
      maxBal: [-1, -1, -1],
      maxVBal: [-1, -1, -1],
      maxVal: [None, None, None],
      msgs: [{ type: "2a", bal: 0, val: 0 }],
    });
    expect(() => inductiveStep(paxos, paxos.invariants, bad)).toThrow(/Inv!3\(2a\) fails/);
  });

  test("Consensus's Inv is inductive over all of MCConsensus's IInv states (TLC's ISpec, exhaustively)", () => {
    const C = new Consensus({ values: 3, init: "IInv" });
    for (const s of C.init) expect(inductiveStep(C, C.invariants, s)).toBeUndefined();
  });
});

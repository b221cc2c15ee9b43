/**
 * The incremental Voting checks agree with Lamport's operators. The world's Voting-per-slot
 * ghost decides ShowsSafeAt and SafeAt with shortcuts (the only witness ballot is the highest vote
 * below b; empty ballots are judged by the quorum-th largest maxBal); this property compares them
 * with spec/voting.ts's transcription of Voting.tla on random small states of one slot (3 or 5
 * acceptors, ballots 0..5, 2 values, OneValuePerBallot holding as in every reachable state).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Voting } from "../spec/voting.ts";
import type { Value } from "../impl/core/testing/index.ts";
import type { KvInput } from "../spec/kv.ts";
import { Tally } from "./violation.ts";
import { VotingGhost, quorumMasks } from "./voting-per-slot.ts";

const maxBallot = 5;
const values: Value<KvInput>[] = [
  { _tag: "noop" },
  { _tag: "batch", commands: [{ input: { _tag: "get", key: "x" } }] },
];
const keys = values.map((v) => JSON.stringify(v));

/** A random slot state: per ballot an optional value and its voters; per acceptor a maxBal. */
function stateArbitrary(acceptors: number) {
  return fc.record({
    ballots: fc.array(
      fc.option(fc.record({ v: fc.nat({ max: 1 }), voters: fc.nat({ max: (1 << acceptors) - 1 }) }), { nil: null }),
      {
        minLength: maxBallot + 1,
        maxLength: maxBallot + 1,
      },
    ),
    maxBal: fc.array(fc.integer({ min: -1, max: maxBallot }), { minLength: acceptors, maxLength: acceptors }),
  });
}

describe("Voting per slot agrees with Voting.tla's operators", () => {
  for (const acceptors of [3, 5]) {
    it(`ShowsSafeAt and SafeAt, ${acceptors} acceptors`, () => {
      const spec = new Voting({ acceptors, values: 2, maxBallot });
      const quorums = quorumMasks(acceptors, Math.floor(acceptors / 2) + 1).map((m) =>
        [...Array(acceptors).keys()].filter((a) => (m & (1 << a)) !== 0),
      );
      fc.assert(
        fc.property(stateArbitrary(acceptors), ({ ballots, maxBal }) => {
          // The ghost: one slot, ballots as Nats.
          const ghost = new VotingGhost<KvInput>(
            Array.from({ length: acceptors }, (_, i) => i + 1),
            new Tally(),
            () => undefined,
          );
          const sv = ghost.slot(1);
          const votes: [number, number][][] = Array.from({ length: acceptors }, () => []);
          ballots.forEach((entry, b) => {
            if (entry === null || entry.voters === 0) return;
            let count = 0;
            for (let a = 0; a < acceptors; a++) {
              if ((entry.voters & (1 << a)) === 0) continue;
              sv.byAcceptor[a]!.push(b);
              votes[a]!.push([b, entry.v]);
              count++;
            }
            sv.byBallot.set(b, { key: keys[entry.v]!, value: values[entry.v]!, voters: entry.voters, count });
          });
          // In a reachable state an acceptor's maxBal covers its votes (PromiseCoversVotes).
          const covered = maxBal.map((m, a) => Math.max(m, ...votes[a]!.map(([b]) => b)));
          covered.forEach((m, a) => (ghost.maxBal[a] = m));
          const s = spec.make({ votes, maxBal: covered });
          for (let b = 0; b <= maxBallot; b++) {
            for (let v = 0; v < 2; v++) {
              expect(ghost.safeAt(sv, b, keys[v]!) === undefined, `SafeAt(${b}, v${v + 1})`).toBe(spec.SafeAt(s, b, v));
              expect(ghost.showsSafe(sv, b, keys[v]!), `\\E Q : ShowsSafeAt(Q, ${b}, v${v + 1})`).toBe(
                quorums.some((q) => spec.ShowsSafeAt(s, q, b, v)),
              );
            }
          }
        }),
        { numRuns: 400 },
      );
    });
  }
});

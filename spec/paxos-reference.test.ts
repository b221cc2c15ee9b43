/**
 * Differential test of the compact Paxos encoding: a deliberately naive transcription of
 * Paxos.tla over plain records (msgs as a set of records, every quantifier written out over
 * that set, no bit tricks) is explored with the same explorer, and both must reach exactly
 * the same states, state for state, with the same counts. The naive spec is the reading of
 * the TLA+ a reviewer can check line by line; the compact one must agree with it.
 */
import { describe, expect, test } from "vitest";
import { explore } from "./explore.ts";
import { None, Paxos, type Message, type PaxosView } from "./paxos.ts";
import type { Spec } from "./state-machine.ts";

type Action = { readonly name: string; readonly next: PaxosView; readonly witnesses: number };

/** msgs as a set: duplicates dropped, records in one order. */
function canonical(s: PaxosView): PaxosView {
  const byKey = new Map(s.msgs.map((m) => [JSON.stringify(m), m]));
  return { ...s, msgs: [...byKey.keys()].sort().map((k) => byKey.get(k)!) };
}

/** Paxos.tla over plain data; actions are computed per state with their successors. */
function naivePaxos(
  acceptors: number,
  values: number,
  maxBallot: number,
  quorums: readonly (readonly number[])[],
): Spec<PaxosView, Action> {
  const A = [...Array(acceptors).keys()];
  const V = [...Array(values).keys()];
  const Ballot = [...Array(maxBallot + 1).keys()];
  const send = (s: PaxosView, m: Message): PaxosView => canonical({ ...s, msgs: [...s.msgs, m] });
  const set = <T>(xs: readonly T[], i: number, x: T): T[] => xs.map((y, j) => (j === i ? x : y));
  const next = (s: PaxosView): Action[] => {
    const out: Action[] = [];
    for (const b of Ballot) {
      // Phase1a(b) == Send([type |-> "1a", bal |-> b]) /\ UNCHANGED <<maxBal, maxVBal, maxVal>>
      out.push({ name: `Phase1a(${b})`, next: send(s, { type: "1a", bal: b }), witnesses: 1 });
      for (const v of V) {
        // Phase2a(b, v)
        if (s.msgs.some((m) => m.type === "2a" && m.bal === b)) continue;
        let witnesses = 0;
        for (const Q of quorums) {
          const Q1b = s.msgs.filter(
            (m): m is Message & { type: "1b" } => m.type === "1b" && Q.includes(m.acc) && m.bal === b,
          );
          const Q1bv = Q1b.filter((m) => m.mbal >= 0);
          const perAcceptor = Q.map((a) => Q1b.filter((m) => m.acc === a).length);
          if (perAcceptor.some((n) => n === 0)) continue;
          const choices =
            (Q1bv.length === 0 ? 1 : 0) +
            Q1bv.filter((m) => m.mval === v && Q1bv.every((mm) => m.mbal >= mm.mbal)).length;
          witnesses += perAcceptor.reduce((x, y) => x * y, 1) * choices;
        }
        if (witnesses > 0)
          out.push({ name: `Phase2a(${b}, ${v})`, next: send(s, { type: "2a", bal: b, val: v }), witnesses });
      }
    }
    for (const a of A) {
      for (const m of s.msgs) {
        // Phase1b(a) == \E m \in msgs : m.type = "1a" /\ m.bal > maxBal[a] /\ ...
        if (m.type === "1a" && m.bal > s.maxBal[a]!) {
          const reply: Message = { type: "1b", acc: a, bal: m.bal, mbal: s.maxVBal[a]!, mval: s.maxVal[a]! };
          out.push({
            name: `Phase1b(${a}, ${m.bal})`,
            next: send({ ...s, maxBal: set(s.maxBal, a, m.bal) }, reply),
            witnesses: 1,
          });
        }
        // Phase2b(a) == \E m \in msgs : m.type = "2a" /\ m.bal >= maxBal[a] /\ ...
        if (m.type === "2a" && m.bal >= s.maxBal[a]!) {
          const after = {
            ...s,
            maxBal: set(s.maxBal, a, m.bal),
            maxVBal: set(s.maxVBal, a, m.bal),
            maxVal: set<number | None>(s.maxVal, a, m.val),
          };
          out.push({
            name: `Phase2b(${a}, ${m.bal}, ${m.val})`,
            next: send(after, { type: "2b", acc: a, bal: m.bal, val: m.val }),
            witnesses: 1,
          });
        }
      }
    }
    return out;
  };
  const start: PaxosView = { maxBal: A.map(() => -1), maxVBal: A.map(() => -1), maxVal: A.map(() => None), msgs: [] };
  return {
    name: "Paxos over plain records",
    start,
    init: [start],
    actions: next,
    enabled: () => true,
    witnesses: (a) => a.witnesses,
    transition: (a) => a.next,
    output: (a) => a.name,
    key: (s) => JSON.stringify(s),
    invariants: [],
    show: (s) => JSON.stringify(s),
  };
}

describe("Paxos: compact encoding against a naive transcription", () => {
  test.each([
    [1, 1, 1],
    [2, 2, 1],
    [3, 2, 1],
    [2, 1, 2],
  ])("%i acceptors, %i values, ballots 0..%i: the same reachable states and counts", (acceptors, values, maxBallot) => {
    const compact = new Paxos({ acceptors, values, maxBallot });
    const naive = naivePaxos(acceptors, values, maxBallot, compact.constants.quorums);
    const compactStates: string[] = [];
    const rc = explore(compact, {
      invariants: [
        {
          name: "collect",
          statement: "",
          check: (s) => void compactStates.push(naive.key(canonical(compact.view(s)))),
        },
      ],
    });
    const naiveStates: string[] = [];
    const rn = explore(naive, {
      invariants: [{ name: "collect", statement: "", check: (s) => void naiveStates.push(naive.key(s)) }],
    });
    expect([rc.distinct, rc.generated, rc.depth]).toEqual([rn.distinct, rn.generated, rn.depth]);
    expect(new Set(compactStates)).toEqual(new Set(naiveStates));
  });
});

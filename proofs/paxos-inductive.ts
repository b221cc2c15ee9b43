/**
 * Paxos's inductive invariant, and arbitrary states that satisfy it, for the MCISpec-style
 * check of proofs/inductive.ts.
 *
 * The Inv of tlaplus/Examples' Paxos.tla (spec/paxos.ts, `paxos.invariants`; checked here on its compact encoding),
 * which Lamport
 * introduces as "a first attempt at an inductive invariant", holds on every reachable state
 * but is not inductive as soon as there are two values (even with one acceptor; with one
 * value, as in MCPaxos's model, no counterexample turns up). The check here finds two kinds
 * of counterexample to induction:
 *
 * - a vote <<1, v2>> of a1 next to a message 2a(1, v1): nothing in Inv ties a vote to its
 *   2a message, so Phase2b(a2) on 2a(1, v1) breaks OneValuePerBallot;
 * - a message 1b(a1, 2, mbal = -1) while a1 voted in ballot 0: Inv!3 only says that a
 *   reported vote was cast, not that it is the last one below m.bal, so Phase2a(2, v) may
 *   pick a value that ballot 0 does not allow.
 *
 * The Paxos proof checked with TLAPS (Lamport and Merz, in tlapm's examples: AccInv and
 * MsgInv) has the missing conjuncts; with them, the invariant is inductive:
 *
 *   MaxVBalAtMostMaxBal == \A a \in Acceptor : maxVBal[a] =< maxBal[a]
 *   OneBReportsLastVote == \A m \in msgs : (m.type = "1b") =>
 *                            \A c \in (m.mbal+1)..(m.bal-1) : V!DidNotVoteAt(m.acc, c)
 *   VoteHas2a           == \A m \in msgs : (m.type = "2b") =>
 *                            /\ m.bal =< maxVBal[m.acc]
 *                            /\ \E mm \in msgs : mm.type = "2a" /\ mm.bal = m.bal /\ mm.val = m.val
 */
import fc from "fast-check";
import { acceptorName, valueName } from "../spec/constants.ts";
import type { CompactPaxos, CompactPaxosState } from "../spec/compact/paxos.ts";
import { None, showMessage, type Message, type PaxosState } from "../spec/paxos.ts";
import type { Invariant } from "../spec/state-machine.ts";
import { arbitraryOf } from "./arbitrary.ts";

/** The three conjuncts by which the proved Paxos strengthens Inv (see the module comment). */
export function inductiveStrengthening(paxos: CompactPaxos): Invariant<CompactPaxosState>[] {
  const { acceptors, ballots, values } = paxos.constants;
  return [
    {
      name: "MaxVBalAtMostMaxBal",
      statement: "\\A a \\in Acceptor : maxVBal[a] =< maxBal[a]",
      check: (s) => {
        for (let a = 0; a < acceptors; a++) {
          if (paxos.maxBal(s, a) < paxos.maxVBal(s, a))
            return `maxBal[${acceptorName(a)}] = ${paxos.maxBal(s, a)} < maxVBal[${acceptorName(a)}] = ${paxos.maxVBal(s, a)}`;
        }
        return undefined;
      },
    },
    {
      name: "OneBReportsLastVote",
      statement: '(m.type = "1b") => \\A c \\in (m.mbal+1)..(m.bal-1) : V!DidNotVoteAt(m.acc, c)',
      check: (s) => {
        for (const m of paxos.msgs(s)) {
          if (m.type !== "1b") continue;
          for (let c = m.mbal + 1; c < m.bal; c++) {
            for (let v = 0; v < values; v++)
              if (paxos.sent(s, paxos.msg2b(m.acc, c, v)))
                return `${showMessage(m)} hides the vote <<${c}, ${valueName(v)}>> of ${acceptorName(m.acc)}`;
          }
        }
        return undefined;
      },
    },
    {
      name: "VoteHas2a",
      statement: '(m.type = "2b") => maxVBal[m.acc] >= m.bal /\\ a 2a message for <<m.bal, m.val>> was sent',
      check: (s) => {
        for (let a = 0; a < acceptors; a++) {
          for (let b = 0; b < ballots; b++) {
            for (let v = 0; v < values; v++) {
              if (!paxos.sent(s, paxos.msg2b(a, b, v))) continue;
              const m = showMessage({ type: "2b", acc: a, bal: b, val: v });
              if (paxos.maxVBal(s, a) < b)
                return `${m} was sent but maxVBal[${acceptorName(a)}] = ${paxos.maxVBal(s, a)} < ${b}`;
              if (!paxos.sent(s, paxos.msg2a(b, v)))
                return `${m} was sent but no 2a message for <<${b}, ${valueName(v)}>>`;
            }
          }
        }
        return undefined;
      },
    },
  ];
}

/** Inv of spec/paxos.ts with the strengthening: Paxos's inductive invariant. */
export function inductiveInvariant(paxos: CompactPaxos): Invariant<CompactPaxosState>[] {
  return [...paxos.invariants, ...inductiveStrengthening(paxos)];
}

/**
 * Arbitrary Paxos states satisfying the conjuncts named in `keep` (names as in
 * `inductiveInvariant(paxos)`; TypeOK always holds). A TypeOK state is drawn from the
 * Schema of Paxos's state (`paxos.schemas()`), with up to `messagesMax` messages, each 2b
 * message accompanied by its 2a message (so that VoteHas2a is often satisfiable); then
 * repair passes run until nothing changes. Each pass only drops messages, raises maxBal
 * or points <<maxVBal, maxVal>> at a vote actually cast, so the passes end, and at the end
 * every kept conjunct holds:
 *
 * 1. VoteHas2a: drop 2b messages without their 2a message.
 * 2. V!VotesSafe, V!OneValuePerBallot: in ascending ballot order, keep a 2b message only if
 *    its vote is safe given the lower votes kept and its ballot has no vote for another value.
 * 3. Inv!2 (and VoteHas2a's maxVBal part): <<maxVBal[a], maxVal[a]>> := a's highest vote, or <<-1, None>>.
 * 4. MaxVBalAtMostMaxBal: maxBal[a] := max(maxBal[a], maxVBal[a]) (raising maxBal keeps every
 *    other conjunct: SafeAt and ShowsSafeAt only get easier).
 * 5. Inv!3(1b), OneBReportsLastVote: a 1b message that reports a vote its sender did not cast
 *    (or, for OneBReportsLastVote, any vote but the sender's last one below m.bal) reports
 *    instead that last vote (or <<-1, None>>), and maxBal[m.acc] := max(maxBal[m.acc], m.bal).
 *    Rewriting rather than dropping keeps 1b messages, so Phase2a's choice of value is exercised.
 * 6. Inv!3(2a): drop 2a messages no quorum shows safe, and all but the first of a ballot.
 *
 * Leaving a conjunct out of `keep` leaves its repair out: that is how states satisfying a
 * weaker invariant, and so its counterexamples to induction, are generated.
 */
export function paxosStatesSatisfying(
  paxos: CompactPaxos,
  keep: readonly string[],
  messagesMax = 12,
): fc.Arbitrary<CompactPaxosState> {
  const { State, Message: MessageSchema } = paxos.schemas();
  const withTheir2a = (msgs: readonly Message[]): Message[] =>
    msgs.flatMap((m): Message[] => (m.type === "2b" ? [m, { type: "2a", bal: m.bal, val: m.val }] : [m]));
  return fc
    .tuple(arbitraryOf(State), fc.array(arbitraryOf(MessageSchema), { maxLength: messagesMax }))
    .map(([view, msgs]) => {
      const names = new Set(keep);
      let s = paxos.make({ ...view, msgs: withTheir2a(msgs) });
      for (let pass = 0; pass <= 2 * messagesMax + 2; pass++) {
        const next = paxos.make(repairPass(paxos, paxos.view(s), names));
        if (paxos.key(next) === paxos.key(s)) return s;
        s = next;
      }
      throw new Error("repair passes did not converge");
    });
}

function repairPass(paxos: CompactPaxos, input: PaxosState, keep: ReadonlySet<string>): PaxosState {
  const { ballots, acceptors, quorums } = paxos.constants;
  let view = input;
  const has2a = (bal: number, val: number): boolean =>
    view.msgs.some((m) => m.type === "2a" && m.bal === bal && m.val === val);
  if (keep.has("VoteHas2a")) view = { ...view, msgs: view.msgs.filter((m) => m.type !== "2b" || has2a(m.bal, m.val)) };
  if (keep.has("V!VotesSafe") || keep.has("V!OneValuePerBallot")) {
    const kept: Message[] = view.msgs.filter((m) => m.type !== "2b");
    for (let b = 0; b < ballots; b++) {
      for (const m of view.msgs) {
        if (m.type !== "2b" || m.bal !== b) continue;
        const image = paxos.instanceV(paxos.make({ ...view, msgs: kept }));
        if (keep.has("V!VotesSafe") && !paxos.V.SafeAt(image, b, m.val)) continue;
        let otherValue = false;
        for (let a = 0; a < acceptors; a++) otherValue ||= (paxos.V.votesAt(image, a, b) & ~(1 << m.val)) !== 0;
        if (keep.has("V!OneValuePerBallot") && otherValue) continue;
        kept.push(m);
      }
    }
    view = { ...view, msgs: kept };
  }
  if (keep.has("Inv!2") || keep.has("VoteHas2a")) {
    const maxVBal = [...view.maxVBal];
    const maxVal = [...view.maxVal];
    for (let a = 0; a < acceptors; a++) {
      const highest = view.msgs.filter((m) => m.type === "2b" && m.acc === a).sort((x, y) => y.bal - x.bal)[0];
      maxVBal[a] = highest?.bal ?? -1;
      maxVal[a] = highest?.type === "2b" ? highest.val : None;
    }
    view = { ...view, maxVBal, maxVal };
  }
  if (keep.has("MaxVBalAtMostMaxBal"))
    view = { ...view, maxBal: view.maxBal.map((b, a) => Math.max(b, view.maxVBal[a]!)) };
  if (keep.has("Inv!3(1b)") || keep.has("OneBReportsLastVote")) {
    const votes = view.msgs.filter((m) => m.type === "2b");
    const cast = (acc: number, bal: number, val: number | None): boolean =>
      votes.some((m) => m.acc === acc && m.bal === bal && m.val === val);
    const maxBal = [...view.maxBal];
    const msgs = view.msgs.map((m): Message => {
      if (m.type !== "1b") return m;
      maxBal[m.acc] = Math.max(maxBal[m.acc]!, m.bal);
      const last = votes.filter((v) => v.acc === m.acc && v.bal < m.bal).sort((x, y) => y.bal - x.bal)[0];
      const isLast = last === undefined ? m.mbal === -1 : m.mbal === last.bal && m.mval === last.val;
      if (keep.has("OneBReportsLastVote") ? isLast : m.mbal < 0 || cast(m.acc, m.mbal, m.mval)) return m;
      return { ...m, mbal: last?.bal ?? -1, mval: last?.val ?? None };
    });
    view = { ...view, maxBal, msgs };
  }
  if (keep.has("Inv!3(2a)")) {
    const image = paxos.instanceV(paxos.make(view));
    const ballotsWith2a = new Set<number>();
    const msgs = view.msgs.filter((m) => {
      if (m.type !== "2a") return true;
      if (ballotsWith2a.has(m.bal) || !quorums.some((Q) => paxos.V.ShowsSafeAt(image, Q, m.bal, m.val))) return false;
      ballotsWith2a.add(m.bal);
      return true;
    });
    view = { ...view, msgs };
  }
  return view;
}

/**
 * Lamport's Paxos consensus algorithm (tlaplus/Examples, specifications/Paxos/Paxos.tla),
 * transcribed operator by operator over plain data, to be read beside the TLA+: the variables
 * maxBal, maxVBal, maxVal and msgs (the set of every message ever sent); the actions
 * Phase1a(b), Phase1b(a), Phase2a(b, v) and Phase2b(a); the state function `votes` and
 * `V == INSTANCE Voting`; and the inductive invariant Inv. It implements Voting
 * (THEOREM Spec => V!Spec), which the refinement checker in proofs/ checks step by step.
 *
 * Source material: "choose an order for them (consensus per input)"; this is the consensus step
 * for one input, which Multi-Paxos runs once per slot.
 *
 * Exhaustive exploration uses spec/compact/paxos.ts, the same spec over a bit-packed state;
 * spec/paxos.test.ts explores both and requires the same states, state for state, and TLC's
 * counts from both. Pure: no clock, no randomness; imports nothing of the project but spec/.
 */
import { Schema } from "effect";
import {
  acceptorName,
  resolveConstants,
  symmetryGroup,
  valueName,
  type BallotConstants,
  type Constants,
} from "./constants.ts";
import type { Invariant, Spec } from "./state-machine.ts";
import { Voting, type VotingState } from "./voting.ts";

/**
 * None: maxVal[a] before a votes. Paxos.tla defines None == CHOOSE v : v \notin Ballot and
 * MCPaxos.cfg makes it a model value; all that matters is that it is no value.
 */
export const None = "None";
export type None = typeof None;

/**
 * Message ==      [type : {"1a"}, bal : Ballot]
 *            \cup [type : {"1b"}, acc : Acceptor, bal : Ballot, mbal : Ballot \cup {-1}, mval : Value \cup {None}]
 *            \cup [type : {"2a"}, bal : Ballot, val : Value]
 *            \cup [type : {"2b"}, acc : Acceptor, bal : Ballot, val : Value]
 * Acceptors and values are indices (a1 is 0, v1 is 0).
 */
export type Message =
  | { readonly type: "1a"; readonly bal: number }
  | {
      readonly type: "1b";
      readonly acc: number;
      readonly bal: number;
      readonly mbal: number;
      readonly mval: number | None;
    }
  | { readonly type: "2a"; readonly bal: number; readonly val: number }
  | { readonly type: "2b"; readonly acc: number; readonly bal: number; readonly val: number };

/**
 * VARIABLES maxBal, maxVBal, maxVal, msgs. msgs is a set: its records are kept once each, in
 * one canonical order (`Send` keeps it so), so that equal states are equal data.
 */
export interface PaxosState {
  readonly maxBal: readonly number[];
  readonly maxVBal: readonly number[];
  readonly maxVal: readonly (number | None)[];
  readonly msgs: readonly Message[];
}

/**
 * The actions, with the bound variables that determine the successor: Phase1b(a) and
 * Phase2b(a) each bind the message m they receive (`\E m \in msgs`).
 */
export type PaxosAction =
  | { readonly _tag: "Phase1a"; readonly b: number }
  /** Phase1b(a) receiving m = [type |-> "1a", bal |-> bal]. */
  | { readonly _tag: "Phase1b"; readonly a: number; readonly bal: number }
  | { readonly _tag: "Phase2a"; readonly b: number; readonly v: number }
  /** Phase2b(a) receiving m = [type |-> "2a", bal |-> bal, val |-> val]. */
  | { readonly _tag: "Phase2b"; readonly a: number; readonly bal: number; readonly val: number };

/** `Paxos(constants)`: the spec for one choice of Acceptor, Value, Quorum and Ballot. */
export class Paxos implements Spec<PaxosState, PaxosAction>, PaxosOperators<PaxosState> {
  readonly name: string = "Paxos";
  readonly constants: Constants;
  /** V == INSTANCE Voting (with votes <- votes, maxBal <- maxBal). */
  readonly V: Voting;
  readonly start: PaxosState;
  readonly init: readonly PaxosState[];
  readonly invariants: readonly Invariant<PaxosState>[];
  private symmetryCache: readonly ((state: PaxosState) => PaxosState)[] | undefined;
  private readonly allActions: readonly PaxosAction[];

  constructor(constants: BallotConstants) {
    const k = resolveConstants(constants);
    this.constants = k;
    this.V = new Voting(k);
    // Init == /\ maxBal = [a \in Acceptor |-> -1] /\ maxVBal = [a \in Acceptor |-> -1]
    //         /\ maxVal = [a \in Acceptor |-> None] /\ msgs = {}
    this.start = {
      maxBal: this.acceptors().map(() => -1),
      maxVBal: this.acceptors().map(() => -1),
      maxVal: this.acceptors().map(() => None),
      msgs: [],
    };
    this.init = [this.start];
    this.allActions = paxosActions(k);
    this.invariants = paxosInvariants(this, (s) => this.instanceV(s));
  }

  /** Acceptor, as indices. */
  acceptors(): number[] {
    return Array.from({ length: this.constants.acceptors }, (_, a) => a);
  }

  /** Ballot == 0..MaxBallot (MCPaxos's substitution for Nat). */
  ballots(): number[] {
    return Array.from({ length: this.constants.ballots }, (_, b) => b);
  }

  /** Value, as indices. */
  values(): number[] {
    return Array.from({ length: this.constants.values }, (_, v) => v);
  }

  // ---- The actions -------------------------------------------------------------------------

  /** Send(m) == msgs' = msgs \cup {m}. */
  Send(s: PaxosState, m: Message, changes: Partial<PaxosState> = {}): PaxosState {
    return { ...s, ...changes, msgs: setAdd(s.msgs, m) };
  }

  /** Phase1a(b) == /\ Send([type |-> "1a", bal |-> b]) /\ UNCHANGED <<maxBal, maxVBal, maxVal>>. */
  Phase1a(s: PaxosState, b: number): PaxosState {
    return this.Send(s, { type: "1a", bal: b });
  }

  /**
   * Phase1b(a) == /\ \E m \in msgs :
   *                    /\ m.type = "1a"
   *                    /\ m.bal > maxBal[a]
   *                    /\ maxBal' = [maxBal EXCEPT ![a] = m.bal]
   *                    /\ Send([type |-> "1b", acc |-> a, bal |-> m.bal, mbal |-> maxVBal[a], mval |-> maxVal[a]])
   *               /\ UNCHANGED <<maxVBal, maxVal>>
   * Enabled for the 1a message m = [type |-> "1a", bal |-> bal] when `Phase1bEnabled`.
   */
  Phase1b(s: PaxosState, a: number, bal: number): PaxosState {
    return this.Send(
      s,
      { type: "1b", acc: a, bal, mbal: s.maxVBal[a]!, mval: s.maxVal[a]! },
      { maxBal: except(s.maxBal, a, bal) },
    );
  }

  Phase1bEnabled(s: PaxosState, a: number, bal: number): boolean {
    return sent(s, { type: "1a", bal }) && bal > s.maxBal[a]!;
  }

  /**
   * Phase2a(b, v) ==
   *   /\ ~ \E m \in msgs : m.type = "2a" /\ m.bal = b
   *   /\ \E Q \in Quorum :
   *        LET Q1b == {m \in msgs : /\ m.type = "1b" /\ m.acc \in Q /\ m.bal = b}
   *            Q1bv == {m \in Q1b : m.mbal >= 0}
   *        IN  /\ \A a \in Q : \E m \in Q1b : m.acc = a
   *            /\ \/ Q1bv = {}
   *               \/ \E m \in Q1bv : /\ m.mval = v
   *                                  /\ \A mm \in Q1bv : m.mbal >= mm.mbal
   *   /\ Send([type |-> "2a", bal |-> b, val |-> v])
   *   /\ UNCHANGED <<maxBal, maxVBal, maxVal>>
   * The second conjunct is V!ShowsSafeAt(Q, b, v) as learned from 1b messages: the heart of
   * Paxos. `Phase2aWitnesses` counts its satisfying bindings (one per quorum Q and per message
   * m), because TLC generates one successor per binding.
   */
  Phase2a(s: PaxosState, b: number, v: number): PaxosState {
    return this.Send(s, { type: "2a", bal: b, val: v });
  }

  Phase2aWitnesses(s: PaxosState, b: number, v: number): number {
    if (s.msgs.some((m) => m.type === "2a" && m.bal === b)) return 0;
    let witnesses = 0;
    for (const Q of this.constants.quorums) {
      const Q1b = s.msgs.filter(
        (m): m is Extract<Message, { type: "1b" }> => m.type === "1b" && Q.includes(m.acc) && m.bal === b,
      );
      const Q1bv = Q1b.filter((m) => m.mbal >= 0);
      // \A a \in Q : \E m \in Q1b : m.acc = a, counted: one binding per choice of an m for each a.
      const perAcceptor = Q.map((a) => Q1b.filter((m) => m.acc === a).length);
      if (perAcceptor.includes(0)) continue;
      const safe =
        Q1bv.length === 0 ? 1 : Q1bv.filter((m) => m.mval === v && Q1bv.every((mm) => m.mbal >= mm.mbal)).length;
      witnesses += perAcceptor.reduce((x, y) => x * y, 1) * safe;
    }
    return witnesses;
  }

  /**
   * Phase2b(a) == \E m \in msgs :
   *                 /\ m.type = "2a"
   *                 /\ m.bal >= maxBal[a]
   *                 /\ maxBal' = [maxBal EXCEPT ![a] = m.bal]
   *                 /\ maxVBal' = [maxVBal EXCEPT ![a] = m.bal]
   *                 /\ maxVal' = [maxVal EXCEPT ![a] = m.val]
   *                 /\ Send([type |-> "2b", acc |-> a, bal |-> m.bal, val |-> m.val])
   * Enabled for the 2a message m = [type |-> "2a", bal |-> bal, val |-> val] when `Phase2bEnabled`.
   */
  Phase2b(s: PaxosState, a: number, bal: number, val: number): PaxosState {
    return this.Send(
      s,
      { type: "2b", acc: a, bal, val },
      { maxBal: except(s.maxBal, a, bal), maxVBal: except(s.maxVBal, a, bal), maxVal: except(s.maxVal, a, val) },
    );
  }

  Phase2bEnabled(s: PaxosState, a: number, bal: number, val: number): boolean {
    return sent(s, { type: "2a", bal, val }) && bal >= s.maxBal[a]!;
  }

  // ---- Next, as the explorer needs it (dispatched by `paxosWitnesses` and `paxosTransition`) ----

  actions(): readonly PaxosAction[] {
    return this.allActions;
  }

  witnesses(action: PaxosAction, s: PaxosState): number {
    return paxosWitnesses(this, action, s);
  }

  enabled(action: PaxosAction, s: PaxosState): boolean {
    return paxosWitnesses(this, action, s) > 0;
  }

  transition(action: PaxosAction, s: PaxosState): PaxosState {
    return paxosTransition(this, action, s);
  }

  output(action: PaxosAction): string {
    return paxosActionName(action);
  }

  // ---- The refinement: votes and V == INSTANCE Voting ----------------------------------------------

  /**
   * votes == [a \in Acceptor |-> {<<m.bal, m.val>> : m \in {mm \in msgs : /\ mm.type = "2b"
   *                                                                      /\ mm.acc = a}}]
   */
  votes(s: PaxosState): [number, number][][] {
    return this.acceptors().map((a) =>
      s.msgs.flatMap((m) => (m.type === "2b" && m.acc === a ? [[m.bal, m.val] as [number, number]] : [])),
    );
  }

  /** The state of V == INSTANCE Voting: votes <- votes, maxBal <- maxBal. */
  instanceV(s: PaxosState): VotingState {
    return this.V.make({ votes: this.votes(s), maxBal: s.maxBal });
  }

  // ---- Inv --------------------------------------------------------------------------------------

  /**
   * TypeOK == /\ maxBal \in [Acceptor -> Ballot \cup {-1}] /\ maxVBal \in [Acceptor -> Ballot \cup {-1}]
   *           /\ maxVal \in [Acceptor -> Value \cup {None}] /\ msgs \subseteq Message
   */
  TypeOK(s: PaxosState): string | undefined {
    const { maxBallot } = this.constants;
    const ballotOrNone = (b: number): boolean => Number.isInteger(b) && b >= -1 && b <= maxBallot;
    const valueOrNone = (v: number | None): boolean =>
      v === None || (Number.isInteger(v) && v >= 0 && v < this.constants.values);
    for (const a of this.acceptors()) {
      if (!ballotOrNone(s.maxBal[a]!)) return `maxBal[${acceptorName(a)}] = ${s.maxBal[a]} is not in Ballot \\cup {-1}`;
      if (!ballotOrNone(s.maxVBal[a]!))
        return `maxVBal[${acceptorName(a)}] = ${s.maxVBal[a]} is not in Ballot \\cup {-1}`;
      if (!valueOrNone(s.maxVal[a]!)) return `maxVal[${acceptorName(a)}] = ${s.maxVal[a]} is not in Value \\cup {None}`;
    }
    const { Message } = this.schemas();
    const stray = s.msgs.find((m) => !Schema.is(Message)(m));
    return stray === undefined ? undefined : `msgs holds ${JSON.stringify(stray)}, which is not in Message`;
  }

  /**
   * Inv!2 == \A a \in Acceptor : IF maxVBal[a] = -1 THEN maxVal[a] = None ELSE <<maxVBal[a], maxVal[a]>> \in votes[a].
   */
  Inv2(s: PaxosState): string | undefined {
    for (const a of this.acceptors()) {
      const vbal = s.maxVBal[a]!;
      const val = s.maxVal[a]!;
      if (vbal === -1 && val !== None)
        return `maxVBal[${acceptorName(a)}] = -1 but maxVal[${acceptorName(a)}] = ${showValue(val)}`;
      if (vbal !== -1 && (val === None || !sent(s, { type: "2b", acc: a, bal: vbal, val })))
        return `<<maxVBal[${acceptorName(a)}], maxVal[${acceptorName(a)}]>> = <<${vbal}, ${showValue(val)}>> is not in votes[${acceptorName(a)}]`;
    }
    return undefined;
  }

  /**
   * Inv!3 for 1b messages: (m.type = "1b") => maxBal[m.acc] >= m.bal /\ ((m.mbal >= 0) => <<m.mbal, m.mval>> \in
   * votes[m.acc]).
   */
  Inv3of1b(s: PaxosState): string | undefined {
    for (const m of s.msgs) {
      if (m.type !== "1b") continue;
      if (s.maxBal[m.acc]! < m.bal)
        return `${showMessage(m)} was sent but maxBal[${acceptorName(m.acc)}] = ${s.maxBal[m.acc]} < ${m.bal}`;
      if (m.mbal >= 0 && (m.mval === None || !sent(s, { type: "2b", acc: m.acc, bal: m.mbal, val: m.mval })))
        return `${showMessage(m)} reports a vote <<${m.mbal}, ${showValue(m.mval)}>> that is not in votes[${acceptorName(m.acc)}]`;
    }
    return undefined;
  }

  /**
   * Inv!3 for 2a messages: (m.type = "2a") => /\ \E Q \in Quorum : V!ShowsSafeAt(Q, m.bal, m.val)
   *                                          /\ \A mm \in msgs : mm.type = "2a" /\ mm.bal = m.bal => mm.val = m.val.
   */
  Inv3of2a(s: PaxosState): string | undefined {
    const image = this.instanceV(s);
    for (const m of s.msgs) {
      if (m.type !== "2a") continue;
      const other = s.msgs.find((mm) => mm.type === "2a" && mm.bal === m.bal && mm.val !== m.val);
      if (other !== undefined) return `two 2a messages in ballot ${m.bal}: ${showMessage(m)} and ${showMessage(other)}`;
      if (!this.constants.quorums.some((Q) => this.V.ShowsSafeAt(image, Q, m.bal, m.val)))
        return `${showMessage(m)} was sent but no quorum Q has V!ShowsSafeAt(Q, ${m.bal}, ${valueName(m.val)})`;
    }
    return undefined;
  }

  /** Inv: the first conjunct that fails, if any (in the order of Paxos.tla). */
  Inv(s: PaxosState): string | undefined {
    return firstViolation(this.invariants, s);
  }

  // ---- Keys, rendering, symmetry -----------------------------------------------------------------

  key(s: PaxosState): string {
    return JSON.stringify([s.maxBal, s.maxVBal, s.maxVal, s.msgs.map(messageKey)]);
  }

  /** The state as TLC prints it. */
  show(s: PaxosState): string {
    return showState(s);
  }

  /** Schemas of a message and of a whole state under these constants (see `paxosSchemas`). */
  schemas(): PaxosSchemas {
    return paxosSchemas(this.constants);
  }

  /** The state with acceptors renamed by `acc` and values by `val` (both permutations). */
  permute(s: PaxosState, acc: readonly number[], val: readonly number[]): PaxosState {
    const pv = (x: number | None): number | None => (x === None ? None : val[x]!);
    const moved = <T>(xs: readonly T[], f: (x: T) => T): T[] => {
      const out = xs.slice();
      xs.forEach((x, a) => (out[acc[a]!] = f(x)));
      return out;
    };
    const renamed = (m: Message): Message => {
      switch (m.type) {
        case "1a":
          return m;
        case "1b":
          return { type: "1b", acc: acc[m.acc]!, bal: m.bal, mbal: m.mbal, mval: pv(m.mval) };
        case "2a":
          return { type: "2a", bal: m.bal, val: val[m.val]! };
        case "2b":
          return { type: "2b", acc: acc[m.acc]!, bal: m.bal, val: val[m.val]! };
      }
    };
    return {
      maxBal: moved(s.maxBal, (x) => x),
      maxVBal: moved(s.maxVBal, (x) => x),
      maxVal: moved(s.maxVal, pv),
      msgs: s.msgs.map(renamed).sort(byKey),
    };
  }

  /** The symmetry group minus the identity (see `symmetryGroup`), built on first use. */
  get symmetries(): readonly ((state: PaxosState) => PaxosState)[] {
    this.symmetryCache ??= symmetryGroup<PaxosState>(this.constants, (acc, val) => (s) => this.permute(s, acc, val));
    return this.symmetryCache;
  }
}

// ---- Next and Inv over either encoding -----------------------------------------------------------

/**
 * Paxos's operators over one encoding S of its state. `Paxos` above (plain data) and
 * `CompactPaxos` (spec/compact/paxos.ts, bit-packed) both implement it, so Next's dispatch,
 * Inv's conjuncts and the names TLC prints are written once, below, for both.
 */
export interface PaxosOperators<S> {
  readonly constants: Constants;
  readonly V: Voting;
  Phase1a(s: S, b: number): S;
  Phase1bEnabled(s: S, a: number, bal: number): boolean;
  Phase1b(s: S, a: number, bal: number): S;
  Phase2aWitnesses(s: S, b: number, v: number): number;
  Phase2a(s: S, b: number, v: number): S;
  Phase2bEnabled(s: S, a: number, bal: number, val: number): boolean;
  Phase2b(s: S, a: number, bal: number, val: number): S;
  TypeOK(s: S): string | undefined;
  Inv2(s: S): string | undefined;
  Inv3of1b(s: S): string | undefined;
  Inv3of2a(s: S): string | undefined;
}

/**
 * Next == \/ \E b \in Ballot : \/ Phase1a(b)
 *                             \/ \E v \in Value : Phase2a(b, v)
 *         \/ \E a \in Acceptor : Phase1b(a) \/ Phase2b(a)
 * Every instance, with the message bound for Phase1b and Phase2b; `paxosWitnesses` decides.
 */
export function paxosActions(k: Constants): PaxosAction[] {
  const out: PaxosAction[] = [];
  for (let b = 0; b < k.ballots; b++) {
    out.push({ _tag: "Phase1a", b });
    for (let v = 0; v < k.values; v++) out.push({ _tag: "Phase2a", b, v });
  }
  for (let a = 0; a < k.acceptors; a++) {
    for (let bal = 0; bal < k.ballots; bal++) out.push({ _tag: "Phase1b", a, bal });
    for (let bal = 0; bal < k.ballots; bal++)
      for (let val = 0; val < k.values; val++) out.push({ _tag: "Phase2b", a, bal, val });
  }
  return out;
}

/** How many successors TLC generates for `action` in s: one per binding of its guard's \E (0: disabled). */
export function paxosWitnesses<S>(P: PaxosOperators<S>, action: PaxosAction, s: S): number {
  switch (action._tag) {
    case "Phase1a":
      return 1;
    case "Phase1b":
      return P.Phase1bEnabled(s, action.a, action.bal) ? 1 : 0;
    case "Phase2a":
      return P.Phase2aWitnesses(s, action.b, action.v);
    case "Phase2b":
      return P.Phase2bEnabled(s, action.a, action.bal, action.val) ? 1 : 0;
  }
}

/** The successor of s by an enabled `action`. */
export function paxosTransition<S>(P: PaxosOperators<S>, action: PaxosAction, s: S): S {
  switch (action._tag) {
    case "Phase1a":
      return P.Phase1a(s, action.b);
    case "Phase1b":
      return P.Phase1b(s, action.a, action.bal);
    case "Phase2a":
      return P.Phase2a(s, action.b, action.v);
    case "Phase2b":
      return P.Phase2b(s, action.a, action.bal, action.val);
  }
}

/** An action as the explorer prints it, for example `Phase2b(a2) on 2a(1, v1)`. */
export function paxosActionName(action: PaxosAction): string {
  switch (action._tag) {
    case "Phase1a":
      return `Phase1a(${action.b})`;
    case "Phase1b":
      return `Phase1b(${acceptorName(action.a)}) on 1a(${action.bal})`;
    case "Phase2a":
      return `Phase2a(${action.b}, ${valueName(action.v)})`;
    case "Phase2b":
      return `Phase2b(${acceptorName(action.a)}) on 2a(${action.bal}, ${valueName(action.val)})`;
  }
}

/**
 * Inv's conjuncts, in the order of Paxos.tla, followed by Voting's invariants on the image
 * `image(s)` of V == INSTANCE Voting.
 */
export function paxosInvariants<S>(P: PaxosOperators<S>, image: (s: S) => VotingState): Invariant<S>[] {
  return [
    {
      name: "TypeOK",
      statement:
        "maxBal, maxVBal \\in [Acceptor -> Ballot \\cup {-1}], maxVal \\in [Acceptor -> Value \\cup {None}], msgs \\subseteq Message",
      check: (s) => P.TypeOK(s),
    },
    {
      name: "Inv!2",
      statement: "IF maxVBal[a] = -1 THEN maxVal[a] = None ELSE <<maxVBal[a], maxVal[a]>> \\in votes[a]",
      check: (s) => P.Inv2(s),
    },
    {
      name: "Inv!3(1b)",
      statement: "a 1b message m has maxBal[m.acc] >= m.bal, and m.mbal >= 0 => <<m.mbal, m.mval>> \\in votes[m.acc]",
      check: (s) => P.Inv3of1b(s),
    },
    {
      name: "Inv!3(2a)",
      statement:
        "a 2a message m has \\E Q \\in Quorum : V!ShowsSafeAt(Q, m.bal, m.val), and is the only 2a message of its ballot",
      check: (s) => P.Inv3of2a(s),
    },
    {
      name: "V!VotesSafe",
      statement: "Voting's VotesSafe under votes <- votes, maxBal <- maxBal",
      check: (s) => P.V.VotesSafe(image(s)),
    },
    {
      name: "V!OneValuePerBallot",
      statement: "Voting's OneValuePerBallot under votes <- votes, maxBal <- maxBal",
      check: (s) => P.V.OneValuePerBallot(image(s)),
    },
  ];
}

/** The first of `invariants` that fails in s, named, if any. */
export function firstViolation<S>(invariants: readonly Invariant<S>[], s: S): string | undefined {
  for (const inv of invariants) {
    const message = inv.check(s);
    if (message !== undefined) return `${inv.name}: ${message}`;
  }
  return undefined;
}

/** Schemas of a message and of a whole state (TypeOK as types). */
export interface PaxosSchemas {
  readonly Message: Schema.Schema<Message>;
  readonly State: Schema.Schema<PaxosState>;
}

/**
 * Schemas of a message and of a whole state under constants k (TypeOK as types): the source
 * of fast-check arbitraries for inductive checks.
 */
export function paxosSchemas(k: Constants): PaxosSchemas {
  const { acceptors: A, maxBallot, values } = k;
  const Ballot = Schema.Int.pipe(Schema.between(0, maxBallot));
  const BallotOrNone = Schema.Int.pipe(Schema.between(-1, maxBallot));
  const Acceptor = Schema.Int.pipe(Schema.between(0, A - 1));
  const Value = Schema.Int.pipe(Schema.between(0, values - 1));
  const ValueOrNone = Schema.Union(Value, Schema.Literal(None));
  const MessageSchema = Schema.Union(
    Schema.Struct({ type: Schema.Literal("1a"), bal: Ballot }),
    Schema.Struct({ type: Schema.Literal("1b"), acc: Acceptor, bal: Ballot, mbal: BallotOrNone, mval: ValueOrNone }),
    Schema.Struct({ type: Schema.Literal("2a"), bal: Ballot, val: Value }),
    Schema.Struct({ type: Schema.Literal("2b"), acc: Acceptor, bal: Ballot, val: Value }),
  );
  const perAcceptor = <T, I>(item: Schema.Schema<T, I>) => Schema.Array(item).pipe(Schema.itemsCount(A));
  const State = Schema.Struct({
    maxBal: perAcceptor(BallotOrNone),
    maxVBal: perAcceptor(BallotOrNone),
    maxVal: perAcceptor(ValueOrNone),
    msgs: Schema.Array(MessageSchema),
  });
  return { Message: MessageSchema, State };
}

/** A state, as plain data, the way TLC prints it. */
export function showState(s: PaxosState): string {
  const fn = (xs: readonly (number | string)[]): string =>
    `(${xs.map((x, a) => `${acceptorName(a)} :> ${x}`).join(" @@ ")})`;
  return [
    `/\\ maxBal = ${fn(s.maxBal)}`,
    `/\\ maxVBal = ${fn(s.maxVBal)}`,
    `/\\ maxVal = ${fn(s.maxVal.map(showValue))}`,
    `/\\ msgs = {${s.msgs.map(showMessage).join(", ")}}`,
  ].join("\n");
}

/** [f EXCEPT ![i] = x]. */
function except<T>(f: readonly T[], i: number, x: T): T[] {
  return f.map((y, j) => (j === i ? x : y));
}

/** m \in msgs. */
function sent(s: PaxosState, m: Message): boolean {
  const key = messageKey(m);
  return s.msgs.some((x) => messageKey(x) === key);
}

/** A message record as a key: its fields in the canonical order. */
function messageKey(m: Message): string {
  switch (m.type) {
    case "1a":
      return `1a ${m.bal}`;
    case "1b":
      return `1b ${m.acc} ${m.bal} ${m.mbal} ${m.mval}`;
    case "2a":
      return `2a ${m.bal} ${m.val}`;
    case "2b":
      return `2b ${m.acc} ${m.bal} ${m.val}`;
  }
}

function byKey(x: Message, y: Message): number {
  const a = messageKey(x);
  const b = messageKey(y);
  return a < b ? -1 : a > b ? 1 : 0;
}

/** msgs \cup {m}, kept sorted and without duplicates. */
function setAdd(msgs: readonly Message[], m: Message): readonly Message[] {
  const key = messageKey(m);
  if (msgs.some((x) => messageKey(x) === key)) return msgs;
  return [...msgs, m].sort(byKey);
}

/** A value or None, as TLC prints it. */
export function showValue(v: number | None): string {
  return v === None ? None : valueName(v);
}

/** A message as TLC prints a record. */
export function showMessage(m: Message): string {
  switch (m.type) {
    case "1a":
      return `[type |-> "1a", bal |-> ${m.bal}]`;
    case "1b":
      return `[type |-> "1b", acc |-> ${acceptorName(m.acc)}, bal |-> ${m.bal}, mbal |-> ${m.mbal}, mval |-> ${showValue(m.mval)}]`;
    case "2a":
      return `[type |-> "2a", bal |-> ${m.bal}, val |-> ${valueName(m.val)}]`;
    case "2b":
      return `[type |-> "2b", acc |-> ${acceptorName(m.acc)}, bal |-> ${m.bal}, val |-> ${valueName(m.val)}]`;
  }
}

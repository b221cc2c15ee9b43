/**
 * The compact encoding of Lamport's Paxos (spec/paxos.ts, which reads like Paxos.tla): the same
 * variables, actions and invariants over a bit-packed state, so that exhaustive exploration is
 * fast. One Uint16Array holds, per acceptor, one word with maxBal, maxVBal and maxVal, followed
 * by a bitset over the finite set Message of all possible messages (2b messages first, laid out
 * exactly like Voting's votes, so V's state is a copy of words). Every TLA+ operator below reads
 * the state through the named accessors. spec/paxos.test.ts explores this encoding and the
 * readable spec and requires the same states, state for state, with TLC's counts; `npm run
 * explore -- --spec paxos` runs this one. Pure: no clock, no randomness; imports nothing of the
 * project but spec/.
 */
import { CompactStates, popcount, wordsFor, type Words } from "../bits.ts";
import {
  acceptorName,
  resolveConstants,
  symmetryGroup,
  valueName,
  type BallotConstants,
  type Constants,
} from "../constants.ts";
import {
  firstViolation,
  None,
  paxosActionName,
  paxosActions,
  paxosInvariants,
  paxosSchemas,
  paxosTransition,
  paxosWitnesses,
  showMessage,
  showState,
  showValue,
  type Message,
  type PaxosAction,
  type PaxosOperators,
  type PaxosSchemas,
  type PaxosState,
} from "../paxos.ts";
import type { Invariant, Spec } from "../state-machine.ts";
import { Voting, type VotingState } from "../voting.ts";

/** A state of Paxos, compactly encoded (see the module comment). */
export type CompactPaxosState = Words & { readonly __paxos: true };

const fieldBits = 5;
const fieldMask = (1 << fieldBits) - 1;
/** The 1b messages of one acceptor in one ballot are read as one bit field of at most this many bits. */
const oneBsBitsMax = 30;

/** `CompactPaxos(constants)`: Paxos for one choice of Acceptor, Value, Quorum and Ballot, compactly encoded. */
export class CompactPaxos
  extends CompactStates
  implements Spec<CompactPaxosState, PaxosAction>, PaxosOperators<CompactPaxosState>
{
  readonly name: string = "Paxos";
  readonly constants: Constants;
  /** V == INSTANCE Voting (with votes <- votes, maxBal <- maxBal). */
  readonly V: Voting;
  /** Init == maxBal = [a |-> -1] /\ maxVBal = [a |-> -1] /\ maxVal = [a |-> None] /\ msgs = {}. */
  readonly start: CompactPaxosState;
  readonly init: readonly CompactPaxosState[];
  readonly invariants: readonly Invariant<CompactPaxosState>[];
  private symmetryCache: readonly ((state: CompactPaxosState) => CompactPaxosState)[] | undefined;
  /** Word length of a state. */
  readonly stateWords: number;
  /** Message indices of the first 2a, 1a and 1b messages in the msgs bitset (2b start at 0). */
  private readonly base2a: number;
  private readonly base1a: number;
  private readonly base1b: number;
  /** Every message of the universe by index (undefined for padding bits). */
  private readonly universe: readonly (Message | undefined)[];
  /** Width of the 1b field of one (acceptor, ballot): (maxBallot + 2) * (values + 1). */
  private readonly oneBsBits: number;
  /** The last state whose V image was computed, and that image (invariants share it). */
  private imageOf: CompactPaxosState | undefined;
  private image: VotingState | undefined;
  private readonly allActions: readonly PaxosAction[];

  constructor(constants: BallotConstants) {
    super();
    const k = resolveConstants(constants);
    this.constants = k;
    const { acceptors: A, ballots: B, values: V } = k;
    this.base2a = 16 * wordsFor(A * B * V);
    this.base1a = this.base2a + 16 * wordsFor(B * V);
    this.base1b = this.base1a + 16 * wordsFor(B);
    this.oneBsBits = (B + 1) * (V + 1);
    if (this.oneBsBits > oneBsBitsMax)
      throw new RangeError(
        `Paxos's compact encoding needs (maxBallot + 2) * (values + 1) <= ${oneBsBitsMax}, got ${this.oneBsBits}`,
      );
    const msgBits = this.base1b + A * B * this.oneBsBits;
    this.V = new Voting(k);
    this.stateWords = A + wordsFor(msgBits);
    this.universe = this.enumerateUniverse(16 * wordsFor(msgBits));
    this.start = this.make({
      maxBal: Array<number>(A).fill(-1),
      maxVBal: Array<number>(A).fill(-1),
      maxVal: Array<None>(A).fill(None),
      msgs: [],
    });
    this.init = [this.start];
    this.allActions = paxosActions(k);
    this.invariants = paxosInvariants(this, (s) => this.sharedImage(s));
  }

  // ---- State variables and the message universe --------------------------------------------

  /** maxBal[a]. */
  maxBal(s: CompactPaxosState, a: number): number {
    return (s[a]! & fieldMask) - 1;
  }

  /** maxVBal[a]. */
  maxVBal(s: CompactPaxosState, a: number): number {
    return ((s[a]! >>> fieldBits) & fieldMask) - 1;
  }

  /** maxVal[a]: a value index, or None. */
  maxVal(s: CompactPaxosState, a: number): number | None {
    const v = (s[a]! >>> (2 * fieldBits)) & fieldMask;
    return v === 0 ? None : v - 1;
  }

  /** The index of [type |-> "1a", bal |-> bal] in the msgs bitset. */
  msg1a(bal: number): number {
    return this.base1a + bal;
  }

  /** The index of [type |-> "1b", acc |-> acc, bal |-> bal, mbal |-> mbal, mval |-> mval]. */
  msg1b(acc: number, bal: number, mbal: number, mval: number | None): number {
    const { ballots: B, values: V } = this.constants;
    return this.base1b + ((acc * B + bal) * (B + 1) + (mbal + 1)) * (V + 1) + (mval === None ? 0 : mval + 1);
  }

  /** The index of [type |-> "2a", bal |-> bal, val |-> val]. */
  msg2a(bal: number, val: number): number {
    return this.base2a + bal * this.constants.values + val;
  }

  /** The index of [type |-> "2b", acc |-> acc, bal |-> bal, val |-> val] (Voting's vote index). */
  msg2b(acc: number, bal: number, val: number): number {
    return (acc * this.constants.ballots + bal) * this.constants.values + val;
  }

  /** m \in msgs, for a message index m. */
  sent(s: CompactPaxosState, m: number): boolean {
    return this.hasBit(s, this.constants.acceptors, m);
  }

  /** The message with index m (undefined for a padding bit). */
  message(m: number): Message | undefined {
    return this.universe[m];
  }

  /** The index of a message record. */
  indexOf(m: Message): number {
    switch (m.type) {
      case "1a":
        return this.msg1a(m.bal);
      case "1b":
        return this.msg1b(m.acc, m.bal, m.mbal, m.mval);
      case "2a":
        return this.msg2a(m.bal, m.val);
      case "2b":
        return this.msg2b(m.acc, m.bal, m.val);
    }
  }

  /** Every message in msgs, in index order. */
  msgs(s: CompactPaxosState): Message[] {
    const out: Message[] = [];
    for (let m = 0; m < this.universe.length; m++) {
      const msg = this.universe[m];
      if (msg !== undefined && this.sent(s, m)) out.push(msg);
    }
    return out;
  }

  /**
   * votes == [a \in Acceptor |-> {<<m.bal, m.val>> : m \in {mm \in msgs : mm.type = "2b" /\ mm.acc = a}}],
   * as V's state together with maxBal: the state of V == INSTANCE Voting. Because 2b messages
   * are laid out like Voting's votes, this copies words.
   */
  instanceV(s: CompactPaxosState): VotingState {
    const A = this.constants.acceptors;
    const t = new Uint16Array(this.V.stateWords) as VotingState;
    for (let a = 0; a < A; a++) t[a] = s[a]! & fieldMask;
    for (let w = A; w < t.length; w++) t[w] = s[w]!;
    return t;
  }

  /** instanceV(s), computed once for the consecutive invariant checks of one state. */
  private sharedImage(s: CompactPaxosState): VotingState {
    if (this.imageOf !== s || this.image === undefined) {
      this.imageOf = s;
      this.image = this.instanceV(s);
    }
    return this.image;
  }

  /**
   * The 1b messages sent by acceptor a in ballot b, as a bit field: bit (mbal + 1) * (|Value| + 1)
   * + (mval + 1) stands for [type |-> "1b", acc |-> a, bal |-> b, mbal |-> mbal, mval |-> mval]
   * (mval = None is 0). The bits from |Value| + 1 up are the ones with mbal >= 0.
   */
  oneBs(s: CompactPaxosState, a: number, b: number): number {
    return this.bitField(s, this.constants.acceptors, this.msg1b(a, b, -1, None), this.oneBsBits);
  }

  /** Build a state from plain data (throws on values outside the constants' types). */
  make(view: PaxosState): CompactPaxosState {
    const { acceptors: A, maxBallot, values } = this.constants;
    const ballotOrNone = (what: string, b: number): number => {
      if (!Number.isInteger(b) || b < -1 || b > maxBallot)
        throw new RangeError(`${what} = ${b} is not in Ballot \\cup {-1}`);
      return b + 1;
    };
    if (view.maxBal.length !== A || view.maxVBal.length !== A || view.maxVal.length !== A)
      throw new RangeError("one entry per acceptor expected");
    const s = new Uint16Array(this.stateWords) as CompactPaxosState;
    for (let a = 0; a < A; a++) {
      const val = view.maxVal[a]!;
      if (val !== None && (!Number.isInteger(val) || val < 0 || val >= values))
        throw new RangeError(`maxVal[${acceptorName(a)}] = ${val} is not in Value \\cup {None}`);
      s[a] =
        ballotOrNone(`maxBal[${acceptorName(a)}]`, view.maxBal[a]!) |
        (ballotOrNone(`maxVBal[${acceptorName(a)}]`, view.maxVBal[a]!) << fieldBits) |
        ((val === None ? 0 : val + 1) << (2 * fieldBits));
    }
    for (const m of view.msgs) {
      const i = this.indexOf(m);
      if (this.universe[i] === undefined || JSON.stringify(this.universe[i]) !== JSON.stringify(normalize(m)))
        throw new RangeError(`${showMessage(m)} is not in Message`);
      this.setBit(s, A, i);
    }
    return s;
  }

  /** The state as plain data. */
  view(s: CompactPaxosState): PaxosState {
    const acceptors = Array.from({ length: this.constants.acceptors }, (_, a) => a);
    return {
      maxBal: acceptors.map((a) => this.maxBal(s, a)),
      maxVBal: acceptors.map((a) => this.maxVBal(s, a)),
      maxVal: acceptors.map((a) => this.maxVal(s, a)),
      msgs: this.msgs(s),
    };
  }

  /** Schemas of a message and of a whole state under these constants (see `paxosSchemas`). */
  schemas(): PaxosSchemas {
    return paxosSchemas(this.constants);
  }

  // ---- Actions --------------------------------------------------------------------------------

  /** Phase1a(b) == Send([type |-> "1a", bal |-> b]) /\ UNCHANGED <<maxBal, maxVBal, maxVal>>. Always enabled. */
  Phase1a(s: CompactPaxosState, b: number): CompactPaxosState {
    return this.send(s, this.msg1a(b));
  }

  /** The guard of Phase1b(a) for m = [type |-> "1a", bal |-> bal]: m \in msgs /\ m.bal > maxBal[a]. */
  Phase1bEnabled(s: CompactPaxosState, a: number, bal: number): boolean {
    return this.sent(s, this.msg1a(bal)) && bal > this.maxBal(s, a);
  }

  /**
   * Phase1b(a)'s effect for m = [type |-> "1a", bal |-> bal]:
   *   maxBal' = [maxBal EXCEPT ![a] = m.bal]
   *   Send([type |-> "1b", acc |-> a, bal |-> m.bal, mbal |-> maxVBal[a], mval |-> maxVal[a]])
   *   UNCHANGED <<maxVBal, maxVal>>
   */
  Phase1b(s: CompactPaxosState, a: number, bal: number): CompactPaxosState {
    return this.update(
      s,
      a,
      (s[a]! & ~fieldMask) | (bal + 1),
      this.msg1b(a, bal, this.maxVBal(s, a), this.maxVal(s, a)),
    );
  }

  /**
   * The enabling conditions of Phase2a(b, v), counted the way TLC enumerates them (one
   * successor per quorum Q and per message witness; see Spec.witnesses):
   *   /\ ~ \E m \in msgs : m.type = "2a" /\ m.bal = b
   *   /\ \E Q \in Quorum :
   *        LET Q1b == {m \in msgs : m.type = "1b" /\ m.acc \in Q /\ m.bal = b}
   *            Q1bv == {m \in Q1b : m.mbal >= 0}
   *        IN  /\ \A a \in Q : \E m \in Q1b : m.acc = a
   *            /\ \/ Q1bv = {}
   *               \/ \E m \in Q1bv : m.mval = v /\ \A mm \in Q1bv : m.mbal >= mm.mbal
   * The second conjunct is V!ShowsSafeAt(Q, b, v) as learned from 1b messages: the heart of Paxos.
   */
  Phase2aWitnesses(s: CompactPaxosState, b: number, v: number): number {
    if (this.sent2a(s, b)) return 0;
    let witnesses = 0;
    for (const Q of this.constants.quorums) witnesses += this.quorumWitnesses(s, Q, b, v);
    return witnesses;
  }

  /** Is there a 2a message for ballot b? (\E m \in msgs : m.type = "2a" /\ m.bal = b) */
  sent2a(s: CompactPaxosState, b: number): boolean {
    for (let w = 0; w < this.constants.values; w++) if (this.sent(s, this.msg2a(b, w))) return true;
    return false;
  }

  /**
   * For one quorum Q: (\A a \in Q : \E m \in Q1b : m.acc = a) /\ (Q1bv = {} \/ \E m \in Q1bv : ...),
   * as a count of satisfying bindings (0 when false).
   */
  quorumWitnesses(s: CompactPaxosState, Q: readonly number[], b: number, v: number): number {
    const row = this.constants.values + 1;
    let bindings = 1; // product over a \in Q of |{m \in Q1b : m.acc = a}|
    let maxMbal = -1; // the largest m.mbal in Q1bv (-1 while Q1bv = {})
    let atMaxForV = 0; // |{m \in Q1bv : m.mbal = maxMbal /\ m.mval = v}|
    for (const a of Q) {
      const fromA = this.oneBs(s, a, b);
      if (fromA === 0) return 0;
      bindings *= popcount(fromA);
      const voted = fromA >>> row; // a's messages in Q1bv: bit mbal * row + (mval + 1)
      if (voted === 0) continue;
      const top = Math.floor((31 - Math.clz32(voted)) / row); // a's largest mbal
      if (top > maxMbal) {
        maxMbal = top;
        atMaxForV = 0;
      }
      if (top === maxMbal) atMaxForV += (voted >>> (top * row + v + 1)) & 1;
    }
    return bindings * (maxMbal === -1 ? 1 : atMaxForV);
  }

  /** Phase2a(b, v)'s effect: Send([type |-> "2a", bal |-> b, val |-> v]) /\ UNCHANGED <<maxBal, maxVBal, maxVal>>. */
  Phase2a(s: CompactPaxosState, b: number, v: number): CompactPaxosState {
    return this.send(s, this.msg2a(b, v));
  }

  /** The guard of Phase2b(a) for m = [type |-> "2a", bal |-> bal, val |-> val]: m \in msgs /\ m.bal >= maxBal[a]. */
  Phase2bEnabled(s: CompactPaxosState, a: number, bal: number, val: number): boolean {
    return this.sent(s, this.msg2a(bal, val)) && bal >= this.maxBal(s, a);
  }

  /**
   * Phase2b(a)'s effect for m = [type |-> "2a", bal |-> bal, val |-> val]:
   *   maxBal' = [maxBal EXCEPT ![a] = m.bal] /\ maxVBal' = [maxVBal EXCEPT ![a] = m.bal]
   *   maxVal' = [maxVal EXCEPT ![a] = m.val] /\ Send([type |-> "2b", acc |-> a, bal |-> m.bal, val |-> m.val])
   */
  Phase2b(s: CompactPaxosState, a: number, bal: number, val: number): CompactPaxosState {
    return this.update(
      s,
      a,
      (bal + 1) | ((bal + 1) << fieldBits) | ((val + 1) << (2 * fieldBits)),
      this.msg2b(a, bal, val),
    );
  }

  /** Send(m) == msgs' = msgs \cup {m}. */
  private send(s: CompactPaxosState, m: number): CompactPaxosState {
    return this.update(s, 0, s[0]!, m);
  }

  /**
   * The state with acceptor a's word (maxBal, maxVBal, maxVal) set to `word` and message m
   * sent, on a fresh copy; or s itself when that changes nothing (a self-loop, such as
   * Phase1a(b) after 1a(b) was sent), which spares the explorer a copy and a lookup.
   */
  private update(s: CompactPaxosState, a: number, word: number, m: number): CompactPaxosState {
    if (s[a] === word && this.sent(s, m)) return s;
    const t = s.slice() as CompactPaxosState;
    t[a] = word;
    this.setBit(t, this.constants.acceptors, m);
    return t;
  }

  // ---- Inv ------------------------------------------------------------------------------------

  /** TypeOK: every variable within its type (the encoding can hold more, so this can fail). */
  TypeOK(s: CompactPaxosState): string | undefined {
    const { acceptors: A, ballots, values } = this.constants;
    if (s.length !== this.stateWords) return `the state has ${s.length} words, not ${this.stateWords}`;
    for (let a = 0; a < A; a++) {
      const w = s[a]!;
      if ((w & fieldMask) > ballots)
        return `maxBal[${acceptorName(a)}] = ${this.maxBal(s, a)} is not in Ballot \\cup {-1}`;
      if (((w >>> fieldBits) & fieldMask) > ballots)
        return `maxVBal[${acceptorName(a)}] = ${this.maxVBal(s, a)} is not in Ballot \\cup {-1}`;
      if (((w >>> (2 * fieldBits)) & fieldMask) > values)
        return `maxVal[${acceptorName(a)}] = v${(w >>> (2 * fieldBits)) & fieldMask} is not in Value \\cup {None}`;
      if (w >>> (3 * fieldBits) !== 0) return `the word of ${acceptorName(a)} has stray bits`;
    }
    for (let m = 0; m < this.universe.length; m++)
      if (this.universe[m] === undefined && this.sent(s, m)) return `msgs holds something outside Message (bit ${m})`;
    return undefined;
  }

  /**
   * Inv!2 == \A a \in Acceptor : IF maxVBal[a] = -1 THEN maxVal[a] = None ELSE <<maxVBal[a], maxVal[a]>> \in votes[a].
   */
  Inv2(s: CompactPaxosState): string | undefined {
    for (let a = 0; a < this.constants.acceptors; a++) {
      const vbal = this.maxVBal(s, a);
      const val = this.maxVal(s, a);
      if (vbal === -1 && val !== None)
        return `maxVBal[${acceptorName(a)}] = -1 but maxVal[${acceptorName(a)}] = ${showValue(val)}`;
      if (vbal !== -1 && (val === None || !this.sent(s, this.msg2b(a, vbal, val))))
        return `<<maxVBal[${acceptorName(a)}], maxVal[${acceptorName(a)}]>> = <<${vbal}, ${showValue(val)}>> is not in votes[${acceptorName(a)}]`;
    }
    return undefined;
  }

  /**
   * Inv!3 for 1b messages: (m.type = "1b") => maxBal[m.acc] >= m.bal /\ ((m.mbal >= 0) => <<m.mbal, m.mval>> \in
   * votes[m.acc]).
   */
  Inv3of1b(s: CompactPaxosState): string | undefined {
    const { acceptors, ballots } = this.constants;
    for (let acc = 0; acc < acceptors; acc++) {
      for (let bal = 0; bal < ballots; bal++) {
        const base = this.msg1b(acc, bal, -1, None);
        for (let field = this.oneBs(s, acc, bal); field !== 0; field &= field - 1) {
          const m = this.message(base + 31 - Math.clz32(field & -field)) as Message & { type: "1b" };
          if (this.maxBal(s, acc) < bal)
            return `${showMessage(m)} was sent but maxBal[${acceptorName(acc)}] = ${this.maxBal(s, acc)} < ${bal}`;
          if (m.mbal >= 0 && (m.mval === None || !this.sent(s, this.msg2b(acc, m.mbal, m.mval))))
            return `${showMessage(m)} reports a vote <<${m.mbal}, ${showValue(m.mval)}>> that is not in votes[${acceptorName(acc)}]`;
        }
      }
    }
    return undefined;
  }

  /**
   * Inv!3 for 2a messages: (m.type = "2a") => /\ \E Q \in Quorum : V!ShowsSafeAt(Q, m.bal, m.val)
   *                                          /\ \A mm \in msgs : mm.type = "2a" /\ mm.bal = m.bal => mm.val = m.val.
   */
  Inv3of2a(s: CompactPaxosState): string | undefined {
    const image = this.sharedImage(s);
    const { ballots, values, quorums } = this.constants;
    for (let b = 0; b < ballots; b++) {
      let first = -1;
      for (let v = 0; v < values; v++) {
        if (!this.sent(s, this.msg2a(b, v))) continue;
        if (first !== -1) return `two 2a messages in ballot ${b}: for ${valueName(first)} and ${valueName(v)}`;
        first = v;
        let safe = false;
        for (const Q of quorums) safe ||= this.V.ShowsSafeAt(image, Q, b, v);
        if (!safe)
          return `${showMessage({ type: "2a", bal: b, val: v })} was sent but no quorum Q has V!ShowsSafeAt(Q, ${b}, ${valueName(v)})`;
      }
    }
    return undefined;
  }

  /** Inv: the first conjunct that fails, if any (in the order of Paxos.tla). */
  Inv(s: CompactPaxosState): string | undefined {
    return firstViolation(this.invariants, s);
  }

  // ---- Spec -----------------------------------------------------------------------------------

  // Next, dispatched by `paxosWitnesses` and `paxosTransition` (spec/paxos.ts).

  actions(): readonly PaxosAction[] {
    return this.allActions;
  }

  witnesses(action: PaxosAction, s: CompactPaxosState): number {
    return paxosWitnesses(this, action, s);
  }

  enabled(action: PaxosAction, s: CompactPaxosState): boolean {
    return paxosWitnesses(this, action, s) > 0;
  }

  transition(action: PaxosAction, s: CompactPaxosState): CompactPaxosState {
    return paxosTransition(this, action, s);
  }

  output(action: PaxosAction): string {
    return paxosActionName(action);
  }

  /** The state as TLC prints it. */
  show(s: CompactPaxosState): string {
    return showState(this.view(s));
  }

  /**
   * Renaming acceptors by `acc` and values by `val` (both permutations), as a map on states.
   * The image of every message index is computed once, so applying it walks set bits only.
   */
  permutation(acc: readonly number[], val: readonly number[]): (s: CompactPaxosState) => CompactPaxosState {
    const pv = (x: number | None): number | None => (x === None ? None : val[x]!);
    const image = new Int32Array(this.universe.length).fill(-1);
    this.universe.forEach((m, i) => {
      if (m === undefined) return;
      switch (m.type) {
        case "1a":
          image[i] = i;
          break;
        case "1b":
          image[i] = this.msg1b(acc[m.acc]!, m.bal, m.mbal, pv(m.mval));
          break;
        case "2a":
          image[i] = this.msg2a(m.bal, val[m.val]!);
          break;
        case "2b":
          image[i] = this.msg2b(acc[m.acc]!, m.bal, val[m.val]!);
          break;
      }
    });
    const A = this.constants.acceptors;
    return (s) => {
      const t = new Uint16Array(this.stateWords) as CompactPaxosState;
      for (let a = 0; a < A; a++) {
        const valField = (s[a]! >>> (2 * fieldBits)) & fieldMask;
        t[acc[a]!] =
          (s[a]! & ((1 << (2 * fieldBits)) - 1)) | ((valField === 0 ? 0 : val[valField - 1]! + 1) << (2 * fieldBits));
      }
      for (let w = A; w < s.length; w++) {
        for (let bits = s[w]!; bits !== 0; bits &= bits - 1) {
          const i = (w - A) * 16 + 31 - Math.clz32(bits & -bits);
          this.setBit(t, A, image[i]!);
        }
      }
      return t;
    };
  }

  /**
   * The symmetry group minus the identity (see `symmetryGroup`), built on first use: it has |Acceptor|! * |Value|!
   * elements.
   */
  get symmetries(): readonly ((state: CompactPaxosState) => CompactPaxosState)[] {
    this.symmetryCache ??= symmetryGroup<CompactPaxosState>(this.constants, (acc, val) => this.permutation(acc, val));
    return this.symmetryCache;
  }

  private enumerateUniverse(bits: number): (Message | undefined)[] {
    const { acceptors: A, ballots: B, values: V, maxBallot } = this.constants;
    const universe: (Message | undefined)[] = Array.from({ length: bits }, () => undefined);
    for (let bal = 0; bal < B; bal++) {
      universe[this.msg1a(bal)] = { type: "1a", bal };
      for (let val = 0; val < V; val++) universe[this.msg2a(bal, val)] = { type: "2a", bal, val };
      for (let acc = 0; acc < A; acc++) {
        for (let val = 0; val < V; val++) universe[this.msg2b(acc, bal, val)] = { type: "2b", acc, bal, val };
        for (let mbal = -1; mbal <= maxBallot; mbal++) {
          for (let mval = -1; mval < V; mval++) {
            const m: Message = { type: "1b", acc, bal, mbal, mval: mval === -1 ? None : mval };
            universe[this.indexOf(m)] = m;
          }
        }
      }
    }
    return universe;
  }
}

/** The same message with its fields in the canonical order (for comparing records). */
function normalize(m: Message): Message {
  switch (m.type) {
    case "1a":
      return { type: "1a", bal: m.bal };
    case "1b":
      return { type: "1b", acc: m.acc, bal: m.bal, mbal: m.mbal, mval: m.mval };
    case "2a":
      return { type: "2a", bal: m.bal, val: m.val };
    case "2b":
      return { type: "2b", acc: m.acc, bal: m.bal, val: m.val };
  }
}

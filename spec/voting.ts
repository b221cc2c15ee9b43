/**
 * Lamport's Voting (tlaplus/Examples, specifications/Paxos/Voting.tla), transcribed: a set of
 * acceptors cooperatively choose a value by voting in numbered ballots. The variables are
 * `votes` (votes[a] is the set of <<ballot, value>> votes acceptor a cast) and `maxBal`
 * (a casts no further vote in a ballot below maxBal[a]); the actions are IncreaseMaxBal(a, b)
 * and VoteFor(a, b, v); the invariants are TypeOK, VotesSafe, OneVote and OneValuePerBallot
 * (Inv == TypeOK /\ VotesSafe /\ OneValuePerBallot).
 *
 * Source material: the consensus step of the recipe ("choose an order for them, consensus
 * per input"); Voting is the algorithm Paxos implements, and it implements Consensus under
 * `chosen == {v \in Value : \E b \in Ballot : ChosenAt(b, v)}`.
 *
 * The state is compact (one Uint16Array: maxBal[a] + 1 per acceptor, then a bitset over
 * Acceptor x Ballot x Value for votes); every operator below reads it through `maxBal` and
 * `VotedFor`. Pure: no clock, no randomness; imports nothing of the project but spec/.
 */
import { CompactStates, wordsFor, type Words } from "./bits.ts";
import {
  acceptorName,
  resolveConstants,
  symmetryGroup,
  valueName,
  type BallotConstants,
  type Constants,
} from "./constants.ts";
import type { Invariant, Spec } from "./state-machine.ts";

/** A state of Voting: maxBal and votes, compactly encoded (see the module comment). */
export type VotingState = Words & { readonly __voting: true };

/** Voting's actions: the disjuncts of Next, with their bound variables. */
export type VotingAction =
  | { readonly _tag: "IncreaseMaxBal"; readonly a: number; readonly b: number }
  | { readonly _tag: "VoteFor"; readonly a: number; readonly b: number; readonly v: number };

/** A Voting state as plain data: votes[a] lists <<b, v>> pairs; maxBal[a] in -1..maxBallot. */
export interface VotingView {
  readonly votes: readonly (readonly (readonly [number, number])[])[];
  readonly maxBal: readonly number[];
}

/** `Voting(constants)`: the spec for one choice of Acceptor, Value, Quorum and Ballot. */
export class Voting extends CompactStates implements Spec<VotingState, VotingAction> {
  readonly name: string = "Voting";
  readonly constants: Constants;
  /** Init == votes = [a |-> {}] /\ maxBal = [a |-> -1]. */
  readonly start: VotingState;
  readonly init: readonly VotingState[];
  readonly invariants: readonly Invariant<VotingState>[];
  private symmetryCache: readonly ((state: VotingState) => VotingState)[] | undefined;
  /** Word length of a state: one word per acceptor, then the votes bitset. */
  readonly stateWords: number;
  private readonly allActions: readonly VotingAction[];

  constructor(constants: BallotConstants) {
    super();
    const k = resolveConstants(constants);
    this.constants = k;
    this.stateWords = k.acceptors + wordsFor(k.acceptors * k.ballots * k.values);
    this.start = this.make({
      votes: Array.from({ length: k.acceptors }, () => []),
      maxBal: Array.from({ length: k.acceptors }, () => -1),
    });
    this.init = [this.start];
    const actions: VotingAction[] = [];
    // Next == \E a \in Acceptor, b \in Ballot : IncreaseMaxBal(a, b) \/ \E v \in Value : VoteFor(a, b, v)
    for (let a = 0; a < k.acceptors; a++) {
      for (let b = 0; b < k.ballots; b++) {
        actions.push({ _tag: "IncreaseMaxBal", a, b });
        for (let v = 0; v < k.values; v++) actions.push({ _tag: "VoteFor", a, b, v });
      }
    }
    this.allActions = actions;
    this.invariants = [
      {
        name: "TypeOK",
        statement: "votes \\in [Acceptor -> SUBSET (Ballot \\X Value)] /\\ maxBal \\in [Acceptor -> Ballot \\cup {-1}]",
        check: (s) => this.TypeOK(s),
      },
      {
        name: "VotesSafe",
        statement: "every vote <<b, v>> is safe: VotedFor(a, b, v) => SafeAt(b, v)",
        check: (s) => this.VotesSafe(s),
      },
      {
        name: "OneVote",
        statement: "an acceptor votes for at most one value in a ballot",
        check: (s) => this.OneVote(s),
      },
      {
        name: "OneValuePerBallot",
        statement: "all votes in one ballot are for one value",
        check: (s) => this.OneValuePerBallot(s),
      },
    ];
  }

  // ---- State variables and the compact encoding ----------------------------------------

  /** maxBal[a]. */
  maxBal(s: VotingState, a: number): number {
    return s[a]! - 1;
  }

  /** Bit index of the vote <<b, v>> of acceptor a in the votes bitset. */
  voteIndex(a: number, b: number, v: number): number {
    return (a * this.constants.ballots + b) * this.constants.values + v;
  }

  /** VotedFor(a, b, v) == <<b, v>> \in votes[a]. */
  VotedFor(s: VotingState, a: number, b: number, v: number): boolean {
    return this.hasBit(s, this.constants.acceptors, this.voteIndex(a, b, v));
  }

  /** The values a voted for in ballot b, as a bitmask (bit v: VotedFor(a, b, v)). */
  votesAt(s: VotingState, a: number, b: number): number {
    const { ballots, values } = this.constants;
    return this.bitField(s, this.constants.acceptors, (a * ballots + b) * values, values);
  }

  /** Build a state from plain data (throws on values outside the constants). */
  make(view: VotingView): VotingState {
    const k = this.constants;
    if (view.maxBal.length !== k.acceptors || view.votes.length !== k.acceptors)
      throw new RangeError("one entry per acceptor expected");
    const s = new Uint16Array(this.stateWords) as VotingState;
    view.maxBal.forEach((b, a) => {
      if (!Number.isInteger(b) || b < -1 || b > k.maxBallot)
        throw new RangeError(`maxBal[${acceptorName(a)}] = ${b} is not in Ballot \\cup {-1}`);
      s[a] = b + 1;
    });
    view.votes.forEach((vs, a) => {
      for (const [b, v] of vs) {
        if (!Number.isInteger(b) || b < 0 || b > k.maxBallot || !Number.isInteger(v) || v < 0 || v >= k.values)
          throw new RangeError(`vote <<${b}, ${v}>> is not in Ballot \\X Value`);
        this.setBit(s, k.acceptors, this.voteIndex(a, b, v));
      }
    });
    return s;
  }

  /** The state as plain data. */
  view(s: VotingState): VotingView {
    const k = this.constants;
    const votes: [number, number][][] = [];
    const maxBal: number[] = [];
    for (let a = 0; a < k.acceptors; a++) {
      maxBal.push(this.maxBal(s, a));
      const mine: [number, number][] = [];
      for (let b = 0; b < k.ballots; b++)
        for (let v = 0; v < k.values; v++) if (this.VotedFor(s, a, b, v)) mine.push([b, v]);
      votes.push(mine);
    }
    return { votes, maxBal };
  }

  // ---- Definitions of Voting.tla ---------------------------------------------------------

  /** ChosenAt(b, v) == \E Q \in Quorum : \A a \in Q : VotedFor(a, b, v). */
  ChosenAt(s: VotingState, b: number, v: number): boolean {
    return ((this.chosenAtMask(s, b) >>> v) & 1) === 1;
  }

  /** The values v with ChosenAt(b, v), as a bitmask. */
  private chosenAtMask(s: VotingState, b: number): number {
    let mask = 0;
    for (const Q of this.constants.quorums) {
      let all = -1;
      for (const a of Q) all &= this.votesAt(s, a, b);
      mask |= all;
    }
    return mask;
  }

  /** chosen == {v \in Value : \E b \in Ballot : ChosenAt(b, v)}, as a sorted list of values. */
  chosen(s: VotingState): number[] {
    let mask = 0;
    for (let b = 0; b < this.constants.ballots; b++) mask |= this.chosenAtMask(s, b);
    const out: number[] = [];
    for (let v = 0; v < this.constants.values; v++) if (((mask >>> v) & 1) === 1) out.push(v);
    return out;
  }

  /** DidNotVoteAt(a, b) == \A v \in Value : ~ VotedFor(a, b, v). */
  DidNotVoteAt(s: VotingState, a: number, b: number): boolean {
    return this.votesAt(s, a, b) === 0;
  }

  /** CannotVoteAt(a, b) == maxBal[a] > b /\ DidNotVoteAt(a, b). */
  CannotVoteAt(s: VotingState, a: number, b: number): boolean {
    return this.maxBal(s, a) > b && this.DidNotVoteAt(s, a, b);
  }

  /** NoneOtherChoosableAt(b, v) == \E Q \in Quorum : \A a \in Q : VotedFor(a, b, v) \/ CannotVoteAt(a, b). */
  NoneOtherChoosableAt(s: VotingState, b: number, v: number): boolean {
    for (const Q of this.constants.quorums) {
      let all = true;
      for (const a of Q) all &&= this.VotedFor(s, a, b, v) || this.CannotVoteAt(s, a, b);
      if (all) return true;
    }
    return false;
  }

  /** SafeAt(b, v) == \A c \in 0..(b-1) : NoneOtherChoosableAt(c, v). */
  SafeAt(s: VotingState, b: number, v: number): boolean {
    for (let c = 0; c < b; c++) if (!this.NoneOtherChoosableAt(s, c, v)) return false;
    return true;
  }

  /**
   * ShowsSafeAt(Q, b, v) ==
   *   /\ \A a \in Q : maxBal[a] \geq b
   *   /\ \E c \in -1..(b-1) :
   *        /\ (c # -1) => \E a \in Q : VotedFor(a, c, v)
   *        /\ \A d \in (c+1)..(b-1), a \in Q : DidNotVoteAt(a, d)
   */
  ShowsSafeAt(s: VotingState, Q: readonly number[], b: number, v: number): boolean {
    return this.showsSafeAtWitnesses(s, Q, b, v) > 0;
  }

  /**
   * The number of bindings that satisfy ShowsSafeAt(Q, b, v) as TLC enumerates them inside an
   * action: one per c in -1..(b-1), and for c # -1 one per a in Q with VotedFor(a, c, v)
   * (TLC evaluates the consequent of a true implication as an action, so its existential
   * is enumerated too). Zero exactly when ShowsSafeAt(Q, b, v) is false.
   */
  showsSafeAtWitnesses(s: VotingState, Q: readonly number[], b: number, v: number): number {
    for (const a of Q) if (this.maxBal(s, a) < b) return 0;
    let witnesses = 0;
    for (let c = -1; c < b; c++) {
      let voters = c === -1 ? 1 : 0;
      if (c !== -1) for (const a of Q) if (this.VotedFor(s, a, c, v)) voters++;
      if (voters === 0) continue;
      let quiet = true;
      for (let d = c + 1; d < b && quiet; d++) for (const a of Q) quiet &&= this.DidNotVoteAt(s, a, d);
      if (quiet) witnesses += voters;
    }
    return witnesses;
  }

  // ---- Invariants ------------------------------------------------------------------------

  /** TypeOK == votes \in [Acceptor -> SUBSET (Ballot \X Value)] /\ maxBal \in [Acceptor -> Ballot \cup {-1}]. */
  TypeOK(s: VotingState): string | undefined {
    const k = this.constants;
    if (s.length !== this.stateWords) return `the state has ${s.length} words, not ${this.stateWords}`;
    for (let a = 0; a < k.acceptors; a++) {
      if (s[a]! > k.ballots) return `maxBal[${acceptorName(a)}] = ${this.maxBal(s, a)} is not in Ballot \\cup {-1}`;
    }
    const bits = k.acceptors * k.ballots * k.values;
    for (let i = bits; i < wordsFor(bits) * 16; i++)
      if (this.hasBit(s, k.acceptors, i)) return `votes holds a pair outside Ballot \\X Value (bit ${i})`;
    return undefined;
  }

  /** VotesSafe == \A a \in Acceptor, b \in Ballot, v \in Value : VotedFor(a, b, v) => SafeAt(b, v). */
  VotesSafe(s: VotingState): string | undefined {
    const k = this.constants;
    for (let a = 0; a < k.acceptors; a++) {
      for (let b = 0; b < k.ballots; b++) {
        for (let v = 0; v < k.values; v++) {
          if (this.VotedFor(s, a, b, v) && !this.SafeAt(s, b, v))
            return `${acceptorName(a)} voted for ${valueName(v)} in ballot ${b}, but SafeAt(${b}, ${valueName(v)}) is false`;
        }
      }
    }
    return undefined;
  }

  /** OneVote == \A a \in Acceptor, b \in Ballot, v, w \in Value : VotedFor(a, b, v) /\ VotedFor(a, b, w) => (v = w). */
  OneVote(s: VotingState): string | undefined {
    const k = this.constants;
    for (let a = 0; a < k.acceptors; a++) {
      for (let b = 0; b < k.ballots; b++) {
        const voted = this.votesAt(s, a, b);
        if ((voted & (voted - 1)) !== 0) return `${acceptorName(a)} voted for ${this.valueList(voted)} in ballot ${b}`;
      }
    }
    return undefined;
  }

  /**
   * OneValuePerBallot == \A a1, a2 \in Acceptor, b \in Ballot, v1, v2 \in Value : VotedFor(a1, b, v1) /\ VotedFor(a2,
   * b, v2) => (v1 = v2).
   */
  OneValuePerBallot(s: VotingState): string | undefined {
    const k = this.constants;
    for (let b = 0; b < k.ballots; b++) {
      let voted = 0;
      for (let a = 0; a < k.acceptors; a++) voted |= this.votesAt(s, a, b);
      if ((voted & (voted - 1)) !== 0) return `ballot ${b} has votes for ${this.valueList(voted)}`;
    }
    return undefined;
  }

  /** Inv == TypeOK /\ VotesSafe /\ OneValuePerBallot: the first conjunct that fails, if any. */
  Inv(s: VotingState): string | undefined {
    return this.TypeOK(s) ?? this.VotesSafe(s) ?? this.OneValuePerBallot(s);
  }

  /** "v1 and v2" for a bitmask of values. */
  private valueList(mask: number): string {
    const names: string[] = [];
    for (let v = 0; v < this.constants.values; v++) if (((mask >>> v) & 1) === 1) names.push(valueName(v));
    return names.join(" and ");
  }

  // ---- Actions -----------------------------------------------------------------------------

  /** IncreaseMaxBal(a, b) == /\ b > maxBal[a] /\ maxBal' = [maxBal EXCEPT ![a] = b] /\ UNCHANGED votes. */
  IncreaseMaxBal(s: VotingState, a: number, b: number): VotingState {
    if (this.maxBal(s, a) === b) return s;
    const t = s.slice() as VotingState;
    t[a] = b + 1;
    return t;
  }

  /**
   * The enabling conditions of VoteFor(a, b, v), counted TLC's way (one per satisfying
   * binding of Q and of c inside ShowsSafeAt):
   *   /\ maxBal[a] \leq b
   *   /\ \A vt \in votes[a] : vt[1] # b
   *   /\ \A c \in Acceptor \ {a} : \A vt \in votes[c] : (vt[1] = b) => (vt[2] = v)
   *   /\ \E Q \in Quorum : ShowsSafeAt(Q, b, v)
   */
  VoteForWitnesses(s: VotingState, a: number, b: number, v: number): number {
    const k = this.constants;
    if (this.maxBal(s, a) > b) return 0;
    if (!this.DidNotVoteAt(s, a, b)) return 0;
    for (let c = 0; c < k.acceptors; c++) if (c !== a && (this.votesAt(s, c, b) & ~(1 << v)) !== 0) return 0;
    let witnesses = 0;
    for (const Q of k.quorums) witnesses += this.showsSafeAtWitnesses(s, Q, b, v);
    return witnesses;
  }

  /**
   * VoteFor(a, b, v)'s effect: votes' = [votes EXCEPT ![a] = @ \cup {<<b, v>>}] /\ maxBal' = [maxBal EXCEPT ![a] = b].
   */
  VoteFor(s: VotingState, a: number, b: number, v: number): VotingState {
    const t = s.slice() as VotingState;
    this.setBit(t, this.constants.acceptors, this.voteIndex(a, b, v));
    t[a] = b + 1;
    return t;
  }

  // ---- Spec ----------------------------------------------------------------------------------

  actions(): readonly VotingAction[] {
    return this.allActions;
  }

  witnesses(action: VotingAction, s: VotingState): number {
    if (action._tag === "IncreaseMaxBal") return action.b > this.maxBal(s, action.a) ? 1 : 0;
    return this.VoteForWitnesses(s, action.a, action.b, action.v);
  }

  enabled(action: VotingAction, s: VotingState): boolean {
    return this.witnesses(action, s) > 0;
  }

  transition(action: VotingAction, s: VotingState): VotingState {
    if (action._tag === "IncreaseMaxBal") return this.IncreaseMaxBal(s, action.a, action.b);
    return this.VoteFor(s, action.a, action.b, action.v);
  }

  output(action: VotingAction): string {
    if (action._tag === "IncreaseMaxBal") return `IncreaseMaxBal(${acceptorName(action.a)}, ${action.b})`;
    return `VoteFor(${acceptorName(action.a)}, ${action.b}, ${valueName(action.v)})`;
  }

  /** The state as TLC prints it. */
  show(s: VotingState): string {
    const { votes, maxBal } = this.view(s);
    const fn = (xs: readonly string[]): string => `(${xs.map((x, a) => `${acceptorName(a)} :> ${x}`).join(" @@ ")})`;
    return [
      `/\\ votes = ${fn(votes.map((vs) => `{${vs.map(([b, v]) => `<<${b}, ${valueName(v)}>>`).join(", ")}}`))}`,
      `/\\ maxBal = ${fn(maxBal.map(String))}`,
    ].join("\n");
  }

  /** The state with acceptors renamed by `acc` and values by `val` (both permutations). */
  permute(s: VotingState, acc: readonly number[], val: readonly number[]): VotingState {
    const k = this.constants;
    const t = new Uint16Array(this.stateWords) as VotingState;
    for (let a = 0; a < k.acceptors; a++) {
      t[acc[a]!] = s[a]!;
      for (let b = 0; b < k.ballots; b++) {
        for (let v = 0; v < k.values; v++)
          if (this.VotedFor(s, a, b, v)) this.setBit(t, k.acceptors, this.voteIndex(acc[a]!, b, val[v]!));
      }
    }
    return t;
  }

  /**
   * The symmetry group minus the identity (see `symmetryGroup`), built on first use: it has |Acceptor|! * |Value|!
   * elements.
   */
  get symmetries(): readonly ((state: VotingState) => VotingState)[] {
    this.symmetryCache ??= symmetryGroup<VotingState>(this.constants, (acc, val) => (s) => this.permute(s, acc, val));
    return this.symmetryCache;
  }
}

/**
 * The abstraction from the world to Lamport's Voting (Voting.tla), one instance per slot, and the
 * checks at that level: the step refinement (every flushed promise is IncreaseMaxBal, every
 * flushed vote is an enabled VoteFor) and the invariants OneValuePerBallot, OneVote, VotesSafe
 * and PromiseCoversVotes. See proofs/voting-per-slot.md for the proof notes.
 *
 * The acceptors of a slot's instance are the voters of the slot's configuration (config(s) from
 * proofs/configurations.ts; every member when the membership never changes): its quorums, its
 * `chosen` and its ShowsSafeAt count them only, and a vote by anyone else is a violation
 * (VoterOfTheSlot), as is a vote at a slot whose configuration is not determined yet.
 *
 * The abstraction function, as in Paxos.tla's `V == INSTANCE Voting`:
 *   votes[a][slot] == {<<ballotToNat(b), v>> : a flushed a vote record (slot, b, v)}  (a history
 *                     variable: the ghost of every vote ever made durable, never forgotten)
 *   maxBal[a]      == ballotToNat of the highest ballot in a's flushed promise and vote records
 *                     (exactly what `Recover` rebuilds; a crash never lowers it)
 * Ballot == Nat through `ballotToNat`, which preserves the order of (round, replica) ballots.
 *
 * Incremental: each flushed record is checked against the ghost state just before it, so a
 * check costs O(quorums x acceptors) per vote, never a pass over the whole history. The
 * enabling condition of VoteFor is Voting.tla's, with ShowsSafeAt decided per quorum from the
 * highest vote below b (the only possible witness c: a lower one has a vote of Q in between).
 */
import {
  ballotToNat,
  showBallot,
  valuesEqual,
  type Ballot,
  type DurableRecord,
  type ReplicaId,
  type Value,
} from "../impl/core/testing/index.ts";
import { fmix32, fnv1a, fnvOffsetBasis, murmurRound } from "../spec/hash.ts";
import { heldKey, heldWithKey } from "./held.ts";
import { violated, type Fingerprint, type Tally } from "./violation.ts";

/**
 * One ballot's votes at one slot: its single value (OneValuePerBallot) and who voted. The value is
 * held (proofs/held.ts): its long strings as their digests, as is its key.
 */
interface BallotVotes<I> {
  readonly key: string;
  readonly value: Value<I>;
  /** Bit per acceptor index. */
  voters: number;
  count: number;
}

/** The ghost votes of one slot. */
export interface SlotVotes<I> {
  /** The acceptors of this slot's instance: the voters of its configuration, as a bit per acceptor index. */
  readonly acceptors: number;
  /** Majority of them. */
  readonly quorum: number;
  /** Every quorum of them (bit masks over acceptor indices). */
  readonly quorums: readonly number[];
  /** Per acceptor: the ballots it voted in here, ascending. */
  readonly byAcceptor: number[][];
  readonly byBallot: Map<number, BallotVotes<I>>;
  /** The ballot and value chosen here (held), once a quorum voted for one value in one ballot. */
  chosen: { readonly ballot: number; readonly key: string; readonly value: Value<I> } | undefined;
  /** What `VotingGhost.fingerprint` feeds for this slot, memoized; cleared whenever a vote is recorded here. */
  digest: number[] | undefined;
}

/**
 * A value chosen at a slot: what the Consensus level is told. `value` is whole (the value of the
 * vote that completed the quorum), `key` its held key.
 */
export interface ChosenEvent<I> {
  readonly slot: number;
  readonly ballot: number;
  readonly key: string;
  readonly value: Value<I>;
}

/**
 * A slot's votes as numbers: per ballot, ascending, the ballot, its value's key as two 32-bit
 * string hashes (FNV-1a-like, with two seeds and multipliers), and its voters.
 */
function slotDigest<I>(sv: SlotVotes<I>): number[] {
  const ballots = [...sv.byBallot.keys()].sort((x, y) => x - y);
  const out = [ballots.length];
  for (const b of ballots) {
    const e = sv.byBallot.get(b)!;
    out.push(b, stringHash(e.key, 0x811c9dc5, 0x01000193), stringHash(e.key, 0x9747b28c, 0x5bd1e995), e.voters);
  }
  return out;
}

/**
 * A list of numbers as two 32-bit lanes (murmur3 rounds seeded apart, the second also mixing in
 * each position, and murmur3's finalizer): 64 bits for the explorer's state key, whose collision
 * bound covers them as it covers the rest of the key. A number that is no 32-bit integer is folded
 * by its decimal text.
 */
function fold(xs: readonly number[]): readonly [number, number] {
  let a = 0x9747b28c | 0;
  let b = 0x5bd1e995 | 0;
  let n = 0;
  const word = (k: number): void => {
    a = murmurRound(a, k);
    b = murmurRound(b, (k ^ Math.imul(++n, 0x9e3779b9)) | 0);
  };
  for (const x of xs) {
    if ((x | 0) === x) word(x);
    else {
      word(0x7fffffff);
      word(fnv1a(fnvOffsetBasis, String(x)));
    }
  }
  return [fmix32(a ^ n), fmix32(b ^ Math.imul(n, 0x85ebca6b))];
}

function stringHash(s: string, seed: number, prime: number): number {
  let h = seed | 0;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), prime);
  return (h ^ (h >>> 15)) | 0;
}

/**
 * A canonical key for a slot value (plain data, built by the core in a fixed field order): its JSON,
 * long strings held by their digest (proofs/held.ts `heldKey`), the same for the value and its held form.
 */
export function valueKey<I>(v: Value<I>): string {
  return heldKey(v);
}

/** Every set of `size` members (as bitmasks): the smallest majorities are the quorums. */
export function quorumMasks(members: number, size: number): number[] {
  const out: number[] = [];
  for (let mask = 0; mask < 1 << members; mask++) {
    let bits = 0;
    for (let x = mask; x !== 0; x &= x - 1) bits++;
    if (bits === size) out.push(mask);
  }
  return out;
}

/** The quorums (bit masks) of the acceptors in `acceptors` (a bit mask): every majority of them, smallest ones only. */
export function quorumsOf(acceptors: number, n: number): { quorum: number; quorums: number[] } {
  const members: number[] = [];
  for (let a = 0; a < n; a++) if ((acceptors & (1 << a)) !== 0) members.push(a);
  const quorum = Math.floor(members.length / 2) + 1;
  const quorums = quorumMasks(members.length, quorum).map((local) => {
    let mask = 0;
    for (let k = 0; k < members.length; k++) if ((local & (1 << k)) !== 0) mask |= 1 << members[k]!;
    return mask;
  });
  return { quorum, quorums };
}

/**
 * The Voting-per-slot ghost: maxBal per acceptor and every vote ever made durable. The acceptors
 * are every replica of the world (`members`, the universe); each slot's instance has as its own
 * acceptors the voters of the slot's configuration (`votersOf`, from proofs/configurations.ts;
 * every member when absent: a membership that never changes).
 */
export class VotingGhost<I> {
  readonly maxBal: number[];
  get slots(): ReadonlyMap<number, SlotVotes<I>> {
    return this.bySlot;
  }
  private bySlot = new Map<number, SlotVotes<I>>();
  /** `bySlot` itself is shared with a fork (or the ghost forked from): copy it before adding or replacing a slot. */
  private slotsShared = false;
  /** Votes recorded for the durability checks: "a:slot:ballot". */
  private durableVotes = new Set<string>();
  /** `durableVotes` is shared with a fork: copy it before adding. */
  private durableShared = false;
  /** The slots whose votes this ghost may change in place (the rest may be shared with a fork). */
  private readonly owned = new Set<number>();
  private readonly n: number;
  private quorumCache = new Map<number, { quorum: number; quorums: number[] }>();
  /**
   * `fingerprint`'s numbers folded into 64 bits, kept until the ghost changes (null: to be folded
   * again). A fork takes its parent's: most steps change no vote and no promise.
   */
  private printed: readonly [number, number] | null = null;
  /** The keys of `slots`, ascending (null: to be sorted again); shared with a fork until either adds a slot. */
  private slotOrder: number[] | null = null;

  constructor(
    readonly members: readonly ReplicaId[],
    private readonly tally: Tally,
    private readonly onChosen: (e: ChosenEvent<I>) => void,
    private readonly votersOf: (slot: number) => readonly ReplicaId[] | undefined = () => members,
  ) {
    this.n = members.length;
    this.maxBal = new Array<number>(this.n).fill(-1);
  }

  /**
   * Take over `other`'s ghost state (a ghost of the same members): maxBal, every vote and what was
   * chosen, copied so that the two evolve apart from here. The exhaustive explorer forks the
   * checker with every state it branches from; the callbacks stay this ghost's own.
   */
  copyFrom(other: VotingGhost<I>): void {
    for (let a = 0; a < this.n; a++) this.maxBal[a] = other.maxBal[a]!;
    // Copy on write: the two ghosts share every slot's votes and the durable votes until one of
    // them records a vote there (most steps record none, and a fork per explored state must not
    // copy the whole history).
    this.bySlot = other.bySlot;
    this.slotsShared = other.slotsShared = true;
    this.slotOrder = other.slotOrder;
    this.printed = other.printed;
    this.owned.clear();
    other.owned.clear();
    this.durableVotes = other.durableVotes;
    this.durableShared = true;
    other.durableShared = true;
    this.quorumCache = other.quorumCache;
  }

  /** Put `sv` at slot `s` (the map is copied first if a fork shares it). */
  private setSlot(s: number, sv: SlotVotes<I>): void {
    if (this.slotsShared) {
      this.bySlot = new Map(this.bySlot);
      this.slotsShared = false;
    }
    this.bySlot.set(s, sv);
    this.printed = null;
  }

  /** Slot `s`'s votes, this ghost's own to change (copied first if it shares them with a fork). */
  private ownSlot(s: number): SlotVotes<I> {
    const shared = this.slots.get(s);
    if (shared === undefined || this.owned.has(s)) return this.slot(s);
    const byBallot = new Map<number, BallotVotes<I>>();
    for (const [b, e] of shared.byBallot)
      byBallot.set(b, { key: e.key, value: e.value, voters: e.voters, count: e.count });
    const sv: SlotVotes<I> = { ...shared, byAcceptor: shared.byAcceptor.map((bs) => bs.slice()), byBallot };
    this.setSlot(s, sv);
    this.owned.add(s);
    return sv;
  }

  /**
   * Feed every part of the ghost a later check can read into `f`: maxBal per acceptor and, per
   * slot in ascending order, each ballot's value and voters. Two states with the same concrete
   * state and the same fingerprint get the same verdicts from here on.
   */
  fingerprint(f: Fingerprint): void {
    const printed = (this.printed ??= fold(this.print()));
    f.num(printed[0]);
    f.num(printed[1]);
  }

  /** What `fingerprint` feeds, as one list of numbers. */
  private print(): number[] {
    const out = this.maxBal.slice();
    const slots = (this.slotOrder ??= [...this.slots.keys()].sort((x, y) => x - y));
    out.push(slots.length);
    for (const slot of slots) {
      const sv = this.slots.get(slot)!;
      out.push(slot);
      for (const x of (sv.digest ??= slotDigest(sv))) out.push(x);
    }
    return out;
  }

  /** The acceptors (bit mask) of slot `slot`'s instance, or undefined while its configuration is not determined. */
  acceptorsOf(slot: number): number | undefined {
    const voters = this.votersOf(slot);
    if (voters === undefined) return undefined;
    let mask = 0;
    for (const v of voters) {
      const a = this.members.indexOf(v);
      if (a < 0) throw new Error(`voter ${v} of slot ${slot} is no replica of the world`);
      mask |= 1 << a;
    }
    return mask;
  }

  /**
   * `ballotToNat(b, members)`, with the members' ranks looked up rather than sorted again on every
   * call (the Voting ghost maps every flushed record's ballot: it was 5% of a campaign's time).
   */
  nat(b: Ballot): number {
    if (this.ranks === null || this.ranksOf !== this.members.length) {
      const sorted = [...this.members].sort((x, y) => x - y);
      this.ranks = new Map(sorted.map((id, k) => [id, k]));
      this.ranksOf = this.members.length;
    }
    const rank = this.ranks.get(b.replica);
    // Ballot zero, and a replica that is no member (ballotToNat's error), as ballotToNat says.
    if (rank === undefined || b.round === 0) return ballotToNat(b, this.members);
    return (b.round - 1) * this.ranksOf + rank;
  }
  /** Each member's rank among the members sorted ascending (`nat`), for `ranksOf` members. */
  private ranks: Map<ReplicaId, number> | null = null;
  private ranksOf = 0;

  /** True when acceptor `a` has a durable vote at `slot` in `ballot` (Nat). */
  hasDurableVote(a: number, slot: number, ballot: number): boolean {
    return this.durableVotes.has(`${a}:${slot}:${ballot}`);
  }

  /**
   * The value of acceptor `a`'s durable vote at `slot` in `ballot` (held: proofs/held.ts), or
   * undefined when it has none there.
   */
  durableVoteValue(a: number, slot: number, ballot: Ballot): Value<I> | undefined {
    const b = this.nat(ballot);
    if (!this.hasDurableVote(a, slot, b)) return undefined;
    return this.slots.get(slot)?.byBallot.get(b)?.value;
  }

  slot(s: number): SlotVotes<I> {
    let sv = this.slots.get(s);
    if (sv === undefined) {
      const acceptors = this.acceptorsOf(s);
      if (acceptors === undefined) {
        violated({
          check: "ProposalInKnownConfiguration",
          level: "Configuration",
          message: `a vote at slot ${s}, whose configuration the chosen prefix does not determine yet: its leader proposed beyond the alpha window (rule R2)`,
        });
      }
      let q = this.quorumCache.get(acceptors);
      if (q === undefined) {
        q = quorumsOf(acceptors, this.n);
        this.quorumCache.set(acceptors, q);
      }
      sv = {
        acceptors,
        quorum: q.quorum,
        quorums: q.quorums,
        byAcceptor: Array.from({ length: this.n }, () => []),
        byBallot: new Map(),
        chosen: undefined,
        digest: undefined,
      };
      this.setSlot(s, sv);
      this.slotOrder = null;
      this.owned.add(s);
    }
    return sv;
  }

  /** Consume one record acceptor `a` flushed: one Voting action (or a stutter) in each slot's instance. */
  flushed(a: number, record: DurableRecord<I>): void {
    switch (record._tag) {
      case "promise":
        this.promise(a, this.nat(record.ballot));
        return;
      case "vote":
        this.vote(a, record.slot, this.nat(record.ballot), record.ballot, record.value);
        return;
      case "chosen":
        if (!("value" in record)) this.votedValue(a, record.slot, record.ballot);
        return;
      case "handOver":
        return;
    }
  }

  /**
   * The value of acceptor `a`'s durable vote at `slot` in `ballot`, which a chosen record of `a`
   * names instead of repeating it (ChosenNamesDurableVote). The vote must be `a`'s last durable
   * vote at the slot, as `Recover` resolves the reference against the last vote record before it:
   * without that vote on disk, or with a later vote at the slot in another ballot, the record
   * could not be recovered. (An acceptor's votes at a slot come in ascending ballots, so its last
   * is its highest.) The value is held (proofs/held.ts).
   */
  votedValue(a: number, slot: number, ballot: Ballot): Value<I> {
    const b = this.nat(ballot);
    const sv = this.slots.get(slot);
    const inBallot = sv?.byBallot.get(b);
    const mine = sv?.byAcceptor[a] ?? [];
    const last = mine.length === 0 ? undefined : mine[mine.length - 1];
    if (inBallot === undefined || !this.hasDurableVote(a, slot, b) || last !== b) {
      violated({
        check: "ChosenNamesDurableVote",
        level: "Consensus",
        message: `acceptor a${a + 1} (replica ${this.members[a]}) wrote a chosen record at slot ${slot} naming its vote in ballot ${showBallot(ballot)}, but ${last === undefined || !this.hasDurableVote(a, slot, b) ? "it has no durable vote there" : `its last durable vote there is in ballot ${last}, above ${b}=${showBallot(ballot)}`}`,
      });
    }
    return inBallot.value;
  }

  /**
   * IncreaseMaxBal(a, b) in every slot's instance: enabled iff b > maxBal[a]; a promise of b <= maxBal is a stutter.
   */
  private promise(a: number, b: number): void {
    if (b <= this.maxBal[a]!) {
      this.tally.add("Voting: stutter (promise already covered)");
      return;
    }
    this.maxBal[a] = b;
    this.printed = null;
    this.tally.add("Voting: IncreaseMaxBal");
  }

  private vote(a: number, slot: number, b: number, ballot: Ballot, value: Value<I>): void {
    const sv = this.ownSlot(slot);
    // What the ghost keeps of the value past this step: its long strings as digests.
    const kept = heldWithKey(value);
    const held = kept.held;
    let key = kept.key;
    const inBallot = sv.byBallot.get(b);
    if (inBallot !== undefined && inBallot.key !== key && valuesEqual(inBallot.value, held)) key = inBallot.key;
    const action = `VoteFor(a${a + 1}, ${b}=${showBallot(ballot)}, ${key})`;
    if ((sv.acceptors & (1 << a)) === 0) {
      violated({
        check: "VoterOfTheSlot",
        level: "Configuration",
        message: `replica ${this.members[a]} voted at slot ${slot} in ballot ${showBallot(ballot)}, but it is no voter of the slot's configuration: no leader may ask it to`,
        action,
      });
    }
    const mine = sv.byAcceptor[a]!;
    if (mine.includes(b)) {
      if (inBallot !== undefined && inBallot.key === key) {
        this.tally.add("Voting: stutter (vote already durable)");
        return;
      }
      violated({
        check: "OneVote",
        level: "Voting",
        message: `acceptor a${a + 1} (replica ${this.members[a]}) voted twice in ballot ${showBallot(ballot)} at slot ${slot}, for different values`,
        before: this.show(slot),
        action,
      });
    }
    if (inBallot !== undefined && inBallot.key !== key) {
      violated({
        check: "OneValuePerBallot",
        level: "Voting",
        message: `slot ${slot}, ballot ${showBallot(ballot)}: acceptor a${a + 1} votes for ${key} but others voted for ${inBallot.key}`,
        before: this.show(slot),
        action,
      });
    }
    if (this.maxBal[a]! > b) {
      violated({
        check: `refines Voting[slot ${slot}]`,
        level: "Voting",
        message: `acceptor a${a + 1} (replica ${this.members[a]}) voted in ballot ${b}=${showBallot(ballot)} below its maxBal ${this.maxBal[a]}: VoteFor requires maxBal[a] <= b`,
        before: this.show(slot),
        after: this.showAfterVote(slot, a, b, key, value),
        action,
      });
    }
    if (!this.showsSafe(sv, b, key)) {
      violated({
        check: `refines Voting[slot ${slot}]`,
        level: "Voting",
        message: `acceptor a${a + 1} voted for ${key} in ballot ${b}=${showBallot(ballot)} at slot ${slot}, but no quorum Q satisfies ShowsSafeAt(Q, ${b}, v): VoteFor is not enabled`,
        before: this.show(slot),
        after: this.showAfterVote(slot, a, b, key, value),
        action,
      });
    }
    // Apply VoteFor(a, b, v): votes[a] gains <<b, v>>, maxBal[a] := b.
    insertSorted(mine, b);
    let entry = inBallot;
    if (entry === undefined) {
      entry = { key, value: held, voters: 0, count: 0 };
      sv.byBallot.set(b, entry);
    }
    entry.voters |= 1 << a;
    entry.count++;
    sv.digest = undefined;
    this.maxBal[a] = b;
    this.printed = null;
    if (this.durableShared) {
      this.durableVotes = new Set(this.durableVotes);
      this.durableShared = false;
    }
    this.durableVotes.add(`${a}:${slot}:${b}`);
    this.tally.add("Voting: VoteFor");
    this.checkVotesSafe(slot, sv, b);
    if (entry.count >= sv.quorum && sv.chosen === undefined) {
      sv.chosen = { ballot: b, key, value: held };
      this.onChosen({ slot, ballot: b, key, value });
    } else if (entry.count >= sv.quorum && sv.chosen !== undefined && sv.chosen.key !== key) {
      this.onChosen({ slot, ballot: b, key, value });
    }
  }

  /** \E Q \in Quorum : ShowsSafeAt(Q, b, v), evaluated on the ghost state (see the module comment). */
  showsSafe(sv: SlotVotes<I>, b: number, key: string): boolean {
    for (const q of sv.quorums) {
      let promised = true;
      let cstar = -1;
      for (let a = 0; a < this.n; a++) {
        if ((q & (1 << a)) === 0) continue;
        if (this.maxBal[a]! < b) {
          promised = false;
          break;
        }
        const c = highestBelow(sv.byAcceptor[a]!, b);
        if (c > cstar) cstar = c;
      }
      if (!promised) continue;
      if (cstar < 0) return true;
      const at = sv.byBallot.get(cstar)!;
      if (at.key === key && (at.voters & q) !== 0) return true;
    }
    return false;
  }

  /**
   * The quorum-th largest maxBal among the slot's acceptors: a ballot c with no votes there satisfies
   * NoneOtherChoosableAt(c, v) iff c < it.
   */
  private quorumMaxBal(sv: SlotVotes<I>): number {
    const sorted = this.maxBal.filter((_, a) => (sv.acceptors & (1 << a)) !== 0).sort((x, y) => y - x);
    return sorted[sv.quorum - 1]!;
  }

  /**
   * SafeAt(b, v) == \A c \in 0..(b-1) : NoneOtherChoosableAt(c, v), at one slot, on the ghost state.
   * Returns undefined when safe, else the ballot c that breaks it.
   */
  safeAt(sv: SlotVotes<I>, b: number, key: string): number | undefined {
    const m = this.quorumMaxBal(sv);
    let votedInRange = 0;
    for (const [c, entry] of sv.byBallot) {
      if (c >= b) continue;
      if (c >= m) votedInRange++;
      let ok = 0;
      for (let a = 0; a < this.n; a++) {
        if ((sv.acceptors & (1 << a)) === 0) continue;
        const voted = (entry.voters & (1 << a)) !== 0;
        if (entry.key === key ? voted || this.maxBal[a]! > c : !voted && this.maxBal[a]! > c) ok++;
      }
      if (ok < sv.quorum) return c;
    }
    // Ballots with no vote here: every c in [max(m, 0), b - 1] must carry votes (checked above).
    const first = Math.max(m, 0);
    if (b - 1 >= first && votedInRange < b - first) {
      for (let c = b - 1; c >= first; c--) if (!sv.byBallot.has(c)) return c;
    }
    return undefined;
  }

  /** VotesSafe at `slot` for every vote in a ballot >= `from` (the only ones a new vote in `from` can affect). */
  private checkVotesSafe(slot: number, sv: SlotVotes<I>, from: number): void {
    for (const [b, entry] of sv.byBallot) {
      if (b < from) continue;
      const c = this.safeAt(sv, b, entry.key);
      if (c !== undefined) {
        violated({
          check: "VotesSafe",
          level: "Voting",
          message: `slot ${slot}: the vote for ${entry.key} in ballot ${b} is not safe: NoneOtherChoosableAt(${c}, v) is false (a value other than it may be chosen in ballot ${c})`,
          before: this.show(slot),
        });
      }
    }
  }

  /** The slot's Voting state, printed as TLC prints Voting's variables. */
  show(slot: number): string {
    const sv = this.slot(slot);
    return this.render(sv, this.maxBal);
  }

  private showAfterVote(slot: number, a: number, b: number, key: string, value: Value<I>): string {
    const sv = this.slot(slot);
    const copy: SlotVotes<I> = {
      ...sv,
      byAcceptor: sv.byAcceptor.map((x) => x.slice()),
      byBallot: new Map([...sv.byBallot].map(([k, e]) => [k, { ...e }])),
    };
    insertSorted(copy.byAcceptor[a]!, b);
    const e = copy.byBallot.get(b) ?? { key, value, voters: 0, count: 0 };
    e.voters |= 1 << a;
    copy.byBallot.set(b, e);
    const maxBal = this.maxBal.slice();
    maxBal[a] = b;
    return this.render(copy, maxBal);
  }

  private render(sv: SlotVotes<I>, maxBal: readonly number[]): string {
    const names = new Map<string, string>();
    for (const [, e] of [...sv.byBallot].sort(([x], [y]) => x - y))
      if (!names.has(e.key)) names.set(e.key, `v${names.size + 1}`);
    const votes = sv.byAcceptor.map((bs, a) => {
      const pairs = bs.map((b) => `<<${b}, ${names.get(sv.byBallot.get(b)!.key)}>>`);
      return `a${a + 1} :> {${pairs.join(", ")}}`;
    });
    const legend = [...names].map(([k, v]) => `   ${v} = ${k}`);
    return [
      `/\\ votes = (${votes.join(" @@ ")})`,
      `/\\ maxBal = (${maxBal.map((b, a) => `a${a + 1} :> ${b}`).join(" @@ ")})`,
      ...legend,
    ].join("\n");
  }
}

function insertSorted(xs: number[], x: number): void {
  let i = xs.length;
  while (i > 0 && xs[i - 1]! > x) i--;
  xs.splice(i, 0, x);
}

/** The highest ballot in ascending `xs` below `b`, or -1. */
function highestBelow(xs: readonly number[], b: number): number {
  for (let i = xs.length - 1; i >= 0; i--) if (xs[i]! < b) return xs[i]!;
  return -1;
}

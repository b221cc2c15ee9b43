/**
 * Ballots: the totally ordered numbers that Paxos leaders lead and acceptors promise. A ballot
 * is a pair (round, replica), compared by round and then by replica id, so that two replicas
 * never lead the same ballot. Lamport's `Voting.tla` takes `Ballot == Nat`; `ballotToNat` is the
 * order-preserving injection the refinement to Voting uses.
 *
 * Pure values and functions only; this module must never hold state.
 */
import { Schema } from "effect";
import type { ReplicaId } from "./events.ts";

/** A ballot: `round` >= 1 for every real ballot; `replica` is the id of the replica leading it. */
export interface Ballot {
  readonly round: number;
  readonly replica: ReplicaId;
}

/** The wire and disk form of a ballot. Round 0 is allowed only together with replica 0 (`ballotZero`). */
export const Ballot: Schema.Schema<Ballot> = Schema.Struct({
  round: Schema.Int.pipe(Schema.nonNegative()),
  replica: Schema.Int.pipe(Schema.nonNegative()),
}).pipe(
  Schema.filter((b) =>
    (b.round === 0) === (b.replica === 0)
      ? undefined
      : "round 0 is reserved for ballotZero (0, 0); a real ballot has round >= 1 and replica >= 1",
  ),
);

/**
 * The ballot below every real ballot: what an acceptor has promised before it promised anything.
 * It plays the part of Lamport's `-1` (`maxBal[a] = -1` in `Voting.tla` and `Paxos.tla`).
 */
export const ballotZero: Ballot = { round: 0, replica: 0 };

/** Negative when a < b, zero when equal, positive when a > b: by round, then by replica id. */
export function compareBallots(a: Ballot, b: Ballot): number {
  if (a.round !== b.round) return a.round - b.round;
  return a.replica - b.replica;
}

/** True for `ballotZero`, the "no ballot" value. */
export function isBallotZero(b: Ballot): boolean {
  return b.round === 0 && b.replica === 0;
}

/**
 * The order-preserving injection of ballots into Lamport's `Ballot == Nat` (`Voting.tla`):
 * `(round, replica)` maps to `(round - 1) * N + index(replica)`, where `index` is the position of
 * the replica in the sorted member list and N the number of members. `ballotZero` maps to -1,
 * Lamport's "no ballot". For ballots of members, a < b exactly when ballotToNat(a) < ballotToNat(b).
 */
export function ballotToNat(b: Ballot, replicaIds: readonly ReplicaId[]): number {
  if (isBallotZero(b)) return -1;
  const sorted = [...replicaIds].sort((x, y) => x - y);
  const index = sorted.indexOf(b.replica);
  if (index < 0)
    throw new Error(
      `ballotToNat: replica ${b.replica} of ballot ${showBallot(b)} is not a member (${sorted.join(",")})`,
    );
  return (b.round - 1) * sorted.length + index;
}

/** `(round,replica)`, as traces and golden files print it. */
export function showBallot(b: Ballot): string {
  return `(${b.round},${b.replica})`;
}

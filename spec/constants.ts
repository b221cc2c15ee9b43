/**
 * The constant parameters shared by Lamport's `Voting.tla` and `Paxos.tla`: the sets Acceptor,
 * Value and Quorum, and the finite set of ballots TLC substitutes for `Ballot == Nat`
 * (`Ballot <- MCBallot` with `MCBallot == 0..MaxBallot` in MCVoting.cfg and MCPaxos.cfg).
 *
 * Acceptors and values are small integers, printed as `a1, a2, ...` and `v1, v2, ...` as in
 * MCVoting.tla. Quorums default to the smallest majorities, which is MCVoting's
 * `MCQuorum == {{a1, a2}, {a1, a3}, {a2, a3}}` for three acceptors and MCPaxos's `{{a1}}` for
 * one. `resolveConstants` checks the module's ASSUME (QuorumAssumption) and the limits of
 * the compact state encodings, and throws a RangeError that says which one failed.
 *
 * Pure; imports nothing of the project.
 */

/** The constants as a caller gives them. */
export interface BallotConstants {
  /** |Acceptor|: the acceptors are a1 .. aN. */
  readonly acceptors: number;
  /** |Value|: the values are v1 .. vN. */
  readonly values: number;
  /** Ballot == 0..maxBallot. */
  readonly maxBallot: number;
  /**
   * Quorum, as lists of acceptor indices (0-based: a1 is 0). Default: every set of
   * floor(N/2) + 1 acceptors (the smallest majorities).
   */
  readonly quorums?: readonly (readonly number[])[];
}

/** The constants after validation, with derived tables. */
export interface Constants {
  readonly acceptors: number;
  readonly values: number;
  readonly maxBallot: number;
  /** |Ballot| = maxBallot + 1. */
  readonly ballots: number;
  /** Each quorum as a sorted list of acceptor indices. */
  readonly quorums: readonly (readonly number[])[];
}

/** Encoding limits: bit fields in the compact states and quorums as 16-bit masks. */
export const acceptorsMax = 15;
export const valuesMax = 30;
export const maxBallotMax = 30;

/** Every set of floor(n/2) + 1 of the acceptors 0..n-1 (the smallest majorities), in lexicographic order. */
export function majorityQuorums(n: number): number[][] {
  return subsetsOfSize(n, Math.floor(n / 2) + 1);
}

/** Every set of `size` of the acceptors 0..n-1, as sorted lists, in lexicographic order. */
export function subsetsOfSize(n: number, size: number): number[][] {
  const out: number[][] = [];
  const pick = (start: number, chosen: number[]): void => {
    if (chosen.length === size) {
      out.push(chosen);
      return;
    }
    for (let a = start; a < n; a++) pick(a + 1, [...chosen, a]);
  };
  pick(0, []);
  return out;
}

function requireInt(what: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value)) throw new RangeError(`${what} must be an integer, got ${value}`);
  if (value < min || value > max) throw new RangeError(`${what} must be between ${min} and ${max}, got ${value}`);
}

/**
 * Validate the constants and fill in defaults. Checks QuorumAssumption of Voting.tla:
 * every quorum is a non-empty subset of Acceptor and any two quorums intersect.
 */
export function resolveConstants(c: BallotConstants): Constants {
  requireInt("acceptors", c.acceptors, 1, acceptorsMax);
  requireInt("values", c.values, 1, valuesMax);
  requireInt("maxBallot", c.maxBallot, 0, maxBallotMax);
  const quorums = (c.quorums ?? majorityQuorums(c.acceptors)).map((q) => [...new Set(q)].sort((x, y) => x - y));
  if (quorums.length === 0) throw new RangeError("Quorum must not be empty");
  for (const q of quorums) {
    if (q.length === 0) throw new RangeError("every quorum must be non-empty");
    for (const a of q) requireInt("a quorum member", a, 0, c.acceptors - 1);
  }
  for (const q1 of quorums) {
    for (const q2 of quorums) {
      if (!q1.some((a) => q2.includes(a))) {
        throw new RangeError(`QuorumAssumption fails: quorums {${q1.map(acceptorName).join(", ")}} and {${q2.map(acceptorName).join(", ")}} do not intersect`);
      }
    }
  }
  return { acceptors: c.acceptors, values: c.values, maxBallot: c.maxBallot, ballots: c.maxBallot + 1, quorums };
}

/** a1, a2, ... for acceptor indices 0, 1, ... */
export function acceptorName(a: number): string {
  return `a${a + 1}`;
}

/** v1, v2, ... for value indices 0, 1, ... */
export function valueName(v: number): string {
  return `v${v + 1}`;
}

/**
 * The permutations of the acceptors that map Quorum onto itself (all of them for
 * majorities), the identity first. Only these are symmetries of Voting and Paxos.
 */
export function quorumSymmetries(k: Constants): number[][] {
  const keyOf = (q: readonly number[]): string => [...q].sort((x, y) => x - y).join(",");
  const quorums = new Set(k.quorums.map(keyOf));
  return permutations(k.acceptors).filter((perm) => k.quorums.every((q) => quorums.has(keyOf(q.map((a) => perm[a]!)))));
}

/** Every permutation of 0..n-1 (the identity first). */
export function permutations(n: number): number[][] {
  if (n === 0) return [[]];
  const out: number[][] = [];
  for (const rest of permutations(n - 1)) {
    for (let i = rest.length; i >= 0; i--) out.push([...rest.slice(0, i), n - 1, ...rest.slice(i)]);
  }
  return out;
}

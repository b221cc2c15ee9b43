/**
 * Assertions that stay on in production (TigerBeetle style): a violated assertion turns a silent
 * corruption of ballots, slots or quorum counts into a loud stop. They check the implementation's
 * own invariants; the refinement checkers in proofs/ check the spec's.
 *
 * Input from the network or a client is validated and refused, never asserted on, except a
 * message that proves a peer broke the protocol (an Accept against a value this replica knows is
 * chosen, for one): on that the replica fails stop, on purpose (docs/impl.md, section 13).
 */

/** Thrown when the replica finds its own state impossible. Never caught inside impl/core. */
export class AssertionFailure extends Error {
  constructor(message: string) {
    super(`paxos-lease core assertion failed: ${message}`);
    this.name = "AssertionFailure";
  }
}

/** Stop with `message`. */
export function fail(message: string): never {
  throw new AssertionFailure(message);
}

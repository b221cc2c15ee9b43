/**
 * Assertions that stay on in production (TigerBeetle style): a violated assertion turns a silent
 * corruption of ballots, slots or quorum counts into a loud stop. They check the implementation's
 * own invariants; the refinement checkers in proofs/ check the spec's.
 *
 * Never use an assertion for input from the network or a client: those are validated and refused.
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

/**
 * Assert `condition`. On hot paths write `if (!cond) fail(...)` instead, so that the message is
 * built only on failure.
 */
export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) fail(message);
}

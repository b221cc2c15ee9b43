/**
 * What a failed check reports: the invariant or refinement level that failed, a sentence saying
 * what is wrong, and for refinement failures the abstract states before and after the step and
 * the spec action the step should have been. The run harness adds the world step, the trace
 * and the replay command.
 */

/** A failed check. */
export interface Violation {
  /** The invariant's name (`VotesSafe`) or the refinement level (`refines Voting[slot 3]`). */
  readonly check: string;
  /** The family: Voting, Consensus, Service, Durability, Lease, Linearizability, Liveness, Core. */
  readonly level: string;
  readonly message: string;
  /** For refinement failures: the abstract state before the step... */
  readonly before?: string;
  /** ...and after it. */
  readonly after?: string;
  /** The spec action the step maps to, which is not enabled (or "none"). */
  readonly action?: string;
}

/** Thrown inside the checkers to stop at the first violation. */
export class ViolationFound extends Error {
  readonly violation: Violation;
  constructor(violation: Violation) {
    super(`${violation.check}: ${violation.message}`);
    this.violation = violation;
  }
}

/** Stop with a violation. */
export function violated(v: Violation): never {
  throw new ViolationFound(v);
}

/** The name of the check that `f` fails, or "passes" (for tests that show a check has teeth). */
export function checkFailedBy(f: () => void): string {
  try {
    f();
    return "passes";
  } catch (error) {
    if (error instanceof ViolationFound) return error.violation.check;
    throw error;
  }
}

/**
 * A sink for the parts of a checker's ghost state that later checks read (see
 * `WorldChecker.fingerprint`): the exhaustive explorer hashes them into a state's key.
 */
export interface Fingerprint {
  num(x: number): void;
  str(s: string): void;
}

/** Named counters: how often each spec action was matched, how often rare states were reached. */
export class Tally {
  readonly counts = new Map<string, number>();
  /** Told every name added, in order (the trace explorer lists each step's spec actions). Default none. */
  listener: ((name: string) => void) | null = null;
  add(name: string, by = 1): void {
    this.counts.set(name, (this.counts.get(name) ?? 0) + by);
    this.listener?.(name);
  }
  get(name: string): number {
    return this.counts.get(name) ?? 0;
  }
}

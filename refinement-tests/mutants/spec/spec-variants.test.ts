/**
 * Teeth for the specs' checks: every broken variant of a spec (Paxos, the lease) is caught by
 * the explorer, by the invariant or refinement check that names the broken condition, with the
 * shortest trace. One table: each row reads variant, what is checked, expected check, expected
 * trace; the unbroken specs pass the same checks.
 */
import { describe, expect, test } from "vitest";
import { paxosChecks } from "../../../proofs/mappings.ts";
import { explore, formatViolation, type Violation } from "../../../spec/explore.ts";
import type { BallotConstants } from "../../../spec/constants.ts";
import { CompactPaxos } from "../../../spec/compact/paxos.ts";
import { Lease, type LeaseConstants } from "../../../spec/lease.ts";
import { AcquireIgnoringHolder, RenewFromExpiry } from "./lease.ts";
import { Phase1bIgnoringMaxBal, Phase2aIgnoringVotes, Phase2aTwiceInBallot, Phase2bIgnoringMaxBal } from "./paxos.ts";

const paxosConstants: BallotConstants = { acceptors: 3, values: 2, maxBallot: 1 };
const leaseConstants: LeaseConstants = { holders: 2, timeMax: 4, leaseTicks: 2 };

/** An exploration: its first violation, if any, with the trace printed the way a failure prints it. */
type Run = () => { readonly violation: Violation<unknown> | undefined; readonly report: string };

/**
 * A Paxos spec explored with "all" its checks (Inv and both refinements), Paxos => Voting alone
 * ("voting") or Paxos => Consensus alone ("consensus").
 */
function paxos(variant: new (c: BallotConstants) => CompactPaxos, checking: "all" | "voting" | "consensus"): Run {
  return () => {
    const spec = new variant(paxosConstants);
    const [toVoting, toConsensus] = paxosChecks(spec);
    const bounds =
      checking === "all"
        ? { checks: [toVoting!, toConsensus!] }
        : { invariants: [], checks: [checking === "voting" ? toVoting! : toConsensus!] };
    const { violation } = explore(spec, bounds);
    return { violation, report: violation === undefined ? "" : formatViolation(spec, violation) };
  };
}

/** A lease spec explored with its invariants. */
function lease(variant: new (c: LeaseConstants) => Lease): Run {
  return () => {
    const spec = new variant(leaseConstants);
    const { violation } = explore(spec);
    return { violation, report: violation === undefined ? "" : formatViolation(spec, violation) };
  };
}

/**
 * Phase2aIgnoringVotes's way to v2 in ballot 1: v1 is voted in ballot 0 by a2, and the 1b of ballot 1 that reports it
 * is ignored.
 */
const v2OverV1 = [
  "Init",
  "Phase1a(0)",
  "Phase1a(1)",
  "Phase1b(a1) on 1a(0)",
  "Phase1b(a1) on 1a(1)",
  "Phase1b(a2) on 1a(0)",
  "Phase2a(0, v1)",
  "Phase2b(a2) on 2a(0, v1)",
  "Phase1b(a2) on 1a(1)",
  "Phase2a(1, v2)",
];

const broken: readonly (readonly [name: string, run: Run, check: string, trace: readonly string[]])[] = [
  [
    "Phase2a ignoring reported votes breaks Inv!3(2a) once a value other than the voted one is proposed",
    paxos(Phase2aIgnoringVotes, "all"),
    "Inv!3(2a)",
    v2OverV1,
  ],
  [
    "Phase2a ignoring reported votes: the vote for the unsafe value is no Voting step",
    paxos(Phase2aIgnoringVotes, "voting"),
    "Paxos => Voting",
    [...v2OverV1, "Phase2b(a1) on 2a(1, v2)"],
  ],
  [
    // v2 is chosen in ballot 1 by {a1, a2}; then a3's late vote completes {a2, a3} for v1 in ballot 0.
    "Phase2a ignoring reported votes: two values get chosen, which Consensus forbids",
    paxos(Phase2aIgnoringVotes, "consensus"),
    "Paxos => Consensus",
    [...v2OverV1, "Phase2b(a1) on 2a(1, v2)", "Phase2b(a2) on 2a(1, v2)", "Phase2b(a3) on 2a(0, v1)"],
  ],
  [
    "Phase2a twice in a ballot breaks Inv!3(2a) at the second 2a message",
    paxos(Phase2aTwiceInBallot, "all"),
    "Inv!3(2a)",
    ["Init", "Phase1a(0)", "Phase1b(a1) on 1a(0)", "Phase1b(a2) on 1a(0)", "Phase2a(0, v1)", "Phase2a(0, v2)"],
  ],
  [
    "Phase1b ignoring maxBal lowers maxBal, which no Voting action does",
    paxos(Phase1bIgnoringMaxBal, "all"),
    "Paxos => Voting",
    ["Init", "Phase1a(0)", "Phase1a(1)", "Phase1b(a1) on 1a(1)", "Phase1b(a1) on 1a(0)"],
  ],
  [
    "Phase2b ignoring maxBal votes below a promise, which VoteFor forbids",
    paxos(Phase2bIgnoringMaxBal, "all"),
    "Paxos => Voting",
    v2OverV1.slice(0, 7).concat("Phase2b(a1) on 2a(0, v1)"),
  ],
  [
    "Acquire without its guard breaks AtMostOneLeaseholder in two steps",
    lease(AcquireIgnoringHolder),
    "AtMostOneLeaseholder",
    ["Init", "Acquire(p1)", "Acquire(p2)"],
  ],
  [
    "Renew counted from the old expiry breaks LeaseBounded in two steps",
    lease(RenewFromExpiry),
    "LeaseBounded",
    ["Init", "Acquire(p1)", "Renew(p1)"],
  ],
];

describe("broken spec variants", () => {
  test.each(broken)("%s", (_, run, check, trace) => {
    const { violation, report } = run();
    expect(violation, "the explorer must catch the broken variant").toBeDefined();
    expect(violation!.check).toBe(check);
    expect(violation!.trace.map((t) => t.action)).toEqual(trace);
    expect(report).toContain(`Shortest trace (${trace.length} states)`);
  });

  test.each([
    ["Paxos", paxos(CompactPaxos, "all")],
    ["the lease", lease(Lease)],
  ] as const)("%s unbroken passes the same checks", (_, run) => {
    expect(run().violation).toBeUndefined();
  });
});

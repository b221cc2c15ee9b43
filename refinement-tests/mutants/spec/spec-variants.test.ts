/**
 * Teeth for the specs' checks: every broken variant of a spec (Paxos, the lease) is caught by
 * the explorer, by the invariant or refinement check that names the broken condition, with the
 * shortest trace. Each scenario reads: variant, what is checked, expected check, expected trace.
 */
import { describe, expect, test } from "vitest";
import { paxosChecks } from "../../../proofs/mappings.ts";
import { explore, formatViolation } from "../../../spec/explore.ts";
import type { BallotConstants } from "../../../spec/constants.ts";
import { CompactPaxos } from "../../../spec/compact/paxos.ts";
import { Lease } from "../../../spec/lease.ts";
import { AcquireIgnoringHolder, RenewFromExpiry } from "./lease.ts";
import { Phase1bIgnoringMaxBal, Phase2aIgnoringVotes, Phase2aTwiceInBallot, Phase2bIgnoringMaxBal } from "./paxos.ts";

const constants: BallotConstants = { acceptors: 3, values: 2, maxBallot: 1 };

interface Scenario {
  readonly variant: new (c: BallotConstants) => CompactPaxos;
  /** "all": Inv and both refinements; "refinement": Paxos => Voting only; "consensus": Paxos => Consensus only. */
  readonly checking: "all" | "refinement" | "consensus";
  readonly check: string;
  readonly trace: readonly string[];
}

const scenarios: Record<string, Scenario> = {
  "Phase2a ignoring reported votes breaks Inv!3(2a) once a value other than the voted one is proposed": {
    variant: Phase2aIgnoringVotes,
    checking: "all",
    check: "Inv!3(2a)",
    trace: [
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
    ],
  },
  "Phase2a ignoring reported votes: the vote for the unsafe value is no Voting step": {
    variant: Phase2aIgnoringVotes,
    checking: "refinement",
    check: "Paxos => Voting",
    trace: [
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
      "Phase2b(a1) on 2a(1, v2)",
    ],
  },
  "Phase2a ignoring reported votes: two values get chosen, which Consensus forbids": {
    variant: Phase2aIgnoringVotes,
    checking: "consensus",
    check: "Paxos => Consensus",
    // v2 is chosen in ballot 1 by {a1, a2}; then a3's late vote completes {a2, a3} for v1 in ballot 0.
    trace: [
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
      "Phase2b(a1) on 2a(1, v2)",
      "Phase2b(a2) on 2a(1, v2)",
      "Phase2b(a3) on 2a(0, v1)",
    ],
  },
  "Phase2a twice in a ballot breaks Inv!3(2a) at the second 2a message": {
    variant: Phase2aTwiceInBallot,
    checking: "all",
    check: "Inv!3(2a)",
    trace: ["Init", "Phase1a(0)", "Phase1b(a1) on 1a(0)", "Phase1b(a2) on 1a(0)", "Phase2a(0, v1)", "Phase2a(0, v2)"],
  },
  "Phase1b ignoring maxBal lowers maxBal, which no Voting action does": {
    variant: Phase1bIgnoringMaxBal,
    checking: "all",
    check: "Paxos => Voting",
    trace: ["Init", "Phase1a(0)", "Phase1a(1)", "Phase1b(a1) on 1a(1)", "Phase1b(a1) on 1a(0)"],
  },
  "Phase2b ignoring maxBal votes below a promise, which VoteFor forbids": {
    variant: Phase2bIgnoringMaxBal,
    checking: "all",
    check: "Paxos => Voting",
    trace: [
      "Init",
      "Phase1a(0)",
      "Phase1a(1)",
      "Phase1b(a1) on 1a(0)",
      "Phase1b(a1) on 1a(1)",
      "Phase1b(a2) on 1a(0)",
      "Phase2a(0, v1)",
      "Phase2b(a1) on 2a(0, v1)",
    ],
  },
};

describe("broken Paxos variants", () => {
  test.each(Object.entries(scenarios))("%s", (_, scenario) => {
    const spec = new scenario.variant(constants);
    const [toVoting, toConsensus] = paxosChecks(spec);
    const bounds =
      scenario.checking === "all"
        ? { checks: [toVoting!, toConsensus!] }
        : { invariants: [], checks: [scenario.checking === "refinement" ? toVoting! : toConsensus!] };
    const r = explore(spec, bounds);
    expect(r.violation, "the explorer must catch the broken variant").toBeDefined();
    expect(r.violation!.check).toBe(scenario.check);
    expect(r.violation!.trace.map((t) => t.action)).toEqual(scenario.trace);
    expect(formatViolation(spec, r.violation!)).toContain(`Shortest trace (${scenario.trace.length} states)`);
  });

  test("the unbroken spec passes the same checks", () => {
    const spec = new CompactPaxos(constants);
    expect(explore(spec, { checks: paxosChecks(spec) }).violation).toBeUndefined();
  });
});

describe("broken lease variants", () => {
  const constants = { holders: 2, timeMax: 4, leaseTicks: 2 };

  test("Acquire without its guard breaks AtMostOneLeaseholder in two steps", () => {
    const r = explore(new AcquireIgnoringHolder(constants));
    expect(r.violation?.check).toBe("AtMostOneLeaseholder");
    expect(r.violation?.trace.map((t) => t.action)).toEqual(["Init", "Acquire(p1)", "Acquire(p2)"]);
  });

  test("Renew counted from the old expiry breaks LeaseBounded in two steps", () => {
    const r = explore(new RenewFromExpiry(constants));
    expect(r.violation?.check).toBe("LeaseBounded");
    expect(r.violation?.trace.map((t) => t.action)).toEqual(["Init", "Acquire(p1)", "Renew(p1)"]);
  });

  test("the unbroken spec passes the same checks", () => {
    expect(explore(new Lease(constants)).violation).toBeUndefined();
  });
});

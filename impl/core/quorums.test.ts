/**
 * Counting by configuration (quorums.ts): phase 1 covers a slot only with a quorum of the voters
 * of its configuration whose Promises report that slot (rule T2); a lease needs a quorum of the
 * configuration governing the next slot; per-peer bookkeeping survives a change of the peer list; and a
 * leader that only truncated acceptors could cover knows it must catch up (stalledBehind).
 */
import { describe, expect, it } from "vitest";
import type { Configuration } from "./configuration.ts";
import { stalledBehind } from "./leader.ts";
import { leaseFromConfiguration } from "./lease.ts";
import { carryOver, carryOverMask, phase1Covers } from "./quorums.ts";
import { defaultRules } from "./rules.ts";
import type { Leader, PhaseOneOf } from "./state.ts";
import { Cluster } from "./testing/cluster.ts";

const c123: Configuration = { epoch: 0, governsFrom: 1, voters: [1, 2, 3], learners: [], retired: [], addresses: [] };
const c134: Configuration = { epoch: 5, governsFrom: 9, voters: [1, 3, 4], learners: [], retired: [2], addresses: [] };

function phase(promised: readonly number[], coversFrom: readonly number[]): PhaseOneOf<never> {
  const peers = [1, 2, 3, 4];
  return {
    ballot: { round: 2, replica: 1 },
    fromSlot: 1,
    peers,
    promised: promised.reduce((m, id) => m | (1 << peers.indexOf(id)), 0),
    coversFrom,
    revealed: { root: undefined, levels: 0, size: 0, last: 0 },
    prepareSentAt: 0,
    grantSentAt: [100, 90, 80, 70],
  };
}

describe("phase1Covers", () => {
  it("needs a quorum of the slot's own configuration", () => {
    const p = phase([1, 2], [1, 1, Infinity, Infinity]);
    expect(phase1Covers(defaultRules, p, c123, 5)).toBe(true);
    expect(phase1Covers(defaultRules, p, c134, 9)).toBe(false); // 2 is no voter of {1,3,4}
  });

  it("does not count a Promise below the acceptor's truncation point", () => {
    const p = phase([1, 2], [1, 9, Infinity, Infinity]); // 2 forgot its votes up to slot 8
    expect(phase1Covers(defaultRules, p, c123, 8)).toBe(false);
    expect(phase1Covers(defaultRules, p, c123, 9)).toBe(true);
  });
});

describe("leases by configuration", () => {
  it("count from the quorum-th grant among the voters of the configuration given", () => {
    const p = phase([], [Infinity, Infinity, Infinity, Infinity]);
    // {1,2,3}: grants 100, 90, 80: the 2nd most recent is 90. {1,3,4}: 100, 80, 70: 80.
    expect(leaseFromConfiguration(defaultRules, p.peers, p.grantSentAt, c123)).toBe(90);
    expect(leaseFromConfiguration(defaultRules, p.peers, p.grantSentAt, c134)).toBe(80);
  });
});

describe("carrying bookkeeping over to new peers", () => {
  it("keeps values by id and fills new peers", () => {
    expect(carryOver([1, 2, 3], ["a", "b", "c"], [1, 3, 4], "-")).toEqual(["a", "c", "-"]);
    expect(carryOverMask([1, 2, 3], 0b110, [1, 3, 4])).toBe(0b010);
  });
});

describe("stalledBehind", () => {
  it("names a voter that truncated past the next slot when phase 1 does not cover it, whoever else may still promise", () => {
    const c = Cluster.elected(3);
    const s = c.state(1);
    const leader = s.role as Leader<never>;
    expect(stalledBehind(defaultRules, s)).toBeNull();
    const behind = { ...s, role: { ...leader, coversFrom: [1, 20, 20] } };
    expect(stalledBehind(defaultRules, behind)).toBe(2);
    // 3 has not promised (it may be down for good): 2 executed the slot, the leader lags behind it.
    const partly = { ...s, role: { ...leader, promised: 0b011, coversFrom: [1, 20, Infinity] } };
    expect(stalledBehind(defaultRules, partly)).toBe(2);
    // Phase 1 covers the slot ({1,3}): 2's snapshot does not matter.
    const covered = { ...s, role: { ...leader, coversFrom: [1, 20, 1] } };
    expect(stalledBehind(defaultRules, covered)).toBeNull();
    // Nobody truncated past it: phase 1 waits for the Promises.
    const waiting = { ...s, role: { ...leader, promised: 0b001, coversFrom: [1, Infinity, Infinity] } };
    expect(stalledBehind(defaultRules, waiting)).toBeNull();
  });
});

/**
 * Rule L5 broken: election timeouts shorter than the lease (as if the configuration let
 * `electionTimeoutMsMin <= leaseMs` through). A follower that stops hearing its leader then
 * campaigns while its grant to that leader is in force: its promise of its own new ballot would
 * break the grant the leader's lease counts, and phase 1b's precondition (`canPromise`, rule L1)
 * stops the replica with a core assertion. The replica runs the real step with a configuration
 * whose election timeouts are drawn from [leaseMs / 2, leaseMs / 2 + (max - min)]; nothing else
 * changes.
 */
import { step as realStep, type Step } from "../../impl/core/testing/index.ts";
import type { Mutant } from "./mutant.ts";

const shortTimeouts: Step = (state, event) => {
  const config = state.ctx.config;
  const min = Math.floor(config.leaseMs / 2);
  const short = {
    ...config,
    electionTimeoutMsMin: min,
    electionTimeoutMsMax: min + config.electionTimeoutMsMax - config.electionTimeoutMsMin,
  };
  const r = realStep({ ...state, ctx: { ...state.ctx, config: short } }, event);
  return { state: { ...r.state, ctx: state.ctx }, effects: r.effects };
};

export const electionTimeoutWithinLease: Mutant = {
  name: "election-timeout-within-lease",
  description: "election timeouts shorter than the lease: a follower campaigns while its grant to the leader holds",
  expectedCatch: ["core assertion", "AtMostOneLeaseholder", "LeaseReadFresh", "Linearizability"],
  mode: "safety",
  step: shortTimeouts,
  explore: { bounds: { writes: 0, reads: 0, orders: "fifo" }, depth: 2 },
};

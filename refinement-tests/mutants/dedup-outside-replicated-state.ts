/**
 * Deduplication outside the replicated state: execution applies every command, and only the
 * leader's front door turns away retries it can see in the session table. A retry proposed
 * again before the first copy executed runs twice.
 */
import type { Applied } from "../../spec/state-machine.ts";
import { commandDigest, withSession, type ServiceOutput, type ServiceState } from "../../spec/service.ts";
import type { Command, ReplicaContext } from "../../impl/core/testing/index.ts";
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

function executeWithoutDedup<S, I, O>(
  ctx: ReplicaContext<S, I, O>,
  service: ServiceState<S, O>,
  command: Command<I>,
): Applied<ServiceState<S, O>, ServiceOutput<O>> {
  const applied = ctx.app.apply(command.input, service.app);
  const sessions =
    command.clientId !== undefined && command.seq !== undefined
      ? withSession(service.sessions, command.clientId, {
          seq: command.seq,
          command: commandDigest(command.input, ctx.app.textHash ?? null),
          output: applied.output,
        })
      : service.sessions;
  return {
    state: { app: applied.state, sessions, executed: service.executed + 1 },
    output: { _tag: "executed", output: applied.output },
  };
}

export const dedupOutsideReplicatedState: Mutant = {
  name: "dedup-outside-replicated-state",
  description: "execution does not consult the session table; only the leader turns away retries it already answered",
  expectedCatch: ["ExactlyOnce", "DigestAgreement", "RepliesMatchSpec", "Linearizability"],
  mode: "safety",
  step: withRules({ executeCommand: executeWithoutDedup }),
  explore: { bounds: { reads: 0, duplicates: 1, orders: "fifo" }, depth: 10 },
};

/**
 * Retries recognised by their number alone: the session table answers any request with the
 * number of the client's last executed one with that request's cached output, whatever its
 * command (both at the leader's front door and at execution). A client that reuses a number for
 * another command is told it succeeded, with the other command's output, although it never ran.
 */
import type { TextHash } from "../../spec/hash.ts";
import type { Applied } from "../../spec/state-machine.ts";
import { sessionOf, type ServiceOutput, type ServiceState, type Session } from "../../spec/service.ts";
import { defaultRules, type Command, type ReplicaContext } from "../../impl/core/testing/index.ts";
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

function sessionAnswerByNumber<O>(
  session: Session<O> | undefined,
  seq: number,
  input: unknown,
  textHash: TextHash | null,
): ServiceOutput<O> | undefined {
  if (session !== undefined && seq === session.seq) return { _tag: "duplicate", output: session.output };
  return defaultRules.sessionAnswer(session, seq, input, textHash);
}

function executeByNumber<S, I, O>(
  ctx: ReplicaContext<S, I, O>,
  service: ServiceState<S, O>,
  command: Command<I>,
): Applied<ServiceState<S, O>, ServiceOutput<O>> {
  const session = command.clientId === undefined ? undefined : sessionOf(service, command.clientId);
  if (session !== undefined && command.seq === session.seq)
    return { state: service, output: { _tag: "duplicate", output: session.output } };
  return defaultRules.executeCommand(ctx, service, command);
}

export const retryByNumberAlone: Mutant = {
  name: "retry-by-number-alone",
  description:
    "a request with the number of the client's last executed one gets that one's output, whatever its command",
  expectedCatch: ["ExactlyOnce"],
  mode: "safety",
  step: withRules({ sessionAnswer: sessionAnswerByNumber, executeCommand: executeByNumber }),
  explore: { bounds: { reads: 0, reuses: 1, orders: "fifo" }, depth: 10 },
};

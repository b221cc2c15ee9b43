/**
 * The leader's own checks of a membership change (POST /v1/members) before the core judges it:
 * what the request says beyond the change (a removal's `force`), and refusals whose answer names
 * the operator's remedy (a removed id, a joiner whose address is unknown). Whether the change fits
 * the configuration is the core's to decide (rule R3). A newcomer must execute the log's feature
 * level, or the one this leader raises it to: a member that meets a level it does not know stops
 * there (impl/runtime/feature-gate.ts). A refusal judged against the configuration
 * this replica has executed is final only while the core vouches for that configuration
 * (`membershipUnsettled` is null: lease held, phase 1 executed, no change of the leader's own
 * pending); otherwise the answer is 503, retry, never a refusal that a change already chosen may
 * contradict.
 */
import type { ReplicaId } from "../core/index.ts";
import type { ApiError, MemberRequest } from "./http-api.ts";

/** What the checks read of the leader. */
export interface PrecheckFacts {
  readonly self: ReplicaId;
  /** The latest configuration the leader has executed: its voters and every id removed so far. */
  readonly latest: { readonly voters: readonly ReplicaId[]; readonly retired: readonly ReplicaId[] };
  readonly initialMembers: readonly ReplicaId[];
  /** The core's `membershipUnsettled` at this instant: null when it vouches for `latest`. */
  readonly unsettled: string | null;
  /** Does the leader know where replica `id` listens (it connected, or the log says)? */
  readonly addressKnown: (id: ReplicaId) => boolean;
  /**
   * The feature level a newcomer must execute: the level executed, or the leader's configured
   * `featureLevel` when higher (the raise it proposes, or waits to propose).
   */
  readonly featureLevelRequired: number;
  /** The feature level replica `id` named in its last handshake with the leader; null: none seen. */
  readonly namedLevel: (id: ReplicaId) => number | null;
}

/** The fewest voters a removal may leave without `force`: 2 tolerate no failure. */
const votersMinUnforced = 3;

/** The answer to send instead of proposing `request`, or null to let the core judge it. */
export function precheckMemberRequest(request: MemberRequest, facts: PrecheckFacts): ApiError | null {
  const { latest } = facts;
  const newcomer = request.op === "add" || request.op === "replace" ? request.id : null;
  // A removed id stays removed whatever is pending: this refusal is final.
  if (newcomer !== null && latest.retired.includes(newcomer))
    return {
      status: 409,
      code: "retired-replica",
      message: `replica ${newcomer} was a member and has been removed; a removed id is never added again (its old votes and promises must not come back): start the machine under a new id with an empty data directory`,
    };
  const joiner = request.op === "add" && request.peerAddress === undefined ? request.id : null;
  if (joiner !== null && joiner !== facts.self && !facts.addressKnown(joiner)) {
    return {
      status: 409,
      code: "unknown-replica",
      message: `replica ${joiner} has not connected to replica ${facts.self} (the leader), so its address is not known here: start it first with 'paxos-lease replica --id ${joiner} --join --initial-members ${facts.initialMembers.join(",")} --peers ...' listing a current member, or give its address ("peerAddress"; the CLI's --peer-address), then retry`,
    };
  }
  const required = facts.featureLevelRequired;
  if (newcomer !== null && newcomer !== facts.self && required > 1) {
    const named = facts.namedLevel(newcomer);
    if (named === null)
      return {
        status: 409,
        code: "unknown-replica",
        message: `replica ${newcomer} has not connected to replica ${facts.self} (the leader), so the feature levels it executes are not known here, and the log is at level ${required} (or being raised to it): start it first on a version that executes level ${required}, then retry`,
      };
    if (named < required)
      return {
        status: 409,
        code: "feature-level",
        message: `replica ${newcomer} executes feature levels up to ${named}, and the log is at level ${required} (or being raised to it: the leader's featureLevel); it would stop at the first slot of that level: start it on a version that executes level ${required}`,
      };
  }
  if (request.op === "remove" && request.force !== true && latest.voters.includes(request.id)) {
    // How many voters the removal leaves depends on every change before it: judged only on a
    // configuration the core vouches for.
    if (facts.unsettled !== null)
      return {
        status: 503,
        code: "unavailable",
        message: `removing voter ${request.id} is judged against the configuration it would leave, and ${facts.unsettled}; retry`,
        extra: { outcomeUnknown: false },
        headers: { "Retry-After": "1" },
      };
    const left = latest.voters.length - 1;
    if (left < votersMinUnforced)
      return {
        status: 409,
        code: "unsafe",
        message: `removing voter ${request.id} would leave ${left} voter${left === 1 ? "" : "s"}, which tolerate${left === 1 ? "s" : ""} no failure; to swap a failed replica use op "replace" (add the new one first), or pass "force": true`,
      };
  }
  return null;
}

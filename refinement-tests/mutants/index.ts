/**
 * The bug zoo: every deliberately broken variant of the protocol, each caught by the ordinary
 * suites (`npm run mutants`). Kept out of impl/: production code has no bug flags.
 */
import { acceptBelowPromise } from "./accept-below-promise.ts";
import { addWithoutAddress } from "./add-without-address.ts";
import { ballotOrderIgnoresReplica } from "./ballot-order-ignores-replica.ts";
import { dedupOutsideReplicatedState } from "./dedup-outside-replicated-state.ts";
import { electionTimeoutWithinLease } from "./election-timeout-within-lease.ts";
import { entryValueUnchecked } from "./entry-value-unchecked.ts";
import { compactionPinsOfRunBefore } from "./compaction-pins-of-run-before.ts";
import { executionSkipsReadBack } from "./execution-skips-read-back.ts";
import { grantIgnored } from "./grant-ignored.ts";
import { grantTooShort } from "./grant-too-short.ts";
import { leaseFromFreshestGrant } from "./lease-from-freshest-grant.ts";
import { phase2aIgnoresVotes } from "./phase2a-ignores-votes.ts";
import { lapsedLeaderHolds } from "./lapsed-leader-holds.ts";
import { learnAnyVote } from "./learn-any-vote.ts";
import { lateFirstCopyRuns } from "./late-first-copy-runs.ts";
import { leaseFromReceipt } from "./lease-from-receipt.ts";
import { leaseReadBeforePendingPhase1 } from "./lease-read-before-pending-phase1.ts";
import { leaseReadBeforeReproposals } from "./lease-read-before-reproposals.ts";
import { leaseReadJudgedWhenAsked } from "./lease-read-judged-when-asked.ts";
import { leaseWithoutDriftMargin } from "./lease-without-drift-margin.ts";
import { helpRemovedLeader } from "./help-removed-leader.ts";
import type { Mutant } from "./mutant.ts";
import { noNoopGapFilling } from "./no-noop-gap-filling.ts";
import { openSessionReusesId } from "./open-session-reuses-id.ts";
import { outOfOrderExecution } from "./out-of-order-execution.ts";
import { ownVoteAssumed } from "./own-vote-assumed.ts";
import { ownVoteCountedBeforeDurable } from "./own-vote-counted-before-durable.ts";
import { phase2aNotHighest } from "./phase2a-not-highest.ts";
import { quorumOffByOne } from "./quorum-off-by-one.ts";
import { recoverRefusesRevote } from "./recover-refuses-revote.ts";
import { replyBeforeDurable } from "./reply-before-durable.ts";
import { restartForgetsGrant } from "./restart-forgets-grant.ts";
import { restedUnderAskedName } from "./rested-under-asked-name.ts";
import { retireWhenNotAMember } from "./retire-when-not-a-member.ts";
import { retryByNumberAlone } from "./retry-by-number-alone.ts";
import { retiringVoterNeverCampaigns } from "./retiring-voter-never-campaigns.ts";
import { selfGrantKept } from "./self-grant-kept.ts";
import { alphaIgnored } from "./alpha-ignored.ts";
import { snapshotDropsSessions } from "./snapshot-drops-sessions.ts";
import { staleTransferInstalled } from "./stale-transfer-installed.ts";
import { transferDropsSessions } from "./transfer-drops-sessions.ts";
import { transferUnverified } from "./transfer-unverified.ts";
import { truncateWithoutSnapshot } from "./truncate-without-snapshot.ts";
import { promiseOmitsUnexecuted } from "./promise-omits-unexecuted.ts";
import { truncatedPromiseCounted } from "./truncated-promise-counted.ts";
import { valueBytesBeforeLevel4 } from "./value-bytes-before-level-4.ts";
import { valueBytesIgnored } from "./value-bytes-ignored.ts";
import { waitedValueRestedAgain } from "./waited-value-rested-again.ts";

export type { Mutant } from "./mutant.ts";

/** Every mutant, in a fixed order. */
export const mutants: readonly Mutant[] = [
  quorumOffByOne,
  acceptBelowPromise,
  phase2aNotHighest,
  replyBeforeDurable,
  leaseFromReceipt,
  leaseWithoutDriftMargin,
  restartForgetsGrant,
  leaseReadBeforeReproposals,
  dedupOutsideReplicatedState,
  outOfOrderExecution,
  noNoopGapFilling,
  ballotOrderIgnoresReplica,
  learnAnyVote,
  grantIgnored,
  // Snapshots, truncation, state transfer and reconfiguration.
  truncatedPromiseCounted,
  truncateWithoutSnapshot,
  promiseOmitsUnexecuted,
  staleTransferInstalled,
  transferUnverified,
  snapshotDropsSessions,
  transferDropsSessions,
  alphaIgnored,
  retryByNumberAlone,
  retireWhenNotAMember,
  addWithoutAddress,
  // The remaining rules of impl/core/rules.ts that guard safety, and lease rules, weakened.
  grantTooShort,
  leaseFromFreshestGrant,
  phase2aIgnoresVotes,
  // Rule L5's timing: election timeouts that outlast every grant.
  electionTimeoutWithinLease,
  // Rule L6 for a candidate: a self-grant that refuses higher ballots (a liveness bug under load).
  selfGrantKept,
  // Rule L6 for a leader whose lease lapsed: a self-grant that refuses the candidates a round trip longer.
  lapsedLeaderHolds,
  // Leases across membership changes.
  leaseReadBeforePendingPhase1,
  retiringVoterNeverCampaigns,
  // Rule R4 off: a removed replica disrupts the configuration in force (a liveness bug caught by a
  // bound on disruption).
  helpRemovedLeader,
  // The leader's own vote counted before its notice says it is durable.
  ownVoteCountedBeforeDurable,
  // The leader's own vote taken into a quorum without being counted: a reply on a vote not yet durable.
  ownVoteAssumed,
  // Feature level 3: the service opens the sessions, and a late first copy never runs again.
  openSessionReusesId,
  lateFirstCopyRuns,
  // Feature level 4: the value limit in bytes at execution, from the raise on and only from it.
  valueBytesIgnored,
  valueBytesBeforeLevel4,
  // Store values at rest (rule V4): execution waits for them, reads are judged when they are back,
  // each value is checked, and goes back to rest only under the name that still holds, and not
  // while the slot execution waits at reads it.
  executionSkipsReadBack,
  entryValueUnchecked,
  leaseReadJudgedWhenAsked,
  restedUnderAskedName,
  waitedValueRestedAgain,
  // Rule V3 with compaction in pieces: each piece decided with the pins of when it became due.
  compactionPinsOfRunBefore,
  // Recover takes a vote repeated in its ballot (the same value): compaction may keep both records.
  recoverRefusesRevote,
];

/** The mutant called `name`; throws with the list of names otherwise. */
export function mutantNamed(name: string): Mutant {
  const m = mutants.find((x) => x.name === name);
  if (m === undefined)
    throw new Error(`no mutant named ${JSON.stringify(name)}; known: ${mutants.map((x) => x.name).join(", ")}`);
  return m;
}

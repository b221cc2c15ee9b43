/**
 * Durability invariants (proofs/durability.md): what an acceptor tells others must already be on
 * its disk, and what it holds in memory must be what its disk would give back after a crash.
 *
 *   DurableBeforeSend  no Promise or HeartbeatAck for ballot b leaves replica a unless a's durable
 *                      maxBal >= b (a HeartbeatAck is a lease grant, and a Heartbeat above maxBal
 *                      raises maxBal as a Prepare would: IncreaseMaxBal);
 *                      no Accepted for (slot, b) leaves unless a's vote at (slot, b) is durable
 *                      (checked at the instant of each Send, in effect order, so a driver or a
 *                      replica that sends first and persists after is caught even without a crash)
 *   DurableMaxBal      after every step, a live replica's maxBal is its durable one: a promise is
 *                      never held only in memory (a crash would silently break it)
 *   PromiseCoversVotes every vote a live acceptor holds is in a ballot <= its maxBal
 *                      (VotedFor(a, b, v) => maxBal[a] >= b; with it, Phase1b's report is complete)
 *   CountedVotesDurable every vote a leader counts for a proposal (its acks, its own vote included)
 *                      is a durable vote at that slot in the leader's ballot: so a slot the leader
 *                      takes as chosen is chosen in Voting (a quorum of durable votes), never by a
 *                      quorum that includes a vote a crash could still erase
 */
import {
  compareBallots,
  showBallot,
  slotMapGet,
  type Leader,
  type Message,
  type ReplicaState,
} from "../impl/core/testing/index.ts";
import { violated } from "./violation.ts";
import type { VotingGhost } from "./voting-per-slot.ts";

/** DurableBeforeSend for one message replica index `a` sends now. */
export function checkDurableBeforeSend<I>(voting: VotingGhost<I>, a: number, message: Message<I>): void {
  if (message._tag === "Promise" || message._tag === "HeartbeatAck") {
    const b = voting.nat(message.ballot);
    if (voting.maxBal[a]! >= b) return;
    violated({
      check: "DurableBeforeSend",
      level: "Durability",
      message: `replica ${voting.members[a]} sent ${message._tag} ${showBallot(message.ballot)} while its durable maxBal is ${voting.maxBal[a]} < ${b}: a crash now would forget the promise${message._tag === "HeartbeatAck" ? " behind the lease grant" : ""}`,
    });
  }
  if (message._tag === "Accepted") {
    const b = voting.nat(message.ballot);
    if (voting.hasDurableVote(a, message.slot, b)) return;
    violated({
      check: "DurableBeforeSend",
      level: "Durability",
      message: `replica ${voting.members[a]} sent Accepted ${showBallot(message.ballot)} for slot ${message.slot} before its vote was durable: a crash now would forget a vote that may complete a quorum`,
    });
  }
}

/**
 * DurableMaxBal and PromiseCoversVotes for a live replica after a step; `slots` are the slots it voted at in the step.
 */
export function checkLiveAcceptor<S, I, O>(
  voting: VotingGhost<I>,
  a: number,
  state: ReplicaState<S, I, O>,
  slots: readonly number[],
): void {
  const live = voting.nat(state.acceptor.maxBal);
  if (live !== voting.maxBal[a]) {
    violated({
      check: "DurableMaxBal",
      level: "Durability",
      message: `replica ${voting.members[a]} holds maxBal ${showBallot(state.acceptor.maxBal)} (${live}) in memory but ${voting.maxBal[a]} on disk: ${live > voting.maxBal[a]! ? "a promise not persisted" : "a promise lost"}`,
    });
  }
  for (const slot of slots) {
    const vote = slotMapGet(state.acceptor.votes, slot);
    if (vote === undefined) continue;
    if (compareBallots(vote.ballot, state.acceptor.maxBal) > 0) {
      violated({
        check: "PromiseCoversVotes",
        level: "Voting",
        message: `replica ${voting.members[a]} holds a vote in ${showBallot(vote.ballot)} at slot ${slot} above its maxBal ${showBallot(state.acceptor.maxBal)}`,
      });
    }
  }
}

/** CountedVotesDurable for a leader after a step: every vote its proposals count is durable. */
export function checkCountedVotesDurable<I>(voting: VotingGhost<I>, leader: Leader<I>): void {
  const b = voting.nat(leader.ballot);
  leader.inflight.forEach((proposal, i) => {
    const slot = leader.inflightBase + i;
    proposal.voters.forEach((voter, k) => {
      if ((proposal.acks & (1 << k)) === 0) return;
      const a = voting.members.indexOf(voter);
      if (a >= 0 && voting.hasDurableVote(a, slot, b)) return;
      violated({
        check: "CountedVotesDurable",
        level: "Durability",
        message: `leader ${showBallot(leader.ballot)} counts replica ${voter}'s vote at slot ${slot}${proposal.chosen ? " (and takes the slot as chosen)" : ""}, but that vote is not durable: a crash now would erase a vote of the quorum that chose it`,
      });
    });
  });
}

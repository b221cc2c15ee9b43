/**
 * Whether to hold back a resent Accept of a large value whose first copy is still on its way.
 *
 * The core resends an unacknowledged Accept after one heartbeat interval, then backs off to four
 * (impl/core/leader.ts, `resendAccepts`): it assumes a lossy network. Between replicas the network
 * is a TCP connection, which loses nothing while it stays up, and a follower answers every Accept
 * it receives; what delays the answer in a burst of 1 MiB values is the queue ahead of it, Accepts
 * the follower is still reading, decoding and writing. A resend joins the back of that queue: in
 * 16 concurrent 1 MiB PUTs each value crossed three times, every copy encoded by the leader and
 * decoded into a fresh string by each follower (the followers' heaps, and a third of the
 * cluster's CPU per write). So a resent Accept of at least `bytesMin` bytes of values to a peer
 * is dropped, as a network may drop any message, while its first copy may still arrive:
 *
 * - that copy was handed to a connection to the peer that has not dropped since (the transport's
 *   `linkGeneration` is unchanged: a dropped connection loses what it held, and the next resend
 *   goes), and
 * - it went less than `quietMs` ago, or the peer acknowledged some Accept within the last
 *   `quietMs` (it is working through its queue), and
 * - it went less than `holdMsMax` ago.
 *
 * An answer lost on the way back (the follower's own connection dropped it) therefore costs at
 * most one quiet spell: with the pipeline bounded (`pipelineSlotsMax`), a leader whose slot is not
 * chosen soon stops proposing, the acknowledgements stop, and the resend goes. Small Accepts are
 * never held: resending them costs little, and they carry most writes.
 */
import type { Ballot } from "../core/index.ts";

/** The first copy of an Accept sent to a peer, as the hold remembers it. */
interface FirstCopy {
  readonly ballot: Ballot;
  readonly sentMs: number;
  readonly generation: number;
}

/** The fields of an Accept the hold reads. */
export interface AcceptKey {
  readonly ballot: Ballot;
  readonly slot: number;
}

/**
 * Most first copies remembered per peer. The pipeline keeps far fewer unacknowledged; past this
 * the oldest are forgotten (their resends then go), so a peer that never answers costs bounded memory.
 */
export const copiesPerPeerMax = 4096;

function sameBallot(a: Ballot, b: Ballot): boolean {
  return a.round === b.round && a.replica === b.replica;
}

export class AcceptResendHold {
  /** Per peer, per slot: the first copy of the Accept sent there (in its ballot). */
  private readonly firstCopies = new Map<number, Map<number, FirstCopy>>();
  /** Per peer: when it last acknowledged an Accept. */
  private readonly acknowledgedMs = new Map<number, number>();

  /**
   * `quietMs`: how long a peer may go without acknowledging an Accept before resends to it go.
   * `holdMsMax`: the longest a resend is held after its first copy went, in milliseconds.
   * `bytesMin`: the smallest Accept (in bytes of values) whose resends are held.
   */
  constructor(
    private readonly quietMs: number,
    private readonly holdMsMax: number,
    readonly bytesMin: number,
  ) {}

  /**
   * True: drop this Accept to `peer`, a resend of one whose first copy may still arrive.
   * `generation`: the transport's `linkGeneration(peer)` now.
   */
  hold(peer: number, accept: AcceptKey, bytes: number, generation: number, nowMs: number): boolean {
    if (bytes < this.bytesMin) return false;
    const first = this.firstCopies.get(peer)?.get(accept.slot);
    if (first === undefined || !sameBallot(first.ballot, accept.ballot)) return false;
    if (first.generation !== generation) return false;
    const age = nowMs - first.sentMs;
    if (age >= this.holdMsMax) return false;
    if (age < this.quietMs) return true;
    const acknowledged = this.acknowledgedMs.get(peer);
    return acknowledged !== undefined && nowMs - acknowledged < this.quietMs;
  }

  /**
   * This Accept went to `peer` (the transport took it). A first copy is remembered; a copy that
   * went after its first's connection dropped becomes the new first copy.
   */
  sent(peer: number, accept: AcceptKey, bytes: number, generation: number, nowMs: number): void {
    if (bytes < this.bytesMin) return;
    let copies = this.firstCopies.get(peer);
    if (copies === undefined) {
      copies = new Map();
      this.firstCopies.set(peer, copies);
    }
    const first = copies.get(accept.slot);
    if (first !== undefined && sameBallot(first.ballot, accept.ballot) && first.generation === generation) return;
    copies.delete(accept.slot);
    copies.set(accept.slot, { ballot: accept.ballot, sentMs: nowMs, generation });
    if (copies.size > copiesPerPeerMax) copies.delete(copies.keys().next().value!);
  }

  /** `peer` acknowledged the Accept at `slot` (an Accepted arrived): it makes progress, and that copy arrived. */
  acknowledged(peer: number, slot: number, nowMs: number): void {
    this.acknowledgedMs.set(peer, nowMs);
    this.firstCopies.get(peer)?.delete(slot);
  }

  /** First copies remembered for `peer` (for tests). */
  remembered(peer: number): number {
    return this.firstCopies.get(peer)?.size ?? 0;
  }
}

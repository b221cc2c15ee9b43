/**
 * Whether to hold back a catch-up request to a peer that is streaming large messages to us.
 *
 * A follower that hears a heartbeat (control connection) announcing slots chosen whose Accepts
 * are still on their way (bulk connection, impl/runtime/transport.ts) asks the leader for them;
 * the answer, megabytes of values it is about to receive anyway, queues behind those very
 * Accepts, and every heartbeat asks again. So while messages keep arriving from the peer on its
 * bulk connection (one within `quietMs`), a CatchUp to it is dropped, as a network may drop any
 * message: the core asks again at its next heartbeat. Dropped for at most `holdMsMax` in a row, so
 * that a value that really was lost (a send dropped under backpressure) still comes while the
 * stream goes on.
 */
export class CatchUpHold {
  private readonly heldSince = new Map<number, number>();

  constructor(
    private readonly quietMs: number,
    private readonly holdMsMax: number,
  ) {}

  /** True: drop this CatchUp to `peer`. `bulkHeardMsAgo`: since a message last arrived on its bulk connection. */
  hold(peer: number, bulkHeardMsAgo: number | null, nowMs: number): boolean {
    if (bulkHeardMsAgo === null || bulkHeardMsAgo > this.quietMs) {
      this.heldSince.delete(peer);
      return false;
    }
    const since = this.heldSince.get(peer);
    if (since === undefined) {
      this.heldSince.set(peer, nowMs);
      return true;
    }
    if (nowMs - since < this.holdMsMax) return true;
    this.heldSince.delete(peer);
    return false;
  }
}

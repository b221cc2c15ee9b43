/**
 * What a replica says when it refuses a state transfer (the core's `TransferRefused` effect, after
 * a chunk that is not JSON or rule S2 at the end): one warn line naming the peer, the snapshot
 * (slot and digests), the check that failed and the byte, and what happens next; a count by check
 * (`paxos_lease_transfers_refused_total`); an entry among the status page's recent events. It
 * never throws and never decides anything: the core already dropped the transfer.
 */
import type { TransferRefusal } from "../core/index.ts";
import type { Logger } from "./log.ts";
import type { ReplicaMetrics } from "./metrics.ts";
import type { RecentEvents } from "./status.ts";

/** The line's text: the snapshot, the peer, the check and byte, the reason, and what comes next. */
export function transferRefusedText(refusal: TransferRefusal): string {
  const { from, slot, digest, check, offset, reason } = refusal;
  return (
    `state transfer of snapshot ${slot} (digest ${digest}) from replica ${from} refused at byte ${offset} ` +
    `(check ${check}): ${reason}; nothing installed, catch-up starts over`
  );
}

/** Log, count and record `refusal`. */
export function reportTransferRefused(
  refusal: TransferRefusal,
  sinks: { readonly log: Logger; readonly metrics: ReplicaMetrics; readonly events: RecentEvents },
): void {
  const { from, slot, digest, contentDigest, check, offset, reason } = refusal;
  const text = transferRefusedText(refusal);
  sinks.metrics.transfersRefused.inc({ check });
  sinks.events.add("warn", text);
  sinks.log.warn({ peer: from, slot, digest, contentDigest, check, offset, reason }, text);
}

/**
 * The simulated world's network: what is in flight (replica messages and client requests, each
 * an immutable entry), the content hash the explorer counts them by, and the corrupted copy of a
 * state-transfer chunk that a fault puts in flight.
 */
import type { KvInput } from "../../spec/kv.ts";
import type { Message } from "../../impl/core/testing/index.ts";
import { Hasher, memoizedHash, valueHash, type Hash64 } from "../explorer/hash.ts";

/** A message in flight between replicas, or a client request on its way to a replica. */
export type InFlight =
  | {
      readonly id: number;
      readonly kind: "message";
      readonly from: number;
      readonly to: number;
      readonly message: Message<KvInput>;
    }
  /** A client request (`requestId` in the world's request table); client links are never cut. */
  | { readonly id: number; readonly kind: "request"; readonly to: number; readonly requestId: number };

/** A message in flight without its id (a name only): the content a world's hash counts. */
export function inFlightHash(m: InFlight): Hash64 {
  // Entries in flight are immutable (a fault replaces one, never edits it): their hashes are kept.
  return memoizedHash(m, hashInFlight);
}

function hashInFlight(m: InFlight): Hash64 {
  const h = new Hasher();
  h.num(m.to);
  if (m.kind === "request") {
    h.word(1);
    h.num(m.requestId);
  } else {
    h.word(2);
    h.num(m.from);
    h.hash(valueHash(m.message));
  }
  return h.done();
}

/** A chunk with one byte changed: its last digit, so the JSON stays well-formed and only the digests can tell. */
export function corrupted(message: Message<KvInput>): Message<KvInput> {
  if (message._tag !== "SnapshotChunk") return message;
  const data = message.data;
  let at = data.length - 1;
  while (at > 0 && !/[0-9]/.test(data[at]!)) at--;
  const digit = /[0-9]/.test(data[at]!) ? String((Number(data[at]) + 1) % 10) : "x";
  return { ...message, data: data.slice(0, at) + digit + data.slice(at + 1) };
}

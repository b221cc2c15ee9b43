/**
 * What this replica sends a peer of another version while a cluster is upgraded one replica at a
 * time. Digests name their format (spec/hash.ts `digestFormat`, `sha256/...`), and every replica
 * that names its format in its handshake compares divergence checkpoints only within one format
 * (impl/core/monitor.ts). It names it at the end of its incarnation (`0123456789abcdef+sha256`):
 * the versions before refuse a handshake with a field they do not know, and take any incarnation.
 * A replica of a version before formats were named says nothing of it and compares any two
 * digests: a checkpoint of a named format would differ from its own for equal states and halt it
 * with a false divergence alarm, and a snapshot of a named format is one it refuses as not
 * matching its digest. Such a peer is sent neither.
 *
 * It must never hide a checkpoint from a peer that compares by format, and never change anything
 * but what goes on the wire (the core's state and the trace are the core's own).
 *
 * The incarnation also names, before the format, the highest feature level the replica executes
 * (`0123456789abcdef+level3+sha256`), which the leader waits for on every member before it raises
 * the log to a level (impl/runtime/feature-gate.ts). The versions before read the format after the
 * last `+` and take the rest as opaque, so they still read the format alike.
 */
import { digestFormat } from "../../spec/hash.ts";
import type { KvMessage } from "./core-adapter.ts";
import type { PeerInfo } from "./transport.ts";

/**
 * `random` (hex digits) as an incarnation that names the digest format `format` and, when given,
 * the highest feature level `levelMax` the replica executes.
 */
export function incarnationWith(random: string, format: string, levelMax?: number): string {
  return levelMax === undefined ? `${random}+${format}` : `${random}+level${levelMax}+${format}`;
}

/**
 * What a peer that names no feature level is taken to execute: level 1, which every version
 * executes (the versions before feature levels, and those before levels were named here, some of
 * which execute 2 or 3: they are waited for until upgraded to a version that names its level).
 */
export const featureLevelUnnamed = 1;

/** Largest feature level a peer may name (a bound on the text, far above any level there is). */
const namedLevelMax = 999_999;

/**
 * The highest feature level a peer's incarnation names ({@link featureLevelUnnamed} when it
 * names none), or `{ refusal }` saying what is wrong with the one it names: a `+level` part that
 * is not an integer from 1 to 999999, or two of them. The parts between the random prefix and the
 * format that are not `level...` are left for later versions.
 */
export function featureLevelOfIncarnation(incarnation: string): number | { readonly refusal: string } {
  const parts = incarnation.split("+").slice(1, -1);
  const named = parts.filter((p) => p.startsWith("level"));
  if (named.length === 0) return featureLevelUnnamed;
  if (named.length > 1)
    return { refusal: `its incarnation ${JSON.stringify(incarnation)} names a feature level more than once` };
  const text = named[0]!.slice("level".length);
  const level = /^[1-9][0-9]*$/.test(text) ? Number(text) : Number.NaN;
  if (!(level <= namedLevelMax))
    return {
      refusal: `its incarnation ${JSON.stringify(incarnation)} names feature level ${JSON.stringify(text)}, not an integer from 1 to ${namedLevelMax}`,
    };
  return level;
}

/** The digest format a peer's incarnation names, or null for one of a version before formats were named. */
export function digestFormatOfIncarnation(incarnation: string): string | null {
  const plus = incarnation.lastIndexOf("+");
  const format = incarnation.slice(plus + 1);
  return plus >= 0 && /^[a-z0-9]+$/.test(format) ? format : null;
}

/** What {@link forPeer} decided for one message. */
export type ForPeer =
  | { readonly send: KvMessage; readonly withheld: null }
  | { readonly send: KvMessage | null; readonly withheld: "checkpoint" | "snapshot" };

/**
 * `message` as it may go to a peer whose handshake said `info` (null: no handshake seen yet, taken
 * as a peer that names no format). A heartbeat or acknowledgement keeps its checkpoint only if
 * the peer compares by format or the checkpoint names none; a snapshot chunk of a named format is
 * not sent to a peer that names none (`send` null). `withheld` says what was held back.
 */
export function forPeer(message: KvMessage, info: PeerInfo | null): ForPeer {
  // The tag first: every Accept and vote passes here, and only these three can carry a format.
  switch (message._tag) {
    case "Heartbeat":
    case "HeartbeatAck":
      if (message.checkpoint === null || digestFormat(message.checkpoint.digest) === "" || namesFormat(info))
        return { send: message, withheld: null };
      return { send: { ...message, checkpoint: null }, withheld: "checkpoint" };
    case "SnapshotChunk":
      return digestFormat(message.digest) === "" || namesFormat(info)
        ? { send: message, withheld: null }
        : { send: null, withheld: "snapshot" };
    default:
      return { send: message, withheld: null };
  }
}

/** Whether a peer's handshake named a digest format (null: no handshake seen, taken as none). */
function namesFormat(info: PeerInfo | null): boolean {
  return info !== null && digestFormatOfIncarnation(info.incarnation) !== null;
}

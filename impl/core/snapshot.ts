/**
 * Snapshots: the executed prefix of the log as one value (the service state with its session
 * table, the running output digest, the configurations and the recent divergence checkpoints
 * after slot `slot`), serialized to an ASCII string so that state transfer can cut it into chunks
 * of bounded size and a receiver can check what it reassembled. A snapshot stands for exactly the
 * spec state of the chosen prefix 1..slot (proofs/truncation.md and proofs/snapshots.ts: SnapshotMatchesSpec).
 *
 * Pure: serialization is deterministic (entries in sorted order), decoding never throws (network
 * and disk input is refused with a reason, not asserted on), nothing reads a clock.
 */
import { Either, Schema } from "effect";
import { sessionsOf, withSession, type ServiceState, type Session } from "../../spec/service.ts";
import { ConfigurationSchema, type Configuration } from "./configuration.ts";
import type { Checkpoint } from "./messages.ts";
import { checkpointDigest } from "./monitor.ts";
import type { ReplicaContext } from "./state.ts";

/** The format tag written into every snapshot. */
export const snapshotFormat = "paxos-lease/snapshot@1";

/** What a snapshot holds: the state after executing slots 1..slot. */
export interface SnapshotContents<S, O> {
  readonly slot: number;
  readonly service: ServiceState<S, O>;
  readonly outputDigestA: number;
  readonly outputDigestB: number;
  /** The configurations governing slots > slot (the first governs slot + 1). */
  readonly configs: readonly Configuration[];
  /** The replica's own most recent checkpoints (the last one is at `slot` when a snapshot is taken). */
  readonly checkpoints: readonly Checkpoint[];
}

/** A serialized snapshot as a replica holds it, to persist and to serve to lagging peers. */
export interface SnapshotInfo {
  readonly slot: number;
  /** The divergence digest of the state after `slot` (monitor.ts `checkpointDigest`). */
  readonly digest: string;
  /** The digest of `data`, to check a reassembled transfer. */
  readonly contentDigest: string;
  /** The serialized contents: ASCII, so its length is its size in bytes. */
  readonly data: string;
}

const Envelope = Schema.Struct({
  format: Schema.Literal(snapshotFormat),
  slot: Schema.Int.pipe(Schema.positive()),
  app: Schema.Unknown,
  // [clientId, seq, output, command digest]. A snapshot written before sessions kept the digest
  // of their command has no fourth element: such a session answers no retry of its number
  // (sessionAnswer refuses it as reused), because nothing can vouch that the retry is the same command.
  sessions: Schema.Array(
    Schema.Tuple(
      Schema.String,
      Schema.Int.pipe(Schema.positive()),
      Schema.Unknown,
      Schema.optionalElement(Schema.String),
    ),
  ),
  executed: Schema.Int.pipe(Schema.nonNegative()),
  outputDigest: Schema.Tuple(Schema.Int, Schema.Int),
  configs: Schema.Array(ConfigurationSchema).pipe(Schema.minItems(1)),
  checkpoints: Schema.Array(Schema.Struct({ slot: Schema.Int.pipe(Schema.positive()), digest: Schema.String })),
});

const decodeEnvelope = Schema.decodeUnknownEither(Envelope, { onExcessProperty: "error" });

/** `json` with every character from U+007F up escaped: the string's length is its UTF-8 size. */
function escapeNonAscii(json: string): string {
  return json.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** Serialize `contents` (deterministic: the same state always gives the same string). */
export function encodeSnapshot<S, I, O>(ctx: ReplicaContext<S, I, O>, contents: SnapshotContents<S, O>): string {
  return escapeNonAscii(envelopeJson(ctx, contents));
}

/** The snapshot's JSON before escaping. */
function envelopeJson<S, I, O>(ctx: ReplicaContext<S, I, O>, contents: SnapshotContents<S, O>): string {
  const sessions = sessionsOf(contents.service).map(([clientId, session]) => [
    clientId,
    session.seq,
    session.output,
    session.command,
  ]);
  return JSON.stringify({
    format: snapshotFormat,
    slot: contents.slot,
    app: ctx.app.snapshot(contents.service.app),
    sessions,
    executed: contents.service.executed,
    outputDigest: [contents.outputDigestA, contents.outputDigestB],
    configs: contents.configs,
    checkpoints: contents.checkpoints,
  });
}

/** A 64-bit digest (two 32-bit lanes, hex) of a serialized snapshot. Detects corruption; not cryptographic. */
export function contentDigestOf(data: string): string {
  return digestUnless(data, 0x10000)!;
}

/**
 * `contentDigestOf(data)`, or null as soon as `data` holds a character >= `stop`: one pass both
 * checks that a snapshot's JSON needs no escaping and digests it (a separate scan for characters
 * to escape cost a third of a 44 MiB snapshot's step).
 */
function digestUnless(data: string, stop: number): string | null {
  let a = 0x811c9dc5;
  let b = 0x050c5d1f;
  for (let i = 0; i < data.length; i++) {
    const c = data.charCodeAt(i);
    if (c >= stop) return null;
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995) ^ (b >>> 15);
  }
  return `${(a >>> 0).toString(16).padStart(8, "0")}${(b >>> 0).toString(16).padStart(8, "0")}`;
}

/** The divergence digest of a snapshot's state (the checkpoint digest at its slot). */
export function snapshotDigest<S, I, O>(ctx: ReplicaContext<S, I, O>, contents: SnapshotContents<S, O>): string {
  return checkpointDigest(ctx, contents.service, contents.outputDigestA, contents.outputDigestB);
}

/** Take a snapshot: serialize `contents` and compute both digests. */
export function makeSnapshot<S, I, O>(ctx: ReplicaContext<S, I, O>, contents: SnapshotContents<S, O>): SnapshotInfo {
  const json = envelopeJson(ctx, contents);
  // Mostly ASCII already (values of plain text): then the JSON is the snapshot, digested in the same pass.
  const ascii = digestUnless(json, 0x7f);
  const data = ascii === null ? escapeNonAscii(json) : json;
  const contentDigest = ascii ?? contentDigestOf(data);
  return { slot: contents.slot, digest: snapshotDigest(ctx, contents), contentDigest, data };
}

/** Rebuild the contents from `data`, or say why `data` is not a snapshot of this application. Never throws. */
export function decodeSnapshot<S, I, O>(ctx: ReplicaContext<S, I, O>, data: string): SnapshotContents<S, O> | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch (e) {
    return `not JSON: ${e instanceof Error ? e.message : String(e)}`;
  }
  const envelope = decodeEnvelope(parsed);
  if (Either.isLeft(envelope)) return "not a paxos-lease snapshot";
  const e = envelope.right;
  let app: S;
  try {
    app = ctx.app.restore(e.app);
  } catch (error) {
    return `application state refused: ${error instanceof Error ? error.message : String(error)}`;
  }
  let sessions = ctx.service.start.sessions;
  const seen = new Set<string>();
  for (const [clientId, seq, output, command] of e.sessions) {
    if (seen.has(clientId)) return `client ${clientId} has two sessions`;
    seen.add(clientId);
    const session: Session<O> = { seq, command: command ?? "", output: output as O };
    sessions = withSession(sessions, clientId, session);
  }
  return {
    slot: e.slot,
    service: { app, sessions, executed: e.executed },
    outputDigestA: e.outputDigest[0] >>> 0,
    outputDigestB: e.outputDigest[1] >>> 0,
    configs: e.configs,
    checkpoints: e.checkpoints,
  };
}

/** What a snapshot claims to be: its slot and both digests (from a record or a transfer). */
export interface SnapshotClaim {
  readonly slot: number;
  readonly digest: string;
  readonly contentDigest: string;
}

/**
 * Check a complete snapshot against what it claims and rebuild its contents: the bytes' digest,
 * the slot inside, and the divergence digest of the rebuilt state must all match. Returns the
 * contents, or the reason to refuse it.
 */
export function verifySnapshot<S, I, O>(
  ctx: ReplicaContext<S, I, O>,
  data: string,
  claim: SnapshotClaim,
): SnapshotContents<S, O> | string {
  if (contentDigestOf(data) !== claim.contentDigest)
    return `content digest ${contentDigestOf(data)} is not the claimed ${claim.contentDigest}`;
  const contents = decodeSnapshot(ctx, data);
  if (typeof contents === "string") return contents;
  if (contents.slot !== claim.slot) return `snapshot of slot ${contents.slot}, claimed ${claim.slot}`;
  const digest = snapshotDigest(ctx, contents);
  if (digest !== claim.digest) return `state digest ${digest} is not the claimed ${claim.digest}`;
  return contents;
}

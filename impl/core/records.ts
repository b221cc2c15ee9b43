/**
 * The durable records a replica persists: what it must remember across a crash so that it never
 * breaks a promise or contradicts a vote (Paxos Made Simple, section 2.3: "an acceptor must
 * remember this information even if it fails and then restarts"). Each record is the disk image
 * of one spec variable update: `promise` of maxBal (Phase1b), `vote` of votes (Phase2b), `chosen`
 * of the learned log; a `snapshot` stands for the executed prefix it covers, after which the
 * records it supersedes may be deleted (`compactRecords`). One record is no spec variable's: the
 * `handOver` of a removed replica (rule R5), which only lets it retire after a restart.
 *
 * A record is produced only as a `Persist` effect, and `Recover` rebuilds the replica from the
 * records alone. Lease grants are deliberately NOT persisted: a restarted replica waits out one
 * lease instead (docs/impl.md, rule L4). Nothing here may hold state.
 */
import { Schema } from "effect";
import { Ballot } from "./ballot.ts";
import { Slot, valueSchema, type Value } from "./messages.ts";

/** maxBal := ballot. Persisted before the Promise (or vote) that reveals it leaves the replica. */
export interface PromiseRecord {
  readonly _tag: "promise";
  readonly ballot: Ballot;
}

/** votes[slot] := (ballot, value). Persisted before the Accepted that reports it leaves the replica. */
export interface VoteRecord<I> {
  readonly _tag: "vote";
  readonly slot: number;
  readonly ballot: Ballot;
  readonly value: Value<I>;
}

/**
 * log[slot] := value, a value this replica learned is chosen. When its own vote at `slot` holds
 * that value (the usual case: it voted in the ballot that chose it), the record names the vote's
 * `ballot` instead of repeating the value ({@link ChosenVoteRecord}); only a value learned
 * without such a vote (catch-up) is written out here.
 */
export interface ChosenRecord<I> {
  readonly _tag: "chosen";
  readonly slot: number;
  readonly value: Value<I>;
}

/**
 * log[slot] := the value of this replica's vote record at `slot` in `ballot`, which precedes it
 * on disk: the last vote record at `slot` before this one. `compactRecords` keeps that vote as
 * long as it keeps this record, and `Recover` refuses a reference it cannot resolve.
 */
export interface ChosenVoteRecord {
  readonly _tag: "chosen";
  readonly slot: number;
  readonly ballot: Ballot;
}

/**
 * The executed prefix 1..slot as one value: the serialized service state, session table, output
 * digest and configurations after executing slot `slot` (`data`, impl/core/snapshot.ts), its
 * divergence `digest`, the digest of `data` itself, and the acceptor's maxBal when it was taken.
 * Once it is durable the replica forgets its votes at slots <= slot (the slots are chosen and
 * executed into this snapshot) and its log at slots <= logTruncatedUpTo.
 */
export interface SnapshotRecord {
  readonly _tag: "snapshot";
  readonly slot: number;
  readonly digest: string;
  readonly contentDigest: string;
  readonly maxBal: Ballot;
  /** The log is kept above this slot (at most `slot`); chosen records at or below it are superseded. */
  readonly logTruncatedUpTo: number;
  readonly data: string;
}

/**
 * This replica's removal, chosen at slot `epoch`, was handed over (rule R5): a member of a
 * configuration that goes on without it said that every slot before the removal governs is chosen.
 * Written once, when the replica first learns it; after a restart it retires `retireGraceMs` after
 * the restart at the latest, without asking again (the members it knows may all have retired
 * since). No spec variable stands for it: liveness only. Never superseded by a snapshot.
 */
export interface HandOverRecord {
  readonly _tag: "handOver";
  readonly epoch: number;
}

/** Every durable record. */
export type DurableRecord<I> =
  PromiseRecord | VoteRecord<I> | ChosenRecord<I> | ChosenVoteRecord | SnapshotRecord | HandOverRecord;

/** The Schema of every durable record, given the application's input Schema. */
export function recordSchema<I, IE>(input: Schema.Schema<I, IE>): Schema.Schema<DurableRecord<I>, DurableRecord<IE>> {
  const value = valueSchema(input);
  return Schema.Union(
    Schema.TaggedStruct("promise", { ballot: Ballot }),
    Schema.TaggedStruct("vote", { slot: Slot, ballot: Ballot, value }),
    Schema.TaggedStruct("chosen", { slot: Slot, value }),
    Schema.TaggedStruct("chosen", { slot: Slot, ballot: Ballot }),
    Schema.TaggedStruct("snapshot", {
      slot: Slot,
      digest: Schema.String,
      contentDigest: Schema.String,
      maxBal: Ballot,
      logTruncatedUpTo: Schema.Int.pipe(Schema.nonNegative()),
      data: Schema.String,
    }),
    Schema.TaggedStruct("handOver", { epoch: Slot }),
  );
}

/**
 * What `compactRecords` reads of a record: its tag, the slot of a vote or chosen record, and a
 * snapshot's slot and `logTruncatedUpTo`. Every durable record is one; a store can also hand in
 * just these fields of each stored record, without decoding the values it holds.
 */
export type RecordSummary =
  | { readonly _tag: "promise" | "handOver" }
  | { readonly _tag: "vote" | "chosen"; readonly slot: number }
  | { readonly _tag: "snapshot"; readonly slot: number; readonly logTruncatedUpTo: number };

/**
 * The records `Recover` still needs once the latest snapshot record is durable: that snapshot,
 * the one before it (still served to lagging peers), every record after the latest, and before it
 * only the votes and chosen records above its `logTruncatedUpTo` and the hand-over record (a vote
 * at or below the snapshot's slot is kept for the chosen record that may name it, and `Recover`
 * forgets it again). Everything else is superseded: promises (the snapshot carries maxBal), older
 * snapshots, and votes and chosen values it covers. A driver may delete the superseded records once the snapshot is
 * durable, and never before; `Recover` gives the same state from the compacted records as from
 * all of them. Returns the very objects given, in order (records or their summaries).
 *
 * `pinned`: slots of older snapshots kept as well, because the core still serves them (its
 * `servedSnapshot`, `pinnedSnapshots`): with values at rest a transfer's chunks are read from the
 * snapshot's record (impl/core/at-rest.ts). `Recover` reads past them to the latest two.
 *
 * `pinnedVotes`: slots whose vote records are kept below the log's truncation point as well,
 * because the key-value store names them (rule V3, proofs/store-at-rest.md: a value at rest is read
 * back from the vote that wrote it). `Recover` reads such a vote and forgets it again at the
 * snapshot after it, as it does every vote at or below a snapshot's slot.
 */
export function compactRecords<T extends RecordSummary>(
  records: readonly T[],
  pinned: readonly number[] = [],
  pinnedVotes: ReadonlySet<number> = new Set(),
): T[] {
  let last = -1;
  let prior = -1;
  for (let i = 0; i < records.length; i++) {
    if (records[i]!._tag !== "snapshot") continue;
    prior = last;
    last = i;
  }
  if (last < 0) return records.slice();
  const snapshot = records[last] as RecordSummary & { readonly _tag: "snapshot" };
  const kept: T[] = [];
  for (let i = 0; i < last; i++) {
    const r: RecordSummary = records[i]!;
    if (i === prior) kept.push(records[i]!);
    else if (r._tag === "snapshot" && pinned.includes(r.slot)) kept.push(records[i]!);
    else if (r._tag === "vote" && (r.slot > snapshot.logTruncatedUpTo || pinnedVotes.has(r.slot)))
      kept.push(records[i]!);
    else if (r._tag === "chosen" && r.slot > snapshot.logTruncatedUpTo) kept.push(records[i]!);
    else if (r._tag === "handOver") kept.push(records[i]!);
  }
  for (let i = last; i < records.length; i++) kept.push(records[i]!);
  return kept;
}

/**
 * The durable records a replica persists: what it must remember across a crash so that it never
 * breaks a promise or contradicts a vote (Paxos Made Simple, section 2.3: "an acceptor must
 * remember this information even if it fails and then restarts"). Each record is the disk image
 * of one spec variable update: `promise` of maxBal (Phase1b), `vote` of votes (Phase2b), `chosen`
 * of the learned log.
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

/** log[slot] := value, a value this replica learned is chosen. */
export interface ChosenRecord<I> {
  readonly _tag: "chosen";
  readonly slot: number;
  readonly value: Value<I>;
}

/** Every durable record. Issue #5 adds snapshot records; `Recover` will accept them then. */
export type DurableRecord<I> = PromiseRecord | VoteRecord<I> | ChosenRecord<I>;

/** The Schema of every durable record, given the application's input Schema. */
export function recordSchema<I, IE>(input: Schema.Schema<I, IE>): Schema.Schema<DurableRecord<I>, DurableRecord<IE>> {
  const value = valueSchema(input);
  return Schema.Union(
    Schema.TaggedStruct("promise", { ballot: Ballot }),
    Schema.TaggedStruct("vote", { slot: Slot, ballot: Ballot, value }),
    Schema.TaggedStruct("chosen", { slot: Slot, value }),
  );
}

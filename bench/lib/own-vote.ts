/**
 * What the leader's own vote costs its replies, read off the marks of a write-timeline run
 * (bench/write-timeline.ts `--marks`): the leader counts its own vote at once (its Accepts and the
 * next slot's proposal never wait for it) and only its replies wait until that vote is durable. Two
 * other rules would answer sooner, and this says by how much, slot by slot, on the same marks:
 *
 * - a quorum of the two followers (the leader's own vote counted only once durable): a slot whose
 *   second follower's Accepted was stepped before the leader learned that its own vote was durable
 *   would have been answered then;
 * - a main thread that waits for its own vote in Atomics.wait instead of its event loop: only the
 *   slots whose reply waited for that notice while the main thread made no other mark (idle) would
 *   gain, and at most the notice's whole way back from the fsync.
 *
 * Nothing is replayed: it is an upper bound of each rule's gain with every other timing unchanged.
 */
import { Marks, ownVoteHandOver, type ThreadMarks } from "./write-timeline.ts";

/** The percentiles reported, in microseconds. */
export interface Spread {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly mean: number;
}

/** The result of {@link ownVoteCost}. */
export interface OwnVoteCost {
  /** Slots whose leader marks hold its Accept, its own vote durable and two Accepteds stepped. */
  readonly slots: number;
  /** Slots whose first reply waited for the leader's own vote (durable after the first Accepted was stepped). */
  readonly waited: number;
  /** Of those, the slots whose second follower's Accepted was stepped before the own vote was known durable. */
  readonly secondFollowerFirst: number;
  /** From the leader's Accept to the first reply's release (its quorum's votes durable), as the leader counts now. */
  readonly readyNow: Spread;
  /** The same, had a quorum of the two followers sufficed. */
  readonly readyWithFollowersQuorum: Spread;
  /** Slots whose reply waited for the own vote's notice on an idle main thread, and that wait in all (microseconds). */
  readonly idleNotice: { readonly slots: number; readonly totalUs: number };
}

function spread(values: number[]): Spread {
  values.sort((a, b) => a - b);
  const at = (q: number): number => values[Math.min(values.length - 1, Math.floor(q * values.length))] ?? 0;
  const mean = values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), mean };
}

/**
 * What the leader's own vote cost its replies in a run of `leader` with these marks (see the module
 * comment), counting the slots whose Accept left at `fromUs` or later (the measured window: a run's
 * marks hold its warm-up too). Default: every slot. A slot's own vote is followed as
 * bench/lib/write-timeline.ts follows it: the hand-over that holds it (`ownVoteHandOver`: found by
 * its slot, since it may come before or after the Accept), the storage thread's next take, write
 * and fsync, and the main thread's notice of that batch.
 */
export function ownVoteCost(leader: number, threads: readonly ThreadMarks[], fromUs = 0): OwnVoteCost {
  const mainMarks = threads.filter((t) => t.replica === leader && t.main).flatMap((t) => t.marks);
  const main = new Marks(mainMarks);
  const storage = new Marks(threads.filter((t) => t.replica === leader && !t.main).flatMap((t) => t.marks));
  const handOver = ownVoteHandOver(mainMarks);
  const sends = threads
    .filter((t) => t.replica === leader && t.main)
    .flatMap((t) => t.marks.filter((m) => m.stage === "send-accept" && m.timeUs >= fromUs))
    .sort((a, b) => a.timeUs - b.timeUs);
  const seen = new Set<number>();
  const now: number[] = [];
  const withFollowers: number[] = [];
  let waited = 0;
  let secondFirst = 0;
  let idleSlots = 0;
  let idleUs = 0;
  for (const send of sends) {
    // A slot's Accept is re-sent rarely (catch-up, a new ballot); its first send is its path.
    if (seen.has(send.key)) continue;
    seen.add(send.key);
    const start = send.timeUs;
    const accepted = main.all("step-accepted", send.key).filter((t) => t >= start);
    if (accepted.length < 2) continue;
    const post = handOver(send.key, accepted[0]!);
    const take = post === undefined ? undefined : storage.first("storage-take", post.timeUs);
    const written = take === undefined ? undefined : storage.first("storage-written", take);
    const synced = written === undefined ? undefined : storage.first("storage-synced", written);
    const own = synced === undefined ? undefined : main.first("durable", synced, post!.key);
    if (own === undefined) continue;
    const first = accepted[0]!;
    const ready = Math.max(own, first);
    now.push(ready - start);
    withFollowers.push(Math.min(ready, accepted[1]!) - start);
    if (own <= first) continue;
    waited += 1;
    if (accepted[1]! < own) secondFirst += 1;
    const from = Math.max(synced!, first);
    if (from < own && main.within(from, own) === 0) {
      idleSlots += 1;
      idleUs += own - from;
    }
  }
  return {
    slots: now.length,
    waited,
    secondFollowerFirst: secondFirst,
    readyNow: spread(now),
    readyWithFollowersQuorum: spread(withFollowers),
    idleNotice: { slots: idleSlots, totalUs: idleUs },
  };
}

/**
 * EntriesVouched (proofs/store-at-rest.md): every value of the key-value store that a replica names
 * by the vote that wrote it (`LearnerState.origins`, rule V1's bookkeeping) is read back from that
 * replica's disk by rule V2 (the record is there, rule V3, and its command wrote exactly the value
 * the reference describes), and is the value the store holds under that key now: in memory, that
 * very value; at rest, that very reference. And every entry the store holds at rest is one so
 * named. So the abstraction function, which maps each entry at rest to the value V2 reads back
 * maps the store to the very abstract state whose digest the replica keeps.
 */
import type { KvInput, KvOutput, KvState } from "../spec/kv.ts";
import { pmForEach, pmGet } from "../spec/persistent-map.ts";
import type { Application } from "../spec/state-machine.ts";
import {
  readEntryFromRecords,
  sameEntry,
  type DurableRecord,
  type ReplicaState,
  type StoredEntry,
} from "../impl/core/testing/index.ts";
import { violated } from "./violation.ts";

/**
 * EntriesVouched for replica `id` after a step, its disk holding `durable`. Returns how many values
 * the replica names by their votes (0 when the rule is off).
 */
export function checkEntriesVouched<S, I, O>(
  id: number,
  state: ReplicaState<S, I, O>,
  durable: readonly DurableRecord<I>[],
): number {
  if (state.ctx.storeAtRest === null) return 0;
  // `storeAtRest` is set only for the key-value store (impl/core/store-at-rest.ts, `storeAtRestFor`).
  const app = state.ctx.app as unknown as Application<KvState, KvInput, KvOutput>;
  const store = state.learner.service.app as unknown as KvState;
  const read = readEntryFromRecords(app, durable as readonly DurableRecord<KvInput>[]);
  const origins = state.learner.origins;
  pmForEach(store.entries, (key, entry) => {
    if (typeof entry === "string") return;
    const named = pmGet(origins, key);
    if (named === undefined || !sameEntry(named, entry as StoredEntry))
      violated({
        check: "EntriesVouched",
        level: "Service",
        message: `replica ${id} holds the value under ${JSON.stringify(key)} at rest, but names ${named === undefined ? "no vote" : `the vote at slot ${named.slot}, command ${named.index}`} for it`,
      });
  });
  pmForEach(origins, (key, ref) => {
    let value: string;
    try {
      if (ref.key !== key)
        throw new Error(`the reference under ${JSON.stringify(key)} names ${JSON.stringify(ref.key)}`);
      value = read(ref);
    } catch (error) {
      violated({
        check: "EntriesVouched",
        level: "Service",
        message: `replica ${id}: ${error instanceof Error ? error.message : String(error)}`,
      });
    }
    const held = pmGet(store.entries, key);
    if (held !== value && !(held !== undefined && typeof held !== "string" && sameEntry(held as StoredEntry, ref)))
      violated({
        check: "EntriesVouched",
        level: "Service",
        message: `replica ${id} names the value under ${JSON.stringify(key)} by its vote at slot ${ref.slot}, command ${ref.index}, but holds another value there now`,
      });
  });
  return state.learner.origins.size;
}

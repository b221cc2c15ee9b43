/**
 * EntriesVouched (proofs/store-at-rest.md): every value of the key-value store that a replica names
 * by the vote that wrote it (`LearnerState.origins`, rule V1's bookkeeping) is read back from that
 * replica's disk by rule V2 (the record is there, rule V3, and its command wrote exactly the value
 * the reference describes), and is the value the store holds under that key now: the abstraction
 * function may map the reference to the record's value, and it is the same abstract value.
 */
import type { KvInput, KvOutput, KvState } from "../spec/kv.ts";
import { pmForEach, pmGet } from "../spec/persistent-map.ts";
import type { Application } from "../spec/state-machine.ts";
import { readEntryFromRecords, type DurableRecord, type ReplicaState } from "../impl/core/testing/index.ts";
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
  if (state.ctx.storeAtRest === null || state.learner.origins.size === 0) return 0;
  // `storeAtRest` is set only for the key-value store (impl/core/store-at-rest.ts, `storeAtRestFor`).
  const app = state.ctx.app as unknown as Application<KvState, KvInput, KvOutput>;
  const store = state.learner.service.app as unknown as KvState;
  const read = readEntryFromRecords(app, durable as readonly DurableRecord<KvInput>[]);
  pmForEach(state.learner.origins, (key, ref) => {
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
    if (pmGet(store.entries, key) !== value)
      violated({
        check: "EntriesVouched",
        level: "Service",
        message: `replica ${id} names the value under ${JSON.stringify(key)} by its vote at slot ${ref.slot}, command ${ref.index}, but holds another value there now`,
      });
  });
  return state.learner.origins.size;
}

/**
 * A state transfer's chunks stored as they come: after each step, the chunk the core took is
 * handed to the storage thread, which writes it to a stage of the store (`snapshot_staging`); the
 * snapshot the core then installs is stored as those bytes, moved into place by its record's
 * commit, instead of being serialized again from the decoded state (storage-thread.ts,
 * `receivedChunk`, `receivedInstalled`). The core decides everything (which chunk it takes,
 * whether it installs); this only watches its steps, and changes no state and no effect.
 */
import type { StepFunction } from "./driver.ts";
import type { KvMessage, KvRecord, KvReplicaState, KvStoredMessage } from "./core-adapter.ts";
import type { KvInput, KvOutput } from "../../spec/kv.ts";

/** Where the chunks go (a StorageThread). */
export interface ReceivedStore {
  receivedChunk(slot: number, contentDigest: string, offset: number, data: string): void;
  receivedDropped(): void;
  receivedInstalled(record: KvRecord, slot: number, contentDigest: string, totalBytes: number): void;
}

type KvStep = StepFunction<KvReplicaState, KvMessage, KvRecord, KvInput, KvOutput, KvStoredMessage>;

/** `step`, with every chunk it takes staged in `store` and the snapshot it installs stored as them. */
export function stagingStep(step: KvStep, store: ReceivedStore): KvStep {
  return (state, event) => {
    const result = step(state, event);
    const before = state.learner.transfer;
    const after = result.state.learner.transfer;
    if (event._tag === "Receive" && event.message._tag === "SnapshotChunk") {
      const m = event.message;
      const end = m.offset + m.data.length;
      // Installed: the chunk completed the transfer, and the snapshot of its slot was persisted.
      const installed =
        after === null && end === m.totalBytes
          ? result.effects.find((e) => e._tag === "Persist" && e.record._tag === "snapshot" && e.record.slot === m.slot)
          : undefined;
      // Taken: the transfer grew by this chunk (a duplicate or stale chunk leaves it as it was).
      const taken =
        installed !== undefined ||
        (after !== null &&
          after !== before &&
          after.slot === m.slot &&
          after.contentDigest === m.contentDigest &&
          after.received === end);
      if (taken) store.receivedChunk(m.slot, m.contentDigest, m.offset, m.data);
      if (installed !== undefined && installed._tag === "Persist") {
        store.receivedInstalled(installed.record, m.slot, m.contentDigest, m.totalBytes);
        return result;
      }
    }
    if (before !== null && after === null) store.receivedDropped();
    return result;
  };
}

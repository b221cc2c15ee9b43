/**
 * A state transfer's chunks stored as they come: after each step, the chunk the core took is
 * handed to the storage thread, which writes it to a stage of the store (`snapshot_staging`); the
 * snapshot the core then installs is stored as those bytes, moved into place by its record's
 * commit, instead of being serialized again from the decoded state (storage-thread.ts,
 * `receivedChunk`, `receivedInstalled`). The stage outlives a restart: `Recover` describes it to
 * the core (`kept`), the driver hands its chunks back a piece at a time (`KeptChunks`, read from
 * the store by `keptPiece`), the core takes them again as if they had just come
 * (impl/core/transfer.ts, `takeKept`), and once that resumption ends this tells the store how much
 * it took, so that the stage goes on from there. The core decides everything (which chunk it
 * takes, whether it installs); this only watches its steps, and changes no state and no effect.
 */
import type { KeptTransfer, SnapshotChunkMsg, TransferRefusal } from "../core/index.ts";
import { resumingKept } from "../core/index.ts";
import type { StepFunction } from "./driver.ts";
import type { KvMessage, KvRecord, KvReplicaState, KvStoredMessage } from "./core-adapter.ts";
import type { KvInput, KvOutput } from "../../spec/kv.ts";

/** Where the chunks go (a StorageThread). */
export interface ReceivedStore {
  receivedChunk(from: number, chunk: SnapshotChunkMsg): void;
  receivedDropped(): void;
  receivedInstalled(record: KvRecord, slot: number, contentDigest: string, totalBytes: number): void;
  /** How many bytes of the transfer it kept the core took again after the restart (0: none; the stage goes). */
  resumed(taken: number): void;
}

/** What came of a kept transfer, for the operator: the transfer, the bytes taken again, a refusal met. */
export interface Resumption {
  readonly kept: KeptTransfer;
  readonly taken: number;
  readonly refused: TransferRefusal | null;
}

type KvStep = StepFunction<KvReplicaState, KvMessage, KvRecord, KvInput, KvOutput, KvStoredMessage>;

/**
 * `step`, with every chunk it takes staged in `store` and the snapshot it installs stored as them;
 * the end of a kept transfer's resumption (its last piece, a chunk not taken, a refusal, or any
 * other step that ends it: a tick that gives it up, a chunk from the network) tells `store` (and
 * `onResumed`) how much the core took again, before what that step did to the transfer: 0 unless
 * the kept transfer goes on from there, so that a resumption given up counts as none.
 */
export function stagingStep(step: KvStep, store: ReceivedStore, onResumed?: (resumption: Resumption) => void): KvStep {
  return (state, event) => {
    const result = step(state, event);
    const before = state.learner.transfer;
    const after = result.state.learner.transfer;
    if (event._tag === "Recover") {
      const kept = event.kept;
      // Not resumed at all (no longer useful): the stage goes. Resumed: told when it ends.
      if (kept !== undefined && !resumingKept(result.state)) {
        store.resumed(0);
        onResumed?.({ kept, taken: 0, refused: null });
      }
      return result;
    }
    if (before?.resuming === true && after?.resuming !== true) {
      const { from, slot, digest, contentDigest, totalBytes } = before;
      const kept = { from, slot, digest, contentDigest, totalBytes };
      const pieced = event._tag === "KeptChunks";
      // Taken up: the kept transfer goes on from the bytes taken again (or this step's chunk
      // installs it). Given up instead (a tick after an election timeout without a piece, a
      // refusal, a transfer of another snapshot): nothing was resumed, and the stage goes.
      const goesOn =
        after === null
          ? result.effects.some((e) => e._tag === "Persist" && e.record._tag === "snapshot" && e.record.slot === slot)
          : after.slot === slot && after.contentDigest === contentDigest && after.received >= before.received;
      const taken = !goesOn ? 0 : pieced ? (after?.received ?? 0) : before.received;
      const refused = pieced
        ? (result.effects.find((e): e is TransferRefusal => e._tag === "TransferRefused") ?? null)
        : null;
      store.resumed(taken);
      onResumed?.({ kept, taken, refused });
    }
    // Kept chunks taken again: the stage holds them already.
    if (event._tag === "KeptChunks") return result;
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
      if (taken) store.receivedChunk(event.from, m);
      if (installed !== undefined && installed._tag === "Persist") {
        store.receivedInstalled(installed.record, m.slot, m.contentDigest, m.totalBytes);
        return result;
      }
    }
    if (before !== null && after === null) store.receivedDropped();
    return result;
  };
}

/**
 * The replica tunings of the simulated world: the configuration fields the world sets (ids and
 * seed are the world's own), the default of the suites and the set a swarm profile draws from.
 */
import { longTextChars } from "../../spec/hash.ts";
import { parseConfig, type Config } from "../../impl/core/testing/index.ts";

/** Replica configuration fields the world sets (ids and seed are the world's). */
export interface ReplicaTuning {
  readonly leaseMs: number;
  readonly clockDriftPpmMax: number;
  readonly leaseMarginMs: number;
  readonly electionTimeoutMsMin: number;
  readonly electionTimeoutMsMax: number;
  readonly heartbeatIntervalMs: number;
  readonly pipelineSlotsMax: number;
  readonly batchCommandsMax: number;
  readonly checkpointIntervalSlots: number;
  readonly requestsPendingMax: number;
  readonly catchUpSlotsMax: number;
  readonly snapshotIntervalSlots: number;
  readonly transferChunkBytesMax: number;
  readonly reconfigAlphaSlots: number;
  /** Adaptive batching (impl/core/config.ts), as the runtime's replicas run. */
  readonly adaptiveBatching: boolean;
  /**
   * Values at rest (impl/core/at-rest.ts): executed slots' values kept on disk only, read back by
   * the world for the messages that carry them. On in every tuning: the checks then cover the rule
   * wherever the suites reach.
   */
  readonly valuesAtRest: boolean;
  /**
   * CheckQuorum counts the time the leader ran (impl/core/check-quorum.ts), as the runtime's
   * replicas do by default. On in every tuning but the last, whose campaign
   * (refinement-tests/suites.test.ts) checks CheckQuorum counting the clock, as a replica
   * configured with the option off runs.
   */
  readonly checkQuorumCountsRunTime: boolean;
  /**
   * A follower stalled past its election deadline waits a heartbeat interval for its leader
   * (impl/core/config.ts; the core's default, off, when absent). Only tuning 10 sets it.
   */
  readonly electionWaitsAfterStall?: boolean;
  /**
   * A candidate's Prepare resends back off, 1, 2, 4 ... heartbeat intervals apart
   * (impl/core/config.ts; the core's default, off, when absent). Only tuning 10 sets it.
   */
  readonly prepareResendBackoff?: boolean;
  /**
   * A Promise omits the votes at its acceptor's executed slots and reports them chosen; a candidate
   * fetches them by catch-up (impl/core/config.ts; the core's default, off, when absent). Only
   * tuning 10 sets it.
   */
  readonly promiseOmitsChosen?: boolean;
  /**
   * The store's values of at least this many code units named by the votes that wrote them, and
   * those vote records kept by compaction (impl/core/config.ts, rules V1 and V3 of
   * proofs/store-at-rest.md; the core's default, 0: none, when absent). Only tuning 10 sets it, to
   * `longTextChars`, so that the long values it writes are named and the short ones are not.
   */
  readonly storeAtRestCharsMin?: number;
  /**
   * Commands executed between two snapshots (`snapshotIntervalCommands`; the core's default, none,
   * when absent). No tuning of the swarm sets it, so that every committed seed runs as it did;
   * world.test lays it over the draws with a longer slot interval, so that snapshots come by commands.
   */
  readonly snapshotIntervalCommands?: number;
  /** Bytes of log kept at and below the latest snapshot (the core's default, 16 MiB, when absent). */
  readonly logTailBytes?: number;
  /**
   * Bytes of values in a batch, in a catch-up reply and executed in one step (the core's default,
   * 1 MiB, when absent: far above every value the world makes). Only the `small-steps` suite
   * tuning sets it.
   */
  readonly batchBytesMax?: number;
  /**
   * Long values hashed as the runtime hashes them (not a replica configuration field): the store
   * and its service are built with a passed-in hash of long texts (spec/hash.ts `fnvTextHash`, as
   * the runtime passes SHA-256), and the value of every fourth operation a client starts is at least
   * `longTextChars` long, so that the entry hashes, command digests and digest agreement of the
   * passed-in hash are checked. Off when absent; tuning 10 sets it, the swarm draws it for a quarter
   * of its runs (`Profile.longValues`) and the `long-values` suite tuning lays it over every run.
   */
  readonly longValues?: boolean;
  /**
   * The storage thread answers a `ReadEntries` late (not a replica configuration field; rule V4,
   * proofs/store-at-rest.md): the values are read from the disk when the step that asked is
   * carried out, as the runtime's storage thread reads them in order with the appends, and the
   * `EntriesRead` is stepped at the first advance of true time at or past a delay drawn from the
   * world's seed for each read, uniform in [0, this] ms (a quarter at once, as without it), so that
   * a lease lapses, a leader changes, a transfer installs, a change or a compaction runs in
   * between; a crash loses the answer with the process. Off (every answer at once) when absent; no
   * tuning sets it: the swarm draws it late for runs of tuning 10 (`Profile.readsLateMsMax`).
   */
  readonly readsLateMsMax?: number;
  /**
   * With `readsLateMsMax`: one answer in eight of the faults (none in the liveness phase) carries
   * a value with one code unit changed, as a storage thread that read the wrong record would; the
   * core must refuse it (`checkEntryValue` throws) and its replica stops, as the runtime's does on
   * a throw from its step. Off when absent; the swarm draws it with the delays, for half of them.
   */
  readonly readsWrong?: boolean;
  /**
   * Appends near the value limit (not a replica configuration field): every append a client starts
   * carries 200,000 euro signs (world/clients.ts `nearLimitText`: 600,000 bytes of UTF-8 in 200,000
   * code units), so that two appends to one key build a whole over 1 MiB of UTF-8, which execution
   * refuses from feature level 4 on and executes below it (spec/kv.ts, `valueBytesMax`). Off when
   * absent; no tuning sets it: the explorer's bounds for the value limit lay it over their runs
   * (`--value-limit`), with the feature level, so that every committed seed stays what it was.
   */
  readonly valueLimit?: boolean;
  /**
   * The feature level the replicas raise the log to when they lead (impl/core/config.ts; the
   * core's default, 1, when absent), with the bounds of the session table at level 2. No tuning
   * sets them: the `bounded-sessions` (level 2) and `opened-sessions` (level 3) suite tunings lay
   * them over every run (refinement-tests/suite.ts),
   * so that the swarm's own draws, and every committed seed, stay what they were.
   */
  readonly featureLevel?: number;
  readonly sessionsMax?: number;
  readonly sessionOutputBytesMax?: number;
  /**
   * The disk keeps the chunks of a state transfer the core took, as the runtime's store does
   * (`transfer_received`, impl/runtime/storage.ts), and a restart hands them to `Recover`, which
   * resumes the transfer where it stopped (not a replica configuration field: the world's driver).
   * Off when absent: a restarted receiver starts its transfer over. No tuning sets it: the
   * `resume-transfers` suite tuning lays it over every run (refinement-tests/suite.ts), so that
   * the swarm's own draws, and every committed seed, stay what they were.
   */
  readonly resumeTransfers?: boolean;
  /**
   * The disk compacts in pieces of this many records, as the runtime's storage thread does
   * (`compactSome`, impl/runtime/storage.ts; not a replica configuration field: the world's
   * driver): the flush that makes a compaction due only starts it, with the pins of that moment;
   * each later flush of the replica (a group of appends, or a tick's) decides one piece of the
   * records it covers, from the top down, and the one after the last piece deletes what they
   * decided, together. Appends, pins, reads and crashes (which lose the run, nothing deleted) come
   * between. Absent: each compaction runs whole as its flush makes it due. Tuning 10 sets it.
   */
  readonly compactionPieceRecords?: number;
}

/**
 * The replica tuning of the suites. The drift bound is large (5%) so that lease arithmetic is
 * exercised, not rounded away; pipelines and batches are short so that small runs fill them;
 * checkpoints are frequent so that the divergence monitor compares often; snapshots every few
 * slots and small transfer chunks, so that truncation and multi-chunk state transfers happen in
 * short runs; an alpha as short as the pipeline, so that changes take effect within a run.
 */
export const defaultTuning: ReplicaTuning = {
  leaseMs: 300,
  clockDriftPpmMax: 50_000,
  leaseMarginMs: 10,
  electionTimeoutMsMin: 400,
  electionTimeoutMsMax: 600,
  heartbeatIntervalMs: 50,
  pipelineSlotsMax: 4,
  batchCommandsMax: 3,
  checkpointIntervalSlots: 4,
  requestsPendingMax: 16,
  catchUpSlotsMax: 4,
  snapshotIntervalSlots: 2,
  transferChunkBytesMax: 120,
  reconfigAlphaSlots: 4,
  adaptiveBatching: false,
  valuesAtRest: true,
  checkQuorumCountsRunTime: true,
};

/**
 * The tunings a swarm profile chooses from: the default; everything at its tightest (a pipeline
 * and batch of one, catch-up one slot at a time, a checkpoint and a snapshot every slot, two
 * pending requests, 16-byte transfer chunks, alpha = 1); perfect clocks with no margin at all; a
 * long lease with slow heartbeats and a deeper pipeline (and so a longer alpha); the largest
 * drift bound. Then the explorer's: sparse timers. Then the runtime's batching: the default with
 * adaptive batching on, as every real replica runs (commands wait while a slot is in flight).
 * Then the proportions of the real defaults (catch-up batches far shorter than the log between
 * snapshots), so that a replica added to a cluster that has run for a while catches up on a long
 * log, or from a snapshot older than its own addition, before it reaches the slot that added it.
 * Then the shortest log tail below a snapshot, so that lagging peers are caught up by transfer.
 * Then CheckQuorum counting the clock (the option off). Last, the runtime's own settings: adaptive
 * batching, followers that wait for their leader after a stall of their own, and long values
 * folded by a passed-in hash.
 */
export const tunings: readonly ReplicaTuning[] = [
  defaultTuning,
  {
    ...defaultTuning,
    pipelineSlotsMax: 1,
    batchCommandsMax: 1,
    catchUpSlotsMax: 1,
    checkpointIntervalSlots: 1,
    requestsPendingMax: 2,
    snapshotIntervalSlots: 1,
    transferChunkBytesMax: 16,
    reconfigAlphaSlots: 1,
  },
  { ...defaultTuning, clockDriftPpmMax: 0, leaseMarginMs: 0 },
  {
    ...defaultTuning,
    leaseMs: 900,
    electionTimeoutMsMin: 1000,
    electionTimeoutMsMax: 1400,
    heartbeatIntervalMs: 120,
    pipelineSlotsMax: 8,
    reconfigAlphaSlots: 8,
    snapshotIntervalSlots: 10,
  },
  // The largest drift bound the configuration accepts (10%): the widest gap between what a
  // leader trusts and what its grants promise, where the lease arithmetic of rules L2 and L4 matters most.
  { ...defaultTuning, clockDriftPpmMax: 100_000 },
  // Sparse timers (the exhaustive explorer's; the swarm generator does not draw it): a
  // heartbeat close to the lease and election timeouts just above it, so that a leader change
  // takes few instants of time, and a pipeline and batch of one.
  {
    ...defaultTuning,
    heartbeatIntervalMs: 200,
    electionTimeoutMsMin: 320,
    electionTimeoutMsMax: 340,
    pipelineSlotsMax: 1,
    batchCommandsMax: 1,
    reconfigAlphaSlots: 2,
  },
  // The runtime's adaptive batching (see above).
  { ...defaultTuning, adaptiveBatching: true },
  // The real defaults' proportions (see above): long catch-up, snapshots older than an addition.
  { ...defaultTuning, catchUpSlotsMax: 2, snapshotIntervalSlots: 12 },
  // The log's tail at its shortest: after each snapshot the log keeps only the snapshot's own slot
  // below it, so that a peer lagging behind the latest snapshot takes a state transfer rather than
  // log entries (with 1 MiB values the real default tail, 16 MiB, is a few slots).
  { ...defaultTuning, catchUpSlotsMax: 2, snapshotIntervalSlots: 6, logTailBytes: 1 },
  // CheckQuorum counting the clock, the option off (9; the swarm does not draw it: suites.test.ts
  // runs a campaign of its own with it).
  { ...defaultTuning, checkQuorumCountsRunTime: false },
  // As the runtime's replicas run (10; the swarm draws it last, in place of half its draws of 6,
  // so that its earlier draws stay those of the committed seeds; see actions.ts): adaptive
  // batching, a follower stalled past its election deadline waits for its leader, a candidate's
  // Prepare resends back off, a Promise omits the votes its acceptor executed, and long values
  // folded by a passed-in hash, as the runtime's store folds them by SHA-256 (world.test checks
  // it holds every one of `runtimeCoreSettings`), and a disk compacted in pieces, as the runtime's
  // storage thread compacts it.
  {
    ...defaultTuning,
    adaptiveBatching: true,
    electionWaitsAfterStall: true,
    prepareResendBackoff: true,
    promiseOmitsChosen: true,
    longValues: true,
    storeAtRestCharsMin: longTextChars,
    compactionPieceRecords: 4,
  },
];

const configs = new Map<string, Config>();

/** Decoding a configuration is costly; every run with the same tuning shares the decoded one. */
export function configFor(tuning: ReplicaTuning, members: readonly number[], self: number): Config {
  const key = `${JSON.stringify(tuning)}|${members.length}|${self}`;
  let config = configs.get(key);
  if (config === undefined) {
    const fields: Record<string, unknown> = { ...tuning };
    delete fields.longValues; // the world's, not the replica's
    delete fields.valueLimit; // the world's clients'
    delete fields.resumeTransfers; // the world's driver's
    delete fields.compactionPieceRecords;
    delete fields.readsLateMsMax; // the world's storage thread's
    delete fields.readsWrong;
    config = parseConfig({ ...fields, members, self, seed: 0, ...(members.includes(self) ? {} : { joining: true }) });
    configs.set(key, config);
  }
  return config;
}

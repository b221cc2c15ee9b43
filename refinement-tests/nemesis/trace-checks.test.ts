/**
 * DurableRecordsSurvive against a store that compacts: the disk a restarted replica finds may
 * lack what a durable snapshot superseded (impl/runtime/storage.ts), and nothing else.
 */
import { describe, expect, it } from "vitest";
import { compactRecords } from "../../impl/core/index.ts";
import { snapshottingCluster } from "../../impl/core/testing/cluster.ts";
import type { KvRecord } from "../../impl/runtime/core-adapter.ts";
import { checkRecoveries } from "./trace-checks.ts";
import type { LifeSummary } from "./trace-replay.ts";

describe("DurableRecordsSurvive on a compacting store", () => {
  /** A replica's records from a scripted run that snapshots slots 4 and 8, its disk not compacted. */
  const written = (): readonly KvRecord[] => snapshottingCluster().node(2).records;
  const lives = (committed: readonly KvRecord[], recovered: readonly KvRecord[]): LifeSummary[] => [
    { replica: 2, life: 0, steps: 1, truncated: false, committedRecords: committed, uncertainRecords: [], recoveredRecords: [] },
    { replica: 2, life: 1, steps: 1, truncated: false, committedRecords: [], uncertainRecords: [], recoveredRecords: recovered },
  ];

  it("accepts the disk compacted after the last snapshot, or not yet compacted", () => {
    const records = written();
    expect(compactRecords(records).length).toBeLessThan(records.length);
    expect(checkRecoveries(lives(records, compactRecords(records)))).toEqual([]);
    expect(checkRecoveries(lives(records, records))).toEqual([]);
  });

  it("refuses a compacted disk that lost a record the snapshot does not supersede, or reordered two", () => {
    const records = written();
    const kept = compactRecords(records);
    const lost = kept.filter((_, i) => i !== kept.length - 1);
    expect(checkRecoveries(lives(records, lost)).map((v) => v.check)).toEqual(["DurableRecordsSurvive"]);
    const swapped = [...kept];
    [swapped[0], swapped[1]] = [swapped[1]!, swapped[0]!];
    expect(checkRecoveries(lives(records, swapped)).map((v) => v.check)).toEqual(["DurableRecordsSurvive"]);
  });
});

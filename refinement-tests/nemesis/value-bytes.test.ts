/**
 * The short nemesis run of feature level 4 (the value limit in bytes of UTF-8 at execution), with
 * the raise from level 3 to 4 made as an operator makes it: halfway through the faults every
 * member is restarted in turn with `featureLevel` 4 (upgrade.ts). One client writes text outside
 * ASCII to a key of its own: a put of just under 1 MiB of UTF-8, then appends of 96 bytes whose
 * whole is over 1 MiB of UTF-8 and far under 1 Mi code units. Below level 4 the replicas execute
 * them; from the raise's slot on they refuse them (`413 value-too-large`, `"unit": "bytes"`), a
 * follower's SIGKILL and a partition of the leader on either side of the raise. Every check of the
 * nemesis must pass (the history with those outcomes linearizable, equal digests, the traces of
 * every life replayed through `step`, each life with the level it started with), and the run must
 * reach `valueBytesRequired`: the refusal and the execution, each answered to the client and
 * counted by the Service ghost over the replayed traces, and the raise. The seed is fixed
 * (PAXOS_LEASE_NEMESIS_SEED overrides it); a failure names the command that runs the schedule
 * again and keeps the folder.
 */
import path from "node:path";
import { describe, expect, it } from "vitest";
import { appendBytesRan, appendBytesRefused } from "../../proofs/service-level.ts";
import { valueBytesRequired } from "./run.ts";
import { expectEveryCheckPassed, nemesisTestSeed, useNemesisRun } from "./testing.ts";
import { readTraceLives, replayLives, type TraceViolation } from "./trace-replay.ts";

const seed = nemesisTestSeed(20261207);
const core = { featureLevel: 3 };
const run = useNemesisRun(
  "nemesis value-bytes.test",
  {
    seed,
    replicas: 3,
    clients: 1,
    faultsMs: 5000,
    pace: 0.4,
    warmupMs: 1000,
    kinds: ["kill-follower", "partition-leader"],
    inOrder: true,
    quietMs: 1000,
    core,
    raiseFeatureLevel: 4,
  },
  import.meta.filename,
  150_000,
);

describe(`a short nemesis run raised from feature level 3 to 4 (seed ${seed})`, () => {
  it("passes every check, and reached the raise, the appends over 1 MiB of UTF-8 run before it and refused after it", () => {
    expectEveryCheckPassed(run.report);
    expect(run.report.neverReached).toEqual([]);
    expect(run.report.upgrade?.raisedAfterMs).not.toBeNull();
    if ("error" in run.report.traces) throw new Error(run.report.traces.error);
    const { tally } = run.report.traces;
    const reached = run.report.reached!;
    expect(valueBytesRequired.map((r) => r.count(reached, tally) > 0)).toEqual(valueBytesRequired.map(() => true));
    expect(tally[appendBytesRefused] ?? 0).toBeGreaterThan(0);
    expect(tally[appendBytesRan] ?? 0).toBeGreaterThan(0);
    // Faults on either side of the upgrade.
    const upgradedAt = run.report.upgrade!.startedAt;
    expect(run.report.faults.some((f) => f.endedAt <= upgradedAt)).toBe(true);
    expect(run.report.faults.some((f) => f.startedAt > upgradedAt)).toBe(true);
  });

  it("replays each life with the level it started with: one level for every life is caught", () => {
    // Every life as if configured for level 4 from the start: the first leader, which ran at level 3
    // and raised the log to 3, would raise it to 4 at once, which its trace does not show.
    const first = run.report.faults.find((f) => f.leader !== null)?.leader ?? 1;
    const lives = readTraceLives(path.join(run.out, "cluster", `replica-${first}.trace.jsonl`));
    expect(new Set(lives.map((l) => l.featureLevel))).toEqual(new Set([3, 4]));
    const violations: TraceViolation[] = [];
    const oneLevel = lives.map((l) => ({ ...l, featureLevel: undefined }));
    for (const _step of replayLives(oneLevel, { core: { featureLevel: 4 } }, violations, []))
      if (violations.length > 0) break;
    expect(violations.map((v) => v.check)).toContain("TraceExplainedByCore");
  });
});

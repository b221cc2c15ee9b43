/**
 * The store's values at rest on real replicas (`storeAtRestCharsMin`, proofs/store-at-rest.md): a
 * value written, then read and appended to, is read back from the vote record that wrote it (rule
 * V4), and each replica traces the `EntriesRead` that fed it to its core with the entries only (its
 * values are in the vote records the trace's Persists carried). The traces replay through the core
 * with those values read back from each life's records, and pass the checkers of proofs/: a replay
 * that could not decode the event stopped at it, and every send traced after it had no match. A
 * snapshot taken while the value is at rest leaves it a hole (rule V5), which the replay fills from
 * the life's records as the storage thread filled it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keyPath, newSession } from "../../impl/runtime/client.ts";
import { TestCluster } from "../../impl/runtime/testing-cluster.ts";
import { checkTraces } from "./trace-checks.ts";
import { readTraceLives, replayLives, type TraceViolation } from "./trace-replay.ts";

/** A snapshot every 4 slots: one falls after the long value is at rest, and leaves it a hole (rule V5). */
const core = { storeAtRestCharsMin: 64, snapshotIntervalSlots: 4 };

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await TestCluster.create(3, core);
  for (const id of [1, 2, 3]) cluster.start(id);
}, 60_000);

afterAll(async () => {
  await cluster.close(process.env.PAXOS_LEASE_KEEP_TEST_DATA === "1");
}, 20_000);

describe("values at rest on real replicas", () => {
  it("reads them back, and the traces with their EntriesRead replay through the core and the checkers", async () => {
    await cluster.waitForLeader(60_000);
    const client = cluster.client();
    const value = "v".repeat(1000);
    expect((await client.call("PUT", keyPath("k"), { value }, newSession())).status).toBe(200);
    for (let i = 0; i < 4; i++)
      expect((await client.call("PUT", keyPath(`s${i}`), { value: "s" }, newSession())).status).toBe(200);
    const read = await client.call("GET", keyPath("k"));
    expect(read.status, JSON.stringify(read.body)).toBe(200);
    expect(read.body.value).toBe(value);
    const append = await client.call("POST", keyPath("k"), { op: "append", value: "w" }, newSession());
    expect(append.status, JSON.stringify(append.body)).toBe(200);
    for (const id of [1, 2, 3]) await cluster.kill(id, "SIGTERM");
    const violations: TraceViolation[] = [];
    let entriesRead = 0;
    let snapshots = 0;
    for (const id of [1, 2, 3])
      for (const step of replayLives(readTraceLives(cluster.traceFile(id)), { core }, violations, [])) {
        if (step.event._tag === "EntriesRead") entriesRead += 1;
        for (const e of step.effects) if (e._tag === "Persist" && e.record._tag === "snapshot") snapshots += 1;
      }
    expect(violations).toEqual([]);
    expect(entriesRead).toBeGreaterThan(0);
    // Each replica's snapshot with the long value at rest: replayed with its hole filled from the records.
    expect(snapshots).toBeGreaterThanOrEqual(3);
    const files = new Map([1, 2, 3].map((id) => [id, cluster.traceFile(id)] as const));
    const report = checkTraces({ files, core });
    expect(report.violations).toEqual([]);
  }, 60_000);

  it("refuses a traced EntriesRead whose entry its life's records do not give (rule V2)", () => {
    const wrong: TraceViolation[] = [];
    for (const id of [1, 2, 3]) {
      const lives = readTraceLives(cluster.traceFile(id)).map((life) => ({
        ...life,
        lines: life.lines.map((line) =>
          line.event?._tag !== "EntriesRead"
            ? line
            : {
                ...line,
                event: {
                  ...line.event,
                  // The entry one code unit longer than the value its vote record wrote.
                  entries: (line.event.entries as { length: number }[]).map((e) => ({ ...e, length: e.length + 1 })),
                },
              },
        ),
      }));
      for (const _step of replayLives(lives, { core }, wrong, []));
    }
    expect(wrong.length).toBeGreaterThan(0);
    expect(wrong.map((v) => v.check)).toEqual(wrong.map(() => "TraceComplete"));
    expect(wrong[0]!.message).toMatch(
      /EntriesRead .* names values its life's records do not give: EntryFromDurableVote/,
    );
  });
});

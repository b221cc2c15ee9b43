/**
 * The leader's wait before it raises the feature level, on real replicas (impl/runtime/feature-gate.ts;
 * proofs/feature-levels.md, "Waiting for every member"): three replicas configured with
 * `featureLevel` 2, one of which names level 1 in its handshake (standing for a replica of an
 * earlier version). The leader holds the raise, says why, and shows it in /status and the metrics;
 * once that replica restarts naming level 2, the log is raised on every replica. A spare that names
 * level 1 is then refused as a member (`409 feature-level`). The traces replay through the core:
 * the count each replica handed its core (`FeaturesKnown`) is an event like any other.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { featureLevelMax } from "../../spec/service.ts";
import { keyPath, newSession } from "../../impl/runtime/client.ts";
import { TestCluster } from "../../impl/runtime/testing-cluster.ts";
import { waitFor } from "../../impl/runtime/testing.ts";
import { checkTraces } from "./trace-checks.ts";
import { readTraceLives, replayLives, type TraceViolation } from "./trace-replay.ts";

const core = { featureLevel: 2 };
/** What makes a replica name level 1: a replica of an earlier version, for the handshake. */
const earlier = { PAXOS_LEASE_TEST_FEATURE_LEVEL: "1", PAXOS_LEASE_ALLOW_TEST_FAULTS: "1" };

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await TestCluster.create(3, core, { spares: 1 });
  cluster.start(1);
  cluster.start(2);
  cluster.start(3, { env: earlier });
  // A spare that joins later, of the earlier version too: it dials the members meanwhile.
  cluster.start(4, { env: earlier });
}, 60_000);

afterAll(async () => {
  await cluster.close(process.env.PAXOS_LEASE_KEEP_TEST_DATA === "1");
}, 20_000);

async function levels(): Promise<string> {
  const statuses = await Promise.all([1, 2, 3].map((id) => cluster.status(id)));
  return statuses.map((s) => `${s?.sessions.featureLevel}/${s?.sessions.featureLevelKnown}`).join(" ");
}

describe("the raise of the feature level on real replicas", () => {
  it("waits for a member that names a lower level, and goes ahead once it is upgraded", async () => {
    const leader = await cluster.waitForLeader(60_000);
    const put = await cluster.client().call("PUT", keyPath("k"), { value: "v" }, newSession());
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    // Every replica counts level 1 (replica 3's), and the log stays at level 1.
    await waitFor("every replica to count level 1", async () =>
      (await levels()) === "1/1 1/1 1/1" ? true : undefined,
    );
    await waitFor("the leader to say why it waits", () =>
      cluster.logs().includes("the raise of the feature level to 2 waits") ? true : undefined,
    );
    expect(cluster.logs()).toMatch(/replica 3 executes levels up to 1; upgrade it/);
    const status = await cluster.status(leader);
    expect(status?.sessions).toMatchObject({ featureLevel: 1, featureLevelTarget: 2, featureLevelKnown: 1 });
    const metrics = await cluster.metrics(leader);
    expect(metrics).toMatch(/^paxos_lease_feature_level_target\{replica="\d"\} 2$/m);
    expect(metrics).toMatch(/^paxos_lease_feature_level_known\{replica="\d"\} 1$/m);
    // Replica 3 is upgraded: restarted naming level 2.
    await cluster.kill(3, "SIGTERM");
    cluster.start(3);
    // Each counts the highest level this version executes now, which every replica names.
    const raised = `2/${featureLevelMax} 2/${featureLevelMax} 2/${featureLevelMax}`;
    await waitFor("the log raised to level 2 on every replica", async () =>
      (await levels()) === raised ? true : undefined,
    );
    expect(cluster.logs()).toMatch(/every member says it executes feature level 2: the leader raises the log to it/);
  }, 90_000);

  it("refuses to add a replica that names a lower level than the log's", async () => {
    const client = cluster.client(30_000);
    const reply = await waitFor("the add of replica 4 to be judged", async () => {
      const r = await client.call("POST", "/v1/members", { op: "add", id: 4 });
      return r.status === 409 && r.body.code === "unknown-replica" ? undefined : r;
    });
    expect(reply.status, JSON.stringify(reply.body)).toBe(409);
    expect(reply.body.code).toBe("feature-level");
    expect(String(reply.body.message)).toMatch(/^replica 4 executes feature levels up to 1, and the log is at level 2/);
  }, 60_000);

  it("replays through the core and the checkers of proofs/, the counts handed to the core included", async () => {
    for (const id of [1, 2, 3, 4]) await cluster.kill(id, "SIGTERM");
    const violations: TraceViolation[] = [];
    const counts: number[] = [];
    for (const id of [1, 2, 3]) {
      for (const step of replayLives(readTraceLives(cluster.traceFile(id)), { core }, violations, []))
        if (step.event._tag === "FeaturesKnown") counts.push(step.event.level);
    }
    expect(violations).toEqual([]);
    expect(counts).toContain(1);
    expect(counts).toContain(featureLevelMax);
    const files = new Map([1, 2, 3, 4].map((id) => [id, cluster.traceFile(id)] as const));
    const report = checkTraces({ files, core });
    expect(report.violations).toEqual([]);
    expect(report.executedSlots).toBeGreaterThan(0);
  }, 60_000);
});

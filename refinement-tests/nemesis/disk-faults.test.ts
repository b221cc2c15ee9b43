/**
 * DurableBeforeSend on a real run, against the disk: three replica processes whose stores are
 * broken on purpose (test-only: each reports a commit durable as soon as it is written, before
 * its fsync returns, `PAXOS_LEASE_TEST_ACK_BEFORE_FSYNC`) serve a few writes; replaying their
 * traces must find a message that left before the fsync of a record persisted before it had
 * returned. A SIGKILL keeps the page cache, so no kill could show this: only each fsync's
 * return, traced as a `synced` line, does. The same replicas with a correct store pass.
 */
import fs from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { KvClient, keyPath, newSession } from "../../impl/runtime/client.ts";
import { tempDir, waitFor } from "../../impl/runtime/testing.ts";
import { NemesisCluster } from "./cluster.ts";
import { readTraceLives, replayLives, type TraceViolation } from "./trace-replay.ts";

const dirs: string[] = [];

afterAll(() => {
  if (process.env.PAXOS_LEASE_KEEP_TEST_DATA === "1")
    process.stdout.write(`[disk-faults.test] kept ${dirs.join(" ")}\n`);
  else for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** Run three replicas with `diskFaults`, make a few writes, stop them; the violations of replaying each trace. */
async function violationsOfARun(ackBeforeSync: boolean): Promise<TraceViolation[]> {
  const dir = tempDir("disk-faults");
  dirs.push(dir);
  const cluster = await NemesisCluster.create({
    replicas: 3,
    dir,
    seed: 1,
    diskFaults: { powerLoss: false, ackBeforeSync },
  });
  try {
    for (const id of cluster.ids) cluster.start(id);
    const leader = await cluster.waitForLeader(60_000);
    expect(leader).not.toBeNull();
    const client = new KvClient({
      endpoints: cluster.ids.map((id) => cluster.endpoint(id)),
      deadlineMs: 20_000,
      token: cluster.token,
    });
    for (let i = 0; i < 10; i++) {
      const reply = await client.call("PUT", keyPath(`k${i}`), { value: `${i}` }, newSession());
      expect(reply.status).toBe(200);
    }
    // Two replicas elect a leader and serve: the third may still be starting on a loaded machine,
    // its trace not even opened. Every replica executes the writes before the run stops, so that
    // every trace holds them.
    const executed = (await waitFor("the leader's status", () => cluster.status(leader!), 30_000)).executedSlot;
    await waitFor(
      `every replica to execute slot ${executed}`,
      async () => {
        const statuses = [...(await cluster.statuses()).values()];
        return statuses.length === cluster.ids.length && statuses.every((s) => s.executedSlot >= executed)
          ? true
          : undefined;
      },
      60_000,
      100,
    );
  } finally {
    await cluster.close();
  }
  const violations: TraceViolation[] = [];
  for (const id of cluster.ids) {
    const lives = readTraceLives(cluster.traceFile(id));
    expect(lives.every((life) => life.syncs)).toBe(true);
    // Drain the replay: its violations are what this test reads.
    Array.from(replayLives(lives, {}, violations, []));
  }
  return violations;
}

describe("DurableBeforeSend against each fsync's return, on real replicas", () => {
  it("catches a store that acknowledges a commit before its fsync returns", async () => {
    const violations = await violationsOfARun(true);
    const caught = violations.filter((v) => v.check === "DurableBeforeSend");
    expect(caught.length, JSON.stringify(violations)).toBeGreaterThan(0);
    expect(caught[0]!.message).toMatch(/persisted but no fsync had returned beyond record/);
  }, 120_000);

  it("passes the same run with a store that waits for its fsync", async () => {
    expect(await violationsOfARun(false)).toEqual([]);
  }, 120_000);
});

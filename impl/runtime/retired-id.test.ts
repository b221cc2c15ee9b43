/**
 * A removed replica's id is never added again, whatever happened since: with real replica
 * processes, replica 4 is added and removed with the CLI, the removal is buried in snapshots
 * (the logs truncated past it) and every replica restarts; then `members add --id 4` and
 * `members replace --id 4` are refused with one line saying why, and the membership is
 * unchanged. The retired ids travel in the replicated configuration, so every replica knows them
 * from its snapshot alone.
 */
import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keyPath, newSession } from "./client.ts";
import { cliArgv } from "./program.ts";
import { TestCluster } from "./testing-cluster.ts";
import { waitFor } from "./testing.ts";

let cluster: TestCluster;

// Snapshots every 8 slots and a short alpha window: a few dozen writes bury the removal.
const core = { snapshotIntervalSlots: 8, reconfigAlphaSlots: 8, pipelineSlotsMax: 8 };

beforeAll(async () => {
  cluster = await TestCluster.create(3, core, { spares: 1, traces: false });
  cluster.startAll();
  await cluster.waitForLeader(60_000);
}, 90_000);

afterAll(async () => {
  await cluster.close();
}, 20_000);

/** Run the CLI against the running replicas; resolves with its exit code and output. */
function cli(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...cliArgv(), ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        PAXOS_LEASE_TOKEN: cluster.token(),
        PAXOS_LEASE_ENDPOINTS: cluster.runningEndpoints().join(","),
      },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    child.once("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

async function writes(prefix: string, count: number): Promise<void> {
  const client = cluster.client(30_000);
  for (let i = 0; i < count; i++) {
    const reply = await client.call("PUT", keyPath(`${prefix}/${i}`), { value: String(i) }, newSession());
    expect(reply.status, JSON.stringify(reply.body)).toBe(200);
  }
}

const refusal =
  /^error: retired-replica: replica 4 was a member and has been removed; a removed id is never added again/;

describe("a retired id", () => {
  it("is refused by members add and members replace after the removal is in snapshots and every replica restarted", async () => {
    cluster.start(4);
    await cluster.waitForDialled(4);
    const added = await cli(["members", "add", "--id", "4"]);
    expect(added.code, added.stderr).toBe(0);
    const removed = await cli(["members", "remove", "--id", "4"]);
    expect(removed.code, removed.stderr).toBe(0);
    await cluster.kill(4);
    const removedAt = await waitFor(
      "the removal of replica 4 in force on replicas 1 to 3",
      async () => {
        const statuses = await Promise.all([1, 2, 3].map((id) => cluster.status(id)));
        return statuses.every((s) => s?.membership.inForce.voters.join(",") === "1,2,3")
          ? statuses[0]!.membership.inForce.epoch
          : undefined;
      },
      30_000,
      100,
    );
    // Past the removal by several snapshot intervals: every replica's snapshot covers the slot
    // that chose it, and its log below the snapshot is truncated.
    await writes("after-removal", 40);
    await waitFor(
      `a snapshot past slot ${removedAt} on replicas 1 to 3`,
      async () => {
        const statuses = await Promise.all([1, 2, 3].map((id) => cluster.status(id)));
        return statuses.every((s) => (s?.membership.snapshotSlot ?? -1) > removedAt) ? true : undefined;
      },
      30_000,
      100,
    );
    for (const id of [1, 2, 3]) await cluster.kill(id, "SIGTERM");
    for (const id of [1, 2, 3]) cluster.start(id);
    await cluster.waitForLeader(60_000);

    for (const args of [
      ["members", "add", "--id", "4"],
      ["members", "replace", "--old", "1", "--id", "4"],
    ]) {
      const again = await cli(args);
      expect(again.code, `${args.join(" ")}: ${again.stderr}`).toBe(1);
      const lines = again.stderr.trim().split("\n");
      expect(lines, args.join(" ")).toHaveLength(1);
      expect(lines[0], args.join(" ")).toMatch(refusal);
    }
    const shown = await cli(["members", "--json"]);
    const doc = JSON.parse(shown.stdout) as { inForce: { voters: number[]; learners: number[] }; pending: unknown[] };
    expect(doc.inForce).toMatchObject({ voters: [1, 2, 3], learners: [] });
    expect(doc.pending).toEqual([]);
  }, 180_000);
});

/**
 * Membership in a cluster that has run for a while, with real processes on loopback: a replica
 * added after a few hundred slots catches up over several catch-up replies, and another from a
 * snapshot older than its own addition, and neither retires itself on the way (rule R5: only a
 * replica whose id a chosen change retired ever retires); a spare started before those changes
 * is added through a leader elected later that never heard from it (the CLI finds its address at
 * a replica it dialled, and the log carries it to every replica); a replace whose --old is not a
 * voter is refused by the leader before anything is added; a replaced voter stops campaigning and
 * retires while the leader keeps its ballot. Durations are printed, never asserted.
 */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { keyPath, newSession } from "./client.ts";
import type { ReplicaStatus } from "./status.ts";
import { useCluster } from "./testing-cluster.ts";
import { waitFor } from "./testing.ts";

const started = performance.now();

function note(text: string): void {
  process.stdout.write(`[members-late.test ${((performance.now() - started) / 1000).toFixed(1)} s] ${text}\n`);
}

// Catch-up replies of the default 256 slots; snapshots every 300 slots, so the first replica
// added (after about 280 slots) catches up on the log from slot 1, and the second (after about
// 620) from the snapshot of slot 600, both older than their own addition. Long election timeouts
// everywhere but at replica 4 (its own settings, below), so that it wins the election after a
// leader dies.
const core = {
  snapshotIntervalSlots: 300,
  reconfigAlphaSlots: 16,
  pipelineSlotsMax: 16,
  electionTimeoutMsMin: 1500,
  electionTimeoutMsMax: 2500,
};

const cluster = useCluster(3, { core, spares: 4, leader: false });

/** `count` writes by `parallel` clients at once, each with a session; every one must succeed. */
async function writes(prefix: string, count: number, parallel = 16): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    const client = cluster().client(30_000);
    for (let i = next++; i < count; i = next++) {
      const reply = await client.call("PUT", keyPath(`${prefix}/${i}`), { value: `${i}` }, newSession());
      expect(reply.status, JSON.stringify(reply.body)).toBe(200);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
}

/** Writes (4 clients at once) until the leader has executed past `slot` (batches put several writes in one slot). */
async function writesPast(prefix: string, slot: number): Promise<number> {
  for (let round = 0; ; round++) {
    const leader = await cluster().waitForLeader(30_000);
    const executed = (await statusOf(leader)).executedSlot;
    if (executed > slot) return executed;
    await writes(`${prefix}-${round}`, Math.max(8, Math.min(200, slot - executed)), 4);
  }
}

/** Messages of `type` replica `id` received, from its metrics. */
async function received(id: number, type: string): Promise<number> {
  const metrics = await fetch(`${cluster().endpoint(id)}/metrics`, { headers: cluster().authHeaders("read") }).then(
    (r) => r.text(),
  );
  const pattern = new RegExp(`^paxos_lease_messages_received_total\\{[^}]*type="${type}"[^}]*\\} (\\d+)$`, "gm");
  return [...metrics.matchAll(pattern)].reduce((sum, m) => sum + Number(m[1]), 0);
}

/** Replica `id`'s status, once it answers (within 10 s). */
async function statusOf(id: number): Promise<ReplicaStatus> {
  return waitFor(`the status of replica ${id}`, () => cluster().status(id), 10_000, 100);
}

/** Wait until replicas `ids` executed the same slots to the same digest. */
async function converged(ids: readonly number[]): Promise<ReplicaStatus[]> {
  return waitFor(
    `replicas ${ids.join(",")} to execute the same slots to the same digest`,
    async () => {
      const all = await Promise.all(ids.map((id) => cluster().status(id)));
      if (all.some((s) => s === undefined)) return undefined;
      const statuses = all as ReplicaStatus[];
      if (new Set(statuses.map((s) => s.executedSlot)).size !== 1) return undefined;
      return new Set(statuses.map((s) => s.digest)).size === 1 ? statuses : undefined;
    },
    30_000,
    100,
  );
}

/** Add spare `id` with `members add` (add, catch up, promote), through `via`. */
async function add(id: number, via: readonly number[]): Promise<void> {
  // Up and connected first, as an operator would see it: the CLI waits only 3 s for a spare to
  // dial the leader, and a process started a moment ago on a loaded machine may take longer.
  await cluster().waitForDialled(id);
  const t0 = performance.now();
  const result = await cluster().cli([
    "members",
    "add",
    "--id",
    String(id),
    "--endpoints",
    via.map((v) => cluster().endpoint(v)).join(","),
  ]);
  note(
    `members add --id ${id}: exit ${result.code} in ${((performance.now() - t0) / 1000).toFixed(1)} s\n${result.stderr}${result.stdout}`,
  );
  expect(result.code, result.stderr).toBe(0);
  expect(result.stdout).toMatch(new RegExp(`replica ${id} promoted to voter`));
  const status = await waitFor(
    `replica ${id} to know it is a voter`,
    async () => {
      const s = await cluster().status(id);
      return s?.membership.self === "voter" || s?.retired != null ? s : undefined;
    },
    20_000,
    100,
  );
  expect(status.retired).toBeNull();
  expect(status.membership.self).toBe("voter");
}

describe("membership after a few hundred slots, with real processes", () => {
  it("a replica added after 280 slots catches up past its addition over several catch-up replies and does not retire", async () => {
    try {
      const leader = await cluster().waitForLeader(60_000);
      // A spare started now, before any change, knowing the initial members only.
      cluster().start(6, { peers: [1, 2, 3] });
      note(`leader ${leader}; ${await writesPast("first", 280)} slots executed`);
      // Replica 4 runs with short election timeouts of its own (see `core`).
      const own = path.join(cluster().dir, "core-4.json");
      fs.writeFileSync(own, JSON.stringify({ ...core, electionTimeoutMsMin: 400, electionTimeoutMsMax: 600 }));
      cluster().start(4, { peers: [1, 2, 3], extra: ["--core-config", own] });
      await add(4, [1, 2, 3]);
      const four = (await converged([1, 2, 3, 4]))[3]!;
      const replies = await received(4, "CatchUpReply");
      note(`replica 4 at slot ${four.executedSlot} after ${replies} catch-up replies`);
      // More than 256 slots of log before its addition: several catch-up replies, no snapshot.
      expect(replies).toBeGreaterThan(1);
      expect(await received(4, "SnapshotChunk")).toBe(0);
    } catch (error) {
      note(cluster().logs());
      throw error;
    }
  }, 120_000);

  it("a replica added after 620 slots installs a snapshot older than its addition and does not retire", async () => {
    try {
      note(`${await writesPast("second", 620)} slots executed`);
      cluster().start(5, { peers: [1, 2, 3, 4] });
      await add(5, [1, 2, 3, 4]);
      const five = (await converged([1, 2, 3, 4, 5]))[4]!;
      const chunks = await received(5, "SnapshotChunk");
      note(
        `replica 5 at slot ${five.executedSlot}, snapshot ${five.membership.snapshotSlot ?? "none"}, ${chunks} chunks`,
      );
      // The others had snapshotted at slot 600 and truncated below: a transfer, then the log.
      expect(chunks).toBeGreaterThan(0);
    } catch (error) {
      note(cluster().logs());
      throw error;
    }
  }, 120_000);

  it("a spare started before those changes is added through a leader elected since, which never heard from it", async () => {
    try {
      let leader = await cluster().waitForLeader(30_000);
      // Replica 4 (short election timeouts) takes over once the leader dies.
      while (leader !== 4) {
        await cluster().kill(leader, "SIGKILL");
        const next = await cluster().waitForLeader(30_000);
        cluster().start(leader);
        note(`killed leader ${leader}; replica ${next} leads`);
        leader = next;
      }
      const known = (await cluster().status(4))!.peers.some((p) => p.id === 6);
      note(`replica 4 leads; it ${known ? "knows" : "never heard of"} replica 6`);
      expect(known).toBe(false);
      await add(6, [1, 2, 3, 4, 5]);
      await writes("third", 20);
      await converged([1, 2, 3, 4, 5, 6]);
      // Every replica knows replica 6's address now, from the log.
      for (const id of [1, 2, 3, 4, 5]) expect((await statusOf(id)).peers.map((p) => p.id)).toContain(6);
    } catch (error) {
      note(cluster().logs());
      throw error;
    }
  }, 120_000);

  it("replace with an --old that is not a voter is refused before anything is added; a replaced voter retires without disturbing the leader", async () => {
    try {
      const all = [1, 2, 3, 4, 5, 6];
      const endpoints = ["--endpoints", all.map((id) => cluster().endpoint(id)).join(",")];
      cluster().start(7, { peers: all });
      await cluster().waitForDialled(7);
      const wrong = await cluster().cli(["members", "replace", "--old", "9", "--id", "7", ...endpoints]);
      note(`members replace --old 9 --id 7: exit ${wrong.code}\n${wrong.stderr}`);
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).toMatch(
        /error: refused: replica 9 is not a voter; nothing was changed: replica 7 was not added/,
      );
      expect((await statusOf(7)).membership.self).toBe("none");
      const leader = await cluster().waitForLeader(30_000);
      const ballot = (await statusOf(leader)).ballot;
      const old = [1, 2, 3, 5, 6].find((id) => id !== leader)!;
      const t0 = performance.now();
      const replaced = await cluster().cli(["members", "replace", "--old", String(old), "--id", "7", ...endpoints]);
      note(`members replace --old ${old} --id 7: exit ${replaced.code}\n${replaced.stderr}${replaced.stdout}`);
      expect(replaced.code, replaced.stderr).toBe(0);
      const retired = await waitFor(
        `replica ${old} to retire`,
        async () => {
          const status = await cluster().status(old);
          return status?.role === "removed" ? status : undefined;
        },
        20_000,
        50,
      );
      note(
        `replica ${old} replaced; it retired ${((performance.now() - t0) / 1000).toFixed(2)} s after the command started: ${retired.retired ?? ""}`,
      );
      await writes("fourth", 20);
      // The replaced voter never campaigned: the leader kept its ballot throughout.
      expect((await statusOf(leader)).ballot).toBe(ballot);
      expect(await cluster().waitForLeader(10_000)).toBe(leader);
      await converged(all.filter((id) => id !== old).concat(7));
    } catch (error) {
      note(cluster().logs());
      throw error;
    }
  }, 120_000);
});

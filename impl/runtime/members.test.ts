/**
 * Membership changes with real replica processes on loopback, as an operator does them: three
 * replicas serve writes; a fourth, started with --join on an empty disk, is added with the CLI
 * (`paxos-lease members add`), catches up by state transfer (the others truncated their logs
 * below a snapshot) and is promoted, ending with the same digest as the others; one replica is
 * killed with SIGKILL (its disk is gone for good) and replaced by a fifth through the HTTP API;
 * the leader is removed, hands over and retires (status "removed", client requests 410, restart
 * refused). Writes keep working throughout and nothing acknowledged is lost. Durations are
 * printed, never asserted.
 */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { httpJson, keyPath, KvClient, newSession } from "./client.ts";
import type { ReplicaStatus } from "./status.ts";
import { useCluster } from "./testing-cluster.ts";
import { waitFor } from "./testing.ts";

/** Acknowledged writes: key -> value. */
const acknowledged = new Map<string, string>();
const started = performance.now();

function note(text: string): void {
  process.stdout.write(`[members.test ${((performance.now() - started) / 1000).toFixed(1)} s] ${text}\n`);
}

// Snapshots every 16 slots (so a joining replica is behind the others' truncation and needs a
// state transfer) and a short alpha window (so that changes take effect after 16 slots).
const core = { snapshotIntervalSlots: 16, reconfigAlphaSlots: 16, pipelineSlotsMax: 16 };
const cluster = useCluster(3, { core, spares: 2, leader: false });

async function writes(prefix: string, count: number): Promise<void> {
  const client = cluster().client(30_000);
  for (let i = 0; i < count; i++) {
    const key = `${prefix}/${i}`;
    const reply = await client.call("PUT", keyPath(key), { value: `${prefix}-${i}` }, newSession());
    expect(reply.status, JSON.stringify(reply.body)).toBe(200);
    acknowledged.set(key, `${prefix}-${i}`);
  }
}

/** Wait until the running replicas `ids` executed the same slots to the same digest, with `voters` in force. */
async function converged(ids: readonly number[], voters: readonly number[]): Promise<ReplicaStatus[]> {
  return waitFor(
    `replicas ${ids.join(",")} to execute the same slots to the same digest, voters ${voters.join(",")} in force`,
    async () => {
      const statuses = await Promise.all(ids.map((id) => cluster().status(id)));
      if (statuses.some((s) => s === undefined)) return undefined;
      const all = statuses as ReplicaStatus[];
      if (new Set(all.map((s) => s.executedSlot)).size !== 1 || new Set(all.map((s) => s.digest)).size !== 1)
        return undefined;
      if (!all.every((s) => s.membership.inForce.voters.join(",") === voters.join(","))) return undefined;
      return all;
    },
    30_000,
    100,
  );
}

/**
 * The sum over replicas `ids` of a counter's samples (`sample`: a global pattern whose group is the
 * value), once it is above 0: read again until then (each scrape is one moment's values), failing
 * with the sums last read when it stays at 0 or a replica does not export the counter.
 */
async function counterReached(what: string, ids: readonly number[], sample: RegExp): Promise<number> {
  let last = "nothing read";
  try {
    return await waitFor(
      what,
      async () => {
        const sums = await Promise.all(
          ids.map(async (id) => {
            const text = await fetch(`${cluster().endpoint(id)}/metrics`, {
              headers: cluster().authHeaders("read"),
            }).then((r) => r.text());
            const values = [...text.matchAll(sample)].map((m) => Number(m[1]));
            return values.length === 0 ? Number.NaN : values.reduce((sum, n) => sum + n, 0);
          }),
        );
        last = ids.map((id, i) => `replica ${id}: ${sums[i]}`).join(", ");
        const total = sums.reduce((sum, n) => sum + n, 0);
        return total > 0 ? total : undefined;
      },
      10_000,
      100,
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}; last read ${last}`, { cause: error });
  }
}

/** POST a change until it is chosen (retrying while there is no leader or the learner catches up). */
async function change(body: Record<string, unknown>): Promise<Record<string, unknown>> {
  return waitFor(
    `membership change ${JSON.stringify(body)}`,
    async () => {
      const reply = await cluster().client(10_000).call("POST", "/v1/members", body);
      if (reply.status === 200) return reply.body;
      if (reply.status === 503 || reply.body.code === "not-caught-up") return undefined;
      throw new Error(`${reply.status} ${JSON.stringify(reply.body)}`);
    },
    30_000,
    200,
  );
}

describe("membership changes with real processes", () => {
  it("add a replica with the CLI: it joins as a learner, catches up by state transfer, is promoted, and has the others' digest", async () => {
    try {
      const leader = await cluster().waitForLeader(60_000);
      note(`leader is replica ${leader}`);
      await writes("before", 40);
      // A replica that is not yet a member is refused by the leader with a clear error.
      cluster().start(4);
      const early = await cluster().client().call("POST", "/v1/members", { op: "add", id: 9 });
      expect(early.status).toBe(409);
      expect(early.body).toMatchObject({ code: "unknown-replica" });
      expect(String(early.body.message)).toMatch(/replica 9 has not connected to replica \d \(the leader\)/);
      // The CLI waits only a little for a replica started a moment ago to connect; here it has.
      await cluster().waitForDialled(4);
      const endpoints = ["--endpoints", cluster().endpoints().slice(0, 3).join(",")];
      const added = await cluster().cli(["members", "add", "--id", "4", ...endpoints]);
      note(`members add --id 4: exit ${added.code}\n${added.stderr}${added.stdout}`);
      expect(added.code).toBe(0);
      expect(added.stdout).toMatch(
        /replica 4 promoted to voter: chosen at slot \d+, the configuration voters=1,2,3,4 governs from slot \d+/,
      );
      await writes("after-add", 20);
      const statuses = await converged([1, 2, 3, 4], [1, 2, 3, 4]);
      note(`four replicas at slot ${statuses[0]!.executedSlot}, digest ${statuses[0]!.digest}`);
      const four = statuses[3]!;
      expect(four.membership.self).toBe("voter");
      // Replica 4 started empty, and the others had truncated their logs below a snapshot: it
      // caught up by state transfer, receiving a peer's snapshot in chunks.
      // The counters are read from other processes, each scrape a moment's values: wait until they
      // show what the transfer did (with the values last read in the failure), never a fixed sleep.
      const chunks = await counterReached(
        "replica 4 to count snapshot chunks received",
        [4],
        /^paxos_lease_messages_received_total\{[^}]*type="SnapshotChunk"[^}]*\} (\d+)$/gm,
      );
      note(`replica 4 received ${chunks} snapshot chunks`);
      // Its sender had let that snapshot's state go once its record was written: it read the
      // chunks back from the record (rule S3 at rest; paxos_lease_transfer_chunks_at_rest_total).
      const atRest = await counterReached(
        "replicas 1, 2, 3 to count chunks served at rest",
        [1, 2, 3],
        /^paxos_lease_transfer_chunks_at_rest_total(?:\{[^}]*\})? (\d+)$/gm,
      );
      note(`chunks served at rest by replicas 1, 2, 3: ${atRest}`);
      expect(four.membership.snapshotSlot).not.toBeNull();
      const shown = await cluster().cli(["members", ...endpoints]);
      expect(shown.code).toBe(0);
      expect(shown.stdout).toMatch(/in force: +voters 1,2,3,4 \(chosen at slot \d+/);
      expect(shown.stdout).toMatch(
        /--join --initial-members 1,2,3 --peers 1=127\.0\.0\.1:\d+,2=127\.0\.0\.1:\d+,3=127\.0\.0\.1:\d+,4=127\.0\.0\.1:\d+/,
      );
    } catch (error) {
      note(cluster().logs());
      throw error;
    }
  }, 120_000);

  it("replace a replica whose disk failed (SIGKILL, never restarted) by a fresh one through the HTTP API; writes keep working", async () => {
    try {
      await cluster().kill(3, "SIGKILL");
      note("killed replica 3 for good");
      await writes("after-kill", 10);
      cluster().start(5);
      // replace adds 5 as a learner first (the core refuses to promote a replica that is not one).
      const refused = await cluster().client().call("POST", "/v1/members", { op: "replace", old: 3, id: 5 });
      expect(refused.status).toBe(409);
      expect(String(refused.body.message)).toMatch(/replica 5 is not a learner/);
      await cluster().waitForDialled(5);
      await change({ op: "add", id: 5 });
      const replaced = await change({ op: "replace", old: 3, id: 5 });
      note(`replace: ${String(replaced.message)}`);
      expect(replaced).toMatchObject({ voters: [1, 2, 4, 5], learners: [] });
      await writes("after-replace", 20);
      const statuses = await converged([1, 2, 4, 5], [1, 2, 4, 5]);
      note(`replicas 1,2,4,5 at slot ${statuses[0]!.executedSlot}`);
    } catch (error) {
      note(cluster().logs());
      throw error;
    }
  }, 120_000);

  it("remove the leader: it hands over and retires (status removed, clients get 410, never starts again); the others elect a leader and keep serving", async () => {
    try {
      const gone = await cluster().waitForLeader(30_000);
      const rest = [1, 2, 4, 5].filter((id) => id !== gone);
      // Three voters would remain of 1,2,4,5; leaving two needs force.
      const removed = await change({ op: "remove", id: gone });
      note(`remove the leader: ${String(removed.message)}`);
      expect(removed).toMatchObject({ voters: rest });
      // Until the others elect a leader (the removed one steps down at once), the answer is 503 no-leader.
      const unsafe = await waitFor(
        "an answer from a leader",
        async () => {
          const reply = await cluster().client().call("POST", "/v1/members", { op: "remove", id: rest[0] });
          return reply.status === 503 ? undefined : reply;
        },
        30_000,
        100,
      );
      expect(unsafe.status).toBe(409);
      expect(unsafe.body).toMatchObject({ code: "unsafe" });
      await writes("after-remove", 20);
      await converged(rest, rest);
      const leader = await cluster().waitForLeader(30_000);
      note(`replicas ${rest.join(",")} converged; replica ${leader} leads`);
      expect(rest).toContain(leader);
      const retired = await waitFor(
        `replica ${gone} to retire`,
        async () => {
          const status = await cluster().status(gone);
          return status?.role === "removed" ? status : undefined;
        },
        30_000,
        100,
      );
      note(`replica ${gone} retired at slot ${retired.executedSlot}`);
      expect(retired.retired).toMatch(new RegExp(`replica ${gone} was removed from the cluster`));
      const refused = await httpJson(
        "GET",
        `${cluster().endpoint(gone)}${keyPath("before/1")}`,
        undefined,
        cluster().authHeaders(),
        2000,
      );
      expect(refused.status).toBe(410);
      expect(refused.body).toMatchObject({ code: "removed" });
      expect(cluster().member(gone).output.join("\n")).toMatch(/replica removed from the cluster: it stops serving/);
      // A client (and the CLI) given the removed replica first moves on to the others.
      const endpoints = [gone, ...rest].map((id) => cluster().endpoint(id));
      const viaRemoved = new KvClient({ endpoints, deadlineMs: 10_000, token: cluster().token() });
      expect((await viaRemoved.call("GET", keyPath("before/1"))).body).toMatchObject({ value: "before-1" });
      const shown = await cluster().cli(["members", "--endpoints", endpoints.join(",")]);
      expect(shown.code).toBe(0);
      expect(shown.stdout).toMatch(new RegExp(`in force: +voters ${rest.join(",")} \\(chosen at slot \\d+`));
      await cluster().kill(gone, "SIGTERM");
      expect(fs.existsSync(path.join(cluster().dataDir(gone), "REMOVED"))).toBe(true);
      cluster().start(gone);
      const code = await waitFor("the removed replica to refuse to start", () => cluster().member(gone).exit, 20_000);
      expect(code).toBe(3);
      expect(cluster().member(gone).output.join("\n")).toMatch(
        new RegExp(`refusing to start: removed data: .*REMOVED: replica ${gone} was removed`),
      );
      // A remaining initial member restarts with the current members as --peers (and the initial
      // members named apart): it dials the replicas that joined since and catches up.
      const initial = rest.find((id) => id <= 3)!;
      await cluster().kill(initial, "SIGTERM");
      await writes("while-restarting", 5);
      // Without --initial-members its --peers would be taken as the initial configuration: refused.
      cluster().start(initial, { peers: rest });
      expect(
        await waitFor("the misconfigured restart to be refused", () => cluster().member(initial).exit, 20_000),
      ).toBe(3);
      expect(cluster().member(initial).output.join("\n")).toMatch(
        /initial-members\.json: this replica was started with initial members 1,2,3, not \d,\d,\d: give --initial-members 1,2,3/,
      );
      cluster().start(initial, { peers: rest, extra: ["--initial-members", "1,2,3"] });
      await writes("after-restart", 5);
      await converged(rest, rest);
      note(`replica ${initial} restarted with --peers ${rest.join(",")} --initial-members 1,2,3 and caught up`);
      // Nothing acknowledged was lost: every write reads back at the leader.
      const client = cluster().client();
      for (const [key, value] of acknowledged) {
        const reply = await client.call("GET", keyPath(key));
        expect(reply.body.value, key).toBe(value);
      }
      note(`${acknowledged.size} acknowledged writes read back`);
    } catch (error) {
      note(cluster().logs());
      throw error;
    }
  }, 120_000);
});

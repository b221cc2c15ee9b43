/**
 * Real replica processes: a large write whose followers' disks are slow. The core resends an
 * unacknowledged Accept after one heartbeat interval; between replicas the first copy is still on
 * its open connection, so the leader holds the resends back (impl/runtime/accept-hold.ts) and the
 * followers get the 1 MiB value once. The write is answered all the same.
 */
import { afterAll, describe, expect, it } from "vitest";
import { keyPath, newSession } from "./client.ts";
import { useCluster } from "./testing-cluster.ts";
import { waitFor } from "./testing.ts";

// Test-only slow commits (impl/runtime/slow-disk.ts), off until SIGUSR2 turns them on in a replica.
const saved = { ...process.env };
process.env.PAXOS_LEASE_ALLOW_TEST_FAULTS = "1";
process.env.PAXOS_LEASE_TEST_FSYNC_DELAY_MS = "300";
afterAll(() => {
  process.env = saved;
});

// An election timeout of 1.5 s: the quiet spell within which resends are held, far above the
// slow commit, so that a loaded machine does not let a resend through before the answer comes.
const cluster = useCluster(3, { core: { leaseMs: 1000, electionTimeoutMsMin: 1500, electionTimeoutMsMax: 2000 } });

async function metric(id: number, pattern: RegExp): Promise<number> {
  const text = await (
    await fetch(`${cluster().endpoint(id)}/metrics`, { headers: cluster().authHeaders("read") })
  ).text();
  return Number(pattern.exec(text)?.[1] ?? 0);
}

describe("a 1 MiB write to followers with slow disks", () => {
  it("is answered, and the leader holds back its resends of the Accept while the first copy is on its way", async () => {
    const leader = await cluster().waitForLeader(60_000);
    const followers = [1, 2, 3].filter((id) => id !== leader);
    for (const id of followers) cluster().member(id).child!.kill("SIGUSR2");
    await waitFor(
      "both followers' slow disks on",
      () =>
        followers.every((id) =>
          cluster()
            .member(id)
            .output.some((line) => line.includes("slow disk toggled")),
        )
          ? true
          : undefined,
      10_000,
    );
    const held = /^paxos_lease_messages_dropped_total\{reason="accept-resend-in-flight"[^}]*\} (\S+)$/m;
    const before = await metric(leader, held);
    const reply = await cluster()
      .client()
      .call("PUT", keyPath("large"), { value: "v".repeat(1024 * 1024) }, newSession());
    expect(reply.status, JSON.stringify(reply.body)).toBe(200);
    // Each follower's vote took at least 300 ms to become durable, while the core asked for a resend
    // after 50 ms: at least one resend was due, and held back.
    expect(await metric(leader, held)).toBeGreaterThan(before);
  }, 120_000);
});

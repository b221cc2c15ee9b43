/**
 * The peer port of real replica processes under a flood: while another address keeps hundreds
 * of idle connections open against every replica's peer port, a replica that restarts still
 * joins its peers at once and catches up, the refusals are counted in /metrics, and each
 * replica logs the flooding address a bounded number of times instead of once per connection.
 */
import { describe, expect, it } from "vitest";
import { httpJson, keyPath } from "./client.ts";
import { useCluster } from "./testing-cluster.ts";
import { floodConnections, waitFor, type Flood } from "./testing.ts";

const cluster = useCluster(3, { traces: false });

describe("the peer port under a flood", () => {
  it("lets a restarting replica rejoin while another address floods every peer port", async () => {
    await cluster().kill(3);
    expect((await cluster().client().call("PUT", keyPath("during-flood"), { value: "v" })).status).toBe(200);
    const outputBefore = [1, 2].map((id) => cluster().member(id).output.length);
    const floods: Flood[] = [1, 2, 3].map((id) => floodConnections(cluster().member(id).peerPort, "127.0.0.2", 300));
    try {
      await waitFor(
        "the flood refused",
        () => (floods.every((f) => f.closedByTarget() > 100) ? true : undefined),
        20_000,
      );
      cluster().start(3);
      await waitFor(
        "replica 3 linked both ways to both peers and caught up",
        async () => {
          const status = await cluster().status(3);
          if (status === undefined || status.leader === null) return undefined;
          const peers = status.peers.filter((p) => p.outbound && p.inbound);
          if (peers.length < 2) return undefined;
          const read = await httpJson(
            "GET",
            `${cluster().endpoint(3)}${keyPath("during-flood")}?consistency=stale`,
            undefined,
            cluster().authHeaders("read"),
            2000,
          );
          return read.status === 200 && read.body.value === "v" ? true : undefined;
        },
        30_000,
      );
    } finally {
      for (const flood of floods) flood.stop();
    }
    for (const id of [1, 2]) {
      const metrics = await (
        await fetch(`${cluster().endpoint(id)}/metrics`, { headers: cluster().authHeaders("read") })
      ).text();
      const refused = [...metrics.matchAll(/^paxos_lease_peer_connections_refused_total\{[^}]*\} (\d+)/gm)]
        .map((m) => Number(m[1]))
        .reduce((a, b) => a + b, 0);
      expect(refused, `replica ${id}`).toBeGreaterThan(100);
      const floodLines = cluster()
        .member(id)
        .output.slice(outputBefore[id - 1])
        .filter((l) => l.includes("127.0.0.2"));
      // At most one line per 10 s interval for the flooding address.
      expect(floodLines.length, floodLines.join("\n")).toBeLessThanOrEqual(4);
      expect(floodLines[0]).toMatch(/refused a peer connection/);
    }
  }, 120_000);
});

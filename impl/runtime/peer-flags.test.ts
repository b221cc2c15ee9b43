/**
 * The connection bounds are the operator's to set: a replica process started with
 * `--peer-source-handshakes-max` and `--peer-handshake-timeout-ms` refuses and times out peer
 * connections by those numbers, not the defaults, and with `--http-connections-max` closes
 * client connections beyond that many as they arrive, and with `--http-connections-per-address-max` those beyond
 * that many from one address; each is counted in /metrics.
 */
import net from "node:net";
import { describe, expect, it } from "vitest";
import { useCluster } from "./testing-cluster.ts";
import { waitFor } from "./testing.ts";

const cluster = useCluster(1, {
  traces: false,
  flags: [
    "--peer-source-handshakes-max",
    "2",
    "--peer-handshake-timeout-ms",
    "400",
    "--http-connections-max",
    "6",
    "--http-connections-per-address-max",
    "2",
  ],
});

/** The sum of the samples of `metric` whose labels match `labels`. */
async function metricSum(name: string, labels = ""): Promise<number> {
  const text = await (
    await fetch(`${cluster().endpoint(1)}/metrics`, { headers: cluster().authHeaders("read") })
  ).text();
  return [...text.matchAll(new RegExp(`^${name}(\\{[^}]*\\})? (\\d+)`, "gm"))]
    .filter((m) => (m[1] ?? "").includes(labels))
    .map((m) => Number(m[2]))
    .reduce((a, b) => a + b, 0);
}

describe("the peer port's bounds from the command line", () => {
  it("refuses past --peer-source-handshakes-max and closes idle ones after --peer-handshake-timeout-ms", async () => {
    const refusedBefore = await metricSum("paxos_lease_peer_connections_refused_total", 'reason="source-handshakes"');
    const rejectedBefore = await metricSum("paxos_lease_peer_connections_rejected_total");
    const closedAfterMs: number[] = [];
    const start = performance.now();
    const sockets = Array.from({ length: 3 }, () => {
      const socket = net.connect({ host: "127.0.0.1", port: cluster().member(1).peerPort, localAddress: "127.0.0.2" });
      socket.on("error", () => undefined);
      socket.on("close", () => closedAfterMs.push(performance.now() - start));
      return socket;
    });
    try {
      await waitFor("the three idle connections closed by the replica", () =>
        closedAfterMs.length === 3 ? true : undefined,
      );
    } finally {
      for (const socket of sockets) socket.destroy();
    }
    closedAfterMs.sort((a, b) => a - b);
    // One refused at once; the two admitted ones when their 400 ms ran out (not after the default 5 s).
    expect(closedAfterMs[1]).toBeGreaterThanOrEqual(390);
    expect(closedAfterMs[2]).toBeLessThan(3000);
    expect(
      (await metricSum("paxos_lease_peer_connections_refused_total", 'reason="source-handshakes"')) - refusedBefore,
    ).toBe(1);
    expect((await metricSum("paxos_lease_peer_connections_rejected_total")) - rejectedBefore).toBe(2);
  }, 30_000);
});

describe("the client port's bound per address from the command line", () => {
  it("closes client connections from one address beyond --http-connections-per-address-max", async () => {
    const droppedBefore = await metricSum("paxos_lease_http_connections_per_address_dropped_total");
    let closedByReplica = 0;
    const sockets: net.Socket[] = [];
    try {
      // Two held, two closed: with the test's own keep-alive connections (at most two, from 127.0.0.1), fewer than
      // the six in all.
      for (let i = 0; i < 4; i++) {
        const socket = net.connect({
          host: "127.0.0.1",
          port: cluster().member(1).httpPort,
          localAddress: "127.0.0.3",
        });
        socket.on("error", () => undefined);
        socket.on("close", () => (closedByReplica += 1));
        sockets.push(socket);
        await new Promise((resolve) => socket.once("connect", resolve));
      }
      await waitFor("the replica closed the two beyond the bound", () => (closedByReplica >= 2 ? true : undefined));
      expect((await metricSum("paxos_lease_http_connections_per_address_dropped_total")) - droppedBefore).toBe(2);
      expect(closedByReplica).toBe(2);
    } finally {
      for (const socket of sockets) socket.destroy();
    }
    await waitFor("the replica's log line naming the bound and the address", () =>
      /--http-connections-per-address-max connections from its address are open/.test(
        cluster().member(1).output.join("\n"),
      ) && cluster().member(1).output.join("\n").includes("127.0.0.3")
        ? true
        : undefined,
    );
  }, 30_000);
});

describe("the client port's bound from the command line", () => {
  it("closes client connections beyond --http-connections-max as they arrive, and serves again once they go", async () => {
    const droppedBefore = await metricSum("paxos_lease_http_connections_dropped_total");
    let closedByReplica = 0;
    let closed = 0;
    const sockets: net.Socket[] = [];
    try {
      // Idle connections, as a flood holds them; a connection kept alive from the metrics read may hold one slot.
      // From ten addresses: the bound in all, not the one per address, closes them.
      for (let i = 0; i < 10; i++) {
        const socket = net.connect({
          host: "127.0.0.1",
          port: cluster().member(1).httpPort,
          localAddress: `127.0.0.${10 + i}`,
        });
        socket.on("error", () => undefined);
        socket.on("close", () => (closedByReplica += 1));
        sockets.push(socket);
        await new Promise((resolve) => {
          socket.once("connect", resolve);
          socket.once("close", resolve);
        });
      }
      await waitFor("the replica closed the connections beyond its bound", () =>
        closedByReplica >= 4 ? true : undefined,
      );
      // Ours past the bound, less any slot the test's own keep-alive connections hold; never all of ours.
      closed = closedByReplica;
      expect(closed).toBeLessThanOrEqual(9);
    } finally {
      for (const socket of sockets) socket.destroy();
    }
    // Served again, and the closed ones counted.
    const dropped = await waitFor("the client port serving again", async () => {
      try {
        return await metricSum("paxos_lease_http_connections_dropped_total");
      } catch {
        return undefined;
      }
    });
    expect(dropped - droppedBefore).toBeGreaterThanOrEqual(closed);
    // The log line comes through the replica's stdout, which may reach this process after the metrics.
    await waitFor("the replica's log line naming the bound", () =>
      /--http-connections-max connections are open/.test(cluster().member(1).output.join("\n")) ? true : undefined,
    );
  }, 30_000);
});

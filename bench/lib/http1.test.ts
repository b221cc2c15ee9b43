import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, expect, test } from "vitest";
import { Http1Connection } from "./http1.ts";

const servers: http.Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** A server that answers every request with 200 and counts the connections it accepted. */
async function counting(): Promise<{ origin: string; connections: () => number }> {
  let connections = 0;
  const server = http.createServer((_request, response) => response.end("{}"));
  server.on("connection", () => connections++);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, connections: () => connections };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test("a connection idle past idleReuseMs is replaced, not reused", async () => {
  const { origin, connections } = await counting();
  const connection = new Http1Connection(origin, 60);
  try {
    expect((await connection.request("GET", "/", undefined, 2000)).status).toBe(200);
    expect((await connection.request("GET", "/", undefined, 2000)).status).toBe(200);
    expect(connections()).toBe(1);
    await sleep(120);
    expect((await connection.request("GET", "/", undefined, 2000)).status).toBe(200);
    expect(connections()).toBe(2);
  } finally {
    connection.close();
  }
});

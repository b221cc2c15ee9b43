/**
 * The client's redirects: a follower's 307 is followed to the leader with the token, but never
 * from HTTPS to plain HTTP, where the token would cross the network unencrypted.
 */
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { initCa, issueReplicaCert } from "./certs.ts";
import { KvClient } from "./client.ts";
import { tempDir } from "./testing.ts";

const dir = tempDir("client-redirects");
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Listen on loopback; resolves with the server's URL. */
async function listen(server: http.Server | https.Server, scheme: "http" | "https"): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe("KvClient redirects", () => {
  it("follows a redirect to the leader, but not from HTTPS to plain HTTP", async () => {
    const caCert = initCa(dir, { clusterId: "test" });
    const material = issueReplicaCert(dir, { clusterId: "test", id: 1, hosts: ["127.0.0.1"] });
    // The leader, and what it was sent.
    const tokens: (string | undefined)[] = [];
    const leader = http.createServer((request, response) => {
      tokens.push(request.headers.authorization);
      response.writeHead(200, { "Content-Type": "application/json" });
      response.end('{"value":"v"}');
    });
    const leaderUrl = await listen(leader, "http");
    let location = leaderUrl;
    const redirect = (request: http.IncomingMessage, response: http.ServerResponse): void => {
      response.writeHead(307, { "Content-Type": "application/json", Location: `${location}${request.url ?? "/"}` });
      response.end('{"code":"redirect","leader":2}');
    };
    const plainFollower = http.createServer(redirect);
    const tlsFollower = https.createServer(
      { cert: fs.readFileSync(material.cert), key: fs.readFileSync(material.key) },
      redirect,
    );
    const plainUrl = await listen(plainFollower, "http");
    const tlsUrl = await listen(tlsFollower, "https");
    try {
      const client = (endpoint: string): KvClient =>
        new KvClient({
          endpoints: [endpoint],
          token: "plt_secret",
          deadlineMs: 2000,
          ca: fs.readFileSync(caCert, "utf8"),
        });
      // Plain HTTP to plain HTTP: followed, with the token.
      expect(await client(plainUrl).call("GET", "/v1/kv/k")).toMatchObject({ status: 200, body: { value: "v" } });
      expect(tokens).toEqual(["Bearer plt_secret"]);
      // HTTPS to plain HTTP: refused, and the leader sees nothing.
      const refused = await client(tlsUrl).call("GET", "/v1/kv/k");
      expect(refused).toMatchObject({ status: 307, body: { code: "insecure-redirect" } });
      expect(String(refused.body.message)).toMatch(/would send the token unencrypted/);
      expect(tokens).toHaveLength(1);
      // HTTPS to HTTPS is followed (here to itself, until the redirects run out).
      location = tlsUrl;
      const loop = await new KvClient({
        endpoints: [tlsUrl],
        token: "plt_secret",
        deadlineMs: 2000,
        redirectsMax: 2,
        ca: fs.readFileSync(caCert, "utf8"),
      }).call("GET", "/v1/kv/k");
      expect(loop).toMatchObject({ status: 307, body: { code: "redirect" } });
    } finally {
      for (const server of [leader, plainFollower, tlsFollower]) server.close();
    }
  });
});

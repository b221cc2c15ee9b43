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
import { KvClient, UnreachableError } from "./client.ts";
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

describe("KvClient with endpoints that cannot be reached", () => {
  /** A loopback port nothing listens on (the server is closed again). */
  async function closedPort(): Promise<number> {
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    return port;
  }

  // The deadline is far beyond the test's own timeout: the client must give up without it.
  const deadlineMs = 600_000;

  it("stops once every endpoint refused or did not resolve, naming each and its error", async () => {
    const [a, b] = [await closedPort(), await closedPort()];
    // Name resolution fails as a resolver would say so (no DNS in the test); IP literals skip it.
    const agent = new http.Agent({
      lookup: ((hostname: string, _options: unknown, callback: (error: Error) => void) =>
        callback(
          Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND", hostname }),
        )) as unknown as http.AgentOptions["lookup"],
    });
    const endpoints = [`http://127.0.0.1:${a}`, "http://db-9.example:8001", `http://127.0.0.1:${b}`];
    const error = await new KvClient({ endpoints, deadlineMs, agent }).call("GET", "/v1/kv/k").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(UnreachableError);
    expect((error as UnreachableError).failures).toEqual([
      { endpoint: endpoints[0], error: `connect ECONNREFUSED 127.0.0.1:${a}` },
      { endpoint: endpoints[1], error: "getaddrinfo ENOTFOUND db-9.example" },
      { endpoint: endpoints[2], error: `connect ECONNREFUSED 127.0.0.1:${b}` },
    ]);
    expect((error as Error).message).toBe(
      `no replica reachable: ${endpoints[0]} (connect ECONNREFUSED 127.0.0.1:${a}), ` +
        `${endpoints[1]} (getaddrinfo ENOTFOUND db-9.example), ${endpoints[2]} (connect ECONNREFUSED 127.0.0.1:${b})`,
    );
  });

  it("keeps retrying while one endpoint answers, and while a redirect's target is down", async () => {
    const down = await closedPort();
    let asked = 0;
    // No leader for the first three requests, then an answer.
    const follower = http.createServer((_request, response) => {
      asked++;
      response.writeHead(asked <= 3 ? 503 : 200, { "Content-Type": "application/json" });
      response.end(asked <= 3 ? '{"code":"unavailable"}' : '{"value":"v"}');
    });
    const followerUrl = await listen(follower, "http");
    // A replica that redirects to a leader that is down: it answered, so it is not given up on.
    let redirected = 0;
    const redirecting = http.createServer((request, response) => {
      redirected++;
      const to = redirected <= 3 ? `http://127.0.0.1:${down}` : followerUrl;
      response.writeHead(307, { "Content-Type": "application/json", Location: `${to}${request.url ?? "/"}` });
      response.end('{"code":"redirect"}');
    });
    const redirectingUrl = await listen(redirecting, "http");
    try {
      const refusedAndFollower = new KvClient({ endpoints: [`http://127.0.0.1:${down}`, followerUrl], deadlineMs });
      expect(await refusedAndFollower.call("GET", "/v1/kv/k")).toMatchObject({ status: 200, body: { value: "v" } });
      expect(asked).toBe(4);
      const viaRedirect = new KvClient({ endpoints: [redirectingUrl], deadlineMs });
      expect(await viaRedirect.call("GET", "/v1/kv/k")).toMatchObject({ status: 200, body: { value: "v" } });
      expect(redirected).toBe(4);
    } finally {
      for (const server of [follower, redirecting]) server.close();
    }
  });
});

describe("KvClient sessions at feature level 3", () => {
  it("writes under a session the service opens once a client-chosen id is refused session-expired", async () => {
    // A level-3 leader: it opens "session 1" and refuses any other id as session-expired.
    const seen: string[] = [];
    const leader = http.createServer((request, response) => {
      const id = request.headers["x-client-id"];
      seen.push(`${request.method} ${request.url} ${typeof id === "string" ? id : "-"}`);
      const [status, body] =
        request.url === "/v1/sessions"
          ? [200, { clientId: "session 1" }]
          : id === "session 1"
            ? [200, { key: "k", ok: true }]
            : [409, { code: "session-expired" }];
      response.writeHead(status, { "Content-Type": "application/json" });
      response.end(JSON.stringify(body));
    });
    const url = await listen(leader, "http");
    try {
      const client = new KvClient({ endpoints: [url], deadlineMs: 2000 });
      expect(await client.write("PUT", "/v1/kv/k", { value: "v" })).toMatchObject({ status: 200 });
      expect(seen.slice(1)).toEqual(["POST /v1/sessions -", "PUT /v1/kv/k session 1"]);
      expect(seen[0]).toMatch(/^PUT \/v1\/kv\/k cli-/);
      // A session the caller gave is its own: its expiry is answered, never replaced.
      const given = await client.write("PUT", "/v1/kv/k", { value: "v" }, { clientId: "mine", seq: 3 });
      expect(given).toMatchObject({ status: 409, body: { code: "session-expired" } });
      expect(seen).toHaveLength(4);
    } finally {
      leader.close();
    }
  });
});

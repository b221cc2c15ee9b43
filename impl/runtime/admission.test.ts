/**
 * Admission control: the counting (requests and bytes, release once) and the HTTP answer beyond
 * the bounds, 429 with Retry-After before the body is read, on a connection that stays usable.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ClientResult } from "../core/index.ts";
import type { KvOutput } from "../../spec/kv.ts";
import { Admission, isRefusal, type AdmissionTicket } from "./admission.ts";
import { createHttpServer } from "./http-api.ts";
import { silentLogger } from "./log.ts";
import { tempDir } from "./testing.ts";
import { createToken, TokenStore } from "./tokens.ts";

function ticket(result: ReturnType<Admission["admit"]>): AdmissionTicket {
  if (isRefusal(result)) throw new Error(`refused: ${result.message}`);
  return result;
}

describe("Admission: bounds on requests and bytes in flight", () => {
  it("refuses beyond the request bound and admits again once one is released", () => {
    const admission = new Admission({ requestsInFlightMax: 2, bytesInFlightMax: 1000 });
    const a = ticket(admission.admit(10));
    ticket(admission.admit(10));
    const refused = admission.admit(10);
    expect(isRefusal(refused) && refused.reason).toBe("requests");
    a.release();
    a.release(); // a second release changes nothing
    expect(admission.depths).toMatchObject({ requests: 1, bytes: 10, refused: { requests: 1, bytes: 0 } });
    ticket(admission.admit(10));
    expect(isRefusal(admission.admit(10))).toBe(true);
  });

  it("refuses beyond the byte bound, but never refuses a lone request however large", () => {
    const admission = new Admission({ requestsInFlightMax: 100, bytesInFlightMax: 100 });
    const big = ticket(admission.admit(500));
    const refused = admission.admit(1);
    expect(isRefusal(refused) && refused.reason).toBe("bytes");
    expect(isRefusal(refused) && refused.message).toMatch(/500 bytes of requests in flight.*limit of 100/);
    big.release();
    const a = ticket(admission.admit(60));
    expect(isRefusal(admission.admit(41))).toBe(true);
    ticket(admission.admit(40));
    a.release();
    expect(admission.depths).toMatchObject({ requests: 1, bytes: 40, refused: { bytes: 2 } });
  });

  it("refuses nonsensical limits", () => {
    expect(() => new Admission({ requestsInFlightMax: 0 })).toThrow(/requestsInFlightMax/);
    expect(() => new Admission({ bytesInFlightMax: 1.5 })).toThrow(/bytesInFlightMax/);
  });
});

describe("HTTP API with admission control", () => {
  let server: http.Server;
  let port = 0;
  const held: ((result: ClientResult<KvOutput>) => void)[] = [];
  const admission = new Admission({ requestsInFlightMax: 3, bytesInFlightMax: 4096, retryAfterMs: 250 });
  const tokensFile = path.join(tempDir("admission-tokens"), "tokens.json");
  const token = createToken(tokensFile, "write", "writer").token;
  const store = new TokenStore(tokensFile, { reloadMs: 0 });

  beforeAll(async () => {
    server = createHttpServer({
      access: {
        authenticate: (authorization) => store.authenticate(authorization),
        hostAllowed: (host) => host === `127.0.0.1:${port}`,
      },
      replicaId: 1,
      // The stand-in replica holds every request until the test lets it go.
      submit: () => new Promise((resolve) => held.push(resolve)),
      httpAddressOf: () => null,
      status: () => ({}),
      metrics: () => Promise.resolve({ contentType: "text/plain", body: "" }),
      page: "",
      log: silentLogger(),
      admission,
      members: {
        show: () => ({}),
        precheck: () => null,
        addressOf: () => null,
        memberAddresses: () => [],
        reconfigure: () => Promise.resolve({ _tag: "unavailable", reason: "test", outcomeUnknown: false }),
      },
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  function put(
    body: string,
    keepAlive = false,
  ): Promise<{ status: number; headers: http.IncomingHttpHeaders; json: Record<string, unknown> }> {
    return new Promise((resolve, reject) => {
      const request = http.request(
        {
          host: "127.0.0.1",
          port,
          method: "PUT",
          path: "/v1/kv/k",
          agent: keepAlive ? agent : false,
          headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on("data", (c: Buffer) => chunks.push(c));
          response.on("end", () =>
            resolve({
              status: response.statusCode ?? 0,
              headers: response.headers,
              json: JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>,
            }),
          );
        },
      );
      request.on("error", reject);
      request.end(body);
    });
  }

  async function heldCount(n: number): Promise<void> {
    for (let i = 0; i < 200 && held.length < n; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(held.length).toBe(n);
  }

  it("answers 429 with Retry-After beyond the byte bound, and admits again once requests are answered", async () => {
    const value = JSON.stringify({ value: "x".repeat(3000) });
    const first = put(value);
    await heldCount(1);
    const refused = await put(value, true);
    expect(refused.status).toBe(429);
    expect(refused.headers["retry-after"]).toBe("1");
    expect(refused.json).toMatchObject({ code: "overloaded", retryAfterMs: 250 });
    expect(String(refused.json.message)).toMatch(/bytes of requests in flight/);
    // The refused request's body was drained: the same keep-alive connection serves the next one.
    const small = put(JSON.stringify({ value: "y" }), true);
    await heldCount(2);
    held.shift()!({ _tag: "ok", output: { _tag: "ok" } });
    expect((await first).status).toBe(200);
    held.shift()!({ _tag: "ok", output: { _tag: "ok" } });
    expect((await small).status).toBe(200);
    expect(admission.depths).toMatchObject({ requests: 0, bytes: 0 });
  });

  it("answers 429 beyond the request bound", async () => {
    const body = JSON.stringify({ value: "v" });
    const waiting = [put(body), put(body), put(body)];
    await heldCount(3);
    const refused = await put(body);
    expect(refused.status).toBe(429);
    expect(String(refused.json.message)).toMatch(/3 requests in flight/);
    for (const resolve of held.splice(0)) resolve({ _tag: "ok", output: { _tag: "ok" } });
    expect((await Promise.all(waiting)).map((r) => r.status)).toEqual([200, 200, 200]);
    agent.destroy();
  });
});

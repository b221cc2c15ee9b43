/**
 * The client API of real replica processes, attacked: requests without a token or with too weak
 * a role are refused (401, 403) at followers and at the leader, a web page of another origin
 * in Debian's Chromium cannot remove a replica or write a key (no-cors fetches and a text/plain
 * form, the classic cross-site request forgery), and a hostile name that resolves to a replica
 * (DNS rebinding) is refused. After each attack the membership and the data are unchanged.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { keyPath } from "./client.ts";
import { launchChromium } from "./testing-browser.ts";
import { useCluster } from "./testing-cluster.ts";

const cluster = useCluster(3, { traces: false });

const removeAll = JSON.stringify({ op: "remove", id: 3, force: true });

/** One raw request to replica `id` (no redirect followed). */
function request(
  id: number,
  method: string,
  path: string,
  body: string | undefined,
  headers: Record<string, string>,
): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${cluster().endpoint(id)}${path}`, { method, headers, agent: false }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (c: Buffer) => chunks.push(c));
      response.on("end", () =>
        resolve({
          status: response.statusCode ?? 0,
          body: JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>,
        }),
      );
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** The membership and the attacked key as the leader sees them (with the admin token). */
async function unchanged(): Promise<void> {
  const members = await cluster().client().call("GET", "/v1/members");
  expect(members.status).toBe(200);
  const inForce = members.body.inForce as { voters: number[] };
  expect(inForce.voters).toEqual([1, 2, 3]);
  expect(members.body.pending).toEqual([]);
  const key = await cluster().client().call("GET", keyPath("pwned"));
  expect(key.body).toMatchObject({ value: null });
}

/** The sum over the replicas of paxos_lease_http_refused_total{reason}. */
async function refused(reason: string): Promise<number> {
  let sum = 0;
  for (const m of cluster().members) {
    const raw = await fetch(`${cluster().endpoint(m.id)}/metrics`, { headers: cluster().authHeaders("read") }).then(
      (r) => r.text(),
    );
    const match = new RegExp(
      `^paxos_lease_http_refused_total\\{reason="${reason}",replica="${m.id}"\\} (\\d+)$`,
      "m",
    ).exec(raw);
    sum += Number(match?.[1] ?? 0);
  }
  return sum;
}

describe("the client API of real replicas", () => {
  it("refuses requests without a token (401) and with too weak a role (403), at every replica; nothing changes", async () => {
    const json = { "Content-Type": "application/json" };
    for (const m of cluster().members) {
      const anonymous = await request(m.id, "POST", "/v1/members", removeAll, json);
      expect(anonymous, `replica ${m.id}`).toMatchObject({ status: 401, body: { code: "unauthenticated" } });
      const writer = await request(m.id, "POST", "/v1/members", removeAll, {
        ...json,
        ...cluster().authHeaders("write"),
      });
      expect(writer, `replica ${m.id}`).toMatchObject({ status: 403, body: { code: "forbidden" } });
      const put = JSON.stringify({ value: "x" });
      expect((await request(m.id, "PUT", keyPath("pwned"), put, json)).status).toBe(401);
      expect(
        (await request(m.id, "PUT", keyPath("pwned"), put, { ...json, ...cluster().authHeaders("read") })).status,
      ).toBe(403);
      expect((await request(m.id, "GET", keyPath("pwned"), undefined, {})).status).toBe(401);
      expect((await request(m.id, "GET", "/status", undefined, {})).status).toBe(401);
      // The body the old API took from a web page: text/plain, even with a valid admin token.
      const plain = await request(m.id, "POST", "/v1/members", removeAll, {
        "Content-Type": "text/plain",
        ...cluster().authHeaders("admin"),
      });
      expect(plain).toMatchObject({ status: 415, body: { code: "unsupported-media-type" } });
    }
    await unchanged();
    expect(await refused("unauthenticated")).toBeGreaterThanOrEqual(12);
    expect(await refused("forbidden")).toBeGreaterThanOrEqual(6);
  }, 60_000);

  it("a page of another origin in Chromium cannot remove a replica or write a key", async (context) => {
    // attacker.example resolves to this machine, as a hostile name does after DNS rebinding.
    const browser = await launchChromium((reason) => context.skip(reason), "MAP attacker.example 127.0.0.1");
    if (browser === null) return;
    const endpoints = cluster().endpoints();
    const page = `<!doctype html><title>cat pictures</title>
<iframe name="sink"></iframe>
<form id="csrf" method="POST" enctype="text/plain" target="sink" action="${endpoints[0]}/v1/members">
<input name='{"op":"remove","id":2,"force":true,"x":"' value='"}'></form>
<script>
async function attack() {
  const outcomes = [];
  for (const endpoint of ${JSON.stringify(endpoints)}) {
    for (const [path, body] of [["/v1/members", ${JSON.stringify(removeAll)}], ["/v1/kv/pwned", '{"op":"append","value":"x"}']]) {
      try {
        await fetch(endpoint + path, { method: "POST", mode: "no-cors", headers: { "Content-Type": "text/plain" }, body });
        outcomes.push("sent");
      } catch (error) {
        outcomes.push("failed: " + error);
      }
    }
  }
  await new Promise((resolve) => { document.querySelector("iframe").onload = resolve; document.getElementById("csrf").submit(); });
  document.title = "done " + outcomes.join(",");
}
attack();
</script>`;
    const attacker = http.createServer((_request, response) => {
      response.writeHead(200, { "Content-Type": "text/html" });
      response.end(page);
    });
    await new Promise<void>((resolve) => attacker.listen(0, "127.0.0.1", resolve));
    const port = (attacker.address() as AddressInfo).port;
    try {
      const originRefusedBefore = await refused("origin-refused");
      const tab = await browser.newPage();
      await tab.goto(`http://attacker.example:${port}/`);
      await tab.waitForFunction('document.title.startsWith("done")', undefined, { timeout: 30_000 });
      // The fetches left the browser (no-cors answers are opaque, so the page cannot tell more).
      expect(await tab.title()).toBe(`done ${Array.from({ length: 6 }, () => "sent").join(",")}`);
      await unchanged();
      // Six fetches and the form, each refused for its origin before anything else was looked at.
      expect((await refused("origin-refused")) - originRefusedBefore).toBeGreaterThanOrEqual(7);
      // The hostile name pointed at a replica: refused for its Host, the page never loads.
      const leaderPort = new URL(endpoints[0]!).port;
      const rebound = await tab.goto(`http://attacker.example:${leaderPort}/`);
      expect(rebound?.status()).toBe(403);
      expect(await rebound?.json()).toMatchObject({ code: "host-refused" });
      await unchanged();
    } finally {
      await browser.close();
      await new Promise<void>((resolve) => attacker.close(() => resolve()));
    }
  }, 90_000);
});

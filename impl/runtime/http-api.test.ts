/**
 * The HTTP API against a stand-in replica (the kv application applied locally, or a chosen
 * ClientResult): the documented answers for each route, and fast-check fuzzing of methods,
 * paths, headers and bodies: the server never crashes and every failure is a JSON error.
 */
import http from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ClientResult, ConfigChange } from "../core/index.ts";
import { Either, Schema } from "effect";
import {
  KvInput,
  kv,
  kvGet,
  keyLengthMax,
  valueBytesMax,
  valueLengthMax,
  type KvOutput,
  type KvState,
} from "../../spec/kv.ts";
import type { Submission } from "./driver.ts";
import fs from "node:fs";
import path from "node:path";
import { applyChange } from "../core/configuration.ts";
import { bodyBytesMaxDefault, createHttpServer, plainPut, postBodyBytesMax } from "./http-api.ts";
import { silentLogger } from "./log.ts";
import { tempDir } from "./testing.ts";
import { certsLayout, initCa, issueReplicaCert, readTlsMaterial } from "./certs.ts";
import { roles, type Role } from "./access.ts";
import { createToken, revokeToken, TokenStore } from "./tokens.ts";

let server: http.Server;
let port = 0;

/** Send `request` as raw bytes on a new connection to the server, end it, and read the answer until the close. */
async function rawExchange(request: string): Promise<string> {
  const socket = net.connect({ host: "127.0.0.1", port });
  let answer = "";
  socket.on("data", (chunk: Buffer) => (answer += chunk.toString("utf8")));
  socket.on("error", () => undefined);
  socket.end(request);
  await new Promise<void>((resolve) => socket.once("close", () => resolve()));
  return answer;
}
let state: KvState = kv.start;
/** The feature level the stand-in store executes by (spec/kv.ts counts bytes from level 4 on). */
let kvLevel = 1;
/** When set, the stand-in answers this instead of executing. */
let forced: ClientResult<KvOutput> | undefined;
const submissions: Submission<KvInput>[] = [];
/** The membership stand-in: the changes asked for, and what the core answers them. */
const changes: ConfigChange[] = [];
// Where the members listen, as the leader knows them (one without a client address).
const members = [
  { replica: 1, peer: "10.0.0.1:7001", http: "10.0.0.1:8001" },
  { replica: 2, peer: "10.0.0.2:7002" },
];
let memberResult: ClientResult<KvOutput> = {
  _tag: "reconfigured",
  epoch: 12,
  governsFrom: 76,
  voters: [1, 2, 3],
  learners: [4],
};
let retired: string | null = null;
/** Whether /status and /metrics answer without a token. */
let publicStatus = false;
const tokensDir = tempDir("http-tokens");
const tokensFile = path.join(tokensDir, "tokens.json");
const tokens = new Map(roles.map((role) => [role, createToken(tokensFile, role, role).token]));
const bearer = (role: Role): Record<string, string> => ({ Authorization: `Bearer ${tokens.get(role)!}` });
const store = new TokenStore(tokensFile, { reloadMs: 0 });

function serverOptions(): Parameters<typeof createHttpServer>[0] {
  return {
    access: {
      authenticate: (authorization) => store.authenticate(authorization),
      hostAllowed: (host) => host === `127.0.0.1:${port}` || host === `localhost:${port}`,
      get publicStatus() {
        return publicStatus;
      },
    },
    replicaId: 1,
    submit: (submission) => {
      submissions.push(submission);
      if (forced !== undefined) return Promise.resolve(forced);
      const applied = kv.apply(submission.input, state, kvLevel);
      state = applied.state;
      return Promise.resolve({ _tag: "ok", output: applied.output });
    },
    httpAddressOf: (id) => (id === 2 ? "127.0.0.1:9999" : null),
    status: () => ({ replica: 1 }),
    metrics: () => Promise.resolve({ contentType: "text/plain", body: "m 1\n" }),
    page: "<html>status</html>",
    log: silentLogger(),
    bodyBytesMax: 64 * 1024,
    members: {
      show: () => ({ replica: 1, inForce: { voters: [1, 2, 3], learners: [] } }),
      // Replica 9 never connected: the leader does not know its address.
      precheck: (request) =>
        request.op === "add" && request.id === 9
          ? { status: 409, code: "unknown-replica", message: "replica 9 has not connected" }
          : null,
      // Replica 6 dialled this replica: its addresses are known here.
      addressOf: (id) => (id === 6 ? { peer: "10.0.0.6:7006", http: "10.0.0.6:8006" } : null),
      memberAddresses: () => members,
      reconfigure: (change) => {
        changes.push(change);
        return Promise.resolve(memberResult);
      },
    },
    retired: () => retired,
    openSession: () => {
      opens.push(1);
      return Promise.resolve(forcedOpen ?? { _tag: "session-opened", clientId: `session ${opens.length}` });
    },
  };
}
/** Open-session requests that reached the core, and the answer to force on them (default: opened). */
const opens: number[] = [];
let forcedOpen: ClientResult<KvOutput> | undefined;

beforeAll(async () => {
  server = createHttpServer(serverOptions());
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  fs.rmSync(tokensDir, { recursive: true, force: true });
});

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: Record<string, unknown> | undefined;
}

/**
 * One request as the CLI sends it: with the admin token, and a body as application/json;
 * `headers` add to or override those (an empty value removes one).
 */
function call(
  method: string,
  path: string,
  body?: string | Buffer,
  headers: Record<string, string> = {},
): Promise<Reply> {
  const merged = Object.fromEntries(
    Object.entries({
      ...bearer("admin"),
      ...(body === undefined ? {} : { "Content-Type": "application/json" }),
      ...headers,
    }).filter(([, value]) => value !== ""),
  );
  return new Promise((resolve, reject) => {
    const request = http.request(
      { host: "127.0.0.1", port, method, path, headers: merged, agent: false },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (c: Buffer) => chunks.push(c));
        response.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let json: Record<string, unknown> | undefined;
          try {
            json = JSON.parse(text) as Record<string, unknown>;
          } catch {
            json = undefined;
          }
          resolve({ status: response.statusCode ?? 0, headers: response.headers, text, json });
        });
      },
    );
    request.on("error", reject);
    if (body !== undefined) request.write(body);
    request.end();
  });
}

describe("HTTP API: the documented answers", () => {
  it("put, get, append, cas and delete", async () => {
    forced = undefined;
    expect((await call("PUT", "/v1/kv/a/b", JSON.stringify({ value: "x" }))).json).toEqual({ key: "a/b", ok: true });
    expect((await call("GET", "/v1/kv/a/b")).json).toEqual({ key: "a/b", value: "x" });
    expect((await call("POST", "/v1/kv/a/b", JSON.stringify({ op: "append", value: "y" }))).json).toEqual({
      key: "a/b",
      value: "xy",
    });
    const failed = await call("POST", "/v1/kv/a/b", JSON.stringify({ op: "cas", expected: "nope", value: "z" }));
    expect(failed.status).toBe(409);
    expect(failed.json).toMatchObject({ code: "cas-failed", current: "xy" });
    expect((await call("POST", "/v1/kv/a/b", JSON.stringify({ op: "cas", expected: "xy", value: "z" }))).json).toEqual({
      key: "a/b",
      swapped: true,
      previous: "xy",
    });
    expect((await call("DELETE", "/v1/kv/a/b")).json).toEqual({ key: "a/b", ok: true });
    expect((await call("GET", "/v1/kv/a%2Fb?consistency=stale")).json).toEqual({ key: "a/b", value: null });
    expect(submissions.at(-1)).toMatchObject({ consistency: "stale" });
  });

  it("passes exactly-once sessions through, and refuses half a session", async () => {
    forced = undefined;
    await call("PUT", "/v1/kv/s", JSON.stringify({ value: "1" }), { "X-Client-Id": "c-1", "X-Client-Seq": "7" });
    expect(submissions.at(-1)).toMatchObject({ clientId: "c-1", seq: 7 });
    const half = await call("PUT", "/v1/kv/s", JSON.stringify({ value: "1" }), { "X-Client-Id": "c-1" });
    expect(half.status).toBe(400);
    expect(half.json?.message).toMatch(/give both or neither/);
    expect(
      (await call("PUT", "/v1/kv/s", JSON.stringify({ value: "1" }), { "X-Client-Id": "c 1", "X-Client-Seq": "1" }))
        .status,
    ).toBe(400);
    expect(
      (await call("PUT", "/v1/kv/s", JSON.stringify({ value: "1" }), { "X-Client-Id": "c", "X-Client-Seq": "0" }))
        .status,
    ).toBe(400);
  });

  it("opens a session the service names (level 3), takes it as X-Client-Id, and says when the level is below", async () => {
    forcedOpen = undefined;
    const opened = await call("POST", "/v1/sessions", undefined, bearer("write"));
    expect(opened).toMatchObject({ status: 200, json: { clientId: `session ${opens.length}` } });
    const clientId = opened.json!.clientId as string;
    await call("PUT", "/v1/kv/s", JSON.stringify({ value: "1" }), { "X-Client-Id": clientId, "X-Client-Seq": "1" });
    expect(submissions.at(-1)).toMatchObject({ clientId, seq: 1 });
    expect((await call("POST", "/v1/sessions", "{}")).status).toBe(200);
    const before = opens.length;
    expect(await call("POST", "/v1/sessions", undefined, bearer("read"))).toMatchObject({ status: 403 });
    expect(await call("POST", "/v1/sessions", JSON.stringify({ id: 1 }))).toMatchObject({ status: 400 });
    expect(await call("GET", "/v1/sessions")).toMatchObject({ status: 405 });
    expect(opens.length).toBe(before);
    forcedOpen = { _tag: "refused", reason: "the cluster runs at feature level 2, which opens no sessions" };
    expect(await call("POST", "/v1/sessions")).toMatchObject({ status: 409, json: { code: "sessions-not-opened" } });
    forcedOpen = { _tag: "redirect", leader: 2 };
    expect(await call("POST", "/v1/sessions")).toMatchObject({ status: 307 });
    forcedOpen = undefined;
  });

  it("maps redirect, no leader, stale sequence, reused sequence and unavailable", async () => {
    forced = { _tag: "redirect", leader: 2 };
    const redirect = await call("PUT", "/v1/kv/k", JSON.stringify({ value: "v" }));
    expect(redirect.status).toBe(307);
    expect(redirect.headers.location).toBe("http://127.0.0.1:9999/v1/kv/k");
    expect(redirect.json).toMatchObject({ code: "redirect", leader: 2 });
    forced = { _tag: "redirect", leader: null };
    expect(await call("GET", "/v1/kv/k")).toMatchObject({ status: 503, json: { code: "no-leader" } });
    forced = { _tag: "redirect", leader: 3 };
    expect(await call("GET", "/v1/kv/k")).toMatchObject({
      status: 503,
      json: { code: "leader-unreachable", leader: 3 },
    });
    forced = { _tag: "stale-seq", lastSeq: 9 };
    expect(await call("PUT", "/v1/kv/k", JSON.stringify({ value: "v" }))).toMatchObject({
      status: 409,
      json: { code: "stale-seq", lastSeq: 9 },
    });
    forced = { _tag: "seq-reused", seq: 4 };
    const reused = await call("PUT", "/v1/kv/k", JSON.stringify({ value: "v" }));
    expect(reused).toMatchObject({ status: 409, json: { code: "seq-reused", seq: 4 } });
    expect((reused.json as { message: string }).message).toMatch(/another command.*not executed/);
    forced = { _tag: "unavailable", reason: "lost leadership", outcomeUnknown: true };
    expect(await call("PUT", "/v1/kv/k", JSON.stringify({ value: "v" }))).toMatchObject({
      status: 503,
      json: { code: "unavailable", outcomeUnknown: true },
    });
    forced = undefined;
  });

  it("refuses malformed requests with 400, 404, 405 and 413", async () => {
    expect(await call("PUT", "/v1/kv/k", "{nope")).toMatchObject({ status: 400, json: { code: "malformed" } });
    expect(await call("PUT", "/v1/kv/k", JSON.stringify({ value: 3 }))).toMatchObject({
      status: 400,
      json: { code: "malformed" },
    });
    expect(await call("PUT", "/v1/kv/k", JSON.stringify({ value: "v", extra: 1 }))).toMatchObject({ status: 400 });
    expect(await call("PUT", "/v1/kv/k")).toMatchObject({ status: 400, json: { message: "a JSON body is required" } });
    expect(await call("POST", "/v1/kv/k", JSON.stringify({ op: "increment" }))).toMatchObject({ status: 400 });
    expect(await call("GET", "/v1/kv/")).toMatchObject({ status: 400 });
    expect(await call("GET", "/v1/kv/%E0%A4%A")).toMatchObject({ status: 400 });
    expect(await call("GET", `/v1/kv/${"k".repeat(2000)}`)).toMatchObject({
      status: 400,
      json: { message: "the key is 2000 characters long; keys are at most 1024 characters" },
    });
    expect(await call("GET", "/v1/kv/k?consistency=eventual")).toMatchObject({ status: 400 });
    expect(await call("GET", "/v1/kv/k?color=red")).toMatchObject({ status: 400 });
    expect(await call("PUT", "/v1/kv/k?consistency=stale", JSON.stringify({ value: "v" }))).toMatchObject({
      status: 400,
    });
    expect(await call("GET", "/v2/things")).toMatchObject({ status: 404, json: { code: "not-found" } });
    // A path that starts with two slashes is a path, not a host and a path.
    expect(await call("GET", "//v1/kv/a")).toMatchObject({
      status: 404,
      json: { message: "no route //v1/kv/a; the key-value API is under /v1/kv/<key>" },
    });
    // Longer than Node's parser takes (a request line of 20,000 bytes): 431, saying so.
    const long = await call("GET", `/v1/kv/${"k".repeat(20_000)}`);
    expect(long).toMatchObject({ status: 431, json: { code: "headers-too-large" } });
    expect(long.json?.message).toMatch(/^the request line and headers exceed \d+ bytes/);
    const patch = await call("PATCH", "/v1/kv/k", "{}");
    expect(patch).toMatchObject({ status: 405, json: { code: "method-not-allowed" } });
    expect(patch.headers.allow).toBe("GET, PUT, POST, DELETE");
    expect(await call("PUT", "/v1/kv/k", JSON.stringify({ value: "v".repeat(70 * 1024) }))).toMatchObject({
      status: 413,
      json: { code: "too-large" },
    });
  });

  it("answers one sentence naming the field, never a schema dump, and 400 for deeply nested JSON", async () => {
    const oneSentence = (reply: Reply): string => {
      const message = String(reply.json?.message);
      expect(reply.status, message).toBe(400);
      expect(message).not.toMatch(/[\n└├]/);
      expect(message.length).toBeLessThan(240);
      return message;
    };
    expect(oneSentence(await call("PUT", "/v1/kv/k", JSON.stringify({ value: 3 })))).toBe(
      "PUT body: field value is wrong: expected string, actual 3",
    );
    expect(oneSentence(await call("PUT", "/v1/kv/k", JSON.stringify({ value: "v", extra: 1 })))).toMatch(
      /^PUT body: field extra is unexpected/,
    );
    expect(
      oneSentence(await call("GET", "/v1/kv/k", undefined, { "X-Client-Id": "x".repeat(500), "X-Client-Seq": "1" })),
    ).toMatch(/^X-Client-Id: .*actual "x{59}\.\.\.$/);
    expect(oneSentence(await call("POST", "/v1/members", JSON.stringify({ op: "remove", id: "4" })))).toBe(
      'POST /v1/members body (op remove): field id is wrong: expected number, actual "4"',
    );
    for (const depth of [100, 30_000]) {
      const nested = `{"value":${"[".repeat(depth)}${"]".repeat(depth)}}`;
      for (const [method, route] of [
        ["PUT", "/v1/kv/k"],
        ["POST", "/v1/kv/k"],
        ["POST", "/v1/members"],
      ] as const)
        expect(oneSentence(await call(method, route, nested))).toBe(
          `the JSON body is nested ${depth + 1} levels deep; at most 32 are allowed`,
        );
    }
    // Brackets inside strings are text, not nesting, escaped quotes and backslashes included.
    for (const value of ["[".repeat(100), `"[${"[".repeat(100)}\\"`, `\\${"{".repeat(40)}"[`])
      expect(await call("PUT", "/v1/kv/brackets", JSON.stringify({ value }))).toMatchObject({ status: 200 });
    // A string that ends in an escaped backslash ends there: the brackets after it nest.
    const afterString = `{"value":"a\\\\","x":${"[".repeat(40)}${"]".repeat(40)}}`;
    expect(oneSentence(await call("PUT", "/v1/kv/k", afterString))).toBe(
      "the JSON body is nested 41 levels deep; at most 32 are allowed",
    );
  });

  it("cuts a body that arrives too slowly, answering 408 with how much arrived", async () => {
    const slow = createHttpServer({ ...serverOptions(), bodyArrivalMs: 300 });
    await new Promise<void>((resolve) => slow.listen(0, "127.0.0.1", resolve));
    try {
      const socket = net.connect((slow.address() as AddressInfo).port, "127.0.0.1");
      let answer = "";
      socket.on("data", (c: Buffer) => (answer += c.toString("utf8")));
      const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
      socket.write(
        `PUT /v1/kv/k HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${tokens.get("admin")!}\r\nContent-Type: application/json\r\nContent-Length: 20\r\n\r\n{"val`,
      );
      await closed;
      expect(answer).toMatch(/^HTTP\/1\.1 408 /);
      expect(answer).toContain(
        '{"code":"request-timeout","message":"the body did not arrive within 0.3 s (5 of 20 bytes received)"}',
      );
    } finally {
      slow.close();
    }
  });

  it("serves the status page, /status, /metrics and /healthz", async () => {
    expect((await call("GET", "/")).text).toContain("status");
    expect((await call("GET", "/status")).json).toEqual({ replica: 1 });
    expect((await call("GET", "/metrics")).text).toBe("m 1\n");
    expect((await call("GET", "/healthz")).json).toEqual({ ok: true, replica: 1 });
  });
});

describe("HTTP API: the value limit, 1 MiB of UTF-8, one answer for every operation", () => {
  // A server with the default body limit (1 MiB + 4 KiB), which a value at the limit fits in.
  let large: http.Server;
  let mainPort = 0;
  beforeAll(async () => {
    large = createHttpServer({ ...serverOptions(), bodyBytesMax: bodyBytesMaxDefault });
    await new Promise<void>((resolve) => large.listen(0, "127.0.0.1", resolve));
    mainPort = port;
    port = (large.address() as AddressInfo).port;
  });
  afterAll(async () => {
    port = mainPort;
    await new Promise<void>((resolve) => large.close(() => resolve()));
  });

  const tooLarge = (length: number) => ({
    status: 413,
    json: { code: "value-too-large", key: "big", length, limit: valueBytesMax, unit: "bytes" },
  });
  // `n` characters `width` bytes wide each after ASCII, `over` bytes past the limit in all.
  const near = (char: string, width: number, over: number, n = 3): string =>
    "a".repeat(valueBytesMax - n * width + over) + char.repeat(n);
  const widths: [string, number][] = [
    ["a", 1],
    ["\u00e9", 2],
    ["\u20ac", 3],
    ["\u{1f600}", 4],
  ];

  it("takes a put or swap of exactly 1 MiB of UTF-8 and refuses one byte more with 413, proposing nothing", async () => {
    forced = undefined;
    for (const [char, width] of widths) {
      const exact = near(char, width, 0);
      expect(await call("PUT", "/v1/kv/big", JSON.stringify({ value: exact })), char).toMatchObject({ status: 200 });
      expect(kvGet(state, "big") === exact).toBe(true);
      const before = submissions.length;
      const put = await call("PUT", "/v1/kv/big", JSON.stringify({ value: near(char, width, 1) }));
      expect(put, char).toMatchObject(tooLarge(valueBytesMax + 1));
      expect(put.json?.message).toBe(
        "put refused: the value would be 1048577 bytes of UTF-8, above the value limit of 1048576 bytes; nothing changed",
      );
      const cas = await call(
        "POST",
        "/v1/kv/big",
        JSON.stringify({ op: "cas", expected: "x", value: near(char, width, 1) }),
      );
      expect(cas, char).toMatchObject(tooLarge(valueBytesMax + 1));
      expect(cas.json?.message).toMatch(/^compare-and-swap refused: the value would be 1048577 bytes/);
      expect(submissions.length).toBe(before);
      expect(kvGet(state, "big") === exact).toBe(true);
    }
    // The example of a PUT of 1 MiB + 1 of ASCII: not a 400 because it has more code units than
    // any value may have, but the same 413.
    expect(await call("PUT", "/v1/kv/big", JSON.stringify({ value: "a".repeat(valueBytesMax + 1) }))).toMatchObject(
      tooLarge(valueBytesMax + 1),
    );
  });

  it("counts a lone surrogate (sent escaped) as 3 bytes", async () => {
    forced = undefined;
    const body = (ascii: number): string => `{"value":"${"a".repeat(ascii)}\\ud800"}`;
    expect(await call("PUT", "/v1/kv/big", body(valueBytesMax - 3))).toMatchObject({ status: 200 });
    expect(kvGet(state, "big")).toBe(`${"a".repeat(valueBytesMax - 3)}\ud800`);
    expect(await call("PUT", "/v1/kv/big", body(valueBytesMax - 2))).toMatchObject(tooLarge(valueBytesMax + 1));
  });

  it("executes an append past the limit in bytes, answers 413 past the bound in code units, and refuses one over the limit alone", async () => {
    forced = undefined;
    const start = "a".repeat(valueBytesMax - 1);
    expect(await call("PUT", "/v1/kv/big", JSON.stringify({ value: start }))).toMatchObject({ status: 200 });
    // The value limit is admission's: an append whose text fits is executed, though the whole
    // takes 1 MiB + 1 bytes of UTF-8 (within the bound in code units every replica executes by).
    const append = await call("POST", "/v1/kv/big", JSON.stringify({ op: "append", value: "\u00e9" }));
    expect(append).toMatchObject({ status: 200, json: { value: `${start}\u00e9` } });
    expect(await call("POST", "/v1/kv/big", JSON.stringify({ op: "append", value: "b" }))).toMatchObject({
      status: 413,
      json: {
        code: "value-too-large",
        key: "big",
        length: valueLengthMax + 1,
        limit: valueLengthMax,
        unit: "code-units",
      },
    });
    expect(kvGet(state, "big")).toBe(`${start}\u00e9`);
    expect(await call("PUT", "/v1/kv/big", JSON.stringify({ value: start }))).toMatchObject({ status: 200 });
    expect(await call("POST", "/v1/kv/big", JSON.stringify({ op: "append", value: "b" }))).toMatchObject({
      status: 200,
      json: { value: `${start}b` },
    });
    // Over the limit alone: refused before it is proposed, naming the appended text's length.
    const before = submissions.length;
    const alone = await call("POST", "/v1/kv/big", JSON.stringify({ op: "append", value: near("\u00e9", 2, 2) }));
    expect(alone).toMatchObject(tooLarge(valueBytesMax + 2));
    expect(alone.json?.message).toMatch(/^append refused: the appended text alone is 1048578 bytes of UTF-8/);
    expect(submissions.length).toBe(before);
  });

  it("at feature level 4 refuses at execution an append whose whole is over the limit in bytes, as admission words it", async () => {
    forced = undefined;
    kvLevel = 4;
    try {
      const start = "a".repeat(valueBytesMax - 1);
      expect(await call("PUT", "/v1/kv/big", JSON.stringify({ value: start }))).toMatchObject({ status: 200 });
      const before = submissions.length;
      const append = await call("POST", "/v1/kv/big", JSON.stringify({ op: "append", value: "\u00e9" }));
      // Proposed (the text alone fits), then refused where it executes, in bytes.
      expect(submissions.length).toBe(before + 1);
      expect(append).toMatchObject({ ...tooLarge(valueBytesMax + 1), json: { unit: "bytes" } });
      expect(append.json?.message).toBe(
        "append refused: the value would be 1048577 bytes of UTF-8, above the value limit of 1048576 bytes; nothing changed",
      );
      expect(kvGet(state, "big") === start).toBe(true);
      expect(await call("POST", "/v1/kv/big", JSON.stringify({ op: "append", value: "b" }))).toMatchObject({
        status: 200,
        json: { value: `${start}b` },
      });
    } finally {
      kvLevel = 1;
    }
  });

  it("takes a compare-and-swap of two values of 1 MiB each, its body counted whole, and refuses one past twice the limit", async () => {
    forced = undefined;
    const old = near("\u20ac", 3, 0);
    const next = near("\u00e9", 2, 0);
    expect(await call("PUT", "/v1/kv/big", JSON.stringify({ value: old }))).toMatchObject({ status: 200 });
    const body = JSON.stringify({ op: "cas", expected: old, value: next });
    expect(Buffer.byteLength(body)).toBeGreaterThan(bodyBytesMaxDefault);
    const before = submissions.length;
    const length = { "Content-Length": String(Buffer.byteLength(body)) };
    const cas = await call("POST", "/v1/kv/big", body, length);
    expect(cas).toMatchObject({ status: 200, json: { swapped: true } });
    expect(kvGet(state, "big") === next).toBe(true);
    // Back again, its body sent without a length (chunked).
    const back = await call("POST", "/v1/kv/big", JSON.stringify({ op: "cas", expected: next, value: old }));
    expect(back).toMatchObject({ status: 200, json: { swapped: true } });
    // The driver (and its batches) count the whole body, both values: as declared, or at the POST limit.
    expect(submissions.slice(before).map((s) => s.bytes)).toEqual([
      Buffer.byteLength(body),
      postBodyBytesMax(bodyBytesMaxDefault),
    ]);
    // An expected value past the limit can equal no value the store holds: refused, nothing proposed.
    const over = await call("POST", "/v1/kv/big", JSON.stringify({ op: "cas", expected: near("a", 1, 1), value: "v" }));
    expect(over).toMatchObject(tooLarge(valueBytesMax + 1));
    expect(over.json?.message).toBe(
      "compare-and-swap refused: the expected value is 1048577 bytes of UTF-8, above the value limit of 1048576 bytes; nothing changed",
    );
    // Past twice the body limit: 413 before it is decoded.
    const padded = `${JSON.stringify({ op: "cas", expected: old, value: next })}${" ".repeat(postBodyBytesMax(bodyBytesMaxDefault))}`;
    expect(await call("POST", "/v1/kv/big", padded)).toMatchObject({ status: 413, json: { code: "too-large" } });
    expect(submissions.length).toBe(before + 2);
    expect(kvGet(state, "big") === old).toBe(true);
  });

  it("keeps an append's body within the body limit: a POST may be larger only for the second value of a swap", async () => {
    forced = undefined;
    const before = submissions.length;
    // One value of 1 MiB, then padding past the body limit: a PUT body so large is refused, so is this.
    const padded = `${JSON.stringify({ op: "append", value: near("a", 1, 0) })}${" ".repeat(8192)}`;
    const append = await call("POST", "/v1/kv/big", padded);
    expect(append).toMatchObject({ status: 413, json: { code: "too-large" } });
    expect(append.json?.message).toBe(
      `an append's body of ${Buffer.byteLength(padded)} bytes exceeds the limit of ${bodyBytesMaxDefault} bytes (only a compare-and-swap, which carries two values, may send up to ${postBodyBytesMax(bodyBytesMaxDefault)})`,
    );
    const put = await call("PUT", "/v1/kv/big", `${JSON.stringify({ value: "v" })}${" ".repeat(bodyBytesMaxDefault)}`);
    expect(put).toMatchObject({ status: 413, json: { code: "too-large" } });
    expect(submissions.length).toBe(before);
  });
});

describe("HTTP API: the put shortcut", () => {
  // What the Schemas give for a PUT body under `key`: PutBody, then KvInput (null: refused).
  const bySchema = (key: string, body: unknown): KvInput | null => {
    const options = { onExcessProperty: "error" } as const;
    const put = Schema.decodeUnknownEither(Schema.Struct({ value: Schema.String }))(body, options);
    if (Either.isLeft(put)) return null;
    const input = Schema.decodeUnknownEither(KvInput)({ _tag: "put", key, value: put.right.value }, options);
    return Either.isLeft(input) ? null : input.right;
  };
  const keys = fc.oneof(
    fc.string({ maxLength: 8 }),
    fc.constantFrom("", "k".repeat(keyLengthMax), "k".repeat(keyLengthMax + 1)),
  );
  const bodies = fc.oneof(
    fc.record({ value: fc.string() }),
    fc.constantFrom(
      { value: "v".repeat(valueLengthMax) },
      { value: "v".repeat(valueLengthMax + 1) },
      JSON.parse('{"__proto__": "x", "value": "v"}') as unknown,
      JSON.parse('{"value": "v", "value2": "w"}') as unknown,
      Object.create({ value: "inherited" }) as unknown,
    ),
    fc.dictionary(fc.constantFrom("value", "op", "expected", "x"), fc.jsonValue()),
    fc.jsonValue(),
    fc.anything(),
  );

  it("gives what the Schemas give whenever it answers, and answers every plain put", () => {
    fc.assert(
      fc.property(keys, bodies, (key, body) => {
        const fast = plainPut(key, body);
        const slow = bySchema(key, body);
        if (fast !== null) expect(fast).toEqual(slow);
        const plain =
          typeof body === "object" &&
          body !== null &&
          Object.getPrototypeOf(body) === Object.prototype &&
          Object.keys(body).length === 1 &&
          typeof (body as { value?: unknown }).value === "string";
        if (plain && slow !== null) expect(fast).toEqual(slow);
      }),
      { numRuns: 2000 },
    );
  });
});

describe("HTTP API: tokens and roles", () => {
  const none = { Authorization: "" };

  it("refuses every route that shows or changes data without a token (401), and changes nothing", async () => {
    forced = undefined;
    const before = submissions.length;
    const changesBefore = changes.length;
    const requests: [string, string, string | undefined][] = [
      ["GET", "/v1/kv/k", undefined],
      ["PUT", "/v1/kv/k", JSON.stringify({ value: "v" })],
      ["POST", "/v1/kv/k", JSON.stringify({ op: "append", value: "v" })],
      ["DELETE", "/v1/kv/k", undefined],
      ["GET", "/v1/members", undefined],
      ["POST", "/v1/members", JSON.stringify({ op: "remove", id: 3, force: true })],
      ["GET", "/status", undefined],
      ["GET", "/metrics", undefined],
      ["GET", "/v2/unknown", undefined],
    ];
    for (const [method, route, body] of requests) {
      const reply = await call(method, route, body, none);
      expect(reply.status, `${method} ${route}`).toBe(401);
      expect(reply.json).toMatchObject({ code: "unauthenticated" });
      expect(reply.json?.message).toMatch(/needs a token with the (read|write|admin) role/);
      expect(reply.headers["www-authenticate"]).toBe('Bearer realm="paxos-lease"');
    }
    expect(submissions.length).toBe(before);
    expect(changes.length).toBe(changesBefore);
    // What shows no data needs no token.
    expect((await call("GET", "/", undefined, none)).status).toBe(200);
    expect((await call("GET", "/healthz", undefined, none)).status).toBe(200);
  });

  it("refuses a malformed, unknown or revoked token with 401", async () => {
    const bad = await call("GET", "/v1/kv/k", undefined, { Authorization: "Bearer not-a-token" });
    expect(bad).toMatchObject({ status: 401, json: { message: expect.stringMatching(/not 'Bearer plt_/) as unknown } });
    const basic = await call("GET", "/v1/kv/k", undefined, { Authorization: "Basic dXNlcjpwYXNz" });
    expect(basic.status).toBe(401);
    const forged = tokens.get("admin")!.slice(0, -4) + "AAAA";
    expect(await call("GET", "/v1/kv/k", undefined, { Authorization: `Bearer ${forged}` })).toMatchObject({
      status: 401,
      json: { message: "the token is not valid here (unknown or revoked)" },
    });
    const { token, entry } = createToken(tokensFile, "write", "short-lived");
    expect(
      (await call("PUT", "/v1/kv/r", JSON.stringify({ value: "1" }), { Authorization: `Bearer ${token}` })).status,
    ).toBe(200);
    revokeToken(tokensFile, entry.id);
    expect(
      (await call("PUT", "/v1/kv/r", JSON.stringify({ value: "2" }), { Authorization: `Bearer ${token}` })).status,
    ).toBe(401);
  });

  it("refuses a role too weak for the route with 403, naming both roles, and changes nothing", async () => {
    forced = undefined;
    const changesBefore = changes.length;
    const reader = await call("PUT", "/v1/kv/k", JSON.stringify({ value: "v" }), bearer("read"));
    expect(reader).toMatchObject({ status: 403, json: { code: "forbidden" } });
    expect(reader.json?.message).toMatch(/needs the write role; token [0-9a-f]{8} has the read role/);
    const writer = await call(
      "POST",
      "/v1/members",
      JSON.stringify({ op: "remove", id: 3, force: true }),
      bearer("write"),
    );
    expect(writer).toMatchObject({ status: 403, json: { code: "forbidden" } });
    expect(writer.json?.message).toMatch(/needs the admin role/);
    expect(changes.length).toBe(changesBefore);
    expect((await call("GET", "/v1/kv/k", undefined, bearer("read"))).status).toBe(200);
    expect((await call("GET", "/v1/members", undefined, bearer("read"))).status).toBe(200);
    expect((await call("PUT", "/v1/kv/k", JSON.stringify({ value: "v" }), bearer("write"))).status).toBe(200);
  });

  it("serves /status and /metrics without a token only when the operator allows it", async () => {
    publicStatus = true;
    try {
      expect((await call("GET", "/status", undefined, none)).status).toBe(200);
      expect((await call("GET", "/metrics", undefined, none)).status).toBe(200);
      expect((await call("GET", "/v1/kv/k", undefined, none)).status).toBe(401);
    } finally {
      publicStatus = false;
    }
  });
});

describe("HTTP API: what a web page may not do", () => {
  it("refuses a body that is not application/json (415): a browser sends text/plain across origins unasked", async () => {
    const changesBefore = changes.length;
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""]) {
      const reply = await call("POST", "/v1/members", JSON.stringify({ op: "remove", id: 3 }), {
        "Content-Type": type,
      });
      expect(reply, type).toMatchObject({ status: 415, json: { code: "unsupported-media-type" } });
    }
    expect(changes.length).toBe(changesBefore);
    expect(
      (
        await call("PUT", "/v1/kv/k", JSON.stringify({ value: "v" }), {
          "Content-Type": "application/json; charset=utf-8",
        })
      ).status,
    ).toBe(200);
  });

  it("refuses a Host that is not an address of the cluster (DNS rebinding) and a foreign Origin", async () => {
    const rebound = await call("GET", "/v1/kv/k", undefined, { Host: `attacker.example:${port}` });
    expect(rebound).toMatchObject({ status: 403, json: { code: "host-refused" } });
    expect(rebound.json?.message).toMatch(/--allow-host/);
    expect((await call("GET", "/", undefined, { Host: `attacker.example:${port}` })).status).toBe(403);
    for (const origin of [`http://attacker.example:${port}`, "http://127.0.0.1:1", "null", `file://x`]) {
      const reply = await call("POST", "/v1/members", JSON.stringify({ op: "remove", id: 3, force: true }), {
        Origin: origin,
      });
      expect(reply, origin).toMatchObject({ status: 403, json: { code: "origin-refused" } });
    }
    expect((await call("GET", "/v1/kv/k", undefined, { Origin: `http://localhost:${port}` })).status).toBe(200);
  });
});

describe("HTTP API: every route, walked", () => {
  const methods = ["GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"];
  // Every route, and spellings that a router might take for one: a trailing slash, an empty key,
  // a scheme-relative target (its path is /v1/members), an unknown path.
  const spellings = [
    "/",
    "/healthz",
    "/status",
    "/metrics",
    "/v1/kv/k",
    "/v1/kv/",
    "/v1/members",
    "/v1/members/",
    "/v1/sessions",
  ].concat(["//x/v1/members", "/v1/kv", "/unknown"]);
  /** A body that would change something if it got through (a member removal, a write). */
  const bodyFor = (path: string): string =>
    path.includes("members") ? JSON.stringify({ op: "remove", id: 3, force: true }) : JSON.stringify({ value: "v" });

  /** Every method to every spelling with `headers` added: each answer, and what reached the core meanwhile. */
  async function walk(
    headers: Record<string, string>,
  ): Promise<{ replies: { method: string; path: string; reply: Reply }[]; reached: number }> {
    forced = undefined;
    const before = submissions.length + changes.length + opens.length;
    const replies: { method: string; path: string; reply: Reply }[] = [];
    for (const path of spellings)
      for (const method of methods) {
        const body = method === "GET" || method === "HEAD" || method === "OPTIONS" ? undefined : bodyFor(path);
        replies.push({ method, path, reply: await call(method, path, body, headers) });
      }
    return { replies, reached: submissions.length + changes.length + opens.length - before };
  }

  it("without a token: only GET and HEAD of / and /healthz answer; nothing reaches the core", async () => {
    const { replies, reached } = await walk({ Authorization: "" });
    expect(reached).toBe(0);
    for (const { method, path, reply } of replies) {
      const what = `${method} ${path}`;
      const open = (path === "/" || path === "/healthz") && (method === "GET" || method === "HEAD");
      const publicRoute = path === "/" || path === "/healthz";
      // A public route refuses a method that could change something with 405 (it has none to offer).
      expect(reply.status, what).toBe(open ? 200 : publicRoute ? 405 : 401);
      // No answer lets another origin read it, and no answer sets a cookie (tokens are bearer only).
      expect(reply.headers["access-control-allow-origin"], what).toBeUndefined();
      expect(reply.headers["access-control-allow-credentials"], what).toBeUndefined();
      expect(reply.headers["set-cookie"], what).toBeUndefined();
    }
  });

  it("with an admin token but from a page of another origin: every route is refused, nothing reaches the core", async () => {
    const { replies, reached } = await walk({ Origin: "https://attacker.example" });
    expect(reached).toBe(0);
    for (const { method, path, reply } of replies) {
      expect(reply.status, `${method} ${path}`).toBe(403);
      if (method !== "HEAD") expect(reply.json?.code, `${method} ${path}`).toBe("origin-refused");
      expect(reply.headers["access-control-allow-origin"]).toBeUndefined();
    }
  });

  it("serves the status page so that no other page may frame it", async () => {
    const page = await call("GET", "/", undefined, { Authorization: "" });
    expect(page.headers["content-security-policy"]).toBe("frame-ancestors 'none'");
    expect(page.headers["x-frame-options"]).toBe("DENY");
    expect(page.headers["x-content-type-options"]).toBe("nosniff");
  });
});

describe("HTTP API: membership", () => {
  const post = (body: unknown) => call("POST", "/v1/members", typeof body === "string" ? body : JSON.stringify(body));

  it("shows the membership and turns each op into the core's change", async () => {
    expect(await call("GET", "/v1/members")).toMatchObject({
      status: 200,
      json: { replica: 1, inForce: { voters: [1, 2, 3] } },
    });
    memberResult = { _tag: "reconfigured", epoch: 12, governsFrom: 76, voters: [1, 2, 3], learners: [4] };
    const added = await post({ op: "add", id: 4 });
    expect(added).toMatchObject({
      status: 200,
      json: { ok: true, epoch: 12, governsFrom: 76, voters: [1, 2, 3], learners: [4] },
    });
    expect(added.json?.message).toBe(
      "replica 4 added as a learner: chosen at slot 12, the configuration voters=1,2,3 learners=4 governs from slot 76",
    );
    await post({ op: "promote", id: 4 });
    await post({ op: "remove", id: 3, force: true });
    await post({ op: "replace", old: 2, id: 5 });
    await post({ op: "add", id: 6 });
    await post({ op: "add", id: 7, peerAddress: "h7:7007", httpAddress: "h7:8007" });
    expect(changes.slice(-6)).toEqual([
      // An add carries where the members listen, as the leader knows them.
      { op: "add", replica: 4, members },
      { op: "promote", replica: 4 },
      { op: "remove", replica: 3 },
      { op: "replace", remove: 2, add: 5 },
      // And the new replica's addresses: from its handshake, or from the request.
      { op: "add", replica: 6, address: { peer: "10.0.0.6:7006", http: "10.0.0.6:8006" }, members },
      { op: "add", replica: 7, address: { peer: "h7:7007", http: "h7:8007" }, members },
    ]);
  });

  it("refuses malformed bodies with 400, naming what was wrong", async () => {
    const before = changes.length;
    expect(await post("{nope")).toMatchObject({
      status: 400,
      json: { code: "malformed", message: expect.stringMatching(/^body is not JSON/) as unknown },
    });
    expect(await call("POST", "/v1/members")).toMatchObject({
      status: 400,
      json: { message: "a JSON body is required" },
    });
    expect(await post([1])).toMatchObject({
      status: 400,
      json: { message: expect.stringMatching(/must be a JSON object/) as unknown },
    });
    expect(await post({ id: 4 })).toMatchObject({
      status: 400,
      json: {
        message: expect.stringMatching(/op must be one of "add", "promote", "remove", "replace", got none/) as unknown,
      },
    });
    expect(await post({ op: "grow", id: 4 })).toMatchObject({
      status: 400,
      json: { message: expect.stringMatching(/got "grow"/) as unknown },
    });
    const missing = await post({ op: "add" });
    expect(missing.status).toBe(400);
    expect(missing.json?.message).toMatch(/op add.*\bid\b/s);
    for (const id of [0, -1, 1.5, "4", 1_000_001, null]) {
      const bad = await post({ op: "remove", id });
      expect(bad.status, JSON.stringify(id)).toBe(400);
      expect(bad.json?.message).toMatch(typeof id === "number" ? /a replica id is an integer in \[1, 1000000\]/ : /id/);
    }
    expect(await post({ op: "add", id: 4, address: "x" })).toMatchObject({
      status: 400,
      json: { message: expect.stringMatching(/address/) as unknown },
    });
    expect(await post({ op: "add", id: 4, peerAddress: "no port" })).toMatchObject({
      status: 400,
      json: { message: expect.stringMatching(/an address is HOST:PORT/) as unknown },
    });
    expect(await post({ op: "replace", id: 4 })).toMatchObject({
      status: 400,
      json: { message: expect.stringMatching(/old/) as unknown },
    });
    expect(await post({ op: "replace", old: 3, id: 3 })).toMatchObject({
      status: 400,
      json: { message: "replace needs two different replicas, got old 3 and id 3" },
    });
    expect(await post({ op: "remove", id: 3, force: "yes" })).toMatchObject({
      status: 400,
      json: { message: expect.stringMatching(/force/) as unknown },
    });
    expect(await call("GET", "/v1/members?verbose=1")).toMatchObject({ status: 400 });
    const put = await call("PUT", "/v1/members", "{}");
    expect(put).toMatchObject({ status: 405, json: { code: "method-not-allowed" } });
    expect(put.headers.allow).toBe("GET, POST");
    expect(changes.length).toBe(before);
  });

  it("maps the leader's and the core's refusals to 409, redirects like writes, and 410 once removed", async () => {
    expect(await post({ op: "add", id: 9 })).toMatchObject({
      status: 409,
      json: { code: "unknown-replica", message: "replica 9 has not connected" },
    });
    memberResult = {
      _tag: "refused",
      reason: "replica 4 has not caught up: it reported slot 3 executed, the leader 80",
    };
    expect(await post({ op: "promote", id: 4 })).toMatchObject({
      status: 409,
      json: { code: "not-caught-up", retry: true },
    });
    memberResult = { _tag: "refused", reason: "replica 7 is not a member" };
    expect(await post({ op: "remove", id: 7 })).toMatchObject({
      status: 409,
      json: { code: "refused", message: "replica 7 is not a member" },
    });
    // The core's own reasons: a replace whose new replica is not a learner yet is told apart from
    // one whose old replica is not a voter (the core judges the old one first), so that the CLI
    // adds the new replica only when the leader has vouched for the old one.
    const voters = { epoch: 0, governsFrom: 1, voters: [1, 2, 3], learners: [], retired: [], addresses: [] };
    for (const [change, code] of [
      [{ op: "replace", remove: 3, add: 5 }, "not-a-learner"],
      [{ op: "replace", remove: 9, add: 5 }, "refused"],
      [{ op: "promote", replica: 5 }, "not-a-learner"],
    ] as const) {
      const reason = applyChange(voters, change);
      if (typeof reason !== "string") throw new Error(`${JSON.stringify(change)} fits`);
      memberResult = { _tag: "refused", reason };
      const request =
        change.op === "replace" ? { op: "replace", old: change.remove, id: change.add } : { op: "promote", id: 5 };
      expect(await post(request), JSON.stringify(change)).toMatchObject({
        status: 409,
        json: { code, message: reason },
      });
    }
    memberResult = { _tag: "redirect", leader: 2 };
    const redirect = await post({ op: "add", id: 4 });
    expect(redirect).toMatchObject({ status: 307, json: { code: "redirect", leader: 2 } });
    expect(redirect.headers.location).toBe("http://127.0.0.1:9999/v1/members");
    memberResult = { _tag: "redirect", leader: null };
    expect(await post({ op: "add", id: 4 })).toMatchObject({ status: 503, json: { code: "no-leader" } });
    memberResult = { _tag: "unavailable", reason: "lost leadership", outcomeUnknown: true };
    expect(await post({ op: "add", id: 4 })).toMatchObject({
      status: 503,
      json: { code: "unavailable", outcomeUnknown: true },
    });
    retired = "replica 1 was removed from the cluster";
    try {
      expect(await post({ op: "add", id: 4 })).toMatchObject({
        status: 410,
        json: { code: "removed", message: "replica 1 was removed from the cluster" },
      });
      expect(await call("GET", "/v1/kv/k")).toMatchObject({ status: 410, json: { code: "removed" } });
      expect((await call("GET", "/v1/members")).status).toBe(200);
    } finally {
      retired = null;
    }
  });
});

describe("HTTP API: fuzzed", () => {
  const allowed = new Set([200, 307, 400, 404, 405, 409, 413, 415, 503]);
  memberResult = { _tag: "refused", reason: "replica 7 is not a member" };
  const segment = fc.oneof(
    fc.string({ maxLength: 12 }).map(encodeURIComponent),
    fc.constantFrom("%", "%zz", "%E0%A4%A", "..", "", "v1", "kv"),
  );
  const path = fc.oneof(
    fc.array(segment, { maxLength: 4 }).map((s) => `/v1/kv/${s.join("/")}`),
    fc.array(segment, { maxLength: 4 }).map((s) => `/${s.join("/")}`),
    fc.constantFrom("/v1/members", "/v1/members?x=1", "/v1/members/"),
    fc
      .tuple(fc.string({ maxLength: 8 }).map(encodeURIComponent), fc.string({ maxLength: 8 }).map(encodeURIComponent))
      .map(([k, v]) => `/v1/kv/k?${k}=${v}`),
  );
  const body = fc.oneof(
    fc.constant(undefined),
    fc.json().map((j) => j),
    fc.record({ value: fc.anything() }).map((r) => JSON.stringify(r)),
    fc
      .record(
        {
          op: fc.constantFrom("add", "promote", "remove", "replace", "x"),
          id: fc.oneof(fc.integer(), fc.string({ maxLength: 3 })),
          old: fc.integer(),
          force: fc.anything(),
        },
        { requiredKeys: [] },
      )
      .map((r) => JSON.stringify(r)),
    fc
      .record(
        {
          op: fc.constantFrom("cas", "append", "x"),
          expected: fc.oneof(fc.string(), fc.constant(null), fc.integer()),
          value: fc.oneof(fc.string(), fc.integer()),
        },
        { requiredKeys: [] },
      )
      .map((r) => JSON.stringify(r)),
    fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
  );
  const headers = fc.record(
    {
      "X-Client-Id": fc.string({ maxLength: 10 }).filter((s) => /^[\x20-\x7e]*$/.test(s)),
      "X-Client-Seq": fc.oneof(
        fc.nat().map(String),
        fc.string({ maxLength: 5 }).filter((s) => /^[\x20-\x7e]*$/.test(s)),
      ),
    },
    { requiredKeys: [] },
  );

  it("answers every request with an allowed status, and JSON {code, message} for every error", async () => {
    forced = undefined;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS"),
        path,
        body,
        headers,
        async (method, p, b, h) => {
          // A HEAD request carries no body (a JSON 400 to it would confuse the client's parser).
          const reply = await call(method, p, method === "HEAD" ? undefined : b, h);
          expect(allowed.has(reply.status), `status ${reply.status} for ${method} ${p}`).toBe(true);
          if (reply.status >= 400 && method !== "HEAD") {
            expect(reply.json).toMatchObject({
              code: expect.any(String) as unknown,
              message: expect.any(String) as unknown,
            });
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("refuses two Host headers, and checks the host a target in absolute form names", async () => {
    const auth = `Authorization: Bearer ${tokens.get("admin")!}\r\n`;
    const ours = `Host: 127.0.0.1:${port}\r\n`;
    expect(await rawExchange(`GET /v1/kv/k HTTP/1.1\r\n${ours}Host: evil.example\r\n${auth}\r\n`)).toContain(
      '{"code":"malformed","message":"the request has more than one Host header"}',
    );
    expect(await rawExchange(`GET http://evil.example/v1/kv/k HTTP/1.1\r\n${ours}${auth}\r\n`)).toMatch(
      /^HTTP\/1\.1 403 [^]*"code":"host-refused","message":"Host \\"evil.example\\"/,
    );
    expect(
      await rawExchange(`GET http://127.0.0.1:${port}/v1/kv/k HTTP/1.1\r\nHost: evil.example\r\n${auth}\r\n`),
    ).toMatch(/^HTTP\/1\.1 200 /);
  });

  it("answers an Expect other than 100-continue with a JSON 417, changing nothing", async () => {
    const reply = await call("PUT", "/v1/kv/expect", JSON.stringify({ value: "v" }), { Expect: "200-ok" });
    expect(reply).toMatchObject({
      status: 417,
      json: { code: "expectation-failed", message: 'Expect "200-ok" is not supported; only 100-continue is' },
    });
    expect(await call("GET", "/v1/kv/expect")).toMatchObject({ status: 200, json: { value: null } });
  });

  it("refuses a request of more than 64 headers, whose last ones the checks would not see", async () => {
    const filler = (n: number): string => Array.from({ length: n }, (_, i) => `X-Filler-${i}: a\r\n`).join("");
    const put = (headers: string): string =>
      `PUT /v1/kv/many HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${tokens.get("admin")!}\r\nContent-Type: application/json\r\nContent-Length: 13\r\n${headers}\r\n{"value":"v"}`;
    expect(await rawExchange(put(filler(60)))).toMatch(/^HTTP\/1\.1 200 /);
    // Node.js drops headers past its count silently: another page's Origin there slipped past the checks.
    const many = await rawExchange(put(`${filler(80)}Origin: http://evil.example\r\n`));
    expect(many).toMatch(/^HTTP\/1\.1 431 [^]*Connection: close/);
    expect(many).toContain(
      '{"code":"headers-too-large","message":"the request has more than 64 headers; at most 64 are allowed"}',
    );
    // Host last (as Node's client sends it) and dropped: the same answer, not Node's empty 400.
    const hostLast = await call(
      "GET",
      "/v1/kv/many",
      undefined,
      Object.fromEntries(Array.from({ length: 80 }, (_, i) => [`X-Filler-${i}`, "a"])),
    );
    expect(hostLast).toMatchObject({ status: 431, json: { code: "headers-too-large" } });
  });

  it("refuses at once a body framed by a Transfer-Encoding other than chunked, and closes", async () => {
    for (const coding of ["gzip", "xchunked", "identity", "gzip, chunked"]) {
      // Without the refusal, Node.js reads such a body until the connection ends: no answer for 30 s
      // (or, as here where the client then ends its side, none at all).
      const answer = await rawExchange(
        `PUT /v1/kv/te HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${tokens.get("admin")!}\r\nContent-Type: application/json\r\nTransfer-Encoding: ${coding}\r\n\r\nd\r\n{"value":"x"}\r\n0\r\n\r\n`,
      );
      expect(answer).toMatch(/^HTTP\/1\.1 400 [^]*Connection: close/);
      expect(answer).toContain(
        `{"code":"malformed","message":"Transfer-Encoding \\"${coding}\\" is not supported: send a body with Content-Length or Transfer-Encoding: chunked"}`,
      );
    }
    expect(await call("GET", "/v1/kv/te")).toMatchObject({ status: 200, json: { value: null } });
  });

  it("answers 408 to a connection whose headers do not arrive in time, and closes it", async () => {
    const quick = createHttpServer({ ...serverOptions(), headersArrivalMs: 200 });
    await new Promise<void>((resolve) => quick.listen(0, "127.0.0.1", resolve));
    try {
      const quickPort = (quick.address() as AddressInfo).port;
      const started = Date.now();
      // One sends nothing, one trickles its headers (slowloris): both are cut at the headers' time,
      // which Node.js checked only every 30 s unless told otherwise.
      const answers = await Promise.all(
        ["", `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Slow: `].map(async (opening) => {
          const socket = net.connect({ host: "127.0.0.1", port: quickPort });
          let answer = "";
          socket.on("data", (chunk: Buffer) => (answer += chunk.toString("utf8")));
          socket.on("error", () => undefined);
          socket.write(opening);
          const trickle = setInterval(() => opening !== "" && socket.writable && socket.write("a"), 20);
          await new Promise<void>((resolve) => socket.once("close", () => resolve()));
          clearInterval(trickle);
          return answer;
        }),
      );
      expect(Date.now() - started).toBeLessThan(1500);
      for (const answer of answers) {
        expect(answer).toMatch(/^HTTP\/1\.1 408 /);
        expect(answer).toContain(
          '{"code":"request-timeout","message":"the request line and headers did not arrive within 0.2 s"}',
        );
      }
    } finally {
      quick.close();
    }
  });

  it("closes an HTTPS connection whose TLS handshake does not finish within the headers' time", async () => {
    const dir = tempDir("http-tls");
    initCa(dir, { clusterId: "t" });
    const files = issueReplicaCert(dir, { clusterId: "t", id: 1, hosts: ["127.0.0.1"] });
    const tls = readTlsMaterial({ ...files, ca: certsLayout(dir).caCert });
    const secure = createHttpServer({ ...serverOptions(), tls, headersArrivalMs: 200 });
    await new Promise<void>((resolve) => secure.listen(0, "127.0.0.1", resolve));
    try {
      const started = Date.now();
      // Plain TCP, no ClientHello: Node's HTTPS server waits 120 s for one unless told otherwise.
      const socket = net.connect({ host: "127.0.0.1", port: (secure.address() as AddressInfo).port });
      socket.on("error", () => undefined);
      await new Promise<void>((resolve) => socket.once("close", () => resolve()));
      expect(Date.now() - started).toBeLessThan(1500);
    } finally {
      secure.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("closes a connection beyond --http-connections-per-address-max from its address, and serves another address", async () => {
    const dropped: string[] = [];
    const bounded = createHttpServer({
      ...serverOptions(),
      connectionsPerAddressMax: 2,
      onConnectionDropped: (remote, bound) => dropped.push(`${bound} ${remote}`),
    });
    await new Promise<void>((resolve) => bounded.listen(0, "127.0.0.1", resolve));
    const sockets: net.Socket[] = [];
    /** A connection from `localAddress`, once it is open; whether the server closed it at once. */
    const connect = async (localAddress: string): Promise<{ socket: net.Socket; closed: Promise<void> }> => {
      const socket = net.connect({ host: "127.0.0.1", port: (bounded.address() as AddressInfo).port, localAddress });
      sockets.push(socket);
      socket.on("error", () => undefined);
      const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
      await new Promise((resolve) => socket.once("connect", resolve));
      return { socket, closed };
    };
    /** GET /healthz on `socket`: its status line, or "" if the server closed the connection. */
    const healthz = (socket: net.Socket): Promise<string> =>
      new Promise((resolve) => {
        let answer = "";
        socket.on("data", (chunk: Buffer) => (answer += chunk.toString("utf8")));
        socket.once("close", () => resolve(answer.split("\r\n")[0] ?? ""));
        socket.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`);
      });
    try {
      const first = await connect("127.0.0.1");
      await connect("127.0.0.1");
      const third = await connect("127.0.0.1");
      await third.closed;
      expect(dropped).toEqual(["per-address 127.0.0.1"]);
      // Another address is served while the first holds its two.
      expect(await healthz((await connect("127.0.0.2")).socket)).toBe("HTTP/1.1 200 OK");
      // A closed connection gives its address its place back.
      first.socket.destroy();
      await first.closed;
      const open = (): Promise<number> =>
        new Promise((resolve, reject) => bounded.getConnections((error, n) => (error ? reject(error) : resolve(n))));
      for (let waited = 0; waited < 1000 && (await open()) > 1; waited += 10)
        await new Promise((resolve) => setTimeout(resolve, 10));
      expect(await healthz((await connect("127.0.0.1")).socket)).toBe("HTTP/1.1 200 OK");
      expect(dropped).toEqual(["per-address 127.0.0.1"]);
    } finally {
      for (const socket of sockets) socket.destroy();
      bounded.close();
    }
  });

  it("closes a connection answered for bytes that are not HTTP, even if the client never closes its side", async () => {
    const quick = createHttpServer({ ...serverOptions(), malformedLingerMs: 100 });
    await new Promise<void>((resolve) => quick.listen(0, "127.0.0.1", resolve));
    try {
      const quickPort = (quick.address() as AddressInfo).port;
      // Half-open: the client never sends its FIN. Without the close, the replica kept each such
      // connection (a file descriptor, a place under --http-connections-max) for ever.
      const sockets = Array.from({ length: 3 }, () =>
        net.connect({ host: "127.0.0.1", port: quickPort, allowHalfOpen: true }),
      );
      const answers = await Promise.all(
        sockets.map(async (socket) => {
          let answer = "";
          socket.on("data", (chunk: Buffer) => (answer += chunk.toString("utf8")));
          socket.on("error", () => undefined);
          socket.write("garbage\r\n\r\n");
          await new Promise<void>((resolve) => socket.once("end", () => resolve()));
          return answer;
        }),
      );
      for (const answer of answers) expect(answer).toMatch(/^HTTP\/1\.1 400 [^]*"code":"malformed"/);
      const open = (): Promise<number> =>
        new Promise((resolve, reject) => quick.getConnections((error, n) => (error ? reject(error) : resolve(n))));
      for (let waited = 0; waited < 1000 && (await open()) > 0; waited += 20)
        await new Promise((resolve) => setTimeout(resolve, 20));
      expect(await open()).toBe(0);
      for (const socket of sockets) socket.destroy();
    } finally {
      quick.close();
    }
  });

  it("survives raw garbage on the socket", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 300 }), async (bytes) => {
        const socket = net.connect({ host: "127.0.0.1", port });
        socket.on("error", () => undefined);
        await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
        socket.end(Buffer.from(bytes));
        await new Promise<void>((resolve) => socket.once("close", () => resolve()).resume());
      }),
      { numRuns: 50 },
    );
    expect((await call("GET", "/healthz")).status).toBe(200);
  });
});

/**
 * Admission control: the counting (requests and bytes, release once) and the HTTP answer beyond
 * the bounds, 429 with Retry-After before the body is read, on a connection that stays usable.
 */
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ClientResult } from "../core/index.ts";
import type { KvOutput } from "../../spec/kv.ts";
import { Admission, driverRequestsPendingMax, isRefusal, type AdmissionTicket } from "./admission.ts";
import { expectContinueBytesMin, httpJson } from "./client.ts";
import { createHttpServer } from "./http-api.ts";
import { apiOptions, tempDir } from "./testing.ts";
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
    const admission = new Admission({ requestsInFlightMax: 100, bytesInFlightMax: 100, smallBytesMax: 0 });
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

  it("lets a request beyond the byte bound wait for room, admitting the waiting in arrival order", async () => {
    const admission = new Admission({
      requestsInFlightMax: 100,
      bytesInFlightMax: 100,
      waitMsMax: 60_000,
      smallBytesMax: 0,
    });
    const a = ticket(admission.admit(80));
    const first = admission.wait(50);
    const second = admission.wait(10);
    expect(first).toBeInstanceOf(Promise);
    // The second would fit, but waits behind the first.
    expect(second).toBeInstanceOf(Promise);
    expect(admission.depths).toMatchObject({ requests: 1, bytes: 80, waiting: 2, refused: { bytes: 0 } });
    a.release();
    const [x, y] = await Promise.all([first, second]);
    expect(isRefusal(x) || isRefusal(y)).toBe(false);
    expect(admission.depths).toMatchObject({ requests: 2, bytes: 60, waiting: 0, refused: { bytes: 0 } });
    // Beyond the request bound nothing waits.
    const full = new Admission({ requestsInFlightMax: 1, waitMsMax: 60_000 });
    ticket(full.admit(1));
    const refused = full.wait(1);
    expect(!(refused instanceof Promise) && isRefusal(refused) && refused.reason).toBe("requests");
  });

  it("refuses a request whose wait for room ran out, and one that may not wait", async () => {
    const admission = new Admission({
      requestsInFlightMax: 100,
      bytesInFlightMax: 100,
      waitMsMax: 20,
      smallBytesMax: 0,
    });
    ticket(admission.admit(100));
    const late = await admission.wait(1);
    expect(isRefusal(late) && late.message).toMatch(/waited 20 ms for room/);
    expect(admission.depths).toMatchObject({ waiting: 0, refused: { bytes: 1 } });
    const now = new Admission({ bytesInFlightMax: 100, waitMsMax: 0, smallBytesMax: 0 });
    ticket(now.admit(100));
    const refused = now.wait(1);
    expect(!(refused instanceof Promise) && isRefusal(refused)).toBe(true);
  });

  it("admits a small request while large ones wait for the byte bound: the small requests' reserve", async () => {
    const admission = new Admission({
      requestsInFlightMax: 100,
      bytesInFlightMax: 1000,
      smallBytesMax: 100,
      smallBytesReserve: 200,
      waitMsMax: 60_000,
    });
    const large = ticket(admission.admit(800));
    const waitingLarge = admission.wait(500);
    expect(waitingLarge).toBeInstanceOf(Promise);
    // Arrived after the large one that waits, and would not pass it in one queue.
    const smalls = [50, 50, 99].map((bytes) => admission.wait(bytes));
    for (const small of smalls) expect(small).not.toBeInstanceOf(Promise);
    expect(admission.depths).toMatchObject({ requests: 4, bytes: 999, smallBytes: 199, waiting: 1, waitingSmall: 0 });
    // The reserve is full and a large request waits for the byte bound: the next small one waits, in its own queue.
    const waitingSmall = admission.wait(10);
    expect(waitingSmall).toBeInstanceOf(Promise);
    expect(admission.depths).toMatchObject({ waiting: 2, waitingSmall: 1 });
    ticket(smalls[0] as ReturnType<Admission["admit"]>).release();
    expect(isRefusal(await waitingSmall)).toBe(false);
    large.release();
    expect(isRefusal(await waitingLarge)).toBe(false);
    expect(admission.depths).toMatchObject({
      bytes: 500 + 50 + 99 + 10,
      smallBytes: 159,
      waiting: 0,
      refused: { bytes: 0 },
    });
    // With no large request waiting, a small one beyond the reserve takes room within the byte bound.
    ticket(admission.admit(60));
    expect(admission.depths).toMatchObject({ bytes: 719, smallBytes: 159 });
  });

  it("without the reserve (smallBytesMax 0), a small request waits behind a large one", () => {
    const admission = new Admission({ bytesInFlightMax: 1000, smallBytesMax: 0, waitMsMax: 0 });
    ticket(admission.admit(800));
    const small = admission.wait(300);
    expect(isRefusal(small as ReturnType<Admission["admit"]>)).toBe(true);
  });

  it("refuses nonsensical limits", () => {
    expect(() => new Admission({ requestsInFlightMax: 0 })).toThrow(/requestsInFlightMax/);
    expect(() => new Admission({ bytesInFlightMax: 1.5 })).toThrow(/bytesInFlightMax/);
    expect(() => new Admission({ smallBytesMax: -1 })).toThrow(/smallBytesMax/);
    expect(() => new Admission({ smallBytesReserve: Number.NaN })).toThrow(/smallBytesReserve/);
  });

  it("leaves the driver room for every request it admits: beyond the bound a client gets 429, never 503", () => {
    // The driver refused past 1000 pending requests while admission let in 1024: 24 got a 503.
    for (const admission of [
      new Admission(),
      new Admission({ requestsInFlightMax: 1 }),
      new Admission({ requestsInFlightMax: 50_000 }),
    ])
      expect(driverRequestsPendingMax(admission.requestsInFlightMax)).toBeGreaterThan(admission.requestsInFlightMax);
  });
});

/** A replica's HTTP API over a stand-in core that holds every request in `held` until the test lets it go. */
async function startServer(
  admission: Admission,
  held: ((result: ClientResult<KvOutput>) => void)[],
): Promise<{ port: number; token: string; close: () => Promise<void> }> {
  const tokensFile = path.join(tempDir("admission-tokens"), "tokens.json");
  const token = createToken(tokensFile, "write", "writer").token;
  const store = new TokenStore(tokensFile, { reloadMs: 0 });
  let port = 0;
  const server = createHttpServer(
    apiOptions({
      access: {
        authenticate: (authorization) => store.authenticate(authorization),
        hostAllowed: (host) => host === `127.0.0.1:${port}`,
      },
      submit: () => new Promise((resolve) => held.push(resolve)),
      admission,
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
  const close = async (): Promise<void> => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return { port, token, close };
}

describe("HTTP API with admission control", () => {
  let port = 0;
  let token = "";
  let close = (): Promise<void> => Promise.resolve();
  const held: ((result: ClientResult<KvOutput>) => void)[] = [];
  const admission = new Admission({
    requestsInFlightMax: 3,
    bytesInFlightMax: 4096,
    retryAfterMs: 250,
    waitMsMax: 0,
    smallBytesMax: 0,
  });

  beforeAll(async () => {
    ({ port, token, close } = await startServer(admission, held));
  });
  afterAll(() => close());

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

/**
 * What a client still uploading a body gets when the answer comes first: the answer, and a connection that
 * ends without a reset. A raw TCP client sends the headers, waits for the answer, then sends its body as a
 * client that had it in flight would; a socket closed under it would make its writes fail with EPIPE or
 * ECONNRESET, and a loaded client would lose the answer.
 */
describe("an answer sent while the body is still uploading", () => {
  let port = 0;
  let token = "";
  let close = (): Promise<void> => Promise.resolve();
  const held: ((result: ClientResult<KvOutput>) => void)[] = [];
  const MiB = 1024 * 1024;

  beforeAll(async () => {
    ({ port, token, close } = await startServer(new Admission({ requestsInFlightMax: 1 }), held));
  });
  afterAll(async () => {
    for (const resolve of held.splice(0)) resolve({ _tag: "ok", output: { _tag: "ok" } });
    await close();
  });

  /** Hold one request, so that the next is refused with 429. */
  async function overload(): Promise<void> {
    if (held.length > 0) return;
    void fetch(`http://127.0.0.1:${port}/v1/kv/held`, {
      method: "PUT",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ value: "v" }),
    }).catch(() => undefined);
    for (let i = 0; i < 200 && held.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(held).toHaveLength(1);
  }

  interface Upload {
    /** Everything the server sent, as text. */
    readonly answer: string;
    /** Body bytes the kernel took from the client. */
    readonly written: number;
    /** The connection's error as the client saw it, if any (EPIPE, ECONNRESET). */
    readonly error: string | null;
  }

  /**
   * PUT with `Content-Length: declared`: the headers, then, once the answer's headers are in, up to `sent`
   * bytes of body in 64 KiB writes (each waiting for the kernel to take the last), then the end of our side.
   * Resolves when the connection has closed.
   */
  function upload(declared: number, sent: number, headers: Record<string, string> = {}): Promise<Upload> {
    return new Promise((resolve) => {
      const socket = net.connect(port, "127.0.0.1");
      let answer = "";
      let written = 0;
      let error: string | null = null;
      let writing = false;
      const chunk = Buffer.alloc(64 * 1024, "x");
      const write = async (): Promise<void> => {
        while (written < sent && error === null && !socket.destroyed) {
          const piece = chunk.subarray(0, Math.min(chunk.length, sent - written));
          await new Promise<void>((done) => socket.write(piece, () => done()));
          if (error === null) written += piece.length;
        }
        if (!socket.destroyed) socket.end();
      };
      socket.on("data", (data: Buffer) => {
        answer += data.toString("latin1");
        if (!writing && answer.includes("\r\n\r\n")) {
          writing = true;
          void write();
        }
      });
      socket.on("error", (e: NodeJS.ErrnoException) => void (error ??= e.code ?? e.message));
      socket.on("close", () => resolve({ answer, written, error }));
      const extra = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`);
      socket.write(
        `PUT /v1/kv/big HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${token}\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${declared}\r\n${extra.join("")}\r\n`,
      );
    });
  }

  it("429 to a client that asked to close: it uploads the rest of its body and reads the answer, no reset", async () => {
    await overload();
    const result = await upload(MiB, MiB, { Connection: "close" });
    expect(result.error).toBeNull();
    expect(result.written).toBe(MiB);
    expect(result.answer).toMatch(/^HTTP\/1\.1 429 /);
    expect(result.answer).toMatch(/\r\nRetry-After: 1\r\n/);
    expect(result.answer).toMatch(/\r\nConnection: close\r\n/);
    expect(result.answer).toContain('"code":"overloaded"');
  });

  /**
   * PUT of a 1 MiB body with `Expect: 100-continue`, sending the body only on `100 Continue`; our side ends
   * once a final answer's headers are in. Resolves when the connection has closed.
   */
  function expectContinue(): Promise<{ answer: string; written: number }> {
    return new Promise((resolve) => {
      const socket = net.connect(port, "127.0.0.1");
      let answer = "";
      let written = 0;
      socket.on("data", (data: Buffer) => {
        answer += data.toString("latin1");
        if (written === 0 && answer.startsWith("HTTP/1.1 100 Continue\r\n\r\n")) {
          written = MiB;
          socket.write(JSON.stringify({ value: "x".repeat(MiB - 12) }));
        }
        if (/HTTP\/1\.1 [2-5]\d\d [^]*\r\n\r\n/.test(answer)) socket.end();
      });
      socket.on("error", () => undefined);
      socket.on("close", () => resolve({ answer, written }));
      socket.write(
        `PUT /v1/kv/big HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${token}\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${MiB}\r\nExpect: 100-continue\r\n\r\n`,
      );
    });
  }

  it("429 to a client that waits for 100 Continue: no 100, no body sent, and the connection closes", async () => {
    await overload();
    const result = await expectContinue();
    expect(result.answer).toMatch(/^HTTP\/1\.1 429 [^]*\r\nConnection: close\r\n/);
    expect(result.answer).not.toContain("100 Continue");
    expect(result.written).toBe(0);
  });

  it("100 Continue to a client that waits for it once its request is admitted, and the body is read", async () => {
    await overload();
    for (const resolve of held.splice(0)) resolve({ _tag: "ok", output: { _tag: "ok" } });
    const pending = expectContinue();
    for (let i = 0; i < 400 && held.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(held).toHaveLength(1);
    for (const resolve of held.splice(0)) resolve({ _tag: "ok", output: { _tag: "ok" } });
    const result = await pending;
    expect(result.written).toBe(MiB);
    expect(result.answer).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
  });

  it("the client sends a large body only when asked: a 429 costs it no upload, and the next request goes through", async () => {
    await overload();
    const url = `http://127.0.0.1:${port}/v1/kv/big`;
    const headers = { Authorization: `Bearer ${token}` };
    const body = { value: "x".repeat(expectContinueBytesMin) };
    const refused = await httpJson("PUT", url, body, headers, 5000);
    expect(refused.status).toBe(429);
    expect(refused.body.code).toBe("overloaded");
    for (const resolve of held.splice(0)) resolve({ _tag: "ok", output: { _tag: "ok" } });
    const pending = httpJson("PUT", url, body, headers, 5000);
    for (let i = 0; i < 400 && held.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    for (const resolve of held.splice(0)) resolve({ _tag: "ok", output: { _tag: "ok" } });
    expect((await pending).status).toBe(200);
  });

  it("429 to a body longer than is drained: Connection: close, and the rest is read until the client stops", async () => {
    await overload();
    // A client that stops at the answer: what it had in flight is read and discarded, never reset.
    const polite = await upload(64 * MiB, 4 * MiB);
    expect(polite.error).toBeNull();
    expect(polite.written).toBe(4 * MiB);
    expect(polite.answer).toMatch(/^HTTP\/1\.1 429 [^]*\r\nConnection: close\r\n/);
    // One that goes on regardless is cut off after a bound, not read to its end.
    const rude = await upload(64 * MiB, 64 * MiB);
    expect(rude.answer).toMatch(/^HTTP\/1\.1 429 /);
    expect(rude.error).not.toBeNull();
    expect(rude.written).toBeLessThan(48 * MiB);
  });

  it("429 to a client that trickles its body and never stops: the connection is closed all the same", async () => {
    await overload();
    // Slowloris after the answer: far below the bytes bound, so only the time bound ends it.
    const result = await new Promise<{ answer: string; written: number }>((resolve) => {
      const socket = net.connect(port, "127.0.0.1");
      let answer = "";
      let written = 0;
      let timer: NodeJS.Timeout | undefined;
      socket.on("data", (data: Buffer) => {
        answer += data.toString("latin1");
        if (timer === undefined && answer.includes("\r\n\r\n")) {
          timer = setInterval(() => {
            if (socket.destroyed) return;
            socket.write(Buffer.alloc(1024, "x"));
            written += 1024;
          }, 50);
        }
      });
      socket.on("error", () => undefined);
      socket.on("close", () => {
        clearInterval(timer);
        resolve({ answer, written });
      });
      socket.write(
        `PUT /v1/kv/big HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${token}\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${64 * MiB}\r\n\r\n`,
      );
    });
    expect(result.answer).toMatch(/^HTTP\/1\.1 429 [^]*\r\nConnection: close\r\n/);
    // The client never ended its side: the replica closed the connection, long before the body's end.
    expect(result.written).toBeLessThan(MiB);
  }, 30_000);

  /**
   * A connection kept open after a 429 (a body of declared length within the limit, no `Connection: close`):
   * `onAnswer` runs once the answer's headers are in. Resolves when the connection has closed, or after
   * `waitMs` with it still open (then we close it).
   */
  function keptAlive(
    declared: number,
    waitMs: number,
    onAnswer: (socket: net.Socket) => void,
  ): Promise<{ answer: string; closedByReplica: boolean; socket: net.Socket }> {
    return new Promise((resolve) => {
      const socket = net.connect(port, "127.0.0.1");
      let answer = "";
      let answered = false;
      const giveUp = setTimeout(() => {
        socket.destroy();
        resolve({ answer, closedByReplica: false, socket });
      }, waitMs);
      socket.on("data", (data: Buffer) => {
        answer += data.toString("latin1");
        if (!answered && answer.includes("\r\n\r\n")) {
          answered = true;
          onAnswer(socket);
        }
      });
      socket.on("error", () => undefined);
      socket.on("close", () => {
        clearTimeout(giveUp);
        resolve({ answer, closedByReplica: true, socket });
      });
      socket.write(
        `PUT /v1/kv/big HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${token}\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${declared}\r\n\r\n`,
      );
    });
  }

  it("429 on a kept-alive connection to a client that trickles its body: closed after the drain bound", async () => {
    await overload();
    // 1 KiB every 50 ms: the 512 KiB body would take 25 s; Node.js alone would read it until its
    // request timeout (40 s). The replica closes the connection once the body is 2 s late.
    let written = 0;
    let trickle: NodeJS.Timeout | undefined;
    const result = await keptAlive(512 * 1024, 20_000, (socket) => {
      trickle = setInterval(() => {
        if (socket.destroyed) return;
        socket.write(Buffer.alloc(1024, "x"));
        written += 1024;
      }, 50);
    });
    clearInterval(trickle);
    expect(result.answer).toMatch(/^HTTP\/1\.1 429 /);
    expect(result.answer).toMatch(/\r\nConnection: keep-alive\r\n/);
    expect(result.closedByReplica).toBe(true);
    expect(written).toBeLessThan(512 * 1024);
  }, 30_000);

  it("429 on a kept-alive connection to a client that sends its body at once: the connection stays open", async () => {
    await overload();
    // The body ends in time: the bound must not close the connection later, when it carries the next request.
    let next: NodeJS.Timeout | undefined;
    const result = await keptAlive(64 * 1024, 4000, (socket) => {
      socket.write(Buffer.alloc(64 * 1024, "x"));
      next = setTimeout(() => socket.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`), 2500);
    });
    clearTimeout(next);
    expect(result.answer).toMatch(/^HTTP\/1\.1 429 [^]*HTTP\/1\.1 200 [^]*"ok":true/);
    expect(result.closedByReplica).toBe(false);
  }, 30_000);

  it("413 to a body over the limit: the client's upload is read on until it stops, no reset", async () => {
    for (const resolve of held.splice(0)) resolve({ _tag: "ok", output: { _tag: "ok" } });
    const result = await upload(2 * MiB, 2 * MiB);
    expect(result.error).toBeNull();
    expect(result.written).toBe(2 * MiB);
    expect(result.answer).toMatch(/^HTTP\/1\.1 413 [^]*\r\nConnection: close\r\n/);
  });

  it("fetch (undici) uploading 8 MiB reads the 429 and its hint", async () => {
    await overload();
    const response = await fetch(`http://127.0.0.1:${port}/v1/kv/big`, {
      method: "PUT",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ value: "x".repeat(8 * MiB) }),
    });
    expect(response.status).toBe(429);
    expect(response.headers.get("retry-after")).toBe("1");
    expect(await response.json()).toMatchObject({ code: "overloaded" });
  });
});

describe("admission of a compare-and-swap of two large values", () => {
  const MiB = 1024 * 1024;
  const held: ((result: ClientResult<KvOutput>) => void)[] = [];
  const admission = new Admission({ requestsInFlightMax: 8, bytesInFlightMax: 3 * MiB, waitMsMax: 0 });
  let server = { port: 0, token: "", close: (): Promise<void> => Promise.resolve() };

  beforeAll(async () => {
    server = await startServer(admission, held);
  });
  afterAll(async () => {
    for (const resolve of held.splice(0)) resolve({ _tag: "ok", output: { _tag: "ok" } });
    await server.close();
  });

  const send = (method: string, body: string): Promise<Response> =>
    fetch(`http://127.0.0.1:${server.port}/v1/kv/k`, {
      method,
      headers: { Authorization: `Bearer ${server.token}`, "Content-Type": "application/json" },
      body,
    });

  it("holds the whole body of a swap in the bytes in flight, both values, so a large put beside it waits", async () => {
    const cas = JSON.stringify({ op: "cas", expected: "a".repeat(MiB), value: "b".repeat(MiB) });
    const swap = send("POST", cas);
    for (let i = 0; i < 200 && held.length < 1; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(held.length).toBe(1);
    expect(admission.depths).toMatchObject({ requests: 1, bytes: Buffer.byteLength(cas) });
    // 2 MiB of swap and 1 MiB of put would pass the 3 MiB bound: refused before its body is read.
    const put = await send("PUT", JSON.stringify({ value: "c".repeat(MiB) }));
    expect(put.status).toBe(429);
    expect(((await put.json()) as { message: string }).message).toMatch(/2097\d+ bytes of requests in flight/);
    held.shift()!({ _tag: "ok", output: { _tag: "cas", swapped: true, current: "b".repeat(MiB) } });
    expect((await swap).status).toBe(200);
    expect(admission.depths).toMatchObject({ requests: 0, bytes: 0 });
  });
});

describe("a request beyond the byte bound, waiting for room", () => {
  const MiB = 1024 * 1024;
  const held: ((result: ClientResult<KvOutput>) => void)[] = [];
  const admission = new Admission({ requestsInFlightMax: 8, bytesInFlightMax: MiB, waitMsMax: 10_000 });
  let server = { port: 0, token: "", close: (): Promise<void> => Promise.resolve() };

  beforeAll(async () => {
    server = await startServer(admission, held);
  });
  afterAll(async () => {
    for (const resolve of held.splice(0)) resolve({ _tag: "ok", output: { _tag: "ok" } });
    await server.close();
  });

  it("is admitted, its body read, once an answer frees room: no 429", async () => {
    const put = (): Promise<Response> =>
      fetch(`http://127.0.0.1:${server.port}/v1/kv/k`, {
        method: "PUT",
        headers: { Authorization: `Bearer ${server.token}`, "Content-Type": "application/json" },
        body: JSON.stringify({ value: "v".repeat(MiB - 64) }),
      });
    const first = put();
    for (let i = 0; i < 400 && held.length < 1; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    const second = put();
    for (let i = 0; i < 400 && admission.depths.waiting < 1; i++)
      await new Promise((resolve) => setTimeout(resolve, 5));
    expect(admission.depths).toMatchObject({ requests: 1, waiting: 1 });
    expect(held).toHaveLength(1);
    held.shift()!({ _tag: "ok", output: { _tag: "ok" } });
    expect((await first).status).toBe(200);
    for (let i = 0; i < 400 && held.length < 1; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    held.shift()!({ _tag: "ok", output: { _tag: "ok" } });
    expect((await second).status).toBe(200);
    expect(admission.depths).toMatchObject({ requests: 0, bytes: 0, waiting: 0, refused: { bytes: 0 } });
  });

  it("a small write passes a large one waiting: admitted against the small requests' reserve", async () => {
    const put = (value: string): Promise<Response> =>
      fetch(`http://127.0.0.1:${server.port}/v1/kv/k`, {
        method: "PUT",
        headers: { Authorization: `Bearer ${server.token}`, "Content-Type": "application/json" },
        body: JSON.stringify({ value }),
      });
    const first = put("v".repeat(MiB - 64));
    for (let i = 0; i < 400 && held.length < 1; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    const second = put("w".repeat(MiB - 64));
    for (let i = 0; i < 400 && admission.depths.waiting < 1; i++)
      await new Promise((resolve) => setTimeout(resolve, 5));
    const small = put("s");
    for (let i = 0; i < 400 && held.length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(held).toHaveLength(2);
    expect(admission.depths).toMatchObject({ requests: 2, waiting: 1, waitingSmall: 0 });
    held.pop()!({ _tag: "ok", output: { _tag: "ok" } });
    expect((await small).status).toBe(200);
    held.shift()!({ _tag: "ok", output: { _tag: "ok" } });
    expect((await first).status).toBe(200);
    for (let i = 0; i < 400 && held.length < 1; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    held.shift()!({ _tag: "ok", output: { _tag: "ok" } });
    expect((await second).status).toBe(200);
    expect(admission.depths).toMatchObject({ requests: 0, bytes: 0, waiting: 0, refused: { bytes: 0 } });
  });
});

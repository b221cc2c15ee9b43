/**
 * A client of the HTTP API for the CLI and the tests: it tries the given endpoints, follows
 * redirects to the leader, and retries while no leader is known, all within one deadline.
 * Writes carry an exactly-once session (a client id and sequence number) so that a retry after
 * an unknown outcome can never execute twice; without a session such a write is reported as
 * "outcome unknown" instead of being retried. Once every endpoint has refused the connection or
 * failed to resolve, it stops before the deadline with {@link UnreachableError}.
 */
import http from "node:http";
import https from "node:https";
import { randomBytes } from "node:crypto";

/** The answer to one API call. */
export interface ApiReply {
  readonly status: number;
  readonly body: Record<string, unknown>;
  /** The endpoint that answered. */
  readonly endpoint: string;
}

/** Options of {@link KvClient}. */
export interface KvClientOptions {
  /** Base URLs such as http://127.0.0.1:8001. */
  readonly endpoints: readonly string[];
  /** Give up after this long, in milliseconds. Default 10000. */
  readonly deadlineMs?: number;
  /** Redirects followed per attempt. Default 5. */
  readonly redirectsMax?: number;
  /** One request's timeout, in milliseconds. Default 3000. */
  readonly requestTimeoutMs?: number;
  /** HTTP agent for every request. Default: Node's global agent. */
  readonly agent?: http.Agent;
  /** The bearer token sent with every request (docs/operations.md, "Tokens"). Default: none. */
  readonly token?: string | undefined;
  /** The CA certificate (PEM) that https endpoints' certificates must chain to. Default: the system's. */
  readonly ca?: string | undefined;
}

/** The Authorization header for `token` (none without a token). */
export function authHeaders(token: string | undefined): Record<string, string> {
  return token === undefined ? {} : { Authorization: `Bearer ${token}` };
}

/** A write's session; `seq` goes up by one per request of this client. */
export interface Session {
  readonly clientId: string;
  readonly seq: number;
}

/** A fresh random session, numbered from 1. */
export function newSession(): Session {
  return { clientId: `cli-${randomBytes(9).toString("base64url")}`, seq: 1 };
}

/**
 * Connection errors that retrying within a client's deadline cannot fix: nothing listens on the
 * port, or the host name does not resolve. Timeouts and resets are not among them (a replica
 * that is busy or restarting may answer the next attempt).
 */
const endpointDownCodes = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN"]);

/** The code of a connection error that retrying cannot fix soon, else undefined. */
function endpointDownCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && endpointDownCodes.has(code) ? code : undefined;
}

/** Every endpoint refused the connection or did not resolve: one line naming each and why. */
export class UnreachableError extends Error {
  constructor(readonly failures: readonly { readonly endpoint: string; readonly error: string }[]) {
    super(`no replica reachable: ${failures.map((f) => `${f.endpoint} (${f.error})`).join(", ")}`);
    this.name = "UnreachableError";
  }
}

/** A failure of the request to the endpoint itself, not to where it redirected. */
class FirstHopError extends Error {
  constructor(readonly error: unknown) {
    super(error instanceof Error ? error.message : String(error));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A body at least this long (bytes) is sent only once the replica asks for it (`Expect:
 * 100-continue`): a replica that refuses the request (429 when overloaded) answers from the headers,
 * and the body never crosses the network.
 */
export const expectContinueBytesMin = 64 * 1024;

/**
 * One HTTP or HTTPS request (through `via.agent`, default Node's global agent; an https URL's
 * certificate must chain to `via.ca` when given); rejects on network failure or timeout. A body of
 * `expectContinueBytesMin` or more waits for `100 Continue`.
 */
export function httpJson(
  method: string,
  url: string,
  body: unknown,
  headers: Record<string, string>,
  timeoutMs: number,
  via: { readonly agent?: http.Agent | undefined; readonly ca?: string | undefined } = {},
): Promise<{ status: number; body: Record<string, unknown>; location?: string }> {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const bytes = text === undefined ? 0 : Buffer.byteLength(text);
    const waits = bytes >= expectContinueBytesMin;
    const secure = url.startsWith("https:");
    const request = (secure ? https : http).request(
      url,
      {
        method,
        headers: {
          ...headers,
          ...(text === undefined ? {} : { "Content-Type": "application/json" }),
          ...(waits ? { "Content-Length": String(bytes), Expect: "100-continue" } : {}),
        },
        timeout: timeoutMs,
        ...(via.agent === undefined ? {} : { agent: via.agent }),
        ...(secure && via.ca !== undefined ? { ca: via.ca } : {}),
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => {
          const raw = Buffer.concat(chunks).toString("utf8");
          let parsed: unknown;
          try {
            parsed = JSON.parse(raw);
          } catch {
            parsed = { code: "not-json", message: raw.slice(0, 200) };
          }
          const object =
            typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)
              ? (parsed as Record<string, unknown>)
              : { value: parsed };
          resolve({
            status: response.statusCode ?? 0,
            body: object,
            ...(response.headers.location === undefined ? {} : { location: response.headers.location }),
          });
          // Answered without asking for the body (a refusal): the connection closes, the body stays here.
          if (waits && !request.writableEnded) request.destroy();
        });
        response.on("error", reject);
      },
    );
    request.on("timeout", () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    request.on("error", reject);
    if (waits) {
      request.on("continue", () => request.end(text));
      request.flushHeaders();
    } else request.end(text);
  });
}

/** Talks to a cluster through any of its replicas. */
export class KvClient {
  private preferred = 0;
  private readonly deadlineMs: number;
  private readonly redirectsMax: number;
  private readonly requestTimeoutMs: number;

  constructor(private readonly options: KvClientOptions) {
    if (options.endpoints.length === 0) throw new Error("no endpoints given");
    this.deadlineMs = options.deadlineMs ?? 10_000;
    this.redirectsMax = options.redirectsMax ?? 5;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 3000;
  }

  /**
   * Call `method` on `path` (e.g. /v1/kv/a?consistency=stale). Retries until the deadline on
   * network errors, on 503, on 429 (after the replica's hint, with jitter and backoff) and on 410
   * (a removed replica); follows 307. Returns the last answer, or throws when no replica
   * answered at all: {@link UnreachableError} as soon as each endpoint's latest attempt was
   * refused or did not resolve (no wait for the deadline), else when the deadline passes.
   */
  async call(method: string, path: string, body?: unknown, session?: Session): Promise<ApiReply> {
    const deadline = performance.now() + this.deadlineMs;
    const headers: Record<string, string> = {
      ...authHeaders(this.options.token),
      ...(session === undefined ? {} : { "X-Client-Id": session.clientId, "X-Client-Seq": String(session.seq) }),
    };
    let last: ApiReply | undefined;
    let lastError: unknown;
    let waitMs = 0;
    // Per endpoint index: why its latest attempt could not even connect (refused, unresolvable).
    const down = new Map<number, string>();
    for (let attempt = 0; performance.now() < deadline; attempt++) {
      const index = (this.preferred + attempt) % this.options.endpoints.length;
      const endpoint = this.options.endpoints[index]!;
      try {
        const reply = await this.followRedirects(method, endpoint, path, body, headers);
        down.delete(index);
        last = reply;
        // 410: that replica was removed from the cluster; the others serve.
        if (reply.status !== 503 && reply.status !== 410 && reply.status !== 429) return reply;
        // 429: refused before it was read, so always safe to repeat; wait as the replica asks.
        const hint = reply.status === 429 ? Number(reply.body.retryAfterMs) : Number.NaN;
        waitMs = Number.isFinite(hint) && hint > 0 ? Math.min(2000, hint * 2 ** Math.min(attempt, 4)) : 0;
        // Without a session a write whose outcome is unknown must not be retried blindly.
        if (reply.body.outcomeUnknown === true && session === undefined && method !== "GET") return reply;
      } catch (caught) {
        const error = caught instanceof FirstHopError ? caught.error : caught;
        lastError = error;
        const code = caught instanceof FirstHopError ? endpointDownCode(error) : undefined;
        if (code === undefined) down.delete(index);
        else down.set(index, error instanceof Error ? error.message : code);
        if (down.size === this.options.endpoints.length)
          throw new UnreachableError(this.options.endpoints.map((e, i) => ({ endpoint: e, error: down.get(i)! })));
      }
      await sleep(waitMs > 0 ? waitMs * (0.5 + Math.random()) : Math.min(50 * 2 ** Math.min(attempt, 4), 500));
      waitMs = 0;
    }
    if (last !== undefined) return last;
    throw new Error(
      `no replica answered within ${this.deadlineMs} ms (${this.options.endpoints.join(", ")})${lastError instanceof Error ? `: ${lastError.message}` : ""}`,
    );
  }

  /**
   * Ask the service to open a session (feature level 3, POST /v1/sessions): the session it names,
   * numbered from 1, or the reply that refused it (409 `sessions-not-opened` below level 3).
   */
  async openSession(): Promise<Session | ApiReply> {
    const reply = await this.call("POST", "/v1/sessions");
    const clientId = reply.body.clientId;
    return reply.status === 200 && typeof clientId === "string" ? { clientId, seq: 1 } : reply;
  }

  /**
   * A write under `session`, or without one under a fresh random one ({@link newSession}); if that
   * is refused `session-expired` (a cluster at feature level 3 opens no session for an id a client
   * chose: the write was not executed and never will be), under a session the service opens. A
   * `session` given is used as it is: its expiry is the caller's to handle.
   */
  async write(method: string, path: string, body: unknown, session?: Session): Promise<ApiReply> {
    const reply = await this.call(method, path, body, session ?? newSession());
    if (session !== undefined || reply.status !== 409 || reply.body.code !== "session-expired") return reply;
    const opened = await this.openSession();
    return "status" in opened ? opened : this.call(method, path, body, opened);
  }

  private async followRedirects(
    method: string,
    endpoint: string,
    path: string,
    body: unknown,
    headers: Record<string, string>,
  ): Promise<ApiReply> {
    let url = `${endpoint.replace(/\/+$/, "")}${path}`;
    for (let hop = 0; ; hop++) {
      let reply: Awaited<ReturnType<typeof httpJson>>;
      try {
        reply = await httpJson(method, url, body, headers, this.requestTimeoutMs, {
          agent: this.options.agent,
          ca: this.options.ca,
        });
      } catch (error) {
        // A redirect's target that is down says nothing of the endpoint, which answered.
        throw hop === 0 ? new FirstHopError(error) : error;
      }
      if (reply.status !== 307 || reply.location === undefined || hop >= this.redirectsMax) {
        this.remember(url);
        return { status: reply.status, body: reply.body, endpoint: new URL(url).origin };
      }
      const next = new URL(reply.location, url);
      // The token goes along: never to plain HTTP once the cluster answered over HTTPS.
      if (url.startsWith("https:") && next.protocol !== "https:")
        return {
          status: reply.status,
          body: {
            code: "insecure-redirect",
            message: `not following the redirect to ${next.origin}: it would send the token unencrypted (the replicas' client addresses must all be HTTPS)`,
          },
          endpoint: new URL(url).origin,
        };
      url = next.href;
    }
  }

  /** Prefer the endpoint that answered last (usually the leader). */
  private remember(url: string): void {
    const origin = new URL(url).origin;
    const index = this.options.endpoints.findIndex((e) => new URL(e).origin === origin);
    if (index >= 0) this.preferred = index;
  }
}

/** The API path of `key` (each segment percent-encoded, slashes kept). */
export function keyPath(key: string): string {
  return `/v1/kv/${key.split("/").map(encodeURIComponent).join("/")}`;
}

/**
 * The client API of a replica over HTTP/JSON (documented in docs/http-api.md): get, put,
 * delete, compare-and-swap and append on the key-value store of spec/kv.ts, with optional
 * exactly-once sessions (X-Client-Id / X-Client-Seq) and read consistency; membership changes
 * at /v1/members (show, add, promote, remove, replace). Also serves the status page, /status,
 * /metrics and /healthz.
 *
 * This is a boundary: every request is decoded with Schemas before anything reaches the
 * replica, bodies are size-limited, and every failure is a JSON error {code, message} with a
 * fitting status (400, 401, 403, 404, 405, 409, 410, 413, 415, 429, 431, 503). A request can never
 * crash the process. Before any route runs, its Host and Origin must name the cluster and its
 * bearer token must carry the role the route needs (impl/runtime/access.ts): read for reads, the
 * membership, the status and metrics; write for writes; admin for membership changes. Admission
 * control (impl/runtime/admission.ts) refuses a key-value request with 429 before its body is read
 * when the replica already holds as many requests or request bytes as it may.
 */
import http from "node:http";
import https from "node:https";
import type net from "node:net";
import { Either, ParseResult, Schema } from "effect";
import {
  type ClientResult,
  type Consistency,
  type MemberAddress,
  type ReplicaId,
  ConfigChange,
  replicaIdMax,
} from "../core/index.ts";
import { KvInput, keyLengthMax, valueBytesMax, valueLengthMax, type KvOutput } from "../../spec/kv.ts";
import { Seq, SessionName } from "../../spec/service.ts";
import { checkBrowser, checkContentType, checkRole, type AccessPolicy, type Need } from "./access.ts";
import { httpConnectionsMaxDefault, isRefusal, type Admission, type AdmissionTicket } from "./admission.ts";
import { sourceOf } from "./peer-admission.ts";
import type { TlsMaterial } from "./certs.ts";
import type { Submission } from "./driver.ts";
import type { Logger } from "./log.ts";
import { splitLongString, withLongString } from "./json-body.ts";
import { hashFromUtf8 } from "./text-hash.ts";
import { markReleasable, release, releasableBuffer } from "./release.ts";
import { TurnBudget } from "./turn-budget.ts";

/** Default largest request body, in bytes: a 1 MiB value plus JSON framing. */
export const bodyBytesMaxDefault = 1024 * 1024 + 4096;

/**
 * The largest body of a key-value POST, whose compare-and-swap carries two values (the expected
 * one and the new one), each of which may be as large as a PUT's: twice the body limit `limit`
 * (by default two 1 MiB values, each with its share of framing). An append carries one value, and
 * a POST body above `limit` that turns out to be an append is refused as a PUT body would be.
 */
export function postBodyBytesMax(limit: number): number {
  return 2 * limit;
}

/**
 * The body limit of `request`: {@link postBodyBytesMax} for a key-value POST, else `limit`. Read
 * off the request target as sent (an absolute-form target gets `limit` here, and its route's limit
 * where the route is known).
 */
function bodyLimitOf(request: http.IncomingMessage, limit: number): number {
  return request.method === "POST" && (request.url ?? "").startsWith(kvPrefix) ? postBodyBytesMax(limit) : limit;
}
/** Prefix of the key-value routes; the rest of the path (percent-decoded) is the key. */
export const kvPrefix = "/v1/kv/";

/** The session route (feature level 3): POST opens a session the service names. */
export const sessionsPath = "/v1/sessions";

/** The membership route: GET shows the membership, POST asks for a change. */
export const membersPath = "/v1/members";

/** A membership change as a client asks for it (the body of POST /v1/members). */
export type MemberRequest =
  | {
      readonly op: "add";
      readonly id: number;
      /**
       * Where the new replica listens for peers and for clients (HOST:PORT); the change carries them to every replica.
       */
      readonly peerAddress?: string | undefined;
      readonly httpAddress?: string | undefined;
    }
  | { readonly op: "promote"; readonly id: number }
  | { readonly op: "remove"; readonly id: number; readonly force?: boolean | undefined }
  | { readonly op: "replace"; readonly old: number; readonly id: number };

/** What the membership routes need from the replica. */
export interface MembersApi {
  /** The GET /v1/members document. */
  readonly show: () => unknown;
  /**
   * Checks that only this replica can make, before the change is proposed (it is the leader):
   * null to go ahead, or the refusal. Followers skip them; they redirect to the leader.
   */
  readonly precheck: (request: MemberRequest) => ApiError | null;
  /** The addresses this replica knows for `id` (it dialled us, or the log carries them), or null. */
  readonly addressOf: (id: number) => { readonly peer: string; readonly http: string | null } | null;
  /** Where the members of the latest configuration listen, as this replica knows (an add carries them). */
  readonly memberAddresses: () => readonly MemberAddress[];
  readonly reconfigure: (change: ConfigChange) => Promise<ClientResult<KvOutput>>;
}

/** A JSON error as every failed request gets it. */
export interface ApiError {
  readonly status: number;
  readonly code: string;
  readonly message: string;
  readonly extra?: Record<string, unknown>;
  readonly headers?: Record<string, string>;
}

/** Options of {@link createHttpServer}. */
export interface HttpApiOptions {
  readonly replicaId: ReplicaId;
  readonly submit: (submission: Submission<KvInput>) => Promise<ClientResult<KvOutput>>;
  /**
   * Ask the service to open a session (feature level 3; POST /v1/sessions). Default: none, and the
   * route answers 404.
   */
  readonly openSession?: () => Promise<ClientResult<KvOutput>>;
  /** The client address (host:port) of replica `id`, when known. */
  readonly httpAddressOf: (id: ReplicaId) => string | null;
  readonly status: () => unknown;
  readonly metrics: () => Promise<{ contentType: string; body: string }>;
  readonly page: string;
  readonly log: Logger;
  /** Largest body, in bytes. Default {@link bodyBytesMaxDefault}. */
  readonly bodyBytesMax?: number;
  /** Bounds on the key-value requests held at once; beyond them, 429. Default: none. */
  readonly admission?: Admission;
  readonly members: MembersApi;
  /** Tokens, roles and the browser checks. */
  readonly access: AccessPolicy;
  /** Time for a request body to arrive whole, in milliseconds. Default {@link bodyArrivalMsDefault}. */
  readonly bodyArrivalMs?: number;
  /**
   * How long a connection answered for bytes that are not HTTP stays open for the client to close it, in
   * milliseconds. Default {@link lingerMsMax}.
   */
  readonly malformedLingerMs?: number;
  /**
   * Time for a request's line and headers to arrive, from the connection's start or the end of the answer
   * before, in milliseconds. Default {@link headersArrivalMsDefault}.
   */
  readonly headersArrivalMs?: number;
  /** Serve HTTPS with this certificate (impl/runtime/certs.ts). Default: plain HTTP. */
  readonly tls?: TlsMaterial | undefined;
  /** Why this replica no longer serves (it was removed from the cluster), or null while it serves. */
  readonly retired?: () => string | null;
  /**
   * Client connections open at once; a connection beyond is closed as it arrives. Default {@link
   * httpConnectionsMaxDefault}.
   */
  readonly connectionsMax?: number;
  /**
   * Client connections open at once from one address; a connection beyond is closed as it arrives. Default
   * {@link connectionsPerAddressMaxOf}(`connectionsMax`).
   */
  readonly connectionsPerAddressMax?: number;
  /**
   * Observability hook: a connection closed as it arrived because `connectionsMax` were open in all ("total"), or
   * `connectionsPerAddressMax` from its address ("per-address"), with the client's address.
   */
  readonly onConnectionDropped?: (remote: string, bound: "total" | "per-address") => void;
  /** Observability hook: one call per answered request. */
  readonly onResponse?: (route: string, status: number) => void;
  /** Observability hook: a request refused by the access checks, with the refusal's code and the client's address. */
  readonly onAccessRefused?: (code: string, remote: string) => void;
}

const PutBody = Schema.Struct({ value: Schema.String });
const PostBody = Schema.Union(
  Schema.Struct({ op: Schema.Literal("cas"), expected: Schema.NullOr(Schema.String), value: Schema.String }),
  Schema.Struct({ op: Schema.Literal("append"), value: Schema.String }),
);
const decodeInput = Schema.decodeUnknownEither(KvInput);
const MemberId = Schema.Number.pipe(
  Schema.filter(
    (n) =>
      (Number.isInteger(n) && n >= 1 && n <= replicaIdMax) ||
      `a replica id is an integer in [1, ${replicaIdMax}], got ${n}`,
  ),
);
/** HOST:PORT or [v6]:PORT, at most 256 characters. */
const AddressText = Schema.String.pipe(
  Schema.filter(
    (text) =>
      (text.length <= 256 && /^(?:\[[0-9a-fA-F:.]+\]|[^:[\]\s]+):[0-9]{1,5}$/.test(text)) ||
      `an address is HOST:PORT (at most 256 characters), got ${JSON.stringify(text.slice(0, 80))}`,
  ),
);
const memberBodies = {
  add: Schema.Struct({
    op: Schema.Literal("add"),
    id: MemberId,
    peerAddress: Schema.optional(AddressText),
    httpAddress: Schema.optional(AddressText),
  }),
  promote: Schema.Struct({ op: Schema.Literal("promote"), id: MemberId }),
  remove: Schema.Struct({ op: Schema.Literal("remove"), id: MemberId, force: Schema.optional(Schema.Boolean) }),
  replace: Schema.Struct({ op: Schema.Literal("replace"), old: MemberId, id: MemberId }),
} as const;
const memberOps = Object.keys(memberBodies) as (keyof typeof memberBodies)[];
const ConsistencyParam = Schema.Literal("linearizable", "stale");

class Refusal extends Error {
  constructor(readonly error: ApiError) {
    super(error.message);
  }
}

function refuse(status: number, code: string, message: string, extra?: Record<string, unknown>): never {
  throw new Refusal({ status, code, message, ...(extra === undefined ? {} : { extra }) });
}

/** Refuse `method` on `where` (405), naming in `Allow` the methods the path takes. */
function refuseMethod(method: string, where: string, allow: string): never {
  throw new Refusal({
    status: 405,
    code: "method-not-allowed",
    message: `method ${method} is not allowed on ${where}`,
    headers: { Allow: allow },
  });
}

/** Refuse a request to a path that takes no query parameters, if it has any (400). */
function refuseQueryParameters(url: URL): void {
  for (const name of url.searchParams.keys())
    refuse(400, "malformed", `unknown query parameter ${JSON.stringify(name)}`);
}

/**
 * A schema failure in one sentence, naming the field: the first problem found, with any value it
 * quotes cut short (a client that sent a megabyte does not get it back).
 */
function schemaError(error: ParseResult.ParseError): string {
  const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0];
  if (issue === undefined) return "does not match the expected form";
  const message = issue.message
    .replace(/\s+/g, " ")
    .replace(/(actual )(.{60}).+$/, "$1$2...")
    .replace(/^Expected /, "expected ");
  return issue.path.length === 0
    ? message
    : `field ${issue.path.map(String).join(".")} ${message.startsWith("is ") ? "" : "is wrong: "}${message}`;
}

function decodeWith<A, E>(schema: Schema.Schema<A, E>, value: unknown, what: string): A {
  const decoded = Schema.decodeUnknownEither(schema)(value, { onExcessProperty: "error" });
  if (Either.isLeft(decoded)) refuse(400, "malformed", `${what}: ${schemaError(decoded.left)}`);
  return decoded.right;
}

/** The body size a request declares (Content-Length), or `limit` when it declares none. */
function declaredBytes(request: http.IncomingMessage, limit: number): number {
  const declared = Number(request.headers["content-length"]);
  return Number.isSafeInteger(declared) && declared >= 0 ? Math.min(declared, limit) : limit;
}

/**
 * Admit a request of `bytes`, after a wait for room if only the byte bound stands in the way
 * (`Admission.wait`), or refuse it with 429 before its body is read (the rest of the body is then
 * read and discarded, and the connection ends without a reset: {@link closeWithoutReset}). Null
 * without admission control.
 */
async function admit(
  admission: Admission | undefined,
  request: http.IncomingMessage,
  bytes: number,
): Promise<AdmissionTicket | null> {
  if (admission === undefined) return null;
  // Beyond the byte bound it may wait for room, its body unread: nothing reads the request meanwhile, so
  // Node.js stops reading the socket and the body stays in the kernel's buffers (or, with `Expect:
  // 100-continue`, in the client).
  const result = await admission.wait(bytes);
  if (!isRefusal(result)) {
    if (!request.socket.destroyed) return result;
    // The client went away while it waited.
    result.release();
    throw new Refusal({ status: 400, code: "malformed", message: "the connection closed before the body was read" });
  }
  request.resume();
  throw new Refusal({
    status: 429,
    code: "overloaded",
    message: result.message,
    extra: { retryAfterMs: result.retryAfterMs },
    headers: { "Retry-After": String(Math.max(1, Math.ceil(result.retryAfterMs / 1000))) },
  });
}

/**
 * The answers of requests sent with `Expect: 100-continue` whose client waits for `100 Continue`
 * before it sends the body. The interim answer goes out only when the body is about to be read
 * (`continueBody`): after the access checks and admission control, so that a request refused with
 * 429 (or 401, 413, 415, ...) never has its body sent at all. Such a refusal closes the
 * connection, since the client may still send the body or may not.
 */
const awaitingContinue = new WeakMap<http.IncomingMessage, http.ServerResponse>();

/** Tell a client waiting with `Expect: 100-continue` to send the body (once; nothing for any other). */
function continueBody(request: http.IncomingMessage): void {
  const response = awaitingContinue.get(request);
  if (response === undefined) return;
  awaitingContinue.delete(request);
  response.writeContinue();
}

/** Decodes whole bodies (no streaming state is kept between calls), refusing invalid UTF-8. */
const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Request bodies are decoded and parsed at most about 1 MiB per event-loop turn (a larger body alone
 * in its turn): the bodies of a burst of large writes that finish arriving together wait for later
 * turns rather than holding up the timers and peer messages that keep the lease.
 */
const bodyTurns = new TurnBudget();

/** Time for a request's body to arrive whole, in milliseconds (docs/http-api.md, "Limits"). */
const bodyArrivalMsDefault = 30_000;
/** Most headers a request may carry. */
const headersCountMax = 64;
/** Default time for a request's line and headers to arrive (a connection that sends nothing included). */
const headersArrivalMsDefault = 10_000;

/**
 * Read the body, refusing (413) past `limit` bytes and (408) when it has not arrived whole
 * within `arrivalMs`. Resolves to its bytes.
 */
function readBody(request: http.IncomingMessage, limit: number, arrivalMs = bodyArrivalMsDefault): Promise<Buffer> {
  const declared = Number(request.headers["content-length"] ?? "0");
  if (Number.isFinite(declared) && declared > limit) {
    return Promise.reject(
      new Refusal({
        status: 413,
        code: "too-large",
        message: `body of ${declared} bytes exceeds the limit of ${limit} bytes`,
      }),
    );
  }
  continueBody(request);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    // With its length declared (within the limit, and counted by admission control before the body
    // is read), the body is copied into one buffer as it comes: a 1 MiB body's chunks are freed as
    // they arrive instead of waiting for the end and a join, another 1 MiB copy.
    const whole = Number.isSafeInteger(declared) && declared > 0 ? releasableBuffer(declared) : null;
    let size = 0;
    // A body sent a byte at a time holds a request slot: cut it at the limit, answering why.
    const timer = setTimeout(() => {
      request.pause();
      const expected = Number.isFinite(declared) && declared > 0 ? ` of ${declared}` : "";
      reject(
        new Refusal({
          status: 408,
          code: "request-timeout",
          message: `the body did not arrive within ${arrivalMs / 1000} s (${size}${expected} bytes received)`,
        }),
      );
    }, arrivalMs);
    request.on("close", () => clearTimeout(timer));
    request.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new Refusal({ status: 413, code: "too-large", message: `body exceeds the limit of ${limit} bytes` }));
        request.pause();
        return;
      }
      if (whole === null) chunks.push(chunk);
      else if (size <= whole.length) chunk.copy(whole, size - chunk.length);
    });
    request.on("end", () => {
      clearTimeout(timer);
      // Handed on (and then decoded and parsed, in the continuation) within the turn's budget of body bytes.
      bodyTurns.run(size, () => {
        try {
          if (whole !== null && size !== whole.length)
            return reject(
              new Refusal({
                status: 400,
                code: "malformed",
                message: `body of ${size} bytes, where its Content-Length says ${whole.length}`,
              }),
            );
          if (whole !== null || chunks.length === 1) return resolve(whole ?? chunks[0]!);
          const joined = Buffer.concat(chunks);
          markReleasable(joined);
          resolve(joined);
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      });
    });
    request.on("error", reject);
  });
}

/** Deepest nesting of arrays and objects a JSON body may have (the API's bodies need 2). */
const jsonDepthMax = 32;

/**
 * The nesting depth of JSON `text`, counted without parsing (brackets inside strings do not count).
 * A string is skipped with `indexOf` to its closing quote (one not escaped by an odd run of
 * backslashes), so a 1 MiB value costs a native scan rather than a loop over a million characters.
 */
function jsonDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      let end = text.indexOf('"', i + 1);
      for (;;) {
        if (end < 0) return deepest; // unterminated: JSON.parse refuses it
        let slashes = 0;
        for (let j = end - 1; j > i && text.charCodeAt(j) === 0x5c; j--) slashes++;
        if (slashes % 2 === 0) break;
        end = text.indexOf('"', end + 1);
      }
      i = end;
    } else if (c === 0x5b || c === 0x7b) deepest = Math.max(deepest, ++depth);
    else if (c === 0x5d || c === 0x7d) depth--;
  }
  return deepest;
}

/**
 * The JSON value of a body's bytes. A large body's long string (a PUT's value) is made from the
 * bytes directly and the rest parsed alone (json-body.ts), where that gives what parsing the whole
 * text gives; otherwise the whole text is decoded and parsed. It consumes `bytes`: a large body
 * made by `readBody` is empty afterwards, its memory given back (release.ts).
 */
function parseBody(bytes: Buffer): unknown {
  // Every string made from the body is a copy: its memory goes at the next scavenge (release.ts).
  try {
    return parseBodyBytes(bytes);
  } finally {
    release(bytes);
  }
}

function parseBodyBytes(bytes: Buffer): unknown {
  const split = splitLongString(bytes);
  if (split !== null) {
    try {
      const filled = withLongString(parseJsonBody(split.rest), split.value);
      if (filled !== undefined) {
        // Its hash from the bytes at hand, not from a UTF-8 copy when it is executed (text-hash.ts).
        hashFromUtf8(split.value, split.utf8);
        return filled;
      }
    } catch {
      // Refused: the whole text is parsed below, for the refusal's own words.
    }
  }
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    return refuse(400, "malformed", "body is not valid UTF-8");
  }
  return parseJsonBody(text);
}

function parseJsonBody(text: string): unknown {
  if (text.trim() === "") refuse(400, "malformed", "a JSON body is required");
  // Checked first: decoding and describing a value nested thousands deep would exhaust the stack.
  const depth = jsonDepth(text);
  if (depth > jsonDepthMax)
    refuse(400, "malformed", `the JSON body is nested ${depth} levels deep; at most ${jsonDepthMax} are allowed`);
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    return refuse(400, "malformed", `body is not JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** Decode the body of POST /v1/members: the op first, so that an unknown op gets a short answer. */
export function decodeMemberRequest(body: unknown): MemberRequest {
  if (typeof body !== "object" || body === null || Array.isArray(body))
    refuse(400, "malformed", 'POST /v1/members body must be a JSON object such as {"op":"add","id":4}');
  const op = (body as Record<string, unknown>).op;
  const known = memberOps.find((name) => name === op);
  if (known === undefined)
    refuse(
      400,
      "malformed",
      `POST /v1/members body: op must be one of ${memberOps.map((o) => JSON.stringify(o)).join(", ")}, got ${op === undefined ? "none" : JSON.stringify(op)}`,
    );
  const request: MemberRequest = decodeWith<MemberRequest, unknown>(
    memberBodies[known] as Schema.Schema<MemberRequest, unknown>,
    body,
    `POST /v1/members body (op ${known})`,
  );
  if (request.op === "replace" && request.old === request.id)
    refuse(400, "malformed", `replace needs two different replicas, got old ${request.old} and id ${request.id}`);
  return request;
}

/**
 * The core's change for a client's request. An add carries the new replica's addresses when the
 * request gives both, else `known` ones (what the leader learned when the replica dialled it),
 * and `members`, where the members of the time listen.
 */
export function changeOf(
  request: MemberRequest,
  known: { readonly peer: string; readonly http: string | null } | null = null,
  members: readonly MemberAddress[] = [],
): ConfigChange {
  if (request.op === "replace") return { op: "replace", remove: request.old, add: request.id };
  if (request.op !== "add") return { op: request.op, replica: request.id };
  const others = members.filter((a) => a.replica !== request.id);
  const withMembers = others.length === 0 ? {} : { members: others };
  const peer = request.peerAddress ?? known?.peer;
  if (peer === undefined) return { op: "add", replica: request.id, ...withMembers };
  const http = request.httpAddress ?? known?.http ?? null;
  return { op: "add", replica: request.id, address: { peer, ...(http === null ? {} : { http }) }, ...withMembers };
}

const decodeChange = Schema.decodeUnknownEither(ConfigChange);

/** The core refuses a promotion (or replacement) of a learner that has not caught up: worth retrying. */
const notCaughtUp = /has not caught up/;

/**
 * The core refuses a promotion (or replacement) by a replica that is not a learner. For a replace
 * the core judges `old` first (impl/core/configuration.ts, `applyChange`), so this refusal also
 * says that `old` is a voter of a configuration the leader vouches for: the CLI's `members
 * replace` asks for the replace first and adds the new replica only on this answer.
 */
const notALearner = /is not a learner/;

/** The HTTP answer for the core's answer to a membership change. */
export function memberAnswerOf(request: MemberRequest, result: ClientResult<KvOutput>, context: AnswerContext): Answer {
  switch (result._tag) {
    case "reconfigured": {
      const what =
        request.op === "add"
          ? `replica ${request.id} added as a learner`
          : request.op === "promote"
            ? `replica ${request.id} promoted to voter`
            : request.op === "remove"
              ? `replica ${request.id} removed`
              : `replica ${request.old} replaced by ${request.id}`;
      return {
        status: 200,
        body: {
          ok: true,
          message: `${what}: chosen at slot ${result.epoch}, the configuration voters=${result.voters.join(",")}${result.learners.length === 0 ? "" : ` learners=${result.learners.join(",")}`} governs from slot ${result.governsFrom}`,
          epoch: result.epoch,
          governsFrom: result.governsFrom,
          voters: result.voters,
          learners: result.learners,
        },
      };
    }
    case "refused":
      if (notCaughtUp.test(result.reason))
        return {
          status: 409,
          body: { code: "not-caught-up", message: `${result.reason}; retry once it has caught up`, retry: true },
          headers: { "Retry-After": "1" },
        };
      if (notALearner.test(result.reason))
        return { status: 409, body: { code: "not-a-learner", message: result.reason } };
      return { status: 409, body: { code: "refused", message: result.reason } };
    case "redirect":
    case "unavailable":
    case "stale-seq":
    case "seq-reused":
    case "session-expired":
    case "session-opened":
    case "ok":
      if (
        result._tag === "ok" ||
        result._tag === "stale-seq" ||
        result._tag === "seq-reused" ||
        result._tag === "session-expired" ||
        result._tag === "session-opened"
      )
        return {
          status: 500,
          body: { code: "internal", message: `a key-value result (${result._tag}) for a membership change` },
        };
      return answerOf({ _tag: "get", key: "" }, result, context);
  }
}

/** The key named by a /v1/kv/ path: everything after the prefix, percent-decoded. */
export function keyOfPath(pathname: string): string {
  const raw = pathname.slice(kvPrefix.length);
  if (raw === "") refuse(400, "malformed", "the key is empty: use /v1/kv/<key>");
  let key: string;
  try {
    key = decodeURIComponent(raw);
  } catch {
    return refuse(400, "malformed", "the key is not valid percent-encoding");
  }
  if (key.length > keyLengthMax)
    refuse(400, "malformed", `the key is ${key.length} characters long; keys are at most ${keyLengthMax} characters`);
  return key;
}

function single(value: string | string[] | undefined, name: string): string | undefined {
  if (Array.isArray(value)) refuse(400, "malformed", `header ${name} given more than once`);
  return value;
}

/** The session headers: both or neither. */
function sessionOf(request: http.IncomingMessage): { clientId?: string; seq?: number } {
  const clientId = single(request.headers["x-client-id"], "X-Client-Id");
  const seqText = single(request.headers["x-client-seq"], "X-Client-Seq");
  if (clientId === undefined && seqText === undefined) return {};
  if (clientId === undefined || seqText === undefined)
    refuse(400, "malformed", "X-Client-Id and X-Client-Seq go together: give both or neither");
  if (!/^[0-9]{1,16}$/.test(seqText)) refuse(400, "malformed", "X-Client-Seq must be a positive decimal integer");
  return {
    // A client's own id, or one the service opened (`session <n>`, POST /v1/sessions).
    clientId: decodeWith(SessionName, clientId, "X-Client-Id"),
    seq: decodeWith(Seq, Number(seqText), "X-Client-Seq"),
  };
}

function consistencyOf(url: URL, method: string): Consistency {
  for (const name of url.searchParams.keys()) {
    if (name !== "consistency") refuse(400, "malformed", `unknown query parameter ${JSON.stringify(name)}`);
  }
  const values = url.searchParams.getAll("consistency");
  if (values.length === 0) return "linearizable";
  if (method !== "GET") refuse(400, "malformed", "consistency applies to reads (GET) only");
  if (values.length > 1) refuse(400, "malformed", "consistency given more than once");
  return decodeWith(ConsistencyParam, values[0], "consistency");
}

/**
 * The put that a PUT body `{"value": "..."}` (exactly that one member, a string within the value
 * limit) under a valid `key` decodes to, checked by hand; null for anything else, which then goes
 * through the Schemas (`PutBody`, `KvInput`: the definition, and the source of every refusal's
 * message). A shortcut for the common request only: it accepts nothing the Schemas refuse and
 * gives what they give (impl/runtime/http-api.test.ts checks both on arbitrary bodies), without
 * the Schema decoder's allocations on every write.
 */
export function plainPut(key: string, body: unknown): KvInput | null {
  if (key.length < 1 || key.length > keyLengthMax) return null;
  if (typeof body !== "object" || body === null || Array.isArray(body)) return null;
  let members = 0;
  for (const name in body) {
    if (!Object.hasOwn(body, name) || name !== "value") return null;
    members += 1;
  }
  const value = (body as { readonly value?: unknown }).value;
  if (members !== 1 || typeof value !== "string" || value.length > valueLengthMax) return null;
  return { _tag: "put", key, value };
}

/** The name of an operation that sets a value, in a refusal's message. */
function opName(tag: KvInput["_tag"]): string {
  return tag === "cas" ? "compare-and-swap" : tag;
}

/** The end of a too-large answer's message, the same whichever refused the value. */
function overLimitText(length: number, limit: number): string {
  return `${length} bytes of UTF-8, above the value limit of ${limit} bytes; nothing changed`;
}

/**
 * Refuse (413 `value-too-large`) the value of a put, swap or append that is longer than the value
 * limit (spec/kv.ts, `valueBytesMax`) on its own, before it is decoded or proposed: the answer the
 * store would give a put or swap of it (and an append of it, whose whole is longer still), without
 * a slot of the log, and whatever the value's length in code units (beyond which the Schema would
 * refuse it with a 400). `Buffer.byteLength` counts as spec/kv.ts's `utf8Length` does (a lone
 * surrogate as 3 bytes; spec/kv.test.ts checks they agree).
 */
function refuseValueOverLimit(op: "put" | "cas" | "append", key: string, value: string): void {
  refuseOverLimit(op, key, value, op === "append" ? "the appended text alone is" : "the value would be");
}

/**
 * Refuse (413 `value-too-large`) a compare-and-swap whose expected value is longer than the value
 * limit: no value the store holds can equal it, and it would cost a slot of the log to learn that.
 */
function refuseExpectedOverLimit(key: string, expected: string): void {
  refuseOverLimit("cas", key, expected, "the expected value is");
}

function refuseOverLimit(op: "put" | "cas" | "append", key: string, value: string, what: string): void {
  // A code unit takes at most 3 bytes: a value of at most a third of the limit in code units fits.
  if (value.length * 3 <= valueBytesMax) return;
  const length = Buffer.byteLength(value, "utf8");
  if (length <= valueBytesMax) return;
  refuse(413, "value-too-large", `${opName(op)} refused: ${what} ${overLimitText(length, valueBytesMax)}`, {
    key,
    length,
    limit: valueBytesMax,
    unit: "bytes",
  });
}

/** Turn the route and body into the store's input. */
async function inputOf(
  request: http.IncomingMessage,
  key: string,
  limit: number,
  arrivalMs: number | undefined,
): Promise<KvInput> {
  const method = request.method ?? "";
  let candidate: unknown;
  if (method === "GET") candidate = { _tag: "get", key };
  else if (method === "DELETE") candidate = { _tag: "delete", key };
  else if (method === "PUT") {
    const json = parseBody(await readBody(request, limit, arrivalMs));
    const put = plainPut(key, json);
    if (put?._tag === "put") refuseValueOverLimit("put", key, put.value);
    if (put !== null) return put;
    const body = decodeWith(PutBody, json, "PUT body");
    refuseValueOverLimit("put", key, body.value);
    candidate = { _tag: "put", key, value: body.value };
  } else if (method === "POST") {
    const bytes = await readBody(request, postBodyBytesMax(limit), arrivalMs);
    const length = bytes.length;
    const body = decodeWith(PostBody, parseBody(bytes), "POST body");
    if (body.op === "append" && length > limit)
      refuse(
        413,
        "too-large",
        `an append's body of ${length} bytes exceeds the limit of ${limit} bytes (only a compare-and-swap, which carries two values, may send up to ${postBodyBytesMax(limit)})`,
      );
    if (body.op === "cas" && body.expected !== null) refuseExpectedOverLimit(key, body.expected);
    refuseValueOverLimit(body.op, key, body.value);
    candidate =
      body.op === "cas"
        ? { _tag: "cas", key, expected: body.expected, value: body.value }
        : { _tag: "append", key, value: body.value };
  } else {
    refuseMethod(method, `${kvPrefix}<key>`, "GET, PUT, POST, DELETE");
  }
  // A get or delete of a key `keyOfPath` checked needs no decoding (its length is the only rule).
  if ((method === "GET" || method === "DELETE") && key.length >= 1 && key.length <= keyLengthMax)
    return candidate as KvInput;
  const decoded = decodeInput(candidate, { onExcessProperty: "error" });
  if (Either.isLeft(decoded)) refuse(400, "malformed", schemaError(decoded.left));
  return decoded.right;
}

type Answer = {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly headers?: Record<string, string>;
};

/** The HTTP answer for the core's result. */
export function answerOf(input: KvInput, result: ClientResult<KvOutput>, context: AnswerContext): Answer {
  switch (result._tag) {
    case "ok":
      return answerOk(input, result.output);
    case "redirect": {
      if (result.leader === null)
        return {
          status: 503,
          body: { code: "no-leader", message: "no leader is known yet; retry shortly" },
          headers: { "Retry-After": "1" },
        };
      const address = context.httpAddressOf(result.leader);
      if (address === null) {
        return {
          status: 503,
          body: {
            code: "leader-unreachable",
            message: `replica ${result.leader} leads, but its client address is not known here yet`,
            leader: result.leader,
          },
          headers: { "Retry-After": "1" },
        };
      }
      const location = `${context.scheme ?? "http"}://${address}${context.requestUrl}`;
      return {
        status: 307,
        body: {
          code: "redirect",
          message: `replica ${result.leader} leads; retry at ${location}`,
          leader: result.leader,
          location,
        },
        headers: { Location: location },
      };
    }
    case "stale-seq":
      return {
        status: 409,
        body: {
          code: "stale-seq",
          message: `sequence number is older than this client's last executed request (${result.lastSeq})`,
          lastSeq: result.lastSeq,
        },
      };
    case "seq-reused":
      return {
        status: 409,
        body: {
          code: "seq-reused",
          message: `sequence number ${result.seq} was already used by this client for another command, which is the one executed under it; this request was not executed (send it with a new sequence number)`,
          seq: result.seq,
        },
      };
    case "session-expired":
      return {
        status: 409,
        body: {
          code: "session-expired",
          message:
            "this client has no session (evicted by the session bound, or never opened) and this request does not open one (its sequence number is above 1, or the cluster runs at feature level 3, where only POST /v1/sessions opens one): it was not executed and never will be; open a new session (at level 3 by POST /v1/sessions; below, under a new client id) and send it there numbered 1",
        },
      };
    case "unavailable":
      return {
        status: 503,
        body: { code: "unavailable", message: result.reason, outcomeUnknown: result.outcomeUnknown },
        headers: { "Retry-After": "1" },
      };
    case "reconfigured":
    case "refused":
    case "session-opened":
      // Results of membership changes and of opening a session; the key-value API never asks for one.
      return {
        status: 500,
        body: { code: "internal", message: `a ${result._tag} result for a key-value request` },
      };
  }
}

function answerOk(input: KvInput, output: KvOutput): Answer {
  const key = "key" in input ? input.key : null;
  switch (output._tag) {
    case "value":
      return { status: 200, body: { key, value: output.value } };
    case "ok":
      return { status: 200, body: { key, ok: true } };
    case "cas":
      if (output.swapped) return { status: 200, body: { key, swapped: true, previous: output.current } };
      return {
        status: 409,
        body: {
          code: "cas-failed",
          message: `compare-and-swap failed: ${output.current === null ? "the key is absent" : `the current value is ${JSON.stringify(output.current.length > 200 ? `${output.current.slice(0, 200)}...` : output.current)}`}`,
          key,
          current: output.current,
        },
      };
    case "too-large":
      // From feature level 4 on execution counts bytes of UTF-8, as admission does, and says so as
      // admission does; below it, code units (spec/kv.ts, `TooLargeOutput`).
      return {
        status: 413,
        body: {
          code: "value-too-large",
          message:
            output.unit === "bytes"
              ? `${opName(input._tag)} refused: the value would be ${overLimitText(output.length, output.limit)}`
              : `${opName(input._tag)} refused: the value would be ${output.length} UTF-16 code units, above the ${output.limit} every replica holds at most; nothing changed`,
          key,
          length: output.length,
          limit: output.limit,
          unit: output.unit ?? "code-units",
        },
      };
  }
}

async function handleMembers(
  options: HttpApiOptions,
  limit: number,
  url: URL,
  request: http.IncomingMessage,
  response: http.ServerResponse,
): Promise<void> {
  const method = request.method ?? "";
  refuseQueryParameters(url);
  if (method === "GET" || method === "HEAD") {
    send(response, 200, options.members.show());
    options.onResponse?.("members-show", 200);
    return;
  }
  if (method !== "POST") {
    refuseMethod(method, membersPath, "GET, POST");
  }
  const body = decodeMemberRequest(parseBody(await readBody(request, limit, options.bodyArrivalMs)));
  const refusal = options.members.precheck(body);
  if (refusal !== null) throw new Refusal(refusal);
  const change =
    body.op === "add"
      ? changeOf(body, options.members.addressOf(body.id), options.members.memberAddresses())
      : changeOf(body);
  // What enters the log must decode at every replica (the wire and the disk check it with this
  // Schema): a change that does not is refused here, never proposed.
  const checked = decodeChange(change);
  if (Either.isLeft(checked))
    refuse(400, "malformed", `the membership change would not decode: ${schemaError(checked.left)}`);
  const result = await options.members.reconfigure(change);
  const answer = memberAnswerOf(body, result, contextOf(options, request));
  send(response, answer.status, answer.body, answer.headers);
  options.onResponse?.(`members-${body.op}`, answer.status);
}

/**
 * POST /v1/sessions: the service opens a session (feature level 3) and names it; the client sends
 * that name as its X-Client-Id, numbering its requests from 1. A body, if any, must be `{}`.
 */
async function handleOpenSession(
  options: HttpApiOptions,
  limit: number,
  url: URL,
  request: http.IncomingMessage,
  response: http.ServerResponse,
): Promise<void> {
  const method = request.method ?? "";
  refuseQueryParameters(url);
  if (method !== "POST") {
    refuseMethod(method, sessionsPath, "POST");
  }
  if (hasBody(request)) {
    const body = parseBody(await readBody(request, limit, options.bodyArrivalMs));
    if (typeof body !== "object" || body === null || Array.isArray(body) || Object.keys(body).length > 0)
      refuse(400, "malformed", "POST /v1/sessions takes no body, or {}");
  }
  if (options.openSession === undefined) refuse(404, "not-found", "this replica does not open sessions");
  const ticket = await admit(options.admission, request, 0);
  try {
    const result = await options.openSession();
    const answer = openSessionAnswerOf(result, contextOf(options, request));
    send(response, answer.status, answer.body, answer.headers);
    options.onResponse?.("sessions-open", answer.status);
  } finally {
    ticket?.release();
  }
}

/** The HTTP answer for the core's answer to an open-session request. */
export function openSessionAnswerOf(result: ClientResult<KvOutput>, context: AnswerContext): Answer {
  switch (result._tag) {
    case "session-opened":
      return {
        status: 200,
        body: {
          clientId: result.clientId,
          message: `session ${JSON.stringify(result.clientId)} opened: send it as X-Client-Id, with X-Client-Seq 1, 2, 3, ...`,
        },
      };
    case "refused":
      return { status: 409, body: { code: "sessions-not-opened", message: result.reason } };
    case "session-expired":
      // The open value executed below level 3 (a leader without the raise re-proposed it): nothing opened.
      return {
        status: 409,
        body: { code: "sessions-not-opened", message: "the cluster runs below feature level 3: no session was opened" },
      };
    case "redirect":
    case "unavailable":
      return answerOf({ _tag: "get", key: "" }, result, context);
    case "ok":
    case "stale-seq":
    case "seq-reused":
    case "reconfigured":
      return {
        status: 500,
        body: { code: "internal", message: `a ${result._tag} result for an open-session request` },
      };
  }
}

function send(
  response: http.ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (response.headersSent) return;
  const text = `${JSON.stringify(body)}\n`;
  response.writeHead(status, {
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": Buffer.byteLength(text),
    "Cache-Control": "no-store",
    ...headers,
  });
  response.end(text);
}

/** What answers need to know of the request: where a redirect points. */
export interface AnswerContext {
  readonly requestUrl: string;
  readonly httpAddressOf: (id: ReplicaId) => string | null;
  /** The scheme of the replicas' client addresses. Default "http". */
  readonly scheme?: "http" | "https";
}

function contextOf(options: HttpApiOptions, request: http.IncomingMessage): AnswerContext {
  return {
    requestUrl: request.url ?? "/",
    httpAddressOf: options.httpAddressOf,
    scheme: options.tls === undefined ? "http" : "https",
  };
}

/** After an answer that closes the connection, how long the rest of the request may still arrive, in milliseconds. */
const lingerMsMax = 2000;
/**
 * After an answer that closes the connection, how many more bytes are read and discarded: more than a client
 * that stops at the answer still has in flight (socket buffers of a few MiB on each side).
 */
const lingerBytesMax = 16 * 1024 * 1024;

/**
 * Whether the unread rest of a refused request's body is read and discarded on a connection that stays open
 * (Node.js does that for a kept-alive connection): only a body of a declared length within `limit`. Any
 * other is cut short by closing the connection once the answer is out ({@link closeWithoutReset}).
 */
function drainable(request: http.IncomingMessage, limit: number): boolean {
  const declared = Number(request.headers["content-length"]);
  return request.headers["transfer-encoding"] === undefined && Number.isSafeInteger(declared) && declared <= limit;
}

/**
 * Bound what a connection kept open after an answer sent before the body was read (a 429, 401, 415, ...)
 * still spends on that body: Node.js reads and discards it at the client's pace, and a client that trickles
 * a body of declared length within the limit would hold the connection until the request timeout (40 s).
 * The rest of the body must arrive within {@link lingerMsMax} of the answer, as on a connection that closes;
 * otherwise the connection is closed. A body that ends in time leaves the connection open for the next
 * request.
 */
function boundDrain(request: http.IncomingMessage): void {
  if (request.complete || request.socket.destroyed) return;
  const socket = request.socket;
  const timer = setTimeout(() => void socket.destroy(), lingerMsMax);
  const done = (): void => clearTimeout(timer);
  request.once("end", done);
  socket.once("close", done);
}

/**
 * Should the answer to `request`, sent while its body is still arriving, close the connection (`Connection:
 * close`, or the client asked for it), close it only once the client has stopped sending. Node.js closes the
 * socket as soon as the answer is written; the client's bytes that still arrive then draw a TCP reset, and a
 * client that is still uploading sees EPIPE or ECONNRESET, often before it has read the answer (a 429 that
 * says when to retry becomes a failure whose outcome it cannot know). Instead the rest of the body is read
 * and discarded until the client stops (the body's end, or its FIN), for at most {@link lingerMsMax} and
 * {@link lingerBytesMax}; only then is the socket closed, with nothing unread, so no reset. A connection
 * that stays open is left as it is.
 */
function closeWithoutReset(request: http.IncomingMessage, response: http.ServerResponse): void {
  const socket = request.socket;
  // Node.js calls destroySoon() once the answer is written, if the connection is to close: a property of this
  // socket only, removed when the answer is out either way.
  socket.destroySoon = () => linger(socket, request);
  response.once("finish", () => Reflect.deleteProperty(socket, "destroySoon"));
}

function linger(socket: net.Socket, request: http.IncomingMessage): void {
  const readBefore = socket.bytesRead;
  const close = (): void => void socket.destroy();
  const timer = setTimeout(close, lingerMsMax);
  socket.once("close", () => clearTimeout(timer));
  socket.once("end", close);
  request.once("end", close);
  // The body's reader may have paused it (408, 413), and with it the socket: read on, discarding.
  request.removeAllListeners("data");
  request.resume();
  socket.resume();
  // Counted on the socket: the body of a request whose answer is out is discarded before it reaches the request.
  // A listener takes the socket from Node.js' native HTTP parser to its JavaScript one: added only once the
  // native one has acted on the resume above (on the next tick), or the socket would stay stopped.
  setImmediate(() => {
    socket.on("data", () => {
      if (socket.bytesRead - readBefore > lingerBytesMax) close();
    });
  });
}

/**
 * Close a socket whose answer `end()` has sent. The client port allows half-open connections (Node's HTTP
 * server does), so `end()` alone only sends a FIN: a client that never closes its side would keep the
 * connection, its file descriptor and its place under `--http-connections-max`, for ever, and a few thousand
 * bad requests would shut every other client out of the port. The socket is destroyed once the client has
 * closed its side too, and at the latest `lingerMs` after the answer.
 */
function closeAfterAnswer(socket: net.Socket, lingerMs: number): void {
  const close = (): void => void socket.destroy();
  const timer = setTimeout(close, lingerMs);
  socket.once("close", () => clearTimeout(timer));
  socket.once("end", close);
}

/** The client API's server: HTTP, or HTTPS with the replica's certificate. */
export type ApiServer = http.Server | https.Server;

/** Create (but do not start) the HTTP (or, with `tls`, HTTPS) server of a replica. */
export function createHttpServer(options: HttpApiOptions): ApiServer {
  const limit = options.bodyBytesMax ?? bodyBytesMaxDefault;
  // Sockets that already carry a request being answered: a later parse error must not add a second answer.
  const answered = new WeakSet<net.Socket>();
  const listener = (request: http.IncomingMessage, response: http.ServerResponse): void => {
    // A request sent after the connection was closed with an answer (closeWithoutReset) gets none.
    if (request.socket.writableEnded) return void request.socket.destroy();
    answered.add(request.socket);
    response.once("finish", () => boundDrain(request));
    response.setHeader("X-Paxos-Lease-Replica", String(options.replicaId));
    handle(options, limit, request, response).catch((error: unknown) => {
      const refusal = error instanceof Refusal ? error.error : undefined;
      if (refusal === undefined) options.log.error({ err: error }, "HTTP handler failed");
      if (refusal !== undefined && accessCodes.has(refusal.code))
        options.onAccessRefused?.(refusal.code, request.socket.remoteAddress ?? "?");
      const answer = refusal ?? { status: 500, code: "internal", message: "internal error; see the replica's log" };
      const unread = hasBody(request) && !request.complete;
      // A body that may be long or slow is not read on: answer, then close without a reset. So is one the
      // client was never told to send (`Expect: 100-continue`): it may come, or not.
      const close =
        answer.status === 413 ||
        answer.status === 431 ||
        answer.status === 408 ||
        (unread && (awaitingContinue.has(request) || !drainable(request, bodyLimitOf(request, limit))));
      if (unread) closeWithoutReset(request, response);
      send(
        response,
        answer.status,
        { code: answer.code, message: answer.message, ...answer.extra },
        close ? { Connection: "close", ...answer.headers } : answer.headers,
      );
      options.onResponse?.("error", answer.status);
    });
  };
  const headersArrivalMs = options.headersArrivalMs ?? headersArrivalMsDefault;
  // Node.js looks for connections past their headers' or request's time only every this often (30 s unless
  // told): a connection that trickles its headers, or sends nothing, would hold its place up to 40 s, not 10.
  // A request without a Host header is refused by the access checks (403 host-refused, in JSON), not by
  // Node.js (an empty 400).
  const connectionsCheckingInterval = Math.max(50, Math.min(1000, Math.round(headersArrivalMs / 10)));
  const server: ApiServer =
    options.tls === undefined
      ? http.createServer({ connectionsCheckingInterval, requireHostHeader: false }, listener)
      : https.createServer(
          // The TLS handshake comes before the headers' time starts: bounded the same (Node's default is 120 s).
          { ...options.tls, connectionsCheckingInterval, requireHostHeader: false, handshakeTimeout: headersArrivalMs },
          listener,
        );
  // `Expect: 100-continue`: the body is asked for only once the request is admitted (`continueBody`).
  // Only a PUT or a POST, whose every answer but a refusal reads the body, waits; any other is told at once.
  server.on("checkContinue", (request: http.IncomingMessage, response: http.ServerResponse) => {
    if (request.method === "PUT" || request.method === "POST") awaitingContinue.set(request, response);
    else response.writeContinue();
    listener(request, response);
  });
  // An Expect other than 100-continue: a JSON 417 naming it (Node's default is an empty one). The body, if any,
  // is not read: the connection closes.
  server.on("checkExpectation", (request: http.IncomingMessage, response: http.ServerResponse) => {
    const expectation = String(request.headers.expect).slice(0, 60);
    if (hasBody(request)) closeWithoutReset(request, response);
    send(
      response,
      417,
      {
        code: "expectation-failed",
        message: `Expect ${JSON.stringify(expectation)} is not supported; only 100-continue is`,
      },
      { Connection: "close" },
    );
    options.onResponse?.("error", 417);
  });
  // Requests that do not even parse as HTTP get a JSON 400 too (Node's default is an empty one).
  server.on("clientError", (error: NodeJS.ErrnoException, socket: net.Socket) => {
    if (answered.has(socket)) {
      // The request before the bad bytes is being answered; let that answer out, then close.
      socket.setTimeout(5000, () => socket.destroy());
      return;
    }
    // A TLS handshake that failed or ran out of time (HTTPS forwards those here): no HTTP can be answered.
    const tlsFailed = error.code?.startsWith("ERR_TLS_") === true || error.code?.startsWith("ERR_SSL_") === true;
    if (!socket.writable || error.code === "ECONNRESET" || tlsFailed) {
      socket.destroy();
      return;
    }
    // Node's parser stops at http.maxHeaderSize bytes of request line and headers (a long URL too).
    const overflow = error.code === "HPE_HEADER_OVERFLOW";
    // No request was dispatched on this socket, so the time that ran out is the headers'.
    const late = error.code === "ERR_HTTP_REQUEST_TIMEOUT";
    const text = `${JSON.stringify(
      overflow
        ? {
            code: "headers-too-large",
            message: `the request line and headers exceed ${http.maxHeaderSize} bytes (a key or header too long?)`,
          }
        : late
          ? {
              code: "request-timeout",
              message: `the request line and headers did not arrive within ${headersArrivalMs / 1000} s`,
            }
          : { code: "malformed", message: `malformed HTTP request (${error.code ?? error.message})` },
    )}\n`;
    const status = overflow ? "431 Request Header Fields Too Large" : late ? "408 Request Timeout" : "400 Bad Request";
    socket.end(
      `HTTP/1.1 ${status}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
    );
    closeAfterAnswer(socket, options.malformedLingerMs ?? lingerMsMax);
    options.onResponse?.("malformed-http", overflow ? 431 : late ? 408 : 400);
  });
  // Idle and slow connections cost a file descriptor and memory each: bounded, so that no
  // number of them exhausts the process (the peer port and the disk share its descriptors).
  server.maxConnections = options.connectionsMax ?? httpConnectionsMaxDefault;
  server.on("drop", (data?: net.DropArgument) =>
    options.onConnectionDropped?.(data?.remoteAddress ?? "unknown", "total"),
  );
  boundPerAddress(
    server,
    options.connectionsPerAddressMax ?? connectionsPerAddressMaxOf(server.maxConnections),
    (remote) => options.onConnectionDropped?.(remote, "per-address"),
  );
  // After listening: an accept failure (out of file descriptors) is logged, never thrown.
  server.on("error", (error) => options.log.error({ err: error }, "client listener error"));
  server.headersTimeout = headersArrivalMs;
  // A backstop behind the body's own limit (which answers 408 and says why).
  server.requestTimeout = (options.bodyArrivalMs ?? bodyArrivalMsDefault) + 10_000;
  server.maxHeadersCount = headersCountMax + 1;
  return server;
}

/**
 * The default bound on one address's open client connections: a quarter of all of them (at least one), so that
 * one address cannot take every connection and a proxy in front of the replica still has room.
 */
export function connectionsPerAddressMaxOf(connectionsMax: number): number {
  return Math.max(1, Math.floor(connectionsMax / 4));
}

/**
 * Closes a connection as it arrives when `max` connections from its address are open (IPv4-mapped IPv6 addresses
 * count as IPv4). The listener's own `connection` handlers have run by then (an HTTPS server's TLS socket wraps
 * this one), so destroying the socket closes both, before any byte is read.
 */
function boundPerAddress(server: net.Server, max: number, onDropped: (remote: string) => void): void {
  const open = new Map<string, number>();
  server.on("connection", (socket: net.Socket) => {
    if (socket.remoteAddress === undefined) return; // Closed already: it holds nothing.
    const remote = sourceOf(socket.remoteAddress);
    const count = open.get(remote) ?? 0;
    if (count >= max) {
      socket.destroy();
      onDropped(remote);
      return;
    }
    open.set(remote, count + 1);
    socket.once("close", () => {
      const left = (open.get(remote) ?? 1) - 1;
      if (left === 0) open.delete(remote);
      else open.set(remote, left);
    });
  });
}

/** The role a route needs. The status page itself is public: it shows nothing until its script fetches /status. */
export function needOf(pathname: string, method: string, publicStatus: boolean): Need {
  const reading = method === "GET" || method === "HEAD";
  if (pathname.startsWith(kvPrefix)) return reading ? "read" : "write";
  if (pathname === membersPath) return reading ? "read" : "admin";
  // Opening a session changes the replicated state, as a write does.
  if (pathname === sessionsPath) return "write";
  if (pathname === "/" || pathname === "/healthz") return "public";
  if (pathname === "/status" || pathname === "/metrics") return publicStatus ? "public" : "read";
  return "read";
}

/** The codes of the access checks' refusals (for the refusal counter). */
export const accessCodes: ReadonlySet<string> = new Set([
  "unauthenticated",
  "forbidden",
  "host-refused",
  "origin-refused",
  "unsupported-media-type",
]);

/** Whether the request carries a body (one without is refused later, if its route needs one). */
function hasBody(request: http.IncomingMessage): boolean {
  const length = request.headers["content-length"];
  return request.headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0");
}

/** Browser checks, then the token's role, then (for a body) the content type; throws the refusal. */
function checkAccess(access: AccessPolicy, url: URL, method: string, request: http.IncomingMessage): void {
  const pathname = url.pathname;
  // RFC 9112: a target in absolute form (`http://name/path`) names the host in place of the Host header.
  const host = request.url?.startsWith("/") === false ? url.host : request.headers.host;
  const refusal =
    checkBrowser(access, { host, origin: request.headers.origin }) ??
    checkRole(access, needOf(pathname, method, access.publicStatus === true), request.headers.authorization) ??
    (hasBody(request) ? checkContentType(request.headers["content-type"]) : null);
  if (refusal !== null) throw new Refusal(refusal);
}

async function handle(
  options: HttpApiOptions,
  limit: number,
  request: http.IncomingMessage,
  response: http.ServerResponse,
): Promise<void> {
  let url: URL;
  try {
    // A path read relative to a base would take `//name/...` for a host: it is appended instead.
    const target = request.url ?? "/";
    url = target.startsWith("/") ? new URL(`http://replica${target}`) : new URL(target, "http://replica");
  } catch {
    return refuse(400, "malformed", "the request target is not a valid URL path");
  }
  const method = request.method ?? "";
  // Node.js drops the headers past its count without a word, though its parser still frames the body by them:
  // an Origin, Content-Type or Transfer-Encoding there would escape the checks below. One more is let through
  // to the count, so that a request it stops is known to have had too many.
  if (request.rawHeaders.length > 2 * headersCountMax)
    refuse(
      431,
      "headers-too-large",
      `the request has more than ${headersCountMax} headers; at most ${headersCountMax} are allowed`,
    );
  // A body whose framing the replica does not know: Node.js would read it to the connection's end (and answer
  // 408 after 30 s). RFC 9112 asks for 400 and a closed connection when chunked is not the last coding.
  const coding = request.headers["transfer-encoding"];
  if (coding !== undefined && coding.trim().toLowerCase() !== "chunked")
    refuse(
      400,
      "malformed",
      `Transfer-Encoding ${JSON.stringify(coding.slice(0, 60))} is not supported: send a body with Content-Length or Transfer-Encoding: chunked`,
    );
  // Node.js keeps the first of several Host headers; which one a proxy in front acted on is unknown (RFC 9112: 400).
  if (request.rawHeaders.filter((name, i) => i % 2 === 0 && name.toLowerCase() === "host").length > 1)
    refuse(400, "malformed", "the request has more than one Host header");
  checkAccess(options.access, url, method, request);
  const retired = options.retired?.() ?? null;
  if (
    retired !== null &&
    (url.pathname.startsWith(kvPrefix) ||
      url.pathname === sessionsPath ||
      (url.pathname === membersPath && method === "POST"))
  ) {
    refuse(410, "removed", retired);
  }
  if (url.pathname === membersPath) {
    await handleMembers(options, limit, url, request, response);
    return;
  }
  if (url.pathname === sessionsPath) {
    await handleOpenSession(options, limit, url, request, response);
    return;
  }
  if (url.pathname.startsWith(kvPrefix)) {
    const key = keyOfPath(url.pathname);
    const consistency = consistencyOf(url, method);
    const session = sessionOf(request);
    // Admission counts a body at what it declares, or at its route's limit: a POST's is twice a PUT's.
    const bodyLimit = method === "POST" ? postBodyBytesMax(limit) : limit;
    const bytes = method === "PUT" || method === "POST" ? declaredBytes(request, bodyLimit) : 0;
    const ticket = await admit(options.admission, request, bytes);
    try {
      const input = await inputOf(request, key, limit, options.bodyArrivalMs);
      const result = await options.submit({ input, consistency, ...session, bytes });
      const answer = answerOf(input, result, contextOf(options, request));
      send(response, answer.status, answer.body, answer.headers);
      options.onResponse?.(`kv-${input._tag}`, answer.status);
    } finally {
      ticket?.release();
    }
    return;
  }
  if (method !== "GET" && method !== "HEAD") {
    refuseMethod(method, url.pathname, "GET");
  }
  switch (url.pathname) {
    case "/":
      response.writeHead(200, {
        "Content-Type": "text/html; charset=utf-8",
        "Cache-Control": "no-store",
        // No other page may frame it (clickjacking of its token form), in new browsers and old.
        "Content-Security-Policy": "frame-ancestors 'none'",
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
      });
      response.end(options.page);
      return;
    case "/status":
      send(response, 200, options.status());
      return;
    case "/healthz":
      send(response, 200, { ok: true, replica: options.replicaId });
      return;
    case "/metrics": {
      const metrics = await options.metrics();
      response.writeHead(200, { "Content-Type": metrics.contentType });
      response.end(metrics.body);
      return;
    }
    default:
      refuse(404, "not-found", `no route ${url.pathname}; the key-value API is under ${kvPrefix}<key>`);
  }
}

/**
 * The nemesis's clients: concurrent closed-loop clients over the HTTP API, each with its own
 * exactly-once session (client id + sequence number), recording every operation they invoke
 * with its invocation time, its outcome (ok, fail, unknown) and its completion time, in the
 * format of docs/history-format.md.
 *
 * Two key families: registers (`r<k>`: put, linearizable get, compare-and-swap) and lists
 * (`l<k>`: append of a token unique to the operation, get). Values and tokens are unique, so a
 * lost or doubled write is visible. A write is retried with the same sequence number until it
 * is answered or its deadline passes, following redirects, so most writes whose first attempt
 * had an unknown outcome end up known; one that stays unknown is recorded as unknown. Every
 * loop is bounded in operations and in time.
 *
 * With `sessionsBounded` (a cluster at feature level 2 whose session table holds fewer sessions
 * than there are clients) the clients behave as docs/http-api.md tells a client to: each session
 * opens with a put to a key of its own (`s.<session>`, read by no other operation: a retry of
 * number 1 that arrives after its session was evicted runs again, the documented gap, and a put
 * run twice is harmless), and a write answered `409 session-expired` is recorded as failed, or
 * unknown if an earlier attempt may have run, and the client goes on under a new session, a new
 * client id (`c3~2`), from number 1.
 *
 * With `sessionsOpened` (a cluster at feature level 3) the service opens the sessions: a client
 * opens one with `POST /v1/sessions` before its first write (retrying on 503, and on
 * `409 sessions-not-opened` while the leader has not yet raised the log to level 3), numbers its
 * writes from 1 under the id it was given (`session 17`), and after `session-expired` (refused,
 * never run, whatever the number) opens a new session and sends the next write there. No opening
 * put: no request opens a session at level 3. The open requests are not operations of the
 * history (they change no key); the clients count them (`sessionsOpened`).
 *
 * With `valueBytesEveryMs` (a cluster at feature level 4, or raised to it during the run) one more
 * client (`b1`) writes text outside ASCII to a key of its own (`u0`): a put of
 * {@link bytesPutChars} euro signs (3 bytes of UTF-8 each: just under 1 MiB), then appends of
 * {@link bytesAppendChars} each, whose whole is over 1 MiB of UTF-8 and far below 1 Mi code units.
 * From level 4 on the store refuses each such append when it executes it (`413 value-too-large`,
 * `"unit": "bytes"`, an outcome in the history), and the value stays under 1 MiB; below it the
 * append runs and the value grows. The clients count both (`appendsRefusedInBytes`,
 * `appendsOverBytesRan`). Each refusal costs the log an append of about 100 bytes, not a value of
 * 1 MiB.
 */
import fs from "node:fs";
import http from "node:http";
import { utf8Length, valueBytesMax, valueLengthMax, type KvInput, type KvOutput } from "../../spec/kv.ts";
import { monotonicMs } from "./cluster.ts";
import { seededRandom } from "./schedule.ts";

/** One operation as the clients saw it (the history entry plus what the run's page shows). */
export interface RecordedOp {
  readonly client: string;
  readonly input: KvInput;
  /** Run time (ms since the run's origin) of the first attempt. */
  readonly invoke: number;
  outcome: "ok" | "fail" | "unknown";
  complete?: number;
  output?: KvOutput;
  /** Attempts made (redirect hops not counted). */
  attempts: number;
  /** Replica that answered last (from X-Paxos-Lease-Replica), if any. */
  replica?: number;
  /** Why it failed or is unknown, for the run's page. */
  note?: string;
}

/**
 * What a client does: a mix of everything, only linearizable reads, only writes, or the cycle of
 * non-ASCII writes over 1 MiB of UTF-8 (`valueBytes`; see the module comment).
 */
export type OperationMix = "mixed" | "reads" | "writes" | "bytes";

/** The key the `bytes` client writes: read and written by no other client. */
const bytesKey = "u0";
/** Euro signs in the `bytes` client's put: 1,048,500 bytes of UTF-8, admitted with its name in front. */
const bytesPutChars = 349_500;
/** Euro signs in each of its appends: 96 bytes, which with the put's make over 1 MiB of UTF-8. */
const bytesAppendChars = 32;
// An append crosses the limit in bytes, not the one in code units, and the put alone is admitted.
if (
  3 * (bytesPutChars + bytesAppendChars) <= valueBytesMax ||
  3 * bytesPutChars + 64 > valueBytesMax ||
  2 * bytesPutChars >= valueLengthMax
)
  throw new Error("the bytes client's writes do not cross 1 MiB of UTF-8 within the other bounds");

/** A group of clients that talk to particular replicas with a particular mix. */
export interface ClientGroup {
  readonly clients: number;
  readonly endpoints: readonly string[];
  readonly mix: OperationMix;
}

/** Options of {@link Workload}. Limits state their defaults. */
export interface WorkloadOptions {
  readonly endpoints: readonly string[];
  /** The bearer token every request carries (a write token at least). */
  readonly token: string;
  readonly clients: number;
  /** Instead of `clients` mixed clients over `endpoints`: these groups. Default: none. */
  readonly groups?: readonly ClientGroup[];
  /** Register keys r0..r(n-1). Default 8. */
  readonly registerKeys?: number;
  /** List keys l0..l(n-1). Default 4. */
  readonly listKeys?: number;
  readonly seed: number;
  /** Monotonic ms of the run's origin: history times are relative to it. */
  readonly origin: number;
  /** One HTTP attempt's timeout, in milliseconds. Default 1500. */
  readonly attemptTimeoutMs?: number;
  /** A write is retried until this long after its invocation, in milliseconds. Default 5000. */
  readonly writeDeadlineMs?: number;
  /** Operations per client at most. Default 100000. */
  readonly opsPerClientMax?: number;
  /** Pause between a client's operations, in milliseconds. Default 0. */
  readonly thinkMs?: number;
  /**
   * Clients of a session table smaller than their number (feature level 2): each session opens with
   * a put of its own, and a client answered `session-expired` goes on under a new session (see the
   * module comment). Default false: a client keeps one session for the whole run, and a
   * `session-expired` answer is an anomaly.
   */
  readonly sessionsBounded?: boolean;
  /**
   * The service opens the sessions (feature level 3): each client opens its session with
   * `POST /v1/sessions` and a new one after `session-expired` (see the module comment). Default
   * false: a client chooses its id.
   */
  readonly sessionsOpened?: boolean;
  /**
   * One more client writes non-ASCII text over 1 MiB of UTF-8 (feature level 4; see the module
   * comment), pausing this long between its writes. Default: none.
   */
  readonly valueBytesEveryMs?: number;
  /**
   * Makes each client's HTTP agent (where its connections come from). Default: a keep-alive agent of 2 sockets on this
   * host.
   */
  readonly agent?: () => http.Agent;
}

type AttemptResult =
  | {
      readonly kind: "answer";
      readonly status: number;
      readonly body: Record<string, unknown>;
      readonly replica: number | undefined;
    }
  /** The request certainly never reached a replica (connection refused). */
  | { readonly kind: "refused"; readonly error: string }
  /** It may have reached a replica (timeout, reset): its outcome is unknown. */
  | { readonly kind: "maybe"; readonly error: string };

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** One request with a per-client keep-alive agent; classifies network failures. */
function attemptOnce(
  agent: http.Agent,
  method: string,
  url: string,
  body: unknown,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<AttemptResult & { location?: string }> {
  return new Promise((resolve) => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    let sent = false;
    const request = http.request(
      url,
      {
        method,
        agent,
        headers: { ...headers, ...(text === undefined ? {} : { "Content-Type": "application/json" }) },
        timeout: timeoutMs,
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => {
          let parsed: unknown = {};
          try {
            parsed = JSON.parse(Buffer.concat(chunks).toString("utf8"));
          } catch {
            parsed = {};
          }
          const replicaHeader = response.headers["x-paxos-lease-replica"];
          resolve({
            kind: "answer",
            status: response.statusCode ?? 0,
            body: typeof parsed === "object" && parsed !== null ? (parsed as Record<string, unknown>) : {},
            replica: typeof replicaHeader === "string" ? Number(replicaHeader) : undefined,
            ...(response.headers.location === undefined ? {} : { location: response.headers.location }),
          });
        });
        response.on("error", (error) => resolve({ kind: "maybe", error: error.message }));
      },
    );
    request.on("socket", (socket) => {
      // A reused keep-alive socket is connected already; a fresh one counts once it connects.
      if (!socket.connecting) sent = true;
      else socket.once("connect", () => (sent = true));
    });
    request.on("timeout", () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    request.on("error", (error: NodeJS.ErrnoException) => {
      // Refused before connecting: nothing reached a replica. Anything else may have.
      if (!sent && (error.code === "ECONNREFUSED" || error.code === "ECONNRESET"))
        resolve({ kind: "refused", error: error.code });
      else resolve({ kind: "maybe", error: error.code ?? error.message });
    });
    request.end(text);
  });
}

/** Where a session opens (`sessionsBounded`): a put to a key of its own, which nobody reads. */
function sessionKey(session: string): string {
  return `s.${session}`;
}

/** Whether `key` is one a session opened with (`sessionsBounded`; see the module comment). */
export function isSessionKey(key: string): boolean {
  return key.startsWith("s.");
}

/** A client's view of the cluster: endpoints, the last one that answered, and its session. */
class Client {
  private readonly agent: http.Agent;
  private preferred: number;
  /** The session's client id: the client's name, then `name~2`, `name~3`... after each `session-expired`. */
  private session: string;
  private sessions = 1;
  private seq = 0;
  private ops = 0;
  /** Last value this client saw per register key (the expectation of its next cas there). */
  private readonly seen = new Map<string, string | null>();
  /** The `bytes` client's put was answered: its appends follow. */
  private bytesPut = false;

  constructor(
    readonly name: string,
    private readonly workload: Workload,
    private readonly random: () => number,
    private readonly endpoints: readonly string[] = workload.options.endpoints,
    private readonly mix: OperationMix = "mixed",
  ) {
    this.session = name;
    this.preferred = Math.floor(random() * endpoints.length);
    this.agent = workload.options.agent?.() ?? new http.Agent({ keepAlive: true, maxSockets: 2 });
  }

  async run(): Promise<void> {
    const max = this.workload.options.opsPerClientMax ?? 100_000;
    const think =
      this.mix === "bytes" ? (this.workload.options.valueBytesEveryMs ?? 0) : (this.workload.options.thinkMs ?? 0);
    while (!this.workload.stopping && this.ops < max) {
      this.ops += 1;
      await this.one(this.nextInput());
      if (think > 0) await sleep(think);
    }
    this.agent.destroy();
  }

  private nextInput(): KvInput {
    const o = this.workload.options;
    if (this.mix === "bytes") {
      // The put until one is answered, then appends whose whole is over 1 MiB of UTF-8; each names
      // its operation first.
      const unique = `${this.name}.${this.ops}:`;
      return this.bytesPut
        ? { _tag: "append", key: bytesKey, value: unique + "€".repeat(bytesAppendChars) }
        : { _tag: "put", key: bytesKey, value: unique + "€".repeat(bytesPutChars) };
    }
    const registers = o.registerKeys ?? 8;
    const lists = o.listKeys ?? 4;
    const r = this.random();
    const unique = `${this.name}.${this.ops}`;
    const register = this.random() < registers / (registers + lists);
    if (register) {
      const key = `r${Math.floor(this.random() * registers)}`;
      // Mixed: 40% put, 40% get, 20% cas. Writes only: 60% put, 40% cas.
      if (this.mix === "reads" || (this.mix === "mixed" && r >= 0.4 && r < 0.8)) return { _tag: "get", key };
      const put = this.mix === "mixed" ? r < 0.4 : r < 0.6;
      return put
        ? { _tag: "put", key, value: unique }
        : { _tag: "cas", key, expected: this.seen.get(key) ?? null, value: unique };
    }
    const key = `l${Math.floor(this.random() * lists)}`;
    if (this.mix === "reads") return { _tag: "get", key };
    return this.mix === "writes" || r < 0.6 ? { _tag: "append", key, value: `${unique},` } : { _tag: "get", key };
  }

  /**
   * Invoke one operation and record it (a write in a session not yet open: after the session's
   * opening put, or once the service opened a session, `sessionsOpened`).
   */
  async one(input: KvInput): Promise<RecordedOp> {
    if (input._tag !== "get" && this.seq === 0 && this.workload.options.sessionsOpened === true) {
      if (!(await this.openSession())) {
        // No session by the write's deadline: the write is never sent (it fails, nothing ran).
        const op: RecordedOp = { client: this.name, input, invoke: this.workload.now(), outcome: "fail", attempts: 0 };
        op.note = "no session opened";
        this.workload.record(op);
        return op;
      }
    } else if (input._tag !== "get" && this.seq === 0 && this.workload.options.sessionsBounded === true)
      await this.invoke({ _tag: "put", key: sessionKey(this.session), value: this.session });
    return this.invoke(input);
  }

  /**
   * Open a session with `POST /v1/sessions` (feature level 3) and take the id it answers; true
   * once opened. Retried until the write deadline: a lost answer opens a session never used,
   * evicted in its turn (docs/http-api.md).
   */
  private async openSession(): Promise<boolean> {
    const started = this.workload.now();
    const deadline = started + (this.workload.options.writeDeadlineMs ?? 5000);
    const op: RecordedOp = {
      client: this.name,
      input: { _tag: "noop" },
      invoke: started,
      outcome: "fail",
      attempts: 0,
    };
    while (!this.workload.stopping && this.workload.now() < deadline) {
      const result = await this.attempt(op, "POST", {}, {}, "/v1/sessions");
      if (result.kind === "answer" && result.status === 200 && typeof result.body.clientId === "string") {
        this.session = result.body.clientId;
        this.seq = 0;
        this.workload.sessionsOpened += 1;
        return true;
      }
      const code = result.kind === "answer" ? String(result.body.code) : result.error;
      // Before the raise to level 3 is executed the route answers sessions-not-opened; anything
      // else but a busy or removed replica, or no answer, is an anomaly.
      if (
        result.kind === "answer" &&
        result.status !== 503 &&
        result.status !== 410 &&
        !(result.status === 409 && code === "sessions-not-opened")
      ) {
        this.workload.anomalies.push(
          `${this.name}: open-session answered ${result.status} ${JSON.stringify(result.body)}`,
        );
        return false;
      }
      await sleep(Math.min(50 * op.attempts, 300));
    }
    return false;
  }

  private async invoke(input: KvInput): Promise<RecordedOp> {
    const op: RecordedOp = { client: this.name, input, invoke: this.workload.now(), outcome: "fail", attempts: 0 };
    this.workload.record(op);
    if (input._tag === "get") await this.read(op);
    else await this.write(op);
    if (op.outcome === "ok" && "key" in input && input.key.startsWith("r")) {
      const output = op.output!;
      if (output._tag === "value") this.seen.set(input.key, output.value);
      else if (output._tag === "cas")
        this.seen.set(input.key, output.swapped ? (input as { value: string }).value : output.current);
      else if (input._tag === "put") this.seen.set(input.key, input.value);
    }
    return op;
  }

  private async read(op: RecordedOp): Promise<void> {
    const deadline = op.invoke + (this.workload.options.writeDeadlineMs ?? 5000);
    while (this.workload.now() < deadline) {
      const result = await this.attempt(op, "GET", undefined, {});
      if (result.kind === "answer" && result.status === 200) {
        this.succeed(op, { _tag: "value", value: (result.body.value as string | null) ?? null });
        return;
      }
      // A read that got no answer changed nothing: trying again is always safe.
      op.note = result.kind === "answer" ? `${result.status} ${String(result.body.code)}` : result.error;
      if (result.kind === "maybe") op.outcome = "unknown";
      await sleep(Math.min(50 * op.attempts, 300));
    }
  }

  private async write(op: RecordedOp): Promise<void> {
    this.seq += 1;
    const headers = { "X-Client-Id": this.session, "X-Client-Seq": String(this.seq) };
    const body = bodyOf(op.input);
    const deadline = op.invoke + (this.workload.options.writeDeadlineMs ?? 5000);
    let maybe = false;
    while (this.workload.now() < deadline) {
      const result = await this.attempt(op, methodOf(op.input), body, headers);
      if (result.kind === "answer") {
        const output = outputOf(op.input, result.status, result.body);
        if (output !== undefined) return this.succeed(op, output);
        op.note = `${result.status} ${String(result.body.code)}`;
        if (result.status === 503 && result.body.outcomeUnknown === true) maybe = true;
        if (
          result.status === 409 &&
          result.body.code === "session-expired" &&
          (this.workload.options.sessionsBounded === true || this.workload.options.sessionsOpened === true)
        ) {
          // Evicted: not executed now, though an earlier attempt may have run. A new session goes on
          // (opened by the service before the next write, at level 3).
          this.workload.sessionsExpired += 1;
          if (this.workload.options.sessionsOpened === true && this.session.startsWith("session "))
            this.workload.openedSessionsExpired += 1;
          this.sessions += 1;
          this.session = `${this.name}~${this.sessions}`;
          this.seq = 0;
          break;
        }
        if (result.status === 409 && result.body.code === "stale-seq") {
          // One outstanding request per session and increasing numbers: this must not happen.
          this.workload.anomalies.push(
            `${this.name} seq ${this.seq}: stale-seq answer (${JSON.stringify(result.body)})`,
          );
          maybe = true;
          break;
        }
        // 410: a removed replica (it refuses every request before its core sees it); ask another.
        if (result.status !== 503 && result.status !== 410) {
          this.workload.anomalies.push(
            `${this.name} seq ${this.seq}: unexpected answer ${result.status} ${JSON.stringify(result.body)}`,
          );
          break;
        }
      } else {
        op.note = result.error;
        if (result.kind === "maybe") maybe = true;
      }
      await sleep(Math.min(50 * op.attempts, 300));
    }
    op.outcome = maybe ? "unknown" : "fail";
  }

  private succeed(op: RecordedOp, output: KvOutput): void {
    if (this.mix === "bytes" && op.input._tag === "put") this.bytesPut = true;
    if (op.input._tag === "append") {
      if (output._tag === "too-large" && output.unit === "bytes") this.workload.appendsRefusedInBytes += 1;
      else if (output._tag === "value" && output.value !== null && utf8Length(output.value) > valueBytesMax)
        this.workload.appendsOverBytesRan += 1;
    }
    op.outcome = "ok";
    op.output = output;
    op.complete = this.workload.now();
    delete op.note;
  }

  /** One attempt at the preferred endpoint, following redirects (at most 3 hops). */
  private async attempt(
    op: RecordedOp,
    method: string,
    body: unknown,
    headers: Record<string, string>,
    path: string = pathOf(op.input),
  ): Promise<AttemptResult> {
    op.attempts += 1;
    const endpoints = this.endpoints;
    let url = `${endpoints[this.preferred]!}${path}`;
    const timeoutMs = this.workload.options.attemptTimeoutMs ?? 1500;
    for (let hop = 0; ; hop++) {
      const result = await attemptOnce(
        this.agent,
        method,
        url,
        body,
        { ...headers, Authorization: `Bearer ${this.workload.options.token}` },
        timeoutMs,
      );
      if (result.kind === "answer" && result.replica !== undefined) op.replica = result.replica;
      if (result.kind === "answer" && result.status === 307 && result.location !== undefined && hop < 3) {
        url = result.location;
        continue;
      }
      if (result.kind === "answer" && result.status !== 503 && result.status !== 410) {
        const origin = new URL(url).origin;
        const index = endpoints.indexOf(origin);
        if (index >= 0) this.preferred = index;
      } else {
        this.preferred = (this.preferred + 1) % endpoints.length;
      }
      return result;
    }
  }
}

function pathOf(input: KvInput): string {
  if (input._tag === "noop") throw new Error("no-ops are not client operations");
  return `/v1/kv/${encodeURIComponent(input.key)}`;
}

function methodOf(input: KvInput): string {
  switch (input._tag) {
    case "put":
      return "PUT";
    case "delete":
      return "DELETE";
    case "get":
      return "GET";
    default:
      return "POST";
  }
}

function bodyOf(input: KvInput): unknown {
  switch (input._tag) {
    case "put":
      return { value: input.value };
    case "cas":
      return { op: "cas", expected: input.expected, value: input.value };
    case "append":
      return { op: "append", value: input.value };
    default:
      return undefined;
  }
}

/** The store's output an HTTP answer reports, or undefined when the answer is not an outcome. */
export function outputOf(input: KvInput, status: number, body: Record<string, unknown>): KvOutput | undefined {
  if (status === 200) {
    switch (input._tag) {
      case "get":
      case "append":
        return { _tag: "value", value: (body.value as string | null) ?? null };
      case "cas":
        return { _tag: "cas", swapped: true, current: (body.previous as string | null) ?? null };
      default:
        return { _tag: "ok" };
    }
  }
  if (status === 409 && body.code === "cas-failed" && input._tag === "cas")
    return { _tag: "cas", swapped: false, current: (body.current as string | null) ?? null };
  // The store refuses an append past its bound (an outcome, in the log): in code units below feature
  // level 4, in bytes from level 4 on (`unit`); the HTTP layer refuses a put, swap or append whose
  // value alone is over the limit before proposing it (no outcome).
  if (
    status === 413 &&
    body.code === "value-too-large" &&
    input._tag === "append" &&
    utf8Length(input.value) <= valueBytesMax
  ) {
    const refused: KvOutput = { _tag: "too-large", length: Number(body.length), limit: Number(body.limit) };
    return body.unit === "bytes" ? { ...refused, unit: "bytes" } : refused;
  }
  return undefined;
}

/** Every client of a run and the history they record. */
export class Workload {
  readonly ops: RecordedOp[] = [];
  /** Answers that no correct cluster gives (a stale-seq to a fresh request, a 4xx to a valid one). */
  readonly anomalies: string[] = [];
  /** Writes answered `session-expired`, each followed by a new session (`sessionsBounded`). */
  sessionsExpired = 0;
  /** Sessions the service opened for the clients (`sessionsOpened`, `POST /v1/sessions` answered). */
  sessionsOpened = 0;
  /** Of `sessionsExpired`: answers to a session the service opened (`sessionsOpened`): one it opened was evicted. */
  openedSessionsExpired = 0;
  /** Appends the store refused in bytes (`413 value-too-large`, `"unit": "bytes"`: feature level 4). */
  appendsRefusedInBytes = 0;
  /** Appends answered with a value over 1 MiB of UTF-8 (executed below feature level 4). */
  appendsOverBytesRan = 0;
  stopping = false;
  private runs: Promise<void>[] = [];
  private readonly clients: Client[];

  constructor(readonly options: WorkloadOptions) {
    const random = seededRandom(options.seed);
    const groups = options.groups ?? [
      { clients: options.clients, endpoints: options.endpoints, mix: "mixed" as const },
    ];
    this.clients = [];
    for (const group of groups) {
      for (let i = 0; i < group.clients; i++) {
        this.clients.push(
          new Client(
            `c${this.clients.length + 1}`,
            this,
            seededRandom(Math.floor(random() * 2 ** 32)),
            group.endpoints,
            group.mix,
          ),
        );
      }
    }
    if (options.valueBytesEveryMs !== undefined)
      this.clients.push(new Client("b1", this, seededRandom(options.seed ^ 0x0b17e5), options.endpoints, "bytes"));
  }

  /** Run time: milliseconds since the run's origin. */
  now(): number {
    return monotonicMs() - this.options.origin;
  }

  record(op: RecordedOp): void {
    this.ops.push(op);
  }

  start(): void {
    this.runs = this.clients.map((client) => client.run());
  }

  /** Ask every client to stop after its current operation; resolves when all have. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.runs);
  }

  /** A one-off client (for the final reads), recording into the same history. */
  extraClient(name: string): { one(input: KvInput): Promise<RecordedOp> } {
    return new Client(name, this, seededRandom(this.options.seed ^ 0x5bd1e995));
  }
}

/** The history file (docs/history-format.md) of recorded operations. */
export function historyDocument(ops: readonly RecordedOp[]): unknown {
  return { ...historyHead, operations: ops.map(historyOperation) };
}

const historyHead = { format: "paxos-lease/history@1", model: "kv" } as const;

/** One recorded operation as the history file writes it. */
function historyOperation(op: RecordedOp): unknown {
  const base = { client: op.client, input: op.input, invoke: round3(op.invoke) };
  if (op.outcome === "ok") return { ...base, outcome: "ok", complete: round3(op.complete!), output: op.output };
  if (op.outcome === "fail") return { ...base, outcome: "fail" };
  return { ...base, outcome: "unknown" };
}

/** Strings at least this long are let go of by {@link releaseValues}. */
const releasedCharsMin = 1024;

/** `x` with every string of {@link releasedCharsMin} code units or more cut to its first 32 and its length. */
function briefLong<T>(x: T, count: () => void): T {
  if (typeof x === "string") {
    if (x.length < releasedCharsMin) return x;
    count();
    return `${x.slice(0, 32)}... (${x.length} code units)` as T;
  }
  if (x === null || typeof x !== "object") return x;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(x)) out[k] = briefLong(v, count);
  return out as T;
}

/**
 * Let go of the operations' long values, in place, once the history is written and checked: every
 * string of 1,024 code units or more in an input or output becomes its first 32 code units and its
 * length, which is all the run's page shows of it. A long run's operations hold gigabytes of values
 * (a list read back whole is as long as every append to it so far); the trace replay that follows
 * must not hold them beside its own. Returns how many strings it let go of.
 */
export function releaseValues(ops: readonly RecordedOp[]): number {
  let released = 0;
  const count = (): void => {
    released++;
  };
  for (const op of ops) {
    (op as { input: KvInput }).input = briefLong(op.input, count);
    if (op.output !== undefined) op.output = briefLong(op.output, count);
  }
  return released;
}

/** Characters gathered before {@link writeHistoryFile} writes them out. */
const historyWriteChars = 1 << 20;

/**
 * Write `historyDocument(ops)` to `file` as JSON and a newline, an operation at a time: the same
 * bytes as `JSON.stringify` of the whole document, which a long run with bursts of 1 MiB values
 * cannot make (it is longer than the longest string the engine holds).
 */
export function writeHistoryFile(file: string, ops: readonly RecordedOp[]): void {
  const fd = fs.openSync(file, "w");
  try {
    const open = JSON.stringify({ ...historyHead, operations: [] });
    let pending = open.slice(0, -2);
    for (const [i, op] of ops.entries()) {
      pending += `${i > 0 ? "," : ""}${JSON.stringify(historyOperation(op))}`;
      if (pending.length >= historyWriteChars) {
        fs.writeSync(fd, pending);
        pending = "";
      }
    }
    fs.writeSync(fd, `${pending}]}\n`);
  } finally {
    fs.closeSync(fd);
  }
}

function round3(x: number): number {
  return Math.max(0, Math.round(x * 1000) / 1000);
}

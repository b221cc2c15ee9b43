/**
 * The simulated world's clients: each operation as the linearizability checker and the reports
 * see it, what a client keeps between operations (its sequence numbers, its guess of the leader,
 * the values it saw), and `Clients`, which holds them all with the table of requests sent and
 * decides what a client makes of an answer. Sending and delivering are the world's.
 */
import type { KvInput, KvOutput } from "../../spec/kv.ts";
import type { ClientResult } from "../../impl/core/testing/index.ts";
import type { RequestInfo } from "../../proofs/world-view.ts";
import { longTextChars } from "../../spec/hash.ts";
import { hashOf, type Hasher, valueHash, type Hash64 } from "../explorer/hash.ts";
import type { OpSpec } from "./actions.ts";

/**
 * The text an append carries with the tuning's `valueLimit`: 200,000 euro signs, 600,000 bytes of
 * UTF-8 in 200,000 UTF-16 code units, so that two appends to one key make a whole over the value
 * limit in bytes (1 MiB, spec/kv.ts `valueBytesMax`) and far within the bound in code units that
 * execution applies below feature level 4. One string, shared by every append (and every copy of
 * the world), so that it costs its memory once.
 */
export const nearLimitText = "\u20ac".repeat(200_000);

/** One client operation, as the linearizability checker and the reports see it. */
export interface ClientOp {
  readonly opId: number;
  readonly client: string;
  readonly input: KvInput;
  readonly seq: number | undefined;
  readonly invokedAt: number;
  completedAt: number | undefined;
  output: KvOutput | undefined;
  attempts: number;
  /** Refused as reusing its sequence number: certainly never executed, so no part of the history. */
  refused: boolean;
  /** Sent by a faulty client under the number of its latest write (the `reuseSeq` action); sent once, never retried. */
  readonly reused: boolean;
}

export interface ClientSlot {
  readonly id: string;
  nextSeq: number;
  opsStarted: number;
  /** Index of the replica this client believes leads. */
  guess: number;
  op: ClientOp | null;
  /**
   * The last value this client saw under each key (its guess for a cas). Replaced, never written in place (world copies
   * share it).
   */
  seen: ReadonlyMap<string, string | null>;
  /** The next reply to this client is lost on its way. */
  loseNextReply: boolean;
  /** Redirects in a row: every third one, the client tries the next replica instead of the hint. */
  redirects: number;
  /**
   * Sessions this client started again after a `session-expired` (feature level 2): 0 while it
   * runs under its own id; then it sends as `sessionId` gives, a new client id, from number 1.
   */
  session: number;
  /**
   * Feature level 3: the session the service opened for this client (`session <n>`), or null while
   * it has none (before its first operation, and after a `session-expired`).
   */
  opened: string | null;
  /** Feature level 3: the request id of this client's open-session request awaiting its answer, or null. */
  opening: number | null;
  /** Feature level 3: the operation this client starts once the service opened it a session, or null. */
  waiting: OpSpec | null;
}

/**
 * The client id client `c` sends under: at feature level 3 the session the service opened for it;
 * else its own id, or after its session expired (`session` above 0) a new one, `c1~2`, `c1~3` ...,
 * as docs/http-api.md tells a client to open a new session at level 2.
 */
export function sessionId(c: ClientSlot): string {
  if (c.opened !== null) return c.opened;
  return c.session === 0 ? c.id : `${c.id}~${c.session + 1}`;
}

/**
 * The request a client opens each session with at feature level 2 (`sessionsBounded`): a put to a
 * key of that session's own, which no other operation reads or writes. A retry of number 1 whose
 * session was evicted before it arrived runs again (the gap docs/http-api.md names); this put is
 * the write harmless to run twice that the page advises, harmless in the history too.
 */
export function openingInput(c: ClientSlot): KvInput {
  const id = sessionId(c);
  return { _tag: "put", key: `session.${id}`, value: id };
}

/** Client `c` saw `value` under `key`: a new map, since copies of the world share the old one. */
export function see(c: ClientSlot, key: string, value: string | null): void {
  c.seen = new Map(c.seen).set(key, value);
}

/** A request sent: what the replica was asked, and the operation it is an attempt at. */
export interface SentRequest {
  readonly info: RequestInfo<KvInput>;
  readonly op: ClientOp;
}

/** What a client needs of the world to take an answer: the time, the tally, and where to try next. */
export interface ClientContext {
  /** True time now. */
  now(): number;
  count(name: string): void;
  /** The replica index a client tries after a failed attempt at index `guess`. */
  nextGuess(guess: number): number;
  /** The index of replica `id` (-1 if there is none). */
  indexOf(id: number): number;
}

/** Clients c1..cK, their operations, and the requests they sent (by request id). */
export class Clients {
  readonly slots: readonly ClientSlot[];
  readonly ops: ClientOp[] = [];
  private readonly requests = new Map<number, SentRequest>();
  /** Feature level 3: open-session requests sent (request id -> the client's index). */
  private readonly opens = new Map<number, number>();
  /** Feature level 3: the client index each session the service opened for a client belongs to. */
  private readonly owners = new Map<string, number>();
  /** `hash()`, kept until the table changes (`changed`). */
  private hashed: Hash64 | null = null;

  /**
   * `count` clients using `keys`, the i-th first trying replica index i mod `replicas`; with
   * `from`, a copy of those clients (see `copy`).
   */
  constructor(
    count: number,
    replicas: number,
    private readonly keys: readonly string[],
    from?: Clients,
    /** The value of every fourth operation a client starts is `longTextChars` long or more (`longValues`). */
    private readonly longValues: boolean = from?.longValues ?? false,
    /** Every append carries {@link nearLimitText} (`valueLimit`). */
    private readonly valueLimit: boolean = from?.valueLimit ?? false,
  ) {
    if (from === undefined) {
      this.slots = Array.from({ length: count }, (_, i) => ({
        id: `c${i + 1}`,
        nextSeq: 1,
        opsStarted: 0,
        guess: i % replicas,
        op: null,
        seen: new Map(),
        loseNextReply: false,
        redirects: 0,
        session: 0,
        opened: null,
        opening: null,
        waiting: null,
      }));
      return;
    }
    for (const [id, ci] of from.opens) this.opens.set(id, ci);
    for (const [id, ci] of from.owners) this.owners.set(id, ci);
    // A completed operation never changes again, unless a faulty client reused its number (a
    // late refusal may then mark it): the copies share the completed ones.
    const share = !from.ops.some((op) => op.reused);
    for (const op of from.ops) this.ops.push(share && op.completedAt !== undefined ? op : { ...op });
    for (const [id, req] of from.requests) {
      const op = this.ops[req.op.opId]!;
      this.requests.set(id, op === req.op ? req : { info: req.info, op });
    }
    this.slots = from.slots.map((c) => ({
      ...c,
      seen: c.seen, // never written in place: see() makes a new map
      op: c.op === null ? null : this.ops[c.op.opId]!,
    }));
  }

  /** An independent copy: operations are mutable, so each copy has its own (completed ones are shared). */
  copy(): Clients {
    return new Clients(0, 0, this.keys, this);
  }

  /** Client `id`, or the client that sent under session id `id` (`sessionId`). */
  slot(id: string): ClientSlot {
    const owner = this.owners.get(id);
    if (owner !== undefined) return this.slots[owner]!;
    const cut = id.indexOf("~");
    const own = cut < 0 ? id : id.slice(0, cut);
    return this.slots.find((x) => x.id === own)!;
  }

  /** How many clients have an operation outstanding (at feature level 3, one waiting for its session included). */
  pending(): number {
    let n = 0;
    for (const c of this.slots) if (c.op !== null || c.waiting !== null) n++;
    return n;
  }

  /** A new operation of client `c`, invoked at `now`. */
  newOp(c: ClientSlot, input: KvInput, seq: number | undefined, reused: boolean, now: number): ClientOp {
    this.hashed = null;
    const op: ClientOp = {
      opId: this.ops.length,
      client: sessionId(c),
      input,
      seq,
      invokedAt: now,
      completedAt: undefined,
      output: undefined,
      attempts: 0,
      refused: false,
      reused,
    };
    this.ops.push(op);
    return op;
  }

  /** The input of a new operation of client `c`: values are unique (client and operation number). */
  inputOf(c: ClientSlot, spec: OpSpec): KvInput {
    this.hashed = null;
    const key = this.keys[spec.key % this.keys.length]!;
    c.opsStarted++;
    const value =
      this.valueLimit && spec.kind === "append"
        ? `${c.id}.${c.opsStarted}.${nearLimitText}`
        : this.longValues && c.opsStarted % 4 === 1
          ? `${c.id}.${c.opsStarted}.${"v".repeat(longTextChars)}`
          : `${c.id}.${c.opsStarted}`;
    switch (spec.kind) {
      case "put":
        return { _tag: "put", key, value };
      case "append":
        return { _tag: "append", key, value };
      case "get":
        return { _tag: "get", key };
      case "cas":
        return { _tag: "cas", key, expected: c.seen.get(key) ?? null, value };
    }
  }

  /** Record request `requestId`, sent for `op`. */
  sent(requestId: number, info: RequestInfo<KvInput>, op: ClientOp): void {
    this.hashed = null;
    this.requests.set(requestId, { info, op });
  }

  /** Record open-session request `requestId`, sent by client index `ci`, as the one it awaits. */
  sentOpen(requestId: number, ci: number): void {
    this.hashed = null;
    this.opens.set(requestId, ci);
    this.slots[ci]!.opening = requestId;
  }

  /** Record `requestId`, a copy of an open-session request of client index `ci` (the network duplicated it). */
  copiedOpen(requestId: number, ci: number): void {
    this.hashed = null;
    this.opens.set(requestId, ci);
  }

  /** The client index that sent open-session request `requestId`, if one did. */
  openOf(requestId: number): number | undefined {
    return this.opens.get(requestId);
  }

  /**
   * What client index `ci` makes of `result`, the answer to one of its open-session requests
   * (an attempt, a retry or a network copy), while the client has none: the session the service
   * opened, or where to try next (an answer after it has one, or one lost on its way, leaves a
   * session nobody uses: the service evicts it in turn).
   */
  openAnswer(ci: number, result: ClientResult<KvOutput>, world: ClientContext): void {
    this.hashed = null;
    const c = this.slots[ci]!;
    if (c.opened !== null) return;
    if (c.loseNextReply) {
      c.loseNextReply = false;
      world.count("client reply lost");
      return;
    }
    c.opening = null;
    if (result._tag === "session-opened") {
      world.count("client opened a session");
      c.opened = result.clientId;
      c.nextSeq = 1;
      this.owners.set(result.clientId, ci);
    } else if (result._tag === "redirect") {
      c.guess = result.leader === null ? world.nextGuess(c.guess) : world.indexOf(result.leader);
      if (c.guess < 0) c.guess = 0;
    } else if (result._tag === "unavailable" && !result.outcomeUnknown) c.guess = world.nextGuess(c.guess);
  }

  /** The request with id `requestId`, if a client sent it. */
  request(requestId: number): SentRequest | undefined {
    return this.requests.get(requestId);
  }

  /** What the client makes of `result`, the answer to `info` (an attempt at `op`). */
  answer(op: ClientOp, info: RequestInfo<KvInput>, result: ClientResult<KvOutput>, world: ClientContext): void {
    this.hashed = null;
    const c = this.slot(info.clientId);
    if (result._tag === "seq-reused") {
      // Another command holds this number: this one never ran and never will under it.
      world.count("client refused: sequence number reused");
      op.refused = true;
      if (c.op === op) c.op = null;
      return;
    }
    if (op.reused && result._tag === "ok" && op.completedAt === undefined) {
      // The faulty client's command won its number and ran (the checks judge the answer).
      op.completedAt = world.now();
      op.output = result.output;
      return;
    }
    if (c.op !== op) return; // a late answer to an operation already finished
    if (c.loseNextReply) {
      c.loseNextReply = false;
      world.count("client reply lost");
      return;
    }
    if (result._tag !== "redirect") c.redirects = 0;
    switch (result._tag) {
      case "ok": {
        op.completedAt = world.now();
        op.output = result.output;
        c.op = null;
        const key = op.input._tag === "noop" ? undefined : op.input.key;
        if (key !== undefined) {
          const o = result.output;
          if (o._tag === "value") see(c, key, o.value);
          else if (op.input._tag === "put") see(c, key, op.input.value);
          else if (o._tag === "cas") see(c, key, o.swapped && op.input._tag === "cas" ? op.input.value : o.current);
        }
        return;
      }
      case "redirect":
        // Hints can be stale (a removed replica still names the leader it last heard, which may be
        // removed too): like a real client that knows every endpoint, do not follow them forever.
        c.redirects++;
        c.guess =
          result.leader === null || c.redirects % 3 === 0 ? world.nextGuess(c.guess) : world.indexOf(result.leader);
        if (c.guess < 0) c.guess = 0;
        return;
      case "unavailable":
        if (!result.outcomeUnknown) c.guess = world.nextGuess(c.guess);
        return;
      case "stale-seq":
        return;
      case "session-expired":
        // The session was evicted. This attempt did not run and never will, but an earlier one may
        // have: the operation stays in the history with its outcome unknown. At feature level 2 the
        // client opens a new session under a new client id, from number 1; at level 3 it asks the
        // service for a new session (docs/http-api.md).
        c.op = null;
        c.nextSeq = 1;
        if (c.opened !== null) {
          world.count("client session expired: the service opens it a new one");
          c.opened = null;
          return;
        }
        world.count("client session expired: a new session under a new client id");
        c.session++;
        return;
      case "session-opened":
        return;
    }
  }

  /**
   * The table is about to change (its owner calls this before changing it or a client in it):
   * its hash is computed again when next asked for.
   */
  changed(): void {
    this.hashed = null;
  }

  /** The hash of the clients, their operations and the request table (kept until `changed`). */
  hash(): Hash64 {
    return (this.hashed ??= hashOf((h) => this.hashInto(h)));
  }

  /** Feed the clients, their operations and the request table (whose each request is) into `h`. */
  private hashInto(h: Hasher): void {
    for (const c of this.slots) {
      h.num(c.nextSeq);
      h.num(c.opsStarted);
      h.num(c.guess);
      h.num(c.op === null ? -1 : c.op.opId);
      h.word(c.loseNextReply ? 1 : 0);
      h.num(c.redirects);
      if (c.session !== 0) h.num(-c.session); // only at feature level 2: the hashes of level 1 stay
      if (c.opened !== null) h.str(c.opened); // only at feature level 3, as the two below
      if (c.opening !== null) h.num(-1 - c.opening);
      if (c.waiting !== null) h.str(`${c.waiting.kind}:${c.waiting.key}`);
      h.num(c.seen.size);
      for (const [k, v] of c.seen) {
        h.str(k);
        h.str(v ?? "\u0000");
      }
    }
    h.num(this.ops.length);
    for (const op of this.ops) {
      h.str(op.client);
      h.hash(valueHash(op.input));
      h.num(op.seq ?? -1);
      h.num(op.invokedAt);
      h.num(op.completedAt ?? -1);
      h.hash(valueHash(op.output ?? null));
      h.word((op.refused ? 1 : 0) | (op.reused ? 2 : 0));
    }
    for (const [id, ci] of this.opens) {
      h.num(-1 - id);
      h.num(ci);
    }
    h.num(this.requests.size);
    for (const [id, req] of this.requests) {
      h.num(id);
      h.hash(valueHash(req.info));
      h.num(req.op.opId);
    }
  }
}

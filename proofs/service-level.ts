/**
 * The abstraction from Consensus (per slot) to the Service (spec/service.ts), and the checks at
 * that level:
 *   executed sequence == the commands of the contiguous chosen prefix, in slot order
 *   service state     == spec/service.ts applied to that sequence from Start
 * Each world step maps to a stutter or to Apply(request) for every command of every slot that
 * joins the prefix (bundled when a step completes several slots, or a gap filling releases a
 * run of them). The invariants (proofs/consensus-service.md):
 *   ExecutedPrefixAgreement  every slot a replica executed is in the chosen prefix, with the
 *                            chosen value: each replica executed a prefix of one sequence
 *   ExactlyOnce              a replica's count of executed requests equals the spec's, which
 *                            executes each (client, seq) once; an ok reply to (client, seq)
 *                            answers the very command executed under that number, never
 *                            another one that reused it
 *   DigestAgreement          a replica's service state after its executed prefix equals the
 *                            spec's (application digest, count, session table); no divergence
 *                            alarm is ever raised
 *   RepliesMatchSpec         an ok reply to a session request carries the spec's output for it,
 *                            and only once the request is in the executed sequence; stale-seq
 *                            only for a request older than the client's session; seq-reused
 *                            only when another command was executed under that number
 */
import type { Application } from "../spec/state-machine.ts";
import { longTextChars } from "../spec/hash.ts";
import { utf8Length, valueBytesMax } from "../spec/kv.ts";
import { pmGet } from "../spec/persistent-map.ts";
import {
  commandDigest,
  featureLevelOf,
  featureLevelSessionsOpened,
  featureLevelValueBytes,
  featuresMisfit,
  openedNumber,
  openSession,
  raiseFeatures,
  serviceOf,
  sessionOf,
  sessionsOf,
  type Service,
  type ServiceState,
} from "../spec/service.ts";
import {
  isStored,
  type ClientResult,
  showBallot,
  slotMapGet,
  valuesEqual,
  type ReplicaState,
  type StoredValue,
  type Value,
} from "../impl/core/testing/index.ts";
import { digestLarge, heldText, sameHeld } from "./held.ts";
import { violated, type Tally } from "./violation.ts";
import type { Carried } from "./world-view.ts";

/** Where, for which command and with which output a session request was first executed in the spec's sequence. */
export interface SpecExecution<O> {
  readonly slot: number;
  /** The executed command's digest (spec/service.ts `commandDigest`). */
  readonly command: string;
  /** Held (proofs/held.ts): an append's output is the whole value it made. */
  readonly output: O;
}

/**
 * A rare state of a store built with a passed-in hash of long texts (spec/hash.ts `TextHash`): a
 * command holding a string of `longTextChars` or more executed, so that its command digest, the
 * store's entry hash and the digests DigestAgreement compares went through the passed-in hash. The
 * `long-values` campaign requires it (refinement-tests/campaign.ts `missingSometimes`).
 */
export const longValueFolded = "sometimes: long value folded by the passed-in hash";

/** A rare state of the bounded session table (feature level 2): the spec evicted a session. */
export const sessionEvicted = "sometimes: a session was evicted";
/** A request of a client whose session was evicted (or never opened) was refused as session-expired. */
export const retryExpired = "sometimes: a request after eviction got session-expired";

/**
 * Feature level 3: a request numbered 1 was refused as session-expired although (session, 1) had run
 * before: a late or duplicated copy, or a retry, of a first request chosen after its session was
 * evicted, which level 2 would have run again (and reopened the session with).
 */
export const lateFirstRefused = "sometimes: a late copy of a first request refused at level 3";
/** Feature level 3: a session the service opened was evicted (and is never opened again). */
export const openedEvicted = "sometimes: a session the service opened was evicted";

/**
 * Feature level 4: an append refused at execution because its whole would be over the value limit
 * in bytes of UTF-8 (spec/kv.ts `valueBytesMax`), within the bound in code units that the levels
 * below apply: the rule level 4 adds.
 */
export const appendBytesRefused = "sometimes: an append over 1 MiB of UTF-8 refused at level 4";
/**
 * Below feature level 4: an append executed whose whole is over 1 MiB of UTF-8 (within the bound in
 * code units): what a log chosen before the raise to 4 must still execute.
 */
export const appendBytesRan = "sometimes: an append over 1 MiB of UTF-8 executed below level 4";

/** A snapshot was taken of a session table that had evicted a session (feature level 2). */
export const evictionInSnapshot = "sometimes: snapshot taken after a session was evicted";
/** A state transfer installed a session table that had evicted a session (feature level 2). */
export const evictionTransferred = "sometimes: state transfer installed a session table with evictions";

/**
 * `x` as JSON with every string longer than 64 code units cut to its first 32 and its length, for
 * reports: a value near the value limit is a megabyte.
 */
function brief(x: unknown): string {
  return JSON.stringify(x, (_key, v: unknown) =>
    typeof v === "string" && v.length > 64 ? `${v.slice(0, 32)}... (${v.length} code units)` : v,
  );
}

/**
 * The value limit's rare states, for a key-value store's append (spec/kv.ts; any other
 * application's inputs are not appends): refused by bytes at level 4, or over 1 MiB of UTF-8 and
 * executed below it. Null for anything else.
 */
function valueLimitMet(input: unknown, output: unknown, level: number): string | null {
  if ((input as { _tag?: unknown } | null)?._tag !== "append") return null;
  const o = output as { _tag?: unknown; unit?: unknown; value?: unknown } | null;
  if (level >= featureLevelValueBytes) return o?._tag === "too-large" && o.unit === "bytes" ? appendBytesRefused : null;
  if (o?._tag !== "value" || typeof o.value !== "string" || o.value.length * 3 <= valueBytesMax) return null;
  return utf8Length(o.value) > valueBytesMax ? appendBytesRan : null;
}

/** True when `x` is, or holds at any depth, a string of `longTextChars` or more. */
function holdsLongText(x: unknown): boolean {
  if (typeof x === "string") return x.length >= longTextChars;
  if (typeof x !== "object" || x === null) return false;
  return Object.values(x).some(holdsLongText);
}

/** The Service ghost: the spec run over the chosen prefix. */
export class ServiceGhost<S, I, O> {
  readonly service: Service<S, I, O>;
  /** Slots 1..prefix are chosen; their commands are the executed sequence. */
  prefix = 0;
  state: ServiceState<S, O>;
  /**
   * Digest of the spec's service state after each slot of the prefix, held (proofs/held.ts
   * `heldText`): it names every session's last output, an append's whole value among them.
   */
  private digestAt: string[] = [""];
  private executedAt: number[] = [0];
  /** "client#seq" -> its first execution. */
  private executions = new Map<string, SpecExecution<O>>();
  /** The ids of the sessions the spec opened (level 3), and those answered to a client so far. */
  private opened = new Set<string>();
  private openAnswered = new Set<string>();
  /** The last requests applied, for reports: "slot 3: Apply(c1#2 ...) -> output". */
  private recent: string[] = [];
  /** The four tables above are shared with a fork (or the ghost forked from): copy them before a change. */
  private borrowed = false;
  /** The highest slot whose effect some client has observed (an acknowledged write, a lease read). */
  observedSlot = 0;

  constructor(
    readonly app: Application<S, I, O>,
    private readonly chosenValue: (slot: number) => Value<I> | undefined,
    private readonly tally: Tally,
    /** The service spec over `app` and the digest of its start, when at hand (a fork shares its parent's). */
    shared?: { readonly service: Service<S, I, O>; readonly startDigest: string },
    /**
     * The value of replica index `a`'s durable vote record that a value at rest in its log names
     * (impl/core/at-rest.ts), or undefined when it has no such record. Default: none has.
     */
    private readonly durableVote: (a: number, stored: StoredValue) => Value<I> | undefined = () => undefined,
  ) {
    this.service = shared?.service ?? serviceOf(app);
    this.state = this.service.start;
    this.digestAt[0] = shared?.startDigest ?? heldText(this.digest(this.state));
  }

  /** What a fork may share: the service spec and the digest of its start state. */
  get shared(): { readonly service: Service<S, I, O>; readonly startDigest: string } {
    return { service: this.service, startDigest: this.digestAt[0]! };
  }

  /**
   * Take over `other`'s prefix, spec state and executions (the explorer forks the checker; see VotingGhost.copyFrom).
   */
  copyFrom(other: ServiceGhost<S, I, O>): void {
    this.prefix = other.prefix;
    this.state = other.state;
    // Copy on write: most steps execute nothing, and a fork per explored state must not copy the
    // tables of the whole prefix. Both ghosts copy them before their next change (`own`).
    this.digestAt = other.digestAt;
    this.executedAt = other.executedAt;
    this.executions = other.executions;
    this.opened = other.opened;
    this.openAnswered = other.openAnswered;
    this.recent = other.recent;
    this.borrowed = other.borrowed = true;
    this.observedSlot = other.observedSlot;
  }

  /** Make the tables this ghost's own to change (copied if a fork shares them). */
  private own(): void {
    if (!this.borrowed) return;
    this.digestAt = this.digestAt.slice();
    this.executedAt = this.executedAt.slice();
    this.executions = new Map(this.executions);
    this.opened = new Set(this.opened);
    this.openAnswered = new Set(this.openAnswered);
    this.recent = this.recent.slice();
    this.borrowed = false;
  }

  /**
   * A service state's fingerprint: application digest, requests executed, session table (with each
   * session's place in the eviction order), and above feature level 1 the level, bounds and evictions.
   */
  digest(s: ServiceState<S, O>): string {
    const sessions = sessionsOf(s)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([c, x]) => `${c}#${x.seq}${x.at === undefined ? "" : `@${x.at}`}:${x.command}=${JSON.stringify(x.output)}`);
    const f = s.features;
    const features =
      f === undefined
        ? ""
        : `|level ${f.level} max ${f.sessionsMax}/${f.outputBytesMax} evicted ${f.evicted}${f.opened === undefined ? "" : ` opened ${f.opened}`}`;
    return `${this.app.digest(s.app)}|${s.executed}|${sessions.join(",")}${features}`;
  }

  /** A slot was chosen: extend the prefix as far as it is contiguous, applying each request to the spec. */
  chosen(_slot: number): void {
    for (;;) {
      const value = this.chosenValue(this.prefix + 1);
      if (value === undefined) return;
      this.own();
      this.prefix++;
      if (value._tag === "batch") {
        for (const c of value.commands) this.applyCommand(c.clientId, c.seq, c.input);
      } else if (value._tag === "open") {
        for (let i = 0; i < value.count; i++) this.applyOpen();
      } else if (value._tag === "features" && featuresMisfit(value.level, value) === null) {
        const evicted = this.state.features?.evicted ?? 0;
        const bounds = { sessionsMax: value.sessionsMax, outputBytesMax: value.outputBytesMax };
        this.state = raiseFeatures(this.state, value.level, bounds);
        this.tally.add("Service: RaiseFeatures");
        if ((this.state.features?.evicted ?? 0) > evicted) this.tally.add(sessionEvicted);
      }
      this.digestAt[this.prefix] = heldText(this.digest(this.state));
      this.executedAt[this.prefix] = this.state.executed;
    }
  }

  /** The Service's abstract state, for reports: the chosen prefix, the count, the digest, the last requests. */
  show(): string {
    return [
      `/\\ executed sequence = the commands of slots 1..${this.prefix} (${this.state.executed} requests)`,
      `/\\ state = ${this.digest(this.state)}`,
      ...this.recent.map((r) => `   ${r}`),
    ].join("\n");
  }

  private note(line: string): void {
    if (this.recent.length >= 6) this.recent.shift();
    this.recent.push(line);
  }

  /** One open-session request of an `open` value: the spec opens the next id (level 3), or nothing below it. */
  private applyOpen(): void {
    const evicted = this.state.features?.evicted ?? 0;
    const before = this.state;
    const applied = openSession(this.state);
    this.state = applied.state;
    if ((this.state.features?.evicted ?? 0) > evicted) this.noteEvictions(before);
    if (applied.output._tag === "opened") {
      this.opened.add(applied.output.clientId);
      this.note(`slot ${this.prefix}: OpenSession -> ${applied.output.clientId}`);
      this.tally.add("Service: OpenSession");
    } else this.tally.add("Service: OpenSession (below level 3: a stutter of the state)");
  }

  /** Count the evictions of the step from `before` to the current state: any, and one of an opened session. */
  private noteEvictions(before: ServiceState<S, O>): void {
    this.tally.add(sessionEvicted);
    // Evictions take the least recent first: walk the order from its start while the sessions are gone.
    const links = before.features?.links;
    for (let id = before.features?.oldest; id !== undefined && links !== undefined; id = pmGet(links, id)?.newer) {
      if (sessionOf(this.state, id) !== undefined) return;
      if (openedNumber(id) !== null) return this.tally.add(openedEvicted);
    }
  }

  /**
   * RepliesMatchSpec for the answer to an open-session request: a `session-opened` names a session
   * the spec opened in the executed sequence, and no two requests are answered the same id (each
   * open-session request is executed once, in one slot, and gets its own id).
   */
  openAnswer(result: ClientResult<O>): void {
    if (result._tag !== "session-opened") return;
    const id = result.clientId;
    if (!this.opened.has(id) || this.openAnswered.has(id)) {
      violated({
        check: "RepliesMatchSpec",
        level: "Service",
        before: this.show(),
        message: this.opened.has(id)
          ? `session ${id} was answered to two open-session requests`
          : `an open-session request was answered ${id}, which the spec has not opened in the executed sequence (chosen prefix ends at slot ${this.prefix})`,
        action: "OpenSession",
      });
    }
    this.own();
    this.openAnswered.add(id);
  }

  private applyCommand(clientId: string | undefined, seq: number | undefined, input: I): void {
    if (clientId === undefined || seq === undefined) {
      // A one-shot request: a session of its own that is never retried.
      const level = featureLevelOf(this.state);
      const applied = this.app.apply(input, this.state.app, level);
      this.state = { ...this.state, app: applied.state, executed: this.state.executed + 1 };
      this.tally.add("Service: Apply (one-shot)");
      const met = valueLimitMet(input, applied.output, level);
      if (met !== null) this.tally.add(met);
      return;
    }
    const evicted = this.state.features?.evicted ?? 0;
    const before = this.state;
    const applied = this.service.apply({ clientId, seq, input }, this.state);
    this.state = applied.state;
    if (applied.output._tag === "executed") {
      const met = valueLimitMet(input, applied.output.output, featureLevelOf(before));
      if (met !== null) this.tally.add(met);
    }
    if ((this.state.features?.evicted ?? 0) > evicted) this.noteEvictions(before);
    if (applied.output._tag === "expired" && seq === 1 && this.executions.has(`${clientId}#1`))
      if (featureLevelOf(before) >= featureLevelSessionsOpened) this.tally.add(lateFirstRefused);
    if (applied.output._tag === "executed") {
      this.executions.set(`${clientId}#${seq}`, {
        slot: this.prefix,
        command: commandDigest(input, this.app.textHash ?? null),
        output: digestLarge(applied.output.output),
      });
      this.note(`slot ${this.prefix}: Apply(${clientId}#${seq} ${brief(input)}) -> ${brief(applied.output.output)}`);
      this.tally.add("Service: Apply");
      if (this.app.textHash != null && holdsLongText(input)) this.tally.add(longValueFolded);
    } else {
      this.tally.add(`Service: Apply (${applied.output._tag}: a stutter of the state)`);
    }
  }

  /** RepliesMatchSpec for one reply replica index `replica` gave (in effect order). */
  reply(c: Carried<I, O> & { _tag: "Reply" }): void {
    const { request, result } = c;
    if (request.seq === undefined) return;
    const id = `${request.clientId}#${request.seq}`;
    if (result._tag === "ok") {
      const e = this.executions.get(id);
      if (e === undefined) {
        violated({
          check: "RepliesMatchSpec",
          level: "Service",
          before: this.show(),
          message: `${id} was acknowledged (${JSON.stringify(result.output)}) but is not in the executed sequence (chosen prefix ends at slot ${this.prefix})`,
        });
      }
      if (e.command !== commandDigest(request.input, this.app.textHash ?? null)) {
        violated({
          check: "ExactlyOnce",
          level: "Service",
          before: this.show(),
          message: `${id} ${JSON.stringify(request.input)} was acknowledged (${JSON.stringify(result.output)}), but the command executed under ${id} (at slot ${e.slot}) is another one: this one never ran`,
          action: `Apply(${id}) -> reused`,
        });
      }
      if (!sameHeld(e.output, result.output, (a, b) => this.app.outputsEqual(a, b))) {
        violated({
          check: "RepliesMatchSpec",
          level: "Service",
          before: this.show(),
          message: `${id} was answered ${brief(result.output)}, but the service spec's output for it (executed at slot ${e.slot}) is ${brief(e.output)}`,
          action: `Apply(${id}) -> ${brief(e.output)}`,
        });
      }
      if (e.slot > this.observedSlot) this.observedSlot = e.slot;
      return;
    }
    if (result._tag === "seq-reused") {
      const e = this.executions.get(id);
      if (
        e === undefined ||
        e.command === commandDigest(request.input, this.app.textHash ?? null) ||
        result.seq !== request.seq
      ) {
        violated({
          check: "RepliesMatchSpec",
          level: "Service",
          before: this.show(),
          message: `${id} was refused as reusing its sequence number, but ${e === undefined ? `nothing was executed under ${id}` : `the command executed under ${id} is this very one`}`,
        });
      }
      this.tally.add("sometimes: reused sequence number refused");
      return;
    }
    if (result._tag === "session-expired") {
      // Only feature level 2 answers it, and only to a client without a session.
      const session = sessionOf(this.state, request.clientId);
      if (this.state.features === undefined || (session !== undefined && session.seq <= request.seq)) {
        violated({
          check: "RepliesMatchSpec",
          level: "Service",
          before: this.show(),
          message: `${id} was refused as session-expired, but ${this.state.features === undefined ? "the spec's feature level is 1, which keeps every session" : `the spec's session for ${request.clientId} is at ${session?.seq}`}`,
        });
      }
      this.tally.add(retryExpired);
      return;
    }
    if (result._tag === "stale-seq") {
      const session = sessionOf(this.state, request.clientId);
      if (session === undefined || session.seq <= request.seq) {
        violated({
          check: "RepliesMatchSpec",
          level: "Service",
          before: this.show(),
          message: `${id} was refused as stale (last ${result.lastSeq}), but the spec's session for ${request.clientId} is at ${session?.seq ?? "none"}`,
        });
      }
    }
  }

  /** ExecutedPrefixAgreement, ExactlyOnce, DigestAgreement for a replica whose executed prefix may have grown. */
  executed(
    replica: number,
    before: ReplicaState<S, I, O> | null,
    after: ReplicaState<S, I, O>,
    recovered: boolean,
  ): void {
    const from = recovered || before === null ? 0 : before.learner.executedUpTo;
    const to = after.learner.executedUpTo;
    if (to === from && !recovered) return;
    if (to < from)
      violated({
        check: "ExecutedPrefixAgreement",
        level: "Service",
        message: `replica index ${replica} un-executed slots ${to + 1}..${from}`,
      });
    for (let slot = from + 1; slot <= to; slot++) {
      const held = slotMapGet(after.learner.log, slot);
      // A value at rest is the value of the vote record it names, which must be durable.
      const mine = held === undefined || !isStored(held) ? held : this.durableVote(replica, held);
      if (held !== undefined && mine === undefined)
        violated({
          check: "ValueAtRestDurable",
          level: "Service",
          message: `replica index ${replica} holds slot ${slot} at rest in its vote record in ballot ${showBallot((held as StoredValue).ballot)}, but no such vote record is durable`,
        });
      // A slot the replica's log does not hold at or below its snapshot (it came with the snapshot,
      // its log was cut below one, or its chosen record was lost in a crash) is vouched for by the
      // snapshot, which SnapshotMatchesSpec checks, and by the digest of the state after it, below.
      if (mine === undefined && slot <= (after.learner.snapshot?.slot ?? 0)) continue;
      // Either may be held by its digest (proofs/held.ts): the chosen value once applied, a value at rest's vote.
      const chosen = this.chosenValue(slot);
      if (slot > this.prefix || chosen === undefined || mine === undefined || !sameHeld(mine, chosen, valuesEqual)) {
        violated({
          check: "ExecutedPrefixAgreement",
          level: "Service",
          before: this.show(),
          message: `replica index ${replica} executed slot ${slot} (${JSON.stringify(mine)}), but ${chosen === undefined ? "nothing is chosen there" : `the chosen value is ${JSON.stringify(chosen)}`} (chosen prefix: 1..${this.prefix})`,
        });
      }
    }
    const executed = after.learner.service.executed;
    if (executed !== this.executedAt[to]) {
      violated({
        check: "ExactlyOnce",
        level: "Service",
        before: this.show(),
        after: `replica index ${replica} after slot ${to}: ${this.digest(after.learner.service)}`,
        message: `replica index ${replica} executed ${executed} requests in slots 1..${to}; the service spec, which executes each (client, seq) once, executed ${this.executedAt[to]}`,
      });
    }
    const mine = this.digest(after.learner.service);
    if (heldText(mine) !== this.digestAt[to]) {
      violated({
        check: "DigestAgreement",
        level: "Service",
        message: `replica index ${replica}'s service state after slot ${to} differs from the spec's`,
        before: `spec:    ${this.digestAt[to]}`,
        after: `replica: ${mine}`,
      });
    }
  }

  /**
   * The spec's service state digest after the chosen prefix 1..slot, held (`heldText`: compare it
   * with a held digest), or undefined beyond the prefix.
   */
  digestAfter(slot: number): string | undefined {
    return slot <= this.prefix ? this.digestAt[slot] : undefined;
  }

  /** The output the spec gives a session request, if it has executed. */
  executionOf(clientId: string, seq: number): SpecExecution<O> | undefined {
    return this.executions.get(`${clientId}#${seq}`);
  }
}

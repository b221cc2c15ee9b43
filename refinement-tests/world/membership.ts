/**
 * Membership in the simulated world: where a replica listens, whether a replica's log carries
 * another's address, and the operator's tool (`Operator`): the changes it asked for with their
 * answers, and how it follows an add with its promotion or replacement. Asking a replica is the
 * world's.
 */
import type { KvOutput } from "../../spec/kv.ts";
import type { ClientResult, ConfigChange } from "../../impl/core/testing/index.ts";
import { hashOf, type Hasher, valueHash, type Hash64 } from "../explorer/hash.ts";
import type { KvReplicaState } from "./world.ts";

/** How often the operator's tool asks again for the change that follows an add, ms of true time. */
export const followUpRetryMs = 200;
/** How many times it asks before giving up. */
export const followUpTriesMax = 25;

/** Where replica `id` listens, in the world (opaque texts, as the runtime's HOST:PORT). */
export function addressOfReplica(id: number): { peer: string; http: string } {
  return { peer: `r${id}:7000`, http: `r${id}:8000` };
}

/** Does `state` hold a configuration that carries the address of replica `id`? */
export function knowsFromLog(state: KvReplicaState | null, id: number): boolean {
  if (state === null) return false;
  for (const c of state.learner.configs) for (const a of c.addresses) if (a.replica === id) return true;
  return false;
}

/** A membership change the operator asked for, and the answer once given. */
export interface ChangeAsked {
  readonly change: ConfigChange;
  result: ClientResult<KvOutput> | null;
}

/** What the operator's tool still has to do after an add. */
interface FollowUp {
  /** What is left to do, in order: the add (until it is made), then the promotion or replacement. */
  readonly changes: ConfigChange[];
  /** The request asking for `changes[0]`, if one was sent since the last step was made. */
  requestId: number | null;
  /** When it asks next, true time. */
  tryAt: number;
  triesLeft: number;
}

/**
 * The operator's tool, as `members add` and `members replace` run it: every membership change it
 * asked for (by request id) with the answer once given, and after an add, the change that
 * follows it (promote the new replica, or swap it for a voter), asked again every
 * `followUpRetryMs` until it is made or refused for good, at most `followUpTriesMax` times.
 */
export class Operator {
  /** Membership changes asked for, by request id: the change and the answer (once given). */
  readonly changes = new Map<number, ChangeAsked>();
  private followUp: FollowUp | null = null;
  /** `hash()`, kept until the tool changes (`changed`). */
  private hashed: Hash64 | null = null;

  /** An independent copy. */
  copy(): Operator {
    const out = new Operator();
    for (const [id, c] of this.changes) out.changes.set(id, { change: c.change, result: c.result });
    out.followUp = this.followUp === null ? null : { ...this.followUp, changes: this.followUp.changes.slice() };
    return out;
  }

  /** The tool is about to change (its owner calls this first): its hash is computed again when next asked for. */
  changed(): void {
    this.hashed = null;
  }

  /** Has the tool a change left to ask for (the step after an add, or the add again)? */
  followingUp(): boolean {
    return this.followUp !== null;
  }

  /** Is a change due at true time `now` (`due` would ask for it, or end the follow-up)? */
  dueBy(now: number): boolean {
    return this.followUp !== null && now >= this.followUp.tryAt;
  }

  /**
   * The newest configuration an answer told the operator of (`reconfigured`: chosen at `epoch`),
   * or null. A leader elected since, or one deposed without knowing it, may not have executed it.
   */
  newestAnswered(): {
    readonly epoch: number;
    readonly voters: readonly number[];
    readonly learners: readonly number[];
  } | null {
    let newest: { epoch: number; voters: readonly number[]; learners: readonly number[] } | null = null;
    for (const { result } of this.changes.values())
      if (result?._tag === "reconfigured" && (newest === null || result.epoch > newest.epoch)) newest = result;
    return newest;
  }

  /** Change `change` was asked for in request `requestId`. */
  asked(requestId: number, change: ConfigChange): void {
    this.hashed = null;
    this.changes.set(requestId, { change, result: null });
  }

  /** Request `requestId` was answered `result`; false when it was no membership change. */
  answered(requestId: number, result: ClientResult<KvOutput>): boolean {
    this.hashed = null;
    const change = this.changes.get(requestId);
    if (change === undefined) return false;
    change.result = result;
    return true;
  }

  /** After asking for `add` in request `requestId` at `now`: go on with `then` once it is made. */
  followAdd(add: ConfigChange, then: ConfigChange, requestId: number, now: number): void {
    this.hashed = null;
    this.followUp = { changes: [add, then], requestId, tryAt: now + followUpRetryMs, triesLeft: followUpTriesMax };
  }

  /**
   * At true time `now`: the change the tool asks the current leader for, if it is time to ask
   * (the add again while no answer came, or the step after it), or null. A refusal other than "has
   * not caught up" (a learner is asked again later), or too many tries, ends the follow-up.
   */
  due(now: number): ConfigChange | null {
    this.hashed = null;
    const plan = this.followUp;
    if (plan === null || now < plan.tryAt) return null;
    const result = plan.requestId === null ? null : (this.changes.get(plan.requestId)?.result ?? null);
    if (result?._tag === "reconfigured") {
      plan.changes.shift();
      plan.requestId = null;
    } else if (result?._tag === "refused" && !/has not caught up/.test(result.reason)) {
      this.followUp = null;
      return null;
    }
    if (plan.changes.length === 0 || plan.triesLeft === 0) {
      this.followUp = null;
      return null;
    }
    plan.tryAt = now + followUpRetryMs;
    plan.triesLeft--;
    // An answer is awaited and may still come: ask again only every fourth try.
    if (plan.requestId !== null && result === null && plan.triesLeft % 4 !== 0) return null;
    return plan.changes[0]!;
  }

  /** The change `due` gave was made already (an add whose answer was lost with a leader): go on with the next. */
  skip(): void {
    this.hashed = null;
    this.followUp!.changes.shift();
    this.followUp!.requestId = null;
  }

  /** The change `due` gave was asked for in request `requestId`. */
  asking(requestId: number): void {
    this.hashed = null;
    this.followUp!.requestId = requestId;
  }

  /** The hash of the changes asked for, their answers and what the tool has yet to ask (kept until `changed`). */
  hash(): Hash64 {
    return (this.hashed ??= hashOf((h) => this.hashInto(h)));
  }

  private hashInto(h: Hasher): void {
    h.num(this.changes.size);
    for (const [id, c] of this.changes) {
      h.num(id);
      h.hash(valueHash(c.change));
      h.hash(valueHash(c.result));
    }
    const plan = this.followUp;
    if (plan === null) h.word(0);
    else {
      h.num(plan.changes.length);
      for (const change of plan.changes) h.hash(valueHash(change));
      h.num(plan.requestId ?? -1);
      h.num(plan.tryAt);
      h.num(plan.triesLeft);
    }
  }
}

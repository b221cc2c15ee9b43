/**
 * The simulated world's clients: each operation as the linearizability checker and the reports
 * see it, and what a client keeps between operations (its sequence numbers, its guess of the
 * leader, the values it saw).
 */
import type { KvInput, KvOutput } from "../../spec/kv.ts";

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
}

/** Client `c` saw `value` under `key`: a new map, since copies of the world share the old one. */
export function see(c: ClientSlot, key: string, value: string | null): void {
  c.seen = new Map(c.seen).set(key, value);
}

/**
 * The simulated world's network: what is in flight (replica messages and client requests, each
 * an immutable entry), the cut links, the fault armed for the next state-transfer chunk and the
 * message ids (`Network`); the content hash the explorer counts entries by, and the corrupted
 * copy of a state-transfer chunk that a fault puts in flight.
 */
import type { KvInput } from "../../spec/kv.ts";
import type { Message } from "../../impl/core/testing/index.ts";
import { Hasher, memoizedHash, valueHash, type Hash64 } from "../explorer/hash.ts";

/** A message in flight between replicas, or a client request on its way to a replica. */
export type InFlight =
  | {
      readonly id: number;
      readonly kind: "message";
      readonly from: number;
      readonly to: number;
      readonly message: Message<KvInput>;
    }
  /** A client request (`requestId` in the world's request table); client links are never cut. */
  | { readonly id: number; readonly kind: "request"; readonly to: number; readonly requestId: number };

/** A message in flight without its id (a name only): the content a world's hash counts. */
export function inFlightHash(m: InFlight): Hash64 {
  // Entries in flight are immutable (a fault replaces one, never edits it): their hashes are kept.
  return memoizedHash(m, hashInFlight);
}

function hashInFlight(m: InFlight): Hash64 {
  const h = new Hasher();
  h.num(m.to);
  if (m.kind === "request") {
    h.word(1);
    h.num(m.requestId);
  } else {
    h.word(2);
    h.num(m.from);
    h.hash(valueHash(m.message));
  }
  return h.done();
}

/** A chunk with one byte changed: its last digit, so the JSON stays well-formed and only the digests can tell. */
export function corrupted(message: Message<KvInput>): Message<KvInput> {
  if (message._tag !== "SnapshotChunk") return message;
  const data = message.data;
  let at = data.length - 1;
  while (at > 0 && !/[0-9]/.test(data[at]!)) at--;
  const digit = /[0-9]/.test(data[at]!) ? String((Number(data[at]) + 1) % 10) : "x";
  return { ...message, data: data.slice(0, at) + digit + data.slice(at + 1) };
}

/** Where the network counts its rare events (the world: an object, so that a copy makes no closure). */
export interface Tally {
  count(name: string): void;
}

/** A fault armed for the next state-transfer chunk sent: it is lost, or has a byte changed. */
export type ChunkFault = "dropChunk" | "corruptChunk";

/**
 * The links between replicas: what is in flight (in the order sent), which directed links are
 * cut, the fault armed for the next state-transfer chunk, and the ids that name messages. It
 * knows nothing of replicas beyond their indices: whether a receiver is paused or knows an
 * address is the world's to judge. `tally` counts the rare events (a message lost to a full
 * network, a chunk lost or corrupted).
 */
export class Network {
  private readonly messages: InFlight[];
  private readonly blocked: boolean[];
  private blockedCount: number;
  private armed: ChunkFault | null;
  private nextMessageId: number;

  /** Links among `total` replicas, at most `max` entries in flight; with `from`, a copy of that network. */
  constructor(
    private readonly total: number,
    private readonly max: number,
    private readonly tally: Tally,
    from?: Network,
  ) {
    this.messages = from === undefined ? [] : from.messages.slice();
    this.blocked = from === undefined ? new Array<boolean>(total * total).fill(false) : from.blocked.slice();
    this.blockedCount = from?.blockedCount ?? 0;
    this.armed = from?.armed ?? null;
    this.nextMessageId = from?.nextMessageId ?? 1;
  }

  /** An independent copy (entries in flight are immutable and shared), counting into `tally`. */
  copy(tally: Tally): Network {
    return new Network(this.total, this.max, tally, this);
  }

  /** The id the next entry put in flight will have (ids grow with every send). */
  get nextId(): number {
    return this.nextMessageId;
  }

  /** What is in flight, oldest first. */
  get inFlight(): readonly InFlight[] {
    return this.messages;
  }

  /** Is the link from replica index `a` to `b` cut? */
  linkBlocked(a: number, b: number): boolean {
    return this.blocked[a * this.total + b]!;
  }

  /** Is some link cut? */
  anyLinkBlocked(): boolean {
    return this.blockedCount > 0;
  }

  /** Cut (or restore) the link from replica index `a` to `b`. */
  private setBlocked(a: number, b: number, value: boolean): void {
    const k = a * this.total + b;
    if (this.blocked[k] === value) return;
    this.blocked[k] = value;
    this.blockedCount += value ? 1 : -1;
  }

  /** Cut the link from `a` to `b` and, unless `oneWay`, the one back. */
  cut(a: number, b: number, oneWay: boolean): void {
    this.setBlocked(a, b, true);
    if (!oneWay) this.setBlocked(b, a, true);
  }

  /** A symmetric partition: cut both ways every link between `side` and the rest of `among`. */
  partition(side: ReadonlySet<number>, among: readonly number[]): void {
    for (const x of side) {
      for (const o of among) {
        if (side.has(o)) continue;
        this.setBlocked(x, o, true);
        this.setBlocked(o, x, true);
      }
    }
  }

  /** A bridge: `hub` keeps its links to `keep` alone among `among`; its others are cut both ways. */
  bridge(hub: number, keep: number, among: readonly number[]): void {
    for (const o of among) {
      if (o === hub || o === keep) continue;
      this.setBlocked(hub, o, true);
      this.setBlocked(o, hub, true);
    }
  }

  /** Restore every link. */
  healAll(): void {
    this.blocked.fill(false);
    this.blockedCount = 0;
  }

  /** The fault armed for the next state-transfer chunk sent, if any. */
  get chunkFaultArmed(): ChunkFault | null {
    return this.armed;
  }

  /** Arm `kind` for the next state-transfer chunk sent. */
  armChunkFault(kind: ChunkFault): void {
    this.armed = kind;
  }

  /**
   * Put replica message `message` from `from` to `to` in flight, unless the armed chunk fault
   * takes it (or changes a byte of it) or the network is full. The caller has checked the link.
   */
  send(from: number, to: number, message: Message<KvInput>): void {
    if (message._tag === "SnapshotChunk" && this.armed !== null) {
      const fault = this.armed;
      this.armed = null;
      if (fault === "dropChunk") {
        this.tally.count("state-transfer chunk lost");
        return;
      }
      message = corrupted(message);
      this.tally.count("state-transfer chunk corrupted");
    }
    if (this.messages.length >= this.max) {
      this.tally.count("message lost to a full network");
      return;
    }
    this.messages.push({ id: this.nextMessageId++, kind: "message", from, to, message });
  }

  /** Put client request `requestId` to replica index `to` in flight; false when the network is full. */
  sendRequest(to: number, requestId: number): boolean {
    if (this.messages.length >= this.max) {
      this.tally.count("message lost to a full network");
      return false;
    }
    this.messages.push({ id: this.nextMessageId++, kind: "request", to, requestId });
    return true;
  }

  /** Take the entry at position `k` out of flight. */
  removeAt(k: number): void {
    this.messages.splice(k, 1);
  }

  /** Take entry `m` out of flight. */
  remove(m: InFlight): void {
    this.messages.splice(this.messages.indexOf(m), 1);
  }

  /** Replace the entry at position `k` (a fault changed it: entries are never edited in place). */
  replaceAt(k: number, m: InFlight): void {
    this.messages[k] = m;
  }

  /** The state-transfer chunks in flight, with their positions in `inFlight`. */
  chunksInFlight(): number[] {
    const out: number[] = [];
    this.messages.forEach((m, k) => {
      if (m.kind === "message" && m.message._tag === "SnapshotChunk") out.push(k);
    });
    return out;
  }

  /**
   * Feed what decides the network's future into `h`: the multiset of entries in flight (their
   * order and ids are only names), the cut links and the armed chunk fault.
   */
  hashInto(h: Hasher): void {
    const messages = this.messages.map((m) => inFlightHash(m));
    messages.sort((x, y) => x.a - y.a || x.b - y.b);
    h.num(messages.length);
    for (const m of messages) h.hash(m);
    for (let k = 0; k < this.blocked.length; k++) if (this.blocked[k]) h.num(k);
    h.str(this.armed ?? "-");
  }
}

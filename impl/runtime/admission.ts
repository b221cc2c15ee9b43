/**
 * Admission control for client requests: a bound on the requests and on the request bytes one
 * replica holds at once. A request beyond either bound is refused before its body is read, with
 * `429` and a hint of when to retry, instead of being accepted as work the replica could not finish
 * in time (bodies would pile up in memory, batches would grow, and the peer traffic that keeps the
 * lease alive would wait behind them). Shedding load at the door keeps an overloaded replica a
 * leader (Bronson et al., "Metastable failures in distributed systems", HotOS 2021).
 *
 * A request beyond the byte bound alone may wait for room instead (`wait`, up to `waitMsMax`): its
 * body stays unread, in the client (which sent `Expect: 100-continue`) or in the kernel's socket
 * buffers, not in the replica's memory, and it is admitted in arrival order as answers free room.
 * It never touches a socket; its only clock is the wait's timer.
 *
 * Small requests (a body under `smallBytesMax`, 64 KiB: reads, small writes, sessions) have room
 * of their own, `smallBytesReserve`, besides the byte bound, and a queue of their own: a burst of
 * large bodies that fills the byte bound never makes a small write wait behind it. A small request
 * takes the reserve first, and room within the byte bound only when no large request waits for it.
 */

/** Client connections a replica keeps open at once, by default (`--http-connections-max`). */
export const httpConnectionsMaxDefault = 4096;

/**
 * Requests a replica's driver holds before it refuses more as overloaded (503): the client requests
 * admission lets in plus room for the members API's, which admission does not count. Above the
 * admission bound, so that a request admitted is never refused behind it: a client beyond the
 * bound gets 429 with a retry hint, not a 503.
 */
export function driverRequestsPendingMax(requestsInFlightMax: number): number {
  return requestsInFlightMax + 64;
}

/** Options of {@link Admission}. Limits state their defaults. */
export interface AdmissionOptions {
  /** Client requests held at once (reading the body, queued, proposed, awaiting the answer). Default 1024. */
  readonly requestsInFlightMax?: number;
  /**
   * Bytes of request bodies held at once, in bytes, besides the small requests' reserve. Default
   * 4 MiB: four maximal (1 MiB) values, each of which costs a few copies of itself in memory while
   * it is decoded, proposed and written, keep the leader's pipeline as busy in bursts of them as
   * sixteen did, with a lower peak (docs/performance.md, "Small requests pass large ones").
   */
  readonly bytesInFlightMax?: number;
  /**
   * A request whose body is shorter than this, in bytes, is small: it is admitted against
   * `smallBytesReserve` first and waits in a queue of its own. Default 64 KiB; 0: no request is
   * small, and every one shares the byte bound in arrival order.
   */
  readonly smallBytesMax?: number;
  /** Bytes of small requests' bodies held at once beyond `bytesInFlightMax`, in bytes. Default 1 MiB. */
  readonly smallBytesReserve?: number;
  /** The retry hint given with a refusal, in milliseconds. Default 100. */
  readonly retryAfterMs?: number;
  /**
   * How long a request beyond the byte bound waits for room (`wait`), its body unread, before it
   * is refused, in milliseconds. Default 1000; 0 refuses at once. At most `requestsInFlightMax`
   * requests wait at once; any more are refused at once.
   */
  readonly waitMsMax?: number;
}

/** Why a request was refused. */
export type AdmissionRefusal = {
  readonly reason: "requests" | "bytes";
  readonly message: string;
  readonly retryAfterMs: number;
};

/** A request admitted: release it exactly once, when its answer has been sent (or it failed). */
export interface AdmissionTicket {
  release(): void;
}

/** Counts the client requests and bytes a replica holds; admits or refuses each new one. */
export class Admission {
  readonly requestsInFlightMax: number;
  readonly bytesInFlightMax: number;
  readonly retryAfterMs: number;
  readonly waitMsMax: number;
  readonly smallBytesMax: number;
  readonly smallBytesReserve: number;
  private requests = 0;
  /** Bytes held within `bytesInFlightMax` (large requests, and small ones beyond the reserve). */
  private bytes = 0;
  /** Bytes of small requests held within `smallBytesReserve`. */
  private reserved = 0;
  private readonly refused = { requests: 0, bytes: 0 };
  /** Large requests waiting for room, in arrival order. */
  private readonly waiting: Waiter[] = [];
  /** Small requests waiting for room, in arrival order. */
  private readonly waitingSmall: Waiter[] = [];

  constructor(options: AdmissionOptions = {}) {
    this.requestsInFlightMax = options.requestsInFlightMax ?? 1024;
    this.bytesInFlightMax = options.bytesInFlightMax ?? 4 * 1024 * 1024;
    this.retryAfterMs = options.retryAfterMs ?? 100;
    this.waitMsMax = options.waitMsMax ?? 1000;
    this.smallBytesMax = options.smallBytesMax ?? 64 * 1024;
    this.smallBytesReserve = options.smallBytesReserve ?? 1024 * 1024;
    if (!(Number.isInteger(this.smallBytesMax) && this.smallBytesMax >= 0))
      throw new Error(`smallBytesMax (${this.smallBytesMax}) must be a non-negative integer`);
    if (!(Number.isInteger(this.smallBytesReserve) && this.smallBytesReserve >= 0))
      throw new Error(`smallBytesReserve (${this.smallBytesReserve}) must be a non-negative integer`);
    if (!(Number.isInteger(this.waitMsMax) && this.waitMsMax >= 0))
      throw new Error(`waitMsMax (${this.waitMsMax}) must be a non-negative integer`);
    if (!(Number.isInteger(this.requestsInFlightMax) && this.requestsInFlightMax >= 1))
      throw new Error(`requestsInFlightMax (${this.requestsInFlightMax}) must be a positive integer`);
    if (!(Number.isInteger(this.bytesInFlightMax) && this.bytesInFlightMax >= 1))
      throw new Error(`bytesInFlightMax (${this.bytesInFlightMax}) must be a positive integer`);
  }

  /**
   * Admit a request whose body is `bytes` long, or refuse it. A request larger than the whole byte
   * budget is admitted when nothing else is held, so that every request within the body limit can
   * get through an idle replica. A small request takes the reserve, or else room within the byte
   * bound when no large request waits for it.
   */
  admit(bytes: number): AdmissionTicket | AdmissionRefusal {
    if (this.requests >= this.requestsInFlightMax) {
      this.refused.requests += 1;
      return {
        reason: "requests",
        message: `overloaded: ${this.requests} requests in flight (the limit is ${this.requestsInFlightMax}); retry after ${this.retryAfterMs} ms`,
        retryAfterMs: this.retryAfterMs,
      };
    }
    const pool = this.poolFor(bytes);
    if (pool === null) {
      this.refused.bytes += 1;
      return this.refusalOf(bytes, false);
    }
    return this.ticket(bytes, pool);
  }

  /** True when a body of `bytes` is small: it has the reserve and a queue of its own. */
  private isSmall(bytes: number): boolean {
    return bytes < this.smallBytesMax;
  }

  /** Where a request of `bytes` fits now: the small reserve, the byte bound, or nowhere (null). */
  private poolFor(bytes: number): Pool | null {
    if (this.isSmall(bytes)) {
      if (this.reserved === 0 || this.reserved + bytes <= this.smallBytesReserve) return "reserve";
      if (this.waiting.length > 0) return null;
    }
    if (this.bytes === 0 || this.bytes + bytes <= this.bytesInFlightMax) return "main";
    return null;
  }

  /**
   * Admit a request whose body is `bytes` long, or, when only the byte bound stands in the way, let
   * it wait for room, first come first served, up to `waitMsMax`: resolves to its ticket, or to
   * the refusal once the wait is over. A request that arrives while others of its size wait
   * (small or large) queues behind them; a small one never waits behind a large one.
   */
  wait(bytes: number): AdmissionTicket | AdmissionRefusal | Promise<AdmissionTicket | AdmissionRefusal> {
    const queue = this.isSmall(bytes) ? this.waitingSmall : this.waiting;
    if (queue.length === 0 || this.requests >= this.requestsInFlightMax) {
      const result = this.admit(bytes);
      if (!isRefusal(result) || result.reason !== "bytes" || this.waitMsMax === 0) return result;
      if (this.waitingCount() >= this.requestsInFlightMax) return result;
      // Counted as refused once, should the wait end in a refusal; taken back if it is admitted.
      this.refused.bytes -= 1;
    } else if (this.waitingCount() >= this.requestsInFlightMax) {
      this.refused.bytes += 1;
      return this.refusalOf(bytes, true);
    }
    return new Promise((resolve) => {
      const waiter: Waiter = {
        bytes,
        resolve,
        timer: setTimeout(() => {
          queue.splice(queue.indexOf(waiter), 1);
          this.refused.bytes += 1;
          resolve(this.refusalOf(bytes, true));
          // A large request that stops waiting may free the byte bound for small ones.
          this.admitWaiting();
        }, this.waitMsMax),
      };
      queue.push(waiter);
    });
  }

  private waitingCount(): number {
    return this.waiting.length + this.waitingSmall.length;
  }

  private refusalOf(bytes: number, waited: boolean): AdmissionRefusal {
    const small = this.isSmall(bytes);
    const held = small
      ? `${this.reserved} bytes of small requests in flight (the reserve is ${this.smallBytesReserve}) and ${this.bytes} more`
      : `${this.bytes} bytes of requests in flight`;
    const after = waited ? ` (waited ${this.waitMsMax} ms for room)` : "";
    return {
      reason: "bytes",
      message: `overloaded: ${held}, ${bytes} more would pass the limit of ${this.bytesInFlightMax}${after}; retry after ${this.retryAfterMs} ms`,
      retryAfterMs: this.retryAfterMs,
    };
  }

  private ticket(bytes: number, pool: Pool): AdmissionTicket {
    this.requests += 1;
    if (pool === "reserve") this.reserved += bytes;
    else this.bytes += bytes;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.requests -= 1;
        if (pool === "reserve") this.reserved -= bytes;
        else this.bytes -= bytes;
        this.admitWaiting();
      },
    };
  }

  /**
   * Admit the waiting requests that fit now, each queue in arrival order (the first that does not
   * fit stops the rest of its queue): small ones first, then large ones, then small ones again,
   * which may take the byte bound once no large one waits.
   */
  private admitWaiting(): void {
    this.admitFrom(this.waitingSmall);
    this.admitFrom(this.waiting);
    if (this.waiting.length === 0) this.admitFrom(this.waitingSmall);
  }

  private admitFrom(queue: Waiter[]): void {
    while (queue.length > 0 && this.requests < this.requestsInFlightMax) {
      const first = queue[0]!;
      const pool = this.poolFor(first.bytes);
      if (pool === null) return;
      queue.shift();
      clearTimeout(first.timer);
      first.resolve(this.ticket(first.bytes, pool));
    }
  }

  /**
   * What is held now (`bytes` in all, `smallBytes` of it in the small requests' reserve), the
   * requests waiting for room (`waitingSmall` of them small), and how many requests were refused
   * so far, by reason.
   */
  get depths(): {
    readonly requests: number;
    readonly bytes: number;
    readonly smallBytes: number;
    readonly waiting: number;
    readonly waitingSmall: number;
    readonly refused: { readonly requests: number; readonly bytes: number };
  } {
    return {
      requests: this.requests,
      bytes: this.bytes + this.reserved,
      smallBytes: this.reserved,
      waiting: this.waitingCount(),
      waitingSmall: this.waitingSmall.length,
      refused: { ...this.refused },
    };
  }
}

/** Where a ticket's bytes are counted: the small requests' reserve, or the byte bound. */
type Pool = "reserve" | "main";

/** A request waiting for room: its size, how to admit it, and the timer that ends its wait. */
interface Waiter {
  readonly bytes: number;
  readonly resolve: (result: AdmissionTicket | AdmissionRefusal) => void;
  readonly timer: NodeJS.Timeout;
}

/** True for a refusal, false for a ticket. */
export function isRefusal(result: AdmissionTicket | AdmissionRefusal): result is AdmissionRefusal {
  return "reason" in result;
}

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
   * Bytes of request bodies held at once, in bytes. Default 16 MiB: sixteen maximal (1 MiB) values,
   * each of which costs a few copies of itself in memory while it is decoded, proposed and written.
   * 4 MiB lowers the leader's peak in bursts of 1 MiB PUTs by about 20 MB, but small requests then
   * wait behind the large bodies and are refused after `waitMsMax` (docs/performance.md, "The
   * leader's peak in a burst, measured again").
   */
  readonly bytesInFlightMax?: number;
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
  private requests = 0;
  private bytes = 0;
  private readonly refused = { requests: 0, bytes: 0 };
  /** Requests waiting for room, in arrival order. */
  private readonly waiting: Waiter[] = [];

  constructor(options: AdmissionOptions = {}) {
    this.requestsInFlightMax = options.requestsInFlightMax ?? 1024;
    this.bytesInFlightMax = options.bytesInFlightMax ?? 16 * 1024 * 1024;
    this.retryAfterMs = options.retryAfterMs ?? 100;
    this.waitMsMax = options.waitMsMax ?? 1000;
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
   * get through an idle replica.
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
    if (this.bytes > 0 && this.bytes + bytes > this.bytesInFlightMax) {
      this.refused.bytes += 1;
      return {
        reason: "bytes",
        message: `overloaded: ${this.bytes} bytes of requests in flight, ${bytes} more would pass the limit of ${this.bytesInFlightMax}; retry after ${this.retryAfterMs} ms`,
        retryAfterMs: this.retryAfterMs,
      };
    }
    return this.ticket(bytes);
  }

  /**
   * Admit a request whose body is `bytes` long, or, when only the byte bound stands in the way, let
   * it wait for room, first come first served, up to `waitMsMax`: resolves to its ticket, or to
   * the refusal once the wait is over. A request that arrives while others wait queues behind them.
   */
  wait(bytes: number): AdmissionTicket | AdmissionRefusal | Promise<AdmissionTicket | AdmissionRefusal> {
    if (this.waiting.length === 0 || this.requests >= this.requestsInFlightMax) {
      const result = this.admit(bytes);
      if (!isRefusal(result) || result.reason !== "bytes" || this.waitMsMax === 0) return result;
      if (this.waiting.length >= this.requestsInFlightMax) return result;
      // Counted as refused once, should the wait end in a refusal; taken back if it is admitted.
      this.refused.bytes -= 1;
    } else if (this.waiting.length >= this.requestsInFlightMax) {
      this.refused.bytes += 1;
      return this.refusalOf(bytes);
    }
    return new Promise((resolve) => {
      const waiter: Waiter = {
        bytes,
        resolve,
        timer: setTimeout(() => {
          this.waiting.splice(this.waiting.indexOf(waiter), 1);
          this.refused.bytes += 1;
          resolve(this.refusalOf(bytes));
        }, this.waitMsMax),
      };
      this.waiting.push(waiter);
    });
  }

  private refusalOf(bytes: number): AdmissionRefusal {
    return {
      reason: "bytes",
      message: `overloaded: ${this.bytes} bytes of requests in flight, ${bytes} more would pass the limit of ${this.bytesInFlightMax} (waited ${this.waitMsMax} ms for room); retry after ${this.retryAfterMs} ms`,
      retryAfterMs: this.retryAfterMs,
    };
  }

  private ticket(bytes: number): AdmissionTicket {
    this.requests += 1;
    this.bytes += bytes;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.requests -= 1;
        this.bytes -= bytes;
        this.admitWaiting();
      },
    };
  }

  /** Admit the waiting requests that fit now, in arrival order (the first that does not fit stops the rest). */
  private admitWaiting(): void {
    while (this.waiting.length > 0 && this.requests < this.requestsInFlightMax) {
      const first = this.waiting[0]!;
      if (this.bytes > 0 && this.bytes + first.bytes > this.bytesInFlightMax) return;
      this.waiting.shift();
      clearTimeout(first.timer);
      first.resolve(this.ticket(first.bytes));
    }
  }

  /** What is held now, and how many requests were refused so far, by reason. */
  get depths(): {
    readonly requests: number;
    readonly bytes: number;
    readonly waiting: number;
    readonly refused: { readonly requests: number; readonly bytes: number };
  } {
    return { requests: this.requests, bytes: this.bytes, waiting: this.waiting.length, refused: { ...this.refused } };
  }
}

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

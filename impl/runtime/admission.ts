/**
 * Admission control for client requests: a bound on the requests and on the request bytes one
 * replica holds at once. A request beyond either bound is refused before its body is read, with
 * `429` and a hint of when to retry, instead of being accepted as work the replica could not finish
 * in time (bodies would pile up in memory, batches would grow, and the peer traffic that keeps the
 * lease alive would wait behind them). Shedding load at the door keeps an overloaded replica a
 * leader (Bronson et al., "Metastable failures in distributed systems", HotOS 2021).
 *
 * It only counts; it never waits, reads a clock or touches a socket.
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
   */
  readonly bytesInFlightMax?: number;
  /** The retry hint given with a refusal, in milliseconds. Default 100. */
  readonly retryAfterMs?: number;
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
  private requests = 0;
  private bytes = 0;
  private readonly refused = { requests: 0, bytes: 0 };

  constructor(options: AdmissionOptions = {}) {
    this.requestsInFlightMax = options.requestsInFlightMax ?? 1024;
    this.bytesInFlightMax = options.bytesInFlightMax ?? 16 * 1024 * 1024;
    this.retryAfterMs = options.retryAfterMs ?? 100;
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
    this.requests += 1;
    this.bytes += bytes;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.requests -= 1;
        this.bytes -= bytes;
      },
    };
  }

  /** What is held now, and how many requests were refused so far, by reason. */
  get depths(): {
    readonly requests: number;
    readonly bytes: number;
    readonly refused: { readonly requests: number; readonly bytes: number };
  } {
    return { requests: this.requests, bytes: this.bytes, refused: { ...this.refused } };
  }
}

/** True for a refusal, false for a ticket. */
export function isRefusal(result: AdmissionTicket | AdmissionRefusal): result is AdmissionRefusal {
  return "reason" in result;
}

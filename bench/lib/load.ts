/**
 * The load generator both systems are driven by: closed-loop clients, each on its own keep-alive
 * HTTP/1.1 connection (lib/http1.ts, leaner than node:http's client), each sending its next request as soon as the last
 * one is answered, for a
 * fixed time after a warm-up. A system is described only by how to build its requests, so
 * paxos-lease and etcd get the same generator, the same keys, the same values and the same
 * clock. Every loop is bounded by time and by count and stops by itself.
 */
import http from "node:http";
import { Http1Connection } from "./http1.ts";

/** One request a system turns an operation into. */
export interface HttpRequest {
  readonly method: string;
  readonly url: string;
  readonly body?: string;
  readonly headers?: Record<string, string>;
}

/** How one request ended: done, refused or failed (nothing happened), or its outcome is unknown. */
export type Outcome = "ok" | "failed" | "unknown";

/** How a system serves writes and reads, over HTTP/JSON (or through a client library: `call`). */
export interface SystemDriver {
  readonly name: string;
  /** A write of `value` under `key`. */
  write(key: string, value: string): HttpRequest;
  /** A linearizable read of `key`. */
  read(key: string): HttpRequest;
  /** True when an answer is a success (the status alone may not say: etcd answers errors in 200s only sometimes). */
  ok(status: number, body: string): boolean;
  /** True when a failed answer says the write may still take effect. Default: never (only timeouts are unknown). */
  outcomeUnknown?(status: number, body: string): boolean;
  /** Perform the operation itself instead of through `write`/`read` over HTTP (a gRPC client, say). */
  call?(kind: "write" | "read", key: string, value: string, timeoutMs: number): Promise<Outcome>;
}

/** Options of {@link runLoad}. */
export interface LoadOptions {
  readonly clients: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  readonly kind: "write" | "read";
  /** Distinct keys. Default 1000. */
  readonly keys?: number;
  /** Value size in bytes. Default 100. */
  readonly valueBytes?: number;
  /** One request's timeout, in milliseconds. Default 5000. */
  readonly timeoutMs?: number;
  /** Requests per client at most (a safety bound). Default 1,000,000. */
  readonly requestsPerClientMax?: number;
  /** Called when the measured window starts and when it ends (to sample CPU time over exactly it). */
  readonly onWindow?: (edge: "start" | "end") => void;
}

/** What one load point measured (after the warm-up). */
export interface LoadResult {
  readonly clients: number;
  readonly completed: number;
  /** Requests that failed or whose outcome is unknown. */
  readonly errors: number;
  /** Requests that failed: refused, redirected, or answered with an error that says nothing happened. */
  readonly failed: number;
  /** Requests whose outcome is unknown: timed out, connection lost, or answered "may still happen". */
  readonly outcomeUnknown: number;
  readonly seconds: number;
  readonly throughput: number;
  /** Latencies in milliseconds, of every request in the window: a failed one counts as the timeout. */
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  /** Every latency sample in milliseconds (failures as the timeout), sorted (for distribution charts). */
  readonly samples: readonly number[];
}

/** The q-quantile of sorted samples (nearest rank). */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export function median(values: readonly number[]): number {
  return quantile(
    [...values].sort((a, b) => a - b),
    0.5,
  );
}

/** Send one request; resolves with status and body, or rejects on network failure or timeout. */
export function send(
  agent: http.Agent,
  request: HttpRequest,
  timeoutMs: number,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      request.url,
      {
        method: request.method,
        agent,
        timeout: timeoutMs,
        headers: {
          ...(request.headers ?? {}),
          ...(request.body === undefined
            ? {}
            : { "Content-Type": "application/json", "Content-Length": String(Buffer.byteLength(request.body)) }),
        },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (c: Buffer) => chunks.push(c));
        response.on("end", () =>
          resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
        );
        response.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end(request.body);
  });
}

/**
 * Drive `system` with `clients` closed-loop clients, each on its own keep-alive connection; measures after the warm-up.
 */
export async function runLoad(system: SystemDriver, options: LoadOptions): Promise<LoadResult> {
  const keys = options.keys ?? 1000;
  const value = "v".repeat(options.valueBytes ?? 100);
  const timeoutMs = options.timeoutMs ?? 5000;
  const max = options.requestsPerClientMax ?? 1_000_000;
  const started = performance.now();
  const measureFrom = started + options.warmupMs;
  const stopAt = measureFrom + options.durationMs;
  let windowEdges = 0;
  const edge = (which: "start" | "end"): void => {
    windowEdges += 1;
    options.onWindow?.(which);
  };
  const windowTimers = [
    setTimeout(() => edge("start"), options.warmupMs),
    setTimeout(() => edge("end"), options.warmupMs + options.durationMs),
  ];
  const latencies: number[] = [];
  let completed = 0;
  let failed = 0;
  let unknown = 0;
  const perform = async (connections: Map<string, Http1Connection>, key: string): Promise<Outcome> => {
    if (system.call !== undefined) return system.call(options.kind, key, value, timeoutMs);
    const request = options.kind === "write" ? system.write(key, value) : system.read(key);
    try {
      const url = new URL(request.url);
      let connection = connections.get(url.origin);
      if (connection === undefined) connections.set(url.origin, (connection = new Http1Connection(url.origin)));
      const answer = await connection.request(
        request.method,
        url.pathname + url.search,
        request.body,
        timeoutMs,
        request.headers,
      );
      if (system.ok(answer.status, answer.body)) return "ok";
      return system.outcomeUnknown?.(answer.status, answer.body) === true ? "unknown" : "failed";
    } catch {
      return "unknown";
    }
  };
  const client = async (c: number): Promise<void> => {
    const connections = new Map<string, Http1Connection>();
    try {
      for (let i = 0; i < max; i++) {
        if (performance.now() >= stopAt) return;
        const key = `k${(c * 7919 + i * 104729) % keys}`;
        const sent = performance.now();
        const outcome = await perform(connections, key);
        const done = performance.now();
        if (sent < measureFrom || done > stopAt) continue;
        if (outcome === "ok") {
          completed += 1;
          latencies.push(done - sent);
        } else {
          if (outcome === "failed") failed += 1;
          else unknown += 1;
          latencies.push(timeoutMs);
        }
      }
    } finally {
      for (const connection of connections.values()) connection.close();
    }
  };
  try {
    await Promise.all(Array.from({ length: options.clients }, (_, c) => client(c)));
  } finally {
    for (const timer of windowTimers) clearTimeout(timer);
    // On a loaded machine the clients may finish before a late timer fires: close the window now.
    if (windowEdges === 0) edge("start");
    if (windowEdges === 1) edge("end");
  }
  latencies.sort((a, b) => a - b);
  const seconds = options.durationMs / 1000;
  return {
    clients: options.clients,
    completed,
    errors: failed + unknown,
    failed,
    outcomeUnknown: unknown,
    seconds,
    throughput: completed / seconds,
    p50: quantile(latencies, 0.5),
    p90: quantile(latencies, 0.9),
    p99: quantile(latencies, 0.99),
    max: quantile(latencies, 1),
    samples: latencies,
  };
}

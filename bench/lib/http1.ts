/**
 * A lean HTTP/1.1 client for the load generator: one keep-alive TCP connection, one request at
 * a time, responses parsed by hand (Content-Length or chunked). node:http's client spent more
 * CPU per request than the paxos-lease leader spent serving it, so on a two-core machine the
 * generator, not the servers, set the read throughput of both systems. Loopback benchmarks only;
 * it understands exactly the responses the two servers send.
 */
import net from "node:net";

/** One answer. */
export interface RawAnswer {
  readonly status: number;
  readonly body: string;
}

/** Largest response accepted, in bytes. */
const responseBytesMax = 4 * 1024 * 1024;

/**
 * A body at least this long (bytes) waits for `100 Continue` (`Expect: 100-continue`), as
 * impl/runtime/client.ts sends it: a request refused from its headers (429) never sends its body.
 */
const expectContinueBytesMin = 64 * 1024;

/**
 * A kept-alive connection idle this long (ms) is not used again: a new one is opened. Node.js
 * servers close a connection idle for 5 s (its keep-alive timeout), and a request written just as that
 * close crosses it fails with "connection closed" though the server never read it: an outcome the
 * client cannot know, made by the client's reuse and not by the server.
 */
const idleReuseMsDefault = 4000;

/** A keep-alive connection to one origin (http://host:port). */
export class Http1Connection {
  private socket: net.Socket | null = null;
  private buffer: Buffer = Buffer.alloc(0);
  private pending: { resolve: (a: RawAnswer) => void; reject: (e: Error) => void; timer: NodeJS.Timeout } | null = null;
  /** The pending request's body, until the server asks for it with `100 Continue`. */
  private held: string | null = null;
  private readonly host: string;
  private readonly port: number;
  private readonly hostHeader: string;
  /** When the last answer completed (performance.now()); the connection has been idle since. */
  private idleSince = 0;

  /** `idleReuseMs`: a connection idle this long is replaced by a new one (default 4000, below Node's 5 s). */
  constructor(
    origin: string,
    private readonly idleReuseMs = idleReuseMsDefault,
  ) {
    const url = new URL(origin);
    this.host = url.hostname;
    this.port = Number(url.port);
    this.hostHeader = url.host;
  }

  /** Send a request and wait for its response (rejects on network failure or after `timeoutMs`). */
  request(
    method: string,
    path: string,
    body: string | undefined,
    timeoutMs: number,
    headers: Readonly<Record<string, string>> = {},
  ): Promise<RawAnswer> {
    if (this.pending !== null) return Promise.reject(new Error("one request at a time"));
    const socket = this.connected();
    const payload = body === undefined ? "" : body;
    let extra = "";
    for (const [name, value] of Object.entries(headers)) extra += `${name}: ${value}\r\n`;
    const bytes = Buffer.byteLength(payload);
    const waits = bytes >= expectContinueBytesMin;
    if (waits) extra += "Expect: 100-continue\r\n";
    const head = `${method} ${path} HTTP/1.1\r\nHost: ${this.hostHeader}\r\nConnection: keep-alive\r\n${extra}${body === undefined ? "" : `Content-Type: application/json\r\nContent-Length: ${bytes}\r\n`}\r\n`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      this.pending = { resolve, reject, timer };
      this.held = waits ? payload : null;
      socket.write(waits ? head : head + payload);
    });
  }

  close(): void {
    this.socket?.destroy();
    this.socket = null;
  }

  private connected(): net.Socket {
    if (this.socket !== null && !this.socket.destroyed && performance.now() - this.idleSince < this.idleReuseMs)
      return this.socket;
    this.socket?.destroy();
    this.socket = null;
    const socket = net.connect({ host: this.host, port: this.port });
    socket.setNoDelay(true);
    this.buffer = Buffer.alloc(0);
    socket.on("data", (chunk: Buffer) => {
      this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
      this.parse();
    });
    // A connection given up (after an answer that did not ask for the body) fails no later request.
    const current = (): boolean => this.socket === socket || this.socket === null;
    socket.on("error", (error) => {
      if (current()) this.fail(error);
    });
    socket.on("close", () => {
      if (!current()) return;
      this.socket = null;
      this.fail(new Error("connection closed"));
    });
    this.socket = socket;
    return socket;
  }

  private fail(error: Error): void {
    const pending = this.pending;
    this.socket?.destroy();
    this.socket = null;
    if (pending === null) return;
    this.pending = null;
    clearTimeout(pending.timer);
    pending.reject(error);
  }

  /** Complete the pending request if the buffer holds a whole response. */
  private parse(): void {
    if (this.buffer.length > responseBytesMax) return this.fail(new Error("response too large"));
    const end = this.buffer.indexOf("\r\n\r\n");
    if (end < 0) return;
    const head = this.buffer.subarray(0, end).toString("latin1");
    const status = Number(head.slice(9, 12));
    if (status === 100) {
      // The server asks for the body: send it, and wait for the final answer.
      this.buffer = this.buffer.subarray(end + 4);
      if (this.held !== null) this.socket?.write(this.held);
      this.held = null;
      return this.parse();
    }
    const lower = head.toLowerCase();
    const lengthMatch = /\r\ncontent-length:\s*(\d+)/.exec(lower);
    let body: string;
    let consumed: number;
    if (lengthMatch !== null) {
      const length = Number(lengthMatch[1]);
      if (this.buffer.length < end + 4 + length) return;
      body = this.buffer.subarray(end + 4, end + 4 + length).toString("utf8");
      consumed = end + 4 + length;
    } else if (lower.includes("\r\ntransfer-encoding: chunked")) {
      const chunks: Buffer[] = [];
      let at = end + 4;
      for (;;) {
        const line = this.buffer.indexOf("\r\n", at);
        if (line < 0) return;
        const size = parseInt(this.buffer.subarray(at, line).toString("latin1"), 16);
        if (!Number.isFinite(size)) return this.fail(new Error("bad chunk size"));
        if (this.buffer.length < line + 2 + size + 2) return;
        if (size === 0) {
          consumed = line + 4;
          break;
        }
        chunks.push(this.buffer.subarray(line + 2, line + 2 + size));
        at = line + 2 + size + 2;
      }
      body = Buffer.concat(chunks).toString("utf8");
    } else {
      return this.fail(new Error("response without a length"));
    }
    this.buffer = this.buffer.subarray(consumed);
    this.idleSince = performance.now();
    const pending = this.pending;
    this.pending = null;
    // Answered without asking for the body: the server closes the connection; the next request opens another.
    if (this.held !== null) {
      this.held = null;
      this.socket?.destroy();
      this.socket = null;
    }
    if (pending === null) return;
    clearTimeout(pending.timer);
    pending.resolve({ status, body });
  }
}

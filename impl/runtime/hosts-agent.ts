/**
 * The helper process that testing-hosts.ts runs inside a host's network namespace. Test-only.
 * Two roles, chosen by argv:
 *
 * - `gateway SOCKET`: the clients' host. A process outside the namespace cannot open a TCP
 *   connection from inside it, so it asks this gateway over a Unix socket (Unix sockets are
 *   files, reachable from every network namespace): it writes `CONNECT HOST PORT\n`, the gateway
 *   dials from the clients' address and answers `+\n` (then relays bytes both ways) or
 *   `-CODE\n` (ECONNREFUSED, ETIMEDOUT, ...) and closes.
 * - `relay ADDRESS LISTEN:PORT...`: the delay relay of a replica's host, for kernels without
 *   netem. The host's nftables redirect every inbound TCP connection to PORT onto LISTEN, where
 *   this relay accepts it, dials ADDRESS:PORT (its own host, so not redirected again) and
 *   passes bytes both ways, each chunk held for the delay set for the connection's source
 *   address. Chunks never overtake each other on one connection (TCP would not let them
 *   either); jitter varies the delay, so messages on different connections do reorder.
 *
 * Both read their control lines from stdin (the relay: `{"delays":{"10.77.0.2":{"delayMs":5,
 * "jitterMs":0}}}`) and exit when stdin closes, so they never outlive the process that started
 * them. Both print `ready` once listening. Node built-ins only.
 */
import fs from "node:fs";
import net from "node:net";
import readline from "node:readline";

/** Longest time the gateway waits for a TCP connection, in milliseconds. */
const gatewayConnectTimeoutMs = 3000;
/** Longest CONNECT line accepted, in bytes. */
const connectLineBytesMax = 256;

/** A delay for one source address. */
interface Delay {
  readonly delayMs: number;
  readonly jitterMs: number;
}

function gateway(socketPath: string): void {
  fs.rmSync(socketPath, { force: true });
  const server = net.createServer((client) => {
    client.on("error", () => undefined);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const newline = head.indexOf(10);
      if (newline < 0) {
        if (head.length > connectLineBytesMax) client.destroy();
        return;
      }
      client.off("data", onData);
      client.pause();
      const match = /^CONNECT (\S+) (\d{1,5})$/.exec(head.subarray(0, newline).toString("utf8"));
      const rest = head.subarray(newline + 1);
      if (match === null) {
        client.end("-EINVAL\n");
        return;
      }
      dial(client, match[1]!, Number(match[2]), rest);
    };
    client.on("data", onData);
  });
  server.listen(socketPath, () => process.stdout.write("ready\n"));
}

function dial(client: net.Socket, host: string, port: number, early: Buffer): void {
  const target = net.connect({ host, port });
  target.setNoDelay(true);
  let connected = false;
  const timer = setTimeout(
    () => target.destroy(Object.assign(new Error("timeout"), { code: "ETIMEDOUT" })),
    gatewayConnectTimeoutMs,
  );
  target.once("connect", () => {
    connected = true;
    clearTimeout(timer);
    client.write("+\n");
    if (early.length > 0) target.write(early);
    // pipe() passes each end on; an error on either side resets both.
    client.pipe(target);
    target.pipe(client);
    client.resume();
  });
  target.on("error", (error: NodeJS.ErrnoException) => {
    clearTimeout(timer);
    // Before the connection: tell the client why; after it: a reset, as TCP would show it.
    if (!connected) client.end(`-${error.code ?? "EIO"}\n`);
    else client.destroy();
  });
  client.on("error", () => target.destroy());
  client.on("close", (hadError) => {
    if (hadError || !connected) target.destroy();
  });
  target.on("close", (hadError) => {
    if (hadError) client.destroy();
  });
}

function relay(address: string, ports: readonly (readonly [listen: number, target: number])[]): void {
  const delays = new Map<string, Delay>();
  readline.createInterface({ input: process.stdin }).on("line", (line) => {
    const message = JSON.parse(line) as { delays?: Record<string, Delay> };
    delays.clear();
    for (const [source, delay] of Object.entries(message.delays ?? {})) delays.set(source, delay);
  });
  let listening = 0;
  for (const [listen, port] of ports) {
    const server = net.createServer({ allowHalfOpen: true }, (inbound) => {
      const source = (inbound.remoteAddress ?? "").replace(/^::ffff:/, "");
      const outbound = net.connect({ host: address, port, allowHalfOpen: true });
      let connected = false;
      outbound.once("connect", () => (connected = true));
      for (const socket of [inbound, outbound]) {
        socket.setNoDelay(true);
        socket.on("error", () => {
          // Nothing listens behind the relay: reset, so the dialer sees what it would have seen without it.
          if (!connected && !inbound.destroyed) inbound.resetAndDestroy();
          inbound.destroy();
          outbound.destroy();
        });
      }
      forward(inbound, outbound, () => delays.get(source));
      forward(outbound, inbound, () => delays.get(source));
    });
    server.listen(listen, "0.0.0.0", () => {
      listening += 1;
      if (listening === ports.length) process.stdout.write("ready\n");
    });
  }
}

/**
 * Pass chunks from `source` to `sink`, each held for the current delay, in order; an end is passed on after the data.
 */
function forward(source: net.Socket, sink: net.Socket, delayOf: () => Delay | undefined): void {
  const queue: { readonly chunk: Buffer | null; readonly due: number }[] = [];
  let timer: NodeJS.Timeout | null = null;
  let lastDue = 0;
  const deliver = (chunk: Buffer | null): void => {
    if (sink.destroyed) return;
    if (chunk === null) sink.end();
    else sink.write(chunk);
  };
  const flush = (): void => {
    timer = null;
    const now = performance.now();
    while (queue.length > 0 && queue[0]!.due <= now) deliver(queue.shift()!.chunk);
    if (queue.length > 0) timer = setTimeout(flush, queue[0]!.due - now);
  };
  const push = (chunk: Buffer | null): void => {
    const delay = delayOf();
    const ms = delay === undefined ? 0 : delay.delayMs + Math.random() * delay.jitterMs;
    if (ms <= 0 && queue.length === 0) return deliver(chunk);
    // Never before an earlier chunk: one connection's bytes stay in order.
    lastDue = Math.max(lastDue, performance.now() + ms);
    queue.push({ chunk, due: lastDue });
    timer ??= setTimeout(flush, Math.max(0, lastDue - performance.now()));
  };
  source.on("data", (chunk: Buffer) => push(chunk));
  source.on("end", () => push(null));
  source.on("close", () => {
    if (source.errored !== null && timer !== null) clearTimeout(timer);
  });
}

const [role, ...args] = process.argv.slice(2);
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
if (role === "gateway" && args.length === 1) gateway(args[0]!);
else if (role === "relay" && args.length >= 2)
  relay(
    args[0]!,
    args.slice(1).map((pair) => {
      const [listen, target] = pair.split(":").map(Number);
      return [listen!, target!] as const;
    }),
  );
else {
  process.stderr.write("usage: hosts-agent gateway SOCKET | relay ADDRESS LISTEN:PORT...\n");
  process.exit(2);
}

/**
 * Helpers shared by the runtime's tests: free loopback ports, bounded waiting, temp dirs.
 * Test-only; nothing in the replica imports this file.
 */
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      if (address === null || typeof address === "string") return reject(new Error("no port"));
      server.close(() => resolve(address.port));
    });
  });
}

/** `count` distinct free ports. */
export async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Poll `probe` until it returns a value other than undefined, or fail after `timeoutMs`
 * with `what` in the message. Exceptions from `probe` count as "not yet".
 */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 20_000,
  intervalMs = 25,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (performance.now() > deadline) {
      const detail = lastError instanceof Error ? ` (last error: ${lastError.message})` : "";
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await sleep(intervalMs);
  }
}

/** A fresh temporary directory; the caller removes it. */
export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `paxos-lease-${prefix}-`));
}

/** A flood of connections to a peer port, see {@link floodConnections}. */
export interface Flood {
  /** Connections the target accepted and then closed on us. */
  readonly closedByTarget: () => number;
  stop(): void;
}

/**
 * Keep `count` connections from `fromHost` (a loopback address such as 127.0.0.2, so that the
 * target can tell the flood from its peers on 127.0.0.1) open to 127.0.0.1:`port`, each saying
 * nothing, and open a new one whenever one closes: the peer port under a flood of idle
 * connections that never finish a handshake.
 */
export function floodConnections(port: number, fromHost: string, count: number): Flood {
  let stopped = false;
  let closed = 0;
  const sockets = new Set<net.Socket>();
  const open = (): void => {
    if (stopped) return;
    const socket = net.connect({ host: "127.0.0.1", port, localAddress: fromHost });
    sockets.add(socket);
    socket.on("error", () => undefined);
    socket.on("close", () => {
      sockets.delete(socket);
      closed += 1;
      // Not at once: a refused connection comes back after a moment, as a flooding client's would.
      if (!stopped) setTimeout(open, 5);
    });
  };
  for (let i = 0; i < count; i++) open();
  return {
    closedByTarget: () => closed,
    stop: () => {
      stopped = true;
      for (const socket of sockets) socket.destroy();
    },
  };
}

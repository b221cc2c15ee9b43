/**
 * Helpers shared by the runtime's tests: loopback ports reserved machine-wide, bounded waiting, temp dirs.
 * Test-only; nothing in the replica imports this file.
 */
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import type { HttpApiOptions } from "./http-api.ts";
import { silentLogger } from "./log.ts";

/**
 * Loopback ports for tests and benches, safe when several test runs share one machine. A port
 * the kernel picked for `listen(0)` and gave back is a poor choice: it lies in the ephemeral
 * range, where any process's next outgoing connection may take it before the replica that was to
 * listen on it starts (a spare started a minute later failed with EADDRINUSE). So ports come from
 * below the ephemeral range, which outgoing connections never use, and each is reserved
 * machine-wide by a file in `portLockDir` named after it and holding the reserving process's pid:
 * created exclusively, kept until that process exits, taken over once that process is gone. A
 * reserved port is also checked free by binding it, against anything else listening there.
 */
export const portLockDir = path.join(os.tmpdir(), "paxos-lease-ports");

/** The ports this process reserved, released when it exits. */
const reserved = new Set<number>();
let releaseOnExit = false;

/** The kernel's ephemeral range [low, high] (Linux), or the usual default elsewhere. */
function ephemeralRange(): [number, number] {
  try {
    const [low, high] = fs
      .readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8")
      .trim()
      .split(/\s+/)
      .map(Number);
    if (Number.isInteger(low) && Number.isInteger(high)) return [low!, high!];
  } catch {
    // Not Linux: IANA's dynamic range.
  }
  return [49152, 65535];
}

/** Ports handed out: from 10000 up to the ephemeral range (away from 7001-8005, which `npm start` uses). */
function allocatableRange(): [number, number] {
  const [low, high] = ephemeralRange();
  return low - 10000 >= 2000 ? [10000, low - 1] : [high + 1, 65535];
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Reserve `port` machine-wide for this process: true if it is now ours. Never waits. */
function reserve(port: number): boolean {
  if (reserved.has(port)) return false;
  fs.mkdirSync(portLockDir, { recursive: true });
  const file = path.join(portLockDir, String(port));
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: "wx" });
      reserved.add(port);
      if (!releaseOnExit) {
        releaseOnExit = true;
        process.on("exit", () => {
          for (const p of reserved) fs.rmSync(path.join(portLockDir, String(p)), { force: true });
        });
      }
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    // Held: by a live process, or left by one that is gone (test workers are often killed, so
    // their exit handler never runs). Taken over by renaming it away, which is atomic: of two
    // processes taking it over at once only one renames it. Should the file renamed be another's
    // fresh reservation (made between our reading and our renaming), it is put back.
    let holder: number;
    try {
      holder = Number(fs.readFileSync(file, "utf8"));
    } catch {
      continue; // released meanwhile
    }
    if (Number.isInteger(holder) && holder > 0 && (holder === process.pid || alive(holder))) return false;
    const away = `${file}.stale-${process.pid}-${attempt}`;
    try {
      fs.renameSync(file, away);
    } catch {
      return false;
    }
    const renamed = Number(fs.readFileSync(away, "utf8"));
    if (renamed !== holder) {
      try {
        fs.linkSync(away, file);
      } catch {
        // Another reservation was made meanwhile; ours goes.
      }
      fs.rmSync(away, { force: true });
      return false;
    }
    fs.rmSync(away, { force: true });
  }
  return false;
}

/** Give back a port this process reserved. */
function release(port: number): void {
  if (!reserved.delete(port)) return;
  fs.rmSync(path.join(portLockDir, String(port)), { force: true });
}

/** Whether nothing listens on 127.0.0.1:`port` now. */
function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** A loopback TCP port reserved for this process (see {@link portLockDir}) and free now. */
export async function freePort(): Promise<number> {
  const [low, high] = allocatableRange();
  for (let attempt = 0; attempt < 1000; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low + 1));
    if (!reserve(port)) continue;
    if (await bindable(port)) return port;
    release(port);
  }
  throw new Error(`no free port in ${low}-${high} after 1000 tries (reservations in ${portLockDir})`);
}

/**
 * The first of `count` consecutive ports, each as {@link freePort}: for a local cluster, whose
 * replica i listens at a base port plus i - 1 (fixed bases collide with whatever holds them).
 */
export async function freePortRun(count: number): Promise<number> {
  const [low, high] = allocatableRange();
  for (let attempt = 0; attempt < 1000; attempt++) {
    const base = low + Math.floor(Math.random() * (high - low + 2 - count));
    const got: number[] = [];
    let free = true;
    for (let port = base; free && port < base + count; port++) {
      free = reserve(port);
      if (free) got.push(port);
      free &&= await bindable(port);
    }
    if (free) return base;
    got.forEach(release);
  }
  throw new Error(
    `no ${count} consecutive free ports in ${low}-${high} after 1000 tries (reservations in ${portLockDir})`,
  );
}

/** `count` distinct ports, each as {@link freePort}. */
export async function freePorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < count) ports.push(await freePort());
  return ports;
}

/**
 * Reserve these exact ports for this process, waiting while another process holds any of them
 * (a test that must use fixed ports, such as README's tour with `npm start`'s): two test runs at
 * once then take turns instead of colliding. Released when this process exits, or by `release`.
 */
export async function reserveFixedPorts(ports: readonly number[], timeoutMs: number): Promise<() => void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const got: number[] = [];
    for (const port of ports) {
      if (!reserve(port)) break;
      got.push(port);
    }
    if (got.length === ports.length) return () => ports.forEach(release);
    got.forEach(release);
    if (performance.now() > deadline)
      throw new Error(
        `ports ${ports.join(",")} still reserved by another process after ${timeoutMs} ms (${portLockDir})`,
      );
    await sleep(500);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Keep the calling thread busy for `ms` milliseconds: a stall of its event loop, as a test's fault. */
export function stallLoop(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // Busy, on purpose.
  }
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

/**
 * Options of a replica's HTTP API (./http-api.ts) over stand-ins that change nothing: every
 * key-value request and membership change is unavailable, the status, metrics and page are empty.
 * A test gives the access policy and whatever it exercises.
 */
export function apiOptions(given: Partial<HttpApiOptions> & Pick<HttpApiOptions, "access">): HttpApiOptions {
  const unavailable = { _tag: "unavailable", reason: "a stand-in", outcomeUnknown: false } as const;
  return {
    replicaId: 1,
    submit: () => Promise.resolve(unavailable),
    httpAddressOf: () => null,
    status: () => ({}),
    metrics: () => Promise.resolve({ contentType: "text/plain", body: "" }),
    page: "",
    log: silentLogger(),
    members: {
      show: () => ({}),
      precheck: () => null,
      addressOf: () => null,
      memberAddresses: () => [],
      reconfigure: () => Promise.resolve(unavailable),
    },
    ...given,
  };
}

/**
 * The heartbeat relay: a thread of the leader's process that sends copies of the heartbeats the
 * core decided while the main thread cannot send them itself.
 *
 * Why: on a machine with more runnable threads than cores, a leader's main thread busy with a
 * flood of clients waits for a core for most of an election timeout (bench/flood.ts measured
 * 358 to 387 ms of 400); meanwhile no timer of it fires and no heartbeat leaves, a follower's
 * heartbeat gap passes its election timeout, it campaigns, and the leader is lost. Nothing the
 * main thread orders or bounds helps while it does not run. A thread that sleeps until it is
 * needed is given a core soon after it wakes, whatever the main thread owes the scheduler.
 *
 * What it sends: only the exact frames of Heartbeat messages that the main thread sent (the
 * core's decision at its `sentAt`, under the same wire id), handed over as they were sent, on a
 * connection of its own to each follower (the `relay` lane of impl/runtime/transport.ts, with
 * the same handshake and secret or certificate). A copy of a message is what a network may
 * deliver anyway: the world's network duplicates messages and the lease argument holds for any
 * copy delivered at any time (proofs/leases.md, "Copies of a heartbeat"). The follower renews its
 * grant from its own clock when a copy arrives, and the leader counts its lease from the `sentAt`
 * the core chose, never from the copy.
 *
 * When: a copy goes to a peer once the main thread has handed over no heartbeat for it for
 * `quietMs` (two heartbeat intervals: a main thread that runs hands one over every interval),
 * then once per interval, for at most `windowMs` after the last frame was handed over (the
 * default 1000 ms). So a leader whose main thread stops for good holds its followers back at most
 * `windowMs` longer than it would have, and a leader that runs never relays. When the core is no
 * longer leader the main thread says so (`clear`) and nothing more is sent.
 */
import { existsSync } from "node:fs";
import { Worker } from "node:worker_threads";
import type { ReplicaId } from "../core/index.ts";
import type { TlsMaterial } from "./certs.ts";
import type { Logger } from "./log.ts";
import { helperThreadLimits } from "./thread-limits.ts";
import type { Address, PeerInfo } from "./transport.ts";

/** How long after the last heartbeat handed over the relay may send copies, by default (`--heartbeat-relay-ms`). */
export const heartbeatRelayMsDefault = 1000;

/** What the relay's thread is started with. */
export interface RelayWorkerData {
  readonly self: ReplicaId;
  readonly clusterId: string;
  readonly secret?: Uint8Array | undefined;
  readonly tls?: TlsMaterial | undefined;
  readonly info: PeerInfo;
  readonly intervalMs: number;
  readonly quietMs: number;
  readonly windowMs: number;
  readonly handshakeTimeoutMs: number;
}

/** Main thread to relay thread. */
export type RelayCommand =
  | {
      readonly kind: "heartbeat";
      readonly to: ReplicaId;
      readonly host: string;
      readonly port: number;
      /** The whole frame as sent on the control connection: length, wire id, message. */
      readonly frame: Uint8Array;
    }
  | { readonly kind: "clear" }
  | { readonly kind: "tls"; readonly material: TlsMaterial };

/** Relay thread to main thread. */
export type RelayReport =
  | { readonly kind: "relayed"; readonly to: ReplicaId }
  | { readonly kind: "link"; readonly to: ReplicaId; readonly event: "open" | "failed"; readonly reason?: string };

/**
 * When copies are due, per peer (pure: time enters as `now`, in ms of any one clock). A frame is
 * handed over at `now` as the main thread sends it; a copy is due once `quietMs` passed with no
 * newer frame, and again every `intervalMs` after a copy, while within `windowMs` of the handover.
 */
export class RelaySchedule {
  private readonly peers = new Map<ReplicaId, { handedAt: number; copiedAt: number | null }>();

  constructor(
    readonly quietMs: number,
    readonly intervalMs: number,
    readonly windowMs: number,
  ) {
    if (!(quietMs > 0 && intervalMs > 0 && windowMs >= 0))
      throw new Error(`relay timing must be positive (quiet ${quietMs}, interval ${intervalMs}, window ${windowMs})`);
  }

  /** The main thread sent a heartbeat to `to` at `now` (on its own connection: no copy is due yet). */
  handedOver(to: ReplicaId, now: number): void {
    this.peers.set(to, { handedAt: now, copiedAt: null });
  }

  /** The core is no longer leader: nothing it sent before is copied any more. */
  clear(): void {
    this.peers.clear();
  }

  /** When the next copy to a peer is due, or null when none is (its window ends first). */
  private nextOf(p: { handedAt: number; copiedAt: number | null }): number | null {
    const at = p.copiedAt === null ? p.handedAt + this.quietMs : p.copiedAt + this.intervalMs;
    return at <= p.handedAt + this.windowMs ? at : null;
  }

  /** The peers a copy is due to at `now`. */
  due(now: number): ReplicaId[] {
    const due: ReplicaId[] = [];
    for (const [to, p] of this.peers) {
      if (now > p.handedAt + this.windowMs) {
        this.peers.delete(to);
        continue;
      }
      const next = this.nextOf(p);
      if (next !== null && now >= next) due.push(to);
    }
    return due;
  }

  /** A copy went to `to` at `now`. */
  copied(to: ReplicaId, now: number): void {
    const p = this.peers.get(to);
    if (p !== undefined) p.copiedAt = now;
  }

  /** When, after `now`, the next copy is due (null: none will be without a new handover). */
  nextDue(now: number): number | null {
    let next: number | null = null;
    for (const p of this.peers.values()) {
      const at = this.nextOf(p);
      if (at !== null && at < now) continue;
      if (at !== null) next = next === null ? at : Math.min(next, at);
    }
    return next;
  }
}

/**
 * The relay thread's module: compiled beside the CLI bundle (dist/heartbeat-relay-worker.mjs,
 * reached from dist/ or dist/chunks/), or the TypeScript source beside this module.
 */
function workerModule(): URL | null {
  for (const candidate of [
    "./heartbeat-relay-worker.mjs",
    "../heartbeat-relay-worker.mjs",
    "./heartbeat-relay-worker.ts",
  ]) {
    const url = new URL(candidate, import.meta.url);
    if (existsSync(url)) return url;
  }
  return null;
}

/** Options of {@link HeartbeatRelay}. */
export interface HeartbeatRelayOptions extends Omit<RelayWorkerData, "quietMs"> {
  readonly log: Logger;
  /** A copy went out (for the metric). */
  readonly onRelayed?: (to: ReplicaId) => void;
}

/**
 * The main thread's handle on the relay thread. The thread starts with the first heartbeat handed
 * over (a replica that never leads never starts it: a thread costs about 12 MB of memory).
 */
export class HeartbeatRelay {
  private worker: Worker | null = null;
  private holding = false;
  private closed = false;

  constructor(private options: HeartbeatRelayOptions) {
    if (workerModule() === null)
      throw new Error("the heartbeat relay's module (heartbeat-relay-worker) is missing: run 'npm run build'");
  }

  private start(): Worker {
    const { options } = this;
    const url = workerModule();
    if (url === null)
      throw new Error("the heartbeat relay's module (heartbeat-relay-worker) is missing: run 'npm run build'");
    const { log: _log, onRelayed: _onRelayed, ...rest } = options;
    const data: RelayWorkerData = { ...rest, quietMs: 2 * options.intervalMs };
    const resourceLimits = helperThreadLimits();
    const worker = url.pathname.endsWith(".ts")
      ? // From the sources (tsx): worker threads do not inherit tsx's loader on Node 20.
        new Worker(
          `import("tsx/esm/api").then(({ register }) => { register(); return import(${JSON.stringify(url.href)}); })`,
          { eval: true, workerData: data, resourceLimits },
        )
      : new Worker(url, { workerData: data, resourceLimits });
    worker.on("message", (report: RelayReport) => {
      if (report.kind === "relayed") this.options.onRelayed?.(report.to);
      else if (report.event === "open")
        this.options.log.debug({ peer: report.to }, "heartbeat relay connected to peer");
      else this.options.log.debug({ peer: report.to, reason: report.reason }, "heartbeat relay connection failed");
    });
    worker.on("error", (error) => this.options.log.error({ err: error }, "heartbeat relay thread failed"));
    // It must never keep the process alive.
    worker.unref();
    return worker;
  }

  /** The main thread sent `frame` (a Heartbeat's whole frame) to `to` at `address`. */
  heartbeat(to: ReplicaId, address: Address, frame: Uint8Array): void {
    if (this.closed) return;
    this.holding = true;
    this.worker ??= this.start();
    const command: RelayCommand = { kind: "heartbeat", to, host: address.host, port: address.port, frame };
    this.worker.postMessage(command);
  }

  /** The core is not leader: stop copying. Cheap when there is nothing to stop. */
  clear(): void {
    if (this.closed || !this.holding) return;
    this.holding = false;
    this.worker?.postMessage({ kind: "clear" } satisfies RelayCommand);
  }

  /** Present `material` on the relay's connections from now on. */
  renewTls(material: TlsMaterial): void {
    // A thread started later gets the material current then (`tls` below).
    this.options = { ...this.options, tls: material };
    if (!this.closed) this.worker?.postMessage({ kind: "tls", material } satisfies RelayCommand);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.worker?.terminate();
  }
}

/**
 * The heartbeat relay's thread (impl/runtime/heartbeat-relay.ts): it keeps one connection to each
 * peer the leader heartbeats, on the transport's `relay` lane, and writes the frames the main
 * thread handed over when they are due (`RelaySchedule`). It decodes nothing and decides nothing:
 * it sends only bytes the main thread sent already. It imports no Schema code, so it starts in
 * milliseconds and holds little memory.
 *
 * The handshake is the transport's (impl/runtime/transport.ts): hello (with `lane: "relay"`),
 * the acceptor's challenge with its MAC, our proof; under TLS inside mutual TLS, keyed by the
 * session's exported material.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import type net from "node:net";
import { parentPort, workerData } from "node:worker_threads";
import type { TlsMaterial } from "./certs.ts";
import { RelaySchedule, type RelayCommand, type RelayReport, type RelayWorkerData } from "./heartbeat-relay.ts";
import { handshakeMac, macKeyOf, peerConnect, peerProtocol } from "./peer-tls.ts";
import { nowUs, timeline } from "./timeline.ts";

const data = workerData as RelayWorkerData;
const port = parentPort!;
let material: TlsMaterial | undefined = data.tls;
const schedule = new RelaySchedule(data.quietMs, data.intervalMs, data.windowMs);

/** Largest handshake frame read, as the transport's. */
const handshakeFrameBytesMax = 4096;

interface Link {
  host: string;
  port: number;
  socket: net.Socket | null;
  ready: boolean;
  attempt: number;
  timer: NodeJS.Timeout | null;
  /** The last frame handed over for this peer. */
  frame: Uint8Array | null;
}

const links = new Map<number, Link>();
let timer: NodeJS.Timeout | null = null;

function report(message: RelayReport): void {
  port.postMessage(message);
}

function frameOf(json: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(json), "utf8");
  const frame = Buffer.allocUnsafe(4 + body.length);
  frame.writeUInt32BE(body.length, 0);
  body.copy(frame, 4);
  return frame;
}

function dial(to: number, link: Link): void {
  link.timer = null;
  const { socket, ready } = peerConnect({ host: link.host, port: link.port }, material, {
    clusterId: data.clusterId,
    replica: to,
  });
  link.socket = socket;
  socket.setNoDelay(true);
  const nonce = randomBytes(16).toString("hex");
  let pending = Buffer.alloc(0);
  let failure: string | undefined;
  const fail = (reason: string): void => {
    failure ??= reason;
    socket.destroy();
  };
  const handshakeTimer = setTimeout(
    () => fail(`handshake not finished within ${data.handshakeTimeoutMs} ms`),
    data.handshakeTimeoutMs,
  );
  socket.on(ready, () =>
    socket.write(
      frameOf({
        _tag: "hello",
        proto: peerProtocol,
        clusterId: data.clusterId,
        from: data.self,
        to,
        nonce,
        info: data.info,
        lane: "relay",
      }),
    ),
  );
  socket.on("data", (chunk: Buffer) => {
    // The acceptor sends nothing after its challenge but a `removed` notice (the main thread's
    // transport acts on that on its own connections): anything after the handshake ends the link.
    if (link.ready) return fail("the peer sent a frame on the relay link");
    pending = Buffer.concat([pending, chunk]);
    if (pending.length < 4) return;
    const length = pending.readUInt32BE(0);
    if (length > handshakeFrameBytesMax) return fail(`handshake frame of ${length} bytes`);
    if (pending.length < 4 + length) return;
    let challenge: { _tag?: unknown; nonce?: unknown; mac?: unknown };
    try {
      challenge = JSON.parse(pending.subarray(4, 4 + length).toString("utf8")) as typeof challenge;
    } catch {
      return fail("the challenge is not JSON");
    }
    if (
      challenge._tag !== "challenge" ||
      typeof challenge.nonce !== "string" ||
      !/^[0-9a-f]{32}$/.test(challenge.nonce) ||
      typeof challenge.mac !== "string"
    )
      return fail("expected a challenge");
    const fields = {
      clusterId: data.clusterId,
      dialer: data.self,
      acceptor: to,
      dialerNonce: nonce,
      acceptorNonce: challenge.nonce,
    };
    const key = macKeyOf(socket, data.secret);
    const expected = Buffer.from(handshakeMac(key, "acceptor", fields), "utf8");
    const got = Buffer.from(challenge.mac, "utf8");
    if (expected.length !== got.length || !timingSafeEqual(expected, got))
      return fail("the peer failed authentication (wrong cluster secret or wrong replica id)");
    socket.write(frameOf({ _tag: "proof", mac: handshakeMac(key, "dialer", fields) }));
    clearTimeout(handshakeTimer);
    pending = Buffer.alloc(0);
    link.ready = true;
    link.attempt = 0;
    report({ kind: "link", to, event: "open" });
  });
  socket.on("error", (error) => (failure ??= error.message));
  socket.on("close", () => {
    clearTimeout(handshakeTimer);
    if (link.socket !== socket) return;
    link.socket = null;
    link.ready = false;
    report({ kind: "link", to, event: "failed", reason: failure ?? "closed" });
    // Backoff with jitter, as the transport's, up to 2 s.
    const ceiling = Math.min(2000, 50 * 2 ** Math.min(link.attempt, 10));
    link.attempt += 1;
    link.timer = setTimeout(() => dial(to, link), 25 + Math.random() * ceiling);
    link.timer.unref();
  });
}

/** Send the copies due now, then sleep until the next is due. */
function run(): void {
  timer = null;
  const now = performance.now();
  for (const to of schedule.due(now)) {
    const link = links.get(to);
    schedule.copied(to, now);
    if (link === undefined || link.frame === null || !link.ready || link.socket === null) continue;
    // A copy that cannot go at once is not queued behind others: the next one is due soon.
    if (link.socket.writableLength > 64 * 1024) continue;
    link.socket.write(link.frame);
    report({ kind: "relayed", to });
  }
  arm(now);
}

function arm(now: number): void {
  if (timer !== null) clearTimeout(timer);
  timer = null;
  const next = schedule.nextDue(now);
  if (next !== null) timer = setTimeout(run, Math.max(0, next - now));
}

port.on("message", (command: RelayCommand) => {
  const startUs = timeline === null ? 0 : nowUs();
  handle(command);
  timeline?.span("relay", startUs);
});

function handle(command: RelayCommand): void {
  const now = performance.now();
  switch (command.kind) {
    case "heartbeat": {
      let link = links.get(command.to);
      if (link !== undefined && (link.host !== command.host || link.port !== command.port)) {
        // The peer moved: a new link to its new address.
        if (link.timer !== null) clearTimeout(link.timer);
        const old = link.socket;
        link.socket = null;
        old?.destroy();
        link = undefined;
      }
      if (link === undefined) {
        link = {
          host: command.host,
          port: command.port,
          socket: null,
          ready: false,
          attempt: 0,
          timer: null,
          frame: null,
        };
        links.set(command.to, link);
        dial(command.to, link);
      }
      link.frame = command.frame;
      schedule.handedOver(command.to, now);
      // Re-armed per handover: while the main thread runs, the timer is pushed on and never fires.
      arm(now);
      return;
    }
    case "clear":
      schedule.clear();
      for (const link of links.values()) link.frame = null;
      arm(now);
      return;
    case "tls":
      material = command.material;
      return;
  }
}

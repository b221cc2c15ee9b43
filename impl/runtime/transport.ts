/**
 * TCP between replicas. Each replica dials every peer and sends its messages to that peer on
 * the connections it dialed; it only receives on connections that peers dialed to it. So each
 * link is one-way, and there is no race between two replicas dialing each other. Each link is
 * two connections: a control connection for small messages and a bulk connection for large ones
 * (see `send`), so that a heartbeat never waits behind megabytes of Accepts.
 *
 * The handshake travels as JSON frames; once a connection is open, every frame is one protocol
 * message in the binary codec compiled from the message Schema (impl/runtime/binary-codec.ts):
 * its sender's 6-byte wire id, then the message. The Schema stays the definition, checked once,
 * as the bytes are read.
 *
 * A connection is authenticated both ways before any message flows: the dialer and the
 * acceptor each prove knowledge of the cluster secret with HMAC-SHA256 over both nonces, both
 * replica ids and the cluster id (see `handshakeMac`), or, with TLS material, run the same
 * handshake inside mutual TLS where each certificate must name its replica
 * (impl/runtime/peer-tls.ts). A peer that cannot prove it, a
 * malformed frame, or a message that the message Schema rejects closes that connection with a
 * logged reason; nothing a peer sends can crash the replica. Messages sent while a link is down
 * or backed up are dropped, as a network would: the protocol retries.
 *
 * The listener admits a connection to its handshake only within per-source and global bounds,
 * with slots kept for the configured peers' addresses (impl/runtime/peer-admission.ts), before
 * any TLS work; refusals and failed handshakes of a source are logged at most once per
 * interval, with the number held back, so a flood neither fills the log nor keeps peers out.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import dns from "node:dns";
import net from "node:net";
import type tls from "node:tls";
import { Either, ParseResult, Schema } from "effect";
import type { ReplicaId } from "../core/index.ts";
import type { BinaryCodec } from "./binary-codec.ts";
import { markReleasable, release, releaseBytesMin } from "./release.ts";
import { encodeFrame, FrameDecoder, frameBytesMaxDefault, frameHeaderBytes, parseJson } from "./framing.ts";
import { TurnBudget } from "./turn-budget.ts";
import type { TlsMaterial } from "./certs.ts";
import type { MonotonicClock } from "./clock.ts";
import {
  certificateRefusal,
  handshakeMac,
  macKeyOf,
  peerConnect,
  peerProtocol,
  peerTlsServer,
  renewServer,
} from "./peer-tls.ts";
import type { Logger } from "./log.ts";
import { LogLimiter } from "./log-limiter.ts";
import {
  PeerAdmission,
  peerHandshakeTimeoutMsDefault,
  peerLogIntervalMsDefault,
  sourceOf,
  type AdmissionRefusal,
  type PeerAdmissionLimits,
} from "./peer-admission.ts";

/** A host and TCP port. */
export interface Address {
  readonly host: string;
  readonly port: number;
}

export function formatAddress(address: Address): string {
  return address.host.includes(":") ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/** HOST:PORT (or [v6]:PORT) as an address, or null when it is not one. */
export function addressOfText(text: string): Address | null {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):([0-9]{1,5})$/.exec(text);
  if (match === null) return null;
  const port = Number(match[3]);
  if (port < 1 || port > 65535) return null;
  return { host: match[1] ?? match[2]!, port };
}

const Nonce = Schema.String.pipe(Schema.pattern(/^[0-9a-f]{32}$/));
const Mac = Schema.String.pipe(Schema.pattern(/^[0-9a-f]{64}$/));
const Id = Schema.Int.pipe(Schema.between(1, 1_000_000));
/**
 * What a replica tells its peers about itself: where clients reach it, its incarnation (random
 * per process start), which traces use to pair a receipt with its send, and where peers reach
 * it (`peer`, HOST:PORT). An authenticated dialer that is not in the acceptor's peer list (a
 * replica that joins the cluster) is added to it under that address, so that the acceptor can
 * send to it: this is how running replicas learn a new replica's address (docs/operations.md,
 * "Adding and removing replicas").
 */
const Info = Schema.Struct({
  http: Schema.String.pipe(Schema.maxLength(256)),
  incarnation: Schema.String.pipe(Schema.maxLength(64)),
  peer: Schema.optional(Schema.String.pipe(Schema.maxLength(256))),
});
export type PeerInfo = typeof Info.Type;

/**
 * Dialer to acceptor: who I am, whom I want, my nonce, and which of my connections to you this
 * is (`lane`: absent for the control connection, "bulk" for the one that carries large messages,
 * see {@link Transport.send}; "relay" for the heartbeat relay's, which carries only copies of
 * heartbeats sent on the control connection: impl/runtime/heartbeat-relay.ts).
 */
const Hello = Schema.TaggedStruct("hello", {
  proto: Schema.Literal(peerProtocol),
  clusterId: Schema.String.pipe(Schema.maxLength(128)),
  from: Id,
  to: Id,
  nonce: Nonce,
  info: Info,
  lane: Schema.optional(Schema.Literal("bulk", "relay")),
});
/** Acceptor to dialer: my nonce and my proof. */
const Challenge = Schema.TaggedStruct("challenge", { nonce: Nonce, mac: Mac, info: Info });
/** Dialer to acceptor: my proof. */
const Proof = Schema.TaggedStruct("proof", { mac: Mac });
/**
 * Acceptor to an authenticated dialer, then the acceptor closes: the dialer is no longer a
 * member (a configuration in force without it was chosen), so it should retire. Sent only after
 * both proofs, so nobody without the secret or a certificate can retire a replica.
 */
const Removed = Schema.TaggedStruct("removed", { reason: Schema.String.pipe(Schema.maxLength(1000)) });
/** The frames of the handshake (JSON). */
const Wire = Schema.Union(Hello, Challenge, Proof, Removed);
type Wire = typeof Wire.Type;
const decodeWire = Schema.decodeUnknownEither(Wire);
/**
 * Bytes of the wire id before each message once a connection is open: the sender's id for the
 * message (unique per sender process; traces pair a send with its receipt by it), big-endian.
 */
export const wireIdBytes = 6;

/**
 * Largest group of frames to one peer that `flush` copies into a single buffer (one write through
 * Node's stream, no writev bookkeeping); larger groups go as a corked writev of their parts. Either
 * way a large encoding (release.ts's `releaseBytesMin`) is freed once it is no longer needed: the
 * two bounds are independent.
 */
const coalesceBytesMaxDefault = 64 * 1024;

/**
 * Largest message frame (its wire id and message, in bytes) sent on a peer's control connection;
 * larger ones go on its bulk connection. Heartbeats, grants, votes, Accepteds, Nacks and the
 * Accepts of small values fit; an Accept of a 64 KiB value does not.
 */
export const controlFrameBytesMaxDefault = 8 * 1024;

/** A peer's two outbound connections: small messages, and large ones (see {@link Transport.send}). */
type Lane = "control" | "bulk";
/** The connections a peer may open to us: its two lanes, and its heartbeat relay's. */
type InboundLane = Lane | "relay";

/**
 * Most peers one replica dials (configured and learned), like the most replicas a configuration may hold, with room for
 * stale ones.
 */
export const peersMax = 64;

/** Longest frame accepted before a connection is authenticated, in bytes. */
export const handshakeFrameBytesMax = 4096;

function macEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return x.length === y.length && timingSafeEqual(x, y);
}

function truncate(text: string, length = 300): string {
  return text.length <= length ? text : `${text.slice(0, length)}...`;
}

/** Options of {@link Transport}. Limits state their defaults. */
export interface TransportOptions<M> {
  readonly self: ReplicaId;
  readonly clusterId: string;
  /** The cluster secret; required without `tls`, mixed into the handshake's MACs with it. */
  readonly secret?: Uint8Array | undefined;
  /** Mutual TLS with the cluster CA's certificates (impl/runtime/certs.ts). Default: none (plain TCP). */
  readonly tls?: TlsMaterial | undefined;
  readonly listen: Address;
  readonly peers: ReadonlyMap<ReplicaId, Address>;
  /** The messages' binary codec (binaryCodec of the message Schema). */
  readonly codec: BinaryCodec<M>;
  readonly info: PeerInfo;
  readonly clock: MonotonicClock;
  readonly log: Logger;
  /**
   * Called for every authenticated, schema-valid message, with the sender's wire id and incarnation, its frame's
   * size in bytes, and whether it came on the peer's relay connection (a copy of a heartbeat sent on its control
   * connection).
   */
  readonly onMessage: (
    from: ReplicaId,
    message: M,
    wireId: number,
    senderIncarnation: string,
    bytes: number,
    relayed: boolean,
  ) => void;
  /**
   * The messages a peer's heartbeat relay may send (impl/runtime/heartbeat-relay.ts); any other on a relay connection
   * closes it. Default: none (relay connections are refused).
   */
  readonly relayable?: (message: M) => boolean;
  /** Largest frame, in bytes. Default 16 MiB. */
  readonly frameBytesMax?: number;
  /** Bytes queued on one outbound socket before further sends are dropped. Default 16 MiB. */
  readonly outboundBytesMax?: number;
  /** Largest frame sent on a peer's control connection; larger ones go on its bulk connection. Default 8 KiB. */
  readonly controlFrameBytesMax?: number;
  /**
   * Largest group of frames to one peer copied into one buffer at a flush; larger groups go as a
   * corked writev of their parts. Default 64 KiB.
   */
  readonly coalesceBytesMax?: number;
  /** Time to finish a handshake, in milliseconds. Default 5000. */
  readonly handshakeTimeoutMs?: number;
  /** First and largest reconnect delay, in milliseconds. Defaults 50 and 2000. */
  readonly reconnectDelayMsMin?: number;
  readonly reconnectDelayMsMax?: number;
  /** Bounds on connections in their handshake (impl/runtime/peer-admission.ts). Default: its defaults. */
  readonly admission?: Partial<PeerAdmissionLimits>;
  /** Inbound refusals and failures are logged at most once per source per this interval. Default 10 s. */
  readonly refusalLogIntervalMs?: number;
  /**
   * Observability hooks. A connection closed for a failed handshake, bad frame or message (`logged`: its line was not
   * held back).
   */
  readonly onRejected?: (reason: string, logged: boolean) => void;
  /** A connection refused before its handshake (too many from its source, or in all). */
  readonly onRefused?: (reason: AdmissionRefusal) => void;
  readonly onDropped?: (to: ReplicaId, reason: "not-connected" | "backpressure" | "too-large" | "unknown-peer") => void;
  /**
   * Why an authenticated dialer is no longer a member, or null (the default: always null). A
   * removed dialer is told so and its connection closed.
   */
  readonly removedPeer?: (peer: ReplicaId) => string | null;
  /**
   * What is wrong with what a peer says about itself in its handshake, or null (the default: nothing
   * is): a peer whose information is refused is not connected, with the reason logged.
   */
  readonly infoRefusal?: (info: PeerInfo) => string | null;
  /** An authenticated peer told us that we were removed from the cluster. */
  readonly onRemoved?: (by: ReplicaId, reason: string) => void;
  /** A replica outside the peer list connected and announced where it listens: it is a peer now. */
  readonly onPeerLearned?: (peer: ReplicaId, address: Address) => void;
  readonly onPeerEvent?: (peer: ReplicaId, event: "connected" | "disconnected" | "inbound" | "inbound-closed") => void;
}

/** What the status page shows for one peer. */
export interface PeerHealth {
  readonly id: ReplicaId;
  readonly address: string;
  /** Our outbound link to it is authenticated and open (its control connection). */
  readonly outbound: boolean;
  /** Our bulk connection to it, for large messages, is open too (without it they take the control connection). */
  readonly bulk: boolean;
  /** It has an authenticated link to us. */
  readonly inbound: boolean;
  /** Milliseconds since we last received a message from it (null: never). */
  readonly lastHeardMsAgo: number | null;
  readonly reconnects: number;
  readonly info: PeerInfo | null;
}

/** One of the two outbound connections to a peer. */
interface OutboundLink {
  readonly peer: ReplicaId;
  readonly address: Address;
  readonly lane: Lane;
  socket: net.Socket | null;
  ready: boolean;
  attempt: number;
  timer: NodeJS.Timeout | null;
  reconnects: number;
  /** When it last opened, as a count of connections this transport opened (0: never). */
  opened: number;
}

/** An inbound connection admitted to its handshake. */
interface Slot {
  /** The source address, as admission counts it. */
  readonly source: string;
  /** The TCP socket (under TLS, the one the TLS socket wraps). */
  readonly raw: net.Socket;
  /** Give the handshake slot back (once; later calls do nothing). */
  readonly release: () => void;
  readonly timer: NodeJS.Timeout;
  /** Its refusal has been reported. */
  reported: boolean;
}

interface PeerRecord {
  /** The peer's open control connection to us. */
  inbound: net.Socket | null;
  /** The peer's open bulk connection to us. */
  inboundBulk: net.Socket | null;
  /** The peer's heartbeat relay's connection to us. */
  inboundRelay: net.Socket | null;
  /** When a message last arrived on its bulk connection (null: never). */
  lastBulkMs: number | null;
  lastHeardMs: number | null;
  info: PeerInfo | null;
}

/** A peer's record before anything is heard from it. */
function newPeerRecord(): PeerRecord {
  return { inbound: null, inboundBulk: null, inboundRelay: null, lastBulkMs: null, lastHeardMs: null, info: null };
}

/** The TCP mesh of one replica. */
/** The frames `send` held for one socket until the next flush, and their bytes. */
interface Unflushed {
  readonly socket: net.Socket;
  readonly chunks: Buffer[];
  bytes: number;
}

export class Transport<M> {
  private readonly server: net.Server;
  /** Each peer's control connection, and its bulk connection. */
  private readonly links = new Map<ReplicaId, OutboundLink>();
  private readonly bulkLinks = new Map<ReplicaId, OutboundLink>();
  private readonly peerRecords = new Map<ReplicaId, PeerRecord>();
  private readonly inbound = new Set<net.Socket>();
  /**
   * Frames sent since the last flush, per outbound socket (see `flush`): a list made anew after
   * each flush, never a long-lived Map emptied by `clear()`. V8's `Map.prototype.clear` leaves the
   * old hash table holding its entries and pointing to the new one; once the Map's table is in
   * the old generation, every later table, with the frames it held, was kept through each
   * scavenge until the next full collection (docs/performance.md, "What a follower kept through
   * its scavenges").
   */
  private unflushed: Unflushed[] = [];
  /** Large encodings handed to sockets, and how many of their writes are not done yet (see `written`). */
  private readonly writesPending = new Map<Buffer, number>();
  /** The last message sent and its encoding (see `encoded`). */
  private lastMessage: M | undefined = undefined;
  private lastEncoded: Buffer = Buffer.alloc(0);
  private closed = false;
  /** Outbound connections opened so far (see `linkGeneration`). */
  private linksOpened = 0;
  /** Decoding of bulk frames, at most about 1 MiB per event-loop turn (impl/runtime/turn-budget.ts). */
  private readonly bulkTurns = new TurnBudget();
  private readonly frameBytesMax: number;
  private readonly outboundBytesMax: number;
  private readonly controlFrameBytesMax: number;
  private readonly coalesceBytesMax: number;
  private readonly handshakeTimeoutMs: number;
  private readonly reconnectDelayMsMin: number;
  private readonly reconnectDelayMsMax: number;
  private readonly admission: PeerAdmission;
  /** Addresses the configured peers' hosts resolve to: they may use the reserved slots. */
  private readonly peerSources = new Set<string>();
  private peerSourcesTimer: NodeJS.Timeout | null = null;
  /** Inbound log lines per source, and outbound ones per peer, at most one per interval. */
  private readonly refusalLog: LogLimiter;
  /** Sockets this side closed with a logged reason. */
  private readonly rejectedHere = new WeakSet<net.Socket>();
  private tls: TlsMaterial | undefined;
  /** The TLS side of the listener, when there is TLS material. */
  private readonly tlsServer: tls.Server | undefined;
  /** Admitted connections in their TLS handshake, by remote address and port. */
  private readonly tlsPending = new Map<string, Slot>();

  constructor(private readonly options: TransportOptions<M>) {
    if (options.peers.has(options.self)) throw new Error(`peer list contains this replica's own id ${options.self}`);
    this.frameBytesMax = options.frameBytesMax ?? frameBytesMaxDefault;
    this.outboundBytesMax = options.outboundBytesMax ?? 16 * 1024 * 1024;
    this.controlFrameBytesMax = options.controlFrameBytesMax ?? controlFrameBytesMaxDefault;
    this.coalesceBytesMax = options.coalesceBytesMax ?? coalesceBytesMaxDefault;
    this.handshakeTimeoutMs = options.handshakeTimeoutMs ?? peerHandshakeTimeoutMsDefault;
    this.reconnectDelayMsMin = options.reconnectDelayMsMin ?? 50;
    this.reconnectDelayMsMax = options.reconnectDelayMsMax ?? 2000;
    this.admission = new PeerAdmission(options.admission ?? {}, (source) => this.peerSources.has(source));
    this.refusalLog = new LogLimiter(options.refusalLogIntervalMs ?? peerLogIntervalMsDefault);
    for (const [peer, address] of options.peers) {
      this.newLinks(peer, address);
      this.peerRecords.set(peer, newPeerRecord());
    }
    if (options.secret === undefined && options.tls === undefined)
      throw new Error("peer connections need the cluster secret, TLS material, or both");
    this.tls = options.tls;
    this.server = net.createServer((socket) => this.accept(socket));
    this.tlsServer = this.tls === undefined ? undefined : peerTlsServer(this.tls);
    this.tlsServer?.on("secureConnection", (socket: tls.TLSSocket) => this.secured(socket));
    this.tlsServer?.on("tlsClientError", (error: Error, socket: tls.TLSSocket) => {
      const slot = this.tlsPending.get(`${socket.remoteAddress}|${socket.remotePort}`);
      if (slot !== undefined) this.rejectInbound(socket, slot, `TLS handshake failed: ${error.message}`);
    });
  }

  /** Present `material` on the connections made and accepted from now on (a renewed certificate). */
  renewTls(material: TlsMaterial): void {
    if (this.tls === undefined) throw new Error("this transport does not use TLS");
    this.tls = material;
    renewServer(this.tlsServer!, material);
  }

  /** Listen for peers and start dialing them. Resolves once listening. */
  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.options.listen.port, this.options.listen.host, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    this.server.on("error", (error) => this.options.log.error({ err: error }, "peer listener error"));
    for (const link of this.allLinks()) this.dial(link);
    await this.resolvePeerSources();
    this.peerSourcesTimer = setInterval(() => void this.resolvePeerSources(), 60_000);
    this.peerSourcesTimer.unref();
  }

  /** The addresses of the peers' hosts, for the slots kept for them (a name is looked up again every minute). */
  private async resolvePeerSources(): Promise<void> {
    for (const link of this.links.values()) {
      const host = link.address.host;
      if (net.isIP(host) !== 0) {
        this.peerSources.add(sourceOf(host));
        continue;
      }
      try {
        for (const { address } of await dns.promises.lookup(host, { all: true }))
          this.peerSources.add(sourceOf(address));
      } catch {
        // Not resolvable now: its connections get the open slots until it is.
      }
    }
  }

  /** The port actually bound (useful with port 0). */
  get port(): number {
    const address = this.server.address();
    if (address === null || typeof address === "string") throw new Error("transport is not listening");
    return address.port;
  }

  /**
   * Send `message` to `to` under the caller's `wireId` (unique per sender process; traces use
   * it to pair a send with its receipt). Returns false when dropped (link down or backed up).
   * Never throws for network reasons.
   *
   * Small messages and large ones travel on two connections to each peer, so that a heartbeat or
   * a grant never waits behind megabytes of Accepts in a socket's buffers (in the sender's stream,
   * both kernels' buffers, and the receiver's reads). A frame up to `controlFrameBytesMax` goes on
   * the control connection, a larger one on the bulk connection; while the one it belongs on is
   * down, on the other. Each connection is FIFO, but a small message may overtake a large one
   * sent before it: the core assumes no order between messages (docs/impl.md, section 3).
   */
  send(to: ReplicaId, message: M, wireId: number): boolean {
    const control = this.links.get(to);
    if (control === undefined) {
      // A replica the core knows from the log (a learner just added) whose address has not
      // reached us yet: it announces itself when it dials us. Until then, a lost message.
      this.options.onDropped?.(to, "unknown-peer");
      return false;
    }
    const bulk = this.bulkLinks.get(to)!;
    if (!(control.ready && control.socket !== null) && !(bulk.ready && bulk.socket !== null)) {
      this.options.onDropped?.(to, "not-connected");
      return false;
    }
    const encoded = this.encoded(message);
    const bodyBytes = wireIdBytes + encoded.length;
    const [preferred, other] = bodyBytes <= this.controlFrameBytesMax ? [control, bulk] : [bulk, control];
    const link = preferred.ready && preferred.socket !== null ? preferred : other;
    if (!link.ready || link.socket === null) {
      this.options.onDropped?.(to, "not-connected");
      return false;
    }
    if (link.socket.writableLength + (this.unflushedOf(link.socket)?.bytes ?? 0) > this.outboundBytesMax) {
      this.options.onDropped?.(to, "backpressure");
      return false;
    }
    if (bodyBytes > this.frameBytesMax) {
      // The peer would refuse it and close the link; dropping it is what a lossy network does,
      // and the error names the limit that the core's batches must respect.
      this.options.log.error(
        { peer: to, bytes: bodyBytes, frameBytesMax: this.frameBytesMax },
        "message larger than the frame limit dropped",
      );
      this.options.onDropped?.(to, "too-large");
      return false;
    }
    // Held until `flush` (the driver calls it after each group of sends; a nextTick is the
    // backstop): one write system call per peer per group instead of one per message.
    let held = this.unflushedOf(link.socket);
    if (held === undefined) {
      held = { socket: link.socket, chunks: [], bytes: 0 };
      this.unflushed.push(held);
      if (this.unflushed.length === 1) process.nextTick(() => this.flush());
    }
    // The length and wire id, then the message: the message is encoded once for all its peers.
    const prefix = Buffer.allocUnsafe(frameHeaderBytes + wireIdBytes);
    prefix.writeUInt32BE(bodyBytes, 0);
    prefix.writeUIntBE(wireId % 2 ** 48, frameHeaderBytes, wireIdBytes);
    held.chunks.push(prefix, encoded);
    held.bytes += prefix.length + encoded.length;
    if (encoded.length >= releaseBytesMin) this.writesPending.set(encoded, (this.writesPending.get(encoded) ?? 0) + 1);
    return true;
  }

  /**
   * The whole frame (length, wire id, message) that {@link send} put on the wire for `message`
   * under `wireId`: what the heartbeat relay may copy (impl/runtime/heartbeat-relay.ts). Call it
   * right after `send`: the message's encoding is the one `send` made.
   */
  frameOf(message: M, wireId: number): Buffer {
    const encoded = this.encoded(message);
    const frame = Buffer.allocUnsafe(frameHeaderBytes + wireIdBytes + encoded.length);
    frame.writeUInt32BE(wireIdBytes + encoded.length, 0);
    frame.writeUIntBE(wireId % 2 ** 48, frameHeaderBytes, wireIdBytes);
    encoded.copy(frame, frameHeaderBytes + wireIdBytes);
    return frame;
  }

  /**
   * A write of the large encoding `chunk` is done (or will never be): once none is pending and it
   * is no longer the cached encoding, its memory goes at the next scavenge (release.ts) instead of
   * waiting, promoted, for a full collection.
   */
  private written(chunk: Buffer): void {
    const pending = this.writesPending.get(chunk);
    if (pending === undefined) return;
    if (pending > 1) return void this.writesPending.set(chunk, pending - 1);
    this.writesPending.delete(chunk);
    if (chunk !== this.lastEncoded) release(chunk);
  }

  /**
   * The message's bytes, encoded once however many peers it goes to: the core sends one message
   * object to every peer in a row (an Accept of a 1 MiB value cost an encoding per peer).
   */
  private encoded(message: M): Buffer {
    if (message !== this.lastMessage) {
      const previous = this.lastEncoded;
      this.lastEncoded = this.options.codec.encode(message);
      this.lastMessage = message;
      markReleasable(this.lastEncoded);
      if (!this.writesPending.has(previous)) release(previous);
    }
    return this.lastEncoded;
  }

  /**
   * Put every message sent since the last flush on the wire now, one write per peer. Small
   * groups (the common case: an Accept, a heartbeat, a few Accepteds) are copied into one
   * buffer, which Node's stream writes at once; a group with a large message goes as a corked
   * writev of its parts, so a large value is never copied per peer.
   */
  flush(): void {
    const groups = this.unflushed;
    if (groups.length === 0) return;
    this.unflushed = [];
    for (const held of groups) {
      const socket = held.socket;
      // A link that closed meanwhile lost these messages, as a network would.
      if (socket.destroyed || !socket.writable) {
        for (const chunk of held.chunks) this.written(chunk);
        continue;
      }
      if (held.bytes <= this.coalesceBytesMax) {
        const only = held.chunks.length === 1 ? held.chunks[0]! : undefined;
        // A lone frame nobody will release goes as it is (a small write's usual flush, no copy);
        // otherwise the parts are copied into one buffer, and a large encoding among them is used
        // up once copied.
        if (only !== undefined && !this.writesPending.has(only)) {
          socket.write(only);
          continue;
        }
        socket.write(Buffer.concat(held.chunks, held.bytes));
        for (const chunk of held.chunks) this.written(chunk);
        continue;
      }
      socket.cork();
      for (const chunk of held.chunks)
        if (this.writesPending.has(chunk)) socket.write(chunk, () => this.written(chunk));
        else socket.write(chunk);
      socket.uncork();
    }
  }

  /** What `send` holds for `socket` until the next flush, if anything. */
  private unflushedOf(socket: net.Socket): Unflushed | undefined {
    for (const held of this.unflushed) if (held.socket === socket) return held;
    return undefined;
  }

  /** Bytes waiting in outbound sockets, per peer (a queue depth for /metrics). */
  outboundQueuedBytes(): Map<ReplicaId, number> {
    const depths = new Map<ReplicaId, number>();
    for (const link of this.allLinks())
      depths.set(
        link.peer,
        (depths.get(link.peer) ?? 0) +
          (link.socket === null ? 0 : link.socket.writableLength + (this.unflushedOf(link.socket)?.bytes ?? 0)),
      );
    return depths;
  }

  /** Per-peer link health for the status page. */
  health(): PeerHealth[] {
    const now = this.options.clock.nowMs();
    return [...this.links.values()].map((link) => {
      const record = this.peerRecords.get(link.peer)!;
      return {
        id: link.peer,
        address: formatAddress(link.address),
        outbound: link.ready,
        bulk: this.bulkLinks.get(link.peer)!.ready,
        inbound: record.inbound !== null,
        lastHeardMsAgo: record.lastHeardMs === null ? null : Math.max(0, now - record.lastHeardMs),
        reconnects: link.reconnects + this.bulkLinks.get(link.peer)!.reconnects,
        info: record.info,
      };
    });
  }

  /**
   * Milliseconds since a message last arrived from `peer` on its bulk connection (null: never): a
   * peer streaming large messages to us right now.
   */
  bulkHeardMsAgo(peer: ReplicaId): number | null {
    const last = this.peerRecords.get(peer)?.lastBulkMs ?? null;
    return last === null ? null : Math.max(0, this.options.clock.nowMs() - last);
  }

  /**
   * A number that grows whenever one of our connections to `peer` opens again (0: none opened): a
   * message handed to the transport at one generation is still on its way, or delivered, as long as
   * the generation stays the same (a dropped connection loses what it held, and its replacement
   * changes the generation).
   */
  linkGeneration(peer: ReplicaId): number {
    return (this.links.get(peer)?.opened ?? 0) + (this.bulkLinks.get(peer)?.opened ?? 0);
  }

  /** What a peer told us about itself in its last handshake (its HTTP address), if anything. */
  peerInfo(peer: ReplicaId): PeerInfo | null {
    return this.peerRecords.get(peer)?.info ?? null;
  }

  /** Close every connection and stop listening and dialing. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.peerSourcesTimer !== null) clearInterval(this.peerSourcesTimer);
    for (const link of this.allLinks()) {
      if (link.timer !== null) clearTimeout(link.timer);
      link.socket?.destroy();
    }
    for (const socket of this.inbound) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private reject(socket: net.Socket, reason: string, context: Record<string, unknown>): void {
    this.rejectedHere.add(socket);
    this.options.log.warn(
      { ...context, reason: truncate(reason), remote: `${socket.remoteAddress}:${socket.remotePort}` },
      "closing peer connection",
    );
    this.options.onRejected?.(reason, true);
    socket.destroy();
  }

  /** Close an inbound connection before it is open; logged at most once per source per interval. */
  private rejectInbound(socket: net.Socket, slot: Slot, reason: string): void {
    if (slot.reported) return;
    slot.reported = true;
    const held = this.refusalLog.take(`inbound ${slot.source}`, this.options.clock.nowMs());
    if (held !== null)
      this.options.log.warn(
        {
          direction: "inbound",
          reason: truncate(reason),
          remote: `${slot.raw.remoteAddress}:${slot.raw.remotePort}`,
          ...(held > 0 ? { heldBack: held } : {}),
        },
        held > 0
          ? `closing peer connection (and ${held} more from this address since the last line)`
          : "closing peer connection",
      );
    this.options.onRejected?.(reason, held !== null);
    socket.destroy();
    slot.raw.destroy();
  }

  /** Refuse a connection before its handshake (admission said no); logged as {@link rejectInbound} is. */
  private refuse(socket: net.Socket, source: string, reason: AdmissionRefusal): void {
    this.options.onRefused?.(reason);
    const held = this.refusalLog.take(`inbound ${source}`, this.options.clock.nowMs());
    if (held !== null) {
      const why = {
        "shutting-down": "shutting down",
        "source-handshakes": "too many handshakes in flight from this address",
        "source-rate": "too many new connections a second from this address",
        "handshakes-full": "every handshake slot open to this address is taken",
      }[reason];
      this.options.log.warn(
        {
          direction: "inbound",
          reason,
          remote: `${socket.remoteAddress}:${socket.remotePort}`,
          ...(held > 0 ? { heldBack: held } : {}),
        },
        `refused a peer connection: ${why}${held > 0 ? ` (and ${held} more from this address since the last line)` : ""}`,
      );
    }
    socket.destroy();
  }

  private newNonce(): string {
    return randomBytes(16).toString("hex");
  }

  /**
   * Frames of one socket: while `messages()` gives no handler, each is a handshake frame (JSON,
   * checked by the Wire Schema) for `handle`; once it gives one, each frame goes to it as bytes.
   * Failures close the connection.
   */
  private onFrames(
    socket: net.Socket,
    decoder: FrameDecoder,
    reject: (reason: string) => void,
    handle: (frame: Wire) => void,
    messages: () => ((body: Buffer) => void) | null = () => null,
  ): void {
    socket.on("data", (chunk: Buffer) => {
      decoder.feed(chunk);
      // Frame by frame: the frames behind a handshake's last one in the same chunk (a dialer sends
      // as soon as it has sent its proof) are held to the limit that handshake raised.
      for (let next = decoder.next(); next !== null; next = decoder.next()) {
        if (next._tag === "error") return reject(next.reason);
        const body = next.body;
        if (socket.destroyed) return;
        const message = messages();
        if (message !== null) {
          message(body);
          continue;
        }
        const parsed = parseJson(body);
        if (Either.isLeft(parsed)) return reject(parsed.left);
        const wire = decodeWire(parsed.right, { onExcessProperty: "error" });
        if (Either.isLeft(wire)) {
          return reject(
            `frame does not match the peer protocol: ${ParseResult.TreeFormatter.formatErrorSync(wire.left)}`,
          );
        }
        handle(wire.right);
      }
    });
  }

  private writeWire(socket: net.Socket, frame: Wire): void {
    socket.write(encodeFrame(Buffer.from(JSON.stringify(frame), "utf8"), this.frameBytesMax));
  }

  // ---- Acceptor side: peers dial us and send us messages. ----

  private accept(raw: net.Socket): void {
    const source = sourceOf(raw.remoteAddress);
    raw.on("error", () => undefined);
    const refusal = this.closed ? "shutting-down" : this.admission.admit(source, this.options.clock.nowMs());
    if (refusal !== null) return this.refuse(raw, source, refusal);
    this.inbound.add(raw);
    raw.setNoDelay(true);
    let admitted = true;
    const key = `${raw.remoteAddress}|${raw.remotePort}`;
    const slot: Slot = {
      source,
      raw,
      release: () => {
        if (!admitted) return;
        admitted = false;
        clearTimeout(slot.timer);
        this.admission.release(source);
      },
      // Covers the TLS handshake too: the slot is taken from the first byte.
      timer: setTimeout(
        () => this.rejectInbound(raw, slot, `handshake not finished within ${this.handshakeTimeoutMs} ms`),
        this.handshakeTimeoutMs,
      ),
      reported: false,
    };
    raw.on("close", () => {
      slot.release();
      this.inbound.delete(raw);
      if (this.tlsPending.delete(key))
        this.rejectInbound(raw, slot, "TLS handshake failed: the connection closed before it finished");
    });
    if (this.tlsServer === undefined) return this.handshake(raw, slot);
    this.tlsPending.set(key, slot);
    this.tlsServer.emit("connection", raw);
  }

  /** A TLS handshake finished: refuse a certificate that does not chain to the CA, else go on. */
  private secured(socket: tls.TLSSocket): void {
    const key = `${socket.remoteAddress}|${socket.remotePort}`;
    const slot = this.tlsPending.get(key);
    if (slot === undefined) return void socket.destroy();
    this.tlsPending.delete(key);
    if (!socket.authorized)
      return this.rejectInbound(
        socket,
        slot,
        `TLS handshake failed: its certificate is refused (${String(socket.authorizationError ?? "none given")})`,
      );
    this.handshake(socket, slot);
  }

  /** The peer protocol's handshake on an admitted connection, then its messages. */
  private handshake(socket: net.Socket, slot: Slot): void {
    const decoder = new FrameDecoder(handshakeFrameBytesMax);
    const acceptorNonce = this.newNonce();
    let state:
      | { phase: "hello" }
      | { phase: "proof"; hello: typeof Hello.Type }
      | { phase: "open"; peer: ReplicaId; incarnation: string; lane: InboundLane }
      | { phase: "told-removed" } = { phase: "hello" };
    socket.on("error", () => undefined);
    socket.on("close", () => {
      if (state.phase === "open") {
        const record = this.peerRecords.get(state.peer)!;
        if (record.inbound === socket) {
          record.inbound = null;
          this.options.onPeerEvent?.(state.peer, "inbound-closed");
        }
        if (record.inboundBulk === socket) record.inboundBulk = null;
        if (record.inboundRelay === socket) record.inboundRelay = null;
      }
    });
    const reject = (reason: string): void => {
      if (state.phase === "open") this.reject(socket, reason, { peer: state.peer, direction: "inbound" });
      else this.rejectInbound(socket, slot, reason);
    };
    // Once open, every frame is a message in the binary codec.
    const messages = (): ((body: Buffer) => void) | null => {
      if (state.phase !== "open") return null;
      const { peer, incarnation, lane } = state;
      // Bulk frames (values of up to 1 MiB) are decoded within a turn's budget: a socket read
      // that completes several of them does not decode them all in one turn of the event loop.
      if (lane === "bulk")
        return (body) =>
          this.bulkTurns.run(body.length, () => {
            // Closed, or the peer forgotten, meanwhile: what it sent goes with it.
            if (!this.closed && this.peerRecords.has(peer)) this.deliver(peer, incarnation, socket, body, lane);
          });
      return (body) => this.deliver(peer, incarnation, socket, body, lane);
    };
    const handshake = (frame: Wire): void => {
      if (state.phase === "told-removed" || state.phase === "open") return;
      if (state.phase === "hello") {
        if (frame._tag !== "hello") return reject(`expected hello, got ${frame._tag}`);
        const refusal =
          this.checkHello(frame) ??
          certificateRefusal(socket, this.options.clusterId, frame.from)?.replace(/^/, `replica ${frame.from}: `);
        if (refusal !== undefined) return reject(refusal);
        const mac = handshakeMac(macKeyOf(socket, this.options.secret), "acceptor", {
          clusterId: this.options.clusterId,
          dialer: frame.from,
          acceptor: this.options.self,
          dialerNonce: frame.nonce,
          acceptorNonce,
        });
        this.writeWire(socket, { _tag: "challenge", nonce: acceptorNonce, mac, info: this.options.info });
        state = { phase: "proof", hello: frame };
        return;
      }
      if (state.phase === "proof") {
        if (frame._tag !== "proof") return reject(`expected proof, got ${frame._tag}`);
        const hello = state.hello;
        const expected = handshakeMac(macKeyOf(socket, this.options.secret), "dialer", {
          clusterId: this.options.clusterId,
          dialer: hello.from,
          acceptor: this.options.self,
          dialerNonce: hello.nonce,
          acceptorNonce,
        });
        if (!macEqual(expected, frame.mac))
          return reject(`replica ${hello.from} failed authentication (wrong cluster secret)`);
        slot.release();
        const removed = this.options.removedPeer?.(hello.from) ?? null;
        if (removed !== null) {
          // Told once per connection; a removed replica that keeps dialing is logged once per interval.
          if (this.refusalLog.allow(`removed ${hello.from}`, this.options.clock.nowMs()))
            this.options.log.info({ peer: hello.from, reason: removed }, "told a removed replica that it was removed");
          this.writeWire(socket, { _tag: "removed", reason: removed });
          state = { phase: "told-removed" };
          socket.end();
          return;
        }
        const lane = hello.lane ?? "control";
        if (lane === "relay" && this.options.relayable === undefined)
          return reject(`replica ${hello.from} opened a heartbeat relay connection, which this replica does not take`);
        state = { phase: "open", peer: hello.from, incarnation: hello.info.incarnation, lane };
        decoder.setLimit(this.frameBytesMax);
        this.openInbound(hello.from, socket, hello.info, lane);
        return;
      }
    };
    this.onFrames(socket, decoder, reject, handshake, messages);
  }

  private checkHello(hello: typeof Hello.Type): string | undefined {
    if (hello.clusterId !== this.options.clusterId) {
      return `peer belongs to cluster ${JSON.stringify(hello.clusterId)}, not ${JSON.stringify(this.options.clusterId)}`;
    }
    if (hello.to !== this.options.self)
      return `peer dialed replica ${hello.to}, but this is replica ${this.options.self}`;
    if (hello.from === this.options.self) return `peer claims this replica's own id ${hello.from}`;
    const refusal = this.options.infoRefusal?.(hello.info) ?? null;
    if (refusal !== null) return `replica ${hello.from}: ${refusal}`;
    if (!this.peerRecords.has(hello.from) && hello.info.peer !== undefined && addressOfText(hello.info.peer) === null) {
      return `replica ${hello.from} announced a peer address that is not HOST:PORT: ${JSON.stringify(hello.info.peer)}`;
    }
    return undefined;
  }

  /**
   * Add `peer` at `address` and start dialing it, unless it is known already (a configured
   * peer keeps the address it was given). Returns true when it was added.
   */
  addPeer(peer: ReplicaId, address: Address): boolean {
    if (peer === this.options.self || this.links.has(peer) || this.closed) return false;
    if (this.links.size >= peersMax) {
      this.options.log.warn({ peer, address: formatAddress(address), peersMax }, "not adding a peer: too many peers");
      return false;
    }
    const links = this.newLinks(peer, address);
    if (!this.peerRecords.has(peer)) this.peerRecords.set(peer, newPeerRecord());
    this.options.log.info({ peer, address: formatAddress(address) }, "learned a new peer");
    this.options.onPeerLearned?.(peer, address);
    if (this.server.listening) for (const link of links) this.dial(link);
    return true;
  }

  /** The two outbound connections to a new peer (not dialed yet). */
  private newLinks(peer: ReplicaId, address: Address): OutboundLink[] {
    const link = (lane: Lane): OutboundLink => ({
      peer,
      address,
      lane,
      socket: null,
      ready: false,
      attempt: 0,
      timer: null,
      reconnects: 0,
      opened: 0,
    });
    const links = [link("control"), link("bulk")];
    this.links.set(peer, links[0]!);
    this.bulkLinks.set(peer, links[1]!);
    return links;
  }

  /** Every outbound connection, both lanes of every peer. */
  private allLinks(): OutboundLink[] {
    return [...this.links.values(), ...this.bulkLinks.values()];
  }

  /** The peer address of `peer`, if known. */
  peerAddress(peer: ReplicaId): Address | null {
    return this.links.get(peer)?.address ?? null;
  }

  private openInbound(peer: ReplicaId, socket: net.Socket, info: PeerInfo, lane: InboundLane): void {
    if (!this.links.has(peer)) {
      // Authenticated, but not in our peer list: a replica that joins. Without an address we
      // can only receive from it; with one, it becomes a peer we dial.
      const address = info.peer === undefined ? null : addressOfText(info.peer);
      if (address !== null) this.addPeer(peer, address);
      else if (!this.peerRecords.has(peer)) this.peerRecords.set(peer, newPeerRecord());
    }
    const record = this.peerRecords.get(peer)!;
    // A peer that reconnects replaces its old link; the old socket may be half-dead.
    const old = lane === "control" ? record.inbound : lane === "bulk" ? record.inboundBulk : record.inboundRelay;
    if (old !== null && old !== socket) old.destroy();
    if (lane === "control") record.inbound = socket;
    else if (lane === "bulk") record.inboundBulk = socket;
    else record.inboundRelay = socket;
    if (lane === "relay") {
      this.options.log.debug({ peer }, "peer opened its heartbeat relay connection to us");
      return;
    }
    record.info = info;
    if (lane === "bulk") {
      this.options.log.debug({ peer }, "peer opened its bulk connection to us");
      return;
    }
    this.options.log.info({ peer, info }, "peer connected to us");
    this.options.onPeerEvent?.(peer, "inbound");
    // The peer is evidently back: dial it now rather than at the end of our backoff, so that a
    // restarted replica hears from the others well within an election timeout.
    for (const link of [this.links.get(peer), this.bulkLinks.get(peer)]) {
      if (link !== undefined && !link.ready && link.timer !== null) {
        clearTimeout(link.timer);
        link.attempt = 0;
        this.dial(link);
      }
    }
  }

  /** One message frame of an open inbound link: its wire id, then the message in the binary codec. */
  private deliver(peer: ReplicaId, incarnation: string, socket: net.Socket, body: Buffer, lane: InboundLane): void {
    const context = { peer, direction: "inbound" };
    if (body.length < wireIdBytes)
      return this.reject(
        socket,
        `message rejected: a frame of ${body.length} bytes, shorter than its wire id`,
        context,
      );
    const decoded = this.options.codec.decode(body, wireIdBytes);
    if (Either.isLeft(decoded)) return this.reject(socket, `message rejected: ${decoded.left}`, context);
    if (lane === "relay" && this.options.relayable?.(decoded.right) !== true)
      return this.reject(socket, "message rejected: not a message a heartbeat relay may send", context);
    const record = this.peerRecords.get(peer)!;
    record.lastHeardMs = this.options.clock.nowMs();
    if (lane === "bulk") record.lastBulkMs = record.lastHeardMs;
    this.options.onMessage(
      peer,
      decoded.right,
      body.readUIntBE(0, wireIdBytes),
      incarnation,
      body.length,
      lane === "relay",
    );
  }

  // ---- Dialer side: we dial each peer and send it our messages. ----

  private dial(link: OutboundLink): void {
    if (this.closed) return;
    link.timer = null;
    const { socket, ready } = peerConnect(link.address, this.tls, {
      clusterId: this.options.clusterId,
      replica: link.peer,
    });
    link.socket = socket;
    socket.setNoDelay(true);
    const decoder = new FrameDecoder(handshakeFrameBytesMax);
    const dialerNonce = this.newNonce();
    const context = { peer: link.peer, direction: "outbound", ...(link.lane === "bulk" ? { lane: "bulk" } : {}) };
    const timer = setTimeout(() => {
      if (!link.ready) this.reject(socket, `handshake not finished within ${this.handshakeTimeoutMs} ms`, context);
    }, this.handshakeTimeoutMs);
    let connected = false;
    let lastError: string | undefined;
    socket.on("connect", () => (connected = true));
    socket.on(ready, () => {
      this.writeWire(socket, {
        _tag: "hello",
        proto: peerProtocol,
        clusterId: this.options.clusterId,
        from: this.options.self,
        to: link.peer,
        nonce: dialerNonce,
        info: this.options.info,
        ...(link.lane === "bulk" ? { lane: "bulk" as const } : {}),
      });
    });
    socket.on("error", (error) => {
      lastError = error.message;
      this.options.log.debug({ ...context, err: error.message }, "peer connection error");
    });
    socket.on("close", () => {
      clearTimeout(timer);
      // The peer was reached but closed the connection before the handshake finished: it
      // refused us (its log says why: a certificate, a secret, too many connections) or it is
      // stopping. Said at most once per peer per interval; a peer that is down is routine.
      if (!link.ready && connected && !this.rejectedHere.has(socket)) {
        const held = this.refusalLog.take(`outbound ${link.peer}`, this.options.clock.nowMs());
        if (held !== null)
          this.options.log.warn(
            {
              ...context,
              ...(lastError === undefined ? {} : { err: lastError }),
              ...(held > 0 ? { heldBack: held } : {}),
            },
            "peer closed our connection before the handshake finished (it refused us or is stopping; its log says which)",
          );
      }
      if (link.socket !== socket) return;
      if (link.ready) {
        this.options.log.warn(context, "lost connection to peer");
        if (link.lane === "control") this.options.onPeerEvent?.(link.peer, "disconnected");
      }
      link.ready = false;
      link.socket = null;
      this.scheduleDial(link);
    });
    this.onFrames(
      socket,
      decoder,
      (reason) => this.reject(socket, reason, context),
      (frame) => {
        if (link.ready && frame._tag === "removed") {
          // The peer proved itself in the handshake: its word on the chosen membership counts.
          this.options.onRemoved?.(link.peer, frame.reason);
          socket.destroy();
          return;
        }
        if (link.ready) return this.reject(socket, `peer sent ${frame._tag} on our outbound link`, context);
        if (frame._tag !== "challenge") return this.reject(socket, `expected challenge, got ${frame._tag}`, context);
        const fields = {
          clusterId: this.options.clusterId,
          dialer: this.options.self,
          acceptor: link.peer,
          dialerNonce,
          acceptorNonce: frame.nonce,
        };
        const key = macKeyOf(socket, this.options.secret);
        if (!macEqual(handshakeMac(key, "acceptor", fields), frame.mac)) {
          return this.reject(
            socket,
            `replica at ${formatAddress(link.address)} failed authentication (wrong cluster secret or wrong replica id)`,
            context,
          );
        }
        const refusal = this.options.infoRefusal?.(frame.info) ?? null;
        if (refusal !== null) return this.reject(socket, `replica ${link.peer}: ${refusal}`, context);
        this.writeWire(socket, { _tag: "proof", mac: handshakeMac(key, "dialer", fields) });
        clearTimeout(timer);
        link.ready = true;
        link.attempt = 0;
        link.opened = ++this.linksOpened;
        this.peerRecords.get(link.peer)!.info = frame.info;
        if (link.lane === "bulk") {
          this.options.log.debug(context, "opened the bulk connection to peer");
          return;
        }
        this.options.log.info({ peer: link.peer, info: frame.info }, "connected to peer");
        this.options.onPeerEvent?.(link.peer, "connected");
      },
    );
  }

  /** Exponential backoff with full jitter, bounded by `reconnectDelayMsMax`. */
  private scheduleDial(link: OutboundLink): void {
    if (this.closed) return;
    const ceiling = Math.min(this.reconnectDelayMsMax, this.reconnectDelayMsMin * 2 ** Math.min(link.attempt, 20));
    const delay = this.reconnectDelayMsMin / 2 + Math.random() * ceiling;
    link.attempt += 1;
    link.reconnects += 1;
    link.timer = setTimeout(() => this.dial(link), delay);
  }
}

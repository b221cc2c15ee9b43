/**
 * The nemesis's network: one small TCP relay per directed link between replicas. Replica i
 * sends its messages to replica j only on the connection it dials (impl/runtime/transport.ts),
 * so pointing i's peer address for j at the relay of link i->j puts every message i sends j
 * through that relay, and nothing else. A relay understands the length-prefixed frames of
 * impl/runtime/framing.ts, so it loses whole messages (never half of one) and keeps the stream
 * in sync when the link heals.
 *
 * Link modes: `pass`; `drop` (a black hole in both byte directions, like a firewall DROP: TCP
 * stays up and every frame vanishes, handshakes stall); `cut` (every connection is reset and new
 * ones are closed at once); plus an optional delay per frame and a loss probability per frame.
 * Loopback only. The relay never looks inside a frame and never changes one.
 */
import net from "node:net";
import { frameHeaderBytes } from "../../impl/runtime/framing.ts";

/** What a link does to the frames it carries. */
export interface LinkState {
  readonly mode: "pass" | "drop" | "cut";
  /** Added to every frame's delivery, in milliseconds. Default 0. */
  readonly delayMs: number;
  /**
   * Up to this much more, uniformly at random (the relay's seeded generator); frames of one link keep their order.
   * Default 0.
   */
  readonly jitterMs?: number;
  /** Probability in [0, 1] that a frame is lost (the relay's seeded generator decides). Default 0. */
  readonly lossRate: number;
}

/** A link that passes everything at once. */
export const healthyLink: LinkState = { mode: "pass", delayMs: 0, lossRate: 0 };

/** Largest frame the relay buffers, in bytes (the runtime's own limit is 16 MiB). */
const relayFrameBytesMax = 32 * 1024 * 1024;

/** Counters of one link, for the run's report. */
export interface LinkCounters {
  frames: number;
  dropped: number;
  connections: number;
  resets: number;
}

/** Splits one byte direction of a relayed connection into whole frames. */
class FrameSplitter {
  private buffer: Buffer = Buffer.alloc(0);
  /** Appends `chunk`; returns the complete frames (header included), or null if the stream is not framed. */
  push(chunk: Buffer): Buffer[] | null {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const frames: Buffer[] = [];
    for (;;) {
      if (this.buffer.length < frameHeaderBytes) break;
      const length = this.buffer.readUInt32BE(0);
      if (length > relayFrameBytesMax) return null;
      if (this.buffer.length < frameHeaderBytes + length) break;
      frames.push(this.buffer.subarray(0, frameHeaderBytes + length));
      this.buffer = this.buffer.subarray(frameHeaderBytes + length);
    }
    return frames;
  }
}

/** One relayed connection: the dialer's socket and ours to the target. */
interface Pair {
  readonly client: net.Socket;
  readonly server: net.Socket;
}

/** The relay of one directed link `from -> to`. */
export class LinkProxy {
  private readonly listener: net.Server;
  private readonly pairs = new Set<Pair>();
  private state: LinkState = healthyLink;
  private prng: number;
  private closed = false;
  readonly counters: LinkCounters = { frames: 0, dropped: 0, connections: 0, resets: 0 };

  constructor(
    readonly from: number,
    readonly to: number,
    private readonly target: { readonly host: string; readonly port: number },
    seed: number,
  ) {
    this.prng = seed >>> 0;
    this.listener = net.createServer((socket) => this.accept(socket));
  }

  /** Listen on 127.0.0.1:`port` (0: any free port). Resolves with the bound port. */
  async listen(port = 0): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.listener.once("error", reject);
      this.listener.listen(port, "127.0.0.1", () => {
        this.listener.off("error", reject);
        resolve();
      });
    });
    return this.port;
  }

  get port(): number {
    const address = this.listener.address();
    if (address === null || typeof address === "string") throw new Error("relay is not listening");
    return address.port;
  }

  get link(): LinkState {
    return this.state;
  }

  /** Change what the link does from now on. `cut` resets every open connection. */
  set(state: LinkState): void {
    if (!(state.lossRate >= 0 && state.lossRate <= 1)) throw new Error(`loss rate ${state.lossRate} outside [0, 1]`);
    if (!(state.delayMs >= 0 && state.delayMs <= 60_000))
      throw new Error(`delay ${state.delayMs} ms outside [0, 60000]`);
    if (!((state.jitterMs ?? 0) >= 0 && (state.jitterMs ?? 0) <= 60_000))
      throw new Error(`jitter ${state.jitterMs} ms outside [0, 60000]`);
    this.state = state;
    if (state.mode === "cut") for (const pair of [...this.pairs]) this.reset(pair);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const pair of [...this.pairs]) this.reset(pair);
    await new Promise<void>((resolve) => this.listener.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    if (this.closed || this.state.mode === "cut") {
      client.on("error", () => undefined);
      client.destroy();
      this.counters.resets += 1;
      return;
    }
    this.counters.connections += 1;
    const server = net.connect({ host: this.target.host, port: this.target.port });
    const pair = { client, server };
    this.pairs.add(pair);
    for (const socket of [client, server]) {
      socket.setNoDelay(true);
      socket.on("error", () => undefined);
      socket.on("close", () => this.reset(pair));
    }
    this.relay(pair, client, server);
    this.relay(pair, server, client);
  }

  /** Forward whole frames from `source` to `sink`, applying the link's state to each. */
  private relay(pair: Pair, source: net.Socket, sink: net.Socket): void {
    const splitter = new FrameSplitter();
    // Frames wait here under a delay; order is kept (a frame never overtakes an earlier one).
    const queue: { readonly frame: Buffer; readonly due: number }[] = [];
    let timer: NodeJS.Timeout | null = null;
    let lastDue = 0;
    const flush = (): void => {
      timer = null;
      const now = performance.now();
      while (queue.length > 0 && queue[0]!.due <= now) {
        if (!sink.destroyed) sink.write(queue.shift()!.frame);
        else queue.shift();
      }
      if (queue.length > 0) timer = setTimeout(flush, Math.max(0, queue[0]!.due - now));
    };
    source.on("data", (chunk: Buffer) => {
      const frames = splitter.push(chunk);
      if (frames === null) return this.reset(pair);
      for (const frame of frames) {
        this.counters.frames += 1;
        if (this.state.mode !== "pass" || (this.state.lossRate > 0 && this.random() < this.state.lossRate)) {
          this.counters.dropped += 1;
          continue;
        }
        const jitterMs = this.state.jitterMs ?? 0;
        if (this.state.delayMs === 0 && jitterMs === 0 && queue.length === 0) {
          sink.write(frame);
          continue;
        }
        // Jitter varies the delay but never lets a frame overtake an earlier one on this link.
        const now = performance.now();
        lastDue = Math.max(lastDue, now + this.state.delayMs + (jitterMs > 0 ? this.random() * jitterMs : 0));
        queue.push({ frame: Buffer.from(frame), due: lastDue });
        timer ??= setTimeout(flush, Math.max(0, lastDue - now));
      }
    });
    source.on("close", () => {
      if (timer !== null) clearTimeout(timer);
    });
  }

  private reset(pair: Pair): void {
    if (!this.pairs.delete(pair)) return;
    this.counters.resets += 1;
    pair.client.destroy();
    pair.server.destroy();
  }

  /** mulberry32, seeded per link: which frames a lossy link loses is reproducible given the frames. */
  private random(): number {
    this.prng = (this.prng + 0x6d2b79f5) >>> 0;
    let t = this.prng;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}

/** Every directed link of a cluster, by "from->to". */
export class ProxyMesh {
  private constructor(readonly links: ReadonlyMap<string, LinkProxy>) {}

  /**
   * A relay for every ordered pair of distinct members, each forwarding to the target's real
   * peer port. `seed` seeds each relay's loss generator.
   */
  static async create(peerPorts: ReadonlyMap<number, number>, seed: number): Promise<ProxyMesh> {
    const links = new Map<string, LinkProxy>();
    for (const from of peerPorts.keys()) {
      for (const [to, port] of peerPorts) {
        if (from === to) continue;
        const proxy = new LinkProxy(
          from,
          to,
          { host: "127.0.0.1", port },
          (seed ^ Math.imul(from, 0x9e3779b1) ^ Math.imul(to, 0x85ebca6b)) >>> 0,
        );
        await proxy.listen();
        links.set(`${from}->${to}`, proxy);
      }
    }
    return new ProxyMesh(links);
  }

  link(from: number, to: number): LinkProxy {
    const proxy = this.links.get(`${from}->${to}`);
    if (proxy === undefined) throw new Error(`no link ${from}->${to}`);
    return proxy;
  }

  /** The address replica `from` must use for peer `to`. */
  portFor(from: number, to: number): number {
    return this.link(from, to).port;
  }

  /** Set every link whose ends satisfy `which` to `state`. */
  setWhere(which: (from: number, to: number) => boolean, state: LinkState): void {
    for (const proxy of this.links.values()) if (which(proxy.from, proxy.to)) proxy.set(state);
  }

  /** Every link back to healthy. */
  healAll(): void {
    for (const proxy of this.links.values()) proxy.set(healthyLink);
  }

  async close(): Promise<void> {
    await Promise.all([...this.links.values()].map((proxy) => proxy.close()));
  }
}

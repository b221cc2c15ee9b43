/**
 * The transport on loopback: authenticated links carry schema-checked messages; a wrong
 * secret, garbage bytes, a huge length, an unauthenticated message or a message the Schema
 * rejects each close that one connection with a logged reason, and the replica carries on.
 */
import net from "node:net";
import { Schema } from "effect";
import { afterEach, describe, expect, it } from "vitest";
import { monotonicClock } from "./clock.ts";
import { encodeFrame, FrameDecoder, jsonCodec } from "./framing.ts";
import { silentLogger } from "./log.ts";
import { freePorts, sleep, waitFor } from "./testing.ts";
import { handshakeMac, peerProtocol, Transport } from "./transport.ts";

const Ping = Schema.TaggedStruct("ping", { n: Schema.Int });
type Ping = typeof Ping.Type;
const secret = Buffer.from("s3cret-s3cret-s3cret");
const open: Transport<Ping>[] = [];

interface Node {
  transport: Transport<Ping>;
  received: { from: number; n: number; wireId: number }[];
  rejected: string[];
}

function node(self: number, ports: number[], options: { secret?: Buffer; clusterId?: string } = {}): Node {
  const received: Node["received"] = [];
  const rejected: string[] = [];
  const peers = new Map(
    ports.map((port, i) => [i + 1, { host: "127.0.0.1", port }] as const).filter(([id]) => id !== self),
  );
  const transport = new Transport<Ping>({
    self,
    clusterId: options.clusterId ?? "c1",
    secret: options.secret ?? secret,
    listen: { host: "127.0.0.1", port: ports[self - 1]! },
    peers,
    codec: jsonCodec(Ping),
    info: { http: `127.0.0.1:${9000 + self}`, incarnation: `i${self}` },
    clock: monotonicClock(),
    log: silentLogger(),
    onMessage: (from, message, wireId) => received.push({ from, n: message.n, wireId }),
    onRejected: (reason) => rejected.push(reason),
    handshakeTimeoutMs: 1000,
    frameBytesMax: 64 * 1024,
  });
  open.push(transport);
  return { transport, received, rejected };
}

afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
});

/** A raw socket to `port`, collecting decoded frames it receives. */
async function rawConnect(port: number): Promise<{ socket: net.Socket; frames: unknown[]; closed: Promise<void> }> {
  const socket = net.connect({ host: "127.0.0.1", port });
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  const frames: unknown[] = [];
  const decoder = new FrameDecoder();
  socket.on("data", (chunk: Buffer) => {
    const result = decoder.push(chunk);
    if (result._tag === "frames") for (const f of result.frames) frames.push(JSON.parse(f.toString("utf8")));
  });
  socket.on("error", () => undefined);
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  return { socket, frames, closed };
}

function frameOf(value: unknown): Buffer {
  return encodeFrame(Buffer.from(JSON.stringify(value), "utf8"));
}

/** Complete the handshake as replica `from` against the acceptor on `port`. */
async function rawAuthenticated(port: number, from: number, to: number) {
  const raw = await rawConnect(port);
  const nonce = "0123456789abcdef0123456789abcdef";
  raw.socket.write(
    frameOf({
      _tag: "hello",
      proto: peerProtocol,
      clusterId: "c1",
      from,
      to,
      nonce,
      info: { http: "x", incarnation: "raw" },
    }),
  );
  const challenge = (await waitFor("challenge", () => raw.frames[0], 5000)) as { nonce: string };
  const mac = handshakeMac(secret, "dialer", {
    clusterId: "c1",
    dialer: from,
    acceptor: to,
    dialerNonce: nonce,
    acceptorNonce: challenge.nonce,
  });
  raw.socket.write(frameOf({ _tag: "proof", mac }));
  return raw;
}

describe("transport", () => {
  it("connects, authenticates both ways, exchanges peer info and carries messages", async () => {
    const ports = await freePorts(3);
    const nodes = [1, 2, 3].map((id) => node(id, ports));
    await Promise.all(nodes.map((n) => n.transport.start()));
    await waitFor("all links up", () =>
      nodes.every((n) => n.transport.health().every((h) => h.outbound && h.inbound)) ? true : undefined,
    );
    expect(nodes[0]!.transport.send(2, { _tag: "ping", n: 7 }, 0)).toBe(true);
    expect(nodes[0]!.transport.send(3, { _tag: "ping", n: 8 }, 1)).toBe(true);
    nodes[2]!.transport.send(1, { _tag: "ping", n: 9 }, 0);
    await waitFor("delivery", () =>
      nodes[1]!.received.length > 0 && nodes[2]!.received.length > 0 && nodes[0]!.received.length > 0
        ? true
        : undefined,
    );
    expect(nodes[1]!.received).toEqual([{ from: 1, n: 7, wireId: 0 }]);
    expect(nodes[2]!.received).toEqual([{ from: 1, n: 8, wireId: 1 }]);
    expect(nodes[0]!.received).toEqual([{ from: 3, n: 9, wireId: 0 }]);
    expect(nodes[0]!.transport.peerInfo(2)).toEqual({ http: "127.0.0.1:9002", incarnation: "i2" });
    expect(nodes.flatMap((n) => n.rejected)).toEqual([]);
  });

  it("drops sends to a peer that is down, and reconnects when it comes up", async () => {
    const ports = await freePorts(2);
    const a = node(1, ports);
    await a.transport.start();
    expect(a.transport.send(2, { _tag: "ping", n: 1 }, 0)).toBe(false);
    await sleep(200);
    const b = node(2, ports);
    await b.transport.start();
    await waitFor("link up after peer start", () => (a.transport.health()[0]!.outbound ? true : undefined), 10_000);
    a.transport.send(2, { _tag: "ping", n: 2 }, 1);
    await waitFor("delivery", () => (b.received.length === 1 ? true : undefined));
    expect(a.transport.health()[0]!.reconnects).toBeGreaterThan(0);
  });

  it("refuses a peer with the wrong secret, on both sides, and logs why", async () => {
    const ports = await freePorts(2);
    const a = node(1, ports);
    const b = node(2, ports, { secret: Buffer.from("another secret") });
    await Promise.all([a.transport.start(), b.transport.start()]);
    await waitFor("both refuse", () => (a.rejected.length > 0 && b.rejected.length > 0 ? true : undefined));
    expect([...a.rejected, ...b.rejected].join("\n")).toMatch(/failed authentication/);
    a.transport.send(2, { _tag: "ping", n: 1 }, 0);
    await sleep(100);
    expect(b.received).toEqual([]);
  });

  it("refuses a peer of another cluster", async () => {
    const ports = await freePorts(2);
    const a = node(1, ports);
    const b = node(2, ports, { clusterId: "c2" });
    await Promise.all([a.transport.start(), b.transport.start()]);
    await waitFor("refusal", () => (a.rejected.some((r) => /cluster/.test(r)) ? true : undefined));
  });

  it("closes a connection on garbage, huge lengths, or messages before authentication, and keeps serving", async () => {
    const ports = await freePorts(2);
    const a = node(1, ports);
    await a.transport.start();
    const attempts: Buffer[] = [
      Buffer.from("GET / HTTP/1.1\r\n\r\n"),
      Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]),
      frameOf({ _tag: "msg", id: 0, m: { _tag: "ping", n: 1 } }),
      frameOf({ _tag: "hello", proto: "other@1" }),
      encodeFrame(Buffer.from("not json")),
    ];
    for (const bytes of attempts) {
      const raw = await rawConnect(ports[0]!);
      raw.socket.write(bytes);
      await raw.closed;
    }
    expect(a.rejected.length).toBe(attempts.length);
    expect(a.received).toEqual([]);
    const good = await rawAuthenticated(ports[0]!, 2, 1);
    good.socket.write(frameOf({ _tag: "msg", id: 5, m: { _tag: "ping", n: 42 } }));
    await waitFor("message after handshake", () => (a.received.length === 1 ? true : undefined));
    expect(a.received[0]).toEqual({ from: 2, n: 42, wireId: 5 });
    good.socket.write(frameOf({ _tag: "msg", id: 6, m: { _tag: "ping", n: "forty-two" } }));
    await good.closed;
    expect(a.rejected.at(-1)).toMatch(/message rejected: does not match the schema/);
  });

  it("learns a joining replica from its handshake: an authenticated dialer outside the peer list becomes a peer at the address it announces", async () => {
    const ports = await freePorts(3);
    // Replicas 1 and 2 know each other only; replica 3 joins and dials both.
    const one = node(1, ports.slice(0, 2));
    const two = node(2, ports.slice(0, 2));
    await Promise.all([one.transport.start(), two.transport.start()]);
    // The core may address a learner whose address has not arrived yet: a lost message, not a throw.
    expect(one.transport.send(3, { _tag: "ping", n: 0 }, 0)).toBe(false);
    const received: { from: number; n: number }[] = [];
    const joiner = new Transport<Ping>({
      self: 3,
      clusterId: "c1",
      secret,
      listen: { host: "127.0.0.1", port: ports[2]! },
      peers: new Map([
        [1, { host: "127.0.0.1", port: ports[0]! }],
        [2, { host: "127.0.0.1", port: ports[1]! }],
      ]),
      codec: jsonCodec(Ping),
      info: { http: "127.0.0.1:9003", incarnation: "i3", peer: `127.0.0.1:${ports[2]!}` },
      clock: monotonicClock(),
      log: silentLogger(),
      onMessage: (from, message) => received.push({ from, n: message.n }),
      handshakeTimeoutMs: 1000,
    });
    open.push(joiner);
    await joiner.start();
    await waitFor(
      "1 and 2 to dial the joiner back",
      () => ([one, two].every((n) => n.transport.health().some((h) => h.id === 3 && h.outbound)) ? true : undefined),
      10_000,
    );
    expect(one.transport.peerAddress(3)).toEqual({ host: "127.0.0.1", port: ports[2]! });
    expect(one.transport.send(3, { _tag: "ping", n: 1 }, 1)).toBe(true);
    expect(two.transport.send(3, { _tag: "ping", n: 2 }, 1)).toBe(true);
    await waitFor("delivery to the joiner", () => (received.length === 2 ? true : undefined));
    expect(received.sort((x, y) => x.from - y.from)).toEqual([
      { from: 1, n: 1 },
      { from: 2, n: 2 },
    ]);
    // A configured peer keeps the address it was given.
    expect(one.transport.addPeer(2, { host: "10.0.0.1", port: 1 })).toBe(false);
    expect(one.transport.peerAddress(2)).toEqual({ host: "127.0.0.1", port: ports[1]! });
  });

  it("refuses a joining dialer that announces a malformed peer address", async () => {
    const ports = await freePorts(1);
    const a = node(1, ports);
    await a.transport.start();
    const raw = await rawConnect(ports[0]!);
    raw.socket.write(
      frameOf({
        _tag: "hello",
        proto: peerProtocol,
        clusterId: "c1",
        from: 7,
        to: 1,
        nonce: "0123456789abcdef0123456789abcdef",
        info: { http: "x", incarnation: "raw", peer: "nowhere" },
      }),
    );
    await raw.closed;
    expect(a.rejected.at(-1)).toMatch(/replica 7 announced a peer address that is not HOST:PORT: "nowhere"/);
    expect(a.transport.peerAddress(7)).toBeNull();
  });

  it("closes a connection that does not finish its handshake in time", async () => {
    const ports = await freePorts(2);
    const a = node(1, ports);
    await a.transport.start();
    const raw = await rawConnect(ports[0]!);
    await raw.closed;
    expect(a.rejected.at(-1)).toMatch(/handshake not finished/);
  });
});

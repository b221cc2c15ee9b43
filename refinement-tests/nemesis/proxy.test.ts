/**
 * The fault-injecting relay: whole frames pass, vanish, wait or get reset, and a stream that
 * lost frames is still in sync once the link heals (the next frame arrives whole). Delays are
 * checked as lower bounds only; loss is seeded, so the same frames lose the same ones.
 */
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { encodeFrame, FrameDecoder } from "../../impl/runtime/framing.ts";
import { waitFor } from "../../impl/runtime/testing.ts";
import { healthyLink, LinkProxy } from "./proxy.ts";

interface Sink {
  readonly port: number;
  readonly frames: string[];
  readonly connections: net.Socket[];
  close(): Promise<void>;
}

/** A server that records every frame it receives. */
async function sink(): Promise<Sink> {
  const frames: string[] = [];
  const connections: net.Socket[] = [];
  const server = net.createServer((socket) => {
    connections.push(socket);
    const decoder = new FrameDecoder();
    socket.on("data", (chunk: Buffer) => {
      const result = decoder.push(chunk);
      if (result._tag === "frames") for (const f of result.frames) frames.push(f.toString("utf8"));
    });
    socket.on("error", () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    frames,
    connections,
    close: () =>
      new Promise((resolve) => {
        for (const c of connections) c.destroy();
        server.close(() => resolve());
      }),
  };
}

function dial(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port }, () => resolve(socket));
    socket.on("error", reject);
  });
}

const frame = (text: string): Buffer => encodeFrame(Buffer.from(text, "utf8"));
const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function setup(seed = 7): Promise<{ target: Sink; proxy: LinkProxy; client: net.Socket }> {
  const target = await sink();
  cleanup.push(() => target.close());
  const proxy = new LinkProxy(1, 2, { host: "127.0.0.1", port: target.port }, seed);
  await proxy.listen();
  cleanup.push(() => proxy.close());
  const client = await dial(proxy.port);
  client.on("error", () => undefined);
  cleanup.push(() => Promise.resolve(void client.destroy()));
  return { target, proxy, client };
}

describe("the link relay", () => {
  it("passes frames whole and in order, even split across writes", async () => {
    const { target, client } = await setup();
    const a = frame("first");
    client.write(a.subarray(0, 3));
    client.write(Buffer.concat([a.subarray(3), frame("second")]));
    await waitFor("two frames", () => (target.frames.length === 2 ? true : undefined), 5000);
    expect(target.frames).toEqual(["first", "second"]);
  });

  it("drops whole frames while dropping and stays in sync when healed", async () => {
    const { target, proxy, client } = await setup();
    client.write(frame("before"));
    await waitFor("the first frame", () => (target.frames.length === 1 ? true : undefined), 5000);
    proxy.set({ ...healthyLink, mode: "drop" });
    client.write(frame("lost-1"));
    client.write(frame("lost-2"));
    await waitFor("the relay to see the dropped frames", () => (proxy.counters.dropped === 2 ? true : undefined), 5000);
    proxy.set(healthyLink);
    client.write(frame("after"));
    await waitFor("the frame after healing", () => (target.frames.length === 2 ? true : undefined), 5000);
    expect(target.frames).toEqual(["before", "after"]);
    expect(proxy.counters.frames).toBe(4);
  });

  it("resets connections when cut and refuses new ones until healed", async () => {
    const { proxy, client } = await setup();
    const closed = new Promise<void>((resolve) => client.once("close", () => resolve()));
    proxy.set({ ...healthyLink, mode: "cut" });
    await closed;
    const refused = await dial(proxy.port);
    await new Promise<void>((resolve) => refused.once("close", () => resolve()));
    proxy.set(healthyLink);
    const again = await dial(proxy.port);
    cleanup.push(() => Promise.resolve(void again.destroy()));
    expect(again.destroyed).toBe(false);
  });

  it("delays every frame by at least the delay, keeping their order", async () => {
    const { target, proxy, client } = await setup();
    proxy.set({ ...healthyLink, delayMs: 80 });
    const sent = performance.now();
    client.write(frame("slow-1"));
    client.write(frame("slow-2"));
    await waitFor("the delayed frames", () => (target.frames.length === 2 ? true : undefined), 5000, 5);
    expect(performance.now() - sent).toBeGreaterThanOrEqual(79);
    expect(target.frames).toEqual(["slow-1", "slow-2"]);
  });

  it("with jitter, still delays every frame by at least the delay and never reorders a link's frames", async () => {
    const { target, proxy, client } = await setup();
    proxy.set({ ...healthyLink, delayMs: 30, jitterMs: 60 });
    const sent = performance.now();
    for (let i = 0; i < 50; i++) client.write(frame(`j${i}`));
    await waitFor("the delayed frames", () => (target.frames.length === 50 ? true : undefined), 5000, 5);
    expect(performance.now() - sent).toBeGreaterThanOrEqual(29);
    expect(target.frames).toEqual(Array.from({ length: 50 }, (_, i) => `j${i}`));
  });

  it("loses a seeded share of frames: the same seed loses the same frames", async () => {
    const run = async (): Promise<string[]> => {
      const { target, proxy, client } = await setup(42);
      proxy.set({ ...healthyLink, lossRate: 0.5 });
      for (let i = 0; i < 200; i++) client.write(frame(`f${i}`));
      await waitFor("every frame seen", () => (proxy.counters.frames === 200 ? true : undefined), 5000);
      await waitFor("delivery", () => (target.frames.length === 200 - proxy.counters.dropped ? true : undefined), 5000);
      return [...target.frames];
    };
    const first = await run();
    const second = await run();
    expect(first.length).toBeGreaterThan(50);
    expect(first.length).toBeLessThan(150);
    expect(second).toEqual(first);
  });
});

/**
 * The nemesis's network layer, one of two: `relay` (every replica on loopback, every peer link
 * through a frame relay of proxy.ts) or `hosts` (every replica in its own network namespace
 * with its own address, faults made by the kernel: impl/runtime/testing-hosts.ts). The
 * schedule, the faults' targets, the clients and the checks are the same for both; only how
 * a replica is addressed and started and how a link fault is made differ, and the report says
 * how each fault was made.
 *
 * Test-only. A link is directed: link `from -> to` carries what replica `from` sends to `to`.
 */
import { randomBytes } from "node:crypto";
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { HostNetwork } from "../../impl/runtime/testing-hosts.ts";
import { freePorts } from "../../impl/runtime/testing.ts";
import { healthyLink, ProxyMesh, type LinkState } from "./proxy.ts";
import type { FaultKind } from "./schedule.ts";

/** Which network layer a run uses. */
export type NetworkKind = "relay" | "hosts";
export const networkKinds: readonly NetworkKind[] = ["relay", "hosts"];

/** How a cluster's replicas are addressed and started, and how link faults are made. */
export interface NemesisNetwork {
  readonly kind: NetworkKind;
  /** The `replica` flags that give replica `id` its addresses (--peers, --http, ...). */
  addressArgs(id: number): string[];
  /** Base URL clients use for replica `id`. */
  endpoint(id: number): string;
  /** Start `argv` (after the node binary) as replica `id`'s process. */
  spawn(id: number, argv: readonly string[], env: NodeJS.ProcessEnv): ChildProcess;
  /** A fresh HTTP agent for one client (its connections come from where clients live). */
  agent(): http.Agent;
  /** Set every link `from -> to` for which `which` holds. */
  setLinks(which: (from: number, to: number) => boolean, state: LinkState): Promise<void>;
  /** Every link passes again. */
  healLinks(): Promise<void>;
  /** Replica `id`'s link to the network down (nothing in or out) or up again. */
  setInterface(id: number, up: boolean): Promise<void>;
  /** How each kind of link fault is made on this network, for the report. */
  mechanisms(): Partial<Record<FaultKind, string>>;
  /**
   * What the link faults did so far: packets (hosts) or frames (relay) dropped, and TCP resets (hosts) or connections
   * reset (relay).
   */
  counters(): Promise<LinkCounters>;
  /** Lines worth telling when the network is made (stale runs cleaned, how delays are made). */
  notes(): string[];
  /** The machine-wide names this network made (the hosts' namespaces), all gone after `close`. */
  made(): string[];
  close(): Promise<void>;
}

/** Cumulative effect of the link faults. */
export interface LinkCounters {
  readonly unit: "packets" | "frames";
  readonly dropped: number;
  readonly reset: number;
}

/** What the link faults did between two readings, in words ("" when nothing). */
export function effectOf(before: LinkCounters, after: LinkCounters): string {
  const dropped = after.dropped - before.dropped;
  const reset = after.reset - before.reset;
  const parts = [];
  if (dropped > 0) parts.push(`${dropped} ${after.unit} dropped`);
  if (reset > 0)
    parts.push(after.unit === "packets" ? `${reset} packets answered with a TCP reset` : `${reset} connections reset`);
  return parts.join(", ");
}

/** Options of {@link createNetwork}. */
export interface NetworkOptions {
  readonly kind: NetworkKind;
  readonly replicas: number;
  /** Seed of the relays' loss generators. */
  readonly seed: number;
  /**
   * Whether the run may delay links (slow-links): the hosts then keep a relay in the path where the kernel has no
   * netem.
   */
  readonly delays: boolean;
  /** Folder where the hosts' secret file goes. */
  readonly dir: string;
}

export async function createNetwork(options: NetworkOptions): Promise<NemesisNetwork> {
  return options.kind === "hosts" ? HostsLayer.create(options) : RelayLayer.create(options);
}

/** Every replica on loopback; peers reach each other only through the relays of `mesh`. */
class RelayLayer implements NemesisNetwork {
  readonly kind = "relay";

  private constructor(
    private readonly ports: ReadonlyMap<number, { readonly peer: number; readonly http: number }>,
    readonly mesh: ProxyMesh,
  ) {}

  static async create(options: NetworkOptions): Promise<RelayLayer> {
    const free = await freePorts(2 * options.replicas);
    const ports = new Map(
      Array.from({ length: options.replicas }, (_, i) => [i + 1, { peer: free[2 * i]!, http: free[2 * i + 1]! }]),
    );
    const mesh = await ProxyMesh.create(new Map([...ports].map(([id, p]) => [id, p.peer])), options.seed);
    return new RelayLayer(ports, mesh);
  }

  private port(id: number): { readonly peer: number; readonly http: number } {
    const ports = this.ports.get(id);
    if (ports === undefined) throw new Error(`no replica ${id}`);
    return ports;
  }

  /** Replica `id`'s peer address for each other replica is the relay of that link. */
  addressArgs(id: number): string[] {
    const peers = [...this.ports.keys()]
      .map((m) => `${m}=127.0.0.1:${m === id ? this.port(id).peer : this.mesh.portFor(id, m)}`)
      .join(",");
    return ["--peers", peers, "--http", `127.0.0.1:${this.port(id).http}`];
  }

  endpoint(id: number): string {
    return `http://127.0.0.1:${this.port(id).http}`;
  }

  spawn(_id: number, argv: readonly string[], env: NodeJS.ProcessEnv): ChildProcess {
    // A session of its own (setsid): were the harness's job to end while freeze-all holds every
    // replica stopped, the kernel would send its orphaned process group SIGHUP and end them all.
    // The cluster kills its children on exit, detached or not.
    return spawn(process.execPath, argv, { stdio: ["ignore", "pipe", "pipe"], env, detached: true });
  }

  agent(): http.Agent {
    return new http.Agent({ keepAlive: true, maxSockets: 2 });
  }

  setLinks(which: (from: number, to: number) => boolean, state: LinkState): Promise<void> {
    this.mesh.setWhere(which, state);
    return Promise.resolve();
  }

  healLinks(): Promise<void> {
    this.mesh.healAll();
    return Promise.resolve();
  }

  /** The relays cannot take an interface down: every frame of the replica's links is dropped instead. */
  setInterface(id: number, up: boolean): Promise<void> {
    this.mesh.setWhere((from, to) => from === id || to === id, up ? healthyLink : { ...healthyLink, mode: "drop" });
    return Promise.resolve();
  }

  mechanisms(): Partial<Record<FaultKind, string>> {
    const drop = "relay: every frame of the link dropped, both byte directions (TCP stays up)";
    return {
      "partition-leader": drop,
      "partition-follower": drop,
      "partition-bridge": drop,
      "one-way-from-leader": `${drop}, on the leader's outbound links only`,
      "one-way-to-leader": `${drop}, on the leader's inbound links only`,
      "lossy-links": "relay: each frame lost with the given probability (a lost message, never half of one)",
      "slow-links": "relay: each frame held for the delay plus jitter, never overtaking an earlier frame of its link",
      "cut-leader": "relay: the leader's connections reset, reconnects closed at once",
      "flap-leader": "relay: the leader's peer frames dropped while its link is down (clients still reach it)",
    };
  }

  counters(): Promise<LinkCounters> {
    let dropped = 0;
    let reset = 0;
    for (const link of this.mesh.links.values()) {
      dropped += link.counters.dropped;
      reset += link.counters.resets;
    }
    return Promise.resolve({ unit: "frames", dropped, reset });
  }

  notes(): string[] {
    return [];
  }

  made(): string[] {
    return [];
  }

  close(): Promise<void> {
    return this.mesh.close();
  }
}

/** The peer port every replica host uses, as in docs/operations.md. */
const peerPort = 7001;
/** The client port every replica host uses. */
const httpPort = 8001;

/** One network namespace per replica, clients in another; link faults by nftables, flaps by `ip link`. */
class HostsLayer implements NemesisNetwork {
  readonly kind = "hosts";

  private constructor(
    readonly hosts: HostNetwork,
    private readonly replicas: number,
  ) {}

  static async create(options: NetworkOptions): Promise<HostsLayer> {
    const hosts = await HostNetwork.create({
      hosts: options.replicas,
      ...(options.delays ? { delayPorts: [peerPort] } : {}),
    });
    return new HostsLayer(hosts, options.replicas);
  }

  /** As docs/operations.md configures a replica on its own machine: every member's own address, one port each. */
  addressArgs(id: number): string[] {
    const peers = Array.from({ length: this.replicas }, (_, i) => `${i + 1}=${this.hosts.address(i + 1)}:${peerPort}`);
    return [
      "--peers",
      peers.join(","),
      "--listen",
      `0.0.0.0:${peerPort}`,
      "--http",
      `0.0.0.0:${httpPort}`,
      "--advertise-http",
      `${this.hosts.address(id)}:${httpPort}`,
    ];
  }

  endpoint(id: number): string {
    return `http://${this.hosts.address(id)}:${httpPort}`;
  }

  spawn(id: number, argv: readonly string[], env: NodeJS.ProcessEnv): ChildProcess {
    // Detached as on the relay (`ip netns exec` replaces itself: the session is the replica's).
    // The cluster SIGKILLs its children on exit, and closing the hosts kills whatever still runs
    // in their namespaces, stopped or not.
    return this.hosts.spawn(id, process.execPath, argv, { stdio: ["ignore", "pipe", "pipe"], env, detached: true });
  }

  agent(): http.Agent {
    return this.hosts.agent({ keepAlive: true, maxSockets: 2 });
  }

  setLinks(which: (from: number, to: number) => boolean, state: LinkState): Promise<void> {
    return this.hosts.setLinks(which, state);
  }

  healLinks(): Promise<void> {
    return this.hosts.healLinks();
  }

  setInterface(id: number, up: boolean): Promise<void> {
    return this.hosts.setInterface(id, up);
  }

  mechanisms(): Partial<Record<FaultKind, string>> {
    const drop = "nftables drop rules on the bridge: packets vanish, TCP retransmits and stalls";
    const delay =
      this.hosts.delayMechanism === "netem"
        ? "netem on every replica host's interface (each packet it sends is delayed)"
        : this.hosts.delayMechanism === "relay"
          ? "relay (this kernel has no netem): each receiving host's nftables redirect inbound peer connections through a relay that holds every chunk for the delay plus jitter, keeping each connection in order"
          : "not available: the network was made without delays";
    return {
      "partition-leader": `${drop}, both ways`,
      "partition-follower": `${drop}, both ways`,
      "partition-bridge": `${drop}, between the two sides`,
      "one-way-from-leader": `${drop}, packets from the leader only (its TCP peers' acknowledgements still arrive, theirs do not)`,
      "one-way-to-leader": `${drop}, packets to the leader only`,
      "lossy-links": "nftables numgen random drop on the bridge: packets lost at random, TCP retransmits them",
      "slow-links": delay,
      "cut-leader": "nftables reject with tcp reset in the hosts: connections reset, connects refused",
      "flap-leader":
        "the leader host's interface down and up (ip link set eth0 down/up): its routes go, clients cannot reach it either",
    };
  }

  async counters(): Promise<LinkCounters> {
    return { unit: "packets", ...(await this.hosts.counters()) };
  }

  notes(): string[] {
    const h = this.hosts;
    return [
      ...h.cleaned.map((line) => `cleaned a stale run's leftovers: ${line}`),
      `hosts: namespaces ${h.namespace("switch")} (bridge), ${h.namespace(1)}.., ${h.namespace("clients")} (clients at ${h.address("clients")}); delays: ${h.delayMechanism}`,
    ];
  }

  made(): string[] {
    const h = this.hosts;
    return [
      h.namespace("switch"),
      ...Array.from({ length: this.replicas }, (_, i) => h.namespace(i + 1)),
      h.namespace("clients"),
    ];
  }

  close(): Promise<void> {
    return this.hosts.close();
  }
}

/** A fresh cluster secret, made as docs/operations.md says (32 random bytes, base64), in a file of mode 0600. */
export function writeSecretFile(dir: string): string {
  const file = path.join(dir, "secret");
  fs.writeFileSync(file, `${randomBytes(32).toString("base64")}\n`, { mode: 0o600 });
  return file;
}

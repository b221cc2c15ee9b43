/**
 * Hosts for tests: one Linux network namespace per replica, each a host with its own interface
 * and address (10.77.0.N) on a private bridge, and one more for the clients (10.77.0.250), all
 * made for one run and torn down after it. Faults are the kernel's: nftables rules on the
 * bridge drop packets between two hosts (partitions, one way or both) or at random (`numgen`),
 * rules in a host reset its TCP connections, a host's interface goes down and up; delay comes
 * from netem where the kernel has it, else from a relay in each receiving host
 * (hosts-agent.ts) that the host's nftables redirect inbound connections through.
 *
 * What is machine-wide, and so named per run: the namespaces (`plh-RUN-sw`, `plh-RUN-r1`, ...,
 * `plh-RUN-c`) and a registry file `/run/paxos-lease-hosts/RUN.json` written before anything
 * is made. The bridge, every veth pair, address, route and nftables table live inside the
 * run's own namespaces, so nothing changes in the machine's own network namespace and nothing
 * another run made is ever touched. `close` removes everything; a run that died without
 * closing (SIGKILL) is cleaned by the next run, which removes what a registry file lists once
 * the process that wrote it is gone.
 *
 * Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN), iproute2 and nftables; otherwise `create`
 * rejects with {@link HostsUnavailable}, whose message is one line. Test-only.
 */
import { execFile, execFileSync, spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import path from "node:path";
import readline from "node:readline";
import type { Duplex } from "node:stream";
import tls from "node:tls";
import { fileURLToPath } from "node:url";
import { tsxArgv } from "./program.ts";

/** Where runs register what they make (a tmpfs, like /run/netns: emptied at boot). */
export const hostsRunDir = "/run/paxos-lease-hosts";
/** Every namespace a run makes is named `plh-RUN-...`. */
const namespacePrefix = "plh-";
/** The hosts' subnet; private to each run (it exists only inside the run's namespaces). */
const subnet = "10.77.0";
/** The clients' host number: its address is 10.77.0.250. */
const clientsHost = 250;
/** Most replica hosts. */
export const hostsMax = 31;
/** A relay listens on the delayed port plus this. */
const relayPortOffset = 10_000;
/** Longest wait for a helper process to say `ready`, in milliseconds. */
const agentReadyTimeoutMs = 30_000;
const agentPath = path.join(path.dirname(fileURLToPath(import.meta.url)), "hosts-agent.ts");

/** Hosts cannot be made here (not root, no namespaces, a tool missing); `message` is one line. */
export class HostsUnavailable extends Error {
  override readonly name = "HostsUnavailable";
}

/** What a directed link between two replica hosts does to packets from `from` to `to`. */
export interface LinkFault {
  /** `drop`: every packet vanishes (TCP stalls, then times out); `cut`: TCP is reset, connects refused. */
  readonly mode: "pass" | "drop" | "cut";
  /** Added to every packet (netem) or chunk (relay), in milliseconds. */
  readonly delayMs: number;
  /** Probability in [0, 1] that a packet is dropped (nftables `numgen random`). */
  readonly lossRate: number;
  /** Up to this much more delay, uniformly at random, in milliseconds. Default 0. */
  readonly jitterMs?: number;
}

const passing: LinkFault = { mode: "pass", delayMs: 0, lossRate: 0 };

/** Options of {@link HostNetwork.create}. */
export interface HostNetworkOptions {
  /** Replica hosts, numbered 1..hosts. */
  readonly hosts: number;
  /**
   * TCP ports whose traffic may be delayed. Where the kernel has no netem, every inbound
   * connection to these ports on a replica host passes through that host's relay from the start
   * (so that a delay can be switched on later). Default: none (nothing in the path).
   */
  readonly delayPorts?: readonly number[];
}

/** One run's registry file. */
interface Registry {
  readonly format: "paxos-lease/hosts-run@1";
  readonly runId: string;
  readonly pid: number;
  /** The owner's start time (/proc/PID/stat field 22): a reused pid is not the owner. */
  readonly pidStart: string;
  readonly namespaces: readonly string[];
  readonly created: string;
}

/** A helper process (gateway or relay) and its stdin for control lines. */
interface Agent {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
}

function describeFailure(command: string, args: readonly string[], error: unknown): string {
  const e = error as NodeJS.ErrnoException & { stderr?: string | Buffer | null };
  const stderr = e.stderr === undefined || e.stderr === null ? "" : String(e.stderr).trim().split("\n")[0]!;
  return `${command} ${args.join(" ")}: ${stderr !== "" ? stderr : e.message}`;
}

/** Run a command; rejects with its first line of stderr. */
function run(command: string, args: readonly string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(command, args, { encoding: "utf8", timeout: 20_000 }, (error, stdout, stderr) => {
      if (error === null) resolve(stdout);
      else reject(new Error(describeFailure(command, args, Object.assign(error, { stderr }))));
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

function runSync(command: string, args: readonly string[]): string {
  return execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 20_000 });
}

/** The start time of process `pid`, or null if there is no such process. */
function processStart(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}

/** Kill every process left in namespace `ns` and delete it; false if it did not exist. */
function removeNamespace(ns: string): boolean {
  if (!fs.existsSync(path.join("/run/netns", ns))) return false;
  try {
    for (const pid of runSync("ip", ["netns", "pids", ns])
      .split(/\s+/)
      .filter((p) => p !== ""))
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch {
        // Gone meanwhile.
      }
  } catch {
    // No pids to list: deleting is all that is left.
  }
  try {
    runSync("ip", ["netns", "del", ns]);
  } catch {
    // Deleted by a concurrent cleaner.
  }
  return true;
}

function removeRun(registry: Registry): void {
  for (const ns of [...registry.namespaces].reverse()) removeNamespace(ns);
  fs.rmSync(path.join(hostsRunDir, registry.runId), { recursive: true, force: true });
  fs.rmSync(path.join(hostsRunDir, `${registry.runId}.json`), { force: true });
}

function readRegistry(file: string): Registry | null {
  try {
    const parsed = JSON.parse(fs.readFileSync(file, "utf8")) as Partial<Registry>;
    if (
      parsed.format !== "paxos-lease/hosts-run@1" ||
      typeof parsed.runId !== "string" ||
      !/^[0-9a-f]{8}$/.test(parsed.runId) ||
      typeof parsed.pid !== "number" ||
      typeof parsed.pidStart !== "string" ||
      !Array.isArray(parsed.namespaces) ||
      !parsed.namespaces.every((ns) => typeof ns === "string" && ns.startsWith(`${namespacePrefix}${parsed.runId}-`))
    )
      return null;
    return parsed as Registry;
  } catch {
    return null;
  }
}

/**
 * Remove what runs whose process is gone left behind (namespaces, with any process still in
 * them, sockets and the registry file). Only runs listed in a registry file are touched, and
 * only the namespaces that file names (all `plh-RUN-...`). Returns one line per run removed.
 */
export function cleanStaleHosts(): string[] {
  let files: string[];
  try {
    files = fs.readdirSync(hostsRunDir).filter((f) => f.endsWith(".json"));
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const file of files) {
    const registry = readRegistry(path.join(hostsRunDir, file));
    if (registry === null) continue;
    if (processStart(registry.pid) === registry.pidStart) continue;
    const present = registry.namespaces.filter((ns) => fs.existsSync(path.join("/run/netns", ns)));
    removeRun(registry);
    removed.push(
      `run ${registry.runId} (pid ${registry.pid}, gone): removed ${present.length} namespace(s)${present.length > 0 ? ` ${present.join(", ")}` : ""}`,
    );
  }
  return removed;
}

/** A line naming why hosts are unavailable, from the error of the first command that failed. */
function unavailableReason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (/ENOENT/.test(message) && /^ip /.test(message))
    return "iproute2's `ip` is not installed (apt-get install iproute2)";
  if (/ENOENT/.test(message) && /^nft /.test(message))
    return "nftables' `nft` is not installed (apt-get install nftables)";
  if (/EACCES|EPERM|Operation not permitted|Permission denied/i.test(message))
    return `network namespaces are not permitted here (needs root: CAP_NET_ADMIN and CAP_SYS_ADMIN): ${message}`;
  return `network namespaces could not be made: ${message}`;
}

/**
 * Why hosts cannot be made here, in one line, or null when they may be: not root, or iproute2 or
 * nftables missing. (Whether the kernel lets root make namespaces shows only when `create` tries.)
 */
export function hostsUnavailableReason(): string | null {
  const uid = process.getuid?.() ?? 0;
  if (uid !== 0)
    return `network namespaces need root (CAP_NET_ADMIN and CAP_SYS_ADMIN), and this process runs as uid ${uid}`;
  for (const [command, flag] of [
    ["ip", "-V"],
    ["nft", "--version"],
  ] as const) {
    try {
      runSync(command, [flag]);
    } catch (error) {
      return unavailableReason(new Error(describeFailure(command, [flag], error)));
    }
  }
  return null;
}

/** The hosts of one run. Create with {@link HostNetwork.create}; always `close`. */
export class HostNetwork {
  private readonly links = new Map<string, LinkFault>();
  private readonly agents: Agent[] = [];
  private readonly relays = new Map<number, Agent>();
  private readonly hostRules = new Map<number, string>();
  /** Packets dropped and reset by rules since flushed (the rules in force count the rest). */
  private readonly flushed = { dropped: 0, reset: 0 };
  private closed = false;
  private readonly onExit = (): void => this.destroy();
  /** How delays are made: netem where the kernel has it, else the relays; none if no port may be delayed. */
  delayMechanism: "netem" | "relay" | "none" = "none";
  /** One line per stale run cleaned before this one started. */
  readonly cleaned: string[];

  private constructor(
    readonly runId: string,
    readonly options: HostNetworkOptions,
    private readonly registry: Registry,
    cleaned: string[],
  ) {
    this.cleaned = cleaned;
    process.on("exit", this.onExit);
  }

  /** Make the hosts (cleaning stale runs first). Rejects with {@link HostsUnavailable} where that cannot be done. */
  static async create(options: HostNetworkOptions): Promise<HostNetwork> {
    if (!Number.isInteger(options.hosts) || options.hosts < 1 || options.hosts > hostsMax)
      throw new Error(`hosts must be an integer in [1, ${hostsMax}], got ${options.hosts}`);
    const reason = hostsUnavailableReason();
    if (reason !== null) throw new HostsUnavailable(reason);
    try {
      fs.mkdirSync(hostsRunDir, { recursive: true, mode: 0o755 });
    } catch (error) {
      throw new HostsUnavailable(unavailableReason(error));
    }
    const cleaned = cleanStaleHosts();
    const runId = randomBytes(4).toString("hex");
    const ns = (role: string): string => `${namespacePrefix}${runId}-${role}`;
    const registry: Registry = {
      format: "paxos-lease/hosts-run@1",
      runId,
      pid: process.pid,
      pidStart: processStart(process.pid) ?? "",
      namespaces: [ns("sw"), ...Array.from({ length: options.hosts }, (_, i) => ns(`r${i + 1}`)), ns("c")],
      created: new Date().toISOString(),
    };
    // Written before anything is made: a run killed halfway is cleaned by the next.
    const file = path.join(hostsRunDir, `${runId}.json`);
    fs.writeFileSync(`${file}.tmp`, JSON.stringify(registry));
    fs.renameSync(`${file}.tmp`, file);
    fs.mkdirSync(path.join(hostsRunDir, runId), { mode: 0o700 });
    const network = new HostNetwork(runId, options, registry, cleaned);
    try {
      await network.build();
    } catch (error) {
      network.destroy();
      throw error instanceof HostsUnavailable ? error : new HostsUnavailable(unavailableReason(error));
    }
    return network;
  }

  /** Namespace of replica host `host` (1..hosts), of the clients ("clients") or of the bridge ("switch"). */
  namespace(host: number | "clients" | "switch"): string {
    const role = host === "clients" ? "c" : host === "switch" ? "sw" : `r${this.checkHost(host)}`;
    return `${namespacePrefix}${this.runId}-${role}`;
  }

  /** Address of replica host `host`, or of the clients' host. */
  address(host: number | "clients"): string {
    return `${subnet}.${host === "clients" ? clientsHost : this.checkHost(host)}`;
  }

  private checkHost(host: number): number {
    if (!Number.isInteger(host) || host < 1 || host > this.options.hosts) throw new Error(`no host ${host}`);
    return host;
  }

  private get gatewaySocket(): string {
    return path.join(hostsRunDir, this.runId, "gateway.sock");
  }

  private async build(): Promise<void> {
    const sw = this.namespace("switch");
    await run("ip", ["netns", "add", sw]);
    await run("ip", ["-n", sw, "link", "set", "lo", "up"]);
    await run("ip", ["-n", sw, "link", "add", "br0", "type", "bridge"]);
    await run("ip", ["-n", sw, "link", "set", "br0", "up"]);
    await this.nft(
      sw,
      "table bridge paxos_lease {\n chain forward { type filter hook forward priority 0; policy accept; }\n}\n",
    );
    const hosts = [...Array.from({ length: this.options.hosts }, (_, i) => i + 1), "clients" as const];
    for (const host of hosts) await this.addHost(host);
    this.delayMechanism =
      (this.options.delayPorts ?? []).length === 0 ? "none" : (await this.netem()) ? "netem" : "relay";
    // The helpers start in parallel: each is a Node.js process that takes a moment to load.
    const [gateway] = await Promise.all([
      this.startAgent("clients", ["gateway", this.gatewaySocket]),
      this.delayMechanism === "relay" ? this.startRelays() : Promise.resolve(),
    ]);
    this.agents.push(gateway);
  }

  /** A host: its namespace, a veth pair (eth0 in the host, a port of br0 in the switch), its address. */
  private async addHost(host: number | "clients"): Promise<void> {
    const sw = this.namespace("switch");
    const ns = this.namespace(host);
    const port = host === "clients" ? "c0" : `r${host}`;
    await run("ip", ["netns", "add", ns]);
    await run("ip", ["-n", sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns]);
    await run("ip", ["-n", sw, "link", "set", port, "master", "br0", "up"]);
    await run("ip", ["-n", ns, "addr", "add", `${this.address(host)}/24`, "dev", "eth0"]);
    await run("ip", ["-n", ns, "link", "set", "eth0", "up"]);
    await run("ip", ["-n", ns, "link", "set", "lo", "up"]);
    await this.nft(
      ns,
      "table inet paxos_lease {\n chain input { type filter hook input priority 0; policy accept; }\n}\n",
    );
  }

  /** Whether this kernel has netem (probed on the switch's loopback, then removed). */
  private async netem(): Promise<boolean> {
    const sw = this.namespace("switch");
    try {
      await run("ip", ["netns", "exec", sw, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"]);
      await run("ip", ["netns", "exec", sw, "tc", "qdisc", "del", "dev", "lo", "root"]);
      return true;
    } catch {
      return false;
    }
  }

  /** Every replica host's relay, started together. */
  private async startRelays(): Promise<void> {
    const ports = this.options.delayPorts ?? [];
    const hosts = Array.from({ length: this.options.hosts }, (_, i) => i + 1);
    await Promise.all(hosts.map((host) => this.startRelay(host, ports)));
  }

  /** Host `host`'s relay, and its nftables rules that send inbound connections to `ports` through it. */
  private async startRelay(host: number, ports: readonly number[]): Promise<void> {
    const redirects = ports.map((p) => ` iifname "eth0" tcp dport ${p} redirect to :${p + relayPortOffset}\n`).join("");
    await this.nft(
      this.namespace(host),
      `table ip paxos_lease_nat {\n chain prerouting { type nat hook prerouting priority -100; policy accept;\n${redirects} }\n}\n`,
    );
    const pairs = ports.map((p) => `${p + relayPortOffset}:${p}`);
    const agent = await this.startAgent(host, ["relay", this.address(host), ...pairs]);
    this.agents.push(agent);
    this.relays.set(host, agent);
  }

  private async startAgent(host: number | "clients", args: readonly string[]): Promise<Agent> {
    const child = this.spawn(host, process.execPath, [...tsxArgv(agentPath), ...args], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    let stderr = "";
    child.stderr!.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString("utf8")).slice(-2000)));
    const ready = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), agentReadyTimeoutMs);
      readline.createInterface({ input: child.stdout! }).once("line", (line) => {
        clearTimeout(timer);
        resolve(line === "ready");
      });
      void exited.then(() => resolve(false));
    });
    if (!ready) {
      child.kill("SIGKILL");
      throw new Error(
        `the ${args[0]} of host ${host} did not start: ${stderr.trim().split("\n").slice(-3).join(" | ")}`,
      );
    }
    return { child, exited };
  }

  private nft(ns: string, script: string): Promise<string> {
    return run("ip", ["netns", "exec", ns, "nft", "-f", "-"], script);
  }

  /** Start `command` inside host `host`'s namespace (`ip netns exec` replaces itself: the pid is the command's). */
  spawn(host: number | "clients", command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
    return spawn("ip", ["netns", "exec", this.namespace(host), command, ...args], options);
  }

  /**
   * A TCP connection to `host`:`port` from the clients' host, through its gateway. Rejects with
   * an error whose `code` says why (ECONNREFUSED: nothing reached the target; ETIMEDOUT: no
   * connection within the gateway's 3 s).
   */
  connect(host: string, port: number, timeoutMs = 5000): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(this.gatewaySocket);
      let head = Buffer.alloc(0);
      let settled = false;
      const fail = (error: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        reject(error);
      };
      const timer = setTimeout(
        () =>
          fail(
            Object.assign(new Error(`no connection to ${host}:${port} within ${timeoutMs} ms`), { code: "ETIMEDOUT" }),
          ),
        timeoutMs,
      );
      socket.once("connect", () => socket.write(`CONNECT ${host} ${port}\n`));
      const onData = (chunk: Buffer): void => {
        head = Buffer.concat([head, chunk]);
        const newline = head.indexOf(10);
        if (newline < 0) return;
        socket.off("data", onData);
        const line = head.subarray(0, newline).toString("utf8");
        if (line !== "+" || head.length > newline + 1) {
          const code = line.startsWith("-") ? line.slice(1) : "EPROTO";
          return fail(Object.assign(new Error(`connect ${code} ${host}:${port} (from the clients' host)`), { code }));
        }
        settled = true;
        clearTimeout(timer);
        socket.setNoDelay(true);
        resolve(socket);
      };
      socket.on("data", onData);
      socket.on("error", (error) => fail(error));
      socket.on("close", () => fail(Object.assign(new Error("the clients' gateway closed"), { code: "ECONNRESET" })));
    });
  }

  /** An HTTP agent whose connections come from the clients' host. */
  agent(options: http.AgentOptions = {}): http.Agent {
    return new GatewayAgent(this, options);
  }

  /**
   * An HTTPS agent whose connections come from the clients' host (`options.ca`: the CA the replicas' certificates chain
   * to).
   */
  tlsAgent(options: https.AgentOptions = {}): https.Agent {
    return new GatewayTlsAgent(this, options);
  }

  /** Set every directed link between replica hosts for which `which(from, to)` holds. */
  async setLinks(which: (from: number, to: number) => boolean, fault: LinkFault): Promise<void> {
    if (!(fault.lossRate >= 0 && fault.lossRate <= 1)) throw new Error(`loss rate ${fault.lossRate} outside [0, 1]`);
    for (let from = 1; from <= this.options.hosts; from++)
      for (let to = 1; to <= this.options.hosts; to++)
        if (from !== to && which(from, to)) this.links.set(`${from}->${to}`, fault);
    await this.apply();
  }

  /** Every link between replica hosts passes again (the interfaces are left as they are). */
  async healLinks(): Promise<void> {
    this.links.clear();
    await this.apply();
  }

  /**
   * Delay every packet between any two hosts, the clients' included, by `delayMs` (plus up to
   * `jitterMs`) one way: the latency study. The relays delay connections to `delayPorts` only.
   */
  async setDelayEverywhere(delayMs: number, jitterMs = 0): Promise<void> {
    const hosts = Array.from({ length: this.options.hosts }, (_, i) => i + 1);
    const sources = [...hosts.map((h) => this.address(h)), this.address("clients")];
    if (this.delayMechanism === "relay") {
      for (const [host, relay] of this.relays) {
        const own = `${subnet}.${host}`;
        const delays = Object.fromEntries(sources.filter((s) => s !== own).map((s) => [s, { delayMs, jitterMs }]));
        relay.child.stdin!.write(`${JSON.stringify({ delays })}\n`);
      }
      return;
    }
    if (this.delayMechanism === "none") throw new Error("this network was made without delayPorts");
    for (const host of [...hosts, "clients" as const]) await this.setNetem(host, delayMs, jitterMs);
  }

  private link(from: number, to: number): LinkFault {
    return this.links.get(`${from}->${to}`) ?? passing;
  }

  /** Bring the rules (bridge, each host's input chain) and delays in line with `links`. */
  private async apply(): Promise<void> {
    const n = this.options.hosts;
    const bridgeRules: string[] = [];
    for (let from = 1; from <= n; from++)
      for (let to = 1; to <= n; to++) {
        if (from === to) continue;
        const link = this.link(from, to);
        const match = `ip saddr ${this.address(from)} ip daddr ${this.address(to)}`;
        if (link.mode === "drop") bridgeRules.push(`${match} counter drop`);
        else if (link.mode === "pass" && link.lossRate > 0)
          bridgeRules.push(`${match} numgen random mod 1000 < ${Math.round(link.lossRate * 1000)} counter drop`);
      }
    this.flushed.dropped += await this.packetsCounted(this.namespace("switch"), "bridge paxos_lease forward");
    await this.nft(
      this.namespace("switch"),
      `flush chain bridge paxos_lease forward\n${bridgeRules.map((r) => `add rule bridge paxos_lease forward ${r}\n`).join("")}`,
    );
    for (let to = 1; to <= n; to++) {
      const rules: string[] = [];
      for (let from = 1; from <= n; from++)
        if (from !== to && this.link(from, to).mode === "cut")
          rules.push(`ip saddr ${this.address(from)} meta l4proto tcp counter reject with tcp reset`);
      const text = rules.join("\n");
      if ((this.hostRules.get(to) ?? "") === text) continue;
      this.hostRules.set(to, text);
      this.flushed.reset += await this.packetsCounted(this.namespace(to), "inet paxos_lease input");
      await this.nft(
        this.namespace(to),
        `flush chain inet paxos_lease input\n${rules.map((r) => `add rule inet paxos_lease input ${r}\n`).join("")}`,
      );
    }
    await this.applyDelays();
  }

  /** Packets the rules of `chain` (FAMILY TABLE CHAIN) in namespace `ns` counted. */
  private async packetsCounted(ns: string, chain: string): Promise<number> {
    const listing = JSON.parse(
      await run("ip", ["netns", "exec", ns, "nft", "-j", "list", "chain", ...chain.split(" ")]),
    ) as {
      nftables: { rule?: { expr: { counter?: { packets: number } }[] } }[];
    };
    let packets = 0;
    for (const item of listing.nftables) for (const e of item.rule?.expr ?? []) packets += e.counter?.packets ?? 0;
    return packets;
  }

  /**
   * Packets the fault rules dropped (partitions, loss) and answered with a TCP reset (cuts), since the hosts were made.
   */
  async counters(): Promise<{ readonly dropped: number; readonly reset: number }> {
    let reset = this.flushed.reset;
    for (let host = 1; host <= this.options.hosts; host++)
      reset += await this.packetsCounted(this.namespace(host), "inet paxos_lease input");
    const dropped =
      this.flushed.dropped + (await this.packetsCounted(this.namespace("switch"), "bridge paxos_lease forward"));
    return { dropped, reset };
  }

  private async applyDelays(): Promise<void> {
    const n = this.options.hosts;
    const delayed = [...this.links.values()].some((l) => l.delayMs > 0 || (l.jitterMs ?? 0) > 0);
    if (this.delayMechanism === "none") {
      if (delayed) throw new Error("this network was made without delayPorts: it cannot delay links");
      return;
    }
    if (this.delayMechanism === "relay") {
      // Link from -> to is delayed by to's relay, on connections from `from`.
      for (let to = 1; to <= n; to++) {
        const delays: Record<string, { delayMs: number; jitterMs: number }> = {};
        for (let from = 1; from <= n; from++) {
          const link = this.link(from, to);
          if (from !== to && (link.delayMs > 0 || (link.jitterMs ?? 0) > 0))
            delays[this.address(from)] = { delayMs: link.delayMs, jitterMs: link.jitterMs ?? 0 };
        }
        this.relays.get(to)?.child.stdin!.write(`${JSON.stringify({ delays })}\n`);
      }
      return;
    }
    // netem delays every packet a host sends: one delay per sending host.
    for (let from = 1; from <= n; from++) {
      const outgoing = Array.from({ length: n }, (_, i) => i + 1)
        .filter((to) => to !== from)
        .map((to) => this.link(from, to));
      const delayMs = Math.max(...outgoing.map((l) => l.delayMs));
      const jitterMs = Math.max(...outgoing.map((l) => l.jitterMs ?? 0));
      await this.setNetem(from, delayMs, jitterMs);
    }
  }

  private async setNetem(host: number | "clients", delayMs: number, jitterMs: number): Promise<void> {
    const ns = this.namespace(host);
    if (delayMs <= 0 && jitterMs <= 0) {
      await run("ip", ["netns", "exec", ns, "tc", "qdisc", "del", "dev", "eth0", "root"]).catch(() => undefined);
      return;
    }
    await run("ip", [
      "netns",
      "exec",
      ns,
      "tc",
      "qdisc",
      "replace",
      "dev",
      "eth0",
      "root",
      "netem",
      "delay",
      `${delayMs}ms`,
      `${jitterMs}ms`,
    ]);
  }

  /** Take host `host`'s interface down (its routes go with it) or bring it up again. */
  async setInterface(host: number, up: boolean): Promise<void> {
    await run("ip", ["-n", this.namespace(host), "link", "set", "eth0", up ? "up" : "down"]);
  }

  /** Stop the helpers, kill whatever still runs in the run's namespaces, delete them and the registry. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    for (const agent of this.agents) agent.child.stdin?.end();
    await Promise.race([Promise.all(this.agents.map((a) => a.exited)), new Promise((r) => setTimeout(r, 2000))]);
    this.destroy();
  }

  /** Synchronous teardown (also run when the process exits without closing). */
  private destroy(): void {
    if (this.closed) return;
    this.closed = true;
    process.off("exit", this.onExit);
    for (const agent of this.agents) agent.child.kill("SIGKILL");
    removeRun(this.registry);
  }
}

/** http.Agent whose sockets are {@link HostNetwork.connect} connections from the clients' host. */
class GatewayAgent extends http.Agent {
  constructor(
    private readonly hosts: HostNetwork,
    options: http.AgentOptions,
  ) {
    super(options);
  }

  override createConnection(
    options: http.ClientRequestArgs,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    const host = options.hostname ?? options.host ?? "localhost";
    const port = Number(options.port ?? 80);
    this.hosts.connect(host, port, options.timeout ?? 5000).then(
      (socket) => callback?.(null, socket),
      (error: unknown) => callback?.(error as Error, undefined as unknown as Duplex),
    );
    return undefined;
  }
}

/** {@link GatewayAgent} with TLS over the gateway's connection, checking the replica's certificate. */
class GatewayTlsAgent extends https.Agent {
  constructor(
    private readonly hosts: HostNetwork,
    options: https.AgentOptions,
  ) {
    super(options);
  }

  override createConnection(
    options: https.RequestOptions,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    const host = options.hostname ?? options.host ?? "localhost";
    const port = Number(options.port ?? 443);
    this.hosts.connect(host, port, options.timeout ?? 5000).then(
      (socket) => {
        const secure = tls.connect({
          socket,
          host,
          ...(net.isIP(host) === 0 ? { servername: host } : {}),
          ...(options.ca === undefined ? {} : { ca: options.ca }),
          ...(options.cert === undefined ? {} : { cert: options.cert }),
          ...(options.key === undefined ? {} : { key: options.key }),
          ...(options.rejectUnauthorized === undefined ? {} : { rejectUnauthorized: options.rejectUnauthorized }),
        });
        callback?.(null, secure);
      },
      (error: unknown) => callback?.(error as Error, undefined as unknown as Duplex),
    );
    return undefined;
  }
}

/**
 * A cluster of real replica processes for the runtime's integration tests: a temporary data
 * folder, one `paxos-lease replica` child process per member, each writing an event trace, on
 * loopback (free ports) or, with `hosts`, each replica in its own network namespace with its own
 * address and configured as docs/operations.md configures separate machines (testing-hosts.ts;
 * clients then connect from the clients' host). Replicas can be killed (any signal) and
 * restarted on their data. Spares (ids above the initial members) start with --join, listing
 * every replica as a peer. Its tokens file holds one token per role; `client()` and `status()`
 * use the admin token. Test-only. Every wait is bounded; `close` kills every child still running
 * (and tears the hosts down). A test file gets one with `useCluster`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import path from "node:path";
import { afterAll, beforeAll } from "vitest";
import { authHeaders, httpJson, KvClient } from "./client.ts";
import { ensureCliBuilt } from "./build.ts";
import { cliArgv, replicaEnv, replicaV8Flags } from "./program.ts";
import { roles, type Role } from "./access.ts";
import { certsLayout, initCa, issueReplicaCert } from "./certs.ts";
import { createToken } from "./tokens.ts";
import { freePorts, tempDir, waitFor } from "./testing.ts";
import { HostNetwork } from "./testing-hosts.ts";
import type { ReplicaStatus } from "./status.ts";

/** One replica's process and its captured output. */
interface Member {
  readonly id: number;
  readonly peerPort: number;
  readonly httpPort: number;
  child: ChildProcess | null;
  output: string[];
  exit: Promise<number | null> | null;
}

/** Output lines kept per replica, for failure reports. */
const outputLinesMax = 400;

/**
 * Replicas on this machine numbered 1..n, each writing its trace into `dir`: the lookups every
 * local test cluster shares (this file's TestCluster, the nemesis's cluster).
 */
export class MemberLookups<M extends { readonly id: number }> {
  constructor(
    readonly dir: string,
    readonly members: readonly M[],
    /** The base URL clients use for a member. */
    private readonly endpointOf: (member: M) => string,
  ) {}

  member(id: number): M {
    const member = this.members[id - 1];
    if (member === undefined) throw new Error(`no replica ${id}`);
    return member;
  }

  endpoint(id: number): string {
    return this.endpointOf(this.member(id));
  }

  endpoints(): string[] {
    return this.members.map((m) => this.endpoint(m.id));
  }

  traceFile(id: number): string {
    return path.join(this.dir, `replica-${id}.trace.jsonl`);
  }
}

/** How a test cluster is made (see `TestCluster.create`). */
export interface ClusterOptions {
  readonly traces?: boolean;
  readonly spares?: number;
  readonly hosts?: boolean | HostNetwork;
  readonly delayPorts?: readonly number[];
  /** HTTPS for clients and mutual TLS between replicas, with certificates of a CA made here, and no secret. */
  readonly tls?: boolean;
}

/** The peer and client ports of every replica on hosts, as in docs/operations.md. */
const hostPeerPort = 7001;
const hostHttpPort = 8001;

export class TestCluster extends MemberLookups<Member> {
  /** Agent for the harness's own requests (status); through the clients' host on hosts. */
  private readonly agent: http.Agent;

  private constructor(
    dir: string,
    members: Member[],
    private readonly secretFile: string,
    /** The tokens file every replica reads. */
    readonly tokensFile: string,
    private readonly tokens: ReadonlyMap<Role, string>,
    private readonly coreConfigFile: string | undefined,
    private readonly traces: boolean,
    /** The initial members are 1..initialSize; the others are spares that join. */
    readonly initialSize: number,
    /** The hosts, when each replica runs in its own network namespace. */
    readonly hosts: HostNetwork | undefined,
    /** Whether `close` tears the hosts down (it made them). */
    private readonly ownsHosts: boolean,
    /** The cluster's certificates (certs.ts layout) when it runs TLS, else undefined. */
    readonly certsDir: string | undefined,
  ) {
    const scheme = certsDir === undefined ? "http" : "https";
    super(dir, members, (m) =>
      hosts === undefined
        ? `${scheme}://127.0.0.1:${m.httpPort}`
        : `${scheme}://${hosts.address(m.id)}:${hostHttpPort}`,
    );
    this.caCert = certsDir === undefined ? undefined : fs.readFileSync(certsLayout(certsDir).caCert, "utf8");
    this.agent =
      hosts !== undefined
        ? certsDir === undefined
          ? hosts.agent()
          : hosts.tlsAgent({ ca: this.caCert })
        : certsDir === undefined
          ? new http.Agent({ keepAlive: false })
          : new https.Agent({ keepAlive: false, ca: this.caCert });
  }

  /** The CA certificate (PEM) of a TLS cluster's certificates. */
  readonly caCert: string | undefined;

  /**
   * `size` replicas and `spares` more that join later, with core settings `core`; each writes an
   * event trace unless `traces` is false (benchmarks). With `hosts`, each replica runs on its own
   * host: `true` makes hosts for this cluster (rejecting with HostsUnavailable where namespaces
   * cannot be made; `delayPorts` are the ports they can delay, default none) and `close` removes
   * them; a HostNetwork of at least size + spares hosts is used as it is and left to its owner.
   */
  static async create(
    size: number,
    core?: Record<string, unknown>,
    options: ClusterOptions = {},
  ): Promise<TestCluster> {
    const spares = options.spares ?? 0;
    // Benchmarks start clusters outside vitest (whose global setup builds): the replicas run the current sources.
    await ensureCliBuilt();
    const given = options.hosts instanceof HostNetwork ? options.hosts : undefined;
    if (given !== undefined && given.options.hosts < size + spares)
      throw new Error(`${size + spares} replicas need as many hosts, not ${given.options.hosts}`);
    const hosts =
      options.hosts === true
        ? await HostNetwork.create({ hosts: size + spares, delayPorts: options.delayPorts ?? [] })
        : given;
    const dir = tempDir("cluster");
    const ports = hosts === undefined ? await freePorts(2 * (size + spares)) : [];
    const secretFile = path.join(dir, "secret");
    fs.writeFileSync(secretFile, "integration-test-secret-0123456789\n", { mode: 0o600 });
    const tokensFile = path.join(dir, "tokens.json");
    const tokens = new Map(roles.map((role) => [role, createToken(tokensFile, role, `test ${role}`).token]));
    const certsDir = options.tls === true ? path.join(dir, "certs") : undefined;
    if (certsDir !== undefined) {
      initCa(certsDir, { clusterId: "it-cluster" });
      for (let id = 1; id <= size + spares; id++)
        issueReplicaCert(certsDir, {
          clusterId: "it-cluster",
          id,
          hosts: ["127.0.0.1", "localhost", ...(hosts === undefined ? [] : [hosts.address(id)])],
        });
    }
    let coreConfigFile: string | undefined;
    if (core !== undefined) {
      coreConfigFile = path.join(dir, "core.json");
      fs.writeFileSync(coreConfigFile, JSON.stringify(core));
    }
    const members = Array.from({ length: size + spares }, (_, i) => ({
      id: i + 1,
      peerPort: ports[2 * i] ?? hostPeerPort,
      httpPort: ports[2 * i + 1] ?? hostHttpPort,
      child: null,
      output: [],
      exit: null,
    }));
    return new TestCluster(
      dir,
      members,
      secretFile,
      tokensFile,
      tokens,
      coreConfigFile,
      options.traces ?? true,
      size,
      hosts,
      options.hosts === true,
      certsDir,
    );
  }

  /** The flags that authenticate replica `id` to its peers: the secret, or its certificate. */
  private credentialArgs(id: number): string[] {
    if (this.certsDir === undefined) return ["--secret-file", this.secretFile];
    const files = certsLayout(this.certsDir);
    return ["--tls-cert", files.replica(id).cert, "--tls-key", files.replica(id).key, "--tls-ca", files.caCert];
  }

  /** Where replica `id`'s peers reach it (HOST:PORT). */
  peerAddress(id: number): string {
    return `${this.hosts === undefined ? "127.0.0.1" : this.hosts.address(id)}:${this.member(id).peerPort}`;
  }

  /** The flags that give replica `id` its client address: on hosts, as docs/operations.md gives them to a machine. */
  private addressArgs(id: number): string[] {
    if (this.hosts === undefined) return ["--http", `127.0.0.1:${this.member(id).httpPort}`];
    return [
      "--listen",
      `0.0.0.0:${hostPeerPort}`,
      "--http",
      `0.0.0.0:${hostHttpPort}`,
      "--advertise-http",
      `${this.hosts.address(id)}:${hostHttpPort}`,
    ];
  }

  /** The cluster's token with `role` (admin by default). */
  token(role: Role = "admin"): string {
    return this.tokens.get(role)!;
  }

  /** The Authorization header of {@link token}. */
  authHeaders(role: Role = "admin"): Record<string, string> {
    return authHeaders(this.token(role));
  }

  /** The endpoints of the replicas running now. */
  runningEndpoints(): string[] {
    return this.members.filter((m) => m.child !== null).map((m) => this.endpoint(m.id));
  }

  dataDir(id: number): string {
    return path.join(this.dir, `replica-${id}`);
  }

  /** The argv of `replica` for member `id`. */
  replicaArgs(id: number, extra: readonly string[] = [], peerIds?: readonly number[]): string[] {
    const spare = id > this.initialSize;
    const listed = (m: Member): boolean =>
      peerIds === undefined ? spare || m.id <= this.initialSize : peerIds.includes(m.id) || m.id === id;
    const peers = this.members
      .filter(listed)
      .map((m) => `${m.id}=${this.peerAddress(m.id)}`)
      .join(",");
    const join = spare
      ? ["--join", "--initial-members", Array.from({ length: this.initialSize }, (_, i) => i + 1).join(",")]
      : [];
    const args = [
      "replica",
      "--id",
      String(id),
      "--cluster-id",
      "it-cluster",
      ...this.credentialArgs(id),
      "--tokens-file",
      this.tokensFile,
      "--peers",
      peers,
      ...this.addressArgs(id),
      "--data",
      this.dataDir(id),
      "--log-level",
      "info",
    ];
    if (this.traces) args.push("--trace", this.traceFile(id));
    if (this.coreConfigFile !== undefined) args.push("--core-config", this.coreConfigFile);
    return [...args, ...join, ...extra];
  }

  /**
   * Spawn replica `id` (with --init when its data directory does not exist yet). `detached`: in a
   * session of its own (setsid), out of reach of the signals the caller's terminal or job sends
   * its process group (a hangup); the caller then stops it itself (`close`, `kill`).
   */
  start(
    id: number,
    options: {
      readonly peers?: readonly number[];
      readonly extra?: readonly string[];
      readonly detached?: boolean;
      /** More environment variables for this process (test faults). */
      readonly env?: Readonly<Record<string, string>>;
    } = {},
  ): void {
    const member = this.member(id);
    if (member.child !== null) throw new Error(`replica ${id} is running`);
    const extra = fs.existsSync(this.dataDir(id)) ? [] : ["--init"];
    // For profiling benchmarks (docs/performance.md): every replica writes a V8 CPU profile there when it exits.
    const profileDir = process.env.PAXOS_LEASE_REPLICA_CPU_PROF_DIR;
    const profile = profileDir === undefined || profileDir === "" ? [] : ["--cpu-prof", `--cpu-prof-dir=${profileDir}`];
    // For memory benchmarks (bench/memory.ts): more V8 or Node options of every replica, space-separated.
    const nodeFlags = (process.env.PAXOS_LEASE_REPLICA_NODE_FLAGS ?? "").split(" ").filter((f) => f !== "");
    const argv = [
      ...profile,
      ...replicaV8Flags,
      ...nodeFlags,
      ...cliArgv(),
      ...this.replicaArgs(id, [...extra, ...(options.extra ?? [])], options.peers),
    ];
    const detached = options.detached === true;
    const child =
      this.hosts === undefined
        ? spawn(process.execPath, argv, {
            stdio: ["ignore", "pipe", "pipe"],
            env: { ...replicaEnv(), ...options.env },
            detached,
          })
        : this.hosts.spawn(id, process.execPath, argv, {
            stdio: ["ignore", "pipe", "pipe"],
            env: { ...replicaEnv(), ...options.env },
            detached,
          });
    member.child = child;
    member.output.push(`--- started pid ${child.pid ?? "?"}`);
    const keep = (chunk: Buffer): void => {
      member.output.push(
        ...chunk
          .toString("utf8")
          .split("\n")
          .filter((l) => l !== ""),
      );
      if (member.output.length > outputLinesMax) member.output.splice(0, member.output.length - outputLinesMax);
    };
    child.stdout!.on("data", keep);
    child.stderr!.on("data", keep);
    member.exit = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
    void member.exit.then(() => {
      if (member.child === child) member.child = null;
    });
  }

  /** Start the initial members (not the spares). */
  startAll(): void {
    for (const m of this.members) if (m.id <= this.initialSize) this.start(m.id);
  }

  /** Send `signal` to replica `id` and wait until it has exited. */
  async kill(id: number, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const member = this.member(id);
    if (member.child === null || member.exit === null) return;
    member.child.kill(signal);
    await member.exit;
    member.child = null;
  }

  async status(id: number): Promise<ReplicaStatus | undefined> {
    try {
      const reply = await httpJson("GET", `${this.endpoint(id)}/status`, undefined, this.authHeaders("read"), 2000, {
        agent: this.agent,
        ca: this.caCert,
      });
      return reply.status === 200 ? (reply.body as unknown as ReplicaStatus) : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Wait until replica `id` (started a moment ago, typically a spare) answers and has an open,
   * authenticated link to every running replica among its peers, whichever of them leads now or
   * next; resolves with its status. A leader refuses to add a replica that has not connected to
   * it (409 unknown-replica) and `members add` retries that for 3 s only, which a process starting
   * on a loaded machine can outlast.
   */
  async waitForDialled(id: number, timeoutMs = 30_000): Promise<ReplicaStatus> {
    return waitFor(
      `replica ${id} to connect to every running replica it lists as a peer`,
      async () => {
        const status = await this.status(id);
        if (status === undefined) return undefined;
        const running = status.peers.filter((p) => p.id !== id && this.member(p.id).child !== null);
        return running.length > 0 && running.every((p) => p.outbound) ? status : undefined;
      },
      timeoutMs,
      100,
    );
  }

  /** Replica `id`'s /metrics text (Prometheus format), read with the read token; rejects on failure. */
  metrics(id: number): Promise<string> {
    const url = `${this.endpoint(id)}/metrics`;
    return new Promise((resolve, reject) => {
      const request = (url.startsWith("https:") ? https : http).get(
        url,
        {
          agent: this.agent,
          headers: this.authHeaders("read"),
          timeout: 5000,
          ...(this.caCert === undefined ? {} : { ca: this.caCert }),
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on("data", (chunk: Buffer) => chunks.push(chunk));
          response.on("end", () =>
            response.statusCode === 200
              ? resolve(Buffer.concat(chunks).toString("utf8"))
              : reject(new Error(`GET ${url}: ${response.statusCode}`)),
          );
          response.on("error", reject);
        },
      );
      request.on("timeout", () => request.destroy(new Error(`GET ${url}: timed out`)));
      request.on("error", reject);
    });
  }

  /**
   * Wait until every running member (not a spare waiting to join, not a removed replica) answers and agrees on one
   * leader that says it leads.
   */
  async waitForLeader(timeoutMs = 60_000): Promise<number> {
    return waitFor(
      "one leader all running replicas agree on",
      async () => {
        const running = this.members.filter((m) => m.child !== null);
        const all = await Promise.all(running.map((m) => this.status(m.id)));
        if (all.some((s) => s === undefined)) return undefined;
        const statuses = all.filter((s) => s!.role !== "removed" && s!.membership.self !== "none");
        if (statuses.length === 0) return undefined;
        const leaders = new Set(statuses.map((s) => s!.leader));
        const leader = statuses[0]!.leader;
        if (leaders.size !== 1 || leader === null) return undefined;
        const leaderStatus = statuses.find((s) => s!.replica === leader);
        return leaderStatus?.role === "leader" ? leader : undefined;
      },
      timeoutMs,
      100,
    );
  }

  client(deadlineMs = 30_000): KvClient {
    return new KvClient({
      endpoints: this.runningEndpoints().length > 0 ? this.runningEndpoints() : this.endpoints(),
      deadlineMs,
      requestTimeoutMs: 3000,
      token: this.token(),
      ca: this.caCert,
      ...(this.hosts === undefined ? {} : { agent: this.agent }),
    });
  }

  /** Run the `paxos-lease` CLI with the admin token, as an operator would; resolves with its exit code and output. */
  cli(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [...cliArgv(), ...args], {
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, PAXOS_LEASE_TOKEN: this.token() },
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
      child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
      child.once("exit", (code) => resolve({ code, stdout, stderr }));
    });
  }

  /** Captured output of every replica, for a failure report. */
  logs(): string {
    return this.members.map((m) => `=== replica ${m.id}\n${m.output.slice(-60).join("\n")}`).join("\n");
  }

  /** Kill every child; remove the folder unless `keep`. */
  async close(keep = false): Promise<void> {
    // A profiled replica writes its CPU profile only when it exits cleanly.
    const profiling = (process.env.PAXOS_LEASE_REPLICA_CPU_PROF_DIR ?? "") !== "";
    await Promise.all(this.members.map((m) => this.kill(m.id, profiling ? "SIGTERM" : "SIGKILL")));
    this.agent.destroy();
    if (this.ownsHosts) await this.hosts?.close();
    if (!keep) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * One test cluster for the tests of a file (or of the describe block it is called in): `size`
 * replicas made with `options` (core settings in `core`) and started before the first test (with
 * `flags` added to their command lines), together with the spares in `alsoStart`; unless `leader` is false, the first
 * test starts only
 * once all of them agree on a leader. The cluster is closed after the last test, its folder kept
 * when PAXOS_LEASE_KEEP_TEST_DATA=1. Returns the cluster's getter, for use inside tests.
 */
export function useCluster(
  size: number,
  options: ClusterOptions & {
    readonly core?: Record<string, unknown>;
    /** More command-line flags for every initial member. */
    readonly flags?: readonly string[];
    readonly alsoStart?: readonly number[];
    readonly leader?: boolean;
  } = {},
): () => TestCluster {
  let cluster: TestCluster | undefined;
  beforeAll(async () => {
    cluster = await TestCluster.create(size, options.core, options);
    for (let id = 1; id <= size; id++) cluster.start(id, { extra: options.flags ?? [] });
    for (const id of options.alsoStart ?? []) cluster.start(id);
    if (options.leader !== false) await cluster.waitForLeader(90_000);
  }, 120_000);
  afterAll(async () => {
    await cluster?.close(process.env.PAXOS_LEASE_KEEP_TEST_DATA === "1");
  }, 20_000);
  return () => {
    if (cluster === undefined) throw new Error("the test cluster is made before the first test");
    return cluster;
  };
}

/**
 * `paxos-lease`: the command line. `replica` runs one replica process (`--join` for one that
 * joins a running cluster); `cluster start` runs a local cluster; `put`, `get`, `del`, `cas`,
 * `append`, `status` and `members` (show, add, promote, remove, replace) talk to a running
 * cluster over its HTTP API, following redirects to the leader; `check-history` runs the
 * linearizability checker on a recorded client history. Every command has `--help`; a bad flag
 * or value is refused with a message naming it.
 *
 * Exit codes: 0 done; 1 the operation was refused (failed compare-and-swap, key not found, ...);
 * 2 bad usage or configuration; 3 the data directory was refused (damaged, foreign, missing,
 * in use); 4 the cluster did not answer; 70 the replica stopped on an internal failure.
 */
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { roles, type Role } from "./access.ts";
import { authHeaders, httpJson, KvClient, keyPath, UnreachableError, type ApiReply, type Session } from "./client.ts";
import { checkHistoryCommand } from "./check-history-command.ts";
import { logLevels, type LogLevel } from "./log-levels.ts";
import { httpConnectionsMaxDefault } from "./admission.ts";
import { heartbeatRelayMsDefault } from "./heartbeat-relay.ts";
import { peerAdmissionDefaults, peerHandshakeTimeoutMsDefault, peerLogIntervalMsDefault } from "./peer-admission.ts";
import { localReplicasMax } from "./program.ts";
import type { Address } from "./transport.ts";

export const exitRefused = 1;
export const exitUsage = 2;
export const exitData = 3;
export const exitUnreachable = 4;
export const exitFatal = 70;
/** Shortest accepted cluster secret, in characters. */
export const secretLengthMin = 16;

// ---- Argument parsers: each throws InvalidArgumentError with a message naming the problem. ----

/** A HOST:PORT option value, checked (as {@link parseAddress} reads it), kept as text. */
function addressText(option: string): (value: string) => string {
  return (value) => {
    try {
      parseAddress(value);
    } catch {
      throw new InvalidArgumentError(`${option} must be HOST:PORT, got ${value}`);
    }
    return value;
  };
}

function parseIntIn(min: number, max: number): (value: string) => number {
  return (value) => {
    if (!/^[0-9]+$/.test(value)) throw new InvalidArgumentError(`expected an integer, got ${JSON.stringify(value)}`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`expected an integer in [${min}, ${max}], got ${n}`);
    return n;
  };
}

/** HOST:PORT, with [v6]:PORT for IPv6. */
export function parseAddress(value: string): Address {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):([0-9]{1,5})$/.exec(value);
  if (match === null) throw new InvalidArgumentError(`expected HOST:PORT, got ${JSON.stringify(value)}`);
  const port = Number(match[3]);
  if (port < 1 || port > 65535) throw new InvalidArgumentError(`port ${port} is outside 1..65535`);
  return { host: match[1] ?? match[2]!, port };
}

/** ID,ID,... : distinct replica ids. */
export function parseIds(value: string): number[] {
  const ids = value
    .split(",")
    .map((e) => e.trim())
    .filter((e) => e !== "")
    .map((e) => parseIntIn(1, 1_000_000)(e));
  if (ids.length === 0) throw new InvalidArgumentError("the id list is empty");
  if (new Set(ids).size !== ids.length)
    throw new InvalidArgumentError(`an id is listed twice in ${JSON.stringify(value)}`);
  return ids;
}

/** ID=HOST:PORT,ID=HOST:PORT,... (every member, this replica included). */
export function parsePeers(value: string): Map<number, Address> {
  const members = new Map<number, Address>();
  for (const entry of value
    .split(",")
    .map((e) => e.trim())
    .filter((e) => e !== "")) {
    const eq = entry.indexOf("=");
    if (eq < 0) throw new InvalidArgumentError(`peer entry ${JSON.stringify(entry)} is not ID=HOST:PORT`);
    const id = parseIntIn(1, 1_000_000)(entry.slice(0, eq));
    if (members.has(id)) throw new InvalidArgumentError(`replica ${id} is listed twice`);
    members.set(id, parseAddress(entry.slice(eq + 1)));
  }
  if (members.size === 0) throw new InvalidArgumentError("the peer list is empty");
  return members;
}

function parseEndpoints(value: string): string[] {
  return value
    .split(",")
    .map((e) => e.trim())
    .filter((e) => e !== "")
    .map((e) => {
      const url = /^https?:\/\//.test(e) ? e : `http://${e}`;
      try {
        return new URL(url).origin;
      } catch {
        throw new InvalidArgumentError(`endpoint ${JSON.stringify(e)} is not a URL or HOST:PORT`);
      }
    });
}

/** The cluster secret; with TLS (`optional`), none when neither the file nor the variable gives one. */
function readSecret(file: string | undefined, optional = false): Buffer | undefined {
  let text: string | undefined;
  if (file !== undefined) {
    try {
      text = fs.readFileSync(file, "utf8").trim();
    } catch (error) {
      throw new UsageError(
        `cannot read --secret-file ${file}: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  } else text = process.env.PAXOS_LEASE_SECRET;
  if (text === undefined && optional) return undefined;
  if (text === undefined)
    throw new UsageError(
      "no cluster secret: pass --secret-file FILE or set PAXOS_LEASE_SECRET (or give --tls-cert, --tls-key and --tls-ca)",
    );
  if (text.length < secretLengthMin)
    throw new UsageError(`the cluster secret is shorter than ${secretLengthMin} characters`);
  return Buffer.from(text, "utf8");
}

function readCoreConfig(file: string | undefined): Record<string, unknown> {
  if (file === undefined) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (error) {
    throw new UsageError(
      `cannot read --core-config ${file}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    throw new UsageError(`--core-config ${file} must hold a JSON object`);
  return parsed as Record<string, unknown>;
}

class UsageError extends Error {}

// ---- Commands ----

interface ReplicaFlags {
  id: number;
  peers: Map<number, Address>;
  http: Address;
  data: string;
  clusterId: string;
  secretFile?: string;
  listen?: Address;
  advertiseHttp?: string;
  advertisePeer?: Address;
  join?: boolean;
  initialMembers?: number[];
  init?: boolean;
  trace?: string;
  coreConfig?: string;
  logLevel: LogLevel;
  requestTimeoutMs: number;
  requestsInFlightMax: number;
  requestBytesInFlightMax: number;
  requestSmallBytesMax: number;
  requestSmallBytesReserve: number;
  requestWaitMsMax: number;
  httpConnectionsMax: number;
  httpConnectionsPerAddressMax?: number;
  heartbeatRelayMs: number;
  peerHandshakesMax: number;
  peerReservedSlots: number;
  peerSourceHandshakesMax: number;
  peerSourceRate: number;
  peerSourceBurst: number;
  peerHandshakeTimeoutMs: number;
  peerLogIntervalMs: number;
  tokensFile: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  publicStatus?: boolean;
  allowHost?: string[];
}

async function runReplicaCommand(flags: ReplicaFlags): Promise<void> {
  // Loaded here, not at the top: a client command needs none of the replica.
  const [
    { ConfigError },
    { clockFromEnv },
    { createLogger },
    { slowDiskFromEnv },
    { diskFaultsFromEnv },
    { startReplica },
    { StorageError },
    { TokensFileError },
    { CertsError },
    { namedFeatureLevel },
  ] = await Promise.all([
    import("../core/index.ts"),
    import("./clock.ts"),
    import("./log.ts"),
    import("./slow-disk.ts"),
    import("./disk-faults.ts"),
    import("./replica-main.ts"),
    import("./storage.ts"),
    import("./tokens.ts"),
    import("./certs.ts"),
    import("./feature-gate.ts"),
  ]);
  const log = createLogger({ replica: flags.id, level: flags.logLevel });
  const tls = flags.tlsCert === undefined ? undefined : { cert: flags.tlsCert, key: flags.tlsKey!, ca: flags.tlsCa! };
  let replica: Awaited<ReturnType<typeof startReplica>>;
  try {
    const slowDisk = slowDiskFromEnv(process.env);
    if (slowDisk !== null) {
      // Test-only (refused unless PAXOS_LEASE_ALLOW_TEST_FAULTS=1): SIGUSR2 flips slow commits.
      process.on("SIGUSR2", () =>
        log.warn({ delayMs: slowDisk.delayMs, on: slowDisk.toggle() }, "test fault: slow disk toggled"),
      );
    }
    replica = await startReplica({
      slowDisk,
      diskFaults: diskFaultsFromEnv(process.env),
      featureLevelNamed: namedFeatureLevel(process.env),
      id: flags.id,
      clusterId: flags.clusterId,
      secret: readSecret(flags.secretFile, tls !== undefined),
      tls,
      members: flags.peers,
      ...(flags.listen === undefined ? {} : { listen: flags.listen }),
      http: flags.http,
      tokensFile: flags.tokensFile,
      publicStatus: flags.publicStatus === true,
      allowHosts: flags.allowHost ?? [],
      ...(flags.advertiseHttp === undefined ? {} : { advertiseHttp: flags.advertiseHttp }),
      ...(flags.advertisePeer === undefined ? {} : { advertisePeer: flags.advertisePeer }),
      ...(flags.join === true ? { joining: true } : {}),
      ...(flags.initialMembers === undefined ? {} : { initialMembers: flags.initialMembers }),
      dataDir: flags.data,
      init: flags.init === true,
      ...(flags.trace === undefined ? {} : { traceFile: flags.trace }),
      core: readCoreConfig(flags.coreConfig),
      clock: clockFromEnv(process.env),
      log,
      requestTimeoutMs: flags.requestTimeoutMs,
      admission: {
        requestsInFlightMax: flags.requestsInFlightMax,
        bytesInFlightMax: flags.requestBytesInFlightMax,
        smallBytesMax: flags.requestSmallBytesMax,
        smallBytesReserve: flags.requestSmallBytesReserve,
        waitMsMax: flags.requestWaitMsMax,
      },
      peerAdmission: {
        handshakesMax: flags.peerHandshakesMax,
        reservedSlots: flags.peerReservedSlots,
        sourceHandshakesMax: flags.peerSourceHandshakesMax,
        sourceRatePerSecond: flags.peerSourceRate,
        sourceBurst: flags.peerSourceBurst,
      },
      peerHandshakeTimeoutMs: flags.peerHandshakeTimeoutMs,
      httpConnectionsMax: flags.httpConnectionsMax,
      ...(flags.httpConnectionsPerAddressMax === undefined
        ? {}
        : { httpConnectionsPerAddressMax: flags.httpConnectionsPerAddressMax }),
      heartbeatRelayMs: flags.heartbeatRelayMs,
      peerLogIntervalMs: flags.peerLogIntervalMs,
      onFatal: () => {
        log.flush();
        process.exit(exitFatal);
      },
    });
  } catch (error) {
    const code =
      error instanceof StorageError
        ? exitData
        : error instanceof UsageError ||
            error instanceof ConfigError ||
            error instanceof TokensFileError ||
            error instanceof CertsError
          ? exitUsage
          : exitFatal;
    const message = error instanceof Error ? error.message : String(error);
    log.fatal({ err: error }, message);
    log.flush();
    process.stderr.write(`paxos-lease replica ${flags.id}: refusing to start: ${message}\n`);
    process.exit(code);
  }
  const shutdown = (signal: string): void => {
    log.info({ signal }, "shutting down");
    void replica.stop().then(() => {
      log.flush();
      process.exit(0);
    });
  };
  process.once("SIGINT", () => shutdown("SIGINT"));
  process.once("SIGTERM", () => shutdown("SIGTERM"));
}

interface ClientFlags {
  endpoints: string[];
  timeoutMs: number;
  json?: boolean;
  /** The bearer token, resolved from --token, $PAXOS_LEASE_TOKEN, --token-file or the local cluster's file. */
  token?: string;
  tokenFile?: string;
  /** The CA certificate (PEM) https endpoints must chain to, resolved from --ca-file or the local cluster's. */
  ca?: string;
  caFile?: string;
  clientId?: string;
  seq?: number;
}

/** The CA certificate of the local cluster `npm start -- --tls` runs. */
export const localCaFile = path.join("data", "certs", "ca.crt");

/** The endpoints of the local cluster: https when `npm start -- --tls` last started it (data/cluster.json). */
function localEndpoints(): string[] {
  let tls = false;
  try {
    tls = (JSON.parse(fs.readFileSync(path.join("data", "cluster.json"), "utf8")) as { tls?: unknown }).tls === true;
  } catch {
    // No local cluster here: the defaults are those of a plain one.
  }
  return [8001, 8002, 8003].map((port) => `${tls ? "https" : "http"}://127.0.0.1:${port}`);
}

/** The admin token `npm start` writes for its cluster, used when no token is given. */
export const localAdminTokenFile = path.join("data", "admin.token");

function readTokenFile(file: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8").trim();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === "ENOENT"
        ? "it does not exist"
        : code === "EACCES"
          ? "permission denied"
          : error instanceof Error
            ? error.message
            : String(error);
    throw new UsageError(`cannot read the token file ${file}: ${why}`);
  }
  if (text === "") throw new UsageError(`the token file ${file} is empty`);
  return text;
}

/**
 * The global client options (they may come before or after the subcommand) merged with the
 * subcommand's own, the token resolved: --token (or $PAXOS_LEASE_TOKEN), else --token-file (or
 * $PAXOS_LEASE_TOKEN_FILE), else the local cluster's data/admin.token when it exists.
 */
function clientFlagsOf<T extends object = object>(command: Command): ClientFlags & T {
  const flags = command.optsWithGlobals<ClientFlags & T>();
  const tokenFile = flags.tokenFile ?? (fs.existsSync(localAdminTokenFile) ? localAdminTokenFile : undefined);
  const token = flags.token ?? (tokenFile === undefined ? undefined : readTokenFile(tokenFile));
  const caFile = flags.caFile ?? (fs.existsSync(localCaFile) ? localCaFile : undefined);
  const ca = caFile === undefined ? undefined : readCaFile(caFile);
  return { ...flags, ...(token === undefined ? {} : { token }), ...(ca === undefined ? {} : { ca }) };
}

function readCaFile(file: string): string {
  try {
    return fs.readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(
      `cannot read the CA file ${file}: ${code === "ENOENT" ? "it does not exist" : code === "EACCES" ? "permission denied" : String(error)}`,
    );
  }
}

function clientOf(flags: ClientFlags): KvClient {
  return new KvClient({ endpoints: flags.endpoints, deadlineMs: flags.timeoutMs, token: flags.token, ca: flags.ca });
}

/** The session --client-id and --seq name, or undefined: the client picks one (`KvClient.write`). */
function sessionOf(flags: ClientFlags): Session | undefined {
  if ((flags.clientId === undefined) !== (flags.seq === undefined))
    throw new UsageError("--client-id and --seq go together");
  return flags.clientId === undefined ? undefined : { clientId: flags.clientId, seq: flags.seq! };
}

/** Print the reply; returns the exit code. `success` prints the human form of a 200. */
function report(
  reply: ApiReply,
  flags: ClientFlags,
  success: (body: Record<string, unknown>) => string | undefined,
): number {
  if (flags.json === true) {
    process.stdout.write(`${JSON.stringify({ status: reply.status, ...reply.body })}\n`);
    return reply.status === 200 ? 0 : reply.status === 503 ? exitUnreachable : exitRefused;
  }
  if (reply.status === 200) {
    const text = success(reply.body);
    if (text !== undefined) process.stdout.write(`${text}\n`);
    return 0;
  }
  const code = typeof reply.body.code === "string" ? reply.body.code : `HTTP ${reply.status}`;
  const message = typeof reply.body.message === "string" ? reply.body.message : JSON.stringify(reply.body);
  const hint =
    reply.status === 401 && flags.token === undefined
      ? `; no token was given: pass --token-file FILE or set PAXOS_LEASE_TOKEN (npm start writes ${localAdminTokenFile})`
      : "";
  process.stderr.write(`error: ${code}: ${message}${hint} (from ${reply.endpoint})\n`);
  return reply.status === 503 ? exitUnreachable : exitRefused;
}

async function clientCommand(flags: ClientFlags, run: (client: KvClient) => Promise<number>): Promise<void> {
  try {
    process.exitCode = await run(clientOf(flags));
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const hint =
      error instanceof UnreachableError
        ? ": is the cluster running, and are --endpoints (or $PAXOS_LEASE_ENDPOINTS) its client addresses?"
        : "";
    process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}${hint}\n`);
    process.exitCode = exitUnreachable;
  }
}

/** A JSON field as display text. */
function text(value: unknown, absent = "-"): string {
  if (value === null || value === undefined) return absent;
  return typeof value === "string" ? value : JSON.stringify(value);
}

/**
 * Why an endpoint did not answer, without the endpoint (the status table's first column): the
 * client's message names it before the cause ("no replica answered within 2000 ms (URL): connect
 * ETIMEDOUT ..."; "no replica reachable: URL (connect ECONNREFUSED ...)"), and the cause alone is
 * kept when there is one.
 */
function unreachableReason(error: unknown): string {
  if (error instanceof UnreachableError && error.failures.length === 1) return error.failures[0]!.error;
  const message = error instanceof Error ? error.message : String(error);
  const cause = /^no replica answered within \d+ ms \([^)]*\): (.+)$/s.exec(message);
  return cause?.[1] ?? message;
}

function statusTable(rows: { endpoint: string; status?: Record<string, unknown>; error?: string }[]): string {
  const header = ["ENDPOINT", "REPLICA", "ROLE", "LEADER", "BALLOT", "LEASE", "EXECUTED", "COMMIT", "PEERS UP"];
  const lines = rows.map(({ endpoint, status, error }) => {
    // The reason goes last, where its length widens no column.
    if (status === undefined) return [endpoint, "-", "unreachable", "", "", "", "", "", "", error ?? "?"];
    const peers = Array.isArray(status.peers) ? (status.peers as { outbound?: boolean }[]) : [];
    const lease = typeof status.leaseRemainingMs === "number" ? `${status.leaseRemainingMs} ms` : "-";
    return [
      endpoint,
      text(status.replica),
      status.halted === null ? text(status.role) : "halted",
      text(status.leader),
      text(status.ballot),
      lease,
      text(status.executedSlot),
      text(status.commitIndex),
      `${peers.filter((p) => p.outbound === true).length}/${peers.length}`,
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? "").length)));
  return [header, ...lines]
    .map((l) =>
      l
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/** The client options, global: before or after the subcommand. */
function addClientOptions(program: Command): Command {
  return program
    .addOption(
      new Option("--endpoints <list>", "replica client addresses, comma-separated")
        .env("PAXOS_LEASE_ENDPOINTS")
        .default(localEndpoints(), "the npm start cluster's")
        .argParser(parseEndpoints),
    )
    .addOption(
      new Option("--token <token>", "bearer token (prefer --token-file: a command line is visible to other users)").env(
        "PAXOS_LEASE_TOKEN",
      ),
    )
    .addOption(
      new Option(
        "--token-file <file>",
        `file holding the bearer token (default: ${localAdminTokenFile} when it exists)`,
      ).env("PAXOS_LEASE_TOKEN_FILE"),
    )
    .addOption(
      new Option(
        "--ca-file <file>",
        `CA certificate that https endpoints' certificates must chain to (default: ${localCaFile} when it exists)`,
      ).env("PAXOS_LEASE_CA_FILE"),
    )
    .option("--timeout-ms <ms>", "give up after this long", parseIntIn(1, 3_600_000), 10_000)
    .option("--json", "print the answer as JSON");
}

function withSessionFlags(command: Command): Command {
  return command
    .option("--client-id <id>", "exactly-once session id (default: a fresh random one)")
    .option("--seq <n>", "sequence number in the session (with --client-id)", parseIntIn(1, Number.MAX_SAFE_INTEGER));
}

/**
 * `--value-file`: a value too long for a command line (the kernel's limit for one argument is
 * 128 KiB; a value may be 1 MiB of UTF-8) or not meant for `ps` to show.
 */
function withValueFile(command: Command): Command {
  return command.option(
    "--value-file <file>",
    "take the value from FILE, its bytes exactly (a final newline too), instead of VALUE; - reads standard input",
  );
}

/** The value of a put or append: VALUE, or the UTF-8 text of --value-file; exactly one of them. */
function valueOf(what: string, given: string | undefined, file: string | undefined): string {
  if ((given === undefined) === (file === undefined))
    throw new UsageError(`${what} needs exactly one of VALUE or --value-file FILE`);
  if (given !== undefined) return given;
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file === "-" ? 0 : file!);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "it does not exist" : error instanceof Error ? error.message : String(error);
    throw new UsageError(`cannot read --value-file ${file}: ${why}`);
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new UsageError(`--value-file ${file} is not UTF-8 text`);
  }
}

/** The program, for `main` and for tests. */
export function buildProgram(): Command {
  const program = new Command("paxos-lease")
    .description("A replicated key-value service: Multi-Paxos with leader leases.")
    .showHelpAfterError("(run with --help for usage)")
    .configureHelp({ showGlobalOptions: true })
    .exitOverride();
  addClientOptions(program);

  program
    .command("replica")
    .description("run one replica process")
    .requiredOption("--id <n>", "this replica's id (one of the --peers ids)", parseIntIn(1, 1_000_000))
    .requiredOption(
      "--peers <list>",
      "every member as ID=HOST:PORT,... (this replica included), identical on all replicas; with --join, every current member and this replica",
      parsePeers,
    )
    .requiredOption("--http <host:port>", "where to serve the client API, status page and metrics", parseAddress)
    .requiredOption(
      "--tokens-file <file>",
      "the tokens clients authenticate with (hashed; 'paxos-lease tokens create' makes them); re-read when it changes",
    )
    .option("--public-status", "serve /status and /metrics without a token (the status page then needs none)")
    .option(
      "--allow-host <names>",
      "further names clients reach this replica under (HOST or HOST:PORT, comma-separated), besides the cluster's own addresses",
      (value: string) =>
        value
          .split(",")
          .map((e) => e.trim())
          .filter((e) => e !== ""),
    )
    .requiredOption("--data <dir>", "data directory of this replica")
    .requiredOption("--cluster-id <id>", "the cluster's id; a data directory or peer of another cluster is refused")
    .option(
      "--secret-file <file>",
      "file holding the cluster secret (default: $PAXOS_LEASE_SECRET); optional with --tls-cert",
    )
    .option(
      "--tls-cert <file>",
      "this replica's certificate ('paxos-lease certs issue'): HTTPS for clients, mutual TLS between replicas; re-read when it changes",
    )
    .option("--tls-key <file>", "the key of --tls-cert")
    .option("--tls-ca <file>", "the cluster CA's certificate, which every peer's certificate must chain to")
    .option("--listen <host:port>", "where to accept peers (default: this replica's --peers entry)", parseAddress)
    .option("--advertise-http <host:port>", "client address told to peers for redirects (default: --http)")
    .option(
      "--advertise-peer <host:port>",
      "peer address told to peers, so that replicas this one dials can dial it back (default: its --peers entry)",
      parseAddress,
    )
    .option(
      "--join",
      "join a running cluster: this replica is not one of the initial members; add it afterwards with 'paxos-lease members add' (docs/operations.md)",
    )
    .option(
      "--initial-members <ids>",
      "the cluster's initial members (shown by 'paxos-lease members'); required with --join; without it, the ids of --peers (give it when --peers lists the current members instead)",
      parseIds,
    )
    .option("--init", "create a fresh data directory if there is none (only for a new cluster; see docs/operations.md)")
    .option("--trace <file>", "append an event trace (JSON lines, docs/trace-format.md) to this file")
    .option(
      "--core-config <file>",
      "JSON object of core settings (leaseMs, clockDriftPpmMax, electionTimeoutMsMin, ...)",
    )
    .addOption(new Option("--log-level <level>", "log level").choices(logLevels).default("info"))
    .option("--request-timeout-ms <ms>", "longest wait for a client request", parseIntIn(1, 600_000), 10_000)
    .option(
      "--requests-in-flight-max <n>",
      "client requests held at once; beyond, 429 (docs/operations.md, admission control)",
      parseIntIn(1, 1_000_000),
      1024,
    )
    .option(
      "--request-bytes-in-flight-max <bytes>",
      "bytes of client request bodies held at once, besides --request-small-bytes-reserve for bodies under --request-small-bytes-max; beyond, a request waits for room, its body unread, then 429 (docs/operations.md, admission control)",
      parseIntIn(1, 1 << 30),
      4 * 1024 * 1024,
    )
    .option(
      "--request-small-bytes-max <bytes>",
      "a request whose body is shorter is small: it has room and a queue of its own, and never waits behind larger bodies; 0: no request is small",
      parseIntIn(0, 1 << 30),
      64 * 1024,
    )
    .option(
      "--request-small-bytes-reserve <bytes>",
      "bytes of small requests' bodies held at once besides --request-bytes-in-flight-max",
      parseIntIn(0, 1 << 30),
      1024 * 1024,
    )
    .option(
      "--request-wait-ms-max <ms>",
      "how long a request beyond --request-bytes-in-flight-max waits for room before 429; 0: at once",
      parseIntIn(0, 60_000),
      1000,
    )
    .option(
      "--http-connections-max <n>",
      "client connections open at once; beyond, a new one is closed as it arrives (docs/operations.md, the threat model)",
      parseIntIn(1, 1_000_000),
      httpConnectionsMaxDefault,
    )
    .option(
      "--http-connections-per-address-max <n>",
      "client connections open at once from one address, at most --http-connections-max; beyond, a new one is closed as it arrives (default: a quarter of --http-connections-max; raise it behind a proxy, docs/operations.md)",
      parseIntIn(1, 1_000_000),
    )
    .option(
      "--heartbeat-relay-ms <ms>",
      "how long after the leader's last heartbeat to a peer its relay thread may still send that peer copies while the main thread sends none; 0: no relay (docs/operations.md, the lease under a client flood)",
      parseIntIn(0, 60_000),
      heartbeatRelayMsDefault,
    )
    .option(
      "--peer-handshakes-max <n>",
      "peer connections in their handshake at once, from all addresses; beyond, refused (docs/operations.md, the peer port under a flood)",
      parseIntIn(2, 100_000),
      peerAdmissionDefaults.handshakesMax,
    )
    .option(
      "--peer-reserved-slots <n>",
      "of --peer-handshakes-max, the slots only addresses of configured peers may use (fewer than --peer-handshakes-max)",
      parseIntIn(0, 99_999),
      peerAdmissionDefaults.reservedSlots,
    )
    .option(
      "--peer-source-handshakes-max <n>",
      "peer connections in their handshake at once from one address",
      parseIntIn(1, 100_000),
      peerAdmissionDefaults.sourceHandshakesMax,
    )
    .option(
      "--peer-source-rate <n>",
      "new peer connections a second from one address (on average)",
      parseIntIn(1, 100_000),
      peerAdmissionDefaults.sourceRatePerSecond,
    )
    .option(
      "--peer-source-burst <n>",
      "new peer connections from one address at once, after a quiet spell (at least 1)",
      parseIntIn(1, 1_000_000),
      peerAdmissionDefaults.sourceBurst,
    )
    .option(
      "--peer-handshake-timeout-ms <ms>",
      "time a peer connection has to authenticate before it is closed",
      parseIntIn(100, 600_000),
      peerHandshakeTimeoutMsDefault,
    )
    .option(
      "--peer-log-interval-ms <ms>",
      "refused and failed peer connections are logged at most once per address per this interval",
      parseIntIn(100, 86_400_000),
      peerLogIntervalMsDefault,
    )
    .action(async (flags: ReplicaFlags) => {
      if (flags.peerReservedSlots >= flags.peerHandshakesMax)
        throw new UsageError(
          `--peer-reserved-slots ${flags.peerReservedSlots} must be fewer than --peer-handshakes-max ${flags.peerHandshakesMax}: the reserved slots are part of them, and other addresses need at least one`,
        );
      if (flags.peerSourceHandshakesMax > flags.peerHandshakesMax)
        throw new UsageError(
          `--peer-source-handshakes-max ${flags.peerSourceHandshakesMax} exceeds --peer-handshakes-max ${flags.peerHandshakesMax}: one address cannot hold more than all of them`,
        );
      if (
        flags.httpConnectionsPerAddressMax !== undefined &&
        flags.httpConnectionsPerAddressMax > flags.httpConnectionsMax
      )
        throw new UsageError(
          `--http-connections-per-address-max ${flags.httpConnectionsPerAddressMax} exceeds --http-connections-max ${flags.httpConnectionsMax}: one address cannot hold more than all of them`,
        );
      const tlsFlags = [flags.tlsCert, flags.tlsKey, flags.tlsCa].filter((f) => f !== undefined).length;
      if (tlsFlags !== 0 && tlsFlags !== 3) throw new UsageError("--tls-cert, --tls-key and --tls-ca go together");
      if (!flags.peers.has(flags.id))
        throw new UsageError(`--id ${flags.id} is not in --peers (${[...flags.peers.keys()].join(", ")})`);
      if (flags.join === true && flags.initialMembers === undefined)
        throw new UsageError(
          "--join needs --initial-members (the ids the cluster was started with; 'paxos-lease members' shows them)",
        );
      if (flags.join === true && flags.initialMembers?.includes(flags.id) === true)
        throw new UsageError(
          `--id ${flags.id} is one of --initial-members: an initial member does not --join (a failed one is replaced under a new id)`,
        );
      if (flags.join !== true && flags.initialMembers !== undefined && !flags.initialMembers.includes(flags.id)) {
        throw new UsageError(
          `--id ${flags.id} is not one of --initial-members (${flags.initialMembers.join(",")}): a replica that was not an initial member runs with --join`,
        );
      }
      await runReplicaCommand(flags);
    });

  program
    .command("cluster")
    .description("run a local cluster")
    .command("start")
    .description("start replicas on this machine; Ctrl-C stops them all")
    .option("--replicas <n>", "number of replicas", parseIntIn(1, localReplicasMax), 3)
    .option(
      "--spares <n>",
      "also start this many replicas with --join (ids after the replicas), to add with 'members add'",
      parseIntIn(0, localReplicasMax - 1),
      0,
    )
    .option("--data <dir>", "data folder (one sub-folder per replica)", "data")
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--peer-port <port>", "first peer port (replica i uses port + i - 1)", parseIntIn(1, 65535), 7001)
    .option("--http-port <port>", "first client port (replica i uses port + i - 1)", parseIntIn(1, 65535), 8001)
    .option("--trace-dir <dir>", "write each replica's event trace into this folder")
    .option("--core-config <file>", "JSON object of core settings for every replica")
    .addOption(new Option("--log-level <level>", "replica log level").choices(logLevels).default("info"))
    .option("--quiet", "do not print replica logs")
    .option("--tls", "HTTPS for clients and mutual TLS between replicas, with certificates made in <data>/certs")
    .action(
      async (flags: {
        replicas: number;
        spares: number;
        data: string;
        host: string;
        peerPort: number;
        httpPort: number;
        traceDir?: string;
        coreConfig?: string;
        logLevel: string;
        quiet?: boolean;
        tls?: boolean;
      }) => {
        const { LocalClusterError, startLocalCluster } = await import("./cluster.ts");
        process.exitCode = await startLocalCluster({
          replicas: flags.replicas,
          spares: flags.spares,
          dataDir: flags.data,
          host: flags.host,
          peerPortBase: flags.peerPort,
          httpPortBase: flags.httpPort,
          traceDir: flags.traceDir,
          coreConfigFile: flags.coreConfig,
          logLevel: flags.logLevel,
          showLogs: flags.quiet !== true,
          tls: flags.tls === true,
        }).catch((error: unknown) => {
          if (error instanceof LocalClusterError) throw new UsageError(error.message);
          throw error;
        });
      },
    );

  withValueFile(
    withSessionFlags(program.command("put").description("set KEY to VALUE").argument("<key>").argument("[value]")),
  ).action((key: string, given: string | undefined, _options: unknown, command: Command) => {
    const flags = clientFlagsOf<{ valueFile?: string }>(command);
    const value = valueOf("put", given, flags.valueFile);
    return clientCommand(flags, async (client) =>
      report(await client.write("PUT", keyPath(key), { value }, sessionOf(flags)), flags, () => "OK"),
    );
  });

  program
    .command("get")
    .description("print the value of KEY (exit 1 when absent)")
    .argument("<key>")
    .option("--stale", "answer from the contacted replica's local state (may be old; never waits for a leader)")
    .action((key: string, _options: unknown, command: Command) => {
      const flags = clientFlagsOf<{ stale?: boolean }>(command);
      return clientCommand(flags, async (client) => {
        const reply = await client.call("GET", `${keyPath(key)}${flags.stale === true ? "?consistency=stale" : ""}`);
        if (flags.json !== true && reply.status === 200 && reply.body.value === null) {
          process.stderr.write(`${key}: not found\n`);
          return exitRefused;
        }
        return report(reply, flags, (body) => text(body.value));
      });
    });

  withSessionFlags(program.command("del").description("delete KEY").argument("<key>")).action(
    (key: string, _options: unknown, command: Command) => {
      const flags = clientFlagsOf(command);
      return clientCommand(flags, async (client) =>
        report(await client.write("DELETE", keyPath(key), undefined, sessionOf(flags)), flags, () => "OK"),
      );
    },
  );

  withValueFile(
    withSessionFlags(
      program
        .command("append")
        .description("append VALUE to the value of KEY; prints the new value")
        .argument("<key>")
        .argument("[value]"),
    ),
  ).action((key: string, given: string | undefined, _options: unknown, command: Command) => {
    const flags = clientFlagsOf<{ valueFile?: string }>(command);
    const value = valueOf("append", given, flags.valueFile);
    return clientCommand(flags, async (client) =>
      report(await client.write("POST", keyPath(key), { op: "append", value }, sessionOf(flags)), flags, (body) =>
        text(body.value),
      ),
    );
  });

  withSessionFlags(
    program
      .command("cas")
      .description("set KEY to NEW only if its value is --expected (or absent with --absent)")
      .argument("<key>")
      .argument("<new>"),
  )
    .option("--expected <value>", "the value KEY must have")
    .option("--absent", "KEY must be absent")
    .action((key: string, value: string, _options: unknown, command: Command) => {
      const flags = clientFlagsOf<{ expected?: string; absent?: boolean }>(command);
      if ((flags.expected === undefined) === (flags.absent !== true))
        throw new UsageError("cas needs exactly one of --expected VALUE or --absent");
      return clientCommand(flags, async (client) => {
        const reply = await client.write(
          "POST",
          keyPath(key),
          { op: "cas", expected: flags.expected ?? null, value },
          sessionOf(flags),
        );
        return report(reply, flags, (body) => `OK (previous: ${text(body.previous, "absent")})`);
      });
    });

  program
    .command("status")
    .description("show every replica's role, leader, ballot, lease and progress")
    .action(async (_options: unknown, command: Command) => {
      const flags = clientFlagsOf(command);
      const rows = await Promise.all(
        flags.endpoints.map(async (endpoint) => {
          try {
            const reply = await new KvClient({
              endpoints: [endpoint],
              deadlineMs: Math.min(flags.timeoutMs, 2000),
              token: flags.token,
              ca: flags.ca,
            }).call("GET", "/status");
            if (reply.status === 200) return { endpoint, status: reply.body };
            return { endpoint, error: `${reply.status} ${text(reply.body.code)}` };
          } catch (error) {
            return { endpoint, error: unreachableReason(error) };
          }
        }),
      );
      process.stdout.write(flags.json === true ? `${JSON.stringify(rows)}\n` : `${statusTable(rows)}\n`);
      process.exitCode = rows.some((r) => r.status !== undefined) ? 0 : exitUnreachable;
    });

  program.addCommand(
    checkHistoryCommand(
      { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) },
      (status) => (process.exitCode = status),
    ),
  );

  addMembersCommands(program);
  addTokensCommands(program);
  addCertsCommands(program);

  return program;
}

// ---- Membership ----

interface MembersDocument {
  replica: number;
  role: string;
  leader: number | null;
  leaderHttp: string | null;
  executedSlot: number;
  initialMembers: number[];
  alpha: number;
  inForce: { epoch: number; governsFrom: number; voters: number[]; learners: number[] };
  pending: { epoch: number; governsFrom: number; voters: number[]; learners: number[] }[];
  replicas: {
    id: number;
    role: string;
    peerAddress: string | null;
    http: string | null;
    connected: boolean | null;
    executedSlot: number | null;
    lag: number | null;
  }[];
  /** Replicas that dialled the answering one but are no members yet (spares waiting to be added). */
  spares?: { id: number; peerAddress: string | null; http: string | null }[];
}

/**
 * The membership as the leader knows it: every endpoint is asked at once; the leader's answer
 * wins, else one whose leader is known (then the leader is asked), else any replica that was not
 * removed.
 */
async function fetchMembers(
  flags: ClientFlags,
): Promise<{ doc: MembersDocument; endpoint: string; all: readonly MembersDocument[] }> {
  const { endpoints, timeoutMs } = flags;
  const answers = await Promise.all(
    endpoints.map(async (endpoint) => {
      try {
        const reply = await httpJson(
          "GET",
          `${endpoint}/v1/members`,
          undefined,
          authHeaders(flags.token),
          Math.min(timeoutMs, 3000),
          { ca: flags.ca },
        );
        return reply.status === 200 ? { doc: reply.body as unknown as MembersDocument, endpoint } : undefined;
      } catch {
        return undefined;
      }
    }),
  );
  const serving = answers.filter((a) => a !== undefined && a.doc.role !== "removed") as {
    doc: MembersDocument;
    endpoint: string;
  }[];
  const best = serving.find((a) => a.doc.role === "leader") ?? serving.find((a) => a.doc.leader !== null) ?? serving[0];
  if (best === undefined)
    throw new Error(
      `no replica answered at ${endpoints.join(", ")}: is the cluster running, and are --endpoints (or $PAXOS_LEASE_ENDPOINTS) its client addresses?`,
    );
  let { doc, endpoint } = best;
  if (doc.leader !== null && doc.leader !== doc.replica && doc.leaderHttp !== null) {
    try {
      const fromLeader = await new KvClient({
        endpoints: [`${new URL(endpoint).protocol}//${doc.leaderHttp}`],
        deadlineMs: Math.min(timeoutMs, 3000),
        token: flags.token,
        ca: flags.ca,
      }).call("GET", "/v1/members");
      if (fromLeader.status === 200) {
        doc = fromLeader.body as unknown as MembersDocument;
        endpoint = fromLeader.endpoint;
      }
    } catch {
      // The leader's view is better, the contacted replica's will do.
    }
  }
  return { doc, endpoint, all: [doc, ...serving.map((a) => a.doc)] };
}

/**
 * Where replica `id` listens, as any replica that answered knows it: a member's address, or a
 * spare's that dialled it. So a spare started before a change (it dialled the members of that
 * time) can be added through whichever replica leads now.
 */
function addressesOf(docs: readonly MembersDocument[], id: number): { peer: string; http: string | null } | null {
  for (const doc of docs) {
    const entry = doc.replicas.find((r) => r.id === id) ?? doc.spares?.find((r) => r.id === id);
    if (entry?.peerAddress != null) return { peer: entry.peerAddress, http: entry.http };
  }
  return null;
}

function showConfig(c: MembersDocument["inForce"]): string {
  return `voters ${c.voters.join(",")}${c.learners.length === 0 ? "" : `, learners ${c.learners.join(",")}`} (chosen at slot ${c.epoch}, governs from slot ${c.governsFrom})`;
}

function membersText(doc: MembersDocument, endpoint: string): string {
  const header = ["ID", "ROLE", "PEER ADDRESS", "CLIENT ADDRESS", "LINK", "EXECUTED", "LAG"];
  const rows = doc.replicas.map((r) => [
    `${r.id}${r.id === doc.leader ? " (leader)" : ""}`,
    r.role,
    text(r.peerAddress),
    text(r.http),
    r.connected === null ? "self" : r.connected ? "up" : "down",
    text(r.executedSlot),
    text(r.lag),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((l) => (l[i] ?? "").length)));
  const table = [header, ...rows]
    .map((l) =>
      l
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
  const peers = doc.replicas
    .filter((r) => r.role !== "leaving" && r.peerAddress !== null)
    .map((r) => `${r.id}=${r.peerAddress!}`)
    .join(",");
  return [
    `membership as replica ${doc.replica} (${doc.role}) knows it at slot ${doc.executedSlot}, from ${endpoint}`,
    `  in force:  ${showConfig(doc.inForce)}`,
    ...doc.pending.map((c) => `  pending:   ${showConfig(c)}`),
    `  initial members ${doc.initialMembers.join(",")}; a change chosen at slot i governs from slot i + ${doc.alpha}`,
    "",
    table,
    "",
    `to join a new replica N: paxos-lease replica --id N --join --initial-members ${doc.initialMembers.join(",")} --peers ${peers},N=HOST:PORT --http HOST:PORT --data DIR --init ...`,
  ].join("\n");
}

function roleOf(doc: MembersDocument, id: number): "voter" | "learner" | "none" {
  const latest = doc.pending.at(-1) ?? doc.inForce;
  return latest.voters.includes(id) ? "voter" : latest.learners.includes(id) ? "learner" : "none";
}

interface MemberFlags extends ClientFlags {
  id: number;
  old?: number;
  force?: boolean;
  learnerOnly?: boolean;
  peerAddress?: string;
  httpAddress?: string;
}

/**
 * How long `members add` waits for a just-started replica to connect to the leader, in
 * milliseconds: a replica dials its peers as it starts, so a longer wait only delays the answer
 * when it is not running.
 */
const connectWaitMs = 3000;

/**
 * POST a change to the leader until it is chosen: retried while no leader is known (503), while
 * the learner is catching up (409 not-caught-up), up to the deadline, and for a short while when
 * the leader has not heard from the new replica yet (409 unknown-replica: it may have been
 * started a moment ago). Returns the last reply.
 */
/** Progress lines of the members commands, on stderr (none with --json). */
function say(flags: ClientFlags): (line: string) => void {
  return (line) => {
    if (flags.json !== true) process.stderr.write(`${line}\n`);
  };
}

/**
 * Add replica `flags.id` as a learner unless it is a member already; `refused` is the answer when the add was refused.
 */
async function addAsLearner(
  client: KvClient,
  flags: MemberFlags,
  deadline: number,
): Promise<{ doc: MembersDocument; refused: ApiReply | null }> {
  const { doc, all } = await fetchMembers(flags);
  const role = roleOf(doc, flags.id);
  if (role !== "none") {
    say(flags)(`replica ${flags.id} is already a ${role}`);
    return { doc, refused: null };
  }
  // The change carries the new replica's addresses, so that every replica (and any later leader)
  // can reach it: given on the command line, else found at any replica it dialled.
  const found = flags.peerAddress === undefined ? addressesOf(all, flags.id) : null;
  const peerAddress = flags.peerAddress ?? found?.peer;
  const httpAddress = flags.httpAddress ?? found?.http ?? undefined;
  const body = {
    op: "add",
    id: flags.id,
    ...(peerAddress === undefined ? {} : { peerAddress }),
    ...(httpAddress === undefined ? {} : { httpAddress }),
  };
  const added = await postChange(client, body, deadline, say(flags));
  if (added.status !== 200) return { doc, refused: added };
  say(flags)(text(added.body.message));
  return { doc, refused: null };
}

async function postChange(
  client: KvClient,
  body: Record<string, unknown>,
  deadline: number,
  progress: (text: string) => void,
): Promise<ApiReply> {
  const connectDeadline = performance.now() + connectWaitMs;
  let said = { kind: "", text: "", atMs: 0 };
  for (;;) {
    const reply = await client.call("POST", "/v1/members", body);
    const code = reply.status === 409 ? reply.body.code : undefined;
    const retry =
      reply.status === 503 ||
      code === "not-caught-up" ||
      (code === "unknown-replica" && performance.now() < connectDeadline);
    if (!retry || performance.now() > deadline) return reply;
    const waiting =
      code === "unknown-replica"
        ? `waiting up to ${connectWaitMs / 1000} s for replica ${String(body.id)} to connect to the leader`
        : `waiting: ${text(reply.body.message)}`;
    // A new reason at once; the same reason's progress (a learner's slot) every 5 s at most.
    const kind = `${reply.status} ${text(code)}`;
    const now = performance.now();
    if (kind !== said.kind || (waiting !== said.text && now - said.atMs >= 5000)) {
      progress(waiting);
      said = { kind, text: waiting, atMs: now };
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

function memberReport(reply: ApiReply, flags: ClientFlags): number {
  return report(reply, flags, (body) => text(body.message));
}

function addMembersCommands(program: Command): void {
  const members = program
    .command("members")
    .description('show or change the cluster\'s membership (docs/operations.md, "Adding and removing replicas")');
  members
    .command("show", { isDefault: true })
    .description("show the configuration in force, pending changes, learners and their progress")
    .action((_options: unknown, command: Command) => {
      const flags = clientFlagsOf(command);
      return clientCommand(flags, async () => {
        const { doc, endpoint } = await fetchMembers(flags);
        process.stdout.write(flags.json === true ? `${JSON.stringify(doc)}\n` : `${membersText(doc, endpoint)}\n`);
        return 0;
      });
    });

  const idOption = (description: string) =>
    new Option("--id <n>", description).argParser(parseIntIn(1, 1_000_000)).makeOptionMandatory();
  const peerAddressOption = () =>
    new Option(
      "--peer-address <host:port>",
      "where the new replica listens for peers (default: as a replica it dialled saw it)",
    ).argParser(addressText("--peer-address"));
  const httpAddressOption = () =>
    new Option(
      "--http-address <host:port>",
      "where the new replica serves clients (default: as it told the replicas it dialled)",
    ).argParser(addressText("--http-address"));

  members
    .command("add")
    .description(
      "add a running replica (started with --join) as a learner, wait until it caught up, then promote it to voter",
    )
    .addOption(idOption("the new replica's id"))
    .addOption(peerAddressOption())
    .addOption(httpAddressOption())
    .option("--learner-only", "stop after adding it as a learner (promote later with 'members promote')")
    .action((_options: unknown, command: Command) => {
      const flags = clientFlagsOf<MemberFlags>(command);
      return clientCommand({ ...flags, timeoutMs: Math.max(flags.timeoutMs, 60_000) }, async (client) => {
        const deadline = performance.now() + Math.max(flags.timeoutMs, 60_000);
        const { doc, refused } = await addAsLearner(client, flags, deadline);
        if (refused !== null) return memberReport(refused, flags);
        if (flags.learnerOnly === true || roleOf(doc, flags.id) === "voter")
          return flags.json === true
            ? memberReport({ status: 200, body: { ok: true, message: "done" }, endpoint: "" }, flags)
            : 0;
        say(flags)(`waiting for replica ${flags.id} to catch up, then promoting it`);
        return memberReport(await postChange(client, { op: "promote", id: flags.id }, deadline, say(flags)), flags);
      });
    });

  members
    .command("promote")
    .description("promote a learner that has caught up to voter")
    .addOption(idOption("the learner's id"))
    .action((_options: unknown, command: Command) => {
      const flags = clientFlagsOf<MemberFlags>(command);
      return clientCommand(flags, async (client) =>
        memberReport(
          await postChange(client, { op: "promote", id: flags.id }, performance.now() + flags.timeoutMs, say(flags)),
          flags,
        ),
      );
    });

  members
    .command("remove")
    .description("remove a replica (a voter or a learner); it stops serving once it learns it")
    .addOption(idOption("the replica to remove"))
    .option("--force", "allow leaving fewer than 3 voters")
    .action((_options: unknown, command: Command) => {
      const flags = clientFlagsOf<MemberFlags>(command);
      return clientCommand(flags, async (client) =>
        memberReport(
          await postChange(
            client,
            { op: "remove", id: flags.id, ...(flags.force === true ? { force: true } : {}) },
            performance.now() + flags.timeoutMs,
            say(flags),
          ),
          flags,
        ),
      );
    });

  members
    .command("replace")
    .description(
      "replace voter --old by the running replica --id (started with --join): add it as a learner, wait until it caught up, then swap them in one change",
    )
    .addOption(
      new Option("--old <n>", "the voter to replace (for example one whose disk failed)")
        .argParser(parseIntIn(1, 1_000_000))
        .makeOptionMandatory(),
    )
    .addOption(idOption("the new replica's id"))
    .addOption(peerAddressOption())
    .addOption(httpAddressOption())
    .action((_options: unknown, command: Command) => {
      const flags = clientFlagsOf<MemberFlags>(command);
      if (flags.old === flags.id) throw new UsageError(`--old and --id must differ (both are ${flags.id})`);
      return clientCommand({ ...flags, timeoutMs: Math.max(flags.timeoutMs, 60_000) }, async (client) => {
        const deadline = performance.now() + Math.max(flags.timeoutMs, 60_000);
        // Ask the leader for the replace itself before adding anything, so that a replace that
        // cannot happen does not leave the new replica behind as a learner. The leader, not a
        // replica that may lag, judges --old: a final refusal (409) when --old is not a voter of a
        // configuration it vouches for, 503 (retried) while it cannot vouch yet, and
        // `not-a-learner` only once --old is a voter: then --id is added and the replace asked again.
        const asked = await postChange(client, { op: "replace", old: flags.old, id: flags.id }, deadline, say(flags));
        const code = asked.status === 409 ? asked.body.code : undefined;
        if (code === "refused" || code === "retired-replica") {
          const reason = `${text(asked.body.message)}; nothing was changed: replica ${flags.id} was not added`;
          return memberReport({ ...asked, body: { ...asked.body, message: reason } }, flags);
        }
        if (code !== "not-a-learner") return memberReport(asked, flags);
        const { refused } = await addAsLearner(client, flags, deadline);
        if (refused !== null) return memberReport(refused, flags);
        say(flags)(`waiting for replica ${flags.id} to catch up, then replacing ${flags.old!} by it`);
        return memberReport(
          await postChange(client, { op: "replace", old: flags.old, id: flags.id }, deadline, say(flags)),
          flags,
        );
      });
    });
}

// ---- Certificates ----

function addCertsCommands(program: Command): void {
  const certs = program
    .command("certs")
    .description("make the cluster's CA and its replicas' TLS certificates (docs/operations.md, \"TLS\")");
  const dirOption = (): Option =>
    new Option("--dir <dir>", "the certificate directory (ca.crt, ca.key, replica-N.crt, replica-N.key)").default(
      path.join("data", "certs"),
    );
  const days = (fallback: number): Option =>
    new Option("--days <n>", "days the certificate is valid").argParser(parseIntIn(1, 36_500)).default(fallback);
  const run = async (action: (certs: typeof import("./certs.ts")) => string): Promise<void> => {
    const module = await import("./certs.ts");
    try {
      process.stderr.write(`${action(module)}\n`);
    } catch (error) {
      if (!(error instanceof module.CertsError)) throw error;
      process.stderr.write(`error: ${error.message}\n`);
      process.exitCode = exitRefused;
    }
  };

  certs
    .command("init")
    .description(
      "make a certificate authority for one cluster: ca.crt (give it to every replica and client) and ca.key",
    )
    .requiredOption("--cluster-id <id>", "the cluster's id (its replicas' --cluster-id)")
    .addOption(dirOption())
    .addOption(days(3650))
    .action((_options: unknown, command: Command) => {
      const flags = command.opts<{ clusterId: string; dir: string; days: number }>();
      return run(({ initCa }) => {
        const file = initCa(flags.dir, { clusterId: flags.clusterId, days: flags.days });
        return `made the CA of cluster ${flags.clusterId}: ${file} (certificate) and ${path.join(flags.dir, "ca.key")} (its key: keep it off the replicas)`;
      });
    });

  certs
    .command("issue")
    .description("issue (or renew) replica N's certificate, signed by the CA; a running replica picks it up")
    .requiredOption("--cluster-id <id>", "the cluster's id")
    .addOption(new Option("--id <n>", "the replica's id").argParser(parseIntIn(1, 1_000_000)).makeOptionMandatory())
    .requiredOption(
      "--host <names>",
      "names and IP addresses clients reach the replica under (its --advertise-http host), comma-separated",
      (value: string) =>
        value
          .split(",")
          .map((h) => h.trim())
          .filter((h) => h !== ""),
    )
    .addOption(dirOption())
    .addOption(days(365))
    .action((_options: unknown, command: Command) => {
      const flags = command.opts<{ clusterId: string; id: number; host: string[]; dir: string; days: number }>();
      return run(({ issueReplicaCert }) => {
        const files = issueReplicaCert(flags.dir, {
          clusterId: flags.clusterId,
          id: flags.id,
          hosts: flags.host,
          days: flags.days,
        });
        return `issued replica ${flags.id}'s certificate for ${flags.host.join(", ")}: ${files.cert} and ${files.key}`;
      });
    });
}

// ---- Tokens ----

/** The tokens file of the local cluster `npm start` runs. */
export const localTokensFile = path.join("data", "tokens.json");

async function tokensCommand(run: (tokens: typeof import("./tokens.ts")) => number): Promise<void> {
  const tokens = await import("./tokens.ts");
  try {
    process.exitCode = run(tokens);
  } catch (error) {
    if (!(error instanceof tokens.TokensFileError)) throw error;
    process.stderr.write(`error: ${error.message}\n`);
    process.exitCode = exitRefused;
  }
}

function addTokensCommands(program: Command): void {
  const tokens = program
    .command("tokens")
    .description('create, list and revoke the client API\'s bearer tokens (docs/operations.md, "Tokens")');
  const fileOption = (): Option =>
    new Option("--tokens-file <file>", "the tokens file the replicas read").default(localTokensFile);

  tokens
    .command("create")
    .description("add a token; prints it once on stdout (only its hash is kept)")
    .addOption(new Option("--role <role>", "what the token may do").choices(roles).makeOptionMandatory())
    .option("--name <text>", "a note saying whose token it is", "")
    .addOption(fileOption())
    .action((_options: unknown, command: Command) => {
      const flags = command.optsWithGlobals<{ role: Role; name: string; tokensFile: string; json?: boolean }>();
      return tokensCommand(({ createToken }) => {
        const { token, entry } = createToken(flags.tokensFile, flags.role, flags.name);
        if (flags.json === true) process.stdout.write(`${JSON.stringify({ token, ...entry })}\n`);
        else {
          process.stdout.write(`${token}\n`);
          process.stderr.write(
            `created token ${entry.id} (role ${entry.role}) in ${flags.tokensFile}; it is shown only now. Replicas reading this file accept it within a second.\n`,
          );
        }
        return 0;
      });
    });

  tokens
    .command("list")
    .description("list the tokens (id, role, name, created; never the tokens themselves)")
    .addOption(fileOption())
    .action((_options: unknown, command: Command) => {
      const flags = command.optsWithGlobals<{ tokensFile: string; json?: boolean }>();
      return tokensCommand(({ readTokensFile }) => {
        const entries = readTokensFile(flags.tokensFile);
        if (flags.json === true) {
          process.stdout.write(`${JSON.stringify(entries.map(({ sha256: _hash, ...rest }) => rest))}\n`);
          return 0;
        }
        const header = ["ID", "ROLE", "CREATED", "NAME"];
        const rows = entries.map((e) => [e.id, e.role, e.created, e.name]);
        const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
        process.stdout.write(
          `${[header, ...rows]
            .map((r) =>
              r
                .map((c, i) => c.padEnd(widths[i]!))
                .join("  ")
                .trimEnd(),
            )
            .join("\n")}\n`,
        );
        return 0;
      });
    });

  tokens
    .command("revoke")
    .description("remove a token; replicas reading the file refuse it within a second")
    .addOption(new Option("--id <id>", "the token's id (8 hex digits, as 'tokens list' shows)").makeOptionMandatory())
    .addOption(fileOption())
    .action((_options: unknown, command: Command) => {
      const flags = command.optsWithGlobals<{ id: string; tokensFile: string }>();
      return tokensCommand(({ revokeToken }) => {
        const entry = revokeToken(flags.tokensFile, flags.id);
        process.stderr.write(
          `revoked token ${entry.id} (role ${entry.role}${entry.name === "" ? "" : `, ${entry.name}`})\n`,
        );
        return 0;
      });
    });
}

/** Run the CLI with `argv` (without node and script). */
export async function main(argv: readonly string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync([...argv], { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) {
      process.exitCode = error.exitCode === 0 ? 0 : exitUsage;
      return;
    }
    if (error instanceof UsageError) {
      process.stderr.write(`error: ${error.message}\n`);
      process.exitCode = exitUsage;
      return;
    }
    throw error;
  }
}

/**
 * Whether this module is the program being run: the script node was given, through any symlink
 * (`npm link` installs one, a checkout may be reached through one), is this file.
 */
function isEntry(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  if (entry.endsWith("/impl/runtime/cli.ts")) return true;
  try {
    return pathToFileURL(fs.realpathSync(entry)).href === import.meta.url;
  } catch {
    return false;
  }
}

if (isEntry()) await main(process.argv.slice(2));

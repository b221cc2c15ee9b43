/**
 * `paxos-lease`: the command line. `replica` runs one replica process; `cluster start` runs a
 * local cluster; `put`, `get`, `del`, `cas`, `append` and `status` talk to a running cluster
 * over its HTTP API, following redirects to the leader. Every command has `--help`; a bad flag
 * or value is refused with a message naming it.
 *
 * Exit codes: 0 done; 1 the operation was refused (failed compare-and-swap, key not found, ...);
 * 2 bad usage or configuration; 3 the data directory was refused (damaged, foreign, missing,
 * in use); 4 the cluster did not answer; 70 the replica stopped on an internal failure.
 */
import fs from "node:fs";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { ConfigError } from "../core/index.ts";
import { clockFromEnv } from "./clock.ts";
import { KvClient, keyPath, newSession, type ApiReply, type Session } from "./client.ts";
import { localReplicasMax, startLocalCluster } from "./cluster.ts";
import { createLogger, logLevels, type LogLevel } from "./log.ts";
import { slowDiskFromEnv } from "./slow-disk.ts";
import { startReplica } from "./replica-main.ts";
import { StorageError } from "./storage.ts";
import type { Address } from "./transport.ts";

export const exitRefused = 1;
export const exitUsage = 2;
export const exitData = 3;
export const exitUnreachable = 4;
export const exitFatal = 70;
/** Shortest accepted cluster secret, in characters. */
export const secretLengthMin = 16;

// ---- Argument parsers: each throws InvalidArgumentError with a message naming the problem. ----

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

/** ID=HOST:PORT,ID=HOST:PORT,... (every member, this replica included). */
export function parsePeers(value: string): Map<number, Address> {
  const members = new Map<number, Address>();
  for (const entry of value.split(",").map((e) => e.trim()).filter((e) => e !== "")) {
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
  return value.split(",").map((e) => e.trim()).filter((e) => e !== "").map((e) => {
    const url = /^https?:\/\//.test(e) ? e : `http://${e}`;
    try {
      return new URL(url).origin;
    } catch {
      throw new InvalidArgumentError(`endpoint ${JSON.stringify(e)} is not a URL or HOST:PORT`);
    }
  });
}

function readSecret(file: string | undefined): Buffer {
  let text: string | undefined;
  if (file !== undefined) {
    try {
      text = fs.readFileSync(file, "utf8").trim();
    } catch (error) {
      throw new UsageError(`cannot read --secret-file ${file}: ${error instanceof Error ? error.message : String(error)}`);
    }
  } else text = process.env.PAXOS_LEASE_SECRET;
  if (text === undefined) throw new UsageError("no cluster secret: pass --secret-file FILE or set PAXOS_LEASE_SECRET");
  if (text.length < secretLengthMin) throw new UsageError(`the cluster secret is shorter than ${secretLengthMin} characters`);
  return Buffer.from(text, "utf8");
}

function readCoreConfig(file: string | undefined): Record<string, unknown> {
  if (file === undefined) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (error) {
    throw new UsageError(`cannot read --core-config ${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new UsageError(`--core-config ${file} must hold a JSON object`);
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
  init?: boolean;
  trace?: string;
  coreConfig?: string;
  logLevel: LogLevel;
  requestTimeoutMs: number;
}

async function runReplicaCommand(flags: ReplicaFlags): Promise<void> {
  const log = createLogger({ replica: flags.id, level: flags.logLevel });
  let replica: Awaited<ReturnType<typeof startReplica>>;
  try {
    const slowDisk = slowDiskFromEnv(process.env);
    if (slowDisk !== null) {
      // Test-only (refused unless PAXOS_LEASE_ALLOW_TEST_FAULTS=1): SIGUSR2 flips slow commits.
      process.on("SIGUSR2", () => log.warn({ delayMs: slowDisk.delayMs, on: slowDisk.toggle() }, "test fault: slow disk toggled"));
    }
    replica = await startReplica({
      slowDisk,
      id: flags.id,
      clusterId: flags.clusterId,
      secret: readSecret(flags.secretFile),
      members: flags.peers,
      ...(flags.listen === undefined ? {} : { listen: flags.listen }),
      http: flags.http,
      ...(flags.advertiseHttp === undefined ? {} : { advertiseHttp: flags.advertiseHttp }),
      dataDir: flags.data,
      init: flags.init === true,
      ...(flags.trace === undefined ? {} : { traceFile: flags.trace }),
      core: readCoreConfig(flags.coreConfig),
      clock: clockFromEnv(process.env),
      log,
      requestTimeoutMs: flags.requestTimeoutMs,
      onFatal: () => {
        log.flush();
        process.exit(exitFatal);
      },
    });
  } catch (error) {
    const code = error instanceof StorageError ? exitData : error instanceof UsageError || error instanceof ConfigError ? exitUsage : exitFatal;
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
  clientId?: string;
  seq?: number;
}

function clientOf(flags: ClientFlags): KvClient {
  return new KvClient({ endpoints: flags.endpoints, deadlineMs: flags.timeoutMs });
}

function sessionOf(flags: ClientFlags): Session {
  if ((flags.clientId === undefined) !== (flags.seq === undefined)) throw new UsageError("--client-id and --seq go together");
  return flags.clientId === undefined ? newSession() : { clientId: flags.clientId, seq: flags.seq! };
}

/** Print the reply; returns the exit code. `success` prints the human form of a 200. */
function report(reply: ApiReply, flags: ClientFlags, success: (body: Record<string, unknown>) => string | undefined): number {
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
  process.stderr.write(`error: ${code}: ${message} (from ${reply.endpoint})\n`);
  return reply.status === 503 ? exitUnreachable : exitRefused;
}

async function clientCommand(flags: ClientFlags, run: (client: KvClient) => Promise<number>): Promise<void> {
  try {
    process.exitCode = await run(clientOf(flags));
  } catch (error) {
    if (error instanceof UsageError) throw error;
    process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = exitUnreachable;
  }
}

/** A JSON field as display text. */
function text(value: unknown, absent = "-"): string {
  if (value === null || value === undefined) return absent;
  return typeof value === "string" ? value : JSON.stringify(value);
}

function statusTable(rows: { endpoint: string; status?: Record<string, unknown>; error?: string }[]): string {
  const header = ["ENDPOINT", "REPLICA", "ROLE", "LEADER", "BALLOT", "LEASE", "EXECUTED", "COMMIT", "PEERS UP"];
  const lines = rows.map(({ endpoint, status, error }) => {
    if (status === undefined) return [endpoint, "-", `unreachable (${error ?? "?"})`, "", "", "", "", "", ""];
    const peers = Array.isArray(status.peers) ? (status.peers as { outbound?: boolean }[]) : [];
    const lease = typeof status.leaseRemainingMs === "number" ? `${status.leaseRemainingMs} ms` : "-";
    return [
      endpoint, text(status.replica), status.halted === null ? text(status.role) : "halted", text(status.leader),
      text(status.ballot), lease, text(status.executedSlot), text(status.commitIndex), `${peers.filter((p) => p.outbound === true).length}/${peers.length}`,
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? "").length)));
  return [header, ...lines].map((l) => l.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n");
}

function withClientFlags(command: Command): Command {
  return command
    .addOption(new Option("--endpoints <list>", "replica client addresses, comma-separated").env("PAXOS_LEASE_ENDPOINTS").default(["http://127.0.0.1:8001", "http://127.0.0.1:8002", "http://127.0.0.1:8003"], "the npm start cluster").argParser(parseEndpoints))
    .option("--timeout-ms <ms>", "give up after this long", parseIntIn(1, 3_600_000), 10_000)
    .option("--json", "print the answer as JSON");
}

function withSessionFlags(command: Command): Command {
  return command
    .option("--client-id <id>", "exactly-once session id (default: a fresh random one)")
    .option("--seq <n>", "sequence number in the session (with --client-id)", parseIntIn(1, Number.MAX_SAFE_INTEGER));
}

/** The program, for `main` and for tests. */
export function buildProgram(): Command {
  const program = new Command("paxos-lease")
    .description("A replicated key-value service: Multi-Paxos with leader leases.")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();

  program
    .command("replica")
    .description("run one replica process")
    .requiredOption("--id <n>", "this replica's id (one of the --peers ids)", parseIntIn(1, 1_000_000))
    .requiredOption("--peers <list>", "every member as ID=HOST:PORT,... (this replica included), identical on all replicas", parsePeers)
    .requiredOption("--http <host:port>", "where to serve the client API, status page and metrics", parseAddress)
    .requiredOption("--data <dir>", "data directory of this replica")
    .requiredOption("--cluster-id <id>", "the cluster's id; a data directory or peer of another cluster is refused")
    .option("--secret-file <file>", "file holding the cluster secret (default: $PAXOS_LEASE_SECRET)")
    .option("--listen <host:port>", "where to accept peers (default: this replica's --peers entry)", parseAddress)
    .option("--advertise-http <host:port>", "client address told to peers for redirects (default: --http)")
    .option("--init", "create a fresh data directory if there is none (only for a new cluster; see docs/operations.md)")
    .option("--trace <file>", "append an event trace (JSON lines, docs/trace-format.md) to this file")
    .option("--core-config <file>", "JSON object of core settings (leaseMs, clockDriftPpmMax, electionTimeoutMsMin, ...)")
    .addOption(new Option("--log-level <level>", "log level").choices(logLevels).default("info"))
    .option("--request-timeout-ms <ms>", "longest wait for a client request", parseIntIn(1, 600_000), 10_000)
    .action(async (flags: ReplicaFlags) => {
      if (!flags.peers.has(flags.id)) throw new UsageError(`--id ${flags.id} is not in --peers (${[...flags.peers.keys()].join(", ")})`);
      await runReplicaCommand(flags);
    });

  program
    .command("cluster")
    .description("run a local cluster")
    .command("start")
    .description("start replicas on this machine; Ctrl-C stops them all")
    .option("--replicas <n>", "number of replicas", parseIntIn(1, localReplicasMax), 3)
    .option("--data <dir>", "data folder (one sub-folder per replica)", "data")
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--peer-port <port>", "first peer port (replica i uses port + i - 1)", parseIntIn(1, 65535), 7001)
    .option("--http-port <port>", "first client port (replica i uses port + i - 1)", parseIntIn(1, 65535), 8001)
    .option("--trace-dir <dir>", "write each replica's event trace into this folder")
    .option("--core-config <file>", "JSON object of core settings for every replica")
    .addOption(new Option("--log-level <level>", "replica log level").choices(logLevels).default("info"))
    .option("--quiet", "do not print replica logs")
    .action(async (flags: { replicas: number; data: string; host: string; peerPort: number; httpPort: number; traceDir?: string; coreConfig?: string; logLevel: string; quiet?: boolean }) => {
      process.exitCode = await startLocalCluster({
        replicas: flags.replicas, dataDir: flags.data, host: flags.host, peerPortBase: flags.peerPort, httpPortBase: flags.httpPort,
        traceDir: flags.traceDir, coreConfigFile: flags.coreConfig, logLevel: flags.logLevel, showLogs: flags.quiet !== true,
      });
    });

  withSessionFlags(withClientFlags(program.command("put").description("set KEY to VALUE").argument("<key>").argument("<value>")))
    .action((key: string, value: string, flags: ClientFlags) => clientCommand(flags, async (client) =>
      report(await client.call("PUT", keyPath(key), { value }, sessionOf(flags)), flags, () => "OK")));

  withClientFlags(program.command("get").description("print the value of KEY (exit 1 when absent)").argument("<key>"))
    .option("--stale", "answer from the contacted replica's local state (may be old; never waits for a leader)")
    .action((key: string, flags: ClientFlags & { stale?: boolean }) => clientCommand(flags, async (client) => {
      const reply = await client.call("GET", `${keyPath(key)}${flags.stale === true ? "?consistency=stale" : ""}`);
      if (flags.json !== true && reply.status === 200 && reply.body.value === null) {
        process.stderr.write(`${key}: not found\n`);
        return exitRefused;
      }
      return report(reply, flags, (body) => text(body.value));
    }));

  withSessionFlags(withClientFlags(program.command("del").description("delete KEY").argument("<key>")))
    .action((key: string, flags: ClientFlags) => clientCommand(flags, async (client) =>
      report(await client.call("DELETE", keyPath(key), undefined, sessionOf(flags)), flags, () => "OK")));

  withSessionFlags(withClientFlags(program.command("append").description("append VALUE to the value of KEY; prints the new value").argument("<key>").argument("<value>")))
    .action((key: string, value: string, flags: ClientFlags) => clientCommand(flags, async (client) =>
      report(await client.call("POST", keyPath(key), { op: "append", value }, sessionOf(flags)), flags, (body) => text(body.value))));

  withSessionFlags(withClientFlags(program.command("cas").description("set KEY to NEW only if its value is --expected (or absent with --absent)").argument("<key>").argument("<new>")))
    .option("--expected <value>", "the value KEY must have")
    .option("--absent", "KEY must be absent")
    .action((key: string, value: string, flags: ClientFlags & { expected?: string; absent?: boolean }) => {
      if ((flags.expected === undefined) === (flags.absent !== true)) throw new UsageError("cas needs exactly one of --expected VALUE or --absent");
      return clientCommand(flags, async (client) => {
        const reply = await client.call("POST", keyPath(key), { op: "cas", expected: flags.expected ?? null, value }, sessionOf(flags));
        return report(reply, flags, (body) => `OK (previous: ${text(body.previous, "absent")})`);
      });
    });

  withClientFlags(program.command("status").description("show every replica's role, leader, ballot, lease and progress"))
    .action(async (flags: ClientFlags) => {
      const rows = await Promise.all(flags.endpoints.map(async (endpoint) => {
        try {
          const reply = await new KvClient({ endpoints: [endpoint], deadlineMs: Math.min(flags.timeoutMs, 2000) }).call("GET", "/status");
          return { endpoint, status: reply.body };
        } catch (error) {
          return { endpoint, error: error instanceof Error ? error.message.split(":")[0] : String(error) };
        }
      }));
      process.stdout.write(flags.json === true ? `${JSON.stringify(rows)}\n` : `${statusTable(rows)}\n`);
      process.exitCode = rows.some((r) => r.status !== undefined) ? 0 : exitUnreachable;
    });

  return program;
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

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith("/impl/runtime/cli.ts") === true) {
  await main(process.argv.slice(2));
}

/**
 * `paxos-lease cluster start`: a local cluster of replica processes on one machine, for trying
 * the service out and for tests. It keeps the cluster's identity (id and secret) in the data
 * folder, spawns one `paxos-lease replica` process per member with a readable per-replica log
 * prefix, prints the endpoints once all serve, and on Ctrl-C stops every replica cleanly
 * (SIGTERM, then SIGKILL after a grace period). A replica that dies is reported, not restarted:
 * the others keep serving, which is the point of replication.
 *
 * The first start also creates the cluster's tokens file (data/tokens.json) with an admin token,
 * kept in data/admin.token for the CLI, and a read token in data/read.token for the status page
 * (the banner prints the page's address with it); both files are readable by their owner only.
 *
 * `--spares N` also starts replicas N+1.. with --join: they wait until `paxos-lease members add`
 * adds them. The spares ever started are listed in cluster.json, so that a spare whose data
 * folder went missing is refused like any other replica instead of starting empty.
 *
 * What every replica would refuse (a damaged cluster file, another replica count, a core
 * configuration the core rejects, a port another program, say a cluster already running, listens
 * on) is refused once, before any replica starts, with a {@link LocalClusterError}; and once every
 * replica has exited, the command ends too (exit 1).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import readline from "node:readline";
import { Schema } from "effect";
import { httpJson } from "./client.ts";
import { formatLogLine } from "./log.ts";
import { localReplicasMax, replicaArgv, replicaEnv } from "./program.ts";
import { certsLayout, initCa, issueReplicaCert } from "./certs.ts";
import { createToken } from "./tokens.ts";
import { kvConfig } from "./core-adapter.ts";

/** A local cluster that cannot start as asked; its message says why and what to do. */
export class LocalClusterError extends Error {}

const ClusterFile = Schema.Struct({
  format: Schema.Literal("paxos-lease/local-cluster@1"),
  clusterId: Schema.String,
  replicas: Schema.Int,
  created: Schema.String,
  /** Spares started at least once (their data may hold votes). */
  spares: Schema.optional(Schema.Array(Schema.Int)),
  /** Whether the last start ran TLS (the CLI's default endpoints follow it). */
  tls: Schema.optional(Schema.Boolean),
});

/** Options of {@link startLocalCluster}. */
export interface LocalClusterOptions {
  readonly replicas: number;
  /** Replicas started with --join after the initial ones. Default 0. */
  readonly spares?: number;
  readonly dataDir: string;
  readonly host: string;
  readonly peerPortBase: number;
  readonly httpPortBase: number;
  readonly traceDir?: string | undefined;
  readonly coreConfigFile?: string | undefined;
  readonly logLevel: string;
  /** Print replica logs (prefixed). Default true. */
  readonly showLogs?: boolean;
  readonly out?: NodeJS.WritableStream;
  /** HTTPS for clients and mutual TLS between replicas, with certificates in data/certs. Default false. */
  readonly tls?: boolean;
}

/** The local cluster's identity: its id, where its secret and tokens are; `fresh` on the first start. */
export interface LocalIdentity {
  readonly clusterId: string;
  readonly secretFile: string;
  readonly tokensFile: string;
  readonly fresh: boolean;
}

/**
 * The local cluster's tokens: created with an admin token (data/admin.token, for the CLI) and a
 * read token (data/read.token, for the status page) when the folder has no tokens file yet.
 */
export function localTokens(dataDir: string): string {
  const tokensFile = path.join(dataDir, "tokens.json");
  if (fs.existsSync(tokensFile)) return tokensFile;
  for (const [role, file, name] of [
    ["admin", "admin.token", "npm start: the CLI"],
    ["read", "read.token", "npm start: the status page"],
  ] as const) {
    const { token } = createToken(tokensFile, role, name);
    fs.writeFileSync(path.join(dataDir, file), `${token}\n`, { mode: 0o600 });
  }
  return tokensFile;
}

/** The cluster's identity, created on first start. `fresh` is true on that first start. */
export function clusterIdentity(dataDir: string, replicas: number): LocalIdentity {
  const identity = clusterIdOf(dataDir, replicas);
  return { ...identity, tokensFile: localTokens(dataDir) };
}

function clusterIdOf(dataDir: string, replicas: number): Omit<LocalIdentity, "tokensFile"> {
  const file = path.join(dataDir, "cluster.json");
  const secretFile = path.join(dataDir, "cluster-secret");
  if (!fs.existsSync(file)) {
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const clusterId = `local-${randomBytes(6).toString("hex")}`;
    fs.writeFileSync(secretFile, `${randomBytes(32).toString("hex")}\n`, { mode: 0o600 });
    fs.writeFileSync(
      file,
      `${JSON.stringify({ format: "paxos-lease/local-cluster@1", clusterId, replicas, created: new Date().toISOString() }, null, 2)}\n`,
    );
    return { clusterId, secretFile, fresh: true };
  }
  let parsed: typeof ClusterFile.Type;
  try {
    parsed = Schema.decodeUnknownSync(ClusterFile)(JSON.parse(fs.readFileSync(file, "utf8")));
  } catch (error) {
    throw new LocalClusterError(
      `${file} is damaged or not a paxos-lease cluster file: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}`,
    );
  }
  if (parsed.replicas !== replicas) {
    throw new LocalClusterError(
      `${dataDir} holds a cluster of ${parsed.replicas} replicas, not ${replicas}; use --replicas ${parsed.replicas} or another --data folder`,
    );
  }
  if (!fs.existsSync(secretFile))
    throw new LocalClusterError(
      `${secretFile} is missing; the replicas of ${dataDir} cannot authenticate each other without it`,
    );
  return { clusterId: parsed.clusterId, secretFile, fresh: false };
}

/**
 * The local cluster's certificates (data/certs): its CA, made on the first TLS start, and a
 * certificate for each of replicas 1..`total` that lacks one, for the loopback names. Records in
 * cluster.json whether this start runs TLS.
 */
export function localCerts(dataDir: string, clusterId: string, total: number, host: string, tls: boolean): string {
  const dir = path.join(dataDir, "certs");
  const file = path.join(dataDir, "cluster.json");
  const parsed = Schema.decodeUnknownSync(ClusterFile)(JSON.parse(fs.readFileSync(file, "utf8")));
  if (parsed.tls !== tls) fs.writeFileSync(file, `${JSON.stringify({ ...parsed, tls }, null, 2)}\n`);
  if (!tls) return dir;
  const files = certsLayout(dir);
  if (!fs.existsSync(files.caCert)) initCa(dir, { clusterId });
  const hosts = [...new Set([host, "127.0.0.1", "localhost"])];
  for (let id = 1; id <= total; id++)
    if (!fs.existsSync(files.replica(id).cert)) issueReplicaCert(dir, { clusterId, id, hosts });
  return dir;
}

/** Record in cluster.json that spare `id` has been started; returns true when it had been before. */
export function noteSpareStarted(dataDir: string, id: number): boolean {
  const file = path.join(dataDir, "cluster.json");
  const parsed = Schema.decodeUnknownSync(ClusterFile)(JSON.parse(fs.readFileSync(file, "utf8")));
  const spares = parsed.spares ?? [];
  if (spares.includes(id)) return true;
  fs.writeFileSync(file, `${JSON.stringify({ ...parsed, spares: [...spares, id].sort((a, b) => a - b) }, null, 2)}\n`);
  return false;
}

/** The argv of replica `id` of a local cluster (a spare when `id` exceeds `replicas`). */
export function replicaArgs(id: number, options: LocalClusterOptions, identity: LocalIdentity): string[] {
  const spare = id > options.replicas;
  const count = spare ? options.replicas + (options.spares ?? 0) : options.replicas;
  const peers = Array.from({ length: count }, (_, i) => `${i + 1}=${options.host}:${options.peerPortBase + i}`).join(
    ",",
  );
  const args = [
    "replica",
    "--id",
    String(id),
    "--cluster-id",
    identity.clusterId,
    ...(options.tls === true
      ? [
          "--tls-cert",
          certsLayout(path.join(options.dataDir, "certs")).replica(id).cert,
          "--tls-key",
          certsLayout(path.join(options.dataDir, "certs")).replica(id).key,
          "--tls-ca",
          certsLayout(path.join(options.dataDir, "certs")).caCert,
        ]
      : ["--secret-file", identity.secretFile]),
    "--tokens-file",
    identity.tokensFile,
    "--peers",
    peers,
    "--http",
    `${options.host}:${options.httpPortBase + id - 1}`,
    "--data",
    path.join(options.dataDir, `replica-${id}`),
    "--log-level",
    options.logLevel,
  ];
  if (spare)
    args.push("--join", "--initial-members", Array.from({ length: options.replicas }, (_, i) => i + 1).join(","));
  if (identity.fresh || (spare && !fs.existsSync(path.join(options.dataDir, `replica-${id}`)))) args.push("--init");
  if (options.traceDir !== undefined) args.push("--trace", path.join(options.traceDir, `replica-${id}.trace.jsonl`));
  if (options.coreConfigFile !== undefined) args.push("--core-config", options.coreConfigFile);
  return args;
}

const colors = ["\u001b[36m", "\u001b[35m", "\u001b[33m", "\u001b[32m", "\u001b[34m", "\u001b[31m", "\u001b[37m"];

/** Start the local cluster and run until SIGINT/SIGTERM. Resolves with the exit code. */
export async function startLocalCluster(options: LocalClusterOptions): Promise<number> {
  const out = options.out ?? process.stdout;
  if (options.coreConfigFile !== undefined) checkCoreConfig(options.coreConfigFile, options.replicas);
  await checkPortsFree(options);
  const identity = clusterIdentity(options.dataDir, options.replicas);
  for (let id = 1; id <= options.replicas; id++) {
    const dir = path.join(options.dataDir, `replica-${id}`);
    if (!identity.fresh && !fs.existsSync(dir)) {
      throw new LocalClusterError(
        `${dir} is missing: replica ${id} lost its data. Starting it empty could forget promises and votes; see docs/operations.md, "Rebuilding a replica"`,
      );
    }
  }
  const total = options.replicas + (options.spares ?? 0);
  if (total > localReplicasMax)
    throw new LocalClusterError(
      `${options.replicas} replicas and ${options.spares ?? 0} spares exceed the local limit of ${localReplicasMax}`,
    );
  for (let id = options.replicas + 1; id <= total; id++) {
    const dir = path.join(options.dataDir, `replica-${id}`);
    const before = noteSpareStarted(options.dataDir, id);
    if (before && !fs.existsSync(dir)) {
      throw new LocalClusterError(
        `${dir} is missing: spare ${id} was started before and may have been added; starting it empty could forget votes. Remove it from the cluster ('paxos-lease members remove --id ${id}') and use another id`,
      );
    }
  }
  localCerts(options.dataDir, identity.clusterId, total, options.host, options.tls === true);
  if (options.traceDir !== undefined) fs.mkdirSync(options.traceDir, { recursive: true, mode: 0o700 });
  const tty = (out as Partial<NodeJS.WriteStream>).isTTY === true;
  const children = new Map<number, ChildProcess>();
  let stopping = false;
  let finish: (code: number) => void = () => undefined;
  const finished = new Promise<number>((resolve) => (finish = resolve));
  for (let id = 1; id <= total; id++) {
    const child = spawn(process.execPath, [...replicaArgv(), ...replicaArgs(id, options, identity)], {
      stdio: ["ignore", "pipe", "pipe"],
      env: replicaEnv(),
    });
    children.set(id, child);
    const prefix = tty ? `${colors[(id - 1) % colors.length]}[r${id}]\u001b[0m ` : `[r${id}] `;
    for (const stream of [child.stdout, child.stderr]) {
      readline.createInterface({ input: stream }).on("line", (line) => {
        if (options.showLogs !== false) out.write(`${prefix}${formatLogLine(line)}\n`);
      });
    }
    child.on("exit", (code, signal) => {
      children.delete(id);
      if (stopping) return;
      if (children.size === 0) {
        out.write(`${prefix}exited (${signal ?? `code ${code}`}), the last replica running (see above): stopping.\n`);
        stopping = true;
        finish(1);
      } else if (code === 3)
        out.write(`${prefix}refused to start (see above; code 3); the other replicas keep serving.\n`);
      else
        out.write(
          `${prefix}exited (${signal ?? `code ${code}`}); the other replicas keep serving. Restart the cluster to bring it back.\n`,
        );
    });
  }
  const stop = (): Promise<void> => {
    stopping = true;
    const exits = [...children.values()].map(
      (child) =>
        new Promise<void>((resolve) => {
          child.once("exit", () => resolve());
          child.kill("SIGTERM");
          setTimeout(() => child.kill("SIGKILL"), 5000).unref();
        }),
    );
    return Promise.all(exits).then(() => undefined);
  };
  void whenServing(options).then((serving) => {
    if (stopping) return;
    if (serving) printBanner(out, options);
    else out.write("paxos-lease: not every replica is serving yet; see the log lines above\n");
  });
  const onSignal = (): void => {
    if (stopping) return;
    out.write("\nstopping the cluster...\n");
    void stop().then(() => {
      out.write("all replicas stopped\n");
      finish(0);
    });
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const code = await finished;
  process.removeListener("SIGINT", onSignal);
  process.removeListener("SIGTERM", onSignal);
  return code;
}

/**
 * Refuse to start when a replica's peer or client port is taken. Each replica would refuse it on
 * its own, but only after the banner: another cluster on the same ports answers the banner's
 * health checks, so the banner would print this cluster's tokens beside that one's addresses.
 */
async function checkPortsFree(options: LocalClusterOptions): Promise<void> {
  const total = options.replicas + (options.spares ?? 0);
  for (let id = 1; id <= total; id++) {
    for (const [port, what] of [
      [options.peerPortBase + id - 1, "peer"],
      [options.httpPortBase + id - 1, "client"],
    ] as const) {
      const refusal = await listenRefusal(options.host, port);
      if (refusal !== null)
        throw new LocalClusterError(
          `cannot listen on ${options.host}:${port}, replica ${id}'s ${what} port: ${refusal}. Is a cluster already running there? Stop it, or choose other ports with --peer-port and --http-port`,
        );
    }
  }
}

/** Why listening on `host:port` fails (null: it works; the socket is closed again at once). */
function listenRefusal(host: string, port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", (error: NodeJS.ErrnoException) =>
      resolve(error.code === "EADDRINUSE" ? "the address is in use" : error.message),
    );
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(null)));
  });
}

/**
 * The core configuration in `file` as every replica of a cluster of `replicas` would decode it:
 * refused here, once, rather than by each replica as it starts.
 */
function checkCoreConfig(file: string, replicas: number): void {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (error) {
    throw new LocalClusterError(
      `cannot read --core-config ${file}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    throw new LocalClusterError(`--core-config ${file} must hold a JSON object`);
  const members = Array.from({ length: replicas }, (_, i) => i + 1);
  try {
    kvConfig(1, members, parsed as Record<string, unknown>);
  } catch (error) {
    throw new LocalClusterError(`--core-config ${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function schemeOf(options: LocalClusterOptions): "http" | "https" {
  return options.tls === true ? "https" : "http";
}

function caOf(options: LocalClusterOptions): string | undefined {
  return options.tls === true
    ? fs.readFileSync(certsLayout(path.join(options.dataDir, "certs")).caCert, "utf8")
    : undefined;
}

/** Poll each replica's /healthz until all answer (true) or 60 s pass (false). */
async function whenServing(options: LocalClusterOptions): Promise<boolean> {
  const deadline = performance.now() + 60_000;
  for (let id = 1; id <= options.replicas + (options.spares ?? 0);) {
    if (performance.now() > deadline) return false;
    try {
      const reply = await httpJson(
        "GET",
        `${schemeOf(options)}://${options.host}:${options.httpPortBase + id - 1}/healthz`,
        undefined,
        {},
        1000,
        { ca: caOf(options) },
      );
      if (reply.status === 200) {
        id += 1;
        continue;
      }
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return true;
}

/**
 * The banner's line that points the CLI at this cluster when the CLI's defaults (npm start's: the
 * client ports 8001 to 8003 on 127.0.0.1, the token and CA under ./data) would miss it; none when
 * they find it.
 */
export function cliEnvironment(
  options: LocalClusterOptions,
  endpoints: readonly string[],
  adminToken: string,
  caFile: string,
): string[] {
  const variables: string[] = [];
  if (options.host !== "127.0.0.1" || options.httpPortBase !== 8001)
    variables.push(`PAXOS_LEASE_ENDPOINTS=${endpoints.join(",")}`);
  if (path.resolve(options.dataDir) !== path.resolve("data")) {
    variables.push(`PAXOS_LEASE_TOKEN_FILE=${path.resolve(adminToken)}`);
    if (options.tls === true) variables.push(`PAXOS_LEASE_CA_FILE=${path.resolve(caFile)}`);
  }
  return variables.length === 0 ? [] : [`  CLI:          export ${variables.join(" ")}   (for the commands below)`];
}

function printBanner(out: NodeJS.WritableStream, options: LocalClusterOptions): void {
  const adminToken = path.join(options.dataDir, "admin.token");
  const readToken = path.join(options.dataDir, "read.token");
  let pageToken: string | null = null;
  try {
    pageToken = fs.readFileSync(readToken, "utf8").trim();
  } catch {
    // Deleted by the operator: the page asks for a token.
  }
  const endpoints = Array.from(
    { length: options.replicas },
    (_, i) => `${schemeOf(options)}://${options.host}:${options.httpPortBase + i}`,
  );
  const caFile = certsLayout(path.join(options.dataDir, "certs")).caCert;
  out.write(
    [
      "",
      `paxos-lease: ${options.replicas} replicas starting, data in ${path.resolve(options.dataDir)}`,
      `  client API:   ${endpoints.join("  ")}`,
      `  tokens:       ${adminToken} (admin: the CLI uses it), ${readToken} (read); 'paxos-lease tokens --help'`,
      `  status page:  ${endpoints[0]}/${pageToken === null ? "" : `#token=${pageToken}`}   (every replica serves one)`,
      ...cliEnvironment(options, endpoints, adminToken, caFile),
      `  try:          npm run paxos-lease -- put hello world && npm run paxos-lease -- get hello`,
      `  or:           curl --location-trusted${options.tls === true ? ` --cacert ${caFile}` : ""} -H "Authorization: Bearer $(cat ${adminToken})" -H 'Content-Type: application/json' -X PUT -d '{"value":"world"}' ${endpoints[0]}/v1/kv/hello`,
      ...(options.tls === true
        ? [
            `  TLS:          certificates in ${path.dirname(caFile)}; the CLI trusts ${caFile}; the browser does not know this CA: add it, or accept the warning`,
          ]
        : []),
      ...((options.spares ?? 0) > 0
        ? [
            `  spares:       replicas ${options.replicas + 1}..${options.replicas + options.spares!} wait to join; add one with: npm run paxos-lease -- members add --id ${options.replicas + 1}`,
          ]
        : []),
      "  membership:   npm run paxos-lease -- members",
      "  stop:         Ctrl-C",
      "",
      "",
    ].join("\n"),
  );
}

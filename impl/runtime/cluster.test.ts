/**
 * The local cluster's identity and replica command lines: a fresh folder gets a cluster id and
 * a private secret and its replicas start with --init; an existing folder keeps its identity,
 * never passes --init again, and refuses a different replica count.
 */
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { buildProgram } from "./cli.ts";
import { cliBuildIsStale, ensureCliBuilt } from "./build.ts";
import { certsLayout, readTlsMaterial } from "./certs.ts";
import { PassThrough } from "node:stream";
import {
  cliEnvironment,
  clusterIdentity,
  localCerts,
  LocalClusterError,
  noteSpareStarted,
  replicaArgs,
  startLocalCluster,
} from "./cluster.ts";
import { cliArgv, cliBundlePath, replicaArgv, replicaEnv, replicaV8Flags } from "./program.ts";
import { freePortRun, freePorts, tempDir } from "./testing.ts";
import { TokenStore } from "./tokens.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

const options = { replicas: 3, host: "127.0.0.1", peerPortBase: 7001, httpPortBase: 8001, logLevel: "info" };

describe("local cluster", () => {
  it("creates an identity once, then reuses it without --init", () => {
    const dir = path.join(tempDir("local"), "data");
    dirs.push(path.dirname(dir));
    const first = clusterIdentity(dir, 3);
    expect(first.fresh).toBe(true);
    expect(fs.statSync(first.secretFile).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(first.secretFile, "utf8").trim()).toMatch(/^[0-9a-f]{64}$/);
    const args = replicaArgs(2, { ...options, dataDir: dir }, first);
    expect(args).toContain("--init");
    expect(args.join(" ")).toContain(
      "--peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 --http 127.0.0.1:8002",
    );
    // The tokens: an admin token for the CLI and a read token for the status page, owner-only.
    expect(first.tokensFile).toBe(path.join(dir, "tokens.json"));
    expect(args.join(" ")).toContain(`--tokens-file ${first.tokensFile}`);
    for (const [file, role] of [
      ["admin.token", "admin"],
      ["read.token", "read"],
    ] as const) {
      const token = fs.readFileSync(path.join(dir, file), "utf8").trim();
      expect(fs.statSync(path.join(dir, file)).mode & 0o777).toBe(0o600);
      expect(new TokenStore(first.tokensFile).authenticate(`Bearer ${token}`)).toMatchObject({
        _tag: "ok",
        entry: { role },
      });
    }
    const again = clusterIdentity(dir, 3);
    expect(again).toEqual({ ...first, fresh: false });
    expect(replicaArgs(2, { ...options, dataDir: dir }, again)).not.toContain("--init");
    expect(() => clusterIdentity(dir, 5)).toThrow(/holds a cluster of 3 replicas, not 5/);
  });

  it("starts spares with --join and the initial members, and remembers them", () => {
    const dir = path.join(tempDir("local"), "data");
    dirs.push(path.dirname(dir));
    const identity = clusterIdentity(dir, 3);
    const spareOptions = { ...options, spares: 2, dataDir: dir };
    const args = replicaArgs(5, spareOptions, { ...identity, fresh: false }).join(" ");
    expect(args).toContain(
      "--peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003,4=127.0.0.1:7004,5=127.0.0.1:7005 --http 127.0.0.1:8005",
    );
    expect(args).toContain("--join --initial-members 1,2,3 --init");
    expect(replicaArgs(2, spareOptions, identity).join(" ")).not.toContain("--join");
    expect(noteSpareStarted(dir, 4)).toBe(false);
    expect(noteSpareStarted(dir, 4)).toBe(true);
    expect(clusterIdentity(dir, 3).fresh).toBe(false);
  });

  it("builds replica command lines that the replica command accepts", () => {
    const dir = path.join(tempDir("local"), "data");
    dirs.push(path.dirname(dir));
    const args = replicaArgs(
      1,
      { ...options, dataDir: dir, traceDir: path.join(dir, "traces") },
      clusterIdentity(dir, 3),
    );
    const program = buildProgram();
    const replica = program.commands.find((c) => c.name() === "replica")!;
    replica.action(() => undefined);
    program.parse(args, { from: "user" });
    expect(replica.opts()).toMatchObject({ id: 1, init: true, http: { host: "127.0.0.1", port: 8001 } });
    expect(String(replica.opts().trace)).toMatch(/replica-1\.trace\.jsonl$/);
  });

  it("makes the CA and replica certificates of a TLS start once, and runs replicas with them, without the secret", () => {
    const dir = path.join(tempDir("local"), "data");
    dirs.push(path.dirname(dir));
    const identity = clusterIdentity(dir, 3);
    expect(localCerts(dir, identity.clusterId, 4, "127.0.0.1", false)).toBe(path.join(dir, "certs"));
    expect(fs.existsSync(path.join(dir, "certs"))).toBe(false);
    const certsDir = localCerts(dir, identity.clusterId, 4, "127.0.0.1", true);
    const files = certsLayout(certsDir);
    const material = readTlsMaterial({ ...files.replica(4), ca: files.caCert });
    expect(new X509Certificate(material.cert).subjectAltName).toBe(
      `DNS:localhost, IP Address:127.0.0.1, URI:paxos-lease://${identity.clusterId}/replica/4`,
    );
    expect(JSON.parse(fs.readFileSync(path.join(dir, "cluster.json"), "utf8"))).toMatchObject({ tls: true });
    // A second start keeps them.
    const before = fs.readFileSync(files.replica(1).cert, "utf8");
    localCerts(dir, identity.clusterId, 4, "127.0.0.1", true);
    expect(fs.readFileSync(files.replica(1).cert, "utf8")).toBe(before);
    const args = replicaArgs(2, { ...options, dataDir: dir, tls: true }, identity);
    expect(args).not.toContain("--secret-file");
    expect(args.join(" ")).toContain(
      `--tls-cert ${files.replica(2).cert} --tls-key ${files.replica(2).key} --tls-ca ${files.caCert}`,
    );
    const program = buildProgram();
    const replica = program.commands.find((c) => c.name() === "replica")!;
    replica.action(() => undefined);
    program.parse(args, { from: "user" });
    expect(replica.opts()).toMatchObject({ tlsCert: files.replica(2).cert, tlsCa: files.caCert });
  });

  it("refuses a core configuration the core rejects before it starts any replica", async () => {
    const dir = tempDir("cluster-core");
    dirs.push(dir);
    const dataDir = path.join(dir, "data");
    const start = (config: string): Promise<number> => {
      fs.writeFileSync(path.join(dir, "core.json"), config);
      return startLocalCluster({ ...options, dataDir, coreConfigFile: path.join(dir, "core.json"), showLogs: false });
    };
    await expect(start('{"leaseMs": 50, "heartbeatIntervalMs": 60}')).rejects.toThrow(
      /core\.json: invalid replica configuration:\n {2}heartbeatIntervalMs \(60\) must be shorter than leaseMs \(50\)/,
    );
    await expect(start('{"self": 2}')).rejects.toBeInstanceOf(LocalClusterError);
    await expect(start("[1]")).rejects.toThrow(/must hold a JSON object/);
    await expect(start("nope")).rejects.toThrow(/cannot read --core-config/);
    expect(fs.existsSync(dataDir)).toBe(false);
  });

  it("tells how to point the CLI at a cluster its defaults would miss, and says nothing for npm start's", () => {
    const at = (given: Partial<typeof options> & { dataDir: string; tls?: boolean }): string[] =>
      cliEnvironment(
        { ...options, ...given },
        ["http://h:1", "http://h:2"],
        path.join(given.dataDir, "admin.token"),
        "ca.crt",
      );
    expect(at({ dataDir: "data" })).toEqual([]);
    expect(at({ dataDir: "data", httpPortBase: 18101 })).toEqual([
      "  CLI:          export PAXOS_LEASE_ENDPOINTS=http://h:1,http://h:2   (for the commands below)",
    ]);
    expect(at({ dataDir: "/srv/pl", tls: true })).toEqual([
      `  CLI:          export PAXOS_LEASE_TOKEN_FILE=/srv/pl/admin.token PAXOS_LEASE_CA_FILE=${path.resolve("ca.crt")}   (for the commands below)`,
    ]);
  });

  it("refuses a port something already listens on before it starts any replica or prints a banner", async () => {
    const dir = tempDir("cluster-ports");
    dirs.push(dir);
    const dataDir = path.join(dir, "data");
    const [peer, client] = await freePorts(2);
    // Another program (a cluster already running, say) on replica 1's client port.
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(client, "127.0.0.1", resolve));
    const out = new PassThrough();
    let text = "";
    out.on("data", (chunk: Buffer) => (text += chunk.toString()));
    try {
      const start = startLocalCluster({
        ...options,
        replicas: 1,
        peerPortBase: peer!,
        httpPortBase: client!,
        dataDir,
        showLogs: false,
        out,
      });
      await expect(start).rejects.toBeInstanceOf(LocalClusterError);
      await expect(start).rejects.toThrow(
        `cannot listen on 127.0.0.1:${client}, replica 1's client port: the address is in use. Is a cluster already running there?`,
      );
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
    expect(fs.existsSync(dataDir)).toBe(false);
    expect(text).toBe("");
  });

  it("ends, with exit code 1, once every replica has exited", async () => {
    const dir = tempDir("cluster-all-exit");
    dirs.push(dir);
    // A damaged tokens file: every replica refuses to start.
    fs.writeFileSync(path.join(dir, "tokens.json"), "not a tokens file");
    const out = new PassThrough();
    let text = "";
    out.on("data", (chunk: Buffer) => (text += chunk.toString()));
    const code = await startLocalCluster({
      ...options,
      peerPortBase: await freePortRun(options.replicas),
      httpPortBase: await freePortRun(options.replicas),
      dataDir: dir,
      showLogs: false,
      out,
    });
    expect(code).toBe(1);
    expect(text).toMatch(/the last replica running \(see above\): stopping/);
  });

  it("starts replica processes from the compiled CLI, which the build keeps current", async () => {
    expect(await ensureCliBuilt()).toBe(cliBundlePath);
    expect(cliBuildIsStale()).toBe(false);
    expect(cliArgv()).toEqual([cliBundlePath]);
    expect(replicaArgv()).toEqual([...replicaV8Flags, cliBundlePath]);
    // Large buffers in mappings of their own, unless the environment already says otherwise.
    expect(replicaEnv({ PATH: "/bin" })).toEqual({ PATH: "/bin", MALLOC_MMAP_THRESHOLD_: "131072" });
    expect(replicaEnv({ MALLOC_MMAP_THRESHOLD_: "65536" }).MALLOC_MMAP_THRESHOLD_).toBe("65536");
    expect(fs.readFileSync(cliBundlePath, "utf8").startsWith("#!/usr/bin/env node\n")).toBe(true);
    // The compiled program holds no TypeScript loader: it runs on plain Node.js.
    expect(fs.readFileSync(cliBundlePath, "utf8")).not.toMatch(/from "tsx/);
    const help = execFileSync(process.execPath, [...cliArgv(), "replica", "--help"], { encoding: "utf8" });
    expect(help).toContain("--cluster-id");
    expect(help).toContain("--tokens-file");
    // Through a symlink too, as `npm link` installs the command.
    const link = path.join(tempDir("cli-link"), "paxos-lease");
    dirs.push(path.dirname(link));
    fs.symlinkSync(cliBundlePath, link);
    expect(execFileSync(process.execPath, [link, "--help"], { encoding: "utf8" })).toMatch(/^Usage: paxos-lease /);
  });
});

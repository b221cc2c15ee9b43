/**
 * A cluster on hosts: each replica in its own network namespace with its own address on a
 * private bridge, clients on another host, configured as docs/operations.md configures separate
 * machines. Checks that the run changes nothing in the machine's own network namespace, that a
 * partition made by nftables on the bridge moves leadership as a real partition does, that a
 * cluster with mutual TLS and no secret links and serves across hosts and refuses a certificate
 * of another CA from another host, that `close` leaves nothing behind, that a stale run's leftovers are removed at the
 * next start
 * (and a live run's never), and that without root the nemesis says so in one line.
 *
 * Needs root, iproute2 and nftables (.ci/run installs them). Elsewhere it is skipped with the
 * reason, except in CI, where it must run.
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { beforeAll, describe, expect, it } from "vitest";
import { certsLayout, initCa, issueReplicaCert } from "./certs.ts";
import { keyPath, KvClient } from "./client.ts";
import { projectRoot, tsxArgv } from "./program.ts";
import { sleep, waitFor } from "./testing.ts";
import { useCluster } from "./testing-cluster.ts";
import { cleanStaleHosts, HostNetwork, hostsRunDir, hostsUnavailableReason } from "./testing-hosts.ts";

const unavailable = hostsUnavailableReason();
const skip = unavailable !== null && process.env.CI !== "true";
if (skip) process.stdout.write(`[hosts.test] skipped: ${unavailable}\n`);

function namespaces(): string[] {
  return execFileSync("ip", ["netns", "list"], { encoding: "utf8" })
    .split("\n")
    .map((line) => line.split(" ")[0]!)
    .filter((name) => name !== "");
}

/** The machine's own network namespace: its interfaces and its nftables tables. */
function rootNetwork(): string {
  const links = execFileSync("ip", ["-o", "link", "show"], { encoding: "utf8" })
    .split("\n")
    .map((line) => line.split(":")[1]?.trim() ?? "")
    .filter((name) => name !== "")
    .sort();
  const tables = execFileSync("nft", ["list", "tables"], { encoding: "utf8" }).trim();
  return `${links.join(",")}\n${tables}`;
}

describe.skipIf(skip)("a cluster on hosts", () => {
  let before: string;
  beforeAll(() => {
    before = rootNetwork();
  });
  const cluster = useCluster(3, { hosts: true });

  it("configures every replica as docs/operations.md configures a machine: its own address, the same ports", () => {
    const args = cluster().replicaArgs(2);
    const flag = (name: string): string => args[args.indexOf(name) + 1]!;
    expect(flag("--peers")).toBe("1=10.77.0.1:7001,2=10.77.0.2:7001,3=10.77.0.3:7001");
    expect(flag("--listen")).toBe("0.0.0.0:7001");
    expect(flag("--http")).toBe("0.0.0.0:8001");
    expect(flag("--advertise-http")).toBe("10.77.0.2:8001");
    expect(args.join(" ")).not.toContain("127.0.0.1");
    expect(cluster().endpoints()).toEqual(["http://10.77.0.1:8001", "http://10.77.0.2:8001", "http://10.77.0.3:8001"]);
  });

  it("changes nothing in the machine's own network namespace", () => {
    expect(rootNetwork()).toBe(before);
    for (const ns of ["switch", 1, 2, 3, "clients"] as const)
      expect(namespaces()).toContain(cluster().hosts!.namespace(ns));
  });

  it("serves clients on the clients' host through any replica, following redirects to the leader", async () => {
    const client = cluster().client();
    const put = await client.call("PUT", keyPath("hosts/a"), { value: "1" }, { clientId: "hosts-test", seq: 1 });
    expect(put.status).toBe(200);
    const leader = await cluster().waitForLeader();
    const follower = [1, 2, 3].find((id) => id !== leader)!;
    const viaFollower = new KvClient({
      endpoints: [cluster().endpoint(follower)],
      agent: cluster().hosts!.agent(),
      token: cluster().token(),
    });
    const read = await viaFollower.call("GET", keyPath("hosts/a"));
    expect(read.status).toBe(200);
    expect(read.body.value).toBe("1");
    expect(read.endpoint).toBe(cluster().endpoint(leader));
  });

  it("a partition of the leader by nftables drop rules on the bridge moves leadership; after healing the old leader catches up", async () => {
    const hosts = cluster().hosts!;
    const old = await cluster().waitForLeader();
    const others = [1, 2, 3].filter((id) => id !== old);
    await hosts.setLinks((from, to) => (from === old) !== (to === old), { mode: "drop", delayMs: 0, lossRate: 0 });
    const next = await waitFor(
      "a new leader among the others",
      async () => {
        const statuses = await Promise.all(others.map((id) => cluster().status(id)));
        const leader = statuses.find((s) => s?.role === "leader")?.replica;
        return leader !== undefined && leader !== old ? leader : undefined;
      },
      30_000,
      100,
    );
    const client = new KvClient({
      endpoints: [cluster().endpoint(next)],
      agent: hosts.agent(),
      token: cluster().token(),
    });
    expect(
      (await client.call("PUT", keyPath("hosts/b"), { value: "2" }, { clientId: "hosts-test", seq: 2 })).status,
    ).toBe(200);
    const counted = await hosts.counters();
    expect(counted.dropped).toBeGreaterThan(0);
    await hosts.healLinks();
    const target = (await cluster().status(next))!.executedSlot;
    await waitFor(
      "the old leader at the new leader's executed slot",
      async () => ((await cluster().status(old))?.executedSlot ?? -1) >= target || undefined,
      30_000,
      100,
    );
  }, 90_000);
});

describe.skipIf(skip)("a TLS cluster on hosts", () => {
  const cluster = useCluster(3, { hosts: true, tls: true });

  it("runs every replica with its certificate and no secret, serving HTTPS on its host's address", () => {
    const args = cluster().replicaArgs(2);
    expect(args).not.toContain("--secret-file");
    const flag = (name: string): string => args[args.indexOf(name) + 1]!;
    expect(flag("--tls-cert")).toMatch(/replica-2\.crt$/);
    expect(flag("--advertise-http")).toBe("10.77.0.2:8001");
    expect(cluster().endpoints()).toEqual([
      "https://10.77.0.1:8001",
      "https://10.77.0.2:8001",
      "https://10.77.0.3:8001",
    ]);
  });

  it("links the replicas by mutual TLS across hosts and serves clients through a follower", async () => {
    await waitFor(
      "every replica linked both ways to both others",
      async () => {
        const statuses = await Promise.all([1, 2, 3].map((id) => cluster().status(id)));
        return statuses.every((s) => s !== undefined && s.peers.filter((p) => p.outbound && p.inbound).length === 2)
          ? true
          : undefined;
      },
      30_000,
      100,
    );
    const leader = await cluster().waitForLeader();
    const follower = [1, 2, 3].find((id) => id !== leader)!;
    const viaFollower = new KvClient({
      endpoints: [cluster().endpoint(follower)],
      agent: cluster().hosts!.tlsAgent({ ca: cluster().caCert }),
      ca: cluster().caCert,
      token: cluster().token(),
    });
    const put = await viaFollower.call("PUT", keyPath("tls/a"), { value: "1" }, { clientId: "hosts-tls", seq: 1 });
    expect(put.status).toBe(200);
    expect(put.endpoint).toBe(cluster().endpoint(leader));
    const read = await viaFollower.call("GET", keyPath("tls/a"));
    expect(read.body.value).toBe("1");
  }, 60_000);

  it("refuses, from another host, a peer whose certificate another CA signed, though it names a replica of this cluster", async () => {
    const foreign = fs.mkdtempSync(path.join(os.tmpdir(), "hosts-foreign-ca-"));
    try {
      initCa(foreign, { clusterId: "it-cluster" });
      issueReplicaCert(foreign, { clusterId: "it-cluster", id: 2, hosts: ["10.77.0.250"] });
      const files = certsLayout(foreign);
      const rejected = async (): Promise<number> =>
        Number(
          /^paxos_lease_peer_connections_rejected_total(?:\{[^}]*\})? (\d+)/m.exec(await cluster().metrics(1))?.[1] ??
            NaN,
        );
      const before = await rejected();
      const raw = await cluster().hosts!.connect(cluster().hosts!.address(1), 7001);
      const secure = tls.connect({
        socket: raw,
        host: cluster().hosts!.address(1),
        cert: fs.readFileSync(files.replica(2).cert),
        key: fs.readFileSync(files.replica(2).key),
        ca: cluster().caCert,
      });
      secure.on("error", () => undefined);
      secure.resume();
      await new Promise((resolve) => secure.once("close", resolve));
      await waitFor("the foreign certificate counted as a rejected peer connection", async () =>
        (await rejected()) > before ? true : undefined,
      );
      await waitFor("replica 1 logging why it refused the connection", () =>
        /TLS handshake failed: its certificate is refused/.test(cluster().member(1).output.join("\n"))
          ? true
          : undefined,
      );
      // The cluster's own links were never at risk.
      expect(await cluster().waitForLeader()).toBeGreaterThan(0);
    } finally {
      fs.rmSync(foreign, { recursive: true, force: true });
    }
  }, 60_000);
});

describe.skipIf(skip)("hosts are torn down", () => {
  it("close removes every namespace and the registry", async () => {
    const hosts = await HostNetwork.create({ hosts: 2 });
    const made = [hosts.namespace("switch"), hosts.namespace(1), hosts.namespace(2), hosts.namespace("clients")];
    for (const ns of made) expect(namespaces()).toContain(ns);
    expect(fs.existsSync(path.join(hostsRunDir, `${hosts.runId}.json`))).toBe(true);
    const sleeper = hosts.spawn(1, "sleep", ["600"], { stdio: "ignore" });
    const exited = new Promise((resolve) => sleeper.once("exit", resolve));
    await hosts.close();
    await exited;
    for (const ns of made) expect(namespaces()).not.toContain(ns);
    expect(fs.existsSync(path.join(hostsRunDir, `${hosts.runId}.json`))).toBe(false);
    expect(fs.existsSync(path.join(hostsRunDir, hosts.runId))).toBe(false);
  }, 60_000);

  it("a stale run's leftovers are removed at the next start; a live run's are not", async () => {
    // A run whose process is gone: its registry names a namespace with a process still in it.
    const gone = spawnSync("true").pid;
    const staleId = "5ca1ab1e";
    const staleNs = `plh-${staleId}-r1`;
    execFileSync("ip", ["netns", "add", staleNs]);
    const orphan = spawn("ip", ["netns", "exec", staleNs, "sleep", "600"], { stdio: "ignore" });
    const orphanExit = new Promise((resolve) => orphan.once("exit", resolve));
    fs.mkdirSync(hostsRunDir, { recursive: true });
    fs.writeFileSync(
      path.join(hostsRunDir, `${staleId}.json`),
      JSON.stringify({
        format: "paxos-lease/hosts-run@1",
        runId: staleId,
        pid: gone,
        pidStart: "1",
        namespaces: [staleNs],
        created: new Date().toISOString(),
      }),
    );
    const live = await HostNetwork.create({ hosts: 1 });
    try {
      const next = await HostNetwork.create({ hosts: 1 });
      await next.close();
      expect(next.cleaned.concat(live.cleaned).join("\n")).toContain(`run ${staleId}`);
      expect(namespaces()).not.toContain(staleNs);
      await orphanExit;
      expect(fs.existsSync(path.join(hostsRunDir, `${staleId}.json`))).toBe(false);
      // The live run (this process) keeps everything.
      expect(cleanStaleHosts()).toEqual([]);
      expect(namespaces()).toContain(live.namespace(1));
    } finally {
      await live.close();
    }
  }, 60_000);
});

const nobody = ["--reuid=65534", "--regid=65534", "--clear-groups"];
const cliPath = path.join(projectRoot, "refinement-tests", "cli", "nemesis.ts");
/** An unprivileged user can only run the CLI where the checkout is readable to others (not under a private home). */
const readableToNobody =
  !skip && spawnSync("setpriv", [...nobody, "test", "-r", cliPath], { stdio: "ignore" }).status === 0;
if (!skip && !readableToNobody)
  process.stdout.write(`[hosts.test] the test without root is skipped: ${cliPath} is not readable to uid 65534\n`);

describe.skipIf(skip || !readableToNobody)("without root", () => {
  it("`npm run nemesis -- --net hosts` says so in one line and exits 2", async () => {
    const child = spawn(
      "setpriv",
      [...nobody, process.execPath, ...tsxArgv(cliPath), "--net", "hosts", "--minutes", "0.1"],
      { cwd: projectRoot, env: { ...process.env, HOME: "/tmp" }, stdio: ["ignore", "pipe", "pipe"] },
    );
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(stderr.trim().split("\n")).toEqual([
      "nemesis: --net hosts is not available here: network namespaces need root (CAP_NET_ADMIN and CAP_SYS_ADMIN), and this process runs as uid 65534",
    ]);
    expect(code).toBe(2);
    await sleep(0);
  }, 60_000);
});

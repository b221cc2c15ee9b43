/**
 * TLS with real replica processes and no cluster secret: the client API answers over HTTPS with
 * certificates of the cluster CA (and not over plain HTTP, nor to a client that does not trust
 * the CA), replicas reach each other over mutual TLS, a replica whose certificate comes from
 * another CA is refused by its peers and learns nothing, and a renewed certificate is served on
 * new connections without a restart.
 */
import { X509Certificate } from "node:crypto";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import path from "node:path";
import tls from "node:tls";
import { describe, expect, it } from "vitest";
import { certsLayout, initCa, issueReplicaCert } from "./certs.ts";
import { keyPath } from "./client.ts";
import { cliArgv } from "./program.ts";
import { useCluster } from "./testing-cluster.ts";
import { sleep, tempDir, waitFor } from "./testing.ts";

const cluster = useCluster(3, { traces: false, tls: true });

/** The fingerprint of the certificate served at 127.0.0.1:`port`, as a client trusting the cluster CA sees it. */
function servedCertificate(port: number, client: { cert: string; key: string } | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: "127.0.0.1",
      port,
      ca: cluster().caCert,
      ...client,
      checkServerIdentity: () => undefined,
    });
    socket.once("secureConnect", () => {
      resolve(socket.getPeerX509Certificate()!.fingerprint256);
      socket.end();
    });
    socket.once("error", reject);
  });
}

function fingerprintOf(file: string): string {
  return new X509Certificate(fs.readFileSync(file)).fingerprint256;
}

describe("TLS between real replicas", () => {
  it("serves the client API over HTTPS only, to clients that trust the cluster CA", async () => {
    const client = cluster().client();
    expect((await client.call("PUT", keyPath("over-tls"), { value: "secret" })).status).toBe(200);
    for (const id of [1, 2, 3]) {
      const reply = await cluster()
        .client()
        .call("GET", `${keyPath("over-tls")}?consistency=linearizable`);
      expect(reply.status, `replica ${id}`).toBe(200);
      expect(reply.body.value).toBe("secret");
    }
    const endpoint = new URL(cluster().endpoint(1));
    expect(endpoint.protocol).toBe("https:");
    // Plain HTTP to the HTTPS port gets no API answer.
    const plain = await new Promise<string>((resolve) => {
      const request = http.get(`http://${endpoint.host}/healthz`, { agent: false, timeout: 3000 }, (response) =>
        resolve(`status ${response.statusCode}`),
      );
      request.on("error", (error) => resolve(`error ${error.message}`));
      request.on("timeout", () => request.destroy(new Error("timeout")));
    });
    expect(plain).not.toBe("status 200");
    // A client that does not trust the cluster's CA refuses the replica's certificate.
    const untrusted = await new Promise<string>((resolve) => {
      const request = https.get(`${endpoint.origin}/healthz`, { agent: false }, (response) =>
        resolve(`status ${response.statusCode}`),
      );
      request.on("error", (error) => resolve((error as NodeJS.ErrnoException).code ?? error.message));
    });
    expect(untrusted).toMatch(/SELF_SIGNED|UNABLE_TO_GET_ISSUER|UNABLE_TO_VERIFY/);
  });

  it("is reached by the CLI with the CA file, and refused by the CLI without it", () => {
    const cli = (...args: string[]): { status: number | null; stdout: string; stderr: string } =>
      spawnSync(
        process.execPath,
        [...cliArgv(), ...args, "--endpoints", cluster().runningEndpoints().join(","), "--token", cluster().token()],
        { encoding: "utf8", cwd: cluster().dir, timeout: 30_000 },
      );
    const caFile = certsLayout(cluster().certsDir!).caCert;
    const put = cli("put", "via-cli", "tls", "--ca-file", caFile);
    expect(put.status, put.stderr).toBe(0);
    const get = cli("get", "via-cli", "--ca-file", caFile);
    expect(get.stdout.trim()).toBe("tls");
    const refused = cli("get", "via-cli", "--timeout-ms", "2000");
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/certificate/);
  });

  it("refuses a replica whose certificate is of another CA, which then learns nothing", async () => {
    const foreign = path.join(tempDir("tls-foreign"), "certs");
    initCa(foreign, { clusterId: "it-cluster" });
    const files = issueReplicaCert(foreign, { clusterId: "it-cluster", id: 3, hosts: ["127.0.0.1"] });
    await cluster().kill(3);
    const before = cluster().member(1).output.length;
    expect((await cluster().client().call("PUT", keyPath("while-foreign"), { value: "v" })).status).toBe(200);
    cluster().start(3, {
      extra: ["--tls-cert", files.cert, "--tls-key", files.key, "--tls-ca", certsLayout(foreign).caCert],
    });
    await waitFor(
      "replica 1 refusing the foreign certificate",
      () =>
        cluster()
          .member(1)
          .output.slice(before)
          .some((l) => /TLS handshake failed/.test(l))
          ? true
          : undefined,
      30_000,
    );
    await sleep(1000);
    // The intruder never got the write made while it was away: nothing reached it.
    const intruder = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const request = https.get(
        `${cluster().endpoint(3)}${keyPath("while-foreign")}?consistency=stale`,
        { agent: false, ca: fs.readFileSync(certsLayout(foreign).caCert), headers: cluster().authHeaders("read") },
        (response) => {
          const chunks: Buffer[] = [];
          response.on("data", (c: Buffer) => chunks.push(c));
          response.on("end", () =>
            resolve({ status: response.statusCode, ...(JSON.parse(Buffer.concat(chunks).toString()) as object) }),
          );
        },
      );
      request.on("error", reject);
    });
    expect(intruder.status).toBe(200);
    expect(intruder.value).toBeNull();
    // With its own certificate back, it rejoins and catches up.
    await cluster().kill(3);
    cluster().start(3);
    await waitFor(
      "replica 3 catching up over TLS",
      async () => {
        const status = await cluster().status(3);
        return status !== undefined && status.leader !== null ? true : undefined;
      },
      60_000,
    );
  }, 120_000);

  it("serves a renewed certificate on new connections, client and peer, without a restart", async () => {
    const dir = cluster().certsDir!;
    const files = certsLayout(dir);
    const peerClient = {
      cert: fs.readFileSync(files.replica(2).cert, "utf8"),
      key: fs.readFileSync(files.replica(2).key, "utf8"),
    };
    const httpPort = Number(new URL(cluster().endpoint(1)).port);
    const peerPort = cluster().member(1).peerPort;
    const old = fingerprintOf(files.replica(1).cert);
    expect(await servedCertificate(httpPort, undefined)).toBe(old);
    issueReplicaCert(dir, { clusterId: "it-cluster", id: 1, hosts: ["127.0.0.1", "localhost"] });
    const renewed = fingerprintOf(files.replica(1).cert);
    expect(renewed).not.toBe(old);
    await waitFor(
      "the renewed certificate on the client port",
      async () => ((await servedCertificate(httpPort, undefined)) === renewed ? true : undefined),
      20_000,
    );
    expect(await servedCertificate(peerPort, peerClient)).toBe(renewed);
    expect(
      cluster()
        .member(1)
        .output.some((l) => /TLS certificate re-read/.test(l)),
    ).toBe(true);
    // The cluster goes on serving through the renewed replica.
    expect((await cluster().client().call("PUT", keyPath("after-renewal"), { value: "v" })).status).toBe(200);
  }, 60_000);
});

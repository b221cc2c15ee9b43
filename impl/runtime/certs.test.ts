/**
 * Certificates made without an external tool: the CA and a replica's certificate parse and
 * verify with Node's X509Certificate, carry the replica's identity, and serve a real mutual TLS
 * connection; wrong material (another CA's certificate, a key that does not match, an expired
 * or damaged file) is refused naming the file, and a renewed certificate is picked up.
 */
import { X509Certificate } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import tls from "node:tls";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import {
  certsLayout,
  CertsError,
  initCa,
  issueReplicaCert,
  readTlsMaterial,
  replicaOfAltNames,
  replicaUri,
  TlsFiles,
  type TlsMaterial,
} from "./certs.ts";
import { tempDir, waitFor } from "./testing.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function certsDir(): string {
  const dir = tempDir("certs");
  dirs.push(dir);
  return path.join(dir, "certs");
}

function material(dir: string, id: number): TlsMaterial {
  const files = certsLayout(dir);
  return readTlsMaterial({ ...files.replica(id), ca: files.caCert });
}

describe("certs", () => {
  it("makes a CA and replica certificates that Node verifies, naming replica and cluster", () => {
    const dir = certsDir();
    const caFile = initCa(dir, { clusterId: "prod-kv" });
    const ca = new X509Certificate(fs.readFileSync(caFile));
    expect(ca.ca).toBe(true);
    expect(ca.subject).toContain("CN=paxos-lease CA of cluster prod-kv");
    expect(fs.statSync(certsLayout(dir).caKey).mode & 0o777).toBe(0o600);
    const files = issueReplicaCert(dir, { clusterId: "prod-kv", id: 3, hosts: ["c.example", "10.0.0.3", "::1"] });
    const cert = new X509Certificate(fs.readFileSync(files.cert));
    expect(cert.ca).toBe(false);
    expect(cert.checkIssued(ca)).toBe(true);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.subjectAltName).toBe(
      "DNS:c.example, IP Address:10.0.0.3, IP Address:0:0:0:0:0:0:0:1, URI:paxos-lease://prod-kv/replica/3",
    );
    expect(cert.keyUsage).toEqual(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]);
    expect(replicaOfAltNames(cert.subjectAltName)).toEqual({ clusterId: "prod-kv", replica: 3 });
    expect(replicaOfAltNames("DNS:a.example")).toBeNull();
    expect(replicaUri("a b/c", 1)).toBe("paxos-lease://a%20b%2Fc/replica/1");
    expect(fs.statSync(files.key).mode & 0o777).toBe(0o600);
    expect(() => initCa(dir, { clusterId: "prod-kv" })).toThrow(/exists already/);
    expect(() => issueReplicaCert(dir, { clusterId: "other", id: 1, hosts: [] })).toThrow(
      /is not the one of cluster other/,
    );
  });

  it("serves a mutual TLS connection in which each side sees the other's replica", async () => {
    const dir = certsDir();
    initCa(dir, { clusterId: "c" });
    issueReplicaCert(dir, { clusterId: "c", id: 1, hosts: ["127.0.0.1"] });
    issueReplicaCert(dir, { clusterId: "c", id: 2, hosts: ["127.0.0.1"] });
    const server = tls.createServer({ ...material(dir, 1), requestCert: true, rejectUnauthorized: true });
    const seenByServer = new Promise<string | undefined>((resolve) =>
      server.once("secureConnection", (socket) => {
        resolve(socket.getPeerX509Certificate()?.subjectAltName);
        socket.end();
      }),
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const client = tls.connect({
        host: "127.0.0.1",
        port: (server.address() as AddressInfo).port,
        ...material(dir, 2),
        checkServerIdentity: () => undefined,
      });
      const seenByClient = await new Promise<string | undefined>((resolve, reject) => {
        client.once("secureConnect", () => resolve(client.getPeerX509Certificate()?.subjectAltName));
        client.once("error", reject);
      });
      // Ended, not destroyed: in TLS 1.3 the client's certificate may still be in its send buffer.
      client.end();
      expect(replicaOfAltNames(seenByClient)).toEqual({ clusterId: "c", replica: 1 });
      expect(replicaOfAltNames(await seenByServer)).toEqual({ clusterId: "c", replica: 2 });
    } finally {
      server.close();
    }
  });

  it("refuses material that does not fit, naming the file", () => {
    const dir = certsDir();
    const other = certsDir();
    initCa(dir, { clusterId: "c" });
    initCa(other, { clusterId: "c" });
    issueReplicaCert(dir, { clusterId: "c", id: 1, hosts: [] });
    issueReplicaCert(other, { clusterId: "c", id: 1, hosts: [] });
    const files = { ...certsLayout(dir).replica(1), ca: certsLayout(dir).caCert };
    expect(() => readTlsMaterial({ ...files, ca: certsLayout(other).caCert })).toThrow(
      /replica-1\.crt was not issued by the CA of .*ca\.crt$/,
    );
    expect(() => readTlsMaterial({ ...files, key: certsLayout(other).replica(1).key })).toThrow(
      /replica-1\.key is not the key of .*replica-1\.crt$/,
    );
    expect(() => readTlsMaterial(files, Date.now() + 400 * 24 * 3600 * 1000)).toThrow(/replica-1\.crt expired on /);
    expect(() => readTlsMaterial({ ...files, cert: path.join(dir, "none.crt") })).toThrow(
      /cannot read the certificate .*none\.crt: it does not exist/,
    );
    fs.writeFileSync(files.cert, "not a certificate");
    expect(() => readTlsMaterial(files)).toThrow(CertsError);
    expect(() => readTlsMaterial(files)).toThrow(/replica-1\.crt is not a PEM certificate/);
  });

  it("accepts a CA file holding the old and the new CA, for a change of CA", () => {
    const old = certsDir();
    const next = certsDir();
    initCa(old, { clusterId: "c" });
    initCa(next, { clusterId: "c" });
    issueReplicaCert(old, { clusterId: "c", id: 1, hosts: [] });
    issueReplicaCert(next, { clusterId: "c", id: 2, hosts: [] });
    const bundle = path.join(old, "both.crt");
    fs.writeFileSync(
      bundle,
      fs.readFileSync(certsLayout(old).caCert, "utf8") + fs.readFileSync(certsLayout(next).caCert, "utf8"),
    );
    expect(readTlsMaterial({ ...certsLayout(old).replica(1), ca: bundle }).ca).toContain(
      "END CERTIFICATE-----\n-----BEGIN",
    );
    expect(() => readTlsMaterial({ ...certsLayout(next).replica(2), ca: bundle })).not.toThrow();
    expect(() => readTlsMaterial({ ...certsLayout(next).replica(2), ca: certsLayout(old).caCert })).toThrow(
      /was not issued by the CA/,
    );
  });

  it("picks up a renewed certificate, and keeps the one in use when the new files do not fit", async () => {
    const dir = certsDir();
    initCa(dir, { clusterId: "c" });
    issueReplicaCert(dir, { clusterId: "c", id: 1, hosts: [] });
    const changes: TlsMaterial[] = [];
    const errors: string[] = [];
    const files = new TlsFiles(
      { ...certsLayout(dir).replica(1), ca: certsLayout(dir).caCert },
      { checkMs: 20, onChange: (m) => changes.push(m), onError: (e) => errors.push(e) },
    );
    try {
      const first = files.current.cert;
      issueReplicaCert(dir, { clusterId: "c", id: 1, hosts: ["127.0.0.1"] });
      await waitFor("the renewed certificate", () => (changes.length > 0 ? true : undefined), 5000);
      expect(files.current.cert).not.toBe(first);
      const renewed = files.current.cert;
      fs.writeFileSync(certsLayout(dir).replica(1).cert, "half a cert");
      await waitFor("the refusal of the damaged file", () => (errors.length > 0 ? true : undefined), 5000);
      expect(errors[0]).toMatch(/is not a PEM certificate; the certificate in use is kept$/);
      expect(files.current.cert).toBe(renewed);
    } finally {
      files.close();
    }
  });
});

/**
 * The cluster's certificates: `paxos-lease certs init` makes a certificate authority for one
 * cluster (ca.crt, and ca.key, which only its owner can read), `certs issue` a certificate per
 * replica signed by it. A replica's certificate names the replica and its cluster in a URI
 * subject alternative name, paxos-lease://<cluster id>/replica/<id>, which is what its peers check
 * (mutual TLS: each side presents its certificate); its DNS names and IP addresses are the ones
 * clients reach its client API under. Keys are ECDSA P-256, made and kept by Node's crypto.
 *
 * {@link TlsFiles} reads a replica's certificate, key and CA from their files and re-reads them
 * when they change, so that a renewed certificate is used without a restart.
 */
import { generateKeyPairSync, X509Certificate, type KeyObject } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { issueCertificate, pem, privateKeyOf } from "./x509.ts";

/** A certificate file problem, in one sentence. */
export class CertsError extends Error {}

/** The files of a certificate directory. */
export function certsLayout(dir: string): {
  readonly caCert: string;
  readonly caKey: string;
  readonly replica: (id: number) => { readonly cert: string; readonly key: string };
} {
  return {
    caCert: path.join(dir, "ca.crt"),
    caKey: path.join(dir, "ca.key"),
    replica: (id) => ({ cert: path.join(dir, `replica-${id}.crt`), key: path.join(dir, `replica-${id}.key`) }),
  };
}

/** The URI a replica's certificate carries: who it is, in which cluster. */
export function replicaUri(clusterId: string, id: number): string {
  return `paxos-lease://${encodeURIComponent(clusterId)}/replica/${id}`;
}

/** The replica a certificate names (from its subjectAltName text as Node shows it), or null. */
export function replicaOfAltNames(
  subjectAltName: string | undefined,
): { readonly clusterId: string; readonly replica: number } | null {
  for (const entry of (subjectAltName ?? "").split(", ")) {
    const match = /^URI:paxos-lease:\/\/([^/]+)\/replica\/([0-9]{1,7})$/.exec(entry);
    if (match !== null) return { clusterId: decodeURIComponent(match[1]!), replica: Number(match[2]) };
  }
  return null;
}

const organization = "paxos-lease";
const dayMs = 24 * 60 * 60 * 1000;

function write(file: string, text: string, mode: number): void {
  fs.writeFileSync(file, text, { mode, flag: "wx" });
}

function refuseExisting(...files: string[]): void {
  for (const file of files)
    if (fs.existsSync(file)) throw new CertsError(`${file} exists already; move it away first to make a new one`);
}

/** Make a certificate authority for `clusterId` in `dir`; returns the CA certificate's file. */
export function initCa(dir: string, options: { readonly clusterId: string; readonly days?: number }): string {
  const files = certsLayout(dir);
  refuseExisting(files.caCert, files.caKey);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const keys = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const now = Date.now();
  const der = issueCertificate({
    commonName: caName(options.clusterId),
    organization,
    publicKey: keys.publicKey,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + (options.days ?? 3650) * dayMs),
    kind: "ca",
    selfSigningKey: keys.privateKey,
  });
  write(files.caKey, keys.privateKey.export({ type: "pkcs8", format: "pem" }) as string, 0o600);
  write(files.caCert, pem("CERTIFICATE", der), 0o644);
  return files.caCert;
}

function caName(clusterId: string): string {
  return `paxos-lease CA of cluster ${clusterId}`;
}

function readCa(dir: string): { cert: X509Certificate; key: KeyObject } {
  const files = certsLayout(dir);
  let cert: X509Certificate;
  let key: KeyObject;
  try {
    cert = new X509Certificate(fs.readFileSync(files.caCert));
    key = privateKeyOf(fs.readFileSync(files.caKey, "utf8"));
  } catch (error) {
    throw new CertsError(
      `cannot read the certificate authority in ${dir} (${error instanceof Error ? error.message.split("\n")[0]! : String(error)}); make one with 'paxos-lease certs init'`,
    );
  }
  if (!cert.checkPrivateKey(key)) throw new CertsError(`${files.caKey} is not the key of ${files.caCert}`);
  return { cert, key };
}

/**
 * Issue replica `id`'s certificate in `dir`, signed by the CA there, for the client addresses
 * `hosts` (DNS names or IP addresses). Replaces an older certificate of the same replica (the
 * replica picks the new one up without a restart). Returns its files.
 */
export function issueReplicaCert(
  dir: string,
  options: {
    readonly clusterId: string;
    readonly id: number;
    readonly hosts: readonly string[];
    readonly days?: number;
  },
): { readonly cert: string; readonly key: string } {
  const ca = readCa(dir);
  const expected = caName(options.clusterId);
  if (!ca.cert.subject.includes(`CN=${expected}`))
    throw new CertsError(
      `the CA in ${dir} is not the one of cluster ${options.clusterId} (its subject: ${ca.cert.subject.replaceAll("\n", ", ")})`,
    );
  const keys = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const now = Date.now();
  const der = issueCertificate({
    commonName: `replica ${options.id}`,
    organization,
    publicKey: keys.publicKey,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(Math.min(now + (options.days ?? 365) * dayMs, new Date(ca.cert.validTo).getTime())),
    kind: "entity",
    altNames: {
      dns: options.hosts.filter((h) => net.isIP(h) === 0),
      ips: options.hosts.filter((h) => net.isIP(h) !== 0),
      uris: [replicaUri(options.clusterId, options.id)],
    },
    issuer: { commonName: expected, organization, privateKey: ca.key },
  });
  const files = certsLayout(dir).replica(options.id);
  // Key first, then certificate, each replaced whole: a replica reloading in between sees a
  // certificate that does not match the key and keeps the pair it has.
  replaceFile(files.key, keys.privateKey.export({ type: "pkcs8", format: "pem" }) as string, 0o600);
  replaceFile(files.cert, pem("CERTIFICATE", der), 0o644);
  return files;
}

function replaceFile(file: string, text: string, mode: number): void {
  const temporary = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temporary, text, { mode });
  fs.renameSync(temporary, file);
}

/** What a TLS context needs: PEM texts of the certificate, its key and the CA. */
export interface TlsMaterial {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

/** The files of a replica's TLS material. */
export interface TlsFileNames {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

/** The PEM certificates in `text` (a CA file may hold several: old and new CA during a change). */
function pemBlocks(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
}

/**
 * Read and check TLS material: the certificate must be issued by the CA (one of them, when the
 * CA file holds several), match the key, and be valid now. Throws {@link CertsError} naming the file and the problem.
 */
export function readTlsMaterial(files: TlsFileNames, nowMs = Date.now()): TlsMaterial {
  const read = (file: string, what: string): string => {
    try {
      return fs.readFileSync(file, "utf8");
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new CertsError(
        `cannot read the ${what} ${file}: ${code === "ENOENT" ? "it does not exist" : code === "EACCES" ? "permission denied" : String(error)}`,
      );
    }
  };
  const material = {
    cert: read(files.cert, "certificate"),
    key: read(files.key, "key"),
    ca: read(files.ca, "CA certificate"),
  };
  let cert: X509Certificate;
  let cas: X509Certificate[];
  try {
    cert = new X509Certificate(material.cert);
  } catch {
    throw new CertsError(`${files.cert} is not a PEM certificate`);
  }
  try {
    cas = pemBlocks(material.ca).map((block) => new X509Certificate(block));
  } catch {
    throw new CertsError(`${files.ca} is not a PEM certificate`);
  }
  if (cas.length === 0) throw new CertsError(`${files.ca} is not a PEM certificate`);
  let key: KeyObject;
  try {
    key = privateKeyOf(material.key);
  } catch {
    throw new CertsError(`${files.key} is not a PEM private key`);
  }
  if (!cert.checkPrivateKey(key)) throw new CertsError(`${files.key} is not the key of ${files.cert}`);
  if (!cas.some((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey)))
    throw new CertsError(`${files.cert} was not issued by the CA of ${files.ca}`);
  if (nowMs > new Date(cert.validTo).getTime()) throw new CertsError(`${files.cert} expired on ${cert.validTo}`);
  return material;
}

/**
 * A replica's TLS material, re-read when one of its files changes (checked every `checkMs`).
 * A change that does not pass {@link readTlsMaterial} is reported and the material in use kept:
 * a half-copied certificate must not take the replica off the network.
 */
export class TlsFiles {
  private material: TlsMaterial;
  private stamp: string;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly files: TlsFileNames,
    private readonly options: {
      readonly checkMs?: number;
      readonly onChange: (material: TlsMaterial) => void;
      readonly onError: (message: string) => void;
    },
  ) {
    this.material = readTlsMaterial(files);
    this.stamp = this.statStamp();
    this.timer = setInterval(() => this.check(), options.checkMs ?? 5000);
    this.timer.unref();
  }

  get current(): TlsMaterial {
    return this.material;
  }

  close(): void {
    clearInterval(this.timer);
  }

  private statStamp(): string {
    return [this.files.cert, this.files.key, this.files.ca]
      .map((file) => {
        const stat = fs.statSync(file, { throwIfNoEntry: false });
        return stat === undefined ? "missing" : `${stat.ino}:${stat.size}:${stat.mtimeMs}`;
      })
      .join("|");
  }

  private check(): void {
    let stamp: string;
    try {
      stamp = this.statStamp();
    } catch {
      return;
    }
    if (stamp === this.stamp) return;
    this.stamp = stamp;
    try {
      this.material = readTlsMaterial(this.files);
    } catch (error) {
      this.options.onError(`${error instanceof Error ? error.message : String(error)}; the certificate in use is kept`);
      return;
    }
    this.options.onChange(this.material);
  }
}

/**
 * X.509 v3 certificates written in DER (ITU-T X.690) with Node's crypto, so that `paxos-lease
 * certs` needs no external tool: ECDSA P-256 keys, SHA-256 signatures, and the extensions TLS
 * needs (basic constraints, key usage, extended key usage, subject alternative names, key
 * identifiers). RFC 5280 is the reference for every structure below. This file only writes
 * certificates; Node's X509Certificate and its TLS stack read and verify them.
 */
import { createHash, createPrivateKey, createPublicKey, randomBytes, sign, type KeyObject } from "node:crypto";
import net from "node:net";

// ---- DER: tag, length, contents ----

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, contents: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), length(contents.length), contents]);
}

const sequence = (...items: Buffer[]): Buffer => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]): Buffer => tlv(0x31, Buffer.concat(items));
const octetString = (bytes: Buffer): Buffer => tlv(0x04, bytes);
const utf8String = (text: string): Buffer => tlv(0x0c, Buffer.from(text, "utf8"));
const boolean = (value: boolean): Buffer => tlv(0x01, Buffer.from([value ? 0xff : 0]));
/** [n] EXPLICIT: a constructed context-specific wrapper. */
const explicit = (n: number, inner: Buffer): Buffer => tlv(0xa0 | n, inner);

/** A non-negative INTEGER from big-endian bytes (a leading zero keeps it positive). */
function integer(bytes: Buffer): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const trimmed = bytes.subarray(start);
  return tlv(0x02, trimmed[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

/** A BIT STRING of whole bytes (no unused bits). */
const bitString = (bytes: Buffer): Buffer => tlv(0x03, Buffer.concat([Buffer.from([0]), bytes]));

/** A BIT STRING of named bits (bit 0 is the first byte's most significant bit), DER-minimal. */
function namedBits(bits: readonly number[]): Buffer {
  const last = Math.max(...bits);
  const bytes = Buffer.alloc(Math.floor(last / 8) + 1);
  for (const bit of bits) bytes[Math.floor(bit / 8)]! |= 0x80 >> (bit % 8);
  return tlv(0x03, Buffer.concat([Buffer.from([7 - (last % 8)]), bytes]));
}

function oid(dotted: string): Buffer {
  const parts = dotted.split(".").map(Number);
  const bytes = [40 * parts[0]! + parts[1]!];
  for (const part of parts.slice(2)) {
    const base128: number[] = [];
    for (let v = part; ; v = Math.floor(v / 128)) {
      base128.unshift((v & 0x7f) | (base128.length === 0 ? 0 : 0x80));
      if (v < 128) break;
    }
    bytes.push(...base128);
  }
  return tlv(0x06, Buffer.from(bytes));
}

/** UTCTime up to 2049, GeneralizedTime after (RFC 5280, 4.1.2.5). */
function time(date: Date): Buffer {
  const iso = date.toISOString().replace(/[-:T]/g, "").slice(0, 14);
  return date.getUTCFullYear() < 2050
    ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`, "ascii"))
    : tlv(0x18, Buffer.from(`${iso}Z`, "ascii"));
}

// ---- Certificates ----

const oids = {
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  commonName: "2.5.4.3",
  organization: "2.5.4.10",
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  subjectAltName: "2.5.29.17",
  subjectKeyIdentifier: "2.5.29.14",
  authorityKeyIdentifier: "2.5.29.35",
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
} as const;

function name(commonName: string, organization: string): Buffer {
  return sequence(
    set(sequence(oid(oids.organization), utf8String(organization))),
    set(sequence(oid(oids.commonName), utf8String(commonName))),
  );
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return sequence(oid(id), ...(critical ? [boolean(true)] : []), octetString(value));
}

/** The key identifier of RFC 5280, 4.2.1.2, method 1: SHA-1 of the public key's bits. */
function keyIdentifier(publicKey: KeyObject): Buffer {
  const spki = publicKey.export({ type: "spki", format: "der" });
  // The BIT STRING holding the key is the SPKI's last element; hashing the whole SPKI is as unique.
  return createHash("sha1").update(spki).digest();
}

/** Subject alternative names: DNS names, IP addresses and URIs. */
export interface AltNames {
  readonly dns?: readonly string[];
  readonly ips?: readonly string[];
  readonly uris?: readonly string[];
}

function altNames(names: AltNames): Buffer {
  const entries: Buffer[] = [];
  for (const dns of names.dns ?? []) entries.push(tlv(0x82, Buffer.from(dns, "ascii")));
  for (const ip of names.ips ?? []) {
    const family = net.isIP(ip);
    if (family === 0) throw new Error(`${JSON.stringify(ip)} is not an IP address`);
    entries.push(tlv(0x87, family === 4 ? Buffer.from(ip.split(".").map(Number)) : ipv6Bytes(ip)));
  }
  for (const uri of names.uris ?? []) entries.push(tlv(0x86, Buffer.from(uri, "ascii")));
  return sequence(...entries);
}

function ipv6Bytes(ip: string): Buffer {
  const [head, tail] = ip.split("::") as [string, string | undefined];
  const groups = (text: string | undefined): number[] =>
    text === undefined || text === "" ? [] : text.split(":").map((g) => parseInt(g, 16));
  const left = groups(head);
  const right = groups(tail);
  const all = tail === undefined ? left : [...left, ...Array<number>(8 - left.length - right.length).fill(0), ...right];
  const bytes = Buffer.alloc(16);
  all.forEach((g, i) => bytes.writeUInt16BE(g, 2 * i));
  return bytes;
}

/** What {@link issueCertificate} makes. */
export interface CertificateRequest {
  readonly commonName: string;
  readonly organization: string;
  /** The subject's public key. */
  readonly publicKey: KeyObject;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** A certificate authority (may sign certificates) or a TLS end entity (server and client). */
  readonly kind: "ca" | "entity";
  readonly altNames?: AltNames;
  /** The issuer: its certificate's subject and key; none for a self-signed CA. */
  readonly issuer?: { readonly commonName: string; readonly organization: string; readonly privateKey: KeyObject };
  /** The signing key of a self-signed certificate. */
  readonly selfSigningKey?: KeyObject;
}

/** A certificate in DER, signed with ECDSA-SHA256 by its issuer (or itself). */
export function issueCertificate(request: CertificateRequest): Buffer {
  const signer = request.issuer?.privateKey ?? request.selfSigningKey;
  if (signer === undefined) throw new Error("a certificate needs an issuer or a self-signing key");
  const issuerName = request.issuer ?? request;
  const algorithm = sequence(oid(oids.ecdsaWithSha256));
  const ca = request.kind === "ca";
  const extensions = [
    extension(oids.basicConstraints, true, ca ? sequence(boolean(true)) : sequence()),
    // digitalSignature (0); a CA also keyCertSign (5) and cRLSign (6).
    extension(oids.keyUsage, true, namedBits(ca ? [0, 5, 6] : [0])),
    ...(ca ? [] : [extension(oids.extKeyUsage, false, sequence(oid(oids.serverAuth), oid(oids.clientAuth)))]),
    ...(request.altNames === undefined ? [] : [extension(oids.subjectAltName, false, altNames(request.altNames))]),
    extension(oids.subjectKeyIdentifier, false, octetString(keyIdentifier(request.publicKey))),
    extension(oids.authorityKeyIdentifier, false, sequence(tlv(0x80, keyIdentifier(createPublicKey(signer))))),
  ];
  const tbs = sequence(
    explicit(0, integer(Buffer.from([2]))),
    integer(Buffer.concat([Buffer.from([0x01]), randomBytes(15)])),
    algorithm,
    name(issuerName.commonName, issuerName.organization),
    sequence(time(request.notBefore), time(request.notAfter)),
    name(request.commonName, request.organization),
    request.publicKey.export({ type: "spki", format: "der" }),
    explicit(3, sequence(...extensions)),
  );
  return sequence(tbs, algorithm, bitString(sign("sha256", tbs, signer)));
}

/** DER as PEM text with the given label (CERTIFICATE, ...). */
export function pem(label: string, der: Buffer): string {
  const lines = der.toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** A private key from PEM text (for the CA key read back from its file). */
export function privateKeyOf(text: string): KeyObject {
  return createPrivateKey(text);
}

/**
 * Mutual TLS between replicas (docs/operations.md, "TLS"): the peer listener and the dialer
 * speak TLS 1.3 with the cluster CA's certificates, each side presenting its own and checking
 * that the other's names the replica it claims to be (paxos-lease://<cluster>/replica/<id>,
 * impl/runtime/certs.ts). The transport's handshake then runs inside TLS; its MACs are keyed by
 * the TLS session's exported keying material (RFC 5705), mixed with the cluster secret when one
 * is given, so a proof cannot be replayed on another connection. Without TLS material the
 * cluster secret alone authenticates, over plain TCP.
 */
import { createHmac } from "node:crypto";
import net from "node:net";
import tls from "node:tls";
import { replicaOfAltNames, type TlsMaterial } from "./certs.ts";
import type { Address } from "./transport.ts";

/** Protocol name and version; a peer speaking another is refused. */
export const peerProtocol = "paxos-lease/peer@2";

/** The MAC one side of a handshake sends; `role` keeps the two proofs distinct. */
export function handshakeMac(
  secret: Uint8Array,
  role: "acceptor" | "dialer",
  fields: { clusterId: string; dialer: number; acceptor: number; dialerNonce: string; acceptorNonce: string },
): string {
  const text = JSON.stringify([
    role,
    fields.clusterId,
    fields.dialer,
    fields.acceptor,
    fields.dialerNonce,
    fields.acceptorNonce,
  ]);
  return createHmac("sha256", secret).update(text).digest("hex");
}

/** The label of the keying material exported for the handshake's MACs. */
const exporterLabel = "EXPERIMENTAL-paxos-lease-peer-handshake";

/**
 * The TLS side of the peer listener: connections the listener admitted are handed to it
 * (`server.emit("connection", socket)`), so a refused connection never costs a TLS handshake.
 * It asks for the dialer's certificate and reports in `secureConnection` whether it chains to
 * the CA (`authorized`); the transport refuses the connection otherwise, naming the reason.
 */
export function peerTlsServer(material: TlsMaterial): tls.Server {
  return tls.createServer({ ...material, requestCert: true, rejectUnauthorized: false, minVersion: "TLSv1.3" });
}

/** Use new TLS material for the connections a TLS listener accepts from now on. */
export function renewServer(server: tls.Server, material: TlsMaterial): void {
  server.setSecureContext({ ...material, minVersion: "TLSv1.3" });
}

/**
 * Dial a peer: TLS when there is material (the peer's certificate must name `expected`), plain
 * TCP otherwise. `ready` is the event after which the handshake may start.
 */
export function peerConnect(
  address: Address,
  material: TlsMaterial | undefined,
  expected: { readonly clusterId: string; readonly replica: number },
): { readonly socket: net.Socket; readonly ready: "connect" | "secureConnect" } {
  if (material === undefined)
    return { socket: net.connect({ host: address.host, port: address.port }), ready: "connect" };
  const socket = tls.connect({
    host: address.host,
    port: address.port,
    ...material,
    minVersion: "TLSv1.3",
    // Peers are known by replica id, not host name: the certificate must name the replica dialed.
    checkServerIdentity: (_host, certificate) => {
      const refusal = identityRefusal(certificate.subjectaltname, expected);
      return refusal === undefined ? undefined : new Error(refusal);
    },
  });
  return { socket, ready: "secureConnect" };
}

function identityRefusal(
  subjectAltName: string | undefined,
  expected: { readonly clusterId: string; readonly replica: number },
): string | undefined {
  const named = replicaOfAltNames(subjectAltName);
  if (named === null) return "its certificate names no paxos-lease replica";
  if (named.clusterId !== expected.clusterId)
    return `its certificate is for cluster ${JSON.stringify(named.clusterId)}, not ${JSON.stringify(expected.clusterId)}`;
  if (named.replica !== expected.replica)
    return `its certificate is for replica ${named.replica}, but it claims to be replica ${expected.replica}`;
  return undefined;
}

/**
 * Why an accepted connection's certificate does not fit the replica its hello names, or
 * undefined (also for a plain TCP connection, where the secret decides).
 */
export function certificateRefusal(socket: net.Socket, clusterId: string, replica: number): string | undefined {
  if (!(socket instanceof tls.TLSSocket)) return undefined;
  return identityRefusal(socket.getPeerX509Certificate()?.subjectAltName, { clusterId, replica });
}

/** The key of the handshake's MACs on `socket`: the secret over TCP; under TLS, bound to the session. */
export function macKeyOf(socket: net.Socket, secret: Uint8Array | undefined): Uint8Array {
  if (!(socket instanceof tls.TLSSocket)) {
    if (secret === undefined) throw new Error("a peer connection without TLS needs the cluster secret");
    return secret;
  }
  const exported = socket.exportKeyingMaterial(32, exporterLabel, Buffer.alloc(0));
  return secret === undefined ? exported : createHmac("sha256", secret).update(exported).digest();
}

/**
 * Who may do what on the client API: the role each route needs, and the checks that keep a web
 * page in an operator's browser from acting on the cluster (a cross-origin request, or DNS
 * rebinding: a hostile name that resolves to a replica). A request is refused unless its Host
 * names an address of the cluster, any Origin it carries does too, and its bearer token's role
 * covers the route (impl/runtime/tokens.ts). Nothing here lets a request through without a
 * token except the routes that show no data (`/`, `/healthz`) and, when the operator allows it,
 * the status and metrics.
 */
import os from "node:os";
import type { Authentication } from "./tokens.ts";

/** The roles, weakest first: each allows everything the ones before it allow. */
export const roles = ["read", "write", "admin"] as const;
export type Role = (typeof roles)[number];

/** True when a token of role `have` may do what needs role `need`. */
export function roleAllows(have: Role, need: Role): boolean {
  return roles.indexOf(have) >= roles.indexOf(need);
}

/** What the HTTP server asks about each request. */
export interface AccessPolicy {
  /** Check the Authorization header's bearer token. */
  readonly authenticate: (authorization: string | undefined) => Authentication;
  /** Whether `hostPort` (normalized by {@link normalizeHost}) is an address of the cluster. */
  readonly hostAllowed: (hostPort: string) => boolean;
  /** `/status` and `/metrics` answer without a token (the operator's `--public-status`). Default false. */
  readonly publicStatus?: boolean;
}

/** The role a request needs, or "public" for the routes that show nothing of the data. */
export type Need = Role | "public";

/**
 * `host` or `host:port` as `hostname:port`, lowercase, IPv6 in brackets, the port explicit
 * (`defaultPort` when absent). Null when it is not a host.
 */
export function normalizeHost(text: string, defaultPort: number): string | null {
  const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+)(?::([0-9]{1,5}))?$/.exec(text.trim());
  if (match === null) return null;
  const port = match[2] === undefined ? defaultPort : Number(match[2]);
  if (port < 1 || port > 65535) return null;
  return `${match[1]!.toLowerCase()}:${port}`;
}

/** An Origin header (`scheme://host[:port]`) as `hostname:port`, or null when it is not a web origin (`null`, junk). */
export function normalizeOrigin(origin: string): string | null {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return null;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return null;
  return normalizeHost(url.host, url.protocol === "https:" ? 443 : 80);
}

/** Options of {@link ClusterHosts}. */
export interface ClusterHostsOptions {
  /** The port this replica serves clients on. */
  readonly port: number;
  /** This replica's own client addresses (`--http`, `--advertise-http`), HOST:PORT. */
  readonly own: readonly string[];
  /** Further names clients use (`--allow-host`): HOST (at `port`) or HOST:PORT. */
  readonly extra?: readonly string[];
  /** The client addresses the other replicas announced (read at each check). */
  readonly peers?: () => Iterable<string>;
}

/**
 * The addresses of the cluster as this replica knows them: its own client addresses, the
 * loopback names and the addresses of this machine's interfaces at its client port, the client
 * addresses its peers announced, and the operator's extra names. A hostile page can name none of
 * them as its own origin, and a rebinding name is none of them.
 */
export class ClusterHosts {
  private readonly fixed = new Set<string>();

  constructor(private readonly options: ClusterHostsOptions) {
    const add = (text: string, port: number): void => {
      const host = normalizeHost(text, port);
      if (host !== null) this.fixed.add(host);
    };
    for (const name of ["localhost", "127.0.0.1", "[::1]"]) add(name, options.port);
    for (const addresses of Object.values(os.networkInterfaces()))
      for (const a of addresses ?? [])
        add(a.family === "IPv6" ? `[${a.address.split("%")[0]!}]` : a.address, options.port);
    for (const own of options.own) add(own, options.port);
    for (const extra of options.extra ?? []) add(extra, options.port);
  }

  allows(hostPort: string): boolean {
    if (this.fixed.has(hostPort)) return true;
    for (const peer of this.options.peers?.() ?? []) if (normalizeHost(peer, 80) === hostPort) return true;
    return false;
  }
}

/** A refusal: status, code and one sentence. */
export interface AccessRefusal {
  readonly status: number;
  readonly code: string;
  readonly message: string;
  readonly headers?: Record<string, string>;
}

/** The browser checks: Host and Origin must name the cluster. Null when the request may go on. */
export function checkBrowser(
  policy: AccessPolicy,
  headers: { readonly host?: string | undefined; readonly origin?: string | undefined },
): AccessRefusal | null {
  const host = headers.host === undefined ? null : normalizeHost(headers.host, 80);
  if (host === null || !policy.hostAllowed(host))
    return {
      status: 403,
      code: "host-refused",
      message: `Host ${JSON.stringify(headers.host ?? "")} is not an address of this cluster; a client that reaches the replicas under another name needs that name in the replicas' --allow-host`,
    };
  if (headers.origin !== undefined) {
    const origin = normalizeOrigin(headers.origin);
    if (origin === null || !policy.hostAllowed(origin))
      return {
        status: 403,
        code: "origin-refused",
        message: `requests from web pages of origin ${JSON.stringify(headers.origin.slice(0, 200))} are refused: only the cluster's own pages may call its API`,
      };
  }
  return null;
}

/** Check the token against the role `need`. Null when the request may go on. */
export function checkRole(policy: AccessPolicy, need: Need, authorization: string | undefined): AccessRefusal | null {
  if (need === "public") return null;
  const challenge = { "WWW-Authenticate": 'Bearer realm="paxos-lease"' };
  const authentication = policy.authenticate(authorization);
  switch (authentication._tag) {
    case "missing":
      return {
        status: 401,
        code: "unauthenticated",
        message: `this request needs a token with the ${need} role: send Authorization: Bearer <token> (docs/operations.md, "Tokens")`,
        headers: challenge,
      };
    case "invalid":
      return { status: 401, code: "unauthenticated", message: authentication.reason, headers: challenge };
    case "ok": {
      const have = authentication.entry.role;
      if (roleAllows(have, need)) return null;
      return {
        status: 403,
        code: "forbidden",
        message: `this request needs the ${need} role; token ${authentication.entry.id} has the ${have} role`,
      };
    }
  }
}

/**
 * Requests with a body must say it is JSON: a browser sends `text/plain`, form and multipart
 * bodies across origins without asking first, but never `application/json`. Null when it does.
 */
export function checkContentType(contentType: string | undefined): AccessRefusal | null {
  const media = contentType?.split(";")[0]!.trim().toLowerCase();
  if (media === "application/json") return null;
  return {
    status: 415,
    code: "unsupported-media-type",
    message: `a request with a body needs Content-Type: application/json, got ${contentType === undefined ? "none" : JSON.stringify(contentType.slice(0, 100))}`,
  };
}

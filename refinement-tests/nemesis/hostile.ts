/**
 * Hostile clients of the `hostile-clients` fault: connections to a replica's client port that
 * the HTTP API's hardening must refuse or close as docs/http-api.md says (impl/runtime/http-api.ts),
 * opened while the schedule's other faults go on. Each probe sends one kind of bad traffic and
 * records what came back; {@link judgeProbe} holds it to the documented answer. Two more checks
 * are pure functions of what the harness sampled: {@link leadershipChangesWhenQuiet} (the
 * hostile connections cost no leadership where no other fault can explain it) and
 * {@link honestOpsNotCompleted} (the honest clients' operations complete meanwhile).
 * A probe never throws; every wait is bounded.
 */
import net from "node:net";
import type { RecordedOp } from "./workload.ts";

/** How long a replica waits for a request's line and headers (http-api.ts `headersArrivalMsDefault`). */
export const headersArrivalMs = 10_000;
/** How long a replica keeps a connection it answered 400 for bytes that are not HTTP (`lingerMsMax`). */
export const malformedLingerMs = 2000;
/** Added to every documented bound before a late answer or close counts: the machine is shared. */
export const slackMs = 3000;
/** Request headers a replica takes (http-api.ts `headersCountMax`). */
const headersCountMax = 64;

/** The kinds of hostile connection, each with the answer the documentation promises. */
export const probeKinds = [
  /** Bytes that are not HTTP, and no FIN after them: 400, then closed by the replica within the linger. */
  "garbage",
  /** A request of 70 headers: 431, `Connection: close`. */
  "too-many-headers",
  /** A request line and headers past Node.js's 16 KiB: 431, closed. */
  "headers-too-large",
  /** A PUT whose body is framed by `Transfer-Encoding: gzip`: 400 at once, closed. */
  "unknown-transfer-encoding",
  /** A request with two Host headers: 400. */
  "duplicate-host",
  /** A request line, then one header byte every 300 ms (slowloris): 408 within the headers' time. */
  "trickled-headers",
  /** A connection that sends nothing: 408 within the headers' time. */
  "silent",
] as const;
export type ProbeKind = (typeof probeKinds)[number];

/** What a probe saw. Times in milliseconds from its connection's start. */
export interface ProbeResult {
  readonly kind: ProbeKind;
  /** The status of the answer's first line, or null if none came. */
  readonly status: number | null;
  /** The answer said `Connection: close`. */
  readonly connectionClose: boolean;
  /** When the answer's first bytes came (null: none). */
  readonly answeredMs: number | null;
  /** When the replica closed its side (a FIN or a reset; null: it had not when the probe gave up). */
  readonly closedMs: number | null;
  /** The connection could not be opened, or was reset before any answer (a replica killed, stopped, restarted). */
  readonly lost: boolean;
}

/** The documented answer of each kind, and by when (ms from the connection's start) it must have closed. */
const expected: Record<ProbeKind, { readonly status: number; readonly closeWithinMs: number }> = {
  garbage: { status: 400, closeWithinMs: malformedLingerMs },
  "too-many-headers": { status: 431, closeWithinMs: malformedLingerMs },
  "headers-too-large": { status: 431, closeWithinMs: malformedLingerMs },
  "unknown-transfer-encoding": { status: 400, closeWithinMs: malformedLingerMs },
  "duplicate-host": { status: 400, closeWithinMs: Number.POSITIVE_INFINITY },
  "trickled-headers": { status: 408, closeWithinMs: headersArrivalMs + 1000 },
  silent: { status: 408, closeWithinMs: headersArrivalMs + 1000 },
};

/** How long a probe waits for its answer and close before it gives up. */
export function probeDeadlineMs(kind: ProbeKind): number {
  const bound = expected[kind].closeWithinMs;
  return (Number.isFinite(bound) ? bound : malformedLingerMs) + slackMs;
}

/** What {@link judgeProbe} says of a probe: as documented, cut short by another fault, or a violation. */
export type ProbeVerdict = "documented" | "cut short" | { readonly violation: string };

/**
 * Hold `result` to the documented answer of its kind. `quiet`: no other fault was in force at any
 * time during the probe, so a missing or late answer is the replica's doing. A wrong status is a
 * violation whatever else happened (a replica that answers at all answers as documented); a lost
 * connection during another fault is "cut short".
 */
export function judgeProbe(result: ProbeResult, quiet: boolean): ProbeVerdict {
  const want = expected[result.kind];
  if (result.status !== null && result.status !== want.status)
    return { violation: `${result.kind}: answered ${result.status}, documented ${want.status}` };
  if (result.status === want.status && want.status !== 400 && !result.connectionClose && result.kind !== "silent")
    return { violation: `${result.kind}: answered ${result.status} without Connection: close` };
  const lateAnswer = result.status === null;
  const lateClose =
    Number.isFinite(want.closeWithinMs) && (result.closedMs === null || result.closedMs > want.closeWithinMs + slackMs);
  if (!lateAnswer && !lateClose) return "documented";
  if (!quiet || result.lost) return "cut short";
  return {
    violation: lateAnswer
      ? `${result.kind}: no answer within ${probeDeadlineMs(result.kind)} ms with no other fault in force`
      : `${result.kind}: answered ${result.status} but still open ${want.closeWithinMs + slackMs} ms after connecting`,
  };
}

/** What each kind sends first (`host`: the replica's host:port, `token`: a bearer token). */
function opening(kind: ProbeKind, host: string, token: string): string {
  const auth = `Authorization: Bearer ${token}\r\n`;
  switch (kind) {
    case "garbage":
      return "\x16\x03\x01\x00\xa5 not HTTP at all\r\n\r\n";
    case "too-many-headers": {
      const many = Array.from({ length: headersCountMax + 6 }, (_, i) => `X-Hostile-${i}: ${i}\r\n`).join("");
      return `GET /v1/kv/nemesis-hostile HTTP/1.1\r\nHost: ${host}\r\n${auth}${many}\r\n`;
    }
    case "headers-too-large":
      return `GET /v1/kv/nemesis-hostile HTTP/1.1\r\nHost: ${host}\r\n${auth}X-Hostile: ${"h".repeat(20 * 1024)}\r\n\r\n`;
    case "unknown-transfer-encoding":
      return `PUT /v1/kv/nemesis-hostile HTTP/1.1\r\nHost: ${host}\r\n${auth}Content-Type: application/json\r\nTransfer-Encoding: gzip\r\n\r\n{"value":"hostile"`;
    case "duplicate-host":
      return `GET /v1/kv/nemesis-hostile HTTP/1.1\r\nHost: ${host}\r\nHost: ${host}\r\n${auth}\r\n`;
    case "trickled-headers":
      return `GET /v1/kv/nemesis-hostile HTTP/1.1\r\nHost: ${host}\r\nX-Slow: `;
    case "silent":
      return "";
  }
}

/**
 * Open one hostile connection of `kind` to `endpoint` (http://host:port) from `localAddress`, and
 * record what came back until the replica closes it or `deadlineMs` passes (default
 * {@link probeDeadlineMs}). The probe
 * never closes its own side first (no FIN), so every close it sees is the replica's.
 */
export function probe(
  kind: ProbeKind,
  endpoint: string,
  token: string,
  localAddress: string | undefined,
  deadlineMs = probeDeadlineMs(kind),
): Promise<ProbeResult> {
  const url = new URL(endpoint);
  const started = performance.now();
  return new Promise((resolve) => {
    let answer = "";
    let answeredMs: number | null = null;
    let connected = false;
    let finished = false;
    const socket = net.connect({
      host: url.hostname,
      port: Number(url.port),
      allowHalfOpen: true,
      ...(localAddress === undefined ? {} : { localAddress }),
    });
    const finish = (closed: boolean, lost: boolean): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      clearInterval(trickle);
      socket.destroy();
      const line = /^HTTP\/1\.1 (\d{3})/.exec(answer);
      resolve({
        kind,
        status: line === null ? null : Number(line[1]),
        connectionClose: /\r\nConnection: close\r\n/i.test(answer),
        answeredMs,
        closedMs: closed ? Math.round(performance.now() - started) : null,
        lost: lost || !connected,
      });
    };
    const timer = setTimeout(() => finish(false, false), deadlineMs);
    const trickle = setInterval(() => {
      if (kind === "trickled-headers" && connected && socket.writable) socket.write("a");
    }, 300);
    socket.on("connect", () => {
      connected = true;
      const first = opening(kind, url.host, token);
      if (first !== "") socket.write(Buffer.from(first, "latin1"));
    });
    socket.on("data", (chunk: Buffer) => {
      answeredMs ??= Math.round(performance.now() - started);
      if (answer.length < 4096) answer += chunk.toString("latin1");
    });
    socket.on("end", () => finish(true, false));
    socket.on("error", () => finish(true, answer === ""));
    socket.on("close", () => finish(true, answer === ""));
  });
}

/** What {@link holdPerAddress} saw. */
export interface PerAddressResult {
  /** Connections that stayed open while the bound was full (at most the bound). */
  readonly held: number;
  /** Connections past the bound that the replica closed before any byte of an answer. */
  readonly refused: number;
  /** Connections past the bound that stayed open (a replica that ignored its bound). */
  readonly keptPastBound: number;
  /** Connections that could not be opened at all. */
  readonly failed: number;
}

/**
 * `bound` + `extra` connections from `localAddress` to `endpoint`, opened in batches; the replica
 * must keep `bound` of them and close every one past it as it arrives
 * (`--http-connections-per-address-max`). They are held until every one past the bound was closed,
 * at most `holdMs` after the last opened, then closed.
 */
export async function holdPerAddress(
  endpoint: string,
  localAddress: string,
  bound: number,
  extra: number,
  holdMs: number,
  stopping: () => boolean,
): Promise<PerAddressResult> {
  const url = new URL(endpoint);
  const sockets: net.Socket[] = [];
  const closed = new Set<net.Socket>();
  let failed = 0;
  const open = (): Promise<void> =>
    new Promise((resolve) => {
      const socket = net.connect({ host: url.hostname, port: Number(url.port), localAddress, allowHalfOpen: true });
      sockets.push(socket);
      socket.on("error", () => undefined);
      socket.once("close", () => closed.add(socket));
      socket.once("end", () => closed.add(socket));
      socket.once("connect", () => resolve());
      socket.once("error", () => {
        failed += 1;
        resolve();
      });
    });
  try {
    for (let opened = 0; opened < bound + extra && !stopping();) {
      const batch = Math.min(64, bound + extra - opened);
      await Promise.all(Array.from({ length: batch }, open));
      opened += batch;
    }
    // The kernel completes a connection before the replica's loop takes it (a busy or newly elected
    // leader may take a while): wait, within `holdMs`, until every one past the bound was closed.
    const first = sockets.slice(0, bound);
    const past = sockets.slice(bound);
    const deadline = performance.now() + holdMs;
    while (performance.now() < deadline && past.some((s) => !closed.has(s)))
      await new Promise((resolve) => setTimeout(resolve, 50));
    return {
      held: first.filter((s) => !closed.has(s)).length,
      refused: past.filter((s) => closed.has(s)).length,
      keptPastBound: past.filter((s) => !closed.has(s)).length,
      failed,
    };
  } finally {
    for (const socket of sockets) socket.destroy();
  }
}

/** One sample of who leads, and whether the harness was quiet (no other fault or change in force, settled). */
export interface LeaderSample {
  readonly at: number;
  readonly leader: number | null;
  readonly ballot: string | null;
  readonly quiet: boolean;
}

/**
 * The leadership changes between two consecutive quiet samples (another replica, another ballot,
 * or none): with no other fault in force, nothing but the hostile connections could have caused them.
 */
export function leadershipChangesWhenQuiet(samples: readonly LeaderSample[]): string[] {
  const changes: string[] = [];
  for (let i = 1; i < samples.length; i++) {
    const [a, b] = [samples[i - 1]!, samples[i]!];
    if (!a.quiet || !b.quiet || a.leader === null) continue;
    if (b.leader !== a.leader || b.ballot !== a.ballot)
      changes.push(
        `r${a.leader} in ${a.ballot ?? "?"} led at ${Math.round(a.at)} ms, ${b.leader === null ? "nobody" : `r${b.leader} in ${b.ballot ?? "?"}`} at ${Math.round(b.at)} ms`,
      );
  }
  return changes;
}

/**
 * The honest clients' operations whose whole time to complete (`deadlineMs` from invocation, the
 * workload's write deadline) lies inside a quiet window, and which did not complete ok.
 */
export function honestOpsNotCompleted(
  ops: readonly RecordedOp[],
  quiet: readonly (readonly [number, number])[],
  deadlineMs: number,
): RecordedOp[] {
  return ops.filter(
    (op) => op.outcome !== "ok" && quiet.some(([from, to]) => op.invoke >= from && op.invoke + deadlineMs <= to),
  );
}

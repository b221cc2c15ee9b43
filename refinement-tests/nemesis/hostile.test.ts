/**
 * The hostile-clients fault's checks (hostile.ts), each shown to catch what it is for: a replica
 * that answers a hostile connection otherwise than documented (here a stand-in that answers 200 to
 * everything and never closes, and one that ignores its per-address bound), a leadership change with
 * no other fault in force, and an honest operation left unknown. The real runs are
 * `npm run nemesis` (every default schedule draws hostile-clients) and docs/nemesis.md's.
 */
import net from "node:net";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  holdPerAddress,
  honestOpsNotCompleted,
  judgeProbe,
  leadershipChangesWhenQuiet,
  probe,
  type ProbeResult,
} from "./hostile.ts";
import type { RecordedOp } from "./workload.ts";

const documented = (over: Partial<ProbeResult>): ProbeResult => ({
  kind: "duplicate-host",
  status: 400,
  connectionClose: false,
  answeredMs: 5,
  closedMs: null,
  lost: false,
  ...over,
});

describe("judgeProbe", () => {
  it("takes the documented answers, and a connection another fault cut short", () => {
    expect(judgeProbe(documented({}), true)).toBe("documented");
    expect(judgeProbe(documented({ kind: "garbage", closedMs: 2100 }), true)).toBe("documented");
    expect(
      judgeProbe(documented({ kind: "too-many-headers", status: 431, connectionClose: true, closedMs: 10 }), true),
    ).toBe("documented");
    expect(judgeProbe(documented({ kind: "silent", status: 408, closedMs: 10_900 }), true)).toBe("documented");
    // A replica killed or stopped by another fault: no answer, no verdict.
    expect(judgeProbe(documented({ kind: "garbage", status: null, lost: true }), false)).toBe("cut short");
    expect(judgeProbe(documented({ kind: "silent", status: null, closedMs: null }), false)).toBe("cut short");
  });

  it("flags a wrong answer always, and a missing or late one or a connection kept open when quiet", () => {
    const violation = (verdict: ReturnType<typeof judgeProbe>): string =>
      typeof verdict === "string" ? `not a violation: ${verdict}` : verdict.violation;
    expect(violation(judgeProbe(documented({ status: 200 }), false))).toMatch(
      /duplicate-host: answered 200, documented 400/,
    );
    expect(
      violation(judgeProbe(documented({ kind: "too-many-headers", status: 431, connectionClose: false }), true)),
    ).toMatch(/without Connection: close/);
    expect(violation(judgeProbe(documented({ kind: "trickled-headers", status: null }), true))).toMatch(
      /no answer within/,
    );
    expect(violation(judgeProbe(documented({ kind: "garbage", closedMs: null }), true))).toMatch(/still open/);
    expect(violation(judgeProbe(documented({ kind: "silent", status: 408, closedMs: 16_000 }), true))).toMatch(
      /still open/,
    );
  });
});

describe("against a broken stand-in replica", () => {
  // Answers 200 to whatever arrives and never closes a connection, and takes any number of them.
  const sockets: net.Socket[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.push(socket);
    socket.on("error", () => undefined);
    socket.once("data", () => socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"));
  });
  let endpoint = "";
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });

  it("a 200 to two Host headers and to bytes that are not HTTP is a violation", async () => {
    for (const kind of ["duplicate-host", "garbage"] as const) {
      const result = await probe(kind, endpoint, "token", "127.0.0.3", 300);
      expect(result.status).toBe(200);
      expect(judgeProbe(result, true)).toEqual({ violation: `${kind}: answered 200, documented 400` });
    }
  });

  it("connections past the per-address bound kept open are counted", async () => {
    const held = await holdPerAddress(endpoint, "127.0.0.2", 4, 3, 200, () => false);
    expect(held).toEqual({ held: 4, refused: 0, keptPastBound: 3, failed: 0 });
  });
});

describe("the hostile-clients fault's other checks", () => {
  it("a leadership change between two quiet samples, and none across a fault", () => {
    const sample = (at: number, leader: number | null, ballot: string | null, quiet: boolean) => ({
      at,
      leader,
      ballot,
      quiet,
    });
    expect(
      leadershipChangesWhenQuiet([
        sample(0, 1, "(3,1)", true),
        sample(250, 1, "(3,1)", true),
        // A kill of the leader by another fault: not the hostile connections' doing.
        sample(500, 2, "(4,2)", false),
        sample(750, 2, "(4,2)", true),
      ]),
    ).toEqual([]);
    expect(
      leadershipChangesWhenQuiet([
        sample(0, 1, "(3,1)", true),
        sample(250, 1, "(5,1)", true),
        sample(500, null, null, true),
      ]),
    ).toEqual(["r1 in (3,1) led at 0 ms, r1 in (5,1) at 250 ms", "r1 in (5,1) led at 250 ms, nobody at 500 ms"]);
  });

  it("an honest operation whose whole deadline lay in a quiet window and that did not complete ok", () => {
    const op = (invoke: number, outcome: RecordedOp["outcome"]): RecordedOp => ({
      client: "c1",
      input: { _tag: "get", key: "r0" },
      invoke,
      outcome,
      attempts: 1,
    });
    const ops = [op(1000, "ok"), op(1500, "unknown"), op(2000, "fail"), op(9500, "unknown")];
    // Quiet 0..10000: the op at 9500 may have met the fault that followed.
    expect(honestOpsNotCompleted(ops, [[0, 10_000]], 7000).map((o) => o.invoke)).toEqual([1500, 2000]);
    expect(honestOpsNotCompleted(ops, [], 7000)).toEqual([]);
  });
});

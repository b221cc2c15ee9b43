/**
 * The command line's argument handling: addresses and peer lists parse or are refused with a
 * message naming the problem, and bad flags exit with the usage code instead of a stack trace.
 */
import { spawnSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import http, { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { applyChange, showChange, type Configuration } from "../core/configuration.ts";
import { buildProgram, exitUsage, main, parseAddress, parseIds, parsePeers } from "./cli.ts";
import { createHttpServer } from "./http-api.ts";
import { createToken, TokenStore } from "./tokens.ts";
import { cliArgv } from "./program.ts";
import { apiOptions, freePorts } from "./testing.ts";

function parseErrors(argv: string[]): string {
  const program = buildProgram();
  let output = "";
  const capture = (command: ReturnType<typeof buildProgram>): void => {
    command.configureOutput({ writeErr: (text) => (output += text), writeOut: (text) => (output += text) });
    for (const sub of command.commands) capture(sub);
  };
  capture(program);
  try {
    program.parse(argv, { from: "user" });
  } catch {
    // exitOverride throws CommanderError after writing the message.
  }
  return output;
}

describe("cli arguments", () => {
  it("parses HOST:PORT and [v6]:PORT, refusing everything else", () => {
    expect(parseAddress("127.0.0.1:7001")).toEqual({ host: "127.0.0.1", port: 7001 });
    expect(parseAddress("[::1]:8001")).toEqual({ host: "::1", port: 8001 });
    expect(parseAddress("db-1.example:80")).toEqual({ host: "db-1.example", port: 80 });
    for (const bad of ["127.0.0.1", ":80", "host:0", "host:70000", "host:port", "a b:1"])
      expect(() => parseAddress(bad), bad).toThrow(/HOST:PORT|port/);
  });

  it("parses peer lists and refuses duplicates and junk", () => {
    expect([...parsePeers("1=a:1,2=b:2, 3=c:3").entries()]).toEqual([
      [1, { host: "a", port: 1 }],
      [2, { host: "b", port: 2 }],
      [3, { host: "c", port: 3 }],
    ]);
    expect(() => parsePeers("1=a:1,1=b:2")).toThrow(/listed twice/);
    expect(() => parsePeers("a:1")).toThrow(/not ID=HOST:PORT/);
    expect(() => parsePeers("")).toThrow(/empty/);
    expect(() => parsePeers("0=a:1")).toThrow(/integer in/);
  });

  it("names the bad flag or missing argument", () => {
    expect(parseErrors(["replica", "--id", "x"])).toMatch(
      /option '--id <n>' argument 'x' is invalid. expected an integer/,
    );
    expect(parseErrors(["replica", "--id", "1"])).toMatch(/required option '--peers <list>' not specified/);
    expect(parseErrors(["cluster", "start", "--replicas", "9"])).toMatch(/expected an integer in \[1, 7\]/);
    expect(parseErrors(["put"])).toMatch(/missing required argument .key./);
    expect(parseErrors(["get", "k", "--endpoints", "http://["])).toMatch(/is not a URL or HOST:PORT/);
    expect(parseErrors(["frobnicate"])).toMatch(/unknown command 'frobnicate'/);
    expect(parseErrors(["replica", "--id", "1", "--request-small-bytes-reserve", "2000000000"])).toMatch(
      /option '--request-small-bytes-reserve <bytes>' argument '2000000000' is invalid. expected an integer in \[0, 1073741824\]/,
    );
    expect(parseErrors(["get", "--help"])).toMatch(/--stale/);
  });

  it("refuses bad membership flags, naming them", () => {
    expect(parseErrors(["members", "add"])).toMatch(/required option '--id <n>' not specified/);
    expect(parseErrors(["members", "add", "--id", "four"])).toMatch(
      /option '--id <n>' argument 'four' is invalid. expected an integer/,
    );
    expect(parseErrors(["members", "remove", "--id", "0"])).toMatch(/expected an integer in \[1, 1000000\], got 0/);
    expect(parseErrors(["members", "replace", "--id", "5"])).toMatch(/required option '--old <n>' not specified/);
    expect(parseErrors(["members", "grow"])).toMatch(/too many arguments for 'show'|unknown command 'grow'/);
    expect(parseErrors(["members", "--help"])).toMatch(
      /add \[options\][\s\S]*remove \[options\][\s\S]*replace \[options\]/,
    );
    expect(parseErrors(["members", "replace", "--help"])).toMatch(/--old <n>/);
    expect(parseErrors(["replica", "--initial-members", "1,1", "--id", "4"])).toMatch(/an id is listed twice/);
  });

  it("refuses inconsistent --join and peer-bound flags before starting anything, exit code 2", async () => {
    const base = [
      "replica",
      "--id",
      "4",
      "--peers",
      "1=127.0.0.1:1,4=127.0.0.1:4",
      "--http",
      "127.0.0.1:1",
      "--data",
      "/nonexistent",
      "--cluster-id",
      "c",
      "--tokens-file",
      "/nonexistent/tokens.json",
    ];
    const cases: [string[], RegExp][] = [
      [["--join"], /--join needs --initial-members/],
      [
        ["--initial-members", "1,2,3"],
        /--id 4 is not one of --initial-members \(1,2,3\): a replica that was not an initial member runs with --join/,
      ],
      [["--join", "--initial-members", "1,4"], /--id 4 is one of --initial-members/],
      [
        ["--peer-reserved-slots", "64"],
        /--peer-reserved-slots 64 must be fewer than --peer-handshakes-max 64: the reserved slots are part of them/,
      ],
      [
        ["--peer-handshakes-max", "4", "--peer-reserved-slots", "2", "--peer-source-handshakes-max", "5"],
        /--peer-source-handshakes-max 5 exceeds --peer-handshakes-max 4/,
      ],
      [
        ["--http-connections-max", "8", "--http-connections-per-address-max", "9"],
        /--http-connections-per-address-max 9 exceeds --http-connections-max 8: one address cannot hold more than all/,
      ],
      [
        ["--http-connections-per-address-max", "0"],
        /'--http-connections-per-address-max <n>' argument '0' is invalid. expected an integer in \[1, 1000000\]/,
      ],
      [
        ["--http-connections-per-address-max", "-2"],
        /'--http-connections-per-address-max <n>' argument '-2' is invalid. expected an integer, got "-2"/,
      ],
      [
        ["--http-connections-per-address-max", "2.5"],
        /'--http-connections-per-address-max <n>' argument '2.5' is invalid. expected an integer, got "2.5"/,
      ],
      [
        ["--peer-source-rate", "0"],
        /option '--peer-source-rate <n>' argument '0' is invalid. expected an integer in \[1, 100000\], got 0/,
      ],
      [
        ["--peer-source-burst", "-1"],
        /option '--peer-source-burst <n>' argument '-1' is invalid. expected an integer, got "-1"/,
      ],
      [
        ["--peer-handshake-timeout-ms", "10"],
        /'--peer-handshake-timeout-ms <ms>' argument '10' is invalid. expected an integer in \[100, 600000\]/,
      ],
      [
        ["--peer-log-interval-ms", "1e4"],
        /'--peer-log-interval-ms <ms>' argument '1e4' is invalid. expected an integer, got "1e4"/,
      ],
    ];
    for (const [extra, expected] of cases) {
      let written = "";
      const spy = vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
        written += String(chunk);
        return true;
      });
      try {
        process.exitCode = undefined;
        await main([...base, ...extra]);
        expect(written, extra.join(" ")).toMatch(expected);
        expect(process.exitCode).toBe(exitUsage);
      } finally {
        spy.mockRestore();
        process.exitCode = undefined;
      }
    }
  });

  it("refuses to start a replica whose tokens file is missing, saying so in one line, exit code 2", () => {
    const dir = mkdtempSync(join(tmpdir(), "cli-no-tokens-"));
    const tokensFile = join(dir, "tokens.json");
    const secretFile = join(dir, "secret");
    writeFileSync(secretFile, "a-secret-of-enough-length\n");
    const r = spawnSync(
      process.execPath,
      [
        ...cliArgv(),
        "replica",
        "--id",
        "1",
        "--peers",
        "1=127.0.0.1:1",
        "--http",
        "127.0.0.1:1",
        "--data",
        join(dir, "data"),
        "--init",
        "--cluster-id",
        "c",
        "--secret-file",
        secretFile,
        "--tokens-file",
        tokensFile,
      ],
      { encoding: "utf8" },
    );
    expect(r.status, r.stderr).toBe(exitUsage);
    expect(r.stderr).toBe(
      `paxos-lease replica 1: refusing to start: cannot read the tokens file ${tokensFile}: it does not exist\n`,
    );
  });

  it("parses id lists", () => {
    expect(parseIds("1, 2,3")).toEqual([1, 2, 3]);
    expect(() => parseIds("")).toThrow(/empty/);
    expect(() => parseIds("1,x")).toThrow(/expected an integer/);
  });
});

/** Run the CLI in this process, capturing stdout and stderr. */
async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const out = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  const err = vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  try {
    process.exitCode = undefined;
    await main(argv);
    return { code: process.exitCode ?? 0, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
    process.exitCode = undefined;
  }
}

describe("paxos-lease tokens", () => {
  it("creates a token shown once, lists it without the token, and revokes it", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "cli-tokens-")), "tokens.json");
    const created = await run(["tokens", "create", "--role", "write", "--name", "ci", "--tokens-file", file]);
    expect(created.code, created.stderr).toBe(0);
    const token = created.stdout.trim();
    expect(token).toMatch(/^plt_[0-9a-f]{8}_/);
    const id = token.slice(4, 12);
    expect(created.stderr).toMatch(new RegExp(`created token ${id} \\(role write\\) in .*shown only now`));
    const listed = await run(["tokens", "list", "--tokens-file", file]);
    expect(listed.stdout).toMatch(new RegExp(`^ID +ROLE +CREATED +NAME\n${id} +write +\\S+ +ci\n$`));
    expect(listed.stdout).not.toContain(token.slice(13));
    const json = await run(["tokens", "list", "--tokens-file", file, "--json"]);
    expect(JSON.parse(json.stdout)).toEqual([
      { id, role: "write", name: "ci", created: expect.any(String) as unknown },
    ]);
    expect((await run(["tokens", "revoke", "--id", id, "--tokens-file", file])).stderr).toBe(
      `revoked token ${id} (role write, ci)\n`,
    );
    const again = await run(["tokens", "revoke", "--id", id, "--tokens-file", file]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^error: no token .* in .*; 'paxos-lease tokens list' shows the ids\n$/);
    expect(parseErrors(["tokens", "create", "--role", "root"])).toMatch(/Allowed choices are read, write, admin/);
  });

  it("takes the global options before or after the command", () => {
    for (const argv of [
      ["--endpoints", "a:1", "--token", "t", "get", "k"],
      ["get", "k", "--endpoints", "a:1", "--token", "t"],
      ["members", "add", "--id", "4", "--token", "t", "--endpoints", "a:1"],
      ["--json", "members", "--endpoints", "a:1", "--token", "t", "show"],
    ]) {
      const program = buildProgram();
      let seen: Record<string, unknown> = {};
      const capture = (command: ReturnType<typeof buildProgram>): void => {
        for (const sub of command.commands) {
          sub.action((...args: unknown[]) => {
            seen = (args.at(-1) as ReturnType<typeof buildProgram>).optsWithGlobals();
          });
          capture(sub);
        }
      };
      capture(program);
      program.parse(argv, { from: "user" });
      expect(seen, argv.join(" ")).toMatchObject({ endpoints: ["http://a:1"], token: "t" });
    }
  });
});

describe("paxos-lease certs", () => {
  it("makes a CA once and issues replica certificates it signed, refusing another cluster's", async () => {
    const dir = join(mkdtempSync(join(tmpdir(), "cli-certs-")), "certs");
    const init = await run(["certs", "init", "--cluster-id", "prod", "--dir", dir]);
    expect(init.code, init.stderr).toBe(0);
    expect(init.stderr).toMatch(/^made the CA of cluster prod: .*ca\.crt \(certificate\) and .*ca\.key/);
    const issued = await run([
      "certs",
      "issue",
      "--cluster-id",
      "prod",
      "--id",
      "2",
      "--host",
      "kv2.example,10.0.0.2",
      "--dir",
      dir,
    ]);
    expect(issued.code, issued.stderr).toBe(0);
    expect(issued.stderr).toMatch(
      /^issued replica 2's certificate for kv2\.example, 10\.0\.0\.2: .*replica-2\.crt and .*replica-2\.key\n$/,
    );
    const cert = new X509Certificate(readFileSync(join(dir, "replica-2.crt")));
    expect(cert.checkIssued(new X509Certificate(readFileSync(join(dir, "ca.crt"))))).toBe(true);
    expect(cert.subjectAltName).toBe("DNS:kv2.example, IP Address:10.0.0.2, URI:paxos-lease://prod/replica/2");
    const again = await run(["certs", "init", "--cluster-id", "prod", "--dir", dir]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^error: .*ca\.crt exists already; move it away first to make a new one\n$/);
    const other = await run(["certs", "issue", "--cluster-id", "test", "--id", "1", "--host", "a", "--dir", dir]);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/^error: the CA in .* is not the one of cluster test/);
    const none = await run([
      "certs",
      "issue",
      "--cluster-id",
      "prod",
      "--id",
      "1",
      "--host",
      "a",
      "--dir",
      join(dir, "nothing"),
    ]);
    expect(none.stderr).toMatch(
      /^error: cannot read the certificate authority in .*nothing .*; make one with 'paxos-lease certs init'\n$/,
    );
    expect(parseErrors(["certs", "issue", "--cluster-id", "prod", "--id", "1"])).toMatch(
      /required option '--host <names>' not specified/,
    );
  });
});

describe("paxos-lease put and append --value-file", () => {
  it("sends a file's text exactly, one too long for a command line, and refuses VALUE and the file together", async () => {
    const bodies: unknown[] = [];
    const server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (c: Buffer) => chunks.push(c));
      request.on("end", () => {
        bodies.push(JSON.parse(Buffer.concat(chunks).toString("utf8")));
        response.writeHead(200, { "Content-Type": "application/json" });
        response.end(JSON.stringify({ key: "k", ok: true, value: "whole" }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const dir = mkdtempSync(join(tmpdir(), "cli-value-file-"));
    // 1 MiB of UTF-8 with a final newline: far past the 128 KiB the kernel allows one argument.
    const text = `${"\u20ac".repeat(349_525)}\n`;
    writeFileSync(join(dir, "value.txt"), text);
    writeFileSync(join(dir, "latin1.txt"), Buffer.from([0x63, 0x61, 0x66, 0xe9]));
    const client = ["--endpoints", endpoint, "--token", "t"];
    try {
      expect(await run(["put", "k", "--value-file", join(dir, "value.txt"), ...client])).toMatchObject({ code: 0 });
      expect(await run(["append", "k", "--value-file", join(dir, "value.txt"), ...client])).toMatchObject({ code: 0 });
      expect(bodies).toEqual([{ value: text }, { op: "append", value: text }]);
      for (const args of [
        ["put", "k", "v", "--value-file", join(dir, "value.txt")],
        ["append", "k"],
      ]) {
        const refused = await run([...args, ...client]);
        expect(refused.code).toBe(exitUsage);
        expect(refused.stderr).toMatch(/^error: (put|append) needs exactly one of VALUE or --value-file FILE\n/);
      }
      const latin1 = await run(["put", "k", "--value-file", join(dir, "latin1.txt"), ...client]);
      expect(latin1.stderr).toMatch(/--value-file .*latin1\.txt is not UTF-8 text/);
      const missing = await run(["put", "k", "--value-file", join(dir, "none.txt"), ...client]);
      expect(missing.stderr).toMatch(/cannot read --value-file .*none\.txt: it does not exist/);
      expect(bodies.length).toBe(2);
    } finally {
      server.close();
    }
  });
});

describe("paxos-lease status", () => {
  it("shows an unreachable replica in its row, its reason last, without widening the columns", async () => {
    const server = createServer((_request, response) => {
      response.writeHead(200, { "Content-Type": "application/json" });
      response.end(
        JSON.stringify({
          replica: 1,
          role: "leader",
          halted: null,
          leader: 1,
          ballot: "(1,1)",
          executedSlot: 3,
          peers: [],
        }),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const [closed] = await freePorts(1);
    const up = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const down = `http://127.0.0.1:${closed}`;
    try {
      const shown = await run(["status", "--endpoints", `${up},${down}`, "--token", "t"]);
      expect(shown.code).toBe(0);
      const [header, reachable, unreachable] = shown.stdout.trimEnd().split("\n");
      expect(unreachable).toMatch(
        new RegExp(`^${down} +- +unreachable +connect ECONNREFUSED 127\\.0\\.0\\.1:${closed}$`),
      );
      // The columns after ROLE start where the header's do.
      expect(reachable!.slice(header!.indexOf("LEADER"))).toMatch(/^1 +\(1,1\) /);
      expect(header!.indexOf("LEADER")).toBe(header!.indexOf("ROLE") + "unreachable  ".length);
    } finally {
      server.close();
    }
  });
});

describe("paxos-lease members", () => {
  /** A stand-in leader whose POST /v1/members always answers `answer`. */
  async function standIn(answer: {
    status: number;
    body: Record<string, unknown>;
  }): Promise<{ url: string; posts: () => number; close: () => void }> {
    let posts = 0;
    const server = createServer((request, response) => {
      const json = (status: number, body: unknown): void => {
        response.writeHead(status, { "Content-Type": "application/json" });
        response.end(JSON.stringify(body));
      };
      if (request.method === "GET")
        return json(200, {
          replica: 1,
          role: "leader",
          leader: 1,
          leaderHttp: null,
          executedSlot: 9,
          alpha: 4,
          initialMembers: [1, 2, 3],
          inForce: { epoch: 0, governsFrom: 1, voters: [1, 2, 3], learners: [] },
          pending: [],
          replicas: [],
        });
      posts += 1;
      request.resume();
      request.on("end", () => json(answer.status, answer.body));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    return { url: `http://127.0.0.1:${port}`, posts: () => posts, close: () => server.close() };
  }

  it("fails fast, saying once what is wrong, when the replica to add is not running", async () => {
    const leader = await standIn({
      status: 409,
      body: { code: "unknown-replica", message: "replica 4 has not connected to replica 1 (the leader)" },
    });
    try {
      const added = await run(["members", "add", "--id", "4", "--endpoints", leader.url, "--token", "t"]);
      expect(added.code).toBe(1);
      const lines = added.stderr.trim().split("\n");
      expect(lines).toEqual([
        "waiting up to 3 s for replica 4 to connect to the leader",
        `error: unknown-replica: replica 4 has not connected to replica 1 (the leader) (from ${leader.url})`,
      ]);
      // Asked about every half second while it waited, not for longer.
      expect(leader.posts()).toBeLessThanOrEqual(8);
    } finally {
      leader.close();
    }
  });

  /**
   * Two replicas with the real HTTP API: the leader (1), whose configuration the core's
   * `applyChange` changes, and replica 2, which lags: it has not executed the change that made 4
   * a voter, does not know where the leader serves clients, and redirects changes to it (307).
   */
  async function staleAndLeader(): Promise<{
    stale: string;
    token: string;
    asked: () => string[];
    close: () => Promise<void>;
  }> {
    const dir = mkdtempSync(join(tmpdir(), "cli-replace-"));
    const file = join(dir, "tokens.json");
    const token = createToken(file, "admin", "ops").token;
    const store = new TokenStore(file, { reloadMs: 0 });
    let config: Configuration = {
      epoch: 40,
      governsFrom: 44,
      voters: [1, 2, 3, 4],
      learners: [],
      retired: [],
      addresses: [],
    };
    const asked: string[] = [];
    const shown = (c: Pick<Configuration, "voters" | "learners">, replica: number, leaderHttp: string | null) => ({
      replica,
      role: replica === 1 ? "leader" : "follower",
      leader: 1,
      leaderHttp,
      executedSlot: 50,
      alpha: 4,
      initialMembers: [1, 2, 3],
      inForce: { epoch: 0, governsFrom: 1, ...c },
      pending: [],
      replicas: [],
      spares: [],
    });
    const servers: http.Server[] = [];
    let leaderHttp = "";
    for (const replica of [1, 2]) {
      const server = createHttpServer(
        apiOptions({
          access: { authenticate: (authorization) => store.authenticate(authorization), hostAllowed: () => true },
          replicaId: replica,
          httpAddressOf: (id) => (id === 1 ? leaderHttp : null),
          members: {
            show: () =>
              replica === 1 ? shown(config, 1, leaderHttp) : shown({ voters: [1, 2, 3], learners: [] }, 2, null),
            precheck: () => null,
            addressOf: () => null,
            memberAddresses: () => [],
            reconfigure: (change) => {
              if (replica !== 1) return Promise.resolve({ _tag: "redirect", leader: 1 });
              asked.push(showChange(change));
              const next = applyChange(config, change);
              if (typeof next === "string") return Promise.resolve({ _tag: "refused", reason: next });
              config = { ...next, epoch: config.epoch + 1, governsFrom: config.epoch + 5 };
              return Promise.resolve({ _tag: "reconfigured", ...config });
            },
          },
        }),
      );
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      servers.push(server);
      if (replica === 1) leaderHttp = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    }
    return {
      stale: `http://127.0.0.1:${(servers[1]!.address() as AddressInfo).port}`,
      token,
      asked: () => asked,
      close: () => Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve)))).then(() => undefined),
    };
  }

  it("replace asks the leader, not a lagging replica, whether --old is a voter", async () => {
    const cluster = await staleAndLeader();
    try {
      // Replica 2 does not list 4 as a voter yet; the leader does, and makes the change.
      const replaced = await run([
        "members",
        "replace",
        "--old",
        "4",
        "--id",
        "5",
        "--peer-address",
        "h5:7005",
        "--endpoints",
        cluster.stale,
        "--token",
        cluster.token,
      ]);
      expect(replaced.stderr).not.toMatch(/error/);
      expect(replaced.code).toBe(0);
      expect(replaced.stdout).toMatch(
        /replica 4 replaced by 5: chosen at slot 42, the configuration voters=1,2,3,5 governs/,
      );
      // Asked first (5 was no learner yet), then added, then asked again.
      expect(cluster.asked()).toEqual(["replace 4 by 5", "add 5 at h5:7005", "replace 4 by 5"]);
      // A replace whose --old the leader does not list is refused by the leader, and nothing is added.
      const wrong = await run([
        "members",
        "replace",
        "--old",
        "4",
        "--id",
        "6",
        "--peer-address",
        "h6:7006",
        "--endpoints",
        cluster.stale,
        "--token",
        cluster.token,
      ]);
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).toMatch(
        /^error: refused: replica 4 is not a voter; nothing was changed: replica 6 was not added \(from http:\/\/127\.0\.0\.1:\d+\)\n$/,
      );
      expect(cluster.asked().slice(3)).toEqual(["replace 4 by 6"]);
    } finally {
      await cluster.close();
    }
  });

  it("says in one line that no replica answers when the cluster is not running", async () => {
    const [port] = await freePorts(1);
    const shown = await run(["members", "--endpoints", `127.0.0.1:${port!}`, "--token", "t", "--timeout-ms", "2000"]);
    expect(shown.code).not.toBe(0);
    expect(shown.stderr).toBe(
      `error: no replica answered at http://127.0.0.1:${port!}: is the cluster running, and are --endpoints (or $PAXOS_LEASE_ENDPOINTS) its client addresses?\n`,
    );
  });

  it("gives up at once, in one line naming each endpoint, when every endpoint refuses", async () => {
    const [a, b] = await freePorts(2);
    // A deadline far past the test's timeout: waiting for it would fail the test.
    const shown = await run([
      "get",
      "k",
      "--endpoints",
      `127.0.0.1:${a!},127.0.0.1:${b!}`,
      "--token",
      "t",
      "--timeout-ms",
      "600000",
    ]);
    expect(shown.code).toBe(4);
    expect(shown.stderr).toBe(
      `error: no replica reachable: http://127.0.0.1:${a!} (connect ECONNREFUSED 127.0.0.1:${a!}), http://127.0.0.1:${b!} (connect ECONNREFUSED 127.0.0.1:${b!}): is the cluster running, and are --endpoints (or $PAXOS_LEASE_ENDPOINTS) its client addresses?\n`,
    );
  });
});

describe("paxos-lease check-history", () => {
  const dir = mkdtempSync(join(tmpdir(), "cli-history-"));
  const history = (value: string | null): string => {
    const file = join(dir, `read-${value ?? "null"}.json`);
    const operations = [
      {
        client: "a",
        input: { _tag: "put", key: "x", value: "1" },
        invoke: 0,
        outcome: "ok",
        complete: 1,
        output: { _tag: "ok" },
      },
      {
        client: "b",
        input: { _tag: "get", key: "x" },
        invoke: 2,
        outcome: "ok",
        complete: 3,
        output: { _tag: "value", value },
      },
    ];
    writeFileSync(file, JSON.stringify({ format: "paxos-lease/history@1", operations }));
    return file;
  };
  const run = (args: string[]): { status: number; stdout: string; stderr: string } => {
    const r = spawnSync(process.execPath, [...cliArgv(), "check-history", ...args], { encoding: "utf8" });
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  };

  it("runs the linearizability checker and passes on its verdict as the exit status", () => {
    const good = run([history("1")]);
    expect(good.status, good.stderr).toBe(0);
    expect(good.stdout).toMatch(/: linearizable \(model kv; 2 operations/);
    const stale = run([history(null), "--json"]);
    expect(stale.status, stale.stderr).toBe(1);
    expect(JSON.parse(stale.stdout)).toMatchObject({ verdict: "not-linearizable" });
  });

  it("refuses a bad model before starting the checker", () => {
    expect(parseErrors(["check-history", "h.json", "--model", "queue"])).toMatch(/--model.*queue.*kv, register/s);
  });
});

/**
 * The tokens file and the token store: tokens are stored hashed, shown once, checked in
 * constant time, revoked within a reload interval, and a damaged or missing file accepts no
 * token at all. Also the host and origin normalization the browser checks rely on, and the
 * log limiter that keeps refusals from flooding the log.
 */
import fs from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { normalizeHost, normalizeOrigin, roleAllows } from "./access.ts";
import { LogLimiter } from "./log-limiter.ts";
import { tempDir } from "./testing.ts";
import {
  bearerOf,
  createToken,
  readTokensFile,
  revokeToken,
  TokensFileError,
  TokenStore,
  writeTokensFile,
} from "./tokens.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function tokensFile(): string {
  const dir = tempDir("tokens");
  dirs.push(dir);
  return path.join(dir, "tokens.json");
}

describe("tokens file", () => {
  it("keeps only a hash of each token, in a file only its owner can read", () => {
    const file = tokensFile();
    const { token, entry } = createToken(file, "write", "ci deploy");
    expect(token).toMatch(/^plt_[0-9a-f]{8}_[A-Za-z0-9_-]{43}$/);
    expect(token.startsWith(`plt_${entry.id}_`)).toBe(true);
    const text = fs.readFileSync(file, "utf8");
    expect(text).not.toContain(token.slice(13));
    expect(text).toContain(entry.sha256);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(readTokensFile(file)).toEqual([entry]);
  });

  it("lists, revokes, and refuses to revoke what is not there", () => {
    const file = tokensFile();
    const a = createToken(file, "admin", "a").entry;
    const b = createToken(file, "read", "b").entry;
    expect(readTokensFile(file).map((e) => e.id)).toEqual([a.id, b.id]);
    expect(revokeToken(file, a.id)).toEqual(a);
    expect(readTokensFile(file)).toEqual([b]);
    expect(() => revokeToken(file, a.id)).toThrow(/no token "[0-9a-f]{8}" in .*tokens list/);
  });

  it("names what is wrong with a file in one sentence", () => {
    const file = tokensFile();
    expect(() => readTokensFile(file)).toThrow(/^cannot read the tokens file .*: it does not exist$/);
    fs.writeFileSync(file, "{");
    expect(() => readTokensFile(file)).toThrow(/is damaged: not JSON$/);
    fs.writeFileSync(file, JSON.stringify({ format: "paxos-lease/tokens@1", tokens: [{ id: "x" }] }));
    expect(() => readTokensFile(file)).toThrow(TokensFileError);
    expect(() => readTokensFile(file)).toThrow(/is damaged: not a paxos-lease\/tokens@1 file/);
    const entry = { id: "0000abcd", role: "read", name: "", created: "now", sha256: "0".repeat(64) } as const;
    writeTokensFile(file, [entry, entry]);
    expect(() => readTokensFile(file)).toThrow(/token 0000abcd is listed twice/);
  });

  it("orders the roles: admin allows everything, read only reads", () => {
    expect(roleAllows("admin", "write")).toBe(true);
    expect(roleAllows("write", "read")).toBe(true);
    expect(roleAllows("write", "admin")).toBe(false);
    expect(roleAllows("read", "write")).toBe(false);
  });
});

describe("token store", () => {
  it("accepts a token of the file, and refuses a missing, malformed, forged or unknown one", () => {
    const file = tokensFile();
    const { token, entry } = createToken(file, "read", "");
    const store = new TokenStore(file);
    expect(store.authenticate(`Bearer ${token}`)).toEqual({ _tag: "ok", entry });
    expect(store.authenticate(`bearer   ${token}`)._tag).toBe("ok");
    expect(store.authenticate(undefined)).toEqual({ _tag: "missing" });
    expect(store.authenticate("Basic abc")._tag).toBe("invalid");
    expect(store.authenticate(`Bearer ${token}x`)._tag).toBe("invalid");
    const forged = `${token.slice(0, -1)}${token.endsWith("A") ? "B" : "A"}`;
    expect(store.authenticate(`Bearer ${forged}`)).toMatchObject({ _tag: "invalid", reason: /unknown or revoked/ });
    const other = `plt_ffffffff_${token.slice(14)}`;
    expect(store.authenticate(`Bearer ${other}`)._tag).toBe("invalid");
    expect(bearerOf("Bearer")).toBe("");
  });

  it("sees a new token and a revocation once the reload interval has passed", () => {
    const file = tokensFile();
    const first = createToken(file, "admin", "").token;
    let now = 0;
    const reloads: number[] = [];
    const store = new TokenStore(file, { reloadMs: 1000, nowMs: () => now, onReload: (n) => reloads.push(n) });
    const second = createToken(file, "write", "");
    now = 10;
    // Within the interval the file is not looked at again.
    expect(store.authenticate(`Bearer ${second.token}`)._tag).toBe("invalid");
    now = 2000;
    expect(store.authenticate(`Bearer ${second.token}`)._tag).toBe("ok");
    revokeToken(file, second.entry.id);
    now = 4000;
    expect(store.authenticate(`Bearer ${second.token}`)._tag).toBe("invalid");
    expect(store.authenticate(`Bearer ${first}`)._tag).toBe("ok");
    expect(reloads).toEqual([2, 1]);
  });

  it("fails closed: a file that turns damaged or missing accepts no token until it is fixed", () => {
    const file = tokensFile();
    const { token } = createToken(file, "admin", "");
    let now = 0;
    const errors: string[] = [];
    const store = new TokenStore(file, { reloadMs: 0, nowMs: () => ++now, onReloadError: (e) => errors.push(e) });
    expect(store.authenticate(`Bearer ${token}`)._tag).toBe("ok");
    const good = fs.readFileSync(file, "utf8");
    fs.writeFileSync(file, "{ damaged");
    expect(store.authenticate(`Bearer ${token}`)).toMatchObject({
      _tag: "invalid",
      reason: /cannot read its tokens file/,
    });
    fs.rmSync(file);
    expect(store.authenticate(`Bearer ${token}`)._tag).toBe("invalid");
    expect(errors).toHaveLength(2);
    expect(errors[1]).toMatch(/it does not exist/);
    fs.writeFileSync(file, good);
    expect(store.authenticate(`Bearer ${token}`)._tag).toBe("ok");
  });

  it("refuses to start on a file it cannot use", () => {
    expect(() => new TokenStore(path.join(tempDir("tokens-none"), "tokens.json"))).toThrow(/it does not exist/);
  });
});

describe("host and origin names", () => {
  it("normalizes a Host header and an Origin to hostname:port", () => {
    expect(normalizeHost("127.0.0.1:8001", 80)).toBe("127.0.0.1:8001");
    expect(normalizeHost("Replica-1.Example", 80)).toBe("replica-1.example:80");
    expect(normalizeHost("[::1]:8001", 80)).toBe("[::1]:8001");
    expect(normalizeHost("a.example:99999", 80)).toBeNull();
    expect(normalizeHost("a b", 80)).toBeNull();
    expect(normalizeOrigin("http://127.0.0.1:8001")).toBe("127.0.0.1:8001");
    expect(normalizeOrigin("https://a.example")).toBe("a.example:443");
    expect(normalizeOrigin("null")).toBeNull();
    expect(normalizeOrigin("file:///etc/passwd")).toBeNull();
  });
});

describe("log limiter", () => {
  it("lets one line per key through per interval, and forgets the oldest keys past its bound", () => {
    const limiter = new LogLimiter(1000, 2);
    expect(limiter.allow("a", 0)).toBe(true);
    expect(limiter.allow("a", 999)).toBe(false);
    expect(limiter.allow("b", 999)).toBe(true);
    expect(limiter.allow("a", 1000)).toBe(true);
    expect(limiter.allow("c", 1001)).toBe(true);
    // "b" was the oldest of three keys: forgotten, so allowed again within its interval.
    expect(limiter.allow("b", 1002)).toBe(true);
  });
});

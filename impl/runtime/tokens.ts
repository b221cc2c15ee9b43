/**
 * Bearer tokens for the client API: each token has an id and one role, `read` (reads, the
 * membership, the status and metrics), `write` (also writes) or `admin` (also membership
 * changes). A replica keeps no token itself, only the SHA-256 of each token in a tokens file
 * (JSON, mode 0600) that `paxos-lease tokens create|list|revoke` edits; replicas re-read the file
 * when it changes, so a revocation takes effect within {@link tokensReloadMsDefault} ms.
 *
 * A token is `plt_<id>_<secret>`: 8 hex digits of id, then 32 random bytes in base64url. The
 * secret's entropy (256 bits) is why a fast hash is enough; comparisons are constant-time.
 * A request with a token that is unknown, revoked or malformed is refused: this file never
 * decides that a request may go ahead without one.
 */
import { hash, randomBytes, timingSafeEqual } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { Either, Schema } from "effect";
import { roles, type Role } from "./access.ts";

/** The tokens file's format name. */
export const tokensFormat = "paxos-lease/tokens@1";
/** Most tokens one file holds. */
export const tokensMax = 1000;
/** How often a replica looks for a changed tokens file, in milliseconds. */
export const tokensReloadMsDefault = 1000;

const TokenId = Schema.String.pipe(Schema.pattern(/^[0-9a-f]{8}$/));
const TokenEntry = Schema.Struct({
  id: TokenId,
  role: Schema.Literal(...roles),
  name: Schema.String.pipe(Schema.maxLength(200)),
  created: Schema.String.pipe(Schema.maxLength(64)),
  sha256: Schema.String.pipe(Schema.pattern(/^[0-9a-f]{64}$/)),
});
export type TokenEntry = typeof TokenEntry.Type;
const TokensFile = Schema.Struct({
  format: Schema.Literal(tokensFormat),
  tokens: Schema.Array(TokenEntry).pipe(Schema.maxItems(tokensMax)),
});

const tokenPattern = /^plt_([0-9a-f]{8})_[A-Za-z0-9_-]{43}$/;

/** A tokens file that cannot be used: missing, unreadable or damaged. The message says which, in one sentence. */
export class TokensFileError extends Error {}

/** The SHA-256 of a token, hex: what the tokens file keeps. */
export function hashToken(token: string): string {
  return hash("sha256", token, "hex");
}

/** A fresh token and its id. */
export function newToken(): { readonly token: string; readonly id: string } {
  const id = randomBytes(4).toString("hex");
  return { id, token: `plt_${id}_${randomBytes(32).toString("base64url")}` };
}

function describe(error: unknown): string {
  if (error instanceof Error && "code" in error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return "it does not exist";
    if (code === "EACCES" || code === "EPERM") return "permission denied (check its owner and mode)";
  }
  return error instanceof Error ? error.message.split("\n")[0]! : String(error);
}

/** The entries of tokens file `file`; throws {@link TokensFileError} naming what is wrong. */
export function readTokensFile(file: string): readonly TokenEntry[] {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (error) {
    throw new TokensFileError(`cannot read the tokens file ${file}: ${describe(error)}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new TokensFileError(`the tokens file ${file} is damaged: not JSON`);
  }
  const decoded = Schema.decodeUnknownEither(TokensFile)(json, { onExcessProperty: "error" });
  if (Either.isLeft(decoded))
    throw new TokensFileError(
      `the tokens file ${file} is damaged: not a ${tokensFormat} file (an entry lacks id, role, name, created or sha256, or there are more than ${tokensMax})`,
    );
  const ids = new Set<string>();
  for (const entry of decoded.right.tokens) {
    if (ids.has(entry.id))
      throw new TokensFileError(`the tokens file ${file} is damaged: token ${entry.id} is listed twice`);
    ids.add(entry.id);
  }
  return decoded.right.tokens;
}

/** Replace `file` atomically (temporary file, then rename) with `entries`, mode 0600. */
export function writeTokensFile(file: string, entries: readonly TokenEntry[]): void {
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  fs.writeFileSync(temporary, `${JSON.stringify({ format: tokensFormat, tokens: entries }, null, 2)}\n`, {
    mode: 0o600,
  });
  fs.renameSync(temporary, file);
}

/** Longest wait for another writer's lock on a tokens file, in milliseconds. */
const lockWaitMs = 5000;

/**
 * Run `edit` on the entries of `file` (none when it does not exist) under an exclusive lock
 * file, and write what it returns: two concurrent edits (a create and a revoke) never lose one.
 */
function editTokensFile<T>(
  file: string,
  edit: (entries: readonly TokenEntry[]) => { entries: readonly TokenEntry[]; result: T },
): T {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const lock = `${file}.lock`;
  const deadline = Date.now() + lockWaitMs;
  let fd: number | undefined;
  while (fd === undefined) {
    try {
      fd = fs.openSync(lock, "wx", 0o600);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST")
        throw new TokensFileError(`cannot lock the tokens file: ${describe(error)}`);
      if (Date.now() > deadline)
        throw new TokensFileError(
          `the tokens file ${file} is locked by ${lock}; if no other 'paxos-lease tokens' runs, delete that file`,
        );
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
  }
  try {
    const entries = fs.existsSync(file) ? readTokensFile(file) : [];
    const { entries: next, result } = edit(entries);
    writeTokensFile(file, next);
    return result;
  } finally {
    fs.closeSync(fd);
    fs.rmSync(lock, { force: true });
  }
}

/** Add a token of `role` to `file` (created when missing); returns the token, shown only this once. */
export function createToken(
  file: string,
  role: Role,
  name: string,
): { readonly token: string; readonly entry: TokenEntry } {
  if (name.length > 200) throw new TokensFileError(`a token's name is at most 200 characters, got ${name.length}`);
  return editTokensFile(file, (entries) => {
    if (entries.length >= tokensMax)
      throw new TokensFileError(`the tokens file ${file} already holds ${tokensMax} tokens, the most it may`);
    let fresh = newToken();
    while (entries.some((e) => e.id === fresh.id)) fresh = newToken();
    const entry: TokenEntry = {
      id: fresh.id,
      role,
      name,
      created: new Date().toISOString(),
      sha256: hashToken(fresh.token),
    };
    return { entries: [...entries, entry], result: { token: fresh.token, entry } };
  });
}

/** Remove token `id` from `file`; returns its entry. Throws when there is no such token. */
export function revokeToken(file: string, id: string): TokenEntry {
  return editTokensFile(file, (entries) => {
    const entry = entries.find((e) => e.id === id);
    if (entry === undefined)
      throw new TokensFileError(`no token ${JSON.stringify(id)} in ${file}; 'paxos-lease tokens list' shows the ids`);
    return { entries: entries.filter((e) => e !== entry), result: entry };
  });
}

/** The outcome of checking a request's credential. */
export type Authentication =
  | { readonly _tag: "ok"; readonly entry: TokenEntry }
  | { readonly _tag: "missing" }
  | { readonly _tag: "invalid"; readonly reason: string };

/** The token of an `Authorization: Bearer <token>` header, or null when there is none. */
export function bearerOf(authorization: string | undefined): string | null {
  if (authorization === undefined) return null;
  const match = /^Bearer +(\S+) *$/i.exec(authorization);
  return match === null ? "" : match[1]!;
}

/**
 * The tokens a replica accepts, read from its tokens file and re-read when the file changes
 * (checked at most every `reloadMs`). A file that turns missing, unreadable or damaged after the
 * start fails closed: no token is accepted until it is fixed (a revocation must never be undone
 * by a damaged file), and `onReloadError` reports it once per change.
 */
export class TokenStore {
  private entries = new Map<string, TokenEntry>();
  private stamp = "";
  /** Why the file last read could not be used, or null. */
  private failure: string | null = null;
  private checkedAtMs = -Infinity;

  constructor(
    readonly file: string,
    private readonly options: {
      readonly reloadMs?: number;
      readonly nowMs?: () => number;
      readonly onReload?: (count: number) => void;
      readonly onReloadError?: (message: string) => void;
    } = {},
  ) {
    this.load();
    this.checkedAtMs = this.nowMs();
  }

  private nowMs(): number {
    return this.options.nowMs === undefined ? performance.now() : this.options.nowMs();
  }

  /** How many tokens are accepted now. */
  get size(): number {
    return this.entries.size;
  }

  /** Check the token of an Authorization header. */
  authenticate(authorization: string | undefined): Authentication {
    const token = bearerOf(authorization);
    if (token === null) return { _tag: "missing" };
    this.maybeReload();
    if (this.failure !== null)
      return {
        _tag: "invalid",
        reason: "this replica cannot read its tokens file (its log says why), so it accepts no token",
      };
    const match = tokenPattern.exec(token);
    if (match === null)
      return { _tag: "invalid", reason: "the Authorization header is not 'Bearer plt_...' with a paxos-lease token" };
    const entry = this.entries.get(match[1]!);
    const given = Buffer.from(hashToken(token), "hex");
    // Compare against a hash even for an unknown id, so that timing does not tell which ids exist.
    const known = Buffer.from(entry?.sha256 ?? "0".repeat(64), "hex");
    if (!timingSafeEqual(given, known) || entry === undefined)
      return { _tag: "invalid", reason: "the token is not valid here (unknown or revoked)" };
    return { _tag: "ok", entry };
  }

  private statStamp(): string {
    const stat = fs.statSync(this.file, { throwIfNoEntry: false });
    return stat === undefined ? "missing" : `${stat.ino}:${stat.size}:${stat.mtimeMs}`;
  }

  private load(): void {
    const stamp = this.statStamp();
    const entries = readTokensFile(this.file);
    this.entries = new Map(entries.map((e) => [e.id, e]));
    this.stamp = stamp;
    this.failure = null;
  }

  private maybeReload(): void {
    const now = this.nowMs();
    if (now - this.checkedAtMs < (this.options.reloadMs ?? tokensReloadMsDefault)) return;
    this.checkedAtMs = now;
    let stamp: string;
    try {
      stamp = this.statStamp();
    } catch (error) {
      stamp = `error:${describe(error)}`;
    }
    if (stamp === this.stamp) return;
    try {
      this.load();
      this.options.onReload?.(this.entries.size);
    } catch (error) {
      this.stamp = stamp;
      this.entries = new Map();
      this.failure = error instanceof Error ? error.message : String(error);
      this.options.onReloadError?.(this.failure);
    }
  }
}

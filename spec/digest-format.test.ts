/**
 * Digest formats (spec/hash.ts `TextHash`): a store and a service given a hash of long texts make
 * digests that name its format, still tell states and commands apart (a changed value changes
 * the digest), and can compute a digest in the unnamed format they made before, so that what an
 * older version wrote still verifies and a retry recorded by it is still recognised.
 */
import { describe, expect, it } from "vitest";
import { digestFormat, fnvTextHash, longTextChars, type TextHash } from "./hash.ts";
import { kv, kvWith, utf8Length, type KvInput, type KvState } from "./kv.ts";
import { commandDigest, commandDigestLike, serviceOf } from "./service.ts";

const hashed = kvWith(fnvTextHash);
const long = (c: string): string => c.repeat(longTextChars + 10);

function storeOf(app: typeof kv, inputs: readonly KvInput[]): KvState {
  let state = app.start;
  for (const input of inputs) state = app.transition(input, state);
  return state;
}

const inputs: KvInput[] = [
  { _tag: "put", key: "a", value: long("x") },
  { _tag: "put", key: "b", value: "short" },
  { _tag: "append", key: "a", value: "é✓" },
  { _tag: "put", key: "c", value: long("\u00e9") },
  { _tag: "delete", key: "b" },
];

describe("digest formats", () => {
  it("name the format in front, and the unnamed one has no name", () => {
    expect(digestFormat(kv.digest(kv.start))).toBe("");
    expect(digestFormat(hashed.digest(hashed.start))).toBe("fnv");
    expect(digestFormat("0123456789abcdef:3|4|0123456789abcdef")).toBe("");
    expect(digestFormat("sha256/0123456789abcdef:3|4|x")).toBe("sha256");
    expect(digestFormat("Not A Name/x")).toBe("");
  });

  it("compute the unnamed format's digest again from the entries, equal to the store's without a hash", () => {
    const plain = storeOf(kv, inputs);
    const withHash = storeOf(hashed, inputs);
    expect(hashed.digest(withHash)).not.toBe(kv.digest(plain));
    expect(hashed.digestAs!(withHash, "")).toBe(kv.digest(plain));
    expect(hashed.digestAs!(withHash, "fnv")).toBe(hashed.digest(withHash));
    expect(hashed.digestAs!(withHash, "sha256")).toBeNull();
    // A store restored from a snapshot has the same digest as the one that took it.
    expect(hashed.digest(hashed.restore(kv.snapshot(plain)))).toBe(hashed.digest(withHash));
  });

  it("catch a changed long value (one character), and count its UTF-8 length", () => {
    const value = long("x");
    const changed = `${value.slice(0, 600)}y${value.slice(601)}`;
    const a = storeOf(hashed, [{ _tag: "put", key: "k", value }]);
    const b = storeOf(hashed, [{ _tag: "put", key: "k", value: changed }]);
    expect(hashed.digest(a)).not.toBe(hashed.digest(b));
    // The same value under another key is another entry.
    expect(hashed.digest(a)).not.toBe(hashed.digest(storeOf(hashed, [{ _tag: "put", key: "j", value }])));
    // The hash still counts bytes of UTF-8 (2 per é); execution does not refuse by them: the value
    // limit in bytes is admission's, and a chosen put of 1.2 MB of UTF-8 is executed.
    const wide = "\u00e9".repeat(600 * 1024);
    expect(utf8Length(wide)).toBe(1200 * 1024);
    expect(fnvTextHash.hash(wide)[2]).toBe(1200 * 1024);
    expect(hashed.apply({ _tag: "put", key: "k", value: wide }, hashed.start).output).toEqual({ _tag: "ok" });
  });

  it("use the passed-in hash only for long texts", () => {
    const calls: string[] = [];
    const spy: TextHash = {
      name: "spy",
      hash: (text) => {
        calls.push(text);
        return fnvTextHash.hash(text);
      },
    };
    const app = kvWith(spy);
    storeOf(app, [
      { _tag: "put", key: "k", value: "x".repeat(longTextChars - 1) },
      { _tag: "put", key: "k", value: "x".repeat(longTextChars) },
    ]);
    expect(calls.map((t) => t.length)).toEqual([longTextChars]);
    calls.length = 0;
    commandDigest({ _tag: "put", key: "k", value: "x".repeat(longTextChars) }, spy);
    expect(calls.map((t) => t.length)).toEqual([longTextChars]);
  });
});

describe("command digests in a format", () => {
  const put = (value: string): KvInput => ({ _tag: "put", key: "k", value });

  it("name the format, equal for equal commands and differ for a changed long value", () => {
    const d = commandDigest(put(long("x")), fnvTextHash);
    expect(d).toMatch(/^fnv\/[0-9a-f]{16}$/);
    expect(commandDigest(put(long("x")), fnvTextHash)).toBe(d);
    expect(commandDigest(put(`${long("x")}y`), fnvTextHash)).not.toBe(d);
    // A short string is folded as before, a long one as its hash: they never meet.
    expect(commandDigest(put("short"), fnvTextHash)).toBe(`fnv/${commandDigest(put("short"))}`);
  });

  it("compare a retry with a session's digest in the format it was made in", () => {
    const input = put(long("x"));
    expect(commandDigestLike(commandDigest(input), input, fnvTextHash)).toBe(commandDigest(input));
    expect(commandDigestLike(commandDigest(input, fnvTextHash), input, fnvTextHash)).toBe(
      commandDigest(input, fnvTextHash),
    );
  });

  it("answer a retry recorded before the hash was passed in as a duplicate, and another command as reused", () => {
    const before = serviceOf(kv);
    const after = serviceOf(hashed);
    const request = { clientId: "c", seq: 1, input: put(long("x")) };
    const state = before.apply(request, before.start).state;
    // The session's digest is in the unnamed format; the service now hashes long values.
    expect(after.apply(request, state).output).toEqual({ _tag: "duplicate", output: { _tag: "ok" } });
    expect(after.apply({ ...request, input: put(long("z")) }, state).output).toEqual({ _tag: "reused", seq: 1 });
    // And a new session's digest is in the new format.
    const next = after.apply({ ...request, seq: 2 }, state).state;
    expect(after.apply({ ...request, seq: 2 }, next).output._tag).toBe("duplicate");
    expect(after.apply({ ...request, seq: 2, input: put(long("z")) }, next).output._tag).toBe("reused");
  });
});

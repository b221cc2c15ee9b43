/**
 * What goes to a peer of another version during an upgrade (upgrade-window.ts): a peer whose
 * incarnation names no digest format (a version that compares any two digests) is sent no
 * checkpoint of a named format and no snapshot of one; a peer that names a format gets every
 * message as the core made it. And the incarnation that names the format still passes the
 * earlier versions' handshake Schema, which refuses any field it does not know.
 */
import { Either, Schema } from "effect";
import { describe, expect, it } from "vitest";
import type { KvMessage } from "./core-adapter.ts";
import { digestFormatOfIncarnation, forPeer, incarnationWith } from "./upgrade-window.ts";

const ballot = { round: 2, replica: 1 };
const named = { slot: 256, digest: "sha256/00000000aaaaaaaa:1|1|0000000000000000" };
const unnamed = { slot: 256, digest: "00000000aaaaaaaa:1|1|0000000000000000" };
const heartbeat = (checkpoint: typeof named | null): KvMessage => ({
  _tag: "Heartbeat",
  ballot,
  sentAt: 10,
  commitIndex: 300,
  checkpoint,
});
const earlier = { http: "h", incarnation: "c79d06c4aad5c7ad" };
const current = { http: "h", incarnation: incarnationWith("c79d06c4aad5c7ad", "sha256") };

describe("messages to a peer of another version", () => {
  it("a peer that names no format gets no checkpoint of a named format, and everything else as it was", () => {
    expect(forPeer(heartbeat(named), earlier)).toEqual({ send: heartbeat(null), withheld: "checkpoint" });
    expect(forPeer(heartbeat(named), null)).toEqual({ send: heartbeat(null), withheld: "checkpoint" });
    expect(forPeer(heartbeat(unnamed), earlier)).toEqual({ send: heartbeat(unnamed), withheld: null });
    expect(forPeer(heartbeat(null), earlier)).toEqual({ send: heartbeat(null), withheld: null });
  });

  it("a peer that names a format gets every checkpoint", () => {
    const m = heartbeat(named);
    expect(forPeer(m, current).send).toBe(m);
    expect(forPeer(m, { ...current, incarnation: incarnationWith("0011", "blake3") }).send).toBe(m);
  });

  it("a snapshot of a named format is not sent to a peer that names none", () => {
    const chunk: KvMessage = {
      _tag: "SnapshotChunk",
      slot: 8,
      digest: named.digest,
      contentDigest: "0123456789abcdef",
      totalBytes: 3,
      offset: 0,
      data: "abc",
    };
    expect(forPeer(chunk, earlier)).toEqual({ send: null, withheld: "snapshot" });
    expect(forPeer(chunk, current).send).toBe(chunk);
  });

  it("reads the format off an incarnation, and none off an earlier version's", () => {
    expect(digestFormatOfIncarnation(current.incarnation)).toBe("sha256");
    expect(digestFormatOfIncarnation(earlier.incarnation)).toBeNull();
    expect(digestFormatOfIncarnation("abc+")).toBeNull();
    expect(digestFormatOfIncarnation("abc+SHA")).toBeNull();
  });

  it("an incarnation naming the format passes the handshake Schema of the versions before", () => {
    // The earlier versions' handshake information, decoded as they decode it (excess fields refused).
    const EarlierInfo = Schema.Struct({
      http: Schema.String.pipe(Schema.maxLength(256)),
      incarnation: Schema.String.pipe(Schema.maxLength(64)),
      peer: Schema.optional(Schema.String.pipe(Schema.maxLength(256))),
    });
    const decode = Schema.decodeUnknownEither(EarlierInfo);
    expect(Either.isRight(decode(current, { onExcessProperty: "error" }))).toBe(true);
    expect(Either.isLeft(decode({ ...current, digestFormat: "sha256" }, { onExcessProperty: "error" }))).toBe(true);
  });
});

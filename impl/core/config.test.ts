/**
 * The configuration Schema: defaults, and a clear refusal, naming the field and the hazard, for
 * every limit that is out of range or inconsistent with another.
 */
import { Either } from "effect";
import { describe, expect, it } from "vitest";
import { ConfigError, decodeConfig, leaderLeaseMs, parseConfig } from "./config.ts";

const base = { members: [1, 2, 3], self: 1 };

function errorsOf(input: unknown): readonly string[] {
  const decoded = decodeConfig(input);
  if (Either.isRight(decoded)) throw new Error("expected the configuration to be refused");
  return decoded.left.issues;
}

describe("Config", () => {
  it("fills every omitted limit with its documented default", () => {
    expect(parseConfig(base)).toEqual({
      members: [1, 2, 3],
      self: 1,
      joining: false,
      leaseMs: 300,
      clockDriftPpmMax: 1000,
      leaseMarginMs: 10,
      electionTimeoutMsMin: 400,
      electionTimeoutMsMax: 600,
      heartbeatIntervalMs: 50,
      pipelineSlotsMax: 8,
      batchCommandsMax: 128,
      batchBytesMax: 1_048_576,
      adaptiveBatching: false,
      checkQuorumCountsRunTime: true,
      electionWaitsAfterStall: false,
      prepareResendBackoff: false,
      promiseOmitsChosen: false,
      featureLevel: 1,
      sessionsMax: 100_000,
      sessionOutputBytesMax: 67_108_864,
      valuesAtRest: false,
      storeAtRestCharsMin: 0,
      checkpointIntervalSlots: 256,
      requestsPendingMax: 10_000,
      catchUpSlotsMax: 256,
      snapshotIntervalSlots: 1024,
      snapshotIntervalBytes: 134_217_728,
      snapshotIntervalCommands: Number.MAX_SAFE_INTEGER,
      logTailBytes: 33_554_432,
      transferChunkBytesMax: 65_536,
      reconfigAlphaSlots: 64,
      retireGraceMs: 5000,
      seed: 1,
    });
  });

  it("the leader trusts its lease for leaseMs shortened by the drift bound and the margin", () => {
    const c = parseConfig(base);
    expect(leaderLeaseMs(c)).toBeCloseTo((300 * (1 - 0.001)) / (1 + 0.001) - 10, 9);
  });

  it.each([
    [
      { electionTimeoutMsMin: 250 },
      "electionTimeoutMsMin (250) must exceed leaseMs (300): a follower must not campaign while its grant to the current leader may still be in force",
    ],
    [{ electionTimeoutMsMin: 300 }, "electionTimeoutMsMin (300) must exceed leaseMs (300)"],
    [
      { electionTimeoutMsMax: 450, electionTimeoutMsMin: 500 },
      "electionTimeoutMsMax (450) must be at least electionTimeoutMsMin (500)",
    ],
    [
      { heartbeatIntervalMs: 300 },
      "heartbeatIntervalMs (300) must be shorter than leaseMs (300): otherwise the lease lapses between two renewals",
    ],
    [{ clockDriftPpmMax: 200_000 }, "clockDriftPpmMax (200000) must be an integer in [0, 100000]"],
    [{ clockDriftPpmMax: -1 }, "clockDriftPpmMax (-1) must be an integer in [0, 100000]"],
    [
      { pipelineSlotsMax: 0 },
      "pipelineSlotsMax (0) must be an integer in [1, 65536]: a pipeline of 0 slots could never propose",
    ],
    [
      { batchCommandsMax: 0 },
      "batchCommandsMax (0) must be an integer in [1, 65536]: a batch of 0 commands could carry nothing",
    ],
    [{ leaseMs: 2.5 }, "leaseMs (2.5) must be an integer"],
    [
      { leaseMarginMs: 300 },
      "leaseMarginMs (300) leaves no lease: leaseMs (300) shortened by the drift bound (1000 ppm) is 299.401 ms",
    ],
    [{ self: 4 }, "self (4) must be one of members (1,2,3), or set joining for a replica that joins later"],
    [{ joining: true }, "joining is for a replica outside the initial members, but self (1) is one of them"],
    [
      { pipelineSlotsMax: 65 },
      "pipelineSlotsMax (65) must be at most reconfigAlphaSlots (64): a leader knows the configuration of a slot only alpha slots ahead",
    ],
    [{ reconfigAlphaSlots: 0 }, "reconfigAlphaSlots (0) must be an integer in [1, 65536]"],
    [{ snapshotIntervalSlots: 0 }, "snapshotIntervalSlots (0) must be an integer in [1, 1073741824]"],
    [{ transferChunkBytesMax: 8 }, "transferChunkBytesMax (8) must be an integer in [16, 67108864]"],
    [{ members: [1, 2, 2] }, "members (1,2,2) lists an id twice"],
    [{ members: [], self: 1 }, "members has 0 ids; a cluster has 1 to 31 members"],
    [{ members: [0, 1] }, "replica id (0) must be an integer in [1, 1000000]"],
  ])("refuses %j", (override, message) => {
    const issues = errorsOf({ ...base, ...override });
    expect(
      issues.some((i) => i.includes(message)),
      `issues: ${issues.join(" | ")}`,
    ).toBe(true);
  });

  it("accepts a joining replica outside the initial members", () => {
    expect(parseConfig({ ...base, self: 4, joining: true }).self).toBe(4);
  });

  it("reports every violated limit at once, one line each", () => {
    const issues = errorsOf({ ...base, pipelineSlotsMax: 0, batchCommandsMax: 0 });
    expect(issues.length).toBe(2);
  });

  it("refuses unknown fields (a misspelt limit must not silently fall back to its default)", () => {
    expect(errorsOf({ ...base, leaseMS: 300 }).join("\n")).toContain("leaseMS");
  });

  it("throws a ConfigError that lists the issues", () => {
    expect(() => parseConfig({ ...base, pipelineSlotsMax: 0 })).toThrow(ConfigError);
    expect(() => parseConfig({ ...base, pipelineSlotsMax: 0 })).toThrow(
      /invalid replica configuration:\n {2}pipelineSlotsMax \(0\)/,
    );
  });
});

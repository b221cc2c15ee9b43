/**
 * The peer listener's admission: per-source handshakes and rate, the global bound, the slots
 * kept for configured peers, and a bounded memory of sources.
 */
import { describe, expect, it } from "vitest";
import { PeerAdmission, peerAdmissionProblem, sourceOf } from "./peer-admission.ts";

const limits = { handshakesMax: 6, reservedSlots: 2, sourceHandshakesMax: 3, sourceRatePerSecond: 10, sourceBurst: 5 };
const peers = new Set(["10.0.0.1", "10.0.0.2"]);

describe("peer admission", () => {
  it("bounds the handshakes in flight from one source, and frees a slot on release", () => {
    const admission = new PeerAdmission(limits, (s) => peers.has(s));
    expect([1, 2, 3, 4].map(() => admission.admit("10.9.9.9", 0))).toEqual([null, null, null, "source-handshakes"]);
    expect(admission.handshakesInFlight).toBe(3);
    admission.release("10.9.9.9");
    expect(admission.admit("10.9.9.9", 0)).toBeNull();
    expect(() => new PeerAdmission(limits, () => false).release("10.9.9.9")).toThrow(/no handshake in flight/);
  });

  it("bounds the rate of new connections from one source, refilling with time", () => {
    const admission = new PeerAdmission({ ...limits, sourceHandshakesMax: 100, handshakesMax: 100 }, () => false);
    const at0 = Array.from({ length: 7 }, () => admission.admit("10.9.9.9", 0));
    expect(at0).toEqual([null, null, null, null, null, "source-rate", "source-rate"]);
    // 10 a second: one more after 100 ms, none more at once.
    expect(admission.admit("10.9.9.9", 100)).toBeNull();
    expect(admission.admit("10.9.9.9", 100)).toBe("source-rate");
    // Another source has its own bucket.
    expect(admission.admit("10.8.8.8", 100)).toBeNull();
    // Refilled up to the burst, not beyond.
    expect(Array.from({ length: 6 }, () => admission.admit("10.9.9.9", 60_000))).toEqual([
      null,
      null,
      null,
      null,
      null,
      "source-rate",
    ]);
  });

  it("keeps the last slots for addresses of configured peers", () => {
    const admission = new PeerAdmission(limits, (s) => peers.has(s));
    // Strangers from many addresses fill the open slots ...
    for (let i = 0; i < 4; i++) expect(admission.admit(`10.7.0.${i}`, 0)).toBeNull();
    expect(admission.admit("10.7.0.9", 0)).toBe("handshakes-full");
    // ... and the configured peers still get in, up to the whole bound.
    expect(admission.admit("10.0.0.1", 0)).toBeNull();
    expect(admission.admit("10.0.0.2", 0)).toBeNull();
    expect(admission.admit("10.0.0.1", 0)).toBe("handshakes-full");
    expect(admission.handshakesInFlight).toBe(6);
    expect(() => new PeerAdmission({ ...limits, reservedSlots: 6 }, () => false)).toThrow(/must be fewer/);
  });

  it("forgets idle sources past its bound but never one with a handshake in flight", () => {
    const admission = new PeerAdmission({ ...limits, handshakesMax: 10_000, reservedSlots: 0 }, () => false);
    expect(admission.admit("busy", 0)).toBeNull();
    for (let i = 0; i < 5000; i++) {
      expect(admission.admit(`s${i}`, 0)).toBeNull();
      admission.release(`s${i}`);
    }
    // "busy" is remembered: its release still finds it.
    expect(() => admission.release("busy")).not.toThrow();
    expect(admission.handshakesInFlight).toBe(0);
  });

  it("refuses bounds no peer could connect under, naming them", () => {
    expect(peerAdmissionProblem(limits)).toBeNull();
    expect(() => new PeerAdmission({ ...limits, reservedSlots: 6 }, () => false)).toThrow(
      /reserved handshake slots \(6\) must be fewer than all handshake slots \(6\)/,
    );
    expect(peerAdmissionProblem({ ...limits, sourceBurst: 0 })).toMatch(/rate and burst must each be at least 1/);
    expect(peerAdmissionProblem({ ...limits, sourceRatePerSecond: 0.5 })).toMatch(
      /sourceRatePerSecond must be a whole number, not 0.5/,
    );
  });

  it("compares IPv4-mapped addresses as IPv4", () => {
    expect(sourceOf("::ffff:127.0.0.2")).toBe("127.0.0.2");
    expect(sourceOf("::1")).toBe("::1");
    expect(sourceOf(undefined)).toBe("unknown");
  });
});

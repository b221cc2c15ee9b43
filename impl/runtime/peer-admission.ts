/**
 * Who may start a handshake on the peer port. Before a connection has proven anything it costs
 * the replica a slot (and, under TLS, a handshake's CPU), so the peer listener admits it only
 * within bounds (docs/operations.md, "The peer port under a flood"):
 *
 * - per source address, at most `sourceHandshakesMax` connections in their handshake at once,
 *   and new connections at most `sourceRatePerSecond` a second (a token bucket holding
 *   `sourceBurst`);
 * - in all, at most `handshakesMax` connections in their handshake, of which the last
 *   `reservedSlots` only for connections from an address of a configured peer, so that a flood
 *   from elsewhere cannot keep a restarting replica out.
 *
 * A connection that finished its handshake no longer counts: authenticated links are bounded
 * by the number of peers (a peer that reconnects replaces its link). Time enters as data.
 */

/** Why a connection was refused before its handshake. */
export type AdmissionRefusal = "shutting-down" | "source-handshakes" | "source-rate" | "handshakes-full";

/** The refusal reasons, for metrics that list every label. */
export const admissionRefusals: readonly AdmissionRefusal[] = [
  "shutting-down",
  "source-handshakes",
  "source-rate",
  "handshakes-full",
];

/** Bounds of {@link PeerAdmission}. */
export interface PeerAdmissionLimits {
  readonly handshakesMax: number;
  readonly reservedSlots: number;
  readonly sourceHandshakesMax: number;
  readonly sourceRatePerSecond: number;
  readonly sourceBurst: number;
}

/** The defaults: generous for replicas (a handful of dials a second), tight for anyone else. */
export const peerAdmissionDefaults: PeerAdmissionLimits = {
  handshakesMax: 64,
  reservedSlots: 16,
  sourceHandshakesMax: 8,
  sourceRatePerSecond: 20,
  sourceBurst: 40,
};

/** Time a peer connection has to finish its handshake, in milliseconds. */
export const peerHandshakeTimeoutMsDefault = 5000;

/** Refused and failed peer connections are logged at most once per source per this interval, in milliseconds. */
export const peerLogIntervalMsDefault = 10_000;

interface SourceState {
  inFlight: number;
  tokens: number;
  atMs: number;
}

/** What is wrong with `limits`, in one sentence naming the bounds, or null. */
export function peerAdmissionProblem(limits: PeerAdmissionLimits): string | null {
  for (const [name, value] of Object.entries(limits))
    if (!Number.isSafeInteger(value) || value < 0)
      return `peer admission bound ${name} must be a whole number, not ${value}`;
  if (limits.reservedSlots >= limits.handshakesMax)
    return `the reserved handshake slots (${limits.reservedSlots}) must be fewer than all handshake slots (${limits.handshakesMax}): other addresses need at least one`;
  if (limits.sourceHandshakesMax < 1 || limits.sourceRatePerSecond < 1 || limits.sourceBurst < 1)
    return "the per-address handshakes, rate and burst must each be at least 1, or no peer could connect";
  return null;
}

/** Sources remembered at once; idle ones beyond it are forgotten (their buckets were full or nearly). */
const sourcesMax = 4096;

export class PeerAdmission {
  private readonly limits: PeerAdmissionLimits;
  private readonly sources = new Map<string, SourceState>();
  private inFlight = 0;

  constructor(
    limits: Partial<PeerAdmissionLimits>,
    /** Whether `source` is an address of a configured peer (it may use the reserved slots). */
    private readonly isPeerSource: (source: string) => boolean,
  ) {
    this.limits = { ...peerAdmissionDefaults, ...limits };
    const problem = peerAdmissionProblem(this.limits);
    if (problem !== null) throw new Error(problem);
  }

  /** Connections in their handshake now. */
  get handshakesInFlight(): number {
    return this.inFlight;
  }

  /**
   * Admit a connection from `source` at `nowMs` (it then holds a slot until {@link release}), or
   * say why not.
   */
  admit(source: string, nowMs: number): AdmissionRefusal | null {
    const state = this.stateOf(source, nowMs);
    state.tokens = Math.min(
      this.limits.sourceBurst,
      state.tokens + ((nowMs - state.atMs) * this.limits.sourceRatePerSecond) / 1000,
    );
    state.atMs = nowMs;
    if (state.tokens < 1) return "source-rate";
    // A refused attempt spends a token too: hammering does not refill the bucket.
    state.tokens -= 1;
    if (state.inFlight >= this.limits.sourceHandshakesMax) return "source-handshakes";
    const open = this.isPeerSource(source)
      ? this.limits.handshakesMax
      : this.limits.handshakesMax - this.limits.reservedSlots;
    if (this.inFlight >= open) return "handshakes-full";
    state.inFlight += 1;
    this.inFlight += 1;
    return null;
  }

  /** A connection admitted from `source` finished its handshake or closed. */
  release(source: string): void {
    const state = this.sources.get(source);
    if (state === undefined || state.inFlight === 0) throw new Error(`no handshake in flight from ${source}`);
    state.inFlight -= 1;
    this.inFlight -= 1;
  }

  private stateOf(source: string, nowMs: number): SourceState {
    let state = this.sources.get(source);
    if (state === undefined) {
      if (this.sources.size >= sourcesMax) this.forgetIdle();
      state = { inFlight: 0, tokens: this.limits.sourceBurst, atMs: nowMs };
      this.sources.set(source, state);
    }
    return state;
  }

  /** Forget the sources with no handshake in flight, oldest first, down to half the bound. */
  private forgetIdle(): void {
    for (const [source, state] of this.sources) {
      if (this.sources.size <= sourcesMax / 2) return;
      if (state.inFlight === 0) this.sources.delete(source);
    }
  }
}

/** An address as the peer listener compares it: IPv4-mapped IPv6 addresses as IPv4. */
export function sourceOf(remoteAddress: string | undefined): string {
  if (remoteAddress === undefined) return "unknown";
  return remoteAddress.startsWith("::ffff:") && remoteAddress.includes(".") ? remoteAddress.slice(7) : remoteAddress;
}

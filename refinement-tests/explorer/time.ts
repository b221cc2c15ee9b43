/**
 * The explorer's time abstraction: true time advances only to the next instant at which some
 * running replica's clock reaches one of its deadlines, the own-clock readings at which one of
 * its decisions can change. Every decision of impl/core about time is a comparison of the event's
 * `now` with such a reading (`now < X` or `now >= X`, X a timestamp in the state plus a constant
 * of the configuration), so between two consecutive instants every comparison of every replica
 * comes out the same, whenever in the interval an event is handled. docs/refinement.md gives the
 * argument in full and what it leaves out.
 *
 * `deadlinesOf` lists those readings for one replica state. A superset only costs states (an
 * instant where nothing changes); a missing deadline would lose behaviour, so the list is checked
 * against the core by explorer.test.ts: a Tick at any instant before the earliest deadline must
 * change nothing but the clock reading.
 */
import { stalledWithin } from "../../impl/core/check-quorum.ts";
import { needsCatchUp } from "../../impl/core/learner.ts";
import type { KvReplicaState } from "../world/world.ts";

/**
 * Every own-clock reading above `after` at which a decision of replica state `s` may change:
 *
 * - acceptor: the grant's end (rule L1: it refuses other ballots before it) and the end of the
 *   restart wait (rule L4);
 * - election: the timer, heardAt + timeoutMs (followers campaign, candidates retry);
 * - learner: the catch-up retry, and a state transfer's retry and give-up; a follower that owes a
 *   catch-up request (it lacks slots a leader it knows said are chosen, or waits for the hand-over
 *   of its removal, rule R5) sends it at its next Tick once the retry interval passed, which may
 *   already be the case (a CatchUpReply resets the interval): then the deadline is the next instant;
 * - removal: the end of the retirement grace (rule R5: a removed replica that executes nothing);
 * - candidate and leader: the Prepare retransmission;
 * - leader: the next heartbeat, the lease's end (rule L2: reads by lease before it), each
 *   proposal's Accept retransmission, CheckQuorum (a grant's send time, or the election, plus the
 *   shortest election timeout and the leader's stalls since: stepping down when no quorum
 *   answered), and a heartbeat interval after its last event (an event later ends a stall).
 */
export function deadlinesOf(s: KvReplicaState, after: number, out: number[] = []): number[] {
  const config = s.ctx.config;
  const beat = config.heartbeatIntervalMs;
  // `add` is a function of the module, not a closure made per call: this runs for every state.
  add(out, after, s.acceptor.grantUntil);
  add(out, after, s.acceptor.noPromiseUntil);
  add(out, after, s.election.heardAt + s.election.timeoutMs);
  add(out, after, s.learner.catchUpSentAt + beat);
  const removal = s.removal;
  const awaitsHandOver = removal !== null && !removal.handedOver && removal.retired === null;
  if (
    s.role._tag === "follower" &&
    s.halted === null &&
    ((needsCatchUp(s) && s.learner.leaderHint !== null) || awaitsHandOver)
  )
    add(out, after, Math.max(s.learner.catchUpSentAt + beat, nextUp(after)));
  if (removal !== null && removal.handedOver && removal.retired === null)
    add(out, after, removal.progressAt + config.retireGraceMs);
  const t = s.learner.transfer;
  if (t !== null) {
    add(out, after, t.progressAt + config.electionTimeoutMsMax);
    add(out, after, t.requestedAt + beat);
  }
  const role = s.role;
  if (role._tag === "follower") return out;
  if (role._tag === "candidate") {
    add(out, after, role.prepareSentAt + role.prepareResendAfterMs);
    return out;
  }
  add(out, after, role.prepareSentAt + beat);
  add(out, after, role.heartbeatAt);
  add(out, after, role.leaseUntil);
  for (const p of role.inflight) if (!p.chosen) add(out, after, p.sentAt + p.resendAfterMs);
  // CheckQuorum skips the leader's stalls, and an event past a heartbeat interval after the last ends one.
  for (const g of role.grantSentAt)
    add(out, after, g + config.electionTimeoutMsMin + stalledWithin(role.stalls, g, Number.POSITIVE_INFINITY));
  if (config.checkQuorumCountsRunTime) {
    const stalled = stalledWithin(role.stalls, role.electedAt, Number.POSITIVE_INFINITY);
    add(out, after, role.electedAt + config.electionTimeoutMsMin + stalled);
    add(out, after, s.now + beat);
  }
  return out;
}

/** Add deadline `x` to `out` if it lies above `after` (and is one). */
function add(out: number[], after: number, x: number): void {
  if (x > after && x !== Number.POSITIVE_INFINITY) out.push(x);
}

/** A replica as the time abstraction sees it: its state and its clock. */
export interface TimedReplica {
  readonly state: KvReplicaState | null;
  readonly paused: boolean;
  localAt(t: number): number;
  trueAt(reading: number): number;
  /**
   * Where `nextAdvanceMs` may keep this replica's step to its next deadline from one true time (a
   * replica that changes drops it: the world's slots, which copies share until one changes).
   */
  nextDeadline?: { readonly trueTime: number; readonly ms: number } | null;
}

/**
 * How far to advance true time from `trueTime` to the next instant at which some live, running
 * replica reaches a deadline, or null when none has one ahead. The step is the smallest (in
 * floating point, as the world adds it to its true time) at which that replica's clock reads at
 * least the deadline, so that a Tick there sees the deadline reached.
 */
export function nextAdvanceMs(replicas: readonly TimedReplica[], trueTime: number): number | null {
  let best = Number.POSITIVE_INFINITY;
  const buffer: number[] = [];
  for (const r of replicas) {
    if (r.state === null || r.paused) continue;
    const known = r.nextDeadline;
    let ms: number;
    if (known !== undefined && known !== null && known.trueTime === trueTime) ms = known.ms;
    else {
      buffer.length = 0;
      // A clock only moves forward: the earliest deadline is the one reached first.
      let earliest = Number.POSITIVE_INFINITY;
      for (const d of deadlinesOf(r.state, r.localAt(trueTime), buffer)) if (d < earliest) earliest = d;
      ms = earliest === Number.POSITIVE_INFINITY ? earliest : stepTo(r, trueTime, earliest);
      if (known !== undefined) r.nextDeadline = { trueTime, ms };
    }
    if (ms < best) best = ms;
  }
  return best === Number.POSITIVE_INFINITY ? null : best;
}

/**
 * The smallest step ms > 0 (as far as floating point can tell) such that `r`'s clock at
 * trueTime + ms, computed as the world computes it, reads at least `d`.
 */
function stepTo(r: TimedReplica, trueTime: number, d: number): number {
  let t = Math.max(r.trueAt(d), nextUp(trueTime));
  for (let tries = 0; tries < 1000; tries++) {
    const ms = t - trueTime;
    if (ms > 0 && r.localAt(trueTime + ms) >= d) return ms;
    t = nextUp(t);
  }
  throw new Error(`no true time after ${trueTime} brings the clock to ${d}`);
}

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);
/** Which of the two 32-bit words of a double is the low one on this machine. */
const low = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 0 : 1;

/** The smallest double above x (x finite and non-negative): its bit pattern plus one, without BigInts. */
function nextUp(x: number): number {
  if (x === 0) return Number.MIN_VALUE;
  f64[0] = x;
  const lo = u32[low]!;
  if (lo === 0xffffffff) {
    u32[low] = 0;
    u32[1 - low]!++;
  } else u32[low] = lo + 1;
  return f64[0];
}

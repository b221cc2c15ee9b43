/**
 * A lagging candidate facing large accepted values (replica.ts, `resendPrepare`): the Promise an
 * up-to-date acceptor sends it carries every vote above its first unexecuted slot, megabytes when
 * those slots hold large values. Here each directed link has two lanes, as the runtime's peer
 * connections do (impl/runtime/transport.ts: messages up to 8 KiB on the control connection,
 * larger ones on the bulk one), each carrying one message at a time at a fixed byte rate: on a
 * loaded machine, encoding, sending and decoding a frame take time in proportion to its size. Such
 * a Promise then takes longer than an election timeout to arrive.
 *
 * A candidate used to resend Prepare every heartbeat interval, and the acceptor answered each
 * resend with the whole Promise again, which also restarted its own election timer (every grant
 * does, rule L5): the up-to-date replica never campaigned, the lagging one never completed phase 1
 * before its timeout and campaigned again with a higher ballot, and no leader was elected (the
 * nemesis run this story comes from had none for 62 s). Resends now back off, as Accept resends
 * do: the up-to-date replica's timer fires between them, it is elected, and it stays leader.
 *
 * With `promiseOmitsChosen` the Promise carries no executed slot's vote at all (rule T3): it is a
 * few hundred bytes, the candidate fetches the chosen values by catch-up, and a leader is elected
 * with or without the backoff.
 */
import { describe, expect, it } from "vitest";
import { Cluster } from "./testing/cluster.ts";
import type { Message } from "./messages.ts";
import type { KvInput } from "../../spec/kv.ts";

interface Timed {
  readonly from: number;
  readonly to: number;
  readonly at: number;
  readonly message: Message<KvInput>;
}

/** Bytes of a message as the wire would carry it, roughly: its JSON text. */
function bytesOf(m: unknown): number {
  return JSON.stringify(m).length;
}

/**
 * Three replicas, with `prepareResendBackoff` or not; replica 3 misses `values` large writes
 * (each `valueBytes`), replica 1 (the leader) crashes, and replicas 2 and 3 run for `ms` over links
 * of `bytesPerMs`, one message at a time per lane. Returns the leaders seen, the leader at the end
 * with how long it had led, and what the lagging replica was sent.
 */
function story(
  prepareResendBackoff: boolean,
  values: number,
  valueBytes: number,
  bytesPerMs: number,
  ms: number,
  promiseOmitsChosen = false,
) {
  const c = Cluster.elected(3, { config: { prepareResendBackoff, promiseOmitsChosen } });
  c.quiet = true;
  c.advance(100, 10);
  c.cut.add("1->3");
  for (let i = 0; i < values; i++)
    c.request(1, { _tag: "put", key: `big${i}`, value: "x".repeat(valueBytes) }, "linearizable");
  c.advance(200, 10);
  c.cut.delete("1->3");
  c.inFlight.length = 0;
  c.crash(1);
  const lagging = c.state(3).learner.executedUpTo;
  const ahead = c.state(2).learner.executedUpTo;
  // Links: when each directed link is free again; messages by arrival time.
  const freeAt = new Map<string, number>();
  let queue: Timed[] = [];
  let maxPromiseBytes = 0;
  let promisesToLagging = 0;
  let promiseBytesToLagging = 0;
  let catchUpBytesToLagging = 0;
  const take = () => {
    for (const m of c.inFlight.splice(0, c.inFlight.length)) {
      const bytes = bytesOf(m.message);
      const link = `${m.from}->${m.to}${bytes > 8192 ? " bulk" : ""}`;
      if (m.message._tag === "Promise" && m.to === 3) {
        promisesToLagging++;
        promiseBytesToLagging += bytes;
        maxPromiseBytes = Math.max(maxPromiseBytes, bytes);
      }
      if (m.message._tag === "CatchUpReply" && m.to === 3) catchUpBytesToLagging += bytes;
      const start = Math.max(c.now, freeAt.get(link) ?? 0);
      const done = start + bytes / bytesPerMs;
      freeAt.set(link, done);
      queue.push({ from: m.from, to: m.to, at: done + 1, message: m.message });
    }
  };
  let leader: number | null = null;
  let leaderSince = c.now;
  const crashedAt = c.now;
  const changes: string[] = [];
  const end = c.now + ms;
  while (c.now < end) {
    c.now += 10;
    const due = queue.filter((m) => m.at <= c.now);
    queue = queue.filter((m) => m.at > c.now);
    for (const m of due) {
      if (m.to === 1) continue;
      c.apply(m.to, { _tag: "Receive", now: c.clock(m.to), from: m.from, message: m.message });
      take();
    }
    c.tickAll();
    take();
    const leaders = [2, 3].filter((id) => c.state(id).role._tag === "leader");
    const now = leaders.length === 1 ? leaders[0]! : null;
    if (now !== leader) {
      changes.push(`${c.now}: ${now ?? "none"}`);
      leader = now;
      leaderSince = c.now;
    }
  }
  // The gaps between the Prepares of replica 3's first campaign (to replica 2).
  const times: number[] = [];
  let first: string | null = null;
  for (const { replica, effect } of c.effectLog) {
    if (replica !== 3 || effect._tag !== "Send" || effect.to !== 2 || effect.message._tag !== "Prepare") continue;
    const ballot = `${effect.message.ballot.round}.${effect.message.ballot.replica}`;
    first ??= ballot;
    if (ballot === first) times.push(effect.message.sentAt);
  }
  const resendGaps = times.slice(1).map((t, i) => t - times[i]!);
  const { heartbeatIntervalMs, electionTimeoutMsMax } = c.config(2);
  return {
    changes,
    leader,
    ledMs: c.now - leaderSince,
    lagging,
    ahead,
    maxPromiseBytes,
    promisesToLagging,
    promiseBytesToLagging,
    catchUpBytesToLagging,
    stableAfterMs: leaderSince - crashedAt,
    resendGaps,
    heartbeatIntervalMs,
    electionTimeoutMsMax,
  };
}

describe("a lagging candidate facing large accepted values", () => {
  // Three votes of 10 KB above the lagging replica's point, links of 30 bytes per ms: its Promise
  // takes a second on the link, longer than any election timeout (at most 600 ms here).
  const r = story(true, 3, 10_000, 30, 30_000);
  const before = story(false, 3, 10_000, 30, 30_000);

  it("is reached: an up-to-date acceptor's Promise to it outlasts an election timeout", () => {
    expect(r.ahead - r.lagging).toBeGreaterThanOrEqual(3);
    expect(r.maxPromiseBytes / 30).toBeGreaterThan(r.electionTimeoutMsMax);
  });

  it("kept the cluster from electing any leader while a candidate resent Prepare every heartbeat interval", () => {
    expect(before.maxPromiseBytes / 30).toBeGreaterThan(before.electionTimeoutMsMax);
    expect(before.changes).toEqual([]);
    expect(before.leader).toBeNull();
    expect(before.promisesToLagging).toBeGreaterThan(200);
  });

  it("does not keep the cluster from electing a leader that lasts once resends back off", () => {
    expect(r.leader).not.toBeNull();
    expect(r.ledMs).toBeGreaterThan(20_000);
    expect(r.promisesToLagging).toBeLessThan(20);
  });

  it("resends Prepare after 1, 2, 4 ... heartbeat intervals, at most an election timeout apart", () => {
    const beat = r.heartbeatIntervalMs;
    expect(r.resendGaps.length).toBeGreaterThan(2);
    r.resendGaps.forEach((gap, i) => {
      // Each resend goes at the first tick (every 10 ms) at or after its due time.
      const late = gap - Math.min(beat * 2 ** i, r.electionTimeoutMsMax);
      expect(late).toBeGreaterThanOrEqual(0);
      expect(late).toBeLessThan(10);
    });
  });
});

describe("a lagging candidate given Promises without the chosen values (promiseOmitsChosen)", () => {
  // The same story; the up-to-date acceptor omits the votes it executed and reports them chosen.
  const omitted = story(true, 3, 10_000, 30, 30_000, true);
  const unbacked = story(false, 3, 10_000, 30, 30_000, true);

  it("gets Promises of a few hundred bytes instead of every vote above its point", () => {
    const whole = story(true, 3, 10_000, 30, 30_000);
    expect(whole.maxPromiseBytes).toBeGreaterThan(30_000);
    expect(omitted.maxPromiseBytes).toBeLessThan(500);
    expect(omitted.promiseBytesToLagging * 100).toBeLessThan(whole.promiseBytesToLagging);
  });

  it("elects a leader that lasts, even without the resend backoff", () => {
    for (const r of [omitted, unbacked]) {
      expect(r.leader).not.toBeNull();
      expect(r.ledMs).toBeGreaterThan(20_000);
      expect(r.maxPromiseBytes).toBeLessThan(500);
    }
  });
});

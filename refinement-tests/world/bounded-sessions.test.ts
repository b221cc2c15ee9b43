/**
 * The world at feature level 2 (the `bounded-sessions` suite tuning): the replicas raise the level
 * with a session table smaller than the world's clients, sessions are evicted all the time, clients
 * meet `session-expired` and start again under a new client id, and every check still holds; a
 * replica that evicts another session than the spec's is caught.
 */
import { describe, expect, it } from "vitest";
import { step as realStep, type ReplicaState, type Step } from "../../impl/core/testing/index.ts";
import { outputBytes, restoredFeatures, type Service } from "../../spec/service.ts";
import { pmForEach, pmRemove } from "../../spec/persistent-map.ts";
import { boundedSessionsRequired, missingSometimes, runIndices } from "../campaign.ts";
import { runOne, runSeed, suiteProfile } from "../suite.ts";

const profile = suiteProfile("bounded-sessions")!;

/**
 * `service` evicting, when the table is over its bounds, the most recently executed session other
 * than the requester's (`newest`), instead of the least recent one; with `newest` false, the least
 * recent one, as the spec does (the wrapper's own control).
 */
function evicting<S, I, O>(service: Service<S, I, O>, newest: boolean): Service<S, I, O> {
  const apply: Service<S, I, O>["apply"] = (request, state) => {
    const f = state.features;
    if (f === undefined) return service.apply(request, state);
    const bounds = { sessionsMax: f.sessionsMax, outputBytesMax: f.outputBytesMax };
    const unbounded = { ...f, sessionsMax: Number.MAX_SAFE_INTEGER, outputBytesMax: Number.MAX_SAFE_INTEGER };
    const applied = service.apply(request, { ...state, features: unbounded });
    let sessions = applied.state.sessions;
    let evicted = f.evicted;
    const bytes = (): number => {
      let n = 0;
      pmForEach(sessions, (_, session) => (n += outputBytes(session.output)));
      return n;
    };
    while (sessions.size > 1 && (sessions.size > f.sessionsMax || bytes() > f.outputBytesMax)) {
      let victim: string | null = null;
      let victimAt = newest ? -1 : Number.MAX_SAFE_INTEGER;
      pmForEach(sessions, (clientId, session) => {
        const at = session.at ?? 0;
        if (clientId !== request.clientId && (newest ? at > victimAt : at < victimAt))
          [victim, victimAt] = [clientId, at];
      });
      if (victim === null) break;
      sessions = pmRemove(sessions, victim);
      evicted++;
    }
    // The order rebuilt from the places of the sessions kept, as a restored snapshot rebuilds it.
    const features = restoredFeatures(sessions, f.level, bounds, evicted, applied.state.executed);
    if (typeof features === "string") throw new Error(features);
    return { ...applied, state: { ...applied.state, sessions, features } };
  };
  return { ...service, apply, transition: (r, s) => apply(r, s).state, output: (r, s) => apply(r, s).output };
}

/** The real step, but replica 1 executes with `evicting`'s service. */
function evictingOnOne(newest: boolean): Step {
  return ((state: ReplicaState<unknown, unknown, unknown>, event: unknown) => {
    if (state.ctx.config.self !== 1) return realStep(state as never, event as never);
    const ctx = state.ctx;
    const r = realStep({ ...state, ctx: { ...ctx, service: evicting(ctx.service, newest) } }, event as never);
    return { ...r, state: { ...r.state, ctx } };
  }) as Step;
}

describe("the world at feature level 2 (bounded-sessions)", () => {
  it("runs pass every check and reach eviction, session-expired, and evictions across snapshots and transfers", () => {
    const totals = runIndices(
      Array.from({ length: 10 }, (_, k) => k),
      { seed: 1, runs: 10, replicas: 3, profile },
    );
    if (totals.failure !== null)
      throw new Error(
        `${totals.failure.failure.check}: ${totals.failure.failure.message}\nreplay: npm run check -- --replay ${totals.failure.seed}:${totals.failure.path} --tuning bounded-sessions`,
      );
    expect(
      missingSometimes(totals.counters, false, "bounded-sessions").filter((n) => boundedSessionsRequired.includes(n)),
    ).toEqual([]);
    expect(
      totals.counters.get("world: client session expired: a new session under a new client id") ?? 0,
    ).toBeGreaterThan(0);
  });

  it("is what reaches them: the same runs at the swarm's own level 1 reach none, and the campaign says so", () => {
    const totals = runIndices(
      Array.from({ length: 10 }, (_, k) => k),
      { seed: 1, runs: 10, replicas: 3 },
    );
    expect(totals.failure).toBeNull();
    const missing = missingSometimes(totals.counters, false, "bounded-sessions");
    expect(boundedSessionsRequired.filter((n) => !missing.includes(n))).toEqual([]);
  });

  it("a replica that evicts the newest session instead of the oldest is caught", () => {
    const caught = (newest: boolean): string[] => {
      const checks: string[] = [];
      for (let k = 0; k < 2 && checks.length === 0; k++) {
        const one = runOne(runSeed(1, k), { replicas: 3, profile, step: evictingOnOne(newest), shrink: false });
        if (one.failed !== null) checks.push(`run ${k}: ${one.failed.failure.check}`);
      }
      return checks;
    };
    expect(caught(true)).toEqual(["run 1: DigestAgreement"]);
    // The same wrapper evicting the oldest, as the spec does, passes the same runs.
    expect(caught(false)).toEqual([]);
  });
});

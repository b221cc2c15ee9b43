/**
 * The world at feature level 2 (the `bounded-sessions` suite tuning): the replicas raise the level
 * with a session table smaller than the world's clients, sessions are evicted all the time, clients
 * meet `session-expired` and start again under a new client id, and every check still holds; a
 * replica that evicts another session than the spec's is caught.
 */
import { describe, expect, it } from "vitest";
import { step as realStep, type ReplicaState, type Step } from "../../impl/core/testing/index.ts";
import { outputBytes, type Service } from "../../spec/service.ts";
import { pmForEach, pmGet, pmRemove } from "../../spec/persistent-map.ts";
import { boundedSessionsRequired, missingSometimes, runIndices } from "../campaign.ts";
import { runOne, runSeed, suiteProfile } from "../suite.ts";

const profile = suiteProfile("bounded-sessions")!;

/**
 * `service` evicting, when the table is over its bounds, the most recently executed session other
 * than the requester's, instead of the least recent one.
 */
function evictingNewest<S, I, O>(service: Service<S, I, O>): Service<S, I, O> {
  const apply: Service<S, I, O>["apply"] = (request, state) => {
    const f = state.features;
    if (f === undefined) return service.apply(request, state);
    const unbounded = { ...f, sessionsMax: Number.MAX_SAFE_INTEGER, outputBytesMax: Number.MAX_SAFE_INTEGER };
    const applied = service.apply(request, { ...state, features: unbounded });
    let sessions = applied.state.sessions;
    let features = { ...applied.state.features!, sessionsMax: f.sessionsMax, outputBytesMax: f.outputBytesMax };
    while (sessions.size > 1 && (sessions.size > f.sessionsMax || features.outputBytes > f.outputBytesMax)) {
      let newest: string | null = null;
      let newestAt = -1;
      pmForEach(sessions, (clientId, session) => {
        if (clientId !== request.clientId && (session.at ?? 0) > newestAt)
          [newest, newestAt] = [clientId, session.at ?? 0];
      });
      if (newest === null) break;
      const gone = pmGet(sessions, newest)!;
      sessions = pmRemove(sessions, newest);
      features = {
        ...features,
        order: pmRemove(features.order, String(newestAt)),
        outputBytes: features.outputBytes - outputBytes(gone.output),
        evicted: features.evicted + 1,
      };
    }
    return { ...applied, state: { ...applied.state, sessions, features } };
  };
  return { ...service, apply, transition: (r, s) => apply(r, s).state, output: (r, s) => apply(r, s).output };
}

/** The real step, but replica 1 executes with `evictingNewest`'s service. */
const newestEvictedOnOne: Step = ((state: ReplicaState<unknown, unknown, unknown>, event: unknown) => {
  if (state.ctx.config.self !== 1) return realStep(state as never, event as never);
  const ctx = state.ctx;
  const r = realStep({ ...state, ctx: { ...ctx, service: evictingNewest(ctx.service) } }, event as never);
  return { ...r, state: { ...r.state, ctx } };
}) as Step;

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
    expect(missingSometimes(totals.counters, false, true).filter((n) => boundedSessionsRequired.includes(n))).toEqual(
      [],
    );
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
    const missing = missingSometimes(totals.counters, false, true);
    expect(boundedSessionsRequired.filter((n) => !missing.includes(n))).toEqual([]);
  });

  it("a replica that evicts the newest session instead of the oldest is caught", () => {
    const checks: string[] = [];
    for (let k = 0; k < 10 && checks.length === 0; k++) {
      const one = runOne(runSeed(1, k), { replicas: 3, profile, step: newestEvictedOnOne, shrink: false });
      if (one.failed !== null) checks.push(`run ${k}: ${one.failed.failure.check}`);
    }
    expect(checks).toEqual(["run 1: DigestAgreement"]);
  });
});

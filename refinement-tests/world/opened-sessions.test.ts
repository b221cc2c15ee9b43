/**
 * The world at feature level 3 (the `opened-sessions` suite tuning): clients ask the service for
 * their sessions and open a new one after `session-expired`; sessions are evicted all the time by
 * the sessions that retried, duplicated and lost open-session requests open; and every check still
 * holds, the linearizability of histories whose first request of a session may be any write
 * included (at level 2 it is a put harmless to run twice).
 */
import { describe, expect, it } from "vitest";
import { runIndices } from "../campaign.ts";
import { suiteProfile } from "../suite.ts";
import { openedEvicted, sessionEvicted } from "../../proofs/service-level.ts";

describe("the world at feature level 3 (opened-sessions)", () => {
  it("runs pass every check, open sessions, evict them and open new ones after session-expired", () => {
    const totals = runIndices(
      Array.from({ length: 10 }, (_, k) => k),
      { seed: 1, runs: 10, replicas: 3, profile: suiteProfile("opened-sessions")! },
    );
    if (totals.failure !== null)
      throw new Error(
        `${totals.failure.failure.check}: ${totals.failure.failure.message}\nreplay: npm run check -- --replay ${totals.failure.seed}:${totals.failure.path} --tuning opened-sessions`,
      );
    const count = (name: string): number => totals.counters.get(name) ?? 0;
    expect(count("Service: OpenSession")).toBeGreaterThan(0);
    expect(count("world: client opened a session")).toBeGreaterThan(0);
    expect(count(sessionEvicted)).toBeGreaterThan(0);
    expect(count(openedEvicted)).toBeGreaterThan(0);
    expect(count("world: client session expired: the service opens it a new one")).toBeGreaterThan(0);
    // No client-chosen session at level 3: nobody starts again under a new client id.
    expect(count("world: client session expired: a new session under a new client id")).toBe(0);
  });
});

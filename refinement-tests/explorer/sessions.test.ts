/**
 * The explorer at feature levels 2 and 3 (`--sessions-max`, `--feature-level 3`): searching for a
 * state rather than a bug (`--goal`, `ImplModel.goal`), breadth first finds the shortest path to
 * a client answered `session-expired`, and at level 3 to a session the service opened evicted;
 * writing clients may send more than one put (`--writes-per-client`), so that a client goes on
 * after `session-expired`, or sends several numbers under one session; and at level 3 a replica
 * that opens an id it opened before is caught at those bounds.
 */
import { describe, expect, it } from "vitest";
import { openedEvicted, retryExpired } from "../../proofs/service-level.ts";
import { mutantNamed } from "../mutants/index.ts";
import { regressions } from "../regressions/regressions.ts";
import { describeBounds, explore, replay } from "./explorer.ts";
import { defaultBounds, ImplModel, type ImplBounds } from "./model.ts";

/** Two writing clients at feature level 2 with a table of one session; deliveries in the order sent. */
const tiny: ImplBounds = {
  ...defaultBounds,
  writes: 2,
  reads: 0,
  orders: "fifo",
  overrides: { featureLevel: 2, sessionsMax: 1 },
};

describe("the explorer at feature level 2", () => {
  it("reaches session-expired at tiny bounds: each session's opening put is a request of its own", () => {
    // c1 opens its session, c2 opens one and evicts it, c1's put is refused: 14 transitions.
    const x = explore({ bounds: tiny, mode: "bfs", depth: 16, maxStates: 5000, goal: retryExpired });
    expect(x.regression).toBeNull();
    expect(x.reached?.length).toBe(14);
    expect(x.result.distinct).toBeLessThan(300);
    const actions = x.reached!.scenario.actions.map((a) => a.t);
    expect(actions.filter((t) => t === "submit")).toHaveLength(3);
  });

  it("lets a writing client send its next put once the last was answered, up to writesPerClient", () => {
    const submits = (writesPerClient: number): number => {
      const model = new ImplModel({ ...defaultBounds, writes: 1, reads: 0, writesPerClient });
      const roots = model.roots();
      if (!Array.isArray(roots)) throw new Error(roots.violation.message);
      // The client's first put, carried to its answer by fault-free time (the world's own actions).
      const s = roots[0]!.state;
      const w = s.world;
      w.apply({ t: "submit", c: 0, op: { kind: "put", key: 0 } });
      for (let i = 0; i < 40 && w.clients[0]!.op !== null; i++) {
        w.deliverAll();
        w.advance(10);
      }
      expect(w.clients[0]!.op).toBeNull();
      w.deliverAll();
      return model.actions(s).filter((x) => x.action?.t === "submit").length;
    };
    expect(submits(1)).toBe(0);
    expect(submits(2)).toBeGreaterThan(0);
  });
});

/** Two writing clients at feature level 3 with a table of one session: each opens its session through the log. */
const opened: ImplBounds = { ...tiny, overrides: { featureLevel: 3, sessionsMax: 1 } };

describe("the explorer at feature level 3", () => {
  it("reaches an opened session evicted: c1's session opened, c1's put, c2's session opened evicts it", () => {
    const x = explore({ bounds: opened, mode: "bfs", depth: 14, maxStates: 5000, goal: openedEvicted });
    expect(x.regression).toBeNull();
    expect(x.reached?.length).toBe(12);
    expect(x.result.distinct).toBeLessThan(200);
    expect(describeBounds(opened)).toContain("--feature-level 3 --sessions-max 1");
  });

  it("catches a replica that opens an id it opened before, at those bounds", () => {
    // The zoo's `open-session-reuses-id` forgets its count of opened sessions (as one restored
    // from a snapshot without it would): c2 is handed `session 1`, which c1 holds. The spec opened
    // `session 2`.
    const reopening = mutantNamed("open-session-reuses-id").step;
    const x = explore({
      bounds: { ...opened, writesPerClient: 2 },
      mode: "bfs",
      depth: 14,
      maxStates: 5000,
      mutant: { name: "open-session-reuses-id", step: reopening },
    });
    expect(x.regression?.expect).toBe("RepliesMatchSpec");
    expect(x.result.distinct).toBeLessThan(200);
    // The same path passes with the real replica.
    expect(replay(x.regression!)).toBeNull();
  });

  it("the late first copy's kept path catches a replica that runs the copy again", () => {
    // The zoo's `late-first-copy-runs` runs a request numbered 1 whose session is gone, as level
    // 2 would without its guards, under a session of its own: here the late copy runs a second
    // time. (From scratch the explorer catches it sooner, by RepliesMatchSpec: a first put chosen
    // after its session was evicted, answered as run; 3,697 states at these bounds with
    // --duplicates 1 --delays 1, the mutant's own bounds.)
    const runsLateCopy = mutantNamed("late-first-copy-runs").step;
    // The path ends where the copy is chosen (the ghost counts it there); the replicas execute it
    // once what is in flight is delivered.
    const kept = regressions().find((r) => r.name === "explore-late-first-copy-refused")!;
    const actions = [...kept.scenario.actions, { t: "deliverAll" } as const, { t: "deliverAll" } as const];
    const late = { ...kept, scenario: { ...kept.scenario, actions } };
    expect(replay(late)).toBeNull();
    expect(replay(late, runsLateCopy)?.check).toBe("ExactlyOnce");
  });
});

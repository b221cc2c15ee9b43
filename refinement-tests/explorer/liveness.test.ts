/**
 * The explorer's bounded-liveness mode (`--liveness`): from every state it finds, the fault-free
 * continuation of the random suites' liveness mode (heal, restart, resume, no more faults) must
 * reach a leaseholder within 2 D + 5 election timeouts and converge within 20 s of simulated time.
 * Where it converges with at most 3 voters and nothing pending, the continuation ends with the
 * election race (every election timer fires in one tick; a leaseholder before time moves again).
 * It catches a liveness bug with a trace that replays in the world's liveness mode, and passes the
 * correct replica at the same bounds.
 */
import { describe, expect, it } from "vitest";
import { defaultRules } from "../../impl/core/testing/index.ts";
import { withRules } from "../mutants/mutant.ts";
import { mutantNamed } from "../mutants/index.ts";
import { explore, replay } from "./explorer.ts";
import { defaultBounds, type ImplBounds } from "./model.ts";

/**
 * The reelected prelude's pick 37, where the leader of two voters removes itself and the other is
 * replaced in one window (the prelude asks both), with a read and a crash added.
 */
const retiring: ImplBounds = {
  ...defaultBounds,
  writes: 0,
  reads: 1,
  crashes: 1,
  prelude: "reelected",
  pick: 37,
  tuning: 4,
  settle: true,
  orders: "fifo",
  liveness: true,
};

describe("bounded liveness in the explorer", () => {
  it("catches retiring-voter-never-campaigns, with a trace that replays in liveness mode and passes the real replica", () => {
    const m = mutantNamed("retiring-voter-never-campaigns");
    const found = explore({ bounds: retiring, mode: "bfs", depth: 8, maxStates: 10_000, mutant: m });
    expect(found.regression?.expect).toMatch(/^Liveness/);
    expect(found.regression!.liveness).toBe(true);
    expect(replay(found.regression!, m.step)?.check).toBe(found.regression!.expect);
    expect(replay(found.regression!)?.check ?? "passes").toBe("passes");
  });

  it("the real replica reaches a leaseholder and converges from every state within the same bounds", () => {
    const found = explore({ bounds: retiring, mode: "bfs", depth: 8, maxStates: 10_000 });
    expect(found.regression).toBeNull();
    expect(found.result.distinct).toBeGreaterThan(100);
  });

  it("catches self-grant-kept by the election race, where the real replica wins it from every state", () => {
    // A write, a crash (restarted by the continuation) and a partition: the race runs from states
    // where a replica was down, a write was half done or a link was cut, not only from the root.
    const bounds: ImplBounds = {
      ...defaultBounds,
      writes: 1,
      reads: 0,
      crashes: 1,
      partitions: 1,
      orders: "fifo",
      liveness: true,
    };
    const m = mutantNamed("self-grant-kept");
    const found = explore({ bounds, mode: "bfs", depth: 5, maxStates: 10_000, mutant: m });
    expect(found.regression?.expect).toBe("LivenessElectionRace");
    expect(replay(found.regression!, m.step)?.check).toBe("LivenessElectionRace");
    expect(replay(found.regression!)?.check ?? "passes").toBe("passes");
    const real = explore({ bounds, mode: "bfs", depth: 5, maxStates: 10_000 });
    expect(real.regression).toBeNull();
    expect(real.result.distinct).toBeGreaterThan(100);
    // Without the mode, the same search sees nothing: the bug is a liveness bug only.
    const safety = explore({
      bounds: { ...bounds, liveness: false },
      mode: "bfs",
      depth: 5,
      maxStates: 10_000,
      mutant: m,
    });
    expect(safety.regression).toBeNull();
  });

  it("finds a stuck state below the root: nobody campaigns again once the first leader has crashed", () => {
    // Only a replica that never saw a ballot campaigns: the first election happens, no later one.
    const neverCampaigns = withRules({
      mayCampaign: (rules, state, now) => state.election.roundSeen === 0 && defaultRules.mayCampaign(rules, state, now),
    });
    const bounds: ImplBounds = { ...defaultBounds, writes: 0, reads: 0, crashes: 1, orders: "fifo", liveness: true };
    const found = explore({
      bounds,
      mode: "bfs",
      depth: 4,
      maxStates: 10_000,
      mutant: { name: "never-campaigns", step: neverCampaigns },
    });
    expect(found.regression?.expect).toBe("LivenessLeaseholder");
    expect(found.result.counterexample!.length).toBeGreaterThan(0);
    expect(found.regression!.scenario.actions.some((a) => a.t === "crash")).toBe(true);
    expect(replay(found.regression!, neverCampaigns)?.check).toBe("LivenessLeaseholder");
    expect(replay(found.regression!)?.check ?? "passes").toBe("passes");
    // Without the mode, the same search sees nothing: the bug is a liveness bug only.
    const safety = explore({
      bounds: { ...bounds, liveness: false },
      mode: "bfs",
      depth: 4,
      maxStates: 10_000,
      mutant: { name: "never-campaigns", step: neverCampaigns },
    });
    expect(safety.regression).toBeNull();
  });
});

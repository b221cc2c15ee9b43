/**
 * A follower stalled past its election deadline waits for its leader, one heartbeat interval, or
 * its election timeout when its whole process was stopped (config `electionWaitsAfterStall`,
 * impl/core/election.ts `waitAfterStall`); the story with the option on is
 * impl/core/testdata/election-after-stall.txt. Without it, the hazard: a cluster
 * stopped and resumed as a whole (a paused virtual machine, SIGSTOP) loses its leader to the first
 * follower that ticks, though the leader was never silent while anyone ran.
 */
import { describe, expect, it } from "vitest";
import { Cluster } from "./testing/cluster.ts";

/** A 3-replica cluster led by 1, stopped as a whole for 2 s, then ticked once: who campaigns. */
function stopAndResume(electionWaitsAfterStall: boolean): { readonly campaigns: string[]; readonly c: Cluster } {
  const c = new Cluster(3, { config: { electionWaitsAfterStall } });
  c.elapse(300);
  c.campaign(1);
  c.stabilize();
  const mark = c.lines.length;
  c.elapse(2000);
  c.tickAll();
  c.stabilize();
  return { campaigns: c.lines.slice(mark).filter((line) => / is candidate /.test(line)), c };
}

describe("a follower stalled past its election deadline (electionWaitsAfterStall)", () => {
  it("without it, the first follower to tick after the cluster's stall campaigns and the leader is lost", () => {
    const { campaigns, c } = stopAndResume(false);
    expect(campaigns.length).toBeGreaterThan(0);
    expect(c.state(1).role._tag).not.toBe("leader");
  });

  it("with it, the followers wait for the leader's heartbeat and it keeps leading", () => {
    const { campaigns, c } = stopAndResume(true);
    expect(campaigns).toEqual([]);
    expect(c.state(1).role._tag).toBe("leader");
  });

  it("after a stop of the whole cluster, waits an election timeout for a leader that runs again later than it", () => {
    const c = new Cluster(3, { config: { electionWaitsAfterStall: true } });
    c.elapse(300);
    c.campaign(1);
    c.stabilize();
    const mark = c.lines.length;
    c.elapse(2000);
    // The followers run again first; the leader, waiting for a core, 3 heartbeat intervals later.
    const interval = c.config(2).heartbeatIntervalMs;
    for (let t = 0; t <= 3 * interval; t += 10) {
      for (const id of [2, 3] as const) c.apply(id, { _tag: "Tick", now: c.clock(id) });
      c.elapse(10);
    }
    c.tickAll();
    c.stabilize();
    expect(c.lines.slice(mark).filter((line) => / is candidate /.test(line))).toEqual([]);
    expect(c.state(1).role._tag).toBe("leader");
  });

  it("waits once per stall: a follower whose leader died campaigns an election timeout after a stop", () => {
    const { c } = stopAndResume(true);
    c.elapse(2000);
    c.crash(1);
    c.tickAll();
    const interval = c.config(2).heartbeatIntervalMs;
    c.advance(interval, 10);
    expect(c.state(2).role._tag).toBe("follower");
    expect(c.state(3).role._tag).toBe("follower");
    c.advance(c.config(2).electionTimeoutMsMax, 10);
    expect([c.state(2).role._tag, c.state(3).role._tag]).toContain("leader");
  });

  it("and a heartbeat interval after a timer that merely fired late", () => {
    const { c } = stopAndResume(true);
    c.crash(1);
    // Every follower's deadline passed by more than a heartbeat interval, by less than an election timeout.
    c.elapse(c.config(2).electionTimeoutMsMax + 100);
    c.tickAll();
    expect(c.state(2).role._tag).toBe("follower");
    expect(c.state(3).role._tag).toBe("follower");
    c.advance(c.config(2).heartbeatIntervalMs, 10);
    expect([c.state(2).role._tag, c.state(3).role._tag]).toContain("leader");
  });
});

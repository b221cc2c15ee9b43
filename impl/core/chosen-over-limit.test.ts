/**
 * The value limit in bytes (spec/kv.ts `valueBytesMax`) is admission's, not execution's: a command
 * that is chosen is executed alike by every replica, whichever version admitted it and whenever a
 * replica executes it. Here a put of 1.2 MB of UTF-8 (600 Ki code units: within the limit of the
 * versions that counted code units, which admitted it) is proposed straight to the core, as such a
 * leader proposed it; a replica that was down executes it later from the log, and every checkpoint
 * agrees. Before, a replica of the byte-counting version refused it when it executed the log, while
 * one whose snapshot already held it kept it: a divergence over a chosen command.
 */
import { describe, expect, it } from "vitest";
import { kvGet } from "../../spec/kv.ts";
import { Cluster } from "./testing/cluster.ts";

describe("a chosen command over the value limit in bytes", () => {
  it("is executed by every replica, one replaying it after a restart included, with no divergence", () => {
    const c = Cluster.elected(3, { config: { checkpointIntervalSlots: 2 } });
    const big = "\u00e9".repeat(600 * 1024);
    c.crash(3);
    const put = c.request(1, { _tag: "put", key: "k", value: big }, "linearizable");
    c.stabilize();
    expect(c.replies.get(put)).toMatchObject({ _tag: "ok", output: { _tag: "ok" } });
    c.restart(3);
    c.advance(400, 50);
    for (let i = 0; i < 4; i++) c.request(1, { _tag: "put", key: `j${i}`, value: "x" }, "linearizable");
    c.advance(400, 50);
    for (const id of [1, 2, 3]) {
      const s = c.state(id);
      expect(s.halted, `replica ${id}`).toBeNull();
      expect(kvGet(s.learner.service.app, "k") === big, `replica ${id}`).toBe(true);
      expect(s.monitor.checkpoints.at(-1)).toEqual(c.state(1).monitor.checkpoints.at(-1));
    }
    expect(c.state(3).learner.executedUpTo).toBe(c.state(1).learner.executedUpTo);
  });
});

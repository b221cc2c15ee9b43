/**
 * Liveness of reconfiguration: replica 3's disk fails for good; the operator removes it
 * and adds a fresh replica 4, which joins as a learner, catches up by state transfer, and is
 * promoted. The cluster keeps making progress throughout, the new replica converges to the
 * leader's state (the same digest), and every check of the refinement chain holds after every
 * world step, with linearizability judged on the whole client history at the end.
 */
import { describe, expect, it } from "vitest";
import { kv, type KvInput, type KvOutput, type KvState } from "../spec/kv.ts";
import { checkLinearizable } from "../impl/history/linearizability.ts";
import { kvModel } from "../impl/history/history.ts";
import { WorldChecker } from "../proofs/world-checker.ts";
import type { ReconfigureKind } from "./world/actions.ts";
import { World } from "./world/world.ts";

describe("replacing a failed replica", () => {
  it("removes the crashed replica, adds a fresh one that catches up by state transfer and is promoted; the cluster progresses and the new replica converges", () => {
    const world = new World({ replicas: 3, spares: 1, seed: 5 });
    const checker = new WorldChecker<KvState, KvInput, KvOutput>(world, kv, {
      leaseMs: world.tuning.leaseMs,
      alpha: world.tuning.reconfigAlphaSlots,
      initialMembers: world.initialMembers,
    });
    world.observer = (step) => checker.observe(step);
    world.boot();

    /** Let time pass with a reliable network and patient clients until `done` (at most `ms` of simulated time). */
    const runUntil = (done: () => boolean, ms = 5_000, what = "the goal"): void => {
      const start = world.trueTime;
      while (!done() && world.trueTime - start < ms) {
        world.deliverAll();
        world.advance(10);
        if (Math.round(world.trueTime - start) % 100 === 0) world.retryAll();
      }
      const answers = [...world.changes.values()].map((c) => c.result?._tag ?? "none").join(" ");
      expect(
        done(),
        `${what} not reached within ${ms} ms of simulated time (membership answers so far: ${answers})`,
      ).toBe(true);
    };
    const leader = () => world.leaseHolders()[0];
    const writes = (n: number): void => {
      for (let k = 0; k < n; k++) {
        world.apply({ t: "submit", c: k % 3, op: { kind: "put", key: k % 2 } });
        runUntil(() => world.pendingOps() === 0);
      }
    };
    const change = (
      kind: ReconfigureKind,
      which: number,
      expected: (voters: string, learners: string) => boolean,
    ): void => {
      runUntil(
        () => {
          const l = leader();
          if (l === undefined) return false;
          const configs = world.replicas[l]!.state!.learner.configs;
          const latest = configs[configs.length - 1]!;
          if (expected(latest.voters.join(","), latest.learners.join(","))) return true;
          world.apply({ t: "reconfigure", kind, r: which });
          return false;
        },
        10_000,
        `${kind} ${which}`,
      );
    };

    runUntil(() => leader() !== undefined);
    writes(6);

    // Replica 3 fails for good.
    world.apply({ t: "crash", r: 2, at: null });
    writes(2);

    // Remove it: the remaining two are a quorum of {1,2,3} and then all of {1,2}.
    change("remove", 2, (voters) => voters === "1,2");
    writes(4);

    // Add a fresh replica 4 (empty disk): a learner, behind the leaders' log truncation.
    change("add", 1, (_voters, learners) => learners === "4"); // the candidates: 3 (crashed, removed), then the spare 4
    writes(4);
    runUntil(
      () =>
        world.replicas[3]!.state!.learner.executedUpTo >= world.replicas[leader()!]!.state!.learner.executedUpTo - 1,
    );
    expect(checker.tally.counts.get("sometimes: snapshot installed by state transfer") ?? 0).toBeGreaterThan(0);

    // Promote it once it has caught up.
    change("promote", 0, (voters) => voters === "1,2,4");
    writes(6);

    // The cluster made progress, and replica 4 executed exactly what the leader did, to the same state.
    runUntil(() => world.membersConverged(), 5_000);
    const l = world.replicas[leader()!]!.state!;
    const four = world.replicas[3]!.state!;
    expect(four.learner.executedUpTo).toBe(l.learner.executedUpTo);
    expect(kv.digest(four.learner.service.app)).toBe(kv.digest(l.learner.service.app));
    expect(world.replicas[2]!.state).toBeNull();
    expect(world.ops.every((op) => op.completedAt !== undefined)).toBe(true);

    const ops = world.ops.map((op) => ({
      id: op.opId,
      client: op.client,
      input: op.input,
      invoke: op.invokedAt,
      complete: op.completedAt ?? Infinity,
      output: op.output,
    }));
    expect(checkLinearizable(kvModel, ops).verdict).toBe("linearizable");
  });
});

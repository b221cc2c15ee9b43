/**
 * A rolling upgrade of the feature level in the middle of a nemesis run (`npm run nemesis --
 * --feature-level 3 --raise-feature-level 4`), as docs/operations.md ("Upgrading") tells an
 * operator to make one: every replica is given the new `featureLevel` in its core configuration,
 * and the members are restarted one at a time (SIGTERM, then a start on their data), the leader
 * last; once every member names the level, the leader raises the log to it through the log
 * (impl/core/leader.ts, `featuresDue`). The clients go on meanwhile: what they sent before the
 * raise's slot executes by the old level's rules, what comes after by the new one's.
 */
import type { NemesisCluster } from "./cluster.ts";
import { monotonicMs } from "./cluster.ts";

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** What a rolling upgrade did: whom it restarted, and how long after its start the log showed the level. */
export interface Upgrade {
  readonly level: number;
  /** Run time (ms since the run's origin, unrounded as the faults' are) of the first restart. */
  readonly startedAt: number;
  readonly restarted: readonly number[];
  /** Milliseconds from the first restart until the leader's log was at `level`; null if it never was. */
  readonly raisedAfterMs: number | null;
}

/** How long a restarted member has to answer /status, and the leader to raise the log, in ms. */
const answerWithinMs = 30_000;
const raiseWithinMs = 60_000;

/**
 * Restart every running member in turn with `featureLevel` `level` over `core` (the leader last),
 * waiting for each to answer again, then until the leader's log is at `level`.
 */
export async function raiseFeatureLevel(
  cluster: NemesisCluster,
  core: Record<string, unknown>,
  level: number,
  progress: (line: string) => void,
  /** Run time: milliseconds since the run's origin. */
  now: () => number,
): Promise<Upgrade> {
  cluster.setCore({ ...core, featureLevel: level });
  const started = monotonicMs();
  // Not rounded: the faults' times are not, and the upgrade starts within a millisecond of the
  // last fault before it ending, which a rounded start could put before that end.
  const startedAt = now();
  const leader = await cluster.leader();
  const running = cluster.memberIds.filter((id) => cluster.running(id));
  const order = [...running.filter((id) => id !== leader), ...running.filter((id) => id === leader)];
  for (const id of order) {
    await cluster.kill(id, "SIGTERM");
    cluster.start(id);
    const deadline = monotonicMs() + answerWithinMs;
    while ((await cluster.status(id)) === undefined && monotonicMs() < deadline) await sleep(100);
    progress(`upgrade: replica ${id} restarted with featureLevel ${level}`);
  }
  const deadline = monotonicMs() + raiseWithinMs;
  for (;;) {
    const status = await cluster.leaderStatus();
    if (status !== null && status.sessions.featureLevel >= level) {
      const raisedAfterMs = Math.round(monotonicMs() - started);
      progress(`upgrade: the log is at feature level ${level} (${raisedAfterMs} ms after the first restart)`);
      return { level, startedAt, restarted: order, raisedAfterMs };
    }
    if (monotonicMs() > deadline) {
      progress(`upgrade: the log was not raised to level ${level} within ${raiseWithinMs / 1000} s`);
      return { level, startedAt, restarted: order, raisedAfterMs: null };
    }
    await sleep(100);
  }
}

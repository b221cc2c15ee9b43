/**
 * Failover time, measured the same way for both systems: writers hammer the cluster through
 * every member (following paxos-lease's redirects), the leader is killed with SIGKILL, and the
 * failover time is from the kill to the completion of the first write that was sent after the
 * kill and succeeded. Then the killed member is started again on its data and the cluster is
 * given time to settle before the next kill. Every wait is bounded.
 */
import http from "node:http";
import { sleep } from "../../impl/runtime/testing.ts";
import { send } from "./load.ts";
import type { BenchCluster } from "./systems.ts";

/** One kill. */
export interface FailoverSample {
  readonly killed: number;
  /** Milliseconds from the SIGKILL to the first successful write sent after it (null: none within the limit). */
  readonly ms: number | null;
  readonly newLeader: number | null;
}

/** Options of {@link measureFailover}. Limits state their defaults. */
export interface FailoverOptions {
  /** Concurrent writers. Default 4. */
  readonly writers?: number;
  /** One attempt's timeout, in milliseconds. Default 300. */
  readonly attemptTimeoutMs?: number;
  /** Give up waiting for a write after the kill, in milliseconds. Default 30000. */
  readonly waitMsMax?: number;
  /** Load before the kill, in milliseconds. Default 1000. */
  readonly warmupMs?: number;
  /** The writers' HTTP agent (where their connections come from). Default: a keep-alive agent on this host. */
  readonly agent?: http.Agent;
}

/** Kill the leader once and measure. The killed member is restarted before this returns. */
export async function measureFailover(cluster: BenchCluster, options: FailoverOptions = {}): Promise<FailoverSample> {
  const leader = await cluster.leader(30_000);
  if (leader === null) throw new Error(`${cluster.name}: no leader before the kill`);
  const agent = options.agent ?? new http.Agent({ keepAlive: true });
  const timeoutMs = options.attemptTimeoutMs ?? 300;
  let killedAt = Number.POSITIVE_INFINITY;
  let firstAfterKill: number | null = null;
  let stop = false;
  const writer = async (w: number): Promise<void> => {
    for (let i = 0; !stop && i < 1_000_000; i++) {
      const member = cluster.members[(w + i) % cluster.members.length]!;
      const driver = cluster.driver(member);
      const sentAt = performance.now();
      let ok = false;
      try {
        let request = driver.write(`failover/${w}`, `v${i}`);
        let answer = await send(agent, request, timeoutMs);
        const location =
          answer.status === 307 ? (JSON.parse(answer.body) as { location?: string }).location : undefined;
        if (location !== undefined) {
          request = { ...request, url: location };
          answer = await send(agent, request, timeoutMs);
        }
        ok = driver.ok(answer.status, answer.body);
      } catch {
        ok = false;
      }
      const doneAt = performance.now();
      if (ok && sentAt >= killedAt && firstAfterKill === null) firstAfterKill = doneAt;
      if (!ok) await sleep(5);
    }
  };
  const writers = Array.from({ length: options.writers ?? 4 }, (_, w) => writer(w));
  try {
    await sleep(options.warmupMs ?? 1000);
    killedAt = performance.now();
    await cluster.kill(leader);
    const deadline = killedAt + (options.waitMsMax ?? 30_000);
    while (firstAfterKill === null && performance.now() < deadline) await sleep(5);
  } finally {
    stop = true;
    await Promise.all(writers);
    if (options.agent === undefined) agent.destroy();
  }
  const newLeader = await cluster.leader(30_000);
  await cluster.restart(leader);
  return { killed: leader, ms: firstAfterKill === null ? null : (firstAfterKill as number) - killedAt, newLeader };
}

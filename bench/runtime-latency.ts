/**
 * Latency of the real service on loopback: starts three replica processes, then measures
 * sequential writes (put through the leader, with a session), linearizable reads (answered by
 * the leader's lease) and stale reads at a follower, one client, one request at a time, and
 * the failover time after SIGKILL of the leader. Prints percentiles; `--json` for machines.
 * Numbers depend on the machine (fsync cost above all); nothing here is asserted.
 *
 *   npx tsx bench/runtime-latency.ts [--requests 200] [--json]
 */
import { httpJson, keyPath, newSession } from "../impl/runtime/client.ts";
import { TestCluster } from "../impl/runtime/testing-cluster.ts";
import { benchFlags, refuseFlags } from "./lib/flags.ts";

const usage = "usage: npm run bench:runtime -- [--requests 200] [--json] [--help]\n";
const flags = benchFlags(
  { requests: { type: "string", default: "200" }, json: { type: "boolean", default: false } },
  usage,
);
const json = flags.json;
const requests = Number(flags.requests);
if (!Number.isInteger(requests) || requests < 1 || requests > 100_000)
  refuseFlags("--requests takes an integer in [1, 100000]", usage);

function percentiles(samples: number[]): { p50: number; p90: number; p99: number; max: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number): number =>
    Number(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!.toFixed(2));
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: at(1) };
}

async function timed(n: number, label: string, run: (i: number) => Promise<void>): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    await run(i);
    samples.push(performance.now() - started);
    if (!json && process.stderr.isTTY && (i + 1) % Math.max(1, Math.floor(n / 10)) === 0)
      process.stderr.write(`\r${label}: ${i + 1}/${n}`);
  }
  if (!json && process.stderr.isTTY) process.stderr.write("\n");
  return samples;
}

const cluster = await TestCluster.create(3);
try {
  cluster.startAll();
  const leader = await cluster.waitForLeader(120_000);
  const follower = leader === 1 ? 2 : 1;
  const atLeader = cluster.client();
  const check = (status: number, what: string): void => {
    if (status !== 200) throw new Error(`${what} answered ${status}`);
  };
  check((await atLeader.call("PUT", keyPath("warm"), { value: "up" }, newSession())).status, "warm-up");
  const writes = await timed(requests, "writes", async (i) =>
    check((await atLeader.call("PUT", keyPath(`k${i % 100}`), { value: `v${i}` }, newSession())).status, "put"),
  );
  const reads = await timed(requests, "linearizable reads", async (i) =>
    check((await atLeader.call("GET", keyPath(`k${i % 100}`))).status, "get"),
  );
  const stale = await timed(requests, "stale reads at a follower", async (i) => {
    const reply = await httpJson(
      "GET",
      `${cluster.endpoint(follower)}${keyPath(`k${i % 100}`)}?consistency=stale`,
      undefined,
      cluster.authHeaders(),
      3000,
    );
    check(reply.status, "stale get");
  });
  const killedAt = performance.now();
  await cluster.kill(leader, "SIGKILL");
  check(
    (await cluster.client(60_000).call("PUT", keyPath("after-failover"), { value: "x" }, newSession())).status,
    "put after failover",
  );
  const failoverMs = Number((performance.now() - killedAt).toFixed(0));
  const result = {
    requests,
    writeMs: percentiles(writes),
    linearizableReadMs: percentiles(reads),
    staleReadMs: percentiles(stale),
    failoverMs,
  };
  if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else {
    process.stdout.write(`paxos-lease runtime latency, 3 replicas on loopback, ${requests} sequential requests each\n`);
    for (const [name, p] of [
      ["write", result.writeMs],
      ["linearizable read", result.linearizableReadMs],
      ["stale read (follower)", result.staleReadMs],
    ] as const) {
      process.stdout.write(`  ${name.padEnd(22)} p50 ${p.p50} ms  p90 ${p.p90} ms  p99 ${p.p99} ms  max ${p.max} ms\n`);
    }
    process.stdout.write(`  failover: first write acknowledged ${failoverMs} ms after SIGKILL of the leader\n`);
  }
} finally {
  await cluster.close();
}

/**
 * Whether a 3-member cluster is healthy again soon after a freeze of every member (SIGSTOP, then
 * SIGCONT), as `npm run bench` freezes the system it is not measuring: the two systems take
 * turns, as in the bench, each turn thawing one cluster (the other frozen), waiting until it is
 * healthy (`BenchCluster.healthy`, bounded by `--bound`), loading it with 16 writers for
 * `--load` seconds and leaving it idle for `--idle` more, so each cluster stays frozen for the
 * other's turn (and `--freeze` seconds more, which with one system are its freezes). The first
 * turn comes right after both started, as in the bench: the second
 * system is frozen while it boots. Prints, per thaw, the time to healthy and whether the leader
 * changed; at the end, how many thaws missed the bound. A thaw that misses it leaves each
 * member's status and the logs in `--logs` (healthyOrExplain), and the run goes on with the
 * cluster's next turn.
 *
 *   npx tsx bench/thaw-leader.ts [--systems paxos-lease,etcd] [--cycles 20] [--load 3] [--idle 10]
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { benchFlags, refuseFlags } from "./lib/flags.ts";
import { runLoad } from "./lib/load.ts";
import { loadAverage } from "./lib/report.ts";
import { EtcdCluster, freeze, healthyOrExplain, OursCluster, type BenchCluster } from "./lib/systems.ts";

const usage = `usage: npx tsx bench/thaw-leader.ts [options]

Takes turns between 3-member clusters as npm run bench does (the others frozen with SIGSTOP),
and says after each thaw how long the cluster took to be healthy and whether its leader changed.

options:
  --systems LIST  comma-separated: paxos-lease, etcd (default both)
  --cycles N      turns of each system (default 20)
  --load S        seconds of 16 writers in each turn (default 3; 0 for none)
  --idle S        seconds each turn then leaves its cluster idle (default 10)
  --freeze S      seconds every cluster stays frozen before each turn (default 0; with one
                  system, the length of its freezes)
  --bound S       seconds a thawed cluster has to be healthy (default 90)
  --core JSON     paxos-lease core settings beside the runtime's (impl/core/config.ts), as a JSON object
  --logs DIR      members' logs and statuses of unhealthy clusters (default: a new temporary folder)
  --help          print this help
`;
const flags = benchFlags(
  {
    systems: { type: "string", default: "paxos-lease,etcd" },
    cycles: { type: "string", default: "20" },
    load: { type: "string", default: "3" },
    idle: { type: "string", default: "10" },
    freeze: { type: "string", default: "0" },
    bound: { type: "string", default: "90" },
    core: { type: "string" },
    logs: { type: "string" },
  },
  usage,
);
const cycles = Number(flags.cycles);
const loadS = Number(flags.load);
const idleS = Number(flags.idle);
const freezeS = Number(flags.freeze);
const boundS = Number(flags.bound);
const names = flags.systems.split(",");
if (!(Number.isInteger(cycles) && cycles >= 1) || !(loadS >= 0) || !(idleS >= 0) || !(freezeS >= 0) || !(boundS > 0))
  refuseFlags("cycles, load, idle and bound must be numbers (cycles a positive integer)", usage);
if (names.length === 0 || names.some((n) => n !== "paxos-lease" && n !== "etcd"))
  refuseFlags(`--systems takes paxos-lease and etcd: ${flags.systems}`, usage);
const core = flags.core === undefined ? undefined : (JSON.parse(flags.core) as Record<string, unknown>);
const runDir = flags.logs ?? fs.mkdtempSync(path.join(os.tmpdir(), "paxos-lease-thaw-"));
const clusters: BenchCluster[] = names.map((n) =>
  (n === "paxos-lease" ? new OursCluster(core) : new EtcdCluster()).keepLogsIn(runDir).detach(),
);
process.stdout.write(`logs in ${runDir}; load ${loadAverage()}\n`);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const thaws = new Map<string, { ms: number[]; missed: number; gone: number; changed: number }>(
  clusters.map((c) => [c.name, { ms: [], missed: 0, gone: 0, changed: 0 }]),
);
const leaders = new Map<string, number | null>();
// Interrupted: thaw and stop the clusters, whose members (detached) would otherwise stay behind, frozen.
for (const signal of ["SIGINT", "SIGTERM"] as const)
  process.once(signal, () => {
    void Promise.all(clusters.map((c) => (freeze(c, false), c.close()))).finally(() => process.exit(130));
  });
try {
  for (const c of clusters) await c.start();
  for (let i = 0; i < cycles; i++) {
    for (const cluster of clusters) {
      if (freezeS > 0) {
        for (const c of clusters) freeze(c, true);
        await sleep(freezeS * 1000);
      }
      for (const c of clusters) freeze(c, c !== cluster);
      const frozenFor = performance.now();
      const record = thaws.get(cluster.name)!;
      let leader: number | null = null;
      try {
        leader = await healthyOrExplain(cluster, boundS * 1000, `after thaw ${i + 1}`, runDir);
      } catch (error) {
        if (cluster.members.some((m) => cluster.pid(m) === null)) record.gone += 1;
        else record.missed += 1;
        process.stdout.write(`${error instanceof Error ? error.message : String(error)}\n`);
      }
      const ms = performance.now() - frozenFor;
      const before = leaders.get(cluster.name);
      const changed = leader !== null && before !== undefined && before !== null && before !== leader;
      if (leader !== null) record.ms.push(ms);
      if (changed) record.changed += 1;
      process.stdout.write(
        `cycle ${i + 1} ${cluster.name}: ${leader === null ? `not healthy within ${boundS} s` : `healthy after ${ms.toFixed(0)} ms, leader ${before ?? "-"} -> ${leader}`} (load ${loadAverage()})\n`,
      );
      if (leader !== null) {
        leaders.set(cluster.name, leader);
        if (loadS > 0)
          await runLoad(cluster.driver(leader), { clients: 16, warmupMs: 0, durationMs: loadS * 1000, kind: "write" });
      }
      await sleep(idleS * 1000);
    }
  }
} finally {
  for (const c of clusters) {
    freeze(c, false);
    await c.close();
  }
}
for (const [name, r] of thaws) {
  const sorted = [...r.ms].sort((a, b) => a - b);
  const at = (q: number): string =>
    sorted.length === 0 ? "-" : sorted[Math.floor(q * (sorted.length - 1))]!.toFixed(0);
  process.stdout.write(
    `${name}: ${r.missed} of ${cycles} thaws not healthy within ${boundS} s, ${r.gone} with a member not running; leader changed on ${r.changed}; time to healthy median ${at(0.5)} ms, max ${at(1)} ms\n`,
  );
}
process.stdout.write(`logs in ${runDir}; load at the end ${loadAverage()}\n`);

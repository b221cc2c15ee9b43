/**
 * How the leader's pipeline limit (`pipelineSlotsMax`) shapes write throughput and latency of
 * the real service: one 3-replica cluster per setting, closed-loop writers at 1, 16 and 64
 * clients, settings alternated within each repeat, medians over repeats. A small pipeline
 * makes commands wait and share slots (fewer messages, records and commits per command); a
 * large one gives each command a slot of its own. Every point reports its failed and
 * outcome-unknown writes and the leadership changes during it (campaigns started, summed over the
 * replicas): a point with any of them measured a cluster that lost its leader. Nothing is asserted.
 *
 *   npx tsx bench/pipeline.ts [--values 4,8,16,64] [--repeats 3] [--seconds 4] [--json]
 */
import { median, runLoad, type LoadResult } from "./lib/load.ts";
import { measureCpu, OursCluster } from "./lib/systems.ts";
import { benchFlags, refuseFlags } from "./lib/flags.ts";

const usage =
  "usage: npx tsx bench/pipeline.ts [--values 4,8,16,64] [--repeats 1..20] [--seconds 1..60] [--json] [--help]\n";
const flags = benchFlags(
  {
    values: { type: "string", default: "4,8,16,64" },
    repeats: { type: "string", default: "3" },
    seconds: { type: "string", default: "4" },
    json: { type: "boolean", default: false },
  },
  usage,
);
const values = flags.values.split(",").map(Number);
const repeats = Number(flags.repeats);
const seconds = Number(flags.seconds);
const json = flags.json;
const clientCounts = [1, 16, 64];
if (
  values.some((v) => !Number.isInteger(v) || v < 1) ||
  !(repeats >= 1 && repeats <= 20) ||
  !(seconds > 0 && seconds <= 60)
) {
  refuseFlags("--values takes positive integers, --repeats 1..20, --seconds 1..60", usage);
}

const results = new Map<string, LoadResult[]>();
const cpuPerWrite = new Map<string, number[]>();
const campaigns = new Map<string, number[]>();
// One cluster at a time (idle clusters would load the machine), settings alternated per repeat.
for (let r = 0; r < repeats; r++) {
  const order = r % 2 === 0 ? values : [...values].reverse();
  for (const v of order) {
    const cluster = new OursCluster({ pipelineSlotsMax: v });
    try {
      await cluster.start();
      for (const clients of clientCounts) {
        const leader = await cluster.leader(60_000);
        if (leader === null) throw new Error(`pipelineSlotsMax ${v}: no leader`);
        const before = await cluster.leadership();
        const measured = await measureCpu(cluster, () =>
          runLoad(cluster.driver(leader), { clients, warmupMs: 1000, durationMs: seconds * 1000, kind: "write" }),
        );
        const result = measured.result;
        const changes = (await cluster.leadership()).campaigns - before.campaigns;
        const key = `${v}/${clients}`;
        campaigns.set(key, [...(campaigns.get(key) ?? []), changes]);
        results.set(key, [...(results.get(key) ?? []), result]);
        const perWrite = measured.cpuMs / Math.max(1, result.completed);
        cpuPerWrite.set(key, [...(cpuPerWrite.get(key) ?? []), perWrite]);
        process.stderr.write(
          `repeat ${r + 1}/${repeats} pipelineSlotsMax ${v} clients ${clients}: ${result.throughput.toFixed(0)}/s p50 ${result.p50.toFixed(1)} ms p99 ${result.p99.toFixed(1)} ms, ${perWrite.toFixed(2)} ms CPU per write (3 replicas), ${result.failed} failed, ${result.outcomeUnknown} unknown, ${changes} campaigns\n`,
        );
      }
    } finally {
      await cluster.close();
    }
  }
}
const rows = values.flatMap((v) =>
  clientCounts.map((clients) => {
    const runs = results.get(`${v}/${clients}`) ?? [];
    return {
      pipelineSlotsMax: v,
      clients,
      throughput: median(runs.map((x) => x.throughput)),
      p50: median(runs.map((x) => x.p50)),
      p99: median(runs.map((x) => x.p99)),
      cpuMsPerWrite: median(cpuPerWrite.get(`${v}/${clients}`) ?? []),
      // Summed over the repeats: any of them means the point missed.
      failed: runs.reduce((n, x) => n + x.failed, 0),
      outcomeUnknown: runs.reduce((n, x) => n + x.outcomeUnknown, 0),
      campaigns: (campaigns.get(`${v}/${clients}`) ?? []).reduce((n, c) => n + c, 0),
    };
  }),
);
if (json) process.stdout.write(`${JSON.stringify({ repeats, seconds, rows })}\n`);
else {
  process.stdout.write(`pipelineSlotsMax sweep, medians of ${repeats} alternated runs, ${seconds} s each\n`);
  for (const row of rows)
    process.stdout.write(
      `  pipeline ${String(row.pipelineSlotsMax).padStart(3)}  clients ${String(row.clients).padStart(2)}  ${row.throughput.toFixed(0).padStart(6)} writes/s  p50 ${row.p50.toFixed(1)} ms  p99 ${row.p99.toFixed(1)} ms  ${row.cpuMsPerWrite.toFixed(2)} ms CPU/write  ${row.failed} failed / ${row.outcomeUnknown} unknown / ${row.campaigns} campaigns (all repeats)${row.failed + row.outcomeUnknown + row.campaigns > 0 ? "  MISSED" : ""}\n`,
    );
}

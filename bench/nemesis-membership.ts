/**
 * The nemesis with membership changes over several seeds: for each seed, a cluster of three
 * initial members and three spares on loopback, every store in power-loss mode, and a schedule
 * drawn from kills, pauses, partitions, power cuts and the membership changes (add, replace,
 * replace then kill the leader, remove, re-add a removed host under a new id). Per seed it
 * reports the verdict, the changes made, how long each removed replica took to retire, and the
 * liveness figures on real processes: the time from each healed fault to a replica holding a
 * lease (from the replicas' traces), and from each change to a leader with a lease once a quorum
 * was up, next to the world's LivenessLeaseholder bound, 2 D + 5 election timeouts (3.6 s with
 * the defaults). Nothing here asserts a number; `--json` prints every run.
 *
 * Each add, replace and re-add uses up a spare; a change with none left is skipped (and reported),
 * so long runs want more spares (`--spares`).
 *
 *   npm run bench:nemesis-membership -- [--seeds 1,2,3] [--seconds 60] [--spares 3] [--json]
 */
import os from "node:os";
import path from "node:path";
import { tempDir } from "../impl/runtime/testing.ts";
import { runNemesis, type NemesisReport } from "../refinement-tests/nemesis/run.ts";
import type { FaultKind } from "../refinement-tests/nemesis/schedule.ts";
import { leaseholderBoundMs } from "../refinement-tests/world/run.ts";
import { defaultTuning } from "../refinement-tests/world/tuning.ts";
import { benchFlags } from "./lib/flags.ts";

const flags = benchFlags(
  {
    seeds: { type: "string", default: "1,2,3" },
    seconds: { type: "string", default: "60" },
    spares: { type: "string", default: "3" },
    json: { type: "boolean", default: false },
  },
  "usage: npm run bench:nemesis-membership -- [--seeds 1,2,3] [--seconds 60] [--spares 3] [--json] [--help]\n",
);
const seeds = flags.seeds.split(",").map(Number);
const seconds = Number(flags.seconds);
const spares = Number(flags.spares);
const kinds: FaultKind[] = [
  "member-add",
  "kill-leader",
  "member-replace",
  "partition-leader",
  "member-replace-kill-leader",
  "pause-leader",
  "member-remove",
  "power-loss-leader",
  "member-readd",
  "kill-follower",
  "partition-follower",
  "power-loss-follower",
];

function quantile(xs: readonly number[], q: number): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

const bound = leaseholderBoundMs(defaultTuning);
const rows: object[] = [];
for (const seed of seeds) {
  const out = tempDir(`bench-nemesis-membership-${seed}`);
  const load = os.loadavg()[0]!.toFixed(1);
  const report: NemesisReport = await runNemesis({
    seed,
    replicas: 3,
    spares,
    clients: 8,
    faultsMs: seconds * 1000,
    kinds,
    out,
  });
  const changes = report.membership.changes;
  const done = changes.filter((c) => c.outcome === "done");
  const afterFault = report.recovery.map((r) => r.leaseholderAfterMs).filter((ms): ms is number => ms !== null);
  const leaseless = report.recovery.map((r) => r.leaselessMs).filter((ms): ms is number => ms !== null);
  const afterChange = done.map((c) => c.leaderWithLeaseMs).filter((ms): ms is number => ms !== null);
  const retired = done.map((c) => c.retiredAfterMs).filter((ms): ms is number => ms !== null);
  const row = {
    seed,
    ok: report.ok,
    violations: report.violations.length,
    faults: report.faults.filter((f) => !f.kind.startsWith("member-")).length,
    changes: `${done.length}/${changes.length}`,
    made: done.map((c) => c.description),
    skipped: changes.filter((c) => c.outcome === "skipped").map((c) => c.description),
    failed: changes.filter((c) => c.outcome === "failed").map((c) => c.description),
    leaseholderAfterFaultMs: {
      median: quantile(afterFault, 0.5),
      max: afterFault.length === 0 ? null : Math.max(...afterFault),
      n: afterFault.length,
    },
    leaselessPerFaultMs: {
      median: quantile(leaseless, 0.5),
      max: leaseless.length === 0 ? null : Math.max(...leaseless),
      n: leaseless.length,
    },
    leaseholderAfterChangeMs: {
      median: quantile(afterChange, 0.5),
      max: afterChange.length === 0 ? null : Math.max(...afterChange),
      n: afterChange.length,
    },
    retiredWithinMs: retired.length === 0 ? null : Math.max(...retired),
    retiredMs: retired,
    overBound:
      afterFault.filter((ms) => ms > bound).length +
      leaseless.filter((ms) => ms > bound).length +
      afterChange.filter((ms) => ms > bound).length,
    loadAtStart: load,
    out: path.dirname(report.files.report),
  };
  rows.push(row);
  if (!flags.json) process.stdout.write(`${JSON.stringify(row)}\n`);
}
if (flags.json) process.stdout.write(`${JSON.stringify({ boundMs: bound, rows }, null, 2)}\n`);
else
  process.stdout.write(
    `bound (LivenessLeaseholder, 2 D + 5 election timeouts): ${bound} ms; load now ${os.loadavg()[0]!.toFixed(1)}\n`,
  );

/**
 * What the leader's own vote costs its replies, from the marks of a write-timeline run: how many
 * slots' replies waited for it, and how much sooner a quorum of the two followers, or a main
 * thread waiting for the vote in Atomics.wait, would have answered them (bench/lib/own-vote.ts).
 *
 *   npx tsx bench/write-timeline.ts --clients 16 --marks /tmp/marks.json
 *   npx tsx bench/own-vote.ts --marks /tmp/marks.json [--json]
 */
import fs from "node:fs";
import { benchFlags } from "./lib/flags.ts";
import { ownVoteCost, type Spread } from "./lib/own-vote.ts";
import type { ClientWrite, ThreadMarks } from "./lib/write-timeline.ts";

const usage = `usage: npx tsx bench/own-vote.ts --marks FILE [--json]

What the leader's own vote cost the replies of a bench/write-timeline.ts run (its --marks FILE):
the slots whose reply waited for it, and the release of each slot's first reply as the leader
counts now against a quorum of the two followers.

options:
  --marks FILE    the marks written by bench/write-timeline.ts --marks (required)
  --json          print the report as JSON
  --help          print this help
`;

const flags = benchFlags({ marks: { type: "string" }, json: { type: "boolean", default: false } }, usage);
if (flags.marks === undefined) {
  process.stderr.write(usage);
  process.exit(2);
}
let run: { leader: number; threads: ThreadMarks[]; writes?: ClientWrite[] };
try {
  run = JSON.parse(fs.readFileSync(flags.marks, "utf8")) as typeof run;
} catch (error) {
  process.stderr.write(
    `bench:own-vote: cannot read ${flags.marks}: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exit(2);
}
if (!Number.isInteger(run.leader) || !Array.isArray(run.threads)) {
  process.stderr.write(`bench:own-vote: ${flags.marks} is not a marks file of bench/write-timeline.ts\n`);
  process.exit(2);
}
// The measured window only: the marks hold the warm-up's slots too.
const cost = ownVoteCost(run.leader, run.threads, Math.min(...(run.writes ?? []).map((w) => w.sentUs)));
const show = (s: Spread): string =>
  `p50 ${s.p50.toFixed(0)}, p90 ${s.p90.toFixed(0)}, p99 ${s.p99.toFixed(0)}, mean ${s.mean.toFixed(0)}`;
if (flags.json) process.stdout.write(`${JSON.stringify(cost, null, 2)}\n`);
else
  process.stdout.write(
    [
      `${cost.slots} slots; the first reply waited for the leader's own vote in ${cost.waited}, and in ${cost.secondFollowerFirst} of them the second follower's Accepted was stepped first`,
      `Accept -> first reply released (us), as the leader counts now:  ${show(cost.readyNow)}`,
      `the same with a quorum of the two followers:                     ${show(cost.readyWithFollowersQuorum)}`,
      `replies that waited for the own vote's notice on an idle main thread: ${cost.idleNotice.slots} slots, ${(cost.idleNotice.totalUs / 1000).toFixed(1)} ms in all`,
      "",
    ].join("\n"),
  );

/**
 * Whether a 3-replica cluster keeps its leader across a freeze of every member (SIGSTOP, then
 * SIGCONT), as `npm run bench` freezes the system it is not measuring: prints the leader and the
 * campaigns started before and after each of `--freezes` freezes of `--seconds` seconds.
 *
 *   npx tsx bench/thaw-leader.ts [--freezes 3] [--seconds 5] [--core JSON]
 */
import { benchFlags } from "./lib/flags.ts";
import { freeze, OursCluster } from "./lib/systems.ts";

const usage = `usage: npx tsx bench/thaw-leader.ts [options]

Freezes every member of a 3-replica cluster and thaws it, and says whether the leader changed.

options:
  --freezes N   freezes (default 3)
  --seconds S   seconds each freeze lasts (default 5)
  --core JSON   core settings beside the runtime's (impl/core/config.ts), as a JSON object
  --help        print this help
`;
const flags = benchFlags(
  {
    freezes: { type: "string", default: "3" },
    seconds: { type: "string", default: "5" },
    core: { type: "string" },
  },
  usage,
);
const freezes = Number(flags.freezes);
const seconds = Number(flags.seconds);
if (!(Number.isInteger(freezes) && freezes >= 1) || !(seconds > 0)) {
  process.stderr.write(usage);
  process.exit(2);
}
const core = flags.core === undefined ? undefined : (JSON.parse(flags.core) as Record<string, unknown>);
const cluster = new OursCluster(core);
await cluster.start();
try {
  let leader = await cluster.healthy(90_000);
  let kept = 0;
  for (let i = 0; i < freezes; i++) {
    const before = await cluster.leadership();
    freeze(cluster, true);
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    freeze(cluster, false);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const next = await cluster.healthy(90_000);
    const after = await cluster.leadership();
    if (next === leader) kept += 1;
    process.stdout.write(
      `freeze ${i + 1}: leader ${leader} -> ${next}, campaigns ${before.campaigns} -> ${after.campaigns}\n`,
    );
    leader = next;
  }
  process.stdout.write(`the leader was kept across ${kept} of ${freezes} freezes\n`);
} finally {
  await cluster.close();
}

/**
 * The heap one replica's core state holds after bursts of 1 MiB writes, with and without values at
 * rest (impl/core/at-rest.ts): a 3-replica scenario cluster of impl/core (in-process, records in
 * memory), rounds of 40 concurrent-key PUTs of 1 MiB as `npm run bench:burst` writes them, then
 * the leader's state alone kept and the heap measured after a full collection, each arm in a
 * process of its own. Memory does not wait for a core, so the machine's load does not move these
 * figures. Nothing here asserts a number.
 *
 *   npx tsx bench/values-at-rest.ts [--rounds 1,2,3] [--json]
 */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Cluster } from "../impl/core/testing/cluster.ts";
import { benchFlags } from "./lib/flags.ts";

const usage = `usage: npx tsx bench/values-at-rest.ts [options]

Heap held by the leader's core state after rounds of 40 x 1 MiB PUTs (the keys burst-0 to
burst-39), with valuesAtRest off and on.

options:
  --rounds LIST  rounds of 40 writes to measure after, comma-separated (default 1,2,3)
  --json         print the results as JSON
  --help         print this help
`;

/** In the child: write `rounds` rounds, keep the leader's state, print the heap it holds in MiB. */
function measure(atRest: boolean, rounds: number): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error("run with --expose-gc");
  gc();
  const base = process.memoryUsage().heapUsed;
  const run = (): unknown => {
    const c = new Cluster(3, { config: { valuesAtRest: atRest } });
    c.quiet = true;
    c.crash(3);
    c.elapse(300);
    c.campaign(1);
    c.stabilize();
    let seq = 0;
    for (let r = 0; r < rounds; r++)
      for (let k = 0; k < 40; k++) {
        seq++;
        // A distinct string per write, as every request body is.
        const value = String.fromCharCode(97 + (seq % 26)).repeat(1 << 20) + String(seq);
        c.request(1, { _tag: "put", key: `burst-${k}`, value }, "linearizable", { clientId: "c", seq });
        c.stabilize();
      }
    c.advance(100, 10);
    return c.state(1);
  };
  const kept = run();
  gc();
  const mib = (process.memoryUsage().heapUsed - base) / 2 ** 20;
  process.stdout.write(`${JSON.stringify({ mib: Math.round(mib * 10) / 10, kept: kept !== null })}\n`);
}

const child = process.env.VALUES_AT_REST_CHILD;
if (child !== undefined) {
  const [arm, rounds] = child.split(":");
  measure(arm === "on", Number(rounds));
} else {
  const flags = benchFlags(
    { rounds: { type: "string", default: "1,2,3" }, json: { type: "boolean", default: false } },
    usage,
  );
  const roundsList = flags.rounds.split(",").map(Number);
  if (!roundsList.every((r) => Number.isInteger(r) && r >= 1 && r <= 10)) {
    process.stderr.write(usage);
    process.exit(2);
  }
  const results: { rounds: number; off: number; on: number }[] = [];
  for (const rounds of roundsList) {
    const heap = (arm: string): number => {
      const out = execFileSync(process.execPath, ["--expose-gc", "--import", "tsx", fileURLToPath(import.meta.url)], {
        env: { ...process.env, VALUES_AT_REST_CHILD: `${arm}:${rounds}` },
        encoding: "utf8",
      });
      return (JSON.parse(out.trim().split("\n").at(-1)!) as { mib: number }).mib;
    };
    results.push({ rounds, off: heap("off"), on: heap("on") });
  }
  if (flags.json) process.stdout.write(`${JSON.stringify(results)}\n`);
  else
    for (const r of results)
      process.stdout.write(
        `${r.rounds} x 40 x 1 MiB: leader's core state ${r.off} MiB without values at rest, ${r.on} MiB with\n`,
      );
}

/**
 * How long one `paxos-lease` command takes, start to exit, against a running 3-replica cluster
 * on loopback: `--help`, `get`, `put` and `status` from the compiled CLI (dist/paxos-lease.mjs,
 * what `npm run paxos-lease` and the installed command run), the same `get` through `npm run`
 * (npm's own start-up included), and for comparison `get` run from the TypeScript sources through
 * tsx, as the CLI ran before it was compiled. Wall time per run (median, p90) and the CPU time
 * of the command (user + system, measured by bash's `time`). The machine is shared: the report
 * includes the load average. Nothing here is asserted.
 *
 *   npm run bench:cli -- [--runs 10] [--json]
 */
import { spawnSync } from "node:child_process";
import os from "node:os";
import path from "node:path";
import { cliArgv, projectRoot, tsxArgv } from "../impl/runtime/program.ts";
import { TestCluster } from "../impl/runtime/testing-cluster.ts";

const args = process.argv.slice(2);
const json = args.includes("--json");
const runsIndex = args.indexOf("--runs");
const runs = runsIndex >= 0 ? Number(args[runsIndex + 1]) : 10;
if (!Number.isInteger(runs) || runs < 1 || runs > 1000) {
  process.stderr.write("--runs takes an integer in [1, 1000]\n");
  process.exit(2);
}

interface Sample {
  readonly wallMs: number;
  readonly cpuMs: number;
}

/** Run `argv` under bash's `time` (CPU of the child included); fails unless it exits 0. */
function once(argv: readonly string[], env: NodeJS.ProcessEnv): Sample {
  const quoted = argv.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ");
  const started = performance.now();
  const result = spawnSync("bash", ["-c", `TIMEFORMAT='%U %S'; time ${quoted} >/dev/null`], {
    encoding: "utf8",
    env,
    cwd: projectRoot,
  });
  const wallMs = performance.now() - started;
  if (result.status !== 0) throw new Error(`${argv.join(" ")} exited ${result.status}: ${result.stderr}`);
  const [user, system] = result.stderr.trim().split("\n").at(-1)!.split(" ").map(Number);
  return { wallMs, cpuMs: (user! + system!) * 1000 };
}

function summary(samples: readonly Sample[]): { wallP50: number; wallP90: number; cpuP50: number } {
  const at = (values: number[], q: number): number =>
    Number(values.sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(q * values.length))]!.toFixed(0));
  return {
    wallP50: at(
      samples.map((s) => s.wallMs),
      0.5,
    ),
    wallP90: at(
      samples.map((s) => s.wallMs),
      0.9,
    ),
    cpuP50: at(
      samples.map((s) => s.cpuMs),
      0.5,
    ),
  };
}

const cluster = await TestCluster.create(3, undefined, { traces: false });
try {
  cluster.startAll();
  await cluster.waitForLeader(120_000);
  const env = {
    ...process.env,
    PAXOS_LEASE_ENDPOINTS: cluster.endpoints().join(","),
    PAXOS_LEASE_TOKEN: cluster.token(),
  };
  const node = process.execPath;
  const cli = cliArgv();
  const cases: { name: string; argv: string[]; runs: number }[] = [
    { name: "--help (compiled)", argv: [node, ...cli, "--help"], runs },
    { name: "get (compiled)", argv: [node, ...cli, "get", "bench-key", "--json"], runs },
    { name: "put (compiled)", argv: [node, ...cli, "put", "bench-key", "v"], runs },
    { name: "status (compiled)", argv: [node, ...cli, "status"], runs },
    {
      name: "get via npm run paxos-lease",
      argv: ["npm", "run", "--silent", "paxos-lease", "--", "get", "bench-key"],
      runs,
    },
    {
      name: "get from the sources through tsx (before the build step)",
      argv: [node, ...tsxArgv(path.join(projectRoot, "impl", "runtime", "cli.ts")), "get", "bench-key"],
      runs: Math.min(runs, 3),
    },
  ];
  once([node, ...cli, "put", "bench-key", "v"], env);
  const results = cases.map((c) => {
    if (!json) process.stderr.write(`${c.name}: ${c.runs} runs\n`);
    return { name: c.name, runs: c.runs, ...summary(Array.from({ length: c.runs }, () => once(c.argv, env))) };
  });
  const report = {
    machine: { cores: os.cpus().length, loadAverage: os.loadavg().map((l) => Number(l.toFixed(2))) },
    results,
  };
  if (json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else {
    process.stdout.write(
      `CLI latency, ${os.cpus().length} cores, load average ${report.machine.loadAverage.join(" ")}\n`,
    );
    for (const r of results)
      process.stdout.write(
        `  ${r.name.padEnd(58)} wall p50 ${String(r.wallP50).padStart(6)} ms  p90 ${String(r.wallP90).padStart(6)} ms  cpu p50 ${String(r.cpuP50).padStart(5)} ms\n`,
      );
  }
} finally {
  await cluster.close();
}

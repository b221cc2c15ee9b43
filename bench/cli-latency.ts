/**
 * How long one `paxos-lease` command takes, start to exit, against a running 3-replica cluster
 * on loopback: `--help`, `get`, `put` and `status` from the compiled CLI (dist/paxos-lease.mjs,
 * what `npm run paxos-lease` and the installed command run), the same `get` through `npm run`
 * (npm's own start-up included), Node.js starting and exiting at once (`node -e 0`, the floor of
 * any Node.js command), and for comparison `get` run from the TypeScript sources through
 * tsx, as the CLI ran before it was compiled. When Debian's etcd-server and etcd-client are
 * installed, etcdctl's `get`, `put` and `endpoint status` against a 3-member etcd on loopback too,
 * measured after the paxos-lease cluster has stopped. Wall time per run (median, p90) and the CPU
 * time of the command (user + system, measured by bash's `time`). The machine is shared: the
 * report includes the load average before and after. Nothing here is asserted.
 *
 *   npm run bench:cli -- [--runs 10] [--json]
 */
import { spawnSync } from "node:child_process";
import os from "node:os";
import path from "node:path";
import { cliArgv, projectRoot, tsxArgv } from "../impl/runtime/program.ts";
import { TestCluster } from "../impl/runtime/testing-cluster.ts";
import { benchFlags, refuseFlags } from "./lib/flags.ts";
import { EtcdCluster } from "./lib/systems.ts";

const usage = "usage: npm run bench:cli -- [--runs 10] [--json] [--help]\n";
const flags = benchFlags({ runs: { type: "string", default: "10" }, json: { type: "boolean", default: false } }, usage);
const json = flags.json;
const runs = Number(flags.runs);
if (!Number.isInteger(runs) || runs < 1 || runs > 1000) refuseFlags("--runs takes an integer in [1, 1000]", usage);

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

interface Case {
  readonly name: string;
  readonly argv: string[];
  readonly runs: number;
}
interface Result extends ReturnType<typeof summary> {
  readonly name: string;
  readonly runs: number;
}

function measure(cases: readonly Case[], env: NodeJS.ProcessEnv): Result[] {
  return cases.map((c) => {
    if (!json) process.stderr.write(`${c.name}: ${c.runs} runs\n`);
    return { name: c.name, runs: c.runs, ...summary(Array.from({ length: c.runs }, () => once(c.argv, env))) };
  });
}

const loadBefore = os.loadavg().map((l) => Number(l.toFixed(2)));
const results: Result[] = [];
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
  once([node, ...cli, "put", "bench-key", "v"], env);
  results.push(
    ...measure(
      [
        { name: "node -e 0 (Node.js start-up alone)", argv: [node, "-e", "0"], runs },
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
      ],
      env,
    ),
  );
} finally {
  await cluster.close();
}

const installed = (argv: readonly string[]): boolean =>
  spawnSync(argv[0]!, argv.slice(1), { stdio: "ignore" }).status === 0;
if (installed(["etcd", "--version"]) && installed(["etcdctl", "version"])) {
  const etcd = new EtcdCluster();
  try {
    await etcd.start();
    if ((await etcd.healthy(60_000)) === null) throw new Error("etcd did not elect a leader in 60 s");
    const env = { ...process.env, ETCDCTL_API: "3" };
    const endpoints = `--endpoints=${etcd.members.map((id) => etcd.endpoint(id)).join(",")}`;
    once(["etcdctl", endpoints, "put", "bench-key", "v"], env);
    results.push(
      ...measure(
        [
          { name: "etcdctl get", argv: ["etcdctl", endpoints, "get", "bench-key"], runs },
          { name: "etcdctl put", argv: ["etcdctl", endpoints, "put", "bench-key", "v"], runs },
          { name: "etcdctl endpoint status", argv: ["etcdctl", endpoints, "endpoint", "status"], runs },
        ],
        env,
      ),
    );
  } finally {
    await etcd.close();
  }
} else if (!json)
  process.stderr.write("etcd or etcdctl is not installed (Debian: etcd-server, etcd-client): no etcdctl figures\n");

const loadAfter = os.loadavg().map((l) => Number(l.toFixed(2)));
const report = { machine: { cores: os.cpus().length, loadBefore, loadAfter }, results };
if (json) process.stdout.write(`${JSON.stringify(report)}\n`);
else {
  process.stdout.write(
    `CLI latency, ${os.cpus().length} cores, load average ${loadBefore.join(" ")} before, ${loadAfter.join(" ")} after\n`,
  );
  for (const r of results)
    process.stdout.write(
      `  ${r.name.padEnd(58)} wall p50 ${String(r.wallP50).padStart(6)} ms  p90 ${String(r.wallP90).padStart(6)} ms  cpu p50 ${String(r.cpuP50).padStart(5)} ms\n`,
    );
}

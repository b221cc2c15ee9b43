/**
 * `npm run nemesis -- --minutes N --seed S [--replicas 3|5] [--spares N] [--clients N] [--kinds K,...]
 * [--in-order] [--pace P] [--quiet-ms MS] [--warmup-ms MS] [--no-skew] [--net relay|hosts]
 * [--feature-level 1|2|3|4] [--raise-feature-level 2|3|4] [--sessions-max N] [--core JSON] [--json] [--out DIR]`:
 * run real replica processes under a seeded fault schedule while clients record a history, then
 * check the history, the replicas' digests and the merged traces (refinement-tests/nemesis/).
 * `--net hosts` runs each replica in its own network namespace (faults by the kernel); where
 * that is not permitted it says so in one line. Prints a progress line per second and a summary
 * (or the JSON report with --json). Exit status: 0 every check passed, 1 a violation or a required
 * interaction counter never reached by a fault meant to reach it (the summary's "never reached"), 2 bad
 * arguments, hosts unavailable, or an `--out` folder that already holds files (the default folder,
 * out/nemesis/seed-S, is replaced). Interrupted (SIGHUP, SIGINT, SIGTERM), it stops injecting,
 * continues and stops every replica, writes the history and a report that says `interrupted`,
 * removes the hosts and exits 128 + the signal's number; a second signal exits at once.
 *
 * `--feature-level 2` has the leader raise the log to feature level 2, where the session table is
 * bounded (`--sessions-max N`, the core's 100,000 by default): with fewer sessions than clients,
 * sessions are evicted all the time, the clients meet `session-expired` and go on under new
 * sessions, and the run must reach both (refinement-tests/nemesis/run.ts, `sessionsRequired`).
 * `--feature-level 3` raises it to level 3, where the service opens the sessions: the clients open
 * each with `POST /v1/sessions` and a new one after `session-expired`, and the run must reach
 * `openedSessionsRequired` (with `--sessions-max` below `--clients`: a session the service opened
 * evicted). `--feature-level 4` holds every value the store sets to 1 MiB of UTF-8 when it
 * executes: one more client writes text outside ASCII whose appends build values over 1 MiB of
 * UTF-8 (and under 1 Mi code units), and the run must reach `valueBytesRequired` (the refusal in
 * bytes answered to a client and counted in the traces). `--raise-feature-level N` makes a rolling
 * upgrade halfway through the faults (refinement-tests/nemesis/upgrade.ts): every member restarted
 * in turn with level N; with `--feature-level 3 --raise-feature-level 4` the run must also reach
 * the raise and the same appends executed before it.
 *
 * `--core '{"snapshotIntervalSlots":256}'` sets any other core setting of every replica
 * (impl/core/config.ts; checked as the replicas check it before any starts): the replay command a
 * run prints names its own, so that a failure's replay runs with the settings it failed with.
 *
 * `--experiment beyond-drift` instead runs the labelled experiment of beyond-drift.ts, which
 * breaks the clock assumption leases rest on and expects the checkers to catch a stale read.
 */
import fs from "node:fs";
import path from "node:path";
import { kindsFor } from "../nemesis/schedule.ts";
import { freshRunFolder, runNemesis, summaryText, type NemesisReport } from "../nemesis/run.ts";
import { coreOverridesOf, nemesisCommand, type NemesisFlags } from "../nemesis/command.ts";
import { runBeyondDrift } from "../nemesis/beyond-drift.ts";
import { HostsUnavailable, hostsUnavailableReason } from "../../impl/runtime/testing-hosts.ts";

const program = nemesisCommand()
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
  .configureOutput({ writeErr: (s) => process.stderr.write(s) });

program.parse();
const opts = program.opts<NemesisFlags>();
if (opts.replicas !== 3 && opts.replicas !== 5) {
  process.stderr.write("nemesis: --replicas must be 3 or 5\n");
  process.exit(2);
}
for (const kind of opts.kinds ?? []) {
  if (!kindsFor(opts.replicas, opts.spares).includes(kind)) {
    process.stderr.write(
      `nemesis: fault ${kind} needs ${kind.startsWith("member-") ? "spare replicas (--spares)" : "5 replicas"}\n`,
    );
    process.exit(2);
  }
}
let core: Record<string, unknown>;
try {
  core = coreOverridesOf(opts);
} catch (error) {
  process.stderr.write(`nemesis: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(2);
}
const unavailable = opts.net === "hosts" ? hostsUnavailableReason() : null;
if (unavailable !== null) {
  process.stderr.write(`nemesis: --net hosts is not available here: ${unavailable}\n`);
  process.exit(2);
}
const out = opts.out ?? path.join("out", "nemesis", `${opts.experiment ?? "seed"}-${opts.seed}`);
const progress = (line: string): void => {
  process.stderr.write(`[nemesis] ${line}\n`);
};
// The default folder is this command's own: a run of the same seed replaces the earlier one's
// files. A folder named with --out is the caller's, and a run refuses one that holds files.
if (opts.out === undefined && fs.existsSync(out)) {
  progress(`replacing the earlier run in ${out}`);
  fs.rmSync(out, { recursive: true, force: true });
}
try {
  freshRunFolder(out);
} catch (error) {
  process.stderr.write(`nemesis: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(2);
}

// Interrupted (SIGINT, SIGTERM, or SIGHUP: the shell that started the run went away): stop injecting,
// continue every stopped replica and stop them all, write the history and report the run has, and exit
// 128 + the signal's number. Node.js's default for SIGHUP would end the process without its exit handlers
// and leave the replicas, which run in sessions of their own, behind, some of them stopped. A second
// signal exits at once (the exit handler SIGKILLs every replica).
const interruption = new AbortController();
let exitStatus: number | undefined;
const signalNumbers = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;
for (const signal of ["SIGHUP", "SIGINT", "SIGTERM"] as const)
  process.on(signal, () => {
    // With the terminal gone, writes to it fail (EIO): say what happens where it can, never crash on it.
    for (const stream of [process.stdout, process.stderr]) stream.on("error", () => undefined);
    // The experiment is short and has nothing to keep: it stops at once, as on a second signal.
    if (interruption.signal.aborted || opts.experiment !== undefined) {
      process.stderr.write(`nemesis: ${signal} again: killing every replica and exiting now\n`);
      process.exit(128 + signalNumbers[signal]);
    }
    exitStatus = 128 + signalNumbers[signal];
    process.stderr.write(
      `nemesis: ${signal}: stopping the faults, continuing and stopping every replica, writing the history and report the run has (${signal} again: exit at once)\n`,
    );
    interruption.abort(signal);
  });

/** `run()`, or one line and exit status 2 where hosts cannot be made. */
async function unlessHostsUnavailable<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (!(error instanceof HostsUnavailable)) throw error;
    process.stderr.write(`nemesis: --net hosts is not available here: ${error.message}\n`);
    process.exit(2);
  }
}

if (opts.experiment !== undefined) {
  if (opts.experiment !== "beyond-drift") {
    process.stderr.write(`nemesis: unknown experiment ${JSON.stringify(opts.experiment)} (known: beyond-drift)\n`);
    process.exit(2);
  }
  const result = await unlessHostsUnavailable(() =>
    runBeyondDrift({ seed: opts.seed, out, net: opts.net, onProgress: progress }),
  );
  process.stdout.write(opts.json ? `${JSON.stringify(result.report, null, 2)}\n` : `${result.summary}\n`);
  // The experiment succeeds when the checkers catch what the broken assumption allows.
  process.exit(result.caught ? 0 : 1);
}

const report: NemesisReport = await unlessHostsUnavailable(() =>
  runNemesis({
    seed: opts.seed,
    replicas: opts.replicas,
    spares: opts.spares,
    clients: opts.clients,
    faultsMs: opts.minutes * 60_000,
    out,
    skewClocks: opts.skew,
    inOrder: opts.inOrder,
    pace: opts.pace,
    quietMs: opts.quietMs,
    warmupMs: opts.warmupMs,
    net: opts.net,
    ...(Object.keys(core).length === 0 ? {} : { core }),
    ...(opts.kinds === undefined ? {} : { kinds: opts.kinds }),
    ...(opts.raiseFeatureLevel === undefined ? {} : { raiseFeatureLevel: opts.raiseFeatureLevel }),
    onProgress: progress,
    signal: interruption.signal,
  }),
);
process.stdout.write(
  opts.json
    ? `${JSON.stringify(report, null, 2)}\n`
    : `${summaryText(report)}\nre-check the history: npm run check-history -- ${report.files.history} --model kv\n`,
);
if (exitStatus !== undefined) {
  process.stderr.write(
    `nemesis: interrupted (${report.interrupted ?? "before the run began"}); what it had is in ${out}\n`,
  );
  process.exit(exitStatus);
}
process.exit(report.ok && report.neverReached.length === 0 ? 0 : 1);

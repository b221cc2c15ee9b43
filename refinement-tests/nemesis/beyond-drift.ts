/**
 * An experiment, labelled as such and kept out of `npm test`: what leases assume. Leader leases
 * are safe only while every clock runs within the configured drift bound (`clockDriftPpmMax`,
 * 1000 ppm by default; docs/impl.md rule L2). Here the two followers' clocks run at twice real
 * speed, a thousand times beyond the bound, while the leader's is true. Then the leader is cut
 * off from them: their grants, measured on fast clocks, run out after half the real time the
 * leader counts on, they elect a new leader and acknowledge writes, and the old leader, still
 * inside what it believes is its lease, answers reads that miss those writes.
 *
 * The experiment succeeds when the checkers catch it: the client history is not linearizable
 * and trace validation, told the true clock rates, finds two replicas believing in a lease at
 * the same instant. It fails (says so) if no stale read happened; it is timing-dependent.
 */
import path from "node:path";
import { sleep } from "../../impl/runtime/testing.ts";
import { monotonicMs, NemesisCluster } from "./cluster.ts";
import { healthyLink } from "./proxy.ts";
import { analyzeRun, converge, finalReadsOf, freshRunFolder, type NemesisReport } from "./run.ts";
import type { InjectedFault } from "./nemesis.ts";
import type { NetworkKind } from "./network.ts";
import { Workload } from "./workload.ts";

/** Options of {@link runBeyondDrift}. */
export interface BeyondDriftOptions {
  readonly seed: number;
  readonly out: string;
  /** The network layer. Default relay. */
  readonly net?: NetworkKind;
  readonly onProgress?: (line: string) => void;
  /** Followers' clock rate. Default 2 (the fastest the test clock allows). */
  readonly followerRate?: number;
}

/** What the experiment found. */
export interface BeyondDriftResult {
  /** The checkers caught the stale reads the broken assumption allowed. */
  readonly caught: boolean;
  readonly historyLinearizable: string;
  /** The lease checks of proofs/ that failed on the traces (AtMostOneLeaseholder, LeaseReadFresh). */
  readonly leaseViolations: readonly string[];
  readonly report: NemesisReport;
  readonly summary: string;
}

/** A long lease makes the window wide; the other limits keep the config's cross-field rules. */
const core = { leaseMs: 1000, electionTimeoutMsMin: 1100, electionTimeoutMsMax: 1300, heartbeatIntervalMs: 50 };

/** Run the experiment once. */
export async function runBeyondDrift(options: BeyondDriftOptions): Promise<BeyondDriftResult> {
  const progress = options.onProgress ?? (() => undefined);
  const rate = options.followerRate ?? 2;
  freshRunFolder(options.out);
  const cluster = await NemesisCluster.create({
    replicas: 3,
    dir: path.join(options.out, "cluster"),
    core,
    seed: options.seed,
    net: options.net ?? "relay",
    delays: false,
  });
  const violations: string[] = [];
  const finalReads = new Map<string, number>();
  const faults: InjectedFault[] = [];
  let origin = monotonicMs();
  let workload: Workload | undefined;
  let convergence: NemesisReport["convergence"] = {
    ok: false,
    executedSlot: null,
    digests: {},
    message: "not reached",
  };
  let leader = 0;
  try {
    for (const id of cluster.ids) cluster.start(id);
    leader = (await cluster.waitForLeader(90_000)) ?? 0;
    if (leader === 0) throw new Error("no leader within 90 s");
    const followers = cluster.ids.filter((id) => id !== leader);
    for (const id of followers) {
      await cluster.kill(id, "SIGTERM");
      cluster.setClock(id, { rate, offsetMs: 0 });
      cluster.start(id);
      await sleep(1500);
    }
    if ((await cluster.waitForLeader(20_000)) !== leader)
      throw new Error(`leadership moved away from replica ${leader} while its followers restarted; run again`);
    progress(`replica ${leader} leads on a true clock; replicas ${followers.join(" and ")} run at ${rate}x`);
    origin = monotonicMs();
    const endpoint = (id: number): string => cluster.endpoint(id);
    // Short attempts: a write stuck at the cut-off leader (a follower's redirect) is soon retried at a follower.
    workload = new Workload({
      endpoints: cluster.endpoints(),
      token: cluster.token,
      clients: 0,
      seed: options.seed,
      origin,
      agent: () => cluster.network.agent(),
      registerKeys: 2,
      listKeys: 1,
      attemptTimeoutMs: 150,
      writeDeadlineMs: 3000,
      groups: [
        { clients: 4, endpoints: followers.map(endpoint), mix: "writes" },
        { clients: 4, endpoints: [endpoint(leader)], mix: "reads" },
      ],
    });
    workload.start();
    await sleep(2000);
    const cut = (on: boolean): Promise<void> =>
      cluster.network.setLinks(
        (from, to) => from === leader || to === leader,
        on ? { ...healthyLink, mode: "drop" } : healthyLink,
      );
    const fault: InjectedFault = {
      kind: "partition-leader",
      planned: { kind: "partition-leader", at: workload.now(), durationMs: 4000, parameter: 0, pick: 0 },
      targets: [leader],
      leader,
      startedAt: workload.now(),
      endedAt: Number.NaN,
      label: `partition-leader r${leader} (followers' clocks at ${rate}x)`,
    };
    faults.push(fault);
    await cut(true);
    progress(`cut replica ${leader} off; readers keep reading there, writers write through the others`);
    await sleep(4000);
    await cut(false);
    fault.endedAt = workload.now();
    await sleep(2000);
    await workload.stop();
    await finalReadsOf(workload, cluster, finalReads, violations, progress);
    convergence = await converge(cluster);
    for (const id of cluster.ids) await cluster.kill(id, "SIGTERM");
  } catch (error) {
    violations.push(`Harness: ${error instanceof Error ? error.message : String(error)}`);
    if (workload !== undefined && !workload.stopping) await workload.stop();
  } finally {
    await cluster.close();
  }
  const report = analyzeRun({
    options: { seed: options.seed, out: options.out, clients: 8 },
    replicas: 3,
    core,
    clocks: new Map(),
    schedule: faults.map((f) => f.planned),
    cluster,
    ops: workload?.ops ?? [],
    finalReads,
    origin,
    convergence,
    anomalies: workload?.anomalies ?? [],
    violations,
    durations: {},
    nemesis: { injected: faults },
    progress,
    replay: `npm run nemesis -- --experiment beyond-drift --seed ${options.seed}`,
  });
  const linearizable = report.history.linearizability.verdict;
  // proofs/' checker stops at its first violation: two leaseholders at one instant, or a lease read that missed a
  // write.
  const leaseChecks =
    "error" in report.traces
      ? []
      : Object.keys(report.traces.violationCounts).filter(
          (c) => c === "AtMostOneLeaseholder" || c === "LeaseReadFresh",
        );
  const overlaps = leaseChecks.length;
  const caught = linearizable === "not-linearizable" || overlaps > 0;
  const summary = [
    "experiment beyond-drift (NOT a safety run: it breaks the clock assumption on purpose)",
    `  replica ${leader} led on a true clock; the others ran at ${rate}x, beyond the drift bound of 1000 ppm; lease ${core.leaseMs} ms`,
    `  history: ${report.history.operations} operations; linearizability: ${linearizable}`,
    `  traces (proofs/ lease checks, told the true clock rates): ${overlaps > 0 ? `${leaseChecks.join(" and ")} violated` : "no lease violation found"}`,
    `  ${caught ? "caught: the checkers flag the stale reads that leases allow once clocks drift beyond the bound" : "NOT caught: no stale read happened in this run (timing-dependent); run again"}`,
    `  files: ${report.files.page}, ${report.files.report}`,
  ].join("\n");
  return { caught, historyLinearizable: linearizable, leaseViolations: leaseChecks, report, summary };
}

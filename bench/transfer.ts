/**
 * What a state transfer costs the two replicas it involves: a 3-replica cluster on loopback, one
 * follower stopped while the others take N values of B bytes (and snapshots every 64 slots, with
 * a short log tail, so that the stopped one is behind a snapshot), then that follower restarted:
 * it fetches the snapshot from a peer in chunks. Every member's RSS is sampled every 100 ms; the
 * report gives, per member, its RSS just before the restart and its peak while the transfer
 * runs, the receiver's peak (VmHWM) since its restart, read 5 s after it caught up (its installed
 * snapshot is written after that), and its RSS then (what it holds with the state), the chunks
 * each member sent, and the CPU time each used during the transfer. Nothing here asserts a number;
 * `--json` prints it all.
 *
 * Under sustained writes (`--write-rate W`): small writes go on at W per second from the restart
 * until the receiver caught up, so that the senders take new snapshots while the transfer runs (a
 * snapshot every `--snapshot-slots` slots, 64 by default); with `--kill-at F` the receiver is
 * SIGKILLed once it holds a fraction F of the snapshot's bytes, and restarted a second later: the
 * report says whether the transfer
 * resumed (`paxos_lease_transfers_resumed_total`) and how long until the receiver caught up.
 *
 *   npx tsx bench/transfer.ts -- [--values N] [--value-bytes B] [--snapshot-slots S] [--write-rate W]
 *     [--kill-at F] [--json]
 */
import { keyPath, newSession } from "../impl/runtime/client.ts";
import { TestCluster } from "../impl/runtime/testing-cluster.ts";
import { benchFlags } from "./lib/flags.ts";
import { loadAverage, progressOf } from "./lib/report.ts";
import { cpuMs, metricSum, peakRssBytes, rssBytes } from "./lib/systems.ts";

const usage = `usage: npx tsx bench/transfer.ts [options]

A 3-replica paxos-lease cluster on loopback: a follower is stopped, the others take N values of
B bytes, the follower restarts and catches up by state transfer. Prints each member's RSS before
the restart and at its peak during the transfer, and the chunks and CPU time of the transfer.

options:
  --values N       values written while the follower is down (default 200)
  --value-bytes B  bytes of each value (default 1048576)
  --snapshot-slots S  snapshotIntervalSlots of the cluster (default 64)
  --write-rate W   small writes per second during the transfer, until caught up (default 0: none)
  --kill-at F      SIGKILL the receiver once it holds this fraction of the snapshot, restart it
                   1 s later (default: no kill)
  --json           print the samples and results as JSON
  --help           print this help
`;
const flags = benchFlags(
  {
    values: { type: "string", default: "200" },
    "value-bytes": { type: "string", default: String(1024 * 1024) },
    "snapshot-slots": { type: "string", default: "64" },
    "write-rate": { type: "string", default: "0" },
    "kill-at": { type: "string", default: "" },
    json: { type: "boolean", default: false },
  },
  usage,
);
const values = Number(flags.values);
const valueBytes = Number(flags["value-bytes"]);
const writeRate = Number(flags["write-rate"]);
const snapshotSlots = Number(flags["snapshot-slots"]);
const killAt = flags["kill-at"] === "" ? null : Number(flags["kill-at"]);
if (
  !(Number.isInteger(values) && values >= 1 && values <= 10_000) ||
  !(valueBytes >= 1 && valueBytes <= 1024 * 1024) ||
  !(writeRate >= 0 && writeRate <= 1000) ||
  !(Number.isInteger(snapshotSlots) && snapshotSlots >= 1) ||
  !(killAt === null || (killAt > 0 && killAt < 1))
) {
  process.stderr.write(usage);
  process.exit(2);
}
const progress = progressOf("transfer");

/** The series of counter `name` with `label` in a Prometheus text exposition, summed. */
function seriesSum(text: string, name: string, ...labels: string[]): number {
  let sum = 0;
  for (const line of text.split("\n"))
    if (line.startsWith(`${name}{`) && labels.every((l) => line.includes(l)))
      sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  return sum;
}

const MiB = 1024 * 1024;
const mib = (bytes: number | null): string => (bytes === null ? "-" : (bytes / MiB).toFixed(0));

async function main(): Promise<void> {
  const cluster = await TestCluster.create(
    3,
    { snapshotIntervalSlots: snapshotSlots, logTailBytes: 4 * MiB },
    { traces: false },
  );
  try {
    cluster.startAll();
    const leader = await cluster.waitForLeader(60_000);
    const lagging = leader === 3 ? 2 : 3;
    await cluster.kill(lagging);
    progress(`leader ${leader}; replica ${lagging} stopped; writing ${values} values of ${valueBytes} bytes`);
    const client = cluster.client(60_000);
    const value = (i: number): string => `${String(i).padStart(8, "0")}${"v".repeat(Math.max(0, valueBytes - 8))}`;
    let next = 0;
    const writer = async (): Promise<void> => {
      while (next < values) {
        const i = next++;
        const reply = await client.call("PUT", keyPath(`t/${i}`), { value: value(i) }, newSession());
        if (reply.status !== 200) throw new Error(`write ${i}: ${reply.status} ${JSON.stringify(reply.body)}`);
      }
    };
    await Promise.all([writer(), writer(), writer(), writer()]);
    // Small writes until a snapshot covers every large one (one is taken every 64 slots).
    const written = (await cluster.status(leader))?.executedSlot ?? 0;
    for (let i = 0; ((await cluster.status(leader))?.membership.snapshotSlot ?? 0) <= written; i++) {
      await client.call("PUT", keyPath(`small/${i}`), { value: "s" }, newSession());
    }
    const others = [1, 2, 3].filter((id) => id !== lagging);
    // Both running replicas at the same slot first: one still catching up would mix that into its peak.
    const target = (await cluster.status(leader))?.executedSlot ?? 0;
    for (const id of others)
      while (((await cluster.status(id))?.executedSlot ?? 0) < target)
        await new Promise((resolve) => setTimeout(resolve, 200));
    const pidOf = (id: number): number | null => cluster.member(id).child?.pid ?? null;
    const before = new Map(others.map((id) => [id, rssBytes(pidOf(id))]));
    const cpuBefore = new Map(others.map((id) => [id, cpuMs(pidOf(id))]));
    const leaderChanges = async (id: number): Promise<number> =>
      metricSum(await cluster.metrics(id), "paxos_lease_leader_changes_total");
    const changesBefore = new Map(await Promise.all(others.map(async (id) => [id, await leaderChanges(id)] as const)));
    progress(`state written (executed slot ${target}); restarting replica ${lagging}`);
    const peaks = new Map<number, number>();
    const samples: { ms: number; rss: Record<number, number | null> }[] = [];
    const started = performance.now();
    let totalBytes = 0;
    const sampler = setInterval(() => {
      const rss: Record<number, number | null> = {};
      for (const id of [1, 2, 3]) {
        const bytes = rssBytes(pidOf(id));
        rss[id] = bytes;
        if (bytes !== null) peaks.set(id, Math.max(peaks.get(id) ?? 0, bytes));
      }
      samples.push({ ms: Math.round(performance.now() - started), rss });
    }, 100);
    cluster.start(lagging);
    let receiverPid = pidOf(lagging);
    let receiverPeak: number | null = null;
    let receiverCpu: number | null = null;
    // Sustained small writes from the restart on, at `writeRate` per second, until caught up.
    let writing = writeRate > 0;
    let sustained = 0;
    let failedWrites = 0;
    const sustainedWriter = async (): Promise<void> => {
      for (let i = 0; writing; i++) {
        const due = started + (i * 1000) / writeRate;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        const reply = await client
          .call("PUT", keyPath(`during/${i % 1000}`), { value: `d${i}` }, newSession())
          .catch(() => null);
        if (reply?.status === 200) sustained += 1;
        else failedWrites += 1;
      }
    };
    const writes = sustainedWriter();
    let killedAt: { ms: number; receivedBytes: number; totalBytes: number } | null = null;
    let receiverRestartedAtMs: number | null = null;
    let nextReport = started + 5000;
    for (;;) {
      const status = await cluster.status(lagging).catch(() => undefined);
      const transfer = status?.membership.transfer ?? null;
      totalBytes = Math.max(totalBytes, transfer?.totalBytes ?? 0);
      receiverPeak = peakRssBytes(receiverPid) ?? receiverPeak;
      receiverCpu = cpuMs(receiverPid) ?? receiverCpu;
      if (status !== undefined && status.executedSlot >= target) break;
      if (performance.now() >= nextReport) {
        nextReport += 5000;
        progress(
          `${Math.round((performance.now() - started) / 1000)} s: receiver executed ${status?.executedSlot ?? "?"} of ${target}, snapshot ${status?.membership.snapshotSlot ?? "?"}, transfer ${transfer === null ? "none" : `of slot ${transfer.slot} from r${transfer.from}: ${mib(transfer.receivedBytes)} of ${mib(transfer.totalBytes)} MiB`}`,
        );
      }
      if (
        killAt !== null &&
        killedAt === null &&
        transfer !== null &&
        transfer.receivedBytes >= killAt * transfer.totalBytes
      ) {
        killedAt = {
          ms: Math.round(performance.now() - started),
          receivedBytes: transfer.receivedBytes,
          totalBytes: transfer.totalBytes,
        };
        progress(
          `receiver ${lagging} killed at ${transfer.receivedBytes} of ${transfer.totalBytes} bytes; restart in 1 s`,
        );
        await cluster.kill(lagging, "SIGKILL");
        await new Promise((resolve) => setTimeout(resolve, 1000));
        cluster.start(lagging);
        receiverPid = pidOf(lagging);
        receiverRestartedAtMs = Math.round(performance.now() - started);
        // The peak of the restarted process (VmHWM) is the one read from here on.
        receiverPeak = null;
      }
      if (performance.now() - started > 600_000) {
        writing = false;
        const leaderNow = await cluster.status(leader).catch(() => undefined);
        throw new Error(
          `the restarted replica did not catch up in 10 minutes: it executed ${status?.executedSlot ?? "?"} of ${target}, snapshot ${status?.membership.snapshotSlot ?? "?"}, transfer ${JSON.stringify(transfer)}; leader at ${leaderNow?.executedSlot ?? "?"}, snapshot ${leaderNow?.membership.snapshotSlot ?? "?"}; ${sustained} writes during, ${failedWrites} failed`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    writing = false;
    await writes;
    clearInterval(sampler);
    const seconds = (performance.now() - started) / 1000;
    // Executed up to the target is not the end of the receiver's work: the snapshot it installed
    // is written after that (serialized in slices), and may cost more than the transfer did. Its
    // peak is read once a few quiet seconds have passed, and its RSS then is what it holds with the state.
    const caughtUpPeak = receiverPeak;
    await new Promise((resolve) => setTimeout(resolve, 5000));
    receiverPeak = peakRssBytes(receiverPid) ?? receiverPeak;
    const receiverAfter = rssBytes(receiverPid);
    // The chunks the receiver took from each peer (its received counter is by sender and type).
    const received = await cluster.metrics(lagging);
    const resumed = metricSum(received, "paxos_lease_transfers_resumed_total");
    const counts = new Map<number, { chunks: number; leaderChanges: number }>();
    for (const id of others)
      counts.set(id, {
        chunks: seriesSum(received, "paxos_lease_messages_received_total", `from="${id}"`, 'type="SnapshotChunk"'),
        leaderChanges: (await leaderChanges(id)) - (changesBefore.get(id) ?? 0),
      });
    const result = {
      values,
      valueBytes,
      snapshotBytes: totalBytes,
      seconds: Number(seconds.toFixed(1)),
      writeRate,
      writesDuring: sustained,
      writesFailed: failedWrites,
      killedAt,
      receiverRestartedAtMs,
      transfersResumed: resumed,
      receiver: {
        id: lagging,
        peakRssBytes: receiverPeak,
        peakRssUntilCaughtUpBytes: caughtUpPeak,
        sampledPeakRssBytes: peaks.get(lagging) ?? null,
        rssAfterBytes: receiverAfter,
        cpuMs: receiverCpu,
      },
      peers: others.map((id) => ({
        id,
        rssBeforeBytes: before.get(id) ?? null,
        peakRssBytes: peaks.get(id) ?? null,
        chunksSent: counts.get(id)?.chunks ?? 0,
        leaderChanges: counts.get(id)?.leaderChanges ?? 0,
        cpuMs: (cpuMs(pidOf(id)) ?? 0) - (cpuBefore.get(id) ?? 0),
      })),
      load: loadAverage(),
    };
    if (flags.json) process.stdout.write(`${JSON.stringify({ ...result, samples }, null, 2)}\n`);
    else {
      process.stdout.write(
        `state transfer of a snapshot of ${mib(totalBytes)} MiB (${values} values of ${valueBytes} bytes) to replica ${lagging}: caught up in ${result.seconds} s\n`,
      );
      process.stdout.write(
        `  receiver ${lagging}: peak RSS ${mib(receiverPeak)} MiB (VmHWM since restart, 5 s after catching up; ${mib(caughtUpPeak)} MiB until caught up), ${mib(receiverAfter)} MiB then, CPU ${receiverCpu ?? "-"} ms\n`,
      );
      if (killedAt !== null)
        process.stdout.write(
          `  receiver killed at ${killedAt.ms} ms holding ${mib(killedAt.receivedBytes)} of ${mib(killedAt.totalBytes)} MiB, restarted at ${receiverRestartedAtMs} ms; transfers resumed: ${resumed}\n`,
        );
      if (writeRate > 0)
        process.stdout.write(
          `  ${sustained} small writes during the transfer, ${failedWrites} failed (${writeRate} per second asked)\n`,
        );
      for (const p of result.peers)
        process.stdout.write(
          `  peer ${p.id}: RSS ${mib(p.rssBeforeBytes)} MiB before, peak ${mib(p.peakRssBytes)} MiB during; ${p.chunksSent} snapshot chunks sent, CPU ${p.cpuMs} ms, ${p.leaderChanges} leader changes seen\n`,
        );
      process.stdout.write(`  load average ${result.load} (uptime)\n`);
    }
  } finally {
    await cluster.close();
  }
}

await main();

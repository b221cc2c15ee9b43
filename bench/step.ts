/**
 * Raw `step` throughput on one core: a 3-replica cluster in steady state, all in one process,
 * with no I/O. The leader receives client writes (with sessions), followers receive Accepts
 * and heartbeats, the leader receives Accepteds and acknowledgements, and every replica is
 * ticked. Every call of `step` counts as one event. Persist effects are dropped (a driver would
 * write them); messages are delivered in FIFO order.
 *
 * Usage: npx tsx bench/step.ts [--seconds 3] [--json]   (seconds per mix)
 * `--seconds` is CPU time: throughput is events per CPU second, robust to a busy machine.
 * Target: >= 200,000 events/s.
 */
import { kv, type KvInput, type KvOutput, type KvState } from "../spec/kv.ts";
import {
  becomeCandidate,
  defaultRules,
  initialState,
  parseConfig,
  step,
  type Message,
  type ReplicaEffect,
  type ReplicaState,
} from "../impl/core/testing/index.ts";
import { benchFlags, refuseFlags } from "./lib/flags.ts";

type Replica = ReplicaState<KvState, KvInput, KvOutput>;

const usage = `usage: npm run bench:step -- [--seconds 3] [--json] [--help]

Raw step throughput of a 3-replica cluster in one process, events per CPU second, per mix.

options:
  --seconds S   CPU seconds per mix (default 3)
  --json        print the results as JSON
  --help        print this help
`;

function options(): { readonly seconds: number; readonly json: boolean } {
  const flags = benchFlags(
    { seconds: { type: "string", default: "3" }, json: { type: "boolean", default: false } },
    usage,
  );
  const seconds = Number(flags.seconds);
  if (!(seconds > 0)) refuseFlags(`--seconds must be a positive number, got '${flags.seconds}'`, usage);
  return { seconds, json: flags.json };
}

interface Queued {
  readonly from: number;
  readonly to: number;
  readonly message: Message<KvInput>;
}

function run(
  seconds: number,
  clients: number,
): { events: number; requests: number; replies: number; seconds: number; wallSeconds: number; slots: number } {
  const members = [1, 2, 3];
  const replicas = new Map<number, Replica>();
  for (const self of members) {
    const s = initialState(parseConfig({ members, self }), kv);
    replicas.set(self, step(s, { _tag: "Recover", now: 0, records: [] }).state);
  }
  let queue: Queued[] = [];
  let events = 0;
  let replies = 0;
  let now = 300;
  const take = (from: number, effects: readonly ReplicaEffect<KvInput, KvOutput>[]) => {
    for (const e of effects) {
      if (e._tag === "Send") queue.push({ from, to: e.to, message: e.message });
      else if (e._tag === "Reply") replies++;
    }
  };
  const deliverAll = () => {
    while (queue.length > 0) {
      const batch = queue;
      queue = [];
      for (const q of batch) {
        const r = step(replicas.get(q.to)!, { _tag: "Receive", now, from: q.from, message: q.message });
        events++;
        replicas.set(q.to, r.state);
        take(q.to, r.effects);
      }
    }
  };
  // Elect replica 1.
  const effects: ReplicaEffect<KvInput, KvOutput>[] = [];
  replicas.set(1, becomeCandidate(defaultRules, { ...replicas.get(1)!, now }, now, effects));
  take(1, effects);
  deliverAll();
  if (replicas.get(1)!.role._tag !== "leader") throw new Error("bench: replica 1 was not elected");

  const clientSeq = new Array<number>(clients).fill(0);
  let requests = 0;
  let requestId = 1;
  // Throughput is events per second of CPU time used by this process, so that other programs
  // sharing the machine do not distort it; wall time is reported beside it.
  const start = process.hrtime.bigint();
  const cpuStart = process.cpuUsage();
  const budget = BigInt(Math.round(seconds * 1e9));
  let elapsed = 0n;
  let cpuSeconds = 0;
  while (cpuSeconds < seconds && elapsed < budget * 4n) {
    const eventsBefore = events;
    while (events - eventsBefore < 20_000) {
      // Every client submits its next request, then the network delivers everything.
      for (let c = 0; c < clients; c++) {
        const seq = ++clientSeq[c]!;
        const r = step(replicas.get(1)!, {
          _tag: "ClientRequest",
          now,
          requestId: requestId++,
          clientId: `client-${c}`,
          seq,
          input: { _tag: "put", key: `k${c % 64}`, value: `v${seq}` },
          consistency: "linearizable",
        });
        events++;
        requests++;
        replicas.set(1, r.state);
        take(1, r.effects);
      }
      deliverAll();
      // One millisecond passes: every replica is ticked (heartbeats every 50 ms).
      now += 1;
      for (const id of members) {
        const r = step(replicas.get(id)!, { _tag: "Tick", now });
        events++;
        replicas.set(id, r.state);
        take(id, r.effects);
      }
      deliverAll();
    }
    elapsed = process.hrtime.bigint() - start;
    const cpu = process.cpuUsage(cpuStart);
    cpuSeconds = (cpu.user + cpu.system) / 1e6;
  }
  const leader = replicas.get(1)!;
  if (leader.role._tag !== "leader") throw new Error("bench: replica 1 lost leadership");
  return {
    events,
    requests,
    replies,
    seconds: cpuSeconds,
    wallSeconds: Number(elapsed) / 1e9,
    slots: leader.learner.executedUpTo,
  };
}

/** The two steady states measured: one outstanding request (a slot per command), and 256 (batches). */
const mixes = [
  { name: "one request at a time", clients: 1 },
  { name: "256 outstanding requests", clients: 256 },
] as const;

const { seconds, json } = options();
const summaries = mixes.map((mix) => {
  const result = run(seconds, mix.clients);
  const eventsPerSecond = result.events / result.seconds;
  return {
    mix: mix.name,
    clients: mix.clients,
    cpuSeconds: Number(result.seconds.toFixed(3)),
    wallSeconds: Number(result.wallSeconds.toFixed(3)),
    events: result.events,
    eventsPerSecond: Math.round(eventsPerSecond),
    requestsPerSecond: Math.round(result.requests / result.seconds),
    replies: result.replies,
    slotsExecuted: result.slots,
    commandsPerSlot: Number((result.requests / Math.max(1, result.slots)).toFixed(1)),
    meetsTarget: eventsPerSecond >= 200_000,
  };
});
if (json) {
  process.stdout.write(
    `${JSON.stringify({ benchmark: "step", replicas: 3, targetEventsPerSecond: 200_000, mixes: summaries })}\n`,
  );
} else {
  process.stdout.write("step throughput, 3 replicas in one process, events per CPU second (target 200,000):\n");
  for (const s of summaries) {
    process.stdout.write(
      `  ${s.mix.padEnd(26)} ${s.eventsPerSecond.toLocaleString("en-US").padStart(9)} events/s  ` +
        `${s.requestsPerSecond.toLocaleString("en-US").padStart(8)} writes/s  ${s.commandsPerSlot} commands/slot  ` +
        `(${s.cpuSeconds} s CPU, ${s.wallSeconds} s wall)${s.meetsTarget ? "" : "  below target"}\n`,
    );
  }
}

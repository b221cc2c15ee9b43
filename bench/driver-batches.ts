/**
 * The driver's own cost of a lone write on a leader, without the core, the network or the disk:
 * impl/runtime/driver.ts driven in one process through the four batches a leader steps for one
 * write with one client (the request, whose step persists the own vote with its notice and sends
 * two Accepts; the first Accepted, whose step persists a `chosen` record and replies; the own
 * vote's `VoteDurable`; the second Accepted), with a stand-in core that returns those effects and a
 * log that acknowledges each append in the next turn. Prints the CPU per write and, from V8's
 * sampling heap profiler (collected objects included), the bytes allocated per write by function.
 * Warm code on a warm cache: a floor of what the same work costs in a replica, whose turns run on
 * caches the rest of the machine emptied (docs/performance.md, "The driver's batches").
 *
 *   npx tsx bench/driver-batches.ts [--writes 30000] [--top 12]
 */
import { Session } from "node:inspector/promises";
import type { ClientResult, Effect, Event, StepResult } from "../impl/core/index.ts";
import { monotonicClock } from "../impl/runtime/clock.ts";
import { Driver, type DurableLog } from "../impl/runtime/driver.ts";
import { benchFlags } from "./lib/flags.ts";
import { loadAverage } from "./lib/report.ts";

const usage = `usage: npx tsx bench/driver-batches.ts [options]

CPU and allocations per lone write of the driver's batches (a stand-in core, no disk or network).

options:
  --writes N  measured writes (default 30000; as many again warm the code up)
  --top N     allocating functions listed (default 12)
  --help      print this help
`;

const flags = benchFlags(
  { writes: { type: "string", default: "30000" }, top: { type: "string", default: "12" } },
  usage,
);
const writes = Number(flags.writes);
const top = Number(flags.top);
if (!(Number.isInteger(writes) && writes >= 1) || !(Number.isInteger(top) && top >= 0)) {
  process.stderr.write(usage);
  process.exit(2);
}

type Msg = { readonly _tag: "Accept"; readonly slot: number } | { readonly _tag: "Accepted"; readonly slot: number };
type Rec =
  | { readonly _tag: "vote"; readonly slot: number; readonly value: number }
  | { readonly _tag: "chosen"; readonly slot: number };
interface State {
  readonly slot: number;
  /** The request each slot answers. */
  readonly requests: ReadonlyMap<number, number>;
}

const ballot = { round: 1, replica: 1 };
/** A leader's lone write, as its core's effects: the slot is chosen by the first Accepted. */
function step(state: State, event: Event<Msg, Rec, number>): StepResult<State, Msg, Rec, number> {
  if (event._tag === "ClientRequest") {
    const slot = state.slot + 1;
    const effects: Effect<Msg, Rec, number>[] = [
      { _tag: "Persist", record: { _tag: "vote", slot, value: event.input }, notify: { slot, ballot } },
      { _tag: "Send", to: 2, message: { _tag: "Accept", slot } },
      { _tag: "Send", to: 3, message: { _tag: "Accept", slot } },
    ];
    return { state: { slot, requests: new Map([[slot, event.requestId]]) }, effects };
  }
  if (event._tag === "Receive" && event.message._tag === "Accepted") {
    const requestId = state.requests.get(event.message.slot);
    if (requestId === undefined) return { state, effects: [] };
    const reply: ClientResult<number> = { _tag: "ok", output: event.message.slot };
    return {
      state: { slot: state.slot, requests: new Map() },
      effects: [
        { _tag: "Persist", record: { _tag: "chosen", slot: event.message.slot } },
        { _tag: "Reply", requestId, result: reply },
      ],
    };
  }
  return { state, effects: [] };
}

let recordCount = 0;
const log: DurableLog<Rec> = {
  get recordCount() {
    return recordCount;
  },
  append(records) {
    recordCount += records.length;
  },
  appendAsync(records, done) {
    recordCount += records.length;
    setImmediate(() => done(null));
  },
};
const driver = new Driver<State, Msg, Rec, number, number>({
  step,
  state: { slot: 0, requests: new Map() },
  log,
  clock: monotonicClock(),
  send: () => true,
  flushSends: () => undefined,
  deferrable: (record) => record._tag === "chosen",
  overtaking: { overtakes: (m) => m._tag === "Accept", durable: () => undefined, dependsOn: () => false },
  urgent: () => false,
  onAlarm: () => undefined,
  onFatal: (error) => {
    process.stderr.write(`bench:driver-batches: the driver stopped: ${String(error)}\n`);
    process.exit(1);
  },
  onBatch: () => undefined,
  onCommit: () => undefined,
  tickIntervalMs: 3_600_000,
});
driver.start([]);

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
let slot = 0;
/** One write: the request, the first Accepted after a turn, the second after the own vote's notice. */
async function write(): Promise<void> {
  const reply = driver.submit({ input: slot, consistency: "linearizable", bytes: 100 });
  await turn();
  slot += 1;
  driver.receive(2, { _tag: "Accepted", slot }, 0, "peer-2", 30);
  await turn();
  await turn();
  driver.receive(3, { _tag: "Accepted", slot }, 0, "peer-3", 30);
  const result = await reply;
  if (result._tag !== "ok") throw new Error(`the write was not answered: ${JSON.stringify(result)}`);
  await turn();
}

for (let i = 0; i < writes; i++) await write();
const cpu = process.cpuUsage();
for (let i = 0; i < writes; i++) await write();
const used = process.cpuUsage(cpu);

interface HeapNode {
  readonly selfSize: number;
  readonly callFrame: { readonly functionName: string; readonly url: string };
  readonly children: readonly HeapNode[];
}
const session = new Session();
session.connect();
await session.post("HeapProfiler.startSampling", {
  samplingInterval: 64,
  includeObjectsCollectedByMinorGC: true,
  includeObjectsCollectedByMajorGC: true,
});
for (let i = 0; i < writes; i++) await write();
const { profile } = (await session.post("HeapProfiler.stopSampling")) as { profile: { head: HeapNode } };
session.disconnect();
driver.stop();

const byFunction = new Map<string, number>();
let total = 0;
const walk = (node: HeapNode): void => {
  total += node.selfSize;
  const file = node.callFrame.url.split("/").at(-1) ?? "";
  const name = `${node.callFrame.functionName || "(anonymous)"} ${file}`.trim();
  byFunction.set(name, (byFunction.get(name) ?? 0) + node.selfSize);
  for (const child of node.children) walk(child);
};
walk(profile.head);
const lines = [
  `${writes} writes: ${((used.user + used.system) / writes).toFixed(2)} us of CPU per write, ${Math.round(total / writes)} bytes allocated per write; load ${loadAverage()}`,
  ...[...byFunction]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, bytes]) => `${String(Math.round(bytes / writes)).padStart(8)}  ${name}`),
];
process.stdout.write(`${lines.join("\n")}\n`);

/**
 * How fast the linearizability checker decides large histories: 50 concurrent clients,
 * thousands of operations, realized from a random atomic execution (so linearizable), with
 * and without one injected stale read, over few (hot) and many keys.
 * Run: `npm run bench:linearizability [-- --json]` (SCENARIO=text runs the scenarios whose
 * name contains it). Each key is searched with a budget of 5 million steps; a key that needs
 * more is reported "unknown", which marks the limits of the search (one hot key written by
 * 50 clients at once), not a pass.
 */
import { kv, type KvInput, type KvOutput } from "../spec/kv.ts";
import { kvModel } from "../impl/history/history.ts";
import { checkLinearizable, type Operation } from "../impl/history/linearizability.ts";
import { seededRandom } from "../refinement-tests/nemesis/schedule.ts";

interface Scenario {
  name: string;
  clients: number;
  opsPerClient: number;
  keys: number;
  writeRatio: number;
  unknownRatio: number;
}

function generate(s: Scenario, seed: number): Operation<KvInput, KvOutput>[] {
  const random = seededRandom(seed);
  const planned: {
    client: string;
    input: KvInput;
    invoke: number;
    complete: number;
    point: number;
    unknown: boolean;
  }[] = [];
  let unique = 0;
  for (let c = 0; c < s.clients; c++) {
    let t = random() * 5;
    for (let i = 0; i < s.opsPerClient; i++) {
      const invoke = t + random() * 2;
      const complete = invoke + 1 + random() * 10;
      const key = `k${Math.floor(random() * s.keys)}`;
      const input: KvInput =
        random() < s.writeRatio ? { _tag: "put", key, value: `v${unique++}` } : { _tag: "get", key };
      const unknown = random() < s.unknownRatio;
      planned.push({
        client: `c${c}`,
        input,
        invoke,
        complete,
        point: invoke + random() * (complete - invoke),
        unknown,
      });
      t = complete;
    }
  }
  const order = planned.map((p, i) => ({ p, i })).sort((a, b) => a.p.point - b.p.point);
  const outputs: KvOutput[] = [];
  let state = kv.start;
  for (const { p, i } of order) {
    const applied = kv.apply(p.input, state);
    outputs[i] = applied.output;
    state = applied.state;
  }
  return planned.map((p, i) => ({
    id: i,
    client: p.client,
    input: p.input,
    invoke: p.invoke,
    complete: p.unknown ? Infinity : p.complete,
    output: p.unknown ? undefined : outputs[i],
  }));
}

/** Make the last read of the hottest key return a value written long before it. */
function injectStaleRead(ops: Operation<KvInput, KvOutput>[]): Operation<KvInput, KvOutput>[] {
  const reads = ops.filter((o) => o.input._tag === "get" && o.complete !== Infinity);
  for (const read of reads.reverse()) {
    const key = read.input._tag === "get" ? read.input.key : "";
    const earlier = ops.filter((w) => w.input._tag === "put" && w.input.key === key && w.complete < read.invoke);
    for (const w1 of earlier) {
      if (
        ops.some(
          (w2) =>
            w2.input._tag === "put" && w2.input.key === key && w1.complete < w2.invoke && w2.complete < read.invoke,
        )
      ) {
        const stale = w1.input._tag === "put" ? w1.input.value : "";
        return ops.map((o) => (o === read ? { ...o, output: { _tag: "value", value: stale } } : o));
      }
    }
  }
  throw new Error("no read to make stale");
}

const allScenarios: Scenario[] = [
  {
    name: "50 clients, 5000 ops, 100 keys",
    clients: 50,
    opsPerClient: 100,
    keys: 100,
    writeRatio: 0.5,
    unknownRatio: 0.01,
  },
  {
    name: "50 clients, 5000 ops, 10 keys",
    clients: 50,
    opsPerClient: 100,
    keys: 10,
    writeRatio: 0.5,
    unknownRatio: 0.01,
  },
  { name: "50 clients, 2000 ops, 1 key", clients: 50, opsPerClient: 40, keys: 1, writeRatio: 0.3, unknownRatio: 0.005 },
  {
    name: "50 clients, 2000 ops, 1 key, no unknown",
    clients: 50,
    opsPerClient: 40,
    keys: 1,
    writeRatio: 0.3,
    unknownRatio: 0,
  },
  {
    name: "10 clients, 2000 ops, 1 key",
    clients: 10,
    opsPerClient: 200,
    keys: 1,
    writeRatio: 0.3,
    unknownRatio: 0.005,
  },
  {
    name: "20 clients, 2000 ops, 1 key",
    clients: 20,
    opsPerClient: 100,
    keys: 1,
    writeRatio: 0.3,
    unknownRatio: 0.005,
  },
];

const only = process.env.SCENARIO;
const scenarios = allScenarios.filter((s) => only === undefined || s.name.includes(only));
const json = process.argv.includes("--json");
const rows = [];
for (const s of scenarios) {
  for (const stale of [false, true]) {
    const base = generate(s, 42);
    const ops = stale ? injectStaleRead(base) : base;
    const started = performance.now();
    const result = checkLinearizable(kvModel, ops, { stepsMaxPerPartition: 5_000_000 });
    const seconds = (performance.now() - started) / 1000;
    const expected = stale ? "not-linearizable" : "linearizable";
    // "unknown" (the step budget ran out) is reported as such: it shows where the search's limits lie.
    if (result.verdict !== expected && result.verdict !== "unknown")
      throw new Error(`${s.name}: expected ${expected}, got ${result.verdict}`);
    rows.push({
      scenario: s.name,
      staleReadInjected: stale,
      operations: ops.length,
      verdict: result.verdict,
      steps: result.steps,
      seconds: Number(seconds.toFixed(3)),
    });
    if (!json)
      console.log(
        `${s.name.padEnd(34)} ${stale ? "stale read " : "as run     "} ${result.verdict.padEnd(17)} ${String(result.steps).padStart(9)} steps ${seconds.toFixed(3)} s`,
      );
  }
}
if (json) console.log(JSON.stringify({ benchmark: "linearizability", rows }, null, 2));

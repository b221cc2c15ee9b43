/**
 * How fast the history checker decides, on the workloads its targets name (docs/history-
 * format.md, "Limits, measured"), beside the previous checker (the last commit before the
 * search in Porcupine's form, read from git) on the same histories:
 *
 *   etcd        100 Jepsen-style etcd register histories (5 to 10 clients, about 80
 *               operations, a fifth failed cas, some timed out), written as Porcupine's
 *               Jepsen logs to out/bench/etcd/ and read back through the importer; every
 *               operation checked.
 *   stale-1key  50 clients, 1,000 register operations on one key, one stale read injected
 *               (and the same history as run).
 *   append-10   50 clients appending to and reading 10 keys (appends completed without their
 *               output, as Jepsen records them), as run and with one read missing an append
 *               that completed before it.
 *   generated   50 clients, 5,000 kv operations over 100, 10 and 1 keys (as before).
 *
 * Porcupine itself (Go) is not run here: see docs/history-format.md for why and for the
 * comparison this makes instead. Times are CPU seconds of this process (user + system) and
 * wall seconds; the machine is shared, so `uptime` is printed with them.
 *
 * Run: `npm run bench:linearizability [-- --json] [-- --quick]` (SCENARIO=text runs the
 * scenarios whose name contains it; --quick skips the previous checker).
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { kv, type KvInput, type KvOutput } from "../spec/kv.ts";
import { loadHistory, modelNamed, type HistoryOperation } from "../impl/history/history.ts";
import { importPorcupineLog } from "../impl/history/importers.ts";
import { checkLinearizable, type Operation } from "../impl/history/linearizability.ts";
import { seededRandom } from "../refinement-tests/nemesis/schedule.ts";

const root = join(import.meta.dirname, "..");
const json = process.argv.includes("--json");
const quick = process.argv.includes("--quick");
const only = process.env.SCENARIO;

type Checker = (model: "kv" | "register", ops: readonly HistoryOperation[], stepsMax: number) => string;

const current: Checker = (model, ops, stepsMax) =>
  checkLinearizable(modelNamed(model), ops, { stepsMaxPerPartition: stepsMax }).verdict;

/** The previous checker and its models, from git (the commit before the search was replaced). */
async function previousChecker(): Promise<Checker | null> {
  const commit = "6ec35a0";
  const dir = join(root, "out", "bench", "previous-checker");
  try {
    mkdirSync(join(dir, "proofs"), { recursive: true });
    for (const file of ["linearizability.ts", "history.ts"]) {
      const text = execFileSync("git", ["show", `${commit}:proofs/${file}`], { cwd: root, encoding: "utf8" });
      writeFileSync(join(dir, "proofs", file), text.replaceAll('"../spec/', `"${join(root, "spec")}/`));
    }
  } catch {
    return null;
  }
  const lin = (await import(
    join(dir, "proofs", "linearizability.ts")
  )) as typeof import("../impl/history/linearizability.ts");
  const models = (await import(join(dir, "proofs", "history.ts"))) as typeof import("../impl/history/history.ts");
  return (model, ops, stepsMax) => {
    // Its register model checks a failed cas by the casFailed flag and ignores the output.
    const m = models.modelNamed(model);
    return lin.checkLinearizable(m, ops, { stepsMaxPerPartition: stepsMax }).verdict;
  };
}

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

interface Row {
  scenario: string;
  checker: string;
  histories: number;
  operations: number;
  verdicts: Record<string, number>;
  cpuSeconds: number;
  wallSeconds: number;
}

function measure(
  scenario: string,
  checker: string,
  histories: { model: "kv" | "register"; ops: readonly HistoryOperation[] }[],
  check: Checker,
  stepsMax: number,
): Row {
  const verdicts: Record<string, number> = {};
  const cpu = cpuSeconds();
  const wall = performance.now();
  for (const h of histories) {
    const v = check(h.model, h.ops, stepsMax);
    verdicts[v] = (verdicts[v] ?? 0) + 1;
  }
  return {
    scenario,
    checker,
    histories: histories.length,
    operations: histories.reduce((sum, h) => sum + h.ops.length, 0),
    verdicts,
    cpuSeconds: Number((cpuSeconds() - cpu).toFixed(3)),
    wallSeconds: Number(((performance.now() - wall) / 1000).toFixed(3)),
  };
}

// ---- Jepsen-style etcd register histories, as Porcupine's logs ----

/**
 * One Jepsen-style etcd register history: clients read, write and cas small values (0..4)
 * against an atomic register; about a fifth of the operations are cas that fail; a client
 * whose operation times out (:info) is replaced by a new process, as Jepsen does.
 */
function etcdLog(seed: number): string {
  const random = seededRandom(seed);
  const clients = 5 + Math.floor(random() * 6);
  const target = 70 + Math.floor(random() * 20);
  let value: number | null = null;
  const lines: string[] = [];
  const busy = new Map<number, { f: string; arg: string; effect: () => string | null; timedOut: boolean }>();
  let nextProcess = clients;
  const processes = Array.from({ length: clients }, (_, i) => i);
  let invoked = 0;
  const line = (p: number, type: string, f: string, v: string): void => {
    lines.push(`INFO  jepsen.util - ${p}\t:${type}\t:${f}\t${v}`);
  };
  while (invoked < target || busy.size > 0) {
    const idle = processes.filter((p) => !busy.has(p));
    if (invoked < target && idle.length > 0 && (busy.size === 0 || random() < 0.5)) {
      const p = idle[Math.floor(random() * idle.length)]!;
      const r = random();
      const v = Math.floor(random() * 5);
      const from = Math.floor(random() * 5);
      const timedOut = random() < 0.03;
      if (r < 0.4)
        busy.set(p, { f: "read", arg: "nil", effect: () => (value === null ? "nil" : String(value)), timedOut });
      else if (r < 0.7) busy.set(p, { f: "write", arg: String(v), effect: () => ((value = v), String(v)), timedOut });
      else
        busy.set(p, {
          f: "cas",
          arg: `[${from} ${v}]`,
          effect: () => (value === from ? ((value = v), `[${from} ${v}]`) : null),
          timedOut,
        });
      const op = busy.get(p)!;
      line(p, "invoke", op.f, op.arg);
      invoked++;
      continue;
    }
    // Complete one pending operation: it takes effect now (a timed-out one may or may not).
    const pending = [...busy.keys()];
    const p = pending[Math.floor(random() * pending.length)]!;
    const op = busy.get(p)!;
    busy.delete(p);
    if (op.timedOut) {
      if (random() < 0.5) op.effect();
      line(p, "info", op.f, ":timed-out");
      processes[processes.indexOf(p)] = nextProcess++;
      continue;
    }
    const result = op.effect();
    if (result === null) line(p, "fail", op.f, op.arg);
    else line(p, "ok", op.f, result);
  }
  return lines.join("\n") + "\n";
}

function etcdHistories(): { model: "register"; ops: readonly HistoryOperation[] }[] {
  const dir = join(root, "out", "bench", "etcd");
  mkdirSync(dir, { recursive: true });
  return Array.from({ length: 100 }, (_, i) => {
    const file = join(dir, `etcd_${String(i).padStart(3, "0")}.log`);
    writeFileSync(file, etcdLog(1000 + i));
    const loaded = loadHistory(importPorcupineLog(readFileSync(file, "utf8")));
    return { model: "register" as const, ops: loaded.operations };
  });
}

// ---- Generated kv histories: operations take effect at a point inside their interval ----

interface Plan {
  clients: number;
  opsPerClient: number;
  keys: number;
  writeRatio: number;
  unknownRatio: number;
  append?: boolean;
}

function generate(s: Plan, seed: number): Operation<KvInput, KvOutput>[] {
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
      const value = `v${unique++} `;
      const input: KvInput =
        random() < s.writeRatio
          ? s.append === true
            ? { _tag: "append", key, value }
            : { _tag: "put", key, value }
          : { _tag: "get", key };
      planned.push({
        client: `c${c}`,
        input,
        invoke,
        complete,
        point: invoke + random() * (complete - invoke),
        unknown: random() < s.unknownRatio,
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
    // Appends complete without their output, as Jepsen records them.
    output: p.unknown || p.input._tag === "append" ? undefined : outputs[i],
  }));
}

/** Make the last read that can be stale return a value written before a later completed write. */
function injectStaleRead(ops: Operation<KvInput, KvOutput>[]): Operation<KvInput, KvOutput>[] {
  const reads = ops.filter((o) => o.input._tag === "get" && o.complete !== Infinity);
  for (const read of reads.reverse()) {
    const key = read.input._tag === "get" ? read.input.key : "";
    const writes = ops.filter((w) => w.input._tag === "put" && w.input.key === key && w.complete !== Infinity);
    for (const w1 of writes.filter((w) => w.complete < read.invoke)) {
      if (writes.some((w2) => w1.complete < w2.invoke && w2.complete < read.invoke)) {
        const stale = w1.input._tag === "put" ? w1.input.value : "";
        return ops.map((o) => (o === read ? { ...o, output: { _tag: "value", value: stale } } : o));
      }
    }
  }
  throw new Error("no read to make stale");
}

/** Make the last read that can miss an append (one completed before the read was invoked) miss it. */
function dropAppendFromRead(ops: Operation<KvInput, KvOutput>[]): Operation<KvInput, KvOutput>[] {
  const reads = ops.filter((o) => o.input._tag === "get" && o.output?._tag === "value" && o.output.value !== null);
  for (const read of reads.reverse()) {
    const seen = read.output?._tag === "value" ? (read.output.value ?? "") : "";
    const key = read.input._tag === "get" ? read.input.key : "";
    const done = ops.find(
      (a) =>
        a.input._tag === "append" && a.input.key === key && a.complete < read.invoke && seen.includes(a.input.value),
    );
    if (done !== undefined && done.input._tag === "append") {
      const missing = seen.replace(done.input.value, "");
      return ops.map((o) =>
        o === read ? { ...o, output: { _tag: "value", value: missing === "" ? null : missing } } : o,
      );
    }
  }
  throw new Error("no read to drop an append from");
}

async function main(): Promise<void> {
  const previous = quick ? null : await previousChecker();
  const rows: Row[] = [];
  const run = (
    scenario: string,
    histories: { model: "kv" | "register"; ops: readonly HistoryOperation[] }[],
    stepsMax: number,
  ): void => {
    if (only !== undefined && !scenario.includes(only)) return;
    for (const [name, check] of [
      ["current", current],
      ["previous", previous],
    ] as const) {
      if (check === null) continue;
      const row = measure(scenario, name, histories, check, stepsMax);
      rows.push(row);
      if (!json)
        console.log(
          `${scenario.padEnd(44)} ${name.padEnd(8)} ${String(row.operations).padStart(6)} ops  ${JSON.stringify(row.verdicts).padEnd(44)} cpu ${row.cpuSeconds.toFixed(3)} s  wall ${row.wallSeconds.toFixed(3)} s`,
        );
    }
  };
  if (!json)
    console.log(
      `load average ${loadavg()
        .map((l) => l.toFixed(2))
        .join(" ")}`,
    );
  run("etcd: 100 Jepsen-style register histories", etcdHistories(), 20_000_000);
  const register1k = generate({ clients: 50, opsPerClient: 20, keys: 1, writeRatio: 0.3, unknownRatio: 0.005 }, 7);
  run("stale-1key: 50 clients, 1000 ops, stale read", [{ model: "kv", ops: injectStaleRead(register1k) }], 20_000_000);
  run("stale-1key: 50 clients, 1000 ops, as run", [{ model: "kv", ops: register1k }], 20_000_000);
  const appends = generate(
    { clients: 50, opsPerClient: 40, keys: 10, writeRatio: 0.5, unknownRatio: 0.005, append: true },
    11,
  );
  run("append-10: 50 clients, 2000 ops, 10 keys, as run", [{ model: "kv", ops: appends }], 20_000_000);
  run(
    "append-10: 50 clients, 2000 ops, 10 keys, missing",
    [{ model: "kv", ops: dropAppendFromRead(appends) }],
    20_000_000,
  );
  for (const keys of [100, 10]) {
    const ops = generate({ clients: 50, opsPerClient: 100, keys, writeRatio: 0.5, unknownRatio: 0.01 }, 42);
    run(`generated: 50 clients, 5000 ops, ${keys} keys, as run`, [{ model: "kv", ops }], 5_000_000);
    run(
      `generated: 50 clients, 5000 ops, ${keys} keys, stale read`,
      [{ model: "kv", ops: injectStaleRead(ops) }],
      5_000_000,
    );
  }
  if (json) console.log(JSON.stringify({ benchmark: "linearizability", loadAverage: loadavg(), rows }, null, 2));
}

await main();

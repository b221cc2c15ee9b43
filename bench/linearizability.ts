/**
 * How fast the history checker decides, on the workloads its targets name (docs/history-
 * format.md, "Limits, measured"), beside Porcupine and beside the previous checker (the last
 * commit before the search in Porcupine's form, read from git) on the same histories:
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
 * Side by side with Porcupine (`--porcupine BIN` or PORCUPINE_BIN, a driver around
 * Porcupine's checker that the user builds: see lib/porcupine.ts; without it the report says
 * Porcupine was not run): both check the same etcd log files, and `--jepsen DIR` (or
 * PORCUPINE_JEPSEN_DIR) adds Porcupine's own Jepsen etcd logs (its repository's
 * test_data/jepsen), whose expected verdicts are known; without it the report says they were
 * not run. Porcupine and its logs are never part of this repository. Each checker runs in PROCESSES fresh
 * processes that parse every file first and then check them all ROUNDS times; the figure is
 * the CPU time of the checking alone (the whole process: compiler and collector threads
 * count). The first round of a fresh process is what one run of check-history pays; the later
 * rounds are the compiled code's speed. The two checkers' verdicts must agree (and match the
 * expected ones), or the bench exits 1.
 *
 * The other scenarios are timed in this process: CPU seconds (user + system) and wall
 * seconds. The machine is shared, so the load average is printed with every figure.
 *
 * Run: `npm run bench:linearizability [-- --json] [-- --quick] [-- --porcupine BIN]
 * [-- --jepsen DIR] [-- --processes 5] [-- --rounds 10]` (SCENARIO=text runs the scenarios
 * whose name contains it; --quick skips the previous checker).
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { basename, join } from "node:path";
import { kv, type KvInput, type KvOutput } from "../spec/kv.ts";
import { loadHistory, modelNamed, type HistoryOperation } from "../impl/history/history.ts";
import { importPorcupineLog } from "../impl/history/importers.ts";
import { checkLinearizable, type Operation } from "../impl/history/linearizability.ts";
import { tierUpForChecking } from "../impl/runtime/check-history.ts";
import { seededRandom } from "../refinement-tests/nemesis/schedule.ts";
import type { RoundsReport } from "./lib/history-rounds.ts";
import { benchFlags, refuseFlags } from "./lib/flags.ts";
import { median } from "./lib/load.ts";
import { runPorcupine } from "./lib/porcupine.ts";
import { loadAverage } from "./lib/report.ts";

const root = join(import.meta.dirname, "..");
const usage = `usage: npm run bench:linearizability -- [options]   (SCENARIO=text: only scenarios named so)

options:
  --json              print the report as JSON
  --quick             skip the previous checker
  --porcupine BIN     a Porcupine driver (or PORCUPINE_BIN; see bench/lib/porcupine.ts)
  --jepsen DIR        Porcupine's Jepsen etcd logs (or PORCUPINE_JEPSEN_DIR)
  --processes N       fresh processes per checker (default 5)
  --rounds N          rounds of checking per process (default 10)
  --help              print this help
`;
const flags = benchFlags(
  {
    json: { type: "boolean", default: false },
    quick: { type: "boolean", default: false },
    porcupine: { type: "string" },
    jepsen: { type: "string" },
    processes: { type: "string", default: "5" },
    rounds: { type: "string", default: "10" },
  },
  usage,
);
const json = flags.json;
const quick = flags.quick;
const only = process.env.SCENARIO;

function positive(name: "processes" | "rounds"): number {
  const n = Number(flags[name]);
  if (!Number.isSafeInteger(n) || n < 1) refuseFlags(`--${name} must be a positive integer`, usage);
  return n;
}
/** A Porcupine driver (see lib/porcupine.ts) and Porcupine's Jepsen etcd logs, by flag or environment. */
const porcupineBinary = flags.porcupine ?? process.env.PORCUPINE_BIN;
const jepsenDir = flags.jepsen ?? process.env.PORCUPINE_JEPSEN_DIR;
const processes = positive("processes");
const rounds = positive("rounds");

type Checker = (model: "kv" | "register", ops: readonly HistoryOperation[], stepsMax: number) => string;

const current: Checker = (model, ops, stepsMax) => {
  const result = checkLinearizable(modelNamed(model), ops, { stepsMaxPerPartition: stepsMax });
  // A key refuted by the necessary condition (impl/history/refute.ts) rather than the search says so.
  return result.partitions.some((p) => p.refutation !== undefined) ? `${result.verdict} (refuted)` : result.verdict;
};

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

/** Write the 100 etcd histories as Porcupine's Jepsen logs; their paths. */
function writeEtcdLogs(): string[] {
  const dir = join(root, "out", "bench", "etcd");
  mkdirSync(dir, { recursive: true });
  return Array.from({ length: 100 }, (_, i) => {
    const file = join(dir, `etcd_${String(i).padStart(3, "0")}.log`);
    writeFileSync(file, etcdLog(1000 + i));
    return file;
  });
}

function loadLogs(files: readonly string[]): { model: "register"; ops: readonly HistoryOperation[] }[] {
  return files.map((file) => ({
    model: "register" as const,
    ops: loadHistory(importPorcupineLog(readFileSync(file, "utf8"))).operations,
  }));
}

// ---- Side by side with Porcupine: the same files, fresh processes, CPU of the checking ----

/**
 * The verdicts Porcupine's own tests expect of its Jepsen etcd logs (test_data/jepsen/
 * etcd_NNN.log, no 095): these are linearizable, every other one is not.
 */
const porcupineLinearizable = new Set([
  2, 5, 7, 18, 25, 31, 38, 45, 48, 49, 51, 53, 56, 67, 75, 76, 80, 87, 92, 98, 100, 101, 102,
]);

/** The expected verdict of one of Porcupine's Jepsen etcd logs, by its name. */
function porcupineExpected(file: string): boolean | undefined {
  const n = /^etcd_(\d{3})\.log$/.exec(basename(file));
  return n === null ? undefined : porcupineLinearizable.has(Number(n[1]));
}

/** One checker's side: verdicts by file, and the CPU (or wall) milliseconds of each round of each process. */
interface Side {
  readonly checker: "paxos-lease" | "porcupine";
  readonly verdicts: ReadonlyMap<string, boolean | "unknown">;
  readonly clock: "cpu" | "wall";
  /** Round 1 of each process: code still cold. */
  readonly firstRoundMs: readonly number[];
  /** Rounds 2 and later of every process. */
  readonly laterRoundsMs: readonly number[];
  /** Ours only: CPU of each process before the rounds, loading modules and decoding the files. */
  readonly startupMs?: readonly number[];
  readonly parseMs?: readonly number[];
}

function oursSide(files: readonly string[]): Side {
  const script = join(root, "bench", "lib", "history-rounds.ts");
  const firstRoundMs: number[] = [];
  const laterRoundsMs: number[] = [];
  const startupMs: number[] = [];
  const parseMs: number[] = [];
  let verdicts = new Map<string, boolean | "unknown">();
  for (let p = 0; p < processes; p++) {
    const stdout = execFileSync(process.execPath, ["--import", "tsx", script, String(rounds), ...files], {
      cwd: root,
      encoding: "utf8",
      maxBuffer: 64 * 1024 * 1024,
    });
    const report = JSON.parse(stdout) as RoundsReport;
    verdicts = new Map(
      Object.entries(report.verdicts).map(([f, v]) => [f, v === "unknown" ? "unknown" : v === "linearizable"]),
    );
    report.rounds.forEach((r, i) => (i === 0 ? firstRoundMs : laterRoundsMs).push(r.cpuMs));
    startupMs.push(report.startupCpuMs);
    parseMs.push(report.parseCpuMs);
  }
  return { checker: "paxos-lease", verdicts, clock: "cpu", firstRoundMs, laterRoundsMs, startupMs, parseMs };
}

function porcupineSide(binary: string, files: readonly string[]): Side {
  if (!existsSync(binary))
    throw new Error(`--porcupine ${binary}: no such file (see bench/lib/porcupine.ts for the driver)`);
  const firstRoundMs: number[] = [];
  const laterRoundsMs: number[] = [];
  let verdicts = new Map<string, boolean | "unknown">();
  let clock: "cpu" | "wall" = "cpu";
  for (let p = 0; p < processes; p++) {
    const run = runPorcupine(binary, files, rounds);
    verdicts = new Map(run.verdicts);
    if (run.rounds.some((r) => r.cpuMs === null)) clock = "wall";
    run.rounds.forEach((r, i) => (i === 0 ? firstRoundMs : laterRoundsMs).push(r.cpuMs ?? r.wallMs));
  }
  return { checker: "porcupine", verdicts, clock, firstRoundMs, laterRoundsMs };
}

interface SideBySide {
  readonly set: string;
  readonly files: number;
  readonly operations: number;
  readonly loadAverage: readonly number[];
  readonly processes: number;
  readonly rounds: number;
  readonly sides: readonly {
    readonly checker: string;
    readonly clock: "cpu" | "wall";
    readonly verdicts: Record<string, number>;
    readonly firstRoundMsMedian: number;
    readonly laterRoundsMsMedian: number | null;
    readonly firstRoundMs: readonly number[];
    /** Ours only: medians of the CPU before the rounds (not part of the figures above). */
    readonly startupMsMedian?: number;
    readonly parseMsMedian?: number;
  }[];
  readonly porcupine: string;
  /** Files on which the checkers disagree, or a checker disagrees with the expected verdict. */
  readonly disagreements: readonly string[];
}

function verdictCounts(verdicts: ReadonlyMap<string, boolean | "unknown">): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const v of verdicts.values()) {
    const name = v === "unknown" ? "unknown" : v ? "linearizable" : "not-linearizable";
    counts[name] = (counts[name] ?? 0) + 1;
  }
  return counts;
}

function sideBySide(
  set: string,
  files: readonly string[],
  expectedOf: (file: string) => boolean | undefined = () => undefined,
): SideBySide {
  const sides = [oursSide(files)];
  if (porcupineBinary !== undefined) sides.push(porcupineSide(porcupineBinary, files));
  const disagreements: string[] = [];
  for (const file of files) {
    const expected = expectedOf(file);
    const seen = sides.map((s) => s.verdicts.get(file));
    const agree = seen.every((v) => v === seen[0]) && (expected === undefined || seen[0] === expected);
    if (!agree)
      disagreements.push(
        `${basename(file)}: ${sides.map((s, i) => `${s.checker} ${String(seen[i])}`).join(", ")}${expected === undefined ? "" : `, expected ${expected}`}`,
      );
  }
  const operations = loadLogs(files).reduce((sum, h) => sum + h.ops.length, 0);
  return {
    set,
    files: files.length,
    operations,
    loadAverage: loadavg(),
    processes,
    rounds,
    sides: sides.map((s) => ({
      checker: s.checker,
      clock: s.clock,
      verdicts: verdictCounts(s.verdicts),
      firstRoundMsMedian: median(s.firstRoundMs),
      laterRoundsMsMedian: s.laterRoundsMs.length === 0 ? null : median(s.laterRoundsMs),
      firstRoundMs: s.firstRoundMs,
      ...(s.startupMs === undefined ? {} : { startupMsMedian: median(s.startupMs) }),
      ...(s.parseMs === undefined ? {} : { parseMsMedian: median(s.parseMs) }),
    })),
    porcupine: porcupineBinary === undefined ? "not run: no --porcupine BIN (or PORCUPINE_BIN) given" : "run",
    disagreements,
  };
}

function printSideBySide(r: SideBySide): void {
  console.log(
    `\n${r.set}: ${r.files} files, ${r.operations} operations checked by ours; ${r.processes} processes x ${r.rounds} rounds; load ${r.loadAverage.map((l) => l.toFixed(1)).join(" ")}`,
  );
  for (const s of r.sides)
    console.log(
      `  ${s.checker.padEnd(12)} ${JSON.stringify(s.verdicts).padEnd(46)} first round ${s.clock} ${s.firstRoundMsMedian.toFixed(1)} ms (median of ${s.firstRoundMs.length}: ${s.firstRoundMs.map((m) => m.toFixed(0)).join(" ")})  later rounds ${s.clock} ${s.laterRoundsMsMedian?.toFixed(1) ?? "-"} ms (median)`,
    );
  for (const s of r.sides)
    if (s.startupMsMedian !== undefined && s.parseMsMedian !== undefined)
      console.log(
        `  ${s.checker.padEnd(12)} before the rounds, not counted above: loading Node, tsx and the modules cpu ${s.startupMsMedian.toFixed(0)} ms, reading and decoding the files cpu ${s.parseMsMedian.toFixed(0)} ms (medians)`,
      );
  if (r.porcupine !== "run") console.log(`  porcupine    ${r.porcupine}`);
  if (r.disagreements.length === 0) console.log(`  verdicts agree on all ${r.files} files`);
  else for (const d of r.disagreements) console.log(`  DISAGREE ${d}`);
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
  // The scenarios timed in this process run as `check-history` runs them: with V8's tier-up budget for checking.
  tierUpForChecking();
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
  if (!json) console.log(`load average ${loadAverage()}`);
  const etcdFiles = writeEtcdLogs();
  run("etcd: 100 Jepsen-style register histories", loadLogs(etcdFiles), 20_000_000);
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
  const sides: SideBySide[] = [];
  if (only === undefined || "etcd".includes(only)) {
    sides.push(sideBySide("etcd: 100 Jepsen-style register histories", etcdFiles));
    let jepsenSkipped: string | undefined;
    if (jepsenDir === undefined)
      jepsenSkipped =
        "not run: no --jepsen DIR (or PORCUPINE_JEPSEN_DIR) given, the test_data/jepsen folder of Porcupine's repository";
    else {
      const files = existsSync(jepsenDir)
        ? readdirSync(jepsenDir)
            .filter((f) => /^etcd_\d{3}\.log$/.test(f))
            .sort()
            .map((f) => join(jepsenDir, f))
        : [];
      if (files.length === 0) jepsenSkipped = `not run: no etcd_NNN.log files in ${jepsenDir}`;
      else sides.push(sideBySide(`Porcupine's Jepsen etcd logs (${jepsenDir})`, files, porcupineExpected));
    }
    if (!json) {
      sides.forEach(printSideBySide);
      if (jepsenSkipped !== undefined) console.log(`\nPorcupine's Jepsen etcd logs: ${jepsenSkipped}`);
    }
  }
  if (json)
    console.log(
      JSON.stringify({ benchmark: "linearizability", loadAverage: loadavg(), rows, sideBySide: sides }, null, 2),
    );
  if (sides.some((s) => s.disagreements.length > 0)) process.exitCode = 1;
}

await main();

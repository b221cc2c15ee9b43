/**
 * The trace-view format (`paxos-lease/view@1`): what the trace explorer page (`npm run view`)
 * draws, as one JSON document. Every trace the project produces is turned into it by an adapter
 * in this folder (a world counterexample or regression, a spec explorer trace, a nemesis run);
 * any other tool plugs in by writing this format (docs/trace-explorer.md describes it for them).
 *
 * Columnar, so that a two-minute nemesis run of a few hundred thousand steps stays a few MB:
 * every text lives once in `strings` and is referred to by index; per-step data are parallel
 * arrays; a list per step is a count per step and the items in order; columns that mostly grow
 * (step times, the steps of changes and sends, numeric field values) are delta-encoded, so that
 * gzip finds small repeated numbers. This file only describes and validates the format; it
 * decides nothing about what a trace means.
 */
import { Either, ParseResult, Schema } from "effect";

export const viewFormat = "paxos-lease/view@1";

/** What a step is. */
export const stepKinds = ["event", "fault", "time", "note", "crash"] as const;
export type StepKind = (typeof stepKinds)[number];

/** What an interval on the time axis stands for. */
export const intervalKinds = ["lease", "grant", "wait", "down", "paused", "cut", "fault"] as const;
export type IntervalKind = (typeof intervalKinds)[number];

/** Whom a column of the sequence diagram stands for. */
export const processKinds = ["replica", "client", "acceptor", "proposer", "holder", "global"] as const;

const Int = Schema.Int;
/** A column of integers, checked in one loop (a long trace has millions of them). */
const Ints = Schema.declare(
  (u: unknown): u is readonly number[] => Array.isArray(u) && u.every((x) => Number.isSafeInteger(x)),
  { identifier: "Ints", description: "an array of integers" },
);
/**
 * A list per step of string indices: step i has count[i] items, following those of the steps
 * before it; the items are delta-encoded (item k = item k-1 + ditems[k], item -1 = 0).
 */
const PerStep = Schema.Struct({ count: Ints, ditems: Ints });

/** The rule of the core a step applied, with where the docs explain it. */
const RuleDoc = Schema.Struct({
  /** `L1`, or the rule function's name when it has no label. */
  label: Schema.String,
  title: Schema.String,
  /** `docs/impl.md, section 8`. */
  where: Schema.String,
  /** The paragraph, as plain text. */
  text: Schema.String,
});

const Violation = Schema.Struct({
  check: Schema.String,
  level: Schema.String,
  message: Schema.String,
  /** The step at which it was found (-1: at the end of the run). */
  step: Int,
  /** The steps that matter: the failing step, what it received and the last changes it depends on. */
  related: Ints,
  before: Schema.optional(Schema.String),
  after: Schema.optional(Schema.String),
  action: Schema.optional(Schema.String),
});

/**
 * Client operations of a real run (Jepsen's timeline), one entry per operation in invocation
 * order: its client, true invocation time (µs, delta-encoded like `steps.dt`), how long it took
 * (µs; -1: never answered), outcome, a label (input and output), and the operations a violation
 * names. Labels are kept here, not in `strings`: each is its own.
 */
const Operations = Schema.Struct({
  clients: Schema.Array(Schema.String),
  client: Ints,
  dinvoke: Ints,
  duration: Ints,
  /** Index into `operationOutcomes`. */
  outcome: Ints,
  /** 1: a read (drawn lighter). */
  read: Ints,
  label: Schema.Array(Schema.String),
  /** Indices of the operations a violation names. */
  flagged: Ints,
});

/** What became of a client operation. */
export const operationOutcomes = ["ok", "fail", "unknown"] as const;

/**
 * The document. Times are integers in microseconds of true time (or, with `timeUnit: "step"`,
 * step numbers times 1000, for specs without time).
 */
export const TraceView = Schema.Struct({
  format: Schema.Literal(viewFormat),
  title: Schema.String,
  source: Schema.Struct({
    /** `world`, `regression`, `spec`, `nemesis`, or what another producer calls itself. */
    kind: Schema.String,
    file: Schema.optional(Schema.String),
    /** The command that reproduces the trace. */
    replay: Schema.optional(Schema.String),
    /** Lines shown under the title (constants, tuning, counts). */
    notes: Schema.Array(Schema.String),
    /** A longer text shown on demand (the scenario's actions). */
    details: Schema.optional(Schema.String),
  }),
  timeUnit: Schema.Literal("ms", "tick", "step"),
  processes: Schema.Array(Schema.Struct({ name: Schema.String, kind: Schema.Literal(...processKinds) })),
  /** Names of the state fields shown per process, in display order. */
  fields: Schema.Array(Schema.String),
  strings: Schema.Array(Schema.String),
  steps: Schema.Struct({
    count: Int,
    /** True time, delta-encoded: t[i] = t[i - 1] + dt[i], t[-1] = 0; only dt[0] may be negative. */
    dt: Ints,
    /** Index into `processes`, or -1 (the whole system: a fault, time passing). */
    actor: Ints,
    /** Index into `stepKinds`. */
    kind: Ints,
    /** String index of the step's text; -1: the message it received says it (see `messages`). */
    text: Ints,
    /** 1: a quiet step (a tick that changed nothing shown and sent nothing), hidden by default. */
    quiet: Ints,
    /** Effects other than sends (persists, replies, alarms), as string indices. */
    effects: PerStep,
    /** The spec actions the step maps to at every level (`Voting: VoteFor`), and rare states reached. */
    actions: PerStep,
    /** The core's rules the step applied (`L2 leaseExpiry`), as string indices. */
    rules: PerStep,
  }),
  /** One entry per message sent (a duplicate delivery is an entry of its own). */
  messages: Schema.Struct({
    from: Ints,
    to: Ints,
    /** Step of the send, delta-encoded like `steps.dt` (a duplicate's entry may step back). */
    dsent: Ints,
    /** Steps from send to receipt plus one (1: received in the step that sent it); 0: never received (lost). */
    dreceived: Ints,
    /** String index of the label, delta-encoded over the messages. */
    dlabel: Ints,
  }),
  /**
   * State changes in step order: after step `step` (delta-encoded), field `field` of `process`
   * reads string `value`; -1: empty; -2: a number, the next entry of `dnumber`, which holds the
   * difference from the field's previous number at that process (0 before its first).
   */
  changes: Schema.Struct({ dstep: Ints, process: Ints, field: Ints, value: Ints, dnumber: Ints }),
  /** Intervals on the time axis (µs); `kind` indexes `intervalKinds`; process -1: the whole system. */
  intervals: Schema.Struct({ process: Ints, kind: Ints, from: Ints, to: Ints, label: Ints }),
  /**
   * Clock segments: from true time `t` on, the process's clock reads `reading + rate * (t' - t)`
   * at true time t' (µs), until its next segment; `rate` in parts per million of 1 (1_000_000 = 1).
   */
  clocks: Schema.Struct({ process: Ints, t: Ints, reading: Ints, rate: Ints }),
  violation: Schema.NullOr(Violation),
  /** A real run's client operations, drawn as lanes under the replicas on the time axis. */
  operations: Schema.optional(Operations),
  /** The doc paragraph of every rule label used in `steps.rules`. */
  rules: Schema.Array(RuleDoc),
});
export type TraceView = typeof TraceView.Type;
export type RuleDoc = typeof RuleDoc.Type;
export type ViewViolation = typeof Violation.Type;
export type ViewOperations = typeof Operations.Type;

/**
 * Decode a document, checking the shape and that every index is in range and every column has
 * the right length; a string names the first problem found.
 */
export function decodeView(json: unknown): TraceView | string {
  const decoded = Schema.decodeUnknownEither(TraceView)(json, { errors: "first", onExcessProperty: "ignore" });
  if (Either.isLeft(decoded)) {
    const [first] = ParseResult.ArrayFormatter.formatErrorSync(decoded.left);
    return first === undefined ? "not a trace view" : `${first.path.join(".") || "the document"}: ${first.message}`;
  }
  const v = decoded.right;
  return consistency(v) ?? v;
}

function consistency(v: TraceView): string | undefined {
  const n = v.steps.count;
  const s = v.strings.length;
  const p = v.processes.length;
  const checks: [string, readonly number[], number, number, number][] = [
    // name, column, expected length (-1: any), min, max (exclusive)
    ["steps.dt", v.steps.dt, n, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
    ["steps.actor", v.steps.actor, n, -1, p],
    ["steps.kind", v.steps.kind, n, 0, stepKinds.length],
    ["steps.text", v.steps.text, n, -1, s],
    ["steps.quiet", v.steps.quiet, n, 0, 2],
    ["messages.from", v.messages.from, -1, 0, p],
    ["messages.to", v.messages.to, v.messages.from.length, 0, p],
    ["messages.dsent", v.messages.dsent, v.messages.from.length, -n, n],
    ["messages.dreceived", v.messages.dreceived, v.messages.from.length, 0, n + 1],
    ["messages.dlabel", v.messages.dlabel, v.messages.from.length, -s, s],
    ["changes.dstep", v.changes.dstep, -1, 0, n],
    ["changes.process", v.changes.process, v.changes.dstep.length, 0, p],
    ["changes.field", v.changes.field, v.changes.dstep.length, 0, v.fields.length],
    ["changes.value", v.changes.value, v.changes.dstep.length, -2, s],
    ["intervals.process", v.intervals.process, -1, -1, p],
    ["intervals.kind", v.intervals.kind, v.intervals.process.length, 0, intervalKinds.length],
    ["intervals.from", v.intervals.from, v.intervals.process.length, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
    ["intervals.to", v.intervals.to, v.intervals.process.length, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
    ["intervals.label", v.intervals.label, v.intervals.process.length, -1, s],
    ["clocks.process", v.clocks.process, -1, 0, p],
    ["clocks.t", v.clocks.t, v.clocks.process.length, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
    ["clocks.reading", v.clocks.reading, v.clocks.process.length, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
    ["clocks.rate", v.clocks.rate, v.clocks.process.length, 0, Number.MAX_SAFE_INTEGER],
  ];
  for (const [name, column, length, min, max] of checks) {
    if (length >= 0 && column.length !== length) return `${name} has ${column.length} entries, expected ${length}`;
    const bad = column.findIndex((x) => x < min || x >= max);
    if (bad >= 0) return `${name}[${bad}] = ${column[bad]} is out of range [${min}, ${max})`;
  }
  const back = v.steps.dt.findIndex((d, i) => i > 0 && d < 0);
  if (back >= 0) return `steps.dt[${back}] is negative: step times must not decrease`;
  for (const [name, list] of [
    ["steps.effects", v.steps.effects],
    ["steps.actions", v.steps.actions],
    ["steps.rules", v.steps.rules],
  ] as const) {
    if (list.count.length !== n) return `${name}.count has ${list.count.length} entries, expected ${n}`;
    if (list.count.some((c) => c < 0)) return `${name}.count holds a negative count`;
    const total = list.count.reduce((a, b) => a + b, 0);
    if (total !== list.ditems.length)
      return `${name}.count adds up to ${total}, but there are ${list.ditems.length} items`;
    const bad = undelta(list.ditems).findIndex((x) => x < 0 || x >= s);
    if (bad >= 0) return `${name}: item ${bad} is no string index`;
  }
  const badLabel = undelta(v.messages.dlabel).findIndex((x) => x < 0 || x >= s);
  if (badLabel >= 0) return `messages: the label of message ${badLabel} is no string index`;
  let sent = 0;
  for (let k = 0; k < v.messages.dsent.length; k++) {
    sent += v.messages.dsent[k]!;
    if (sent < 0 || sent >= n) return `messages: message ${k} is sent at step ${sent}, which does not exist`;
    if (sent + v.messages.dreceived[k]! - 1 >= n) return `messages: message ${k} is received after the last step`;
  }
  const numbers = v.changes.value.filter((x) => x === -2).length;
  if (numbers !== v.changes.dnumber.length)
    return `changes: ${numbers} numeric changes but ${v.changes.dnumber.length} entries in changes.dnumber`;
  let step = 0;
  for (const d of v.changes.dstep) {
    step += d;
    if (step >= n) return `changes: a change after the last step`;
  }
  const ops = v.operations === undefined ? undefined : operationsProblem(v.operations);
  if (ops !== undefined) return `operations: ${ops}`;
  if (v.violation !== null) {
    const bad = [v.violation.step, ...v.violation.related].find((x) => x < -1 || x >= n);
    if (bad !== undefined) return `violation: step ${bad} does not exist`;
  }
  return undefined;
}

function operationsProblem(o: ViewOperations): string | undefined {
  const n = o.client.length;
  const columns: [string, readonly unknown[]][] = [
    ["dinvoke", o.dinvoke],
    ["duration", o.duration],
    ["outcome", o.outcome],
    ["read", o.read],
    ["label", o.label],
  ];
  for (const [name, column] of columns)
    if (column.length !== n) return `${name} has ${column.length} entries, expected ${n}`;
  if (o.client.some((c) => c < 0 || c >= o.clients.length)) return "a client index is out of range";
  if (o.dinvoke.some((d, i) => i > 0 && d < 0)) return "invocation times must not decrease";
  if (o.duration.some((d) => d < -1)) return "a duration is negative";
  if (o.outcome.some((x) => x < 0 || x >= operationOutcomes.length)) return "an outcome is out of range";
  if (o.read.some((x) => x !== 0 && x !== 1)) return "read must be 0 or 1";
  if (o.flagged.some((i) => i < 0 || i >= n)) return "a flagged operation does not exist";
  return undefined;
}

// ---- Readers: the encoding spelled out once, for producers' tests and tools -----------------------

/** A delta-encoded column's values. */
export function undelta(ds: readonly number[]): number[] {
  let x = 0;
  return ds.map((d) => (x += d));
}

/** A column as differences (the inverse of `undelta`). */
export function delta(xs: readonly number[]): number[] {
  return xs.map((x, i) => (i === 0 ? x : x - xs[i - 1]!));
}

/** The true time of every step, in ms. */
export function stepTimes(v: TraceView): number[] {
  let t = 0;
  return v.steps.dt.map((d) => (t += d) / 1000);
}

/** The texts of one per-step list (effects, actions or rules), step by step. */
export function listsPerStep(v: TraceView, list: "effects" | "actions" | "rules"): string[][] {
  const { count, ditems } = v.steps[list];
  const items = undelta(ditems);
  let k = 0;
  return count.map((c) => items.slice(k, (k += c)).map((i) => v.strings[i]!));
}

/** Every message with the steps of its send and receipt (-1: never received). */
export function messageSteps(
  v: TraceView,
): { from: string; to: string; sent: number; received: number; label: string }[] {
  const labels = undelta(v.messages.dlabel);
  let sent = 0;
  return v.messages.from.map((from, k) => {
    sent += v.messages.dsent[k]!;
    const d = v.messages.dreceived[k]!;
    return {
      from: v.processes[from]!.name,
      to: v.processes[v.messages.to[k]!]!.name,
      sent,
      received: d === 0 ? -1 : sent + d - 1,
      label: v.strings[labels[k]!]!,
    };
  });
}

/** Every state change: after `step`, `field` of `process` reads `value` (null: empty). */
export function stateChanges(
  v: TraceView,
): { step: number; process: string; field: string; value: string | number | null }[] {
  let step = 0;
  let numberAt = 0;
  const last = new Map<string, number>();
  return v.changes.dstep.map((d, c) => {
    step += d;
    const process = v.processes[v.changes.process[c]!]!.name;
    const field = v.fields[v.changes.field[c]!]!;
    const raw = v.changes.value[c]!;
    let value: string | number | null = raw === -1 ? null : (v.strings[raw] ?? null);
    if (raw === -2) {
      const key = `${process}/${field}`;
      value = (last.get(key) ?? 0) + v.changes.dnumber[numberAt++]!;
      last.set(key, value);
    }
    return { step, process, field, value };
  });
}

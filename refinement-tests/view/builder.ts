/**
 * Builds a trace-view document (format.ts) step by step: the adapters (world, nemesis, spec)
 * call `step(...)` once per step in order, then say what it sent, received and changed, and
 * `finish()` packs everything into the columnar format. Strings are interned; state fields are
 * compared with their last value per process, so only changes are stored.
 */
import {
  delta,
  intervalKinds,
  stepKinds,
  viewFormat,
  type IntervalKind,
  type RuleDoc,
  type StepKind,
  type TraceView,
  type ViewOperations,
  type ViewViolation,
} from "./format.ts";

/** Microseconds from milliseconds (the format's integer time). */
export function micros(ms: number): number {
  if (ms === Number.POSITIVE_INFINITY) return Number.MAX_SAFE_INTEGER - 1;
  if (ms === Number.NEGATIVE_INFINITY) return Number.MIN_SAFE_INTEGER + 1;
  return Math.round(ms * 1000);
}

/** One list per step: a count per step, the items in order. */
class ListColumn {
  readonly count: number[] = [];
  readonly items: number[] = [];
  private start = 0;
  close(): void {
    this.count.push(this.items.length - this.start);
    this.start = this.items.length;
  }
  /** Items added to the step not yet closed. */
  get pending(): number {
    return this.items.length - this.start;
  }
}

/** Longest text kept; a longer one (a list read back whole) is cut, saying how long it was. */
export const textMax = 240;

/** What the builder is told about the trace as a whole. */
export interface ViewHeader {
  readonly title: string;
  readonly source: TraceView["source"];
  readonly timeUnit: TraceView["timeUnit"];
  /** Subtracted from every true time given (a real run's monotonic origin). Default 0. */
  readonly originMs?: number;
}

export class ViewBuilder {
  private readonly strings: string[] = [];
  private readonly stringIndex = new Map<string, number>();
  private readonly processes: { name: string; kind: TraceView["processes"][number]["kind"] }[] = [];
  private readonly processIndex = new Map<string, number>();
  private readonly fields: string[] = [];
  private readonly fieldIndex = new Map<string, number>();
  /** Per process, per field: the last value (string index, -1 empty, -2 a number). */
  private readonly current: number[][] = [];
  /** Per process, per field: the last number. */
  private readonly currentNumber: number[][] = [];
  private readonly t: number[] = [];
  private readonly actor: number[] = [];
  private readonly kind: number[] = [];
  private readonly text: number[] = [];
  private readonly quiet: number[] = [];
  private readonly effects = new ListColumn();
  private readonly actions = new ListColumn();
  private readonly rules = new ListColumn();
  private readonly messages = {
    from: [] as number[],
    to: [] as number[],
    sent: [] as number[],
    received: [] as number[],
    label: [] as number[],
  };
  private readonly changes = {
    step: [] as number[],
    process: [] as number[],
    field: [] as number[],
    value: [] as number[],
    dnumber: [] as number[],
  };
  private readonly intervals = {
    process: [] as number[],
    kind: [] as number[],
    from: [] as number[],
    to: [] as number[],
    label: [] as number[],
  };
  private readonly clocks = {
    process: [] as number[],
    t: [] as number[],
    reading: [] as number[],
    rate: [] as number[],
  };
  private readonly ruleDocs = new Map<string, RuleDoc>();
  private violation: ViewViolation | null = null;
  private operations: ViewOperations | undefined;
  private open = false;
  private changedThisStep = false;

  private readonly origin: number;
  private header: ViewHeader;

  constructor(header: ViewHeader) {
    this.header = header;
    this.origin = header.originMs ?? 0;
  }

  /** Change the title and notes (a producer that knows them only at the end). */
  retitle(title: string, notes: readonly string[]): void {
    this.header = { ...this.header, title, source: { ...this.header.source, notes } };
  }

  /** Steps so far (the index of the next step). */
  get steps(): number {
    return this.t.length;
  }

  /** The index of the step being built. */
  get currentStep(): number {
    return this.t.length - 1;
  }

  intern(raw: string): number {
    const text = raw.length <= textMax ? raw : `${raw.slice(0, textMax - 40)}... (${raw.length} characters)`;
    let i = this.stringIndex.get(text);
    if (i === undefined) {
      i = this.strings.length;
      this.strings.push(text);
      this.stringIndex.set(text, i);
    }
    return i;
  }

  /** The column of process `name` (added on first use). */
  process(name: string, kind: TraceView["processes"][number]["kind"]): number {
    let i = this.processIndex.get(name);
    if (i === undefined) {
      i = this.processes.length;
      this.processes.push({ name, kind });
      this.processIndex.set(name, i);
      this.current.push([]);
      this.currentNumber.push([]);
    }
    return i;
  }

  processNamed(name: string): number | undefined {
    return this.processIndex.get(name);
  }

  /** Declare fields in display order (fields first set later are appended). */
  declareFields(names: readonly string[]): void {
    for (const name of names) this.field(name);
  }

  private field(name: string): number {
    let i = this.fieldIndex.get(name);
    if (i === undefined) {
      i = this.fields.length;
      this.fields.push(name);
      this.fieldIndex.set(name, i);
    }
    return i;
  }

  /** Begin a step; every call below until the next `step` belongs to it. Returns its index. */
  step(tMs: number, actor: number, kind: StepKind, text: string | null): number {
    this.closeStep();
    this.t.push(micros(tMs - this.origin));
    this.actor.push(actor);
    this.kind.push(stepKinds.indexOf(kind));
    this.text.push(text === null ? -1 : this.intern(text));
    this.quiet.push(0);
    this.open = true;
    this.changedThisStep = false;
    return this.t.length - 1;
  }

  private closeStep(): void {
    if (!this.open) return;
    this.effects.close();
    this.actions.close();
    this.rules.close();
    this.open = false;
  }

  /** Mark the current step quiet (hidden unless asked for) if it changed nothing shown. */
  quietUnlessChanged(): void {
    const n = this.t.length - 1;
    const sentHere = this.messages.sent.length > 0 && this.messages.sent[this.messages.sent.length - 1] === n;
    const listed = this.effects.pending > 0 || this.actions.pending > 0;
    if (!this.changedThisStep && !sentHere && !listed) this.quiet[n] = 1;
  }

  effect(text: string): void {
    this.effects.items.push(this.intern(text));
  }

  action(text: string): void {
    this.actions.items.push(this.intern(text));
  }

  rule(text: string, doc?: RuleDoc): void {
    this.rules.items.push(this.intern(text));
    if (doc !== undefined && !this.ruleDocs.has(doc.label)) this.ruleDocs.set(doc.label, doc);
  }

  /** A message sent in the current step; returns its index (for `received`). */
  send(from: number, to: number, label: string): number {
    const k = this.messages.from.length;
    this.messages.from.push(from);
    this.messages.to.push(to);
    this.messages.sent.push(this.t.length - 1);
    this.messages.received.push(-1);
    this.messages.label.push(this.intern(label));
    return k;
  }

  /** A message sent at an earlier step `step` (a broadcast whose receivers show up later). */
  sendAt(step: number, from: number, to: number, label: string): number {
    const k = this.send(from, to, label);
    this.messages.sent[k] = step;
    return k;
  }

  /** Message k is received in the current step. A second receipt (a duplicate) becomes a message of its own. */
  receive(k: number): number {
    const step = this.t.length - 1;
    if (this.messages.received[k] === -1) {
      this.messages.received[k] = step;
      return k;
    }
    const copy = this.messages.from.length;
    this.messages.from.push(this.messages.from[k]!);
    this.messages.to.push(this.messages.to[k]!);
    this.messages.sent.push(this.messages.sent[k]!);
    this.messages.received.push(step);
    this.messages.label.push(this.messages.label[k]!);
    return copy;
  }

  /**
   * Set the shown fields of `process` after the current step (fields not named keep their
   * value); a number is kept as one (integers only: the format stores differences).
   */
  set(process: number, values: Readonly<Record<string, string | number | null>>): void {
    const step = this.t.length - 1;
    const row = this.current[process]!;
    const numbers = this.currentNumber[process]!;
    for (const name in values) {
      const f = this.field(name);
      const raw = values[name];
      if (typeof raw === "number") {
        const n = Math.round(raw);
        if (row[f] === -2 && numbers[f] === n) continue;
        this.change(step, process, f, -2);
        this.changes.dnumber.push(n - (numbers[f] ?? 0));
        row[f] = -2;
        numbers[f] = n;
        continue;
      }
      const value = raw === null || raw === undefined ? -1 : this.intern(raw);
      if ((row[f] ?? -1) === value) continue;
      row[f] = value;
      this.change(step, process, f, value);
    }
  }

  private change(step: number, process: number, field: number, value: number): void {
    this.changes.step.push(step);
    this.changes.process.push(process);
    this.changes.field.push(field);
    this.changes.value.push(value);
    this.changedThisStep = true;
  }

  /** Clear every field of `process` that is not in `keep` (a crashed replica shows nothing but that). */
  clear(process: number, keep: readonly string[] = []): void {
    const row = this.current[process]!;
    const cleared: Record<string, null> = {};
    row.forEach((value, f) => {
      if (value !== -1 && value !== undefined && !keep.includes(this.fields[f]!)) cleared[this.fields[f]!] = null;
    });
    this.set(process, cleared);
  }

  interval(process: number, kind: IntervalKind, fromMs: number, toMs: number, label: string | null): void {
    this.intervals.process.push(process);
    this.intervals.kind.push(intervalKinds.indexOf(kind));
    this.intervals.from.push(micros(fromMs - this.origin));
    this.intervals.to.push(micros(toMs - this.origin));
    this.intervals.label.push(label === null ? -1 : this.intern(label));
  }

  clock(process: number, tMs: number, readingMs: number, rate: number): void {
    this.clocks.process.push(process);
    this.clocks.t.push(micros(tMs - this.origin));
    this.clocks.reading.push(micros(readingMs));
    this.clocks.rate.push(Math.round(rate * 1e6));
  }

  setViolation(v: ViewViolation): void {
    this.violation = v;
  }

  /** A real run's client operations (times already relative to the origin). */
  setOperations(o: ViewOperations): void {
    this.operations = o;
  }

  /**
   * The steps that matter to a failure at `step`: the step itself, the sends of what it received
   * (and of what those steps received), and each process's last change before it of `fields`.
   */
  relatedSteps(step: number, fields: readonly string[]): number[] {
    const related = new Set<number>([step]);
    let frontier = [step];
    for (let hop = 0; hop < 2; hop++) {
      const next: number[] = [];
      this.messages.received.forEach((r, k) => {
        if (frontier.includes(r) && !related.has(this.messages.sent[k]!)) {
          related.add(this.messages.sent[k]!);
          next.push(this.messages.sent[k]!);
        }
      });
      frontier = next;
    }
    const wanted = new Set(fields.map((f) => this.fieldIndex.get(f)).filter((f) => f !== undefined));
    const last = new Map<string, number>();
    for (let c = 0; c < this.changes.step.length && this.changes.step[c]! <= step; c++)
      if (wanted.has(this.changes.field[c]!))
        last.set(`${this.changes.process[c]}/${this.changes.field[c]}`, this.changes.step[c]!);
    for (const s of last.values()) related.add(s);
    return [...related].sort((a, b) => a - b);
  }

  /** The document. The builder must not be used afterwards. */
  finish(): TraceView {
    this.closeStep();
    return {
      format: viewFormat,
      title: this.header.title,
      source: this.header.source,
      timeUnit: this.header.timeUnit,
      processes: this.processes,
      fields: this.fields,
      strings: this.strings,
      steps: {
        count: this.t.length,
        dt: delta(this.t),
        actor: this.actor,
        kind: this.kind,
        text: this.text,
        quiet: this.quiet,
        effects: { count: this.effects.count, ditems: delta(this.effects.items) },
        actions: { count: this.actions.count, ditems: delta(this.actions.items) },
        rules: { count: this.rules.count, ditems: delta(this.rules.items) },
      },
      messages: {
        from: this.messages.from,
        to: this.messages.to,
        dsent: delta(this.messages.sent),
        dreceived: this.messages.received.map((r, k) => (r < 0 ? 0 : r - this.messages.sent[k]! + 1)),
        dlabel: delta(this.messages.label),
      },
      changes: {
        dstep: delta(this.changes.step),
        process: this.changes.process,
        field: this.changes.field,
        value: this.changes.value,
        dnumber: this.changes.dnumber,
      },
      intervals: this.intervals,
      clocks: this.clocks,
      violation: this.violation,
      ...(this.operations === undefined ? {} : { operations: this.operations }),
      rules: [...this.ruleDocs.values()],
    };
  }
}

/**
 * The trace explorer page's script (runs in the browser; page.ts inlines it, compiled, with the
 * trace). It unpacks the columnar trace view (../format.ts), then draws three synchronized views
 * of one current step: a sequence diagram of processes and messages (canvas, only the rows in
 * sight are drawn, so a trace of a few hundred thousand steps scrolls freely), the step's
 * details with every replica's state (changes highlighted), and a true-time axis with each
 * replica's clock, lease beliefs, grants, restart waits and outages, and for a real run one lane
 * per client with every operation (hover names it). Keys: arrows or j/k step,
 * shift for ten, n/p the steps that matter to the violation, v the violation, q quiet steps.
 */
import type { TraceView } from "../format.ts";

// ---- The model: the trace unpacked -------------------------------------------------------------

const stepKindNames = ["event", "fault", "time", "note", "crash"] as const;
const intervalKindNames = ["lease", "grant", "wait", "down", "paused", "cut", "fault"] as const;

interface FieldHistory {
  readonly steps: Int32Array;
  readonly values: readonly string[];
}

/** A delta-encoded column's values. */
function undelta(ds: readonly number[]): Int32Array {
  const out = new Int32Array(ds.length);
  let x = 0;
  for (let i = 0; i < ds.length; i++) out[i] = x += ds[i]!;
  return out;
}

/** Offsets of a per-step list: the items of step i are items[at[i] .. at[i + 1]). */
function offsets(count: readonly number[]): Int32Array {
  const at = new Int32Array(count.length + 1);
  for (let i = 0; i < count.length; i++) at[i + 1] = at[i]! + count[i]!;
  return at;
}

class Model {
  readonly n: number;
  /** True time of each step, ms. */
  readonly t: Float64Array;
  readonly sendAt: Int32Array;
  readonly sendItems: Int32Array;
  /** The message received at each step, or -1. */
  readonly receivedAt: Int32Array;
  readonly msgSent: Int32Array;
  /** Step of each message's receipt, or -1. */
  readonly msgReceived: Int32Array;
  readonly msgLabel: Int32Array;
  /** Per list: offsets per step and the string indices. */
  readonly lists: Record<"effects" | "actions" | "rules", { at: Int32Array; items: Int32Array }>;
  /** Per block of 256 messages (by index): the latest step any of them is still in the air. */
  readonly msgBlockEnd: Int32Array;
  /** Per process, per field: the changes. */
  readonly history: (FieldHistory | null)[][];
  readonly related: Set<number>;
  readonly intervals: { process: number; kind: string; from: number; to: number; label: string }[];
  readonly clocks: { process: number; t: number; reading: number; rate: number }[][];
  readonly timeEnd: number;
  readonly timeStart: number;
  /** The processes that take part (act, send, receive, have state or intervals), in order. */
  readonly shown: number[];
  /** A real run's client operations, or null. */
  readonly ops: Operations | null;

  constructor(readonly v: TraceView) {
    const n = v.steps.count;
    this.n = n;
    this.t = new Float64Array(n);
    let acc = 0;
    for (let i = 0; i < n; i++) {
      acc += v.steps.dt[i]!;
      this.t[i] = acc / 1000;
    }
    const m = v.messages.from.length;
    this.msgSent = new Int32Array(m);
    this.msgReceived = new Int32Array(m);
    let sent = 0;
    for (let k = 0; k < m; k++) {
      sent += v.messages.dsent[k]!;
      this.msgSent[k] = sent;
      const d = v.messages.dreceived[k]!;
      this.msgReceived[k] = d === 0 ? -1 : sent + d - 1;
    }
    this.msgLabel = undelta(v.messages.dlabel);
    const list = (l: { count: readonly number[]; ditems: readonly number[] }) => ({
      at: offsets(l.count),
      items: undelta(l.ditems),
    });
    this.lists = { effects: list(v.steps.effects), actions: list(v.steps.actions), rules: list(v.steps.rules) };
    [this.sendAt, this.sendItems] = this.csrBySent(m);
    this.receivedAt = new Int32Array(n).fill(-1);
    for (let k = 0; k < m; k++) {
      const r = this.msgReceived[k]!;
      if (r >= 0 && this.receivedAt[r] === -1) this.receivedAt[r] = k;
    }
    this.msgBlockEnd = new Int32Array(Math.ceil(m / 256));
    for (let k = 0; k < m; k++) {
      const end = this.msgReceived[k]! >= 0 ? this.msgReceived[k]! : this.msgSent[k]! + 1;
      const b = k >> 8;
      if (end > this.msgBlockEnd[b]!) this.msgBlockEnd[b] = end;
    }
    this.history = this.buildHistory();
    this.related = new Set(v.violation?.related ?? []);
    this.intervals = v.intervals.process.map((process, i) => ({
      process,
      kind: intervalKindNames[v.intervals.kind[i]!]!,
      from: v.intervals.from[i]! / 1000,
      to: v.intervals.to[i]! / 1000,
      label: this.str(v.intervals.label[i]!),
    }));
    this.clocks = v.processes.map(() => []);
    v.clocks.process.forEach((p, i) => {
      this.clocks[p]!.push({
        process: p,
        t: v.clocks.t[i]! / 1000,
        reading: v.clocks.reading[i]! / 1000,
        rate: v.clocks.rate[i]! / 1e6,
      });
    });
    this.shown = this.participants();
    this.ops = v.operations === undefined ? null : new Operations(v.operations);
    this.timeStart = n === 0 ? 0 : this.t[0]!;
    let end = n === 0 ? 1 : this.t[n - 1]!;
    for (const iv of this.intervals)
      if (iv.to < 1e12 && iv.kind !== "fault") end = Math.max(end, Math.min(iv.to, end + 2000));
    this.timeEnd = Math.max(end, this.timeStart + 1);
  }

  private participants(): number[] {
    const v = this.v;
    const seen = new Set<number>();
    for (const a of v.steps.actor) seen.add(a);
    for (const p of v.messages.from) seen.add(p);
    for (const p of v.messages.to) seen.add(p);
    for (const p of v.changes.process) seen.add(p);
    for (const iv of this.intervals) seen.add(iv.process);
    return v.processes.map((_, i) => i).filter((i) => seen.has(i));
  }

  private csrBySent(m: number): [Int32Array, Int32Array] {
    const at = new Int32Array(this.n + 1);
    for (let k = 0; k < m; k++) at[this.msgSent[k]! + 1]!++;
    for (let i = 0; i < this.n; i++) at[i + 1] = at[i + 1]! + at[i]!;
    const fill = at.slice(0, this.n);
    const items = new Int32Array(m);
    for (let k = 0; k < m; k++) items[fill[this.msgSent[k]!]!++] = k;
    return [at, items];
  }

  private buildHistory(): (FieldHistory | null)[][] {
    const v = this.v;
    const count = v.changes.dstep.length;
    const lists: { steps: number[]; values: string[]; number: number }[][] = v.processes.map(() =>
      v.fields.map(() => ({ steps: [], values: [], number: 0 })),
    );
    let step = 0;
    let numberAt = 0;
    for (let c = 0; c < count; c++) {
      step += v.changes.dstep[c]!;
      const list = lists[v.changes.process[c]!]![v.changes.field[c]!]!;
      const raw = v.changes.value[c]!;
      list.steps.push(step);
      if (raw === -2) {
        list.number += v.changes.dnumber[numberAt++]!;
        list.values.push(String(list.number));
      } else list.values.push(this.str(raw));
    }
    return lists.map((fields) =>
      fields.map((l) => (l.steps.length === 0 ? null : { steps: Int32Array.from(l.steps), values: l.values })),
    );
  }

  str(i: number): string {
    return i < 0 ? "" : (this.v.strings[i] ?? "");
  }

  list(which: "effects" | "actions" | "rules", step: number): string[] {
    const { at, items } = this.lists[which];
    const out: string[] = [];
    for (let k = at[step]!; k < at[step + 1]!; k++) out.push(this.str(items[k]!));
    return out;
  }

  /** The value of a field after `step` and the step that set it (-1: never set). */
  valueAt(process: number, field: number, step: number): { value: string; since: number } {
    const h = this.history[process]![field];
    if (h === null || h === undefined) return { value: "", since: -1 };
    const found = lastAtOrBefore(h.steps, step);
    return found < 0 ? { value: "", since: -1 } : { value: h.values[found]!, since: h.steps[found]! };
  }

  stepText(step: number): string {
    const t = this.v.steps.text[step]!;
    if (t >= 0) return this.str(t);
    const k = this.receivedAt[step]!;
    if (k < 0) return "";
    return `receive ${this.processName(this.v.messages.from[k]!)}->${this.processName(this.v.messages.to[k]!)} ${this.str(this.msgLabel[k]!)}`;
  }

  processName(p: number): string {
    return p < 0 ? "system" : this.v.processes[p]!.name;
  }

  kindOf(step: number): string {
    return stepKindNames[this.v.steps.kind[step]!] ?? "event";
  }

  /** The last step at or before true time `ms` (0 if none). */
  stepAtTime(ms: number): number {
    return Math.max(0, lastAtOrBefore(this.t, ms, this.n));
  }

  /** The reading of process p's clock at true time ms, with its rate, or null (no clock known). */
  clockAt(p: number, ms: number): { reading: number; rate: number } | null {
    const segments = this.clocks[p]!;
    let seg = null;
    for (const s of segments) if (s.t <= ms) seg = s;
    if (seg === null) return null;
    return { reading: seg.reading + seg.rate * (ms - seg.t), rate: seg.rate };
  }
}

/** Longest an unanswered operation is drawn (it may take effect at any later time), ms. */
const openEndedMs = 5000;

/** A real run's client operations, unpacked: times in ms, in invocation order. */
class Operations {
  readonly n: number;
  readonly clients: readonly string[];
  readonly client: Int32Array;
  readonly invoke: Float64Array;
  /** Completion time, or -1: never answered. */
  readonly complete: Float64Array;
  readonly outcome: Int32Array;
  readonly read: readonly number[];
  readonly label: readonly string[];
  readonly flagged: Set<number>;
  /** The longest time an operation is drawn over, ms (to find what a window shows). */
  readonly longest: number;

  constructor(o: NonNullable<TraceView["operations"]>) {
    this.n = o.client.length;
    this.clients = o.clients;
    this.client = Int32Array.from(o.client);
    this.invoke = new Float64Array(this.n);
    this.complete = new Float64Array(this.n);
    let at = 0;
    let longest = openEndedMs;
    for (let i = 0; i < this.n; i++) {
      at += o.dinvoke[i]!;
      this.invoke[i] = at / 1000;
      const d = o.duration[i]!;
      this.complete[i] = d < 0 ? -1 : (at + d) / 1000;
      if (d / 1000 > longest) longest = d / 1000;
    }
    this.longest = longest;
    this.outcome = Int32Array.from(o.outcome);
    this.read = o.read;
    this.label = o.label;
    this.flagged = new Set(o.flagged);
  }

  /** When operation i is drawn to end. */
  end(i: number, timeEnd: number): number {
    const c = this.complete[i]!;
    return c >= 0 ? c : Math.min(timeEnd, this.invoke[i]! + openEndedMs);
  }

  /** The first operation that may show at or after time ms. */
  firstFrom(ms: number): number {
    return Math.max(0, lastAtOrBefore(this.invoke, ms - this.longest, this.n));
  }

  describe(i: number): string {
    const outcome = operationOutcomeNames[this.outcome[i]!] ?? "?";
    const c = this.complete[i]!;
    const took = c < 0 ? "never answered" : `${Math.round((c - this.invoke[i]!) * 10) / 10} ms`;
    return `${this.clients[this.client[i]!]} ${this.label[i]}: ${outcome}, invoked at ${Math.round(this.invoke[i]!)} ms, ${took}${this.flagged.has(i) ? "; named by a violation" : ""}`;
  }
}

const operationOutcomeNames = ["ok", "fail", "unknown"] as const;

// ---- Helpers -------------------------------------------------------------------------------------

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  text?: string,
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function byId<T extends HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (e === null) throw new Error(`#${id} is missing`);
  return e as T;
}

function fmtTime(model: Model, ms: number): string {
  if (model.v.timeUnit === "step") return `#${Math.round(ms)}`;
  if (model.v.timeUnit === "tick") return `${Math.round(ms * 1000) / 1000} ticks`;
  return `${Math.round(ms * 1000) / 1000} ms`;
}

/** A stable colour per label (ballots get their own hue). */
function colour(label: string, alpha = 1): string {
  let h = 0;
  for (let i = 0; i < label.length; i++) h = (h * 31 + label.charCodeAt(i)) >>> 0;
  return `hsla(${h % 360}, 65%, 45%, ${alpha})`;
}

function setupCanvas(canvas: HTMLCanvasElement, width: number, height: number): CanvasRenderingContext2D {
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.max(1, Math.floor(width * ratio));
  canvas.height = Math.max(1, Math.floor(height * ratio));
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  const ctx = canvas.getContext("2d")!;
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  return ctx;
}

// ---- The explorer ----------------------------------------------------------------------------------

const rowH = 18;
const gutterW = 118;

class Explorer {
  step = 0;
  showQuiet = false;
  rows: Int32Array = new Int32Array(0);
  /** Time axis window, ms. */
  viewFrom: number;
  viewTo: number;
  private readonly diagram = byId<HTMLDivElement>("diagram");
  private readonly diagramCanvas = byId<HTMLCanvasElement>("diagram-canvas");
  private readonly spacer = byId<HTMLDivElement>("diagram-spacer");
  private readonly axis = byId<HTMLCanvasElement>("axis");
  /** Lease and grant bars drawn on the axis at the last draw (the tests read them). */
  drawnBars: { process: string; kind: string; label: string; x: number; w: number }[] = [];
  /** Client operations drawn at the last draw, and where their lanes begin (y, px). */
  drawnOps = 0;
  opsTop = 0;
  private drawPending = false;

  constructor(readonly model: Model) {
    this.viewFrom = model.timeStart;
    this.viewTo = model.timeEnd;
    this.rebuildRows();
  }

  rebuildRows(): void {
    const { model } = this;
    const rows: number[] = [];
    for (let i = 0; i < model.n; i++)
      if (this.showQuiet || model.v.steps.quiet[i] === 0 || i === this.step || model.related.has(i)) rows.push(i);
    this.rows = Int32Array.from(rows);
    this.spacer.style.height = `${this.rows.length * rowH + rowH}px`;
  }

  /** Row of the last shown step at or before `step`. */
  rowOf(step: number): number {
    return Math.max(0, lastAtOrBefore(this.rows, step));
  }

  go(step: number, scroll = true): void {
    const n = this.model.n;
    if (n === 0) return;
    this.step = Math.max(0, Math.min(n - 1, step));
    if (!this.showQuiet && this.model.v.steps.quiet[this.step] === 1) this.rebuildRows();
    history.replaceState(null, "", `#step=${this.step}`);
    if (scroll) this.scrollToStep();
    const t = this.model.t[this.step]!;
    const span = this.viewTo - this.viewFrom;
    if (t < this.viewFrom || t > this.viewTo) {
      this.viewFrom = Math.max(this.model.timeStart, t - span / 2);
      this.viewTo = this.viewFrom + span;
    }
    renderDetails(this);
    this.requestDraw();
  }

  /** The next (dir 1) or previous (-1) shown step. */
  move(dir: number, count = 1): void {
    let row = this.rowOf(this.step);
    if (this.rows[row] !== this.step && dir < 0) row++;
    row = Math.max(0, Math.min(this.rows.length - 1, row + dir * count));
    this.go(this.rows[row] ?? 0);
  }

  /** The next or previous step that matters to the violation. */
  moveRelated(dir: number): void {
    const list = [...this.model.related].sort((a, b) => a - b);
    const next = dir > 0 ? list.find((s) => s > this.step) : list.reverse().find((s) => s < this.step);
    if (next !== undefined) this.go(next);
  }

  private scrollToStep(): void {
    const row = this.rowOf(this.step);
    const top = row * rowH;
    const d = this.diagram;
    if (top < d.scrollTop + rowH || top > d.scrollTop + d.clientHeight - 3 * rowH)
      d.scrollTop = Math.max(0, top - d.clientHeight / 3);
  }

  requestDraw(): void {
    if (this.drawPending) return;
    this.drawPending = true;
    requestAnimationFrame(() => {
      this.drawPending = false;
      drawDiagram(this, this.diagram, this.diagramCanvas);
      drawAxis(this, this.axis);
    });
  }
}

// ---- The sequence diagram --------------------------------------------------------------------------

interface DiagramGeometry {
  readonly colX: number[];
  readonly textX: number;
  readonly width: number;
}

function diagramGeometry(ex: Explorer, width: number): DiagramGeometry {
  const shown = ex.model.shown;
  const textMin = 320;
  const colW = Math.max(44, Math.min(110, (width - gutterW - textMin) / Math.max(1, shown.length)));
  const colX: number[] = [];
  shown.forEach((p, i) => (colX[p] = gutterW + colW * i + colW / 2));
  return { colX, textX: gutterW + colW * shown.length + 8, width };
}

function drawDiagram(ex: Explorer, container: HTMLDivElement, canvas: HTMLCanvasElement): void {
  const { model } = ex;
  const width = container.clientWidth;
  const height = container.clientHeight;
  const ctx = setupCanvas(canvas, width, height);
  canvas.style.top = `${container.scrollTop}px`;
  const g = diagramGeometry(ex, width);
  const first = Math.floor(container.scrollTop / rowH);
  const last = Math.min(ex.rows.length - 1, first + Math.ceil(height / rowH) + 1);
  const y = (row: number): number => (row - first) * rowH + rowH + rowH / 2;
  ctx.font = "12px ui-monospace, monospace";
  ctx.textBaseline = "middle";
  for (let row = first; row <= last; row++) drawRowBackground(ex, ctx, ex.rows[row]!, y(row), width);
  ctx.strokeStyle = "#ddd";
  for (const p of model.shown) {
    const x = g.colX[p]!;
    ctx.beginPath();
    ctx.moveTo(x, rowH);
    ctx.lineTo(x, height);
    ctx.stroke();
  }
  drawMessages(ex, ctx, g, first, last, y);
  for (let row = first; row <= last; row++) drawRow(ex, ctx, g, ex.rows[row]!, y(row));
  // The header: process names.
  ctx.fillStyle = "#f4f4f4";
  ctx.fillRect(0, 0, width, rowH);
  ctx.fillStyle = "#222";
  ctx.textAlign = "center";
  ctx.font = "bold 12px system-ui, sans-serif";
  for (const p of model.shown) ctx.fillText(model.v.processes[p]!.name, g.colX[p]!, rowH / 2);
  ctx.textAlign = "left";
  ctx.fillText("step / true time", 4, rowH / 2);
  ctx.fillText("what happened", g.textX, rowH / 2);
}

function drawRowBackground(ex: Explorer, ctx: CanvasRenderingContext2D, step: number, y: number, width: number): void {
  const v = ex.model.v.violation;
  let fill: string | null = null;
  if (ex.model.related.has(step)) fill = "#ffe9cc";
  if (v !== null && v.step === step) fill = "#ffcdd2";
  if (step === ex.step) fill = "#cfe3ff";
  if (fill === null && ex.model.kindOf(step) === "note") fill = "#efe7f7";
  if (fill === null) return;
  ctx.fillStyle = fill;
  ctx.fillRect(0, y - rowH / 2, width, rowH);
}

function drawRow(ex: Explorer, ctx: CanvasRenderingContext2D, g: DiagramGeometry, step: number, y: number): void {
  const { model } = ex;
  const quiet = model.v.steps.quiet[step] === 1;
  ctx.fillStyle = quiet ? "#999" : "#555";
  ctx.font = "11px ui-monospace, monospace";
  ctx.fillText(`${step}`, 4, y);
  ctx.fillText(fmtTime(model, model.t[step]!), 48, y);
  const actor = model.v.steps.actor[step]!;
  const kind = model.kindOf(step);
  if (actor >= 0 && g.colX[actor] !== undefined) {
    ctx.fillStyle = kind === "crash" ? "#000" : kind === "fault" ? "#e67e00" : quiet ? "#bbb" : "#1f5fbf";
    ctx.beginPath();
    ctx.arc(g.colX[actor], y, kind === "event" ? 4 : 5, 0, 2 * Math.PI);
    ctx.fill();
  }
  ctx.fillStyle = quiet
    ? "#999"
    : kind === "fault" || kind === "crash"
      ? "#8a4b00"
      : kind === "note"
        ? "#5b2a86"
        : "#222";
  ctx.font = "12px ui-monospace, monospace";
  const text = model.stepText(step);
  const actions = model.list("actions", step).filter((a) => !a.startsWith("sometimes"));
  const suffix = actions.length > 0 ? `   [${actions.map((a) => a.replace(/: /, " ")).join("; ")}]` : "";
  ctx.fillText(clipText(ctx, text + suffix, g.width - g.textX - 4), g.textX, y);
}

/** The last index i < length with xs[i] <= x, xs sorted ascending; -1 if there is none. */
function lastAtOrBefore(xs: ArrayLike<number>, x: number, length = xs.length): number {
  let lo = 0;
  let hi = length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid]! <= x) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

function clipText(ctx: CanvasRenderingContext2D, text: string, width: number): string {
  if (width <= 10) return "";
  if (ctx.measureText(text).width <= width) return text;
  let lo = 0;
  let hi = text.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (ctx.measureText(`${text.slice(0, mid)}...`).width <= width) lo = mid;
    else hi = mid - 1;
  }
  return `${text.slice(0, lo)}...`;
}

function drawMessages(
  ex: Explorer,
  ctx: CanvasRenderingContext2D,
  g: DiagramGeometry,
  first: number,
  last: number,
  y: (row: number) => number,
): void {
  const { model } = ex;
  const v = model.v;
  const fromStep = ex.rows[first] ?? 0;
  const toStep = ex.rows[last] ?? 0;
  for (let b = 0; b < model.msgBlockEnd.length; b++) {
    if (model.msgBlockEnd[b]! < fromStep) continue;
    const end = Math.min(v.messages.from.length, (b + 1) * 256);
    for (let k = b * 256; k < end; k++) {
      const sent = model.msgSent[k]!;
      if (sent > toStep) break;
      const received = model.msgReceived[k]!;
      if (received >= 0 && received < fromStep) continue;
      if (received < 0 && sent < fromStep) continue;
      drawMessage(ex, ctx, g, k, y);
    }
  }
}

function drawMessage(
  ex: Explorer,
  ctx: CanvasRenderingContext2D,
  g: DiagramGeometry,
  k: number,
  y: (row: number) => number,
): void {
  const v = ex.model.v;
  const x1 = g.colX[v.messages.from[k]!]!;
  const x2 = g.colX[v.messages.to[k]!]!;
  const sentRow = ex.rowOf(ex.model.msgSent[k]!);
  const y1 = y(sentRow);
  const received = ex.model.msgReceived[k]!;
  const current = ex.model.msgSent[k] === ex.step || received === ex.step;
  ctx.strokeStyle = current ? "#0b57d0" : received < 0 ? "rgba(200,40,40,0.55)" : "rgba(60,60,60,0.45)";
  ctx.lineWidth = current ? 2 : 1;
  if (received < 0) {
    // Lost: a short stub ending in a cross.
    const x = x1 + (x2 - x1) * 0.35;
    const yy = y1 + rowH * 0.6;
    line(ctx, x1, y1, x, yy);
    line(ctx, x - 3, yy - 3, x + 3, yy + 3);
    line(ctx, x - 3, yy + 3, x + 3, yy - 3);
  } else {
    const y2 = y(ex.rowOf(received));
    line(ctx, x1, y1, x2, y2);
    arrowHead(ctx, x1, y1, x2, y2);
  }
  ctx.lineWidth = 1;
}

function line(ctx: CanvasRenderingContext2D, x1: number, y1: number, x2: number, y2: number): void {
  ctx.beginPath();
  ctx.moveTo(x1, y1);
  ctx.lineTo(x2, y2);
  ctx.stroke();
}

function arrowHead(ctx: CanvasRenderingContext2D, x1: number, y1: number, x2: number, y2: number): void {
  const a = Math.atan2(y2 - y1, x2 - x1);
  const s = 6;
  line(ctx, x2, y2, x2 - s * Math.cos(a - 0.4), y2 - s * Math.sin(a - 0.4));
  line(ctx, x2, y2, x2 - s * Math.cos(a + 0.4), y2 - s * Math.sin(a + 0.4));
}

// ---- The time axis -----------------------------------------------------------------------------

const axisLeft = 150;
const laneH = 26;
const kindStyle: Record<string, { fill: string; y: number; h: number }> = {
  down: { fill: "rgba(60,60,60,0.55)", y: 2, h: 22 },
  paused: { fill: "rgba(120,120,120,0.35)", y: 2, h: 22 },
  wait: { fill: "rgba(156,39,176,0.25)", y: 2, h: 22 },
  cut: { fill: "rgba(211,47,47,0.8)", y: 22, h: 3 },
  grant: { fill: "", y: 15, h: 6 },
  lease: { fill: "", y: 4, h: 10 },
};

function axisLanes(ex: Explorer): number[] {
  const kinds = new Set(["replica", "acceptor", "holder"]);
  return ex.model.shown.filter(
    (p) => kinds.has(ex.model.v.processes[p]!.kind) || ex.model.intervals.some((iv) => iv.process === p),
  );
}

function drawAxis(ex: Explorer, canvas: HTMLCanvasElement): void {
  const { model } = ex;
  const lanes = axisLanes(ex);
  const width = canvas.parentElement!.clientWidth;
  const opsTop = 34 + (lanes.length + 1) * laneH;
  const height = opsTop + (model.ops === null ? 0 : opHeading + model.ops.clients.length * opLaneH);
  const ctx = setupCanvas(canvas, width, height);
  const span = Math.max(1e-6, ex.viewTo - ex.viewFrom);
  const x = (ms: number): number => axisLeft + ((ms - ex.viewFrom) / span) * (width - axisLeft - 10);
  ctx.font = "11px system-ui, sans-serif";
  ctx.textBaseline = "middle";
  drawTicks(ctx, ex, x, height);
  ex.drawnBars = [];
  const laneY = (i: number): number => 30 + (i + 1) * laneH;
  drawOverlapLane(ctx, ex, x, width);
  lanes.forEach((p, i) => drawLane(ctx, ex, p, laneY(i), x, width));
  ex.opsTop = opsTop + opHeading;
  ex.drawnOps = model.ops === null ? 0 : drawOperations(ctx, ex, model.ops, opsTop, x, width);
  // Faults for the whole system, labelled where there is room.
  ctx.font = "10px system-ui, sans-serif";
  for (const iv of model.intervals) {
    if (iv.process !== -1) continue;
    const x1 = Math.max(axisLeft, x(iv.from));
    const x2 = Math.min(width, x(iv.to));
    if (x2 <= x1) continue;
    ctx.fillStyle = "rgba(255,183,77,0.25)";
    ctx.fillRect(x1, 30, x2 - x1, height - 30);
    if (x2 - x1 > 40) {
      ctx.fillStyle = "#8a4b00";
      ctx.fillText(clipText(ctx, iv.label, x2 - x1 - 4), x1 + 2, 24);
    }
  }
  const cursor = x(model.t[ex.step] ?? 0);
  ctx.strokeStyle = "#0b57d0";
  ctx.lineWidth = 2;
  line(ctx, cursor, 14, cursor, height);
  ctx.lineWidth = 1;
}

const opHeading = 14;
const opLaneH = 9;

/** One thin lane per client: every operation a bar from invocation to completion (Jepsen's timeline). */
function drawOperations(
  ctx: CanvasRenderingContext2D,
  ex: Explorer,
  ops: Operations,
  top: number,
  x: (ms: number) => number,
  width: number,
): number {
  ctx.fillStyle = "#333";
  ctx.font = "bold 11px system-ui, sans-serif";
  ctx.fillText(`clients (${ops.n} operations)`, 4, top + opHeading / 2);
  ctx.font = "9px system-ui, sans-serif";
  const y0 = top + opHeading;
  ops.clients.forEach((c, k) => {
    ctx.fillStyle = "#555";
    ctx.fillText(c, 4, y0 + k * opLaneH + opLaneH / 2);
  });
  const fills = ["rgba(46,125,50,0.9)", "rgba(158,158,158,0.9)", "rgba(251,140,0,0.55)"];
  let drawn = 0;
  const flagged: number[] = [];
  for (let i = ops.firstFrom(ex.viewFrom); i < ops.n && ops.invoke[i]! <= ex.viewTo; i++) {
    const end = ops.end(i, ex.model.timeEnd);
    if (end < ex.viewFrom) continue;
    if (ops.flagged.has(i)) {
      flagged.push(i);
      continue;
    }
    const outcome = ops.outcome[i]!;
    const fill = outcome === 0 && ops.read[i] === 1 ? "rgba(129,199,132,0.9)" : fills[outcome]!;
    const x1 = x(ops.invoke[i]!);
    if (bar(ctx, x1, Math.max(x1 + 1.5, x(end)), y0 + ops.client[i]! * opLaneH + 1, opLaneH - 2, fill, width)) drawn++;
  }
  // Operations a violation names: on top, red, outlined.
  for (const i of flagged) {
    const x1 = x(ops.invoke[i]!);
    const y = y0 + ops.client[i]! * opLaneH;
    const b = bar(ctx, x1, Math.max(x1 + 3, x(ops.end(i, ex.model.timeEnd))), y, opLaneH, "rgba(255,23,68,1)", width);
    if (b === null) continue;
    drawn++;
    ctx.strokeStyle = "#b71c1c";
    ctx.strokeRect(b.x, y, Math.max(1, b.w), opLaneH);
  }
  return drawn;
}

/** The operation under a point of the axis, or -1. */
function operationAt(ex: Explorer, ms: number, yInCanvas: number, msPerPx: number): number {
  const ops = ex.model.ops;
  if (ops === null) return -1;
  const lane = Math.floor((yInCanvas - ex.opsTop) / opLaneH);
  if (lane < 0 || lane >= ops.clients.length) return -1;
  const slack = 2 * msPerPx;
  let found = -1;
  for (let i = ops.firstFrom(ms); i < ops.n && ops.invoke[i]! <= ms + slack; i++) {
    if (ops.client[i] !== lane) continue;
    if (ops.invoke[i]! - slack <= ms && ms <= Math.max(ops.end(i, ex.model.timeEnd), ops.invoke[i]! + slack)) found = i;
  }
  return found;
}

function drawTicks(ctx: CanvasRenderingContext2D, ex: Explorer, x: (ms: number) => number, height: number): void {
  const span = ex.viewTo - ex.viewFrom;
  const raw = span / 8;
  const pow = Math.pow(10, Math.floor(Math.log10(Math.max(raw, 1e-9))));
  const stepMs = [1, 2, 5, 10].map((k) => k * pow).find((s) => s >= raw) ?? pow * 10;
  ctx.fillStyle = "#444";
  ctx.strokeStyle = "#eee";
  ctx.textAlign = "center";
  for (let t = Math.ceil(ex.viewFrom / stepMs) * stepMs; t <= ex.viewTo; t += stepMs) {
    const xx = x(t);
    line(ctx, xx, 22, xx, height);
    ctx.fillText(fmtTime(ex.model, t), xx, 10);
  }
  ctx.textAlign = "left";
  ctx.fillText(ex.model.v.timeUnit === "ms" ? "true time" : "time", 4, 10);
}

/** The top lane: where two or more processes believe they hold a lease at once. */
function drawOverlapLane(ctx: CanvasRenderingContext2D, ex: Explorer, x: (ms: number) => number, width: number): void {
  const y = 30;
  ctx.fillStyle = "#333";
  ctx.fillText("lease holders", 4, y + laneH / 2);
  const events: [number, number][] = [];
  for (const iv of ex.model.intervals) if (iv.kind === "lease") events.push([iv.from, 1], [iv.to, -1]);
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let holders = 0;
  let since = 0;
  for (const [t, d] of events) {
    const before = holders;
    holders += d;
    if (before >= 2 && t > since) bar(ctx, x(since), x(t), y + 4, 16, "rgba(211,47,47,0.9)", width);
    else if (before === 1 && t > since) bar(ctx, x(since), x(t), y + 8, 8, "rgba(46,125,50,0.6)", width);
    since = t;
  }
}

function bar(
  ctx: CanvasRenderingContext2D,
  x1: number,
  x2: number,
  y: number,
  h: number,
  fill: string,
  width: number,
): { x: number; w: number } | null {
  const a = Math.max(axisLeft, x1);
  const b = Math.min(width, x2);
  if (b <= a) return null;
  ctx.fillStyle = fill;
  ctx.fillRect(a, y, Math.max(1, b - a), h);
  return { x: a, w: b - a };
}

function drawLane(
  ctx: CanvasRenderingContext2D,
  ex: Explorer,
  p: number,
  y: number,
  x: (ms: number) => number,
  width: number,
): void {
  const { model } = ex;
  ctx.strokeStyle = "#e0e0e0";
  line(ctx, axisLeft, y + laneH, width, y + laneH);
  const name = model.v.processes[p]!.name;
  const clock = model.clockAt(p, model.t[ex.step] ?? 0);
  ctx.fillStyle = "#222";
  ctx.font = "bold 11px system-ui, sans-serif";
  ctx.fillText(name, 4, y + 8);
  ctx.font = "10px ui-monospace, monospace";
  ctx.fillStyle = "#555";
  if (clock !== null)
    ctx.fillText(`clock ${Math.round(clock.reading * 10) / 10}${clock.rate === 1 ? "" : ` x${clock.rate}`}`, 4, y + 19);
  ctx.font = "11px system-ui, sans-serif";
  for (const iv of model.intervals) {
    if (iv.process !== p) continue;
    const style = kindStyle[iv.kind];
    if (style === undefined) continue;
    const fill =
      style.fill !== "" ? style.fill : colour(iv.label.replace(/^grant to /, ""), iv.kind === "grant" ? 0.5 : 0.85);
    const drawn = bar(ctx, x(iv.from), x(Math.min(iv.to, ex.viewTo + 1e6)), y + style.y, style.h, fill, width);
    if (drawn !== null && (iv.kind === "lease" || iv.kind === "grant"))
      ex.drawnBars.push({ process: name, kind: iv.kind, label: iv.label, x: drawn.x, w: drawn.w });
    if (drawn !== null && iv.kind === "lease" && drawn.w > 60) {
      ctx.fillStyle = "#fff";
      ctx.fillText(iv.label, drawn.x + 3, y + style.y + style.h / 2);
    }
  }
  drawClockTicks(ctx, ex, p, y, x, width);
}

/** Small marks where the process's own clock reads a round number: drift shows as uneven spacing. */
function drawClockTicks(
  ctx: CanvasRenderingContext2D,
  ex: Explorer,
  p: number,
  y: number,
  x: (ms: number) => number,
  width: number,
): void {
  const segments = ex.model.clocks[p]!;
  if (segments.length === 0 || ex.model.v.timeUnit !== "ms") return;
  const span = ex.viewTo - ex.viewFrom;
  const pow = Math.pow(10, Math.floor(Math.log10(Math.max(span / 10, 1e-9))));
  ctx.strokeStyle = "rgba(0,0,0,0.35)";
  segments.forEach((s, i) => {
    const end = Math.min(segments[i + 1]?.t ?? ex.viewTo, ex.viewTo);
    const start = Math.max(s.t, ex.viewFrom);
    if (end <= start) return;
    const r1 = s.reading + s.rate * (start - s.t);
    const r2 = s.reading + s.rate * (end - s.t);
    for (let r = Math.ceil(r1 / pow) * pow; r <= r2 && r - r1 < pow * 200; r += pow) {
      const xx = x(s.t + (r - s.reading) / s.rate);
      if (xx >= axisLeft && xx <= width) line(ctx, xx, y, xx, y + 3);
    }
  });
}

// ---- The details panel -------------------------------------------------------------------------------

function link(text: string, step: number, ex: Explorer): HTMLAnchorElement {
  const a = el("a", { href: `#step=${step}`, class: "steplink" }, text);
  a.addEventListener("click", (e) => {
    e.preventDefault();
    ex.go(step);
  });
  return a;
}

function section(title: string, body: HTMLElement[]): HTMLElement {
  const div = el("div", { class: "section" });
  div.append(el("h3", {}, title), ...body);
  return div;
}

function renderDetails(ex: Explorer): void {
  const { model, step } = ex;
  const v = model.v;
  const root = byId<HTMLDivElement>("details");
  root.replaceChildren();
  byId("step-number").textContent = String(step);
  byId("step-count").textContent = String(model.n - 1);
  const actor = v.steps.actor[step]!;
  const head = el("div", { class: "step-head", id: "step-head" });
  head.append(
    el("b", {}, `step ${step}`),
    ` at ${fmtTime(model, model.t[step]!)}, `,
    el("span", { class: `kind kind-${model.kindOf(step)}` }, model.kindOf(step)),
    actor >= 0 ? ` at ${model.processName(actor)}` : "",
  );
  root.append(head, el("div", { class: "step-text", id: "step-text" }, model.stepText(step)));
  if (v.violation !== null && (v.violation.step === step || model.related.has(step)))
    root.append(violationBox(ex, v.violation.step === step));
  root.append(...messageSections(ex));
  const effects = model.list("effects", step);
  if (effects.length > 0) root.append(section("effects", [listOf(effects.map((e) => [e]))]));
  const actions = model.list("actions", step);
  if (actions.length > 0)
    root.append(
      section("spec actions", [
        listOf(
          actions.map((a) => [badge(a)]),
          "actions",
        ),
      ]),
    );
  const rules = model.list("rules", step);
  if (rules.length > 0)
    root.append(
      section("rules the core applied", [
        listOf(
          rules.map((r) => [ruleLink(ex, r)]),
          "rules",
        ),
      ]),
    );
  root.append(section("state after this step", [stateTable(ex)]));
}

function badge(action: string): HTMLElement {
  const m = /^([A-Za-z]+): (.*)$/.exec(action);
  const level = m === null ? "" : m[1]!;
  const span = el("span", {});
  span.append(
    el("span", { class: `level level-${level.toLowerCase()}` }, level === "sometimes" ? "rare state" : level),
    ` ${m === null ? action : m[2]}`,
  );
  return span;
}

function ruleLink(ex: Explorer, text: string): HTMLElement {
  const key = text.split(" ")[0]!;
  const doc = ex.model.v.rules.find((r) => r.label === key);
  const span = el("span", {});
  const a = el("a", { href: "#", class: "rule" }, text);
  span.append(a);
  if (doc !== undefined) {
    const box = el("div", { class: "ruledoc", hidden: "" });
    box.append(el("div", { class: "where" }, doc.where), el("div", {}, doc.text));
    a.title = doc.where;
    a.addEventListener("click", (e) => {
      e.preventDefault();
      box.hidden = !box.hidden;
    });
    span.append(box);
  }
  return span;
}

function listOf(items: (string | HTMLElement)[][], id?: string): HTMLUListElement {
  const ul = el("ul", id === undefined ? {} : { id });
  for (const parts of items) {
    const li = el("li");
    li.append(...parts);
    ul.append(li);
  }
  return ul;
}

function messageSections(ex: Explorer): HTMLElement[] {
  const { model, step } = ex;
  const v = model.v;
  const out: HTMLElement[] = [];
  const k = model.receivedAt[step]!;
  if (k >= 0) {
    const sent = model.msgSent[k]!;
    out.push(
      section("received", [
        listOf([
          [
            `${model.processName(v.messages.from[k]!)} -> ${model.processName(v.messages.to[k]!)} ${model.str(model.msgLabel[k]!)} (`,
            link(`sent at step ${sent}`, sent, ex),
            ")",
          ],
        ]),
      ]),
    );
  }
  const sends: (string | HTMLElement)[][] = [];
  for (let i = model.sendAt[step]!; i < model.sendAt[step + 1]!; i++) {
    const m = model.sendItems[i]!;
    const r = model.msgReceived[m]!;
    sends.push([
      `-> ${model.processName(v.messages.to[m]!)} ${model.str(model.msgLabel[m]!)} `,
      r < 0
        ? el("span", { class: "lost" }, "(never received)")
        : r === step
          ? ""
          : link(`(received at step ${r})`, r, ex),
    ]);
  }
  if (sends.length > 0) out.push(section("sent", [listOf(sends, "sends")]));
  return out;
}

function violationBox(ex: Explorer, here: boolean): HTMLElement {
  const v = ex.model.v.violation!;
  const box = el("div", { class: "violation" });
  box.append(el("b", {}, `${v.check} (${v.level})`), el("div", {}, v.message));
  if (!here) box.prepend(el("div", { class: "where" }, "this step leads to the violation:"));
  if (here && v.action !== undefined) box.append(el("div", {}, `spec action: ${v.action}`));
  if (here && v.before !== undefined) box.append(el("pre", {}, `abstract state before:\n${v.before}`));
  if (here && v.after !== undefined) box.append(el("pre", {}, `abstract state after:\n${v.after}`));
  return box;
}

function stateTable(ex: Explorer): HTMLTableElement {
  const { model, step } = ex;
  const v = model.v;
  const processes = v.processes.map((_, i) => i).filter((p) => v.fields.some((_, f) => model.history[p]![f] !== null));
  const previous = ex.rows[ex.rowOf(step) - 1] ?? -1;
  const table = el("table", { id: "state" });
  const head = el("tr");
  head.append(el("th", {}, ""));
  for (const p of processes)
    head.append(el("th", p === v.steps.actor[step] ? { class: "actor" } : {}, v.processes[p]!.name));
  table.append(head);
  for (const f of fieldOrder(v.fields)) {
    const name = v.fields[f]!;
    const cells = processes.map((p) => model.valueAt(p, f, step));
    if (cells.every((c) => c.value === "")) continue;
    const tr = el("tr");
    tr.append(el("th", {}, name));
    cells.forEach((c) => {
      const changed = c.since > previous && c.since <= step && c.since >= 0;
      const td = el("td", changed ? { class: "changed", title: `changed at step ${c.since}` } : {}, c.value);
      tr.append(td);
    });
    table.append(tr);
  }
  return table;
}

/** Field indices in display order: as declared, with families like `session c2` in natural order. */
function fieldOrder(fields: readonly string[]): number[] {
  const natural = (a: string, b: string): number => a.localeCompare(b, "en", { numeric: true });
  const family = (name: string): string => name.replace(/ \S+$/, "");
  const firstOf = new Map<string, number>();
  fields.forEach((name, i) => {
    if (!firstOf.has(family(name))) firstOf.set(family(name), i);
  });
  return fields
    .map((_, i) => i)
    .sort((a, b) => {
      const fa = firstOf.get(family(fields[a]!))!;
      const fb = firstOf.get(family(fields[b]!))!;
      return fa !== fb ? fa - fb : natural(fields[a]!, fields[b]!);
    });
}

// ---- Set-up ----------------------------------------------------------------------------------------

function renderHeader(model: Model): void {
  const v = model.v;
  byId("title").textContent = v.title;
  const notes = byId("notes");
  notes.append(
    el(
      "div",
      {},
      `${v.source.kind}${v.source.file === undefined ? "" : `: ${v.source.file}`}; ${model.n} steps, ${v.messages.from.length} messages`,
    ),
  );
  for (const n of v.source.notes) notes.append(el("div", {}, n));
  if (v.source.replay !== undefined) {
    const replay = el("div", {}, "replay: ");
    replay.append(el("code", { id: "replay" }, v.source.replay));
    notes.append(replay);
  }
  if (v.source.details !== undefined) {
    const d = el("details");
    d.append(el("summary", {}, "details"), el("pre", {}, v.source.details));
    notes.append(d);
  }
  const banner = byId("violation-banner");
  if (v.violation === null) {
    banner.className = "ok";
    banner.textContent = "no violation in this trace";
    return;
  }
  banner.className = "bad";
  banner.append(
    el("b", {}, `${v.violation.check} (${v.violation.level}) `),
    v.violation.message.length > 400 ? `${v.violation.message.slice(0, 400)}...` : v.violation.message,
    " ",
  );
}

function bindControls(ex: Explorer): void {
  const buttons: [string, () => void][] = [
    ["first", () => ex.go(0)],
    ["back10", () => ex.move(-1, 10)],
    ["back", () => ex.move(-1)],
    ["forward", () => ex.move(1)],
    ["forward10", () => ex.move(1, 10)],
    ["last", () => ex.go(ex.model.n - 1)],
    ["prev-related", () => ex.moveRelated(-1)],
    ["next-related", () => ex.moveRelated(1)],
    ["to-violation", () => ex.model.v.violation !== null && ex.go(Math.max(0, ex.model.v.violation.step))],
  ];
  for (const [id, action] of buttons) byId(id).addEventListener("click", action);
  const quiet = byId<HTMLInputElement>("show-quiet");
  quiet.addEventListener("change", () => {
    ex.showQuiet = quiet.checked;
    ex.rebuildRows();
    ex.go(ex.step);
  });
  const jump = byId<HTMLInputElement>("jump");
  jump.addEventListener("change", () => ex.go(Number(jump.value)));
  document.addEventListener("keydown", (e) => onKey(ex, e, quiet));
  const diagram = byId<HTMLDivElement>("diagram");
  diagram.addEventListener("scroll", () => ex.requestDraw());
  diagram.addEventListener("click", (e) => {
    const rect = diagram.getBoundingClientRect();
    const row = Math.floor((e.clientY - rect.top + diagram.scrollTop - rowH) / rowH);
    if (row >= 0 && row < ex.rows.length) ex.go(ex.rows[row]!, false);
  });
  bindAxis(ex);
  window.addEventListener("resize", () => ex.requestDraw());
}

function onKey(ex: Explorer, e: KeyboardEvent, quiet: HTMLInputElement): void {
  if (e.target instanceof HTMLInputElement && e.target.type !== "checkbox") return;
  const count = e.shiftKey ? 10 : 1;
  const keys: Record<string, () => void> = {
    ArrowRight: () => ex.move(1, count),
    ArrowDown: () => ex.move(1, count),
    j: () => ex.move(1, count),
    ArrowLeft: () => ex.move(-1, count),
    ArrowUp: () => ex.move(-1, count),
    k: () => ex.move(-1, count),
    Home: () => ex.go(0),
    End: () => ex.go(ex.model.n - 1),
    n: () => ex.moveRelated(1),
    p: () => ex.moveRelated(-1),
    v: () => ex.model.v.violation !== null && ex.go(Math.max(0, ex.model.v.violation.step)),
    q: () => quiet.click(),
  };
  const action = keys[e.key];
  if (action === undefined) return;
  e.preventDefault();
  action();
}

function bindAxis(ex: Explorer): void {
  const axis = byId<HTMLCanvasElement>("axis");
  const timeAt = (clientX: number): number => {
    const rect = axis.getBoundingClientRect();
    const f = (clientX - rect.left - axisLeft) / Math.max(1, rect.width - axisLeft - 10);
    return ex.viewFrom + f * (ex.viewTo - ex.viewFrom);
  };
  const hover = byId("axis-hover");
  axis.addEventListener("mousemove", (e) => {
    const rect = axis.getBoundingClientRect();
    const msPerPx = (ex.viewTo - ex.viewFrom) / Math.max(1, rect.width - axisLeft - 10);
    const i = operationAt(ex, timeAt(e.clientX), e.clientY - rect.top, msPerPx);
    hover.textContent = i < 0 ? "" : ex.model.ops!.describe(i);
  });
  axis.addEventListener("wheel", (e) => {
    e.preventDefault();
    const at = timeAt(e.clientX);
    const factor = e.deltaY > 0 ? 1.25 : 0.8;
    ex.viewFrom = at - (at - ex.viewFrom) * factor;
    ex.viewTo = at + (ex.viewTo - at) * factor;
    ex.requestDraw();
  });
  let dragFrom: number | null = null;
  let dragged = false;
  axis.addEventListener("mousedown", (e) => {
    dragFrom = e.clientX;
    dragged = false;
  });
  window.addEventListener("mousemove", (e) => {
    if (dragFrom === null) return;
    const dx = e.clientX - dragFrom;
    if (Math.abs(dx) > 3) dragged = true;
    const shift = (dx / Math.max(1, axis.clientWidth - axisLeft)) * (ex.viewTo - ex.viewFrom);
    ex.viewFrom -= shift;
    ex.viewTo -= shift;
    dragFrom = e.clientX;
    ex.requestDraw();
  });
  window.addEventListener("mouseup", (e) => {
    if (dragFrom !== null && !dragged && e.target === axis) ex.go(ex.model.stepAtTime(timeAt(e.clientX)));
    dragFrom = null;
  });
  byId("zoom-all").addEventListener("click", () => {
    ex.viewFrom = ex.model.timeStart;
    ex.viewTo = ex.model.timeEnd;
    ex.requestDraw();
  });
  byId("zoom-step").addEventListener("click", () => {
    const t = ex.model.t[ex.step] ?? 0;
    const span = Math.max(20, (ex.model.timeEnd - ex.model.timeStart) / 50);
    ex.viewFrom = t - span / 2;
    ex.viewTo = t + span / 2;
    ex.requestDraw();
  });
}

async function loadTrace(): Promise<TraceView> {
  const script = byId<HTMLScriptElement>("trace");
  const bytes = Uint8Array.from(atob(script.textContent ?? ""), (c) => c.charCodeAt(0));
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return JSON.parse(await new Response(stream).text()) as TraceView;
}

interface ExplorerApi {
  readonly explorer: Explorer;
}

async function main(): Promise<void> {
  const started = performance.now();
  const trace = await loadTrace();
  const model = new Model(trace);
  // A spec without time or leases has nothing for the time axis.
  if (model.intervals.length === 0 && trace.clocks.process.length === 0 && model.ops === null)
    byId("axis-footer").hidden = true;
  byId("ops-legend").hidden = model.ops === null;
  renderHeader(model);
  const ex = new Explorer(model);
  (window as unknown as { traceExplorer: ExplorerApi }).traceExplorer = { explorer: ex };
  bindControls(ex);
  const fromHash = /step=(\d+)/.exec(location.hash);
  const start =
    fromHash !== null ? Number(fromHash[1]) : trace.violation !== null ? Math.max(0, trace.violation.step) : 0;
  ex.go(start);
  requestAnimationFrame(() => {
    document.body.dataset.loadMs = String(Math.round(performance.now() - started));
    document.body.dataset.rendered = "true";
  });
}

main().catch((error: unknown) => {
  document.body.dataset.error = String(error);
  byId("title").textContent = `could not load the trace: ${String(error)}`;
});

/**
 * The HTML report of a history that is not linearizable: one self-contained page (inline CSS,
 * SVG and a few lines of script; nothing fetched) showing, for each key that failed, every
 * client's timeline with the longest linearizable prefix the search found (numbered in its
 * order), the operations that cannot be placed after it, and the smallest sub-history that is
 * still not linearizable; a button shows that sub-history alone. Like Porcupine's
 * visualization, with the minimised sub-history added. Pure: data in, a string out.
 */
import { minimise, type Minimised, type MinimiseOptions } from "./minimise.ts";
import { partitionHistory, type LinearizabilityResult } from "./linearizability.ts";
import type { LinearizabilityModel, Operation } from "./search.ts";

/** One key that failed, with what the report shows of it. */
export interface ReportKey<I, O> {
  readonly key: string;
  readonly verdict: "not-linearizable" | "unknown";
  /** Every operation of the key. */
  readonly operations: readonly Operation<I, O>[];
  readonly longestPrefix: readonly Operation<I, O>[];
  readonly stuck: readonly Operation<I, O>[];
  /** When the key was refuted by a necessary condition (refute.ts) rather than searched: why. */
  readonly refutation?: string;
  readonly minimised?: { readonly operations: readonly Operation<I, O>[]; readonly minimal: boolean };
}

/** What the page is about. */
export interface ReportInput<I, O> {
  readonly title: string;
  readonly model: string;
  readonly summary: string;
  readonly keys: readonly ReportKey<I, O>[];
}

/** Operations drawn per key at most (the tables still list the prefix's end, the stuck and the minimised ones). */
const drawnMax = 3000;

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function showOp<I, O>(op: Operation<I, O>): string {
  const output =
    op.complete === Infinity
      ? "unknown outcome"
      : op.output === undefined
        ? "output not recorded"
        : JSON.stringify(op.output);
  const done = op.complete === Infinity ? "" : `, completed ${op.complete}`;
  return `#${op.id} ${op.client}: ${JSON.stringify(op.input)} -> ${output} (invoked ${op.invoke}${done})`;
}

function timeline<I, O>(k: ReportKey<I, O>, index: number): string {
  const drawn = k.operations.slice(0, drawnMax);
  const order = new Map(k.longestPrefix.map((op, i) => [op.id, i + 1]));
  const stuck = new Set(k.stuck.map((op) => op.id));
  const minimised = new Set((k.minimised?.operations ?? []).map((op) => op.id));
  const clients = [...new Set(drawn.map((op) => op.client))].sort((a, b) =>
    a.localeCompare(b, "en", { numeric: true }),
  );
  const finite = drawn.flatMap((op) => (op.complete === Infinity ? [op.invoke] : [op.invoke, op.complete]));
  const t0 = Math.min(...finite);
  const t1 = Math.max(...finite);
  const span = t1 - t0 || 1;
  const width = 1100;
  const left = 90;
  const lane = 22;
  const x = (t: number): number => left + ((Math.min(t, t1) - t0) / span) * width;
  const rows = clients
    .map(
      (c, i) =>
        `<text class="lane" x="4" y="${i * lane + 15}">${escape(c.length > 12 ? `${c.slice(0, 11)}…` : c)}</text>`,
    )
    .join("");
  const bars = drawn
    .map((op) => {
      const y = clients.indexOf(op.client) * lane + 3;
      const x0 = x(op.invoke);
      const x1 = op.complete === Infinity ? left + width + 8 : x(op.complete);
      const kind = stuck.has(op.id) ? "stuck" : order.has(op.id) ? "placed" : "other";
      const classes = `op ${kind}${minimised.has(op.id) ? " min" : ""}${op.complete === Infinity ? " open" : ""}`;
      const label = order.has(op.id) ? `<text class="n" x="${x0 + 2}" y="${y + 12}">${order.get(op.id)}</text>` : "";
      return `<g class="${classes}" data-id="${op.id}"><rect x="${x0.toFixed(1)}" y="${y}" width="${Math.max(3, x1 - x0).toFixed(1)}" height="16" rx="3"><title>${escape(showOp(op))}</title></rect>${label}</g>`;
    })
    .join("");
  const height = clients.length * lane + 6;
  const more =
    k.operations.length > drawn.length ? `<p>${k.operations.length - drawn.length} operations not drawn.</p>` : "";
  return `<svg id="timeline-${index}" width="${left + width + 20}" height="${height}" role="img" aria-label="client timelines of key ${escape(k.key)}">${rows}${bars}</svg>${more}`;
}

function list<I, O>(ops: readonly Operation<I, O>[], className: string): string {
  return `<ol class="${className}">${ops.map((op) => `<li>${escape(showOp(op))}</li>`).join("")}</ol>`;
}

function section<I, O>(k: ReportKey<I, O>, index: number): string {
  const prefixShown = k.longestPrefix.slice(-15);
  const minimised =
    k.minimised === undefined
      ? ""
      : `<h3>The smallest sub-history still not linearizable (${k.minimised.operations.length} operations${k.minimised.minimal ? "" : "; the search budget ran out, so perhaps not the smallest"})</h3>${list(k.minimised.operations, "minimised")}`;
  return `<section class="key" id="key-${index}">
<h2>Key ${escape(JSON.stringify(k.key))}: ${k.verdict === "unknown" ? "undecided within the step budget" : "not linearizable"}</h2>
<p>${
    k.refutation === undefined
      ? `${k.operations.length} operations. The search placed at most ${k.longestPrefix.length} of them in a linearizable order (green, numbered); after that order, none of the ${k.stuck.length} operations in red can come next.`
      : `${k.operations.length} operations, refuted without a full search: ${escape(k.refutation)}. The operation in red can be placed in no linearization.`
  }</p>
<p><button type="button" class="toggle" data-key="${index}">Show only the minimised sub-history</button>
<span class="legend"><span class="sw placed"></span>in the longest linearizable prefix <span class="sw stuck"></span>cannot be placed next <span class="sw other"></span>other <span class="sw min"></span>in the minimised sub-history; an open end: outcome unknown</span></p>
<div class="scroll">${timeline(k, index)}</div>
${minimised}
${
  k.refutation === undefined
    ? `<h3>Cannot come next</h3>${list(k.stuck, "stuck")}
<h3>The end of the longest linearizable prefix (${prefixShown.length} of ${k.longestPrefix.length})</h3>${list(prefixShown, "prefix")}`
    : `<h3>Can be placed in no linearization</h3>${list(k.stuck, "stuck")}`
}
</section>`;
}

/** The report page. */
export function renderReport<I, O>(input: ReportInput<I, O>): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escape(input.title)}: not linearizable</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<style>
body{font:14px system-ui,sans-serif;margin:20px;color:#222}
h1{font-size:20px}h2{font-size:17px;margin-top:28px}h3{font-size:15px}
.scroll{overflow-x:auto;border:1px solid #ddd;padding:4px}
.lane{font:11px monospace;fill:#555}
.op rect{stroke:#555;stroke-width:.5}
.placed rect{fill:#66bb6a}.stuck rect{fill:#e53935}.other rect{fill:#bdbdbd}
.min rect{stroke:#000;stroke-width:2.5}
.open rect{stroke-dasharray:4 2}
.n{font:9px monospace;fill:#fff;pointer-events:none}
.only-min .op:not(.min){display:none}
.sw{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle;border:1px solid #555}
.sw.placed{background:#66bb6a}.sw.stuck{background:#e53935}.sw.other{background:#bdbdbd}.sw.min{border:2.5px solid #000}
ol{font:12px monospace}
</style></head><body>
<h1>${escape(input.title)}: not linearizable (model ${escape(input.model)})</h1>
<p>${escape(input.summary)}</p>
${input.keys.map(section).join("\n")}
<script>
for (const b of document.querySelectorAll("button.toggle")) {
  b.addEventListener("click", () => {
    const svg = document.getElementById("timeline-" + b.dataset.key);
    const on = svg.classList.toggle("only-min");
    b.textContent = on ? "Show every operation" : "Show only the minimised sub-history";
  });
}
</script>
</body></html>
`;
}

/** The keys that are not linearizable, each minimised, ready for {@link renderReport}. */
export function failedKeys<S, I, O>(
  model: LinearizabilityModel<S, I, O>,
  ops: readonly Operation<I, O>[],
  result: LinearizabilityResult<I, O>,
  options: MinimiseOptions<I, O> = {},
): { keys: ReportKey<I, O>[]; minimised: Map<string, Minimised<I, O>> } {
  const bad = result.partitions.filter((p) => p.verdict === "not-linearizable");
  const minimised = new Map<string, Minimised<I, O>>();
  if (bad.length === 0) return { keys: [], minimised };
  const groups = new Map(partitionHistory(model, ops).partitions.map((g) => [g.key, g.ops]));
  const keys = bad.map((p): ReportKey<I, O> => {
    const own = groups.get(p.partition) ?? [];
    const small = minimise(model, p.partition, own, options);
    minimised.set(p.partition, small);
    return {
      key: p.partition,
      verdict: "not-linearizable",
      operations: own,
      longestPrefix: p.longestPrefix ?? [],
      stuck: p.stuck ?? p.refutation?.operations.slice(-1) ?? [],
      ...(p.refutation === undefined ? {} : { refutation: p.refutation.reason }),
      minimised: small,
    };
  });
  return { keys, minimised };
}

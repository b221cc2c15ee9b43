/**
 * The run as a picture, in the spirit of Jepsen's timeline: one self-contained HTML file (inline
 * CSS, SVG drawn by inline JavaScript from inline JSON; no network). The top lanes show each
 * replica's process lives and the intervals in which it believed it held the lease (from the
 * replayed traces); then one lane per client, every operation a bar from invocation to
 * completion coloured by outcome (ok, fail, unknown: open-ended); fault windows are shaded bands
 * with labels; operations named by a violation are red. Hovering a bar shows the operation; a
 * slider zooms the time axis. Pure: builds a string.
 */
import type { NemesisReport } from "./run.ts";
import type { LeaseInterval } from "./trace-checks.ts";
import type { RecordedOp } from "./workload.ts";

/** Inputs of {@link timelineHtml}; times in run ms. */
export interface TimelineInput {
  readonly report: NemesisReport;
  readonly ops: readonly RecordedOp[];
  readonly leaseIntervals: readonly LeaseInterval[];
}

/** Most operation bars drawn; operations in a violation are always drawn. */
export const timelineOpsMax = 100_000;

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** JSON that is safe inside a <script> element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c");
}

const outcomeCodes = { ok: 0, fail: 1, unknown: 2 } as const;

/** The timeline page. */
export function timelineHtml(input: TimelineInput): string {
  const { report, ops } = input;
  const flagged = new Set<number>();
  for (const v of report.history.violations) for (const i of v.ops) flagged.add(i);
  const end = Math.max(
    1000,
    ...ops.map((op) => op.complete ?? op.invoke),
    ...report.faults.map((f) => (Number.isFinite(f.endedAt) ? f.endedAt : f.startedAt)),
  );
  const clients = [...new Set(ops.map((op) => op.client))];
  const clientIndex = new Map(clients.map((c, i) => [c, i]));
  const drawn: unknown[] = [];
  ops.forEach((op, index) => {
    if (drawn.length >= timelineOpsMax && !flagged.has(index)) return;
    drawn.push([
      index,
      clientIndex.get(op.client),
      round(op.invoke),
      op.complete === undefined ? null : round(op.complete),
      outcomeCodes[op.outcome],
      flagged.has(index) ? 1 : 0,
      op.input,
      op.output ?? null,
      op.attempts,
      op.replica ?? null,
      op.note ?? null,
    ]);
  });
  const data = {
    end: round(end),
    replicas: report.replicas,
    clients,
    lives: report.lives.map((l) => [
      l.replica,
      round(l.startedAt),
      l.endedAt === undefined ? null : round(l.endedAt),
      l.pid,
      l.exit ?? null,
    ]),
    leases: input.leaseIntervals.map((l) => [l.replica, round(l.from), round(l.to), l.ballot]),
    faults: report.faults.map((f) => [
      round(f.startedAt),
      Number.isFinite(f.endedAt) ? round(f.endedAt) : null,
      f.effect === undefined ? f.label : `${f.label} (${f.effect})`,
      f.leader,
    ]),
    ops: drawn,
  };
  const h = report.history;
  const verdict = report.ok ? "PASS" : `FAIL: ${report.violations.length} violations`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>paxos-lease nemesis timeline, seed ${report.seed}</title>
<style>
body { font: 13px system-ui, sans-serif; margin: 12px; color: #222; }
h1 { font-size: 17px; margin: 0 0 4px; }
.verdict { font-weight: bold; color: ${report.ok ? "#1a7f37" : "#c62828"}; }
.legend { margin-top: 6px; }
.legend span { display: inline-block; margin-right: 14px; }
.legend i { display: inline-block; width: 14px; height: 10px; margin-right: 4px; vertical-align: middle; }
#scroll { overflow-x: auto; border: 1px solid #ccc; margin-top: 8px; }
svg text { font: 10px system-ui, sans-serif; fill: #333; }
svg text.small { fill: #777; }
svg text.fault-label { fill: #8a4b00; font-weight: bold; }
.fault { fill: #ffb74d; opacity: 0.22; }
.grid { stroke: #e4e4e4; }
.life { fill: #90caf9; }
.lease { fill: #5e35b1; }
.op.ok { fill: #2e7d32; }
.op.ok.read { fill: #81c784; }
.op.fail { fill: #bdbdbd; }
.op.unknown { fill: #fb8c00; opacity: 0.55; }
.op.bad { stroke: #b71c1c; stroke-width: 2; fill: #ff1744; opacity: 1; }
ul.violations { color: #c62828; }
#hover { min-height: 1.3em; font-family: ui-monospace, monospace; font-size: 12px; white-space: pre-wrap; }
</style></head><body>
<h1>paxos-lease nemesis: seed ${report.seed}, ${report.replicas} replicas, ${report.clients} clients: <span class="verdict" id="verdict">${escape(verdict)}</span></h1>
<div>${h.operations} operations (ok ${h.outcomes.ok}, fail ${h.outcomes.fail}, unknown ${h.outcomes.unknown}); linearizability: ${h.linearizability.verdict}; ${report.faults.length} faults; ${escape(report.convergence.message)}${drawn.length < ops.length ? `; ${ops.length - drawn.length} operations not drawn` : ""}</div>
${
  report.violations.length === 0
    ? ""
    : `<ul class="violations" id="violations">${report.violations
        .slice(0, 50)
        .map((v) => `<li>${escape(v.slice(0, 600))}</li>`)
        .join("")}</ul>`
}
<div class="legend"><span><i style="background:#2e7d32"></i>write ok</span><span><i style="background:#81c784"></i>read ok</span><span><i style="background:#bdbdbd"></i>failed (not executed)</span><span><i style="background:#fb8c00;opacity:.55"></i>unknown outcome</span><span><i style="background:#ff1744"></i>in a violation</span><span><i style="background:#ffb74d;opacity:.4"></i>fault window</span><span><i style="background:#90caf9"></i>replica process alive</span><span><i style="background:#5e35b1"></i>believes it holds the lease</span>
<label>px per second <input id="zoom" type="range" min="5" max="2000" step="5"></label> <span id="scale"></span></div>
<div id="hover">hover over a bar for details</div>
<div id="scroll"><svg id="timeline" xmlns="http://www.w3.org/2000/svg"></svg></div>
<script id="data" type="application/json">${scriptJson(data)}</script>
<script>
"use strict";
{
const data = JSON.parse(document.getElementById("data").textContent);
const svg = document.getElementById("timeline");
const lane = 12, left = 64, laneTop = 36;
const outcome = ["ok", "fail", "unknown"];
const esc = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/"/g, "&quot;");
const secs = (ms) => (ms / 1000).toFixed(3) + " s";
function describe(o) {
  const [index, , invoke, complete, code, , input, output, attempts, replica, note] = o;
  const took = complete === null ? "" : " in " + (complete - invoke).toFixed(1) + " ms";
  return "#" + index + " " + data.clients[o[1]] + " " + JSON.stringify(input) + " -> " + (code === 0 ? JSON.stringify(output) : outcome[code]) + took +
    (replica === null ? "" : " at r" + replica) + ", " + attempts + " attempt(s)" + (note === null ? "" : " (" + note + ")") + "; invoked at " + secs(invoke);
}
function render(pxPerSecond) {
  const x = (ms) => left + Math.max(0, ms) / 1000 * pxPerSecond;
  const clientTop = laneTop + data.replicas * 2 * lane + 16;
  const height = clientTop + data.clients.length * lane + 18;
  const width = Math.ceil(x(data.end) + 30);
  const out = [];
  for (const [from, to, label, leader] of data.faults) {
    const end = to === null ? data.end : to;
    out.push('<rect class="fault" x="' + x(from) + '" y="14" width="' + Math.max(2, x(end) - x(from)) + '" height="' + (height - 14) + '"><title>' + esc(label + ": " + secs(from) + " to " + secs(end) + ", leader then: " + (leader === null ? "none" : "r" + leader)) + '</title></rect>');
    out.push('<text class="fault-label" x="' + (x(from) + 2) + '" y="25">' + esc(label) + '</text>');
  }
  const step = pxPerSecond >= 60 ? 1 : pxPerSecond >= 12 ? 5 : 30;
  for (let s = 0; s * 1000 <= data.end; s += step) out.push('<line class="grid" x1="' + x(s * 1000) + '" x2="' + x(s * 1000) + '" y1="30" y2="' + height + '"/><text class="small" x="' + (x(s * 1000) + 2) + '" y="' + (height - 4) + '">' + s + 's</text>');
  for (let r = 1; r <= data.replicas; r++) {
    const y = laneTop + (r - 1) * 2 * lane;
    out.push('<text x="4" y="' + (y + 9) + '">r' + r + '</text><text class="small" x="4" y="' + (y + lane + 9) + '">r' + r + ' lease</text>');
  }
  for (const [r, from, to, pid, exit] of data.lives) {
    const y = laneTop + (r - 1) * 2 * lane, end = to === null ? data.end : to;
    out.push('<rect class="life" data-replica="' + r + '" x="' + x(from) + '" y="' + (y + 2) + '" width="' + Math.max(1, x(end) - x(from)) + '" height="' + (lane - 4) + '"><title>' + esc("r" + r + " pid " + pid + ": " + secs(from) + " to " + secs(end) + (exit === null ? "" : " (" + exit + ")")) + '</title></rect>');
  }
  for (const [r, from, to, ballot] of data.leases) {
    const y = laneTop + (r - 1) * 2 * lane + lane;
    out.push('<rect class="lease" data-replica="' + r + '" x="' + x(from) + '" y="' + (y + 2) + '" width="' + Math.max(1, x(to) - x(from)) + '" height="' + (lane - 4) + '"><title>' + esc("r" + r + " believes it holds the lease of ballot " + ballot + ": " + secs(from) + " to " + secs(to)) + '</title></rect>');
  }
  data.clients.forEach((c, i) => out.push('<text x="4" y="' + (clientTop + i * lane + 9) + '">' + esc(c) + '</text>'));
  for (const o of data.ops) {
    const [index, client, invoke, complete, code, bad, input] = o;
    const end = complete !== null ? complete : code === 2 ? Math.min(data.end, invoke + 5000) : invoke + 5;
    const cls = "op " + outcome[code] + (bad ? " bad" : "") + (input._tag === "get" ? " read" : "");
    out.push('<rect class="' + cls + '" data-op="' + index + '" x="' + x(invoke).toFixed(1) + '" y="' + (clientTop + client * lane + 1) + '" width="' + Math.max(1.5, x(end) - x(invoke)).toFixed(1) + '" height="' + (lane - 2) + '"></rect>');
  }
  svg.setAttribute("width", String(width));
  svg.setAttribute("height", String(height));
  svg.innerHTML = out.join("");
  document.getElementById("scale").textContent = pxPerSecond + " px/s";
}
const byIndex = new Map(data.ops.map((o) => [o[0], o]));
svg.addEventListener("mouseover", (e) => {
  const index = e.target.getAttribute && e.target.getAttribute("data-op");
  if (index !== null && index !== undefined) document.getElementById("hover").textContent = describe(byIndex.get(Number(index)));
});
const zoom = document.getElementById("zoom");
const fit = Math.max(5, Math.min(400, Math.floor((window.innerWidth - 120) / Math.max(1, data.end / 1000))));
zoom.value = String(fit);
zoom.addEventListener("input", () => render(Number(zoom.value)));
render(fit);
document.body.setAttribute("data-rendered", "true");
}
</script>
</body></html>
`;
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}

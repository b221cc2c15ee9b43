/**
 * The trace explorer page: one self-contained HTML file (inline CSS, the compiled script of
 * client/explorer.ts, the trace view gzip-compressed and base64-encoded; nothing is loaded from
 * the network, and the page has no form that sends anything anywhere). The script is compiled
 * from TypeScript when the page is written (TypeScript's own transpiler: type imports vanish,
 * nothing else is bundled).
 */
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import ts from "typescript";
import type { TraceView } from "./format.ts";

let compiled: string | undefined;

/** The page script, compiled once per process. */
function script(): string {
  if (compiled === undefined) {
    const source = readFileSync(new URL("./client/explorer.ts", import.meta.url), "utf8");
    const out = ts.transpileModule(source, {
      compilerOptions: {
        target: ts.ScriptTarget.ES2022,
        module: ts.ModuleKind.ESNext,
        verbatimModuleSyntax: true,
        removeComments: true,
      },
    });
    compiled = out.outputText;
  }
  return compiled;
}

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** The packed trace: gzip, then base64 (the page inflates it with the browser's DecompressionStream). */
export function packTrace(view: TraceView): string {
  return gzipSync(JSON.stringify(view)).toString("base64");
}

const style = `
* { box-sizing: border-box; }
body { font: 13px system-ui, sans-serif; margin: 0; color: #222; display: flex; flex-direction: column; height: 100vh; }
header { padding: 8px 12px 4px; border-bottom: 1px solid #ddd; }
h1 { font-size: 16px; margin: 0 0 2px; }
#notes { color: #555; font-size: 12px; overflow-wrap: anywhere; max-height: 22vh; overflow-y: auto; }
#notes details pre { max-height: 240px; overflow: auto; background: #f7f7f7; padding: 6px; }
#violation-banner { margin-top: 4px; padding: 4px 8px; border-radius: 4px; }
#violation-banner.bad { background: #ffebee; color: #b71c1c; }
#violation-banner.ok { background: #e8f5e9; color: #1b5e20; }
#toolbar { padding: 4px 12px; border-bottom: 1px solid #ddd; display: flex; gap: 6px; align-items: center; flex-wrap: wrap; }
#toolbar button { font: inherit; padding: 2px 8px; }
#toolbar .help { color: #666; font-size: 12px; margin-left: 8px; }
main { flex: 1; display: flex; min-height: 0; }
#diagram { flex: 3; overflow: auto; position: relative; border-right: 1px solid #ddd; cursor: pointer; }
#diagram-canvas { position: absolute; left: 0; top: 0; }
#details { flex: 2; overflow: auto; padding: 8px 12px; min-width: 380px; }
.step-text { font-family: ui-monospace, monospace; margin: 4px 0 6px; white-space: pre-wrap; }
.section h3 { font-size: 12px; margin: 10px 0 2px; color: #555; text-transform: uppercase; letter-spacing: .03em; }
.section ul { margin: 0; padding-left: 18px; font-family: ui-monospace, monospace; font-size: 12px; }
.lost { color: #c62828; }
.level { display: inline-block; padding: 0 5px; border-radius: 3px; color: #fff; font-family: system-ui, sans-serif; font-size: 11px; }
.level-voting { background: #1565c0; } .level-consensus { background: #6a1b9a; } .level-service { background: #2e7d32; }
.level-lease { background: #ef6c00; } .level-sometimes { background: #757575; }
a.rule { color: #0b57d0; }
.ruledoc { background: #f5f8ff; border-left: 3px solid #0b57d0; padding: 4px 8px; margin: 2px 0 6px; font-family: system-ui, sans-serif; font-size: 12px; white-space: normal; }
.where { color: #666; font-size: 11px; }
.violation { background: #ffebee; border-left: 4px solid #c62828; padding: 6px 8px; margin: 6px 0; }
.violation pre { white-space: pre-wrap; font-size: 11px; }
table#state { border-collapse: collapse; font-family: ui-monospace, monospace; font-size: 11px; width: 100%; }
#state th, #state td { border: 1px solid #e0e0e0; padding: 2px 4px; vertical-align: top; text-align: left; word-break: break-word; }
#state th.actor { background: #cfe3ff; }
#state td.changed { background: #fff59d; }
footer { border-top: 1px solid #ddd; }
#axis-bar { padding: 2px 12px; font-size: 12px; color: #555; display: flex; gap: 8px; align-items: center; }
#axis-bar { flex-wrap: wrap; }
#axis-hover { padding: 0 12px; min-height: 1.3em; font: 11px ui-monospace, monospace; color: #333; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
#axis-wrap { overflow: hidden; max-height: 40vh; overflow-y: auto; }
#axis { display: block; cursor: crosshair; }
.legend i { display: inline-block; width: 14px; height: 9px; margin: 0 3px 0 8px; vertical-align: middle; }
`;

const body = `
<header>
  <h1 id="title">loading the trace...</h1>
  <div id="notes"></div>
  <div id="violation-banner"></div>
</header>
<div id="toolbar">
  <button id="first" title="first step (Home)">|&lt;</button>
  <button id="back10" title="ten steps back (shift+left)">&lt;&lt;</button>
  <button id="back" title="previous step (left, k)">&lt;</button>
  <span>step <input id="jump" type="number" min="0" style="width:7em"> <span id="step-number">0</span> of <span id="step-count">0</span></span>
  <button id="forward" title="next step (right, j)">&gt;</button>
  <button id="forward10" title="ten steps on (shift+right)">&gt;&gt;</button>
  <button id="last" title="last step (End)">&gt;|</button>
  <button id="prev-related" title="previous step that matters to the violation (p)">prev relevant</button>
  <button id="next-related" title="next step that matters to the violation (n)">next relevant</button>
  <button id="to-violation" title="the violation (v)">violation</button>
  <label><input id="show-quiet" type="checkbox"> quiet steps (q)</label>
  <span class="help">keys: left/right or j/k step (shift: 10), n/p relevant steps, v violation, q quiet steps; click a row or the time axis</span>
</div>
<main>
  <div id="diagram"><canvas id="diagram-canvas"></canvas><div id="diagram-spacer"></div></div>
  <div id="details"></div>
</main>
<footer id="axis-footer">
  <div id="axis-bar">
    <button id="zoom-all">whole run</button><button id="zoom-step">zoom to step</button>
    <span>wheel zooms, drag pans, click jumps</span>
    <span class="legend"><i style="background:hsla(200,65%,45%,.85)"></i>holds the lease: would answer a read by lease (colour: ballot)<i style="background:hsla(200,65%,45%,.5);height:5px"></i>grant given<i style="background:rgba(156,39,176,.25)"></i>restart wait<i style="background:rgba(60,60,60,.55)"></i>down<i style="background:rgba(120,120,120,.35)"></i>paused<i style="background:rgba(211,47,47,.8);height:3px"></i>cut off<i style="background:rgba(211,47,47,.9)"></i>two leaseholders<i style="background:rgba(255,183,77,.4)"></i>fault</span>
    <span class="legend" id="ops-legend" hidden><i style="background:rgba(46,125,50,.9)"></i>write ok<i style="background:rgba(129,199,132,.9)"></i>read ok<i style="background:rgba(158,158,158,.9)"></i>failed (not executed)<i style="background:rgba(251,140,0,.55)"></i>unknown (drawn 5 s)<i style="background:#ff1744"></i>named by a violation</span>
  </div>
  <div id="axis-hover"></div>
  <div id="axis-wrap"><canvas id="axis"></canvas></div>
</footer>
`;

/** The whole page for one trace view. */
export function pageHtml(view: TraceView): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; connect-src data: blob:">
<title>${escape(view.title)}: paxos-lease trace explorer</title>
<style>${style}</style></head><body>
${body}
<script id="trace" type="application/octet-stream">${packTrace(view)}</script>
<script type="module">${script()}</script>
</body></html>
`;
}

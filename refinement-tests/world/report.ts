/**
 * Failure reports: the shrunk trace as numbered world steps in readable text, the same trace as a
 * Mermaid sequence diagram, the violation with both abstract states, and the replay command.
 * Written to a folder under out/ (gitignored); the caller prints the path and the command.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Failure } from "./run.ts";
import type { TraceEntry } from "./world.ts";

/** The violation as text: check, level, message, abstract states, expected action. */
export function describeFailure(f: Failure): string {
  const lines = [
    `${f.check} (${f.level}) failed at world step ${f.step}, true time ${Math.round(f.trueTime * 1000) / 1000} ms`,
    `  ${f.message}`,
  ];
  if (f.action !== undefined) lines.push(`  spec action: ${f.action}`);
  if (f.before !== undefined) lines.push("  abstract state before:", ...f.before.split("\n").map((l) => `    ${l}`));
  if (f.after !== undefined) lines.push("  abstract state after:", ...f.after.split("\n").map((l) => `    ${l}`));
  return lines.join("\n");
}

/** A tick that did nothing: left out of reports. */
function quiet(e: TraceEntry): boolean {
  return e.text.startsWith("tick ") && e.details.length === 0 && e.arrows.length === 0;
}

/** The trace as numbered lines: `12 deliver R1->R2 Accept b=(2,1) s=3 ...` and indented effects. */
export function traceText(trace: readonly TraceEntry[]): string {
  const out: string[] = [];
  for (const e of trace) {
    if (quiet(e)) continue;
    out.push(`${String(e.n).padStart(4)} t=${Math.round(e.t * 1000) / 1000} ${e.text}`);
    for (const d of e.details) out.push(`       ${d}`);
    for (const a of e.arrows)
      if (!a.label.startsWith("ok") && a.to.startsWith("R")) out.push(`       send ${a.from}->${a.to} ${a.label}`);
  }
  return out.join("\n");
}

function mermaidText(s: string): string {
  return s.replace(/[;#:<>]/g, (c) => ({ ";": ",", "#": "№", ":": " ", "<": "‹", ">": "›" })[c] ?? c);
}

/**
 * The trace as a Mermaid sequenceDiagram: one participant per replica and client, an arrow per
 * delivered message or client request, notes for faults, time and persisted records.
 */
export function traceMermaid(trace: readonly TraceEntry[], replicas: number, clients: readonly string[]): string {
  const out = ["sequenceDiagram"];
  for (let r = 1; r <= replicas; r++) out.push(`  participant R${r}`);
  for (const c of clients) out.push(`  participant ${c}`);
  for (const e of trace) {
    if (quiet(e)) continue;
    const label = mermaidText(`${e.n} ${e.text}`);
    if (e.from !== undefined && e.to !== undefined) {
      out.push(`  ${e.from}->>${e.to}: ${label}`);
    } else if (e.to !== undefined) {
      out.push(`  Note over ${e.to}: ${label}`);
    } else {
      out.push(`  Note over R1,R${replicas}: ${label}`);
    }
    for (const d of e.details) {
      if (d.startsWith("persist") || d.startsWith("crash") || d.startsWith("ALARM"))
        out.push(`  Note right of ${e.to ?? "R1"}: ${mermaidText(d)}`);
    }
    for (const a of e.arrows) if (!a.to.startsWith("R")) out.push(`  ${a.from}-->>${a.to}: ${mermaidText(a.label)}`);
  }
  return out.join("\n");
}

/** Everything a reader needs about one failure. */
export interface Report {
  readonly name: string;
  readonly failure: Failure;
  readonly replay: string;
  readonly scenario: string;
  readonly trace: readonly TraceEntry[];
  readonly replicas: number;
  readonly clients: readonly string[];
  /** The failing run as a regression scenario (refinement-tests/regressions/), ready to copy there. */
  readonly regression?: unknown;
}

/** Write the report's files under `dir/name`; returns the folder. */
export function writeReport(dir: string, r: Report): string {
  const folder = join(dir, r.name);
  mkdirSync(folder, { recursive: true });
  const summary = [describeFailure(r.failure), "", `replay: ${r.replay}`, ""].join("\n");
  writeFileSync(
    join(folder, "failure.txt"),
    `${summary}\nscenario (actions):\n${r.scenario}\n\ntrace:\n${traceText(r.trace)}\n`,
  );
  if (r.regression !== undefined)
    writeFileSync(join(folder, "regression.json"), `${JSON.stringify(r.regression, null, 1)}\n`);
  writeFileSync(join(folder, "trace.mmd"), `${traceMermaid(r.trace, r.replicas, r.clients)}\n`);
  writeFileSync(
    join(folder, "trace.md"),
    `# ${r.failure.check}\n\n\`\`\`\n${summary}\`\`\`\n\n\`\`\`mermaid\n${traceMermaid(r.trace, r.replicas, r.clients)}\n\`\`\`\n`,
  );
  return folder;
}

/**
 * `npm run view -- FILE [--out PAGE.html] [--json] [--no-open]`: the trace explorer. FILE is any
 * trace the project produces: a regression scenario or a failure report of `npm run check`
 * (its folder or regression.json), a nemesis run (its folder or report.json), a spec explorer
 * trace or any other `paxos-lease/view@1` document (docs/trace-explorer.md). Writes one
 * self-contained HTML page (default out/view/NAME.html) and opens it in the desktop's browser
 * when there is one. Exit status: 0 written, 1 the file cannot be shown, 2 bad arguments.
 */
import { spawn } from "node:child_process";
import { mkdirSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Command } from "commander";
import { loadView, ViewInputError } from "../view/load.ts";
import { pageHtml } from "../view/page.ts";

const program = new Command()
  .name("view")
  .description("Write (and open) the trace explorer page of a world run, regression, spec trace or nemesis run.")
  .argument("<file>", "the trace: a regression or regression.json, a nemesis folder or report.json, a view@1 document")
  .option("--out <page>", "where to write the page (default out/view/NAME.html)")
  .option("--no-open", "only write the page")
  .option("--json", "print what was written as JSON", false)
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
  .configureOutput({ writeErr: (s) => process.stderr.write(s) });

program.parse();
const file = program.args[0]!;
const opts = program.opts<{ out?: string; open: boolean; json: boolean }>();

const started = performance.now();
let view;
try {
  view = loadView(file);
} catch (error) {
  if (!(error instanceof ViewInputError)) throw error;
  process.stderr.write(`view: ${error.message}\n`);
  process.exit(1);
}
const name = view.title.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^-|-$/g, "") || "trace";
const out = opts.out ?? path.join("out", "view", `${name}.html`);
mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
writeFileSync(out, pageHtml(view));
const summary = {
  page: path.resolve(out),
  bytes: statSync(out).size,
  steps: view.steps.count,
  messages: view.messages.from.length,
  violation: view.violation === null ? null : `${view.violation.check}: ${view.violation.message}`,
  seconds: Math.round((performance.now() - started) / 10) / 100,
};
if (opts.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
else
  process.stdout.write(
    `view: ${summary.steps} steps, ${summary.messages} messages${summary.violation === null ? "" : `, ${view.violation!.check}`} -> ${out} (${Math.round(summary.bytes / 1024)} KB, ${summary.seconds} s)\n  open file://${summary.page}\n`,
  );
if (
  opts.open &&
  (process.env.DISPLAY !== undefined || process.env.WAYLAND_DISPLAY !== undefined || process.platform === "darwin")
) {
  const opener = process.platform === "darwin" ? "open" : "xdg-open";
  const child = spawn(opener, [summary.page], { stdio: "ignore", detached: true });
  child.on("error", () => process.stderr.write(`view: could not run ${opener}; open the page yourself\n`));
  child.unref();
}

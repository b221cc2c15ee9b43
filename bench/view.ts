/**
 * The trace explorer's page: how big, how fast to build, how fast to load and to step, in
 * Debian's Chromium (playwright-core). Targets: a two-minute nemesis run's page is at most a few
 * MB and stays responsive (a step with its redraw well under 100 ms). Inputs: the known
 * counterexample (regression mutant-grant-ignored) and, with --nemesis, a nemesis run's folder
 * (`npm run nemesis -- --minutes 2 --seed 42` writes out/nemesis/seed-42); with --screenshots,
 * the pages are also photographed for docs/.
 *
 * Usage: npm run bench:view -- [--nemesis DIR] [--screenshots DIR] [--json]
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { launchChromium } from "../impl/runtime/testing-browser.ts";
import { loadView } from "../refinement-tests/view/load.ts";
import { pageHtml } from "../refinement-tests/view/page.ts";
import { benchFlags } from "./lib/flags.ts";

interface Options {
  readonly nemesis: string | undefined;
  readonly screenshots: string | undefined;
  readonly json: boolean;
}

function parseOptions(): Options {
  const flags = benchFlags(
    { nemesis: { type: "string" }, screenshots: { type: "string" }, json: { type: "boolean", default: false } },
    `usage: npm run bench:view -- [--nemesis DIR] [--screenshots DIR] [--json] [--help]

The trace explorer's page in Chromium: its size, build, load and step times, for the known
counterexample and (--nemesis) a nemesis run's folder; --screenshots DIR photographs the pages.
`,
  );
  return { nemesis: flags.nemesis, screenshots: flags.screenshots, json: flags.json };
}

interface Measured {
  readonly input: string;
  readonly steps: number;
  readonly messages: number;
  readonly pageBytes: number;
  readonly buildSeconds: number;
  /** From navigation to the first complete drawing, ms (the page's own count, then the wall clock). */
  readonly loadMsInPage: number;
  readonly loadMsWall: number;
  /** One step forward with its redraw, ms (mean and worst of 40). */
  readonly stepMsMean: number;
  readonly stepMsMax: number;
  /** Scrolling the diagram to the middle of the trace, with its redraw, ms. */
  readonly scrollMs: number;
}

const regression = "refinement-tests/regressions/mutant-grant-ignored.json";

/** What the measuring code uses of the page's globals (this file is compiled without the DOM's types). */
interface PageGlobals {
  readonly document: {
    readonly body: { readonly dataset: Record<string, string | undefined> };
    getElementById(id: string): {
      scrollTop: number;
      readonly scrollHeight: number;
      dispatchEvent(e: unknown): boolean;
    };
  };
  requestAnimationFrame(callback: () => void): number;
  readonly Event: new (type: string) => unknown;
  readonly traceExplorer: {
    readonly explorer: {
      go(step: number): void;
      move(dir: number): void;
      readonly model: { readonly n: number; readonly v: { readonly violation: { readonly step: number } | null } };
    };
  };
}

async function measure(input: string, dir: string, shots: string | undefined, shotName: string): Promise<Measured> {
  const started = performance.now();
  const view = loadView(input);
  const html = pageHtml(view);
  const buildSeconds = (performance.now() - started) / 1000;
  const file = path.join(dir, `${shotName}.html`);
  fs.writeFileSync(file, html);
  const browser = await launchChromium((reason) => {
    throw new Error(reason);
  });
  if (browser === null) throw new Error("no Chromium");
  try {
    const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    const t0 = performance.now();
    await page.goto(`file://${file}`);
    await page.locator('body[data-rendered="true"]').waitFor({ timeout: 120_000 });
    const loadMsWall = performance.now() - t0;
    const loadMsInPage = Number(
      await page.evaluate(() => (globalThis as unknown as PageGlobals).document.body.dataset.loadMs),
    );
    const timings = await page.evaluate(async () => {
      const g = globalThis as unknown as PageGlobals;
      const ex = g.traceExplorer.explorer;
      // No named functions in here: tsx would wrap them in a helper the page does not have.
      ex.go(Math.floor(ex.model.n / 2));
      await new Promise<void>((resolve) => g.requestAnimationFrame(resolve));
      const steps: number[] = [];
      for (let i = 0; i < 40; i++) {
        const t = performance.now();
        ex.move(1);
        await new Promise<void>((resolve) => g.requestAnimationFrame(resolve));
        steps.push(performance.now() - t);
      }
      const diagram = g.document.getElementById("diagram");
      const t = performance.now();
      diagram.scrollTop = diagram.scrollHeight / 3;
      diagram.dispatchEvent(new g.Event("scroll"));
      await new Promise<void>((resolve) => g.requestAnimationFrame(resolve));
      return { steps, scrollMs: performance.now() - t };
    });
    if (errors.length > 0) throw new Error(`the page reported errors: ${errors.join("; ")}`);
    if (shots !== undefined) {
      await page.evaluate(() => {
        const ex = (globalThis as unknown as PageGlobals).traceExplorer.explorer;
        const v = ex.model.v.violation;
        ex.go(v === null || v.step < 0 ? Math.floor(ex.model.n / 2) : v.step);
      });
      await page.waitForTimeout(300);
      await page.screenshot({ path: path.join(shots, `trace-explorer-${shotName}.png`) });
    }
    return {
      input,
      steps: view.steps.count,
      messages: view.messages.from.length,
      pageBytes: Buffer.byteLength(html),
      buildSeconds: round(buildSeconds),
      loadMsInPage,
      loadMsWall: Math.round(loadMsWall),
      stepMsMean: round(timings.steps.reduce((a, b) => a + b, 0) / timings.steps.length),
      stepMsMax: round(Math.max(...timings.steps)),
      scrollMs: round(timings.scrollMs),
    };
  } finally {
    await browser.close();
  }
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

const options = parseOptions();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "paxos-lease-bench-view-"));
const results: Measured[] = [];
try {
  if (options.screenshots !== undefined) fs.mkdirSync(options.screenshots, { recursive: true });
  results.push(await measure(regression, dir, options.screenshots, "counterexample"));
  if (options.nemesis !== undefined) results.push(await measure(options.nemesis, dir, options.screenshots, "nemesis"));
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
const load = os.loadavg().map((x) => Math.round(x * 100) / 100);
if (options.json) process.stdout.write(`${JSON.stringify({ load, results }, null, 2)}\n`);
else {
  process.stdout.write(`trace explorer pages (load average ${load.join(", ")} on ${os.cpus().length} cores)\n`);
  for (const r of results)
    process.stdout.write(
      `  ${r.input}: ${r.steps} steps, ${r.messages} messages; page ${(r.pageBytes / 1e6).toFixed(2)} MB built in ${r.buildSeconds} s; loads in ${r.loadMsInPage} ms (${r.loadMsWall} ms wall); a step ${r.stepMsMean} ms (worst ${r.stepMsMax}); a scroll ${r.scrollMs} ms\n`,
    );
}

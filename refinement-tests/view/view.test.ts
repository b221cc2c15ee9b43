/**
 * The trace explorer: the trace-view format refuses what is inconsistent; a known
 * counterexample (mutant grant-ignored: two leaseholders) comes out with its violation, the
 * overlapping lease intervals, the spec actions of every level and the rules the core applied;
 * recording changes no decision; every rule has its doc paragraph; and the page, in Debian's
 * Chromium, steps with keys and buttons, highlights changes, and draws both leases.
 */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, test } from "vitest";
import { defaultRules, makeStep } from "../../impl/core/testing/index.ts";
import { launchChromium } from "../../impl/runtime/testing-browser.ts";
import { tempDir } from "../../impl/runtime/testing.ts";
import { regressions } from "../regressions/regressions.ts";
import { tracesFolder } from "../mutants/traces.ts";
import { runScenario } from "../world/run.ts";
import {
  decodeView,
  intervalKinds,
  listsPerStep,
  messageSteps,
  stateChanges,
  stepTimes,
  type TraceView,
} from "./format.ts";
import { loadView, ViewInputError } from "./load.ts";
import { operationColumns, type OperationSeen } from "./nemesis.ts";
import { pageHtml } from "./page.ts";
import { recordingRules, ruleCatalog, ruleDoc, type RuleCall } from "./rules.ts";
import { viewOfWorldRun } from "./world.ts";

const known = regressions().find((r) => r.name === "mutant-grant-ignored")!;
const view = viewOfWorldRun(known);

function leases(v: TraceView): { process: string; from: number; to: number; label: string }[] {
  const lease = intervalKinds.indexOf("lease");
  return v.intervals.process.flatMap((p, i) =>
    v.intervals.kind[i] === lease
      ? [
          {
            process: v.processes[p]!.name,
            from: v.intervals.from[i]!,
            to: v.intervals.to[i]!,
            label: v.strings[v.intervals.label[i]!]!,
          },
        ]
      : [],
  );
}

function stepTime(v: TraceView, step: number): number {
  return stepTimes(v)[step]! * 1000;
}

describe("trace view of a world run", () => {
  test("the known counterexample ends in its violation, with the steps that lead there", () => {
    expect(decodeView(JSON.parse(JSON.stringify(view)))).not.toBeTypeOf("string");
    const v = view.violation!;
    expect(v.check).toBe("AtMostOneLeaseholder");
    expect(v.step).toBe(view.steps.count - 1);
    expect(v.related).toContain(v.step);
    expect(v.related.length).toBeGreaterThan(3);
    expect(v.action).toBe("Acquire(p3)");
  });

  test("at the violation two replicas believe they hold the lease, in different ballots", () => {
    const at = stepTime(view, view.violation!.step);
    const holding = leases(view).filter((l) => l.from <= at && at < l.to);
    expect(holding.map((l) => l.process).sort()).toEqual(["R1", "R3"]);
    expect(new Set(holding.map((l) => l.label)).size).toBe(2);
  });

  test("the lease lanes are the leases the checker sees: a removed voter that trusts its lease but cannot read holds none", () => {
    const removed = regressions().find((r) => r.name === "removed-voter-believes-lease")!;
    const v = viewOfWorldRun(removed);
    expect(v.violation).toBeNull();
    const bars = leases(v);
    expect(bars.length).toBeGreaterThan(0);
    const overlapping = bars.filter((a) => bars.some((b) => a.process < b.process && a.from < b.to && b.from < a.to));
    expect(overlapping).toEqual([]);
  });

  test("steps name their spec actions at every level and the rules the core applied, with their docs", () => {
    const actions = new Set(listsPerStep(view, "actions").flatMap((list) => list.map((a) => a.split(":")[0]!)));
    const ruleLists = listsPerStep(view, "rules");
    const rules = new Set(ruleLists.flatMap((list) => list.map((r) => r.split(" ")[0]!)));
    expect([...actions].sort()).toEqual(expect.arrayContaining(["Lease", "Voting", "sometimes"]));
    expect([...rules]).toEqual(expect.arrayContaining(["L1", "L2", "L4", "L5"]));
    for (const label of rules) expect(view.rules.map((r) => r.label)).toContain(label);
    const last = view.violation!.step;
    expect(ruleLists[last]!.some((r) => r.startsWith("L2 leaseExpiry"))).toBe(true);
  });

  test("a replica's fields change only where a step changed them, and a receipt pairs with its send", () => {
    const messages = messageSteps(view);
    expect(messages.filter((m) => m.received >= 0).length).toBeGreaterThan(10);
    for (const m of messages) expect(m.received === -1 || m.received >= m.sent).toBe(true);
    const roles = stateChanges(view).filter((c) => c.field === "role");
    expect(roles.filter((r) => String(r.value).startsWith("leader")).map((r) => r.process)).toEqual(["R2", "R1", "R3"]);
    const executed = stateChanges(view).filter((c) => c.field === "executed" && c.process === "R1");
    expect(executed.every((c) => typeof c.value === "number")).toBe(true);
  });

  test("recording the rules changes no decision: the same run, step for step", () => {
    for (const r of regressions().filter((x) => x.mutant === null)) {
      const calls: RuleCall[] = [];
      const options = { replicas: r.replicas, liveness: r.liveness, record: true };
      const plain = runScenario(r.scenario, options);
      const recorded = runScenario(r.scenario, { ...options, step: makeStep(recordingRules(defaultRules, calls)) });
      const lines = (t: typeof plain.trace) => (t ?? []).map((e) => [e.t, e.text, ...e.details].join(" | "));
      expect(lines(recorded.trace), r.name).toEqual(lines(plain.trace));
      expect(recorded.failure).toEqual(plain.failure);
      expect(calls.length, r.name).toBeGreaterThan(100);
    }
  });
});

describe("files the explorer opens", () => {
  test("a mutant's committed catching trace opens at the violation it is kept for", () => {
    const file = path.join(tracesFolder, "grant-ignored.json");
    const expected = (JSON.parse(fs.readFileSync(file, "utf8")) as { expect: string }).expect;
    const v = loadView(file);
    expect(v.violation?.check).toBe(expected);
    expect(v.violation?.step).toBe(v.steps.count - 1);
  });

  test.each([5, 7])(
    "a check report of a %i-replica cluster opens with a column per replica (and the spares)",
    (replicas) => {
      const dir = tempDir("view-size");
      try {
        const file = path.join(dir, "regression.json");
        fs.writeFileSync(file, JSON.stringify({ ...known, name: "sizes", replicas, mutant: null, expect: "pass" }));
        const v = loadView(file);
        const names = v.processes.filter((p) => p.kind === "replica").map((p) => p.name);
        // The world keeps three spare replicas beside the members, for membership changes.
        expect(names).toEqual(Array.from({ length: replicas + 3 }, (_, i) => `R${i + 1}`));
        expect(v.violation).toBeNull();
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  test("a cluster size the world does not run is refused, naming the sizes it does", () => {
    const dir = tempDir("view-size");
    try {
      const file = path.join(dir, "regression.json");
      fs.writeFileSync(file, JSON.stringify({ ...known, replicas: 4 }));
      expect(() => loadView(file)).toThrow(ViewInputError);
      expect(() => loadView(file)).toThrow(/"replicas" must be 3, 5 or 7/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("trace view format", () => {
  const copy = (): TraceView => JSON.parse(JSON.stringify(view)) as TraceView;
  test.each([
    [
      "a message to a process that does not exist",
      (v: TraceView) => ((v.messages.to as number[])[0] = 99),
      "messages.to[0] = 99",
    ],
    [
      "a change of a field that does not exist",
      (v: TraceView) => ((v.changes.field as number[])[0] = 999),
      "changes.field[0]",
    ],
    ["time running backwards", (v: TraceView) => ((v.steps.dt as number[])[5] = -1), "steps.dt[5] is negative"],
    [
      "a step list that does not cover every step",
      (v: TraceView) => (v.steps.effects.count as number[]).pop(),
      "steps.effects.count has",
    ],
    [
      "a receipt after the last step",
      (v: TraceView) => ((v.messages.dreceived as number[])[0] = 10_000),
      "messages.dreceived[0]",
    ],
    ["a number change without its number", (v: TraceView) => (v.changes.dnumber as number[]).pop(), "changes.dnumber"],
    [
      "another format",
      (v: TraceView) => ((v as { format: string }).format = "paxos-lease/view@0"),
      "paxos-lease/view@1",
    ],
  ])("refuses %s, naming it", (_, spoil, message) => {
    const v = copy();
    spoil(v);
    expect(decodeView(v)).toContain(message);
  });
});

describe("client operations of a real run", () => {
  const ops: OperationSeen[] = [
    {
      client: "c2",
      input: { _tag: "put", key: "r1", value: "c2.1" },
      invoke: 5,
      complete: 9.5,
      outcome: "ok",
      output: { _tag: "ok" },
    },
    {
      client: "c1",
      input: { _tag: "get", key: "r1" },
      invoke: 2,
      complete: 12,
      outcome: "ok",
      output: { _tag: "value", value: "x".repeat(500) },
    },
    {
      client: "c1",
      input: { _tag: "append", key: "l0", value: "c1.2," },
      invoke: 20,
      outcome: "unknown",
      attempts: 3,
      note: "timeout",
    },
  ];
  const columns = operationColumns(ops, new Set([2]));
  const withOps = (): TraceView => ({
    ...(JSON.parse(JSON.stringify(view)) as TraceView),
    operations: operationColumns(ops, new Set([2])),
  });

  test("come in invocation order, each named by its place in the history, a long output cut to its end", () => {
    expect(columns.clients).toEqual(["c1", "c2"]);
    expect(columns.label.map((l) => l.split(" ")[0])).toEqual(["#1", "#0", "#2"]);
    expect(columns.dinvoke).toEqual([2000, 3000, 15_000]);
    expect(columns.duration).toEqual([10_000, 4500, -1]);
    expect(columns.outcome).toEqual([0, 0, 2]);
    expect(columns.read).toEqual([1, 0, 0]);
    expect(columns.label[0]!.length).toBeLessThan(150);
    expect(columns.label[0]).toContain("(506 chars) ...xxx");
    expect(columns.label[2]).toBe("#2 append(l0,c1.2,) -> unknown (3 attempts, timeout)");
    // The flagged operation is the history's #2, now third.
    expect(columns.flagged).toEqual([2]);
    expect(decodeView(withOps())).not.toBeTypeOf("string");
  });

  test.each([
    ["a client that does not exist", (o: Record<string, number[]>) => (o.client![0] = 5), "client index"],
    ["time running backwards", (o: Record<string, number[]>) => (o.dinvoke![2] = -1), "must not decrease"],
    ["a column of another length", (o: Record<string, number[]>) => o.duration!.pop(), "duration has 2 entries"],
    ["a flagged operation that does not exist", (o: Record<string, number[]>) => (o.flagged![0] = 3), "flagged"],
  ])("a view with %s is refused", (_, spoil, message) => {
    const v = withOps();
    spoil(v.operations as unknown as Record<string, number[]>);
    expect(decodeView(v)).toContain(`operations: `);
    expect(decodeView(v)).toContain(message);
  });
});

describe("rule docs", () => {
  test("every rule of impl/core has its paragraph in the docs", () => {
    for (const name of Object.keys(defaultRules) as (keyof typeof defaultRules)[]) {
      const doc = ruleDoc(name);
      expect(doc.text.length, name).toBeGreaterThan(60);
      expect(doc.where, name).toMatch(/^docs\/.+\.md, "/);
    }
    expect(Object.keys(ruleCatalog).sort()).toEqual(Object.keys(defaultRules).sort());
  });

  test("a rule the docs lost is an error, not an empty link", () => {
    expect(() => ruleDoc("leaseExpiry", () => "# nothing about leases")).toThrow(/no longer contains/);
  });
});

describe("the trace explorer page in Chromium", () => {
  test("steps with keys and buttons, highlights changes, draws both leases of the counterexample", async (context) => {
    const browser = await launchChromium((reason) => context.skip(reason));
    if (browser === null) return;
    const dir = tempDir("view");
    const file = path.join(dir, "page.html");
    fs.writeFileSync(file, pageHtml(view));
    try {
      const page = await browser.newPage({ viewport: { width: 1500, height: 950 } });
      const errors: string[] = [];
      page.on("pageerror", (error) => errors.push(error.message));
      page.on("request", (request) => {
        if (!request.url().startsWith("file:")) errors.push(`network request: ${request.url()}`);
      });
      await page.goto(`file://${file}`);
      await page.locator('body[data-rendered="true"]').waitFor({ timeout: 30_000 });
      const last = String(view.steps.count - 1);
      // It opens at the violation.
      expect(await page.locator("#step-number").textContent()).toBe(last);
      expect(await page.locator("#violation-banner").textContent()).toContain("AtMostOneLeaseholder");
      expect(await page.locator("#details .violation").count()).toBe(1);
      // Back with the key, and the state table marks what that step changed.
      await page.keyboard.press("ArrowLeft");
      const previous = Number(await page.locator("#step-number").textContent());
      expect(previous).toBeLessThan(Number(last));
      await page.locator("#first").click();
      expect(await page.locator("#step-number").textContent()).toBe("0");
      expect(await page.locator("#state td.changed").count()).toBeGreaterThan(3);
      await page.locator("#forward").click();
      expect(await page.locator("#step-number").textContent()).not.toBe("0");
      await page.keyboard.press("v");
      expect(await page.locator("#step-number").textContent()).toBe(last);
      await page.keyboard.press("p");
      expect(Number(await page.locator("#step-number").textContent())).toBe(view.violation!.related.at(-2));
      // The rules the step applied open their doc paragraph.
      await page.keyboard.press("v");
      await page.locator("#rules a.rule").first().click();
      expect(await page.locator("#rules .ruledoc:not([hidden])").textContent()).toMatch(/docs\/impl\.md/);
      // The time axis: at the violation, R1 and R3 both hold a lease, in two ballots.
      await page.locator("#zoom-step").click();
      await page.waitForTimeout(100);
      const bars = await page.evaluate(() => {
        const api = (
          globalThis as unknown as {
            traceExplorer: {
              explorer: { drawnBars: { process: string; kind: string; label: string; x: number; w: number }[] };
            };
          }
        ).traceExplorer;
        return api.explorer.drawnBars;
      });
      const leaseBars = bars.filter((b) => b.kind === "lease");
      const r1 = leaseBars.filter((b) => b.process === "R1");
      const r3 = leaseBars.filter((b) => b.process === "R3");
      expect(r1.length).toBeGreaterThan(0);
      expect(r3.length).toBeGreaterThan(0);
      const overlap = r1.some((a) => r3.some((b) => a.x < b.x + b.w && b.x < a.x + a.w && a.label !== b.label));
      expect(overlap).toBe(true);
      expect(errors).toEqual([]);
      const shot = path.join(dir, "explorer.png");
      await page.screenshot({ path: shot });
      expect(fs.statSync(shot).size).toBeGreaterThan(20_000);
    } finally {
      await browser.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * The HTML report of a non-linearizable history, in Debian's Chromium: written by
 * check-history for a stale read among concurrent clients, self-contained (no request leaves
 * the page), it draws every client's timeline with the operation that cannot be placed in
 * red, lists the minimised sub-history, and its button shows that sub-history alone.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checkHistoryMain } from "./check-history.ts";
import { launchChromium } from "./testing-browser.ts";

const dir = mkdtempSync(join(tmpdir(), "check-history-report-"));

/** Four clients: writes of 1, 2 and 3 in sequence, reads around them, and one read of 1 after 2 was written. */
function staleHistory(): string {
  const op = (client: string, input: object, invoke: number, complete: number, output: object) => ({
    client,
    input,
    invoke,
    outcome: "ok",
    complete,
    output,
  });
  const put = (v: string) => ({ _tag: "put", key: "x", value: v });
  const get = { _tag: "get", key: "x" };
  const ok = { _tag: "ok" };
  const val = (v: string | null) => ({ _tag: "value", value: v });
  const operations = [
    op("w", put("1"), 0, 2, ok),
    op("r1", get, 1, 3, val("1")),
    op("w", put("2"), 4, 6, ok),
    op("r2", get, 5, 7, val("2")),
    op("r3", get, 8, 9, val("1")),
    op("w", put("3"), 10, 12, ok),
    op("r1", get, 11, 13, val("3")),
    op("y", { _tag: "put", key: "y", value: "9" }, 0, 1, ok),
  ];
  const file = join(dir, "stale.json");
  writeFileSync(file, JSON.stringify({ format: "paxos-lease/history@1", operations }));
  return file;
}

describe("the HTML report of a non-linearizable history", () => {
  it("shows the timelines, the operation that cannot be placed and the minimised sub-history", async (context) => {
    let stdout = "";
    const status = await checkHistoryMain([staleHistory(), "--report", dir, "--json"], {
      out: (t) => (stdout += t),
      err: () => undefined,
    });
    expect(status).toBe(1);
    const result = JSON.parse(stdout) as { report: string; violations: { minimised: { id: number }[] }[] };
    // The stale read and the writes of 1 and 2 it contradicts; nothing else is needed.
    expect(result.violations[0]!.minimised.map((o) => o.id)).toEqual([0, 2, 4]);
    const html = readFileSync(result.report, "utf8");
    expect(html).not.toMatch(/\b(src|href)=/);

    const browser = await launchChromium((reason) => context.skip(reason));
    if (browser === null) return;
    try {
      const page = await browser.newPage();
      const requests: string[] = [];
      page.on("request", (r) => {
        if (!r.url().startsWith("file:")) requests.push(r.url());
      });
      await page.goto(`file://${result.report}`);
      expect(await page.locator("h2").first().textContent()).toMatch(/Key "x": not linearizable/);
      expect(await page.locator("svg .op").count()).toBe(7);
      expect(await page.locator("svg .op.stuck").count()).toBeGreaterThan(0);
      expect(await page.locator("ol.minimised li").count()).toBe(3);
      expect(await page.locator("svg .op.min").count()).toBe(3);
      const visible = (): Promise<number> => page.locator("svg .op:visible").count();
      expect(await visible()).toBe(7);
      await page.getByRole("button", { name: "Show only the minimised sub-history" }).click();
      expect(await visible()).toBe(3);
      await page.getByRole("button", { name: "Show every operation" }).click();
      expect(await visible()).toBe(7);
      if (process.env.REPORT_SCREENSHOT !== undefined)
        await page.screenshot({ path: process.env.REPORT_SCREENSHOT, fullPage: true });
      expect(requests).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});

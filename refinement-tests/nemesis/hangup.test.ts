/**
 * A hangup of the shell that started `npm run nemesis`: the command must not die on SIGHUP (Node's
 * default) and leave its replicas behind, one of them stopped by a `pause-leader` fault (they run in
 * sessions of their own, so no hangup reaches them). It stops injecting, continues and stops every
 * replica, writes the history and a report that says `interrupted`, and exits 129 with a message.
 * One short run of the command, hung up during its first fault.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { expect, it } from "vitest";
import type { NemesisReport } from "./run.ts";

const cli = path.join(import.meta.dirname, "..", "cli", "nemesis.ts");

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

it("SIGHUP during a pause-leader fault: every replica continued and stopped, the history and report written, exit 129", async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "nemesis-hangup-"));
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      cli,
      ...["--seed", "5", "--minutes", "0.2", "--kinds", "pause-leader", "--pace", "3", "--clients", "2"],
      ...["--spares", "0", "--warmup-ms", "0", "--out", out],
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk: string) => {
    // The first fault has stopped the leader: hang up now.
    if (!stderr.includes("fault: pause-leader") && (stderr + chunk).includes("fault: pause-leader"))
      child.kill("SIGHUP");
    stderr += chunk;
  });
  const status = await new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  try {
    expect(stderr, stderr).toContain("nemesis: SIGHUP: stopping the faults");
    expect(status, stderr).toBe(129);
    expect(stderr).toContain(`what it had is in ${out}`);
    const report = JSON.parse(fs.readFileSync(path.join(out, "report.json"), "utf8")) as NemesisReport;
    expect(report.ok).toBe(false);
    expect(report.interrupted).toMatch(/^SIGHUP at /);
    expect(report.faults.map((f) => f.kind)).toEqual(["pause-leader"]);
    expect(fs.existsSync(path.join(out, "history.json"))).toBe(true);
    // Every life ended by the harness, none left running (or stopped) behind it.
    expect(report.lives.length).toBeGreaterThanOrEqual(3);
    for (const life of report.lives) expect(alive(life.pid), `replica ${life.replica} pid ${life.pid}`).toBe(false);
    // The paused leader was continued and stopped cleanly, not killed stopped.
    for (const life of report.lives) expect(life.exit, JSON.stringify(life)).not.toMatch(/SIGKILL/);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}, 60_000);

/**
 * README's tour, run as written: the commands of its "A five-minute tour" section are taken
 * from README.md itself and run in order in a folder laid out like a fresh clone (the
 * checkout's package.json, sources, node_modules and build, and no data yet): `npm start` in the
 * background (stopped with Ctrl-C's SIGINT before the next one), every other line through bash,
 * each of which must succeed. It uses the ports `npm start` uses (7001-7005, 8001-8005), reserved
 * machine-wide first (`reserveFixedPorts`): two test runs on one machine take turns at the tour.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ensureCliBuilt } from "./build.ts";
import { projectRoot } from "./program.ts";
import { reserveFixedPorts, tempDir, waitFor } from "./testing.ts";

/** The shell lines of README's tour: each sh block's lines, comments and blank lines dropped. */
function tourLines(): string[] {
  const readme = fs.readFileSync(path.join(projectRoot, "README.md"), "utf8");
  // From "Run it" (npm start) through the tour.
  const start = readme.indexOf("## Run it");
  const tour = readme.indexOf("## A five-minute tour");
  const section = readme.slice(start, readme.indexOf("\n## ", tour + 1));
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((block) =>
    block[1]!
      .split("\n")
      .map((line) => line.replace(/\s+#\s.*$/, "").trim())
      .filter((line) => line !== ""),
  );
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

let clone: string;
let cluster: { child: ChildProcess; output: string[] } | null = null;
let releasePorts = (): void => undefined;
const tourPorts = [7001, 7002, 7003, 7004, 7005, 8001, 8002, 8003, 8004, 8005];

async function stopCluster(): Promise<void> {
  if (cluster === null) return;
  const { child } = cluster;
  cluster = null;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  // Ctrl-C: the terminal sends SIGINT to the whole process group (npm, sh and node).
  process.kill(-child.pid!, "SIGINT");
  await exited;
}

afterAll(async () => {
  await stopCluster();
  releasePorts();
  if (clone !== undefined) fs.rmSync(clone, { recursive: true, force: true });
}, 30_000);

describe("README's tour", () => {
  it("runs as written, every command succeeding", async () => {
    releasePorts = await reserveFixedPorts(tourPorts, 240_000);
    for (const port of tourPorts)
      expect(await portFree(port), `port ${port}, which npm start uses, is taken on this machine`).toBe(true);
    await ensureCliBuilt();
    clone = tempDir("readme-tour");
    for (const entry of ["package.json", "package-lock.json", "node_modules", "dist", "impl", "spec", "tsconfig.json"])
      fs.symlinkSync(path.join(projectRoot, entry), path.join(clone, entry));
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("PAXOS_LEASE_")));
    const lines = tourLines();
    expect(lines.filter((l) => l.startsWith("npm start")).length).toBeGreaterThanOrEqual(2);
    const ran: { line: string; stdout: string }[] = [];
    for (const line of lines) {
      if (line.startsWith("npm start")) {
        await stopCluster();
        const child = spawn("bash", ["-c", line], {
          cwd: clone,
          env,
          detached: true,
          stdio: ["ignore", "pipe", "pipe"],
        });
        const output: string[] = [];
        for (const stream of [child.stdout, child.stderr]) stream.on("data", (c: Buffer) => output.push(c.toString()));
        cluster = { child, output };
        await waitFor(
          `the cluster of '${line}' serving`,
          () => (output.join("").includes("status page:") ? true : undefined),
          90_000,
          100,
        );
        continue;
      }
      // Earlier lines that set shell variables (auth=(...)) stay in effect, as in one terminal.
      const prelude = ran.filter((r) => /^[A-Za-z_]\w*=/.test(r.line)).map((r) => r.line);
      const result = spawnSync("bash", ["-c", [...prelude, line].join("\n")], {
        cwd: clone,
        env,
        encoding: "utf8",
        timeout: 120_000,
      });
      expect(
        result.status,
        `'${line}' failed:\n${result.stdout}\n${result.stderr}\n${cluster?.output.join("").slice(-3000)}`,
      ).toBe(0);
      ran.push({ line, stdout: result.stdout });
    }
    // The command's own output: the last line (npm prints its banner first).
    const out = (command: string): string =>
      ran
        .find((r) => r.line.endsWith(command))
        ?.stdout.trim()
        .split("\n")
        .at(-1) ?? "(not run)";
    expect(out("get greeting")).toBe("hello");
    expect(out('append greeting ", world"')).toMatch(/hello, world/);
    const members = spawnSync(process.execPath, ["dist/paxos-lease.mjs", "members", "--json"], {
      cwd: clone,
      env,
      encoding: "utf8",
    });
    expect(members.status, members.stderr).toBe(0);
    type Config = { voters: number[]; learners: number[] };
    const doc = JSON.parse(members.stdout) as { inForce: Config; pending: Config[] };
    const latest = doc.pending.at(-1) ?? doc.inForce;
    expect({ voters: latest.voters, learners: latest.learners }).toEqual({ voters: [1, 2, 5], learners: [] });
  }, 600_000);
});

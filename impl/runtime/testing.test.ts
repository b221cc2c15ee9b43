/** The port allocator of the tests: ports outside the ephemeral range, reserved machine-wide. */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { freePorts, portLockDir, reserveFixedPorts } from "./testing.ts";

/** Run a snippet in another Node.js process that imports this folder's testing.ts. */
function inAnotherProcess(code: string): { status: number | null; stdout: string; stderr: string } {
  const script = `import * as t from ${JSON.stringify(path.join(import.meta.dirname, "testing.ts"))};\n${code}`;
  return spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    encoding: "utf8",
    timeout: 60_000,
  });
}

describe("freePorts", () => {
  it("hands out distinct ports below the ephemeral range, each reserved by this process", async () => {
    const ports = await freePorts(5);
    expect(new Set(ports).size).toBe(5);
    const [low] = fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    for (const port of ports) {
      expect(port).toBeLessThan(low!);
      expect(fs.readFileSync(path.join(portLockDir, String(port)), "utf8")).toBe(String(process.pid));
    }
  });

  it("never hands out a port another live process reserved, and takes over one a dead process left", async () => {
    const [mine] = await freePorts(1);
    const other = inAnotherProcess(
      `try { await t.reserveFixedPorts([${mine}], 0); console.log("got"); } catch (e) { console.log("refused"); }`,
    );
    expect(other.stdout.trim(), other.stderr).toBe("refused");
    // A reservation whose process is gone (a pid that cannot exist) is taken over.
    const stale = 40_000 + Math.floor(Math.random() * 1000);
    fs.mkdirSync(portLockDir, { recursive: true });
    fs.writeFileSync(path.join(portLockDir, String(stale)), "999999999");
    const release = await reserveFixedPorts([stale], 0);
    expect(fs.readFileSync(path.join(portLockDir, String(stale)), "utf8")).toBe(String(process.pid));
    release();
    expect(fs.existsSync(path.join(portLockDir, String(stale)))).toBe(false);
  });

  it("releases a process's reservations when it exits", () => {
    const child = inAnotherProcess(`const ports = await t.freePorts(3); console.log(ports.join(","));`);
    expect(child.status, child.stderr).toBe(0);
    const ports = child.stdout.trim().split(",");
    expect(ports).toHaveLength(3);
    for (const port of ports) expect(fs.existsSync(path.join(portLockDir, port))).toBe(false);
  });
});

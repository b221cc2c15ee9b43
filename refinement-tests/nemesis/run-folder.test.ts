/**
 * A nemesis run's folder: a run checks every trace, history and log it finds there, so it starts
 * only in an empty or new folder, and refuses one that holds an earlier run's files.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { freshRunFolder } from "./run.ts";

const made: string[] = [];
afterEach(() => {
  for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});
function scratch(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nemesis-folder-"));
  made.push(dir);
  return dir;
}

describe("freshRunFolder", () => {
  it("makes a new folder, nested", () => {
    const out = path.join(scratch(), "out", "nemesis", "seed-7");
    freshRunFolder(out);
    expect(fs.readdirSync(out)).toEqual([]);
  });

  it("takes an empty folder", () => {
    const out = scratch();
    freshRunFolder(out);
    expect(fs.existsSync(out)).toBe(true);
  });

  it("refuses a folder holding an earlier run's files, naming it, and leaves them", () => {
    const out = scratch();
    fs.mkdirSync(path.join(out, "cluster"));
    fs.writeFileSync(path.join(out, "history.json"), "[]");
    expect(() => freshRunFolder(out)).toThrow(`${out} holds an earlier run's files`);
    expect(fs.readdirSync(out).sort()).toEqual(["cluster", "history.json"]);
  });
});

/**
 * A helper thread's young generation follows `helperThreadLimits` even in a process started with
 * `--max-semi-space-size` (as every replica is, program.ts), while the main thread keeps the
 * flag's. Without clearing the flag, V8 prefers it to the worker's limit: the control below.
 */
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";

const threadLimits = new URL("./thread-limits.ts", import.meta.url).href;

/** Starts a worker that allocates short-lived objects, then reports its young generation's size in MiB. */
const script = `
import { Worker } from "node:worker_threads";
import v8 from "node:v8";
import { helperThreadLimits } from ${JSON.stringify(threadLimits)};
const churn = \`Promise.all([import("node:v8"), import("node:worker_threads")]).then(([{ default: v8 }, { parentPort }]) => {
  let a = []; for (let i = 0; i < 4e5; i++) { a.push({ i }); if (a.length > 100000) a = []; }
  parentPort.postMessage(v8.getHeapSpaceStatistics().find((s) => s.space_name === "new_space").space_size / 1048576);
});\`;
const young = (resourceLimits) => new Promise((done) => new Worker(churn, { eval: true, resourceLimits }).once("message", done));
const control = await young({ maxYoungGenerationSizeMb: 3 });
const helper = await young(helperThreadLimits());
let a = []; for (let i = 0; i < 4e5; i++) { a.push({ i }); if (a.length > 100000) a = []; }
const main = v8.getHeapSpaceStatistics().find((s) => s.space_name === "new_space").space_size / 1048576;
console.log(JSON.stringify({ control, helper, main }));
`;

describe("helper threads' young generation", () => {
  it("is the helpers' own under --max-semi-space-size, and the main thread keeps the flag's", () => {
    const out = execFileSync(
      process.execPath,
      ["--max-semi-space-size=4", "--import", "tsx", "--input-type=module", "-e", script],
      { encoding: "utf8" },
    );
    const { control, helper, main } = JSON.parse(out) as Record<string, number>;
    // The flag's two semi-spaces of 4 MiB win over a worker's limit unless cleared first.
    expect(control).toBe(8);
    expect(helper).toBeLessThanOrEqual(2);
    expect(main).toBe(8);
  });
});

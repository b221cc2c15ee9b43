import { availableParallelism } from "node:os";
import { defineConfig } from "vitest/config";

/**
 * The files that start real processes (replicas over TCP with SQLite, nemesis runs, Chromium on a
 * cluster's page): their checks wait for leaderships, connections and catch-ups within bounds, so
 * they run one at a time, after the others, with nothing else of the suite beside them. Two at a
 * time would be faster: these files took 426 s on two workers against 695 s on one, back to back
 * at load 15 to 17, because they mostly wait for processes, timers and fsyncs. But of two full
 * runs with two workers (which also need `sequence.groupOrder: 1` here, or they join the
 * in-process group), one was green (833 s of vitest) and one lost a race in peer-flags.test.ts (a
 * log line read before the replica's stdout had delivered it; it now waits for it). One worker
 * stays until two full runs with two are green.
 */
const realProcesses = ["impl/runtime/**/*.test.ts", "refinement-tests/nemesis/**/*.test.ts"];

export default defineConfig({
  test: {
    // Compile dist/paxos-lease.mjs from the current sources once: every process a test starts runs it.
    globalSetup: ["impl/runtime/build.ts"],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: "forks",
    reporters: ["default"],
    projects: [
      {
        extends: true,
        test: {
          name: "in-process",
          include: [
            "spec/**/*.test.ts",
            "impl/**/*.test.ts",
            "proofs/**/*.test.ts",
            "refinement-tests/**/*.test.ts",
            "bench/**/*.test.ts",
          ],
          exclude: ["**/node_modules/**", ...realProcesses],
          // Vitest's default is one worker per core but one: a single worker on CI's 2 cores. These
          // files are deterministic (seeded) and CPU-bound: two workers share the two cores.
          maxWorkers: Math.max(2, availableParallelism() - 1),
          // A worker loads the modules once for all its files instead of once per file (loading
          // was more than half of test:fast's CPU): nothing in these files mocks a module or
          // leaves global state behind, and each passes either way.
          isolate: false,
        },
      },
      { extends: true, test: { name: "real-processes", include: realProcesses, maxWorkers: 1 } },
    ],
  },
});

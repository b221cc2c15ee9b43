import { availableParallelism } from "node:os";
import { defineConfig } from "vitest/config";

/**
 * The files that start real processes (replicas over TCP with SQLite, nemesis runs, Chromium on a
 * cluster's page): their checks wait for leaderships, connections and catch-ups within bounds, so
 * they run one at a time, after the others, with nothing else of the suite beside them (as every
 * file ran when there was one worker). Under two workers at load 11 to 22 they lost such races
 * in three of three full runs (a different file each time). Those tests now wait for what they
 * need (a spare connected, the current leader, every replica caught up) and the transport bug one
 * of them found is fixed; on two workers at load 14 to 21, one full run failed on that bug and one
 * run of these files passed. One worker stays until full runs show two both green and faster.
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

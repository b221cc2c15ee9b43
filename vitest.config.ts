import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: [
      "spec/**/*.test.ts",
      "impl/**/*.test.ts",
      "proofs/**/*.test.ts",
      "refinement-tests/**/*.test.ts",
      "bench/**/*.test.ts",
    ],
    // Compile dist/paxos-lease.mjs from the current sources once: every process a test starts runs it.
    globalSetup: ["impl/runtime/build.ts"],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: "forks",
    reporters: ["default"],
  },
});

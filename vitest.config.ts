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
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: "forks",
    reporters: ["default"],
  },
});

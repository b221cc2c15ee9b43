// Type-aware lint for the whole project: no floating promises, no `any`.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

// The rules seam of impl/core: every protocol rule is called through the `rules` object that
// `makeStep(rules)` is given, never directly, so that a broken variant (refinement-tests/mutants/)
// that replaces one rule breaks exactly that rule everywhere it applies. The names are the keys of
// `defaultRules` (impl/core/rules.ts; rules.test.ts checks the two lists agree). Ballots are
// ordered and compared for equality only through `rules.compareBallots` (ballot.ts has no other
// order helper). impl/core/testing/ re-exports the rules for tests and is not the core.
const coreRules = [
  "compareBallots",
  "quorumSize",
  "canPromise",
  "grantUntilFor",
  "restartWaitUntil",
  "leaseFrom",
  "leaseExpiry",
  "canServeLeaseRead",
  "yieldsToHigherBallot",
  "mayCampaign",
  "mergeRevealed",
  "phase2aValue",
  "learnableFromLeader",
  "checkpointDue",
  "grantCountedFrom",
  "nextToExecute",
  "sessionAnswer",
  "executeCommand",
  "openSession",
  "executeFeatures",
  "governsFrom",
  "promiseCoversFrom",
  "promiseOmitsThrough",
  "mayHelpLeader",
  "retirement",
  "snapshotDue",
  "readsAtRest",
  "transferUseful",
  "verifySnapshot",
];
const seam = "impl/core calls its rules through `rules` (rules.ts), so that a mutant replacing one reaches every use";

export default tseslint.config(
  { ignores: ["node_modules/**", "data/**", "out/**", "dist/**", "coverage/**", "**/*.js", "!eslint.config.js"] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true, allowBoolean: true }],
      "@typescript-eslint/no-unnecessary-condition": "off",
      "@typescript-eslint/no-non-null-assertion": "off",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-confusing-void-expression": "off",
      "@typescript-eslint/no-unnecessary-type-parameters": "off",
      // Prettier wraps code at 120 columns; comments are held to the same. Long texts (messages,
      // CSS and HTML of a page, patterns) stay whole, so that they can be searched for.
      "max-len": [
        "error",
        {
          code: 120,
          tabWidth: 2,
          ignoreStrings: true,
          ignoreTemplateLiterals: true,
          ignoreRegExpLiterals: true,
          ignoreUrls: true,
        },
      ],
    },
  },
  { files: ["eslint.config.js"], ...tseslint.configs.disableTypeChecked },
  {
    files: ["impl/core/**/*.ts"],
    ignores: [
      "impl/core/rules.ts",
      "impl/core/ballot.ts",
      "impl/core/index.ts",
      "impl/core/testing/**",
      "impl/core/**/*.test.ts",
    ],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              group: ["./*", "../*", "../../spec/*"],
              importNames: [...coreRules],
              message: seam,
            },
          ],
        },
      ],
      "no-restricted-syntax": [
        "error",
        {
          selector: `CallExpression[callee.type='Identifier'][callee.name=/^(${[...coreRules].join("|")})$/]`,
          message: seam,
        },
      ],
    },
  },
);

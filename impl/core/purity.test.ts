/**
 * impl/core is pure and sans-I/O (README.md, "Layout"): its source never imports
 * node:*, the runtime, proofs/ or refinement-tests/, and never touches a clock, randomness,
 * timers, promises or the process. Checked on the source text, so that a violation is caught
 * where it is written, not when it first misbehaves. Tests (*.test.ts) may read their golden files.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return name.endsWith(".ts") && !name.endsWith(".test.ts") ? [path] : [];
  });
}

/** Checked on the code with string literals in place (import paths are strings). */
const forbiddenImports: [RegExp, string][] = [
  [/from\s+"node:/, "imports node:*"],
  [/from\s+"[./]*\/(runtime|proofs|refinement-tests)\//, "imports the runtime, proofs/ or refinement-tests/"],
];

/** Checked on the code without string literals (a message may be tagged "Promise"). */
const forbidden: [RegExp, string][] = [
  [/\bDate\b/, "reads the wall clock (Date)"],
  [/\bperformance\.now\b/, "reads a clock (performance.now)"],
  [/\bMath\.random\b/, "draws unseeded randomness (Math.random)"],
  [/\bset(Timeout|Interval|Immediate)\b/, "uses a timer"],
  [/\bPromise\b|\basync\b|\bawait\b/, "uses promises"],
  [/\bprocess\./, "touches the process"],
];

/** Source text without comments, so that documentation may name what the code must not do. */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
}

function violations(text: string): string[] {
  const withStrings = code(text);
  const withoutStrings = withStrings.replace(/"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`(?:[^`\\]|\\.)*`/g, '""');
  return [
    ...forbiddenImports.filter(([pattern]) => pattern.test(withStrings)).map(([, what]) => what),
    ...forbidden.filter(([pattern]) => pattern.test(withoutStrings)).map(([, what]) => what),
  ];
}

describe("impl/core purity", () => {
  const root = import.meta.dirname;
  const files = sources(root);

  it("has source files to check", () => {
    expect(files.length).toBeGreaterThan(10);
  });

  for (const file of files) {
    it(relative(root, file), () => {
      expect(violations(readFileSync(file, "utf8"))).toEqual([]);
    });
  }

  it("the check itself fails on an impure line", () => {
    expect(violations('import { readFileSync } from "node:fs";\nconst t = Date.now();\n')).toEqual([
      "imports node:*",
      "reads the wall clock (Date)",
    ]);
    expect(violations('const m = { _tag: "Promise" }; // Date\n')).toEqual([]);
  });
});

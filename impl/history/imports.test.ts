/**
 * impl/history is pure and imports only spec/ (README.md, "Layout"): the
 * runtime's CLI, proofs/ and refinement-tests/ all import it, so it must never reach back into
 * any of them, nor into node:* (the checker runs anywhere, worker threads included, through a
 * driver in impl/runtime). Checked on the source text, where a violation is written.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

/** Import specifiers a source may use: its own folder, spec/, and the effect library. */
const allowed = [/^\.\/[^/]+\.ts$/, /^\.\.\/\.\.\/spec\/[^/]+\.ts$/, /^effect$/];

function specifiers(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
  return [...code.matchAll(/\b(?:from|import)\s*\(?\s*"([^"]+)"/g)].map((m) => m[1]!);
}

function violations(text: string): string[] {
  return specifiers(text).filter((s) => !allowed.some((pattern) => pattern.test(s)));
}

describe("impl/history imports only spec/", () => {
  const root = import.meta.dirname;
  const files = readdirSync(root).filter((name) => name.endsWith(".ts") && !name.endsWith(".test.ts"));

  it("has source files to check", () => {
    expect(files.length).toBeGreaterThanOrEqual(2);
  });

  for (const file of files) {
    it(file, () => {
      expect(violations(readFileSync(join(root, file), "utf8"))).toEqual([]);
    });
  }

  it("the check itself refuses node:*, the runtime, proofs/ and refinement-tests/", () => {
    expect(
      violations(
        [
          'import { readFileSync } from "node:fs";',
          'import { World } from "../../refinement-tests/world/world.ts";',
          'import type { Step } from "../../proofs/refinement.ts";',
          'const m = await import("../runtime/cli.ts");',
          'import { kv } from "../../spec/kv.ts";',
          'import { Schema } from "effect";',
        ].join("\n"),
      ),
    ).toEqual(["node:fs", "../../refinement-tests/world/world.ts", "../../proofs/refinement.ts", "../runtime/cli.ts"]);
  });
});

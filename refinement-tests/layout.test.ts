/**
 * Imports point one way (README.md, "Layout"): `spec/` imports nothing of the project;
 * `impl/core` and `impl/history` import only `spec/`; `impl/runtime` reaches the core through its
 * public surface (`impl/core/index.ts`) alone; `proofs/` reads `spec/` and `impl/core`, never the
 * runtime or the world it checks; only `refinement-tests/` and `bench/` may import anything.
 * Checked on every source that is not a test (tests may borrow generators and harnesses from
 * anywhere), on the import paths as written.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, test } from "vitest";

const root = path.resolve(import.meta.dirname, "..");

/** Folder -> the folders its sources may import from (besides itself and packages). */
const mayImport: Record<string, readonly string[]> = {
  spec: [],
  "impl/core": ["spec"],
  "impl/history": ["spec"],
  "impl/runtime": ["spec", "impl/core/index.ts", "impl/history"],
  proofs: ["spec", "impl/core"],
};

function sources(dir: string): string[] {
  return readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((entry) => {
    const rel = path.join(dir, entry.name);
    if (entry.isDirectory()) return sources(rel);
    return entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts") ? [rel] : [];
  });
}

/** The project files `file` imports (resolved from the repository's root); packages and node:* left out. */
function projectImports(file: string, text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
  return [...code.matchAll(/\b(?:from|import)\s*\(?\s*"(\.[^"]+)"/g)].map((m) =>
    path.relative(root, path.resolve(root, path.dirname(file), m[1]!)),
  );
}

/** The imports of `file`, a source of `folder`, that break the direction. */
function wrongWay(folder: string, file: string, text: string): string[] {
  const allowed = [folder, ...mayImport[folder]!];
  return projectImports(file, text).filter(
    (target) => !allowed.some((a) => target === a || target.startsWith(`${a}/`)),
  );
}

describe("imports point one way", () => {
  for (const folder of Object.keys(mayImport)) {
    test(`${folder} imports only ${[folder, ...mayImport[folder]!].join(", ")}`, () => {
      const files = sources(folder);
      expect(files.length).toBeGreaterThan(0);
      const bad = files.flatMap((f) =>
        wrongWay(folder, f, readFileSync(path.join(root, f), "utf8")).map((t) => `${f} imports ${t}`),
      );
      expect(bad).toEqual([]);
    });
  }

  test("the check refuses each wrong way, and allows the right ones", () => {
    const runtime = "impl/runtime/driver.ts";
    expect(
      wrongWay(
        "impl/runtime",
        runtime,
        [
          'import { step } from "../core/index.ts";',
          'import { slotMapGet } from "../core/slot-map.ts";',
          'import { World } from "../../refinement-tests/world/world.ts";',
          'import { kv } from "../../spec/kv.ts";',
          'import { check } from "../history/linearizability.ts";',
          'const m = await import("../../proofs/leases.ts");',
          'import { Schema } from "effect";',
        ].join("\n"),
      ),
    ).toEqual(["impl/core/slot-map.ts", "refinement-tests/world/world.ts", "proofs/leases.ts"]);
    expect(wrongWay("spec", "spec/voting.ts", 'import { step } from "../impl/core/index.ts";')).toEqual([
      "impl/core/index.ts",
    ]);
    expect(wrongWay("proofs", "proofs/leases.ts", 'import { x } from "../impl/runtime/driver.ts";')).toEqual([
      "impl/runtime/driver.ts",
    ]);
  });
});

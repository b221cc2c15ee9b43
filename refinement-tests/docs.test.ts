/**
 * The docs stay true to the code: every file a doc or a code comment names exists (by its path,
 * or a top-level document by its bare name), every helper it names in backquotes (`slotMapGet`)
 * is defined somewhere in the code, every golden scenario it names is in impl/core/testdata,
 * nothing cites an issue number (they mean nothing to a reader), and docs/README.md's reading
 * path takes in every doc and proof note.
 */
import { readdirSync, readFileSync, existsSync } from "node:fs";
import path from "node:path";
import { describe, expect, test } from "vitest";

const root = path.resolve(new URL("..", import.meta.url).pathname);
const codeFolders = ["spec", "impl", "proofs", "refinement-tests", "bench"];

function walk(dir: string, keep: (file: string) => boolean): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...walk(rel, keep));
    else if (keep(rel)) out.push(rel);
  }
  return out;
}

const sources = codeFolders.flatMap((d) => walk(d, (f) => f.endsWith(".ts")));
const docs = [
  "README.md",
  ...walk("docs", (f) => f.endsWith(".md")),
  ...walk("proofs", (f) => f.endsWith(".md")),
  ...walk("impl", (f) => f.endsWith(".md")),
];
const text = new Map([...sources, ...docs].map((f) => [f, readFileSync(path.join(root, f), "utf8")]));

/** The comments of a TypeScript file (line and block), which are prose like the docs. */
function comments(source: string): string {
  return (source.match(/\/\/.*|\/\*[\s\S]*?\*\//g) ?? []).join("\n");
}

/** Every identifier the code defines or uses, outside comments. */
const identifiers = new Set(
  sources.flatMap(
    (f) =>
      text
        .get(f)!
        .replace(/\/\/.*|\/\*[\s\S]*?\*\//g, "")
        .match(/[A-Za-z_$][\w$]*/g) ?? [],
  ),
);

/** Each document and each file's comments, as prose to check. */
const prose: [string, string][] = [
  ...docs.map((f): [string, string] => [f, text.get(f)!]),
  ...sources.map((f): [string, string] => [f, comments(text.get(f)!)]),
];

describe("the docs name only what exists", () => {
  test("every file a doc or comment names is in the repository", () => {
    const missing: string[] = [];
    for (const [file, body] of prose) {
      for (const [named] of body.matchAll(
        /\b(?:spec|impl|proofs|refinement-tests|bench|docs)\/[\w./-]+\.(?:ts|md|txt|json)\b/g,
      ))
        if (!existsSync(path.join(root, named))) missing.push(`${file} names ${named}`);
    }
    expect(missing).toEqual([]);
  });

  test("every top-level document named by its bare name (README.md) is in the repository", () => {
    const missing: string[] = [];
    for (const [file, body] of prose)
      for (const [named] of body.matchAll(/(?<![\w/.-])[A-Z][A-Z-]+\.md\b/g))
        if (!existsSync(path.join(root, named)) && !existsSync(path.join(root, path.dirname(file), named)))
          missing.push(`${file} names ${named}`);
    expect(missing).toEqual([]);
  });

  test("every helper named in backquotes is defined in the code", () => {
    const missing: string[] = [];
    for (const [file, body] of prose) {
      for (const [, quoted] of body.matchAll(/`([^`\n]+)`/g)) {
        // camelCase names of four letters or more (`rN` in `[rN]` is a placeholder, not a helper)
        for (const [name] of quoted!.matchAll(/\b[a-z][a-z0-9]*[A-Z][A-Za-z0-9]*\b/g))
          if (name.length >= 4 && !identifiers.has(name)) missing.push(`${file} names \`${name}\``);
      }
    }
    expect(missing).toEqual([]);
  });

  test("every golden scenario named is in impl/core/testdata", () => {
    const missing: string[] = [];
    for (const [file, body] of prose)
      for (const [, name] of body.matchAll(/`([a-z0-9]+(?:-[a-z0-9]+)*\.txt)`/g))
        if (!existsSync(path.join(root, "impl/core/testdata", name!))) missing.push(`${file} names ${name}`);
    expect(missing).toEqual([]);
  });

  test("nothing cites an issue number", () => {
    const cited = prose.flatMap(([file, body]) =>
      [...body.matchAll(/(?<!etcd )\bissues? #?\d+/gi)].map((m) => `${file}: ${m[0]}`),
    );
    expect(cited).toEqual([]);
  });

  test("docs/README.md's reading path takes in every doc and proof note", () => {
    const path = text.get("docs/README.md") ?? "";
    const notes = docs.filter((f) => f !== "docs/README.md" && f !== "README.md");
    expect(notes.filter((f) => !path.includes(f.startsWith("docs/") ? f.slice("docs/".length) : f))).toEqual([]);
  });
});

/**
 * Every table of teeth names every mutant of the zoo: each Markdown table whose first column is
 * `mutant` in docs/refinement.md ("Teeth per rule", per replica count and tuning) and in
 * docs/performance.md (runs to the first catch; "The bug zoo, by engine") has a row for each
 * mutant of refinement-tests/mutants/index.ts, and no row for a mutant the zoo does not have. A new
 * mutant lands with its rows, measured by `npm run mutants` (`--only NAME`) and, for the per-tuning
 * tables, `npm run mutants:table`. (docs/changing-the-protocol.md's table lists the mutants of its
 * own section only, and is not one of them.) A row's name may be backquoted and followed by a note
 * in brackets: `late-first-copy-runs (feature level 3; ...)`.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { mutants } from "./index.ts";

const docs = ["docs/refinement.md", "docs/performance.md"];

interface MutantTable {
  /** 1-based line of the header. */
  readonly line: number;
  readonly header: string;
  readonly rows: readonly string[];
}

/** The tables of `markdown` whose first column is `mutant`, with the mutant each row names. */
function mutantTables(markdown: string): MutantTable[] {
  const lines = markdown.split("\n");
  const tables: MutantTable[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i]!.startsWith("| mutant |")) continue;
    const rows: string[] = [];
    let j = i + 2;
    for (; j < lines.length && lines[j]!.startsWith("|"); j++) {
      const first = lines[j]!.split("|")[1]!.trim();
      rows.push(first.replaceAll("`", "").replace(/ \(.*$/, ""));
    }
    tables.push({ line: i + 1, header: lines[i]!, rows });
    i = j;
  }
  return tables;
}

/** Per table of `markdown`: the mutants of `zoo` it has no row for, and the rows naming none of them. */
function gaps(markdown: string, zoo: readonly string[]): { line: number; missing: string[]; unknown: string[] }[] {
  return mutantTables(markdown).map((t) => ({
    line: t.line,
    missing: zoo.filter((name) => !t.rows.includes(name)),
    unknown: t.rows.filter((row) => !zoo.includes(row)),
  }));
}

describe("the tables of teeth", () => {
  const zoo = mutants.map((m) => m.name);

  for (const doc of docs)
    it(`${doc}: every table of mutants has a row for each mutant of the zoo, and none for another`, () => {
      const text = readFileSync(new URL(`../../${doc}`, import.meta.url), "utf8");
      const found = gaps(text, zoo);
      expect(found.length, `${doc} has no table of mutants`).toBeGreaterThan(0);
      for (const g of found) {
        expect(g.missing, `${doc}:${g.line} lacks rows (npm run mutants -- --only NAME)`).toEqual([]);
        expect(g.unknown, `${doc}:${g.line} has rows of no mutant of the zoo`).toEqual([]);
      }
    });

  it("finds a table that lacks a mutant, and one whose row names another, and reads notes and backquotes", () => {
    const doc = [
      "text",
      "",
      "| mutant | runs | caught by |",
      "| --- | ---: | --- |",
      "| `a` | 1 | X |",
      "| b (feature level 3; hunted at load 8) | 2 | Y |",
      "",
      "| mutant | 3, own: explorer | random |",
      "| --- | --- | --- |",
      "| a | 0.1 s, 3 states | 0.2 s, 1 run |",
      "| z | 0.1 s, 3 states | 0.2 s, 1 run |",
      "",
      "| other | column |",
      "| --- | --- |",
      "| c | 1 |",
    ].join("\n");
    expect(gaps(doc, ["a", "b"])).toEqual([
      { line: 3, missing: [], unknown: [] },
      { line: 8, missing: ["b"], unknown: ["z"] },
    ]);
    expect(gaps(doc, ["a", "b", "c"]).map((g) => g.missing)).toEqual([["c"], ["b", "c"]]);
  });
});

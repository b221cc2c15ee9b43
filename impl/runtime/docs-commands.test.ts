/**
 * Every `paxos-lease` command that README.md and docs/ show is one the CLI accepts: each is
 * parsed by the program's own parser (actions stubbed), so a renamed flag or a missing
 * argument in the docs fails here instead of in an operator's terminal.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { CommanderError, type Command } from "commander";
import { describe, expect, it } from "vitest";
import { buildProgram } from "./cli.ts";
import { projectRoot } from "./program.ts";

/** Shell words of one command line: quotes grouped, `#` comments, redirections and subshell parentheses dropped. */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | null = null;
  let quote: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote !== null) {
      if (c === quote) quote = null;
      else word = (word ?? "") + c;
    } else if (c === '"' || c === "'") {
      quote = c;
      word ??= "";
    } else if (c === "#" && word === null) break;
    else if (c === ">" || c === "|" || c === ")" || c === ";") break;
    else if (/\s/.test(c)) {
      if (word !== null) words.push(word);
      word = null;
    } else word = (word ?? "") + c;
  }
  if (word !== null) words.push(word);
  return words;
}

/** The `paxos-lease` commands of a Markdown text: in sh blocks (with `\` continuations) and inline code. */
function commandsOf(markdown: string): string[][] {
  const commands: string[][] = [];
  const add = (text: string, inline = false): void => {
    const at = text.search(/(?:^|[\s(])(?:paxos-lease|npm run paxos-lease --) /);
    if (at < 0) return;
    const rest = text.slice(at).trim().replace(/^\(/, "");
    // Placeholders are not commands: `paxos-lease replica ...`, `<dir>`.
    if (/\.\.\.|<[a-z]/.test(rest)) return;
    const words = shellWords(rest);
    const argv = words[0] === "npm" ? words.slice(4) : words.slice(1);
    // Prose names a command (`paxos-lease replica`): it must exist, its options are elsewhere.
    commands.push(inline && argv.length === 1 ? [...argv, "--help"] : argv);
  };
  for (const block of markdown.matchAll(/```sh\n([\s\S]*?)```/g))
    for (const line of block[1]!.replace(/\\\n\s*/g, " ").split("\n")) add(line);
  const prose = markdown.replace(/```[\s\S]*?```/g, "");
  for (const inline of prose.matchAll(/`([^`\n]+)`/g))
    if (/^(?:paxos-lease|npm run paxos-lease --) \S/.test(inline[1]!) && !inline[1]!.includes("|"))
      add(inline[1]!, true);
  return commands;
}

/** Parse `argv` as the CLI would, running no action; the parser's complaint, or null. */
function complaint(argv: string[]): string | null {
  const program = buildProgram();
  if (argv.length === 2 && argv[1] === "--help")
    return program.commands.some((c) => c.name() === argv[0]) ? null : `unknown command '${argv[0]}'`;
  let output = "";
  const quiet = (command: Command): void => {
    command.exitOverride();
    command.configureOutput({ writeErr: (t) => (output += t), writeOut: () => undefined });
    if (command.commands.length === 0) command.action(() => undefined);
    for (const sub of command.commands) quiet(sub);
  };
  quiet(program);
  try {
    program.parse(argv, { from: "user" });
    return null;
  } catch (error) {
    if (error instanceof CommanderError && /help/.test(error.code)) return null;
    return output.trim() || String(error);
  }
}

const docs = [
  "README.md",
  ...readdirSync(path.join(projectRoot, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => path.join("docs", f)),
];

describe("the docs' commands", () => {
  it("finds commands in code blocks and inline code, and parses shell words", () => {
    expect(shellWords(`paxos-lease tokens create --name "billing service" > f # note`)).toEqual([
      "paxos-lease",
      "tokens",
      "create",
      "--name",
      "billing service",
    ]);
    expect(
      commandsOf(
        "```sh\npaxos-lease get k \\\n  --json   # c\nls\n```\nthen `npm run paxos-lease -- members`, `paxos-lease replica ...`",
      ),
    ).toEqual([
      ["get", "k", "--json"],
      ["members", "--help"],
    ]);
    expect(complaint(["frobnicate", "--help"])).toMatch(/unknown command 'frobnicate'/);
    expect(complaint(["members", "replace", "--id", "5"])).toMatch(/required option '--old <n>'/);
    expect(complaint(["get", "k", "--json"])).toBeNull();
  });

  it.each(docs)("%s shows only commands the CLI accepts", (file) => {
    const commands = commandsOf(readFileSync(path.join(projectRoot, file), "utf8"));
    const refused = commands
      .map((argv) => ({ argv, why: complaint(argv) }))
      .filter((c) => c.why !== null)
      .map((c) => `paxos-lease ${c.argv.join(" ")}: ${c.why}`);
    expect(refused).toEqual([]);
  });

  it("checks a good number of them", () => {
    const all = docs.flatMap((file) => commandsOf(readFileSync(path.join(projectRoot, file), "utf8")));
    expect(all.length).toBeGreaterThan(30);
  });
});

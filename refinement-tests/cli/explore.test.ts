/**
 * The explore CLI, run in-process: TLC's numbers in its report and JSON, clear usage errors
 * with exit code 2, and exit code 1 with the shortest trace when a (broken) spec fails.
 */
import { describe, expect, test } from "vitest";
import { paxosChecks } from "../../proofs/mappings.ts";
import { Phase2bIgnoringMaxBal } from "../mutants/spec/paxos.ts";
import { decodeView, messageSteps, stateChanges } from "../view/format.ts";
import { main, parseOptions, run, usage, type Options } from "./explore.ts";
import type { Io } from "./explore-io.ts";

function capture(): Io & { readonly stdout: string[]; readonly stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  let t = 0;
  return { stdout, stderr, out: (l) => stdout.push(l), err: (l) => stderr.push(l), now: () => (t += 10) };
}

function cli(...argv: string[]) {
  const io = capture();
  const code = main(argv, io);
  return { code, out: io.stdout.join("\n"), err: io.stderr.join("\n") };
}

describe("npm run explore", () => {
  test("--help prints the usage and exits 0", () => {
    expect(cli("--help")).toEqual({ code: 0, out: usage, err: "" });
  });

  test("reports TLC's numbers for MCPaxos, what was checked, and that the search was exhaustive", () => {
    const { code, out } = cli("--spec", "paxos", "--acceptors", "1", "--values", "1", "--max-ballot", "1");
    expect(code).toBe(0);
    expect(out).toContain("Explored Paxos with 1 acceptor, 1 value, ballots 0..1, quorums {a1}");
    expect(out).toMatch(/distinct states\s+25\n/);
    expect(out).toMatch(/states generated\s+82\n/);
    expect(out).toMatch(/depth\s+9\n/);
    expect(out).toContain(
      "Checked on every distinct state: TypeOK, Inv!2, Inv!3(1b), Inv!3(2a), V!VotesSafe, V!OneValuePerBallot",
    );
    expect(out).toContain(
      "Checked on every transition: Paxos => Voting\n  Phase1a |-> stutter: 50\n  Phase1b |-> IncreaseMaxBal: 7",
    );
    expect(out).toContain("No violation: the search was exhaustive.");
  });

  test("--json gives MCVoting's numbers with --symmetry, and MCConsensus's with --init IInv", () => {
    const voting = cli(
      "--spec",
      "voting",
      "--acceptors",
      "3",
      "--values",
      "2",
      "--max-ballot",
      "1",
      "--symmetry",
      "--json",
    );
    expect(voting.code).toBe(0);
    const v = JSON.parse(voting.out) as Record<string, unknown>;
    expect([v.distinctStates, v.statesGenerated, v.depth, v.complete, v.violation]).toEqual([77, 451, 11, true, null]);
    expect(v.invariants).toEqual(["TypeOK", "VotesSafe", "OneVote", "OneValuePerBallot"]);
    const consensus = JSON.parse(cli("--spec", "consensus", "--values", "3", "--init", "IInv", "--json").out) as Record<
      string,
      unknown
    >;
    expect([consensus.distinctStates, consensus.statesGenerated, consensus.depth]).toEqual([4, 7, 1]);
    const lease = JSON.parse(
      cli("--spec", "lease", "--holders", "2", "--time-max", "6", "--lease-ticks", "3", "--json").out,
    ) as Record<string, unknown>;
    expect([lease.distinctStates, lease.violation]).toEqual([103, null]);
  });

  test("says when --max-states cut the search short", () => {
    const { code, out } = cli("--spec", "paxos", "--max-states", "10");
    expect(code).toBe(0);
    expect(out).toContain("the search stopped at --max-states 10: it is not exhaustive");
  });

  test("--impl explores impl/core and reports what it covered, in text and JSON", () => {
    const text = cli("--impl", "--depth", "2");
    expect(text.code).toBe(0);
    expect(text.out).toContain("Explored impl/core: --replicas 3 --requests 1 --reads 1 --depth 2");
    expect(text.out).toMatch(/distinct states\s+\d+\n/);
    expect(text.out).toContain("it is exhaustive only within them");
    const json = cli("--impl", "--depth", "2", "--json");
    const r = JSON.parse(json.out) as { distinctStates: number; depth: number; violation: unknown };
    expect([json.code, r.depth, r.violation]).toEqual([0, 2, null]);
    expect(r.distinctStates).toBeGreaterThan(1);
  });

  test.each([
    [["--spec", "raft"], "unknown spec 'raft' (expected one of: paxos, voting, consensus, lease)"],
    [["--acceptors", "two"], "--acceptors must be an integer, got 'two'"],
    [["--acceptors", "2.5"], "--acceptors must be an integer, got '2.5'"],
    [["--acceptors", "9"], "--acceptors must be between 1 and 5, got 9"],
    [["--max-ballot=-1"], "--max-ballot must be between 0 and 4, got -1"],
    [["--max-ballot", "-1"], "Option '--max-ballot' argument is ambiguous"],
    [["--spec", "lease", "--acceptors", "3"], "--acceptors applies only to --spec paxos or voting, not lease"],
    [["--spec", "paxos", "--holders", "3"], "--holders applies only to --spec lease, not paxos"],
    [["--quorum", "1"], "--quorum 1 of 3 acceptors breaks QuorumAssumption: two disjoint sets of 1 exist"],
    [["--quorum", "4"], "--quorum 4 is impossible with 3 acceptors"],
    [["--init", "IInv"], "--init applies only to --spec consensus, not paxos"],
    [["--bogus"], "Unknown option '--bogus'"],
    [["--impl", "--depth", "0"], "--depth must be between 1 and 10000, got 0"],
    [["--impl", "--replicas", "4"], "--replicas must be 3, 5 or 7, got 4"],
    [["--impl", "--mode", "dfs"], "--mode must be one of bfs, random, got 'dfs'"],
    [["--impl", "--acceptors", "3"], "Unknown option '--acceptors'"],
  ])("%j is a usage error: exit 2 and a clear sentence", (argv, message) => {
    const { code, err, out } = cli(...argv);
    expect(code).toBe(2);
    expect(out).toBe("");
    expect(err).toContain(`explore: ${message}`);
    expect(err).toContain("--help");
  });

  test("a violation exits 1 and prints the shortest trace (here: a broken Paxos of refinement-tests/mutants/spec/)", () => {
    const options = parseOptions(["--spec", "paxos", "--max-ballot", "1"]) as Options;
    const spec = new Phase2bIgnoringMaxBal({ acceptors: 3, values: 2, maxBallot: 1 });
    const io = capture();
    expect(run({ title: spec.name, spec, checks: paxosChecks(spec) }, options, io)).toBe(1);
    const out = io.stdout.join("\n");
    expect(out).toContain("Step check Paxos => Voting fails on the last step");
    expect(out).toContain("Shortest trace (8 states):");
    expect(out).toContain("8: <Phase2b(a1) on 2a(0, v1)>");
  });

  test("a violation's trace is written for the trace explorer, and the command that opens it printed", () => {
    const options = parseOptions(["--spec", "paxos", "--max-ballot", "1", "--out", "somewhere"]) as Options;
    const spec = new Phase2bIgnoringMaxBal({ acceptors: 3, values: 2, maxBallot: 1 });
    const files = new Map<string, string>();
    const io = { ...capture(), writeFile: (file: string, text: string) => files.set(file, text) };
    expect(run({ title: spec.name, spec, checks: paxosChecks(spec) }, options, io)).toBe(1);
    const file = "somewhere/paxos-Paxos-Voting.view.json";
    expect(io.stdout.at(-1)).toBe(`Step through the trace: npm run view -- ${file}`);
    const view = decodeView(JSON.parse(files.get(file)!));
    if (typeof view === "string") throw new Error(view);
    expect(view.violation?.check).toBe("Paxos => Voting");
    expect(view.source.replay).toBe("npm run explore -- --spec paxos --max-ballot 1 --out somewhere");
    // The last step is a1's Phase2b on the 2a of ballot 0, which b0 sent.
    const last = messageSteps(view).filter((m) => m.received === view.steps.count - 1);
    expect(last.map((m) => `${m.from}->${m.to} ${m.label}`)).toEqual(["b0->a1 2a(0, v1)"]);
    const maxBal = stateChanges(view).filter((c) => c.process === "a1" && c.field === "maxBal");
    expect(maxBal.map((c) => c.value)).toEqual(["-1", "0", "1", "0"]);
  });
});

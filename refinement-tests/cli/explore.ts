/**
 * `npm run explore -- --spec paxos|voting|consensus|lease [options]`: exhaustive exploration
 * of one spec with its invariants on every distinct state and its refinement mappings on
 * every transition, reporting the numbers the way TLC does (distinct states, states
 * generated, depth) so they can be compared with TLC's.
 *
 * Exit codes: 0 no violation, 1 a violation (its shortest trace is printed), 2 usage error.
 * Progress goes to stderr about once a second; `--json` prints one JSON object on stdout.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { paxosChecks, votingChecks } from "../../proofs/mappings.ts";
import { Consensus } from "../../spec/consensus.ts";
import { acceptorName, majorityQuorums, subsetsOfSize, type BallotConstants } from "../../spec/constants.ts";
import {
  explore,
  formatViolation,
  type ExploreProgress,
  type ExploreResult,
  type StepCheck,
  type Violation,
} from "../../spec/explore.ts";
import { Lease } from "../../spec/lease.ts";
import { CompactPaxos } from "../../spec/compact/paxos.ts";
import type { Spec } from "../../spec/state-machine.ts";
import { Voting } from "../../spec/voting.ts";
import { viewOfSpecTrace } from "../view/spec.ts";
import { rerunIfStale } from "./bundle.ts";
import { implMain } from "./explore-impl.ts";
import {
  integerFlag,
  parseFlags,
  perSecond,
  printRows,
  progressPrinter,
  UsageError,
  catchUsage,
  type Io,
} from "./explore-io.ts";

const specNames = ["paxos", "voting", "consensus", "lease"] as const;
type SpecName = (typeof specNames)[number];

/** Limits of the CLI: beyond them the state spaces are too large to explore. */
const limits = {
  acceptors: { min: 1, max: 5, default: 3, specs: ["paxos", "voting"] },
  values: { min: 1, max: 3, default: 2, specs: ["paxos", "voting", "consensus"] },
  "max-ballot": { min: 0, max: 4, default: 2, specs: ["paxos", "voting"] },
  quorum: { min: 1, max: 5, default: 0, specs: ["paxos", "voting"] },
  holders: { min: 1, max: 4, default: 2, specs: ["lease"] },
  "time-max": { min: 1, max: 24, default: 6, specs: ["lease"] },
  "lease-ticks": { min: 1, max: 24, default: 3, specs: ["lease"] },
  "max-states": { min: 1, max: 50_000_000, default: 20_000_000, specs: specNames },
} as const satisfies Record<string, { min: number; max: number; default: number; specs: readonly SpecName[] }>;
type NumericFlag = keyof typeof limits;

export const usage = `Usage: npm run explore -- --spec paxos|voting|consensus|lease [options]
       npm run explore -- --impl [options]   (impl/core itself: npm run explore -- --impl --help)

Explores every reachable state of a spec breadth first (as TLC does), checks its invariants
on every distinct state and its refinement mappings on every transition, and prints the
shortest trace to the first violation.

Options:
  --spec NAME         paxos | voting | consensus | lease (default paxos)
  --acceptors N       paxos, voting: |Acceptor|, ${limits.acceptors.min}..${limits.acceptors.max} (default ${limits.acceptors.default})
  --values N          paxos, voting, consensus: |Value|, ${limits.values.min}..${limits.values.max} (default ${limits.values.default})
  --max-ballot N      paxos, voting: Ballot = 0..N, ${limits["max-ballot"].min}..${limits["max-ballot"].max} (default ${limits["max-ballot"].default})
  --quorum N          paxos, voting: quorums are all sets of N acceptors (default: smallest majority)
  --init Init|IInv    consensus: Init (chosen = {}) or MCConsensus's IInv (default Init)
  --holders N         lease: holders p1..pN, ${limits.holders.min}..${limits.holders.max} (default ${limits.holders.default})
  --time-max N        lease: true time runs 0..N ticks, ${limits["time-max"].min}..${limits["time-max"].max} (default ${limits["time-max"].default})
  --lease-ticks N     lease: lease duration D in ticks, ${limits["lease-ticks"].min}..${limits["lease-ticks"].max} (default ${limits["lease-ticks"].default})
  --symmetry          count states up to permutations of acceptors and values (holders for
                      lease), like TLC's SYMMETRY; off by default, so counts match TLC without it
  --no-refinement     skip the refinement checks (Paxos => Voting, Paxos => Consensus,
                      Voting => Consensus)
  --max-states N      stop after N distinct states (default ${limits["max-states"].default})
  --out DIR           where a violation's trace view goes (default out/explore)
  --json              print the result as one JSON object on stdout
  -h, --help          this text

Exit codes: 0 no violation, 1 violation found, 2 usage error.`;

export interface Options {
  readonly spec: SpecName;
  readonly numbers: Readonly<Record<NumericFlag, number>>;
  readonly init: "Init" | "IInv";
  readonly symmetry: boolean;
  readonly refinement: boolean;
  readonly json: boolean;
  /** Folder for a violation's trace view. */
  readonly out: string;
  /** The command line, for the replay line of a trace view. */
  readonly argv: readonly string[];
}

/** Parse and validate the command line; throws UsageError with a sentence for the user. */
export function parseOptions(argv: readonly string[]): Options | "help" {
  const values = parseFlags(argv, {
    spec: { type: "string" },
    ...Object.fromEntries(Object.keys(limits).map((flag) => [flag, { type: "string" as const }])),
    init: { type: "string" },
    symmetry: { type: "boolean" },
    "no-refinement": { type: "boolean" },
    json: { type: "boolean" },
    out: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help === true) return "help";
  const specText = (values.spec as string | undefined) ?? "paxos";
  if (!(specNames as readonly string[]).includes(specText))
    throw new UsageError(`unknown spec '${specText}' (expected one of: ${specNames.join(", ")})`);
  const spec = specText as SpecName;
  const numbers = {} as Record<NumericFlag, number>;
  for (const flag of Object.keys(limits) as NumericFlag[]) {
    const limit = limits[flag];
    const text = values[flag] as string | undefined;
    if (text === undefined) {
      numbers[flag] = limit.default;
      continue;
    }
    if (!(limit.specs as readonly SpecName[]).includes(spec))
      throw new UsageError(`--${flag} applies only to --spec ${limit.specs.join(" or ")}, not ${spec}`);
    numbers[flag] = integerFlag(flag, text, limit.min, limit.max);
  }
  const init = (values.init as string | undefined) ?? "Init";
  if (init !== "Init" && init !== "IInv") throw new UsageError(`--init must be Init or IInv, got '${init}'`);
  if (values.init !== undefined && spec !== "consensus")
    throw new UsageError(`--init applies only to --spec consensus, not ${spec}`);
  if (numbers.quorum !== 0) {
    const n = numbers.acceptors;
    if (numbers.quorum > n) throw new UsageError(`--quorum ${numbers.quorum} is impossible with ${n} acceptors`);
    if (2 * numbers.quorum <= n)
      throw new UsageError(
        `--quorum ${numbers.quorum} of ${n} acceptors breaks QuorumAssumption: two disjoint sets of ${numbers.quorum} exist`,
      );
  }
  return {
    spec,
    numbers,
    init,
    symmetry: values.symmetry === true,
    refinement: values["no-refinement"] !== true,
    json: values.json === true,
    out: (values.out as string | undefined) ?? path.join("out", "explore"),
    argv: [...argv],
  };
}

/** A spec with the checks to run on it, ready to explore. */
export interface Job<S, A> {
  readonly title: string;
  readonly spec: Spec<S, A>;
  readonly checks: readonly StepCheck<S, A>[];
}
/** A Job whose state and action types are hidden (continuation-passing keeps them typed). */
type AnyJob = <R>(k: <S, A>(job: Job<S, A>) => R) => R;
const pack =
  <S, A>(job: Job<S, A>): AnyJob =>
  (k) =>
    k(job);

function ballotConstants(o: Options): BallotConstants {
  const n = o.numbers.acceptors;
  const quorums = o.numbers.quorum === 0 ? majorityQuorums(n) : subsetsOfSize(n, o.numbers.quorum);
  return { acceptors: n, values: o.numbers.values, maxBallot: o.numbers["max-ballot"], quorums };
}

function describeBallots(k: BallotConstants): string {
  const quorums = (k.quorums ?? []).map((q) => `{${q.map(acceptorName).join(",")}}`).join(" ");
  return `${plural(k.acceptors, "acceptor")}, ${plural(k.values, "value")}, ballots 0..${k.maxBallot}, quorums ${quorums}`;
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

function prepare(o: Options): AnyJob {
  switch (o.spec) {
    case "paxos": {
      const k = ballotConstants(o);
      const paxos = new CompactPaxos(k);
      return pack({
        title: `Paxos with ${describeBallots(k)}`,
        spec: paxos,
        checks: o.refinement ? paxosChecks(paxos) : [],
      });
    }
    case "voting": {
      const k = ballotConstants(o);
      const voting = new Voting(k);
      return pack({
        title: `Voting with ${describeBallots(k)}`,
        spec: voting,
        checks: o.refinement ? votingChecks(voting) : [],
      });
    }
    case "consensus":
      return pack({
        title: `Consensus with ${plural(o.numbers.values, "value")}, initial predicate ${o.init}`,
        spec: new Consensus({ values: o.numbers.values, init: o.init }),
        checks: [],
      });
    case "lease": {
      const c = { holders: o.numbers.holders, timeMax: o.numbers["time-max"], leaseTicks: o.numbers["lease-ticks"] };
      return pack({
        title: `Lease with ${plural(c.holders, "holder")}, time 0..${c.timeMax}, lease duration ${plural(c.leaseTicks, "tick")}`,
        spec: new Lease(c),
        checks: [],
      });
    }
  }
}

/** Run the CLI; returns the exit code. `--impl` and `--replay` go to the explorer of impl/core. */
export function main(argv: readonly string[], io: Io): number {
  if (argv.includes("--impl") || argv.some((a) => a === "--replay" || a.startsWith("--replay=")))
    return implMain(argv, io);
  const prepared = catchUsage(
    io,
    "npm run explore -- --help",
    () => {
      const options = parseOptions(argv);
      return options === "help" ? options : { options, job: prepare(options) };
    },
    (e) => e instanceof RangeError,
  );
  if (prepared === undefined) return 2;
  if (prepared === "help") {
    io.out(usage);
    return 0;
  }
  return prepared.job((j) => run(j, prepared.options, io));
}

/** Explore one job and report; returns the exit code (0 no violation, 1 violation). */
export function run<S, A>(job: Job<S, A>, o: Options, io: Io): number {
  const started = io.now();
  const cpuStarted = io.cpu?.();
  const onProgress = progressPrinter<ExploreProgress>(
    io,
    (p, s) =>
      `${p.distinct} distinct, ${p.generated} generated, depth ${p.depth}, ${p.queued} queued, ${s.toFixed(1)} s`,
  );
  const result = explore(job.spec, {
    symmetry: o.symmetry,
    checks: job.checks,
    maxStates: o.numbers["max-states"],
    onProgress,
    progressEvery: 16_384,
  });
  const seconds = (io.now() - started) / 1000;
  const cpuSeconds = cpuStarted === undefined ? undefined : io.cpu!() - cpuStarted;
  const viewFile = result.violation === undefined ? undefined : writeView(job, o, result.violation, io);
  if (o.json)
    io.out(JSON.stringify({ ...(toJson(job, o, result, seconds, cpuSeconds) as object), view: viewFile ?? null }));
  else {
    report(job, o, result, seconds, cpuSeconds, io);
    if (viewFile !== undefined) io.out(`Step through the trace: npm run view -- ${viewFile}`);
  }
  return result.violation === undefined ? 0 : 1;
}

/** Write the violation's trace as a trace view (refinement-tests/view/); returns its file, if written. */
function writeView<S, A>(job: Job<S, A>, o: Options, violation: Violation<S>, io: Io): string | undefined {
  if (io.writeFile === undefined) return undefined;
  const view = viewOfSpecTrace(job.spec, violation.trace, violation, {
    title: `${job.spec.name}: ${violation.check}`,
    notes: [`Explored ${job.title}${o.symmetry ? ", up to symmetry" : ""}`],
    replay: ["npm run explore --", ...o.argv].join(" "),
  });
  const file = path.join(o.out, `${o.spec}-${violation.check.replace(/[^A-Za-z0-9]+/g, "-")}.view.json`);
  io.writeFile(file, JSON.stringify(view));
  return file;
}

function toJson<S, A>(
  job: Job<S, A>,
  o: Options,
  r: ExploreResult<S>,
  seconds: number,
  cpuSeconds: number | undefined,
): unknown {
  return {
    spec: o.spec,
    title: job.title,
    symmetry: o.symmetry,
    distinctStates: r.distinct,
    statesGenerated: r.generated,
    depth: r.depth,
    transitions: r.transitions,
    elapsedSeconds: seconds,
    cpuSeconds: cpuSeconds ?? null,
    distinctStatesPerSecond: perSecond(r.distinct, seconds),
    complete: r.complete,
    invariants: r.invariantsChecked,
    refinements: r.stepChecks,
    violation:
      r.violation === undefined
        ? null
        : {
            kind: r.violation.kind,
            check: r.violation.check,
            message: r.violation.message,
            trace: r.violation.trace.map((step) => ({ action: step.action, state: job.spec.show(step.state) })),
          },
  };
}

function report<S, A>(
  job: Job<S, A>,
  o: Options,
  r: ExploreResult<S>,
  seconds: number,
  cpuSeconds: number | undefined,
  io: Io,
): void {
  io.out(`Explored ${job.title}${o.symmetry ? ", up to symmetry" : ""}`);
  const rows: [string, string][] = [
    ["distinct states", String(r.distinct)],
    ["states generated", String(r.generated)],
    ["depth", String(r.depth)],
    ["transitions checked", String(r.transitions)],
    ["elapsed", `${seconds.toFixed(2)} s${cpuSeconds === undefined ? "" : ` (cpu ${cpuSeconds.toFixed(2)} s)`}`],
    ["distinct states/s", String(perSecond(r.distinct, seconds))],
  ];
  printRows(io, rows);
  io.out(`Checked on every distinct state: ${r.invariantsChecked.join(", ")}`);
  for (const check of r.stepChecks) {
    io.out(`Checked on every transition: ${check.name}`);
    for (const line of check.summary) io.out(`  ${line}`);
  }
  if (r.violation !== undefined) io.out(formatViolation(job.spec, r.violation));
  else if (!r.complete)
    io.out(
      `No violation in the states explored, but the search stopped at --max-states ${o.numbers["max-states"]}: it is not exhaustive.`,
    );
  else io.out("No violation: the search was exhaustive.");
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  // Run as the bundle (dist/explorer.mjs): rebuilt and run again if the sources changed.
  if (import.meta.url.endsWith("/dist/explorer.mjs")) rerunIfStale();
  process.exitCode = main(process.argv.slice(2), {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    now: () => performance.now(),
    cpu: () => {
      const used = process.cpuUsage();
      return (used.user + used.system) / 1e6;
    },
    writeFile: (file, text) => {
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, text);
    },
  });
}

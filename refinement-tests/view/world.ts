/**
 * The trace view of a run of the simulated world: a regression scenario, a failure report's
 * `regression.json` (`npm run check`), or any scenario with its run options. The scenario is
 * run again, deterministically, with every check of proofs/ after every step (exactly as the
 * suites run it), and each step is recorded: its text, effects and messages, each replica's
 * fields, the spec actions the checkers matched at every level, the rules the core applied,
 * and, if a check fails, the violation with the steps that lead to it.
 */
import {
  defaultRules,
  makeStep,
  type ReplicaEvent,
  type ReplicaState,
  type Step,
} from "../../impl/core/testing/index.ts";
import { mutantNamed } from "../mutants/index.ts";
import { rulesOfStep } from "../mutants/mutant.ts";
import type { Scenario } from "../world/actions.ts";
import { runScenario, showScenario, type Failure } from "../world/run.ts";
import { tunings } from "../world/tuning.ts";
import type { World } from "../world/world.ts";
import { ViewBuilder } from "./builder.ts";
import type { TraceView, ViewViolation } from "./format.ts";
import { groupCalls, recordingRules, ruleDoc, ruleText, type RuleCall } from "./rules.ts";
import { StepRecorder, type KvWorldStep } from "./step-recorder.ts";

/** A run of the world to view: the fields of a regression file (refinement-tests/regressions/). */
export interface WorldRun {
  readonly name: string;
  readonly description?: string;
  readonly replicas: number;
  readonly liveness: boolean;
  readonly mutant: string | null;
  readonly scenario: Scenario;
  /** The command that reproduces it, if known. */
  readonly replay?: string;
  readonly file?: string;
  readonly kind?: string;
}

/** The fields whose last change before a violation matters to it. */
const leaseFields = ["role", "maxBal", "grant", "lease", "restart wait", "executed"];

/** Prefixes of the tally names that are spec actions or rare states. */
const shownTally = /^(Voting|Consensus|Service|Lease): |^sometimes: /;

/** Run `run` again and record it. */
export function viewOfWorldRun(run: WorldRun): TraceView {
  const mutant = run.mutant === null ? null : mutantNamed(run.mutant);
  const calls: RuleCall[] = [];
  const step = recordedStep(mutant?.step ?? null, calls);
  const tuning = run.scenario.profile.tuning ?? 0;
  const builder = new ViewBuilder({
    title: run.name,
    source: {
      kind: run.kind ?? "world",
      ...(run.file === undefined ? {} : { file: run.file }),
      ...(run.replay === undefined ? {} : { replay: run.replay }),
      details: `scenario (actions):\n${showScenario(run.scenario)}`,
      notes: [
        ...(run.description === undefined ? [] : [run.description]),
        `${run.replicas} replicas, ${run.liveness ? "safety then liveness" : "safety"} mode, ${mutant === null ? "impl/core" : `mutant ${mutant.name}: ${mutant.description}`}`,
        `tuning ${tuning}: ${JSON.stringify(tunings[tuning] ?? tunings[0])}`,
        ...(mutant !== null && !rulesOfStep.has(mutant.step)
          ? [
              "this mutant changes more than a rule: the rules listed are those the real core applies to the same state and event",
            ]
          : []),
      ],
    },
    timeUnit: "ms",
  });
  /** Builder step index per world step number (1-based). */
  const stepOfEvent: number[] = [-1];
  let recorder: StepRecorder | null = null;
  let world: World | null = null;
  let traceSeen = 0;
  const result = runScenario(run.scenario, {
    replicas: run.replicas,
    liveness: run.liveness,
    record: true,
    step,
    tap: (w, checker) => {
      world = w;
      const rec = new StepRecorder(builder, w, "full");
      recorder = rec;
      for (const c of w.clients) builder.process(c.id, "client");
      const check = w.observer;
      const actions: string[] = [];
      checker.tally.listener = (name) => {
        if (shownTally.test(name)) actions.push(name);
      };
      w.observer = (s) => {
        traceSeen = recordNotes(w, builder, traceSeen);
        stepOfEvent[w.events] = recordStep(w, rec, s, calls);
        calls.length = 0;
        traceSeen = w.trace!.length;
        actions.length = 0;
        try {
          check?.(s);
        } finally {
          for (const a of actions) builder.action(a);
          builder.quietUnlessChanged();
        }
      };
    },
  });
  if (world !== null) recordNotes(world, builder, traceSeen);
  (recorder as StepRecorder | null)?.finish();
  if (result.failure !== null) builder.setViolation(violationOf(builder, result.failure, stepOfEvent));
  return builder.finish();
}

/** The step the world runs: the real core (or the mutant) with the rules it applies noted in `calls`. */
function recordedStep(mutantStep: Step | null, calls: RuleCall[]): Step {
  if (mutantStep === null) return makeStep(recordingRules(defaultRules, calls));
  // A mutant's rules are noted by a shadow step built from them; its own step decides.
  const shadow = makeStep(recordingRules(rulesOfStep.get(mutantStep) ?? defaultRules, calls));
  return <S, I, O>(state: ReplicaState<S, I, O>, event: ReplicaEvent<I>) => {
    shadow(state, event);
    return mutantStep(state, event);
  };
}

/** Trace lines the world wrote without a step (phase notes) become note steps. */
function recordNotes(world: World, builder: ViewBuilder, seen: number): number {
  const trace = world.trace!;
  for (let i = seen; i < trace.length; i++) {
    const e = trace[i]!;
    if (e.text.startsWith("-- ")) builder.step(e.t, -1, "note", e.text.replace(/^-- | --$/g, ""));
  }
  return trace.length;
}

/** Pairing keys of replica messages: one per (message object, receiver). */
const messageIds = new WeakMap<object, number>();
let nextMessageId = 0;
function messageKey(message: object, to: number): string {
  let id = messageIds.get(message);
  if (id === undefined) messageIds.set(message, (id = nextMessageId++));
  return `m${id}->${to}`;
}

/** Record one world step; returns its builder index. */
function recordStep(world: World, rec: StepRecorder, s: KvWorldStep, calls: readonly RuleCall[]): number {
  const b = rec.builder;
  const entry = world.trace![world.trace!.length - 1]!;
  const born = (r: number): boolean => world.replicas[r]!.born;
  const clientOf = (id: string): number | null => b.processNamed(id) ?? null;
  let index: number;
  switch (s.kind) {
    case "event": {
      const me = rec.replicaProcess[s.replica]!;
      const receive = s.event === "Receive" && s.message !== undefined && s.from !== undefined;
      index = rec.begin("event", me, receive ? null : entry.text);
      const sends = s.carried.flatMap((c) => (c._tag === "Send" ? [messageKey(c.message, c.to)] : []));
      const received = receive
        ? messageKey(s.message, world.members[s.replica]!)
        : s.event === "ClientRequest"
          ? entry.text.replace(/^deliver /, "")
          : undefined;
      if (receive && !rec.receive(received)) b.effect(`(${entry.text})`);
      rec.event(s, { sends, ...(receive || received === undefined ? {} : { received }) }, clientOf);
      for (const [name, results] of groupCalls(calls)) b.rule(ruleText(name, results, true), ruleDoc(name));
      break;
    }
    case "crash":
      index = rec.begin("crash", rec.replicaProcess[s.replica]!, entry.text);
      rec.crashed(s.replica, world.trueTime);
      break;
    case "time":
      index = rec.begin("time", -1, entry.text);
      break;
    case "clock":
      index = rec.begin("fault", rec.replicaProcess[s.replica]!, entry.text);
      break;
    case "fault": {
      const request = /^(c\d+) (?:sends|retries) (.+) to (R\d+)$/.exec(entry.text);
      const client = request === null ? undefined : b.processNamed(request[1]!);
      index = rec.begin("fault", client ?? -1, entry.text);
      if (request !== null && client !== undefined) {
        const to = b.processNamed(request[3]!);
        if (to !== undefined) rec.send(client, to, request[2]!, `${request[1]}->${request[3]} ${request[2]}`);
      }
      break;
    }
  }
  rec.environment((r) => world.replicas[r]!.paused, born);
  rec.clocksAt(born);
  return index;
}

function violationOf(builder: ViewBuilder, f: Failure, stepOfEvent: readonly number[]): ViewViolation {
  const step = stepOfEvent[f.step] ?? builder.currentStep;
  return {
    check: f.check,
    level: f.level,
    message: f.message,
    step,
    related: builder.relatedSteps(step, leaseFields),
    ...(f.before === undefined ? {} : { before: f.before }),
    ...(f.after === undefined ? {} : { after: f.after }),
    ...(f.action === undefined ? {} : { action: f.action }),
  };
}

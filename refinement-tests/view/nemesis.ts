/**
 * The trace view of a nemesis run (refinement-tests/nemesis/): every replica's event trace,
 * replayed through `step` and merged in true time exactly as trace validation does it
 * (trace-checks.ts), with proofs/' checker naming each step's spec actions; the processes'
 * lives and the injected faults from the run's report. A long run keeps the compact fields
 * (no store contents, batches by size) so that its page stays a few MB.
 *
 * The run writes this view itself while it validates its traces (`trace-view.json.gz` in its
 * folder), so that viewing it does not replay the traces again; `viewOfNemesisRun` replays
 * them when that file is missing.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import { showBallot, showChange } from "../../impl/core/testing/index.ts";
import { showInput, showOutput } from "../../impl/core/testing/show.ts";
import type { KvInput, KvOutput } from "../../spec/kv.ts";
import { historyWholeBytesMax, readHistoryJson } from "../../impl/runtime/history-file.ts";
import type { NemesisReport } from "../nemesis/run.ts";
import { releaseValues, type RecordedOp } from "../nemesis/workload.ts";
import { checkSteps, replayMerged, type StepSeen } from "../nemesis/trace-checks.ts";
import type { ReplayStep } from "../nemesis/trace-replay.ts";
import { micros, ViewBuilder } from "./builder.ts";
import { decodeView, delta, operationOutcomes, type TraceView, type ViewOperations } from "./format.ts";
import { StepRecorder } from "./step-recorder.ts";

/** The file a nemesis run writes its trace view to, in its folder. */
export const nemesisViewFile = "trace-view.json.gz";

const shownTally = /^(Voting|Consensus|Service|Lease): |^sometimes: /;

/** Records a nemesis run's replayed steps (hand `onStep` to `checkTraces`), then `finish`. */
export class NemesisViewRecorder {
  private recorder: StepRecorder | null = null;
  readonly builder: ViewBuilder;

  constructor(header: { replay?: string; originMs: number; file?: string }) {
    this.builder = new ViewBuilder({
      title: "nemesis run",
      source: {
        kind: "nemesis",
        ...(header.file === undefined ? {} : { file: header.file }),
        ...(header.replay === undefined ? {} : { replay: header.replay }),
        notes: [],
      },
      timeUnit: "ms",
      originMs: header.originMs,
    });
  }

  /** One replayed step, as trace-checks.ts's `onStep` hands it over. */
  readonly onStep = (step: ReplayStep, seen: StepSeen): void => {
    const world = seen.world;
    if (world === null || world.kind !== "event") return;
    this.recorder ??= new StepRecorder(this.builder, seen.view, "compact");
    const rec = this.recorder;
    const me = rec.replicaProcess[world.replica]!;
    const receivedKey =
      step.receivedAs === undefined
        ? undefined
        : `${step.receivedAs.incarnation}/${step.receivedAs.wireId}->${step.replica}`;
    rec.begin("event", me, receivedKey === undefined ? eventText(step) : null);
    const sends = step.wireIds.map((w, i) =>
      w === undefined ? undefined : `${step.incarnation}/${w}->${sendTo(step, i)}`,
    );
    if (receivedKey !== undefined && !rec.receive(receivedKey)) this.builder.effect(`(${eventText(step)})`);
    rec.event(world, { sends }, () => null);
    // True time passing before a step is the Lease spec's Tick; only a Tick with an expiry is news.
    for (const name of seen.tallied) if (shownTally.test(name) && name !== "Lease: Tick") this.builder.action(name);
    this.builder.quietUnlessChanged();
    // A replica's clock is known from its first traced step on.
    rec.clocksAt((r) => seen.view.replicas[r]!.state !== null);
  };

  /** Add what only the report and the history know (lives, faults, operations, the verdict); pack the view. */
  finish(report: NemesisReport, ops: readonly OperationSeen[]): TraceView {
    const b = this.builder;
    b.setOperations(operationColumns(ops, flaggedOperations(report)));
    b.retitle(`nemesis seed ${report.seed}`, notesOf(report));
    const origin = report.originMonotonicMs;
    this.recorder?.finish();
    const byReplica = new Map<number, NemesisReport["lives"][number][]>();
    for (const life of report.lives) byReplica.set(life.replica, [...(byReplica.get(life.replica) ?? []), life]);
    for (const [replica, lives] of byReplica) {
      const p = b.process(`R${replica}`, "replica");
      lives.sort((x, y) => x.startedAt - y.startedAt);
      for (let i = 0; i + 1 < lives.length; i++) {
        const end = lives[i]!.endedAt;
        if (end !== undefined && lives[i + 1]!.startedAt > end)
          b.interval(p, "down", end + origin, lives[i + 1]!.startedAt + origin, `down (${lives[i]!.exit ?? "exited"})`);
      }
    }
    for (const f of report.faults)
      b.interval(
        -1,
        "fault",
        f.startedAt + origin,
        (Number.isFinite(f.endedAt) ? f.endedAt : f.startedAt) + origin,
        f.label,
      );
    if (!report.ok) {
      b.setViolation({
        check: report.violations[0]?.split(":")[0] ?? "violation",
        level: "Nemesis",
        message: report.violations.slice(0, 5).join("\n"),
        step: -1,
        related: [],
      });
    }
    return b.finish();
  }
}

/** A client operation as the history (docs/history-format.md) or the run's clients record it; times in run ms. */
export interface OperationSeen {
  readonly client: string;
  readonly input: KvInput;
  readonly invoke: number;
  readonly complete?: number;
  readonly outcome: (typeof operationOutcomes)[number];
  readonly output?: KvOutput;
  readonly attempts?: number;
  readonly replica?: number;
  readonly note?: string;
}

/** Longest output shown in an operation's label: a list read back whole keeps its end. */
const outputShown = 80;

function operationLabel(op: OperationSeen, index: number): string {
  const output = op.output === undefined ? op.outcome : showOutput(op.output);
  const shown = output.length <= outputShown ? output : `(${output.length} chars) ...${output.slice(-outputShown)}`;
  const extra = [
    op.replica === undefined ? "" : `r${op.replica}`,
    op.attempts === undefined || op.attempts <= 1 ? "" : `${op.attempts} attempts`,
    op.note ?? "",
  ].filter((x) => x !== "");
  return `#${index} ${showInput(op.input)} -> ${shown}${extra.length === 0 ? "" : ` (${extra.join(", ")})`}`;
}

/** The operations a violation of the history names (indices into the history). */
function flaggedOperations(report: NemesisReport): Set<number> {
  return new Set(report.history.violations.flatMap((v) => v.ops));
}

/** The operations' columns, in invocation order; a label names the operation's index in the history. */
export function operationColumns(ops: readonly OperationSeen[], flagged: ReadonlySet<number>): ViewOperations {
  const order = ops.map((_, i) => i).sort((a, b) => ops[a]!.invoke - ops[b]!.invoke || a - b);
  const clients = [...new Set(order.map((i) => ops[i]!.client))];
  const clientIndex = new Map(clients.map((c, i) => [c, i]));
  const flaggedAt: number[] = [];
  order.forEach((i, k) => {
    if (flagged.has(i)) flaggedAt.push(k);
  });
  return {
    clients,
    client: order.map((i) => clientIndex.get(ops[i]!.client)!),
    dinvoke: delta(order.map((i) => micros(ops[i]!.invoke))),
    duration: order.map((i) => {
      const op = ops[i]!;
      return op.complete === undefined ? -1 : Math.max(0, micros(op.complete) - micros(op.invoke));
    }),
    outcome: order.map((i) => operationOutcomes.indexOf(ops[i]!.outcome)),
    read: order.map((i) => (ops[i]!.input._tag === "get" ? 1 : 0)),
    label: order.map((i) => operationLabel(ops[i]!, i)),
    flagged: flaggedAt,
  };
}

/** The operations of a run's history.json (none if it is missing). */
function historyOperations(folder: string): OperationSeen[] {
  const file = path.join(folder, "history.json");
  if (!existsSync(file)) return [];
  // Streamed when long (a burst run's can pass the longest string), each operation's long values
  // cut to what the page shows of them as it is read.
  const doc = readHistoryJson(file, historyWholeBytesMax, {
    operation: (op) => {
      releaseValues([op as RecordedOp]);
      return op;
    },
  }) as { operations?: OperationSeen[] };
  return doc.operations ?? [];
}

/** The receiver of the i-th Send of a step. */
function sendTo(step: ReplayStep, i: number): number {
  let k = 0;
  for (const e of step.effects) {
    if (e._tag !== "Send") continue;
    if (k++ === i) return e.to;
  }
  return -1;
}

/** The text of an event that is not a paired receipt. */
function eventText(step: ReplayStep): string {
  const e = step.event;
  switch (e._tag) {
    case "Tick":
      return "tick";
    case "Recover":
      return `recover from ${e.records.length} records (life ${step.life})`;
    case "ClientRequest":
      return `request ${e.clientId ?? "one-shot"}${e.seq === undefined ? "" : ` #${e.seq}`} ${showInput(e.input)}`;
    case "Reconfigure":
      return `reconfigure: ${showChange(e.change)}`;
    case "OpenSession":
      return "open a session";
    case "Receive":
      return `receive from R${e.from} ${e.message._tag}${"ballot" in e.message ? ` b=${showBallot(e.message.ballot)}` : ""} (no traced send)`;
    case "VoteDurable":
      return `own vote durable up to slot ${e.slot} (b=${showBallot(e.ballot)})`;
    case "FeaturesKnown":
      return `every member executes feature level ${e.level} at least`;
    case "EntriesRead":
      return `${e.entries.length} store values read back from the vote records`;
    case "KeptChunks":
      return `take back ${e.chunks.length} kept chunks at byte ${e.offset}${e.last ? " (the last)" : ""}`;
  }
}

function notesOf(report: NemesisReport): string[] {
  const h = report.history;
  return [
    `${report.replicas} replicas, ${report.clients} clients, ${report.faults.length} faults; ${h.operations} operations (ok ${h.outcomes.ok}, fail ${h.outcomes.fail}, unknown ${h.outcomes.unknown}); linearizability ${h.linearizability.verdict}`,
    `verdict: ${report.ok ? "PASS" : `FAIL (${report.violations.length} violations)`}; times are ms since the run's origin; clock readings are each replica's own`,
  ];
}

/** The view of the nemesis run in `folder`: its written view if there is one, else a replay of its traces. */
export function viewOfNemesisRun(folder: string): TraceView {
  const report = JSON.parse(readFileSync(path.join(folder, "report.json"), "utf8")) as NemesisReport;
  const written = path.join(folder, nemesisViewFile);
  if (existsSync(written)) {
    const view = decodeView(JSON.parse(gunzipSync(readFileSync(written)).toString("utf8")));
    if (typeof view !== "string")
      return view.operations !== undefined
        ? view
        : { ...view, operations: operationColumns(historyOperations(folder), flaggedOperations(report)) };
  }
  const recorder = new NemesisViewRecorder({ replay: report.replay, originMs: report.originMonotonicMs, file: folder });
  const files = new Map<number, string>();
  for (let id = 1; id <= report.replicas; id++)
    files.set(id, path.join(folder, "cluster", `replica-${id}.trace.jsonl`));
  checkSteps(replayMerged({ files, core: report.core }), { onStep: recorder.onStep });
  return recorder.finish(report, historyOperations(folder));
}

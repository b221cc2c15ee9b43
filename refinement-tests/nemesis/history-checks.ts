/**
 * The checks of a run's client history: linearizability against spec/kv.ts (proofs/
 * linearizability.ts, per key), and on the list keys, where every append carries a token unique
 * to it, the direct Jepsen-style set checks: every acknowledged append is in the final value
 * (no acknowledged write lost), no token appears twice (exactly-once), no token of an append
 * that certainly failed appears (a "fail" outcome must mean "never executed"), and every read
 * of a list is a prefix of the final value (appends only ever extend it).
 */
import { checkLinearizable, type LinearizabilityResult } from "../../impl/history/linearizability.ts";
import { kvModel, kvSees, loadHistory } from "../../impl/history/history.ts";
import { failedKeys, renderReport } from "../../impl/history/report.ts";
import type { KvInput, KvOutput } from "../../spec/kv.ts";
import { historyDocument, type RecordedOp } from "./workload.ts";

/** A failed history check. */
export interface HistoryViolation {
  readonly check: string;
  readonly key?: string;
  readonly message: string;
  /** Indices (in the recorded operations) of the operations involved, for the run's page. */
  readonly ops: readonly number[];
}

/** What the history checks found. */
export interface HistoryReport {
  readonly ok: boolean;
  readonly operations: number;
  readonly outcomes: Readonly<Record<"ok" | "fail" | "unknown", number>>;
  readonly linearizability: {
    readonly verdict: LinearizabilityResult<unknown, unknown>["verdict"];
    readonly keys: number;
    readonly steps: number;
    readonly undecidedKeys: readonly string[];
  };
  readonly lists: { readonly keys: number; readonly appendsAcknowledged: number; readonly tokensInFinalValues: number };
  readonly violations: readonly HistoryViolation[];
}

/** The tokens of a list value: "c1.5,c2.7," -> ["c1.5", "c2.7"]. */
function tokens(value: string | null): string[] {
  return (value ?? "").split(",").filter((t) => t !== "");
}

/**
 * Check the recorded history; `finalReads` are the indices of the closing reads of every key.
 * When it is not linearizable, `page` is the HTML report check-history writes (the keys that
 * failed, each client's timeline, the minimised sub-history).
 */
export function checkHistoryWithPage(
  ops: readonly RecordedOp[],
  finalReads: ReadonlyMap<string, number>,
  title: string,
  stepsMaxPerKey = 20_000_000,
): { report: HistoryReport; page?: string } {
  const loaded = loadHistory(historyDocument(ops), "kv");
  const result = checkLinearizable(kvModel, loaded.operations, { stepsMaxPerPartition: stepsMaxPerKey, allKeys: true });
  const report = checkHistory(ops, finalReads, stepsMaxPerKey, result);
  const { keys } = failedKeys(kvModel, loaded.operations, result, { sees: kvSees });
  if (keys.length === 0) return { report };
  const summary = `${result.operations} operations checked over ${result.partitions.length} keys; ${keys.length} not linearizable.`;
  return { report, page: renderReport({ title, model: "kv", summary, keys }) };
}

/** Check the recorded history; `finalReads` are the indices of the closing reads of every key. */
export function checkHistory(
  ops: readonly RecordedOp[],
  finalReads: ReadonlyMap<string, number>,
  stepsMaxPerKey = 20_000_000,
  checked?: LinearizabilityResult<KvInput, KvOutput>,
): HistoryReport {
  const violations: HistoryViolation[] = [];
  const outcomes = { ok: 0, fail: 0, unknown: 0 };
  for (const op of ops) outcomes[op.outcome] += 1;
  const result =
    checked ??
    checkLinearizable(kvModel, loadHistory(historyDocument(ops), "kv").operations, {
      stepsMaxPerPartition: stepsMaxPerKey,
      allKeys: true,
    });
  for (const partition of result.partitions) {
    if (partition.verdict !== "not-linearizable") continue;
    const prefix = partition.longestPrefix ?? [];
    const stuck = partition.stuck ?? [];
    const show = (o: (typeof stuck)[number]) => `#${o.id} ${o.client} ${describeOp(o.input, o.output)}`;
    const refutation = partition.refutation;
    violations.push({
      check: "Linearizable",
      key: partition.partition,
      message:
        refutation === undefined
          ? `key ${partition.partition}: no linearization; the longest linearizable prefix has ${prefix.length} operations, after which none of ${stuck.map(show).join("; ")} can come next`
          : `key ${partition.partition}: no linearization: ${refutation.reason} (${refutation.operations.map(show).join("; ")})`,
      ops: (refutation?.operations ?? stuck).map((o) => o.id),
    });
  }
  const lists = checkLists(ops, finalReads, violations);
  return {
    ok: violations.length === 0 && result.verdict === "linearizable",
    operations: ops.length,
    outcomes,
    linearizability: {
      verdict: result.verdict,
      keys: result.partitions.length,
      steps: result.steps,
      undecidedKeys: result.partitions.filter((p) => p.verdict === "unknown").map((p) => p.partition),
    },
    lists,
    violations,
  };
}

function describeOp(input: KvInput, output: KvOutput | undefined): string {
  const out = output === undefined ? "unknown" : JSON.stringify(output);
  return `${JSON.stringify(input)} -> ${out.length > 120 ? `${out.slice(0, 120)}...` : out}`;
}

function checkLists(
  ops: readonly RecordedOp[],
  finalReads: ReadonlyMap<string, number>,
  violations: HistoryViolation[],
): HistoryReport["lists"] {
  let keys = 0;
  let appendsAcknowledged = 0;
  let tokensInFinalValues = 0;
  for (const [key, finalIndex] of finalReads) {
    if (!key.startsWith("l")) continue;
    keys += 1;
    const final = ops[finalIndex];
    if (final?.outcome !== "ok" || final.output?._tag !== "value") {
      violations.push({
        check: "FinalRead",
        key,
        message: `the final read of ${key} did not succeed`,
        ops: [finalIndex],
      });
      continue;
    }
    const finalValue = final.output.value ?? "";
    const present = tokens(finalValue);
    tokensInFinalValues += present.length;
    const appendOf = new Map<string, number>();
    ops.forEach((op, i) => {
      if (op.input._tag === "append" && op.input.key === key) appendOf.set(tokens(op.input.value)[0]!, i);
    });
    const seen = new Set<string>();
    for (const token of present) {
      const i = appendOf.get(token);
      if (seen.has(token))
        violations.push({
          check: "ExactlyOnce",
          key,
          message: `${key}: token ${token} appears twice in the final value (an append executed twice)`,
          ops: i === undefined ? [] : [i],
        });
      seen.add(token);
      if (i === undefined)
        violations.push({
          check: "NoPhantomWrite",
          key,
          message: `${key}: token ${token} in the final value was never appended by any client`,
          ops: [],
        });
      else if (ops[i]!.outcome === "fail")
        violations.push({
          check: "FailMeansNotExecuted",
          key,
          message: `${key}: token ${token} is in the final value but its append was recorded as certainly failed`,
          ops: [i],
        });
    }
    for (const [token, i] of appendOf) {
      if (ops[i]!.outcome !== "ok") continue;
      appendsAcknowledged += 1;
      if (!seen.has(token))
        violations.push({
          check: "NoLostWrite",
          key,
          message: `${key}: the acknowledged append of ${token} is missing from the final value`,
          ops: [i],
        });
    }
    ops.forEach((op, i) => {
      if (op.outcome !== "ok" || !("key" in op.input) || op.input.key !== key || op.output?._tag !== "value") return;
      const seenValue = op.output.value ?? "";
      if (!finalValue.startsWith(seenValue))
        violations.push({
          check: "ListPrefix",
          key,
          message: `${key}: ${op.client} saw ${JSON.stringify(seenValue.slice(-80))}, not a prefix of the final value`,
          ops: [i, finalIndex],
        });
    });
  }
  return { keys, appendsAcknowledged, tokensInFinalValues };
}

/**
 * The linearizability checker: does a concurrent client history have a linearization, a
 * total order of its operations that respects real time (an operation that completed before
 * another was invoked comes first) and in which every output is what the sequential model
 * returns? The history is split per key first (Herlihy and Wing's locality, used by Horn and
 * Kroening's P-compositionality), so each key is searched alone (search.ts: Wing and Gong's
 * search with Lowe's memoization, in Porcupine's form), smallest key first, stopping at the
 * first key that is not linearizable unless every key is asked for.
 *
 * Operations known to have failed (never executed) are left out by the caller. Every other
 * operation is checked, except read-only operations without an output (their outcome is
 * unknown or their output was not recorded: they observe nothing anyone saw and change
 * nothing); the result counts those apart from the operations checked, per partition and in
 * total.
 *
 * The search is deterministic and bounded by a step budget, never by wall-clock time: a
 * partition that exceeds it is reported `unknown`, not passed.
 */
import {
  checkPartition,
  noPartition,
  type LinearizabilityModel,
  type Operation,
  type PartitionResult,
} from "./search.ts";

export { checkPartition, noPartition, type LinearizabilityModel, type Operation, type PartitionResult };

/** The checker's verdict on a whole history. */
export interface LinearizabilityResult<I, O> {
  readonly verdict: "linearizable" | "not-linearizable" | "unknown";
  /** The partitions searched, in the order they were searched. */
  readonly partitions: readonly PartitionResult<I, O>[];
  /** Operations checked: the sum of the searched partitions' counts. */
  readonly operations: number;
  /** Operations given but not checked: read-only ones without an output (they constrain nothing). */
  readonly unconstrained: number;
  /** Partitions not searched because an earlier one was not linearizable (see `allKeys`), and their operations. */
  readonly notSearched: { readonly partitions: number; readonly operations: number };
  readonly steps: number;
}

/** Options. */
export interface CheckOptions {
  /** Search steps allowed per partition before giving up with `unknown`. Default 20,000,000. */
  readonly stepsMaxPerPartition?: number;
  /** Search every partition even after one is found not linearizable. Default false. */
  readonly allKeys?: boolean;
}

/** The default search budget per partition. */
export const stepsMaxPerPartitionDefault = 20_000_000;

/** The operations of a history grouped by partition, smallest first (ties by key), and what constrains nothing. */
export function partitionHistory<S, I, O>(
  model: LinearizabilityModel<S, I, O>,
  ops: readonly Operation<I, O>[],
): { partitions: { key: string; ops: Operation<I, O>[] }[]; unconstrained: number } {
  const byPartition = new Map<string, Operation<I, O>[]>();
  let unconstrained = 0;
  for (const op of ops) {
    if (!(op.complete >= op.invoke))
      throw new Error(`operation ${op.id} completes (${op.complete}) before it is invoked (${op.invoke})`);
    if (op.output === undefined && model.readOnly(op.input)) {
      unconstrained++;
      continue;
    }
    const key = model.partition(op.input) ?? noPartition;
    let list = byPartition.get(key);
    if (list === undefined) byPartition.set(key, (list = []));
    list.push(op);
  }
  const partitions = [...byPartition].map(([key, list]) => ({ key, ops: list }));
  partitions.sort((a, b) => a.ops.length - b.ops.length || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { partitions, unconstrained };
}

/** The verdict of a history from its partitions' verdicts. */
export function overallVerdict(partitions: readonly { verdict: PartitionResult<unknown, unknown>["verdict"] }[]) {
  return partitions.some((p) => p.verdict === "not-linearizable")
    ? "not-linearizable"
    : partitions.some((p) => p.verdict === "unknown")
      ? "unknown"
      : "linearizable";
}

/** Check a whole history, partition by partition, in this thread. */
export function checkLinearizable<S, I, O>(
  model: LinearizabilityModel<S, I, O>,
  ops: readonly Operation<I, O>[],
  options: CheckOptions = {},
): LinearizabilityResult<I, O> {
  const stepsMax = options.stepsMaxPerPartition ?? stepsMaxPerPartitionDefault;
  const { partitions: groups, unconstrained } = partitionHistory(model, ops);
  const partitions: PartitionResult<I, O>[] = [];
  let notSearched = { partitions: 0, operations: 0 };
  for (const [i, group] of groups.entries()) {
    const result = checkPartition(model, group.key, group.ops, { stepsMax });
    partitions.push(result);
    if (result.verdict === "not-linearizable" && options.allKeys !== true) {
      const rest = groups.slice(i + 1);
      notSearched = { partitions: rest.length, operations: rest.reduce((sum, g) => sum + g.ops.length, 0) };
      break;
    }
  }
  return summarize(partitions, unconstrained, notSearched);
}

/** The whole-history result from the partitions searched. */
export function summarize<I, O>(
  partitions: readonly PartitionResult<I, O>[],
  unconstrained: number,
  notSearched: { partitions: number; operations: number },
): LinearizabilityResult<I, O> {
  return {
    verdict: overallVerdict(partitions),
    partitions,
    operations: partitions.reduce((sum, p) => sum + p.operations, 0),
    unconstrained,
    notSearched,
    steps: partitions.reduce((sum, p) => sum + p.steps, 0),
  };
}

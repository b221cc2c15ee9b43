/**
 * The smallest sub-history of a non-linearizable key that is still not linearizable, found by
 * removing operations (a report's aid, not the verdict: the verdict is the whole key's
 * search). When the key has a refutation's witness (refute.ts), that is the answer. Otherwise
 * two steps, each check a budgeted search:
 *
 * 1. A time prefix: the first moment T such that the operations invoked by T are not
 *    linearizable on their own, those still running at T taken as of unknown outcome (so the
 *    prefix is linearizable whenever the key is: linearizability is prefix-closed).
 * 2. Greedy removal, latest operation first, reads before writes: an operation goes when the
 *    rest is still not linearizable. A write whose value a kept operation observed is never
 *    removed, so that the sub-history fails for the history's reason, not because a read lost
 *    the write it saw.
 *
 * Pure; bounded by `stepsMax` over all its checks.
 */
import { refute } from "./refute.ts";
import { checkPartition, type LinearizabilityModel, type Operation } from "./search.ts";

/** The minimised sub-history and what finding it cost. */
export interface Minimised<I, O> {
  readonly operations: readonly Operation<I, O>[];
  /** False when the budget ran out first: `operations` is then smaller but perhaps not minimal. */
  readonly minimal: boolean;
  readonly steps: number;
}

/** Options of {@link minimise}. */
export interface MinimiseOptions<I, O> {
  /** Steps allowed over every check. Default 5,000,000. */
  readonly stepsMax?: number;
  /**
   * True when `reader`'s output may show what `writer` wrote; such a writer is kept while the reader is. Default:
   * always.
   */
  readonly sees?: (reader: Operation<I, O>, writer: Operation<I, O>) => boolean;
}

/** Minimise the operations `ops` of partition `partition`, which are not linearizable. */
export function minimise<S, I, O>(
  model: LinearizabilityModel<S, I, O>,
  partition: string,
  ops: readonly Operation<I, O>[],
  options: MinimiseOptions<I, O> = {},
): Minimised<I, O> {
  let budget = options.stepsMax ?? 5_000_000;
  let steps = 0;
  let minimal = true;
  // A refutation's witness is already minimal: without its observer, or the overwrite, it is
  // linearizable, and its writer is seen by its observer.
  const refuted = refute(model, partition, ops);
  if (refuted !== undefined) {
    const witness = checkPartition(model, partition, refuted.operations, { stepsMax: 10_000 });
    if (witness.verdict === "not-linearizable")
      return {
        operations: [...refuted.operations].sort((a, b) => a.invoke - b.invoke || a.id - b.id),
        minimal: true,
        steps: witness.steps,
      };
  }
  /** True when certainly not linearizable (an undecided check counts as "do not remove"). */
  const fails = (candidate: readonly Operation<I, O>[]): boolean => {
    if (budget <= 0) {
      minimal = false;
      return false;
    }
    const r = checkPartition(model, partition, candidate, { stepsMax: Math.min(budget, 1_000_000) });
    budget -= r.steps;
    steps += r.steps;
    if (r.verdict === "unknown") minimal = false;
    return r.verdict === "not-linearizable";
  };

  // 1. The shortest failing time prefix, by bisection over the completion times.
  const times = [...new Set(ops.map((o) => o.complete).filter((t) => t !== Infinity))].sort((a, b) => a - b);
  let current = [...ops];
  let low = 0;
  let high = times.length - 1;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (fails(prefix(ops, times[mid]!))) high = mid;
    else low = mid + 1;
  }
  if (times.length > 0) {
    const cut = prefix(ops, times[low]!);
    if (fails(cut)) current = cut;
  }

  // 2. Greedy removal, latest first, read-only operations before the others.
  const order = [...current].sort(
    (a, b) => Number(model.readOnly(b.input)) - Number(model.readOnly(a.input)) || b.invoke - a.invoke,
  );
  for (const op of order) {
    if (!current.includes(op)) continue;
    const rest = current.filter((o) => o !== op);
    const sees = options.sees ?? (() => true);
    if (!model.readOnly(op.input) && rest.some((reader) => sees(reader, op))) continue;
    if (fails(rest)) current = rest;
  }
  return { operations: current.sort((a, b) => a.invoke - b.invoke || a.id - b.id), minimal, steps };
}

/** The operations invoked by `t`; those still running at `t` have an unknown outcome. */
function prefix<I, O>(ops: readonly Operation<I, O>[], t: number): Operation<I, O>[] {
  return ops
    .filter((o) => o.invoke <= t)
    .map((o) => (o.complete <= t ? o : { ...o, complete: Infinity, output: undefined }));
}

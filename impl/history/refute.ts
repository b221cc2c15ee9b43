/**
 * Refutation by a necessary condition, before any search: the reads-from argument of Gibbons
 * and Korach ("Testing shared memories", 1997) for a register. When exactly one operation can
 * ever leave a value behind, an operation that saw that value must be linearized after that
 * writer, with no operation in between that certainly left another value. So a key is not
 * linearizable when an operation saw a value
 *
 * 1. that no operation writes and the key did not start with;
 * 2. whose only writer was invoked after the observer completed; or
 * 3. whose only writer (or the initial state, when nothing writes the value) was certainly
 *    overwritten in between: an operation that certainly changes the value, and took effect,
 *    was invoked after the writer completed and completed before the observer was invoked.
 *
 * This is the witness a stale read leaves (a value, its writer and a later write both
 * completed before the read began), found in O(n log n) where the search, on a key that
 * dozens of clients write at once, must first try every interleaving of the writes before
 * it. It refutes only; when it finds nothing the search decides. Its witness (two or three
 * operations) is itself checked by the search before it is believed, and is the smallest
 * sub-history that is still not linearizable.
 *
 * Models opt in by describing their operations as register accesses
 * ({@link LinearizabilityModel.registerView}). Pure.
 */
import type { LinearizabilityModel, Operation, StateKey } from "./search.ts";

/** What refutes a key: the operations of the argument and the argument in words. */
export interface Refutation<I, O> {
  readonly reason: string;
  /** The observer last; two or three operations. */
  readonly operations: readonly Operation<I, O>[];
}

/** Refute the operations of one partition by the conditions above; undefined when none applies. */
export function refute<S, I, O>(
  model: LinearizabilityModel<S, I, O>,
  partition: string,
  ops: readonly Operation<I, O>[],
): Refutation<I, O> | undefined {
  const view = model.registerView;
  if (view === undefined) return undefined;
  const n = ops.length;
  const observes: (StateKey | undefined)[] = new Array<StateKey | undefined>(n);
  const leaves: (StateKey | undefined)[] = new Array<StateKey | undefined>(n);
  const certain = new Uint8Array(n);
  /** Operations that may leave each value, and the last one seen. */
  const writers = new Map<StateKey, { count: number; op: number }>();
  let observers = 0;
  for (let i = 0; i < n; i++) {
    const v = view(ops[i]!.input, ops[i]!.output);
    if (v.observes !== undefined) {
      observes[i] = v.observes;
      observers++;
    }
    if (v.leaves === undefined) continue;
    // An operation that may leave a value known only from the state makes no value unique.
    if (v.leaves === "any") return undefined;
    leaves[i] = v.leaves.value;
    if (v.leaves.certain && ops[i]!.complete !== Infinity) certain[i] = 1;
    const w = writers.get(v.leaves.value);
    if (w === undefined) writers.set(v.leaves.value, { count: 1, op: i });
    else w.count++;
  }
  if (observers === 0) return undefined;
  const initial = model.key(model.init(partition));
  const overwriter = firstOverwrite(ops, certain);
  const show = (value: StateKey): string => JSON.stringify(value);

  let found: Refutation<I, O> | undefined;
  for (let r = 0; r < n && found === undefined; r++) {
    const value = observes[r];
    if (value === undefined) continue;
    const reader = ops[r]!;
    // An operation that may write the value it saw (a cas from v to v) is left to the search.
    if (leaves[r] === value) continue;
    const w = writers.get(value);
    const fromInitial = value === initial;
    const sources = (w?.count ?? 0) + (fromInitial ? 1 : 0);
    if (sources === 0) {
      found = {
        reason: `#${reader.id} saw ${show(value)}, which no operation of this key writes`,
        operations: [reader],
      };
      break;
    }
    if (sources > 1) continue;
    const writer = w === undefined ? undefined : ops[w.op]!;
    if (writer !== undefined && reader.complete < writer.invoke) {
      found = {
        reason: `#${reader.id} saw ${show(value)} and completed at ${reader.complete}, before #${writer.id}, the only operation writing it, was invoked at ${writer.invoke}`,
        operations: [writer, reader],
      };
      break;
    }
    // The overwrite invoked after the writer completed that completes first; refuted if before the observer.
    const d = overwriter(writer === undefined ? -Infinity : writer.complete);
    if (d === undefined || !(ops[d]!.complete < reader.invoke)) continue;
    const over = ops[d]!;
    found =
      writer === undefined
        ? {
            reason: `#${reader.id} saw ${show(value)}, the initial value, which no operation writes, but #${over.id} overwrote it with ${show(leaves[d]!)} before #${reader.id} was invoked`,
            operations: [over, reader],
          }
        : {
            reason: `#${reader.id} saw ${show(value)}, written only by #${writer.id}, but #${over.id} overwrote it with ${show(leaves[d]!)} after #${writer.id} completed and before #${reader.id} was invoked`,
            operations: [writer, over, reader],
          };
  }
  return found;
}

/**
 * For the operations that certainly leave a value and took effect: a function from a time t to
 * the one invoked after t that completes first (undefined: none). Sorted by invocation, with
 * the earliest completion of every suffix; a binary search per question.
 */
function firstOverwrite<I, O>(ops: readonly Operation<I, O>[], certain: Uint8Array): (t: number) => number | undefined {
  const list: number[] = [];
  for (let i = 0; i < ops.length; i++) if (certain[i] === 1) list.push(i);
  list.sort((a, b) => ops[a]!.invoke - ops[b]!.invoke || a - b);
  const best = new Int32Array(list.length + 1).fill(-1);
  for (let k = list.length - 1; k >= 0; k--) {
    const i = list[k]!;
    const later = best[k + 1]!;
    best[k] = later >= 0 && ops[later]!.complete <= ops[i]!.complete ? later : i;
  }
  return (t) => {
    let low = 0;
    let high = list.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (ops[list[mid]!]!.invoke > t) high = mid;
      else low = mid + 1;
    }
    const i = best[low]!;
    return i >= 0 ? i : undefined;
  };
}

/**
 * The linearizability checker: does a concurrent client history have a linearization, a
 * total order of its operations that respects real time (an operation that completed before
 * another was invoked comes first) and in which every output is what the sequential model
 * returns? The search is Wing and Gong's, with Lowe's memoization of (set of operations
 * linearized, model state) ("Testing for linearizability", 2017), as in porcupine; the
 * history is split per key first (Herlihy and Wing's locality, used by Horn and Kroening's
 * P-compositionality), so each key is searched alone.
 *
 * Operations whose outcome is unknown (a timeout, a crash) may have taken effect at any
 * time after their invocation, or never: they get return time +infinity and any output. An
 * operation placed after everything else is observed by nobody, so "never" needs no case of
 * its own. Operations known to have failed (never executed) are left out by the caller. Every
 * other operation is checked: the only ones left out here are read-only operations with an
 * unknown outcome (they observe nothing anyone saw and change nothing), and the result
 * counts them apart from the operations checked, per partition and in total.
 *
 * The search is deterministic and bounded by a step budget, never by wall-clock time: a
 * partition that exceeds it is reported `unknown`, not passed.
 */

/** A sequential model: the spec the history must be explained by. */
export interface LinearizabilityModel<S, I, O> {
  readonly name: string;
  /**
   * The partition an input belongs to (its key); undefined for an input that touches no key
   * (such operations are checked together, in the partition named {@link noPartition}).
   */
  partition(input: I): string | undefined;
  /** The state at the start of a partition. */
  init(partition: string): S;
  /** True when `input` never changes the state (a read). */
  readOnly(input: I): boolean;
  /** Apply `input` in `state`; undefined when the model cannot produce `output` (undefined: any output). */
  step(state: S, input: I, output: O | undefined): S | undefined;
  /** An exact key of a state within a partition (equal keys exactly when equal states). */
  key(state: S): string;
}

/** The partition of operations that touch no key (a kv key is never empty). */
export const noPartition = "";

/** One operation of a history. `complete` is +Infinity and `output` undefined when unknown. */
export interface Operation<I, O> {
  readonly id: number;
  readonly client: string;
  readonly input: I;
  readonly invoke: number;
  readonly complete: number;
  readonly output: O | undefined;
}

/** Verdict for one partition. */
export interface PartitionResult<I, O> {
  readonly partition: string;
  /** Operations checked in this partition. */
  readonly operations: number;
  readonly verdict: "linearizable" | "not-linearizable" | "unknown";
  /** Search steps spent (calls tried plus backtracks). */
  readonly steps: number;
  /** For a non-linearizable partition: the longest linearizable prefix found... */
  readonly longestPrefix?: readonly Operation<I, O>[];
  /** ...and the operations that could not be placed after it (those invoked before the first pending return). */
  readonly stuck?: readonly Operation<I, O>[];
}

/** The checker's verdict on a whole history. */
export interface LinearizabilityResult<I, O> {
  readonly verdict: "linearizable" | "not-linearizable" | "unknown";
  readonly partitions: readonly PartitionResult<I, O>[];
  /** Operations checked: the sum of the partitions' counts. */
  readonly operations: number;
  /** Operations given but not checked: read-only ones whose outcome is unknown (they constrain nothing). */
  readonly unconstrained: number;
  readonly steps: number;
}

/** Options. */
export interface CheckOptions {
  /** Search steps allowed per partition before giving up with `unknown`. Default 20,000,000. */
  readonly stepsMaxPerPartition?: number;
}

interface Entry<I, O> {
  readonly op: Operation<I, O>;
  /** Index of the operation within its partition (its bit in the linearized set). */
  readonly bit: number;
  readonly isCall: boolean;
  readonly time: number;
  /** For a call: its return entry. */
  match: Entry<I, O> | undefined;
  prev: Entry<I, O> | undefined;
  next: Entry<I, O> | undefined;
}

/** Sort order: by time; at equal times calls come first (equal times count as concurrent). */
function entryOrder<I, O>(a: Entry<I, O>, b: Entry<I, O>): number {
  if (a.time !== b.time) return a.time - b.time;
  if (a.isCall !== b.isCall) return a.isCall ? -1 : 1;
  return a.op.id - b.op.id;
}

/** Build the doubly linked list of call and return entries, headed by a sentinel. */
function buildEntries<I, O>(ops: readonly Operation<I, O>[]): Entry<I, O> {
  const entries: Entry<I, O>[] = [];
  ops.forEach((op, bit) => {
    const call: Entry<I, O> = {
      op,
      bit,
      isCall: true,
      time: op.invoke,
      match: undefined,
      prev: undefined,
      next: undefined,
    };
    const ret: Entry<I, O> = {
      op,
      bit,
      isCall: false,
      time: op.complete,
      match: undefined,
      prev: undefined,
      next: undefined,
    };
    call.match = ret;
    entries.push(call, ret);
  });
  entries.sort(entryOrder);
  const head = {
    op: undefined,
    bit: -1,
    isCall: false,
    time: -Infinity,
    match: undefined,
    prev: undefined,
    next: undefined,
  } as unknown as Entry<I, O>;
  let last = head;
  for (const entry of entries) {
    last.next = entry;
    entry.prev = last;
    last = entry;
  }
  return head;
}

/** Remove a call and its return from the list (Lowe's `lift`). */
function lift<I, O>(call: Entry<I, O>): void {
  call.prev!.next = call.next;
  if (call.next !== undefined) call.next.prev = call.prev;
  const ret = call.match!;
  ret.prev!.next = ret.next;
  if (ret.next !== undefined) ret.next.prev = ret.prev;
}

/** Put them back, in reverse order of removal (`unlift`). */
function unlift<I, O>(call: Entry<I, O>): void {
  const ret = call.match!;
  ret.prev!.next = ret;
  if (ret.next !== undefined) ret.next.prev = ret;
  call.prev!.next = call;
  if (call.next !== undefined) call.next.prev = call;
}

/**
 * The memo table's key for the set of linearized operations: a 96-bit Zobrist hash (three
 * 32-bit lanes, updated in O(1) per operation) instead of the whole set. Two different sets
 * share a key with probability about n^2 / 2^97 over n memo entries (below 10^-15 for ten
 * million entries). A shared key can only make the search skip a configuration, that is
 * hide a linearization and report a false violation; it can never invent a linearization.
 */
class LinearizedSet {
  private readonly zobrist: Uint32Array;
  private hashA = 0;
  private hashB = 0;
  private hashC = 0;
  constructor(size: number) {
    this.zobrist = new Uint32Array(3 * size);
    let seed = 0x9e3779b9;
    for (let i = 0; i < this.zobrist.length; i++) {
      // mulberry32: a fixed seed, so every run of the checker is the same run.
      seed = (seed + 0x6d2b79f5) >>> 0;
      let t = seed;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      this.zobrist[i] = (t ^ (t >>> 14)) >>> 0;
    }
  }
  toggle(bit: number): void {
    this.hashA ^= this.zobrist[3 * bit]!;
    this.hashB ^= this.zobrist[3 * bit + 1]!;
    this.hashC ^= this.zobrist[3 * bit + 2]!;
  }
  key(): string {
    return `${this.hashA.toString(36)}.${this.hashB.toString(36)}.${this.hashC.toString(36)}`;
  }
}

/**
 * The choices at a configuration: the pending calls (every call before the first return
 * entry). Two rules keep the search small without losing answers or adding any.
 *
 * 1. If a read-only pending operation can be linearized now, it is the only choice. Placing
 *    it now is always as good as later: it changes no state, its output matches the current
 *    state, and nothing pending must precede it in real time (else that operation's return
 *    would come before this call in the list).
 * 2. The operation of the first return entry must be placed before anything invoked after
 *    that return (Lowe's just-in-time view). The choices after which it can be placed are
 *    tried first, the others after them in list order.
 */
function choices<S, I, O>(head: Entry<I, O>, model: LinearizabilityModel<S, I, O>, state: S): Entry<I, O>[] {
  const pending: Entry<I, O>[] = [];
  let e = head.next;
  for (; e !== undefined && e.isCall; e = e.next) {
    if (model.readOnly(e.op.input) && model.step(state, e.op.input, e.op.output) !== undefined) return [e];
    pending.push(e);
  }
  const forced = e?.op;
  if (forced === undefined || pending.length < 2 || !model.readOnly(forced.input)) return pending;
  const enabling: Entry<I, O>[] = [];
  const others: Entry<I, O>[] = [];
  for (const c of pending) {
    const next = model.step(state, c.op.input, c.op.output);
    const helps = next !== undefined && model.step(next, forced.input, forced.output) !== undefined;
    (helps ? enabling : others).push(c);
  }
  return enabling.length === 0 ? pending : enabling.concat(others);
}

interface Frame<I, O, S> {
  readonly options: Entry<I, O>[];
  index: number;
  readonly state: S;
}

/** Check one partition: Wing-Gong search with Lowe's memoization. */
export function checkPartition<S, I, O>(
  model: LinearizabilityModel<S, I, O>,
  partition: string,
  ops: readonly Operation<I, O>[],
  stepsMax: number,
): PartitionResult<I, O> {
  const head = buildEntries(ops);
  const linearized = new LinearizedSet(ops.length);
  const seen = new Set<string>();
  // path[i] is the call linearized at depth i; frames[i] the choices tried at depth i.
  const path: Entry<I, O>[] = [];
  const frames: Frame<I, O, S>[] = [
    { options: choices(head, model, model.init(partition)), index: 0, state: model.init(partition) },
  ];
  let steps = 0;
  let longest: Operation<I, O>[] = [];
  let stuck: Operation<I, O>[] = [];

  while (head.next !== undefined) {
    if (steps++ >= stepsMax) return { partition, operations: ops.length, verdict: "unknown", steps };
    const frame = frames[frames.length - 1]!;
    const call = frame.options[frame.index++];
    if (call === undefined) {
      // Every choice at this depth failed: record how far we got, then backtrack.
      if (path.length > longest.length || (path.length === longest.length && stuck.length === 0)) {
        longest = path.map((e) => e.op);
        stuck = frame.options.map((e) => e.op);
      }
      frames.pop();
      const undo = path.pop();
      if (undo === undefined) {
        return { partition, operations: ops.length, verdict: "not-linearizable", steps, longestPrefix: longest, stuck };
      }
      linearized.toggle(undo.bit);
      unlift(undo);
      continue;
    }
    const next = model.step(frame.state, call.op.input, call.op.output);
    if (next === undefined) continue;
    linearized.toggle(call.bit);
    const memo = `${linearized.key()}\u0000${model.key(next)}`;
    if (seen.has(memo)) {
      linearized.toggle(call.bit);
      continue;
    }
    seen.add(memo);
    lift(call);
    path.push(call);
    frames.push({ options: choices(head, model, next), index: 0, state: next });
  }
  return { partition, operations: ops.length, verdict: "linearizable", steps };
}

/** Check a whole history, partition by partition. */
export function checkLinearizable<S, I, O>(
  model: LinearizabilityModel<S, I, O>,
  ops: readonly Operation<I, O>[],
  options: CheckOptions = {},
): LinearizabilityResult<I, O> {
  const stepsMax = options.stepsMaxPerPartition ?? 20_000_000;
  const byPartition = new Map<string, Operation<I, O>[]>();
  let unconstrained = 0;
  for (const op of ops) {
    if (!(op.complete >= op.invoke))
      throw new Error(`operation ${op.id} completes (${op.complete}) before it is invoked (${op.invoke})`);
    // A read-only operation with an unknown outcome observes nothing anyone saw and changes
    // nothing: it constrains nothing. Only the outcome decides this, never a missing output:
    // a completed operation whose output the model checks by a predicate (a failed cas of
    // the register model) has no output and must still be checked.
    if (op.complete === Infinity && op.output === undefined && model.readOnly(op.input)) {
      unconstrained++;
      continue;
    }
    const key = model.partition(op.input) ?? noPartition;
    let list = byPartition.get(key);
    if (list === undefined) byPartition.set(key, (list = []));
    list.push(op);
  }
  const partitions: PartitionResult<I, O>[] = [];
  for (const key of [...byPartition.keys()].sort())
    partitions.push(checkPartition(model, key, byPartition.get(key)!, stepsMax));
  const verdict = partitions.some((p) => p.verdict === "not-linearizable")
    ? "not-linearizable"
    : partitions.some((p) => p.verdict === "unknown")
      ? "unknown"
      : "linearizable";
  return {
    verdict,
    partitions,
    operations: partitions.reduce((sum, p) => sum + p.operations, 0),
    unconstrained,
    steps: partitions.reduce((sum, p) => sum + p.steps, 0),
  };
}

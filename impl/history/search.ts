/**
 * The search of one partition: Wing and Gong's tree search with Lowe's memoization, in the
 * form Porcupine gives it (a doubly linked list of call and return entries; `lift` takes an
 * operation's two entries out when it is linearized, `unlift` puts them back on backtrack),
 * with the order of Lowe's just-in-time linearization (the operation whose return comes first
 * is tried first) and one rule that cuts the tree without changing the answer (a read-only
 * operation that can be placed now is placed now, with no alternative).
 *
 * Nothing is allocated per step: the list is two Int32Arrays, the linearized set one bitset,
 * model states are interned to integers and each (operation, state) transition is computed
 * by the model once, and the memo of visited configurations (linearized set, state) is an
 * open-addressing table over a slab of bitset windows, compared exactly (no hash is trusted
 * to decide equality). Operations are numbered by return time (unknown outcomes last), so
 * that a linearized set is a run of full words, a short window of mixed ones, and zeros: the
 * memo stores only the window.
 *
 * A partition the search does not decide quickly is offered to refute.ts, which may refute it
 * by a necessary condition in O(n log n) (a stale read's witness), something the search can
 * take exponential time to conclude.
 *
 * Pure: no clock, no I/O; stopped only by the step budget or by the caller's `stop` probe.
 */
import { refute, type Refutation } from "./refute.ts";

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
  /** An exact key of a state within a partition (equal keys, by SameValueZero, exactly when equal states). */
  key(state: S): StateKey;
  /**
   * Optional: the operation as an access to a register whose value is the state, which lets a
   * key be refuted without a search (refute.ts). Undefined for models that are not registers.
   */
  readonly registerView?: (input: I, output: O | undefined) => RegisterView;
}

/** The key of a model state (see {@link LinearizabilityModel.key}). */
export type StateKey = string | number | null;

/**
 * An operation seen as a register access. `observes`: the key of the state just before it,
 * when its output fixes that state exactly (a read's value). `leaves`: the key of the state it
 * leaves when it changes the state, `certain` when it leaves exactly that whenever it takes
 * effect (a write; not a cas whose result was not recorded); "any" when the state it may leave
 * is not known from the operation alone (an append whose output was not recorded); undefined
 * when it never changes the state.
 */
export interface RegisterView {
  readonly observes?: StateKey;
  readonly leaves?: { readonly value: StateKey; readonly certain: boolean } | "any";
}

/** The partition of operations that touch no key (a kv key is never empty). */
export const noPartition = "";

/**
 * One operation of a history. `complete` is +Infinity when the outcome is unknown (it may
 * have taken effect at any time after `invoke`, or never); `output` is undefined when it was
 * not recorded (any output) or the outcome is unknown.
 */
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
  /** For a linearizable partition: one linearization. */
  readonly linearization?: readonly Operation<I, O>[];
  /** For a non-linearizable partition: the longest linearizable prefix found... */
  readonly longestPrefix?: readonly Operation<I, O>[];
  /** ...and the operations that could not be placed after it (those invoked before the first pending return). */
  readonly stuck?: readonly Operation<I, O>[];
  /** For a partition refuted without a search (refute.ts): why, and the operations that show it. */
  readonly refutation?: Refutation<I, O>;
}

const nil = -1;
const head = 0;
/** Values of the search loop's `entry` besides an entry index: at a new configuration; a forced read that failed. */
const arriving = -3;
const refuted = -2;
/** A transition not computed yet; -1 is "the model refuses". */
const unknownTransition = -2;

/**
 * Typed arrays reused by every search of this thread: a search runs to its end before the
 * next one starts, and allocating a dozen arrays per key was a large part of checking many
 * small histories. Each search initializes the part it uses; arrays above a million elements
 * are not kept.
 */
const pooled: Int32Array[] = [];
const pooledFloats: Float64Array[] = [];
const poolLimit = 1 << 20;
const enum Slot {
  Next,
  Prev,
  ReadOnly,
  Words,
  Full,
  PathCall,
  PathState,
  PathForced,
  MemoKeys,
  MemoStates,
  MemoOffsets,
  Slab,
  Table,
  ByInvoke,
  ByReturn,
  Calls,
}

/** The pooled array of `slot`, at least `length` long (its contents are left over from earlier searches). */
function scratch(slot: Slot, length: number): Int32Array {
  const kept = pooled[slot];
  if (kept !== undefined && kept.length >= length) return kept;
  const made = new Int32Array(Math.max(length, 2 * (kept?.length ?? 0), 64));
  if (made.length <= poolLimit) pooled[slot] = made;
  return made;
}

/** Make `array` the pooled array of `slot` (it replaced a smaller one). */
function keep(slot: Slot, array: Int32Array): Int32Array {
  if (array.length <= poolLimit) pooled[slot] = array;
  return array;
}

function scratchFloats(slot: number, length: number): Float64Array {
  const kept = pooledFloats[slot];
  if (kept !== undefined && kept.length >= length) return kept;
  const made = new Float64Array(Math.max(length, 2 * (kept?.length ?? 0), 64));
  if (made.length <= poolLimit) pooledFloats[slot] = made;
  return made;
}

/**
 * Interned model states and the memoized transitions of each operation: `table[state * n + op]`
 * is the next state, -1 refused, -2 not computed yet, for the first `dense` states (at most
 * 16 M cells, 64 MiB); the transitions of states beyond are kept in a map.
 */
class Transitions<S, I, O> {
  private readonly states: S[] = [];
  private readonly ids = new Map<string | number | null, number>();
  table: Int32Array;
  dense = 0;
  /** Operations: the table's row length. */
  readonly n: number;
  private readonly sparse = new Map<number, number>();

  constructor(
    private readonly model: LinearizabilityModel<S, I, O>,
    private readonly ops: readonly Operation<I, O>[],
    init: S,
  ) {
    this.n = ops.length;
    this.table = scratch(Slot.Table, Math.max(1, ops.length) * 4);
    this.intern(init);
  }

  private intern(state: S): number {
    const key = this.model.key(state);
    const known = this.ids.get(key);
    if (known !== undefined) return known;
    const id = this.states.length;
    this.states.push(state);
    this.ids.set(key, id);
    const n = this.ops.length;
    if (id === this.dense && (id + 1) * n <= 1 << 24) {
      if (this.table.length < (id + 1) * n) {
        const bigger = new Int32Array(Math.min(1 << 24, Math.max(2 * this.table.length, (id + 1) * n)));
        bigger.set(this.table.subarray(0, id * n));
        this.table = keep(Slot.Table, bigger);
      }
      this.table.fill(unknownTransition, id * n, (id + 1) * n);
      this.dense++;
    }
    return id;
  }

  /** The transition not found in the table: computed by the model once, then kept. */
  fill(op: number, state: number): number {
    if (state < this.dense) return (this.table[state * this.ops.length + op] = this.compute(op, state));
    const key = state * this.ops.length + op;
    const cached = this.sparse.get(key);
    if (cached !== undefined) return cached;
    const computed = this.compute(op, state);
    this.sparse.set(key, computed);
    return computed;
  }

  private compute(op: number, state: number): number {
    const o = this.ops[op]!;
    const after = this.model.step(this.states[state]!, o.input, o.output);
    return after === undefined ? -1 : this.intern(after);
  }
}

/** The state after operation `op` in state `state`, or -1 when the model cannot explain its output. */
function transition<S, I, O>(t: Transitions<S, I, O>, op: number, state: number): number {
  const after = state < t.dense ? t.table[state * t.n + op]! : unknownTransition;
  return after === unknownTransition ? t.fill(op, state) : after;
}

/**
 * The memo of visited configurations: (linearized set, state) pairs, exactly, in an
 * open-addressing table of `mask + 1` slots. Each entry is a window of the set's words: those
 * below `low` are all ones, those from `high` on all zeros, so the window [low, high) with the
 * two bounds is a canonical form, kept in `slab` as low, high, then the window's words. The
 * search reads and writes the arrays itself; the table and the slab grow here.
 */
class Memo {
  mask: number;
  keys: Int32Array;
  statesOf: Int32Array;
  /** Where each entry's window starts in the slab; -1: a free slot. */
  offsets: Int32Array;
  slab: Int32Array;

  /** Sized for a search that places each of `operations` about once (it grows beyond). */
  constructor(operations: number) {
    let capacity = 64;
    while (capacity < 4 * operations && capacity < 1 << 16) capacity *= 2;
    this.mask = capacity - 1;
    this.keys = scratch(Slot.MemoKeys, capacity);
    this.statesOf = scratch(Slot.MemoStates, capacity);
    this.offsets = scratch(Slot.MemoOffsets, capacity);
    this.offsets.fill(nil, 0, capacity);
    this.slab = scratch(Slot.Slab, 2 * capacity);
  }

  /** A slab with room for `needed` words, the first `used` kept. */
  growSlab(needed: number, used: number): Int32Array {
    const bigger = new Int32Array(Math.max(this.slab.length * 2, needed));
    bigger.set(this.slab.subarray(0, used));
    return (this.slab = keep(Slot.Slab, bigger));
  }

  /** Double the table. */
  grow(): void {
    const keys = this.keys;
    const statesOf = this.statesOf;
    const offsets = this.offsets;
    const old = this.mask + 1;
    const capacity = old * 2;
    this.mask = capacity - 1;
    this.keys = keep(Slot.MemoKeys, new Int32Array(capacity));
    this.statesOf = keep(Slot.MemoStates, new Int32Array(capacity));
    this.offsets = keep(Slot.MemoOffsets, new Int32Array(capacity).fill(nil));
    for (let j = 0; j < old; j++) {
      if (offsets[j] === nil) continue;
      let i = keys[j]! & this.mask;
      while (this.offsets[i] !== nil) i = (i + 1) & this.mask;
      this.keys[i] = keys[j]!;
      this.statesOf[i] = statesOf[j]!;
      this.offsets[i] = offsets[j]!;
    }
  }
}

/** Zobrist keys of operations 0..n-1, shared by every search of this thread (computed once, grown on demand). */
let zobristTable = new Int32Array(0);
function zobristKeys(n: number): Int32Array {
  if (zobristTable.length < n) {
    const table = new Int32Array(Math.max(n, 2 * zobristTable.length, 1024));
    let seed = 0x9e3779b9;
    for (let i = 0; i < table.length; i++) {
      // mulberry32 with a fixed seed: every run of the checker is the same run.
      seed = (seed + 0x6d2b79f5) | 0;
      let t = seed;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      table[i] = t ^ (t >>> 14);
    }
    zobristTable = table;
  }
  return zobristTable;
}

/** Options of {@link checkPartition}. */
export interface PartitionOptions {
  /** Search steps allowed before answering `unknown`. */
  readonly stepsMax: number;
  /** Polled every 65,536 steps: true stops the search with `unknown` (another partition already failed). */
  readonly stop?: () => boolean;
  /** Try the refutation by a necessary condition (refute.ts) when the search is slow to decide. Default true. */
  readonly refute?: boolean;
}

/** Steps the search gets before the refutation is tried (most keys are decided well within them). */
export const stepsBeforeRefuting = 100_000;

/**
 * Check one partition: the search, and when it has not decided within
 * {@link stepsBeforeRefuting} steps, the refutation by a necessary condition (refute.ts), whose
 * witness the search must confirm; when that finds nothing, the search again with the rest of
 * the budget.
 */
export function checkPartition<S, I, O>(
  model: LinearizabilityModel<S, I, O>,
  partition: string,
  given: readonly Operation<I, O>[],
  options: PartitionOptions,
): PartitionResult<I, O> {
  if (options.refute === false) return searchPartition(model, partition, given, options);
  const first = searchPartition(model, partition, given, {
    ...options,
    stepsMax: Math.min(options.stepsMax, stepsBeforeRefuting),
  });
  if (first.verdict !== "unknown" || options.stop?.() === true) return first;
  const refutation = refute(model, partition, given);
  if (refutation !== undefined) {
    const witness = searchPartition(model, partition, refutation.operations, { stepsMax: 10_000 });
    // A witness the search does not confirm would be a bug of refute.ts: the search decides.
    if (witness.verdict === "not-linearizable")
      return {
        partition,
        operations: given.length,
        verdict: "not-linearizable",
        steps: first.steps + witness.steps,
        refutation,
      };
  }
  if (options.stepsMax <= first.steps) return first;
  const rest = searchPartition(model, partition, given, { ...options, stepsMax: options.stepsMax - first.steps });
  return { ...rest, steps: first.steps + rest.steps };
}

/** Search one partition: Wing-Gong search with Lowe's memoization, Porcupine's list form. */
function searchPartition<S, I, O>(
  model: LinearizabilityModel<S, I, O>,
  partition: string,
  given: readonly Operation<I, O>[],
  options: PartitionOptions,
): PartitionResult<I, O> {
  const search = new Search(model, partition, given);
  const verdict = run(search, options.stepsMax, options.stop);
  return search.result(partition, verdict);
}

type Verdict = PartitionResult<unknown, unknown>["verdict"];

/** One partition's search: the list, the linearized set, the memo and the path, all in typed arrays. */
class Search<S, I, O> {
  /** Bit i is the operation with the i-th earliest return (unknown outcomes last). */
  readonly ops: Operation<I, O>[];
  /** Entry 0 is the head; the call of operation i is 2i + 1, its return 2i + 2. */
  readonly next: Int32Array;
  readonly prev: Int32Array;
  /** 1 for an operation that never changes the state. */
  readonly readOnly: Int32Array;
  readonly transitions: Transitions<S, I, O>;
  /** The linearized set, one bit per operation, in `count` words. */
  readonly words: Int32Array;
  readonly count: number;
  /** The words of the set of every operation. */
  readonly full: Int32Array;
  readonly zobrist: Int32Array;
  readonly memo: Memo;
  /** The path: the call linearized at each depth, the state before it, and 1 where rule 1 forced it. */
  readonly pathCall: Int32Array;
  readonly pathState: Int32Array;
  readonly pathForced: Int32Array;
  /** Where the search ended: the path's length and the steps spent. */
  depth = 0;
  steps = 0;
  /** The longest linearizable prefix seen (operation numbers) and what could not follow it. */
  private longest: number[] = [];
  private stuck: number[] = [];

  constructor(model: LinearizabilityModel<S, I, O>, partition: string, given: readonly Operation<I, O>[]) {
    const n = given.length;
    this.next = scratch(Slot.Next, 2 * n + 1);
    this.prev = scratch(Slot.Prev, 2 * n + 1);
    this.ops = byReturn(given, this.next, this.prev);
    const readOnly = (this.readOnly = scratch(Slot.ReadOnly, n));
    for (let i = 0; i < n; i++) readOnly[i] = model.readOnly(this.ops[i]!.input) ? 1 : 0;
    this.transitions = new Transitions(model, this.ops, model.init(partition));
    const count = (this.count = (n + 31) >>> 5);
    this.words = scratch(Slot.Words, count).fill(0, 0, count);
    this.full = scratch(Slot.Full, count).fill(-1, 0, count);
    if (n % 32 !== 0) this.full[count - 1] = (2 ** (n % 32) - 1) | 0;
    this.zobrist = zobristKeys(n);
    this.memo = new Memo(n);
    this.pathCall = scratch(Slot.PathCall, n);
    this.pathState = scratch(Slot.PathState, n);
    this.pathForced = scratch(Slot.PathForced, n);
  }

  /** At a backtrack from `depth`: keep the path if it is the longest yet, with the calls pending after it. */
  record(depth: number): void {
    if (depth < this.longest.length || (depth === this.longest.length && this.stuck.length > 0)) return;
    this.longest = Array.from(this.pathCall.subarray(0, depth), (call) => (call - 1) >>> 1);
    this.stuck = [];
    for (let e = this.next[head]!; e !== nil && (e & 1) === 1; e = this.next[e]!) this.stuck.push((e - 1) >>> 1);
  }

  result(partition: string, verdict: Verdict): PartitionResult<I, O> {
    const base = { partition, operations: this.ops.length, verdict, steps: this.steps };
    if (verdict === "linearizable") {
      const linearization = new Array<Operation<I, O>>(this.depth);
      for (let d = 0; d < this.depth; d++) linearization[d] = this.ops[(this.pathCall[d]! - 1) >>> 1]!;
      return { ...base, linearization };
    }
    if (verdict === "unknown") return base;
    return {
      ...base,
      longestPrefix: this.longest.map((i) => this.ops[i]!),
      stuck: this.stuck.map((i) => this.ops[i]!),
    };
  }
}

/** True when linearizing `call` in `state` leaves a state in which `forcedCall` fits. */
function enables<S, I, O>(t: Transitions<S, I, O>, call: number, forcedCall: number, state: number): boolean {
  if (forcedCall === nil) return false;
  const after = transition(t, (call - 1) >>> 1, state);
  return after >= 0 && transition(t, (forcedCall - 1) >>> 1, after) >= 0;
}

/**
 * The search, as one loop over local variables (in a fresh process the optimizing compiler
 * compiles it once, rather than a dozen closures each with what they inline). At each new
 * configuration (`entry === arriving`):
 *
 *   rule 1: a read-only pending call whose output fits the state is placed now and nothing
 *   else is tried here (it changes nothing, and nothing pending precedes it in real time, or
 *   that operation's return would stand before this call in the list); if its configuration
 *   was seen (and failed), this one fails too;
 *
 *   otherwise Lowe's just-in-time order: the operation that must be linearized next (its
 *   return comes first) is tried first, then (phase 0) the calls after which it fits, then
 *   (phase 1) the others. A return entry reached means every choice here failed: backtrack.
 *
 * Placing a call sets its bit, looks the configuration up in the memo (new: stored, the call's
 * entries lifted out of the list; seen: the bit cleared again, the next choice tried).
 */
function run<S, I, O>(s: Search<S, I, O>, stepsMax: number, stop: (() => boolean) | undefined): Verdict {
  const { next, prev, readOnly, words, full, count, zobrist, pathCall, pathState, pathForced, transitions, memo } = s;
  const n = s.ops.length;
  // The transitions' table and how many states it holds; both change only when `fill` adds a state.
  let table = transitions.table;
  let dense = transitions.dense;
  let keys = memo.keys;
  let statesOf = memo.statesOf;
  let offsets = memo.offsets;
  let mask = memo.mask;
  let slab = memo.slab;
  let size = 0;
  let slabUsed = 0;
  // The linearized set's window (words below `low` full, from `high` on empty) and Zobrist hash.
  let low = 0;
  let high = 0;
  let hash = 0;
  let depth = 0;
  let state = 0;
  let steps = 0;
  let polled = 0;
  let forcedCall = nil;
  let phase = 0;
  let entry = arriving;
  let verdict: Verdict = "linearizable";
  search: while (next[head] !== nil) {
    if (steps >= stepsMax) {
      verdict = "unknown";
      break;
    }
    if (steps - polled > 0xffff) {
      polled = steps;
      if (stop !== undefined && stop()) {
        verdict = "unknown";
        break;
      }
    }
    // Choose the call to place, and where to go on if it cannot be placed.
    let call: number;
    let forced = 0;
    let onFailure: number;
    if (entry === arriving) {
      let e = next[head]!;
      for (; e !== nil && (e & 1) === 1; e = next[e]!) {
        const op = (e - 1) >>> 1;
        if (readOnly[op] === 0) continue;
        let after = state < dense ? table[state * n + op]! : unknownTransition;
        if (after === unknownTransition) {
          after = transitions.fill(op, state);
          table = transitions.table;
          dense = transitions.dense;
        }
        if (after === state) break;
      }
      if (e !== nil && (e & 1) === 1) {
        call = e;
        forced = 1;
        onFailure = refuted;
      } else {
        forcedCall = e === nil ? nil : e - 1;
        phase = 0;
        if (forcedCall === nil) {
          entry = next[head]!;
          continue;
        }
        call = forcedCall;
        onFailure = next[head]!;
      }
    } else if (entry > 0 && (entry & 1) === 1) {
      if (entry === forcedCall || enables(transitions, entry, forcedCall, state) !== (phase === 0)) {
        entry = next[entry]!;
        continue;
      }
      call = entry;
      onFailure = next[entry]!;
    } else if (entry !== refuted && phase === 0) {
      phase = 1;
      entry = next[head]!;
      continue;
    } else {
      // A return entry (or a refuted forced read): every choice here failed; backtrack.
      steps++;
      s.record(depth);
      for (;;) {
        if (depth === 0) {
          verdict = "not-linearizable";
          break search;
        }
        depth--;
        const back = pathCall[depth]!;
        state = pathState[depth]!;
        const op = (back - 1) >>> 1;
        const w = op >>> 5;
        words[w] = words[w]! & ~(1 << (op & 31));
        hash ^= zobrist[op]!;
        if (w < low) low = w;
        while (high > 0 && words[high - 1] === 0) high--;
        // Put the call's two entries back (unlift), return first.
        const ret = back + 1;
        next[prev[ret]!] = ret;
        if (next[ret] !== nil) prev[next[ret]!] = ret;
        next[prev[back]!] = back;
        if (next[back] !== nil) prev[next[back]!] = back;
        // A forced read's configuration had no alternative: its parent fails too.
        if (pathForced[depth] === 0) {
          let e = next[head]!;
          while (e !== nil && (e & 1) === 1) e = next[e]!;
          forcedCall = e === nil ? nil : e - 1;
          if (back === forcedCall) {
            phase = 0;
            entry = next[head]!;
          } else {
            phase = enables(transitions, back, forcedCall, state) ? 0 : 1;
            entry = next[back]!;
          }
          break;
        }
      }
      continue;
    }
    // Place `call` if the model allows it and the configuration is new.
    steps++;
    const op = (call - 1) >>> 1;
    let after = state < dense ? table[state * n + op]! : unknownTransition;
    if (after === unknownTransition) {
      after = transitions.fill(op, state);
      table = transitions.table;
      dense = transitions.dense;
    }
    if (after < 0) {
      entry = onFailure;
      continue;
    }
    const w = op >>> 5;
    const bit = 1 << (op & 31);
    words[w] = words[w]! | bit;
    const hashWith = hash ^ zobrist[op]!;
    let lowWith = low;
    while (lowWith < count && words[lowWith] === full[lowWith]) lowWith++;
    const highWith = w >= high ? w + 1 : high;
    const key = (hashWith ^ Math.imul(after + 1, 0x9e3779b1)) | 0;
    let i = key & mask;
    for (;;) {
      const offset = offsets[i]!;
      if (offset === nil) break;
      if (keys[i] === key && statesOf[i] === after && slab[offset] === lowWith && slab[offset + 1] === highWith) {
        let v = lowWith;
        for (let at = offset + 2; v < highWith && slab[at] === words[v]; at++) v++;
        if (v === highWith) break;
      }
      i = (i + 1) & mask;
    }
    if (offsets[i] !== nil) {
      // Seen (and failed, or it is on the path): take the bit back and try the next choice.
      words[w] = words[w] & ~bit;
      entry = onFailure;
      continue;
    }
    const length = 2 + highWith - lowWith;
    if (slabUsed + length > slab.length) slab = memo.growSlab(slabUsed + length, slabUsed);
    slab[slabUsed] = lowWith;
    slab[slabUsed + 1] = highWith;
    for (let v = lowWith, at = slabUsed + 2; v < highWith; v++, at++) slab[at] = words[v]!;
    keys[i] = key;
    statesOf[i] = after;
    offsets[i] = slabUsed;
    slabUsed += length;
    if (++size * 2 > mask) {
      memo.grow();
      keys = memo.keys;
      statesOf = memo.statesOf;
      offsets = memo.offsets;
      mask = memo.mask;
    }
    low = lowWith;
    high = highWith;
    hash = hashWith;
    pathCall[depth] = call;
    pathState[depth] = state;
    pathForced[depth] = forced;
    depth++;
    state = after;
    // Take the call's two entries out of the list (lift).
    next[prev[call]!] = next[call]!;
    if (next[call] !== nil) prev[next[call]!] = prev[call]!;
    const ret = call + 1;
    next[prev[ret]!] = next[ret]!;
    if (next[ret] !== nil) prev[next[ret]!] = prev[ret]!;
    entry = arriving;
  }
  s.depth = depth;
  s.steps = steps;
  return verdict;
}

/**
 * The operations numbered by return time, then invocation time, then as given (unknown
 * outcomes last), and their call and return entries linked in time order into `next` and
 * `prev` (calls before returns at equal times, calls by invocation time, then as given).
 * Histories list their operations by invocation or by completion, each nearly the other's
 * order, so the usual case is two insertion sorts over typed arrays that move a few elements
 * each; anything else is sorted by {@link sortedOrder}.
 */
function byReturn<I, O>(given: readonly Operation<I, O>[], next: Int32Array, prev: Int32Array): Operation<I, O>[] {
  const n = given.length;
  const invokes = scratchFloats(0, n);
  const completes = scratchFloats(1, n);
  let inOrder = true;
  for (let i = 0; i < n; i++) {
    const op = given[i]!;
    invokes[i] = op.invoke;
    completes[i] = op.complete;
    if (i > 0 && invokes[i - 1]! > invokes[i]!) inOrder = false;
  }
  // byInvoke[k]: the position in `given` of the k-th operation by invocation.
  const byInvoke = scratch(Slot.ByInvoke, n);
  if (inOrder) for (let k = 0; k < n; k++) byInvoke[k] = k;
  else if (!insertionOrder(invokes, n, byInvoke)) sortedOrder(invokes, n, byInvoke);
  // Return times in invocation order, sorted stably: ties stay in invocation order.
  const returns = scratchFloats(2, n);
  for (let k = 0; k < n; k++) returns[k] = completes[byInvoke[k]!]!;
  // byReturn[i]: the invocation rank of operation i.
  const order = scratch(Slot.ByReturn, n);
  if (!insertionOrder(returns, n, order)) sortedOrder(returns, n, order);
  const ops = new Array<Operation<I, O>>(n);
  // calls[k]: the operation invoked k-th.
  const calls = scratch(Slot.Calls, n);
  for (let i = 0; i < n; i++) {
    ops[i] = given[byInvoke[order[i]!]!]!;
    calls[order[i]!] = i;
  }
  // Merge calls (by invocation) and returns (by operation number) into one list.
  next.fill(nil, 0, 2 * n + 1);
  prev.fill(nil, 0, 2 * n + 1);
  let last = head;
  let k = 0;
  for (let r = 0; r < n; r++) {
    const complete = returns[order[r]!]!;
    for (; k < n && invokes[byInvoke[k]!]! <= complete; k++) {
      const e = 2 * calls[k]! + 1;
      next[last] = e;
      prev[e] = last;
      last = e;
    }
    const e = 2 * r + 2;
    next[last] = e;
    prev[e] = last;
    last = e;
  }
  return ops;
}

/**
 * Sort positions 0..n-1 by `key` into `order`, ties by position, by binary insertion, when
 * that moves at most 32n + 1,024 elements; false (and `order` unspecified) when it would move
 * more. A history lists its operations by invocation or by completion, and either order is
 * nearly the other (an operation overtakes only those running beside it, and one that timed
 * out, listed last, moves once), so both sorts are a few moves per operation.
 */
function insertionOrder(key: Float64Array, n: number, order: Int32Array): boolean {
  let moves = 32 * n + 1024;
  for (let i = 0; i < n; i++) {
    const k = key[i]!;
    if (i === 0 || key[order[i - 1]!]! <= k) {
      order[i] = i;
      continue;
    }
    // The first position whose key is above k (ties stay in position order).
    let low = 0;
    let high = i - 1;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (key[order[mid]!]! <= k) low = mid + 1;
      else high = mid;
    }
    moves -= i - low;
    if (moves < 0) return false;
    order.copyWithin(low + 1, low, i);
    order[low] = i;
  }
  return true;
}

/** Positions below this are packed beside a rank in one double (2^21: exact up to 2^52 in all). */
const packLimit = 1 << 21;

/**
 * Sort positions 0..n-1 by `key` into `order`, ties by position: a native sort of each key's
 * rank packed with its position in one double, not a comparator called from the sort (a
 * comparator was most of the checking time of a small history before the code is compiled).
 */
function sortedOrder(key: Float64Array, n: number, order: Int32Array): void {
  if (n >= packLimit) {
    const list = Array.from({ length: n }, (_, i) => i).sort((a, b) => key[a]! - key[b]! || a - b);
    order.set(list);
    return;
  }
  // Distinct values in order; a key's rank is its index among them.
  const values = key.slice(0, n).sort();
  let distinct = 0;
  for (let i = 0; i < n; i++) if (distinct === 0 || values[i] !== values[distinct - 1]) values[distinct++] = values[i]!;
  const packed = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const k = key[i]!;
    let low = 0;
    let high = distinct - 1;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (values[mid]! < k) low = mid + 1;
      else high = mid;
    }
    packed[i] = low * packLimit + i;
  }
  packed.sort();
  for (let i = 0; i < n; i++) order[i] = packed[i]! % packLimit;
}

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
/** Results of rule 1 (see `placeReads`) besides an entry index. */
const placed = -3;
const refuted = -2;
/** A transition not computed yet; -1 is "the model refuses". */
const unknownTransition = -2;

/** Interned model states and the memoized transitions of each operation. */
class Transitions<S, I, O> {
  private readonly states: S[] = [];
  private readonly ids = new Map<string | number | null, number>();
  /** rows[state][op]: the next state, -1 refused, -2 not computed; null rows fall back to `sparse`. */
  private readonly rows: (Int32Array | null)[] = [];
  private readonly sparse = new Map<number, number>();
  private cells = 0;

  constructor(
    private readonly model: LinearizabilityModel<S, I, O>,
    private readonly ops: readonly Operation<I, O>[],
    init: S,
  ) {
    this.intern(init);
  }

  private intern(state: S): number {
    const key = this.model.key(state);
    const known = this.ids.get(key);
    if (known !== undefined) return known;
    const id = this.states.length;
    this.states.push(state);
    this.ids.set(key, id);
    // Dense rows while they cost at most 16 M cells (64 MiB); a map beyond.
    const n = this.ops.length;
    if (this.cells + n <= 1 << 24) {
      this.rows.push(new Int32Array(n).fill(unknownTransition));
      this.cells += n;
    } else this.rows.push(null);
    return id;
  }

  /** The state after operation `op` in state `state`, or -1 when the model cannot explain its output. */
  next(op: number, state: number): number {
    const row = this.rows[state];
    if (row !== null && row !== undefined) {
      const cached = row[op]!;
      if (cached !== unknownTransition) return cached;
      const computed = this.compute(op, state);
      row[op] = computed;
      return computed;
    }
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

/**
 * The memo of visited configurations: (linearized set, state) pairs, exactly. Each entry is
 * a window of the set's words: those below `low` are all ones, those from `high` on all
 * zeros, so the window [low, high) with the two bounds is a canonical form.
 */
class Memo {
  private mask: number;
  private keys: Int32Array;
  private statesOf: Int32Array;
  private offsets: Int32Array;
  private size = 0;
  private slab: Uint32Array;
  private slabUsed = 0;

  /** Sized for a search that places each of `operations` about once (it grows beyond). */
  constructor(operations: number) {
    let capacity = 64;
    while (capacity < 4 * operations && capacity < 1 << 16) capacity *= 2;
    this.slab = new Uint32Array(2 * capacity);
    this.mask = capacity - 1;
    this.keys = new Int32Array(capacity);
    this.statesOf = new Int32Array(capacity);
    this.offsets = new Int32Array(capacity).fill(nil);
  }

  get entries(): number {
    return this.size;
  }

  /** Add the configuration unless present; true when it was new. */
  add(hash: number, state: number, words: Uint32Array, low: number, high: number): boolean {
    let i = hash & this.mask;
    for (;;) {
      const offset = this.offsets[i]!;
      if (offset === nil) break;
      if (this.keys[i] === hash && this.statesOf[i] === state && this.equal(offset, words, low, high)) return false;
      i = (i + 1) & this.mask;
    }
    this.keys[i] = hash;
    this.statesOf[i] = state;
    this.offsets[i] = this.store(words, low, high);
    if (++this.size * 2 > this.mask) this.grow();
    return true;
  }

  private equal(offset: number, words: Uint32Array, low: number, high: number): boolean {
    const slab = this.slab;
    if (slab[offset] !== low || slab[offset + 1] !== high) return false;
    for (let w = low, at = offset + 2; w < high; w++, at++) if (slab[at] !== words[w]) return false;
    return true;
  }

  private store(words: Uint32Array, low: number, high: number): number {
    const length = 2 + Math.max(0, high - low);
    if (this.slabUsed + length > this.slab.length) {
      const bigger = new Uint32Array(Math.max(this.slab.length * 2, this.slabUsed + length));
      bigger.set(this.slab.subarray(0, this.slabUsed));
      this.slab = bigger;
    }
    const offset = this.slabUsed;
    this.slab[offset] = low;
    this.slab[offset + 1] = high;
    for (let w = low, at = offset + 2; w < high; w++, at++) this.slab[at] = words[w]!;
    this.slabUsed += length;
    return offset;
  }

  private grow(): void {
    const keys = this.keys;
    const statesOf = this.statesOf;
    const offsets = this.offsets;
    const capacity = keys.length * 2;
    this.mask = capacity - 1;
    this.keys = new Int32Array(capacity);
    this.statesOf = new Int32Array(capacity);
    this.offsets = new Int32Array(capacity).fill(nil);
    for (let j = 0; j < keys.length; j++) {
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

/** The set of linearized operations: a bitset with its canonical window and a Zobrist hash. */
class LinearizedSet {
  readonly words: Uint32Array;
  /** Words below `low` are all ones. */
  low = 0;
  /** Words from `high` on are all zeros. */
  high = 0;
  hash = 0;
  private readonly full: Uint32Array;
  private readonly zobrist: Int32Array;

  constructor(private readonly n: number) {
    const count = Math.ceil(n / 32);
    this.words = new Uint32Array(count);
    this.full = new Uint32Array(count).fill(0xffffffff);
    if (n % 32 !== 0) this.full[count - 1] = (2 ** (n % 32) - 1) >>> 0;
    this.zobrist = zobristKeys(n);
  }

  set(bit: number): void {
    const w = bit >>> 5;
    this.words[w] = (this.words[w]! | (1 << (bit & 31))) >>> 0;
    this.hash ^= this.zobrist[bit]!;
    if (w >= this.high) this.high = w + 1;
    while (this.low < this.words.length && this.words[this.low] === this.full[this.low]) this.low++;
  }

  clear(bit: number): void {
    const w = bit >>> 5;
    this.words[w] = (this.words[w]! & ~(1 << (bit & 31))) >>> 0;
    this.hash ^= this.zobrist[bit]!;
    if (w < this.low) this.low = w;
    while (this.high > 0 && this.words[this.high - 1] === 0) this.high--;
  }

  /** The memo's hash of this set together with a state. */
  keyWith(state: number): number {
    return (this.hash ^ Math.imul(state + 1, 0x9e3779b1)) | 0;
  }

  get size(): number {
    return this.n;
  }
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
  // Bit i is the operation with the i-th earliest return (unknown outcomes last).
  const { ops, calls } = byReturn(given);
  const n = ops.length;
  // Entry 0 is the head; the call of operation i is 2i + 1, its return 2i + 2.
  const next = new Int32Array(2 * n + 1).fill(nil);
  const prev = new Int32Array(2 * n + 1).fill(nil);
  linkEntries(ops, calls, next, prev);
  const readOnly = new Uint8Array(n);
  for (let i = 0; i < n; i++) readOnly[i] = model.readOnly(ops[i]!.input) ? 1 : 0;
  const transitions = new Transitions(model, ops, model.init(partition));
  const set = new LinearizedSet(n);
  const memo = new Memo(n);
  // The path: the call linearized at each depth, the state before it, and whether rule 1 forced it.
  const pathCall = new Int32Array(n);
  const pathState = new Int32Array(n);
  const pathForced = new Uint8Array(n);
  let depth = 0;
  let state = 0;
  let steps = 0;
  let longest: number[] = [];
  let stuck: number[] = [];

  const lift = (call: number): void => {
    next[prev[call]!] = next[call]!;
    if (next[call] !== nil) prev[next[call]!] = prev[call]!;
    const ret = call + 1;
    next[prev[ret]!] = next[ret]!;
    if (next[ret] !== nil) prev[next[ret]!] = prev[ret]!;
  };
  const unlift = (call: number): void => {
    const ret = call + 1;
    next[prev[ret]!] = ret;
    if (next[ret] !== nil) prev[next[ret]!] = ret;
    next[prev[call]!] = call;
    if (next[call] !== nil) prev[next[call]!] = call;
  };
  /** Linearize `call` if the model allows it and the configuration is new; true if it did. */
  const tryPlace = (call: number, forced: boolean): boolean => {
    steps++;
    const op = (call - 1) >>> 1;
    const after = transitions.next(op, state);
    if (after < 0) return false;
    set.set(op);
    if (!memo.add(set.keyWith(after), after, set.words, set.low, set.high)) {
      set.clear(op);
      return false;
    }
    pathCall[depth] = call;
    pathState[depth] = state;
    pathForced[depth] = forced ? 1 : 0;
    depth++;
    state = after;
    lift(call);
    return true;
  };
  /**
   * Rule 1: a read-only pending call whose output fits the state is placed now and nothing
   * else is tried here (it changes nothing, and nothing pending precedes it in real time, or
   * that operation's return would stand before this call in the list). `placed`: done;
   * `refuted`: it fits but its configuration was seen (and failed), so this one fails too;
   * otherwise the first return entry (nil: none), found by the same scan.
   */
  const placeReads = (): number => {
    let e = next[head]!;
    for (; e !== nil && (e & 1) === 1; e = next[e]!) {
      const op = (e - 1) >>> 1;
      if (readOnly[op] === 0 || transitions.next(op, state) !== state) continue;
      return tryPlace(e, true) ? placed : refuted;
    }
    return e;
  };
  const record = (): void => {
    if (depth < longest.length || (depth === longest.length && stuck.length > 0)) return;
    longest = Array.from(pathCall.subarray(0, depth), (call) => (call - 1) >>> 1);
    stuck = [];
    for (let e = next[head]!; e !== nil && (e & 1) === 1; e = next[e]!) stuck.push((e - 1) >>> 1);
  };
  const result = (verdict: PartitionResult<I, O>["verdict"]): PartitionResult<I, O> => {
    const base = { partition, operations: n, verdict, steps };
    if (verdict === "linearizable") {
      const linearization = new Array<Operation<I, O>>(depth);
      for (let d = 0; d < depth; d++) linearization[d] = ops[(pathCall[d]! - 1) >>> 1]!;
      return { ...base, linearization };
    }
    if (verdict === "unknown") return base;
    return { ...base, longestPrefix: longest.map((i) => ops[i]!), stuck: stuck.map((i) => ops[i]!) };
  };

  /** The call of the first return entry: its operation must be linearized before anything invoked later. */
  const firstReturnCall = (): number => {
    let e = next[head]!;
    while (e !== nil && (e & 1) === 1) e = next[e]!;
    return e === nil ? nil : e - 1;
  };
  let forcedCall = nil;
  /** 0: trying the calls after which the forced call fits; 1: the others. */
  let phase = 0;
  const enables = (call: number): boolean => {
    if (forcedCall === nil) return false;
    const after = transitions.next((call - 1) >>> 1, state);
    return after >= 0 && transitions.next((forcedCall - 1) >>> 1, after) >= 0;
  };
  /**
   * At a new configuration: rule 1, then Lowe's just-in-time order: the operation that must
   * be linearized next (its return comes first) is tried first, then the calls after which it
   * fits, then the others.
   */
  const arrive = (): number => {
    const read = placeReads();
    if (read === placed || read === refuted) return read;
    forcedCall = read === nil ? nil : read - 1;
    phase = 0;
    if (forcedCall !== nil && tryPlace(forcedCall, false)) return placed;
    return next[head]!;
  };

  let entry = arrive();
  let polled = 0;
  while (next[head] !== nil) {
    if (steps >= options.stepsMax) return result("unknown");
    if (steps - polled > 0xffff) {
      polled = steps;
      if (options.stop?.() === true) return result("unknown");
    }
    if (entry === placed) {
      entry = arrive();
      continue;
    }
    if (entry > 0 && (entry & 1) === 1) {
      // A call: try to linearize it here, in its phase; on success, go on at the new configuration.
      if (entry === forcedCall || enables(entry) !== (phase === 0)) entry = next[entry]!;
      else entry = tryPlace(entry, false) ? arrive() : next[entry]!;
      continue;
    }
    if (entry !== refuted && phase === 0) {
      phase = 1;
      entry = next[head]!;
      continue;
    }
    // A return entry (or a refuted forced read): every choice here failed; backtrack.
    steps++;
    record();
    for (;;) {
      if (depth === 0) return result("not-linearizable");
      depth--;
      const call = pathCall[depth]!;
      state = pathState[depth]!;
      set.clear((call - 1) >>> 1);
      unlift(call);
      // A forced read's configuration had no alternative: its parent fails too.
      if (pathForced[depth] === 0) {
        forcedCall = firstReturnCall();
        if (call === forcedCall) {
          phase = 0;
          entry = next[head]!;
        } else {
          phase = enables(call) ? 0 : 1;
          entry = next[call]!;
        }
        break;
      }
    }
  }
  return result("linearizable");
}

/** Positions below this are packed beside a rank in one double (2^21: exact up to 2^52 in all). */
const packLimit = 1 << 21;
/** Integral keys below this are packed beside a position as they are, without ranking. */
const directLimit = 2 ** 31;

/**
 * The permutation that orders `key` ascending, ties by position: native sorts of numbers
 * packed with their positions, not a comparator called from the sort (a comparator was most of
 * the checking time of a small history before the code is compiled). Keys that are small
 * integers (line numbers, as in Porcupine's logs) are packed as they are; others by rank.
 */
function orderBy(key: Float64Array): Int32Array {
  const n = key.length;
  const order = new Int32Array(n);
  let sorted = true;
  let direct = n < packLimit;
  let finiteMax = 0;
  for (let i = 0; i < n; i++) {
    const k = key[i]!;
    if (i > 0 && key[i - 1]! > k) sorted = false;
    if (k === Infinity) continue;
    if (!(Number.isInteger(k) && k >= 0 && k < directLimit)) direct = false;
    else if (k > finiteMax) finiteMax = k;
  }
  for (let i = 0; i < n; i++) order[i] = i;
  if (sorted || nearlySorted(key, order)) return order;
  if (n >= packLimit) {
    const list = Array.from({ length: n }, (_, i) => i).sort((a, b) => key[a]! - key[b]! || a - b);
    order.set(list);
    return order;
  }
  const packed = new Float64Array(n);
  if (direct) {
    // Infinity (an unknown outcome) after every finite key.
    for (let i = 0; i < n; i++) packed[i] = (key[i] === Infinity ? finiteMax + 1 : key[i]!) * packLimit + i;
  } else {
    // Distinct values in order; a key's rank is its index among them.
    const values = key.slice().sort();
    let distinct = 0;
    for (let i = 0; i < n; i++)
      if (distinct === 0 || values[i] !== values[distinct - 1]) values[distinct++] = values[i]!;
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
  }
  packed.sort();
  for (let i = 0; i < n; i++) order[i] = packed[i]! % packLimit;
  return order;
}

/**
 * Sort `order` (the identity) by `key`, ties by position, by insertion, when that takes at most
 * 4n moves; false (and `order` unspecified) when it would take more. Return times listed in
 * invocation order are nearly sorted (each operation overtakes only those running beside it),
 * and this loop is a small function: in a fresh process it is cheaper to run and to compile
 * than packing and a native sort.
 */
function nearlySorted(key: Float64Array, order: Int32Array): boolean {
  let moves = 4 * order.length;
  for (let i = 1; i < order.length; i++) {
    const k = key[i]!;
    let j = i - 1;
    for (; j >= 0 && key[order[j]!]! > k; j--) {
      if (--moves < 0) return false;
      order[j + 1] = order[j]!;
    }
    order[j + 1] = i;
  }
  return true;
}

/**
 * The operations by return time, then invocation time, then as given (unknown outcomes last),
 * and the calls (operations in that numbering) by invocation time, then as given.
 */
function byReturn<I, O>(given: readonly Operation<I, O>[]): { ops: Operation<I, O>[]; calls: Int32Array } {
  const n = given.length;
  const invokes = new Float64Array(n);
  for (let i = 0; i < n; i++) invokes[i] = given[i]!.invoke;
  const first = orderBy(invokes);
  const completes = new Float64Array(n);
  for (let i = 0; i < n; i++) completes[i] = given[first[i]!]!.complete;
  const second = orderBy(completes);
  const ops = new Array<Operation<I, O>>(n);
  // Operation i is the second[i]-th by invocation, so the k-th by invocation is the inverse's k.
  const calls = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    ops[i] = given[first[second[i]!]!]!;
    calls[second[i]!] = i;
  }
  return { ops, calls };
}

/**
 * Link the call and return entries in time order: calls before returns at equal times, calls
 * in the order `calls` gives, returns in operation order (by return time already).
 */
function linkEntries<I, O>(
  ops: readonly Operation<I, O>[],
  calls: Int32Array,
  next: Int32Array,
  prev: Int32Array,
): void {
  const n = ops.length;
  let last = head;
  let c = 0;
  for (let r = 0; r < n; r++) {
    const complete = ops[r]!.complete;
    for (; c < n && ops[calls[c]!]!.invoke <= complete; c++) {
      const e = 2 * calls[c]! + 1;
      next[last] = e;
      prev[e] = last;
      last = e;
    }
    const e = 2 * r + 2;
    next[last] = e;
    prev[e] = last;
    last = e;
  }
}

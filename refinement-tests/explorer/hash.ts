/**
 * 64-bit fingerprints of explored states, and the visited set that holds them. A state's key is
 * two independent 32-bit lanes of a structural hash over plain data (numbers, strings, booleans,
 * null, arrays, objects in their own key order); the set stores the pairs in two typed arrays
 * with open addressing, about 8 bytes a state at its fullest, so that millions of states fit
 * where their strings never would. As in TLC and Stateright, two distinct states with the same
 * 64-bit fingerprint would be merged: with n states the chance of any such collision is about
 * n^2 / 2^65 (3 in a million at ten million states). The explorer reports that bound.
 *
 * Objects hashed through `valueHash` must be immutable: their hash is memoized by identity, which
 * is what makes hashing a replica state cheap (a step shares every part it did not change). The
 * memo never shows on the object (`identityMemo`): hashing leaves every key, descriptor and
 * prototype as it was, so a hashed value may reach anything, a Schema decoding that refuses excess
 * properties included (explorer.test.ts hashes every state of bounded runs and checks it).
 */

import { murmurRound as round } from "../../spec/hash.ts";

/** murmur3's finalizer. */
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);

/** A pair of lanes; `a` and `b` are unsigned 32-bit. */
export interface Hash64 {
  readonly a: number;
  readonly b: number;
}

/**
 * An incremental hasher with two lanes seeded apart. Feed it numbers and strings in a fixed
 * order; `done()` finalizes. Lane b also mixes in the position, so that the lanes disagree on
 * which inputs collide.
 */
export class Hasher {
  a = 0x9747b28c;
  b = 0x5bd1e995;
  private n = 0;

  /** Start over (a pooled hasher is reused). */
  reset(): void {
    this.a = 0x9747b28c;
    this.b = 0x5bd1e995;
    this.n = 0;
  }

  /** Fold one 32-bit word. */
  word(k: number): void {
    this.a = round(this.a, k);
    this.b = round(this.b, (k ^ Math.imul(++this.n, 0x9e3779b9)) | 0);
  }

  num(x: number): void {
    if ((x | 0) === x) {
      this.word(1);
      this.word(x);
      return;
    }
    f64[0] = x;
    this.word(2);
    this.word(u32[0]!);
    this.word(u32[1]!);
  }

  str(s: string): void {
    this.word(3);
    this.word(s.length);
    let i = 0;
    for (; i + 1 < s.length; i += 2) this.word(s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16));
    if (i < s.length) this.word(s.charCodeAt(i));
  }

  /** Fold a finished hash. */
  hash(h: Hash64): void {
    this.word(h.a | 0);
    this.word(h.b | 0);
  }

  done(): Hash64 {
    return { a: fmix(this.a ^ this.n), b: fmix(this.b ^ Math.imul(this.n, 0x85ebca6b)) };
  }
}

const keyHashes = new Map<string, number>();

function keyHash(k: string): number {
  let h = keyHashes.get(k);
  if (h === undefined) {
    const x = new Hasher();
    x.str(k);
    h = x.done().a | 0;
    keyHashes.set(k, h);
  }
  return h;
}

/**
 * Keys never hashed: a replica's `ctx`, its constant configuration and application (functions
 * included), the same in every state of a run. A state transfer's `decoding` (the values decoded
 * so far) is hashed like the rest: it was once skipped because a memo written on its objects made
 * rule S2's decoding refuse them, which `identityMemo` rules out.
 */
const skipped = new Set(["ctx"]);

/**
 * The structural hash of an immutable plain value, memoized by identity for objects and arrays.
 * Functions and `undefined` fields count as absent; key order counts (the core builds each kind
 * of object in one fixed order), so the same data built in two orders only costs a merge, never
 * a wrong one.
 */
export function valueHash(v: unknown): Hash64 {
  const h = new Hasher();
  feed(h, v);
  return h.done();
}

function feed(h: Hasher, v: unknown): void {
  switch (typeof v) {
    case "number":
      h.num(v);
      return;
    case "string":
      h.str(v);
      return;
    case "boolean":
      h.word(v ? 5 : 6);
      return;
    case "undefined":
      h.word(7);
      return;
    case "object":
      if (v === null) {
        h.word(8);
        return;
      }
      h.hash(objectHash(v));
      return;
    default:
      h.word(9);
  }
}

/** Hashers by nesting depth, reused: hashing a state allocates only the hashes it memoizes. */
const pool: Hasher[] = [];
let nesting = 0;

/** A constructor that returns its argument: a subclass's private field then lands on that object. */
// eslint-disable-next-line @typescript-eslint/no-extraneous-class -- its constructor is the point
class Adopting {
  constructor(o: object) {
    return o;
  }
}

/** A value kept per object by identity (`identityMemo`). */
export interface IdentityMemo<V> {
  get(o: object): V | undefined;
  /** Once per object. */
  set(o: object, v: V): void;
}

/**
 * A memo by identity that never shows on its objects. Each memo is a class with a private field,
 * installed on the object by a base constructor that returns it: no key, symbol or descriptor that
 * `Reflect.ownKeys`, a spread, JSON, structured cloning, a Proxy or a Schema decoding can see is
 * added, and the object's prototype, extensibility and freezing are unchanged. It is still a
 * property of the object to V8 (a private symbol, behind the same inline caches as any field), so
 * it costs what the symbol-keyed property it replaced cost. A WeakMap, the other way to keep a
 * value beside an object without touching it, took 2 to 3 times the CPU time over 300,000 states:
 * its ephemeron tables grow with every object ever hashed, and the garbage collector walks them.
 * Objects that cannot take a field (not extensible; a future engine may refuse private fields
 * there) fall back to a WeakMap.
 */
export function identityMemo<V>(): IdentityMemo<V> {
  const sealed = new WeakMap<object, V>();
  class Stamp extends Adopting {
    readonly #value: V;
    constructor(o: object, v: V) {
      super(o);
      this.#value = v;
    }
    static read(o: object): V | undefined {
      return #value in o ? o.#value : sealed.get(o);
    }
  }
  return {
    get: (o) => Stamp.read(o),
    set(o, v) {
      if (Object.isExtensible(o)) new Stamp(o, v);
      else sealed.set(o, v);
    },
  };
}

const memo = identityMemo<Hash64>();

function objectHash(o: object): Hash64 {
  const known = memo.get(o);
  if (known !== undefined) return known;
  const h = (pool[nesting] ??= new Hasher());
  h.reset();
  nesting++;
  try {
    hashObject(h, o);
  } finally {
    nesting--;
  }
  const out = h.done();
  memo.set(o, out);
  return out;
}

/** The hash of what `feed` puts into a fresh hasher (a part of a world that keeps its hash). */
export function hashOf(feed: (h: Hasher) => void): Hash64 {
  const h = new Hasher();
  feed(h);
  return h.done();
}

/** Where `memoizedHash` keeps a hash computed by its own function (apart from `valueHash`'s). */
const customMemo = identityMemo<Hash64>();

/** `compute(o)`, memoized on the immutable object `o` (as `valueHash` memoizes). */
export function memoizedHash<T extends object>(o: T, compute: (o: T) => Hash64): Hash64 {
  const known = customMemo.get(o);
  if (known !== undefined) return known;
  const out = compute(o);
  customMemo.set(o, out);
  return out;
}

function hashObject(h: Hasher, o: object): void {
  if (Array.isArray(o)) {
    h.word(10);
    h.word(o.length);
    for (const x of o) feed(h, x);
  } else {
    h.word(11);
    const r = o as Record<string, unknown>;
    for (const k in r) {
      const x = r[k];
      if (x === undefined || typeof x === "function" || skipped.has(k)) continue;
      h.word(keyHash(k));
      feed(h, x);
    }
  }
}

/**
 * The visited set: 64-bit fingerprints in open addressing (linear probing), growing at half
 * full. Lane a of a stored pair is never 0 (0 marks an empty slot; such a fingerprint is stored
 * with a = 1, a merge of probability 2^-32 per state, within the bound above).
 */
export class FingerprintSet {
  private as: Uint32Array;
  private bs: Uint32Array;
  private mask: number;
  size = 0;

  constructor(capacityLog2 = 16) {
    this.as = new Uint32Array(1 << capacityLog2);
    this.bs = new Uint32Array(1 << capacityLog2);
    this.mask = (1 << capacityLog2) - 1;
  }

  /** Add `h`; true if it was not there yet. */
  add(h: Hash64): boolean {
    const a = h.a === 0 ? 1 : h.a;
    let i = (a ^ Math.imul(h.b, 0x9e3779b1)) & this.mask;
    for (;;) {
      const x = this.as[i]!;
      if (x === 0) break;
      if (x === a && this.bs[i] === h.b) return false;
      i = (i + 1) & this.mask;
    }
    this.as[i] = a;
    this.bs[i] = h.b;
    this.size++;
    if (this.size * 2 > this.mask) this.grow();
    return true;
  }

  has(h: Hash64): boolean {
    const a = h.a === 0 ? 1 : h.a;
    let i = (a ^ Math.imul(h.b, 0x9e3779b1)) & this.mask;
    for (;;) {
      const x = this.as[i]!;
      if (x === 0) return false;
      if (x === a && this.bs[i] === h.b) return true;
      i = (i + 1) & this.mask;
    }
  }

  /** Bytes held by the table. */
  get bytes(): number {
    return this.as.byteLength + this.bs.byteLength;
  }

  private grow(): void {
    const oldA = this.as;
    const oldB = this.bs;
    const capacity = oldA.length * 2;
    this.as = new Uint32Array(capacity);
    this.bs = new Uint32Array(capacity);
    this.mask = capacity - 1;
    this.size = 0;
    for (let j = 0; j < oldA.length; j++) {
      const a = oldA[j]!;
      if (a !== 0) this.add({ a, b: oldB[j]! });
    }
  }
}

/** The probability bound of any fingerprint collision among `n` states: n^2 / 2^65. */
export function collisionBound(n: number): number {
  return (n * n) / 2 ** 65;
}

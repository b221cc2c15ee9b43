/**
 * A persistent (immutable) map from strings to values: a hash array mapped trie (Bagwell,
 * "Ideal Hash Trees", 2001) with 32-way nodes. Every update returns a new map that shares
 * all unchanged nodes with the old one, so a transition that writes one key costs O(log n)
 * and never mutates the state it was given. The key-value store and the service's session
 * table are built on it; it is what keeps `transition` pure without copying the whole store.
 *
 * Pure and deterministic: iteration order depends only on the keys (by hash, then insertion
 * order among colliding keys), never on history or on the engine.
 */

import { fmix32, fnv1a, fnvOffsetBasis } from "./hash.ts";

const bitsPerLevel = 5;
const levelMask = 31;
/** Below this depth every 32-bit hash is used up; deeper keys share a collision node. */
const depthMax = 7;

interface Leaf<V> {
  readonly kind: 0;
  readonly hash: number;
  readonly key: string;
  readonly value: V;
}

interface Branch<V> {
  readonly kind: 1;
  /** Bit i set: child for hash fragment i is present, at index popcount(bitmap below i). */
  readonly bitmap: number;
  readonly children: readonly Node<V>[];
}

interface Collision<V> {
  readonly kind: 2;
  readonly hash: number;
  readonly keys: readonly string[];
  readonly values: readonly V[];
}

type Node<V> = Leaf<V> | Branch<V> | Collision<V>;

/** The map: a root and the number of entries. */
export interface PersistentMap<V> {
  readonly root: Node<V> | undefined;
  readonly size: number;
}

/** The hash a key is placed by: FNV-1a finished with fmix32 (spec/hash.ts). */
export function stringHash(key: string): number {
  return fmix32(fnv1a(fnvOffsetBasis, key));
}

function popcount(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

const emptyMap: PersistentMap<never> = { root: undefined, size: 0 };

/** The empty map. */
export function emptyPersistentMap<V>(): PersistentMap<V> {
  return emptyMap;
}

const absent: unique symbol = Symbol("absent");

function lookup<V>(map: PersistentMap<V>, key: string): V | typeof absent {
  let node = map.root;
  if (node === undefined) return absent;
  const hash = stringHash(key);
  let shift = 0;
  for (;;) {
    switch (node.kind) {
      case 0:
        return node.key === key ? node.value : absent;
      case 2: {
        const i = node.keys.indexOf(key);
        return i < 0 ? absent : node.values[i]!;
      }
      case 1: {
        const bit = 1 << ((hash >>> shift) & levelMask);
        if ((node.bitmap & bit) === 0) return absent;
        node = node.children[popcount(node.bitmap & (bit - 1))]!;
        shift += bitsPerLevel;
      }
    }
  }
}

/** The value under `key`, or undefined. */
export function pmGet<V>(map: PersistentMap<V>, key: string): V | undefined {
  const found = lookup(map, key);
  return found === absent ? undefined : found;
}

/** True when `key` is present. */
export function pmHas<V>(map: PersistentMap<V>, key: string): boolean {
  return lookup(map, key) !== absent;
}

/** Two leaves with different keys under one node at `shift`. */
function merge<V>(a: Leaf<V> | Collision<V>, b: Leaf<V>, shift: number): Node<V> {
  if (shift >= bitsPerLevel * depthMax || a.hash === b.hash) {
    if (a.kind === 2) return { kind: 2, hash: a.hash, keys: [...a.keys, b.key], values: [...a.values, b.value] };
    return { kind: 2, hash: a.hash, keys: [a.key, b.key], values: [a.value, b.value] };
  }
  const fa = (a.hash >>> shift) & levelMask;
  const fb = (b.hash >>> shift) & levelMask;
  if (fa === fb) return { kind: 1, bitmap: 1 << fa, children: [merge(a, b, shift + bitsPerLevel)] };
  return { kind: 1, bitmap: (1 << fa) | (1 << fb), children: fa < fb ? [a, b] : [b, a] };
}

/** Insert or replace; `added` reports whether the key was new. */
function setIn<V>(node: Node<V> | undefined, leaf: Leaf<V>, shift: number, added: { value: boolean }): Node<V> {
  if (node === undefined) {
    added.value = true;
    return leaf;
  }
  switch (node.kind) {
    case 0:
      if (node.key === leaf.key) return node.value === leaf.value ? node : leaf;
      added.value = true;
      return merge(node, leaf, shift);
    case 2: {
      if (node.hash !== leaf.hash) {
        added.value = true;
        return merge(node, leaf, shift);
      }
      const i = node.keys.indexOf(leaf.key);
      if (i < 0) {
        added.value = true;
        return { kind: 2, hash: node.hash, keys: [...node.keys, leaf.key], values: [...node.values, leaf.value] };
      }
      const values = node.values.slice();
      values[i] = leaf.value;
      return { kind: 2, hash: node.hash, keys: node.keys, values };
    }
    case 1: {
      const bit = 1 << ((leaf.hash >>> shift) & levelMask);
      const index = popcount(node.bitmap & (bit - 1));
      if ((node.bitmap & bit) === 0) {
        added.value = true;
        const children = node.children.slice();
        children.splice(index, 0, leaf);
        return { kind: 1, bitmap: node.bitmap | bit, children };
      }
      const child = node.children[index]!;
      const updated = setIn(child, leaf, shift + bitsPerLevel, added);
      if (updated === child) return node;
      const children = node.children.slice();
      children[index] = updated;
      return { kind: 1, bitmap: node.bitmap, children };
    }
  }
}

/** The map with `key` set to `value`. Returns `map` itself when nothing changes. */
export function pmSet<V>(map: PersistentMap<V>, key: string, value: V): PersistentMap<V> {
  const added = { value: false };
  const root = setIn(map.root, { kind: 0, hash: stringHash(key), key, value }, 0, added);
  if (root === map.root) return map;
  return { root, size: added.value ? map.size + 1 : map.size };
}

/** Remove `key` below `node`; undefined when the node becomes empty; `node` itself when absent. */
function removeIn<V>(node: Node<V>, key: string, hash: number, shift: number): Node<V> | undefined {
  switch (node.kind) {
    case 0:
      return node.key === key ? undefined : node;
    case 2: {
      const i = node.keys.indexOf(key);
      if (i < 0) return node;
      if (node.keys.length === 2) {
        const j = 1 - i;
        return { kind: 0, hash: node.hash, key: node.keys[j]!, value: node.values[j]! };
      }
      return {
        kind: 2,
        hash: node.hash,
        keys: node.keys.filter((_, k) => k !== i),
        values: node.values.filter((_, k) => k !== i),
      };
    }
    case 1: {
      const bit = 1 << ((hash >>> shift) & levelMask);
      if ((node.bitmap & bit) === 0) return node;
      const index = popcount(node.bitmap & (bit - 1));
      const child = node.children[index]!;
      const updated = removeIn(child, key, hash, shift + bitsPerLevel);
      if (updated === child) return node;
      if (updated === undefined) {
        const bitmap = node.bitmap & ~bit;
        if (bitmap === 0) return undefined;
        const children = node.children.filter((_, k) => k !== index);
        // A branch left with one leaf collapses into it, keeping the trie canonical.
        if (children.length === 1 && children[0]!.kind !== 1) return children[0];
        return { kind: 1, bitmap, children };
      }
      if (node.children.length === 1 && updated.kind !== 1) return updated;
      const children = node.children.slice();
      children[index] = updated;
      return { kind: 1, bitmap: node.bitmap, children };
    }
  }
}

/** The map without `key`. Returns `map` itself when the key was absent. */
export function pmRemove<V>(map: PersistentMap<V>, key: string): PersistentMap<V> {
  if (map.root === undefined) return map;
  const root = removeIn(map.root, key, stringHash(key), 0);
  if (root === map.root) return map;
  return { root, size: map.size - 1 };
}

/** Visit every entry (in hash order). */
export function pmForEach<V>(map: PersistentMap<V>, visit: (key: string, value: V) => void): void {
  const walk = (node: Node<V>): void => {
    switch (node.kind) {
      case 0:
        visit(node.key, node.value);
        return;
      case 2:
        node.keys.forEach((k, i) => visit(k, node.values[i]!));
        return;
      case 1:
        for (const child of node.children) walk(child);
    }
  };
  if (map.root !== undefined) walk(map.root);
}

/** Every entry, sorted by key (a canonical order, for snapshots and reports). */
export function pmSortedEntries<V>(map: PersistentMap<V>): [string, V][] {
  const out: [string, V][] = [];
  pmForEach(map, (k, v) => out.push([k, v]));
  return out.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

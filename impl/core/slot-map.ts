/**
 * A persistent map from slot numbers to values: a 32-way radix trie with path copying, so that
 * `set` returns a new map in O(log32 n) and never changes the old one. The replica keeps its votes,
 * its chosen log and what phase 1 revealed in such maps, which is how `step` stays pure (the
 * simulated world keeps every old state) and still fast (no whole-log copies).
 *
 * Private to impl/core; readers of replica state use `slotMapGet`, `slotMapHas`, `slotMapEntries`
 * and `slotMapForEach`. It must never mutate a node reachable from a map it was given.
 */

const width = 32;
type Node = readonly unknown[];

/** A persistent slot -> V map. Keys are non-negative safe integers; values are never undefined. */
export interface SlotMap<V> {
  /** @internal The trie; leaves hold values, inner nodes hold nodes. */
  readonly root: Node | undefined;
  /** @internal Number of inner levels above the leaves (0: the root is a leaf). */
  readonly levels: number;
  /** Number of keys present. */
  readonly size: number;
  /** The largest key present, or 0 when the map is empty. */
  readonly last: number;
  /** Phantom marker so that SlotMap<A> and SlotMap<B> stay distinct types. */
  readonly _value?: V;
}

const powers: number[] = [1];
for (let i = 1; i <= 11; i++) powers.push(powers[i - 1]! * width);

/** The empty map. */
export function emptySlotMap<V>(): SlotMap<V> {
  return { root: undefined, levels: 0, size: 0, last: 0 };
}

function capacity(levels: number): number {
  return powers[levels + 1]!;
}

function checkKey(key: number): void {
  if (!Number.isSafeInteger(key) || key < 0) throw new Error(`slot map: key ${key} is not a non-negative safe integer`);
}

/** The value under `key`, or undefined. */
export function slotMapGet<V>(map: SlotMap<V>, key: number): V | undefined {
  if (key >= capacity(map.levels) || key < 0) return undefined;
  let node = map.root;
  for (let level = map.levels; level > 0 && node !== undefined; level--) {
    node = node[Math.floor(key / powers[level]!) % width] as Node | undefined;
  }
  return node === undefined ? undefined : (node[key % width] as V | undefined);
}

/** True when `key` is present. */
export function slotMapHas<V>(map: SlotMap<V>, key: number): boolean {
  return slotMapGet(map, key) !== undefined;
}

function freshNode(): unknown[] {
  return new Array<unknown>(width).fill(undefined);
}

function setIn(node: Node | undefined, level: number, key: number, value: unknown): { node: Node; added: boolean } {
  const copy = node === undefined ? freshNode() : node.slice();
  if (level === 0) {
    const index = key % width;
    const added = copy[index] === undefined;
    copy[index] = value;
    return { node: copy, added };
  }
  const index = Math.floor(key / powers[level]!) % width;
  const child = setIn(copy[index] as Node | undefined, level - 1, key, value);
  copy[index] = child.node;
  return { node: copy, added: child.added };
}

/** A new map with `key` set to `value`; `map` is unchanged. */
export function slotMapSet<V>(map: SlotMap<V>, key: number, value: V): SlotMap<V> {
  checkKey(key);
  if (value === undefined) throw new Error("slot map: undefined is not a value");
  let root = map.root;
  let levels = map.levels;
  while (key >= capacity(levels)) {
    if (root !== undefined) {
      const grown = freshNode();
      grown[0] = root;
      root = grown;
    }
    levels++;
  }
  const result = setIn(root, levels, key, value);
  return { root: result.node, levels, size: map.size + (result.added ? 1 : 0), last: Math.max(map.last, key) };
}

function visit(
  node: Node,
  level: number,
  base: number,
  from: number,
  to: number,
  fn: (key: number, value: unknown) => boolean,
): boolean {
  const span = powers[level]!;
  const first = Math.max(0, Math.floor((from - base) / span));
  for (let i = first; i < width; i++) {
    const start = base + i * span;
    if (start > to) return true;
    const child = node[i];
    if (child === undefined) continue;
    if (level === 0) {
      if (!fn(start, child)) return false;
    } else if (!visit(child as Node, level - 1, start, from, to, fn)) {
      return false;
    }
  }
  return true;
}

function dropIn(node: Node, level: number, base: number, through: number): Node | undefined {
  const span = powers[level]!;
  const copy = node.slice();
  let any = false;
  for (let i = 0; i < width; i++) {
    const start = base + i * span;
    const end = start + span - 1;
    if (copy[i] === undefined) continue;
    if (end <= through) copy[i] = undefined;
    else if (start <= through && level > 0) copy[i] = dropIn(copy[i] as Node, level - 1, start, through);
    if (copy[i] !== undefined) any = true;
  }
  return any ? copy : undefined;
}

/**
 * A new map without the keys <= `through` (log truncation); `map` is unchanged. Costs the number
 * of keys dropped plus O(log32 n).
 */
export function slotMapDropThrough<V>(map: SlotMap<V>, through: number): SlotMap<V> {
  if (map.root === undefined || through < 0) return map;
  if (through >= map.last) return emptySlotMap();
  let dropped = 0;
  slotMapForEach(map, 0, through, () => {
    dropped++;
    return true;
  });
  if (dropped === 0) return map;
  return {
    root: dropIn(map.root, map.levels, 0, through),
    levels: map.levels,
    size: map.size - dropped,
    last: map.last,
  };
}

/**
 * Call `fn(key, value)` for every key in [from, to], in increasing key order, until `fn` returns
 * false.
 */
export function slotMapForEach<V>(
  map: SlotMap<V>,
  from: number,
  to: number,
  fn: (key: number, value: V) => boolean,
): void {
  if (map.root === undefined || from > to) return;
  visit(map.root, map.levels, 0, from, to, fn as (key: number, value: unknown) => boolean);
}

/** Every (key, value) in [from, to] (default: all), in increasing key order. */
export function slotMapEntries<V>(map: SlotMap<V>, from = 0, to = Number.MAX_SAFE_INTEGER): [number, V][] {
  const out: [number, V][] = [];
  slotMapForEach(map, from, to, (key, value) => {
    out.push([key, value]);
    return true;
  });
  return out;
}

/** The map holding exactly `entries` (later entries win). */
export function slotMapOf<V>(entries: Iterable<readonly [number, V]>): SlotMap<V> {
  let map = emptySlotMap<V>();
  for (const [key, value] of entries) map = slotMapSet(map, key, value);
  return map;
}

/**
 * The searches over an ImplModel: breadth first (every state within the depth bound, each once,
 * and the shortest trace to the first violation) and random walks (for spaces too large to
 * exhaust: seeded, so every walk replays).
 *
 * Breadth first keeps, per state, its fingerprint (in the visited set), its parent and the number
 * of the transition that made it: about 14 bytes. The first `keptMax` states found that wait to be
 * expanded are also kept whole (a world and its checker share most of their parts with their
 * parent's); any other state is rebuilt when it is expanded, by carrying out its transition again
 * on its parent, which is rebuilt the same way; one rebuilt state is cached per depth, and since a
 * level is expanded in the order its states were found (grouped by parent), each parent is rebuilt
 * about once per level below it. A rebuilt state is generated and checked once more than it is
 * found, which costs less than keeping millions of worlds; a kept one is not.
 */
import type { Action } from "../world/actions.ts";
import { collisionBound, FingerprintSet } from "./hash.ts";
import type { Found, ImplModel, ModelAction, ModelState } from "./model.ts";

/** What a search may spend. */
export interface SearchLimits {
  /** Expand no state at this depth (roots are depth 0). */
  readonly depth: number;
  /** Stop after this many distinct states. */
  readonly maxStates: number;
  /** Stop after this many milliseconds (checked between expansions). Default: no limit. */
  readonly maxMs?: number;
  /** Called about once a second. */
  readonly onProgress?: (p: SearchProgress) => void;
  /** Milliseconds, monotonic (progress and the time limit). */
  readonly now?: () => number;
  /** Breadth first: states found and not yet expanded that are kept whole rather than rebuilt. Default 20,000. */
  readonly keptMax?: number;
}

export interface SearchProgress {
  readonly distinct: number;
  readonly transitions: number;
  readonly depth: number;
  readonly queued: number;
  readonly ms: number;
}

/** A violation and the path to it: the root's prefix, then each transition. */
export interface Counterexample extends Found {
  readonly actions: readonly Action[];
  /** Transitions of the model (the prefix that set clock rates not counted). */
  readonly length: number;
}

export interface SearchResult extends SearchProgress {
  /** True when every state within the depth bound was expanded (no limit cut the search). */
  readonly complete: boolean;
  readonly counterexample: Counterexample | null;
  /** Bound on the probability that two distinct states shared a fingerprint. */
  readonly collisionBound: number;
  readonly visitedBytes: number;
}

/** Breadth-first search of `model` within `limits`; stops at the first violation. */
export function breadthFirst(model: ImplModel, limits: SearchLimits): SearchResult {
  const now = limits.now ?? (() => performance.now());
  const started = now();
  const roots = model.roots();
  if (!Array.isArray(roots)) return atBoot(roots, started, now);
  const visited = new FingerprintSet(20);
  let parent = new Int32Array(1 << 16);
  let choice = new Uint16Array(1 << 16);
  let count = 0;
  const levelStart: number[] = [0];
  const push = (p: number, c: number): void => {
    if (count === parent.length) {
      const grown = new Int32Array(parent.length * 2);
      grown.set(parent);
      parent = grown;
      const grownChoice = new Uint16Array(choice.length * 2);
      grownChoice.set(choice);
      choice = grownChoice;
    }
    parent[count] = p;
    choice[count] = c;
    count++;
  };
  for (let r = 0; r < roots.length; r++) {
    if (!visited.add(model.key(roots[r]!.state))) continue;
    push(-1, r);
    const stuck = model.livenessOf(roots[r]!.state);
    if (stuck !== null) return atBoot({ ...stuck, prefix: roots[r]!.prefix }, started, now);
  }
  levelStart.push(count);

  // One rebuilt state (and its transitions) per depth.
  const cache: { index: number; state: ModelState; actions: ModelAction[] }[] = [];
  const depthOf = (i: number): number => {
    let d = levelStart.length - 1;
    while (levelStart[d]! > i) d--;
    return d;
  };
  // States found but not yet expanded, kept whole while they fit (`keptMax`): expanding one then
  // costs no rebuild. The rest are rebuilt from their parents.
  const kept = new Map<number, ModelState>();
  const keptMax = limits.keptMax ?? 20_000;
  const rebuild = (i: number, d: number): { state: ModelState; actions: ModelAction[] } => {
    const hit = cache[d];
    if (hit !== undefined && hit.index === i) return hit;
    let state: ModelState;
    const whole = kept.get(i);
    if (whole !== undefined) {
      kept.delete(i);
      state = whole;
    } else if (parent[i] === -1) state = roots[choice[i]!]!.state;
    else {
      const up = rebuild(parent[i]!, d - 1);
      const next = model.apply(up.state, up.actions[choice[i]!]!);
      if ("violation" in next)
        throw new Error("a state that passed its checks fails them when rebuilt: the model is not deterministic");
      state = next;
    }
    const entry = { index: i, state, actions: model.actions(state) };
    cache[d] = entry;
    return entry;
  };
  const pathTo = (i: number, last: ModelAction): Action[] => {
    const steps: ModelAction[] = [last];
    let j = i;
    while (parent[j] !== -1) {
      const d = depthOf(j);
      const up = rebuild(parent[j]!, d - 1);
      steps.push(up.actions[choice[j]!]!);
      j = parent[j]!;
    }
    return [...roots[choice[j]!]!.prefix, ...worldActions(steps.reverse())];
  };

  let transitions = 0;
  let lastReport = started;
  let complete = true;
  let counterexample: Counterexample | null = null;
  let depth = 0;
  const progress = (): SearchProgress => ({
    distinct: count,
    transitions,
    depth,
    queued: levelStart[levelStart.length - 1]! - 0,
    ms: now() - started,
  });
  search: for (depth = 0; depth < limits.depth; depth++) {
    const from = levelStart[depth]!;
    const to = levelStart[depth + 1]!;
    if (from === to) break;
    for (let i = from; i < to; i++) {
      const { state, actions } = rebuild(i, depth);
      for (let c = 0; c < actions.length; c++) {
        transitions++;
        const next = model.apply(state, actions[c]!);
        if ("violation" in next) {
          const actionsTo = pathTo(i, actions[c]!);
          counterexample = { violation: next.violation, actions: actionsTo, length: depth + 1 };
          break search;
        }
        if (!visited.add(model.key(next))) continue;
        if (count >= limits.maxStates) {
          complete = false;
          break search;
        }
        if (kept.size < keptMax) kept.set(count, next);
        push(i, c);
        const stuck = model.livenessOf(next);
        if (stuck !== null) {
          counterexample = { violation: stuck.violation, actions: pathTo(i, actions[c]!), length: depth + 1 };
          break search;
        }
      }
      if ((i & 63) === 0) {
        const t = now();
        if (limits.maxMs !== undefined && t - started > limits.maxMs) {
          complete = false;
          break search;
        }
        if (t - lastReport >= 1000) {
          lastReport = t;
          limits.onProgress?.({ ...progress(), queued: to - i + (count - to) });
        }
      }
    }
    levelStart.push(count);
  }
  if (counterexample === null && depth >= limits.depth && levelStart[depth]! < count) complete = false;
  return {
    ...progress(),
    queued: 0,
    complete: counterexample === null && complete,
    counterexample,
    collisionBound: collisionBound(count),
    visitedBytes: visited.bytes + parent.byteLength + choice.byteLength,
  };
}

/** The world actions of a path (holds change nothing in the world and replay as nothing). */
function worldActions(steps: readonly ModelAction[]): Action[] {
  const out: Action[] = [];
  for (const s of steps) {
    if (s.action !== null) out.push(s.action);
    if (s.rest !== undefined) out.push(...s.rest);
  }
  return out;
}

/** A violation while the cluster booted (or warmed up), before any transition. */
function atBoot(found: Found, started: number, now: () => number): SearchResult {
  return {
    distinct: 0,
    transitions: 0,
    depth: 0,
    queued: 0,
    ms: now() - started,
    complete: false,
    counterexample: { violation: found.violation, actions: found.prefix ?? [], length: 0 },
    collisionBound: 0,
    visitedBytes: 0,
  };
}

/** mulberry32: a small seeded generator for the walks. */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A random transition: first a kind (deliver, advance, hold, crash, ...) uniformly among those
 * enabled, then one of that kind, so that a state with many messages in flight or many replicas
 * to crash does not drown out the rest (swarm-like, as the random world's profiles do).
 */
function pick(actions: readonly ModelAction[], random: () => number): ModelAction {
  const kinds: string[] = [];
  for (const a of actions) {
    const k = kindOf(a);
    if (!kinds.includes(k)) kinds.push(k);
  }
  const kind = kinds[Math.floor(random() * kinds.length)]!;
  const of = actions.filter((a) => kindOf(a) === kind);
  return of[Math.floor(random() * of.length)]!;
}

function kindOf(a: ModelAction): string {
  return a.label ?? (a.action === null ? "hold" : a.action.t);
}

/** What random walks may spend, and their seed. */
export interface WalkLimits extends SearchLimits {
  readonly seed: number;
  /** Stop after this many walks. Default: until another limit. */
  readonly walks?: number;
}

export interface WalkResult extends SearchResult {
  readonly walks: number;
}

/**
 * Random walks: from a random root, take a uniformly random enabled transition until the depth
 * bound or a dead end, and start over; every state met is checked, distinct ones are counted.
 * Stops at the first violation, at `maxStates` distinct states, at `walks` walks or at `maxMs`.
 */
export function randomWalks(model: ImplModel, limits: WalkLimits): WalkResult {
  const now = limits.now ?? (() => performance.now());
  const started = now();
  const roots = model.roots();
  if (!Array.isArray(roots)) return { ...atBoot(roots, started, now), walks: 0 };
  const random = generator(limits.seed);
  const visited = new FingerprintSet(16);
  let transitions = 0;
  let walks = 0;
  let deepest = 0;
  let lastReport = started;
  let counterexample: Counterexample | null = null;
  const progress = (): SearchProgress => ({
    distinct: visited.size,
    transitions,
    depth: deepest,
    queued: 0,
    ms: now() - started,
  });
  while (counterexample === null && (limits.walks === undefined || walks < limits.walks)) {
    const t = now();
    if (visited.size >= limits.maxStates || (limits.maxMs !== undefined && t - started > limits.maxMs)) break;
    if (t - lastReport >= 1000) {
      lastReport = t;
      limits.onProgress?.(progress());
    }
    walks++;
    const root = roots[Math.floor(random() * roots.length)]!;
    let state = root.state;
    const path: Action[] = [...root.prefix];
    if (visited.add(model.key(state))) {
      const stuck = model.livenessOf(state);
      if (stuck !== null) {
        counterexample = { violation: stuck.violation, actions: path, length: 0 };
        break;
      }
    }
    for (let d = 0; d < limits.depth; d++) {
      const actions = model.actions(state);
      if (actions.length === 0) break;
      const a = pick(actions, random);
      transitions++;
      path.push(...worldActions([a]));
      const next = model.apply(state, a);
      if ("violation" in next) {
        counterexample = { violation: next.violation, actions: path, length: d + 1 };
        break;
      }
      state = next;
      if (d + 1 > deepest) deepest = d + 1;
      if (!visited.add(model.key(state))) continue;
      const stuck = model.livenessOf(state);
      if (stuck !== null) {
        counterexample = { violation: stuck.violation, actions: path, length: d + 1 };
        break;
      }
    }
  }
  return {
    ...progress(),
    walks,
    complete: false,
    counterexample,
    collisionBound: collisionBound(visited.size),
    visitedBytes: visited.bytes,
  };
}

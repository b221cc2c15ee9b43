/**
 * Which acceptors decide each slot: the configurations of a reconfigurable state machine with
 * the alpha window (Lamport, Malkhi and Zhou, "Reconfiguring a State Machine", 2010). As a state
 * machine in Lampson's sense: the inputs are the chosen values in slot order, the state is every
 * configuration made so far (with the slot it governs from), Start is the initial members, and
 * `configurationAt(state, s)` is config(s), the acceptor set of slot s's instance of Voting.
 *
 *   config(s) == the configuration made by the last change chosen at a slot i with i + alpha <= s,
 *                each change applied to the configuration before it (the initial members first)
 *
 * A change that does not fit the configuration before it (adding a member or a replica removed
 * before, promoting a non-learner, removing a non-member or the last voter) changes nothing. A
 * replica removed (or replaced) is retired for good: its id is never added again, so a replica
 * that finds its id retired knows it was removed, and one in no list was not added yet. This is the spec the
 * implementation's configurations (impl/core/configuration.ts) are checked against, step by step
 * (proofs/configurations.ts); it restates them instead of importing them on purpose.
 *
 * Pure: no clock, no randomness; imports nothing of the project but spec/.
 */
import type { StateMachine } from "./state-machine.ts";

/** A replica's identity. */
export type ReplicaId = number;

/** A membership change, as the log carries it (structurally the implementation's). */
export type Change =
  | { readonly op: "add"; readonly replica: ReplicaId }
  | { readonly op: "promote"; readonly replica: ReplicaId }
  | { readonly op: "remove"; readonly replica: ReplicaId }
  | { readonly op: "replace"; readonly remove: ReplicaId; readonly add: ReplicaId };

/**
 * One configuration: who votes and who learns, from slot `governsFrom` on (made at slot
 * `chosenAt`), and every replica removed so far.
 */
export interface SpecConfiguration {
  readonly chosenAt: number;
  readonly governsFrom: number;
  readonly voters: readonly ReplicaId[];
  readonly learners: readonly ReplicaId[];
  readonly retired: readonly ReplicaId[];
}

/** The state: every configuration made so far (ascending), and how many slots were applied. */
export interface ConfigurationsState {
  readonly configs: readonly SpecConfiguration[];
  readonly applied: number;
}

/** An input: the value chosen at the next slot; only a change matters. */
export type ChosenInput = { readonly _tag: "reconfig"; readonly change: Change } | { readonly _tag: "other" };

const ascending = (s: Set<ReplicaId>): ReplicaId[] => [...s].sort((x, y) => x - y);

/** `change` applied to `c`, or null when it does not fit (then nothing changes). */
export function nextConfiguration(
  c: Pick<SpecConfiguration, "voters" | "learners" | "retired">,
  change: Change,
): { voters: ReplicaId[]; learners: ReplicaId[]; retired: ReplicaId[] } | null {
  const voters = new Set(c.voters);
  const learners = new Set(c.learners);
  const retired = new Set(c.retired);
  const member = (r: ReplicaId) => voters.has(r) || learners.has(r);
  switch (change.op) {
    case "add":
      if (member(change.replica) || retired.has(change.replica)) return null;
      learners.add(change.replica);
      break;
    case "promote":
      if (!learners.has(change.replica)) return null;
      learners.delete(change.replica);
      voters.add(change.replica);
      break;
    case "remove":
      if (learners.has(change.replica)) learners.delete(change.replica);
      else if (voters.has(change.replica) && voters.size > 1) voters.delete(change.replica);
      else return null;
      retired.add(change.replica);
      break;
    case "replace":
      if (!voters.has(change.remove) || !learners.has(change.add)) return null;
      voters.delete(change.remove);
      learners.delete(change.add);
      voters.add(change.add);
      retired.add(change.remove);
      break;
  }
  return { voters: ascending(voters), learners: ascending(learners), retired: ascending(retired) };
}

/** The configurations machine for `initialVoters` and window `alpha`. */
export function configurations(
  initialVoters: readonly ReplicaId[],
  alpha: number,
): StateMachine<ConfigurationsState, ChosenInput, SpecConfiguration | null> {
  if (!(Number.isInteger(alpha) && alpha >= 1)) throw new Error(`alpha must be a positive integer, got ${alpha}`);
  const start: ConfigurationsState = {
    configs: [{ chosenAt: 0, governsFrom: 1, voters: ascending(new Set(initialVoters)), learners: [], retired: [] }],
    applied: 0,
  };
  const transition = (input: ChosenInput, state: ConfigurationsState): ConfigurationsState => {
    const slot = state.applied + 1;
    if (input._tag !== "reconfig") return { configs: state.configs, applied: slot };
    const next = nextConfiguration(state.configs[state.configs.length - 1]!, input.change);
    if (next === null) return { configs: state.configs, applied: slot };
    return { configs: [...state.configs, { chosenAt: slot, governsFrom: slot + alpha, ...next }], applied: slot };
  };
  return {
    name: `configurations(alpha=${alpha})`,
    start,
    transition,
    // The output: the configuration the input made, if any.
    output: (input, state) => {
      const after = transition(input, state);
      return after.configs.length > state.configs.length ? after.configs[after.configs.length - 1]! : null;
    },
  };
}

/** config(slot) in `state`, or undefined while the slots applied do not determine it (slot > applied + alpha). */
export function configurationAt(
  state: ConfigurationsState,
  slot: number,
  alpha: number,
): SpecConfiguration | undefined {
  if (slot > state.applied + alpha) return undefined;
  let found = state.configs[0]!;
  for (const c of state.configs) if (c.governsFrom <= slot) found = c;
  return found;
}

/**
 * The abstraction from the chosen log to configurations: which replicas are the acceptors of each
 * slot's instance of Voting (proofs/reconfiguration.md). It runs the spec, spec/configuration.ts,
 * over the chosen prefix; the spec restates impl/core's configurations on purpose instead of
 * importing them, so a bug in the implementation's `applyChange` or `governsFrom` shows up as a
 * disagreement with this ghost.
 *
 *   config(s) == the configuration made by the last change chosen at a slot i with i + alpha <= s,
 *                each change applied to the configuration before it (the initial members first)
 *
 * It is known for s <= prefix + alpha, where slots 1..prefix are chosen (every change that can
 * govern s sits at a slot <= s - alpha). The checks built on it:
 *   OneConfigurationPerSlot      a replica's configuration for a slot is config(slot)
 *   ProposalInKnownConfiguration a vote at slot s is cast only once config(s) is determined (R2)
 *   VoterOfTheSlot               a vote at slot s is by a voter of config(s)
 * The last two are checked by the Voting ghost, which asks this one for each slot's voters. And:
 *   RetiresOnlyWhenRemoved       a replica retires (rule R5) only once a chosen change removed it
 *   RefusalFinal                 a change refused at once met no membership change still to be executed
 */
import {
  configurationAt,
  configurations,
  type ChosenInput,
  type ConfigurationsState,
  type SpecConfiguration,
} from "../spec/configuration.ts";
import type { StateMachine } from "../spec/state-machine.ts";
import {
  applyChange,
  configurationFor,
  showChange,
  showConfiguration,
  slotMapForEach,
  type ConfigChange,
  type Membership,
  type ReplicaId,
  type ReplicaState,
  type Value,
} from "../impl/core/testing/index.ts";
import { violated } from "./violation.ts";

export { nextConfiguration, type SpecConfiguration } from "../spec/configuration.ts";

/** The configuration ghost: spec/configuration.ts run over the chosen prefix. */
export class ConfigurationGhost<I> {
  private readonly spec: StateMachine<ConfigurationsState, ChosenInput, SpecConfiguration | null>;
  state: ConfigurationsState;

  constructor(
    initialVoters: readonly ReplicaId[],
    readonly alpha: number,
    private readonly chosenValue: (slot: number) => Value<I> | undefined,
    private readonly onChange: (c: SpecConfiguration) => void = () => undefined,
    /** The spec over the same voters and alpha, when one is at hand (a fork shares its parent's). */
    spec?: StateMachine<ConfigurationsState, ChosenInput, SpecConfiguration | null>,
  ) {
    this.spec = spec ?? configurations(initialVoters, alpha);
    this.state = this.spec.start;
  }

  /** The spec this ghost runs (pure: ghosts of the same voters and alpha may share it). */
  get machine(): StateMachine<ConfigurationsState, ChosenInput, SpecConfiguration | null> {
    return this.spec;
  }

  /** Take over `other`'s configurations (the explorer forks the checker; see VotingGhost.copyFrom). */
  copyFrom(other: ConfigurationGhost<I>): void {
    this.state = other.state;
  }

  /** Slots 1..prefix are chosen and applied. */
  get prefix(): number {
    return this.state.applied;
  }

  /** Every configuration made so far; [0] is the initial one. */
  get configs(): readonly SpecConfiguration[] {
    return this.state.configs;
  }

  /** A slot was chosen: extend the prefix as far as it is contiguous, one spec transition per slot. */
  chosen(): void {
    for (;;) {
      const value = this.chosenValue(this.state.applied + 1);
      if (value === undefined) return;
      const input: ChosenInput =
        value._tag === "reconfig" ? { _tag: "reconfig", change: value.change } : { _tag: "other" };
      const made = this.spec.output(input, this.state);
      this.state = this.spec.transition(input, this.state);
      if (made !== null) this.onChange(made);
    }
  }

  /** config(slot), or undefined while the chosen prefix does not determine it yet. */
  at(slot: number): SpecConfiguration | undefined {
    return configurationAt(this.state, slot, this.alpha);
  }

  /**
   * OneConfigurationPerSlot for a live replica: for every slot from its next one to execute up to
   * its executed prefix + alpha (the slots it may propose or vote in), its configuration is the
   * spec's, wherever the spec determines it.
   */
  checkReplica<S, O>(id: ReplicaId, state: ReplicaState<S, I, O>): void {
    const configs = state.learner.configs;
    const first = state.learner.executedUpTo + 1;
    const last = Math.min(state.learner.executedUpTo + this.alpha, this.prefix + this.alpha);
    // Only the slots where some configuration starts (or the first) can differ: check those.
    const slots = new Set<number>([first]);
    for (const c of configs) if (c.governsFrom > first && c.governsFrom <= last) slots.add(c.governsFrom);
    for (const c of this.configs) if (c.governsFrom > first && c.governsFrom <= last) slots.add(c.governsFrom);
    for (const slot of slots) {
      if (slot > last) continue;
      const spec = this.at(slot);
      if (spec === undefined) continue;
      const mine = configurationFor(configs, slot);
      if (
        sameList(mine.voters, spec.voters) &&
        sameList(mine.learners, spec.learners) &&
        sameList(mine.retired, spec.retired)
      )
        continue;
      violated({
        check: "OneConfigurationPerSlot",
        level: "Configuration",
        message: `replica ${id} holds ${showConfiguration(mine)} retired=${mine.retired.join(",")} for slot ${slot}, but the chosen prefix makes it ${showConfiguration(spec)} retired=${spec.retired.join(",")} (chosen at slot ${spec.chosenAt}, governing from ${spec.governsFrom})`,
      });
    }
  }
}

/**
 * RetiresOnlyWhenRemoved: replica `id` just retired, which is right only if a change in the chosen
 * prefix removed it (its id is retired in the latest configuration the prefix makes). A replica
 * that retires otherwise (one that joined and has not yet executed the slot of its own addition,
 * say) leaves a configuration that counts on it.
 */
export function checkRetirement<I>(ghost: ConfigurationGhost<I>, id: ReplicaId, reason: string): void {
  const latest = ghost.configs[ghost.configs.length - 1]!;
  if (latest.retired.includes(id)) return;
  violated({
    check: "RetiresOnlyWhenRemoved",
    level: "Configuration",
    message: `replica ${id} retired (${reason}), but no chosen change removed it: the chosen prefix 1..${ghost.prefix} makes ${showConfiguration(latest)} retired=${latest.retired.join(",") || "none"}`,
  });
}

function sameList(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * The last slot replica `id` may lead or vote in, if a chosen change removed it: the slot before
 * the first configuration (in `configs`, the chosen prefix's) from which on it is a voter of none
 * (a retired id is never added again, so it never votes again). Undefined while it is not retired.
 */
export function lastVoterSlot(configs: readonly SpecConfiguration[], id: ReplicaId): number | undefined {
  const latest = configs[configs.length - 1]!;
  if (!latest.retired.includes(id)) return undefined;
  let k = configs.length - 1;
  while (k > 0 && !configs[k - 1]!.voters.includes(id)) k--;
  return configs[k]!.governsFrom - 1;
}

/**
 * NoDisruptionByRemoved: a replica never binds itself (promises, votes for, grants a lease to) a
 * ballot led by a replica a chosen change removed once it has executed every slot that replica
 * could lead (`lastVoterSlot`). Such a ballot can decide nothing this replica does not already
 * know, so helping it only disrupts: it raises maxBal past the leader of the configuration in
 * force and keeps this replica from helping any other ballot for a lease (rule L1), which delays
 * the next leader of the configuration in force by a lease and an election for no gain. It bounds
 * the disruption a removed replica may cause at zero among the replicas that know it left; rule
 * R4 is how impl/core keeps it, from the acceptor's own configurations and the leader's progress
 * as its message shows it, while this check reads the chosen log.
 */
export function checkNoDisruptionByRemoved<I>(
  ghost: ConfigurationGhost<I>,
  id: ReplicaId,
  executedUpTo: number,
  leader: ReplicaId,
  what: string,
): void {
  const last = lastVoterSlot(ghost.configs, leader);
  if (last === undefined || executedUpTo < last) return;
  violated({
    check: "NoDisruptionByRemoved",
    level: "Configuration",
    message: `replica ${id} ${what} a ballot of replica ${leader}, which a chosen change removed (it leads no slot after ${last}), although it has executed up to slot ${executedUpTo}: the ballot can decide nothing new there and only keeps the configuration in force from electing its own leader`,
  });
}

/**
 * RefusalFinal: a membership change that leader `id` refused at once ("retrying will not help",
 * rule R3) does not fit the configuration it would meet either: the leader's latest executed
 * configuration with every membership change applied, in slot order, that may still be executed
 * before it: those chosen above the leader's executed prefix (`chosen`, the Consensus ghost's
 * values by slot), those in the leader's own hands there (voted by its own acceptor: its
 * pipeline), then those it has queued. Otherwise the operator, told to give up, would not retry a
 * change that is about to fit (a replace of a voter whose promotion a new leader re-proposes). A
 * refusal of a change that fits the executed configuration (a learner that has not caught up) is
 * not about the configuration, and passes.
 */
export function checkRefusalFinal<S, I, O>(
  id: ReplicaId,
  leader: ReplicaState<S, I, O>,
  change: ConfigChange,
  chosen: ReadonlyMap<number, { readonly value: Value<I> }>,
): void {
  const configs = leader.learner.configs;
  // A change that fits was refused for another reason (a learner that has not caught up).
  if (typeof applyChange(configs[configs.length - 1]!, change) !== "string") return;
  const executed = leader.learner.executedUpTo;
  const ahead = new Map<number, ConfigChange>();
  slotMapForEach(leader.acceptor.votes, executed + 1, Number.MAX_SAFE_INTEGER, (slot, vote) => {
    if (vote.value._tag === "reconfig") ahead.set(slot, vote.value.change);
    return true;
  });
  for (const [slot, { value }] of chosen)
    if (slot > executed) {
      if (value._tag === "reconfig") ahead.set(slot, value.change);
      else ahead.delete(slot);
    }
  const before = [...ahead.entries()].sort(([a], [b]) => a - b).map(([slot, c]) => `${showChange(c)} at slot ${slot}`);
  const changes = [...ahead.entries()].sort(([a], [b]) => a - b).map(([, c]) => c);
  if (leader.role._tag === "leader")
    for (const batch of leader.role.pending)
      if (batch.change !== undefined) {
        changes.push(batch.change);
        before.push(`${showChange(batch.change)} queued`);
      }
  let met: Membership = configs[configs.length - 1]!;
  for (const c of changes) {
    const next = applyChange(met, c);
    if (typeof next !== "string") met = next;
  }
  if (changes.length === 0 || typeof applyChange(met, change) === "string") return;
  violated({
    check: "RefusalFinal",
    level: "Configuration",
    message: `replica ${id} refused ${showChange(change)} for good against the configuration it executed up to slot ${executed}, but it fits once ${before.join(", ")} is executed before it`,
  });
}

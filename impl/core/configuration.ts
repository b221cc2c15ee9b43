/**
 * Configurations: which replicas vote (a quorum is a majority of them) and which only learn, and
 * from which slot on. Membership changes go through the log (Lamport, Malkhi and Zhou,
 * "Reconfiguring a State Machine", 2010; the WINDOW of van Renesse and Altinbuken, "Paxos Made
 * Moderately Complex", 2015): a change chosen at slot i yields a configuration that governs the
 * slots from i + alpha on (`reconfigAlphaSlots`). Every slot is decided under exactly one
 * configuration, `configurationFor(configs, slot)`, known to every replica that executed the
 * slots up to slot - alpha; the leader never proposes beyond that (docs/reconfiguration.md).
 *
 * Pure values and functions: a configuration is part of the replicated state, derived from the
 * chosen log alone, so every replica computes the same one for every slot. Nothing here may read
 * a clock or hold state.
 */
import { Schema } from "effect";
import { fail } from "./assert.ts";
import type { ReplicaId } from "./events.ts";

/** Most replicas (voters and learners) one configuration may have. */
export const configurationReplicasMax = 31;

/**
 * Where a member listens, as the change that added it carried it: opaque `HOST:PORT` texts for
 * its peer (replica-to-replica) and client (HTTP) addresses. Part of the replicated state, so
 * every replica learns a new member's address from the log, and keeps it across restarts.
 */
export interface MemberAddress {
  readonly replica: ReplicaId;
  readonly peer: string;
  /** Absent when the change did not say (then clients find it at the replica's peers, as before). */
  readonly http?: string | undefined;
}

/** Longest address text, in characters. */
export const addressLengthMax = 256;

/**
 * A configuration and the slots it governs. Arrays are sorted ascending; voters, learners and
 * retired replicas are disjoint.
 */
export interface Configuration {
  /** The slot at which the change that made it was chosen; 0 for the initial configuration. Unique. */
  readonly epoch: number;
  /** The first slot it governs: epoch + alpha (1 for the initial configuration). It governs until the next one does. */
  readonly governsFrom: number;
  /** Who votes and promises: quorums are majorities of these. Never empty. */
  readonly voters: readonly ReplicaId[];
  /** Non-voting members: they receive the commit index and catch up, and are never counted in a quorum. */
  readonly learners: readonly ReplicaId[];
  /**
   * Every replica removed by a change so far. A removed id is never added again, so a replica
   * whose id is here knows for certain it was removed (and retires), while one that is in no
   * list was simply not added yet (a joining replica catching up on the log).
   */
  readonly retired: readonly ReplicaId[];
  /**
   * Where members listen (ascending by replica): the address each add carried for its new
   * replica and for the members of the time. Initial members are also found by their start flags.
   */
  readonly addresses: readonly MemberAddress[];
}

/**
 * A membership change, as a log value carries it. It is applied, at execution, to the latest
 * configuration chosen before it; a change that does not fit that configuration (for example
 * adding a replica that is already a member) is refused by every replica alike.
 */
export type ConfigChange =
  /**
   * A new replica joins as a learner; with `address`, every replica learns where it listens.
   * `members` carries where the other members listen, as the proposer knows them: a joiner knows
   * only the replica it was started with, and a member restarted with an older start list may not
   * know the joiner, so each learns the other from the log (a snapshot carries them too).
   */
  | {
      readonly op: "add";
      readonly replica: ReplicaId;
      readonly address?: { readonly peer: string; readonly http?: string | undefined } | undefined;
      readonly members?: readonly MemberAddress[] | undefined;
    }
  /** A learner becomes a voter. */
  | { readonly op: "promote"; readonly replica: ReplicaId }
  /** A voter or learner leaves. The last voter cannot leave. */
  | { readonly op: "remove"; readonly replica: ReplicaId }
  /** In one change: the learner `add` becomes a voter and the voter `remove` leaves (a failed disk replaced). */
  | { readonly op: "replace"; readonly remove: ReplicaId; readonly add: ReplicaId };

const ReplicaIdSchema = Schema.Int.pipe(Schema.positive());
const AddressText = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(addressLengthMax));
const MemberAddressSchema = Schema.Struct({
  replica: ReplicaIdSchema,
  peer: AddressText,
  http: Schema.optional(AddressText),
});

/** The wire and disk form of a change. */
export const ConfigChange: Schema.Schema<ConfigChange> = Schema.Union(
  Schema.Struct({
    op: Schema.Literal("add"),
    replica: ReplicaIdSchema,
    address: Schema.optional(Schema.Struct({ peer: AddressText, http: Schema.optional(AddressText) })),
    members: Schema.optional(Schema.Array(MemberAddressSchema).pipe(Schema.maxItems(configurationReplicasMax))),
  }),
  Schema.Struct({ op: Schema.Literal("promote"), replica: ReplicaIdSchema }),
  Schema.Struct({ op: Schema.Literal("remove"), replica: ReplicaIdSchema }),
  Schema.Struct({ op: Schema.Literal("replace"), remove: ReplicaIdSchema, add: ReplicaIdSchema }),
);

/**
 * The disk form of a configuration (inside snapshots). `retired` and `addresses` are absent from
 * snapshots written before configurations kept them, and read as empty.
 */
export const ConfigurationSchema = Schema.Struct({
  epoch: Schema.Int.pipe(Schema.nonNegative()),
  governsFrom: Schema.Int.pipe(Schema.positive()),
  voters: Schema.Array(ReplicaIdSchema).pipe(Schema.minItems(1)),
  learners: Schema.Array(ReplicaIdSchema),
  retired: Schema.optionalWith(Schema.Array(ReplicaIdSchema), { default: () => [] }),
  addresses: Schema.optionalWith(Schema.Array(MemberAddressSchema), { default: () => [] }),
});

function sorted(ids: readonly ReplicaId[]): ReplicaId[] {
  return [...ids].sort((a, b) => a - b);
}

/** The configuration in force from slot 1: `members` vote, nobody learns, nobody was removed. */
export function initialConfiguration(members: readonly ReplicaId[]): Configuration {
  return { epoch: 0, governsFrom: 1, voters: sorted(members), learners: [], retired: [], addresses: [] };
}

/** Who a configuration made by a change lists (everything but its slots). */
export type Membership = Pick<Configuration, "voters" | "learners" | "retired" | "addresses">;

/** The membership fields of `c` alone (a configuration's slots are the caller's). */
function membershipOf(c: Membership): Membership {
  return { voters: c.voters, learners: c.learners, retired: c.retired, addresses: c.addresses };
}

/** `base` without `r`: it leaves the voters, learners and addresses, and joins the retired. */
function without(base: Membership, r: ReplicaId): Membership {
  return {
    voters: base.voters.filter((x) => x !== r),
    learners: base.learners.filter((x) => x !== r),
    retired: sorted([...base.retired, r]),
    addresses: base.addresses.filter((a) => a.replica !== r),
  };
}

/** `change` applied to `base`, or the reason it does not fit `base`. */
export function applyChange(from: Membership, change: ConfigChange): Membership | string {
  const base = membershipOf(from);
  const isVoter = (r: ReplicaId) => base.voters.includes(r);
  const isLearner = (r: ReplicaId) => base.learners.includes(r);
  switch (change.op) {
    case "add": {
      const r = change.replica;
      if (isVoter(r) || isLearner(r)) return `replica ${r} is already a member`;
      if (base.retired.includes(r))
        return `replica ${r} was removed from the cluster, and a removed id is never added again: start the new replica under a new id, with an empty data directory`;
      if (base.voters.length + base.learners.length >= configurationReplicasMax)
        return `a configuration has at most ${configurationReplicasMax} replicas`;
      // The change's addresses replace what the configuration had for the same replicas; only
      // members' are kept (an address the proposer listed for a non-member is dropped).
      const given = new Map<ReplicaId, MemberAddress>();
      for (const a of change.members ?? []) if (isVoter(a.replica) || isLearner(a.replica)) given.set(a.replica, a);
      if (change.address !== undefined)
        given.set(r, {
          replica: r,
          peer: change.address.peer,
          ...(change.address.http === undefined ? {} : { http: change.address.http }),
        });
      const addresses =
        given.size === 0
          ? base.addresses
          : [...base.addresses.filter((a) => !given.has(a.replica)), ...given.values()].sort(
              (a, b) => a.replica - b.replica,
            );
      return { ...base, learners: sorted([...base.learners, r]), addresses };
    }
    case "promote":
      if (!isLearner(change.replica)) return `replica ${change.replica} is not a learner`;
      return {
        ...base,
        voters: sorted([...base.voters, change.replica]),
        learners: base.learners.filter((r) => r !== change.replica),
      };
    case "remove":
      if (isLearner(change.replica)) return without(base, change.replica);
      if (!isVoter(change.replica)) return `replica ${change.replica} is not a member`;
      if (base.voters.length === 1) return `replica ${change.replica} is the last voter`;
      return without(base, change.replica);
    case "replace": {
      if (!isVoter(change.remove)) return `replica ${change.remove} is not a voter`;
      if (!isLearner(change.add)) return `replica ${change.add} is not a learner (add it first, let it catch up)`;
      const rest = without(base, change.remove);
      return {
        ...rest,
        voters: sorted([...rest.voters, change.add]),
        learners: rest.learners.filter((r) => r !== change.add),
      };
    }
  }
}

/**
 * The configuration that governs `slot`: the last one whose `governsFrom` is at most `slot`.
 * `configs` is ascending by epoch and its first element governs every slot it is asked about
 * (callers ask only about slots above their executed prefix; see `pruneConfigurations`).
 */
export function configurationFor(configs: readonly Configuration[], slot: number): Configuration {
  let found = configs[0];
  if (found === undefined) fail("configurationFor: no configuration");
  for (let i = 1; i < configs.length; i++) {
    const c = configs[i]!;
    if (c.governsFrom > slot) break;
    found = c;
  }
  return found;
}

/**
 * Rule R4: may an acceptor that executed the slots up to `executedUpTo`, holding `configs` (those
 * governing the slots above it), help (promise, vote for, grant a lease to) a ballot led by
 * `leader`, whose message shows it has executed up to `leaderExecutedUpTo` (a Prepare's fromSlot
 * - 1, an Accept's or Heartbeat's commit index)? Not when the leader votes in none of `configs`
 * and is not ahead of the acceptor: the acceptor has executed a change that removed it, and every
 * slot it could still lead (those of the configurations where it votes) is executed here. A
 * replica removed while it lagged keeps campaigning in the configuration it knows; without this
 * rule its higher ballots would raise maxBal at the voters of the current configuration and
 * depose their leader, again and again. A leader ahead of the acceptor may vote in a configuration
 * the acceptor does not know yet (one added it), so it is always helped. Liveness only: refusing
 * is always safe.
 */
export function mayHelpLeader(
  configs: readonly Configuration[],
  executedUpTo: number,
  leader: ReplicaId,
  leaderExecutedUpTo: number,
): boolean {
  if (leaderExecutedUpTo > executedUpTo) return true;
  for (const c of configs) if (c.voters.includes(leader)) return true;
  return false;
}

/** The configurations that govern some slot >= `slot`: the one governing `slot` and every later one. */
export function pruneConfigurations(configs: readonly Configuration[], slot: number): readonly Configuration[] {
  let first = 0;
  while (first + 1 < configs.length && configs[first + 1]!.governsFrom <= slot) first++;
  return first === 0 ? configs : configs.slice(first);
}

/** Every replica of `configs` (voters and learners), plus `self`, ascending, without repeats. */
export function replicasOf(configs: readonly Configuration[], self: ReplicaId): readonly ReplicaId[] {
  const ids = new Set<ReplicaId>([self]);
  for (const c of configs) {
    for (const r of c.voters) ids.add(r);
    for (const r of c.learners) ids.add(r);
  }
  return sorted([...ids]);
}

/** `a` and `b` list the same ids in the same order. */
export function sameIds(a: readonly ReplicaId[], b: readonly ReplicaId[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** `voters=1,2,3 learners=4`, as traces and golden files print a configuration. */
export function showConfiguration(c: Pick<Configuration, "voters" | "learners">): string {
  return `voters=${c.voters.join(",")}${c.learners.length === 0 ? "" : ` learners=${c.learners.join(",")}`}`;
}

/** `add 4`, `add 4 at h4:7004`, `replace 3 by 4`, as traces print a change. */
export function showChange(change: ConfigChange): string {
  if (change.op === "replace") return `replace ${change.remove} by ${change.add}`;
  if (change.op === "add") {
    const at = change.address === undefined ? "" : ` at ${change.address.peer}`;
    const members =
      change.members === undefined ? "" : ` (addresses of ${change.members.map((a) => a.replica).join(",")})`;
    return `add ${change.replica}${at}${members}`;
  }
  return `${change.op} ${change.replica}`;
}

/**
 * What the leader waits for before it raises the log's feature level: every member of the latest
 * configurations (in force and pending, voters and learners, itself included) must have named, in
 * its peer handshake, a level at least as high (impl/runtime/upgrade-window.ts: `+level3` in its
 * incarnation). A member that does not execute a level stops at its raise (impl/core/learner.ts,
 * `executeReady`): safe, but a member out of service. The runtime counts what the members named
 * and hands the core the least of it (the core's `FeaturesKnown` event), so the wait is data in the
 * core's trace, replayed like any other event; the core holds the raise while the count is below
 * its configured `featureLevel` (impl/core/leader.ts, `featuresDue`). proofs/feature-levels.md,
 * "Waiting for every member"; docs/operations.md, "Upgrading".
 */
import type { Configuration, ReplicaId } from "../core/index.ts";
import { featureLevelMax } from "../../spec/service.ts";
import { featureLevelUnnamed } from "./upgrade-window.ts";

/** What the count reads. */
export interface MemberLevels {
  readonly self: ReplicaId;
  /** The level this replica names itself. */
  readonly selfLevel: number;
  /** Every member of the latest configurations (see {@link membersOf}). */
  readonly members: readonly ReplicaId[];
  /** The level a member named in its last handshake with this replica; null: none seen yet. */
  readonly named: (id: ReplicaId) => number | null;
}

/** A member known to execute less than the level waited for. */
export interface ShortMember {
  readonly id: ReplicaId;
  /** The level it named (null: no handshake seen from it yet). */
  readonly named: number | null;
}

/**
 * The least level every member is known to execute (`known`: a member not heard from counts as
 * {@link featureLevelUnnamed}), and the members that name less than `target` (`short`).
 */
export function countFeatures(m: MemberLevels, target: number): { known: number; short: ShortMember[] } {
  let known = Number.POSITIVE_INFINITY;
  const short: ShortMember[] = [];
  for (const id of m.members) {
    const named = id === m.self ? m.selfLevel : m.named(id);
    known = Math.min(known, named ?? featureLevelUnnamed);
    if (named === null || named < target) short.push({ id, named });
  }
  return { known: Number.isFinite(known) ? known : m.selfLevel, short };
}

/** Every member of `configs` (in force and pending; voters and learners), ascending. */
export function membersOf(configs: readonly Pick<Configuration, "voters" | "learners">[]): ReplicaId[] {
  const ids = new Set<ReplicaId>();
  for (const c of configs) for (const id of [...c.voters, ...c.learners]) ids.add(id);
  return [...ids].sort((a, b) => a - b);
}

/** Why the raise to `target` waits, for the log: each member short of it and what it named. */
export function waitReason(target: number, short: readonly ShortMember[]): string {
  const each = short.map(({ id, named }) =>
    named === null ? `replica ${id} has not connected to this replica` : `replica ${id} executes levels up to ${named}`,
  );
  return `the raise of the feature level to ${target} waits until every member says it executes that level: ${each.join(", ")}; upgrade ${short.length === 1 ? "it" : "them"} (a member that meets a level it does not know stops there)`;
}

/**
 * The level a replica names when the test-only `PAXOS_LEASE_TEST_FEATURE_LEVEL` says so (to stand
 * for a replica of an earlier version; refused unless `PAXOS_LEASE_ALLOW_TEST_FAULTS=1`), else
 * `levelMax`. Throws on a value that is not a level from 1 to `levelMax`.
 */
export function namedFeatureLevel(env: NodeJS.ProcessEnv, levelMax = featureLevelMax): number {
  const text = env.PAXOS_LEASE_TEST_FEATURE_LEVEL;
  if (text === undefined) return levelMax;
  if (env.PAXOS_LEASE_ALLOW_TEST_FAULTS !== "1")
    throw new Error(
      "PAXOS_LEASE_TEST_FEATURE_LEVEL is for fault-injection tests only; set PAXOS_LEASE_ALLOW_TEST_FAULTS=1 to use it (never in production)",
    );
  const level = /^[1-9][0-9]*$/.test(text) ? Number(text) : Number.NaN;
  if (!(level <= levelMax))
    throw new Error(
      `PAXOS_LEASE_TEST_FEATURE_LEVEL is not a feature level from 1 to ${levelMax}: ${JSON.stringify(text)}`,
    );
  return level;
}

/**
 * Counting by configuration: which Promises cover a slot, and whether a quorum of the
 * configuration that governs it promised (the lease's counting, by the same peers, is lease.ts).
 * A candidate or leader keeps its phase 1 bookkeeping per peer (every replica of the
 * configurations it holds); this module maps peers to configurations and carries the bookkeeping
 * over when the configurations change.
 *
 * It must never count a replica in a configuration it is not a voter of, and never count a
 * Promise for a slot the Promise does not report (below the acceptor's truncation point).
 */
import { fail } from "./assert.ts";
import { replicasOf, type Configuration } from "./configuration.ts";
import type { ReplicaId } from "./events.ts";
import type { ReplicaRules } from "./rules.ts";
import type { PhaseOneOf } from "./state.ts";

/** A peer's index in `peers`, or -1. */
export function peerIndex(peers: readonly ReplicaId[], id: ReplicaId): number {
  return peers.indexOf(id);
}

/**
 * Rule T2: the first slot a Promise reports every vote of. A Promise for `fromSlot` from an
 * acceptor that forgot its votes through `truncatedUpTo` reports nothing about slots up to the
 * truncation point: those slots are chosen, and their votes may be gone. Counting the Promise
 * there would let a new leader take "no vote reported" for "no value chosen" and propose a no-op
 * over a chosen value (proofs/truncation.md).
 */
export function promiseCoversFrom(fromSlot: number, truncatedUpTo: number): number {
  return Math.max(fromSlot, truncatedUpTo + 1);
}

/**
 * Is phase 1 complete for `slot`: did a quorum of the voters of `config` (the configuration that
 * governs `slot`) promise the ballot with Promises that report their votes at `slot`?
 */
export function phase1Covers<I>(
  rules: ReplicaRules,
  phase: PhaseOneOf<I>,
  config: Configuration,
  slot: number,
): boolean {
  let count = 0;
  for (const voter of config.voters) {
    const i = peerIndex(phase.peers, voter);
    if (i >= 0 && (phase.promised & (1 << i)) !== 0 && phase.coversFrom[i]! <= slot) count++;
  }
  if (count > config.voters.length) fail(`quorum count: ${count} promises from ${config.voters.length} voters`);
  return count >= rules.quorumSize(config.voters.length);
}

/**
 * Has phase 1 revealed every vote that could be chosen above the executed prefix `executedUpTo`?
 * For each configuration of `configs` (those that govern some slot above it: the first governs
 * executedUpTo + 1, the others are pending), phase 1 must cover the first slot it governs there;
 * a Promise reports every vote from its `coversFrom` on, so that covers every later slot too.
 * Rule L3 asks this before a read by lease.
 */
export function phase1CoversAbove<I>(
  rules: ReplicaRules,
  phase: PhaseOneOf<I>,
  configs: readonly Configuration[],
  executedUpTo: number,
): boolean {
  for (const config of configs) {
    if (!phase1Covers(rules, phase, config, Math.max(config.governsFrom, executedUpTo + 1))) return false;
  }
  return true;
}

/** The voters of `config` that have not promised the ballot (or whose Promise does not cover `slot`). */
export function unpromised<I>(phase: PhaseOneOf<I>, config: Configuration, slot: number): ReplicaId[] {
  return config.voters.filter((voter) => {
    const i = peerIndex(phase.peers, voter);
    return i < 0 || (phase.promised & (1 << i)) === 0 || phase.coversFrom[i]! > slot;
  });
}

/** The peers of a replica holding `configs`: every voter and learner of them, and itself. */
export function peersOf(configs: readonly Configuration[], self: ReplicaId): readonly ReplicaId[] {
  return replicasOf(configs, self);
}

/** Carry a per-peer array over to a new peer list, by id (`missing` for new peers). */
export function carryOver<T>(
  oldPeers: readonly ReplicaId[],
  values: readonly T[],
  newPeers: readonly ReplicaId[],
  missing: T,
): T[] {
  return newPeers.map((id) => {
    const i = oldPeers.indexOf(id);
    return i < 0 ? missing : values[i]!;
  });
}

/** Carry a per-peer bit mask over to a new peer list, by id. */
export function carryOverMask(oldPeers: readonly ReplicaId[], mask: number, newPeers: readonly ReplicaId[]): number {
  let next = 0;
  newPeers.forEach((id, j) => {
    const i = oldPeers.indexOf(id);
    if (i >= 0 && (mask & (1 << i)) !== 0) next |= 1 << j;
  });
  return next;
}

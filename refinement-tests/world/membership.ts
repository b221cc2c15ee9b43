/**
 * Membership in the simulated world: where a replica listens, whether a replica's log carries
 * another's address, and how the operator's tool follows an add with its promotion or replacement.
 */
import type { KvReplicaState } from "./world.ts";

/** How often the operator's tool asks again for the change that follows an add, ms of true time. */
export const followUpRetryMs = 200;
/** How many times it asks before giving up. */
export const followUpTriesMax = 25;

/** Where replica `id` listens, in the world (opaque texts, as the runtime's HOST:PORT). */
export function addressOfReplica(id: number): { peer: string; http: string } {
  return { peer: `r${id}:7000`, http: `r${id}:8000` };
}

/** Does `state` hold a configuration that carries the address of replica `id`? */
export function knowsFromLog(state: KvReplicaState | null, id: number): boolean {
  if (state === null) return false;
  for (const c of state.learner.configs) for (const a of c.addresses) if (a.replica === id) return true;
  return false;
}

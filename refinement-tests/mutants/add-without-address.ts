/**
 * Membership without addresses: a replica is added without the address it listens at, nor the
 * members', as before membership carried addresses. Replicas then know a new member only if they
 * were started with its address or it dialled them in their current life; a leader elected later
 * that never heard from it cannot reach it, and it stays behind for good.
 */
import { step as realStep, type Step } from "../../impl/core/index.ts";
import type { Mutant } from "./mutant.ts";

const stripAddress: Step = (state, event) => {
  if (event._tag !== "Reconfigure" || event.change.op !== "add" || event.change.address === undefined)
    return realStep(state, event);
  return realStep(state, { ...event, change: { op: "add", replica: event.change.replica } });
};

export const addWithoutAddress: Mutant = {
  name: "add-without-address",
  description: "a replica is added without its address, so only replicas that heard from it can reach it",
  expectedCatch: ["Liveness"],
  mode: "liveness",
  step: stripAddress,
  // Bounded liveness: a spare is added and the leader crashes; the replica elected next never
  // heard from the spare, and in the fault-free future the spare never catches up.
  explore: {
    bounds: { writes: 0, reads: 0, reconfig: "add", crashes: 1, orders: "fifo", liveness: true },
    depth: 8,
  },
};

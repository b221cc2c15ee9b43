/**
 * No no-op gap filling (a liveness bug): a new leader never sends the no-ops phase 1 calls for,
 * so a slot that phase 1 found empty is never chosen and execution stops at the gap for good.
 */
import type { Mutant } from "./mutant.ts";
import { withEffects } from "./mutant.ts";

export const noNoopGapFilling: Mutant = {
  name: "no-noop-gap-filling",
  description: "a leader never sends an Accept for a no-op, so gaps phase 1 revealed stay unfilled",
  expectedCatch: ["Liveness"],
  mode: "liveness",
  step: withEffects((effects) =>
    effects.filter((e) => !(e._tag === "Send" && e.message._tag === "Accept" && e.message.value._tag === "noop")),
  ),
  // Bounded liveness: a membership change opens an alpha window whose slots the leader fills with
  // no-ops; with one write after it, the fault-free future of the state where the change was asked
  // never executes the write (the same at every replica count).
  explore: { bounds: { writes: 1, reads: 0, reconfig: "add", orders: "fifo", liveness: true }, depth: 6 },
};

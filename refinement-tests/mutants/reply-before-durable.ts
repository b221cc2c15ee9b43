/** Replying before the record is durable: an acceptor's Promise or Accepted leaves before its Persist. */
import type { Mutant } from "./mutant.ts";
import { withEffects } from "./mutant.ts";

export const replyBeforeDurable: Mutant = {
  name: "reply-before-durable",
  description: "every Persist is carried out after the step's messages and replies, not before them",
  expectedCatch: ["DurableBeforeSend"],
  mode: "safety",
  step: withEffects((effects) => [
    ...effects.filter((e) => e._tag !== "Persist"),
    ...effects.filter((e) => e._tag === "Persist"),
  ]),
  explore: { bounds: { reads: 0 }, depth: 4 },
};

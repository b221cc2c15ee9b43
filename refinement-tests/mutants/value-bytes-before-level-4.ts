/**
 * Feature level 4's rule before its raise: a replica that holds values to 1 MiB of UTF-8 at
 * execution whatever the level, as a version that changed the store's bound without a feature level
 * would. An append whose whole is over 1 MiB of UTF-8 (within the bound in code units) is refused
 * where every version before executes it: replicas of the two versions diverge over one log. The
 * answer (RepliesMatchSpec) and the store (DigestAgreement) differ from the spec's. The explorer
 * reaches it with two appends near the limit at level 3 (`--feature-level 3 --value-limit`; the
 * regression `explore-append-over-limit-ran-at-level-3` is its shortest path to that append).
 */
import type { Application } from "../../spec/state-machine.ts";
import { featureLevelOf, featureLevelValueBytes, serviceOf, type Service } from "../../spec/service.ts";
import { defaultRules } from "../../impl/core/testing/index.ts";
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

/** `app` with every input applied by level 4's rules, and the service over it (one per app). */
const countingBytes = new WeakMap<
  object,
  { app: Application<never, never, never>; service: Service<never, never, never> }
>();

function byBytes<S, I, O>(app: Application<S, I, O>): { app: Application<S, I, O>; service: Service<S, I, O> } {
  let made = countingBytes.get(app) as { app: Application<S, I, O>; service: Service<S, I, O> } | undefined;
  if (made === undefined) {
    const always: Application<S, I, O> = {
      ...app,
      apply: (input, state, level = 1) => app.apply(input, state, Math.max(level, featureLevelValueBytes)),
    };
    made = { app: always, service: serviceOf(always) };
    countingBytes.set(app, made as never);
  }
  return made;
}

export const valueBytesBeforeLevel4: Mutant = {
  name: "value-bytes-before-level-4",
  description:
    "below feature level 4 a replica refuses an append whose whole is over 1 MiB of UTF-8, which every earlier version executes",
  expectedCatch: ["RepliesMatchSpec", "DigestAgreement"],
  mode: "safety",
  // The random suite at level 3 with appends near the limit (chunks and snapshots as in
  // `value-bytes-ignored`).
  randomTuning: { featureLevel: 3, valueLimit: true, transferChunkBytesMax: 1 << 20, snapshotIntervalSlots: 8 },
  step: withRules({
    executeCommand: (ctx, service, command) => {
      if (featureLevelOf(service) >= featureLevelValueBytes) return defaultRules.executeCommand(ctx, service, command);
      return defaultRules.executeCommand({ ...ctx, ...byBytes(ctx.app) }, service, command);
    },
  }),
  // Two writing clients, each appending 600,000 bytes of UTF-8 to one key at level 3; no snapshot of
  // megabytes every other slot (the path takes a dozen slots).
  explore: {
    bounds: {
      writes: 2,
      reads: 0,
      orders: "fifo",
      overrides: { featureLevel: 3, valueLimit: true, snapshotIntervalSlots: 64 },
    },
    depth: 16,
  },
};

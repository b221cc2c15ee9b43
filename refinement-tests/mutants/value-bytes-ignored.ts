/**
 * Feature level 4 without its rule: a replica that executes a log raised to level 4 by level 3's
 * bound on values (UTF-16 code units) instead of the value limit in bytes of UTF-8, as a version
 * that named level 4 but forgot to pass the level to the store would. An append whose whole is over
 * 1 MiB of UTF-8 then runs where the spec refuses it: its answer (RepliesMatchSpec) and the store
 * (DigestAgreement) differ from the spec's. The explorer reaches it with two appends near the limit
 * (`--feature-level 4 --value-limit`; the regression `explore-append-over-limit-refused` is its
 * shortest path to the refusal).
 */
import { defaultRules } from "../../impl/core/testing/index.ts";
import { featureLevelSessionsOpened, featureLevelValueBytes } from "../../spec/service.ts";
import type { Mutant } from "./mutant.ts";
import { withRules } from "./mutant.ts";

export const valueBytesIgnored: Mutant = {
  name: "value-bytes-ignored",
  description:
    "at feature level 4 a replica executes an append by level 3's bound in code units, building a value over 1 MiB of UTF-8",
  expectedCatch: ["RepliesMatchSpec", "DigestAgreement"],
  mode: "safety",
  // The random suite at level 4 with appends near the limit; chunks and snapshots sized for values
  // of megabytes (the suites' 120-byte chunks would take thousands of rounds per transfer).
  randomTuning: {
    featureLevel: featureLevelValueBytes,
    valueLimit: true,
    transferChunkBytesMax: 1 << 20,
    snapshotIntervalSlots: 8,
  },
  step: withRules({
    executeCommand: (ctx, service, command) => {
      const features = service.features;
      if (features === undefined || features.level < featureLevelValueBytes)
        return defaultRules.executeCommand(ctx, service, command);
      const below = { ...service, features: { ...features, level: featureLevelSessionsOpened } };
      const ran = defaultRules.executeCommand(ctx, below, command);
      return { ...ran, state: { ...ran.state, features: { ...ran.state.features!, level: features.level } } };
    },
  }),
  // Two writing clients, each appending 600,000 bytes of UTF-8 to one key at level 4: the second
  // append's whole is over the limit. Deliveries in the order sent; no snapshot of megabytes every
  // other slot (the path takes a dozen slots).
  explore: {
    bounds: {
      writes: 2,
      reads: 0,
      orders: "fifo",
      overrides: { featureLevel: featureLevelValueBytes, valueLimit: true, snapshotIntervalSlots: 64 },
    },
    depth: 16,
  },
};

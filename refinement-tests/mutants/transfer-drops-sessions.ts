/**
 * A state transfer installed without its session table: the replica that installs a peer's
 * snapshot takes the application state, the count of executed requests and the configurations
 * from it, and starts its sessions empty (the snapshot it keeps and serves is intact). As leader
 * it would execute again a retry the transferred sessions should answer (the
 * retryAfterTransfer prelude's story). The digest of its service state, sessions included,
 * differs from the spec's at the slot it installed: DigestAgreement catches it there, and a retry
 * executed twice would fail ExactlyOnce next.
 */
import { step as realStep, type Step } from "../../impl/core/testing/index.ts";
import type { Mutant } from "./mutant.ts";

const dropOnInstall: Step = (state, event) => {
  const r = realStep(state, event);
  if (event._tag !== "Receive" || event.message._tag !== "SnapshotChunk") return r;
  const s = r.state;
  if (s.learner.snapshot === state.learner.snapshot) return r;
  const service = { ...s.learner.service, sessions: s.ctx.service.start.sessions };
  return { state: { ...s, learner: { ...s.learner, service } }, effects: r.effects };
};

export const transferDropsSessions: Mutant = {
  name: "transfer-drops-sessions",
  description: "a replica installs a peer's snapshot by state transfer without its session table",
  expectedCatch: ["DigestAgreement", "ExactlyOnce", "RepliesMatchSpec", "Linearizability"],
  mode: "safety",
  step: dropOnInstall,
  // As transfer-unverified: from the writes prelude with a follower that missed them (pick bit
  // 2), which lags behind the others' snapshots and is sent one.
  explore: {
    bounds: {
      writes: 0,
      reads: 0,
      orders: "fifo",
      prelude: "writes",
      pick: 4,
      overrides: { snapshotIntervalSlots: 1 },
    },
    depth: 24,
  },
};

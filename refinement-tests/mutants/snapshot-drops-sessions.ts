/**
 * A snapshot without the session table: the application state is saved, the sessions (the
 * exactly-once memory) are not. A replica that recovers from it, or installs it by state transfer,
 * executes a retried request again. Its digests are computed over what it holds, so a transfer
 * of it checks out: only the comparison with the spec's state of the prefix can tell.
 */
import {
  contentDigestOf,
  decodeSnapshot,
  encodeSnapshot,
  snapshotDigest,
  step as realStep,
  type Step,
} from "../../impl/core/testing/index.ts";
import type { Mutant } from "./mutant.ts";

const dropSessions: Step = (state, event) => {
  const r = realStep(state, event);
  const s = r.state;
  const snapshot = s.learner.snapshot;
  if (snapshot === null || snapshot === state.learner.snapshot) return r;
  const contents = decodeSnapshot(s.ctx, snapshot.data);
  if (typeof contents === "string") return r;
  const emptied = { ...contents, service: { ...contents.service, sessions: s.ctx.service.start.sessions } };
  const data = encodeSnapshot(s.ctx, emptied);
  const info = {
    slot: snapshot.slot,
    digest: snapshotDigest(s.ctx, emptied),
    contentDigest: contentDigestOf(data),
    data,
  };
  const effects = r.effects.map((e) =>
    e._tag === "Persist" && e.record._tag === "snapshot"
      ? { ...e, record: { ...e.record, digest: info.digest, contentDigest: info.contentDigest, data } }
      : e,
  );
  return { state: { ...s, learner: { ...s.learner, snapshot: info } }, effects };
};

export const snapshotDropsSessions: Mutant = {
  name: "snapshot-drops-sessions",
  description: "a snapshot saves the application state but not the session table",
  expectedCatch: ["SnapshotMatchesSpec", "DigestAgreement", "ExactlyOnce", "RepliesMatchSpec", "Linearizability"],
  mode: "safety",
  step: dropSessions,
  explore: { bounds: { reads: 0, orders: "fifo", overrides: { snapshotIntervalSlots: 1 } }, depth: 8 },
};

/**
 * What the trace explorer shows of a replica's state: a few named fields as one-line texts
 * (role and ballot, maxBal, the lease grant, the lease, phase 1, the pipeline, commit and
 * executed slots, the votes window, the chosen log above the executed prefix, configurations,
 * the session table, the store). Pure formatting of impl/core's state; nothing is decided here.
 */
import type { KvInput, KvOutput, KvState } from "../../spec/kv.ts";
import { pmForEach } from "../../spec/persistent-map.ts";
import {
  isBallotZero,
  showBallot,
  showConfiguration,
  slotMapEntries,
  type ReplicaState,
} from "../../impl/core/testing/index.ts";
import { showOutput, showTime, showValue } from "../../impl/core/testing/show.ts";

type KvReplicaState = ReplicaState<KvState, KvInput, KvOutput>;

/**
 * `full`: every field as text, values included; `compact` (long real runs, a page of a few MB):
 * what changes at nearly every step as numbers (the format stores their differences), no
 * clock readings in texts, no values, no store contents.
 */
export type FieldDetail = "full" | "compact";

/** The fields in display order (sessions follow, one field per client: `session c1`). */
export const replicaFields = [
  "role",
  "maxBal",
  "grant",
  "restart wait",
  "lease until",
  "phase 1",
  "pipeline",
  "next slot",
  "in flight",
  "waiting",
  "commit",
  "executed",
  "chosen above executed",
  "votes",
  "last vote",
  "configurations",
  "snapshot",
  "transfer",
  "store",
] as const;

const votesShownMax = 4;
const textMax = 200;

function clip(text: string, max = textMax): string {
  return text.length <= max ? text : `${text.slice(0, max - 3)}...`;
}

function percent(part: number, whole: number): string {
  return whole === 0 ? "0%" : `${Math.floor((100 * part) / whole)}%`;
}

function roleText(s: KvReplicaState): string {
  if (s.halted !== null) return `halted at slot ${s.halted.slot}`;
  const r = s.role;
  switch (r._tag) {
    case "follower":
      return s.learner.leaderHint === null ? "follower" : `follower of R${s.learner.leaderHint}`;
    case "candidate":
      return `candidate ${showBallot(r.ballot)}`;
    case "leader":
      return `leader ${showBallot(r.ballot)}`;
  }
}

function bits(mask: number, peers: readonly number[]): string {
  return peers
    .filter((_, i) => (mask >>> i) & 1)
    .map((p) => `R${p}`)
    .join(",");
}

/** The fields of one live replica (a crashed one shows only `role: down`). */
export function fieldsOf(s: KvReplicaState, detail: FieldDetail): Record<string, string | number | null> {
  const a = s.acceptor;
  const l = s.learner;
  const r = s.role;
  const full = detail === "full";
  const out: Record<string, string | number | null> = {
    role: roleText(s),
    maxBal: showBallot(a.maxBal),
    grant: isBallotZero(a.grantTo)
      ? null
      : `to ${showBallot(a.grantTo)}${full ? ` until ${showTime(a.grantUntil)}` : ""}`,
    "restart wait": Number.isFinite(a.noPromiseUntil) ? `until ${showTime(a.noPromiseUntil)}` : null,
    "phase 1":
      r._tag === "follower"
        ? null
        : `from ${r.fromSlot}, promised ${bits(r.promised, r.peers) || "none"}` +
          (r._tag === "leader" ? `, revealed up to ${r.phase1MaxSlot}` : ""),
    commit: l.commitIndex,
    executed: l.executedUpTo,
    configurations: l.configs
      .map((c) => `${showConfiguration(c)} from ${c.governsFrom}${c.epoch === 0 ? "" : ` (chosen at ${c.epoch})`}`)
      .join("; "),
    snapshot:
      l.snapshot === null
        ? null
        : `slot ${l.snapshot.slot}${l.logTruncatedUpTo > 0 ? `, log from ${l.logTruncatedUpTo + 1}` : ""}`,
    transfer:
      l.transfer === null
        ? null
        : `slot ${l.transfer.slot} from R${l.transfer.from}: ${percent(l.transfer.received, l.transfer.totalBytes)}`,
    ...(full ? fullFields(s) : compactFields(s)),
  };
  return out;
}

function fullFields(s: KvReplicaState): Record<string, string | null> {
  const r = s.role;
  const leader = r._tag === "leader" ? r : null;
  return {
    "lease until":
      leader === null
        ? null
        : Number.isFinite(leader.leaseUntil)
          ? `${showTime(leader.leaseUntil)} (counted from ${showTime(leader.leaseFrom)})`
          : "none",
    pipeline:
      leader === null
        ? null
        : `next ${leader.nextSlot}, ${leader.inflight.length} in flight (${leader.inflight.filter((p) => !p.chosen).length} not chosen), ${leader.pendingCount} commands waiting`,
    "chosen above executed": chosenAbove(s),
    votes: votesText(s),
    store: storeText(s.learner.service.app),
  };
}

function compactFields(s: KvReplicaState): Record<string, number | string | null> {
  const r = s.role;
  const leader = r._tag === "leader" ? r : null;
  const votes = slotMapEntries(s.acceptor.votes);
  const lastVote = votes[votes.length - 1];
  return {
    "lease until": leader === null || !Number.isFinite(leader.leaseUntil) ? null : Math.round(leader.leaseUntil),
    "next slot": leader === null ? null : leader.nextSlot,
    "in flight": leader === null ? null : leader.inflight.length,
    waiting: leader === null ? null : leader.pendingCount,
    "chosen above executed": slotMapEntries(s.learner.log).filter(([slot]) => slot > s.learner.executedUpTo).length,
    "last vote": lastVote === undefined ? null : lastVote[0],
    votes: lastVote === undefined ? null : `last in ${showBallot(lastVote[1].ballot)}`,
  };
}

/** One field per client in the session table: `#3 -> done` (compact: the sequence number). */
export function sessionsOf(s: KvReplicaState, detail: FieldDetail): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  pmForEach(s.learner.service.sessions, (client, session) => {
    out[`session ${client}`] = detail === "full" ? `#${session.seq} -> ${showOutput(session.output)}` : session.seq;
  });
  return out;
}

function chosenAbove(s: KvReplicaState): string | null {
  const slots = slotMapEntries(s.learner.log)
    .map(([slot]) => slot)
    .filter((slot) => slot > s.learner.executedUpTo);
  if (slots.length === 0) return null;
  return clip(slots.join(" "), 80);
}

function votesText(s: KvReplicaState): string | null {
  const votes = slotMapEntries(s.acceptor.votes);
  if (votes.length === 0) return null;
  const shown = votes.slice(-votesShownMax).map(([slot, v]) => `${slot}:${showBallot(v.ballot)}=${showValue(v.value)}`);
  const first = votes[0]![0];
  const last = votes[votes.length - 1]![0];
  return clip(
    `${votes.length} in ${first}..${last}${votes.length > votesShownMax ? ", last" : ""}: ${shown.join(" ")}`,
  );
}

function storeText(app: KvState): string | null {
  const parts: string[] = [];
  pmForEach(app.entries, (key, entry) => {
    const value = typeof entry === "string" ? entry : `(at rest: ${entry.length} code units)`;
    parts.push(`${key}=${clip(value, 24)}`);
  });
  return parts.length === 0 ? null : clip(parts.sort().join(" "));
}

/**
 * Checks of snapshots, truncation and state transfer (proofs/truncation.md):
 *
 *   SnapshotMatchesSpec  a snapshot a replica holds (taken, installed or recovered) decodes to the
 *                        spec's service state after the chosen prefix 1..slot, with the spec's
 *                        configurations from slot + 1 on: a snapshot is an abstraction of exactly
 *                        the prefix it claims
 *   SnapshotsAdvance     every snapshot a replica makes durable is of a later slot than the one
 *                        before: its executed prefix never goes back (rule S1; Recover relies on it)
 *   TruncationSafe       an acceptor forgets votes only at chosen slots at or below a snapshot of
 *                        its own that is durable (rule T1)
 *   PromiseReportsVotes  a Promise reports, at every slot it covers (from its fromSlot, above the
 *                        point through which it omits votes), the acceptor's highest durable vote
 *                        (Phase1b's maxVBal), and omits votes only at chosen slots at or below a
 *                        durable snapshot or its executed prefix: a forgotten or omitted vote is
 *                        never passed off as "no vote" (Phase1b with truncation, rules T2, T3)
 *
 * The checker feeds them the records each replica flushed, in effect order, so "durable" means
 * durable at that very effect.
 */
import {
  configurationFor,
  decodeSnapshot,
  showBallot,
  valuesEqual,
  type PromiseMsg,
  type ReplicaContext,
  type ReplicaState,
  type SnapshotInfo,
} from "../impl/core/testing/index.ts";
import type { ConfigurationGhost } from "./configurations.ts";
import type { ServiceGhost } from "./service-level.ts";
import { heldText, sameHeld } from "./held.ts";
import { violated } from "./violation.ts";
import type { VotingGhost } from "./voting-per-slot.ts";

/** SnapshotMatchesSpec for snapshot `info` held by replica `id`. */
export function checkSnapshot<S, I, O>(
  id: number,
  ctx: ReplicaContext<S, I, O>,
  info: SnapshotInfo,
  service: ServiceGhost<S, I, O>,
  configurations: ConfigurationGhost<I>,
): void {
  const fail = (message: string): never =>
    violated({
      check: "SnapshotMatchesSpec",
      level: "Service",
      message: `replica ${id}'s snapshot of slot ${info.slot}: ${message}`,
    });
  const spec = service.digestAfter(info.slot);
  if (spec === undefined) fail(`the chosen prefix ends at slot ${service.prefix}: it claims slots that are not chosen`);
  const contents = decoded(ctx, info.data);
  if (typeof contents === "string") return fail(`it does not decode: ${contents}`);
  if (contents.slot !== info.slot) fail(`it holds the state of slot ${contents.slot}`);
  const mine = heldText(service.digest(contents.service));
  if (mine !== spec)
    fail(`its service state differs from the spec's after the chosen prefix (spec ${spec}, snapshot ${mine})`);
  const configuration = configurationFor(contents.configs, info.slot + 1);
  const expected = configurations.at(info.slot + 1);
  if (
    expected !== undefined &&
    (configuration.voters.join() !== expected.voters.join() ||
      configuration.learners.join() !== expected.learners.join())
  ) {
    fail(
      `it says voters ${configuration.voters.join(",")} govern slot ${info.slot + 1}, the chosen prefix says ${expected.voters.join(",")}`,
    );
  }
}

/**
 * decodeSnapshot, remembered per application for the last few snapshots: every replica takes the
 * snapshot of a slot with the same data (it is replicated state), a restarted one recovers it, and
 * the explorer takes it again in every branch that rebuilds a state; decoding is a schema parse
 * (remembered per replica context, it was a sixth of a campaign's time). What a snapshot decodes
 * to depends only on its data and the application (`ctx.app`, and `ctx.service`, its spec).
 */
function decoded<S, I, O>(ctx: ReplicaContext<S, I, O>, data: string): ReturnType<typeof decodeSnapshot<S, I, O>> {
  let memo = decodedMemo.get(ctx.app) as Map<string, ReturnType<typeof decodeSnapshot<S, I, O>>> | undefined;
  if (memo === undefined) {
    memo = new Map();
    decodedMemo.set(ctx.app, memo);
  }
  let out = memo.get(data);
  if (out === undefined) {
    out = decodeSnapshot(ctx, data);
    if (memo.size >= 32) memo.clear();
    memo.set(data, out);
  }
  return out;
}
const decodedMemo = new WeakMap<object, Map<string, unknown>>();

/**
 * SnapshotsAdvance: replica `id` made a snapshot of `slot` durable; its previous durable one was of `previous` (0:
 * none).
 */
export function checkSnapshotAdvances(id: number, slot: number, previous: number): void {
  if (slot > previous) return;
  violated({
    check: "SnapshotsAdvance",
    level: "Service",
    message: `replica ${id} made a snapshot of slot ${slot} durable after one of slot ${previous}: it went back in time (a stale transfer installed?)`,
  });
}

/**
 * TruncationSafe for a live replica after a step; `durableSnapshot` is its latest durable snapshot's slot (0: none).
 */
export function checkTruncation<S, I, O>(
  id: number,
  state: ReplicaState<S, I, O>,
  durableSnapshot: number,
  chosenPrefix: number,
): void {
  const t = state.acceptor.truncatedUpTo;
  if (t === 0) return;
  if (t > durableSnapshot) {
    violated({
      check: "TruncationSafe",
      level: "Voting",
      message: `replica ${id} forgot its votes up to slot ${t}, but its latest durable snapshot is of slot ${durableSnapshot}: a crash now would lose votes no snapshot stands for`,
    });
  }
  if (t > chosenPrefix) {
    violated({
      check: "TruncationSafe",
      level: "Voting",
      message: `replica ${id} forgot its votes up to slot ${t}, but only slots 1..${chosenPrefix} are chosen: a vote that may still matter is gone`,
    });
  }
}

/**
 * PromiseReportsVotes for a Promise replica index `a` sends now; `durableSnapshot` as above,
 * `executedUpTo` the sender's executed prefix, `chosenPrefix` the slots 1..chosenPrefix chosen
 * (the consensus ghost's). The slots a Promise omits (`truncatedUpTo`) are truncated, at or below
 * its durable snapshot, or executed (rule T3): known chosen, and chosen.
 */
export function checkPromise<I>(
  voting: VotingGhost<I>,
  a: number,
  m: PromiseMsg<I>,
  durableSnapshot: number,
  executedUpTo: number,
  chosenPrefix: number,
): void {
  const id = voting.members[a];
  if (m.truncatedUpTo > Math.max(durableSnapshot, executedUpTo)) {
    violated({
      check: "PromiseReportsVotes",
      level: "Voting",
      message: `replica ${id} sent Promise ${showBallot(m.ballot)} omitting its votes up to slot ${m.truncatedUpTo}, but its latest durable snapshot is of slot ${durableSnapshot} and it executed up to slot ${executedUpTo} (rules T1, T3)`,
    });
  }
  if (m.truncatedUpTo > chosenPrefix) {
    violated({
      check: "PromiseReportsVotes",
      level: "Voting",
      message: `replica ${id} sent Promise ${showBallot(m.ballot)} reporting slots up to ${m.truncatedUpTo} chosen, but only slots 1..${chosenPrefix} are: the candidate would wait for values no one has`,
    });
  }
  const b = voting.nat(m.ballot);
  const from = Math.max(m.fromSlot, m.truncatedUpTo + 1);
  for (const [slot, sv] of voting.slots) {
    if (slot < from) continue;
    const mine = sv.byAcceptor[a]!;
    let highest = -1;
    // Its highest vote at or below b (a retransmitted Promise may follow a vote in b itself).
    for (const x of mine) if (x <= b && x > highest) highest = x;
    if (highest < 0) continue;
    const expected = sv.byBallot.get(highest)!;
    const reported = m.votes.find((v) => v.slot === slot);
    if (
      reported !== undefined &&
      voting.nat(reported.ballot) === highest &&
      sameHeld(reported.value, expected.value, valuesEqual)
    )
      continue;
    violated({
      check: "PromiseReportsVotes",
      level: "Voting",
      message: `replica ${id} sent Promise ${showBallot(m.ballot)} from slot ${m.fromSlot} (truncated up to ${m.truncatedUpTo}) that ${reported === undefined ? "omits" : "misreports"} its vote in ballot ${highest} at slot ${slot}: phase 1 would read a forgotten vote as no vote`,
    });
  }
}

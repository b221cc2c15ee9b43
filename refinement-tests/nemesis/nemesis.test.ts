/**
 * The short nemesis run of `npm test`: three real replica processes, a dozen clients, and a
 * schedule that cycles through SIGKILL of the leader, SIGSTOP of the leader for several leases,
 * a partition of the leader, a follower's restart, one-way loss from the leader, a slow disk and
 * SIGKILL of a follower. Every check must pass: linearizable history, no acknowledged write lost
 * or doubled, equal digests, and the merged traces replayed through `step` with every invariant.
 *
 * Then the checks are shown to fail: the run's own traces and replayed steps, each altered the
 * way one bug would alter them, must make exactly that check fire. The run's page (the trace
 * explorer with the clients' operations) is opened in headless Chromium. The seed is fixed (PAXOS_LEASE_NEMESIS_SEED
 * overrides it);
 * process timing is not deterministic, so a failure report names the seed and keeps the folder.
 */
import fs from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { intervalKinds, listsPerStep, messageSteps } from "../view/format.ts";
import { loadView } from "../view/load.ts";
import {
  compactRecords,
  compareBallots,
  defaultRules,
  slotMapGet,
  slotMapSet,
  type Value,
} from "../../impl/core/testing/index.ts";
import type { KvInput } from "../../spec/kv.ts";
import { kvConfig, type KvRecord } from "../../impl/runtime/core-adapter.ts";
import { launchChromium } from "../../impl/runtime/testing-browser.ts";
import { expectEveryCheckPassed, nemesisTestSeed, useNemesisRun } from "./testing.ts";
import type { FaultKind } from "./schedule.ts";
import { checkRecoveries, checkSteps, type MergedReplay } from "./trace-checks.ts";
import {
  readTraceLives,
  replayLives,
  type LifeSummary,
  type ReplayStep,
  type TraceLife,
  type TraceLine,
  type TraceViolation,
} from "./trace-replay.ts";

const seed = nemesisTestSeed(20261127);
const kinds: FaultKind[] = [
  // Hostile connections while the next faults land (they hold no fault slot): first in the list,
  // so that the cycle's other nine kinds keep their order and still end within the run's 30 s.
  "hostile-clients",
  "kill-leader",
  "pause-leader",
  // Every replica stopped past an election timeout at once: it takes the place of a second
  // one-way-from-leader in the run's 30 s (the schedule's last fault ends no later).
  "freeze-all",
  "partition-leader",
  "restart-follower",
  "one-way-from-leader",
  "slow-disk-leader",
  "kill-follower",
  "burst",
];
// The run's own replayed steps, which its checks went over: the alterations below start from them
// (replaying the traces again would only rebuild the same steps).
let steps: readonly ReplayStep[] = [];
let replay: MergedReplay;
const run = useNemesisRun(
  "nemesis.test",
  {
    seed,
    replicas: 3,
    clients: 12,
    faultsMs: 30_000,
    pace: 0.6,
    kinds,
    inOrder: true,
    quietMs: 2000,
    onReplay: (merged) => {
      steps = merged.steps;
      replay = merged;
    },
  },
  import.meta.filename,
  150_000,
);

/** The checks that fire on the run's steps after `alter`. */
function checksAfter(alter: (steps: ReplayStep[]) => ReplayStep[]): string[] {
  const altered = checkSteps({ ...replay, steps: alter(steps.slice()), violations: [...replay.violations] });
  return Object.keys(altered.violationCounts);
}

const forged: Value<KvInput> = { _tag: "batch", commands: [{ input: { _tag: "put", key: "forged", value: "x" } }] };

/**
 * The slot for the vote-erasing alteration, from the run's own steps: the first slot whose
 * first learning (a replica executes it or writes its chosen record) is a step that acknowledges,
 * before anything else about the slot, a session write the slot's batch holds, and whose votes up
 * to then each came from an acceptor already promised to their ballot. With every vote for it
 * erased, the leader's counting of those votes is the first thing a check can object to
 * (CountedVotesDurable), before the acknowledgement it leads to (RepliesMatchSpec, which
 * proofs/world-checks.test.ts shows on its own). Another slot is caught
 * by another check first, as a bug would be: a no-op, a reconfiguration or a batch executed
 * without an acknowledgement by ExecutedPrefixAgreement, a chosen record written before by
 * LearnedIsChosen, a vote that was its acceptor's first durable word of a ballot by DurableMaxBal.
 */
function slotOfAcknowledgedWrite(list: readonly ReplayStep[]): number | undefined {
  const requests = new Map<string, { clientId?: string | undefined; seq?: number | undefined; input: KvInput }>();
  const learned = new Set<number>();
  const raisedMaxBal = new Set<number>();
  // The value of each vote record of each life, for a log value at rest (impl/core/at-rest.ts).
  const voted = new Map<string, Value<KvInput>>();
  const voteKey = (life: string, slot: number, ballot: { round: number; replica: number }): string =>
    `${life}/${slot}/${ballot.round}.${ballot.replica}`;
  for (const s of list) {
    if (s.event._tag === "ClientRequest") requests.set(`${s.incarnation}/${s.event.requestId}`, s.event);
    const records = [
      ...(s.event._tag === "Recover" ? s.event.records : []),
      ...s.effects.flatMap((e) => (e._tag === "Persist" ? [e.record] : [])),
    ];
    for (const r of records) if (r._tag === "vote") voted.set(voteKey(s.incarnation, r.slot, r.ballot), r.value);
    const firstLearned: number[] = [];
    const learn = (slot: number): void => {
      if (!learned.has(slot)) firstLearned.push(slot);
      learned.add(slot);
    };
    for (const e of s.effects) if (e._tag === "Persist" && e.record._tag === "chosen") learn(e.record.slot);
    for (let slot = s.before.learner.executedUpTo + 1; slot <= s.after.learner.executedUpTo; slot++) learn(slot);
    for (const slot of firstLearned) {
      const held = slotMapGet(s.after.learner.log, slot);
      const value = held?._tag === "stored" ? voted.get(voteKey(s.incarnation, held.slot, held.ballot)) : held;
      if (s.event._tag === "Recover" || value?._tag !== "batch" || raisedMaxBal.has(slot)) continue;
      for (const e of s.effects) {
        if (e._tag === "Persist" && e.record._tag === "chosen" && e.record.slot === slot) break;
        if (e._tag !== "Reply" || e.result._tag !== "ok") continue;
        const r = requests.get(`${s.incarnation}/${e.requestId}`);
        if (r?.seq === undefined || r.input._tag === "get") continue;
        if (value.commands.some((c) => c.clientId === r.clientId && c.seq === r.seq)) return slot;
      }
    }
    for (const e of s.effects)
      if (
        e._tag === "Persist" &&
        e.record._tag === "vote" &&
        (s.event._tag === "Recover" || compareBallots(s.before.acceptor.maxBal, e.record.ballot) < 0)
      )
        raisedMaxBal.add(e.record.slot);
  }
  return undefined;
}

/** Holding a lease is being able to answer a read by lease (rule L3, proofs/leases.md). */
const holdsLease = (state: ReplayStep["after"], now: number): boolean =>
  defaultRules.canServeLeaseRead(defaultRules, state, now);

/** True time of a step: its clock reading through its life's clock. */
const trueTimeOf = (s: ReplayStep): number => (s.now - s.clock.offsetMs) / s.clock.rate;

/**
 * The step for the AtMostOneLeaseholder alteration, from the run's own steps, and where it goes:
 * the first lease acquired by a replica after another one held a lease, and that other replica,
 * still in the same life, renewing the lease it held (its leader role of then) for 0.9 D just
 * before: 10 true ms before the acquisition, or halfway from its own latest step if that is
 * later. A run where the deposed leader had restarted meanwhile, or where its state since would
 * not hold the renewed lease (it has learned a configuration its old phase 1 does not cover),
 * gives the next acquisition instead.
 */
function deposedRenewal(list: readonly ReplayStep[], leaseMs: number): { at: number; renewed: ReplayStep } | undefined {
  for (let k = 0; k < list.length; k++) {
    const successor = list[k]!;
    if (!holdsLease(successor.after, successor.now) || holdsLease(successor.before, successor.now)) continue;
    const j = list.findLastIndex((q, i) => i < k && q.replica !== successor.replica && holdsLease(q.after, q.now));
    if (j < 0) continue;
    const last = list[j]!;
    const role = last.after.role;
    const c = list.findLastIndex((q, i) => i < k && q.replica === last.replica);
    const current = list[c]!;
    if (role._tag !== "leader" || current.incarnation !== last.incarnation) continue;
    const t = Math.max(trueTimeOf(successor) - 10, (trueTimeOf(current) + trueTimeOf(successor)) / 2);
    const now = t * last.clock.rate + last.clock.offsetMs;
    const after = { ...current.after, now, role: { ...role, leaseUntil: now + 0.9 * leaseMs * last.clock.rate } };
    if (!holdsLease(after, now)) continue;
    const renewed: ReplayStep = {
      ...last,
      event: { _tag: "Tick", now },
      now,
      before: current.after,
      effects: [],
      wireIds: [],
      sentAs: [],
      after,
    };
    // In true-time order among the steps between the deposed leader's latest one and the acquisition.
    let at = k;
    while (at - 1 > c && trueTimeOf(list[at - 1]!) > t) at--;
    return { at, renewed };
  }
  return undefined;
}

function replaceAt(list: ReplayStep[], index: number, step: ReplayStep): ReplayStep[] {
  list[index] = step;
  return list;
}

describe(`a short nemesis run (seed ${seed})`, () => {
  it("passes every check under kills, pauses, partitions, one-way loss, restarts and a slow disk", () => {
    expectEveryCheckPassed(run.report);
    expect(run.report.convergence.ok).toBe(true);
  });

  it("injected every fault kind of the schedule, each as planned", () => {
    const injected = new Set(run.report.faults.map((f) => f.kind));
    for (const kind of [
      "kill-leader",
      "pause-leader",
      "freeze-all",
      "partition-leader",
      "restart-follower",
      "burst",
    ] as const)
      expect(injected, kind).toContain(kind);
    // The burst's writers reached the leader: their answers are counted (a legal burst is refused
    // at most with 429, never with a crash), and so are the catch-up requests the followers held.
    for (const burst of run.report.faults.filter((f) => f.kind === "burst"))
      expect(burst.effect, burst.label).toMatch(
        /^\d+ writers of 1 MiB: \d+ .*; \d+ catch-up requests held while streaming; \d+ appends behind a snapshot$/,
      );
    for (const pause of run.report.faults.filter((f) => f.kind === "pause-leader"))
      expect(pause.endedAt - pause.startedAt).toBeGreaterThan(3 * 300);
    // Every replica stopped longer than the longest election timeout, thawed within a few ms, and
    // a leader after it (no leader within 10 s would be a NoRecovery violation above).
    const freezes = run.report.faults.filter((f) => f.kind === "freeze-all");
    for (const freeze of freezes) {
      expect(freeze.targets, freeze.label).toEqual([1, 2, 3]);
      expect(freeze.endedAt - freeze.startedAt).toBeGreaterThan(1100);
      expect(freeze.effect, freeze.label).toMatch(/thawed r\d,r\d,r\d within [\d.]+ ms; r\d leads \d+ ms later/);
    }
    expect(run.report.reached?.thawsWithLeader).toBe(freezes.length);
    expect(run.report.neverReached).not.toContain("a leader after a thaw of every replica");
    expect(run.report.lives.some((l) => l.exit === "SIGKILL")).toBe(true);
    expect(run.report.lives.filter((l) => l.exit === "code 0").length).toBeGreaterThanOrEqual(3);
  });

  it("saved a history that the checker re-reads, and replayed every traced life through step", () => {
    const history = JSON.parse(fs.readFileSync(run.report.files.history, "utf8")) as {
      format: string;
      operations: unknown[];
    };
    expect(history.format).toBe("paxos-lease/history@1");
    expect(history.operations.length).toBe(run.report.history.operations);
    expect("error" in run.report.traces).toBe(false);
    if ("error" in run.report.traces) return;
    expect(run.report.traces.lives).toBeGreaterThan(3);
    expect(run.report.traces.tally["sometimes: leader elected"]).toBeGreaterThan(1);
    expect(run.report.traces.tally["sometimes: lease read served"]).toBeGreaterThan(0);
    expect(run.report.traces.tally["Voting: VoteFor"]).toBeGreaterThan(0);
  });

  it("wrote the trace view of its replayed traces: every step, the leases and lives, the faults", () => {
    const view = loadView(path.dirname(run.report.files.report));
    if ("error" in run.report.traces) return;
    // Every step but those of a life's lost last batch (proofs/ never sees them).
    expect(view.steps.count).toBeLessThanOrEqual(run.report.traces.steps);
    expect(view.steps.count).toBeGreaterThan(run.report.traces.steps * 0.9);
    expect(view.source.replay).toBe(run.report.replay);
    const kinds = view.intervals.kind.map((k) => intervalKinds[k]);
    expect(kinds.filter((k) => k === "fault")).toHaveLength(run.report.faults.length);
    expect(kinds.filter((k) => k === "lease").length).toBeGreaterThan(1);
    expect(kinds).toContain("down");
    const actions = listsPerStep(view, "actions").flat();
    expect(actions).toContain("Voting: VoteFor");
    expect(actions).toContain("Lease: Acquire");
    expect(messageSteps(view).filter((m) => m.received >= 0).length).toBeGreaterThan(1000);
    // The clients' operations, each once, for the lanes under the replicas.
    expect(view.operations?.label).toHaveLength(run.report.history.operations);
    expect(view.operations?.clients.length).toBeGreaterThanOrEqual(12);
  });

  it("shows the run's page in headless Chromium: operations, faults and leases on one axis", async (context) => {
    const browser = await launchChromium((reason) => context.skip(reason));
    if (browser === null) return;
    try {
      const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
      const errors: string[] = [];
      page.on("pageerror", (error) => errors.push(error.message));
      await page.goto(`file://${run.report.files.page}`);
      await page.locator('body[data-rendered="true"]').waitFor({ timeout: 30_000 });
      expect(await page.locator("#violation-banner").textContent()).toBe("no violation in this trace");
      await page.locator("#zoom-all").click();
      await page.waitForTimeout(200);
      const drawn = await page.evaluate(() => {
        const api = (
          globalThis as unknown as {
            traceExplorer: { explorer: { drawnOps: number; opsTop: number; drawnBars: { kind: string }[] } };
          }
        ).traceExplorer;
        const ex = api.explorer;
        return { ops: ex.drawnOps, opsTop: ex.opsTop, leases: ex.drawnBars.filter((b) => b.kind === "lease").length };
      });
      // The whole run in sight: every operation is drawn, and the lease lanes.
      expect(drawn.ops).toBe(run.report.history.operations);
      expect(drawn.leases).toBeGreaterThan(1);
      // Hovering the first client's lane names an operation of that client (a closed-loop client
      // is nearly always in an operation; a few places in case one falls between two).
      const box = (await page.locator("#axis").boundingBox())!;
      const first = loadView(path.dirname(run.report.files.report)).operations!.clients[0]!;
      let hovered = "";
      for (const f of [0.5, 0.4, 0.6, 0.3, 0.7]) {
        await page.mouse.move(box.x + box.width * f, box.y + drawn.opsTop + 4);
        hovered = (await page.locator("#axis-hover").textContent()) ?? "";
        if (hovered !== "") break;
      }
      expect(hovered).toMatch(new RegExp(`^${first} #\\d+ \\w+\\(`));
      expect(errors).toEqual([]);
      const shot = path.join(run.out, "view.png");
      await page.screenshot({ path: shot });
      expect(fs.statSync(shot).size).toBeGreaterThan(10_000);
    } finally {
      await browser.close();
    }
  }, 60_000);
});

describe("the trace checks fail on the run's traces altered as a bug would alter them", () => {
  it("pass on the unaltered steps", () => {
    // The run's own check of these very steps (checkSteps, every check) found nothing.
    expect("error" in run.report.traces).toBe(false);
    if ("error" in run.report.traces) return;
    expect(run.report.traces.steps).toBe(steps.length);
    expect(run.report.traces.violationCounts).toEqual({});
    expect(replay.violations).toEqual([]);
  });

  it("ExecutedPrefixAgreement: one replica executes another value at a slot", () => {
    const i = steps.findIndex(
      (s) => s.event._tag !== "Recover" && s.after.learner.executedUpTo > s.before.learner.executedUpTo,
    );
    const step = steps[i]!;
    const slot = step.after.learner.executedUpTo;
    const after = {
      ...step.after,
      learner: { ...step.after.learner, log: slotMapSet(step.after.learner.log, slot, forged) },
    };
    expect(checksAfter((list) => replaceAt(list, i, { ...step, after }))).toContain("ExecutedPrefixAgreement");
  });

  it("OneValuePerBallot: a follower makes durable a vote for another value than the leader's in the same ballot", () => {
    const seen = new Set<string>();
    const i = steps.findIndex((s) =>
      s.effects.some((e) => {
        if (e._tag !== "Persist" || e.record._tag !== "vote") return false;
        const key = `${e.record.slot}/${e.record.ballot.round}.${e.record.ballot.replica}`;
        if (seen.has(key)) return true;
        seen.add(key);
        return false;
      }),
    );
    const step = steps[i]!;
    const effects = step.effects.map((e) =>
      e._tag === "Persist" && e.record._tag === "vote" ? { ...e, record: { ...e.record, value: forged } } : e,
    );
    expect(checksAfter((list) => replaceAt(list, i, { ...step, effects }))).toContain("OneValuePerBallot");
  });

  it("CountedVotesDurable: a leader counts, and acknowledges a write on, votes for its slot that nobody made durable", () => {
    const slot = slotOfAcknowledgedWrite(steps);
    expect(slot, "a slot first executed where a write it holds was acknowledged").toBeDefined();
    const withoutVotes = (s: ReplayStep): ReplayStep => {
      const effects = s.effects.filter(
        (e) =>
          !(e._tag === "Persist" && e.record._tag === "vote" && e.record.slot === slot) &&
          !(e._tag === "Send" && e.message._tag === "Accepted" && e.message.slot === slot),
      );
      const event =
        s.event._tag === "Recover"
          ? { ...s.event, records: s.event.records.filter((r) => !(r._tag === "vote" && r.slot === slot)) }
          : s.event;
      return { ...s, effects, event };
    };
    expect(checksAfter((list) => list.map(withoutVotes))).toContain("CountedVotesDurable");
  });

  it("refines Voting: an acceptor votes in a ballot below one it promised", () => {
    const i = steps.findIndex(
      (s, k) => k > steps.length / 2 && s.effects.some((e) => e._tag === "Persist" && e.record._tag === "vote"),
    );
    const step = steps[i]!;
    const effects = step.effects.map((e) =>
      e._tag === "Persist" && e.record._tag === "vote"
        ? { ...e, record: { ...e.record, ballot: { round: 1, replica: 1 } } }
        : e,
    );
    expect(checksAfter((list) => replaceAt(list, i, { ...step, effects }))).toEqual([
      expect.stringMatching(/^refines Voting\[slot \d+\]$/),
    ]);
  });

  it("DurableBeforeSend: an Accepted leaves before its vote is persisted", () => {
    const i = steps.findIndex((s) => s.effects.some((e) => e._tag === "Send" && e.message._tag === "Accepted"));
    const step = steps[i]!;
    const sends = step.effects.filter((e) => e._tag === "Send");
    const rest = step.effects.filter((e) => e._tag !== "Send");
    expect(checksAfter((list) => replaceAt(list, i, { ...step, effects: [...sends, ...rest] }))).toContain(
      "DurableBeforeSend",
    );
  });

  it("ReceiveHasSend: a replica receives a message nobody sent", () => {
    const i = steps.findIndex((s) => s.receivedAs !== undefined);
    const step = steps[i]!;
    expect(
      checksAfter((list) => replaceAt(list, i, { ...step, receivedAs: { incarnation: "forged", wireId: 1 } })),
    ).toContain("ReceiveHasSend");
  });

  it("ReceiveHasSend: a replica receives another message than the one its sender sent", () => {
    const i = steps.findIndex((s) => s.receivedAs !== undefined);
    const step = steps[i]!;
    const receivedMessage = { ...(step.receivedMessage as Record<string, unknown>), forged: true };
    expect(checksAfter((list) => replaceAt(list, i, { ...step, receivedMessage }))).toEqual(["ReceiveHasSend"]);
  });

  it("ReceiveHasSend: a copy of a heartbeat passes, a copy that differs from it does not", () => {
    const heartbeats = steps
      .map((s, i) => ({ s, i }))
      .filter(
        ({ s }) => s.receivedAs !== undefined && s.event._tag === "Receive" && s.event.message._tag === "Heartbeat",
      );
    // Two later receipts of one replica made copies of two earlier ones it received: one exact
    // (the relay's copy: same wire id and message), one with another message under that wire id.
    const replica = heartbeats.at(-1)!.s.replica;
    const mine = heartbeats.filter(({ s }) => s.replica === replica);
    expect(mine.length).toBeGreaterThan(3);
    const [good, bad] = [mine.at(-1)!, mine.at(-2)!];
    const [first, second] = [mine[0]!.s, mine[1]!.s];
    const replayed = checkSteps({
      ...replay,
      steps: replaceAt(
        replaceAt(steps.slice(), good.i, {
          ...good.s,
          receivedAs: first.receivedAs,
          receivedMessage: first.receivedMessage,
        }),
        bad.i,
        { ...bad.s, receivedAs: second.receivedAs, receivedMessage: bad.s.receivedMessage },
      ),
      violations: [...replay.violations],
    });
    expect(replayed.violationCounts).toEqual({ ReceiveHasSend: 1 });
    expect(replayed.violations.map((v) => v.message)).toEqual([
      expect.stringMatching(/differs from an earlier receipt of it/),
    ]);
  });

  it("AtMostOneLeaseholder: a deposed leader renews its lease without a quorum just before its successor acquires one", () => {
    const forged = deposedRenewal(steps, kvConfig(1, [1, 2, 3]).leaseMs);
    expect(forged, "a lease acquired after another replica held one, in a life that goes on").toBeDefined();
    const { at, renewed } = forged!;
    expect(checksAfter((list) => [...list.slice(0, at), renewed, ...list.slice(at)])).toEqual(["AtMostOneLeaseholder"]);
  });

  it("DigestAgreement: a replica raises the divergence alarm", () => {
    const step = steps[10]!;
    const alarm = {
      _tag: "Alarm" as const,
      slot: 256,
      replicas: [1, 2],
      digests: ["a", "b"],
      message: "replicas 1 and 2 diverged at slot 256",
    };
    expect(checksAfter((list) => replaceAt(list, 10, { ...step, effects: [...step.effects, alarm] }))).toContain(
      "DigestAgreement",
    );
  });
});

describe("the per-life trace checks fail on an altered trace file", () => {
  /** The replica with the most lives, and its first two: a restart in between, and replays that stay short. */
  let replica: number;
  let firstTwoLives: readonly TraceLife[];
  // The trace files are parsed once; each test alters copies (a replay never changes its lives).
  // The replica is chosen by the lives the run started (its report), so that only its file is read.
  beforeAll(() => {
    const lives = (id: number): number => run.report.lives.filter((l) => l.replica === id).length;
    replica = [1, 2, 3].sort((a, b) => lives(b) - lives(a))[0]!;
    firstTwoLives = readTraceLives(traceFile(replica)).slice(0, 2);
  }, 60_000);

  /** The violations of replaying `alter`ed copies of those two lives. */
  function replayAltered(alter: (lives: TraceLife[]) => TraceLife[]): {
    violations: TraceViolation[];
    summaries: LifeSummary[];
  } {
    const violations: TraceViolation[] = [];
    const summaries: LifeSummary[] = [];
    const lives = [...firstTwoLives];
    expect(lives.length).toBe(2);
    for (const step of replayLives(alter(lives), {}, violations, summaries)) expect(step.replica).toBe(replica);
    return { violations, summaries };
  }
  /** replayAltered with only the first life altered. */
  const replayFirstLifeAltered = (alter: (life: TraceLife) => TraceLife): ReturnType<typeof replayAltered> =>
    replayAltered((lives) => lives.map((life, k) => (k > 0 ? life : alter(life))));
  const traceFile = (id: number): string => path.join(run.out, "cluster", `replica-${id}.trace.jsonl`);
  const withLines = (life: TraceLife, lines: TraceLife["lines"]): TraceLife => ({
    ...life,
    lines: lines.map((l, i) => ({ ...l, seq: i + 1 })),
  });

  it("pass on the unaltered file", () => {
    const { violations, summaries } = replayAltered((lives) => lives);
    expect(violations).toEqual([]);
    expect(checkRecoveries(summaries)).toEqual([]);
  });

  it("TraceExplainedByCore: the runtime sent something step did not ask for", () => {
    const { violations } = replayFirstLifeAltered((life) => {
      // The life's first message (whatever the run made of it: a follower's Accepted, a leader's
      // Accept or Heartbeat, a candidate's Prepare) goes to a replica step did not name.
      const i = life.lines.findIndex((l) => l.type === "effect" && l.effect!._tag === "Send");
      expect(i, "a message sent in the first life").toBeGreaterThanOrEqual(0);
      const line = life.lines[i]!;
      const effect = { ...line.effect!, to: 1_000_000 };
      return withLines(
        life,
        life.lines.map((l, j) => (j === i ? { ...line, effect } : l)),
      );
    });
    expect(violations.map((v) => v.check)).toContain("TraceExplainedByCore");
  });

  it("DurableBeforeSend: a batch's effects after its first Persist left before the commit", () => {
    const { violations } = replayFirstLifeAltered((life) => {
      const i = life.lines.findIndex(
        (l, j) => l.type === "commit" && life.lines[j + 1]?.type === "effect" && life.lines[j + 2]?.batch === l.batch,
      );
      const lines = [...life.lines];
      const [commit] = lines.splice(i, 1);
      lines.splice(i + 2, 0, commit!);
      return withLines(life, lines);
    });
    expect(violations.map((v) => v.check)).toContain("DurableBeforeSend");
  });

  it("TraceComplete: a batch whose records never committed, then a batch that committed or released effects", () => {
    const { violations } = replayFirstLifeAltered((life) => {
      // The commit line of a batch with a vote or promise to persist, with later batches after it.
      const i = life.lines.findIndex(
        (l) =>
          l.type === "commit" &&
          life.lines.some(
            (m) =>
              m.batch === l.batch &&
              m.type === "effect" &&
              m.effect!._tag === "Persist" &&
              (m.effect!.record as { _tag: string })._tag !== "chosen",
          ),
      );
      return withLines(
        life,
        life.lines.filter((_, j) => j !== i),
      );
    });
    expect(violations.filter((v) => v.check === "TraceComplete").map((v) => v.message)).toContainEqual(
      expect.stringMatching(/whose records to persist never committed/),
    );
  });

  it("DurableBeforeSend: an effect left before an earlier batch's commit", () => {
    const { violations } = replayFirstLifeAltered((life) => {
      // A commit line, and the first later effect line of a later batch that may not overtake.
      const lines = [...life.lines];
      for (let c = 0; c < lines.length; c++) {
        const commit = lines[c]!;
        if (commit.type !== "commit") continue;
        const e = lines.findIndex(
          (l, j) =>
            j > c &&
            l.type === "effect" &&
            (l.batch ?? -1) > (commit.batch ?? -1) &&
            !["Heartbeat", "HeartbeatAck", "Accept"].includes(
              (l.effect!.message as { _tag?: string } | undefined)?._tag ?? "",
            ),
        );
        if (e < 0) continue;
        lines.splice(c, 1);
        lines.splice(e, 0, commit);
        return withLines(life, lines);
      }
      throw new Error("no commit line followed by a later batch's effect");
    });
    expect(violations.filter((v) => v.check === "DurableBeforeSend").map((v) => v.message)).toContainEqual(
      expect.stringMatching(/left before an earlier batch's \d+ records were durable/),
    );
  });

  it("DurableBeforeSend (disk): a message leaves before the fsync of a vote persisted before it returned", () => {
    const isVote = (l: TraceLine): boolean =>
      l.type === "effect" &&
      l.effect!._tag === "Persist" &&
      (l.effect!.record as { _tag: string } | undefined)?._tag !== "chosen";
    const isOut = (l: TraceLine): boolean =>
      l.type === "effect" && (l.effect!._tag === "Send" || l.effect!._tag === "Reply");
    const { violations } = replayFirstLifeAltered((life) => {
      expect(life.syncs).toBe(true);
      // An fsync's return, then (after the commit) a record it covered, then a message: the
      // fsync is made to return only after the message left, as a store that acknowledges
      // before its fsync would trace it.
      const lines = [...life.lines];
      const i = lines.findIndex((l, at) => {
        if (l.type !== "synced") return false;
        const next = lines.findIndex((m, j) => j > at && isOut(m));
        return next > 0 && lines.slice(at, next).some(isVote);
      });
      expect(i).toBeGreaterThan(0);
      const [synced] = lines.splice(i, 1);
      const out = lines.findIndex((m, j) => j >= i && isOut(m));
      lines.splice(out + 1, 0, synced!);
      return withLines(life, lines);
    });
    expect(violations.filter((v) => v.check === "DurableBeforeSend").map((v) => v.message)).toEqual([
      expect.stringMatching(/persisted but no fsync had returned beyond record/),
    ]);
  });

  it("DurableRecordsSurvive: a restarted replica recovers a disk without a record it committed", () => {
    const { summaries } = replayAltered((lives) =>
      lives.map((life, k) => {
        if (k === 0) return life;
        const i = life.lines.findIndex((l) => l.type === "event" && l.event!._tag === "Recover");
        const line = life.lines[i]!;
        // The first promise or chosen record, committed long before the crash, is missing: one the
        // store's compaction keeps, since a record a later durable snapshot supersedes may be lost
        // (a crash between that snapshot's commit and the compaction leaves it). (A missing vote
        // that a chosen record names, or a missing snapshot, stops Recover itself.)
        const all = line.event!.records as KvRecord[];
        const kept = new Set(compactRecords(all).map((r) => JSON.stringify(r)));
        const lost = all.findIndex((r) => (r._tag === "promise" || r._tag === "chosen") && kept.has(JSON.stringify(r)));
        expect(lost).toBeGreaterThanOrEqual(0);
        const records = all.filter((_, k) => k !== lost);
        return withLines(
          life,
          life.lines.map((l, j) => (j === i ? { ...line, event: { ...line.event!, records } } : l)),
        );
      }),
    );
    expect(checkRecoveries(summaries).map((v) => v.check)).toContain("DurableRecordsSurvive");
  });
});

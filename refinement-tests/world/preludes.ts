/**
 * Targeted schedules: fault-free preludes that bring the cluster to a state where features meet,
 * before a scenario's random actions begin. Swarm weights alone rarely get there: a membership
 * change needs a caught-up learner (rule R3 refuses to promote or replace a lagging one), a
 * snapshot needs slots, a state transfer needs a truncated log, the alpha window is open only for
 * the few slots between a change being chosen and its governing, and an election inside it needs
 * the leader lost right then. A profile picks one prelude; the random actions then inject faults
 * from that state on. Every prelude is a short fixed schedule of ordinary world actions (they
 * appear in traces like any other), each phase bounded in simulated time, and it stops early if
 * the cluster does not get there (a prelude never fails a run by itself). Each prelude extends the
 * one before it:
 *
 *   none          the warm start alone (a leader holds a lease) or a cold start
 *   writes        two rounds of writes, one per client, one of them retried after its reply was
 *                 lost: snapshots are taken
 *                 and logs truncated (Promises with forgotten votes, state transfers, stale
 *                 transfers become reachable); with pick bit 3 a follower crashes during its
 *                 snapshot and restarts (after a shrink, pick bit 6, it is down at the writes' end
 *                 and stays down), with pick bit 2 a follower misses the writes (cut off, then
 *                 healed: it lags behind the others' snapshots)
 *   learner       then a spare joins as a learner and catches up by state transfer, so that a
 *                 promote or replace asked by the random actions is accepted at once. With pick
 *                 bit 5 set, the learner's hand-over instead (`learnerHandsOver`): once every
 *                 voter follows the leader, a follower is removed and crashes as soon as it knows
 *                 (its removal written out), before any hand-over (where notices wait, the
 *                 followers' votes for the removal's window reach the leader before its own are
 *                 written: slots of the window chosen without the leader's own vote); the leader
 *                 removes itself and the other voter is replaced by the learner, in one window;
 *                 once the learner leads and the two voters retired, the removed replica restarts
 *                 knowing the learner only as one, and is handed over by it (rule R5)
 *   alpha         then a change of the voters (replace, remove, promote, or removing the leader,
 *                 by pick mod 4) is chosen and executed by the leader and its followers, and every
 *                 client asks the leader for a read: the actions start inside the alpha window, with
 *                 a configuration pending and the window's no-ops voted but not known chosen. With
 *                 pick bit 4 a follower misses the change (cut off), the voter the change replaces
 *                 is cut off from the leader and its successor once it voted the window (so that
 *                 it waits for its hand-over instead of retiring), and the leader goes on until a
 *                 write is chosen and acknowledged in the first slots of the new configuration
 *   leaderLost    then the leader is lost: it crashes in the middle of proposing a write (its Accept
 *                 reached one follower, its own vote was never written), or it is cut off and asked
 *                 for reads after its lease ran out (by pick bits 0-1); the follower that missed the
 *                 change (if any) comes back then, as its election timer fires. Where notices wait
 *                 (`World.noticesDelayed`) and no follower missed the change, the crash instead
 *                 lands after the leader answered a write on its followers' votes alone, its own
 *                 vote still unwritten (at a slot where no snapshot is due: a first write takes
 *                 such a slot, since persisting the snapshot would write the vote out first)
 *   reelected     then fault-free time until another replica leads and holds a lease (elected
 *                 inside the alpha window, its phase 1 started in the configuration of its first
 *                 slot with another one pending; with pick bit 1 the replica that joined is cut off
 *                 meanwhile, with one more of five, so that they grant without having promised),
 *                 the clients reading all along; then with pick bit 5 (and 3 voters, bit 4 clear:
 *                 the alpha phase then removes a voter or the leader, and the add's follow-up
 *                 replace names the same voter, so the learner stays one), once the learner has
 *                 caught up, the operator asks the new leader of the two voters left to remove
 *                 itself and to replace the other voter by the learner, both in one window, and
 *                 time goes on until both are chosen: its last slots fall to a configuration
 *                 whose only voter retires too
 *
 * Pick bit 8 (the explorer's; the random suites never draw it) first shrinks a cluster of 5 or 7 to
 * 3 voters before any prelude, the three that stand apart below too (bit 6 does so only before
 * the chain's).
 *
 * The preludes below stand apart from that chain:
 *
 *   restartInLease  the leader is cut off from every follower but one, A (with 5 or 7 replicas:
 *                   but A and the next one or two, a bare quorum with it), so its lease rests on
 *                   A's grants while the others' grants run out; then A is cut off from the
 *                   leader too, just before another follower's election timer fires, and (unless
 *                   pick bit 2) crashes and restarts at once: that follower campaigns while the
 *                   leader still trusts A's last grant, forgotten or not. Rules L1 (a grant holds
 *                   for D) and L4 (a restarted replica helps no ballot for D) are all that keep A
 *                   from electing it then (pick bits 0-1: how late A is cut off). Where A does
 *                   not restart, the leader first stalls for D/2 (a process pause), so the last
 *                   grant it counts arrives D/2 after the heartbeat it answers: rule L2 (a lease
 *                   counts from the request's sending, not the grant's arrival) is all that ends
 *                   its lease before A's grant runs out and another follower leads. With pick
 *                   bit 7 (the explorer's) it stops at the instant A would be cut off: the crash,
 *                   the cut and the restart are left to the explorer
 *   twoBallots      the leader crashes in the middle of proposing a write, its Accept reaching one
 *                   follower, A; A is cut off, the leader restarts, and the others elect a leader
 *                   that chooses another client's write at that slot, A's vote unseen; then A is
 *                   reconnected to every replica but the new leader: one slot holds votes of two
 *                   ballots for two values, and the replica with the older one is the one whose
 *                   election timer runs (with no heartbeats). A Promise quorum that hears from A and
 *                   from a voter of the newer ballot, the new leader lost, must re-propose the
 *                   newer value (Paxos's P2c: the highest-ballot vote revealed). Unless pick bits
 *                   0 and 1 are clear, the new leader is cut off from every replica instead, and
 *                   fault-free time goes on until another replica leads, its phase 1 having heard
 *                   A and a voter of the newer ballot.
 *                   With pick bit 2, A crashes instead of being cut off (its vote is on disk) and
 *                   restarts once the newer write is chosen; with bits 0 and 1 clear every link is
 *                   then healed, and fault-free time goes on until A has executed the slot: A
 *                   follows the new leader once its restart wait is over, told a commit index
 *                   above its vote of the older ballot, which must not count as chosen (a follower
 *                   learns its vote only from a leader of the vote's ballot)
 *   transfer        a follower is cut off while the clients write, until the leader's log is
 *                   truncated past what that follower has executed; healed, it is caught up by state
 *                   transfer, and as soon as a chunk of the snapshot is on its way to it, that chunk
 *                   has a byte changed, or (pick mod 4 = 3) the first chunk after the first is lost
 *                   (the follower asks for it again and resumes); except for pick mod 4 = 2,
 *                   fault-free time goes on until the follower has executed up to the snapshot (a
 *                   corrupted transfer is refused whole by its digests, rule S2, and asked for
 *                   again; with pick bit 5, after a corrupted chunk, the follower then crashes as
 *                   it writes the snapshot the transfer installs, restarts and starts over; where
 *                   the world keeps a transfer's chunks across a crash, `resume-transfers`, or with
 *                   pick bit 7, which the generator never sets, it first crashes right after it
 *                   took the corrupted chunk and restarts: resumed from the chunks kept, the
 *                   transfer is refused whole, and each restart resumes what was kept).
 *                   Random chunk faults land during a transfer in about one run in 1,000
 *                   with 5 replicas: this is where rule S2 is tested
 *   retryAfterTransfer  snapshots x state transfer x client sessions: a client's write is executed
 *                   and its reply lost (the client does not retry yet); the followers, in two
 *                   halves (each a minority), crash in turn while the other clients write, until
 *                   the leader's log is truncated past what they may know and its snapshot holds
 *                   that write, and restart: each is caught up by state transfer (with pick bit 2,
 *                   one of the first half crashes as soon as its transfer is in progress, and one
 *                   of the second half as it writes the snapshot its transfer brought; each
 *                   restarts at once and starts over), and holds the client's session as the installed
 *                   snapshot brought it. The leader is lost (pick
 *                   bit 0: it crashes, where notices wait after answering a write on its
 *                   followers' votes alone; else it is cut off), another replica leads, and the
 *                   client retries there: at once (pick bit 1) or once the new leader holds a lease.
 *                   The session table must answer it; a replica whose transfer lost the sessions
 *                   would execute it twice. Random faults got there in no run of 1,000: a replica
 *                   caught up by transfer must lead, and be asked for a write executed before the
 *                   snapshot. At feature level 3 the client's session is opened first (the answer
 *                   lost is its write's), and so are the other clients' (except with pick bit 3),
 *                   before any follower is down and none asked again, so that a table of one
 *                   session per client keeps the client's; elsewhere clients waiting for a
 *                   session ask again
 *   lateRead        store values at rest x leases x leader changes (the runtime's tuning, 10, whose
 *                   store holds long values at rest; the swarm draws it late, `Profile.readsLateMsMax`):
 *                   a client writes a long value to k0 until it rests at the leader, the leader's
 *                   storage thread is made slow (`World.slowReads`, for two leases and an election
 *                   timeout), and a client reads k0 by lease: the read waits for the value (rule
 *                   V4). Meanwhile, by pick mod 4: the leader is cut off until another replica
 *                   leads and a write to k0 is answered there, then healed (a lease lapses, the
 *                   leadership changes); the leader is paused likewise, then resumed as its
 *                   storage thread catches up, its read answered before anything else (judged
 *                   against the lease then, not when it arrived: the answer must not be the value
 *                   of before the write); the leader
 *                   crashes and restarts (the read is lost with it; a read of k0 asks again);
 *                   a client writes k0 twice at the leader, the second a snapshot slot that
 *                   compacts its disk (the entry no longer rests as the read named it). With pick bit 2, the
 *                   operator also starts a spare and adds it meanwhile (a membership change comes).
 *   twoAtRest       store values at rest x reads by lease x batches (the runtime's tuning, 10, whose
 *                   leader batches the commands that arrive while a slot is in flight; the swarm
 *                   draws it in place of half the `lateRead` draws, by pick bit 3): clients 0 and 1
 *                   write long values to k0 and k1 until both rest at the leader, whose storage
 *                   thread is then made slow and whose followers are paused; client 2 writes a long
 *                   value to k0 (a slot in flight), and clients 0 and 1 ask to append to k0 and to
 *                   k1 (one batch, behind it). The followers resume until that first slot is
 *                   executed (k0 rests again, under its new name), and pause again; client 2 reads
 *                   k0 by lease (read back for the read), then the followers resume: the batch is
 *                   chosen and execution stops at it, asking only for k1, k0 being asked already.
 *                   The storage thread catches up and answers k0 first (for the read), then k1.
 *                   A replica that put k0 back at rest with the read's answer asks for it again
 *                   once k1 comes, and each answer puts the one before back (a livelock the
 *                   world's bound on read-backs per slot, ReadBackProgress, catches)
 *   revote          store values at rest x snapshots x a copy of an Accept delayed x restarts
 *                   (the swarm draws it in place of a quarter of the `lateRead` draws, by pick bit
 *                   4): client 0 writes a long value to k0 at slot s, and the network copies the
 *                   Accept to a follower and holds the copy back; the other clients write k1 until
 *                   that follower took a snapshot of slot s or above (its votes through it
 *                   forgotten, k0 still named by its vote record at s), then the copy arrives and
 *                   is voted again: a second record of the same vote. Twelve writes more and idle
 *                   time let two later snapshots' compactions (in pieces under the runtime's
 *                   tuning) delete the snapshot between the two records, both kept by rule V3;
 *                   the follower crashes and restarts: `Recover` meets the same vote twice in its
 *                   ballot and must take it (a replica that refuses it never restarts)
 */
import type { ConfigChange } from "../../impl/core/index.ts";
import { changeAllowed, compareBallots } from "../../impl/core/testing/index.ts";
import type { ReconfigureKind } from "./actions.ts";
import type { World } from "./world.ts";

/** The preludes, in the order shrinking prefers (simplest first). */
export const preludes = [
  "none",
  "writes",
  "learner",
  "alpha",
  "leaderLost",
  "reelected",
  "restartInLease",
  "twoBallots",
  "transfer",
  "retryAfterTransfer",
  "lateRead",
  "twoAtRest",
  "revote",
] as const;
export type Prelude = (typeof preludes)[number];

/** Simulated time one phase of a prelude may take before it gives up, ms. */
const phaseMsMax = 5_000;

/** What a prelude does beside its pick. */
export interface PreludeOptions {
  /**
   * The `alpha` phase first sets the leader's clock to run slow and every other replica's fast,
   * at the drift bound, so that the reads it asks with the change pending meet rule L2's margin
   * in both directions at once (`Profile.driftApart`). Off when absent.
   */
  readonly driftApart?: boolean;
}

/** Run `prelude` on a warm (or cold) world; `pick` chooses within it (see the module comment). */
export function runPrelude(world: World, prelude: Prelude, pick: number, options: PreludeOptions = {}): void {
  // Pick bit 8 (the explorer's) shrinks a cluster of 5 or 7 to 3 voters before any prelude, the
  // three that stand apart too (they spend bits 0-7 on their own choices).
  if ((pick & 256) !== 0 && world.initialMembers.length > 3 && prelude !== "none") {
    world.note(`prelude ${prelude}: voters removed one by one until 3 are left`);
    if (!shrinkToThree(world)) return;
    pick &= ~256;
  }
  if (prelude === "restartInLease") {
    world.note("prelude restartInLease: the one follower whose grants hold the lease is cut off (and restarts)");
    restartInLease(world, pick);
    return;
  }
  if (prelude === "twoBallots") {
    world.note("prelude twoBallots: one slot gets votes of two ballots for two values");
    twoBallots(world, pick);
    return;
  }
  if (prelude === "transfer") {
    world.note("prelude transfer: a chunk of a state transfer is corrupted or lost on the way");
    transfer(world, pick);
    return;
  }
  if (prelude === "retryAfterTransfer") {
    world.note("prelude retryAfterTransfer: a retry reaches a leader whose session table came by state transfer");
    retryAfterTransfer(world, pick);
    return;
  }
  if (prelude === "lateRead") {
    world.note("prelude lateRead: a read by lease waits for a value at rest while the leader's storage thread is slow");
    lateRead(world, pick);
    return;
  }
  if (prelude === "revote") {
    world.note("prelude revote: a copy of an Accept is voted again after the follower's snapshot of its slot");
    revote(world);
    return;
  }
  if (prelude === "twoAtRest") {
    world.note("prelude twoAtRest: a batch reads two values at rest, one of them read back for a read by lease first");
    twoAtRest(world);
    return;
  }
  // Pick bit 6 (drawn by the random suites in a third of their runs with 5 or 7 replicas, see
  // ./actions.ts; the explorer's preludes name it) first shrinks a cluster of
  // 5 or 7 to 3 voters, so that the prelude builds there the history it builds with 3 replicas
  // and the rest of the pick.
  const shrunk = (pick & 64) !== 0 && world.initialMembers.length > 3 && prelude !== "none";
  if (shrunk) {
    world.note(`prelude ${prelude}: voters removed one by one until 3 are left`);
    if (!shrinkToThree(world)) return;
    pick &= ~64;
  }
  if (prelude === "learner" && (pick & 32) !== 0) {
    world.note("prelude learner: a removed voter down before its hand-over is handed over by the learner that leads");
    learnerHandsOver(world, pick);
    return;
  }
  const depth = preludes.indexOf(prelude);
  const phases: readonly [string, (w: World, pick: number) => boolean][] = [
    ["writes", (w, p) => writes(w, p, shrunk)],
    ["a learner joins and catches up", learnerCaughtUp],
    [
      "a change of the voters, executed by the leader and its followers",
      (w, p) => {
        if (options.driftApart === true) driftApart(w);
        return changePending(w, p);
      },
    ],
    ["the leader is lost", leaderLost],
    ["another replica is elected and holds a lease", reelected],
  ];
  for (const [name, phase] of phases.slice(0, depth)) {
    world.note(`prelude ${prelude}: ${name}`);
    if (!phase(world, pick)) return;
  }
}

/**
 * The leader removes the last voter but itself, one change at a time, each executed before the
 * next is asked, until 3 voters are left; the removed replicas retire. True if it got there.
 */
function shrinkToThree(world: World): boolean {
  // Where a heartbeat interval is close to the election timeouts (the sparse timers), time goes
  // in small steps, so that heartbeats arrive before the followers' timers fire.
  const { heartbeatIntervalMs, electionTimeoutMsMin } = world.tuning;
  const stepMs = 2 * heartbeatIntervalMs > electionTimeoutMsMin ? 20 : heartbeatIntervalMs;
  const until = (w: World, done: () => boolean) => untilStepping(w, done, false, stepMs);
  // From a cold start, once a leader is elected.
  if (!until(world, () => leaderState(world) !== null)) return false;
  for (;;) {
    const leader = leaderState(world);
    if (leader === null) return false;
    const configs = leader.learner.configs;
    const voters = configs[configs.length - 1]!.voters;
    if (configs.length === 1 && voters.length <= 3)
      return until(world, () =>
        world.born().every((i) => voters.includes(world.replicas[i]!.id) || world.replicas[i]!.state === null),
      );
    if (configs.length === 1) {
      const self = leader.ctx.config.self;
      const r = voters.length - 1 - [...voters].reverse().findIndex((v) => v !== self);
      world.apply({ t: "reconfigure", kind: "remove", r });
    }
    const count = voters.length;
    const done = () => {
      const l = leaderState(world);
      if (l === null) return false;
      const cs = l.learner.configs;
      return cs.length === 1 && cs[0]!.voters.length < count;
    };
    if (!until(world, done)) return false;
  }
}

/**
 * Fault-free time until `done` holds (or the phase times out), clients retrying; with `reading`,
 * every client asks the leader at every round, a new read or its request again (reads during a
 * failover). True if `done` holds.
 */
function until(world: World, done: () => boolean, reading = false): boolean {
  return untilStepping(world, done, reading, reading ? 20 : world.tuning.heartbeatIntervalMs);
}

/**
 * `until`, fault-free and without a retry: at feature level 3 a request to open a session that is
 * asked again opens a second session.
 */
function untilUnretried(world: World, done: () => boolean): boolean {
  const start = world.trueTime;
  while (!done()) {
    if (world.trueTime - start > phaseMsMax) return false;
    world.deliverAll();
    if (!done()) world.advance(world.tuning.heartbeatIntervalMs);
  }
  return true;
}

/**
 * `until`, time going `stepMs` at a time. Client `spared` (if any) is never retried: its request
 * stays unanswered for a prelude to retry later.
 */
function untilStepping(world: World, done: () => boolean, reading: boolean, stepMs: number, spared = -1): boolean {
  const start = world.trueTime;
  let sinceRetry = 0;
  while (!done()) {
    if (world.trueTime - start > phaseMsMax) return false;
    if (reading) readAtLeader(world);
    world.deliverAll();
    if (done()) return true;
    // Reads during a failover go in small steps (a new leader's first rounds are where a read by
    // lease can go wrong); otherwise a heartbeat interval at a time.
    world.advance(stepMs);
    sinceRetry += stepMs;
    if (sinceRetry >= 100) {
      sinceRetry = 0;
      if (spared < 0) world.retryAll();
      else
        world.clients.forEach((c, i) => {
          if (i === spared) return;
          if (c.op !== null) world.apply({ t: "retry", c: i });
          // Feature level 3: a client still waiting for a session asks again.
          else if (c.waiting !== null) world.apply({ t: "submit", c: i, op: c.waiting });
        });
    }
  }
  return true;
}

/**
 * Every client asks the current leader (clients that find a new leader at once): a new read, or
 * its outstanding request again.
 */
function readAtLeader(world: World): void {
  const leader = leaderIndex(world);
  if (world.replicas[leader]!.state?.role._tag !== "leader") return;
  world.clients.forEach((c, i) => {
    world.steerClient(i, leader);
    world.apply(c.op === null ? { t: "submit", c: i, op: { kind: "get", key: i } } : { t: "retry", c: i });
  });
}

/** The index of the current leader (the live one with the highest ballot), or of replica 1. */
function leaderIndex(world: World): number {
  return world.target(world.initialMembers.length);
}

/** The leader's state, or null without a leader. */
function leaderState(world: World): NonNullable<World["replicas"][number]["state"]> | null {
  const s = world.replicas[leaderIndex(world)]!.state;
  return s !== null && s.role._tag === "leader" ? s : null;
}

/** A follower of the leader, chosen by `pick` (a replica that retired is none). */
function follower(world: World, pick: number): number {
  const leader = leaderIndex(world);
  const others = world.born().filter((i) => i !== leader && !world.replicas[i]!.retired);
  return others[pick % others.length]!;
}

/**
 * Two rounds of writes, one per client (one reply lost, so it is retried), all answered. After a
 * shrink (`shrunk`: pick bit 6), the follower armed to crash at its next snapshot (pick bit 3) is
 * crashed at the end of the writes if it is up (not crashed yet, or restarted after its crash),
 * and stays down into the next phases. With
 * 3 replicas whether its snapshot falls before or after the writes' end (and so whether it is
 * restarted there or is still down when a change removes it) depends on the tuning's snapshot
 * interval; the shrink's 8 (5 replicas) or 16 (7) slots moved every snapshot against the writes,
 * and a voter removed while down, which comes back knowing only the configuration it was removed
 * from (rule R4's case, mutant help-removed-leader), was left to one tuning in 640 of 1,280 picks.
 */
function writes(world: World, pick: number, shrunk = false): boolean {
  const lagging = (pick & 4) !== 0 ? follower(world, pick >> 4) : null;
  if (lagging !== null) world.apply({ t: "isolate", r: lagging, others: 0 });
  const crashing = (pick & 8) !== 0 ? follower(world, (pick >> 4) + 1) : null;
  if (crashing !== null && crashing !== lagging) world.apply({ t: "crashInSnapshot", r: crashing });
  for (let round = 0; round < 2; round++) {
    for (let c = 0; c < world.clients.length; c++) {
      if (round === 0 && c === 2) world.apply({ t: "loseReply", c });
      world.apply({ t: "submit", c, op: { kind: (round + c) % 2 === 0 ? "put" : "append", key: c } });
    }
    if (!until(world, () => world.pendingOps() === 0)) return false;
  }
  if (lagging !== null) world.apply({ t: "heal" });
  for (const r of world.born())
    if (world.replicas[r]!.state === null && !world.replicas[r]!.retired) world.apply({ t: "restart", r, clockMs: 0 });
  if (shrunk && crashing !== null && crashing !== lagging && world.replicas[crashing]!.state !== null)
    world.apply({ t: "crash", r: crashing, at: null });
  return true;
}

/**
 * The first number `which` of retired, retired + (retired + 1), ... (each names the spare among
 * the retired replicas and it) whose bit 0 and 32-bit `which >> 1` mod 3 are those of `pick` (the
 * world reads them: promote or replace, and which voter of 3). With 2 retired replicas most picks
 * have no such number below 2^31, and the first lies where `>> 1` wraps around 32 bits; walking
 * there one by one took up to 7 s, so each block of 2^31 is entered at its start (the condition
 * repeats every 6 numbers within a block) and the same number is found at once.
 */
function spareAfterRetired(retired: number, pick: number): number {
  const step = retired + 1;
  const fits = (w: number) => (w & 1) === (pick & 1) && (w >> 1) % 3 === (pick >> 1) % 3;
  for (let block = 0; block < 8; block++) {
    const start = block * 2 ** 31;
    let w = retired + Math.ceil(Math.max(0, start - retired) / step) * step;
    for (let k = 0; k < 12; k++, w += step) if (fits(w)) return w;
  }
  throw new Error(`no spare target for pick ${pick} after ${retired} retired replicas`);
}

/**
 * Does `pick` ask for the reelected leader's farewell (bit 5, see `retireEveryVoter`) where it can
 * be built: 3 voters, and no voter cut off from the change (bit 4 clear)? Then the change of the
 * alpha phase is a removal (remove a voter for an even kind, the leader itself for an odd one),
 * which leaves two voters, and the add's follow-up replace names the voter the removal names
 * (`followUpAimed`), so that it is refused once the removal is chosen and the learner stays one.
 */
function farewell(world: World, pick: number): boolean {
  if ((pick & 32) === 0 || (pick & 16) !== 0) return false;
  const leader = leaderState(world);
  return leader !== null && leader.learner.configs[leader.learner.configs.length - 1]!.voters.length === 3;
}

/**
 * What the add's `which` reads for the operator's follow-up (bit 0: replace a voter, not promote;
 * `which >> 1`: which voter): `pick`'s own, but for a farewell pick a replace of the voter the
 * alpha phase's removal names (`pick >> 2`); otherwise a replace of another voter would take the
 * learner's place among the voters once it caught up, and no learner would be left to hand over to.
 */
function followUpAimed(world: World, pick: number): number {
  return farewell(world, pick) ? 2 * (pick >> 2) + 1 : pick;
}

/** A spare joins as a learner and catches up, as the leader sees it (what rule R3 asks). */
function learnerCaughtUp(world: World, pick: number): boolean {
  const before = world.born().length;
  // After a shrink the retired replicas are born non-members too, and the spare comes after them:
  // the change names the spare and goes on (a promote, or a replace of the same voter) as `pick`
  // does with 3 replicas.
  const retired = world.born().filter((i) => world.replicas[i]!.retired).length;
  const aimed = followUpAimed(world, pick);
  const which = retired > 0 ? spareAfterRetired(retired, aimed) : aimed;
  world.apply({ t: "reconfigure", kind: "add", r: which });
  if (world.born().length === before) return false;
  const spare = world.replicas[world.born()[before]!]!;
  const farewellPick = farewell(world, pick);
  return until(world, () => {
    const leader = leaderState(world);
    if (leader === null || leader.role._tag !== "leader") return false;
    // A farewell pick goes on as soon as the leader would take the follow-up replace: the
    // removal it asks next must come first, so that the replace is refused.
    if (farewellPick) {
      const voters = leader.learner.configs[leader.learner.configs.length - 1]!.voters;
      const remove = voters[(pick >> 2) % voters.length]!;
      if (changeAllowed(leader, { op: "replace", remove, add: spare.id }) === null) return true;
    }
    const reported = leader.role.progress[leader.role.peers.indexOf(spare.id)] ?? -1;
    return reported + 1 >= leader.learner.executedUpTo;
  });
}

/**
 * A change of the voters is chosen and executed by the leader, one delivery at a time so as to stop
 * right there, before the window's no-ops are chosen; then the messages the leader sent with it
 * (the no-ops, carrying the commit index) reach the followers, which execute the change too.
 */
function changePending(world: World, pick: number): boolean {
  const kinds: readonly ReconfigureKind[] = ["replace", "remove", "promote", "removeLeader"];
  const missed = (pick & 16) !== 0 ? follower(world, pick >> 5) : null;
  // A farewell pick removes a voter, or the leader (`farewell`).
  let kind = kinds[farewell(world, pick) ? (pick % kinds.length) | 1 : pick % kinds.length]!;
  let r = pick >> 2;
  if (missed !== null) {
    // The leader goes on past the change: it replaces a voter that is neither itself nor the one
    // cut off (removing one instead could leave a configuration without a quorum while it is cut off).
    world.isolate(missed, 0);
    const leader = leaderState(world);
    if (leader === null) return false;
    const voters = leader.learner.configs[leader.learner.configs.length - 1]!.voters;
    const keep = [leader.ctx.config.self, world.replicas[missed]!.id];
    const other = voters.findIndex((v) => !keep.includes(v));
    if (other < 0) return false;
    kind = "replace";
    r = other;
  }
  const asked = world.changes.size;
  world.apply({ t: "reconfigure", kind, r });
  if (world.changes.size === asked) return false;
  const change = [...world.changes.values()].pop()!;
  const start = world.trueTime;
  for (;;) {
    const leader = leaderState(world);
    if (leader !== null && leader.learner.configs.length > 1) break;
    if (change.result?._tag === "refused" || world.trueTime - start > phaseMsMax) return false;
    if (!world.deliverOne()) world.advance(20);
  }
  world.deliverAll();
  if (missed !== null) cutOffReplaced(world, change.change);
  reads(world);
  return missed === null || boundaryWrite(world);
}

/**
 * The voter a replace removes has voted for the window's slots: cut it off from the leader and
 * from the replica that replaces it, so that no voter of the new configuration hands over to it
 * and it stays, removed but not retired (rule R5), knowing the configurations before and after.
 */
function cutOffReplaced(world: World, change: ConfigChange): void {
  const leader = leaderState(world);
  if (leader === null || change.op !== "replace") return;
  // An action names a replica by its place among those born (one number names the leader instead).
  const born = world.born();
  const named = (id: number): number => born.indexOf(id - 1) + 2 * born.length;
  const gone = named(change.remove);
  world.apply({ t: "cut", a: named(leader.ctx.config.self), b: gone, oneWay: true });
  world.apply({ t: "cut", a: named(change.add), b: gone, oneWay: true });
}

/**
 * A voter missed the change (it is cut off): the leader goes on until the new configuration
 * governs and a write is chosen in it and acknowledged, without that voter. When the leader is lost
 * next, the voter that missed the change comes back knowing only the configuration before it.
 */
function boundaryWrite(world: World): boolean {
  const leader = leaderState(world);
  if (leader === null) return false;
  const governs = leader.learner.configs[leader.learner.configs.length - 1]!.governsFrom;
  const idle = world.clients.findIndex((c) => c.op === null);
  if (idle >= 0) world.apply({ t: "submit", c: idle, op: { kind: "put", key: idle } });
  return until(world, () => world.pendingOps() === 0 && (leaderState(world)?.learner.executedUpTo ?? 0) >= governs);
}

/**
 * The leader's clock runs slow and every other replica's fast, at the drift bound (a drift action
 * clamps its rate there): the leader's lease lasts longest in true time, the grants behind it
 * lapse soonest, which rule L2's margin must cover together.
 */
function driftApart(world: World): void {
  const leader = leaderIndex(world);
  const born = world.born();
  // An action names a replica by its place among those born (the number of members names the leader).
  for (const [k, index] of born.entries())
    world.apply({ t: "drift", r: k + 2 * born.length, ppm: index === leader ? -1_000_000 : 1_000_000 });
}

/**
 * The whole machine stops for `ms` (as SIGSTOP of every process, or a paused virtual machine):
 * every replica is paused, true time moves on, and every one resumes, the leader's clocks and its
 * followers' all a stop behind. A follower then runs again more than an election timeout past its
 * deadline, and with the runtime's settings waits its whole election timeout (impl/core/election.ts).
 */
export function machineStopped(world: World, ms: number): void {
  const born = world.born();
  world.note(`the machine stops for ${ms} ms`);
  // An action names a replica by its place among those born (the number of members names the leader).
  for (const k of born.keys()) world.apply({ t: "pause", r: k + 2 * born.length });
  world.apply({ t: "advance", ms });
  for (const k of born.keys()) world.apply({ t: "resume", r: k + 2 * born.length });
}

/** Every client asks for a read, delivered at once (before the replicas' messages in flight). */
function reads(world: World): void {
  for (let c = 0; c < world.clients.length; c++) world.apply({ t: "submit", c, op: { kind: "get", key: c } });
  world.deliverRequests();
}

/**
 * The leader is lost. Either it crashes in the middle of proposing a write: the crash lands after
 * its first effect, an Accept to one follower, and before its own vote is written, so the slot has
 * one vote and is not chosen (a leader change in the middle of phase 2). Where notices wait and no
 * voter missed the change, it crashes instead once it answered a write on its followers' votes,
 * before its own vote is durable (`answeredAheadOfOwnVote`): the slot is chosen, and the next
 * leader must keep it. Or it is cut off from
 * every other replica and, once its lease has run out by any clock, every client asks it for a
 * read, which it must not answer alone. A voter that missed the change (pick bit 4) comes back
 * once the leader is lost, as it campaigns (`comesBackCampaigning`).
 */
function leaderLost(world: World, pick: number): boolean {
  const leader = leaderIndex(world);
  const missed = (pick & 16) !== 0 ? follower(world, pick >> 5) : null;
  if ((pick & 3) === 0 && missed === null && world.noticesDelayed) {
    // A client free to write first (the alpha phase's reads answered), the leader as it is then.
    if (!until(world, () => world.clients.some((c) => c.op === null))) return false;
    const writer = leaderIndex(world);
    answeredAheadOfOwnVote(world, writer);
    if (world.replicas[writer]!.state !== null) world.apply({ t: "crash", r: writer, at: null });
    world.deliverAll();
    return true;
  }
  if ((pick & 3) === 0) {
    const idle = world.clients.findIndex((c) => c.op === null);
    for (let c = 0; c < world.clients.length; c++) world.steerClient(c, leader);
    world.apply({ t: "crash", r: leader, at: 1 });
    if (idle >= 0) world.apply({ t: "submit", c: idle, op: { kind: "put", key: pick } });
    world.deliverRequests();
    if (world.replicas[leader]!.state !== null) world.apply({ t: "crash", r: leader, at: null });
    world.deliverAll();
    if (missed !== null) comesBackCampaigning(world, missed, null);
    return true;
  }
  world.apply({ t: "isolate", r: world.initialMembers.length, others: 0 });
  world.apply({ t: "advance", ms: world.tuning.leaseMs + world.tuning.leaseMarginMs });
  for (let c = 0; c < world.clients.length; c++) world.steerClient(c, leader);
  reads(world);
  if (missed !== null) comesBackCampaigning(world, missed, leader);
  return true;
}

/**
 * A client's write is answered on the followers' votes alone: the leader proposes it, and its
 * Accepts and the followers' Accepteds are delivered (no time passing) before its storage
 * reports its own vote durable, so the reply leaves while that vote still waits to be written.
 * Needs notices that wait (`World.noticesDelayed`); stops early if the leader answers nothing.
 */
function answeredAheadOfOwnVote(world: World, leader: number): void {
  const key = "reply sent before the leader's own vote was durable";
  const before = world.counters.get(key) ?? 0;
  // Settle first (no time passing): an earlier slot's Accepted arriving in between would persist a
  // snapshot, a barrier that writes the own vote before the reply.
  const settle = (): void => {
    for (let i = 0; i < 16 && world.inFlight.length > 0; i++) world.deliverAll();
  };
  settle();
  const idle = world.clients.findIndex((c) => c.op === null);
  for (let c = 0; c < world.clients.length; c++) world.steerClient(c, leader);
  // Executing a slot at which a snapshot is due persists the snapshot, a barrier too: where the
  // next slot is one, a first write takes it (answered as usual, no time passing).
  const next = world.replicas[leader]!.state?.role;
  if (idle >= 0 && next?._tag === "leader" && next.nextSlot % world.tuning.snapshotIntervalSlots === 0) {
    world.apply({ t: "submit", c: idle, op: { kind: "put", key: 1 } });
    for (let i = 0; i < 16 && world.clients[idle]!.op !== null; i++) world.deliverAll();
    settle();
  }
  if (idle >= 0 && world.clients[idle]!.op === null) world.apply({ t: "submit", c: idle, op: { kind: "put", key: 0 } });
  world.deliverRequests();
  // Messages go before notices (`deliverOne`): the followers' votes come back first.
  for (let i = 0; i < 64 && (world.counters.get(key) ?? 0) === before; i++) if (!world.deliverOne()) return;
}

/**
 * The voter that missed the change (`changePending`, still cut off) comes back as it campaigns:
 * fault-free time until its election timer fires, then every link is healed but the lost leader's
 * (`cutOff`, still cut off from every replica). Its Prepare thus asks for Promises in the
 * configuration it knows before anything tells it of the change. Were it healed at once, the
 * replaced voter, which waits for its hand-over, would within a heartbeat ask it for the slots
 * above its executed prefix (a CatchUp says its sender has them), and it would learn the change
 * before its timer fired: the election inside the alpha window, by a voter that knows only the
 * configuration before it, would then take a rare race (rule L3's hazard, the stale lease read
 * after a replace).
 */
function comesBackCampaigning(world: World, missed: number, cutOff: number | null): void {
  until(world, () => world.replicas[missed]!.state?.role._tag !== "follower");
  world.healAll();
  if (cutOff !== null) world.isolate(cutOff, 0);
}

/**
 * Another replica is elected and holds a lease, while the clients keep reading; the cut-off leader
 * is reconnected. With pick
 * bit 1, the replica that joined is cut off during the election: a voter of the pending
 * configuration that never promised the new ballot, whose HeartbeatAcks then count as grants.
 */
function reelected(world: World, pick: number): boolean {
  const lost = leaderIndex(world);
  const joined = world.born()[world.initialMembers.length];
  // With five voters or more, one more is cut off, or the four that remain would cover both
  // configurations (not after a shrink to 3: the two voters left would lose their quorum).
  if ((pick & 2) !== 0 && joined !== undefined && joined !== lost)
    world.isolate(joined, votersKnown(world) >= 5 ? 1 : 0);
  const leads = () => world.born().some((i) => i !== lost && world.replicas[i]!.state?.role._tag === "leader");
  if (!until(world, leads, true)) return false;
  world.apply({ t: "heal" });
  if (!until(world, () => world.leaseHolders().some((i) => i !== lost), true)) return false;
  if (!until(world, () => world.pendingOps() === 0)) return false;
  if ((pick & 32) !== 0) retireEveryVoter(world);
  return true;
}

/** The voters of the latest configuration any live replica knows. */
function votersKnown(world: World): number {
  let latest: { epoch: number; voters: number } = { epoch: -1, voters: 0 };
  for (const i of world.born()) {
    const configs = world.replicas[i]!.state?.learner.configs;
    const c = configs?.[configs.length - 1];
    if (c !== undefined && c.epoch > latest.epoch) latest = { epoch: c.epoch, voters: c.voters.length };
  }
  return latest.voters;
}

/**
 * The leader of two voters removes itself, and the other voter is replaced by the learner, in
 * one window ({a, b} becomes {b}, then {c}): once the leader has decided its last slots and left,
 * the next slot falls to {b}, whose only voter retires too, and no voter that stays may campaign
 * for it. Only b can decide it (rule L5's exception); were it to abstain, nothing would be chosen
 * again.
 */
function retireEveryVoter(world: World): void {
  const leader = leaderState(world);
  if (leader === null) return;
  const latest = leader.learner.configs[leader.learner.configs.length - 1]!;
  if (latest.voters.length !== 2 || latest.learners.length === 0) return;
  const self = leader.ctx.config.self;
  const other = latest.voters.findIndex((v) => v !== self);
  // The operator asks once this leader would take the replace (rule R3 refuses it while the
  // learner lags behind).
  const replace = { op: "replace", remove: latest.voters[other]!, add: latest.learners[0]! } as const;
  const wouldTake = (): boolean => {
    const now = leaderState(world);
    return now !== null && now.ctx.config.self === self && changeAllowed(now, replace) === null;
  };
  if (!until(world, wouldTake)) return;
  const before = world.changes.size;
  world.apply({ t: "reconfigure", kind: "removeLeader", r: 0 });
  world.apply({ t: "reconfigure", kind: "replace", r: other });
  // Fault-free time until both are answered (chosen, as a rule): from then on two replicas must
  // retire, and what follows (the random actions, the liveness phase) starts there, not from a
  // converged cluster with the changes only asked.
  const asked = [...world.changes.values()].slice(before);
  until(world, () => asked.every((c) => c.result !== null));
}

/**
 * The leader's lease rests on one follower's grants, and that follower is cut off from it (and
 * restarts, forgetting them) just before another follower campaigns (see the module comment). The
 * leader is bridged to A alone (with 5 or 7 replicas, to A and the one or two followers after it:
 * a bare quorum); the others hear nothing from it, so their grants run out after D and their election
 * timers fire between electionTimeoutMsMin and electionTimeoutMsMax after the cut. A crashes
 * electionTimeoutMsMin - D/2 (plus pick's eighths of D) after the cut, so that the lease the
 * leader counts from A's last grant still holds when the first of them campaigns. Pick bit 7
 * stops there, before A crashes.
 */
function restartInLease(world: World, pick: number): void {
  const leader = leaderIndex(world);
  if (leaderState(world) === null) return;
  const a = follower(world, (pick & 127) >> 3);
  // Actions name born replicas by position; position n would name the leader instead.
  const born = world.born();
  if (born.length > world.initialMembers.length) return;
  // The leader keeps a bare quorum of grants, A's among them: with 3 replicas A's alone (a
  // bridge), with 5 or 7 those of A and of the next one or two followers; every other follower is
  // cut off from it, so that A's grant is what separates the leader's quorum from theirs.
  const voters = born.filter((i) => !world.replicas[i]!.retired);
  const followers = voters.filter((i) => i !== leader);
  const at = followers.indexOf(a);
  const kept = Array.from({ length: Math.floor(voters.length / 2) }, (_, k) => followers[(at + k) % followers.length]!);
  if (kept.length === 1) world.apply({ t: "bridge", r: born.indexOf(a) });
  else
    for (const f of followers)
      if (!kept.includes(f)) world.apply({ t: "cut", a: born.indexOf(leader), b: born.indexOf(f), oneWay: false });
  const { leaseMs, electionTimeoutMsMin, electionTimeoutMsMax } = world.tuning;
  // Where A does not restart (pick bit 2), the leader stalls for D/2 just before A is cut off,
  // from D before the last election timer of the others may fire: the grant it finds on resuming
  // answers a heartbeat sent before the stall (rule L2: its lease counts from that send), and A's
  // grant runs out while the others campaign, so one of them leads at once.
  const restarts = (pick & 4) === 0;
  const stallMs = restarts ? 0 : Math.round(leaseMs / 2);
  const crashAfter =
    stallMs > 0
      ? Math.max(0, electionTimeoutMsMax - leaseMs) + stallMs
      : Math.max(0, electionTimeoutMsMin - leaseMs / 2 + ((pick & 3) * leaseMs) / 8);
  const start = world.trueTime;
  let stalled = false;
  while (world.trueTime - start < crashAfter) {
    if (stallMs > 0 && !stalled && world.trueTime - start >= crashAfter - stallMs) {
      world.apply({ t: "pause", r: world.targetFor(leader) });
      stalled = true;
    }
    world.deliverAll();
    world.advance(10);
  }
  if (stalled) {
    world.apply({ t: "resume", r: world.targetFor(leader) });
    world.deliverAll();
  }
  if ((pick & 128) !== 0) return;
  if (restarts) world.apply({ t: "crash", r: world.born().indexOf(a), at: null });
  world.apply({ t: "cut", a: world.born().indexOf(leader), b: world.born().indexOf(a), oneWay: false });
  if (restarts) world.apply({ t: "restart", r: world.born().indexOf(a), clockMs: 0 });
  // Time goes on until a replica other than the cut-off leader leads and holds a lease (with rules
  // L1 and L4, only once the old lease has run out).
  until(world, () => world.leaseHolders().some((i) => i !== leader));
}

/**
 * One slot gets votes of two ballots for two values (see the module comment): the leader crashes
 * after its first Accept of a write left, the follower A that takes it is cut off, the leader
 * restarts (its own vote was never written), and the others elect a leader that chooses another
 * client's write at the slot, A's vote unseen. No client retries meanwhile, so the first write
 * cannot take the slot again in the newer ballot. Then every link is healed but those between A
 * and the new leader; or, unless pick bits 0 and 1 are both clear, the new leader is cut off from
 * every replica, and fault-free time goes on until another replica leads (its phase 1 heard A
 * and a voter of the newer ballot).
 */
function twoBallots(world: World, pick: number): void {
  const leader = leaderIndex(world);
  if (leaderState(world) === null) return;
  const first = world.clients.findIndex((c) => c.op === null);
  const second = world.clients.findIndex((c, i) => i !== first && c.op === null);
  if (first < 0 || second < 0) return;
  world.steerClient(first, leader);
  world.apply({ t: "crash", r: world.targetFor(leader), at: 1 });
  world.apply({ t: "submit", c: first, op: { kind: "put", key: first } });
  world.deliverRequests();
  if (world.replicas[leader]!.state !== null) {
    world.apply({ t: "crash", r: world.targetFor(leader), at: null });
    return;
  }
  const accept = world.inFlight.find((m) => m.kind === "message" && m.from === leader && m.message._tag === "Accept");
  if (accept === undefined || accept.kind !== "message" || accept.message._tag !== "Accept") return;
  const a = accept.to;
  const slot = accept.message.slot;
  world.deliverAll();
  // With pick bit 2, A crashes (its vote is on disk) and restarts once the newer write is chosen:
  // cut off instead, it would campaign meanwhile, and with 5 or 7 replicas its ballot would then
  // be above the new leader's, whose messages it ignores.
  const crashes = (pick & 4) !== 0;
  if (crashes) world.apply({ t: "crash", r: world.targetFor(a), at: null });
  else world.isolate(a, 0);
  world.apply({ t: "restart", r: world.targetFor(leader), clockMs: 0 });
  // The others elect a leader (no client retries: the first write must not take the slot again).
  const newLeader = () => world.born().find((i) => i !== a && world.replicas[i]!.state?.role._tag === "leader");
  const start = world.trueTime;
  while (newLeader() === undefined) {
    if (world.trueTime - start > phaseMsMax) return;
    world.deliverAll();
    if (newLeader() === undefined) world.advance(world.tuning.heartbeatIntervalMs);
  }
  const elected = newLeader()!;
  world.steerClient(second, elected);
  world.apply({ t: "submit", c: second, op: { kind: "put", key: second } });
  world.deliverRequests();
  if (!until(world, () => world.clients[second]!.op === null)) return;
  if (crashes) world.apply({ t: "restart", r: world.targetFor(a), clockMs: 0 });
  world.apply({ t: "heal" });
  if ((pick & 3) === 0) {
    // A cut off from the new leader campaigns. A restarted follows it once its restart wait is
    // over: the leader's next message tells it a commit index above its vote of the older ballot
    // (which must not count as chosen), and fault-free time goes on until A has executed the slot.
    if (!crashes) world.apply({ t: "cut", a: world.targetFor(elected), b: world.targetFor(a), oneWay: false });
    else until(world, () => (world.replicas[a]!.state?.learner.executedUpTo ?? 0) >= slot);
    return;
  }
  world.isolate(elected, 0);
  until(world, () => world.born().some((i) => i !== elected && world.replicas[i]!.state?.role._tag === "leader"));
}

/**
 * The story of impl/core/testdata/reconfig-removed-replica-restarts.txt, in the world: with 3
 * voters, a spare joins as a learner and catches up; a follower R is removed and crashes as soon
 * as it has executed its removal (before any voter hands over to it); the leader then removes
 * itself and the other voter is replaced by the learner, in one window (`retireEveryVoter`), so
 * that the learner leads alone and both voters retire. R restarts knowing the learner only as
 * one: it asks the voters and learners of its newest configuration for its hand-over, the voters
 * have retired, and the learner that leads hands over (rule R5's path through a learner, which no
 * other random schedule reaches). Each phase is bounded; it stops early where the cluster does not
 * get there.
 */
function learnerHandsOver(world: World, pick: number): void {
  if (world.initialMembers.length > 3 && !shrinkToThree(world)) return;
  // Every voter follows the leader first: one that still grants a rival of the election it lost
  // refuses the leader's Accepts for a lease duration, would not learn its removal in time, and
  // campaigns instead.
  const following = (): boolean => {
    const l = leaderState(world);
    if (l === null || l.role._tag !== "leader") return false;
    const ballot = l.role.ballot;
    const voters = l.learner.configs[l.learner.configs.length - 1]!.voters;
    return voters.every((id) => {
      const s = world.replicas[id - 1]!.state;
      return (
        s !== null && compareBallots(s.acceptor.maxBal, ballot) === 0 && s.acceptor.grantTo.replica === ballot.replica
      );
    });
  };
  if (!until(world, following)) return;
  const leader = leaderState(world)!;
  const voters = leader.learner.configs[leader.learner.configs.length - 1]!.voters;
  if (voters.length !== 3) return;
  // The removed follower: the voter after the leader, or the one after that (bit 2). The add's
  // follow-up replace names it too, so that it is refused once the removal is chosen and the spare
  // stays a learner: it names voter (aimed >> 2) mod 3 (`followUpAimed`), and bit 5 (which
  // `farewell` asks for) and the bits above 5 count in that too, so bits 2-3 make up the rest.
  const k = (voters.indexOf(leader.ctx.config.self) + 1 + ((pick >> 2) & 1)) % 3;
  const base = ((pick >> 6) << 4) | 8;
  const aimed = (pick & ~0b111100) | 32 | (((((k - base) % 3) + 3) % 3) << 2);
  if (!learnerCaughtUp(world, aimed)) return;
  const removed = world.born().find((i) => world.replicas[i]!.id === voters[k])!;
  world.apply({ t: "reconfigure", kind: "remove", r: k });
  const knows = (): boolean => world.replicas[removed]!.state?.removal != null;
  const start = world.trueTime;
  while (!knows()) {
    if (world.trueTime - start > phaseMsMax || world.replicas[removed]!.state === null) return;
    if (!world.deliverOne()) world.advance(20);
  }
  if (world.noticesDelayed) acceptedsBeforeOwnVotes(world, removed);
  // A millisecond passes first: the ticks write out the records that wait for a flush (the
  // `chosen` one of its removal's slot among them), so that it restarts knowing its removal.
  world.advance(1);
  if (world.replicas[removed]!.state?.removal?.handedOver !== false) return;
  // An action names a replica by its place among those born (one number names the leader instead).
  const named = (index: number): number => world.born().indexOf(index) + 2 * world.born().length;
  world.apply({ t: "crash", r: named(removed), at: null });
  retireEveryVoter(world);
  const learner = world.born().find((i) => !voters.includes(world.replicas[i]!.id) && !world.replicas[i]!.retired);
  if (learner === undefined) return;
  if (!until(world, () => world.replicas[learner]!.state?.role._tag === "leader")) return;
  world.apply({ t: "restart", r: named(removed), clockMs: 0 });
  until(world, () => world.replicas[removed]!.state?.removal?.retired != null);
}

/**
 * The removal's window has begun (the Accept of its first no-op told the removed replica): where
 * notices wait, the leader's Accepts to the voters that stay and their Accepteds go first, before
 * the leader's own votes are written (nothing more reaches the removed replica, which is to crash
 * before its hand-over), so the window's first slots are chosen on the followers' votes alone.
 * With 3 replicas the add and its follow-up replace of `learnerCaughtUp` get there too; with 5 or
 * 7, shrunk to 3 voters first, the learner lags behind by then and the follow-up is refused, so
 * this is where "slot chosen without the leader's own vote inside the alpha window" is reached.
 */
function acceptedsBeforeOwnVotes(world: World, removed: number): void {
  const leader = leaderIndex(world);
  const votes = (m: World["inFlight"][number]): boolean =>
    m.kind === "message" &&
    ((m.to === leader && m.message._tag === "Accepted") ||
      (m.from === leader && m.to !== removed && m.message._tag === "Accept"));
  for (let n = 0; n < 32 && !world.anyLinkBlocked(); n++) {
    const i = world.inFlight.findIndex(votes);
    if (i < 0) return;
    world.apply({ t: "deliver", i });
  }
}

/**
 * A chunk of a state transfer is corrupted or lost on the way (see the module comment): a follower
 * is cut off while the clients write, round after round, until the leader's log is truncated past
 * the follower's executed prefix (so that its CatchUp is answered with the snapshot, whatever the
 * tuning's snapshot interval); then it is healed, and the cluster runs one delivery at a time until
 * a SnapshotChunk to it is in flight (for a loss, one after the first), which suffers the fault.
 * Except for pick mod 4 = 2, fault-free time then goes on until the follower has executed up to the
 * snapshot's slot. Each phase is bounded; it stops early where the cluster does not get there.
 */
function transfer(world: World, pick: number): void {
  if (!until(world, () => leaderState(world) !== null)) return;
  const lagging = follower(world, pick >> 2);
  world.isolate(lagging, 0);
  const behind = (): boolean => {
    const leader = leaderState(world);
    const executed = world.replicas[lagging]!.state?.learner.executedUpTo ?? 0;
    return leader !== null && leader.learner.logTruncatedUpTo > executed;
  };
  for (let round = 0; !behind(); round++) {
    if (round >= transferRoundsMax) return;
    for (let c = 0; c < world.clients.length; c++)
      if (world.clients[c]!.op === null) world.apply({ t: "submit", c, op: { kind: "put", key: c } });
    if (!until(world, () => world.pendingOps() === 0)) return;
  }
  const slot = leaderState(world)!.learner.snapshot?.slot ?? 0;
  world.healAll();
  // The chunk lost is one after the first: the follower's transfer is in progress, so it asks for
  // that chunk again and resumes (a lost first chunk starts no transfer: catch-up just asks again).
  const lose = (pick & 3) === 3;
  const toLagging = (): number =>
    world.inFlight.findIndex(
      (m) =>
        m.kind === "message" &&
        m.to === lagging &&
        m.message._tag === "SnapshotChunk" &&
        (!lose || m.message.offset > 0),
    );
  const start = world.trueTime;
  while (toLagging() < 0) {
    if (world.trueTime - start > phaseMsMax || world.replicas[lagging]!.state === null) return;
    if (!world.deliverOne()) world.advance(10);
  }
  // The chunk's place among the chunks in flight, as the fault actions count them.
  const at = toLagging();
  const i = world.inFlight
    .slice(0, at)
    .filter((m) => m.kind === "message" && m.message._tag === "SnapshotChunk").length;
  const chunk = world.inFlight[at]!;
  world.apply({ t: lose ? "dropChunk" : "corruptChunk", i });
  if ((pick & 3) === 2) return;
  // With pick bit 5 after a corrupted chunk, the follower crashes as it writes the snapshot the
  // transfer installs at last (the first snapshot it takes: it has executed nothing since it was
  // cut off), and restarts at once: the transfer starts over.
  const installing = (pick & 3) < 2 && (pick & 32) !== 0;
  if (installing) world.apply({ t: "crashInSnapshot", r: world.targetFor(lagging) });
  // Where the world keeps a transfer's chunks (or with pick bit 7), the follower first crashes
  // right after it took the corrupted chunk, and restarts: its transfer resumes from them.
  const keeps = world.tuning.resumeTransfers === true || (pick & 128) !== 0;
  const corrupt = installing && keeps && chunk.kind === "message" ? chunk.message : null;
  let corruptEnd = corrupt?._tag === "SnapshotChunk" ? corrupt.offset + corrupt.data.length : null;
  // One delivery at a time, time moving only when nothing is deliverable: a transfer of many small
  // chunks is one round trip per chunk.
  const caughtUp = (): boolean => (world.replicas[lagging]!.state?.learner.executedUpTo ?? 0) >= slot;
  const resumed = world.trueTime;
  while (!caughtUp() && world.trueTime - resumed <= phaseMsMax) {
    if (!world.deliverOne()) world.advance(10);
    if (installing && world.replicas[lagging]!.state === null)
      world.apply({ t: "restart", r: world.targetFor(lagging), clockMs: 0 });
    const t = world.replicas[lagging]!.state?.learner.transfer;
    if (corruptEnd !== null && t != null && t.received >= corruptEnd) {
      corruptEnd = null;
      world.apply({ t: "crash", r: world.targetFor(lagging), at: null });
      world.apply({ t: "restart", r: world.targetFor(lagging), clockMs: 0 });
    }
  }
}

/** Rounds of writes (one per idle client) the transfer prelude waits for the leader to truncate its log. */
const transferRoundsMax = 30;

/**
 * A client's retry is answered from a session that came by state transfer (see the module
 * comment): client c's write is executed and its reply lost; then the followers, in two halves
 * (each a minority), crash in turn while the other clients write, until the leader's log is
 * truncated past what they executed and its snapshot holds c's write, and each half restarts and
 * is caught up by state transfer (one delivery at a time, as `transfer` does; with pick bit 2, the
 * first of the first half found with a transfer in progress crashes right there, and the first of
 * the second half as it writes the transferred snapshot, and each restarts). They crash rather
 * than being cut off: a follower cut off campaigns, and once healed deposes the leader. Every follower then
 * holds c's session as the snapshot it installed brought it. The leader is lost (pick bit 0: it
 * crashes; else it is cut off from every replica), another replica is elected, and c, never
 * retried until then, retries its write there: at once (pick bit 1), or once the new leader holds
 * a lease. The session table must answer it; executed again, it would run twice. Each phase is
 * bounded; it stops early where the cluster does not get there.
 */
function retryAfterTransfer(world: World, pick: number): void {
  if (!until(world, () => leaderState(world) !== null)) return;
  const leader = leaderIndex(world);
  const c = world.clients.findIndex((x) => x.op === null);
  if (c < 0) return;
  const spared = (done: () => boolean): boolean =>
    untilStepping(world, done, false, world.tuning.heartbeatIntervalMs, c);
  world.steerClient(c, leader);
  // At feature level 3 the client first asks the service for a session and sends its write once
  // one is opened: the answer to lose is the write's, so the session is opened first.
  let others: number[] = [];
  const othersIdle = (): boolean =>
    others.every((i) => world.clients[i]!.op === null && world.clients[i]!.waiting === null);
  // Except with pick bit 3, every other client opens its session here too, at the leader, while no
  // replica is down, and none asks again: a request to open a session that is retried opens a
  // second one, and the table of the `opened-sessions` tuning (a session per client) would then
  // evict c's, the least recently executed, before its retry (with bit 3 it does: the other
  // clients open theirs while followers are down, their requests asked again).
  if ((world.tuning.featureLevel ?? 1) >= 3 && world.clients[c]!.opened === null) {
    if ((pick & 8) === 0)
      others = world.clients.flatMap((x, i) => (i !== c && x.op === null && x.waiting === null ? [i] : []));
    for (const i of others) {
      world.steerClient(i, leader);
      world.apply({ t: "submit", c: i, op: { kind: "put", key: i } });
    }
    world.apply({ t: "submit", c, op: { kind: "put", key: c } });
    const opened = (): boolean => [c, ...others].every((i) => world.clients[i]!.opened !== null);
    if (!untilUnretried(world, opened) || world.clients[c]!.op === null) return;
    if (leaderIndex(world) !== leader) return;
    world.apply({ t: "loseReply", c });
  } else {
    world.apply({ t: "loseReply", c });
    world.apply({ t: "submit", c, op: { kind: "put", key: c } });
  }
  // The leader answers once c's write is executed: the answer is lost, the write stays outstanding.
  if (!spared(() => !world.clients[c]!.loseNextReply)) return;
  if (!spared(othersIdle)) return;
  const written = leaderState(world)?.learner.executedUpTo;
  if (written === undefined || leaderIndex(world) !== leader) return;
  const voters = world.born().filter((i) => !world.replicas[i]!.retired);
  const followers = voters.filter((i) => i !== leader);
  const half = Math.floor(followers.length / 2);
  // With pick bit 2, the first half's transfer is cut short by a crash in its middle, the second
  // half's by a crash while its first replica installs the snapshot the transfer brought.
  const crashes = (pick & 4) !== 0 ? (["midway", "installing"] as const) : (["none", "none"] as const);
  const groups = [followers.slice(0, half), followers.slice(half)];
  for (let k = 0; k < groups.length; k++)
    if (!caughtUpByTransfer(world, leader, groups[k]!, written, c, crashes[k]!)) return;
  const lost = leaderIndex(world);
  if ((pick & 1) !== 0) {
    // Where notices wait, the leader answers a write on its followers' votes first: the crash
    // lands before its own vote is durable, and the next leader must keep that write too.
    // Elsewhere it crashes in the middle of proposing a write, its Accept at one follower: the
    // next leader's phase 1 reveals a vote of an unchosen slot.
    if (world.noticesDelayed) answeredAheadOfOwnVote(world, lost);
    else {
      const idle = world.clients.findIndex((x) => x.op === null);
      world.apply({ t: "crash", r: world.targetFor(lost), at: 1 });
      if (idle >= 0) {
        world.steerClient(idle, lost);
        world.apply({ t: "submit", c: idle, op: { kind: "put", key: idle } });
      }
      world.deliverRequests();
    }
    if (world.replicas[lost]!.state !== null) world.apply({ t: "crash", r: world.targetFor(lost), at: null });
    world.deliverAll();
  } else world.isolate(lost, 0);
  const elected = (): number | undefined =>
    world.born().find((i) => i !== lost && world.replicas[i]!.state?.role._tag === "leader");
  if (!spared(() => elected() !== undefined)) return;
  if ((pick & 2) === 0 && !spared(() => world.leaseHolders().some((i) => i !== lost))) return;
  world.steerClient(c, leaderIndex(world));
  world.apply({ t: "retry", c });
  world.deliverRequests();
  // At feature level 3, once the retry is answered, c (a faulty client, the `reuseSeq` action) sends
  // another write under that number: the session that came by state transfer must refuse it
  // (seq-reused), not answer it with the retried write's output. Random reuses seldom reach a
  // leader that executed the number they reuse at that level, and the fewer the more replicas
  // (docs/refinement.md). Where the retry met `session-expired` (pick bit 3) c reuses nothing: a
  // reuse would be refused the same way, counted as one more late copy of a first request.
  if ((world.tuning.featureLevel ?? 1) >= 3 && world.clients[c]!.op === null) {
    world.apply({ t: "reuseSeq", c, op: { kind: "put", key: c } });
    world.deliverRequests();
  }
}

/**
 * The replicas of `group` (a minority of the voters, none the leader) are crashed while the
 * clients but `spared` write, round after round, until the leader's log is truncated past what
 * each of them may know chosen and its snapshot covers slot `from`; then they restart and are
 * caught up, one delivery at a time, until each has executed up to that snapshot
 * (which the log no longer holds for them: they install it by state transfer). With `crash`
 * "midway", the first of them found with a transfer in progress crashes and restarts; with
 * "installing", the first of them crashes as it writes the snapshot the transfer brought (its
 * record written, not yet durable: the world's `crashInSnapshot`, armed as it restarts, when it
 * can have no snapshot of its own to take first) and restarts. True if they got there.
 */
function caughtUpByTransfer(
  world: World,
  leader: number,
  group: readonly number[],
  from: number,
  spared: number,
  crash: "none" | "midway" | "installing",
): boolean {
  // What they may know chosen: no more than the leader's commit index.
  const known = world.replicas[leader]!.state?.learner.commitIndex ?? 0;
  for (const g of group) world.apply({ t: "crash", r: world.targetFor(g), at: null });
  const behind = (): boolean => {
    const l = world.replicas[leader]!.state;
    if (l === null || l.role._tag !== "leader" || (l.learner.snapshot?.slot ?? 0) < from) return false;
    return l.learner.logTruncatedUpTo > known;
  };
  // A client waiting for the service to open its session (feature level 3) is not idle yet.
  const idle = (): boolean => world.clients.every((x, i) => i === spared || (x.op === null && x.waiting === null));
  for (let round = 0; !behind(); round++) {
    if (round >= transferRoundsMax) return false;
    for (let i = 0; i < world.clients.length; i++)
      if (i !== spared && world.clients[i]!.op === null && world.clients[i]!.waiting === null)
        world.apply({ t: "submit", c: i, op: { kind: "put", key: i } });
    if (!untilStepping(world, idle, false, world.tuning.heartbeatIntervalMs, spared)) return false;
  }
  const slot = world.replicas[leader]!.state!.learner.snapshot!.slot;
  for (const g of group) world.apply({ t: "restart", r: world.targetFor(g), clockMs: 0 });
  const caughtUp = (): boolean => group.every((g) => (world.replicas[g]!.state?.learner.executedUpTo ?? 0) >= slot);
  // The chunks a replica took before it crashed are not kept (unless the tuning resumes
  // transfers, `resumeTransfers`): restarted, it starts over.
  let crashing = crash === "midway";
  const installing = crash === "installing" ? group[0] : undefined;
  if (installing !== undefined) world.apply({ t: "crashInSnapshot", r: world.targetFor(installing) });
  const start = world.trueTime;
  while (!caughtUp()) {
    if (world.trueTime - start > phaseMsMax) return false;
    if (!world.deliverOne()) world.advance(10);
    if (installing !== undefined && world.replicas[installing]!.state === null)
      world.apply({ t: "restart", r: world.targetFor(installing), clockMs: 0 });
    const g = crashing ? group.find((i) => world.replicas[i]!.state?.learner.transfer != null) : undefined;
    if (g !== undefined) {
      crashing = false;
      world.apply({ t: "crash", r: world.targetFor(g), at: null });
      world.apply({ t: "restart", r: world.targetFor(g), clockMs: 0 });
    }
  }
  return true;
}

/** Does replica `index` hold the value of key `key` at rest (rule V1)? */
function restsAt(world: World, index: number, key: string): boolean {
  const s = world.replicas[index]!.state;
  const atRest = s?.ctx.storeAtRest ?? null;
  return s !== null && atRest !== null && atRest.resting(s.learner.service.app, key) !== null;
}

/** The `lateRead` prelude (see the module comment). */
function lateRead(world: World, pick: number): void {
  const leader = leaderIndex(world);
  if (leaderState(world) === null || (world.tuning.storeAtRestCharsMin ?? 0) === 0) return;
  // Every fourth operation a client starts writes a long value: client 1 writes k0 until it rests;
  // for the rewrite (pick mod 4 = 3), client 3 then writes k1 until the next slot is no snapshot
  // slot by its number, so that the rewrite is executed before the slow storage answers.
  const settled = (): number | null => {
    const s = world.replicas[leader]!.state;
    if (s === null || s.role._tag !== "leader" || s.role.nextSlot !== s.learner.executedUpTo + 1) return null;
    return s.role.nextSlot;
  };
  const parity = (): boolean => pick % 4 !== 3 || settled()! % world.tuning.snapshotIntervalSlots !== 0;
  const ready = (): boolean => restsAt(world, leader, "k0") && parity();
  for (let i = 0; i < 12 && !ready(); i++) {
    const c = restsAt(world, leader, "k0") ? 2 : 0;
    world.steerClient(c, leader);
    world.apply({ t: "submit", c, op: { kind: "put", key: c === 0 ? 0 : 1 } });
    if (!until(world, () => world.pendingOps() === 0 && settled() !== null)) return;
  }
  if (!ready()) return;
  const { leaseMs, electionTimeoutMsMax } = world.tuning;
  world.slowReads(leader, 2 * leaseMs + electionTimeoutMsMax);
  world.steerClient(1, leader);
  world.apply({ t: "submit", c: 1, op: { kind: "get", key: 0 } });
  world.deliverAll();
  const position = world.targetFor(leader);
  const otherLeads = (): boolean => world.leaseHolders().some((i) => i !== leader);
  const writeThere = (): void => {
    const at = world.leaseHolders().find((i) => i !== leader);
    if (at === undefined) return;
    world.steerClient(2, at);
    world.apply({ t: "submit", c: 2, op: { kind: "put", key: 0 } });
    untilStepping(world, () => world.clients[2]!.op === null, false, 10, 1);
  };
  if ((pick & 4) !== 0 && pick % 4 === 3) {
    world.apply({ t: "reconfigure", kind: "start", r: 0 });
    world.apply({ t: "reconfigure", kind: "add", r: 0 });
  }
  switch (pick % 4) {
    case 0:
      world.apply({ t: "isolate", r: position, others: 0 });
      untilStepping(world, otherLeads, false, 10, 1);
      writeThere();
      world.apply({ t: "heal" });
      break;
    case 1:
      world.apply({ t: "pause", r: position });
      untilStepping(world, otherLeads, false, 10, 1);
      writeThere();
      // It resumes as its storage thread catches up: the read's answer is the first thing it steps.
      world.readsCaughtUp(leader);
      world.apply({ t: "resume", r: position });
      world.advance(0);
      break;
    case 2:
      world.apply({ t: "crash", r: position, at: null });
      world.apply({ t: "restart", r: position, clockMs: 0 });
      until(world, () => world.leaseHolders().length === 1);
      world.steerClient(1, world.leaseHolders()[0] ?? leader);
      world.apply({ t: "retry", c: 1 });
      break;
    case 3:
      // Two rewrites of k0, one slot each: the first forgets the name the read asked by, the
      // second (a snapshot slot, k0 no longer at rest) compacts the disk.
      for (let round = 0; round < 2; round++) {
        world.steerClient(0, leader);
        world.apply({ t: "submit", c: 0, op: { kind: "put", key: 0 } });
        untilStepping(world, () => world.clients[0]!.op === null, false, 10, 1);
      }
      break;
  }
  // Time goes on until the storage thread answered (client 1 not retried meanwhile: its retry
  // would be answered apart from the read that waits), then until the client has its answer.
  const owes = (): boolean => world.replicas[leader]!.state !== null && world.replicas[leader]!.readsOwed.length > 0;
  untilStepping(world, () => !owes(), false, 10, 1);
  untilStepping(world, () => world.clients[1]!.op === null, false, 10);
}

/** The `twoAtRest` prelude (see the module comment). */
function twoAtRest(world: World): void {
  const leader = leaderIndex(world);
  if (leaderState(world) === null || (world.tuning.storeAtRestCharsMin ?? 0) === 0) return;
  const followers = world.born().filter((i) => i !== leader && !world.replicas[i]!.retired);
  const state = () => world.replicas[leader]!.state;
  const settled = (): boolean => {
    const s = state();
    return s !== null && s.role._tag === "leader" && s.role.nextSlot === s.learner.executedUpTo + 1;
  };
  // A client's first operation, and every fourth after it, writes a long value (./clients.ts).
  for (let i = 0; i < 12; i++) {
    const c = !restsAt(world, leader, "k0") ? 0 : !restsAt(world, leader, "k1") ? 1 : -1;
    if (c < 0) break;
    world.steerClient(c, leader);
    world.apply({ t: "submit", c, op: { kind: "put", key: c } });
    if (!until(world, () => world.pendingOps() === 0 && settled())) return;
  }
  if (!restsAt(world, leader, "k0") || !restsAt(world, leader, "k1")) return;
  const { leaseMs, electionTimeoutMsMax } = world.tuning;
  world.slowReads(leader, 2 * leaseMs + electionTimeoutMsMax);
  const pauseFollowers = (pause: boolean): void => {
    for (const f of followers) world.apply({ t: pause ? "pause" : "resume", r: world.targetFor(f) });
  };
  // No time passes from here to the read by lease: the lease the leader holds now serves it.
  pauseFollowers(true);
  for (const [c, op] of [
    [2, { kind: "put", key: 0 }],
    [0, { kind: "append", key: 0 }],
    [1, { kind: "append", key: 1 }],
  ] as const) {
    world.steerClient(c, leader);
    world.apply({ t: "submit", c, op });
    world.deliverAll();
  }
  const first = state()?.learner.executedUpTo ?? 0;
  pauseFollowers(false);
  for (let i = 0; i < 64 && (state()?.learner.executedUpTo ?? 0) === first; i++) world.apply({ t: "deliver", i: 0 });
  pauseFollowers(true);
  world.deliverAll();
  if (world.clients[2]!.op === null && restsAt(world, leader, "k0")) {
    world.steerClient(2, leader);
    world.apply({ t: "submit", c: 2, op: { kind: "get", key: 0 } });
    world.deliverAll();
  }
  pauseFollowers(false);
  // Until the batch is chosen and execution stops at it, asking for k1 (the storage thread still busy).
  const batch = first + 2;
  const stopped = (): boolean => {
    const s = state();
    return s === null || s.learner.executedUpTo >= batch || s.learner.reading.some((ref) => ref.key === "k1");
  };
  untilStepping(world, stopped, false, 10, 1);
  world.readsCaughtUp(leader);
  const owes = (): boolean => world.replicas[leader]!.state !== null && world.replicas[leader]!.readsOwed.length > 0;
  untilStepping(world, () => !owes(), false, 10, 1);
  until(world, () => world.pendingOps() === 0);
}

/** The `revote` prelude (see the module comment). */
function revote(world: World): void {
  const leader = leaderIndex(world);
  if (leaderState(world) === null || (world.tuning.storeAtRestCharsMin ?? 0) === 0) return;
  const f = follower(world, 0);
  const held = new Set<number>();
  const quiet = (done: () => boolean): boolean => {
    const start = world.trueTime;
    while (!done()) {
      if (world.trueTime - start > phaseMsMax) return false;
      if (!world.deliverOneExcept(held)) world.advance(10);
    }
    return true;
  };
  // The others write k1 only: k0 keeps the value of slot s, and so its name.
  const others = world.clients.map((_, i) => i).filter((i) => i !== 0);
  const writes = (rounds: number, done: () => boolean = () => false): boolean => {
    for (let round = 0; round < rounds && !done(); round++) {
      const c = others[round % others.length]!;
      world.steerClient(c, leader);
      world.apply({ t: "submit", c, op: { kind: "put", key: 1 } });
      if (!quiet(() => world.clients[c]!.op === null)) return false;
    }
    return true;
  };
  // Client 0's first operation writes a long value to k0, at slot s: the network copies its Accept
  // to the follower and holds the copy back.
  world.steerClient(0, leader);
  world.apply({ t: "submit", c: 0, op: { kind: "put", key: 0 } });
  world.deliverRequests();
  const accept = world.inFlight.find((m) => m.kind === "message" && m.to === f && m.message._tag === "Accept");
  if (accept?.kind !== "message" || accept.message._tag !== "Accept") return;
  const s = accept.message.slot;
  world.apply({ t: "duplicate", i: world.inFlight.indexOf(accept) });
  held.add(world.inFlight[world.inFlight.length - 1]!.id);
  if (!quiet(() => world.clients[0]!.op === null)) return;
  // Until the follower took a snapshot of slot s or above (its votes through it forgotten, k0
  // still at rest on its first vote record); then the copy arrives and is voted again.
  const snapshotAt = (): number => world.replicas[f]!.state?.learner.snapshot?.slot ?? 0;
  if (!writes(8, () => snapshotAt() >= s) || snapshotAt() < s) return;
  held.clear();
  world.deliverAll();
  // Two more snapshots at the follower, then idle time for its compaction in pieces to end: the
  // snapshot between the two vote records is deleted, both kept (rule V3); then it restarts.
  if (!writes(12)) return;
  for (let i = 0; i < 40; i++) {
    world.advance(world.tuning.heartbeatIntervalMs);
    world.deliverAll();
  }
  world.apply({ t: "crash", r: world.targetFor(f), at: null });
  world.apply({ t: "restart", r: world.targetFor(f), clockMs: 0 });
}

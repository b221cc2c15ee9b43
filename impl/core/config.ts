/**
 * The replica's configuration: the cluster's initial membership, the lease and its clock-drift
 * bound, the election timeouts, snapshots and state transfer, the reconfiguration window, and a
 * limit on everything that could grow (pipeline, batch, pending requests, catch-up, transfer). `Config` is an effect
 * Schema; decoding checks every limit, field by field
 * and across fields, with a message that names the field and the hazard it guards against.
 *
 * Several limits are tied together by the lease rules (docs/impl.md, "Lease rules"). Changing one
 * of them without the others is exactly how lease-based systems serve stale reads; the decoder
 * refuses such combinations rather than trusting the operator. This module is pure data.
 */
import { Either, ParseResult, Schema } from "effect";
import { featureLevelMax } from "../../spec/service.ts";

/** Most members a cluster may have: acknowledgements are counted in a 31-bit mask. */
export const membersMax = 31;
/** Largest replica id. Ids are small positive integers. */
export const replicaIdMax = 1_000_000;
/** Largest accepted clock drift bound: 10% (100,000 ppm). Beyond this a lease buys almost nothing. */
export const clockDriftPpmLimit = 100_000;

function intBetween(field: string, min: number, max: number, why: string) {
  return Schema.Number.pipe(
    Schema.filter((n) =>
      Number.isInteger(n) && n >= min && n <= max
        ? undefined
        : `${field} (${n}) must be an integer in [${min}, ${max}]: ${why}`,
    ),
  );
}

const ReplicaIdField = intBetween("replica id", 1, replicaIdMax, "replica ids are small positive integers");

const Fields = Schema.Struct({
  /**
   * The initial configuration: the voters of slot 1 on. No default. Every replica of a cluster is
   * given the same list for its whole life, including replicas that join later: membership then
   * changes only through the log (reconfiguration), and each replica derives the configuration of
   * every slot from the chosen log (impl/core/configuration.ts).
   */
  members: Schema.Array(ReplicaIdField),
  /** This replica's id; must be one of `members` unless `joining`. No default. */
  self: ReplicaIdField,
  /**
   * True for a replica that joins a running cluster: `self` is not among the initial `members`,
   * and the replica votes only after a reconfiguration adds it as a learner and then promotes it.
   * Default false, so that a mistyped `self` is refused instead of silently never voting.
   */
  joining: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  /**
   * Lease duration D in milliseconds, on the granting acceptor's own clock. Default 300.
   * An acceptor that promises or votes for a ballot refuses every other ballot for `leaseMs`
   * after it received the request. Longer leases delay failover (an election cannot succeed
   * before the grants to the old leader run out); shorter ones need more frequent heartbeats.
   */
  leaseMs: Schema.optionalWith(
    intBetween("leaseMs", 1, 3_600_000, "a lease is a positive duration of at most an hour"),
    {
      default: () => 300,
    },
  ),
  /**
   * Bound rho on the rate error of every replica's clock, in parts per million. Default 1000
   * (0.1%). The leader trusts its lease for only `leaseMs * (1 - rho) / (1 + rho)` of its own
   * clock. Affected by clock drift: if some clock runs faster or slower than this bound, a
   * leader may serve a read after another leader has written, i.e. a stale read. Not safe then.
   */
  clockDriftPpmMax: Schema.optionalWith(
    intBetween(
      "clockDriftPpmMax",
      0,
      clockDriftPpmLimit,
      "a drift bound is a fraction of a second per second, at most 10%",
    ),
    { default: () => 1000 },
  ),
  /**
   * Safety margin subtracted from the leader's lease, in milliseconds. Default 10. Covers the
   * granularity of clock readings and the short time between reading the clock and acting on a
   * read; it does not cover process pauses (the driver reads the clock for every event).
   */
  leaseMarginMs: Schema.optionalWith(intBetween("leaseMarginMs", 0, 3_600_000, "a margin is a non-negative duration"), {
    default: () => 10,
  }),
  /**
   * Shortest election timeout, in milliseconds. Default 400. A follower that hears nothing from
   * a leader for a timeout drawn from [electionTimeoutMsMin, electionTimeoutMsMax] campaigns.
   * Must exceed `leaseMs`: a follower must not campaign while its own grant to the current
   * leader may still be in force, and the election timer, restarted at every grant, is what keeps
   * it from doing so (rule L5).
   */
  electionTimeoutMsMin: Schema.optionalWith(
    intBetween("electionTimeoutMsMin", 1, 3_600_000, "a timeout is a positive duration"),
    {
      default: () => 400,
    },
  ),
  /** Longest election timeout, in milliseconds. Default 600. The spread separates duelling candidates. */
  electionTimeoutMsMax: Schema.optionalWith(
    intBetween("electionTimeoutMsMax", 1, 3_600_000, "a timeout is a positive duration"),
    {
      default: () => 600,
    },
  ),
  /**
   * Interval between a leader's heartbeats, in milliseconds. Default 50. Heartbeats renew the
   * lease and carry the commit index. Must be shorter than `leaseMs`, or every lease would lapse
   * between two renewals; several heartbeats per lease tolerate lost messages.
   */
  heartbeatIntervalMs: Schema.optionalWith(
    intBetween("heartbeatIntervalMs", 1, 3_600_000, "an interval is a positive duration"),
    {
      default: () => 50,
    },
  ),
  /**
   * Most slots a leader has proposed but not yet executed (the phase 2 pipeline). Default 8.
   * Larger pipelines hide more round trips but leave more slots for a new leader to re-propose
   * after a failover, and hold more client requests whose outcome becomes unknown. Smaller ones
   * make concurrent commands wait for a slot and share it: fewer messages and disk writes per
   * command. Client commands use more than one slot at a time only when a batch is full
   * (`batchCommandsMax`, `batchBytesMax`): while a slot awaits its quorum, new commands collect in
   * the next batch (impl/core/leader.ts, `batchReady`). Up to 8 x `batchCommandsMax` commands can
   * be in flight at once.
   */
  pipelineSlotsMax: Schema.optionalWith(
    intBetween("pipelineSlotsMax", 1, 65_536, "a pipeline of 0 slots could never propose"),
    {
      default: () => 8,
    },
  ),
  /**
   * Most client commands in one slot's batch. Default 128. Larger batches amortize a slot's
   * messages and disk writes over more commands, at the price of larger messages.
   */
  batchCommandsMax: Schema.optionalWith(
    intBetween("batchCommandsMax", 1, 65_536, "a batch of 0 commands could carry nothing"),
    {
      default: () => 128,
    },
  ),
  /**
   * Most bytes of client commands in one slot's batch, as estimated by `plainBytes` (the length of
   * their strings). Default 1,048,576 (1 MiB). A command larger than this goes in a slot of its own.
   * Bounds the size of Accept messages (the transport refuses frames above 16 MiB by default, and a
   * string's encoded size can be a few times its length) and the work one slot costs every replica.
   * It also bounds the values one step executes (at least one slot): slots learned chosen together
   * beyond it are executed by the next ticks, so that no step hashes and applies megabytes at once.
   */
  batchBytesMax: Schema.optionalWith(
    intBetween("batchBytesMax", 1, 1 << 26, "a batch must hold some bytes and stay a reasonable message"),
    { default: () => 1_048_576 },
  ),
  /**
   * Adaptive batching: while a slot of client commands awaits its quorum, new commands wait and the
   * next slot carries all of them (up to `batchCommandsMax` and `batchBytesMax`; a full batch is
   * proposed at once), so that a round trip carries whatever arrived during the previous one. With
   * one client nothing waits. Default false in the core, whose scenario stories count a slot per
   * command or two; the runtime's replicas turn it on (impl/runtime/core-adapter.ts): it cut the
   * CPU per write under concurrent clients, the throughput of a CPU-bound replica.
   */
  adaptiveBatching: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  /**
   * CheckQuorum counts the time the leader ran (impl/core/check-quorum.ts): a span in which the
   * leader was not stepped though its heartbeat was due (its process stopped, or waited for a
   * core) does not count toward the election timeout after which it steps down for want of a
   * quorum. Its lease and every grant still count the clock, so this never lengthens a lease nor
   * lets an acceptor help another ballot sooner (proofs/leases.md, "CheckQuorum counts the time the
   * leader ran"); it changes only when a cut-off leader gives up, later by its stalls. When the
   * followers' timers fire during the leader's stall, the resumed leader, its lease lapsed, gives
   * way to their higher ballot at once (rule L6), so an election is no slower than counting the
   * clock (docs/performance.md, "A flood of new connections, and CheckQuorum after the leader's
   * own stall"). Default true. Off, a leader whose loop stalled past an election timeout steps
   * down on its first tick after the stall, before it reads the answers waiting in its sockets.
   */
  checkQuorumCountsRunTime: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  /**
   * A follower whose election came due while it was not running waits for its leader before it
   * campaigns, one heartbeat interval, or its whole election timeout when it ran again more than an
   * election timeout past the deadline (its process was stopped: impl/core/election.ts,
   * `waitAfterStall`): a follower first
   * stepped more than a heartbeat interval past its election deadline, and not stepped since before
   * that deadline, was stalled (its process stopped, or waited for a core), and the silence it
   * measured is its own, not the leader's. The leader, which with `checkQuorumCountsRunTime` does
   * not step down for its own stall, then keeps leading when the whole cluster was stopped and
   * resumed (a virtual machine paused, a SIGSTOP), instead of losing its place to the first
   * follower to tick. Elections only come later, never sooner, so rule L5 holds as before; a leader
   * that really failed is replaced at most one heartbeat interval later after a late timer, one
   * election timeout later after a stop, and only after the follower's own stall. Default false
   * in the core (its scenario stories and committed traces campaign at the deadline); the
   * runtime's replicas turn it on (impl/runtime/core-adapter.ts).
   */
  electionWaitsAfterStall: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  /**
   * A candidate's Prepare resends back off (impl/core/replica.ts, `resendPrepare`): the first one
   * heartbeat interval after the campaign, each next one after twice the wait before, at most
   * `electionTimeoutMsMax` apart; otherwise one every heartbeat interval. Every resend is answered
   * with the whole Promise again, every vote above the candidate's first unexecuted slot: for a
   * lagging candidate facing large accepted values, megabytes that take longer than an election
   * timeout to arrive on a loaded machine, so that the copies flooded the links and each resend
   * restarted the up-to-date acceptor's election timer (every grant does, rule L5), and no leader
   * was elected (impl/core/large-promises.test.ts). Resends only go less often, a liveness matter
   * (proofs/leases.md, "Prepare resends"). Default false in the core (its scenario stories and
   * committed traces resend every heartbeat interval); the runtime's replicas turn it on
   * (impl/runtime/core-adapter.ts).
   */
  prepareResendBackoff: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  /**
   * A Promise omits the votes at the slots its acceptor has executed (impl/core/acceptor.ts,
   * `phase1b`) and reports them chosen, in the field that reports a truncation point
   * (`truncatedUpTo`): a candidate lagging behind large values then gets a Promise of a few bytes
   * rather than every vote above its first unexecuted slot (megabytes, which stalled every event
   * loop of a loaded cluster), fetches the chosen values by catch-up, paced one reply at a time
   * (impl/core/replica.ts, `catchUpToReported`), and is elected once phase 1 covers the first slot
   * it has not executed (`maybeElected`). Safety does not depend on it: a Promise never counts for
   * a slot it does not report (rule T2), and the candidate proposes only above its own executed
   * prefix (proofs/truncation.md, "Chosen slots omitted"). Default false in the core (its stories
   * and committed traces elect with whole Promises); the runtime's replicas turn it on
   * (impl/runtime/core-adapter.ts).
   */
  promiseOmitsChosen: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  /**
   * The feature level this replica, when it leads, raises the log to (spec/service.ts): while the
   * level executed is below it, or it equals it with other session bounds, the leader proposes a
   * `features` value (`sessionsMax`, `sessionOutputBytesMax`) in a slot of its own. Default 1:
   * nothing is proposed. Hazard: a replica of a version that does not know the level cannot execute
   * that slot (one before feature levels cannot even decode it; one that knows a lower level halts
   * there, `unsupportedMessage`): raise it only once every replica runs a version that knows it
   * (docs/operations.md, "Upgrading"). Levels never go down.
   */
  featureLevel: Schema.optionalWith(
    intBetween("featureLevel", 1, featureLevelMax, "a feature level this version executes"),
    { default: () => 1 },
  ),
  /**
   * At feature level 2, the most client sessions the replicated state keeps; a new session beyond it
   * evicts the least recently executed one (spec/service.ts). Default 100,000. Chosen in the log with
   * the level, so every replica evicts alike: a leader with another value proposes it anew.
   */
  sessionsMax: Schema.optionalWith(
    intBetween("sessionsMax", 1, Number.MAX_SAFE_INTEGER, "the session table keeps at least one session"),
    { default: () => 100_000 },
  ),
  /**
   * At feature level 2, the most bytes of saved outputs (spec/service.ts `outputBytes`: a string's
   * code units) the session table keeps in all; beyond it the least recent sessions are evicted.
   * Default 64 MiB. An append's output is the whole value (up to 1 Mi code units): without this
   * bound 100,000 sessions could keep 100 GiB.
   */
  sessionOutputBytesMax: Schema.optionalWith(
    intBetween("sessionOutputBytesMax", 1, Number.MAX_SAFE_INTEGER, "saved outputs need room"),
    { default: () => 64 * 1024 * 1024 },
  ),
  /**
   * Values at rest (impl/core/at-rest.ts): once a slot is executed, the log and the votes keep its
   * value only on disk when this replica's vote record holds it, and a Promise or CatchUpReply that
   * reports it leaves as a `SendStored` effect, which the driver completes from the durable records.
   * Without it the log holds every value since the latest snapshot (up to `snapshotIntervalBytes`
   * plus `logTailBytes`) in memory. Default false, so that a driver that does not read records back
   * never meets a `SendStored`. The simulated world turns it on, and so do the runtime's replicas
   * (impl/runtime/core-adapter.ts), whose storage thread reads the values back in order with its
   * appends (docs/performance.md, "Values at rest").
   */
  valuesAtRest: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  /**
   * The store's values named by the vote that wrote them (rule V1's bookkeeping, proofs/store-at-rest.md):
   * with `valuesAtRest`, a key-value store value of at least this many UTF-16 code units, written by
   * a put or swap whose batch this replica's durable vote record holds, gets a `StoredEntry` naming
   * that record (`LearnerState.origins`), and compaction keeps the records named (`pinnedVotes`).
   * The value itself stays in memory: holding it at rest (rules V4, V5) is not built. 0, the
   * default, names none. Needs the key-value store as the application.
   */
  storeAtRestCharsMin: Schema.optionalWith(
    intBetween("storeAtRestCharsMin", 0, Number.MAX_SAFE_INTEGER, "a length in code units"),
    { default: () => 0 },
  ),
  /**
   * Slots between two divergence checkpoints (digest of state and outputs). Default 256.
   * A divergence is noticed at the first checkpoint after it; a short interval finds it sooner
   * and costs an application digest per checkpoint.
   */
  checkpointIntervalSlots: Schema.optionalWith(
    intBetween(
      "checkpointIntervalSlots",
      1,
      1 << 30,
      "checkpoints are taken at slots that are multiples of this interval",
    ),
    { default: () => 256 },
  ),
  /**
   * Most client requests a leader holds before proposing them; beyond, requests get
   * `unavailable` (busy). Default 10,000. Bounds the leader's memory under overload.
   */
  requestsPendingMax: Schema.optionalWith(
    intBetween("requestsPendingMax", 1, 1 << 24, "a leader must be able to hold one request"),
    {
      default: () => 10_000,
    },
  ),
  /**
   * Most chosen entries in one catch-up reply. Default 256. Bounds message size; a replica far
   * behind catches up in several round trips.
   */
  catchUpSlotsMax: Schema.optionalWith(
    intBetween("catchUpSlotsMax", 1, 65_536, "a catch-up reply must carry at least one entry"),
    {
      default: () => 256,
    },
  ),
  /**
   * Executed slots between two snapshots of the service state. Default 1024. At every slot that
   * is a multiple of it the replica persists a snapshot (application state, session table, output
   * digest, configurations) and then forgets the votes and most of the log below it. Short
   * intervals bound disk and recovery time more tightly and cost a serialization of the whole
   * state per interval; a replica that falls further behind than the log kept (one interval)
   * catches up by state transfer instead of by log entries. The serialization happens inside one
   * step (about 2 MiB and a few hundred milliseconds for 100,000 keys): with a large state, choose
   * an interval that makes snapshots rare, and keep that step well under the election timeout.
   */
  snapshotIntervalSlots: Schema.optionalWith(
    intBetween("snapshotIntervalSlots", 1, 1 << 30, "snapshots are taken at slots that are multiples of this interval"),
    { default: () => 1024 },
  ),
  /**
   * Commands executed since the last snapshot slot that also make a snapshot slot (a batch counts
   * its commands, a session opening its sessions, any other slot one). Default off (2^53 - 1). A
   * slot that carries a batch costs the log, the votes and the store in proportion to its commands,
   * not to the slot: under many writers a slot of some 25 commands, so that a long interval by slots
   * alone, which saves a lone writer's CPU, holds many times a lone writer's log under load. With
   * this bound the interval is the shorter of so many slots and so many commands (the runtime's
   * replicas: 8,192 of each, impl/runtime/core-adapter.ts). A function of the chosen log, counted
   * from the last snapshot slot as `snapshotIntervalBytes` is.
   */
  snapshotIntervalCommands: Schema.optionalWith(
    intBetween(
      "snapshotIntervalCommands",
      1,
      Number.MAX_SAFE_INTEGER,
      "a snapshot interval is a positive number of commands",
    ),
    { default: () => Number.MAX_SAFE_INTEGER },
  ),
  /**
   * Bytes of executed values (commands' estimated size, `plainBytes`) that also make a snapshot
   * slot, counted from the last snapshot slot. Default 128 MiB. The log kept in memory holds the
   * values since the latest snapshot and a tail below it (`logTailBytes`): about one interval, by
   * slots or by these bytes, whichever comes first (1024 values of 1 MiB made a gigabyte). Each snapshot serializes the
   * whole state, inside one step: a state larger than this raises it to the latest snapshot's size,
   * so that snapshots never write more than the values executed between them. Lower bounds memory
   * more tightly but costs stalls: at 32 MiB, bursts of 1 MiB values (a 44 MiB state) had every
   * replica serialize the state at the same slots, and the leader lost its lease more often
   * (docs/performance.md, "Large values under load").
   */
  snapshotIntervalBytes: Schema.optionalWith(
    intBetween(
      "snapshotIntervalBytes",
      1,
      Number.MAX_SAFE_INTEGER,
      "a snapshot interval is a positive number of bytes",
    ),
    { default: () => 128 * 1024 * 1024 },
  ),
  /**
   * Most bytes of values (`plainBytes`) the log keeps at and below the latest snapshot's slot.
   * Default 32 MiB. After a snapshot the log keeps the slots since the snapshot before last, so
   * that a peer lagging less than an interval catches up from the log rather than by state
   * transfer; of those below the new snapshot's slot it keeps only the newest, up to this many
   * bytes (at least one slot). Without it, a log of 1 MiB values held two intervals (256 MiB) in
   * memory; with it, one interval and this tail. A peer further behind takes a state transfer.
   * The default covers what a connected follower can trail by: the leader's outbound queue to it
   * (16 MiB, impl/runtime/transport.ts) and a pipeline of Accepts.
   */
  logTailBytes: Schema.optionalWith(
    intBetween("logTailBytes", 1, Number.MAX_SAFE_INTEGER, "a log tail is a positive number of bytes"),
    { default: () => 32 * 1024 * 1024 },
  ),
  /**
   * Most bytes of snapshot in one state-transfer chunk. Default 65,536. Bounds message size; a
   * transfer of an S-byte snapshot takes S / transferChunkBytesMax round trips and resumes from the
   * last chunk received after a loss.
   */
  transferChunkBytesMax: Schema.optionalWith(
    intBetween("transferChunkBytesMax", 16, 1 << 26, "a chunk must carry some bytes and stay a reasonable message"),
    { default: () => 65_536 },
  ),
  /**
   * alpha, in slots: a configuration chosen at slot i governs slots from i + alpha on (Lamport,
   * Malkhi, Zhou, "Reconfiguring a State Machine"). Default 64. A cluster-wide constant: every
   * replica must use the same value for the cluster's whole life, or replicas would disagree on
   * which configuration decides a slot. It bounds the pipeline (`pipelineSlotsMax` <= alpha): the
   * leader knows the configuration of slot s only once slots up to s - alpha are executed. A
   * larger alpha allows a deeper pipeline; a change takes effect alpha slots later (the leader
   * fills the window with no-ops when idle).
   */
  reconfigAlphaSlots: Schema.optionalWith(
    intBetween("reconfigAlphaSlots", 1, 65_536, "a configuration must govern a later slot than the one that chose it"),
    { default: () => 64 },
  ),
  /**
   * How long a replica whose removal is chosen, and whose successors took over (rule R5), keeps
   * voting without executing anything new before it retires anyway, in milliseconds of its own
   * clock. Default 5000. It retires at once when the removal governs its next slot to execute;
   * until then the slots of the alpha window
   * may still need its vote. But once the others have decided the window without it, nobody sends
   * it those slots, and it would wait for ever. Too short, and a removed replica whose vote the
   * window needs (the others partly down) leaves before it is decided: the change then waits for
   * them to come back.
   */
  retireGraceMs: Schema.optionalWith(
    intBetween("retireGraceMs", 1, 3_600_000, "a grace period is a positive duration of at most an hour"),
    { default: () => 5000 },
  ),
  /**
   * Seed of the replica's pseudo-random generator (election timeouts); mixed with `self`, so
   * replicas with the same seed still draw different timeouts. Default 1.
   */
  seed: Schema.optionalWith(intBetween("seed", 0, 0xffff_ffff, "the seed is an unsigned 32-bit integer"), {
    default: () => 1,
  }),
});

function crossFieldIssues(c: typeof Fields.Type): Schema.FilterIssue[] {
  const issues: Schema.FilterIssue[] = [];
  const say = (field: string, message: string) => issues.push({ path: [field], message });
  if (c.members.length < 1 || c.members.length > membersMax) {
    say("members", `members has ${c.members.length} ids; a cluster has 1 to ${membersMax} members`);
  }
  if (new Set(c.members).size !== c.members.length)
    say("members", `members (${c.members.join(",")}) lists an id twice`);
  if (!c.joining && !c.members.includes(c.self))
    say(
      "self",
      `self (${c.self}) must be one of members (${c.members.join(",")}), or set joining for a replica that joins later`,
    );
  if (c.joining && c.members.includes(c.self))
    say("joining", `joining is for a replica outside the initial members, but self (${c.self}) is one of them`);
  if (c.pipelineSlotsMax > c.reconfigAlphaSlots) {
    say(
      "pipelineSlotsMax",
      `pipelineSlotsMax (${c.pipelineSlotsMax}) must be at most reconfigAlphaSlots (${c.reconfigAlphaSlots}): a leader knows the configuration of a slot only alpha slots ahead of its executed prefix`,
    );
  }
  if (c.electionTimeoutMsMin <= c.leaseMs) {
    say(
      "electionTimeoutMsMin",
      `electionTimeoutMsMin (${c.electionTimeoutMsMin}) must exceed leaseMs (${c.leaseMs}): a follower must not campaign while its grant to the current leader may still be in force`,
    );
  }
  if (c.electionTimeoutMsMax < c.electionTimeoutMsMin) {
    say(
      "electionTimeoutMsMax",
      `electionTimeoutMsMax (${c.electionTimeoutMsMax}) must be at least electionTimeoutMsMin (${c.electionTimeoutMsMin})`,
    );
  }
  if (c.heartbeatIntervalMs >= c.leaseMs) {
    say(
      "heartbeatIntervalMs",
      `heartbeatIntervalMs (${c.heartbeatIntervalMs}) must be shorter than leaseMs (${c.leaseMs}): otherwise the lease lapses between two renewals`,
    );
  }
  if (leaderLeaseMs(c) <= 0) {
    say(
      "leaseMarginMs",
      `leaseMarginMs (${c.leaseMarginMs}) leaves no lease: leaseMs (${c.leaseMs}) shortened by the drift bound (${c.clockDriftPpmMax} ppm) is ${leaseMsAfterDrift(c).toFixed(3)} ms`,
    );
  }
  return issues;
}

/** The configuration Schema: decoding applies the defaults and checks every limit. */
export const Config = Fields.pipe(Schema.filter(crossFieldIssues));

/** A decoded, valid configuration. Build one with {@link parseConfig} or {@link decodeConfig}. */
export type Config = typeof Config.Type;

/** What {@link parseConfig} throws: one line per violated limit, each naming its field. */
export class ConfigError extends Error {
  readonly issues: readonly string[];
  constructor(issues: readonly string[]) {
    super(`invalid replica configuration:\n  ${issues.join("\n  ")}`);
    this.name = "ConfigError";
    this.issues = issues;
  }
}

const decodeEither = Schema.decodeUnknownEither(Config, { errors: "all", onExcessProperty: "error" });

/** Decode and check a configuration; defaults fill the omitted limits. */
export function decodeConfig(input: unknown): Either.Either<Config, ConfigError> {
  return Either.mapLeft(decodeEither(input), (error) => {
    const all = ParseResult.ArrayFormatter.formatErrorSync(error);
    // An omitted limit may be `undefined`; that alternative's own mismatch says nothing useful.
    const useful = all.filter((issue) => !issue.message.startsWith("Expected undefined, actual"));
    const issues = (useful.length > 0 ? useful : all).map((issue) =>
      issue.path.length === 0 || issue.message.startsWith(String(issue.path[0]))
        ? issue.message
        : `${issue.path.join(".")}: ${issue.message}`,
    );
    return new ConfigError(issues);
  });
}

/** Decode and check a configuration, or throw a {@link ConfigError}. */
export function parseConfig(input: unknown): Config {
  const decoded = decodeConfig(input);
  if (Either.isLeft(decoded)) throw decoded.left;
  return decoded.right;
}

type LeaseFields = Pick<Config, "leaseMs" | "clockDriftPpmMax" | "leaseMarginMs">;

/** rho, the drift bound as a fraction. */
export function driftRho(c: Pick<Config, "clockDriftPpmMax">): number {
  return c.clockDriftPpmMax / 1e6;
}

/**
 * `leaseMs * (1 - rho) / (1 + rho)`: how long, on the leader's clock, a grant surely lasts after the request was sent.
 */
export function leaseMsAfterDrift(c: LeaseFields): number {
  const rho = driftRho(c);
  return (c.leaseMs * (1 - rho)) / (1 + rho);
}

/**
 * How long after the send time of its quorum-th most recent grant the leader trusts its lease,
 * on its own clock: `leaseMs * (1 - rho) / (1 + rho) - leaseMarginMs`. See docs/impl.md,
 * rule L2, for why this is never longer than any grant lasts in real time.
 */
export function leaderLeaseMs(c: LeaseFields): number {
  return leaseMsAfterDrift(c) - c.leaseMarginMs;
}

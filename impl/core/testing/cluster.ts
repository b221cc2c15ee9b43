/**
 * A tiny deterministic driver for scenario scripts (in the style of etcd-io/raft's interaction
 * tests): replicas running `step` over the kv application, a FIFO network, one true clock with a
 * per-replica offset, durable records, crashes and restarts. It prints every effect as a line, so
 * that golden files read like a story. The full simulated world (faults as data, refinement
 * checks at every step) is refinement-tests/; this is only what scripts need.
 *
 * Pure TypeScript: no I/O (the test reads and writes the golden files). Not part of the public API.
 */
import { kv, type KvInput, type KvOutput, type KvState } from "../../../spec/kv.ts";
import type { Application } from "../../../spec/state-machine.ts";
import { showBallot } from "../ballot.ts";
import { showChange, showConfiguration, type ConfigChange } from "../configuration.ts";
import { parseConfig, type Config } from "../config.ts";
import { nextBallot } from "../election.ts";
import type { ClientResult, Consistency, ReadEntries, ReplicaId, VoteRef } from "../events.ts";
import type { Message, SnapshotChunkMsg } from "../messages.ts";
import { inMemory, readChunkFromRecords, readFromRecords, resolveStored } from "../at-rest.ts";
import { pinnedSnapshots } from "../transfer.ts";
import { pinnedVotes, readEntryFromRecords } from "../store-at-rest.ts";
import { compactRecords, type DurableRecord } from "../records.ts";
import { fillSnapshotHoles } from "../snapshot.ts";
import { becomeCandidate, makeStep, step, type ReplicaEffect, type ReplicaEvent, type Step } from "../replica.ts";
import { defaultRules, type ReplicaRules } from "../rules.ts";
import { slotMapEntries } from "../slot-map.ts";
import { initialState, type ReplicaState } from "../state.ts";
import { showInput, showMessage, showRecord, showResult, showTime } from "./show.ts";

type KvReplica = ReplicaState<KvState, KvInput, KvOutput>;

interface Node {
  state: KvReplica | null;
  readonly records: DurableRecord<KvInput>[];
  /** The replica's clock reads clockOffsetMs + clockRate * (true time). */
  clockOffsetMs: number;
  clockRate: number;
}

interface InFlight {
  readonly from: ReplicaId;
  readonly to: ReplicaId;
  readonly message: Message<KvInput>;
}

/** Snapshot, truncation, transfer and configurations, once there is any (older scenarios print nothing more). */
function showStorage(s: KvReplica): string {
  const l = s.learner;
  const parts: string[] = [];
  if (l.snapshot !== null)
    parts.push(`snapshot=${l.snapshot.slot} log>${l.logTruncatedUpTo} votes>${s.acceptor.truncatedUpTo}`);
  if (l.transfer !== null) parts.push(`transfer=${l.transfer.slot}:${l.transfer.received}/${l.transfer.totalBytes}`);
  if (l.configs.length > 1 || l.configs[0]!.epoch > 0)
    parts.push(l.configs.map((c) => `[${showConfiguration(c)} from ${c.governsFrom}]`).join(""));
  return parts.length === 0 ? "" : ` ${parts.join(" ")}`;
}

/** The role line printed whenever a replica's role or ballot changes. */
function showRole(s: KvReplica): string {
  if (s.halted !== null) return "halted";
  const r = s.role;
  return r._tag === "follower" ? "follower" : `${r._tag} ${showBallot(r.ballot)}`;
}

/** Where a replica that knows its removal stands (rule R5): waiting for its hand-over, handed over, or retired. */
function showRemoval(s: KvReplica): string {
  const r = s.removal;
  if (r === null) return "";
  return r.retired !== null
    ? " removal=retired"
    : r.handedOver
      ? " removal=handed-over"
      : " removal=awaiting-hand-over";
}

/** Options for a scenario cluster. */
export interface ClusterOptions {
  readonly rules?: ReplicaRules;
  /** Extra config fields for every replica (members and self are set by the cluster). */
  readonly config?: Record<string, unknown>;
  /**
   * Delete superseded records once a snapshot record is durable, as a real driver may
   * (`compactRecords`). Default true: Recover is then exercised on compacted disks.
   */
  readonly compact?: boolean;
  /**
   * The application replica `id` runs from its next (re)start: a test of an upgrade window gives
   * replicas applications of different digest formats (spec/hash.ts). Default: `kv` for every one.
   */
  readonly appOf?: (id: ReplicaId) => Application<KvState, KvInput, KvOutput>;
}

/** A scenario cluster. Every method appends the lines it produced to `lines`. */
export class Cluster {
  readonly nodes = new Map<ReplicaId, Node>();
  readonly inFlight: InFlight[] = [];
  /** Messages taken out of the network by `hold`, to be put back by `release` (a long delay). */
  readonly held: InFlight[] = [];
  readonly cut = new Set<string>();
  /** The initial members: every replica, joining ones included, is configured with them. */
  readonly members: readonly ReplicaId[];
  readonly lines: string[] = [];
  readonly step: Step;
  readonly rules: ReplicaRules;
  now = 0;
  nextRequestId = 1;
  quiet = false;
  /** Every reply, by request id. */
  readonly replies = new Map<number, ClientResult<KvOutput>>();
  /** Every effect each replica produced, in order (for tests that inspect them). */
  readonly effectLog: { readonly replica: ReplicaId; readonly effect: ReplicaEffect<KvInput, KvOutput> }[] = [];
  /**
   * Store values at rest asked for (`ReadEntries`) and not answered yet: with `holdReads`, each
   * waits here until `answerHeld` reads it back (a storage thread that answers late); without it,
   * every read is answered right after the step that asked.
   */
  holdReads = false;
  readonly heldReads: { readonly replica: ReplicaId; readonly read: ReadEntries }[] = [];

  constructor(
    readonly size: number,
    readonly options: ClusterOptions = {},
  ) {
    this.rules = options.rules ?? defaultRules;
    this.step = makeStep(this.rules);
    const members = Array.from({ length: size }, (_, i) => i + 1);
    this.members = members;
    for (const id of members)
      this.nodes.set(id, {
        state: initialState(this.configFor(id), this.options.appOf?.(id) ?? kv),
        records: [],
        clockOffsetMs: 0,
        clockRate: 1,
      });
    for (const id of members) this.boot(id);
  }

  /**
   * `size` replicas, quiet, replica 1 elected: every boot waits one lease before it may campaign
   * (rule L4), then 1 campaigns and every message is delivered.
   */
  static elected(size: number, options: ClusterOptions = {}): Cluster {
    const c = new Cluster(size, options);
    c.quiet = true;
    c.elapse(300);
    c.campaign(1);
    c.stabilize();
    return c;
  }

  /** The configuration of replica `id`: the initial members, `joining` when it is not one of them. */
  private configFor(id: ReplicaId): Config {
    const joining = !this.members.includes(id);
    return parseConfig({
      ...(this.options.config ?? {}),
      members: this.members,
      self: id,
      ...(joining ? { joining } : {}),
    });
  }

  /** Start a fresh replica `id` with an empty disk, outside the initial members (it joins once added). */
  join(id: ReplicaId): void {
    if (this.nodes.has(id)) fail(`replica ${id} exists`);
    this.nodes.set(id, {
      state: initialState(this.configFor(id), this.options.appOf?.(id) ?? kv),
      records: [],
      clockOffsetMs: 0,
      clockRate: 1,
    });
    this.boot(id);
    this.emit(`${id} joined (empty disk, not a member yet)`, true);
  }

  config(id: ReplicaId): Config {
    return this.node(id).state?.ctx.config ?? fail(`replica ${id} is down`);
  }

  node(id: ReplicaId): Node {
    return this.nodes.get(id) ?? fail(`no replica ${id}`);
  }

  state(id: ReplicaId): KvReplica {
    return this.node(id).state ?? fail(`replica ${id} is down`);
  }

  clock(id: ReplicaId): number {
    const node = this.node(id);
    return node.clockOffsetMs + node.clockRate * this.now;
  }

  private emit(line: string, always = false): void {
    if (always || !this.quiet) this.lines.push(line);
  }

  /** Feed one event to replica `id` and carry out its effects. */
  apply(id: ReplicaId, event: ReplicaEvent<KvInput>): void {
    const node = this.node(id);
    const before = node.state ?? fail(`replica ${id} is down`);
    const result = this.step(before, event);
    this.carryOut(id, result.state, result.effects, before);
  }

  private carryOut(
    id: ReplicaId,
    after: KvReplica,
    effects: readonly ReplicaEffect<KvInput, KvOutput>[],
    before: KvReplica | null,
  ): void {
    const node = this.node(id);
    node.state = after;
    const notices: VoteRef[] = [];
    const reads: ReadEntries[] = [];
    for (const effect of effects) {
      this.effectLog.push({ replica: id, effect });
      switch (effect._tag) {
        case "Persist":
          // A snapshot's values at rest, read back from the disk now (rule V5), before it is compacted.
          fillSnapshotHoles(effect.record, readEntryFromRecords(after.ctx.app, node.records));
          node.records.push(effect.record);
          if (effect.notify !== undefined) notices.push(effect.notify);
          this.emit(`${id} persist ${showRecord(effect.record)}`);
          if (effect.record._tag === "snapshot" && this.options.compact !== false) {
            const kept = compactRecords(node.records, pinnedSnapshots(after), pinnedVotes(after.learner.origins));
            node.records.length = 0;
            node.records.push(...kept);
          }
          break;
        case "Send":
          this.inFlight.push({ from: id, to: effect.to, message: effect.message });
          this.emit(`${id}->${effect.to} ${showMessage(effect.message)}`);
          break;
        case "SendStored": {
          // Every record is durable at once here: read the values at rest back from the disk.
          const message = resolveStored(
            effect.message,
            readFromRecords(node.records),
            readChunkFromRecords(node.records),
          );
          this.inFlight.push({ from: id, to: effect.to, message });
          this.emit(`${id}->${effect.to} ${showMessage(message)}`);
          break;
        }
        case "Reply":
          this.replies.set(effect.requestId, effect.result);
          this.emit(`${id} reply #${effect.requestId} ${showResult(effect.result)}`, true);
          break;
        case "Alarm":
          this.emit(`${id} ALARM slot=${effect.slot} replicas=${effect.replicas.join(",")} ${effect.message}`, true);
          break;
        case "ReadEntries":
          reads.push(effect);
          this.emit(`${id} read back ${effect.entries.length} store values (${effect.purpose})`);
          break;
        case "TransferRefused":
          this.emit(
            `${id} refused snapshot ${effect.slot} from ${effect.from} (${effect.check}): ${effect.reason}`,
            true,
          );
          break;
      }
    }
    if (before === null || showRole(before) !== showRole(after)) this.emit(`${id} is ${showRole(after)}`, true);
    // Every record is durable at once here: the leader's own votes are told so right after their step.
    for (const notice of notices)
      if (this.node(id).state !== null) this.apply(id, { _tag: "VoteDurable", now: this.clock(id), ...notice });
    // ... and the store values at rest it asks for are read back at once (rule V4), unless held.
    for (const read of reads) {
      if (this.holdReads) this.heldReads.push({ replica: id, read });
      else this.answerRead(id, read);
    }
  }

  /** Read back the oldest held `ReadEntries` (see `holdReads`) and feed it to its replica. False: none held. */
  answerHeld(): boolean {
    const held = this.heldReads.shift();
    if (held === undefined) return false;
    this.answerRead(held.replica, held.read);
    return true;
  }

  private answerRead(id: ReplicaId, read: ReadEntries): void {
    const state = this.node(id).state;
    if (state === null) return;
    const values = read.entries.map(readEntryFromRecords(state.ctx.app, this.node(id).records));
    this.apply(id, { _tag: "EntriesRead", now: this.clock(id), entries: read.entries, values });
  }

  private boot(id: ReplicaId): void {
    const node = this.node(id);
    const base = node.state ?? fail(`replica ${id} has no state`);
    const result = this.step(base, { _tag: "Recover", now: this.clock(id), records: node.records.slice() });
    node.state = result.state;
  }

  /**
   * Force a campaign before the election timer fires, as etcd-raft's `campaign` does; refused where
   * rule L5 forbids it, and where the replica could not promise its own ballot (a grant it gave to
   * another ballot in force, or its restart wait: the timer, which outlasts both, has not fired).
   */
  campaign(id: ReplicaId): void {
    const s = this.state(id);
    const now = this.clock(id);
    if (
      !this.rules.mayCampaign(this.rules, s, now) ||
      !this.rules.canPromise(this.rules, s.acceptor, nextBallot(s), now)
    ) {
      this.emit(
        `${id} may not campaign now (grant in force until ${showTime(s.acceptor.grantUntil)}, restart wait until ${showTime(s.acceptor.noPromiseUntil)})`,
        true,
      );
      return;
    }
    const effects: ReplicaEffect<KvInput, KvOutput>[] = [];
    const after = becomeCandidate(this.rules, { ...s, now: this.clock(id) }, this.clock(id), effects);
    this.carryOut(id, after, effects, s);
  }

  private linkUp(from: ReplicaId, to: ReplicaId): boolean {
    return !this.cut.has(`${from}->${to}`) && this.node(to).state !== null;
  }

  /** Deliver the messages in flight now (not the ones they cause). Returns how many were delivered. */
  deliverRound(): number {
    const batch = this.inFlight.splice(0, this.inFlight.length);
    for (const m of batch) {
      if (!this.linkUp(m.from, m.to)) {
        this.emit(`dropped ${m.from}->${m.to} ${m.message._tag}`);
        continue;
      }
      this.apply(m.to, { _tag: "Receive", now: this.clock(m.to), from: m.from, message: m.message });
    }
    return batch.length;
  }

  /** Deliver until no message is in flight. */
  stabilize(): void {
    for (let round = 0; this.inFlight.length > 0; round++) {
      if (round > 10_000) fail("stabilize: messages keep flowing");
      this.deliverRound();
    }
  }

  /** Tick every live replica once at the current time. */
  tickAll(): void {
    for (const [id, node] of this.nodes) if (node.state !== null) this.apply(id, { _tag: "Tick", now: this.clock(id) });
  }

  /** Let `ms` pass in steps of `tickMs`: tick every replica, then deliver everything, at each step. */
  advance(ms: number, tickMs: number): void {
    const end = this.now + ms;
    while (this.now < end) {
      this.now = Math.min(end, this.now + tickMs);
      this.tickAll();
      this.stabilize();
    }
  }

  /** Let `ms` pass with no tick and no delivery (every process paused, or nothing happening). */
  elapse(ms: number): void {
    this.now += ms;
  }

  crash(id: ReplicaId): void {
    this.node(id).state = null;
    this.emit(`${id} crashed`, true);
  }

  restart(id: ReplicaId): void {
    const node = this.node(id);
    if (node.state !== null) fail(`replica ${id} is up`);
    node.state = initialState(this.configFor(id), this.options.appOf?.(id) ?? kv);
    this.boot(id);
    const s = this.state(id);
    this.emit(
      `${id} restarted: maxBal=${showBallot(s.acceptor.maxBal)} executed=${s.learner.executedUpTo} noPromiseUntil=${showTime(s.acceptor.noPromiseUntil)}`,
      true,
    );
  }

  /** Submit a client request to replica `id`; returns its request id. */
  request(
    id: ReplicaId,
    input: KvInput,
    consistency: Consistency,
    session?: { clientId: string; seq: number },
  ): number {
    const requestId = this.nextRequestId++;
    this.emit(
      `${id} request #${requestId} ${session === undefined ? "" : `${session.clientId}#${session.seq}:`}${showInput(input)} ${consistency}`,
      true,
    );
    this.apply(id, {
      _tag: "ClientRequest",
      now: this.clock(id),
      requestId,
      clientId: session?.clientId,
      seq: session?.seq,
      input,
      consistency,
    });
    return requestId;
  }

  /** An operator asks replica `id` for a membership change; returns the request id. */
  reconfigure(id: ReplicaId, change: ConfigChange): number {
    const requestId = this.nextRequestId++;
    this.emit(`${id} request #${requestId} reconfigure ${showChange(change)}`, true);
    this.apply(id, { _tag: "Reconfigure", now: this.clock(id), requestId, change });
    return requestId;
  }

  /** A client asks replica `id` to open a session (feature level 3); returns the request id. */
  openSession(id: ReplicaId): number {
    const requestId = this.nextRequestId++;
    this.emit(`${id} request #${requestId} open a session`, true);
    this.apply(id, { _tag: "OpenSession", now: this.clock(id), requestId });
    return requestId;
  }

  /** Take the messages in flight that match out of the network (`from->to` and a message tag; "*" matches any). */
  hold(link: string, tag: string): void {
    const [from, to] = link.split("->");
    const matches = (m: InFlight) =>
      (from === "*" || String(m.from) === from) &&
      (to === "*" || String(m.to) === to) &&
      (tag === "*" || m.message._tag === tag);
    for (let i = 0; i < this.inFlight.length;) {
      const m = this.inFlight[i]!;
      if (!matches(m)) {
        i++;
        continue;
      }
      this.inFlight.splice(i, 1);
      this.held.push(m);
      this.emit(`held ${m.from}->${m.to} ${showMessage(m.message)}`, true);
    }
  }

  /** Change one byte of the first SnapshotChunk in flight on `link` (a corruption the digests must catch). */
  tamper(link: string): void {
    const [from, to] = link.split("->");
    const i = this.inFlight.findIndex(
      (m) => String(m.from) === from && String(m.to) === to && m.message._tag === "SnapshotChunk",
    );
    const m = this.inFlight[i];
    if (m === undefined || m.message._tag !== "SnapshotChunk") fail(`no SnapshotChunk in flight on ${link}`);
    // The last digit of the chunk: inside the application's data, so the JSON stays well-formed
    // and only the digests can tell.
    const data = m.message.data;
    let position = data.length - 1;
    while (position > 0 && !/[0-9]/.test(data[position]!)) position--;
    const digit = /[0-9]/.test(data[position]!) ? String((Number(data[position]) + 1) % 10) : "x";
    this.inFlight[i] = {
      from: m.from,
      to: m.to,
      message: { ...m.message, data: data.slice(0, position) + digit + data.slice(position + 1) },
    };
    this.emit(`tampered ${m.from}->${m.to} SnapshotChunk bytes=${m.message.offset + position}`, true);
  }

  /** Put every held message back into the network, to be delivered next. */
  release(): void {
    for (const m of this.held.splice(0)) {
      this.inFlight.push(m);
      this.emit(`released ${m.from}->${m.to} ${m.message._tag}`, true);
    }
  }

  /** The live replicas that hold a lease now: each would answer a read by lease (rule L3), by its own clock. */
  leaseHolders(): ReplicaId[] {
    const holders: ReplicaId[] = [];
    for (const [id, node] of this.nodes) {
      const s = node.state;
      if (s !== null && this.rules.canServeLeaseRead(this.rules, s, this.clock(id))) holders.push(id);
    }
    return holders;
  }

  /** The records on replica `id`'s disk, one line each. */
  disk(id: ReplicaId): void {
    for (const r of this.node(id).records) this.emit(`${id} disk ${showRecord(r)}`, true);
  }

  /** A status line per replica. */
  status(ids?: readonly ReplicaId[]): void {
    for (const id of ids ?? [...this.nodes.keys()]) {
      const node = this.node(id);
      if (node.state === null) {
        this.emit(`${id}: down`, true);
        continue;
      }
      const s = node.state;
      const now = this.clock(id);
      const grant =
        now < s.acceptor.grantUntil
          ? ` grant=${showBallot(s.acceptor.grantTo)}until${showTime(s.acceptor.grantUntil)}`
          : "";
      const lease =
        s.role._tag === "leader"
          ? ` lease=${now < s.role.leaseUntil ? "until" : "expired@"}${showTime(s.role.leaseUntil)}`
          : "";
      this.emit(
        `${id}: ${showRole(s)} maxBal=${showBallot(s.acceptor.maxBal)}${grant}${lease} commit=${s.learner.commitIndex} executed=${s.learner.executedUpTo} leader=${s.learner.leaderHint ?? "none"}${showRemoval(s)}${showStorage(s)}`,
        true,
      );
    }
  }
}

function fail(message: string): never {
  throw new Error(message);
}

/**
 * Three replicas, replica 1 leading, nine writes with a snapshot every 4 slots (so snapshots of
 * slots 4 and 8) and disks not compacted: the records of a replica that snapshotted twice.
 */
export function snapshottingCluster(): Cluster {
  const c = Cluster.elected(3, { config: { snapshotIntervalSlots: 4 }, compact: false });
  for (let i = 1; i <= 9; i++) {
    c.request(1, { _tag: "put", key: `k${i}`, value: String(i) }, "linearizable", { clientId: "c", seq: i });
    c.stabilize();
  }
  c.advance(50, 10);
  return c;
}

/**
 * Three replicas with values at rest and `config` besides, a snapshot every 2 slots and disks not
 * compacted: replica 1 leads, client "c" puts `big` under "big", then `more` short values under
 * k1, k2, ..., each write stabilized. The starting point of the tests of the store's values at rest.
 */
export function bigThenShortWrites(config: Record<string, unknown>, big: string, more: number): Cluster {
  const c = new Cluster(3, { config: { valuesAtRest: true, snapshotIntervalSlots: 2, ...config }, compact: false });
  c.quiet = true;
  c.elapse(300);
  c.campaign(1);
  c.stabilize();
  c.request(1, { _tag: "put", key: "big", value: big }, "linearizable", { clientId: "c", seq: 1 });
  c.stabilize();
  for (let i = 1; i <= more; i++) {
    c.request(1, { _tag: "put", key: `k${i}`, value: `v${i}` }, "linearizable", { clientId: "c", seq: i + 1 });
    c.stabilize();
  }
  return c;
}

/** The configuration of `transferEnds`' clusters. */
export const transferConfig = { snapshotIntervalSlots: 8, transferChunkBytesMax: 1 << 20 } as const;

/**
 * The two ends of a state transfer: the snapshot replica 1 of a cluster took after twelve writes
 * (the value of write i from `valueOf`; a snapshot every 8 slots, chunks of up to 1 MiB), and
 * replica 2 of another cluster, elected with the same configuration, far behind it, with its clock.
 */
export function transferEnds(valueOf: (i: number) => string = (i) => `v${"x".repeat(i * 9)}`): {
  readonly snapshot: NonNullable<KvReplica["learner"]["snapshot"]>;
  readonly follower: KvReplica;
  readonly now: number;
} {
  const config = transferConfig;
  const ahead = Cluster.elected(3, { config });
  for (let i = 0; i < 12; i++) {
    ahead.request(1, { _tag: "put", key: `k${i}`, value: valueOf(i) }, "linearizable");
    ahead.stabilize();
  }
  const behind = Cluster.elected(3, { config });
  return { snapshot: ahead.state(1).learner.snapshot!, follower: behind.state(2), now: behind.clock(2) };
}

/**
 * The chunk of `bytes` (claimed to be the snapshot `claim` names) from `offset`, of at most `size`
 * characters (all the rest by default): what a state transfer's sender puts on the wire.
 */
export function snapshotChunk(
  claim: { readonly slot: number; readonly digest: string; readonly contentDigest: string },
  bytes: string,
  offset = 0,
  size = bytes.length - offset,
): SnapshotChunkMsg {
  return {
    _tag: "SnapshotChunk",
    slot: claim.slot,
    digest: claim.digest,
    contentDigest: claim.contentDigest,
    totalBytes: bytes.length,
    offset,
    data: bytes.slice(offset, offset + size),
  };
}

/**
 * Replica 3 misses five writes of about 130 bytes each (replica 1 leading), restarts and learns
 * all five chosen slots from one CatchUpReply, under the given batchBytesMax: the follower after
 * that step (which executes at most batchBytesMax of values), its clock, and the leader.
 */
export function followerLearningAtOnce(batchBytesMax: number): {
  readonly leader: KvReplica;
  readonly follower: KvReplica;
  readonly now: number;
  readonly slots: number;
} {
  const c = new Cluster(3, { config: { batchBytesMax } });
  c.quiet = true;
  c.crash(3);
  c.elapse(300);
  c.campaign(1);
  c.stabilize();
  for (const key of ["a", "b", "c", "d", "e"]) {
    c.request(1, { _tag: "put", key, value: key.repeat(120) }, "linearizable");
    c.stabilize();
  }
  const leader = c.state(1);
  const entries = slotMapEntries(leader.learner.log)
    .filter(([slot]) => slot <= leader.learner.executedUpTo)
    .map(([slot, value]) => ({ slot, value: inMemory(value, "catch-up entries") }));
  c.restart(3);
  const now = c.clock(3);
  const follower = step(c.state(3), {
    _tag: "Receive",
    now,
    from: 1,
    message: { _tag: "CatchUpReply", entries },
  }).state;
  return { leader, follower, now, slots: entries.length };
}

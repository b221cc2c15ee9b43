/**
 * Randomized runs of a small cluster with faults (reordering, loss, duplication, partitions,
 * crashes with restarts, clock offsets and rates within the drift bound), checking after every
 * event: one value per slot across replicas (Consistency), at most one replica trusting a lease
 * at any instant (the lease spec), every client request executed at most once, every
 * linearizable read reflecting every write acknowledged before it was issued, and no divergence.
 * Then the network heals and the cluster must make progress (liveness).
 *
 * A smoke test of impl/core on its own; the simulated world with refinement checks at every step
 * is refinement-tests/. Pure: the seed alone determines the run.
 */
import type { KvInput } from "../../../spec/kv.ts";
import { kv, kvGet } from "../../../spec/kv.ts";
import { replicasOf } from "../configuration.ts";
import { mulberry32 } from "../election.ts";
import { valuesEqual, type Value } from "../messages.ts";
import { isStored, readFromRecords } from "../at-rest.ts";
import type { DurableRecord, VoteRecord } from "../records.ts";
import { defaultRules, type ReplicaRules } from "../rules.ts";
import { slotMapForEach } from "../slot-map.ts";
import { Cluster } from "./cluster.ts";

interface Pending {
  readonly kind: "append" | "read";
  readonly client: string;
  readonly seq: number;
  /** For reads: the seqs of `client` acknowledged before the read was issued. */
  readonly ackedBefore: readonly number[];
}

class Random {
  constructor(private state: number) {}
  next(): number {
    const r = mulberry32(this.state);
    this.state = r.prng;
    return r.value / 2 ** 32;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
}

/** What a run did: to check that runs reach the states that matter (leader changes, lease reads). */
export interface RunStats {
  ballotsLed: number;
  writesAcked: number;
  readsChecked: number;
  crashes: number;
  partitions: number;
  /** Snapshot records persisted (taken or installed) and snapshots installed by state transfer. */
  snapshots?: number;
  transfersInstalled?: number;
  chunksSent?: number;
  /** Membership changes applied (answered `reconfigured`). */
  reconfigurations?: number;
}

/** Options of a randomized run beyond the seed. */
export interface SimulateOptions {
  /** Config fields for every replica, over the run's defaults. */
  readonly config?: Record<string, unknown>;
  /** Issue membership changes (add and join fresh replicas, promote, remove, replace) at leaders. */
  readonly reconfigure?: boolean;
}

/** Run one randomized history; returns a description of the first violation, or undefined. */
export function simulate(
  seed: number,
  steps: number,
  rules: ReplicaRules = defaultRules,
  size = 3,
  stats?: RunStats,
  options: SimulateOptions = {},
): string | undefined {
  const rnd = new Random(seed >>> 0);
  const config = {
    checkpointIntervalSlots: 4,
    pipelineSlotsMax: 4,
    batchCommandsMax: 3,
    catchUpSlotsMax: 5,
    ...options.config,
  };
  const c = new Cluster(size, { config, rules });
  c.quiet = true;
  const ids = [...c.nodes.keys()];
  const changeRequests = new Set<number>();
  const rho = 0.001;
  for (const id of ids) {
    const node = c.node(id);
    node.clockOffsetMs = rnd.int(1000);
    node.clockRate = 1 - rho + 2 * rho * rnd.next();
  }
  // Clocks must not start below the Recover reading taken at true time 0 with offset 0.
  for (const id of ids) c.apply(id, { _tag: "Recover", now: c.clock(id), records: c.node(id).records.slice() });
  const clients = ["a", "b", "c"];
  const reorderWindow = 6;
  const nextSeq = new Map(clients.map((x) => [x, 1]));
  const acked = new Map(clients.map((x) => [x, [] as number[]]));
  const pending = new Map<number, Pending>();
  const chosen = new Map<number, Value<KvInput>>();
  let checkedReplies = 0;
  const ledBallots = new Set<string>();
  const replyIds = () => [...c.replies.keys()];

  const check = (): string | undefined => {
    // Consistency: every replica's log (and every durable chosen record) agrees slot by slot.
    for (const [id, node] of c.nodes) {
      for (const r of chosenValues(node.records)) {
        if (r.value === undefined)
          return `replica ${id}'s chosen record at slot ${r.slot} names a vote it has not recorded`;
        const known = chosen.get(r.slot);
        if (known === undefined) chosen.set(r.slot, r.value);
        else if (!valuesEqual(known, r.value))
          return `Consistency: replica ${id} learned a different value at slot ${r.slot}`;
      }
      if (node.state === null) continue;
      let bad: string | undefined;
      const read = readFromRecords(node.records);
      slotMapForEach(node.state.learner.log, 0, Number.MAX_SAFE_INTEGER, (slot, held) => {
        // A value at rest is checked as its vote record holds it (which must be on the disk).
        const value = isStored(held) ? read(held) : held;
        const known = chosen.get(slot);
        if (known === undefined) chosen.set(slot, value);
        else if (!valuesEqual(known, value)) bad = `Consistency: replica ${id}'s log differs at slot ${slot}`;
        return bad === undefined;
      });
      if (bad !== undefined) return bad;
      if (node.state.halted !== null) return `replica ${id} halted: ${node.state.halted.message}`;
    }
    // Lease: at most one replica trusts a lease now (each judged by its own clock).
    const holders = ids.filter((id) => {
      const s = c.node(id).state;
      return s !== null && s.role._tag === "leader" && c.clock(id) < s.role.leaseUntil;
    });
    for (const id of ids) {
      const role = c.node(id).state?.role;
      const key = role?._tag === "leader" ? `${role.ballot.round}.${role.ballot.replica}` : undefined;
      if (key === undefined || ledBallots.has(key)) continue;
      ledBallots.add(key);
      if (stats !== undefined) stats.ballotsLed++;
    }
    if (holders.length > 1) return `Lease: replicas ${holders.join(" and ")} both trust a lease at true time ${c.now}`;
    // Exactly-once: no replica executed a client's append twice.
    for (const [id, node] of c.nodes) {
      if (node.state === null) continue;
      for (const client of clients) {
        const value = kvGet(node.state.learner.service.app, client) ?? "";
        const seqs = value
          .split(";")
          .filter((x) => x !== "")
          .map(Number);
        if (new Set(seqs).size !== seqs.length)
          return `exactly-once: replica ${id} executed a request of ${client} twice: ${value}`;
      }
    }
    // Replies: appends acknowledged; reads reflect every write acknowledged before they were issued.
    const ids2 = replyIds();
    for (; checkedReplies < ids2.length; checkedReplies++) {
      const requestId = ids2[checkedReplies]!;
      const result = c.replies.get(requestId)!;
      const p = pending.get(requestId);
      if (p === undefined || result._tag !== "ok") continue;
      if (p.kind === "append") {
        acked.get(p.client)!.push(p.seq);
        if (stats !== undefined) stats.writesAcked++;
      } else {
        if (stats !== undefined) stats.readsChecked++;
        const out = result.output;
        const value = out._tag === "value" ? (out.value ?? "") : "";
        const seen = new Set(
          value
            .split(";")
            .filter((x) => x !== "")
            .map(Number),
        );
        for (const seq of p.ackedBefore) {
          if (!seen.has(seq))
            return `linearizable read #${requestId} of ${p.client} missed write ${seq} acknowledged before it: ${value}`;
        }
      }
    }
    return undefined;
  };

  const up = () => ids.filter((id) => c.node(id).state !== null);
  /** A membership change at a replica that believes it leads; a fresh replica joins for `add`. */
  const reconfigure = (): void => {
    const leaders = up().filter((id) => c.node(id).state?.role._tag === "leader");
    if (leaders.length === 0) return;
    const at = rnd.pick(leaders);
    const configs = c.state(at).learner.configs;
    const latest = configs[configs.length - 1]!;
    const roll = rnd.next();
    if (roll < 0.3 && ids.length < size + 3) {
      const fresh = Math.max(...ids) + 1;
      c.join(fresh);
      ids.push(fresh);
      changeRequests.add(c.reconfigure(at, { op: "add", replica: fresh }));
    } else if (roll < 0.55 && latest.learners.length > 0) {
      changeRequests.add(c.reconfigure(at, { op: "promote", replica: rnd.pick(latest.learners) }));
    } else if (roll < 0.8 && latest.voters.length > 2) {
      changeRequests.add(c.reconfigure(at, { op: "remove", replica: rnd.pick(latest.voters) }));
    } else if (latest.learners.length > 0) {
      changeRequests.add(
        c.reconfigure(at, { op: "replace", remove: rnd.pick(latest.voters), add: rnd.pick(latest.learners) }),
      );
    }
  };
  /** A client's target: usually a replica that believes it leads (clients follow redirects). */
  const target = (): number | undefined => {
    const live = up();
    const leaders = live.filter((id) => c.node(id).state?.role._tag === "leader");
    if (leaders.length > 0 && rnd.next() < 0.8) return rnd.pick(leaders);
    return live.length === 0 ? undefined : rnd.pick(live);
  };
  for (let step = 0; step < steps; step++) {
    const roll = rnd.next();
    if (roll < 0.45 && c.inFlight.length > 0) {
      // Reordering within a window of the oldest messages: delays stay bounded, as on a real
      // network where a message is late by milliseconds, not by election timeouts.
      const [m] = c.inFlight.splice(rnd.int(Math.min(reorderWindow, c.inFlight.length)), 1);
      if (m !== undefined && !c.cut.has(`${m.from}->${m.to}`) && c.node(m.to).state !== null) {
        c.apply(m.to, { _tag: "Receive", now: c.clock(m.to), from: m.from, message: m.message });
      }
    } else if (roll < 0.48 && c.inFlight.length > 0) {
      c.inFlight.splice(rnd.int(c.inFlight.length), 1);
    } else if (roll < 0.5 && c.inFlight.length > 0) {
      c.inFlight.push(c.inFlight[rnd.int(c.inFlight.length)]!);
    } else if (roll < 0.65) {
      // Time passes only once the network has caught up a little (bounded message delay).
      if (c.inFlight.length > 3 * reorderWindow) continue;
      c.now += 1 + rnd.int(60);
      for (const id of up()) if (rnd.next() < 0.8) c.apply(id, { _tag: "Tick", now: c.clock(id) });
    } else if (roll < 0.8) {
      const to = target();
      if (to === undefined) continue;
      const client = rnd.pick(clients);
      const retry = rnd.next() < 0.2 && nextSeq.get(client)! > 1;
      const seq = retry ? nextSeq.get(client)! - 1 : nextSeq.get(client)!;
      if (!retry) nextSeq.set(client, seq + 1);
      const id = c.request(to, { _tag: "append", key: client, value: `${seq};` }, "linearizable", {
        clientId: client,
        seq,
      });
      pending.set(id, { kind: "append", client, seq, ackedBefore: [] });
    } else if (roll < 0.88) {
      const to = target();
      if (to === undefined) continue;
      const client = rnd.pick(clients);
      const id = c.request(to, { _tag: "get", key: client }, rnd.next() < 0.8 ? "linearizable" : "stale");
      const lin = c.lines[c.lines.length - 1]?.endsWith("linearizable") ?? false;
      if (lin) pending.set(id, { kind: "read", client, seq: 0, ackedBefore: acked.get(client)!.slice() });
    } else if (roll < 0.89) {
      const live = up();
      if (live.length > 0) c.crash(rnd.pick(live));
      if (stats !== undefined) stats.crashes++;
    } else if (roll < 0.92) {
      const down = ids.filter((id) => c.node(id).state === null);
      if (down.length > 0) c.restart(rnd.pick(down));
    } else if (roll < 0.935) {
      // Cut one replica off, or (sometimes) only one direction of one link.
      const id = rnd.pick(ids);
      const other = rnd.pick(ids.filter((x) => x !== id));
      if (rnd.next() < 0.3) c.cut.add(`${id}->${other}`);
      else {
        for (const x of ids) {
          if (x === id) continue;
          c.cut.add(`${id}->${x}`);
          c.cut.add(`${x}->${id}`);
        }
      }
      if (stats !== undefined) stats.partitions++;
    } else if (roll < 0.955) {
      c.cut.clear();
    } else if (roll < 0.965 && options.reconfigure === true) {
      reconfigure();
    }
    c.lines.length = 0;
    const bad = check();
    if (bad !== undefined) return `seed ${seed}, step ${step}: ${bad}`;
  }

  if (stats !== undefined) {
    for (const id of changeRequests)
      if (c.replies.get(id)?._tag === "reconfigured") stats.reconfigurations = (stats.reconfigurations ?? 0) + 1;
    for (const { effect } of c.effectLog) {
      if (effect._tag === "Send" && effect.message._tag === "SnapshotChunk")
        stats.chunksSent = (stats.chunksSent ?? 0) + 1;
      if (effect._tag !== "Persist" || effect.record._tag !== "snapshot") continue;
      stats.snapshots = (stats.snapshots ?? 0) + 1;
      if (effect.record.logTruncatedUpTo === effect.record.slot)
        stats.transfersInstalled = (stats.transfersInstalled ?? 0) + 1;
    }
  }

  // Liveness: heal, restart everyone, let time pass with a reliable network; a write must commit.
  c.cut.clear();
  for (const id of ids) if (c.node(id).state === null) c.restart(id);
  c.advance(3000, 10);
  const leader = ids.find((id) => c.node(id).state?.role._tag === "leader");
  if (leader === undefined) return `seed ${seed}: no leader 3 s after healing`;
  const id = c.request(leader, { _tag: "append", key: "z", value: "1;" }, "linearizable", { clientId: "z", seq: 1 });
  c.advance(200, 10);
  const reply = c.replies.get(id);
  if (reply?._tag !== "ok")
    return `seed ${seed}: a write at leader ${leader} was not answered ok after healing (${JSON.stringify(reply)})`;
  // Convergence: every replica of the leader's configurations reaches the same state.
  c.advance(1000, 10);
  const ls = c.state(leader);
  for (const r of replicasOf(ls.learner.configs, leader)) {
    const s = c.node(r).state;
    if (s === null) return `seed ${seed}: member ${r} is down after healing`;
    if (s.learner.executedUpTo !== ls.learner.executedUpTo)
      return `seed ${seed}: member ${r} executed up to ${s.learner.executedUpTo}, the leader ${ls.learner.executedUpTo}`;
    if (kvDigest(s) !== kvDigest(ls)) return `seed ${seed}: member ${r} has another state than the leader`;
  }
  c.lines.length = 0;
  return check();
}

function kvDigest(s: {
  readonly learner: { readonly service: { readonly app: Parameters<typeof kv.digest>[0] } };
}): string {
  return kv.digest(s.learner.service.app);
}

/**
 * Each chosen record of `records` (in order) with its value: a reference resolved to the last vote
 * record at its slot before it, or undefined when that vote is not in the record's ballot (or
 * there is none: a log that `Recover` refuses). For checks that read a store without recovering it.
 */
function chosenValues<I>(
  records: readonly DurableRecord<I>[],
): { readonly slot: number; readonly value: Value<I> | undefined }[] {
  const lastVote = new Map<number, VoteRecord<I>>();
  const out: { readonly slot: number; readonly value: Value<I> | undefined }[] = [];
  // As Recover reads them: a chosen record at or below a snapshot's log truncation before it is
  // superseded (written last in the step that took the snapshot, it may follow it) and not read.
  let truncatedUpTo = 0;
  for (const r of records) {
    if (r._tag === "vote") lastVote.set(r.slot, r);
    if (r._tag === "snapshot") truncatedUpTo = Math.max(truncatedUpTo, r.logTruncatedUpTo);
    if (r._tag !== "chosen" || r.slot <= truncatedUpTo) continue;
    if ("value" in r) {
      out.push({ slot: r.slot, value: r.value });
      continue;
    }
    const vote = lastVote.get(r.slot);
    out.push({
      slot: r.slot,
      value: vote !== undefined && defaultRules.compareBallots(vote.ballot, r.ballot) === 0 ? vote.value : undefined,
    });
  }
  return out;
}

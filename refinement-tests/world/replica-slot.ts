/**
 * One replica of the simulated world as the world keeps it: its state (null while down), its
 * disk (durable records and the unflushed buffer), its own clock (a reading and a rate, changed by
 * drift), whether it is paused, armed to crash or retired, and the addresses it knows.
 */
import type { KvInput, KvOutput, KvState } from "../../spec/kv.ts";
import type { Config, DurableRecord } from "../../impl/core/testing/index.ts";
import type { ReplicaView } from "../../proofs/world-view.ts";
import type { KvReplicaState } from "./world.ts";

interface Clock {
  base: number;
  rate: number;
  since: number;
}

export class ReplicaSlot implements ReplicaView<KvState, KvInput, KvOutput> {
  state: KvReplicaState | null = null;
  durable: DurableRecord<KvInput>[] = [];
  unflushed: DurableRecord<KvInput>[] = [];
  paused = false;
  crashAt: number | null = null;
  /** Crash right after the next snapshot Persist, before it is flushed (a crash during a snapshot). */
  crashAtSnapshot = false;
  /** False for a spare that was never started. */
  born = false;
  /** True once it retired (rule R5): stopped for good, never started again (the runtime's REMOVED marker). */
  retired = false;
  /** The replicas whose addresses it was started with (its --peers), itself included; the same at every restart. */
  startList: ReadonlySet<number> = new Set();
  /** The replicas it learned the address of because they dialled it, in this life (a restart forgets them). */
  readonly learned = new Set<number>();
  readonly clock: Clock;
  constructor(
    readonly id: number,
    readonly index: number,
    readonly config: Config,
    base: number,
  ) {
    this.clock = { base, rate: 1, since: 0 };
  }
  localAt(t: number): number {
    return this.clock.base + this.clock.rate * (t - this.clock.since);
  }
  /** An independent copy (states and records are immutable values, shared). */
  copy(): ReplicaSlot {
    const r = new ReplicaSlot(this.id, this.index, this.config, this.clock.base);
    r.state = this.state;
    r.durable = this.durable; // never written in place: a flush makes a new array
    r.unflushed = this.unflushed.length === 0 ? [] : this.unflushed.slice();
    r.paused = this.paused;
    r.crashAt = this.crashAt;
    r.crashAtSnapshot = this.crashAtSnapshot;
    r.born = this.born;
    r.retired = this.retired;
    r.startList = this.startList; // never written in place: a start makes a new set
    for (const id of this.learned) r.learned.add(id);
    r.clock.rate = this.clock.rate;
    r.clock.since = this.clock.since;
    return r;
  }
  trueAt(reading: number): number {
    return this.clock.since + (reading - this.clock.base) / this.clock.rate;
  }
}

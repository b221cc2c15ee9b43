/**
 * Records steps of a system of impl/core replicas, as the checkers of proofs/ see them
 * (proofs/world-view.ts: `SystemView` and `WorldStep`), into a trace view: the step's effects,
 * the messages it sent and received, each replica's shown fields (replica-fields.ts), and the
 * time axis (each replica's clock, the lease it holds (rule L3), the grants it gave, its
 * restart wait, when it was down, paused or cut off). Both the simulated world and a real run's
 * replayed traces produce such steps; the adapters (world.ts, nemesis.ts) say how messages pair.
 */
import type { KvInput, KvOutput, KvState } from "../../spec/kv.ts";
import { isBallotZero, showBallot, type DurableRecord, type Message } from "../../impl/core/testing/index.ts";
import { showMessage, showRecord, showResult } from "../../impl/core/testing/show.ts";
import type { SystemView, WorldStep } from "../../proofs/world-view.ts";
import type { ViewBuilder } from "./builder.ts";
import type { IntervalKind, StepKind } from "./format.ts";
import { fieldsOf, replicaFields, sessionsOf, type FieldDetail } from "./replica-fields.ts";

export type KvWorldStep = WorldStep<KvState, KvInput, KvOutput>;
type KvView = SystemView<KvState, KvInput, KvOutput>;

interface Open {
  from: number;
  until: number;
  label: string;
}

/** Intervals of one kind per process, joined when one continues the previous one. */
class Lane {
  private readonly open = new Map<number, Open>();
  private readonly last = new Map<number, { from: number; to: number; label: string }>();
  constructor(
    private readonly builder: ViewBuilder,
    readonly kind: IntervalKind,
    private readonly flushed: { process: number; from: number; to: number; label: string }[],
  ) {}

  /** The belief held since the last call ends at `t` at the latest; a new one (if any) starts at `t`. */
  update(process: number, t: number, next: { until: number; label: string } | null): void {
    this.close(process, t);
    if (next !== null && next.until > t) this.open.set(process, { from: t, until: next.until, label: next.label });
  }

  close(process: number, t: number): void {
    const o = this.open.get(process);
    if (o === undefined) return;
    this.open.delete(process);
    this.add(process, o.from, Math.min(o.until, t), o.label);
  }

  /** Close every open interval at its own end, or at `end` if it has none (the trace is over). */
  finish(end: number): void {
    for (const [process, o] of this.open)
      this.add(process, o.from, Number.isFinite(o.until) ? o.until : Math.max(end, o.from), o.label);
    this.open.clear();
    for (const [process, i] of this.last) this.emit(process, i);
    this.last.clear();
  }

  private add(process: number, from: number, to: number, label: string): void {
    if (to <= from) return;
    const prev = this.last.get(process);
    if (prev !== undefined && prev.label === label && from <= prev.to) {
      prev.to = Math.max(prev.to, to);
      return;
    }
    if (prev !== undefined) this.emit(process, prev);
    this.last.set(process, { from, to, label });
  }

  private emit(process: number, i: { from: number; to: number; label: string }): void {
    this.flushed.push({ process, ...i });
    this.builder.interval(process, this.kind, i.from, i.to, i.label);
  }
}

/** Per replica: the last clock segment recorded. */
interface ClockSegment {
  t: number;
  reading: number;
  rate: number;
}

/** How the adapter pairs the messages of a step (by any key: the message object, a wire id). */
export interface StepKeys {
  /** One key per Send in `carried`, in order (undefined: unpaired). */
  readonly sends?: readonly unknown[];
  /** The key of the message a Receive step received. */
  readonly received?: unknown;
}

export class StepRecorder {
  /** Process index per replica index of the view. */
  readonly replicaProcess: number[];
  private readonly waiting = new Map<unknown, number[]>();
  private readonly lastReceived = new Map<unknown, number>();
  private readonly leases: Lane;
  private readonly grants: Lane;
  private readonly waits: Lane;
  private readonly down: Lane;
  private readonly paused: Lane;
  private readonly cut: Lane;
  private readonly clocks: (ClockSegment | null)[];
  /** Intervals as recorded (for tests and for the violation's related steps). */
  readonly intervals: { process: number; from: number; to: number; label: string }[] = [];
  private readonly cutLabel: string[];

  constructor(
    readonly builder: ViewBuilder,
    readonly view: KvView,
    readonly detail: FieldDetail,
  ) {
    builder.declareFields(replicaFields);
    this.replicaProcess = view.members.map((id) => builder.process(`R${id}`, "replica"));
    this.leases = new Lane(builder, "lease", this.intervals);
    this.grants = new Lane(builder, "grant", []);
    this.waits = new Lane(builder, "wait", []);
    this.down = new Lane(builder, "down", []);
    this.paused = new Lane(builder, "paused", []);
    this.cut = new Lane(builder, "cut", []);
    this.clocks = view.members.map(() => null);
    this.cutLabel = view.members.map(() => "");
  }

  /** Begin a step of the builder at the view's true time. */
  begin(kind: StepKind, actor: number, text: string | null): number {
    return this.builder.step(this.view.trueTime, actor, kind, text);
  }

  /** A message from process `from` to `to` in the current step, paired later by `key`. */
  send(from: number, to: number, label: string, key: unknown): number {
    const k = this.builder.send(from, to, label);
    if (key !== undefined) {
      let list = this.waiting.get(key);
      if (list === undefined) this.waiting.set(key, (list = []));
      list.push(k);
    }
    return k;
  }

  /** The message sent with `key` arrives in the current step; false when no send has that key. */
  receive(key: unknown): boolean {
    const list = this.waiting.get(key);
    if (list !== undefined && list.length > 0) {
      const k = list.shift()!;
      if (list.length === 0) this.waiting.delete(key);
      this.lastReceived.set(key, this.builder.receive(k));
      return true;
    }
    // A duplicate of a message already received.
    const k = this.lastReceived.get(key);
    if (k === undefined) return false;
    this.builder.receive(k);
    return true;
  }

  /** Record what an event step carried out and how the replica's state changed. */
  event(step: KvWorldStep & { kind: "event" }, keys: StepKeys, clientProcess: (client: string) => number | null): void {
    const b = this.builder;
    const r = step.replica;
    const me = this.replicaProcess[r]!;
    const t = this.view.trueTime;
    if (keys.received !== undefined) this.receive(keys.received);
    let sendIndex = 0;
    for (const c of step.carried) {
      switch (c._tag) {
        case "Flush":
          for (const record of c.records) b.effect(`persist ${recordLabel(record, this.detail)}`);
          break;
        case "Send": {
          const to = this.replicaProcess[this.view.members.indexOf(c.to)];
          const key = keys.sends?.[sendIndex++];
          if (to !== undefined) this.send(me, to, messageLabel(c.message, this.detail), key);
          break;
        }
        case "Reply": {
          const client = clientProcess(c.request.clientId);
          const result = this.detail === "full" ? showResult(c.result) : clip(showResult(c.result), 60);
          if (client === null) b.effect(`reply ${c.request.clientId}: ${result}`);
          else this.builder.receive(this.builder.send(me, client, result));
          break;
        }
        case "ChangeAnswer":
          b.effect(`reply operator: ${showResult(c.result)}`);
          break;
        case "OpenAnswer":
          b.effect(`reply open-session: ${showResult(c.result)}`);
          break;
        case "Alarm":
          b.effect(`ALARM ${c.message}`);
          break;
        case "Crash":
          b.effect(`crash: ${c.lost} unflushed records lost, the rest of the step never happened`);
          break;
      }
    }
    const s = step.after;
    if (s === null) {
      this.crashed(r, t);
      return;
    }
    if (step.event === "Recover") this.restarted(r, t);
    b.set(me, fieldsOf(s, this.detail));
    if (step.before === null || s.learner.service.sessions !== step.before.learner.service.sessions)
      b.set(me, sessionsOf(s, this.detail));
    const rep = this.view.replicas[r]!;
    // The lease as proofs/leases.ts abstracts it: the replica would answer a read by lease now
    // (rule L3), and does until its clock reaches leaseUntil unless a later step of its own ends it.
    const rules = this.view.rules;
    const holder = s.role._tag === "leader" && rules.canServeLeaseRead(rules, s, rep.localAt(t)) ? s.role : null;
    this.leases.update(
      me,
      t,
      holder === null ? null : { until: rep.trueAt(holder.leaseUntil), label: showBallot(holder.ballot) },
    );
    const a = s.acceptor;
    this.grants.update(
      me,
      t,
      isBallotZero(a.grantTo) ? null : { until: rep.trueAt(a.grantUntil), label: `grant to ${showBallot(a.grantTo)}` },
    );
    if (step.event === "Recover")
      this.waits.update(me, t, { until: rep.trueAt(a.noPromiseUntil), label: "restart wait" });
  }

  /** A replica crashed (between steps or inside one). */
  crashed(r: number, t: number): void {
    const me = this.replicaProcess[r]!;
    this.leases.close(me, t);
    this.grants.close(me, t);
    this.waits.close(me, t);
    this.builder.clear(me);
    this.builder.set(me, { role: "down" });
    this.down.update(me, t, { until: Number.POSITIVE_INFINITY, label: "down" });
  }

  private restarted(r: number, t: number): void {
    const me = this.replicaProcess[r]!;
    this.down.close(me, t);
    this.builder.clear(me);
  }

  /** Note paused replicas and cut links (after a fault step), and clock changes (after any step). */
  environment(pausedNow: (r: number) => boolean, born: (r: number) => boolean): void {
    const t = this.view.trueTime;
    this.view.replicas.forEach((_, r) => {
      if (!born(r)) return;
      const me = this.replicaProcess[r]!;
      this.paused.update(me, t, pausedNow(r) ? { until: Number.POSITIVE_INFINITY, label: "paused" } : null);
      const cutOff = this.view.replicas
        .filter((_, x) => x !== r && born(x) && (this.view.linkBlocked(r, x) || this.view.linkBlocked(x, r)))
        .map((o) => `R${o.id}`);
      const label = cutOff.length === 0 ? "" : `cut off from ${cutOff.join(",")}`;
      if (label !== this.cutLabel[r]) {
        this.cutLabel[r] = label;
        this.cut.update(me, t, label === "" ? null : { until: Number.POSITIVE_INFINITY, label });
      }
    });
  }

  /** Record a clock segment for every replica whose clock no longer follows its last one. */
  clocksAt(born: (r: number) => boolean): void {
    const t = this.view.trueTime;
    this.view.replicas.forEach((rep, r) => {
      if (!born(r)) return;
      const reading = rep.localAt(t);
      const last = this.clocks[r];
      if (last !== null && last !== undefined && Math.abs(last.reading + last.rate * (t - last.t) - reading) < 1e-6)
        return;
      const rate = (rep.localAt(t + 1000) - reading) / 1000;
      this.clocks[r] = { t, reading, rate };
      this.builder.clock(this.replicaProcess[r]!, t, reading, rate);
    });
  }

  /** Close what is still open (the trace ended). */
  finish(): void {
    const end = this.view.trueTime;
    for (const lane of [this.leases, this.grants, this.waits, this.paused, this.cut, this.down]) lane.finish(end);
  }
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 3)}...`;
}

/** A durable record's label: `vote s=3 b=(2,1) v=[c1#1:put(k0,c1.1)]` (compact: a batch by its size). */
export function recordLabel(r: DurableRecord<KvInput>, detail: FieldDetail): string {
  if (detail === "compact" && (r._tag === "vote" || r._tag === "chosen") && "value" in r && r.value._tag === "batch")
    return `${r._tag} s=${r.slot}${r._tag === "vote" ? ` b=${showBallot(r.ballot)}` : ""} v=[${r.value.commands.length} commands]`;
  return showRecord(r, false);
}

/** A message's label: `Accept b=(2,1) s=3 v=[c1#1:put(k0,c1.1)] commit=2` (compact: a batch by its size). */
export function messageLabel(m: Message<KvInput>, detail: FieldDetail): string {
  if (detail === "compact" && m._tag === "Accept" && m.value._tag === "batch")
    return `Accept b=${showBallot(m.ballot)} s=${m.slot} v=[${m.value.commands.length} commands] commit=${m.commitIndex}`;
  const text = showMessage(m, false);
  return detail === "full" ? text : text.slice(0, 120);
}

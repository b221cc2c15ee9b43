/**
 * One-line renderings of what replicas move around (kv inputs and outputs, slot values,
 * messages, durable records, client results), in the vocabulary of the golden scenario files:
 * `Accept b=(2,1) s=3 v=[c1#2:put(x,a)] commit=2 t=300`. The golden files print every detail;
 * the simulated world's traces and Mermaid diagrams leave out send times and digests
 * (`detail = false`) to stay short. Pure formatting; nothing here decides anything.
 */
import type { KvInput, KvOutput } from "../../../spec/kv.ts";
import { showBallot } from "../ballot.ts";
import { showChange, showConfiguration } from "../configuration.ts";
import type { ClientResult } from "../events.ts";
import type { HeldValue } from "../at-rest.ts";
import type { Command, Message } from "../messages.ts";
import type { DurableRecord } from "../records.ts";

/** Formats a kv input compactly: `put(k,v)`, `get(k)`. */
export function showInput(input: KvInput): string {
  switch (input._tag) {
    case "get":
    case "delete":
      return `${input._tag}(${input.key})`;
    case "put":
    case "append":
      return `${input._tag}(${input.key},${input.value})`;
    case "cas":
      return `cas(${input.key},${input.expected ?? "null"},${input.value})`;
    case "noop":
      return "noop()";
  }
}

function showCommand(c: Command<KvInput>): string {
  return c.clientId === undefined ? showInput(c.input) : `${c.clientId}#${c.seq}:${showInput(c.input)}`;
}

/** Formats a slot value: `noop`, `[c1#1:put(k,v) get(k)]` or `reconfig(add 4)`. */
export function showValue(v: HeldValue<KvInput>): string {
  switch (v._tag) {
    case "stored":
      return `at-rest(${showBallot(v.ballot)}, ${v.bytes} B)`;
    case "noop":
      return "noop";
    case "batch":
      return `[${v.commands.map(showCommand).join(" ")}]`;
    case "reconfig":
      return `reconfig(${showChange(v.change)})`;
    case "features":
      return `features(level ${v.level}, sessionsMax ${v.sessionsMax}, outputBytesMax ${v.outputBytesMax})`;
    case "open":
      return `open(${v.count})`;
  }
}

/** A clock reading or duration, rounded to the microsecond. */
export function showTime(t: number): string {
  return Number.isFinite(t) ? String(Math.round(t * 1000) / 1000) : t > 0 ? "inf" : "-inf";
}

/** One message on one line; `detail` adds send times, checkpoints and digests. */
export function showMessage(m: Message<KvInput>, detail = true): string {
  const t = (sentAt: number): string => (detail ? ` t=${showTime(sentAt)}` : "");
  const cp = (c: { readonly slot: number; readonly digest: string } | null): string =>
    detail && c !== null ? ` cp=${c.slot}:${c.digest}` : "";
  switch (m._tag) {
    case "Prepare":
      return `Prepare b=${showBallot(m.ballot)} from=${m.fromSlot}${t(m.sentAt)}`;
    case "Promise":
      return `Promise b=${showBallot(m.ballot)} from=${m.fromSlot}${m.truncatedUpTo === 0 ? "" : ` truncated=${m.truncatedUpTo}`} votes=[${m.votes.map((v) => `${v.slot}:${showBallot(v.ballot)}:${showValue(v.value)}`).join(" ")}]${t(m.sentAt)}`;
    case "Accept":
      return `Accept b=${showBallot(m.ballot)} s=${m.slot} v=${showValue(m.value)} commit=${m.commitIndex}${t(m.sentAt)}`;
    case "Accepted":
      return `Accepted b=${showBallot(m.ballot)} s=${m.slot}${t(m.sentAt)}`;
    case "Heartbeat":
      return `Heartbeat b=${showBallot(m.ballot)} commit=${m.commitIndex}${t(m.sentAt)}${cp(m.checkpoint)}`;
    case "HeartbeatAck":
      return `HeartbeatAck b=${showBallot(m.ballot)} exec=${m.executedUpTo}${t(m.sentAt)}${cp(m.checkpoint)}`;
    case "Nack":
      return `Nack b=${showBallot(m.ballot)} promised=${showBallot(m.promised)} grantRemaining=${showTime(m.grantRemainingMs)}`;
    case "CatchUp":
      return `CatchUp ${m.fromSlot}..${m.toSlot}`;
    case "CatchUpReply":
      return `CatchUpReply [${m.entries.map((e) => `${e.slot}:${showValue(e.value)}`).join(" ")}]`;
    case "SnapshotRequest":
      return `SnapshotRequest s=${m.slot} offset=${m.offset}`;
    case "SnapshotChunk":
      return `SnapshotChunk s=${m.slot} bytes=${m.offset}..${m.offset + m.data.length}/${m.totalBytes}${detail ? ` digest=${m.digest}` : ""}`;
  }
}

/** One durable record on one line. */
export function showRecord(r: DurableRecord<KvInput>, detail = true): string {
  switch (r._tag) {
    case "promise":
      return `promise b=${showBallot(r.ballot)}`;
    case "vote":
      return `vote s=${r.slot} b=${showBallot(r.ballot)} v=${showValue(r.value)}`;
    case "chosen":
      return "value" in r
        ? `chosen s=${r.slot} v=${showValue(r.value)}`
        : `chosen s=${r.slot} vote b=${showBallot(r.ballot)}`;
    case "snapshot":
      return `snapshot s=${r.slot} bytes=${r.data.length}${detail ? ` digest=${r.digest}` : ""} log>${r.logTruncatedUpTo}`;
    case "handOver":
      return `hand-over of the removal chosen at ${r.epoch}`;
  }
}

/** `value=a`, `done`, `cas swapped=true current=a`. */
export function showOutput(o: KvOutput): string {
  switch (o._tag) {
    case "value":
      return `value=${o.value ?? "null"}`;
    case "ok":
      return "done";
    case "cas":
      return `cas swapped=${o.swapped} current=${o.current ?? "null"}`;
    case "too-large":
      return `too-large length=${o.length} limit=${o.limit}${o.unit === undefined ? "" : ` unit=${o.unit}`}`;
  }
}

/** One line per client result. */
export function showResult(r: ClientResult<KvOutput>): string {
  switch (r._tag) {
    case "ok":
      return `ok ${showOutput(r.output)}`;
    case "redirect":
      return `redirect leader=${r.leader ?? "none"}`;
    case "stale-seq":
      return `stale-seq last=${r.lastSeq}`;
    case "seq-reused":
      return `seq-reused seq=${r.seq}`;
    case "session-expired":
      return "session-expired";
    case "session-opened":
      return `session-opened ${r.clientId}`;
    case "unavailable":
      return `unavailable outcomeUnknown=${r.outcomeUnknown} (${r.reason})`;
    case "reconfigured":
      return `reconfigured epoch=${r.epoch} governsFrom=${r.governsFrom} ${showConfiguration(r)}`;
    case "refused":
      return `refused (${r.reason})`;
  }
}

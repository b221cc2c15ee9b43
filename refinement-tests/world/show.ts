/**
 * One-line renderings of what the world moves around (kv inputs and outputs, slot values,
 * messages, durable records, client results), in the vocabulary of impl/core's golden scenario
 * files: `Accept b=(2,1) s=3 v=[c1#2:put(x,a)]`. Used by traces, Mermaid diagrams and reports.
 * Pure formatting; nothing here decides anything.
 */
import type { KvInput, KvOutput } from "../../spec/kv.ts";
import { showBallot, showChange, showConfiguration, type ClientResult, type Command, type DurableRecord, type Message, type Value } from "../../impl/core/index.ts";

/** `put(x,a)`, `get(x)`, `cas(x,null,b)`. */
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

/** `value=a`, `done`, `cas swapped=true current=a`. */
export function showOutput(o: KvOutput): string {
  switch (o._tag) {
    case "value":
      return `value=${o.value ?? "null"}`;
    case "ok":
      return "done";
    case "cas":
      return `cas swapped=${o.swapped} current=${o.current ?? "null"}`;
  }
}

function showCommand(c: Command<KvInput>): string {
  return c.clientId === undefined ? showInput(c.input) : `${c.clientId}#${c.seq}:${showInput(c.input)}`;
}

/** `noop`, `[c1#1:put(x,a) get(x)]` or `reconfig(add 4)`. */
export function showValue(v: Value<KvInput>): string {
  switch (v._tag) {
    case "noop":
      return "noop";
    case "batch":
      return `[${v.commands.map(showCommand).join(" ")}]`;
    case "reconfig":
      return `reconfig(${showChange(v.change)})`;
  }
}

/** A clock reading or duration, rounded to the microsecond. */
export function showTime(t: number): string {
  return Number.isFinite(t) ? String(Math.round(t * 1000) / 1000) : t > 0 ? "inf" : "-inf";
}

/** One message on one line. */
export function showMessage(m: Message<KvInput>): string {
  switch (m._tag) {
    case "Prepare":
      return `Prepare b=${showBallot(m.ballot)} from=${m.fromSlot}`;
    case "Promise":
      return `Promise b=${showBallot(m.ballot)} from=${m.fromSlot}${m.truncatedUpTo === 0 ? "" : ` truncated=${m.truncatedUpTo}`} votes=[${m.votes.map((v) => `${v.slot}:${showBallot(v.ballot)}:${showValue(v.value)}`).join(" ")}]`;
    case "Accept":
      return `Accept b=${showBallot(m.ballot)} s=${m.slot} v=${showValue(m.value)} commit=${m.commitIndex}`;
    case "Accepted":
      return `Accepted b=${showBallot(m.ballot)} s=${m.slot}`;
    case "Heartbeat":
      return `Heartbeat b=${showBallot(m.ballot)} commit=${m.commitIndex}`;
    case "HeartbeatAck":
      return `HeartbeatAck b=${showBallot(m.ballot)} exec=${m.executedUpTo}`;
    case "Nack":
      return `Nack b=${showBallot(m.ballot)} promised=${showBallot(m.promised)} wait=${showTime(m.grantRemainingMs)}`;
    case "CatchUp":
      return `CatchUp ${m.fromSlot}..${m.toSlot}`;
    case "CatchUpReply":
      return `CatchUpReply [${m.entries.map((e) => `${e.slot}:${showValue(e.value)}`).join(" ")}]`;
    case "SnapshotRequest":
      return `SnapshotRequest s=${m.slot} offset=${m.offset}`;
    case "SnapshotChunk":
      return `SnapshotChunk s=${m.slot} bytes=${m.offset}..${m.offset + m.data.length}/${m.totalBytes}`;
  }
}

/** One durable record on one line. */
export function showRecord(r: DurableRecord<KvInput>): string {
  switch (r._tag) {
    case "promise":
      return `promise b=${showBallot(r.ballot)}`;
    case "vote":
      return `vote s=${r.slot} b=${showBallot(r.ballot)} v=${showValue(r.value)}`;
    case "chosen":
      return `chosen s=${r.slot} v=${showValue(r.value)}`;
    case "snapshot":
      return `snapshot s=${r.slot} bytes=${r.data.length} log>${r.logTruncatedUpTo}`;
  }
}

/** One client result on one line. */
export function showResult(r: ClientResult<KvOutput>): string {
  switch (r._tag) {
    case "ok":
      return `ok ${showOutput(r.output)}`;
    case "redirect":
      return `redirect leader=${r.leader ?? "none"}`;
    case "stale-seq":
      return `stale-seq last=${r.lastSeq}`;
    case "unavailable":
      return `unavailable${r.outcomeUnknown ? " outcome-unknown" : ""} (${r.reason})`;
    case "reconfigured":
      return `reconfigured epoch=${r.epoch} from=${r.governsFrom} ${showConfiguration(r)}`;
    case "refused":
      return `refused (${r.reason})`;
  }
}

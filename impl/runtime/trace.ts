/**
 * The event trace of one replica process: JSON lines, one per event handled and per effect
 * carried out, in the order they happened, each with the replica id, the local clock reading
 * and a process-wide sequence number (format in docs/trace-format.md). Merged across replicas
 * (sends and receipts pair up by sender incarnation and wire id), a real run's trace is meant
 * for the same `proofs/` invariants the simulator checks.
 *
 * Lines are written with one synchronous write per batch, before that batch's sends and
 * replies leave the process, so that a trace never omits an effect that peers or clients saw.
 */
import fs from "node:fs";
import type { ClientResult, Effect, Event, ReplicaId } from "../core/index.ts";
import type { JsonCodec } from "./framing.ts";

/** The trace format this writer produces. */
export const traceFormat = "paxos-lease/trace@1";

/** How events and effects are turned into JSON: the same Schemas as the wire and the disk. */
export interface TraceCodecs<M, R, I, O> {
  readonly message: JsonCodec<M>;
  readonly record: JsonCodec<R>;
  readonly input: JsonCodec<I>;
  readonly output: JsonCodec<O>;
}

/** Facts about an event that the event itself does not carry. */
export interface EventContext {
  /** For Receive: the sender's id for this message (pairs with its Send line). */
  readonly wireId?: number;
  /** For Receive: the sender's incarnation (the `incarnation` of its trace's start line). */
  readonly senderIncarnation?: string;
}

/** Facts about an effect that the effect itself does not carry. */
export interface EffectContext {
  /** For Send: the wire id it was sent under. */
  readonly wireId?: number;
  /** For Persist: its sequence number in the replica's store. */
  readonly durableSeq?: number;
}

/** Writes one replica's trace file. */
export class TraceWriter<M, R, I, O> {
  private readonly fd: number;
  private readonly pending: string[] = [];
  private seq = 0;
  constructor(
    file: string,
    private readonly replica: ReplicaId,
    private readonly codecs: TraceCodecs<M, R, I, O>,
    /** Random per process start (wire ids restart at 0 in each); peers learn it in the handshake. */
    readonly incarnation: string,
    header: Record<string, unknown>,
    /**
     * Called with each Persist's record once its line is made (its bytes read): a replica lets a
     * snapshot's state go only after that (storage-thread.ts, `awaitTrace`). Default: none.
     */
    private readonly afterPersist?: (record: R) => void,
  ) {
    // Mode 0600: a trace holds the clients' keys and values, as the data directory does.
    this.fd = fs.openSync(file, "a+", 0o600);
    // A process killed in the middle of a write leaves a torn last line without its newline:
    // end it, so this life's start line begins a line of its own and readers can tell them apart.
    if (!endsWithNewline(this.fd)) this.pending.push("\n");
    this.line("start", Number.NaN, { format: traceFormat, incarnation: this.incarnation, ...header });
    this.flush();
  }

  event(now: number, batch: number, event: Event<M, R, I>, context: EventContext = {}): void {
    this.line("event", now, { batch, event: this.encodeEvent(event, context) });
  }

  effect(now: number, batch: number, effect: Effect<M, R, O, unknown>, context: EffectContext = {}): void {
    this.line("effect", now, { batch, effect: this.encodeEffect(effect, context) });
    if (effect._tag === "Persist") this.afterPersist?.(effect.record);
  }

  /** The durable commit of a batch's records (one fsync). */
  commit(now: number, batch: number, records: number, fsyncMs: number): void {
    this.line("commit", now, { batch, records, fsyncMs });
  }

  /** An fsync returned: every record with a durable seq up to `durableSeq` is on disk. */
  synced(now: number, durableSeq: number): void {
    this.line("synced", now, { durableSeq });
  }

  /** Write every line so far (one system call, unless the kernel takes part of it). */
  flush(): void {
    if (this.pending.length === 0) return;
    const bytes = Buffer.from(this.pending.join(""), "utf8");
    this.pending.length = 0;
    // `write` may take fewer bytes than asked (a signal, a full disk): write the rest.
    for (let offset = 0; offset < bytes.length;) offset += fs.writeSync(this.fd, bytes, offset, bytes.length - offset);
  }

  close(): void {
    this.flush();
    fs.closeSync(this.fd);
  }

  private line(type: string, now: number, fields: Record<string, unknown>): void {
    const record = { seq: this.seq++, replica: this.replica, now: Number.isNaN(now) ? null : now, type, ...fields };
    this.pending.push(`${JSON.stringify(record)}\n`);
  }

  private encodeEvent(event: Event<M, R, I>, context: EventContext): unknown {
    switch (event._tag) {
      case "Receive":
        return {
          _tag: "Receive",
          now: event.now,
          from: event.from,
          senderIncarnation: context.senderIncarnation ?? null,
          wireId: context.wireId ?? null,
          message: this.codecs.message.encodeValue(event.message),
        };
      case "Tick":
        return { _tag: "Tick", now: event.now };
      case "ClientRequest":
        return {
          _tag: "ClientRequest",
          now: event.now,
          requestId: event.requestId,
          clientId: event.clientId ?? null,
          seq: event.seq ?? null,
          consistency: event.consistency,
          input: this.codecs.input.encodeValue(event.input),
        };
      case "Recover":
        return {
          _tag: "Recover",
          now: event.now,
          records: event.records.map((r) => this.codecs.record.encodeValue(r)),
          // A transfer kept across the restart, resumed: the snapshot it is of (its chunks follow in KeptChunks).
          ...(event.kept === undefined ? {} : { kept: event.kept }),
        };
      case "Reconfigure":
        return { _tag: "Reconfigure", now: event.now, requestId: event.requestId, change: event.change };
      case "OpenSession":
        return { _tag: "OpenSession", now: event.now, requestId: event.requestId };
      case "VoteDurable":
        return { _tag: "VoteDurable", now: event.now, slot: event.slot, ballot: event.ballot };
      case "FeaturesKnown":
        return { _tag: "FeaturesKnown", now: event.now, level: event.level };
      case "EntriesRead":
        // The values themselves are in the vote records the trace's Persists carried.
        return { _tag: "EntriesRead", now: event.now, entries: event.entries };
      // A piece of a transfer kept across the restart, taken back: its chunks, as the Receives of them were.
      case "KeptChunks":
        return { _tag: "KeptChunks", now: event.now, offset: event.offset, chunks: event.chunks, last: event.last };
    }
  }

  private encodeEffect(effect: Effect<M, R, O, unknown>, context: EffectContext): unknown {
    switch (effect._tag) {
      case "Persist":
        return {
          _tag: "Persist",
          durableSeq: context.durableSeq ?? null,
          record: this.codecs.record.encodeValue(effect.record),
          ...(effect.notify === undefined ? {} : { notify: effect.notify }),
        };
      case "Send":
        return {
          _tag: "Send",
          to: effect.to,
          wireId: context.wireId ?? null,
          message: this.codecs.message.encodeValue(effect.message),
        };
      case "Reply":
        return { _tag: "Reply", requestId: effect.requestId, result: this.encodeResult(effect.result) };
      case "Alarm":
      case "TransferRefused":
      case "ReadEntries":
        return { ...effect };
      case "SendStored":
        // The driver traces the Send it carried out instead (its values read back from the disk).
        throw new Error("a SendStored effect is traced as the Send it stands for");
    }
  }

  private encodeResult(result: ClientResult<O>): unknown {
    return result._tag === "ok" ? { _tag: "ok", output: this.codecs.output.encodeValue(result.output) } : result;
  }
}

/** Whether the file open at `fd` is empty or its last byte is a newline. */
function endsWithNewline(fd: number): boolean {
  const size = fs.fstatSync(fd).size;
  if (size === 0) return true;
  const last = Buffer.alloc(1);
  fs.readSync(fd, last, 0, 1, size - 1);
  return last[0] === 0x0a;
}

/**
 * A bound on the bytes of one kind of work done in one turn of the event loop. Work within the
 * budget runs at once; beyond it, it waits for a later turn (`setImmediate`), in arrival order, so
 * that the timers and the peer sockets of the replica get their turn in between. Without it, the
 * bodies of many large requests that finish arriving together are all decoded and parsed in one
 * turn (sixteen 1 MiB bodies, tens of milliseconds of CPU, hundreds on a loaded machine), and the
 * heartbeats that keep the leader's lease wait behind them.
 *
 * It never reads a clock: a turn ends where Node's check phase runs the immediates queued before
 * it.
 */

/** Bytes of work one turn may do, by default: one maximal (1 MiB) value and its JSON framing. */
export const turnBytesMaxDefault = 1024 * 1024 + 4096;

/** Runs work in turns of at most `bytesMax` bytes each (a larger piece runs alone in its turn). */
export class TurnBudget {
  private used = 0;
  private readonly queue: { readonly bytes: number; readonly work: () => void }[] = [];
  private turnScheduled = false;
  private turnsDeferred = 0;

  constructor(readonly bytesMax: number = turnBytesMaxDefault) {
    if (!(Number.isInteger(bytesMax) && bytesMax >= 1))
      throw new Error(`a turn's bytes (${bytesMax}) must be a positive integer`);
  }

  /**
   * Run `work` (which handles `bytes` bytes) in this turn if the turn's budget allows it and
   * nothing waits before it, else in a later turn. A piece larger than the whole budget runs alone,
   * at the start of a turn. `work` must not throw (catch inside it); a throw is reported by Node as
   * an uncaught exception, as from any timer.
   */
  run(bytes: number, work: () => void): void {
    if (!(Number.isFinite(bytes) && bytes >= 0)) throw new Error(`bytes of work (${bytes}) must be a number >= 0`);
    if (this.queue.length === 0 && (this.used === 0 || this.used + bytes <= this.bytesMax)) {
      this.charge(bytes);
      work();
      return;
    }
    this.queue.push({ bytes, work });
    this.scheduleTurn();
  }

  /** Pieces of work waiting for a later turn now, and turns that started with work waiting so far. */
  get depths(): { readonly waiting: number; readonly turnsDeferred: number } {
    return { waiting: this.queue.length, turnsDeferred: this.turnsDeferred };
  }

  private charge(bytes: number): void {
    this.used += bytes;
    this.scheduleTurn();
  }

  /** The turn ends at the next check phase: the budget is then whole again for the work waiting. */
  private scheduleTurn(): void {
    if (this.turnScheduled) return;
    this.turnScheduled = true;
    setImmediate(() => this.nextTurn());
  }

  private nextTurn(): void {
    this.turnScheduled = false;
    this.used = 0;
    if (this.queue.length === 0) return;
    this.turnsDeferred += 1;
    while (this.queue.length > 0) {
      const next = this.queue[0]!;
      if (this.used > 0 && this.used + next.bytes > this.bytesMax) break;
      this.queue.shift();
      this.charge(next.bytes);
      next.work();
    }
  }
}

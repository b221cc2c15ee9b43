/**
 * At most one log line per key (a reason and a source address, say) per interval: a client or
 * peer that repeats a refused request must not flood the log, and the first refusal of each
 * source is always logged. Memory is bounded: past `keysMax` keys the oldest are forgotten.
 */
export class LogLimiter {
  private readonly lastMs = new Map<string, number>();
  /** Lines held back per key since its last line. */
  private readonly held = new Map<string, number>();

  constructor(
    private readonly intervalMs: number,
    private readonly keysMax = 1000,
  ) {}

  /** True when a line for `key` may be logged at `nowMs` (and then counts as logged). */
  allow(key: string, nowMs: number): boolean {
    const last = this.lastMs.get(key);
    if (last !== undefined && nowMs - last < this.intervalMs) return false;
    this.lastMs.delete(key);
    this.lastMs.set(key, nowMs);
    if (this.lastMs.size > this.keysMax) {
      const oldest = this.lastMs.keys().next().value!;
      this.lastMs.delete(oldest);
      this.held.delete(oldest);
    }
    return true;
  }

  /**
   * Like {@link allow}, counting what it holds back: when a line for `key` may be logged, the
   * number of lines held back for it since its last one; null when this one is held back too.
   */
  take(key: string, nowMs: number): number | null {
    if (!this.allow(key, nowMs)) {
      if (this.lastMs.has(key)) this.held.set(key, (this.held.get(key) ?? 0) + 1);
      return null;
    }
    const held = this.held.get(key) ?? 0;
    this.held.delete(key);
    return held;
  }
}

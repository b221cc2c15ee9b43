/**
 * Where the checks' time goes: a stopwatch per named check, shared by a checker and its forks
 * (`WorldChecker.profile`). Off by default (null): the checker then reads no clock. `npm run
 * explore -- --impl --profile-checks` and `npm run bench:explore -- --impl --profile-checks`
 * switch it on and print the table.
 */
export class CheckProfile {
  /** Milliseconds and calls per check, in the order first measured. */
  readonly entries = new Map<string, { ms: number; calls: number }>();
  /** Milliseconds over every entry. */
  totalMs = 0;

  /**
   * Add the time since `since` (a `performance.now()` reading), less `excludedMs` measured
   * elsewhere meanwhile, to `name`; returns the reading now.
   */
  lap(name: string, since: number, excludedMs = 0): number {
    const now = performance.now();
    let e = this.entries.get(name);
    if (e === undefined) {
      e = { ms: 0, calls: 0 };
      this.entries.set(name, e);
    }
    const ms = now - since - excludedMs;
    e.ms += ms;
    e.calls++;
    this.totalMs += ms;
    return now;
  }

  /** Everything measured, most expensive first. */
  rows(): { readonly name: string; readonly ms: number; readonly calls: number }[] {
    return [...this.entries].map(([name, e]) => ({ name, ms: e.ms, calls: e.calls })).sort((x, y) => y.ms - x.ms);
  }
}

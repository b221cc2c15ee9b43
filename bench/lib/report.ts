/**
 * What a bench script prints beside its numbers, one way everywhere: progress lines on stderr
 * (stdout stays for the result, so `--json` output can be piped), and the machine's load average,
 * which every number measured here is reported with (a number measured under load says little
 * without it).
 */
import os from "node:os";

/**
 * The load averages over 1, 5 and 15 minutes, each with `digits` decimals, separated by spaces
 * ("0.52 0.61 0.70"). Default 2 decimals.
 */
export function loadAverage(digits = 2): string {
  return os
    .loadavg()
    .map((l) => l.toFixed(digits))
    .join(" ");
}

/** A printer of progress lines for the script `name`: each line goes to stderr as "[name] line". */
export function progressOf(name: string): (line: string) => void {
  return (line) => void process.stderr.write(`[${name}] ${line}\n`);
}

/** What can make a measured run worthless, counted over the run. */
export interface RunFaults {
  /** Campaigns started (etcd: raft terms) during the run. */
  readonly leadershipChanges: number;
  readonly failed: number;
  readonly outcomeUnknown: number;
}

/**
 * Why a run is no result, or null when it is one. A run with a leadership change measured a new
 * leader (cold code, a pipeline refilled) and the election's own work, not the steady path; one
 * with failed or unknown writes timed some requests out. Either way its figures describe the fault.
 */
export function notAResult(faults: RunFaults): string | null {
  const reasons = [
    faults.leadershipChanges > 0 ? `${faults.leadershipChanges} leadership changes` : null,
    faults.failed > 0 ? `${faults.failed} failed writes` : null,
    faults.outcomeUnknown > 0 ? `${faults.outcomeUnknown} writes of unknown outcome` : null,
  ].filter((r): r is string => r !== null);
  return reasons.length === 0 ? null : `${reasons.join(", ")} during the run`;
}

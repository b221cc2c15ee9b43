/**
 * The flags of `npm run nemesis` (refinement-tests/cli/nemesis.ts) and the core overrides they
 * give, apart from the command's run so that a test can parse what `replayCommand` (run.ts) prints:
 * a failure's replay must set the very core settings its run had (`--feature-level`,
 * `--sessions-max`, and every other override as `--core JSON`). It never starts a process.
 */
import { Command, InvalidArgumentError } from "commander";
import { kvConfig } from "../../impl/runtime/core-adapter.ts";
import { faultKinds, type FaultKind } from "./schedule.ts";
import { networkKinds, type NetworkKind } from "./network.ts";
import { commandSparesDefault } from "./run.ts";

/**
 * The core overrides the command sets with flags of their own (`--feature-level`, `--sessions-max`);
 * `--core` names every other one.
 */
export const coreFlagged = ["featureLevel", "sessionsMax"] as const;

/** The fields of the core configuration the harness sets for each replica: no override names them. */
const coreFromHarness = ["self", "members", "joining"] as const;

/** The flags as parsed. */
export interface NemesisFlags {
  readonly minutes: number;
  readonly seed: number;
  readonly replicas: number;
  readonly spares: number;
  readonly clients: number;
  readonly kinds?: FaultKind[];
  readonly inOrder: boolean;
  readonly pace: number;
  readonly quietMs: number;
  readonly warmupMs: number;
  readonly skew: boolean;
  readonly net: NetworkKind;
  readonly featureLevel?: number;
  readonly raiseFeatureLevel?: number;
  readonly sessionsMax?: number;
  readonly core?: Record<string, unknown>;
  readonly out?: string;
  readonly experiment?: string;
  readonly json: boolean;
}

function numberIn(min: number, max: number, integer: boolean): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || n > max) {
      throw new InvalidArgumentError(
        `expected ${integer ? "an integer" : "a number"} in [${min}, ${max}], got ${JSON.stringify(value)}`,
      );
    }
    return n;
  };
}

function parseKinds(value: string): FaultKind[] {
  return value
    .split(",")
    .map((k) => k.trim())
    .filter((k) => k !== "")
    .map((k) => {
      if (!(faultKinds as readonly string[]).includes(k))
        throw new InvalidArgumentError(`unknown fault ${JSON.stringify(k)}; known: ${faultKinds.join(", ")}`);
      return k as FaultKind;
    });
}

/**
 * `--core`'s value: a JSON object of core settings (impl/core/config.ts), none of those the
 * harness sets or a flag of its own names. Whether the values are valid is `coreOverridesOf`'s
 * question, asked once the level and the table's bound are known too.
 */
export function parseCoreFlag(value: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch (error) {
    throw new InvalidArgumentError(
      `expected a JSON object of core settings, got ${JSON.stringify(value)}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    throw new InvalidArgumentError(`expected a JSON object of core settings, got ${JSON.stringify(value)}`);
  const core = parsed as Record<string, unknown>;
  for (const field of coreFromHarness)
    if (field in core) throw new InvalidArgumentError(`must not set ${field}: the harness sets it for each replica`);
  const flag = { featureLevel: "--feature-level", sessionsMax: "--sessions-max" } as const;
  for (const field of coreFlagged)
    if (field in core) throw new InvalidArgumentError(`must not set ${field}: pass ${flag[field]} instead`);
  return core;
}

/** The command's flags, its help and its checks of each value (`parse` exits 2 on a bad one). */
export function nemesisCommand(): Command {
  return new Command()
    .name("nemesis")
    .description(
      "Inject faults into a cluster of real replica processes and check what clients saw, the replicas' states and their traces.",
    )
    .option("--minutes <n>", "how long faults are injected", numberIn(0.1, 600, false), 2)
    .option(
      "--seed <n>",
      "seed of the fault schedule and the clients' choices",
      numberIn(0, 0xffff_ffff, true),
      Math.floor(Math.random() * 0xffff_ffff),
    )
    .option("--replicas <n>", "3 or 5", numberIn(3, 5, true), 3)
    .option(
      "--spares <n>",
      "spare replicas for the membership changes (member-* kinds; 0: none)",
      numberIn(0, 20, true),
      commandSparesDefault,
    )
    .option("--clients <n>", "concurrent clients", numberIn(1, 200, true), 16)
    .option(
      "--kinds <list>",
      `fault kinds, comma-separated (default: all for the cluster size): ${faultKinds.join(", ")}`,
      parseKinds,
    )
    .option("--in-order", "cycle through the fault kinds in order instead of drawing them", false)
    .option("--pace <p>", "scale of fault durations and gaps", numberIn(0.1, 10, false), 1)
    .option("--quiet-ms <ms>", "load after healing, before the final reads", numberIn(0, 600_000, true), 3000)
    .option("--warmup-ms <ms>", "load before the first fault", numberIn(0, 600_000, true), 3000)
    .option("--no-skew", "run every replica on the unskewed clock")
    .option(
      "--net <layer>",
      "network layer: relay (loopback, a frame relay per peer link) or hosts (a network namespace per replica; needs root)",
      (value: string): NetworkKind => {
        if (!(networkKinds as readonly string[]).includes(value))
          throw new InvalidArgumentError(`expected ${networkKinds.join(" or ")}, got ${JSON.stringify(value)}`);
        return value as NetworkKind;
      },
      "relay",
    )
    .option(
      "--feature-level <n>",
      "the feature level the leader raises the log to (2: a bounded session table; 3: sessions the service opens; 4: also values held to 1 MiB of UTF-8 at execution; default the core's, 1)",
      numberIn(1, 4, true),
    )
    .option(
      "--raise-feature-level <n>",
      "halfway through the faults, restart every member in turn with this feature level, above --feature-level (a rolling upgrade; the log must be raised to it)",
      numberIn(2, 4, true),
    )
    .option(
      "--sessions-max <n>",
      "at feature level 2 and above, the most client sessions the replicated state keeps (fewer than --clients: sessions are evicted)",
      numberIn(1, 1_000_000, true),
    )
    .option(
      "--core <json>",
      `other core settings for every replica, a JSON object (impl/core/config.ts), e.g. '{"snapshotIntervalSlots":256}'; a failed run's replay command names its own`,
      parseCoreFlag,
    )
    .option("--out <dir>", "folder for the report, history, timeline, traces and logs (default out/nemesis/seed-S)")
    .option("--experiment <name>", "run a labelled experiment instead: beyond-drift")
    .option("--json", "print the JSON report instead of the summary", false);
}

/**
 * The core overrides the flags give (`--core`, then `--feature-level` and `--sessions-max`), or an
 * error naming what is wrong: a table bound below level 2, or a setting the replicas' own
 * configuration check refuses (impl/core/config.ts, with the runtime's settings under them).
 */
export function coreOverridesOf(
  flags: Pick<NemesisFlags, "featureLevel" | "sessionsMax" | "core"> & Partial<Pick<NemesisFlags, "raiseFeatureLevel">>,
): Record<string, unknown> {
  if (flags.sessionsMax !== undefined && (flags.featureLevel ?? 1) < 2)
    throw new Error("--sessions-max bounds the session table only at --feature-level 2 and above");
  if (flags.raiseFeatureLevel !== undefined && flags.raiseFeatureLevel <= (flags.featureLevel ?? 1))
    throw new Error(
      `--raise-feature-level ${flags.raiseFeatureLevel} must be above the level the run starts at (--feature-level, ${flags.featureLevel ?? 1})`,
    );
  const core = {
    ...flags.core,
    ...(flags.featureLevel === undefined ? {} : { featureLevel: flags.featureLevel }),
    ...(flags.sessionsMax === undefined ? {} : { sessionsMax: flags.sessionsMax }),
  };
  try {
    kvConfig(1, [1, 2, 3], core);
  } catch (error) {
    throw new Error(`--core: ${error instanceof Error ? error.message : String(error)}`);
  }
  return core;
}

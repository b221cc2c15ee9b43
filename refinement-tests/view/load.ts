/**
 * Which adapter a file needs: a trace view (`paxos-lease/view@1`, as is, gzip-compressed or
 * not), a run of the world (a regression scenario or a failure report's `regression.json`), or
 * a nemesis run (its folder or its `report.json`). Every refusal says what the file is missing.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import { decodeView, viewFormat, type TraceView } from "./format.ts";
import { viewOfNemesisRun } from "./nemesis.ts";
import { viewOfWorldRun, type WorldRun } from "./world.ts";

/** A file the explorer cannot show, with the reason. */
export class ViewInputError extends Error {}

function readJson(file: string): unknown {
  const raw = readFileSync(file);
  const text = raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw).toString("utf8") : raw.toString("utf8");
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ViewInputError(`${file}: not JSON (${(error as Error).message})`);
  }
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** A regression file's fields, checked enough to run it. */
function worldRunOf(json: Record<string, unknown>, file: string): WorldRun {
  const scenario = json.scenario;
  if (
    !isRecord(scenario) ||
    !Array.isArray(scenario.actions) ||
    typeof scenario.seed !== "number" ||
    !isRecord(scenario.profile)
  )
    throw new ViewInputError(
      `${file}: "scenario" must hold seed, profile and actions (refinement-tests/regressions/ has examples)`,
    );
  const replicas = json.replicas ?? 3;
  if (replicas !== 3 && replicas !== 5 && replicas !== 7)
    throw new ViewInputError(`${file}: "replicas" must be 3, 5 or 7 (the cluster sizes of npm run check)`);
  const mutant = json.mutant ?? null;
  if (mutant !== null && typeof mutant !== "string")
    throw new ViewInputError(`${file}: "mutant" must be a name or null`);
  return {
    name: typeof json.name === "string" ? json.name : path.basename(file, ".json"),
    ...(typeof json.description === "string" ? { description: json.description } : {}),
    replicas,
    liveness: json.liveness === true,
    mutant,
    scenario: scenario as unknown as WorldRun["scenario"],
    ...(typeof json.replay === "string" ? { replay: json.replay } : {}),
    file,
    kind: file.includes(`regressions${path.sep}`) ? "regression" : "world",
  };
}

/** A check report's replay command (failure.txt beside its regression.json), if any. */
function replayOf(file: string): { replay?: string } {
  const failure = path.join(path.dirname(file), "failure.txt");
  if (!existsSync(failure)) return {};
  const line = readFileSync(failure, "utf8")
    .split("\n")
    .find((l) => l.startsWith("replay: "));
  return line === undefined ? {} : { replay: line.slice("replay: ".length) };
}

/** The trace view of `file` (see the module comment for what it may be). */
export function loadView(file: string): TraceView {
  if (!existsSync(file)) throw new ViewInputError(`${file}: no such file or folder`);
  if (statSync(file).isDirectory()) {
    if (existsSync(path.join(file, "report.json"))) return viewOfNemesisRun(file);
    if (existsSync(path.join(file, "regression.json"))) return loadView(path.join(file, "regression.json"));
    throw new ViewInputError(`${file}: a folder without report.json (nemesis run) or regression.json (check report)`);
  }
  const json = readJson(file);
  if (!isRecord(json)) throw new ViewInputError(`${file}: expected a JSON object`);
  if (json.format === viewFormat) {
    const view = decodeView(json);
    if (typeof view === "string") throw new ViewInputError(`${file}: not a valid ${viewFormat} document: ${view}`);
    return view;
  }
  if (json.format === "paxos-lease/nemesis-report@1") return viewOfNemesisRun(path.dirname(file));
  if ("scenario" in json) {
    try {
      return viewOfWorldRun({ ...worldRunOf(json, file), ...replayOf(file) });
    } catch (error) {
      if (error instanceof ViewInputError) throw error;
      throw new ViewInputError(`${file}: the scenario could not be run: ${(error as Error).message}`);
    }
  }
  throw new ViewInputError(
    `${file}: not a trace the explorer knows (a ${viewFormat} document, a regression or check report with "scenario", or a nemesis report)`,
  );
}

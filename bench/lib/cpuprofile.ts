/**
 * Reading V8 CPU profiles (`node --cpu-prof`): the time each function spent on the CPU itself
 * (self time), summed over every call site, so that a profile of a replica under load reads as a
 * short table of where its thread went. Pure: parses a profile's JSON, reads no clock.
 */

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}

/** The parts of a `.cpuprofile` file this reads. */
export interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
  readonly startTime: number;
  readonly endTime: number;
}

/** Self time of one function (all its call sites), in milliseconds. */
export interface FunctionTime {
  readonly name: string;
  readonly ms: number;
}

/** A profile's totals and its functions by self time, largest first. */
export interface ProfileSummary {
  /** Wall-clock length of the profile, in milliseconds. */
  readonly totalMs: number;
  /** Sampled time not idle (JavaScript, native code, the garbage collector), in milliseconds. */
  readonly busyMs: number;
  readonly functions: readonly FunctionTime[];
}

/** `name (file:line)` for a call frame, with the file's directories dropped. */
function frameName(frame: ProfileNode["callFrame"]): string {
  const name = frame.functionName === "" ? "(anonymous)" : frame.functionName;
  if (frame.url === "") return name;
  const file = frame.url.slice(frame.url.lastIndexOf("/") + 1);
  return `${name} (${file}:${frame.lineNumber + 1})`;
}

/** Summarize a profile: self time per function over the whole profile. */
export function summarizeProfile(profile: CpuProfile): ProfileSummary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map<string, number>();
  let idleUs = 0;
  let sampledUs = 0;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    const node = byId.get(id);
    if (node === undefined) return;
    sampledUs += delta;
    const name = frameName(node.callFrame);
    if (node.callFrame.functionName === "(idle)") idleUs += delta;
    self.set(name, (self.get(name) ?? 0) + delta);
  });
  const functions = [...self]
    .filter(([name]) => name !== "(idle)")
    .map(([name, us]) => ({ name, ms: us / 1000 }))
    .sort((a, b) => b.ms - a.ms);
  return { totalMs: (profile.endTime - profile.startTime) / 1000, busyMs: (sampledUs - idleUs) / 1000, functions };
}

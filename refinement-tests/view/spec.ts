/**
 * The trace view of a spec explorer trace (spec/explore.ts: the shortest trace to a violation).
 * States are read the way TLC prints them (`spec.show`): `/\ maxBal = (a1 :> 0 @@ a2 :> -1)`
 * becomes the field maxBal of processes a1 and a2, any other variable a field of the process
 * `spec`, and a set variable's new members are listed as the step's effects. Each step's actor
 * is the process its action names (`Phase1b(a2)`, `Acquire(p1)`); Paxos's ballots act as
 * proposers `b0`, `b1`, ..., and its messages are drawn from sender to receiver. A spec with a
 * `now` variable (Lease) runs on that time axis, and a holder's expiry becomes a lease interval.
 */
import type { TraceStep, Violation } from "../../spec/explore.ts";
import { ViewBuilder } from "./builder.ts";
import type { TraceView } from "./format.ts";

/** The variables of one state as TLC prints them: name -> per-process values, or one value. */
interface Parsed {
  readonly perProcess: Map<string, Map<string, string>>;
  readonly global: Map<string, string>;
}

/** Split `text` at top-level occurrences of `sep` (outside brackets, braces, parentheses and quotes). */
function splitTop(text: string, sep: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') quoted = !quoted;
    if (quoted) continue;
    if ("([{<".includes(c)) depth++;
    else if (")]}>".includes(c) && !(c === ">" && text[i - 1] === "-") && !(c === ">" && text[i - 1] === ":")) depth--;
    else if (depth === 0 && text.startsWith(sep, i)) {
      out.push(text.slice(start, i));
      start = i + sep.length;
      i += sep.length - 1;
    }
  }
  out.push(text.slice(start));
  return out.map((s) => s.trim()).filter((s) => s !== "");
}

/** `(a1 :> 0 @@ a2 :> -1)` as a map, or null when the value is no such function. */
function functionValue(value: string): Map<string, string> | null {
  if (!value.startsWith("(") || !value.endsWith(")") || !value.includes(":>")) return null;
  const out = new Map<string, string>();
  for (const part of splitTop(value.slice(1, -1), " @@ ")) {
    const m = /^(\w+) :> (.*)$/s.exec(part);
    if (m === null) return null;
    out.set(m[1]!, m[2]!);
  }
  return out;
}

export function parseShown(text: string): Parsed {
  const perProcess = new Map<string, Map<string, string>>();
  const global = new Map<string, string>();
  for (const conjunct of text.split(/\n(?=\/\\ )/)) {
    const m = /^\/\\ (\w+) = (.*)$/s.exec(conjunct.trim());
    if (m === null) continue;
    const fn = functionValue(m[2]!);
    if (fn === null) global.set(m[1]!, m[2]!);
    else perProcess.set(m[1]!, fn);
  }
  return { perProcess, global };
}

/** The members of a set value `{x, y}`, or null when it is no set. */
function setMembers(value: string): string[] | null {
  if (!value.startsWith("{") || !value.endsWith("}")) return null;
  return splitTop(value.slice(1, -1), ", ");
}

/** A record `[type |-> "1a", bal |-> 0]` as a map. */
function recordFields(text: string): Map<string, string> {
  const out = new Map<string, string>();
  if (!text.startsWith("[")) return out;
  for (const part of splitTop(text.slice(1, -1), ", ")) {
    const m = /^(\w+) \|-> (.*)$/.exec(part);
    if (m !== null) out.set(m[1]!, m[2]!.replace(/^"|"$/g, ""));
  }
  return out;
}

/** What a spec trace is, for the view's header. */
export interface SpecTraceInfo {
  readonly title: string;
  readonly notes: readonly string[];
  readonly replay?: string;
}

/** The trace view of a spec trace that ends in `violation` (or of any trace, with violation null). */
export function viewOfSpecTrace<S>(
  spec: { show(state: S): string },
  trace: readonly TraceStep<S>[],
  violation: Pick<Violation<S>, "kind" | "check" | "message"> | null,
  info: SpecTraceInfo,
): TraceView {
  const parsed = trace.map((s) => parseShown(spec.show(s.state)));
  const timed = parsed.every((p) => /^\d+$/.test(p.global.get("now") ?? ""));
  const b = new ViewBuilder({
    title: info.title,
    source: { kind: "spec", ...(info.replay === undefined ? {} : { replay: info.replay }), notes: [...info.notes] },
    timeUnit: timed ? "tick" : "step",
  });
  const processNames = new Set<string>();
  for (const p of parsed) for (const fn of p.perProcess.values()) for (const name of fn.keys()) processNames.add(name);
  const kindOf = (name: string): "acceptor" | "holder" => (/^a\d+$/.test(name) ? "acceptor" : "holder");
  for (const name of [...processNames].sort()) b.process(name, kindOf(name));
  const global = b.process("spec", "global");
  const messages = new PaxosMessages(b);
  const leases = new Map<string, { from: number; until: number }>();
  trace.forEach((step, i) => {
    const p = parsed[i]!;
    const t = timed ? Number(p.global.get("now")) : i;
    const actor = actorOf(b, step.action);
    b.step(t, actor, "event", step.action);
    for (const [field, fn] of p.perProcess)
      for (const [name, value] of fn) b.set(b.process(name, kindOf(name)), { [field]: value });
    const globals: Record<string, string> = {};
    for (const [field, value] of p.global) {
      const members = setMembers(value);
      globals[field] = members === null ? value : `${members.length} members`;
      if (members === null) continue;
      const before = i === 0 ? [] : (setMembers(parsed[i - 1]!.global.get(field) ?? "{}") ?? []);
      for (const added of members.filter((x) => !before.includes(x))) {
        b.effect(`${field} gains ${added}`);
        messages.sent(added, actor);
      }
    }
    b.set(global, globals);
    messages.received(step.action);
    noteLeases(b, p, t, leases);
  });
  for (const [name, l] of leases) b.interval(b.process(name, kindOf(name)), "lease", l.from, l.until, name);
  if (violation !== null) {
    const last = trace.length - 1;
    b.setViolation({
      check: violation.check,
      level: violation.kind === "invariant" ? "Invariant" : "Refinement",
      message: violation.message,
      step: last,
      related: b.relatedSteps(last, []),
    });
  }
  return b.finish();
}

/** The process an action names: `Phase1b(a2) on 1a(1)` -> a2; `Phase1a(1)` -> the proposer b1. */
function actorOf(b: ViewBuilder, action: string): number {
  const proposer = /^Phase(?:1a|2a)\((\d+)/.exec(action);
  if (proposer !== null) return b.process(`b${proposer[1]}`, "proposer");
  const m = /^\w+\((\w+)/.exec(action);
  return (m === null ? undefined : b.processNamed(m[1]!)) ?? b.processNamed("spec") ?? -1;
}

/** A Lease holder's expiry: from the step that set it until it ends. */
function noteLeases(
  b: ViewBuilder,
  p: Parsed,
  now: number,
  leases: Map<string, { from: number; until: number }>,
): void {
  const expiry = p.perProcess.get("expiry");
  if (expiry === undefined) return;
  for (const [name, value] of expiry) {
    const open = leases.get(name);
    const until = /^\d+$/.test(value) ? Number(value) : null;
    if (open !== undefined && open.until === until) continue;
    if (open !== undefined) {
      b.interval(b.process(name, "holder"), "lease", open.from, Math.min(open.until, Math.max(now, open.from)), name);
      leases.delete(name);
    }
    if (until !== null) leases.set(name, { from: now, until });
  }
}

/**
 * Paxos's messages as arrows: a 1a or 2a from its ballot's proposer to each acceptor that acts
 * on it (`Phase1b(a1) on 1a(0)`), a 1b from its acceptor to its ballot's proposer, received by
 * the ballot's Phase2a. 2b messages are Voting's votes and have no receiver in Paxos.tla.
 */
class PaxosMessages {
  /** Step and sender of each 1a(b) and 2a(b, v) sent, by their short name. */
  private readonly broadcasts = new Map<string, { step: number; from: number }>();
  /** 1b messages waiting for their ballot's Phase2a: ballot -> message indices. */
  private readonly oneBs = new Map<string, number[]>();

  constructor(private readonly b: ViewBuilder) {}

  sent(record: string, actor: number): void {
    const f = recordFields(record);
    const type = f.get("type");
    const bal = f.get("bal");
    if (type === undefined || bal === undefined || actor < 0) return;
    if (type === "1a") this.broadcasts.set(`1a(${bal})`, { step: this.b.currentStep, from: actor });
    else if (type === "2a")
      this.broadcasts.set(`2a(${bal}, ${f.get("val")})`, { step: this.b.currentStep, from: actor });
    else if (type === "1b") {
      const to = this.b.process(`b${bal}`, "proposer");
      const k = this.b.send(actor, to, `1b(${bal}) mbal=${f.get("mbal")} mval=${f.get("mval")}`);
      this.oneBs.set(bal, [...(this.oneBs.get(bal) ?? []), k]);
    }
  }

  received(action: string): void {
    const on = / on (\w+\([^)]*\))$/.exec(action);
    const actor = /^\w+\((\w+)/.exec(action);
    if (on !== null && actor !== null) {
      const sent = this.broadcasts.get(on[1]!);
      const to = this.b.processNamed(actor[1]!);
      if (sent !== undefined && to !== undefined) this.b.receive(this.b.sendAt(sent.step, sent.from, to, on[1]!));
    }
    const phase2a = /^Phase2a\((\d+)/.exec(action);
    if (phase2a !== null) {
      for (const k of this.oneBs.get(phase2a[1]!) ?? []) this.b.receive(k);
      this.oneBs.delete(phase2a[1]!);
    }
  }
}

/**
 * Scenario scripts with golden output, in the style of etcd-io/raft's datadriven testdata: each
 * block is one command, a `----` line, and the lines the cluster printed. `runScript` replays a
 * file's commands and returns the file as it should read; the test compares (or, with
 * UPDATE_GOLDEN=1, rewrites). Lines starting with `#` are comments and are kept.
 *
 * Commands (ids are replica ids; times are milliseconds):
 *   start N [field=value ...]        N replicas (ids 1..N), config overrides (numbers, true, false) for all; each boots
 * with Recover
 *   campaign ID                      force a campaign (refused while rule L5 forbids it)
 *   deliver | stabilize              deliver the messages in flight once | until none is left
 *   tick                             tick every live replica at the current time
 *   advance MS [tick=T] [quiet]      let MS pass: every T ms (default 10) tick all, then stabilize
 *   elapse MS                        let MS pass with nothing happening (no tick, no delivery)
 *   crash ID | restart ID            lose volatile state | boot again from the durable records
 *   isolate ID | cut A->B | heal     cut every link of ID | one direction | restore every link
 *   drop                             lose every message in flight
 *   put|append ID KEY VALUE [client=C seq=N]    a write at replica ID
 *   get ID KEY [stale]               a read (linearizable unless `stale`)
 *   corrupt ID KEY VALUE             change replica ID's application state behind its back
 *   skew ID MS                       offset replica ID's clock by MS from true time
 *   join ID                          start a fresh replica ID outside the initial members (joining)
 *   reconfigure ID add|promote|remove R     an operator's membership change, asked at replica ID
 *   reconfigure ID replace OLD NEW   voter OLD leaves and learner NEW becomes a voter, in one change
 *   hold A->B TAG | release          take matching messages out of the network ("*" matches any) | put them back
 *   tamper A->B                      change a byte of the first SnapshotChunk in flight from A to B
 *   disk ID                          the records on replica ID's disk, one per line
 *   status [ID ...]                  one line per replica
 */
import { kv, type KvInput } from "../../../spec/kv.ts";
import type { Consistency } from "../events.ts";
import type { ReplicaRules } from "../rules.ts";
import { Cluster } from "./cluster.ts";

/** One block of a script: leading comment lines, the command, the expected output lines. */
export interface Block {
  readonly comments: readonly string[];
  readonly command: string;
  readonly expected: readonly string[];
}

/** Parse a script file into blocks. */
export function parseScript(text: string): { readonly blocks: readonly Block[]; readonly trailer: readonly string[] } {
  const lines = text.split("\n");
  const blocks: Block[] = [];
  let comments: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    if (line.trim() === "") {
      i++;
      continue;
    }
    if (line.startsWith("#")) {
      comments.push(line);
      i++;
      continue;
    }
    const command = line;
    i++;
    if (lines[i] !== "----") throw new Error(`script line ${i + 1}: expected ---- after "${command}"`);
    i++;
    const expected: string[] = [];
    while (i < lines.length && lines[i]!.trim() !== "") expected.push(lines[i++]!);
    blocks.push({ comments, command, expected });
    comments = [];
  }
  return { blocks, trailer: comments };
}

function int(word: string | undefined, what: string): number {
  const n = Number(word);
  if (word === undefined || !Number.isFinite(n))
    throw new Error(`expected a number for ${what}, got ${word ?? "nothing"}`);
  return n;
}

function options(words: readonly string[]): Map<string, string> {
  const map = new Map<string, string>();
  for (const w of words) {
    const eq = w.indexOf("=");
    if (eq > 0) map.set(w.slice(0, eq), w.slice(eq + 1));
    else map.set(w, "");
  }
  return map;
}

/** Runs commands against one cluster and renders their output. */
export class ScriptRunner {
  cluster: Cluster | null = null;
  constructor(readonly rules?: ReplicaRules) {}

  private get c(): Cluster {
    if (this.cluster === null) throw new Error("no cluster: start one first");
    return this.cluster;
  }

  /** Run one command; returns the lines it printed. */
  run(command: string): string[] {
    const words = command.trim().split(/\s+/);
    const [verb, ...args] = words;
    if (verb === "start") {
      const config: Record<string, unknown> = {};
      for (const [k, v] of options(args.slice(1))) config[k] = v === "true" || v === "false" ? v === "true" : Number(v);
      this.cluster = new Cluster(int(args[0], "replica count"), {
        config,
        ...(this.rules === undefined ? {} : { rules: this.rules }),
      });
      return [];
    }
    const c = this.c;
    const mark = c.lines.length;
    this.execute(c, verb ?? "", args);
    return c.lines.splice(mark);
  }

  private execute(c: Cluster, verb: string, args: readonly string[]): void {
    const opts = options(args);
    switch (verb) {
      case "campaign":
        return c.campaign(int(args[0], "replica"));
      case "deliver":
        c.deliverRound();
        return;
      case "stabilize":
        return c.stabilize();
      case "tick":
        return c.tickAll();
      case "advance": {
        c.quiet = opts.has("quiet");
        try {
          c.advance(int(args[0], "milliseconds"), opts.has("tick") ? int(opts.get("tick"), "tick") : 10);
        } finally {
          c.quiet = false;
        }
        return;
      }
      case "elapse":
        return c.elapse(int(args[0], "milliseconds"));
      case "crash":
        return c.crash(int(args[0], "replica"));
      case "restart":
        return c.restart(int(args[0], "replica"));
      case "isolate": {
        const id = int(args[0], "replica");
        for (const other of c.nodes.keys()) {
          if (other === id) continue;
          c.cut.add(`${id}->${other}`);
          c.cut.add(`${other}->${id}`);
        }
        return;
      }
      case "cut":
        c.cut.add(args[0] ?? "");
        return;
      case "heal":
        c.cut.clear();
        return;
      case "drop":
        for (const m of c.inFlight.splice(0)) c.lines.push(`dropped ${m.from}->${m.to} ${m.message._tag}`);
        return;
      case "put":
      case "append": {
        const input: KvInput = { _tag: verb, key: args[1] ?? "", value: args[2] ?? "" };
        const session = opts.has("client")
          ? { clientId: opts.get("client")!, seq: int(opts.get("seq"), "seq") }
          : undefined;
        c.request(int(args[0], "replica"), input, "linearizable", session);
        return;
      }
      case "get": {
        const consistency: Consistency = opts.has("stale") ? "stale" : "linearizable";
        c.request(int(args[0], "replica"), { _tag: "get", key: args[1] ?? "" }, consistency);
        return;
      }
      case "corrupt": {
        const id = int(args[0], "replica");
        const node = c.node(id);
        const s = c.state(id);
        const app = kv.transition({ _tag: "put", key: args[1] ?? "", value: args[2] ?? "" }, s.learner.service.app);
        node.state = { ...s, learner: { ...s.learner, service: { ...s.learner.service, app } } };
        return;
      }
      case "skew":
        c.node(int(args[0], "replica")).clockOffsetMs = int(args[1], "milliseconds");
        return;
      case "join":
        return c.join(int(args[0], "replica"));
      case "reconfigure": {
        const at = int(args[0], "replica");
        const op = args[1];
        if (op === "replace")
          return void c.reconfigure(at, { op, remove: int(args[2], "replica"), add: int(args[3], "replica") });
        if (op === "add" || op === "promote" || op === "remove")
          return void c.reconfigure(at, { op, replica: int(args[2], "replica") });
        throw new Error(`unknown change "${op ?? ""}"`);
      }
      case "disk":
        return c.disk(int(args[0], "replica"));
      case "hold":
        return c.hold(args[0] ?? "*->*", args[1] ?? "*");
      case "tamper":
        return c.tamper(args[0] ?? "");
      case "release":
        return c.release();
      case "status":
        return c.status(args.length === 0 ? undefined : args.map((a) => int(a, "replica")));
      default:
        throw new Error(`unknown command "${verb}"`);
    }
  }
}

/** Replay a script and return its text with the actual output of every command. */
export function runScript(text: string, rules?: ReplicaRules): string {
  const { blocks, trailer } = parseScript(text);
  const runner = new ScriptRunner(rules);
  const parts: string[] = [];
  for (const block of blocks) {
    let output: string[];
    try {
      output = runner.run(block.command);
    } catch (e) {
      output = [`error: ${e instanceof Error ? e.message : String(e)}`];
    }
    if (output.length === 0) output = ["ok"];
    parts.push([...block.comments, block.command, "----", ...output].join("\n"));
  }
  const body = parts.join("\n\n") + "\n";
  return trailer.length === 0 ? body : `${body}\n${trailer.join("\n")}\n`;
}

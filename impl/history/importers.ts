/**
 * Importers for histories users already have, each turned into a paxos-lease/history@1
 * document (docs/history-format.md, "Importing Jepsen and Porcupine histories"):
 *
 * - Jepsen's EDN history (history.edn: one op map a line, or one vector of them): register
 *   operations (`:read`, `:write`, `:cas`, also with jepsen.independent `[key value]` tuples),
 *   kv operations (`:get`, `:put`, `:append` with `:key`, as Porcupine's kv logs write them)
 *   and list-append transactions of one micro-operation (`:txn [[:append k v]]`,
 *   `[[:r k nil]]`).
 * - Porcupine's Jepsen etcd logs (`INFO  jepsen.util - 3	:invoke	:cas	[1 4]` lines, columns
 *   separated by tabs or padded with spaces).
 *
 * An invocation is matched to the next completion of the same process. `:ok` completes with
 * its output (an append's output is not recorded: the client never saw the list); `:info`, or
 * no completion at all, is an unknown outcome; `:fail` never took effect, except a failed
 * `:cas`, which by default means "compared and did not swap" (Porcupine's reading of Jepsen's
 * etcd histories; `failedCas: "not-executed"` is Knossos's). Times are the ops' `:time` when
 * every op has one, else their position. Pure: text in, document out.
 */
import { ednToString, isEdnMap, Keyword, readEdnAll, type Edn } from "./edn.ts";
import { historyFormat, type ModelName } from "./history.ts";

/** The source formats `check-history` reads. */
export type SourceFormat = "paxos-lease" | "jepsen-edn" | "porcupine-log";

/** What a failed cas means: it compared and did not swap, or it never executed. */
export type FailedCas = "compare-failed" | "not-executed";

/** The format of a history text: by its first characters. */
export function detectFormat(text: string): SourceFormat {
  const start = text.trimStart();
  if (/^(INFO|WARN|DEBUG)\s+jepsen\./.test(start)) return "porcupine-log";
  if (start.startsWith("{:") || start.startsWith("[{") || start.startsWith("[") || start.startsWith("#"))
    return "jepsen-edn";
  return "paxos-lease";
}

/** One event of a Jepsen history: what the importers share. */
interface JepsenEvent {
  readonly process: number;
  readonly type: "invoke" | "ok" | "fail" | "info";
  readonly f: string;
  readonly value: Edn;
  readonly key?: Edn;
  readonly time: number | undefined;
}

interface Options {
  readonly failedCas?: FailedCas;
}

/** Import a Jepsen EDN history. */
export function importJepsenEdn(text: string, options: Options = {}): object {
  let forms = readEdnAll(text);
  const only = forms[0];
  if (forms.length === 1 && Array.isArray(only)) forms = [...(only as Edn[])];
  const events: JepsenEvent[] = [];
  forms.forEach((form, index) => {
    if (!isEdnMap(form)) throw new Error(`history entry ${index} is not a map: ${ednToString(form).slice(0, 80)}`);
    const process = form.get("process");
    // Nemesis and other non-client events have a keyword process: they are not operations.
    if (typeof process !== "number") return;
    const type = keywordName(form.get("type"), `history entry ${index}: :type`);
    if (type !== "invoke" && type !== "ok" && type !== "fail" && type !== "info")
      throw new Error(`history entry ${index}: :type must be :invoke, :ok, :fail or :info, not :${type}`);
    const time = form.get("time");
    events.push({
      process,
      type,
      f: keywordName(form.get("f"), `history entry ${index}: :f`),
      value: form.get("value") ?? null,
      ...(form.has("key") ? { key: form.get("key") ?? null } : {}),
      time: typeof time === "number" ? time : undefined,
    });
  });
  return toDocument(events, options, "Jepsen EDN");
}

/** An integer or nil as the EDN reader reads it (a number of up to 15 digits is exact). */
const ednInteger = /^(?:nil|-?\d{1,15})$/;
const ednPair = /^\[(nil|-?\d{1,15}) (nil|-?\d{1,15})\]$/;

/**
 * The usual forms of a Porcupine log's value column (nil, an integer, a cas's `[from to]`)
 * read without the EDN reader, which was most of the time of importing a log; anything else,
 * `nil` included, is undefined: the reader reads it. A test holds it to the reader.
 */
export function quickValue(text: string): Edn | undefined {
  if (text !== "nil" && ednInteger.test(text)) return Number(text);
  const pair = ednPair.exec(text);
  if (pair === null) return undefined;
  return [pair[1] === "nil" ? null : Number(pair[1]), pair[2] === "nil" ? null : Number(pair[2])];
}

/** Import a Porcupine Jepsen etcd log (tab-separated `process type f value` after the logger prefix). */
export function importPorcupineLog(text: string, options: Options = {}): object {
  const events: JepsenEvent[] = [];
  text.split("\n").forEach((line, index) => {
    if (line.trim() === "") return;
    // Columns are tab-separated in most logs and space-padded in some (etcd_100.log and later).
    const match = /jepsen\.util - (\S+)\s+(\S+)\s+(\S+)\s+(.*?)\s*$/.exec(line);
    if (match === null) throw new Error(`line ${index + 1}: not a "jepsen.util - process type f value" line`);
    const [, process, type, f, value] = match;
    if (!/^\d+$/.test(process!)) return; // :nemesis
    const t = type!.replace(/^:/, "");
    if (t !== "invoke" && t !== "ok" && t !== "fail" && t !== "info")
      throw new Error(`line ${index + 1}: the type must be :invoke, :ok, :fail or :info, not ${type}`);
    events.push({
      process: Number(process),
      type: t,
      f: f!.replace(/^:/, ""),
      value: value === "nil" ? null : (quickValue(value!) ?? readEdnAll(value!)[0] ?? null),
      time: index,
    });
  });
  return toDocument(events, options, "Porcupine log");
}

function keywordName(value: Edn | undefined, what: string): string {
  if (value instanceof Keyword) return value.name;
  if (typeof value === "string") return value;
  throw new Error(`${what} must be a keyword, not ${value === undefined ? "missing" : ednToString(value)}`);
}

const registerFs = new Set(["read", "write", "cas"]);
const kvFs = new Set(["get", "put", "append", "txn"]);

/** Pair invocations with completions per process and translate each operation. */
function toDocument(events: readonly JepsenEvent[], options: Options, source: string): object {
  const registerOps = events.some((e) => registerFs.has(e.f));
  const kvOps = events.some((e) => kvFs.has(e.f));
  if (registerOps && kvOps) throw new Error(`${source}: mixes register (:read :write :cas) and kv operations`);
  if (!registerOps && !kvOps)
    throw new Error(`${source}: no :read, :write, :cas, :get, :put, :append or :txn operations`);
  const model: ModelName = registerOps ? "register" : "kv";
  const independent = registerOps && events.some((e) => e.f !== "cas" && Array.isArray(e.value));
  const timed = events.every((e) => e.time !== undefined);
  const open = new Map<number, { event: JepsenEvent; at: number }>();
  const operations: object[] = [];
  const finish = (invoke: { event: JepsenEvent; at: number }, done: JepsenEvent | undefined, at: number): void => {
    const op = translate(invoke.event, done, { model, independent, failedCas: options.failedCas ?? "compare-failed" });
    operations.push({
      client: invoke.event.process,
      invoke: invoke.at,
      ...op,
      ...(op.outcome === "unknown" ? {} : { complete: at }),
    });
  };
  events.forEach((event, index) => {
    const at = timed ? event.time! : index;
    if (event.type === "invoke") {
      const pending = open.get(event.process);
      if (pending !== undefined)
        throw new Error(
          `${source}: process ${event.process} invokes again before its :${pending.event.f} completed (entry ${index})`,
        );
      open.set(event.process, { event, at });
      return;
    }
    const invoke = open.get(event.process);
    if (invoke === undefined)
      throw new Error(`${source}: process ${event.process} completes :${event.f} it never invoked (entry ${index})`);
    if (invoke.event.f !== event.f)
      throw new Error(
        `${source}: process ${event.process} invoked :${invoke.event.f} but completes :${event.f} (entry ${index})`,
      );
    open.delete(event.process);
    finish(invoke, event, at);
  });
  for (const invoke of open.values()) finish(invoke, undefined, Infinity);
  return { format: historyFormat, model, meta: { importedFrom: source }, operations };
}

interface Translation {
  readonly input: unknown;
  readonly outcome: "ok" | "fail" | "unknown";
  readonly output?: unknown;
}

function scalar(value: Edn, what: string): string | number | null {
  if (value === null || typeof value === "string" || typeof value === "number") return value;
  if (value instanceof Keyword) return value.toString();
  throw new Error(`${what}: expected a number, string or nil, not ${ednToString(value)}`);
}

function pair(value: Edn, what: string): [Edn, Edn] {
  if (!Array.isArray(value) || value.length !== 2)
    throw new Error(`${what}: expected a [a b] pair, not ${ednToString(value)}`);
  return [value[0] as Edn, value[1] as Edn];
}

function translate(
  invoke: JepsenEvent,
  done: JepsenEvent | undefined,
  context: { model: ModelName; independent: boolean; failedCas: FailedCas },
): Translation {
  const outcome = done === undefined || done.type === "info" ? "unknown" : done.type === "fail" ? "fail" : "ok";
  return context.model === "register"
    ? translateRegister(invoke, done, outcome, context)
    : translateKv(invoke, done, outcome);
}

function translateRegister(
  invoke: JepsenEvent,
  done: JepsenEvent | undefined,
  outcome: Translation["outcome"],
  context: { independent: boolean; failedCas: FailedCas },
): Translation {
  const what = `process ${invoke.process} :${invoke.f}`;
  const split = (value: Edn): { key?: string | number; value: Edn } => {
    if (!context.independent) return { value };
    const [k, v] = pair(value, what);
    const key = scalar(k, what);
    return { ...(key === null ? {} : { key }), value: v };
  };
  const { key, value } = split(invoke.value);
  const keyField = key === undefined ? {} : { key };
  if (invoke.f === "read") {
    const input = { f: "read", ...keyField };
    if (outcome !== "ok") return { input, outcome };
    return { input, outcome, output: { value: scalar(split(done!.value).value, what) } };
  }
  if (invoke.f === "write") {
    const input = { f: "write", ...keyField, value: scalar(value, what) };
    return outcome === "ok" ? { input, outcome, output: {} } : { input, outcome };
  }
  const [from, to] = pair(value, what);
  const input = { f: "cas", ...keyField, from: scalar(from, what), to: scalar(to, what) };
  if (outcome === "ok") return { input, outcome, output: { ok: true } };
  if (outcome === "fail" && context.failedCas === "compare-failed")
    return { input, outcome: "ok", output: { ok: false } };
  return { input, outcome };
}

/** A list element as it is stored in a kv value: its printed form and a separator. */
function listElement(value: Edn): string {
  return `${ednToString(value)} `;
}

function translateKv(invoke: JepsenEvent, done: JepsenEvent | undefined, outcome: Translation["outcome"]): Translation {
  const what = `process ${invoke.process} :${invoke.f}`;
  const text = (value: Edn): string => (typeof value === "string" ? value : ednToString(value));
  if (invoke.f === "txn") return translateTxn(invoke, done, outcome, what);
  const key = invoke.key;
  if (key === undefined || key === null) throw new Error(`${what}: has no :key`);
  const k = text(key);
  if (invoke.f === "get") {
    const input = { _tag: "get", key: k };
    if (outcome !== "ok") return { input, outcome };
    const v = done!.value;
    return { input, outcome, output: { _tag: "value", value: v === null ? null : text(v) } };
  }
  if (invoke.f === "put") {
    const input = { _tag: "put", key: k, value: text(invoke.value) };
    return outcome === "ok" ? { input, outcome, output: { _tag: "ok" } } : { input, outcome };
  }
  // An append's :ok carries no new value: it completed with its output not recorded.
  return { input: { _tag: "append", key: k, value: text(invoke.value) }, outcome };
}

function translateTxn(
  invoke: JepsenEvent,
  done: JepsenEvent | undefined,
  outcome: Translation["outcome"],
  what: string,
): Translation {
  const micro = (value: Edn): [string, Edn, Edn] => {
    if (!Array.isArray(value) || value.length !== 1)
      throw new Error(
        `${what}: a transaction of ${Array.isArray(value) ? value.length : "?"} micro-operations; only single micro-operation transactions are checked for linearizability (multi-key transactions need Elle)`,
      );
    const op = value[0] as Edn;
    if (!Array.isArray(op) || op.length !== 3)
      throw new Error(`${what}: a micro-operation is [f key value], not ${ednToString(op)}`);
    return [keywordName(op[0] as Edn, what), op[1] as Edn, op[2] as Edn];
  };
  const [f, key, value] = micro(invoke.value);
  const k = typeof key === "string" ? key : ednToString(key);
  if (f === "append") return { input: { _tag: "append", key: k, value: listElement(value) }, outcome };
  if (f !== "r") throw new Error(`${what}: micro-operation :${f} is not :append or :r`);
  const input = { _tag: "get", key: k };
  if (outcome !== "ok") return { input, outcome };
  const [, , list] = micro(done!.value);
  if (list !== null && !Array.isArray(list))
    throw new Error(`${what}: a read's list is a vector, not ${ednToString(list)}`);
  const elements = (list ?? []) as Edn[];
  return {
    input,
    outcome,
    output: { _tag: "value", value: elements.length === 0 ? null : elements.map(listElement).join("") },
  };
}

/** Import a history text of any known format into a paxos-lease/history@1 document. */
export function importHistory(text: string, format: SourceFormat, options: Options = {}): unknown {
  if (format === "jepsen-edn") return importJepsenEdn(text, options);
  if (format === "porcupine-log") return importPorcupineLog(text, options);
  return JSON.parse(text) as unknown;
}

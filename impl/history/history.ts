/**
 * Client histories: the documented JSON format (docs/history-format.md) and the two
 * sequential models histories are checked against: `kv` (spec/kv.ts itself, one key per
 * partition) and `register` (Jepsen-style read/write/cas on registers, each mapped onto the
 * same store under its own key).
 *
 * Decoding is the boundary: a malformed file is refused with one line naming the operation
 * and the field that is wrong. Fields the format does not know are metadata and ignored (a
 * process id, an expected verdict), except near misses of the format's own names (`outptu`),
 * which would otherwise silently turn an output into "not recorded".
 */
import { Either, ParseResult, Schema } from "effect";
import { kv, KvInput, KvOutput, utf8Length, valueBytesMax, valueLengthMax } from "../../spec/kv.ts";
import type { LinearizabilityModel, Operation } from "./linearizability.ts";
import type { RegisterView } from "./search.ts";
import { kvInputFast, kvOutputFast, registerInputFast, registerOutputFast } from "./decode-fast.ts";

/** A register operation as Jepsen and Porcupine write them. Values are JSON scalars. */
const RegisterValue = Schema.Union(Schema.String, Schema.Number, Schema.Null);
/** The register an operation acts on (Jepsen's independent keys); absent: the one register. */
const RegisterKey = Schema.optional(Schema.Union(Schema.String, Schema.Number));
export const RegisterInput = Schema.Union(
  Schema.Struct({ f: Schema.Literal("read"), key: RegisterKey }),
  Schema.Struct({ f: Schema.Literal("write"), key: RegisterKey, value: RegisterValue }),
  Schema.Struct({ f: Schema.Literal("cas"), key: RegisterKey, from: RegisterValue, to: RegisterValue }),
);
export type RegisterInput = typeof RegisterInput.Type;
export const RegisterOutput = Schema.Union(
  Schema.Struct({ value: RegisterValue }),
  Schema.Struct({ ok: Schema.Boolean }),
  Schema.Struct({}),
);
export type RegisterOutput = typeof RegisterOutput.Type;

/** The format tag of a history file. */
export const historyFormat = "paxos-lease/history@1";

/** The names of the models a history can be checked against. */
export type ModelName = "kv" | "register";

/** The key the register model uses for operations that name none. */
const registerKey = "register";

/** The kv key of a register operation's register. */
function registerKeyOf(input: RegisterInput): string {
  return input.key === undefined ? registerKey : `register:${JSON.stringify(input.key)}`;
}

/**
 * The value of one key: a partition's whole state, since each partition is one key. Null is
 * absence.
 */
export type KeyValue = string | null;

/**
 * The length of a value a put, swap or append would set, when it is over the bound execution
 * applies (spec/kv.ts `valueLengthMax`, in UTF-16 code units); null when it is within. The value
 * limit in bytes is admission's: a command refused by it was never proposed, and has no outcome.
 */
function overBound(value: string): number | null {
  return value.length > valueLengthMax ? value.length : null;
}

/** A put, swap or append's output when its new value is `length` code units long, over the bound. */
function tooLarge(length: number): KvOutput {
  return { _tag: "too-large", length, limit: valueLengthMax };
}

/** Whether `output` is the refusal of a new value `length` long (undefined: any output). */
function refusedAs(output: KvOutput | undefined, length: number): boolean {
  return (
    output === undefined || (output._tag === "too-large" && output.length === length && output.limit === valueLengthMax)
  );
}

/**
 * Whether `output` is the refusal of a new value `value` by the value limit in bytes of UTF-8, which
 * execution applies from feature level 4 on (spec/kv.ts): `too-large` in bytes, naming `value`'s
 * length, over the limit. A history does not say at which level each operation executed (a log is
 * raised at a slot no client sees), so the checker takes either outcome of such a put, swap or
 * append: refused so, or executed by the rules below level 4. Which one is right for the level is
 * RepliesMatchSpec's to judge, against the spec run over the chosen log (proofs/service-level.ts).
 */
function refusedInBytes(output: KvOutput | undefined, value: string): boolean {
  if (output?._tag !== "too-large" || output.unit !== "bytes" || output.limit !== valueBytesMax) return false;
  return output.length > valueBytesMax && value.length <= output.length && utf8Length(value) === output.length;
}

/**
 * spec/kv.ts's transition, on one key's value instead of a whole store: the checker steps
 * millions of times and a store's digest costs a hash of the value on every write. A test
 * (history-model.test.ts) shows it agrees with `kv.apply` on every input, value and output.
 */
export function applyToValue(input: KvInput, value: KeyValue): { value: KeyValue; output: KvOutput } {
  switch (input._tag) {
    case "get":
      return { value, output: { _tag: "value", value } };
    case "put": {
      const over = overBound(input.value);
      if (over !== null) return { value, output: tooLarge(over) };
      return { value: input.value, output: { _tag: "ok" } };
    }
    case "delete":
      return { value: null, output: { _tag: "ok" } };
    case "cas": {
      if (value !== input.expected) return { value, output: { _tag: "cas", swapped: false, current: value } };
      const over = overBound(input.value);
      if (over !== null) return { value, output: tooLarge(over) };
      return { value: input.value, output: { _tag: "cas", swapped: true, current: value } };
    }
    case "append": {
      const next = (value ?? "") + input.value;
      const over = overBound(next);
      if (over !== null) return { value, output: tooLarge(over) };
      return { value: next, output: { _tag: "value", value: next } };
    }
    case "noop":
      return { value, output: { _tag: "ok" } };
  }
}

/**
 * A kv operation as a register access, for the refutation by a necessary condition
 * (impl/history/refute.ts): what its output says the value was before it, and the value it
 * leaves (see {@link RegisterView}). A failed register cas says only what the value was not.
 */
export function kvRegisterView(
  input: KvInput & { readonly casFailed?: boolean },
  output: KvOutput | undefined,
): RegisterView {
  switch (input._tag) {
    case "get":
      return output?._tag === "value" ? { observes: output.value } : {};
    case "put":
      return { leaves: { value: input.value, certain: true } };
    case "delete":
      return { leaves: { value: null, certain: true } };
    case "cas":
      if (input.casFailed === true) return {};
      if (output === undefined) return { leaves: { value: input.value, certain: false } };
      if (output._tag !== "cas") return {};
      return output.swapped
        ? { observes: input.expected, leaves: { value: input.value, certain: true } }
        : { observes: output.current };
    case "append":
      // The value before an append is not fixed by its output ("" and absent both give it).
      if (output === undefined) return { leaves: "any" };
      return output._tag === "value" ? { leaves: { value: output.value, certain: true } } : {};
    case "noop":
      return {};
  }
}

/**
 * The checker's step: {@link applyToValue} followed by a comparison of its output with the
 * recorded one (undefined: any output), in one function that allocates nothing. The checker
 * runs it once per operation and state, and in a fresh process it is among the first code the
 * optimizing compiler compiles, so it is kept small. A test (linearizability.test.ts) shows it
 * agrees with `applyToValue` and `kv.outputsEqual` on every input, value and output.
 */
export function stepValue(value: KeyValue, input: KvInput, output: KvOutput | undefined): KeyValue | undefined {
  switch (input._tag) {
    case "get":
      return output === undefined || (output._tag === "value" && output.value === value) ? value : undefined;
    case "put": {
      if (refusedInBytes(output, input.value)) return value;
      const over = overBound(input.value);
      if (over !== null) return refusedAs(output, over) ? value : undefined;
      return output === undefined || output._tag === "ok" ? input.value : undefined;
    }
    case "delete":
      return output === undefined || output._tag === "ok" ? null : undefined;
    case "cas": {
      const swapped = value === input.expected;
      if (swapped && refusedInBytes(output, input.value)) return value;
      const over = swapped ? overBound(input.value) : null;
      if (over !== null) return refusedAs(output, over) ? value : undefined;
      if (output !== undefined && !(output._tag === "cas" && output.swapped === swapped && output.current === value))
        return undefined;
      return swapped ? input.value : value;
    }
    case "append": {
      const next = (value ?? "") + input.value;
      if (refusedInBytes(output, next)) return value;
      const over = overBound(next);
      if (over !== null) return refusedAs(output, over) ? value : undefined;
      return output === undefined || (output._tag === "value" && output.value === next) ? next : undefined;
    }
    case "noop":
      return output === undefined || output._tag === "ok" ? value : undefined;
  }
}

/** The kv model: spec/kv.ts, one partition per key, whose state is that key's value. */
export const kvModel: LinearizabilityModel<KeyValue, KvInput, KvOutput> = {
  name: "kv",
  partition: (input) => (input._tag === "noop" ? undefined : input.key),
  readOnly: (input) => kv.readOnly(input),
  init: () => null,
  step: stepValue,
  key: (state) => state,
  registerView: kvRegisterView,
};

/** Map a register value onto a kv value (distinct scalars stay distinct: 1 is not "1"). */
function registerToKv(value: string | number | null): string {
  return JSON.stringify(value);
}

/** Translate a register operation into the kv operation it means, under one key. */
export function registerAsKv(
  input: RegisterInput,
  output: RegisterOutput | undefined,
): { input: KvInput; output: KvOutput | undefined } {
  const registerKey = registerKeyOf(input);
  switch (input.f) {
    case "read": {
      if (output === undefined) return { input: { _tag: "get", key: registerKey }, output: undefined };
      if (!("value" in output))
        throw new Error(`a read's output must be {"value": ...}, not ${JSON.stringify(output)}`);
      // A register never written reads null; so does one written with null.
      return {
        input: { _tag: "get", key: registerKey },
        output: { _tag: "value", value: output.value === null ? null : registerToKv(output.value) },
      };
    }
    case "write":
      // A write answers `{}`; any other answer (say `{"ok": false}`) is not a write's, and is
      // refused rather than read as success.
      if (output !== undefined && Object.keys(output).length !== 0)
        throw new Error(`a write's output must be {}, not ${JSON.stringify(output)}`);
      return {
        input:
          input.value === null
            ? { _tag: "delete", key: registerKey }
            : { _tag: "put", key: registerKey, value: registerToKv(input.value) },
        output: output === undefined ? undefined : { _tag: "ok" },
      };
    case "cas": {
      const expected = input.from === null ? null : registerToKv(input.from);
      const kvInput: KvInput = { _tag: "cas", key: registerKey, expected, value: registerToKv(input.to) };
      if (output === undefined) return { input: kvInput, output: undefined };
      if (!("ok" in output))
        throw new Error(`a cas's output must be {"ok": true|false}, not ${JSON.stringify(output)}`);
      // A failed cas names no current value: its output says only "not swapped", and the
      // register model checks it by a predicate (see registerModel).
      return { input: kvInput, output: { _tag: "cas", swapped: output.ok, current: output.ok ? expected : null } };
    }
  }
}

/**
 * The register model is the kv model on one key, except that a failed cas only says "the
 * value was not `from`", which the kv output (that also names the current value) cannot
 * express; such operations are checked by a predicate instead of an exact output (their kv
 * output's `current` is a placeholder, never compared).
 */
export const registerModel: LinearizabilityModel<KeyValue, KvInput & { readonly casFailed?: boolean }, KvOutput> = {
  name: "register",
  partition: (input) => (input._tag === "noop" ? undefined : input.key),
  readOnly: (input) => kv.readOnly(input) || input.casFailed === true,
  init: () => null,
  step(state, input, output) {
    if (input.casFailed === true && input._tag === "cas") return state === input.expected ? undefined : state;
    return stepValue(state, input, output);
  },
  key: (state) => state,
  registerView: kvRegisterView,
};

/** An operation of a checkable history (register operations as their kv meaning). */
export type HistoryOperation = Operation<KvInput & { readonly casFailed?: boolean }, KvOutput>;

/** A decoded, checkable history. */
export interface LoadedHistory {
  readonly model: ModelName;
  readonly operations: readonly HistoryOperation[];
  /** Operations known to have failed (outcome `fail`); they never took effect and are not checked. */
  readonly failed: number;
  /** Operations whose outcome is unknown. */
  readonly unknown: number;
  /** Operations that completed without a recorded output (any output, within their interval). */
  readonly unrecorded: number;
  /** The file's `meta` object, if any (ignored by the checker). */
  readonly meta?: Readonly<Record<string, unknown>>;
}

/** Names of the format's fields, for refusing near misses. */
const fieldNames = ["client", "input", "invoke", "outcome", "complete", "output"];

/** Levenshtein distance, for the near-miss check (short strings only). */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

/** One line from a Schema error: the path and message of its first issue. */
function oneLine(error: ParseResult.ParseError): string {
  const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0];
  if (issue === undefined) return "invalid";
  const path = issue.path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("");
  const message = issue.message.replace(/\s+/g, " ");
  return `${path === "" ? "" : `${path.slice(1)}: `}${message.length > 240 ? `${message.slice(0, 240)}...` : message}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function time(op: Record<string, unknown>, field: "invoke" | "complete"): number {
  const t = op[field];
  if (typeof t !== "number" || !Number.isFinite(t) || t < 0)
    throw new Error(`"${field}" must be a finite, non-negative number, not ${JSON.stringify(t)}`);
  return t;
}

const decodeKvInput = Schema.decodeUnknownEither(KvInput, { onExcessProperty: "error" });
const decodeKvOutput = Schema.decodeUnknownEither(KvOutput, { onExcessProperty: "error" });
const decodeRegisterInput = Schema.decodeUnknownEither(RegisterInput, { onExcessProperty: "error" });
const decodeRegisterOutput = Schema.decodeUnknownEither(RegisterOutput, { onExcessProperty: "error" });

function decodeField<T>(
  decode: (u: unknown) => Either.Either<T, ParseResult.ParseError>,
  value: unknown,
  field: string,
): T {
  const decoded = decode(value);
  if (Either.isLeft(decoded)) throw new Error(`"${field}": ${oneLine(decoded.left)}`);
  return decoded.right;
}

/** Decode one operation; throws an Error naming the field that is wrong. */
function decodeOperation(raw: unknown, id: number, model: ModelName): HistoryOperation | "fail" {
  if (!isRecord(raw)) throw new Error("is not an object");
  for (const name of Object.keys(raw)) {
    if (fieldNames.includes(name)) continue;
    const near = fieldNames.find((known) => distance(name, known) <= 2);
    if (near !== undefined) throw new Error(`has a field "${name}": did you mean "${near}"?`);
  }
  const client = raw.client;
  if (!(typeof client === "string" || (typeof client === "number" && Number.isSafeInteger(client))))
    throw new Error(`"client" must be a string or an integer, not ${JSON.stringify(client)}`);
  const invoke = time(raw, "invoke");
  const outcome = raw.outcome;
  if (outcome !== "ok" && outcome !== "fail" && outcome !== "unknown")
    throw new Error(`"outcome" must be "ok", "fail" or "unknown", not ${JSON.stringify(outcome)}`);
  if (outcome !== "ok" && "output" in raw) throw new Error(`has an "output" but its outcome is ${outcome}`);
  if (outcome === "unknown" && "complete" in raw) throw new Error(`has a "complete" time but its outcome is unknown`);
  const complete =
    outcome === "ok"
      ? time(raw, "complete")
      : outcome === "fail" && "complete" in raw
        ? time(raw, "complete")
        : Infinity;
  if (complete < invoke) throw new Error(`completes at ${complete}, before its invocation at ${invoke}`);
  let mapped: { input: KvInput & { readonly casFailed?: boolean }; output: KvOutput | undefined };
  if (model === "kv") {
    const input = kvInputFast(raw.input) ?? decodeField(decodeKvInput, raw.input, "input");
    const output =
      "output" in raw ? (kvOutputFast(raw.output) ?? decodeField(decodeKvOutput, raw.output, "output")) : undefined;
    mapped = { input, output };
  } else {
    const input = registerInputFast(raw.input) ?? decodeField(decodeRegisterInput, raw.input, "input");
    const output =
      "output" in raw
        ? (registerOutputFast(raw.output) ?? decodeField(decodeRegisterOutput, raw.output, "output"))
        : undefined;
    const kvMeaning = registerAsKv(input, output);
    const casFailed = input.f === "cas" && output !== undefined && "ok" in output && !output.ok;
    const i = kvMeaning.input;
    // An object literal, not a spread: every failed cas then shares one object shape, which the
    // checker's hot paths need (a spread made each one its own).
    mapped = {
      input:
        casFailed && i._tag === "cas"
          ? { _tag: "cas", key: i.key, expected: i.expected, value: i.value, casFailed }
          : i,
      output: kvMeaning.output,
    };
  }
  if (outcome === "fail") return "fail";
  return {
    id,
    client: String(client),
    input: mapped.input,
    invoke,
    complete: outcome === "ok" ? complete : Infinity,
    output: mapped.output,
  };
}

/**
 * Decode a parsed JSON history; throws an Error of one line naming what is wrong. The model
 * is `model` when given, else the file's `model`, else kv; a file whose `model` differs from
 * the one asked for is refused.
 */
export function loadHistory(json: unknown, model?: ModelName): LoadedHistory {
  if (!isRecord(json)) throw new Error(`a history is a JSON object with "format" and "operations"`);
  if (json.format !== historyFormat)
    throw new Error(`"format" must be "${historyFormat}", not ${JSON.stringify(json.format)}`);
  const declared = json.model;
  if (declared !== undefined && declared !== "kv" && declared !== "register")
    throw new Error(`"model" must be "kv" or "register", not ${JSON.stringify(declared)}`);
  if (model !== undefined && declared !== undefined && declared !== model)
    throw new Error(`the history is a ${declared} history, but the ${model} model was asked for`);
  if (json.meta !== undefined && !isRecord(json.meta)) throw new Error(`"meta" must be an object`);
  if (!Array.isArray(json.operations)) throw new Error(`"operations" must be an array`);
  const chosen: ModelName = model ?? declared ?? "kv";
  const operations: HistoryOperation[] = [];
  let failed = 0;
  let unknown = 0;
  let unrecorded = 0;
  json.operations.forEach((raw: unknown, index) => {
    let op: HistoryOperation | "fail";
    try {
      op = decodeOperation(raw, index, chosen);
    } catch (error) {
      throw new Error(`operation ${index}: ${(error as Error).message}`);
    }
    if (op === "fail") {
      failed++;
      return;
    }
    if (op.complete === Infinity) unknown++;
    else if (op.output === undefined) unrecorded++;
    operations.push(op);
  });
  return {
    model: chosen,
    operations,
    failed,
    unknown,
    unrecorded,
    ...(json.meta === undefined ? {} : { meta: json.meta }),
  };
}

/** The model object for a model name. */
export function modelNamed(
  name: ModelName,
): LinearizabilityModel<KeyValue, KvInput & { readonly casFailed?: boolean }, KvOutput> {
  return name === "kv" ? kvModel : registerModel;
}

/**
 * For minimising (minimise.ts): true when `reader`'s output may show what `writer` wrote, so
 * that a write is kept while an operation that saw it is. A failed register cas sees every
 * write (it says only what the value was not).
 */
export function kvSees(reader: HistoryOperation, writer: HistoryOperation): boolean {
  if (reader.input.casFailed === true) return true;
  const out = reader.output;
  if (out === undefined || out._tag === "ok" || out._tag === "too-large") return false;
  const seen = out._tag === "value" ? out.value : out.current;
  const w = writer.input;
  if (w._tag === "delete") return seen === null;
  if (seen === null) return false;
  if (w._tag === "put" || w._tag === "cas") return seen === w.value;
  return w._tag === "append" && seen.includes(w.value);
}

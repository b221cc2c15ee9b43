/**
 * Client histories: the documented JSON format (docs/history-format.md), its Schema, and the
 * two sequential models histories are checked against: `kv` (spec/kv.ts itself, one key per
 * partition) and `register` (Jepsen-style read/write/cas on one register, mapped onto the
 * same store under a single key).
 *
 * Decoding is the boundary: a malformed file is refused with a message naming the operation
 * and the field that is wrong.
 */
import { Either, ParseResult, Schema } from "effect";
import { pmSortedEntries } from "../spec/persistent-map.ts";
import { kv, kvGet, kvSize, KvInput, KvOutput, type KvState } from "../spec/kv.ts";
import type { LinearizabilityModel, Operation } from "./linearizability.ts";

const Time = Schema.Number.pipe(Schema.finite(), Schema.nonNegative());

/** A register operation as Jepsen and porcupine write them. Values are JSON scalars. */
const RegisterValue = Schema.Union(Schema.String, Schema.Number, Schema.Null);
export const RegisterInput = Schema.Union(
  Schema.Struct({ f: Schema.Literal("read") }),
  Schema.Struct({ f: Schema.Literal("write"), value: RegisterValue }),
  Schema.Struct({ f: Schema.Literal("cas"), from: RegisterValue, to: RegisterValue }),
);
export type RegisterInput = typeof RegisterInput.Type;
export const RegisterOutput = Schema.Union(
  Schema.Struct({ value: RegisterValue }),
  Schema.Struct({ ok: Schema.Boolean }),
  Schema.Struct({}),
);
export type RegisterOutput = typeof RegisterOutput.Type;

function operationSchema<I, II, O, OI>(input: Schema.Schema<I, II>, output: Schema.Schema<O, OI>) {
  return Schema.Union(
    Schema.Struct({
      client: Schema.String,
      input,
      invoke: Time,
      outcome: Schema.Literal("ok"),
      complete: Time,
      output,
    }),
    Schema.Struct({
      client: Schema.String,
      input,
      invoke: Time,
      outcome: Schema.Literal("fail"),
      complete: Schema.optional(Time),
    }),
    Schema.Struct({ client: Schema.String, input, invoke: Time, outcome: Schema.Literal("unknown") }),
  );
}

/** A history file: `{ format, model?, operations: [...] }`. */
export const KvHistory = Schema.Struct({
  format: Schema.Literal("paxos-lease/history@1"),
  model: Schema.optional(Schema.Literal("kv")),
  operations: Schema.Array(operationSchema(KvInput, KvOutput)),
});
export const RegisterHistory = Schema.Struct({
  format: Schema.Literal("paxos-lease/history@1"),
  model: Schema.optional(Schema.Literal("register")),
  operations: Schema.Array(operationSchema(RegisterInput, RegisterOutput)),
});
export type KvHistory = typeof KvHistory.Type;
export type KvHistoryOperation = KvHistory["operations"][number];

/** The exact key of a store holding at most one entry: that entry, or absence. */
function singleValueKey(state: KvState): string {
  if (kvSize(state) > 1) throw new Error("a partition's store holds more than one key");
  const entries = pmSortedEntries(state.entries);
  return entries.length === 0 ? "" : `${entries[0]![0]}\u0000${entries[0]![1]}`;
}

/** The names of the models a history can be checked against. */
export type ModelName = "kv" | "register";

/** The single key the register model lives under. */
const registerKey = "register";

/** The kv model: spec/kv.ts, one partition per key, exact state keys (the key's value). */
export const kvModel: LinearizabilityModel<KvState, KvInput, KvOutput> = {
  name: "kv",
  partition: (input) => (input._tag === "noop" ? undefined : input.key),
  readOnly: (input) => kv.readOnly(input),
  init: () => kv.start,
  step(state, input, output) {
    const applied = kv.apply(input, state);
    if (output !== undefined && !kv.outputsEqual(applied.output, output)) return undefined;
    return applied.state;
  },
  // Each partition holds one key, so its state is exactly that key's value (or absence).
  key: singleValueKey,
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
      return { input: kvInput, output: output.ok ? { _tag: "cas", swapped: true, current: expected } : undefined };
    }
  }
}

/**
 * The register model is the kv model on one key, except that a failed cas only says "the
 * value was not `from`", which the kv output (that also names the current value) cannot
 * express; such operations are checked by a predicate instead of an exact output. They carry
 * no output but are completed operations, so the checker checks them (it skips only
 * read-only operations whose outcome is unknown).
 */
export const registerModel: LinearizabilityModel<KvState, KvInput & { readonly casFailed?: boolean }, KvOutput> = {
  name: "register",
  partition: () => registerKey,
  readOnly: (input) => kv.readOnly(input) || input.casFailed === true,
  init: () => kv.start,
  step(state, input, output) {
    if (input.casFailed === true && input._tag === "cas") {
      return kvGet(state, registerKey) === input.expected ? undefined : state;
    }
    return kvModel.step(state, input, output);
  },
  key: singleValueKey,
};

/** A decoded, checkable history. */
export interface LoadedHistory {
  readonly model: ModelName;
  readonly operations: readonly Operation<KvInput & { readonly casFailed?: boolean }, KvOutput>[];
  /** Operations known to have failed (outcome `fail`); they never took effect and are not checked. */
  readonly failed: number;
  /** Operations whose outcome is unknown. */
  readonly unknown: number;
}

function formatError(error: ParseResult.ParseError): string {
  return ParseResult.TreeFormatter.formatErrorSync(error);
}

/** Decode a parsed JSON history for `model`; throws an Error naming what is wrong. */
export function loadHistory(json: unknown, model: ModelName): LoadedHistory {
  if (model === "kv") {
    const decoded = Schema.decodeUnknownEither(KvHistory)(json, { errors: "first", onExcessProperty: "error" });
    if (Either.isLeft(decoded)) throw new Error(`not a kv history: ${formatError(decoded.left)}`);
    return toOperations(decoded.right.operations, "kv", (op) => ({
      input: op.input,
      output: op.outcome === "ok" ? op.output : undefined,
    }));
  }
  const decoded = Schema.decodeUnknownEither(RegisterHistory)(json, { errors: "first", onExcessProperty: "error" });
  if (Either.isLeft(decoded)) throw new Error(`not a register history: ${formatError(decoded.left)}`);
  return toOperations(decoded.right.operations, "register", (op, index) => {
    try {
      const output = op.outcome === "ok" ? op.output : undefined;
      const mapped = registerAsKv(op.input, output);
      const casFailed = op.input.f === "cas" && output !== undefined && "ok" in output && !output.ok;
      return { input: casFailed ? { ...mapped.input, casFailed } : mapped.input, output: mapped.output };
    } catch (error) {
      throw new Error(`operation ${index}: ${(error as Error).message}`);
    }
  });
}

function toOperations<
  T extends { client: string; invoke: number; outcome: "ok" | "fail" | "unknown"; complete?: number },
>(
  raw: readonly T[],
  model: ModelName,
  convert: (
    op: T,
    index: number,
  ) => { input: KvInput & { readonly casFailed?: boolean }; output: KvOutput | undefined },
): LoadedHistory {
  const operations: Operation<KvInput & { readonly casFailed?: boolean }, KvOutput>[] = [];
  let failed = 0;
  let unknown = 0;
  raw.forEach((op, index) => {
    if (op.outcome === "fail") {
      failed++;
      return;
    }
    if (op.outcome === "unknown") unknown++;
    const complete = op.outcome === "ok" ? op.complete! : Infinity;
    if (complete < op.invoke)
      throw new Error(`operation ${index}: completes at ${complete}, before its invocation at ${op.invoke}`);
    const { input, output } = convert(op, index);
    operations.push({ id: index, client: op.client, input, invoke: op.invoke, complete, output });
  });
  return { model, operations, failed, unknown };
}

/** The model object for a model name. */
export function modelNamed(
  name: ModelName,
): LinearizabilityModel<KvState, KvInput & { readonly casFailed?: boolean }, KvOutput> {
  return name === "kv" ? kvModel : registerModel;
}

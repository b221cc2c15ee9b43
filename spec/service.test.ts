/**
 * Properties of the service spec (spec/service.ts): each request runs exactly once, retries
 * get the cached output, another command under a number already used is refused as reused,
 * older requests are refused, and the whole is deterministic.
 */
import { fc, test } from "@fast-check/vitest";
import { describe, expect } from "vitest";
import { fmix32, fnv1a, fnvOffsetBasis } from "./hash.ts";
import { kv, type KvInput } from "./kv.ts";
import { commandDigest, serviceOf, sessionOf, type Request } from "./service.ts";
import { runInputs } from "./state-machine.ts";

const service = serviceOf(kv);
const request: fc.Arbitrary<Request<KvInput>> = fc.record({
  clientId: fc.constantFrom("c1", "c2"),
  seq: fc.integer({ min: 1, max: 4 }),
  input: fc.constantFrom<KvInput>({ _tag: "append", key: "log", value: "x" }, { _tag: "get", key: "log" }),
});

describe("service", () => {
  test.prop([fc.array(request, { maxLength: 40 })])(
    "executes a request at most once per (client, seq) and never an older one",
    (requests) => {
      const { state, outputs } = runInputs(service, requests);
      const lastSeq = new Map<string, number>();
      const lastInput = new Map<string, KvInput>();
      let executed = 0;
      requests.forEach((r, i) => {
        const last = lastSeq.get(r.clientId) ?? 0;
        const out = outputs[i]!;
        if (r.seq > last) {
          expect(out._tag).toBe("executed");
          lastSeq.set(r.clientId, r.seq);
          lastInput.set(r.clientId, r.input);
          executed++;
        } else if (r.seq === last) {
          const same = JSON.stringify(lastInput.get(r.clientId)) === JSON.stringify(r.input);
          expect(out).toMatchObject(same ? { _tag: "duplicate" } : { _tag: "reused", seq: r.seq });
        } else {
          expect(out).toEqual({ _tag: "stale", lastSeq: last });
        }
      });
      expect(state.executed).toBe(executed);
      for (const [client, seq] of lastSeq) expect(sessionOf(state, client)?.seq).toBe(seq);
    },
  );

  test.prop([fc.array(request, { maxLength: 40 })])(
    "a retry returns exactly the cached output and changes nothing",
    (requests) => {
      let state = service.start;
      for (const r of requests) {
        const first = service.apply(r, state);
        if (first.output._tag !== "executed") continue;
        const retry = service.apply(r, first.state);
        expect(retry.state).toBe(first.state);
        expect(retry.output).toEqual({ _tag: "duplicate", output: first.output.output });
        state = first.state;
      }
    },
  );

  test.prop([fc.array(request, { maxLength: 40 })])("is deterministic", (requests) => {
    const a = runInputs(service, requests);
    const b = runInputs(service, requests);
    expect(a.outputs).toEqual(b.outputs);
    expect(kv.digest(a.state.app)).toBe(kv.digest(b.state.app));
  });

  test("another command under a number already executed is refused as reused and changes nothing", () => {
    const put: KvInput = { _tag: "put", key: "k0", value: "a" };
    const first = service.apply({ clientId: "c", seq: 3, input: put }, service.start);
    for (const other of [
      { _tag: "put", key: "k1", value: "a" },
      { _tag: "put", key: "k0", value: "b" },
      { _tag: "append", key: "k0", value: "a" },
      { _tag: "delete", key: "k0" },
    ] satisfies KvInput[]) {
      const reused = service.apply({ clientId: "c", seq: 3, input: other }, first.state);
      expect(reused.output).toEqual({ _tag: "reused", seq: 3 });
      expect(reused.state).toBe(first.state);
    }
    // The retry of the very command, with its fields in another order, is a retry.
    const retry = service.apply({ clientId: "c", seq: 3, input: { value: "a", key: "k0", _tag: "put" } }, first.state);
    expect(retry.output).toEqual({ _tag: "duplicate", output: { _tag: "ok" } });
  });

  test.prop([fc.jsonValue(), fc.jsonValue()])("commandDigest tells apart what JSON tells apart", (a, b) => {
    const canonical = (v: unknown): string =>
      JSON.stringify(v, (_k, x: unknown) =>
        x !== null && typeof x === "object" && !Array.isArray(x)
          ? Object.fromEntries(Object.entries(x).sort(([p], [q]) => (p < q ? -1 : p > q ? 1 : 0)))
          : x,
      );
    if (canonical(a) === canonical(b)) expect(commandDigest(a)).toBe(commandDigest(b));
    else expect(commandDigest(a)).not.toBe(commandDigest(b));
  });

  // Any characters (lone surrogates, control characters, quotes), members whose value is
  // undefined (left out), integer-like keys (which objects order before the others).
  const anyString = fc.oneof(
    fc.string({ unit: "binary", maxLength: 12 }),
    fc.constantFrom("\ud800", "a\udc00b", "\ud83d\ude00", 'q"\\\n', "\u2028\u007f"),
  );
  const plain: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
    value: fc.oneof(
      { depthSize: "small" },
      anyString,
      fc.double(),
      fc.integer(),
      fc.boolean(),
      fc.constant(null),
      fc.constant(undefined),
      fc.array(tie("value"), { maxLength: 4 }),
      fc.dictionary(fc.oneof(anyString, fc.nat({ max: 20 }).map(String)), tie("value"), { maxKeys: 4 }),
    ),
  })).value;
  test.prop([plain])("commandDigest folds both lanes over the canonical JSON of the input", (input) => {
    const canonical = (value: unknown): string => {
      if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
      if (value !== null && typeof value === "object") {
        const entries = Object.entries(value as Record<string, unknown>)
          .filter(([, v]) => v !== undefined)
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
        return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`;
      }
      return JSON.stringify(value) ?? "null";
    };
    const text = canonical(input);
    const hex = (h: number): string => fmix32(h).toString(16).padStart(8, "0");
    expect(commandDigest(input)).toBe(`${hex(fnv1a(fnvOffsetBasis, text))}${hex(fnv1a(0x050c5d1f, text))}`);
  });

  test("appends by two clients with retries run once each", () => {
    const input: KvInput = { _tag: "append", key: "k", value: "x" };
    const { state, outputs } = runInputs(service, [
      { clientId: "a", seq: 1, input },
      { clientId: "a", seq: 1, input },
      { clientId: "b", seq: 1, input },
      { clientId: "a", seq: 2, input },
      { clientId: "a", seq: 1, input },
    ]);
    expect(outputs.map((o) => o._tag)).toEqual(["executed", "duplicate", "executed", "executed", "stale"]);
    expect(state.executed).toBe(3);
    expect(kv.snapshot(state.app)).toEqual({ format: "paxos-lease/kv@1", entries: [["k", "xxx"]] });
  });
});

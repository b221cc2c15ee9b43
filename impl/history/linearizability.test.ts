/**
 * The linearizability checker on hand-made histories (each a classic case from Wing and
 * Gong, Lowe, and Jepsen's register tests) and on generated ones: a history whose
 * operations take effect at a point inside their interval is linearizable by construction,
 * and the same history with one read made stale is not.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { kv, kvGet, valueBytesMax, valueLengthMax, type KvInput, type KvOutput } from "../../spec/kv.ts";
import { featureLevelValueBytes } from "../../spec/service.ts";
import { applyToValue, loadHistory, kvModel, modelNamed, stepValue } from "./history.ts";
import { checkLinearizable, checkPartition, type Operation } from "./linearizability.ts";
import { refute } from "./refute.ts";

type Op = Operation<KvInput, KvOutput>;
const staleAfterSixteen = join(import.meta.dirname, "testdata", "stale-read-after-sixteen-writes.json");
let nextId = 0;
function op(client: string, input: KvInput, invoke: number, complete: number | null, output?: KvOutput): Op {
  return {
    id: nextId++,
    client,
    input,
    invoke,
    complete: complete ?? Infinity,
    output: complete === null ? undefined : output,
  };
}
const put = (key: string, value: string): KvInput => ({ _tag: "put", key, value });
const get = (key: string): KvInput => ({ _tag: "get", key });
const val = (value: string | null): KvOutput => ({ _tag: "value", value });
const ok: KvOutput = { _tag: "ok" };

describe("hand-made histories", () => {
  it("a read concurrent with a write may see the old or the new value", () => {
    for (const seen of [null, "1"]) {
      const h = [op("a", put("x", "1"), 0, 10, ok), op("b", get("x"), 2, 5, val(seen))];
      expect(checkLinearizable(kvModel, h).verdict).toBe("linearizable");
    }
  });

  it("a read invoked after a write completed must see it (stale read)", () => {
    const h = [op("a", put("x", "1"), 0, 1, ok), op("b", get("x"), 2, 3, val(null))];
    const result = checkLinearizable(kvModel, h);
    expect(result.verdict).toBe("not-linearizable");
    const part = result.partitions[0]!;
    expect(part.partition).toBe("x");
    expect(part.longestPrefix!.map((o) => o.id)).toEqual([h[0]!.id]);
    expect(part.stuck!.map((o) => o.id)).toEqual([h[1]!.id]);
  });

  it("two reads must not see a value, then the older value again (new-old inversion)", () => {
    const h = [
      op("w", put("x", "1"), 0, 100, ok),
      op("r1", get("x"), 10, 20, val("1")),
      op("r2", get("x"), 30, 40, val(null)),
    ];
    expect(checkLinearizable(kvModel, h).verdict).toBe("not-linearizable");
  });

  it("an operation with unknown outcome may take effect late, or never", () => {
    const lost = [op("a", put("x", "1"), 0, null), op("b", get("x"), 5, 6, val(null))];
    expect(checkLinearizable(kvModel, lost).verdict).toBe("linearizable");
    const late = [
      op("a", put("x", "1"), 0, null),
      op("b", get("x"), 5, 6, val(null)),
      op("b", get("x"), 50, 60, val("1")),
    ];
    expect(checkLinearizable(kvModel, late).verdict).toBe("linearizable");
    const flicker = [...late, op("b", get("x"), 70, 80, val(null))];
    expect(checkLinearizable(kvModel, flicker).verdict).toBe("not-linearizable");
  });

  it("keys are independent: a violation is reported on its own key only", () => {
    const h = [
      op("a", put("x", "1"), 0, 1, ok),
      op("a", put("y", "1"), 2, 3, ok),
      op("b", get("y"), 4, 5, val("1")),
      op("b", get("x"), 6, 7, val("2")),
    ];
    const result = checkLinearizable(kvModel, h, { allKeys: true });
    expect(result.verdict).toBe("not-linearizable");
    expect(result.partitions.map((p) => [p.partition, p.verdict]).sort()).toEqual([
      ["x", "not-linearizable"],
      ["y", "linearizable"],
    ]);
    // Without allKeys the search stops at the first key that is not linearizable, and says so.
    const first = checkLinearizable(kvModel, [
      ...h,
      op("c", put("z", "1"), 0, 1, ok),
      op("c", put("z", "2"), 2, 3, ok),
    ]);
    expect(first.verdict).toBe("not-linearizable");
    expect(first.partitions.at(-1)!.verdict).toBe("not-linearizable");
    expect(first.notSearched.partitions + first.partitions.length).toBe(3);
    expect(first.operations + first.notSearched.operations).toBe(6);
  });

  it("compare-and-swap and append are checked by the kv spec itself", () => {
    const good = [
      op("a", { _tag: "append", key: "l", value: "a" }, 0, 10, val("a")),
      op("b", { _tag: "append", key: "l", value: "b" }, 1, 11, val("ab")),
      op("c", { _tag: "cas", key: "l", expected: "ab", value: "z" }, 20, 21, {
        _tag: "cas",
        swapped: true,
        current: "ab",
      }),
    ];
    expect(checkLinearizable(kvModel, good).verdict).toBe("linearizable");
    const bad = [
      op("a", { _tag: "append", key: "l", value: "a" }, 0, 10, val("a")),
      op("b", { _tag: "append", key: "l", value: "b" }, 1, 11, val("b")),
    ];
    expect(checkLinearizable(kvModel, bad).verdict).toBe("not-linearizable");
  });

  it("a search over budget answers unknown, never linearizable", () => {
    // Two reads in a row see two values after every write completed: no refutation applies.
    const h = Array.from({ length: 12 }, (_, i) => op(`c${i}`, put("x", String(i)), 0, 100, ok));
    h.push(op("r", get("x"), 200, 201, val("1")), op("r", get("x"), 202, 203, val("2")));
    expect(checkLinearizable(kvModel, h, { stepsMaxPerPartition: 50 }).verdict).toBe("unknown");
    expect(checkLinearizable(kvModel, h).verdict).toBe("not-linearizable");
  });

  it("refuses an operation that completes before it is invoked", () => {
    expect(() => checkLinearizable(kvModel, [op("a", put("x", "1"), 5, 4, ok)])).toThrow(
      /completes \(4\) before it is invoked \(5\)/,
    );
  });
});

describe("the history format", () => {
  it("loads kv histories, skipping failed operations and marking unknown ones", () => {
    const loaded = loadHistory(
      {
        format: "paxos-lease/history@1",
        operations: [
          {
            client: "a",
            input: { _tag: "put", key: "x", value: "1" },
            invoke: 0,
            outcome: "ok",
            complete: 1,
            output: { _tag: "ok" },
          },
          { client: "b", input: { _tag: "put", key: "x", value: "2" }, invoke: 2, outcome: "fail", complete: 3 },
          { client: "c", input: { _tag: "get", key: "x" }, invoke: 4, outcome: "unknown" },
        ],
      },
      "kv",
    );
    expect(loaded.failed).toBe(1);
    expect(loaded.unknown).toBe(1);
    expect(loaded.operations.map((o) => [o.id, o.complete])).toEqual([
      [0, 1],
      [2, Infinity],
    ]);
  });

  it("refuses malformed histories with a message naming the problem", () => {
    expect(() => loadHistory({ format: "nope", operations: [] }, "kv")).toThrow(
      /^"format" must be "paxos-lease\/history@1", not "nope"$/,
    );
    expect(() =>
      loadHistory(
        {
          format: "paxos-lease/history@1",
          operations: [{ client: "a", input: { _tag: "put", key: "x" }, invoke: 0, outcome: "unknown" }],
        },
        "kv",
      ),
    ).toThrow(/^operation 0: "input": [^\n]*value[^\n]*$/);
    expect(() =>
      loadHistory(
        {
          format: "paxos-lease/history@1",
          operations: [
            {
              client: "a",
              input: { _tag: "get", key: "x" },
              invoke: 5,
              outcome: "ok",
              complete: 1,
              output: { _tag: "value", value: null },
            },
          ],
        },
        "kv",
      ),
    ).toThrow(/operation 0: completes at 1, before its invocation at 5/);
  });

  it("takes metadata, integer clients, the model from the file, and outputs not recorded", () => {
    const history = {
      format: "paxos-lease/history@1",
      model: "register",
      meta: { source: "jepsen", expected: "linearizable" },
      operations: [
        { client: 3, process: 3, input: { f: "write", value: 1 }, invoke: 0, outcome: "ok", complete: 1 },
        { client: "b", input: { f: "read" }, invoke: 2, outcome: "ok", complete: 3, output: { value: 1 }, note: "x" },
      ],
    };
    const loaded = loadHistory(history);
    expect(loaded.model).toBe("register");
    expect(loaded.unrecorded).toBe(1);
    expect(loaded.meta).toEqual({ source: "jepsen", expected: "linearizable" });
    expect(loaded.operations.map((o) => o.client)).toEqual(["3", "b"]);
    expect(checkLinearizable(modelNamed("register"), loaded.operations).verdict).toBe("linearizable");
    expect(() => loadHistory(history, "kv")).toThrow(
      /^the history is a register history, but the kv model was asked for$/,
    );
    const typo = { ...history, operations: [{ ...history.operations[1], outptu: { value: 1 } }] };
    expect(() => loadHistory(typo)).toThrow(/^operation 0: has a field "outptu": did you mean "output"\?$/);
  });

  it("an append completed without its output still took effect within its interval", () => {
    // One client appends, then reads nothing at a later time: the append's effect is missing.
    const append = (v: string, invoke: number, complete: number): Op => ({
      id: nextId++,
      client: "a",
      input: { _tag: "append", key: "l", value: v },
      invoke,
      complete,
      output: undefined,
    });
    const stale = [append("x", 0, 1), op("a", get("l"), 2, 3, val(null))];
    expect(checkLinearizable(kvModel, stale).verdict).toBe("not-linearizable");
    expect(checkLinearizable(kvModel, [append("x", 0, 1), op("a", get("l"), 2, 3, val("x"))]).verdict).toBe(
      "linearizable",
    );
    // Written as unknown instead, the completion time is lost and the same history passes.
    const asUnknown = [{ ...stale[0]!, complete: Infinity }, stale[1]!];
    expect(checkLinearizable(kvModel, asUnknown).verdict).toBe("linearizable");
  });

  it("checks registers by key (Jepsen's independent keys)", () => {
    const loaded = loadHistory({
      format: "paxos-lease/history@1",
      model: "register",
      operations: [
        { client: "a", input: { f: "write", key: 1, value: 5 }, invoke: 0, outcome: "ok", complete: 1, output: {} },
        { client: "b", input: { f: "read", key: 2 }, invoke: 2, outcome: "ok", complete: 3, output: { value: null } },
        { client: "b", input: { f: "read", key: 1 }, invoke: 4, outcome: "ok", complete: 5, output: { value: 5 } },
      ],
    });
    const result = checkLinearizable(modelNamed("register"), loaded.operations, { allKeys: true });
    expect(result.verdict).toBe("linearizable");
    expect(result.partitions).toHaveLength(2);
  });

  it("checks a failed cas: it asserts the value differed from `from`", () => {
    const history = (from: number) => ({
      format: "paxos-lease/history@1",
      model: "register",
      operations: [
        { client: "a", input: { f: "write", value: 1 }, invoke: 0, outcome: "ok", complete: 1, output: {} },
        { client: "b", input: { f: "cas", from, to: 2 }, invoke: 2, outcome: "ok", complete: 3, output: { ok: false } },
      ],
    });
    const check = (from: number) =>
      checkLinearizable(modelNamed("register"), loadHistory(history(from), "register").operations);
    // write 1; cas(1 -> 2) fails: the register held 1, so the cas must have swapped.
    const wrong = check(1);
    expect(wrong.verdict).toBe("not-linearizable");
    expect(wrong.partitions[0]!.stuck!.map((o) => o.id)).toEqual([1]);
    // write 1; cas(3 -> 2) fails: it did, the register held 1.
    const right = check(3);
    expect(right.verdict).toBe("linearizable");
    expect(right.operations).toBe(2);
    expect(right.unconstrained).toBe(0);
  });

  it("refuses a register output that does not fit its operation", () => {
    const write = (output: unknown) => ({
      format: "paxos-lease/history@1",
      operations: [{ client: "a", input: { f: "write", value: 1 }, invoke: 0, outcome: "ok", complete: 1, output }],
    });
    expect(() => loadHistory(write({ ok: false }), "register")).toThrow(/operation 0: a write's output must be \{\}/);
    expect(() => loadHistory(write({ value: 1 }), "register")).toThrow(/a write's output must be/);
    expect(loadHistory(write({}), "register").operations).toHaveLength(1);
  });

  it("counts exactly what was checked: unknown reads apart, no-key operations checked", () => {
    const h = [
      op("a", put("x", "1"), 0, 1, ok),
      op("b", get("x"), 2, null),
      op("c", put("x", "2"), 2, null),
      op("d", { _tag: "noop" }, 3, 4, ok),
    ];
    const result = checkLinearizable(kvModel, h);
    expect(result.verdict).toBe("linearizable");
    expect(result.operations).toBe(3);
    expect(result.unconstrained).toBe(1);
    expect(result.partitions.map((p) => [p.partition, p.operations])).toEqual([
      ["", 1],
      ["x", 2],
    ]);
    // A no-op answered with anything but ok is not explained by the store.
    const bad = checkLinearizable(kvModel, [op("d", { _tag: "noop" }, 3, 4, val("1"))]);
    expect(bad.verdict).toBe("not-linearizable");
  });

  it("checks Jepsen-style register histories", () => {
    const history = (reads: (number | null)[]) => ({
      format: "paxos-lease/history@1",
      model: "register",
      operations: [
        { client: "a", input: { f: "write", value: 1 }, invoke: 0, outcome: "ok", complete: 1, output: {} },
        {
          client: "b",
          input: { f: "cas", from: 1, to: 2 },
          invoke: 2,
          outcome: "ok",
          complete: 3,
          output: { ok: true },
        },
        {
          client: "c",
          input: { f: "cas", from: 1, to: 3 },
          invoke: 4,
          outcome: "ok",
          complete: 5,
          output: { ok: false },
        },
        ...reads.map((value, i) => ({
          client: "r",
          input: { f: "read" },
          invoke: 10 + 2 * i,
          outcome: "ok",
          complete: 11 + 2 * i,
          output: { value },
        })),
      ],
    });
    const check = (reads: (number | null)[]) => {
      const loaded = loadHistory(history(reads), "register");
      return checkLinearizable(modelNamed("register"), loaded.operations).verdict;
    };
    expect(check([2, 2])).toBe("linearizable");
    expect(check([1])).toBe("not-linearizable");
    expect(check([3])).toBe("not-linearizable");
    // Every operation is checked: the write, both cas (the failed one included) and the reads.
    const loaded = loadHistory(history([2]), "register");
    expect(checkLinearizable(modelNamed("register"), loaded.operations).operations).toBe(4);
    expect(() =>
      loadHistory(
        {
          ...history([]),
          operations: [
            { client: "a", input: { f: "read" }, invoke: 0, outcome: "ok", complete: 1, output: { ok: true } },
          ],
        },
        "register",
      ),
    ).toThrow(/operation 0: a read's output must be/);
  });
});

/**
 * Generated concurrent histories. Each client runs its operations one after another; each
 * operation takes effect at a point inside its [invoke, complete] interval, and outputs come
 * from applying the operations to spec/kv.ts in the order of those points. Such a history is
 * linearizable by construction. Writes carry unique values so a read's value names its write.
 */
describe("refutation by a necessary condition (a stale read's witness)", () => {
  const ids = (ops: readonly Op[]) => ops.map((o) => o.id);

  it("a value nobody writes", () => {
    const h = [op("a", put("x", "1"), 0, 1, ok), op("b", get("x"), 2, 3, val("7"))];
    const r = refute(kvModel, "x", h)!;
    expect(ids(r.operations)).toEqual([h[1]!.id]);
    expect(r.reason).toMatch(/saw "7", which no operation of this key writes/);
  });

  it("a value read before its only writer was invoked", () => {
    const h = [op("b", get("x"), 0, 1, val("1")), op("a", put("x", "1"), 2, 3, ok)];
    const r = refute(kvModel, "x", h)!;
    expect(ids(r.operations)).toEqual([h[1]!.id, h[0]!.id]);
    expect(r.reason).toMatch(/before #\d+, the only operation writing it, was invoked/);
  });

  it("a value overwritten between its only writer and the read", () => {
    const h = [op("a", put("x", "1"), 0, 1, ok), op("b", put("x", "2"), 2, 3, ok), op("c", get("x"), 4, 5, val("1"))];
    const r = refute(kvModel, "x", h)!;
    expect(ids(r.operations)).toEqual(ids(h));
    expect(r.reason).toMatch(/written only by #\d+, but #\d+ overwrote it with "2"/);
  });

  it("the initial value read after a write completed", () => {
    const h = [op("a", put("x", "1"), 0, 1, ok), op("c", get("x"), 2, 3, val(null))];
    const r = refute(kvModel, "x", h)!;
    expect(ids(r.operations)).toEqual(ids(h));
    expect(r.reason).toMatch(/the initial value/);
  });

  it("finds nothing where it cannot be sure", () => {
    // Two writers of the value; an overwrite concurrent with the read; a cas whose result is unknown.
    const twice = [
      op("a", put("x", "1"), 0, 1, ok),
      op("b", put("x", "2"), 2, 3, ok),
      op("d", put("x", "1"), 2, 3, ok),
      op("c", get("x"), 4, 5, val("1")),
    ];
    expect(refute(kvModel, "x", twice)).toBeUndefined();
    const concurrent = [
      op("a", put("x", "1"), 0, 1, ok),
      op("b", put("x", "2"), 2, 6, ok),
      op("c", get("x"), 4, 5, val("1")),
    ];
    expect(refute(kvModel, "x", concurrent)).toBeUndefined();
    const cas: Op[] = [
      op("a", put("x", "1"), 0, 1, ok),
      op("b", { _tag: "cas", key: "x", expected: "0", value: "2" }, 2, 3),
      op("c", get("x"), 4, 5, val("1")),
    ];
    expect(refute(kvModel, "x", cas)).toBeUndefined();
    // An append whose output was not recorded may leave any value: no value is unique.
    const append: Op[] = [
      ...concurrent.slice(0, 1),
      op("e", { _tag: "append", key: "x", value: "z" }, 0, 9),
      op("c", get("x"), 4, 5, val("7")),
    ];
    expect(refute(kvModel, "x", append)).toBeUndefined();
  });

  it("decides a stale read the search alone cannot: sixteen concurrent writes before it", () => {
    // Sixteen writes at once, then a write, an overwrite and a read of the first
    // (testdata/stale-read-after-sixteen-writes.json, which the check-history CLI's test runs too).
    const h = loadHistory(JSON.parse(readFileSync(staleAfterSixteen, "utf8")), "kv").operations as Op[];
    const searchOnly = checkPartition(kvModel, "x", h, { stepsMax: 200_000, refute: false });
    expect(searchOnly.verdict).toBe("unknown");
    const result = checkPartition(kvModel, "x", h, { stepsMax: 200_000 });
    expect(result.verdict).toBe("not-linearizable");
    expect(ids(result.refutation!.operations)).toEqual([16, 17, 18]);
    expect(result.refutation!.reason).toMatch(/#18 saw "a", written only by #16, but #17 overwrote it/);
    expect(result.operations).toBe(h.length);
  });

  it("refutes register histories too: a failed cas says nothing, a successful one saw its `from`", () => {
    const loaded = loadHistory({
      format: "paxos-lease/history@1",
      model: "register",
      operations: [
        { client: 0, input: { f: "write", value: 1 }, invoke: 0, outcome: "ok", complete: 1, output: {} },
        { client: 1, input: { f: "cas", from: 1, to: 2 }, invoke: 2, outcome: "ok", complete: 3, output: { ok: true } },
        {
          client: 2,
          input: { f: "cas", from: 5, to: 6 },
          invoke: 2,
          outcome: "ok",
          complete: 3,
          output: { ok: false },
        },
        { client: 0, input: { f: "read" }, invoke: 4, outcome: "ok", complete: 5, output: { value: 1 } },
      ],
    });
    const r = refute(modelNamed("register"), "register", loaded.operations)!;
    expect(ids(r.operations)).toEqual([0, 1, 3]);
  });
});

interface Planned {
  client: string;
  input: KvInput;
  invoke: number;
  complete: number;
  point: number;
  unknown: boolean;
}

const plan = fc
  .array(
    fc.array(
      fc.record({
        gap: fc.integer({ min: 0, max: 5 }),
        duration: fc.integer({ min: 0, max: 12 }),
        at: fc.double({ min: 0, max: 1, noNaN: true }),
        write: fc.boolean(),
        key: fc.constantFrom("x", "y"),
        unknown: fc.boolean(),
      }),
      { minLength: 1, maxLength: 8 },
    ),
    { minLength: 1, maxLength: 6 },
  )
  .map((clients) => {
    const planned: Planned[] = [];
    let unique = 0;
    clients.forEach((steps, c) => {
      let t = 0;
      for (const s of steps) {
        const invoke = t + s.gap;
        const complete = invoke + s.duration;
        // Only a client's last operation may be left with an unknown outcome (it crashed).
        const unknown = s.unknown && s === steps[steps.length - 1];
        planned.push({
          client: `c${c}`,
          input: s.write ? put(s.key, `w${unique++}`) : get(s.key),
          invoke,
          complete,
          point: invoke + s.at * s.duration,
          unknown,
        });
        t = complete;
      }
    });
    return planned;
  });

function realize(planned: readonly Planned[]): Op[] {
  const order = planned.map((p, i) => ({ p, i })).sort((a, b) => a.p.point - b.p.point || a.i - b.i);
  const outputs = new Map<number, KvOutput>();
  let state = kv.start;
  for (const { p, i } of order) {
    const applied = kv.apply(p.input, state);
    outputs.set(i, applied.output);
    state = applied.state;
  }
  return planned.map((p, i) => ({
    id: i,
    client: p.client,
    input: p.input,
    invoke: p.invoke,
    complete: p.unknown ? Infinity : p.complete,
    output: p.unknown ? undefined : outputs.get(i),
  }));
}

describe("generated histories", () => {
  test.prop([plan], { numRuns: 300 })(
    "a history realized at points inside each interval is linearizable",
    (planned) => {
      const ops = realize(planned);
      expect(checkLinearizable(kvModel, ops).verdict).toBe("linearizable");
      // The refutation never fires on a linearizable history (each write's value is unique here).
      for (const key of ["x", "y"])
        expect(
          refute(
            kvModel,
            key,
            ops.filter((o) => kvModel.partition(o.input) === key),
          ),
        ).toBeUndefined();
    },
  );

  test.prop([fc.array(fc.record({ write: fc.boolean(), key: fc.constantFrom("x", "y", "z") }), { maxLength: 60 })])(
    "a sequential history (no overlap) is linearizable",
    (steps) => {
      const planned = steps.map((s, i) => ({
        client: `c${i % 3}`,
        input: s.write ? put(s.key, `w${i}`) : get(s.key),
        invoke: 2 * i,
        complete: 2 * i + 1,
        point: 2 * i,
        unknown: false,
      }));
      expect(checkLinearizable(kvModel, realize(planned)).verdict).toBe("linearizable");
    },
  );

  test.prop([plan, fc.nat()], { numRuns: 300 })(
    "the same history with one read made stale is not linearizable",
    (planned, pick) => {
      const ops = realize(planned);
      // A stale read R: writes W1 and W2 to R's key with W1 before W2 before R in real time;
      // R now returns W1's value, which every linearization has overwritten by W2.
      const candidates: { read: Op; stale: string }[] = [];
      for (const r of ops) {
        if (r.input._tag !== "get" || r.complete === Infinity) continue;
        const key = r.input.key;
        for (const w1 of ops) {
          if (w1.input._tag !== "put" || w1.input.key !== key || w1.complete === Infinity) continue;
          const overwritten = ops.some(
            (w2) =>
              w2.input._tag === "put" && w2.input.key === key && w1.complete < w2.invoke && w2.complete < r.invoke,
          );
          if (overwritten) candidates.push({ read: r, stale: w1.input.value });
        }
      }
      fc.pre(candidates.length > 0);
      const { read, stale } = candidates[pick % candidates.length]!;
      const key = read.input._tag === "get" ? read.input.key : "";
      const mutated = ops.map((o) => (o === read ? { ...o, output: val(stale) } : o));
      const result = checkLinearizable(kvModel, mutated);
      expect(result.verdict).toBe("not-linearizable");
      expect(result.partitions.find((p) => p.verdict !== "linearizable")!.partition).toBe(key);
      // Every write's value is unique, so the refutation finds this stale read's witness too.
      const refuted = refute(
        kvModel,
        key,
        mutated.filter((o) => kvModel.partition(o.input) === key),
      );
      expect(refuted).toBeDefined();
      expect(bruteForce(refuted!.operations)).toBe(false);
    },
  );
});

/**
 * The search against a reference: on small random histories (random outputs, so about half
 * are not linearizable), the checker's verdict equals that of a plain enumeration of every
 * order that respects real time, without memo, rules or the list. This pins the search's
 * shortcuts (the exact memo's windows, rule 1, the just-in-time order) to the definition.
 */
function bruteForce(ops: readonly Op[]): boolean {
  const placed = new Array<boolean>(ops.length).fill(false);
  const go = (state: typeof kv.start, count: number): boolean => {
    if (count === ops.length) return true;
    for (let i = 0; i < ops.length; i++) {
      if (placed[i]) continue;
      const o = ops[i]!;
      // o may come next only if no unplaced operation completed before o was invoked.
      if (ops.some((p, j) => !placed[j] && j !== i && p.complete < o.invoke)) continue;
      // spec/kv.ts itself, on a whole store: the reference for the checker's one-key model too.
      const applied = kv.apply(o.input, state);
      if (o.output !== undefined && !kv.outputsEqual(applied.output, o.output)) continue;
      const next = applied.state;
      placed[i] = true;
      const ok = go(next, count + 1);
      placed[i] = false;
      if (ok) return true;
    }
    return false;
  };
  return go(kv.start, 0);
}

const smallHistory = fc
  .array(
    fc.record({
      client: fc.integer({ min: 0, max: 3 }),
      kind: fc.constantFrom("get", "put", "cas", "append", "delete"),
      value: fc.constantFrom("a", "b"),
      expected: fc.constantFrom(null, "a", "b"),
      read: fc.constantFrom(null, "a", "b", "ab", "ba"),
      swapped: fc.boolean(),
      invoke: fc.integer({ min: 0, max: 12 }),
      duration: fc.integer({ min: 0, max: 8 }),
      unknown: fc.integer({ min: 0, max: 9 }),
      recorded: fc.integer({ min: 0, max: 5 }),
    }),
    { minLength: 1, maxLength: 7 },
  )
  .map((rows) =>
    rows.map((r, id): Op => {
      const key = "x";
      const input: KvInput =
        r.kind === "get"
          ? get(key)
          : r.kind === "put"
            ? put(key, r.value)
            : r.kind === "delete"
              ? { _tag: "delete", key }
              : r.kind === "append"
                ? { _tag: "append", key, value: r.value }
                : { _tag: "cas", key, expected: r.expected, value: r.value };
      const output: KvOutput =
        r.kind === "get" || r.kind === "append"
          ? val(r.read)
          : r.kind === "cas"
            ? { _tag: "cas", swapped: r.swapped, current: r.swapped ? r.expected : r.read }
            : ok;
      const unknown = r.unknown === 0;
      // Some completed operations have no recorded output (any output, at a known time).
      const recorded = r.recorded !== 0;
      return {
        id,
        client: `c${r.client}`,
        input,
        invoke: r.invoke,
        complete: unknown ? Infinity : r.invoke + r.duration,
        output: unknown || !recorded ? undefined : output,
      };
    }),
  );

describe("the search against plain enumeration", () => {
  test.prop([smallHistory], { numRuns: 1500 })("gives the same verdict", (ops) => {
    const expected = bruteForce(ops) ? "linearizable" : "not-linearizable";
    expect(checkLinearizable(kvModel, ops).verdict).toBe(expected);
  });

  test.prop([smallHistory], { numRuns: 1500 })(
    "the refutation refutes only histories that are not linearizable, by a witness that is not",
    (ops) => {
      const refuted = refute(kvModel, "x", ops);
      if (refuted === undefined) return;
      expect(bruteForce(ops)).toBe(false);
      expect(bruteForce(refuted.operations)).toBe(false);
      expect(refuted.operations.at(-1)!.output).toBeDefined();
    },
  );
});

describe("the checker's one-key model", () => {
  const inputs = fc.oneof(
    fc.constant<KvInput>(get("x")),
    fc.string({ maxLength: 3 }).map((v): KvInput => put("x", v)),
    fc.constant<KvInput>({ _tag: "delete", key: "x" }),
    fc
      .record({ e: fc.option(fc.string({ maxLength: 3 })), v: fc.string({ maxLength: 3 }) })
      .map((r): KvInput => ({ _tag: "cas", key: "x", expected: r.e, value: r.v })),
    fc.string({ maxLength: 3 }).map((v): KvInput => ({ _tag: "append", key: "x", value: v })),
    fc.constant<KvInput>({ _tag: "noop" }),
  );
  it("refuses an append past the bound as the spec does", () => {
    const long = "a".repeat(valueLengthMax);
    const input: KvInput = { _tag: "append", key: "x", value: "b" };
    expect(applyToValue(input, long)).toEqual({
      value: long,
      output: kv.apply(input, kv.apply(put("x", long), kv.start).state).output,
    });
  });

  test.prop([fc.option(fc.string({ maxLength: 4 })), inputs], { numRuns: 2000 })(
    "agrees with kv.apply on every input and value",
    (value, input) => {
      const store = value === null ? kv.start : kv.apply(put("x", value), kv.start).state;
      const spec = kv.apply(input, store);
      const mine = applyToValue(input, value);
      expect(mine.output).toEqual(spec.output);
      expect(mine.value).toBe(kvGet(spec.state, "x"));
    },
  );

  const outputs = fc.oneof(
    fc.option(fc.string({ maxLength: 4 })).map((value): KvOutput => ({ _tag: "value", value })),
    fc.constant<KvOutput>({ _tag: "ok" }),
    fc
      .record({ swapped: fc.boolean(), current: fc.option(fc.string({ maxLength: 4 })) })
      .map((r): KvOutput => ({ _tag: "cas", ...r })),
    fc
      .record({ length: fc.nat(), limit: fc.constantFrom(valueLengthMax, 3) })
      .map((r): KvOutput => ({ _tag: "too-large", ...r })),
  );
  test.prop([fc.option(fc.string({ maxLength: 4 })), inputs, fc.option(outputs, { nil: undefined }), fc.boolean()], {
    numRuns: 3000,
  })(
    "steps as applyToValue then kv.outputsEqual, for the true output, any other and none",
    (value, input, other, useTrue) => {
      const applied = applyToValue(input, value);
      const output = useTrue ? applied.output : other;
      const expected = output === undefined || kv.outputsEqual(applied.output, output) ? applied.value : undefined;
      expect(stepValue(value, input, output)).toBe(expected);
    },
  );

  describe("at the bound execution applies, in UTF-16 code units", () => {
    // One or two code units each (wide characters too: the bound counts code units, not bytes).
    const unit = fc.constantFrom("a", "\u00e9", "\u20ac", "\u{1f600}", "\ud800", "\udc00");
    const short = fc.string({ unit, maxLength: 4 });
    // ASCII a few code units short of the bound, then up to 6 more: never more than a value may
    // hold (spec/kv.ts, valueLengthMax); an append of two crosses it.
    const near = fc
      .tuple(fc.integer({ min: 0, max: 8 }), fc.string({ unit, maxLength: 3 }))
      .map(([gap, tail]) => "a".repeat(valueLengthMax - 6 - gap) + tail);
    const value = fc.oneof(short, near);
    const inputsNear = fc.oneof(
      value.map((v): KvInput => put("x", v)),
      fc
        .record({ e: fc.option(short), current: fc.boolean(), v: value })
        .map((r): ((current: string | null) => KvInput) => (current) => ({
          _tag: "cas",
          key: "x",
          expected: r.current ? current : r.e,
          value: r.v,
        })),
      value.map((v): KvInput => ({ _tag: "append", key: "x", value: v })),
    );
    // A current value near the bound, as appends build.
    test.prop([fc.option(value), inputsNear], { numRuns: 60 })(
      "applyToValue and stepValue agree with kv.apply on every input and value",
      (current, make) => {
        const input = typeof make === "function" ? make(current) : make;
        const store =
          current === null ? kv.start : kv.restore({ format: "paxos-lease/kv@1", entries: [["x", current]] });
        const spec = kv.apply(input, store);
        const mine = applyToValue(input, current);
        expect(mine.output).toEqual(spec.output);
        expect(mine.value === kvGet(spec.state, "x")).toBe(true);
        expect(stepValue(current, input, spec.output) === mine.value).toBe(true);
        if (spec.output._tag === "too-large") {
          const wrong: KvOutput = { ...spec.output, length: spec.output.length - 1 };
          expect(stepValue(current, input, wrong)).toBeUndefined();
        }
      },
    );
  });

  it("steps an append past the bound as applyToValue does", () => {
    const long = "a".repeat(valueLengthMax);
    const input: KvInput = { _tag: "append", key: "x", value: "b" };
    expect(stepValue(long, input, applyToValue(input, long).output)).toBe(long);
    expect(stepValue(long, input, { _tag: "value", value: `${long}b` })).toBeUndefined();
    expect(stepValue(long, input, undefined)).toBe(long);
  });

  it("takes either outcome of an append over 1 MiB of UTF-8 (a history names no feature level), and only its true refusal", () => {
    // 600,000 bytes of UTF-8 in 200,000 code units, twice: the whole is over the limit in bytes only.
    const half = "\u20ac".repeat(200_000);
    const input: KvInput = { _tag: "append", key: "x", value: half };
    const store = kv.apply(put("x", half), kv.start).state;
    const refused = kv.apply(input, store, featureLevelValueBytes).output;
    expect(refused).toEqual({ _tag: "too-large", length: 1_200_000, limit: valueBytesMax, unit: "bytes" });
    expect(stepValue(half, input, refused)).toBe(half);
    expect(stepValue(half, input, kv.apply(input, store, 3).output) === half + half).toBe(true);
    expect(stepValue(half, input, { ...refused, length: 1_199_999 } as KvOutput)).toBeUndefined();
    // A refusal in bytes of a whole within the limit is no outcome of any level.
    const small: KvInput = { _tag: "append", key: "x", value: "b" };
    expect(
      stepValue("a", small, { _tag: "too-large", length: 2, limit: valueBytesMax, unit: "bytes" }),
    ).toBeUndefined();
  });
});

/**
 * The importers on small histories in each source format: what they produce, the verdict
 * the checker then gives (a failed cas counts, an :ok append keeps its completion time), and
 * one-line refusals of what they cannot read.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { loadHistory, modelNamed } from "./history.ts";
import { detectFormat, importHistory, importJepsenEdn, importPorcupineLog, quickValue } from "./importers.ts";
import { checkLinearizable } from "./linearizability.ts";
import { readEdnAll, Keyword } from "./edn.ts";

function verdict(document: unknown): string {
  const loaded = loadHistory(document);
  return checkLinearizable(modelNamed(loaded.model), loaded.operations, { allKeys: true }).verdict;
}

const register = (casFrom: number) => `
{:type :invoke, :f :write, :value 1, :process 0, :time 10, :index 0}
{:type :ok, :f :write, :value 1, :process 0, :time 20, :index 1}
{:type :invoke, :f :cas, :value [${casFrom} 2], :process 1, :time 30, :index 2}
{:type :fail, :f :cas, :value [${casFrom} 2], :process 1, :time 40, :index 3}
{:type :info, :f :start, :value nil, :process :nemesis, :time 45, :index 4}
{:type :invoke, :f :read, :value nil, :process 0, :time 50, :index 5}
{:type :ok, :f :read, :value 1, :process 0, :time 60, :index 6}
{:type :invoke, :f :write, :value 3, :process 2, :time 70, :index 7}
`;

describe("Jepsen EDN", () => {
  it("reads register histories: a failed cas compared and did not swap", () => {
    const document = importJepsenEdn(register(1)) as { model: string; operations: object[] };
    expect(document.model).toBe("register");
    expect(document.operations).toEqual([
      { client: 0, invoke: 10, input: { f: "write", value: 1 }, outcome: "ok", output: {}, complete: 20 },
      {
        client: 1,
        invoke: 30,
        input: { f: "cas", from: 1, to: 2 },
        outcome: "ok",
        output: { ok: false },
        complete: 40,
      },
      { client: 0, invoke: 50, input: { f: "read" }, outcome: "ok", output: { value: 1 }, complete: 60 },
      { client: 2, invoke: 70, input: { f: "write", value: 3 }, outcome: "unknown" },
    ]);
    // The register held 1, so cas(1 -> 2) could not have failed; cas(5 -> 2) could.
    expect(verdict(document)).toBe("not-linearizable");
    expect(verdict(importJepsenEdn(register(5)))).toBe("linearizable");
    // Knossos's reading: a failed cas never executed, and constrains nothing.
    expect(verdict(importJepsenEdn(register(1), { failedCas: "not-executed" }))).toBe("linearizable");
  });

  it("reads independent keys, a vector of tagged ops, and single micro-op list-append transactions", () => {
    const independent = `[#jepsen.history.Op{:type :invoke, :f :write, :value [7 1], :process 0, :index 0}
      #jepsen.history.Op{:type :ok, :f :write, :value [7 1], :process 0, :index 1}
      #jepsen.history.Op{:type :invoke, :f :read, :value [7 nil], :process 1, :index 2}
      #jepsen.history.Op{:type :ok, :f :read, :value [7 nil], :process 1, :index 3}]`;
    expect(verdict(importJepsenEdn(independent))).toBe("not-linearizable");
    const listAppend = (seen: string) => `
      {:type :invoke, :f :txn, :value [[:append :x 1]], :process 0, :index 0}
      {:type :ok, :f :txn, :value [[:append :x 1]], :process 0, :index 1}
      {:type :invoke, :f :txn, :value [[:append :x 2]], :process 1, :index 2}
      {:type :invoke, :f :txn, :value [[:r :x nil]], :process 0, :index 3}
      {:type :ok, :f :txn, :value [[:r :x ${seen}]], :process 0, :index 4}`;
    expect(verdict(importJepsenEdn(listAppend("[1 2]")))).toBe("linearizable");
    expect(verdict(importJepsenEdn(listAppend("[1]")))).toBe("linearizable");
    expect(verdict(importJepsenEdn(listAppend("[2 1]")))).toBe("not-linearizable");
    expect(verdict(importJepsenEdn(listAppend("nil")))).toBe("not-linearizable");
  });

  it("reads Porcupine's kv logs: an :ok append completed with its output not recorded", () => {
    const kvLog = (seen: string) => `{:process 0, :type :invoke, :f :append, :key "6", :value "x 0 0 y"}
{:process 0, :type :ok, :f :append, :key "6", :value "x 0 0 y"}
{:process 1, :type :invoke, :f :get, :key "6", :value nil}
{:process 1, :type :ok, :f :get, :key "6", :value "${seen}"}`;
    expect(detectFormat(kvLog(""))).toBe("jepsen-edn");
    const loaded = loadHistory(importHistory(kvLog("x 0 0 y"), "jepsen-edn"));
    expect(loaded.unrecorded).toBe(1);
    expect(verdict(importJepsenEdn(kvLog("x 0 0 y")))).toBe("linearizable");
    expect(verdict(importJepsenEdn(kvLog("")))).toBe("not-linearizable");
  });

  it("refuses what it cannot read, in one line", () => {
    expect(() => importJepsenEdn("{:type :invoke, :f :read")).toThrow(/^EDN, line 1 column \d+: missing "}"$/);
    expect(() => importJepsenEdn("{:type :invoke, :f :txn, :value [[:append :x 1] [:r :y nil]], :process 0}")).toThrow(
      /a transaction of 2 micro-operations/,
    );
    expect(() => importJepsenEdn("{:type :ok, :f :read, :value 1, :process 0}")).toThrow(
      /process 0 completes :read it never invoked/,
    );
  });

  it("reads the EDN forms Jepsen writes", () => {
    const [m] = readEdnAll('{:a [1 -2.5 "s\\n" nil true] :b #{:k} ; comment\n :c (x 1/2)}');
    expect(m).toBeInstanceOf(Map);
    const map = m as ReadonlyMap<string, unknown>;
    expect(map.get("a")).toEqual([1, -2.5, "s\n", null, true]);
    expect(map.get("b")).toEqual({ set: [new Keyword("k")] });
    expect((map.get("c") as unknown[])[1]).toBe(0.5);
  });
});

describe("Porcupine's Jepsen etcd logs", () => {
  const log = (read: string) =>
    [
      "INFO  jepsen.util - 0\t:invoke\t:write\t3",
      "INFO  jepsen.util - 0\t:ok\t:write\t3",
      "INFO  jepsen.util - 1\t:invoke\t:cas\t[3 4]",
      "INFO  jepsen.util - 2\t:invoke\t:write\t1",
      "INFO  jepsen.util - 1\t:fail\t:cas\t[3 4]",
      "INFO  jepsen.util - 2\t:info\t:write\t:timed-out",
      "INFO  jepsen.util - 0\t:invoke\t:read\tnil",
      `INFO  jepsen.util - 0\t:ok\t:read\t${read}`,
    ].join("\n");

  it("reads them: position is time, :info is unknown, a failed cas is checked", () => {
    expect(detectFormat(log("1"))).toBe("porcupine-log");
    // The cas could fail only if the timed-out write of 1 took effect first; then the read sees 1.
    expect(verdict(importPorcupineLog(log("1")))).toBe("linearizable");
    expect(verdict(importPorcupineLog(log("3")))).toBe("not-linearizable");
    expect(() => importPorcupineLog("INFO  jepsen.util - 0 :invoke")).toThrow(/^line 1: not a/);
  });

  it("reads the space-padded columns some of them use", () => {
    const padded = (read: string) =>
      log(read)
        .split("\n")
        .map((line) => {
          const [prefix, process, type, f, value] = line.split(/ - |\t/);
          return `${prefix} - ${process!.padEnd(4)}${type!.padEnd(8)}${f!.padEnd(8)}${value}`;
        })
        .join("\n");
    expect(padded("1")).toContain("INFO  jepsen.util - 0   :invoke :write  3");
    expect(detectFormat(padded("1"))).toBe("porcupine-log");
    expect(verdict(importPorcupineLog(padded("1")))).toBe("linearizable");
    expect(verdict(importPorcupineLog(padded("3")))).toBe("not-linearizable");
  });
});

describe("the value column read without the EDN reader", () => {
  it("reads what the EDN reader reads, or leaves it to the reader", () => {
    const atom = fc.oneof(
      fc.constant("nil"),
      fc.integer().map(String),
      fc.bigInt().map(String),
      fc.constantFrom("-0", "007", ":timed-out", "1.5", "1N", String.raw`"x"`),
    );
    const column = fc.oneof(
      atom,
      fc.tuple(atom, atom).map(([a, b]) => `[${a} ${b}]`),
      fc.tuple(atom, atom, atom).map(([a, b, c]) => `[${a} ${b} ${c}]`),
      fc.tuple(atom, atom).map(([a, b]) => `(${a} ${b})`),
      fc.string(),
    );
    fc.assert(
      fc.property(column, (text) => {
        const quick = quickValue(text);
        if (quick === undefined) return;
        expect(quick).toStrictEqual(readEdnAll(text)[0]);
      }),
      { numRuns: 3000 },
    );
    expect(quickValue("3")).toBe(3);
    expect(quickValue("[1 nil]")).toStrictEqual([1, null]);
    expect(quickValue("nil")).toBeUndefined();
    expect(quickValue(":timed-out")).toBeUndefined();
  });
});

/**
 * Properties of the service spec (spec/service.ts): each request runs exactly once, retries
 * get the cached output, older requests are refused, and the whole is deterministic.
 */
import { fc, test } from "@fast-check/vitest";
import { describe, expect } from "vitest";
import { kv, type KvInput } from "./kv.ts";
import { serviceOf, sessionOf, type Request } from "./service.ts";
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
      let executed = 0;
      requests.forEach((r, i) => {
        const last = lastSeq.get(r.clientId) ?? 0;
        const out = outputs[i]!;
        if (r.seq > last) {
          expect(out._tag).toBe("executed");
          lastSeq.set(r.clientId, r.seq);
          executed++;
        } else if (r.seq === last) {
          expect(out._tag).toBe("duplicate");
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

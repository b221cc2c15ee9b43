/**
 * The turn budget: work within a turn's bytes runs at once, the rest in later turns (one loop
 * iteration each, so the timers and I/O of the replica run between them), in arrival order. Turns
 * are counted, never timed.
 */
import { describe, expect, it } from "vitest";
import { TurnBudget } from "./turn-budget.ts";

/** Resolves after `n` turns of the event loop (one immediate each). */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

describe("TurnBudget", () => {
  it("runs work within the budget at once, in the same turn", () => {
    const budget = new TurnBudget(10);
    const ran: string[] = [];
    budget.run(4, () => ran.push("a"));
    budget.run(6, () => ran.push("b"));
    expect(ran).toEqual(["a", "b"]);
    expect(budget.depths).toEqual({ waiting: 0, turnsDeferred: 0 });
  });

  it("without it, the work beyond the budget would run in this turn: it waits for the next", async () => {
    const budget = new TurnBudget(10);
    const ran: string[] = [];
    budget.run(8, () => ran.push("a"));
    budget.run(8, () => ran.push("b"));
    budget.run(8, () => ran.push("c"));
    expect(ran).toEqual(["a"]);
    expect(budget.depths.waiting).toBe(2);
    await turns(1);
    expect(ran).toEqual(["a", "b"]);
    await turns(1);
    expect(ran).toEqual(["a", "b", "c"]);
    expect(budget.depths).toEqual({ waiting: 0, turnsDeferred: 2 });
  });

  it("runs a piece larger than the whole budget alone, at the start of a turn", async () => {
    const budget = new TurnBudget(10);
    const ran: string[] = [];
    budget.run(2, () => ran.push("small"));
    budget.run(50, () => ran.push("large"));
    budget.run(2, () => ran.push("after"));
    expect(ran).toEqual(["small"]);
    await turns(1);
    expect(ran).toEqual(["small", "large"]);
    await turns(1);
    expect(ran).toEqual(["small", "large", "after"]);
  });

  it("keeps arrival order: small work waits behind work queued before it", async () => {
    const budget = new TurnBudget(10);
    const ran: number[] = [];
    budget.run(10, () => ran.push(1));
    budget.run(10, () => ran.push(2));
    budget.run(0, () => ran.push(3));
    expect(ran).toEqual([1]);
    await turns(2);
    expect(ran).toEqual([1, 2, 3]);
  });

  it("refuses a budget or a size that is not a byte count, with a clear error", () => {
    expect(() => new TurnBudget(0)).toThrow(/positive integer/);
    expect(() => new TurnBudget(1.5)).toThrow(/positive integer/);
    const budget = new TurnBudget(10);
    expect(() => budget.run(-1, () => undefined)).toThrow(/>= 0/);
    expect(() => budget.run(Number.NaN, () => undefined)).toThrow(/>= 0/);
  });
});

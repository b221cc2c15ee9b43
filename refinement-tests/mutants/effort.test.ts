import { describe, expect, it } from "vitest";
import { huntEffort } from "./effort.ts";

describe("huntEffort", () => {
  it("names the explorer's states and the random suite's runs, singular for one", () => {
    expect(huntEffort("explore", 1)).toBe("1 state");
    expect(huntEffort("explore", 8501)).toBe("8,501 states");
    expect(huntEffort("explore", 0)).toBe("0 states");
    expect(huntEffort("random", 1)).toBe("1 run");
    expect(huntEffort("random", 877)).toBe("877 runs");
  });
});
